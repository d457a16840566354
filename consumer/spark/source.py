"""The pyspark classes of the ``flume`` data source (the design is in ``consumer.spark``)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import pyarrow as pa
from pyspark.sql.datasource import (
    DataSource,
    DataSourceStreamReader,
    InputPartition,
)
from pyspark.sql.pandas.types import to_arrow_schema
from pyspark.sql.types import BinaryType, MapType, StringType, StructField, StructType

from consumer.spark.offsets import SlotRange, SourceOffset, advance, plan
from consumer.spark.options import SourceOptions, parse_options
from consumer.spark.probe import Prober
from consumer.spark.slots import read_slots
from consumer.spark.staging import SlotStore

log = logging.getLogger(__name__)

__all__ = ["FlumeDataSource", "FlumeStreamReader", "SlotPartition", "flume_schema"]


def flume_schema(body_as_string: bool = False) -> StructType:
    return StructType([
        StructField("headers", MapType(StringType(), StringType())),
        StructField("body", StringType() if body_as_string else BinaryType()),
        StructField("agent", StringType()),
    ])


class SlotPartition(InputPartition):
    """One task: slots ``first..last`` of one agent (see ``consumer.spark.offsets``)."""

    def __init__(self, slots: SlotRange) -> None:
        super().__init__(slots)
        self.slots = slots


class FlumeDataSource(DataSource):
    """``spark.readStream.format("flume")``: events pulled from Flume/flumelet SparkSinks."""

    @classmethod
    def name(cls) -> str:
        return "flume"

    def schema(self) -> StructType:
        return flume_schema(parse_options(self.options).body_as_string)

    def streamReader(self, schema: StructType) -> FlumeStreamReader:
        return FlumeStreamReader(parse_options(self.options), schema)


class FlumeStreamReader(DataSourceStreamReader):
    """Driver side: offsets, partitions and commits; executor side: ``read``."""

    def __init__(self, options: SourceOptions, schema: StructType) -> None:
        expected = flume_schema(options.body_as_string)
        if schema.fieldNames() != expected.fieldNames():
            raise ValueError(f"the flume source's schema is {expected.simpleString()}, "
                             f"not {schema.simpleString()}")
        self.options = options
        self.schema = schema
        self._prober: Prober | None = None
        # Spark < 4.2 calls latestOffset() without a start: remember the newest offset seen.
        self._latest = SourceOffset()

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_prober"] = None  # driver-only: threads and sockets do not travel
        return state

    def initialOffset(self) -> dict[str, Any]:
        return SourceOffset().to_json()

    def latestOffset(self, start: dict[str, Any] | None = None,
                     limit: Any = None) -> dict[str, Any]:
        """One more slot for each agent that has events now; ``start`` when none has.
        The read limit is applied per slot by the tasks (maxEventsPerTrigger): an offset
        here counts slots, not events."""
        begin = SourceOffset.from_json(start) if start is not None else self._latest
        if self._prober is None:
            self._prober = Prober(self.options.addresses, self.options.connect_timeout)
        ready = self._prober.ready(self.options.probe_wait)
        end = advance(begin, ready, lambda: uuid.uuid4().hex[:16])
        if end is begin:
            return start if start is not None else begin.to_json()
        self._latest = end
        return end.to_json()

    def partitions(self, start: dict[str, Any], end: dict[str, Any]) -> Sequence[InputPartition]:
        last = SourceOffset.from_json(end)
        if last.run is not None:
            self._latest = last
        ranges = plan(SourceOffset.from_json(start), last, self.options.max_events_per_trigger)
        return [SlotPartition(r) for r in ranges]

    def read(self, partition: InputPartition) -> Iterator[pa.RecordBatch]:
        assert isinstance(partition, SlotPartition)
        return read_slots(partition.slots, self.options, to_arrow_schema(self.schema))

    def commit(self, end: dict[str, Any]) -> None:
        """Spark will not ask for these slots again: delete what is staged for them."""
        done = SourceOffset.from_json(end)
        if done.run is None:
            return
        for agent, slot in done.slots.items():
            SlotStore(self.options.staging_dir, done.run, agent).prune(slot)

    def stop(self) -> None:
        if self._prober is not None:
            self._prober.close()
            self._prober = None
