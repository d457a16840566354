"""Sources: pollable ones return READY/BACKOFF, never sleeping;
event-driven ones accept in ``start()``.

See ``agent.registry`` for the component convention.
"""
