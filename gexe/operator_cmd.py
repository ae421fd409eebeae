"""`gexe operator stake|unstake|withdraw|register|claim|status`: run a validator operator's
stake on a gexe network.

An operator deposits WVARA into the network's Staking contract (its address comes from
`Router.staking()`), names the signing address whose batch signatures count for that stake
(`registerValidator`; registering again rotates it), is elected at the next era start when
its stake is among the top `maxValidators`, unbonds (`unbond`; withdrawable once
`unbondingEras` more eras have started) and claims its share of each closed era's rewards
(`Router.claimRewards`). `status` reads all of it, no key needed when OPERATOR is given.

Amounts are WVARA base units (12 decimals), as in the other commands. Every failure the
operator can fix is one line; reverts the Staking contract or the Router raise are decoded
by name and explained.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._errors import UserError
from .chain_cmd import (
    Chain,
    add_chain_options,
    chain_errors,
    connect,
    ensure_wvara,
    hx,
    keystore_dir,
    load_signer,
    parse_address,
    revert_message,
    uint,
)

if TYPE_CHECKING:
    from gexe.contracts import ContractRevert, OperatorInfo, Staking, WrappedVara

UINT96_MAX = (1 << 96) - 1
SCAN_ERAS = 256  # eras back from the current one that status/claim look at for rewards
ZERO_ADDRESS = "0x" + "00" * 20


def add_operator_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    op = sub.add_parser(
        "operator",
        help="stake WVARA, register a validator signer, unbond, claim rewards, show status",
        description="Run a validator operator's stake: the keystore key (--from) is the "
        "operator. Amounts are WVARA base units.",
    )
    osub = op.add_subparsers(dest="operator_command", required=True, metavar="ACTION")

    def amount_arg(p: argparse.ArgumentParser, what: str) -> None:
        p.add_argument(
            "amount",
            type=uint("AMOUNT", "WVARA base units", UINT96_MAX),
            metavar="AMOUNT",
            help=f"{what}, in WVARA base units (12 decimals)",
        )

    def json_arg(p: argparse.ArgumentParser) -> None:
        p.add_argument("--json", action="store_true", help="print one JSON object")

    s = osub.add_parser(
        "stake",
        help="deposit WVARA into Staking (approves it first if needed)",
        description="Approve Staking for AMOUNT WVARA when the allowance is short, then "
        "Staking.deposit(AMOUNT). The stake counts from the next era's election, once a "
        "signer is registered (`gexe operator register`).",
    )
    amount_arg(s, "stake to add")
    json_arg(s)
    add_chain_options(s, signer=True)
    s.set_defaults(func=cmd_stake)

    u = osub.add_parser(
        "unstake",
        help="unbond part of the active stake (withdraw it later)",
        description="Staking.unbond(AMOUNT): the amount leaves the next election at once and "
        "can be withdrawn once `unbondingEras` more eras have started (a new unbond restarts "
        "the delay for the whole unbonding sum).",
    )
    amount_arg(u, "stake to unbond")
    json_arg(u)
    add_chain_options(u, signer=True)
    u.set_defaults(func=cmd_unstake)

    w = osub.add_parser(
        "withdraw",
        help="withdraw the unbonded stake once its release era has started",
        description="Staking.withdraw(): the whole unbonding sum, once its release era "
        "has started.",
    )
    json_arg(w)
    add_chain_options(w, signer=True)
    w.set_defaults(func=cmd_withdraw)

    r = osub.add_parser(
        "register",
        help="register (or rotate) the validator signing address of the operator",
        description="Staking.registerValidator(SIGNER): the address whose batch signatures "
        "count for the operator's stake (default: the operator itself). Registering again "
        "rotates it; the new signer counts from the next era.",
    )
    r.add_argument(
        "signer",
        nargs="?",
        default=None,
        metavar="SIGNER_ADDRESS",
        help="the validator's signing address (default: the operator's own address)",
    )
    json_arg(r)
    add_chain_options(r, signer=True)
    r.set_defaults(func=cmd_register)

    c = osub.add_parser(
        "claim",
        help="claim the operator's rewards of closed eras",
        description="Router.claimRewards(ERAS): the operator's share of each closed era's "
        "reward pool, paid in WVARA. Default: every closed era with pending rewards "
        f"(among the last {SCAN_ERAS}).",
    )
    c.add_argument(
        "--era",
        dest="eras",
        action="append",
        type=uint("--era", "an era index", UINT96_MAX),
        default=[],
        metavar="N",
        help="claim era N (repeat for several; default: every closed era with rewards)",
    )
    json_arg(c)
    add_chain_options(c, signer=True)
    c.set_defaults(func=cmd_claim)

    st = osub.add_parser(
        "status",
        help="print an operator's stake, signer, era, election and pending rewards",
        description="Read-only. OPERATOR defaults to --from, or the keystore's only key "
        "(no password needed).",
    )
    st.add_argument(
        "operator",
        nargs="?",
        default=None,
        metavar="OPERATOR",
        help="operator address (default: --from or the keystore's only key)",
    )
    json_arg(st)
    add_chain_options(st, signer=False)
    k = st.add_argument_group("operator key (when OPERATOR is not given)")
    k.add_argument("--keystore", type=Path, default=None, metavar="DIR", help="keystore directory")
    k.add_argument("--from", dest="sender", default=None, metavar="ADDR", help="the operator")
    st.set_defaults(func=cmd_status)


# ------------------------------------------------------------------ plumbing


@dataclass
class Ops:
    """The chain plus the Staking and WVARA contracts of its Router."""

    chain: Chain
    staking: Staking
    wvara: WrappedVara

    def era(self) -> int:
        return self.chain.router.era_index()

    def info(self, operator: str) -> OperatorInfo:
        return self.staking.operator(operator)

    def is_operator(self, operator: str) -> bool:
        """Ever deposited (Staking keeps every operator that did in `operators()`)."""
        return operator in {_cs(a) for a in self.staking.call("operators")}

    def era_length(self) -> int:
        return int(self.chain.router.call("eraLength"))

    def next_era_at(self, era: int) -> int:
        """Earliest timestamp the era after `era` may start (0 before the first era)."""
        if era == 0:
            return 0
        return self.chain.router.era_info(era).start_timestamp + self.era_length()


def _cs(address: str) -> str:
    from eth_utils import to_checksum_address

    return to_checksum_address(address)


def open_ops(args: argparse.Namespace) -> Ops:
    from gexe.contracts import Staking, WrappedVara

    chain = connect(args)
    try:
        staking = _cs(chain.router.call("staking"))
    except Exception:  # noqa: BLE001 - a Router built before eras and staking
        raise UserError(
            f"the Router at {chain.router.address} has no staking() view; "
            "it is not a staking gexe network"
        ) from None
    return Ops(chain, Staking(chain.w3, staking), WrappedVara(chain.w3, chain.wvara_address()))


def _when(ts: int) -> str:
    if ts <= 0:
        return "-"
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _stake_first() -> str:
    return "stake first with `gexe operator stake AMOUNT`"


def _operator_revert(e: ContractRevert, action: str, ops: Ops, operator: str) -> str:
    """A revert of an operator's transaction as one line, explained."""
    err = e.error
    name = err.name if err else None
    a = list(err.args) if err else []
    if name == "NotAnOperator":
        return f"{operator} is not an operator (it never staked); {_stake_first()}"
    if name == "SignerTaken":
        return (
            f"signer {_cs(a[0])} is already registered by operator {_cs(a[1])}; "
            "give another SIGNER_ADDRESS"
        )
    if name == "StillBonding":
        return (
            f"still bonding until era {a[0]} (current era {ops.era()}); withdraw once era "
            f"{a[0]} has started (the next era may start from "
            f"{_when(ops.next_era_at(ops.era()))})"
        )
    if name == "NothingToWithdraw":
        return f"nothing to withdraw: {operator} has no unbonding stake (unbond with `unstake`)"
    if name == "InsufficientStake":
        return f"{operator} has {a[0]} active stake, cannot unbond {a[1]}"
    if name == "ZeroAmount":
        return "AMOUNT is 0; give a positive amount of WVARA base units"
    if name == "StakeOverflow":
        return f"the stake would exceed the contract's limit ({a[0]} > 2^96 - 1)"
    if name == "EraNotClosed":
        return f"era {a[0]} is not closed yet; its rewards can be claimed once it is"
    if name == "RewardsAlreadyClaimed":
        return f"the rewards of era {a[0]} were already claimed by {_cs(a[1])}"
    if name == "NotAValidatorOfEra":
        return f"{_cs(a[1])} was not an elected operator of era {a[0]}; it has no rewards there"
    if name == "ZeroAddress":
        return "the signer is the zero address; give a real SIGNER_ADDRESS"
    return revert_message(e, action)


