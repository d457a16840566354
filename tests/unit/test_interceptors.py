"""Each interceptor against Flume's documented behaviour."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from agent.components import ManualClock
from agent.config.build import settings_from
from agent.config.types import TypeLookupError
from agent.interceptors.base import InterceptorChain
from agent.interceptors.headers import HostInterceptor, UUIDInterceptor
from agent.interceptors.java_text import java_date_format, java_replacement
from agent.registry import BuildContext
from protocol.event import Event
from tests.agent_helpers import component

CLOCK = ManualClock(1_700_000_000.123)


def make(type_: str, **settings):
    return component("interceptor", type_, settings, BuildContext(clock=CLOCK), name="i1")


def test_timestamp_sets_epoch_millis_and_respects_preserve():
    e = make("timestamp").intercept(Event({"timestamp": "1"}, b""))
    assert e.headers == {"timestamp": "1700000000123"}
    kept = make("timestamp", preserveExisting=True).intercept(Event({"timestamp": "1"}, b""))
    assert kept.headers == {"timestamp": "1"}
    named = make("timestamp", headerName="ts").intercept_batch([Event(), Event()])
    assert [x.headers for x in named] == [{"ts": "1700000000123"}] * 2


def test_host_uses_resolver_once_with_use_ip_flag():
    calls = []

    def resolver(use_ip: bool) -> str:
        calls.append(use_ip)
        return "10.1.2.3" if use_ip else "box.example"

    def host(**raw):
        return HostInterceptor.from_settings(settings_from("interceptor", "host", raw), CLOCK,
                                             resolver)

    ip = host()
    name = host(useIP=False, hostHeader="h")
    assert ip.intercept(Event()).headers == {"host": "10.1.2.3"}
    assert name.intercept(Event()).headers == {"h": "box.example"}
    assert calls == [True, False]
    keep = host(preserveExisting=True)
    assert keep.intercept(Event({"host": "x"})).headers == {"host": "x"}


def test_host_default_resolver_returns_something():
    assert make("host").intercept(Event()).headers["host"]


def test_static_preserves_existing_by_default():
    assert make("static").intercept(Event()).headers == {"key": "value"}
    assert make("static", key="dc", value="eu").intercept(Event({"dc": "us"})).headers == {
        "dc": "us"
    }
    overwrite = make("static", key="dc", value="eu", preserveExisting=False)
    assert overwrite.intercept(Event({"dc": "us"})).headers == {"dc": "eu"}


def test_remove_header_by_name_list_and_full_match():
    headers = {"a": "1", "b": "2", "c": "3", "x-1": "4", "xx-1": "5", "keep": "6"}
    i = make("remove_header", withName="a", fromList="b ,  c", matching=r"x-\d")
    assert i.intercept(Event(dict(headers))).headers == {"xx-1": "5", "keep": "6"}
    custom = make("remove_header", fromList="a|b", fromListSeparator=r"\|")
    assert custom.intercept(Event({"a": "1", "b": "2", "c": "3"})).headers == {"c": "3"}
    assert make("remove_header").intercept(Event(dict(headers))).headers == headers


def test_uuid_prefix_and_preserve():
    i = UUIDInterceptor(prefix="p-", uuid_factory=lambda: "u1")
    assert i.intercept(Event()).headers == {"id": "p-u1"}
    assert i.intercept(Event({"id": "old"})).headers == {"id": "old"}
    generated = make("uuid", headerName="eid", preserveExisting=False)
    value = generated.intercept(Event({"eid": "old"})).headers["eid"]
    assert re.fullmatch(r"[0-9a-f-]{36}", value)


def test_regex_filter_keeps_or_excludes_substring_matches():
    events = [Event({}, b"GET /a"), Event({}, b"POST /b"), Event({}, b"xGETx")]
    keep = make("regex_filter", regex="GET")
    assert [e.body for e in keep.intercept_batch(events)] == [b"GET /a", b"xGETx"]
    drop = make("regex_filter", regex="^GET", excludeEvents=True)
    assert [e.body for e in drop.intercept_batch(events)] == [b"POST /b", b"xGETx"]
    assert make("regex_filter").intercept(Event({}, b"")) is not None  # default .* keeps all


def extractor(regex: str, *serializers: dict[str, str]):
    """regex_extractor with Flume's keys: serializers = s0 s1 ..., serializers.s0.name = ..."""
    keys = {"serializers": " ".join(f"s{n}" for n in range(len(serializers)))}
    for n, serializer in enumerate(serializers):
        keys.update({f"serializers.s{n}.{k}": v for k, v in serializer.items()})
    return make("regex_extractor", regex=regex, **keys)


