"""The pure rules of the native path: `judge` (validator/injected.py), one verdict per
transaction, the same on every validator; and the sequencer's `Orderer` / `Ordering`
(sequencer/ordering.py): first come first served, duplicates ignored, a bounded pool,
block size caps, a seal for every new head."""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest
import trio
from eth_account import Account
from gexe.contracts.injected import Domain, InjectedTransaction, SignedTransaction
from gexe.sequencer.ordering import MAX_BLOCK_BYTES, Orderer, Ordering
from gexe.validator.injected import EXPIRY, actor, judge, queue_message

DOMAIN = Domain(31337, "0x" + "ab" * 20)
USER = Account.from_key(b"\x61" * 32)
USER_ADDR = bytes.fromhex(USER.address[2:])
PROGRAM = b"\x77" * 20
ANCHOR = 500
REFS = {bytes([n % 256]) * 31 + b"\x01": n for n in range(ANCHOR - 40, ANCHOR + 3)}


def ref(n: int) -> bytes:
    return bytes([n % 256]) * 31 + b"\x01"


def make(
    payload: bytes = b"PING",
    *,
    ref_n: int = ANCHOR - 1,
    value: int = 0,
    dest: bytes = PROGRAM,
    key: bytes = USER.key,
    domain: Domain = DOMAIN,
) -> SignedTransaction:
    t = InjectedTransaction(dest, payload, ref(ref_n), os.urandom(32), value)
    return domain.sign_tx(key, t)


def verdict(
    stx: SignedTransaction,
    *,
    included: Callable[[bytes], bool] = lambda h: False,
    programs: set[bytes] | None = None,
    max_payload: int = 1024,
    refs: dict[bytes, int] | None = None,
    domain: Domain = DOMAIN,
):
    progs = {actor(PROGRAM)} if programs is None else programs
    table = REFS if refs is None else refs
    return judge(
        stx,
        domain,
        anchor_number=ANCHOR,
        ref_number=table.get,
        program_active=lambda pid: pid in progs,
        included=included,
        max_payload=max_payload,
    )


def with_sig(stx: SignedTransaction, sig: bytes) -> SignedTransaction:
    return SignedTransaction(stx.tx, sig)


# ---------------------------------------------------------------- judge


def test_a_good_transaction_is_accepted_and_becomes_a_message_from_its_signer() -> None:
    stx = make()
    v = verdict(stx)
    assert v.ok and v.reason == ""
    assert v.sender == USER_ADDR
    assert v.tx_hash == DOMAIN.tx_hash(stx.tx)
    m = queue_message(v, stx)
    assert m.message_id == v.tx_hash  # the transaction hash is the message id
    assert m.source == bytes(12) + USER_ADDR
    assert m.program_id == bytes(12) + PROGRAM
    assert (m.payload, m.value, m.call) == (b"PING", 0, False)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda s: s[:64] + b"\x00",  # v not 27/28
        lambda s: s[:64] + b"\x1d",  # v = 29
        lambda s: bytes(64) + s[64:],  # r = s = 0
        lambda s: (
            s[:32]  # high s
            + (
                0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
                - int.from_bytes(s[32:64], "big")
            ).to_bytes(32, "big")
            + bytes([55 - s[64]])
        ),
        lambda s: s[:64],  # 64 bytes
    ],
    ids=["v0", "v29", "zero", "high-s", "short"],
)
def test_a_signature_that_does_not_recover_is_refused(mangle: Callable[[bytes], bytes]) -> None:
    stx = make()
    v = verdict(with_sig(stx, mangle(stx.signature)))
    assert not v.ok and v.reason == "bad signature" and v.sender is None
    assert v.tx_hash == DOMAIN.tx_hash(stx.tx)  # still named, so the receipt can say why


def test_a_signature_for_another_network_is_another_sender() -> None:
    """Signed under another chain id or Router, the signature is over another digest: here
    it recovers to some other address — a different (valid) sender, not the signer."""
    for other in (Domain(1, "0x" + "ab" * 20), Domain(31337, "0x" + "cd" * 20)):
        stx = make(domain=other)
        v = verdict(stx)
        assert v.ok and v.sender is not None and v.sender != USER_ADDR
        assert v.tx_hash == DOMAIN.tx_hash(stx.tx) != other.tx_hash(stx.tx)


def test_value_must_be_zero() -> None:
    v = verdict(make(value=1))
    assert (v.ok, v.reason, v.sender) == (False, "value must be 0", USER_ADDR)
    v = verdict(make(value=2**128 - 1))
    assert v.reason == "value must be 0"


def test_payload_limit_is_inclusive() -> None:
    assert verdict(make(b"x" * 1024), max_payload=1024).ok
    v = verdict(make(b"x" * 1025), max_payload=1024)
    assert v.reason == "payload over 1024 bytes"
    assert verdict(make(b""), max_payload=0).ok


