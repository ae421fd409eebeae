"""Fault injection for a gexe dev network (issue #9): crash, chain and network faults, and
the load/soak driver.

- `faults.chaos` — proxies that inject faults: `RpcProxy` (between a validator and anvil:
  resets, HTTP and JSON-RPC errors, hangs, slow and truncated answers) and `TcpProxy`
  (between validators on their libp2p links: cut, delay).
- `faults.harness` — `FaultNet` (a `gexe.devnet.DevNet` with those proxies in place, a
  request stream from Ethereum, the trial kinds and the checks: every request answered
  exactly once, every validator agreeing block by block, stores that verify) and
  `Totals` (the figures: `fault_trials`, `lost_requests`, `duplicated_requests`,
  `divergences`).
- `faults.replayer` — a gossip peer that re-publishes every message it hears
  (duplicates, and old messages replayed after the duplicate filter forgot them).
- `faults/soak.py` — the soak driver (`make soak`): sustained load at the highest rate
  the network holds, plus fault trials; prints JSON, writes `bench/results/faults.json`.

The CI-sized suite is `tests/faults/` (`make faults`, part of `make test`). See
RELIABILITY.md for what each fault does and the figures.
"""
