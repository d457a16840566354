"""The pure accounting behind every listener's limits (protocol.limits)."""

from __future__ import annotations

import pytest

from protocol.limits import (
    Activity,
    ConnectionGuard,
    InputBudget,
    ListenerLimits,
    LogLimiter,
    default_fd_reserve,
)


def test_settings_keys_override_defaults_and_timeouts_are_milliseconds() -> None:
    limits = ListenerLimits().with_settings(
        {"max-connections": 5, "idle-timeout": 1500, "frame-timeout": 0, "port": 1})
    assert limits.max_connections == 5
    assert limits.idle_timeout == 1.5
    assert limits.frame_timeout == 0
    assert limits.max_events_per_call == ListenerLimits().max_events_per_call
    assert ListenerLimits().with_settings({}) == ListenerLimits()


@pytest.mark.parametrize("bad", [{"max_connections": 0}, {"max_call_bytes": -1},
                                 {"max_buffered_bytes": 10, "max_frame_bytes": 20}])
def test_nonsense_limits_are_refused(bad: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        ListenerLimits(**bad)


def test_every_limit_has_a_key() -> None:
    named = {name for name, _ in ListenerLimits.KEYS.values()}
    assert named == set(ListenerLimits.__dataclass_fields__) - {"KEYS", "AGENT_KEYS"}
    assert ListenerLimits().key_of("max_pending_calls") == "max-pending-calls"


def test_budget_closes_the_largest_holder_first() -> None:
    budget = InputBudget(100)
    assert budget.hold("small", 10) == []
    assert budget.hold("big", 60) == []
    assert budget.hold("medium", 25) == []
    assert budget.hold("small", 20) == ["big"]  # 20 + 60 + 25 > 100: big goes, small stays
    assert budget.used == 45
    assert budget.hold("medium", 200) == ["medium"]  # the one asking can be the largest
    assert budget.used == 20
    budget.release("small")
    assert budget.used == 0 and budget.held("small") == 0


def test_budget_counts_updates_not_additions() -> None:
    budget = InputBudget(100)
    for n in (50, 80, 30, 0):
        assert budget.hold("a", n) == []
        assert budget.used == n


def test_guard_caps_each_listener_and_keeps_a_descriptor_reserve() -> None:
    guard = ConnectionGuard(fd_limit=300, fd_reserve=100)
    assert guard.shared_capacity == 200
    for _ in range(150):
        assert guard.admit("avro", 150) is None
    refusal = guard.admit("avro", 150)
    assert refusal is not None and "max-connections" in refusal
    for _ in range(50):
        assert guard.admit("push", 1000) is None
    refusal = guard.admit("push", 1000)
    assert refusal is not None and "file descriptors" in refusal
    # /metrics is not shared: it draws from the reserve and still gets in
    assert guard.admit("metrics", 8, shared=False) is None
    guard.release("avro")
    assert guard.admit("push", 1000) is None
    assert guard.open_on("avro") == 149 and guard.shared_open == 200


def test_guard_release_of_an_unknown_listener_is_harmless() -> None:
    guard = ConnectionGuard(fd_limit=1024)
    guard.release("nobody")
    assert guard.shared_open == 0


@pytest.mark.parametrize("limit, reserve", [(256, 128), (1024, 160), (65536, 8192)])
def test_default_reserve(limit: int, reserve: int) -> None:
    assert default_fd_reserve(limit) == reserve


def test_idle_timeout_does_not_apply_while_a_call_runs() -> None:
    limits = ListenerLimits(idle_timeout=10, frame_timeout=0)
    act = Activity(now=0)
    assert act.expired(9, limits) is None
    assert act.expired(11, limits) == ("idle-timeout", "idle for more than 10 s (idle-timeout)")
    act.busy = 1  # a long poll waiting for events
    assert act.expired(1000, limits) is None
    act.busy = 0
    act.progressed(995)
    assert act.expired(1000, limits) is None


def test_frame_timeout_runs_from_the_last_finished_frame() -> None:
    limits = ListenerLimits(idle_timeout=0, frame_timeout=5)
    act = Activity(now=0)
    act.input_state(1, incomplete=True, completed=False)
    act.input_state(4, incomplete=True, completed=False)  # more bytes, frame still open
    assert act.expired(5.5, limits) is None
    assert act.expired(6.5, limits) is not None
    # a client streaming frames back to back is never "stuck" in one
    act.input_state(6, incomplete=True, completed=True)
    assert act.expired(10, limits) is None
    act.input_state(7, incomplete=False, completed=True)
    assert act.expired(100, limits) is None


def test_log_limiter_says_how_many_lines_it_held_back() -> None:
    logs = LogLimiter(interval=10)
    assert logs.allow("max-connections", 0) == 0
    assert logs.allow("max-connections", 1) is None
    assert logs.allow("max-connections", 2) is None
    assert logs.allow("idle-timeout", 2) == 0  # each kind has its own allowance
    assert logs.allow("max-connections", 10) == 2
    assert LogLimiter.suffix(2) == " (2 more like it not logged)"
    assert LogLimiter.suffix(0) == ""
