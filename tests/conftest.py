"""Fixtures shared across test folders."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

# No property in this suite is about time, and a loaded 2-core CI machine (or six helpers on
# one) can make a single example take longer than hypothesis's 200 ms deadline, or make data
# generation look "too slow". Both would be failures about the machine, not the code.
settings.register_profile("flumelet", deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("flumelet")


@pytest.fixture
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Run in UTC: pprint's ``Time:`` line uses the local time zone, as PySpark's does."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()
