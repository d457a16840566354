"""Helpers for the benchmarks of issue 15's sources and sinks (not benchmarks themselves)."""
