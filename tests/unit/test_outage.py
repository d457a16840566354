"""common.outage and common.stopping: what a failure says, when it is news, repeated signals."""

from __future__ import annotations

import errno
import signal
import socket

import pytest

from common.outage import Outage, Throttle, error_text, format_duration, peer_problem
from common.stopping import StopRequests


@pytest.mark.parametrize(("exc", "words"), [
    (ConnectionRefusedError(errno.ECONNREFUSED, "Connect call failed"),
     "unreachable (connection refused)"),
    (OSError("Multiple exceptions: [Errno 111] Connect call failed ('::1', 9), "
             "[Errno 99] Cannot assign requested address"), "unreachable (connection refused)"),
    (socket.gaierror(-2, "Name or service not known"),
     "unreachable (cannot resolve the host name: Name or service not known)"),
    (OSError(errno.EHOSTUNREACH, "No route to host"), "unreachable (no route to host)"),
    (TimeoutError(), "not answering (timed out)"),
    (ConnectionError("connect to h:1 timed out after 20s"), "not answering (timed out)"),
    (ConnectionResetError(errno.ECONNRESET, "reset"), "closed the connection"),
    (ConnectionError("connection closed by peer"), "closed the connection"),
    (ValueError("odd"), "odd"),
    (ValueError(), "ValueError"),
])
def test_peer_problem_in_an_operators_words(exc: BaseException, words: str) -> None:
    assert peer_problem(exc) == words


def test_outage_says_what_is_news() -> None:
    outage = Outage()
    assert outage.recovered(1.0) is None  # nothing was down
    assert outage.failed("unreachable", 10.0) is True
    assert outage.failed("unreachable", 15.0) is False  # a repeat
    assert outage.down and outage.failures == 2
    assert outage.for_how_long(20.0) == 10.0
    assert outage.failed("not answering", 20.0) is True  # another reason is news
    assert outage.recovered(52.0) == 42.0
    assert not outage.down and outage.failures == 0
    assert outage.failed("unreachable", 60.0) is True  # a new outage


def test_throttle_reports_at_most_once_per_interval_with_what_it_held_back() -> None:
    throttle = Throttle(30.0)
    assert throttle.due(0.0) == 0
    assert [throttle.due(t) for t in (1.0, 10.0, 29.9)] == [None, None, None]
    assert throttle.due(30.0) == 3
    assert throttle.due(31.0) is None
    assert throttle.due(100.0) == 1


@pytest.mark.parametrize(("seconds", "text"), [
    (0.25, "0.2 s"), (4.0, "4.0 s"), (42.4, "42 s"), (60, "1 min"), (185, "3 min 5 s"),
    (3600, "1 h"), (7800, "2 h 10 min"), (-1, "0.0 s"),
])
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_error_text_drops_the_errno_decoration() -> None:
    assert error_text(OSError(errno.EADDRINUSE, "cannot listen on 127.0.0.1:9: address already "
                              "in use")) == "cannot listen on 127.0.0.1:9: address already in use"
    assert error_text(FileNotFoundError(errno.ENOENT, "No such file or directory", "/x")) == \
        "No such file or directory: /x"
    assert error_text(RuntimeError("plain")) == "plain"


def test_the_same_signal_twice_at_once_is_one_request() -> None:
    requests = StopRequests(window=0.5)
    assert requests.receive(signal.SIGTERM, 100.0) == 1
    assert requests.receive(signal.SIGTERM, 100.0001) is None  # timeout(1): child, then group
    assert requests.receive(signal.SIGTERM, 101.0) == 2  # meant: a second request
    assert requests.receive(signal.SIGINT, 101.1) == 3  # another signal always counts
    assert requests.count == 3
