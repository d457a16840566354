"""Pure: the Flume receivers' defaults, in one place for FlumeUtils and the YAML jobs.

The pull values are Spark's own ``FlumeUtils.createPollingStream`` defaults, so a job that
moves from PySpark polls the same way."""

PUSH_HOST = "127.0.0.1"
PUSH_PORT = 9092
PULL_MAX_BATCH_SIZE = 1000
PULL_PARALLELISM = 5