@contextlib.contextmanager
def operator_reverts(action: str, ops: Ops, operator: str) -> Iterator[None]:
    from gexe.contracts import ContractRevert

    try:
        yield
    except ContractRevert as e:
        raise UserError(_operator_revert(e, action, ops, operator)) from None


def _status_operator(args: argparse.Namespace) -> str:
    """OPERATOR, else --from, else the keystore's only key (its address; nothing decrypted)."""
    if args.operator:
        return parse_address(args.operator, "OPERATOR")
    if args.sender:
        return parse_address(args.sender, "--from")
    from gexe.node.keystore import KeystoreError, list_keys

    directory = keystore_dir(args)
    try:
        keys = list_keys(directory)
    except KeystoreError as e:
        raise UserError(str(e)) from None
    if len(keys) != 1:
        have = "no keys" if not keys else f"{len(keys)} keys"
        raise UserError(
            f"{have} in {directory}; give the OPERATOR address (or --from ADDR / --keystore DIR)"
        )
    return _cs(keys[0].address)


def _out(args: argparse.Namespace, data: dict[str, Any], lines: list[str]) -> None:
    if args.json:
        print(json.dumps(data))
    else:
        for line in lines:
            print(line)


def _rewards(ops: Ops, operator: str, current: int) -> list[dict[str, Any]]:
    """Eras (among the last SCAN_ERAS) where `operator` has unclaimed rewards."""
    router = ops.chain.router
    out = []
    for era in range(max(1, current - SCAN_ERAS + 1), current + 1):
        amount = router.pending_rewards(operator, era)
        if amount:
            out.append({"era": era, "amount": amount, "closed": router.era_closed(era)})
    return out


