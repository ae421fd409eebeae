"""Typed synchronous bindings to the gexe contracts over web3.py (HTTPProvider).

Each binding wraps one deployed contract: reads are plain methods, writes take the sending
`LocalAccount`, sign locally (eth-account), wait for the receipt and return it. A revert
raises `ContractRevert` carrying the decoded custom error (e.g. `NotEnoughStake(...)`).
From trio, call these in `trio.to_thread.run_sync` or use `client.EthClient`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any, TypeVar

from eth_account.signers.local import LocalAccount
from eth_utils import to_checksum_address
from web3 import Web3
from web3.contract import Contract
from web3.contract.contract import ContractFunction
from web3.exceptions import ContractLogicError
from web3.logs import DISCARD
from web3.types import TxParams, TxReceipt

from .artifacts import DecodedError, decode_error, load_artifact
from .equivocation import EquivocationProof, sequencer_equivocation_args, sequencer_header_abi
from .structs import BatchCommitment, to_abi

if TYPE_CHECKING:
    from .injected import SequencerBlockHeader

T = TypeVar("T")


class ContractRevert(Exception):
    """A call or transaction to a gexe contract reverted."""

    def __init__(self, error: DecodedError | None, data: bytes, detail: str = "") -> None:
        self.error = error
        self.data = data
        self.name = error.name if error else None
        super().__init__(str(error) if error else detail or f"reverted (data 0x{data.hex()})")


def _revert_data(exc: ContractLogicError) -> bytes:
    data = exc.data
    if isinstance(data, dict):
        data = data.get("data")
    if isinstance(data, str) and data.startswith("0x"):
        return bytes.fromhex(data[2:])
    return b""


def reverting(fn: Callable[[], T]) -> T:
    """Run `fn`, turning web3's contract errors into `ContractRevert`."""
    try:
        return fn()
    except ContractLogicError as exc:
        data = _revert_data(exc)
        raise ContractRevert(decode_error(data), data, str(exc)) from exc


def transact(
    w3: Web3,
    call: ContractFunction,
    sender: LocalAccount,
    *,
    value: int = 0,
    gas: int | None = None,
) -> TxReceipt:
    """Sign and send `call` from `sender`, wait for it and return the receipt.

    Gas is estimated unless given (estimation runs the call, so a revert surfaces here with
    its decoded error). A mined transaction that failed raises `ContractRevert` too.
    """
    params: TxParams = {
        "from": sender.address,
        "value": value,
        "nonce": w3.eth.get_transaction_count(sender.address, "pending"),
        "chainId": w3.eth.chain_id,
    }
    if gas is not None:
        params["gas"] = gas
    tx = reverting(lambda: call.build_transaction(params))
    signed = sender.sign_transaction(tx)
    tx_hash = w3.eth.send_raw_transaction(signed.raw_transaction)
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, poll_latency=0.01)
    if receipt["status"] != 1:
        # Replay at the parent block with the same gas to learn why (a revert reason, or none
        # when it ran out of gas).
        replay = {k: tx[k] for k in ("from", "to", "data", "value", "gas") if k in tx}  # type: ignore[literal-required]
        try:
            w3.eth.call(replay, receipt["blockNumber"] - 1)  # type: ignore[arg-type]
        except ContractLogicError as exc:
            data = _revert_data(exc)
            raise ContractRevert(decode_error(data), data, str(exc)) from exc
        except Exception:  # noqa: BLE001 - e.g. out of gas: no revert data to decode
            pass
        raise ContractRevert(
            None, b"", f"transaction 0x{bytes(tx_hash).hex()} failed (out of gas?)"
        )
    return receipt


def deploy_contract(w3: Web3, name: str, sender: LocalAccount, *args: Any) -> str:
    """Deploy artifact `name` with constructor `args`; returns its address."""
    art = load_artifact(name)
    factory = w3.eth.contract(abi=art.abi_list(), bytecode=art.bytecode)
    receipt = transact(w3, factory.constructor(*args), sender)
    address = receipt["contractAddress"]
    assert address is not None
    return to_checksum_address(address)


def events(contract: Contract, receipt: TxReceipt, event: str) -> list[dict[str, Any]]:
    """Decoded `event` logs of `contract` in `receipt` (args only), in log order."""
    logs = getattr(contract.events, event)().process_receipt(receipt, errors=DISCARD)
    return [dict(log["args"]) for log in logs if log["address"] == contract.address]


@dataclass(frozen=True)
class Binding:
    """A deployed contract of a known artifact."""

    w3: Web3
    address: str
    artifact: str

    @cached_property
    def contract(self) -> Contract:
        abi = load_artifact(self.artifact).abi_list()
        return self.w3.eth.contract(address=to_checksum_address(self.address), abi=abi)

    def call(self, fn: str, *args: Any) -> Any:
        return reverting(lambda: getattr(self.contract.functions, fn)(*args).call())

    def send(
        self, sender: LocalAccount, fn: str, *args: Any, value: int = 0, gas: int | None = None
    ) -> TxReceipt:
        call = getattr(self.contract.functions, fn)(*args)
        return transact(self.w3, call, sender, value=value, gas=gas)

    def events(self, receipt: TxReceipt, event: str) -> list[dict[str, Any]]:
        return events(self.contract, receipt, event)


