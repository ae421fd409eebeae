"""Sending an equivocation proof to the Slasher (the one transaction a validator sends).

Reads the Slasher's address from the Router (`staking()`) and Staking (`slasher()`),
skips a proof already used (`proofUsed`), estimates gas (a revert — e.g. the proof is
too old — is logged and dropped), and sends an EIP-1559 transaction signed with the
validator's key, then waits (bounded) for its receipt. Returns a short status string.

When modifying this part: keep it the only sender of transactions from a validator's
account that does not run the sequencer role (nonces are read as "pending" each time).
"""

from __future__ import annotations

from typing import Any

import trio
from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_utils import keccak, to_checksum_address
from gexe.contracts import EthClient, RpcError
from gexe.contracts.equivocation import (
    SIGNED_BATCH_HEADER_ABI,
    EquivocationProof,
    equivocation_signer,
    proof_key,
)
from gexe.node.logging import get_logger

log = get_logger("validator")

_REPORT = keccak(
    text="reportEquivocation(bytes32,uint64,bytes32,(bytes32,bytes32,uint128,bytes),"
    "(bytes32,bytes32,uint128,bytes))"
)[:4]
_STAKING = keccak(text="staking()")[:4]
_SLASHER = keccak(text="slasher()")[:4]
_PROOF_USED = keccak(text="proofUsed(bytes32)")[:4]


def report_calldata(proof: EquivocationProof) -> bytes:
    return _REPORT + abi_encode(
        ["bytes32", "uint64", "bytes32", SIGNED_BATCH_HEADER_ABI, SIGNED_BATCH_HEADER_ABI],
        list(proof.args()),
    )


async def _address(client: EthClient, to: str, selector: bytes) -> str:
    data = await client.call(to, selector)
    return to_checksum_address(abi_decode(["address"], data)[0])


async def _send_proof(
    client: EthClient, account: Any, router: str, chain_id: int, key: bytes, data: bytes, what: str
) -> str:
    """Send one proof transaction to the Slasher unless its key was used. `what` names the
    offence in logs."""
    try:
        slasher = await _address(client, await _address(client, router, _STAKING), _SLASHER)
        signer = account.address
        used = await client.call(slasher, _PROOF_USED + key)
        if int.from_bytes(used[-32:], "big"):
            log.info("equivocation already reported", offence=what)
            return "already reported"
        tx: dict[str, Any] = {"from": signer, "to": slasher, "data": "0x" + data.hex()}
        gas = await client.estimate_gas(tx)
        block = await client.get_block("latest")
        base = int(block["baseFeePerGas"], 16) if block and block.get("baseFeePerGas") else 0
        tip = 10**9
        raw = account.sign_transaction(
            {
                "type": 2,
                "chainId": chain_id,
                "nonce": await client.nonce(signer),
                "to": slasher,
                "data": data,
                "value": 0,
                "gas": gas * 5 // 4,
                "maxPriorityFeePerGas": tip,
                "maxFeePerGas": 2 * base + tip,
            }
        ).raw_transaction
        txh = await client.send_raw_transaction(raw)
        receipt = await client.wait_for_receipt(txh, poll_interval=0.2, timeout=60.0)
        ok = int(receipt["status"], 16) == 1
        log.warning(
            "equivocation reported" if ok else "equivocation report reverted",
            offence=what,
            tx="0x" + txh.hex(),
            gas_used=int(receipt["gasUsed"], 16),
        )
        return "slashed" if ok else "reverted"
    except RpcError as e:
        log.info("equivocation report refused", offence=what, reason=str(e.revert or e)[:200])
        return f"refused: {e.revert or e}"[:200]
    except (trio.TooSlowError, OSError) as e:
        log.warning("equivocation report failed", error=f"{type(e).__name__}: {e}"[:200])
        return "failed"


async def report_equivocation(
    client: EthClient, account: Any, router: str, chain_id: int, proof: EquivocationProof
) -> str:
    key = proof_key(
        equivocation_signer(proof, chain_id, router),
        proof.previous_committed_batch_hash,
        proof.block_hash,
    )
    what = f"batch at block {proof.block_number}"
    return await _send_proof(client, account, router, chain_id, key, report_calldata(proof), what)


_SEQ_HEADER = "(bytes32,uint64,uint64,bytes32,bytes32)"
_REPORT_SEQ = keccak(text=f"reportSequencerEquivocation({_SEQ_HEADER},bytes,{_SEQ_HEADER},bytes)")[
    :4
]
_SEQ_PROOF_KEY = keccak(text="sequencerProofKey(address,bytes32,uint64)")[:4]


def _seq_header(h: Any) -> tuple[bytes, int, int, bytes, bytes]:
    return (h.anchor, h.anchor_number, h.height, h.parent, h.transactions_hash)


async def report_sequencer_equivocation(
    client: EthClient,
    account: Any,
    router: str,
    chain_id: int,
    first: Any,
    first_sig: bytes,
    second: Any,
    second_sig: bytes,
    signer: bytes,
) -> str:
    """Two sequencer blocks for one (anchor, height), both signed by `signer`."""
    data = _REPORT_SEQ + abi_encode(
        [_SEQ_HEADER, "bytes", _SEQ_HEADER, "bytes"],
        [_seq_header(first), first_sig, _seq_header(second), second_sig],
    )
    try:
        slasher = await _address(client, await _address(client, router, _STAKING), _SLASHER)
        key = await client.call(
            slasher,
            _SEQ_PROOF_KEY
            + abi_encode(
                ["address", "bytes32", "uint64"],
                [to_checksum_address(signer), first.anchor, first.height],
            ),
        )
    except (RpcError, trio.TooSlowError, OSError) as e:
        return f"failed: {e}"[:200]
    what = f"sequencer block {first.height} at block {first.anchor_number}"
    return await _send_proof(client, account, router, chain_id, bytes(key[-32:]), data, what)