def _why_not_elected(ops: Ops, info: OperatorInfo, signer: str | None) -> str:
    """Why an operator would not be elected if the next era started now."""
    if info.excluded:
        return "excluded after a slash (the Staking owner must readmit it)"
    if info.stake == 0:
        return "no active stake"
    if signer is None:
        return "no signer registered"
    floor = max(1, int(ops.staking.call("minStake")))
    if info.stake < floor:
        return f"stake {info.stake} is below the minimum {floor}"
    cap = int(ops.staking.call("maxValidators"))
    return f"stake {info.stake} is not among the top {cap}"


# ------------------------------------------------------------------ commands


@chain_errors
def cmd_stake(args: argparse.Namespace) -> int:
    if args.amount == 0:
        raise UserError("AMOUNT is 0; give a positive amount of WVARA base units")
    ops = open_ops(args)
    signer = load_signer(args)
    me = signer.address
    ensure_wvara(ops.chain, signer, ops.staking.address, args.amount, "staking")
    with operator_reverts("Staking.deposit", ops, me):
        receipt = ops.staking.deposit(signer, args.amount)
    info = ops.info(me)
    era = ops.era()
    data = {
        "operator": me,
        "deposited": args.amount,
        "stake": info.stake,
        "signer": None if info.signer == ZERO_ADDRESS else info.signer,
        "counts_from_era": era + 1,
        "tx": hx(receipt["transactionHash"]),
        "block": int(receipt["blockNumber"]),
    }
    lines = [
        f"operator    {me}",
        f"deposited   {args.amount}",
        f"stake       {info.stake} (active)",
        f"tx          {data['tx']}",
        f"block       {data['block']}",
    ]
    if data["signer"]:
        lines.append(f"note        counts from the election of era {era + 1}")
    else:
        lines.append(
            "note        no signer registered: register one (`gexe operator register "
            "[SIGNER_ADDRESS]`) to stand in the next election"
        )
    _out(args, data, lines)
    return 0


@chain_errors
def cmd_unstake(args: argparse.Namespace) -> int:
    if args.amount == 0:
        raise UserError("AMOUNT is 0; give a positive amount of WVARA base units")
    ops = open_ops(args)
    signer = load_signer(args)
    me = signer.address
    info = ops.info(me)
    if info.stake == 0 and not ops.is_operator(me):
        raise UserError(f"{me} is not an operator (it never staked); {_stake_first()}")
    if args.amount > info.stake:
        raise UserError(
            f"{me} has {info.stake} active stake, cannot unbond {args.amount}"
            + (f" ({info.unbonding} already unbonding)" if info.unbonding else "")
        )
    with operator_reverts("Staking.unbond", ops, me):
        receipt = ops.staking.unbond(signer, args.amount)
    info = ops.info(me)
    data = {
        "operator": me,
        "unbonded": args.amount,
        "stake": info.stake,
        "unbonding": info.unbonding,
        "release_era": info.release_era,
        "tx": hx(receipt["transactionHash"]),
        "block": int(receipt["blockNumber"]),
    }
    _out(
        args,
        data,
        [
            f"operator    {me}",
            f"unbonded    {args.amount}",
            f"stake       {info.stake} (active)",
            f"unbonding   {info.unbonding}, withdrawable from era {info.release_era} "
            f"(current era {ops.era()})",
            f"tx          {data['tx']}",
            f"block       {data['block']}",
        ],
    )
    return 0


