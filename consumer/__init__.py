"""flumelet consumer: a pyspark.streaming-compatible engine fed by Flume receivers.

``from consumer import SparkContext`` replaces ``from pyspark import SparkContext``.
"""

from consumer.context import Accumulator, Broadcast, SparkConf, SparkContext
from consumer.rdd import RDD

__all__ = ["RDD", "Accumulator", "Broadcast", "SparkConf", "SparkContext"]