class WrappedVara(Binding):
    def __init__(self, w3: Web3, address: str) -> None:
        super().__init__(w3, address, "WrappedVara")

    def balance_of(self, account: str) -> int:
        return int(self.call("balanceOf", account))

    def mint(self, owner: LocalAccount, to: str, amount: int) -> TxReceipt:
        return self.send(owner, "mint", to, amount)

    def approve(self, holder: LocalAccount, spender: str, amount: int) -> TxReceipt:
        return self.send(holder, "approve", spender, amount)


@dataclass(frozen=True)
class OperatorInfo:
    """`Staking.operator(account)`: `release_era` is when the unbonding sum can be withdrawn
    (0 when nothing unbonds); `excluded` = left out of elections after a slash."""

    signer: str
    stake: int
    unbonding: int
    release_era: int
    excluded: bool


@dataclass(frozen=True)
class EraInfo:
    """`Router.eraInfo(index)`: the era's validator-set blob, total stake, start and reward
    pool (all zero for an era not started yet)."""

    validators_pointer: str
    total_stake: int
    start_block: int
    start_timestamp: int
    reward_pool: int


def _pairs(addresses: Sequence[str], amounts: Sequence[int]) -> list[tuple[str, int]]:
    return [(to_checksum_address(a), int(w)) for a, w in zip(addresses, amounts, strict=True)]


class Staking(Binding):
    def __init__(self, w3: Web3, address: str) -> None:
        super().__init__(w3, address, "Staking")

    def deposit(self, operator: LocalAccount, amount: int) -> TxReceipt:
        return self.send(operator, "deposit", amount)

    def register_validator(self, operator: LocalAccount, signer: str) -> TxReceipt:
        """Register or rotate the signing address (the new one counts from the next era)."""
        return self.send(operator, "registerValidator", signer)

    def unbond(self, operator: LocalAccount, amount: int) -> TxReceipt:
        return self.send(operator, "unbond", amount)

    def withdraw(self, operator: LocalAccount) -> TxReceipt:
        """Withdraw the unbonding sum (reverts `StillBonding(releaseEra)` before its era)."""
        return self.send(operator, "withdraw")

    def operator(self, account: str) -> OperatorInfo:
        signer, stake, unbonding, release, excluded = self.call("operator", account)
        return OperatorInfo(to_checksum_address(signer), stake, unbonding, release, excluded)

    def operator_of_signer(self, signer: str) -> str:
        return to_checksum_address(self.call("operatorOfSigner", signer))

    def current_era(self) -> int:
        return int(self.call("currentEra"))

    def unbonding_eras(self) -> int:
        return int(self.call("unbondingEras"))

    def elected(self) -> list[tuple[str, int]]:
        return [(to_checksum_address(s), int(w)) for s, w in self.call("electedValidators")]

    def era_operators(self, era: int) -> list[tuple[str, int]]:
        """Era `era`'s operators and snapshotted stakes, in validator-set order."""
        return _pairs(*self.call("eraOperators", era))

    def era_stake_of(self, era: int, operator: str) -> int:
        return int(self.call("eraStakeOf", era, operator))

    def readmit(self, owner: LocalAccount, operator: str) -> TxReceipt:
        return self.send(owner, "readmit", operator)