@chain_errors
def cmd_withdraw(args: argparse.Namespace) -> int:
    ops = open_ops(args)
    signer = load_signer(args)
    me = signer.address
    info = ops.info(me)
    if info.unbonding == 0:
        if info.stake == 0 and not ops.is_operator(me):
            raise UserError(f"{me} is not an operator (it never staked); {_stake_first()}")
        raise UserError(
            f"nothing to withdraw: {me} has no unbonding stake "
            "(unbond some with `gexe operator unstake AMOUNT`)"
        )
    before = ops.wvara.balance_of(me)
    # StillBonding(releaseEra) surfaces from the gas estimate and is explained by name
    with operator_reverts("Staking.withdraw", ops, me):
        receipt = ops.staking.withdraw(signer)
    got = ops.wvara.balance_of(me) - before
    data = {
        "operator": me,
        "withdrawn": info.unbonding,
        "wvara_balance": before + got,
        "tx": hx(receipt["transactionHash"]),
        "block": int(receipt["blockNumber"]),
    }
    _out(
        args,
        data,
        [
            f"operator    {me}",
            f"withdrawn   {info.unbonding}",
            f"balance     {data['wvara_balance']} WVARA",
            f"tx          {data['tx']}",
            f"block       {data['block']}",
        ],
    )
    return 0


@chain_errors
def cmd_register(args: argparse.Namespace) -> int:
    new = parse_address(args.signer, "SIGNER_ADDRESS") if args.signer else None
    ops = open_ops(args)
    signer = load_signer(args)
    me = signer.address
    new = new or me
    if int(new, 16) == 0:
        raise UserError("the signer is the zero address; give a real SIGNER_ADDRESS")
    info = ops.info(me)
    if info.stake == 0 and info.unbonding == 0 and not ops.is_operator(me):
        raise UserError(f"{me} is not an operator (it never staked); {_stake_first()}")
    holder = ops.staking.operator_of_signer(new)
    if int(holder, 16) != 0 and holder != me:
        raise UserError(
            f"signer {new} is already registered by operator {holder}; give another SIGNER_ADDRESS"
        )
    old = None if info.signer == ZERO_ADDRESS else info.signer
    with operator_reverts("Staking.registerValidator", ops, me):
        receipt = ops.staking.register_validator(signer, new)
    era = ops.era()
    data = {
        "operator": me,
        "signer": new,
        "previous_signer": old,
        "counts_from_era": era + 1,
        "tx": hx(receipt["transactionHash"]),
        "block": int(receipt["blockNumber"]),
    }
    lines = [f"operator    {me}", f"signer      {new}"]
    if old and old != new:
        lines.append(f"rotated     from {old} (era {era} keeps it; {new} from era {era + 1})")
    elif old == new:
        lines.append("note        unchanged (already this operator's signer)")
    else:
        lines.append(f"note        counts from the election of era {era + 1}")
    lines += [f"tx          {data['tx']}", f"block       {data['block']}"]
    _out(args, data, lines)
    return 0


@chain_errors
def cmd_claim(args: argparse.Namespace) -> int:
    ops = open_ops(args)
    signer = load_signer(args)
    me = signer.address
    router = ops.chain.router
    current = ops.era()
    eras: list[int] = list(dict.fromkeys(args.eras))
    if eras:
        for era in eras:
            if era == 0 or era > current:
                raise UserError(f"era {era} has not happened (current era {current})")
            if not router.era_closed(era):
                raise UserError(
                    f"era {era} is not closed yet (current era {current}); its rewards can be "
                    "claimed once the next era's grace window has passed"
                )
            if router.rewards_claimed(me, era):
                raise UserError(f"the rewards of era {era} were already claimed by {me}")
            if ops.staking.era_stake_of(era, me) == 0:
                raise UserError(f"{me} was not an elected operator of era {era}; nothing to claim")
    else:
        pending = _rewards(ops, me, current)
        eras = [r["era"] for r in pending if r["closed"]]
        if not eras:
            later = sum(r["amount"] for r in pending)
            raise UserError(
                f"nothing to claim: {me} has no pending rewards in a closed era"
                + (f" ({later} pending in eras not closed yet)" if later else "")
            )
    before = ops.wvara.balance_of(me)
    with operator_reverts("Router.claimRewards", ops, me):
        receipt = router.claim_rewards(signer, eras)
    paid = [
        {"era": int(e["eraIndex"]), "amount": int(e["amount"])}
        for e in router.events(receipt, "RewardsClaimed")
    ]
    total = sum(p["amount"] for p in paid)
    data = {
        "operator": me,
        "claimed": paid,
        "total": total,
        "wvara_balance": ops.wvara.balance_of(me) if paid else before,
        "tx": hx(receipt["transactionHash"]),
        "block": int(receipt["blockNumber"]),
    }
    lines = [f"operator    {me}"]
    lines += [f"era {p['era']:<7} {p['amount']}" for p in paid]
    lines += [
        f"total       {total} WVARA",
        f"balance     {data['wvara_balance']} WVARA",
        f"tx          {data['tx']}",
        f"block       {data['block']}",
    ]
    _out(args, data, lines)
    return 0


