"""Sequencer-block records in the store (the native path): written with their index
entries in the block's transaction, read back, and pruned with the blocks they follow —
except the newest, which the next sequencer block extends."""

from __future__ import annotations

from pathlib import Path

from gexe.node.records import ZERO_HASH, SeqRecord
from gexe.node.store import Store
from gexe.runtime import blake2b256
from node_store_helpers import write_block


def _seq(w, height: int, anchor, parent: bytes) -> SeqRecord:  # type: ignore[no-untyped-def]
    root = anchor.state_root
    res = w.write(b"seq result %d" % height)
    blob = w.write(b"seq block %d" % height)
    h = blake2b256(b"seq", height.to_bytes(8, "big"))
    rec = SeqRecord(h, height, anchor.hash, anchor.number, parent, root, res, blob)
    w.put_seq(rec, [blake2b256(b"tx", height.to_bytes(8, "big"))])
    return rec


def test_sequencer_blocks_are_indexed_and_pruned_with_their_blocks(tmp_path: Path) -> None:
    store = Store(tmp_path / "db")
    recs = []
    parent = ZERO_HASH
    for n in range(1, 21):
        with store.begin_block() as w:
            blk = write_block(w, n)
            if recs:
                w.put_seq_tip(blk.hash, recs[-1].hash)
            if n % 2 == 0:  # a sequencer block after every even block
                rec = _seq(w, len(recs) + 1, blk, parent)
                recs.append(rec)
                parent = rec.hash
            w.commit()
    assert len(recs) == 10
    head = store.head()
    assert head is not None and store.seq_tip(head.hash) == recs[-1]
    assert store.seq_at_height(3) == recs[2]
    assert store.included_in(blake2b256(b"tx", (3).to_bytes(8, "big"))) == recs[2].hash
    # keep the last 6 blocks (15..20): sequencer blocks anchored at 14 and below go
    store.prune_blocks(keep=6)
    for r in recs:
        kept = r.anchor_number >= 15
        assert (store.seq_block(r.hash) is not None) == kept, r.height
        assert (store.seq_at_height(r.height) is not None) == kept
        tx = blake2b256(b"tx", r.height.to_bytes(8, "big"))
        assert (store.included_in(tx) is not None) == kept
    assert store.seq_tip(head.hash) == recs[-1]
    assert store.verify().ok
    store.close()


def test_the_tip_survives_pruning_however_old(tmp_path: Path) -> None:
    store = Store(tmp_path / "db")
    with store.begin_block() as w:
        first = write_block(w, 1)
        tip = _seq(w, 1, first, ZERO_HASH)
        w.commit()
    for n in range(2, 12):  # ten blocks with no sequencer block after them
        with store.begin_block() as w:
            blk = write_block(w, n)
            w.put_seq_tip(blk.hash, tip.hash)
            w.commit()
    store.prune_blocks(keep=3)
    head = store.head()
    assert head is not None and store.seq_tip(head.hash) == tip
    assert store.seq_block(tip.hash) == tip
    store.close()
