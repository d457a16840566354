"""The acceptance corpus: one file per rule in tests/fixtures/configs/, expectations inside it.

Each file starts with comment lines (a Flume properties file ignores them):

- ``# rule: ...`` what the file shows;
- ``# expect: LINE CODE [fragment]``: a warning by default, an error under ``strict``;
- ``# fatal: LINE CODE [fragment]``: an error in both modes (the agent does not start);
- ``# runs: sources | channels | sinks | sink groups``: what is left to run by default;
- ``# agent: NAME`` (default ``a1``, or the file's first agent).

By default (Flume's rules) the issues are exactly the expected ones, in file order. Under
``strict`` they are the same minus the DROPPED notes, every one an error, and nothing runs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from agent.config.issues import ConfigIssue, IssueCode
from agent.config.loader import LoadResult, load_config

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "configs"
_DIRECTIVE = re.compile(r"#\s*(rule|expect|fatal|runs|agent):\s*(.*)")


@dataclass(frozen=True)
class Expected:
    line: int
    code: IssueCode
    fragment: str
    fatal: bool


@dataclass
class Case:
    path: Path
    rule: str = ""
    agent: str = ""
    issues: list[Expected] = field(default_factory=list)
    runs: list[list[str]] | None = None

    @property
    def fatal(self) -> bool:
        return any(e.fatal for e in self.issues)


def parse(path: Path) -> Case:
    case = Case(path)
    for line in path.read_text(encoding="utf-8").splitlines():
        match = _DIRECTIVE.match(line)
        if match is None:
            continue
        kind, rest = match.groups()
        if kind == "rule":
            case.rule += rest + " "
        elif kind == "agent":
            case.agent = rest.strip()
        elif kind == "runs":
            case.runs = [part.split() for part in rest.split("|")]
        else:
            number, code, *fragment = rest.split(maxsplit=2)
            case.issues.append(
                Expected(int(number), IssueCode(code), " ".join(fragment), kind == "fatal")
            )
    if not case.agent:
        first = next(ln for ln in path.read_text().splitlines() if ln and not ln.startswith("#"))
        case.agent = first.split(".", 1)[0]
    return case


CASES = sorted(FIXTURES.glob("*.conf"))


def _load(case: Case, strict: bool) -> LoadResult:
    return load_config(case.path, case.agent, strict=strict, env={})


def _describe(issues: list[ConfigIssue]) -> str:
    return "\n".join(str(i) for i in issues)


@pytest.mark.parametrize("path", CASES, ids=[p.name for p in CASES])
def test_flume_rules_by_default(path: Path) -> None:
    case = parse(path)
    assert case.rule, f"{path.name} has no '# rule:' line"
    result = _load(case, strict=False)
    got = [(i.line, i.code, i.is_error) for i in result.issues]
    want = [(e.line, e.code, e.fatal) for e in case.issues]
    assert got == want, _describe(result.issues)
    for issue, expected in zip(result.issues, case.issues, strict=True):
        assert expected.fragment in issue.message, str(issue)
        assert issue.file == str(path)
    if case.fatal:
        assert result.config is None
        return
    config = result.config
    assert config is not None and case.runs is not None, f"{path.name} needs '# runs:'"
    running = [list(config.sources), list(config.channels), list(config.sinks),
               list(config.sinkgroups)]
    assert running == case.runs


@pytest.mark.parametrize("path", CASES, ids=[p.name for p in CASES])
def test_strict_turns_every_warning_into_an_error(path: Path) -> None:
    case = parse(path)
    result = _load(case, strict=True)
    want = [(e.line, e.code) for e in case.issues if e.code is not IssueCode.DROPPED]
    assert [(i.line, i.code) for i in result.issues] == want, _describe(result.issues)
    assert all(i.is_error for i in result.issues)
    assert (result.config is None) == bool(want)