@chain_errors
def cmd_status(args: argparse.Namespace) -> int:
    me = _status_operator(args)
    ops = open_ops(args)
    router = ops.chain.router
    info = ops.info(me)
    known = info.stake > 0 or info.unbonding > 0 or ops.is_operator(me)
    current = ops.era()
    era_rec = router.era_info(current) if current else None
    era_ops = ops.staking.era_operators(current) if current else []
    era_stake = dict(era_ops).get(me, 0)
    total = era_rec.total_stake if era_rec else 0
    signer = None if info.signer == ZERO_ADDRESS else info.signer
    next_set = {s for s, _ in ops.staking.elected()}
    in_next = bool(signer) and signer in next_set and not info.excluded
    why_not = None if in_next else _why_not_elected(ops, info, signer)
    rewards = _rewards(ops, me, current) if current else []
    data: dict[str, Any] = {
        "operator": me,
        "is_operator": known,
        "signer": signer,
        "stake": info.stake,
        "unbonding": info.unbonding,
        "release_era": info.release_era,
        "withdrawable": info.unbonding > 0 and current >= info.release_era,
        "excluded": info.excluded,
        "era": {
            "index": current,
            "start_block": era_rec.start_block if era_rec else 0,
            "start_timestamp": era_rec.start_timestamp if era_rec else 0,
            "next_era_from": ops.next_era_at(current),
            "total_stake": total,
            "validators": len(era_ops),
        },
        "elected": era_stake > 0,
        "era_stake": era_stake,
        "stake_share": era_stake / total if total else 0.0,
        "in_next_election": in_next,
        "not_in_next_because": why_not,
        "rewards": rewards,
        "claimable": sum(r["amount"] for r in rewards if r["closed"]),
        "wvara_balance": ops.wvara.balance_of(me),
        "staking": ops.staking.address,
        "block": ops.chain.head(),
    }
    if args.json:
        print(json.dumps(data))
        return 0
    print(f"operator    {me}" + ("" if known else f"  (not an operator: {_stake_first()})"))
    print(f"signer      {signer or 'none (register one: `gexe operator register`)'}")
    print(f"stake       {info.stake} (active)")
    if info.unbonding:
        state = (
            "withdrawable now"
            if data["withdrawable"]
            else f"still bonding until era {info.release_era}"
        )
        print(f"unbonding   {info.unbonding}, {state}")
    else:
        print("unbonding   0")
    print(
        f"excluded    {'yes (slashed; the Staking owner must readmit it)' if info.excluded else 'no'}"
    )
    if current:
        print(
            f"era         {current}, started at block {data['era']['start_block']} "
            f"({_when(data['era']['start_timestamp'])}); the next may start from "
            f"{_when(data['era']['next_era_from'])}"
        )
    else:
        print("era         none yet (the network has not started its first era)")
    if era_stake:
        print(
            f"elected     yes, in era {current}: stake {era_stake} of {total} "
            f"({100 * era_stake / total:.2f}%, {len(era_ops)} validators)"
        )
    else:
        print(f"elected     no, not in era {current}'s set")
    if in_next:
        print(f"next        in the election of era {current + 1} (so far)")
    else:
        print(f"next        not in the election of era {current + 1}: {why_not}")
    if rewards:
        for r in rewards:
            when = "claimable" if r["closed"] else "era not closed yet"
            print(f"rewards     era {r['era']}: {r['amount']} ({when})")
    else:
        print("rewards     none pending")
    print(f"balance     {data['wvara_balance']} WVARA")
    return 0
