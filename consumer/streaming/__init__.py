"""``from consumer.streaming import StreamingContext`` replaces ``pyspark.streaming``."""

from consumer.engine.state import State, StateSpec
from consumer.engine.windows import EventWindow
from consumer.streaming.context import StreamingContext
from consumer.streaming.dstream import DStream
from consumer.streaming.listener import StreamingListener

__all__ = ["DStream", "EventWindow", "State", "StateSpec", "StreamingContext",
           "StreamingListener"]