def test_reference_block_window() -> None:
    # on the chain, at most EXPIRY blocks older than the anchor, not newer
    assert verdict(make(ref_n=ANCHOR)).ok
    assert verdict(make(ref_n=ANCHOR - EXPIRY)).ok
    assert verdict(make(ref_n=ANCHOR - EXPIRY - 1)).reason == "expired"
    assert verdict(make(ref_n=ANCHOR - 40)).reason == "expired"
    assert verdict(make(ref_n=ANCHOR + 1)).reason == "unknown reference block"
    assert verdict(make(), refs={}).reason == "unknown reference block"


def test_destination_must_be_a_program() -> None:
    assert verdict(make(dest=b"\x78" * 20)).reason == "unknown program"
    assert verdict(make(), programs=set()).reason == "unknown program"


def test_replay_is_refused() -> None:
    stx = make()
    h = DOMAIN.tx_hash(stx.tx)
    assert verdict(stx, included=lambda x: x == h).reason == "already included"
    assert verdict(stx, included=lambda x: x != h).ok


def test_checks_come_in_a_fixed_order() -> None:
    """Several faults at once: every validator names the same (first) one."""
    stx = make(b"x" * 2000, ref_n=ANCHOR - 40, value=5, dest=b"\x78" * 20)
    assert verdict(stx, included=lambda h: True).reason == "value must be 0"
    stx = make(b"x" * 2000, ref_n=ANCHOR - 40, dest=b"\x78" * 20)
    assert verdict(stx, included=lambda h: True).reason == "payload over 1024 bytes"
    stx = make(ref_n=ANCHOR - 40, dest=b"\x78" * 20)
    assert verdict(stx, included=lambda h: True).reason == "expired"
    stx = make(dest=b"\x78" * 20)
    assert verdict(stx, included=lambda h: True).reason == "unknown program"


def test_verdicts_are_a_function_of_the_inputs() -> None:
    txs = [make(), make(value=1), make(dest=b"\x01" * 20), make(ref_n=1)]
    a = [verdict(t) for t in txs]
    b = [verdict(t) for t in txs]
    assert a == b
    assert [v.reason for v in a] == [
        "",
        "value must be 0",
        "unknown program",
        "unknown reference block",
    ]


# ---------------------------------------------------------------- Orderer


class _Stx:
    """The orderer only looks at `stx.tx.payload`."""

    def __init__(self, size: int) -> None:
        self.tx = InjectedTransaction(PROGRAM, b"\x00" * size, bytes(32), bytes(32))


def h(i: int) -> bytes:
    return i.to_bytes(32, "big")


def test_orderer_seals_each_head_and_is_idle_otherwise() -> None:
    o = Orderer(max_block_txs=10, pool_size=100)
    assert o.ready() and o.next_block() == []  # the first head needs a seal
    assert not o.ready() and o.next_block() is None
    o.on_head()
    assert o.next_block() == []
    assert o.next_block() is None
    o.on_head()
    o.on_head()  # two heads before the role ran: one seal (anchored at the newer head)
    assert o.next_block() == [] and o.next_block() is None


def test_orderer_keeps_arrival_order_and_ignores_duplicates() -> None:
    o = Orderer(max_block_txs=100, pool_size=100)
    o.next_block()
    txs = {i: _Stx(4) for i in range(5)}
    for i in (3, 1, 4, 0, 2):
        assert o.add(h(i), txs[i])
    assert not o.add(h(1), _Stx(4))  # a re-forward of a waiting transaction
    assert not o.add(h(1), txs[1])
    blk = o.next_block()
    assert blk is not None
    assert [x for x, _ in blk] == [h(3), h(1), h(4), h(0), h(2)]
    assert blk[1][1] is txs[1]  # the first copy is kept
    # next_block does not take transactions out; the host's drop does
    assert o.ready() and len(o.pool) == 5
    o.drop([h(3), h(1), h(99)])
    blk = o.next_block()
    assert blk is not None and [x for x, _ in blk] == [h(4), h(0), h(2)]
    o.drop(x for x, _ in blk)
    assert not o.ready() and o.next_block() is None
    assert o.add(h(3), txs[3])  # dropped hashes may come again (the host filters replays)


def test_orderer_pool_is_bounded() -> None:
    o = Orderer(max_block_txs=10, pool_size=3)
    assert all(o.add(h(i), _Stx(1)) for i in range(3))
    assert not o.add(h(3), _Stx(1))
    assert not o.add(h(4), _Stx(1))
    assert o.dropped_full == 2 and len(o.pool) == 3
    o.drop([h(0)])
    assert o.add(h(3), _Stx(1))
    assert list(o.pool) == [h(1), h(2), h(3)]


