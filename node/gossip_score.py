"""A simple local junk score per peer (sans-IO: the caller passes the clock).

py-libp2p 0.8.1's gossipsub PeerScorer has no useful defaults (all weights 0,
thresholds -inf) and no ban/disconnect action, so the gossip layer keeps its own:
every rejected message adds `weight(reason)` to the forwarding peer's score, the score
decays exponentially (half-life), and a peer whose score reaches `threshold` is
banned for `ban_seconds` (the service disconnects and blacklists it). Per-reason
counters are kept for observability and tests.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["JunkPolicy", "JunkTracker", "RateBudget"]


@dataclass(frozen=True)
class JunkPolicy:
    threshold: float = 10.0  # score at which a peer is banned
    half_life: float = 60.0  # seconds for the score to halve
    ban_seconds: float = 300.0
    default_weight: float = 1.0
    # Per-reason weights (keys are GossipError.reason); missing reasons use default_weight.
    weights: Mapping[str, float] = field(default_factory=dict)

    def weight(self, reason: str) -> float:
        return self.weights.get(reason, self.default_weight)


@dataclass
class _PeerState:
    score: float = 0.0
    at: float = 0.0
    counts: Counter[str] = field(default_factory=Counter)
    banned_until: float | None = None


class JunkTracker:
    def __init__(self, policy: JunkPolicy | None = None) -> None:
        self.policy = policy or JunkPolicy()
        self._peers: dict[str, _PeerState] = {}

    def _decayed(self, st: _PeerState, now: float) -> float:
        if st.score == 0.0 or now <= st.at:
            return st.score
        return st.score * math.pow(0.5, (now - st.at) / self.policy.half_life)

    def record(self, peer: str, reason: str, now: float) -> bool:
        """Count one junk message from `peer`. True when this call bans the peer."""
        st = self._peers.setdefault(peer, _PeerState(at=now))
        st.counts[reason] += 1
        st.score = self._decayed(st, now) + self.policy.weight(reason)
        st.at = now
        if st.banned_until is None and st.score >= self.policy.threshold:
            st.banned_until = now + self.policy.ban_seconds
            return True
        return False

    def score(self, peer: str, now: float) -> float:
        st = self._peers.get(peer)
        return 0.0 if st is None else self._decayed(st, now)

    def counts(self, peer: str) -> dict[str, int]:
        st = self._peers.get(peer)
        return {} if st is None else dict(st.counts)

    def total(self, peer: str) -> int:
        st = self._peers.get(peer)
        return 0 if st is None else sum(st.counts.values())

    def is_banned(self, peer: str, now: float) -> bool:
        st = self._peers.get(peer)
        return st is not None and st.banned_until is not None and now < st.banned_until

    def banned_until(self, peer: str) -> float | None:
        st = self._peers.get(peer)
        return None if st is None else st.banned_until

    def banned(self, now: float) -> set[str]:
        return {p for p in self._peers if self.is_banned(p, now)}

    def unban(self, peer: str, now: float) -> None:
        """Lift a ban (after it expired); the score restarts from zero, counts are kept."""
        st = self._peers.get(peer)
        if st is not None:
            st.banned_until = None
            st.score = 0.0
            st.at = now


class RateBudget:
    """A token bucket per key (sans-IO: the caller passes the clock): `rate` tokens a
    second, at most `burst` saved. The gossip layer keeps one per validator for the
    validly signed messages it originates: a validator flooding *valid* messages gets
    past every check but this one."""

    def __init__(self, rate: float, burst: float) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("a rate budget needs rate > 0 and burst >= 1")
        self.rate = rate
        self.burst = burst
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)

    def take(self, key: str, now: float) -> bool:
        """Spend one token of `key`; False (nothing spent) when none is left."""
        if key not in self._buckets and len(self._buckets) >= 65536:
            self._buckets.clear()  # bounded: keys are (validator, peer) pairs
        tokens, at = self._buckets.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + max(0.0, now - at) * self.rate)
        ok = tokens >= 1.0
        self._buckets[key] = (tokens - 1.0 if ok else tokens, now)
        return ok
