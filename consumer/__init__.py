"""flumelet consumer: a pyspark.streaming-compatible engine fed by Flume receivers.

``from consumer import SparkContext`` replaces ``from pyspark import SparkContext``.
"""

from consumer.engine.rdd import RDD
from consumer.engine.spark_context import Accumulator, Broadcast, SparkConf, SparkContext

__all__ = ["RDD", "Accumulator", "Broadcast", "SparkConf", "SparkContext"]