def test_orderer_block_caps() -> None:
    o = Orderer(max_block_txs=4, pool_size=100)
    for i in range(10):
        o.add(h(i), _Stx(10))
    sizes = []
    while (blk := o.next_block()) is not None and blk:
        sizes.append(len(blk))
        o.drop(x for x, _ in blk)
    assert sizes == [4, 4, 2]
    # payload bytes: big transactions split into several blocks; an oversized one still
    # goes alone (a block always makes progress)
    o = Orderer(max_block_txs=100, pool_size=100)
    big = MAX_BLOCK_BYTES // 3
    for i in range(5):
        o.add(h(i), _Stx(big))
    o.add(h(5), _Stx(MAX_BLOCK_BYTES * 2))
    o.add(h(6), _Stx(1))
    blocks = []
    while (blk := o.next_block()) is not None and blk:
        blocks.append([int.from_bytes(x, "big") for x, _ in blk])
        assert len(blk) == 1 or sum(len(s.tx.payload) + 200 for _, s in blk) <= MAX_BLOCK_BYTES
        o.drop(x for x, _ in blk)
    assert blocks == [[0, 1], [2, 3], [4], [5], [6]]


class _Host:
    """A stand-in for NativeLane: records the blocks it is asked to make and, like the
    real host, takes what a block carried out of the role's pool."""

    def __init__(self) -> None:
        self.role: Ordering | None = None
        self.blocks: list[list[bytes]] = []
        self.head = True
        self.made = trio.Event()
        self.attempts = 0
        self.chain: set[bytes] = set()  # what the host's chain already carried

    def carried(self, tx_hash: bytes) -> bool:
        return tx_hash in self.chain

    def anchor_full(self) -> bool:  # no per-head cap here
        return False

    async def recover(self) -> None:  # a fresh sequencer: nothing to catch up on
        await trio.lowlevel.checkpoint()

    async def sequence(self, txs: list[tuple[bytes, object]]) -> object | None:
        self.attempts += 1
        if not self.head:
            return None
        self.blocks.append([x for x, _ in txs])
        if self.role is not None:
            self.role.drop(x for x, _ in txs)
        self.made.set()
        return object()


async def _wait_blocks(host: _Host, n: int) -> None:
    with trio.fail_after(10):
        while len(host.blocks) < n:
            host.made = trio.Event()
            await host.made.wait()


async def test_ordering_role_seals_heads_and_orders_transactions() -> None:
    host = _Host()
    role = host.role = Ordering(host, block_interval=0.01, max_block_txs=2, pool_size=10)
    async with trio.open_nursery() as nursery:
        await nursery.start(role.run)
        role.on_head()
        await _wait_blocks(host, 1)
        assert host.blocks == [[]]  # a seal
        for i in range(5):
            role.add(h(i), _Stx(3))
        role.add(h(0), _Stx(3))  # duplicate
        await _wait_blocks(host, 4)
        assert host.blocks[1:] == [[h(0), h(1)], [h(2), h(3)], [h(4)]]
        assert role.orderer.pool == {}  # blocks made leave the pool
        role.on_head()
        await _wait_blocks(host, 5)
        assert host.blocks[4] == []
        assert role.status()["blocks"] == 5
        nursery.cancel_scope.cancel()


async def test_ordering_role_retries_when_the_host_has_no_head() -> None:
    host = _Host()
    host.head = False
    role = host.role = Ordering(host, block_interval=0.01, max_block_txs=10, pool_size=10)
    async with trio.open_nursery() as nursery:
        await nursery.start(role.run)
        role.add(h(1), _Stx(3))
        with trio.fail_after(10):
            while host.attempts < 1:
                await trio.sleep(0.005)
        assert host.blocks == [] and list(role.orderer.pool) == [h(1)]  # kept for later
        host.head = True
        role.on_head()
        await _wait_blocks(host, 1)
        assert host.blocks[0] == [h(1)]
        nursery.cancel_scope.cancel()


async def test_ordering_role_ignores_reforwards_of_carried_transactions() -> None:
    """A lagging node re-forwards what the sequencer ordered already: no new block."""
    host = _Host()
    role = host.role = Ordering(host, block_interval=0.01, max_block_txs=10, pool_size=10)
    async with trio.open_nursery() as nursery:
        await nursery.start(role.run)
        role.add(h(1), _Stx(3))
        await _wait_blocks(host, 1)
        assert host.blocks == [[h(1)]]
        host.chain.add(h(1))
        role.add(h(1), _Stx(3))  # the re-forward
        assert role.orderer.pool == {} and not role.orderer.ready()
        role.add(h(2), _Stx(3))
        await _wait_blocks(host, 2)
        assert host.blocks == [[h(1)], [h(2)]]
        nursery.cancel_scope.cancel()
