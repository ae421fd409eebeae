"""Deploy and wire a gexe network's contracts, register validators, start the first era.

Order: WrappedVara(owner) → Staking(owner, wvara, unbondingEras, minStake, maxValidators) →
Router(owner, wvara, staking, eraLength, eraGraceBlocks) → Staking.setRouter(router) →
Mirror(router) implementation → Router.setMirror(impl) → Slasher(owner, router,
slashFraction, reporterRewardFraction, treasury) → Staking.setSlasher(slasher). Validators:
the owner mints WVARA to each operator, the operator approves Staking, deposits and registers
its signing address; then the owner starts era 1, which snapshots the elected set.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from eth_account.signers.local import LocalAccount
from web3 import Web3

from .bindings import Mirror, Router, Slasher, Staking, WrappedVara, deploy_contract, transact

WVARA_UNIT = 10**12  # WrappedVara has 12 decimals, like VARA


@dataclass(frozen=True)
class NetworkConfig:
    """Parameters of a network's contracts (defaults suit a dev network).

    Unbonding is measured in eras (`unbonding_eras`, ≥ 2). `unbonding_period` (seconds) is
    the older way to say it and is only used when `unbonding_eras` is None: it becomes
    ceil(unbonding_period / era_length) eras, at least 2.
    """

    era_length: int = 3600  # seconds; the minimum time between era starts
    unbonding_period: int = 3 * 3600  # seconds; see `unbonding_eras`
    min_stake: int = 1 * WVARA_UNIT
    max_validators: int = 64
    # Blocks after an era start during which batches for the previous era's blocks are still
    # accepted (signed by that era's set). More than 256 buys nothing: blockhash() forgets.
    era_grace_blocks: int = 64
    unbonding_eras: int | None = None
    slash_fraction: int = 1000  # basis points of the offender's stake (active + unbonding)
    reporter_fraction: int = 1000  # basis points of the slashed amount, paid to the reporter
    treasury: str | None = None  # receives the rest of a slash; None: the owner

    @property
    def unbonding_eras_effective(self) -> int:
        if self.unbonding_eras is not None:
            return self.unbonding_eras
        era = max(1, self.era_length)
        return max(2, -(-self.unbonding_period // era))


@dataclass(frozen=True)
class Deployment:
    """Addresses of one gexe network's contracts."""

    chain_id: int
    wrapped_vara: str
    staking: str
    mirror_impl: str
    router: str
    slasher: str = ""

    def bind(self, w3: Web3) -> Contracts:
        return Contracts(
            WrappedVara(w3, self.wrapped_vara),
            Staking(w3, self.staking),
            Router(w3, self.router),
            Slasher(w3, self.slasher) if self.slasher else None,
        )

    def mirror(self, w3: Web3, actor_id: str) -> Mirror:
        return Mirror(w3, actor_id)


@dataclass(frozen=True)
class Contracts:
    wrapped_vara: WrappedVara
    staking: Staking
    router: Router
    slasher: Slasher | None = None


@dataclass(frozen=True)
class Operator:
    """An operator account staking `stake` WVARA for the validator key `signer`."""

    account: LocalAccount
    signer: str
    stake: int


def deploy(w3: Web3, owner: LocalAccount, config: NetworkConfig = NetworkConfig()) -> Deployment:
    """Deploy WVARA, Staking, Router, the Mirror implementation and the Slasher, and wire
    them."""
    wvara = deploy_contract(w3, "WrappedVara", owner, owner.address)
    staking = deploy_contract(
        w3,
        "Staking",
        owner,
        owner.address,
        wvara,
        config.unbonding_eras_effective,
        config.min_stake,
        config.max_validators,
    )
    router = deploy_contract(
        w3,
        "Router",
        owner,
        owner.address,
        wvara,
        staking,
        config.era_length,
        config.era_grace_blocks,
    )
    Staking(w3, staking).send(owner, "setRouter", router)
    mirror_impl = deploy_contract(w3, "Mirror", owner, router)
    Router(w3, router).send(owner, "setMirror", mirror_impl)
    slasher = deploy_contract(
        w3,
        "Slasher",
        owner,
        owner.address,
        router,
        config.slash_fraction,
        config.reporter_fraction,
        config.treasury or owner.address,
    )
    Staking(w3, staking).send(owner, "setSlasher", slasher)
    return Deployment(w3.eth.chain_id, wvara, staking, mirror_impl, router, slasher)


def fund_eth(w3: Web3, sender: LocalAccount, to: str, amount_wei: int) -> None:
    """Send plain wei (e.g. gas money for freshly generated validator keys)."""
    tx = {
        "to": to,
        "value": amount_wei,
        "gas": 21_000,
        "gasPrice": w3.eth.gas_price,
        "nonce": w3.eth.get_transaction_count(sender.address, "pending"),
        "chainId": w3.eth.chain_id,
    }
    w3.eth.wait_for_transaction_receipt(
        w3.eth.send_raw_transaction(sender.sign_transaction(tx).raw_transaction)
    )


def register_validators(
    w3: Web3, deployment: Deployment, owner: LocalAccount, operators: Sequence[Operator]
) -> None:
    """Mint each operator its stake, deposit it and register its signing address."""
    c = deployment.bind(w3)
    for op in operators:
        c.wrapped_vara.mint(owner, op.account.address, op.stake)
        c.wrapped_vara.approve(op.account, deployment.staking, op.stake)
        c.staking.deposit(op.account, op.stake)
        c.staking.register_validator(op.account, op.signer)


def start_next_era(w3: Web3, deployment: Deployment, sender: LocalAccount) -> list[tuple[str, int]]:
    """Start the next era; returns its validator set [(signer, stake)] in set order."""
    router = Router(w3, deployment.router)
    transact(w3, router.contract.functions.startNextEra(), sender)
    return router.validators()


def deploy_network(
    w3: Web3,
    owner: LocalAccount,
    validators: Sequence[LocalAccount],
    stake: int | Sequence[int] = 1000 * WVARA_UNIT,
    config: NetworkConfig = NetworkConfig(),
    fund_wei: int = 10**18,
) -> Deployment:
    """Everything a dev network needs: contracts, `validators` staking for themselves
    (each its own operator; funded with `fund_wei` for gas), era 1 started."""
    deployment = deploy(w3, owner, config)
    stakes = [stake] * len(validators) if isinstance(stake, int) else list(stake)
    for v in validators:
        if w3.eth.get_balance(v.address) < fund_wei // 2:
            fund_eth(w3, owner, v.address, fund_wei)
    operators = [Operator(v, v.address, s) for v, s in zip(validators, stakes, strict=True)]
    register_validators(w3, deployment, owner, operators)
    start_next_era(w3, deployment, owner)
    return deployment
