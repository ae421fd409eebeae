"""Artifacts: rebuilt byte-for-byte by contracts/build.js, and the Mirror keeps Vara.eth's
dApp-facing ABI."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from gexe.contracts import artifact_names, load_artifact
from gexe.contracts.events import event_signature

CONTRACTS = Path(__file__).resolve().parents[2] / "contracts"

# IMirror of Vara.eth (gear-tech/gear, ethexe/contracts/src/IMirror.sol): what dApps use.
VARA_ETH_MIRROR_FUNCTIONS = {
    "sendMessage(bytes,bool)",
    "sendReply(bytes32,bytes)",
    "claimValue(bytes32)",
    "executableBalanceTopUp(uint128)",
    "executableBalanceTopUpWithPermit(uint128,uint256,uint8,bytes32,bytes32)",
    "transferLockedValueToInheritor()",
    "router()",
    "stateHash()",
    "nonce()",
    "exited()",
    "inheritor()",
    "initializer()",
}
VARA_ETH_MIRROR_EVENTS = {
    "StateChanged(bytes32)",
    "MessageQueueingRequested(bytes32,address,bytes,uint128,bool)",
    "ReplyQueueingRequested(bytes32,address,bytes,uint128)",
    "ValueClaimingRequested(bytes32,address)",
    "OwnedBalanceTopUpRequested(uint128)",
    "ExecutableBalanceTopUpRequested(uint128)",
    "Message(bytes32,address,bytes,uint128)",
    "MessageCallFailed(bytes32,address,uint128)",
    "Reply(bytes,uint128,bytes32,bytes4)",
    "ReplyCallFailed(uint128,bytes32,bytes4)",
    "ValueClaimed(bytes32,uint128)",
    "GearEvent(bytes)",
    "TransferLockedValueToInheritorFailed(address,uint128)",
    "ReplyTransferFailed(address,uint128)",
    "ValueClaimFailed(bytes32,uint128)",
}
INDEXED = {
    "MessageQueueingRequested": ["source"],
    "ReplyQueueingRequested": ["source"],
    "ValueClaimingRequested": ["source"],
    "Message": ["destination"],
    "MessageCallFailed": ["destination"],
    "Reply": ["replyCode"],
    "ReplyCallFailed": ["replyCode"],
}


def test_every_deployable_contract_has_an_artifact() -> None:
    names = set(artifact_names())
    assert {
        "Router",
        "Mirror",
        "Staking",
        "WrappedVara",
        "PingClient",
        "HashHarness",
        "CallbackProbe",
    } <= names
    for name in ("Router", "Mirror", "Staking", "WrappedVara", "PingClient"):
        art = load_artifact(name)
        assert art.bytecode and art.deployed_bytecode and art.abi
        assert len(art.deployed_bytecode) <= 24_576, f"{name} exceeds the EIP-170 code size limit"


def test_mirror_keeps_vara_eth_signatures() -> None:
    abi = load_artifact("Mirror").abi
    functions = {event_signature(e) for e in abi if e["type"] == "function"}
    events = {event_signature(e): e for e in abi if e["type"] == "event"}
    assert VARA_ETH_MIRROR_FUNCTIONS <= functions
    assert VARA_ETH_MIRROR_EVENTS <= set(events)
    for sig, entry in events.items():
        indexed = [i["name"] for i in entry["inputs"] if i["indexed"]]
        assert indexed == INDEXED.get(entry["name"], []), sig
    send = next(e for e in abi if e.get("name") == "sendMessage")
    assert send["stateMutability"] == "payable"
    assert [o["type"] for o in send["outputs"]] == ["bytes32"]


def test_router_keeps_vara_eth_event_signatures() -> None:
    events = {event_signature(e) for e in load_artifact("Router").abi if e["type"] == "event"}
    assert {
        "CodeValidationRequested(bytes32)",
        "CodeGotValidated(bytes32,bool)",
        "ProgramCreated(address,bytes32)",
        "BatchCommitted(bytes32)",
    } <= events


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_build_is_byte_stable(tmp_path: Path) -> None:
    subprocess.run(
        ["node", str(CONTRACTS / "build.js"), "--out", str(tmp_path)],
        check=True,
        capture_output=True,
    )
    built = sorted(p.name for p in tmp_path.iterdir())
    committed = sorted(p.name for p in (CONTRACTS / "artifacts").iterdir())
    assert built == committed
    for name in built:
        assert (tmp_path / name).read_bytes() == (CONTRACTS / "artifacts" / name).read_bytes(), name
