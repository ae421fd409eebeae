"""Signature aggregation: `ApproveBatch` messages → the signatures `commitBatch` takes.

Sans-IO. The service `begin`s one digest at a time (the batch it asked validators to
sign) with the era's validator set as the Router reports it (`Router.validators()`:
signers and stakes, in set order) and feeds every `ApproveBatch` it sees to `add`.

Checks per approval, cheapest first: digest is the one being collected (others are kept
in a small FIFO buffer, because gossip may deliver an approval before the local request
is registered, and replayed by `begin`), validator in the set, signature recovers to the
claimed validator over the digest (`recover_digest_signer`; canonical low-s 65-byte
r ‖ s ‖ v only, as the Router's ECDSA wants). `ApproveBatch.era` is not compared: the
Router counts signers of its *current* set, so membership in that set is the check.

Invariants:
- A validator counts at most once (the Router rejects duplicates).
- `ready` is exactly the Router's rule: signed stake * 3 > total stake * 2.
- `signatures()` is in validator-set order, one per counted signer, so it can be passed
  to `commitBatch` unchanged.

When modifying this part: the threshold and ordering rules mirror
`Router.commitBatch` (contracts/README.md, "Batch acceptance"); change them together.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

from eth_utils import to_canonical_address, to_checksum_address
from gexe.contracts import signatures_in_set_order
from gexe.node.gossip_messages import ApproveBatch, GossipError, recover_digest_signer


@dataclass(frozen=True, slots=True)
class ValidatorSet:
    """An era's validators as `Router.validators()` returns them (set order)."""

    era: int
    signers: tuple[str, ...]  # checksummed
    stakes: tuple[int, ...]
    _index: dict[bytes, int] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        if len(self.signers) != len(self.stakes):
            raise ValueError("signers and stakes differ in length")
        signers = tuple(to_checksum_address(s) for s in self.signers)
        object.__setattr__(self, "signers", signers)
        object.__setattr__(self, "stakes", tuple(int(s) for s in self.stakes))
        self._index.update({to_canonical_address(s): i for i, s in enumerate(signers)})

    @property
    def total(self) -> int:
        return sum(self.stakes)

    def index_of(self, validator: bytes) -> int | None:
        return self._index.get(bytes(validator))

    def __len__(self) -> int:
        return len(self.signers)


def threshold_reached(signed: int, total: int) -> bool:
    """The Router's rule: strictly more than 2/3 of the era's stake."""
    return total > 0 and signed * 3 > total * 2


class Aggregator:
    """Approvals for one digest at a time, plus a bounded buffer of early ones."""

    COUNTED = "counted"
    DUPLICATE = "duplicate"
    EARLY = "early"  # another digest: buffered
    NOT_IN_SET = "not_in_set"
    BAD_SIGNATURE = "bad_signature"

    def __init__(self, *, keep_early: int = 256) -> None:
        self.keep_early = keep_early
        self.digest: bytes | None = None
        self.validators: ValidatorSet | None = None
        self._sigs: dict[int, bytes] = {}  # set index → signature
        self._early: OrderedDict[tuple[bytes, bytes], ApproveBatch] = OrderedDict()

    # -- lifecycle --

    def begin(self, digest: bytes, validators: ValidatorSet) -> None:
        """Collect for `digest`; approvals already buffered for it are counted now.
        Beginning the same digest again (same set) keeps what was counted."""
        if digest == self.digest and validators == self.validators:
            return
        self._stash_current()
        self.digest, self.validators, self._sigs = bytes(digest), validators, {}
        for key in [k for k in self._early if k[0] == self.digest]:
            self.add(self._early.pop(key))

    def reset(self) -> None:
        """Stop collecting (the counted approvals stay buffered for a re-proposal)."""
        self._stash_current()
        self.digest, self.validators, self._sigs = None, None, {}

    def _stash_current(self) -> None:
        if self.digest is None or self.validators is None:
            return
        for i, sig in self._sigs.items():
            v = to_canonical_address(self.validators.signers[i])
            self._buffer(ApproveBatch(self.digest, self.validators.era, v, sig))

    def _buffer(self, msg: ApproveBatch) -> None:
        key = (msg.batch_digest, msg.validator)
        self._early[key] = msg
        self._early.move_to_end(key)
        while len(self._early) > self.keep_early:
            self._early.popitem(last=False)

    # -- approvals --

    def add(self, msg: ApproveBatch) -> str:
        """Count one approval; returns what happened to it (the class constants)."""
        if self.digest is None or msg.batch_digest != self.digest or self.validators is None:
            self._buffer(msg)
            return self.EARLY
        index = self.validators.index_of(msg.validator)
        if index is None:
            return self.NOT_IN_SET
        if index in self._sigs:
            return self.DUPLICATE
        try:
            signer = recover_digest_signer(msg.batch_digest, msg.signature)
        except GossipError:
            return self.BAD_SIGNATURE
        if signer != msg.validator:
            return self.BAD_SIGNATURE
        self._sigs[index] = bytes(msg.signature)
        return self.COUNTED

    # -- results --

    @property
    def signed_stake(self) -> int:
        if self.validators is None:
            return 0
        return sum(self.validators.stakes[i] for i in self._sigs)

    @property
    def total_stake(self) -> int:
        return self.validators.total if self.validators is not None else 0

    @property
    def ready(self) -> bool:
        return threshold_reached(self.signed_stake, self.total_stake)

    def signers(self) -> list[str]:
        """Counted validators, in set order."""
        if self.validators is None:
            return []
        return [self.validators.signers[i] for i in sorted(self._sigs)]

    def missing(self) -> list[str]:
        if self.validators is None:
            return []
        return [s for i, s in enumerate(self.validators.signers) if i not in self._sigs]

    def signatures(self) -> list[bytes]:
        """The counted signatures in validator-set order (what `commitBatch` takes)."""
        if self.validators is None:
            return []
        by_signer = {self.validators.signers[i]: sig for i, sig in self._sigs.items()}
        return signatures_in_set_order(by_signer, self.validators.signers)
