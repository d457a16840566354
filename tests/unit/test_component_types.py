"""Every registered component type, generated from the registry: one source of truth.

- construction reads every setting validation produces (keys declared ``ignored`` excepted,
  and those it must not read) and restates no default;
- ``--validate`` accepting a file means the agent can be built from it: every key of every
  type with a pool of awkward values, one at a time and a few at a time.

A new type is covered as soon as it is registered; a required key needs a working value in
``EXAMPLES`` (the test says which).
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from agent.config.loader import load_text
from agent.config.model import AgentConfig
from agent.config.types import BUILTINS, lookup
from agent.registry import BuildContext
from agent.runtime import build_agent

TYPES = [(kind, b.alias) for kind, builtins in BUILTINS.items() for b in builtins]
IDS = [f"{kind}-{alias}" for kind, alias in TYPES]

# Working values for required keys, by key name (shared across types).
EXAMPLES = {
    "spoolDir": "{tmp}/spool",
    "bind": "127.0.0.1",
    "port": "41414",
    "hostname": "127.0.0.1",
    "sink.directory": "{tmp}/out",
    "regex": "(a)",
    "searchPattern": "a",
    "command": "true",
    "ports": "41414 41415",
    "filegroups": "c",
    "hdfs.path": "{tmp}/hdfs/%Y",
    "endpoint": "http://127.0.0.1:41414/",
}

# Keys a type needs besides its required ones for a working minimal file (a family's entry).
COMPANIONS = {
    ("source", "taildir"): {"filegroups.c": "{tmp}/logs/.*[.]log"},
}

# Awkward values every key is tried with.
POOL = [
    "0", "1", "-1", "7", "100", "65535", "70000", "2147483648", "9223372036854775808",
    "true", "false", "maybe", "x", "UTF-16", "UTF-8", "ISO-8859-1", "utf-7", "no-such-charset",
    "LINE", "BLOB", "AVRO", "TEXT", "HEADER_AND_TEXT", "deflate", "never", "immediate",
    "tracker_dir", "random", "youngest", "REPLACE", "round_robin", "(", ".*", "(a)(b)", "$1",
    "$3", "${x}", "\\", "c", "c c2", "c9", "k", "k k2", "allow:ip:*", "deny:name:x,allow:ip:1.*",
    "TLSv1.2", "TLSv1", "SSLv3", "yyyy-MM-dd", "'", "{tmp}/no/file.pem", "millis", "s",
]


def _flat(kind: str, alias: str, keys: Mapping[str, str], tmp: Path) -> str:
    """A whole agent around one component of ``kind``/``alias`` with ``keys``."""
    lines = {
        "a.sources": "r", "a.channels": "c c2", "a.sinks": "k k2",
        "a.sources.r.type": "seq", "a.sources.r.channels": "c c2",
        "a.channels.c.type": "memory", "a.channels.c2.type": "memory",
        "a.sinks.k.type": "null", "a.sinks.k.channel": "c",
        "a.sinks.k2.type": "null", "a.sinks.k2.channel": "c2",
    }
    prefix = {
        "source": "a.sources.r.", "channel": "a.channels.c.", "sink": "a.sinks.k.",
        "interceptor": "a.sources.r.interceptors.i.", "selector": "a.sources.r.selector.",
        "processor": "a.sinkgroups.g.processor.",
    }[kind]
    if kind == "interceptor":
        lines["a.sources.r.interceptors"] = "i"
    if kind == "processor":  # the default processor takes exactly one sink
        lines.update({"a.sinkgroups": "g", "a.sinkgroups.g.sinks": "k" if alias == "default"
                      else "k k2"})
    if kind == "channel" and alias == "file":
        lines["a.channels.c.dataDirs"] = f"{tmp}/data"
    lines[prefix + "type"] = alias
    for key, value in keys.items():
        lines[prefix + key] = value.replace("{tmp}", str(tmp))
    return "".join(f"{k} = {v}\n" for k, v in lines.items())


def _required(kind: str, alias: str) -> dict[str, str]:
    schema = lookup(kind, alias).schema
    missing = [k.name for k in schema.keys if k.required and k.name not in EXAMPLES]
    assert not missing, f"add a working value for {missing} to EXAMPLES"
    return {**{k.name: EXAMPLES[k.name] for k in schema.keys if k.required},
            **COMPANIONS.get((kind, alias), {})}


def _keys(kind: str, alias: str) -> list[str]:
    schema = lookup(kind, alias).schema
    return [k.name for k in schema.keys] + [f"{f.prefix}.c" for f in schema.families]


def _target(config: AgentConfig, kind: str) -> Any:
    """The spec of the component under test, or None when validation dropped it."""
    if kind in ("source", "interceptor", "selector"):
        return config.sources.get("r")
    if kind == "channel":
        return config.channels.get("c")
    if kind == "sink":
        return config.sinks.get("k")
    return config.sinkgroups.get("g")


def _build_and_close(config: AgentConfig) -> None:
    agent = build_agent(config, BuildContext())
    for channel in agent.channels.values():  # a file channel holds its log open
        asyncio.run(channel.stop()) if hasattr(channel, "stop") else None


def _combinations(kind: str, alias: str) -> Iterator[dict[str, str]]:
    keys = _keys(kind, alias)
    yield {}
    for key in keys:
        for value in POOL:
            yield {key: value}
    rng = random.Random(f"{kind}/{alias}")  # a fixed sample of several keys at once
    for _ in range(40 if keys else 0):
        chosen = rng.sample(keys, min(len(keys), rng.randint(2, 4)))
        yield {key: rng.choice(POOL) for key in chosen}


@pytest.mark.parametrize(("kind", "alias"), TYPES, ids=IDS)
def test_what_validation_accepts_can_be_built(
    kind: str, alias: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # values used as paths (dataDirs = 0) land here
    base = _required(kind, alias)
    accepted = 0
    for extra in _combinations(kind, alias):
        keys = {**base, **extra}
        result = load_text(_flat(kind, alias, keys, tmp_path), "a", env={})
        config = result.config
        if config is None or _target(config, kind) is None:
            continue
        if kind == "interceptor" and not config.sources["r"].interceptors:
            continue
        accepted += 1
        try:
            _build_and_close(config)
        except Exception as exc:  # the point: name the keys validation let through
            pytest.fail(f"validation accepted {keys} but building failed: {exc!r}")
    assert accepted, "no combination was accepted: the base keys are wrong"


class Recording(dict[str, Any]):
    """Settings that remember what construction reads, and catch a default restated by
    ``settings.get(key, default)`` that differs from the declared one."""

    def __init__(self, settings: Mapping[str, Any], defaults: Mapping[str, Any]) -> None:
        super().__init__(settings)
        self.defaults = defaults
        self.read: set[str] = set()
        self.restated: list[str] = []

    def __getitem__(self, key: str) -> Any:
        self.read.add(key)
        return super().__getitem__(key)

    def get(self, key: str, *default: Any) -> Any:  # type: ignore[override]
        self.read.add(key)
        if default and key in self.defaults and default[0] != self.defaults[key]:
            self.restated.append(f"{key}: {default[0]!r} instead of {self.defaults[key]!r}")
        return super().get(key, *default)


def _with_recording(config: AgentConfig, kind: str, recording: Recording) -> AgentConfig:
    def swap(spec: Any) -> Any:
        return dataclasses.replace(spec, settings=recording)

    if kind == "channel":
        channels = {**config.channels, "c": swap(config.channels["c"])}
        return dataclasses.replace(config, channels=channels)
    if kind == "sink":
        return dataclasses.replace(config, sinks={**config.sinks, "k": swap(config.sinks["k"])})
    if kind == "processor":
        groups = {**config.sinkgroups, "g": swap(config.sinkgroups["g"])}
        return dataclasses.replace(config, sinkgroups=groups)
    source = config.sources["r"]
    if kind == "source":
        source = swap(source)
    elif kind == "selector":
        source = dataclasses.replace(source, selector=swap(source.selector))
    else:
        source = dataclasses.replace(source, interceptors=(swap(source.interceptors[0]),))
    return dataclasses.replace(config, sources={"r": source})


@pytest.mark.parametrize(("kind", "alias"), TYPES, ids=IDS)
def test_construction_reads_every_validated_setting(
    kind: str, alias: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    schema = lookup(kind, alias).schema
    result = load_text(_flat(kind, alias, _required(kind, alias), tmp_path), "a", env={})
    assert result.config is not None, [str(i) for i in result.issues]
    target = _target(result.config, kind)
    if kind == "selector":
        target = target.selector
    elif kind == "interceptor":
        target = target.interceptors[0]
    ignored = {k.name for k in schema.keys if k.ignored}
    recording = Recording(target.settings, {k.name: k.default for k in schema.keys})
    _build_and_close(_with_recording(result.config, kind, recording))
    assert recording.restated == []
    assert set(recording) - ignored - recording.read == set(), "validated but never used"
    assert recording.read & ignored == set(), "declared ignored but read"
