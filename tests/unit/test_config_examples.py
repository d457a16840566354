"""Every shipped example configuration loads cleanly, for every agent it defines."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.config.loader import load_config

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
MINE = {
    "example-seq-logger.conf": ["a1"],
    "fan-out-replicating.conf": ["a1"],
    "multiplexing.conf": ["a1"],
    "failover-sinkgroup.conf": ["a1"],
    "load-balance-sinkgroup.conf": ["a1"],
    "avro-multihop-a.conf": ["foo"],
    "avro-multihop-b.conf": ["bar"],
    "interceptors.conf": ["a1"],
    "spooldir-logger.conf": ["agent-1"],
    "spark-sink.conf": ["agent"],
    "netcat-logger.conf": ["a1"],
    "taildir-hdfs.conf": ["a1"],
    "syslog-http-hdfs.conf": ["a1"],
}


@pytest.mark.parametrize("name", sorted(p.name for p in CONFIGS.glob("*.conf")))
def test_example_config_loads_without_errors(name: str) -> None:
    path = CONFIGS / name
    probe = load_config(path, "-", env={})
    assert probe.agents_in_file, f"{name} defines no agent"
    for agent in probe.agents_in_file:
        result = load_config(path, agent, env={})
        assert result.errors == [], "\n".join(map(str, result.errors))
        assert result.config is not None
        if name in MINE:  # the examples written with this config layer are warning-free too
            assert result.issues == [], "\n".join(map(str, result.issues))


@pytest.mark.parametrize("name", sorted(MINE))
def test_own_examples_exist_and_define_the_documented_agents(name: str) -> None:
    assert load_config(CONFIGS / name, "-", env={}).agents_in_file == MINE[name]


def test_multihop_pair_agrees_on_port_and_compression() -> None:
    a = load_config(CONFIGS / "avro-multihop-a.conf", "foo", env={}).config
    b = load_config(CONFIGS / "avro-multihop-b.conf", "bar", env={}).config
    assert a is not None and b is not None
    sink = a.sinks["avro-forward-sink"].settings
    source = b.sources["avro-collection-source"].settings
    assert sink["port"] == source["port"] == 10000
    assert sink["compression-type"] == source["compression-type"] == "deflate"