class Router(Binding):
    def __init__(self, w3: Web3, address: str) -> None:
        super().__init__(w3, address, "Router")

    def latest_committed_batch_hash(self) -> bytes:
        return bytes(self.call("latestCommittedBatchHash"))

    def code_state(self, code_id: bytes) -> int:
        return int(self.call("codeState", code_id))

    def mirror_impl(self) -> str:
        return to_checksum_address(self.call("mirrorImpl"))

    def validators(self) -> list[tuple[str, int]]:
        """The current era's set [(signer, stake)] in set order."""
        return _pairs(*self.call("validators"))

    def era_validators(self, era: int) -> list[tuple[str, int]]:
        """Era `era`'s set [(signer, stake)] in set order: who signs batches of its blocks."""
        return _pairs(*self.call("eraValidators", era))

    def era_index(self) -> int:
        return int(self.call("eraIndex"))

    def era_of_block(self, block_number: int) -> int:
        """The era whose set signs a batch for `block_number` (0: before the first era)."""
        return int(self.call("eraOfBlock", block_number))

    def era_info(self, era: int) -> EraInfo:
        pointer, total, start_block, start_ts, pool = self.call("eraInfo", era)
        return EraInfo(to_checksum_address(pointer), total, start_block, start_ts, pool)

    def era_grace_blocks(self) -> int:
        return int(self.call("eraGraceBlocks"))

    def era_closed(self, era: int) -> bool:
        return bool(self.call("eraClosed", era))

    def pending_rewards(self, operator: str, era: int) -> int:
        return int(self.call("pendingRewards", operator, era))

    def rewards_claimed(self, operator: str, era: int) -> bool:
        return bool(self.call("rewardsClaimed", operator, era))

    def rewards_outstanding(self) -> int:
        return int(self.call("rewardsOutstanding"))

    def claim_rewards(self, operator: LocalAccount, eras: Sequence[int]) -> TxReceipt:
        """Claim the operator's share of each closed era in `eras` (paid in WVARA)."""
        return self.send(operator, "claimRewards", list(eras))

    def request_code_validation(
        self, sender: LocalAccount, code_id: bytes, code: bytes
    ) -> TxReceipt:
        return self.send(sender, "requestCodeValidation", code_id, code)

    def create_program(
        self,
        sender: LocalAccount,
        code_id: bytes,
        salt: bytes,
        initializer: str | None = None,
    ) -> str:
        """Create a program; returns its actor id (Mirror address)."""
        receipt = self.send(sender, "createProgram", code_id, salt, initializer or "0x" + "00" * 20)
        return to_checksum_address(self.events(receipt, "ProgramCreated")[0]["actorId"])

    def create_program_with_init(
        self,
        sender: LocalAccount,
        code_id: bytes,
        salt: bytes,
        init_payload: bytes = b"",
        *,
        call_reply: bool = False,
        initial_executable_balance: int = 0,
        value: int = 0,
    ) -> tuple[str, bytes]:
        """Create a program and queue its init message; returns (actor id, init message id)."""
        receipt = self.send(
            sender,
            "createProgramWithInit",
            code_id,
            salt,
            init_payload,
            call_reply,
            initial_executable_balance,
            value=value,
        )
        actor = to_checksum_address(self.events(receipt, "ProgramCreated")[0]["actorId"])
        queued = Mirror(self.w3, actor).events(receipt, "MessageQueueingRequested")
        return actor, bytes(queued[0]["id"])

    def start_next_era(self, sender: LocalAccount) -> TxReceipt:
        return self.send(sender, "startNextEra")

    def commit_batch(
        self,
        sender: LocalAccount,
        batch: BatchCommitment,
        signatures: Sequence[bytes],
        gas: int | None = None,
    ) -> TxReceipt:
        return self.send(sender, "commitBatch", to_abi(batch), list(signatures), gas=gas)


class Slasher(Binding):
    def __init__(self, w3: Web3, address: str) -> None:
        super().__init__(w3, address, "Slasher")

    def report_equivocation(self, reporter: LocalAccount, proof: EquivocationProof) -> TxReceipt:
        """Submit an equivocation proof (`equivocation.equivocation_proof`); the reporter gets
        `reporterRewardFraction` of what is slashed."""
        return self.send(reporter, "reportEquivocation", *proof.args())

    def report_sequencer_equivocation(
        self,
        sender: LocalAccount,
        first: SequencerBlockHeader,
        first_sig: bytes,
        second: SequencerBlockHeader,
        second_sig: bytes,
    ) -> TxReceipt:
        """Prove that one key signed two different sequencer blocks for the same
        `(anchor, anchor_number, height)` (`injected.SequencerBlockHeader`); the sender gets
        `reporterRewardFraction` of what is slashed. Raises `NotAnEquivocation` before sending
        when the headers do not make a proof, `ContractRevert` when the contract refuses it."""
        args = sequencer_equivocation_args(first, first_sig, second, second_sig)
        return self.send(sender, "reportSequencerEquivocation", *args)

    def sequencer_block_hash(self, header: SequencerBlockHeader) -> bytes:
        """The header's EIP-712 digest under the Router's domain (what the sequencer signs)."""
        return bytes(self.call("sequencerBlockHash", sequencer_header_abi(header)))

    def proof_used(self, key: bytes) -> bool:
        return bool(self.call("proofUsed", key))

    def slash_fraction(self) -> int:
        return int(self.call("slashFraction"))

    def reporter_reward_fraction(self) -> int:
        return int(self.call("reporterRewardFraction"))

    def treasury(self) -> str:
        return to_checksum_address(self.call("treasury"))


class Mirror(Binding):
    def __init__(self, w3: Web3, address: str) -> None:
        super().__init__(w3, address, "Mirror")

    def state_hash(self) -> bytes:
        return bytes(self.call("stateHash"))

    def nonce(self) -> int:
        return int(self.call("nonce"))

    def send_message(
        self, sender: LocalAccount, payload: bytes, call_reply: bool = False, value: int = 0
    ) -> tuple[TxReceipt, bytes]:
        """Send a message; returns (receipt, message id)."""
        receipt = self.send(sender, "sendMessage", payload, call_reply, value=value)
        return receipt, bytes(self.events(receipt, "MessageQueueingRequested")[0]["id"])
