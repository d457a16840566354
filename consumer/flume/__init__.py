"""Flume receivers: ``from consumer.flume import FlumeUtils`` replaces
``pyspark.streaming.flume`` (push: an Avro source for Flume's avro sink; pull: a poller of
SparkSinks). The receivers live in :mod:`consumer.flume.receivers`, the push receiver's
write-ahead log in :mod:`consumer.flume.wal`, the pull receiver's record of what an agent may
serve again in :mod:`consumer.flume.redelivery`."""

from consumer.flume.receivers import FlumeUtils, utf8_decoder

__all__ = ["FlumeUtils", "utf8_decoder"]
