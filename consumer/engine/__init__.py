"""The streaming engine: list-backed RDDs, the pure batch scheduler and window/state logic,
checkpoints, the receiver interface, clocks, and the one asyncio runtime that drives them.
``consumer.streaming`` is the pyspark.streaming API on top of it."""
