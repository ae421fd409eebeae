"""Gas of `Router.commitBatch` on anvil: per transition and per signature.

For 4 and 16 validators (equal stakes, all signing), a fresh network gets 100 programs; a
warm-up batch gives every program a non-zero state hash (the steady state of a live
program: the cost of its first-ever commit is reported apart), then batches of 1, 10 and
100 transitions are committed, each transition carrying one 32-byte reply to an EOA and a
new state hash. Every batch reports some burned executable balance (`burned` ≠ 0), as a live
network's batches do, so the Router credits its era's reward pool each time (the pool is
already non-zero after the warm-up). Gas is the receipt's gasUsed (intrinsic + calldata +
execution).

Keys: `gas_per_transition_100x4` (100 transitions, 4 validators: total ÷ 100),
`gas_per_signature` (marginal gas of one more counted signature: (16-validator batch −
4-validator batch) ÷ 12 at 100 transitions), `gas_commit_<n>x<v>` (totals),
`marginal_gas_per_transition_<v>` ((100-batch − 10-batch) ÷ 90), the first-commit figure,
the 100x4 figure with an EIP-2930 access list (eth_createAccessList), as a sequencer
may send it, and the 100x4 figure with nothing burned (`..._no_burn`).
"""

from __future__ import annotations

import os

from _common import emit, parser, progress
from eth_account import Account
from eth_account.signers.local import LocalAccount
from gexe.contracts import (
    BatchCommitment,
    ChainCommitment,
    CodeCommitment,
    Message,
    ReplyDetails,
    Router,
    StateTransition,
    WrappedVara,
    batch_hash,
    code_id,
    deploy_network,
    sign_batch,
    signatures_in_set_order,
    start_anvil,
    to_abi,
)
from gexe.contracts.deploy import NetworkConfig
from web3 import Web3

PROGRAMS = 100
SIZES = (1, 10, 100)
BURNED = 12_345_678  # WVARA base units per batch


class Bench:
    def __init__(self, w3: Web3, owner: LocalAccount, validators: int) -> None:
        self.w3 = w3
        self.owner = owner
        self.keys = [Account.create() for _ in range(validators)]
        config = NetworkConfig(min_stake=1, max_validators=max(64, validators))
        self.d = deploy_network(w3, owner, self.keys, 1000, config)
        self.router = Router(w3, self.d.router)
        # The executable balance the batches report burned is already in the Router.
        WrappedVara(w3, self.d.wrapped_vara).mint(owner, self.d.router, 10**30)
        self.order = [v for v, _ in self.router.validators()]
        self.dest = Account.create().address
        code = os.urandom(64)
        cid = code_id(code)
        self.router.request_code_validation(owner, cid, code)
        self.commit(self.batch((), codes=(CodeCommitment(cid, True),)))
        self.programs = [
            self.router.create_program(owner, cid, i.to_bytes(32, "big")) for i in range(PROGRAMS)
        ]

    def transitions(self, n: int) -> tuple[StateTransition, ...]:
        return tuple(
            StateTransition(
                p,
                os.urandom(32),
                messages=(
                    Message(
                        os.urandom(32),
                        self.dest,
                        os.urandom(32),
                        0,
                        ReplyDetails(os.urandom(32), bytes(4)),
                    ),
                ),
            )
            for p in self.programs[:n]
        )

    def batch(
        self,
        transitions: tuple[StateTransition, ...],
        codes: tuple[CodeCommitment, ...] = (),
        burned: int = BURNED,
    ) -> BatchCommitment:
        block = self.w3.eth.get_block(self.w3.eth.block_number - 1)
        chain = (ChainCommitment(transitions, os.urandom(32)),) if transitions else ()
        prev = self.router.latest_committed_batch_hash()
        return BatchCommitment(
            bytes(block["hash"]), block["number"], prev, chain, tuple(codes), burned
        )

    def signatures(self, batch: BatchCommitment) -> list[bytes]:
        h = batch_hash(batch)
        chain_id = self.w3.eth.chain_id
        sigs = {k.address: sign_batch(k.key, h, chain_id, self.d.router) for k in self.keys}
        return signatures_in_set_order(sigs, self.order)

    def commit(self, batch: BatchCommitment, access_list: bool = False) -> int:
        call = self.router.contract.functions.commitBatch(to_abi(batch), self.signatures(batch))
        tx = call.build_transaction(
            {
                "from": self.owner.address,
                "nonce": self.w3.eth.get_transaction_count(self.owner.address, "pending"),
                "chainId": self.w3.eth.chain_id,
            }
        )
        if access_list:
            listed = self.w3.eth.create_access_list(
                {k: tx[k] for k in ("from", "to", "data", "value")}
            )
            tx["accessList"] = listed["accessList"]
            tx["gas"] = int(listed["gasUsed"] * 1.2) + 50_000
        raw = self.owner.sign_transaction(tx).raw_transaction
        receipt = self.w3.eth.wait_for_transaction_receipt(
            self.w3.eth.send_raw_transaction(raw), poll_latency=0.01
        )
        assert receipt["status"] == 1, "commitBatch failed"
        return int(receipt["gasUsed"])


def main() -> dict:
    args = parser(__doc__.splitlines()[0]).parse_args()
    out: dict = {"programs": PROGRAMS, "reply_payload_bytes": 32, "quick": args.quick}
    node = start_anvil(accounts=2)
    try:
        w3 = Web3(Web3.HTTPProvider(node.url, request_kwargs={"timeout": 120}))
        owner = Account.from_key(node.private_keys[0])
        for validators in (4, 16):
            progress(f"{validators} validators: deploying, creating {PROGRAMS} programs")
            bench = Bench(w3, owner, validators)
            first = bench.commit(bench.batch(bench.transitions(PROGRAMS)))
            out[f"gas_per_transition_first_commit_100x{validators}"] = round(first / PROGRAMS)
            for n in SIZES:
                gas = bench.commit(bench.batch(bench.transitions(n)))
                out[f"gas_commit_{n}x{validators}"] = gas
                out[f"gas_per_transition_{n}x{validators}"] = round(gas / n)
                progress(
                    f"{n} transitions x {validators} validators: {gas} gas ({gas / n:.0f}/transition)"
                )
            out[f"marginal_gas_per_transition_{validators}"] = round(
                (out[f"gas_commit_100x{validators}"] - out[f"gas_commit_10x{validators}"]) / 90
            )
            if validators == 4:
                gas = bench.commit(bench.batch(bench.transitions(PROGRAMS), burned=0))
                out["gas_per_transition_100x4_no_burn"] = round(gas / PROGRAMS)
                try:
                    gas = bench.commit(bench.batch(bench.transitions(PROGRAMS)), access_list=True)
                    out["gas_per_transition_100x4_access_list"] = round(gas / PROGRAMS)
                except Exception as exc:  # noqa: BLE001 - optional figure
                    progress(f"access-list variant skipped: {exc}")
        for n in SIZES:
            out[f"gas_per_signature_{n}"] = round(
                (out[f"gas_commit_{n}x16"] - out[f"gas_commit_{n}x4"]) / 12
            )
        out["gas_per_signature"] = out["gas_per_signature_100"]
    finally:
        node.stop()
    return emit("gas_commit", out)


if __name__ == "__main__":
    main()