def test_regex_extractor_maps_groups_to_serializer_names():
    i = extractor(r"(\d):(\d):(\d)", {"name": "one"}, {"name": "two", "type": "default"})
    e = i.intercept(Event({}, b"x 1:2:3 y 4:5:6"))
    assert e.headers == {"one": "1", "two": "2"}  # first match, extra group ignored
    assert i.intercept(Event({"k": "v"}, b"nothing")).headers == {"k": "v"}


def test_regex_extractor_skips_groups_that_did_not_match():
    i = extractor(r"(a)?(b)", {"name": "A"}, {"name": "B"})
    assert i.intercept(Event({}, b"b")).headers == {"B": "b"}


def test_regex_extractor_millis_serializer_with_java_pattern():
    i = extractor(
        r"^\[([^\]]+)\]",
        {
            "name": "timestamp",
            "type": "org.apache.flume.interceptor.RegexExtractorInterceptorMillisSerializer",
            "pattern": "dd/MMM/yyyy:HH:mm:ss.SSS Z",
        },
    )
    e = i.intercept(Event({}, b"[10/Oct/2000:13:55:36.250 -0700] GET /"))
    expected = datetime(2000, 10, 10, 20, 55, 36, 250000, tzinfo=UTC)
    assert e.headers == {"timestamp": str(int(expected.timestamp() * 1000))}
    # an unparsable date sets no header rather than failing the batch
    assert i.intercept(Event({}, b"[yesterday] GET /")).headers == {}


def test_java_date_pattern_translation():
    assert java_date_format("yyyy-MM-dd'T'HH:mm:ss.SSSZ") == "%Y-%m-%dT%H:%M:%S.%f%z"
    assert java_date_format("h 'o''clock' a, EEE MMMM d yy") == "%I o'clock %p, %a %B %d %y"
    assert java_date_format("'100%' D") == "100%% %j"
    with pytest.raises(ValueError, match="letter 'G'"):
        java_date_format("G yyyy")
    with pytest.raises(ValueError, match="unterminated"):
        java_date_format("yyyy 'oops")


def test_java_replacement_translation():
    p = re.compile(r"(\w+)@(\w+)")
    assert p.sub(java_replacement("$2 at $1", p), "bob@host") == "host at bob"
    assert p.sub(java_replacement(r"\$1 \\ $1", p), "bob@host") == "$1 \\ bob"
    ten = re.compile("(a)" * 10)
    assert java_replacement("$10$11", ten) == "\\g<10>\\g<1>1"
    named = re.compile(r"(?P<user>\w+)@")
    assert named.sub(java_replacement("${user}!", named), "bob@") == "bob!"
    with pytest.raises(ValueError, match="no group 3"):
        java_replacement("$3", p)
    with pytest.raises(ValueError, match="illegal group reference"):
        java_replacement("cost: $", p)


def test_search_replace_with_group_refs_and_charset():
    i = make("search_replace", searchPattern=r"(\d+)-(\d+)", replaceString="$2-$1")
    assert i.intercept(Event({}, b"a 1-2 b 3-4")).body == b"a 2-1 b 4-3"
    latin = make("search_replace", searchPattern="é", replaceString="e", charset="ISO-8859-1")
    assert latin.intercept(Event({}, "café".encode("latin-1"))).body == b"cafe"
    blank = make("search_replace", searchPattern=r"\s+")
    assert blank.intercept(Event({}, b"a b  c")).body == b"abc"


def test_bad_settings_are_refused_by_validation():
    with pytest.raises(ValueError, match=r"missing required key 'searchPattern'"):
        make("search_replace")
    with pytest.raises(ValueError, match="invalid regular expression"):
        make("regex_filter", regex="(")
    with pytest.raises(TypeLookupError, match="unknown interceptor type 'morphline'"):
        make("morphline")
    with pytest.raises(ValueError, match=r"unknown serializer type 'com\.X'"):
        extractor("(a)", {"name": "n", "type": "com.X"})
    with pytest.raises(ValueError, match="illegal group reference"):
        make("search_replace", searchPattern="a", replaceString="$x")


def test_chain_applies_in_order_and_stops_at_drop():
    chain = InterceptorChain([
        make("static", key="k", value="1"),
        make("regex_filter", regex="keep"),
        make("static", key="k2", value="2"),
    ])
    assert chain.intercept(Event({}, b"drop me")) is None
    assert chain.intercept(Event({}, b"keep")).headers == {"k": "1", "k2": "2"}
    out = chain.intercept_batch([Event({}, b"keep 1"), Event({}, b"no"), Event({}, b"keep 2")])
    assert [e.body for e in out] == [b"keep 1", b"keep 2"]
