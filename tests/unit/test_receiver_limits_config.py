"""``receiver.limits`` in a YAML job: the push listener's limits, with the agent's key names."""

from __future__ import annotations

from pathlib import Path

import pytest

from consumer.jobs import JobInvalid, load_job_file
from protocol.limits import ListenerLimits


def _load(tmp_path: Path, limits: str) -> object:
    path = tmp_path / "job.yaml"
    path.write_text(f"receiver: {{type: push, port: 9999, limits: {limits}}}\nkey: url\n")
    return load_job_file(str(path))


def test_limits_reach_the_receiver_spec(tmp_path: Path) -> None:
    spec = _load(tmp_path, "{max-connections: 7, idle-timeout: 0, max-backlog-bytes: 1048576}")
    limits = ListenerLimits().with_settings(dict(spec.receiver.limits))  # type: ignore[attr-defined]
    assert limits.max_connections == 7 and limits.idle_timeout == 0
    assert limits.max_backlog_bytes == 2**20


@pytest.mark.parametrize("limits, message", [
    ("{max-conections: 5}", "unknown setting"),
    ("{max-connections: 0}", "must be >= 1"),
    ("{max-frame-bytes: 100, max-buffered-bytes: 10}", "at least max-frame-bytes"),
    ("[1, 2]", "expected a mapping"),
])
def test_bad_limits_are_reported_with_their_line(tmp_path: Path, limits: str,
                                                 message: str) -> None:
    with pytest.raises(JobInvalid) as err:
        _load(tmp_path, limits)
    assert message in str(err.value) and "job.yaml:1" in str(err.value)
