"""Flume properties files -> a validated, typed AgentConfig, with every problem as data."""

from agent.config.issues import ConfigIssue, IssueCode, Severity
from agent.config.loader import LoadResult, load_config, load_text

__all__ = ["ConfigIssue", "IssueCode", "LoadResult", "Severity", "load_config", "load_text"]
