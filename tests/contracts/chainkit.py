"""Helpers for the contract tests: a deployed gexe network on anvil and batch plumbing."""

from __future__ import annotations

import contextlib
import os
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from gexe.contracts import (
    BatchCommitment,
    ChainCommitment,
    CodeCommitment,
    ContractRevert,
    Deployment,
    Message,
    Mirror,
    ReplyDetails,
    Router,
    Slasher,
    Staking,
    StateTransition,
    WrappedVara,
    batch_hash,
    code_id,
    sign_batch,
    signatures_in_set_order,
)
from gexe.contracts.bindings import Binding, deploy_contract, reverting
from web3 import Web3
from web3.types import TxReceipt

# Stakes of the four genesis validators: A+B is exactly 2/3 of the total, A+B+D just above.
STAKES = (300, 300, 299, 1)
TOTAL_STAKE = sum(STAKES)


def rand32(rng: random.Random | None = None) -> bytes:
    return (rng or random).randbytes(32) if rng else os.urandom(32)


@contextlib.contextmanager
def reverts(name: str) -> Iterator[list[ContractRevert]]:
    """Expect a ContractRevert whose decoded error is `name`."""
    caught: list[ContractRevert] = []
    try:
        yield caught
    except ContractRevert as exc:
        caught.append(exc)
        assert exc.name == name, f"expected {name}, got {exc} (data 0x{exc.data.hex()})"
    else:
        raise AssertionError(f"expected revert {name}, nothing reverted")


