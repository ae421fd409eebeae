"""gexe: a Gear.exe-style off-chain compute network node for Ethereum.

The face of the project: the command line (`gexe.cli`) and, later, dev-network
orchestration. The parts live in sibling subpackages: `gexe.runtime` (deterministic
execution), `gexe.contracts` (chain side), `gexe.node`, `gexe.validator`,
`gexe.sequencer`. See DESIGN.md for the map.
"""

__version__ = "0.1.0"
