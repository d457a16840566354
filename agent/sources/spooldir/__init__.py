"""Flume's spooling-directory source (``type = spooldir``)."""

from agent.sources.spooldir.source import SpoolDirSource

__all__ = ["SpoolDirSource"]