@dataclass
class Net:
    """A gexe network deployed on anvil, with its genesis validators' keys."""

    w3: Web3
    owner: LocalAccount
    users: list[LocalAccount]
    validators: list[LocalAccount]
    deployment: Deployment
    chain_id: int
    code: bytes = bytes(32)  # a code id validated at session start

    @property
    def router(self) -> Router:
        return Router(self.w3, self.deployment.router)

    @property
    def wvara(self) -> WrappedVara:
        return WrappedVara(self.w3, self.deployment.wrapped_vara)

    @property
    def staking(self) -> Staking:
        return Staking(self.w3, self.deployment.staking)

    @property
    def slasher(self) -> Slasher:
        return Slasher(self.w3, self.deployment.slasher)

    def mirror(self, actor_id: str) -> Mirror:
        return Mirror(self.w3, actor_id)

    def deploy(self, name: str, *args: Any) -> Binding:
        return Binding(self.w3, deploy_contract(self.w3, name, self.owner, *args), name)

    # -- blocks and batches --

    def mine(self, blocks: int = 1) -> None:
        self.w3.provider.make_request("anvil_mine", [hex(blocks)])

    def next_era(self, sender: LocalAccount | None = None) -> TxReceipt:
        """Let the era's time pass and start the next one (its first block is the receipt's)."""
        length = int(self.router.call("eraLength"))
        self.w3.provider.make_request("evm_increaseTime", [length])
        self.mine()
        return self.router.start_next_era(sender or self.owner)

    def block(self, number: int) -> tuple[bytes, int]:
        return bytes(self.w3.eth.get_block(number)["hash"]), number

    def new_operator(self, stake: int, signer: str | bool | None = None) -> LocalAccount:
        """A funded account that stakes `stake` WVARA and registers `signer` (default: itself;
        False: none)."""
        op = self.new_account()
        self.wvara.mint(self.owner, op.address, stake)
        self.wvara.approve(op, self.deployment.staking, stake)
        self.staking.deposit(op, stake)
        if signer is not False:
            self.staking.register_validator(op, signer if isinstance(signer, str) else op.address)
        return op

    def recent_block(self) -> tuple[bytes, int]:
        """(hash, number) of the block before the latest: a valid `blockHash` for a batch sent
        now (eth_estimateGas runs with block.number = latest, where blockhash(latest) is 0)."""
        block = self.w3.eth.get_block(self.w3.eth.block_number - 1)
        return bytes(block["hash"]), int(block["number"])

    def batch(
        self,
        transitions: Sequence[StateTransition] = (),
        codes: Sequence[CodeCommitment] = (),
        *,
        chain: bool | None = None,
        head: bytes | None = None,
        previous: bytes | None = None,
        block: tuple[bytes, int] | None = None,
        burned: int = 0,
    ) -> BatchCommitment:
        block_hash, number = block or self.recent_block()
        with_chain = bool(transitions) if chain is None else chain
        chains = (
            (ChainCommitment(tuple(transitions), head or os.urandom(32)),) if with_chain else ()
        )
        prev = self.router.latest_committed_batch_hash() if previous is None else previous
        return BatchCommitment(block_hash, number, prev, chains, tuple(codes), burned)

    def signatures(
        self,
        batch: BatchCommitment,
        signers: Sequence[LocalAccount] | None = None,
        *,
        chain_id: int | None = None,
        router: str | None = None,
        ordered: bool = True,
    ) -> list[bytes]:
        signers = self.validators if signers is None else signers
        h = batch_hash(batch)
        cid = self.chain_id if chain_id is None else chain_id
        verifying = router or self.deployment.router
        sigs = {s.address: sign_batch(s.key, h, cid, verifying) for s in signers}
        if not ordered:
            return [sigs[s.address] for s in signers]
        # The set of the era the batch's block belongs to (the current one if none).
        era = self.router.era_of_block(batch.block_number)
        members = self.router.era_validators(era) if era else self.router.validators()
        return signatures_in_set_order(sigs, [v for v, _ in members])

    def commit(
        self,
        batch: BatchCommitment,
        signers: Sequence[LocalAccount] | None = None,
        *,
        signatures: Sequence[bytes] | None = None,
        sender: LocalAccount | None = None,
        gas: int | None = None,
    ) -> TxReceipt:
        sigs = self.signatures(batch, signers) if signatures is None else list(signatures)
        return self.router.commit_batch(sender or self.owner, batch, sigs, gas=gas)

    def commit_transitions(self, *transitions: StateTransition, **kw: Any) -> TxReceipt:
        return self.commit(self.batch(transitions), **kw)

    # -- codes and programs --

    def validated_code(self, code: bytes | None = None) -> bytes:
        code = code or b"\x00asm" + os.urandom(64)
        cid = code_id(code)
        self.router.request_code_validation(self.owner, cid, code)
        self.commit(self.batch(codes=[CodeCommitment(cid, True)]))
        return cid

    def program(
        self,
        code: bytes | None = None,
        *,
        salt: bytes | None = None,
        creator: LocalAccount | None = None,
        init: bool = True,
    ) -> Mirror:
        """A created program (with its init message sent, so anyone may message it)."""
        cid = code if code is not None else self.code
        creator = creator or self.owner
        salt = salt or os.urandom(32)
        if init:
            actor, _ = self.router.create_program_with_init(creator, cid, salt, b"init")
        else:
            actor = self.router.create_program(creator, cid, salt)
        return self.mirror(actor)

    def transition(self, mirror: Mirror, *messages: Message, **kw: Any) -> StateTransition:
        return StateTransition(
            mirror.address, kw.pop("state", None) or os.urandom(32), messages=messages, **kw
        )

    def fund_pool(self, mirror: Mirror, wei: int) -> None:
        """Put `wei` into the Router's pool (a plain top-up of the program's owned balance)."""
        tx = {
            "to": mirror.address,
            "value": wei,
            "gas": 100_000,
            "gasPrice": self.w3.eth.gas_price,
            "nonce": self.w3.eth.get_transaction_count(self.owner.address, "pending"),
            "chainId": self.chain_id,
        }
        raw = self.owner.sign_transaction(tx).raw_transaction
        self.w3.eth.wait_for_transaction_receipt(self.w3.eth.send_raw_transaction(raw))

    def raw_call(
        self, to: str, data: bytes = b"", *, value: int = 0, sender: str | None = None
    ) -> bytes:
        """eth_call with raw calldata; a revert raises ContractRevert (decoded)."""
        tx = {"to": to, "data": data, "value": value, "from": sender or self.owner.address}
        return bytes(reverting(lambda: self.w3.eth.call(tx)))  # type: ignore[arg-type]

    def new_account(self, eth: int = 10**18) -> LocalAccount:
        acct = Account.create()
        from gexe.contracts.deploy import fund_eth

        fund_eth(self.w3, self.owner, acct.address, eth)
        return acct


def reply(
    to: str,
    reply_to: bytes,
    payload: bytes = b"",
    *,
    value: int = 0,
    code: bytes = bytes(4),
    call: bool = False,
    message_id: bytes | None = None,
) -> Message:
    return Message(
        message_id or os.urandom(32), to, payload, value, ReplyDetails(reply_to, code), call
    )


def message(to: str, payload: bytes = b"", *, value: int = 0, call: bool = False) -> Message:
    return Message(os.urandom(32), to, payload, value, ReplyDetails(), call)
