"""Node config: TOML → frozen dataclasses, env overrides, unknown keys, loopback defaults."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import gexe.node
import pytest
from gexe.node.config import Config, ConfigError, check_config, load_config

EXAMPLE = Path(gexe.node.__file__).parent / "example-config.toml"


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "gexe.toml"
    p.write_text(text)
    return p


def test_defaults_are_safe():
    c = load_config(None, environ={})
    assert c.rpc.host == "127.0.0.1" and not c.rpc.allow_external
    assert c.metrics.host == "127.0.0.1"
    assert c.p2p.listen == "/ip4/127.0.0.1/tcp/0"
    assert c.ethereum.confirmation_depth == 0
    assert c.validator.keystore == c.node.data_dir / "keystore"
    assert c.node.data_dir.is_absolute()
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.rpc.port = 1  # type: ignore[misc]


def test_example_config_is_valid_and_matches_defaults():
    assert check_config(EXAMPLE, environ={}) == []
    c = load_config(EXAMPLE, environ={})
    assert dataclasses.replace(c, source=None) == load_config(None, environ={})


def test_file_values_and_relative_paths(tmp_path):
    p = write(
        tmp_path,
        """
[node]
data_dir = "data"
log_format = "json"
[ethereum]
router_address = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
confirmation_depth = 2
poll_interval = 1
[p2p]
bootnodes = ["/ip4/10.0.0.2/tcp/4001/p2p/12D3KooWabc"]
[validator]
password_file = "secrets/pw"
""",
    )
    c = load_config(p, environ={})
    assert c.node.data_dir == tmp_path / "data"
    assert c.validator.password_file == tmp_path / "secrets" / "pw"
    assert c.validator.keystore == tmp_path / "data" / "keystore"
    assert c.ethereum.confirmation_depth == 2 and c.ethereum.poll_interval == 1.0
    assert c.p2p.bootnodes == ("/ip4/10.0.0.2/tcp/4001/p2p/12D3KooWabc",)
    assert c.source == p


def test_environment_overrides_are_typed(tmp_path):
    p = write(tmp_path, "[rpc]\nport = 1000\n")
    env = {
        "GEXE_RPC_PORT": "2000",
        "GEXE_METRICS_ENABLED": "yes",
        "GEXE_ETHEREUM_POLL_INTERVAL": "0.5",
        "GEXE_SEQUENCER_ENABLED": "false",
        "GEXE_P2P_BOOTNODES": "/ip4/1.2.3.4/tcp/1/p2p/A, /dns/x.org/tcp/2/p2p/B",
        "GEXE_NODE_DATA_DIR": str(tmp_path / "d"),
        "GEXE_DEBUG": "1",
        "OTHER": "x",
    }
    c = load_config(p, environ=env)
    assert c.rpc.port == 2000 and c.metrics.enabled is True
    assert c.ethereum.poll_interval == 0.5 and c.sequencer.enabled is False
    assert c.p2p.bootnodes == ("/ip4/1.2.3.4/tcp/1/p2p/A", "/dns/x.org/tcp/2/p2p/B")
    assert c.node.data_dir == tmp_path / "d"
    with pytest.raises(ConfigError, match="GEXE_RPC_PORT must be an integer"):
        load_config(p, environ={"GEXE_RPC_PORT": "lots"})


def test_unknown_keys_are_rejected_with_file_and_key(tmp_path):
    p = write(tmp_path, "[rpc]\nprot = 1\n")
    with pytest.raises(ConfigError) as e:
        load_config(p, environ={})
    msg = str(e.value)
    assert str(p) in msg and "'prot'" in msg and "[rpc]" in msg and "'port'" in msg
    assert "\n" not in msg
    with pytest.raises(ConfigError, match="unknown section 'rcp'"):
        load_config(write(tmp_path, "[rcp]\nport = 1\n"), environ={})
    with pytest.raises(ConfigError, match="GEXE_RPC_PROT.*GEXE_RPC_PORT"):
        load_config(None, environ={"GEXE_RPC_PROT": "1"})


def test_secret_looking_env_var_is_named_but_its_value_never_shown():
    with pytest.raises(ConfigError) as e:
        load_config(None, environ={"GEXE_VALIDATOR_PASSWORD": "hunter2-secret"})
    assert "GEXE_VALIDATOR_PASSWORD" in str(e.value)
    assert "hunter2-secret" not in str(e.value)


def test_wrong_types_and_bad_toml(tmp_path):
    with pytest.raises(ConfigError, match=r"\[rpc\] port must be an integer"):
        load_config(write(tmp_path, '[rpc]\nport = "9944"\n'), environ={})
    with pytest.raises(ConfigError, match="allow_external must be true or false"):
        load_config(write(tmp_path, "[rpc]\nallow_external = 1\n"), environ={})
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_config(write(tmp_path, "[rpc\n"), environ={})
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "absent.toml", environ={})


def test_external_binding_needs_explicit_permission(tmp_path):
    p = write(tmp_path, '[rpc]\nhost = "0.0.0.0"\n')
    with pytest.raises(ConfigError, match="allow_external = true"):
        load_config(p, environ={})
    ok = load_config(
        write(tmp_path, '[rpc]\nhost = "0.0.0.0"\nallow_external = true\n'), environ={}
    )
    assert ok.rpc.host == "0.0.0.0"
    assert load_config(None, environ={"GEXE_METRICS_HOST": "::1"}).metrics.host == "::1"
    with pytest.raises(ConfigError, match=r"\[metrics\] host"):
        load_config(None, environ={"GEXE_METRICS_HOST": "192.168.1.5"})


def test_check_lists_every_problem(tmp_path):
    p = write(
        tmp_path,
        """
[node]
log_level = "loud"
[ethereum]
router_address = "0x123"
get_logs_max_range = 0
[p2p]
listen = "tcp://0.0.0.0:1"
[validator]
password_file = "a"
password_env = "B"
""",
    )
    problems = check_config(p, environ={})
    assert len(problems) == 5
    assert all(line.startswith(str(p)) for line in problems)
    with pytest.raises(ConfigError, match="and 4 more problems"):
        load_config(p, environ={})


def test_config_is_a_plain_value():
    assert Config() == Config()
