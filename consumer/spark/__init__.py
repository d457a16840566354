"""A Structured Streaming source for Spark >= 4 that reads Flume/flumelet SparkSinks, exactly once.

    from consumer.spark import FlumeDataSource
    spark.dataSource.register(FlumeDataSource)
    events = (spark.readStream.format("flume")
              .option("addresses", "agent1:9999,agent2:9999")
              .option("stagingDir", "/shared/flume-staging/top-urls")
              .load())            # headers map<string,string>, body binary, agent string

The only part of flumelet that needs pyspark (``pip install flumelet[spark]``). The agents run
flumelet or Apache Flume with Spark 2.4's SparkSink: the wire is the same SparkFlumeProtocol
(``getEventBatch`` / ``ack`` / ``nack``) that ``FlumeUtils.createPollingStream`` spoke.

Where things run
----------------
* Driver (Spark's Python streaming-source worker): ``latestOffset``, ``partitions``,
  ``commit``. It never moves event data; it keeps one ``getEventBatch(1)`` probe pending per
  agent (nacked at once) to learn which agents have events (``consumer.spark.probe``).
* Executors: ``read``, one task per agent per micro-batch; the tasks pull, stage and ack
  (``consumer.spark.slots``). N agents are read by N tasks in parallel.

Offsets (``consumer.spark.offsets``)
-----------------------------------
A SparkSink cannot be asked "what is at position p": a batch exists only once it is taken, and
it is taken by whoever polls. So an offset does not name events; it counts *slots*:
``{"run": "9f2c...", "slots": {"agent1:9999": 41, "agent2:9999": 40}}``. ``latestOffset`` gives
each agent that has events one more slot; a micro-batch from ``start`` to ``end`` reads slot
``end[a]`` of each agent that grew. What a slot holds is decided by the first task that fills
it, and from then on it is fixed on disk.

Exactly once
------------
A SparkSink batch is a transaction on the agent: ``ack`` commits it, ``nack``, the sink's
``timeout`` or (flumelet) its poller hanging up roll it back, and a rolled-back batch is
served again later under a new sequence number. Spark, for its part, may run a micro-batch's
tasks again (task retry, executor loss, or a driver restarted on its checkpoint re-running the
last planned batch) and requires every run to see the same rows. The two meet in the
*staging directory* (``stagingDir``), keyed by the deterministic id (run, agent, slot):

1. A task takes the slot's lock. If the slot is sealed, it returns the staged rows and never
   talks to the agent: that is a re-run.
2. Otherwise it polls the agent. SparkSink batches (up to ``maxUnackedBatches`` at a time) are
   written to a part file and fsynced, and only then acked. The slot ends at its share of
   ``maxEventsPerTrigger``, on a partial batch (the channel is drained), or after
   ``pollTimeoutMs`` without events.
3. It seals the slot (``sealed.json``: parts, which acks were proven, expected digests) and
   only then returns rows. A task killed before the seal returns nothing, so every attempt
   that delivers rows delivers the same rows; its re-run adopts the parts already staged.
4. ``commit(end)``, called once Spark's commit log has the batch, deletes the staged slots
   below ``end`` and the parts of ``end`` itself, keeping its seal for the next slot.

Staging before acking means a crash can only ever leave events counted but not acked, never
acked but not counted. Those events come back from the agent, and must be recognised:

* An ack is *proven* when flumelet's SparkSink says ``committed`` in the reply's call
  metadata (``protocol.ackproof``), or, with Spark's own SparkSink (which answers ``ack`` even
  for a sequence number it no longer knows: rolled back at its timeout, or handed out before
  an agent restart), when the connection the batch came on stayed up until the ack returned,
  within 90% of ``sinkTimeoutMs`` (``consumer.spark.pull``).
* A batch whose ack is not proven (the ack failed; the agent died; the task died after staging)
  has its event digests carried in the slot's seal as *pending*. The next slot of that agent
  drops events matching a pending digest, once per digest (``consumer.spark.redelivery``).
  Redelivered events come back at the head of the channel (rollback, or a file channel's
  replay after an agent restart), so pending digests are forgotten only when a slot that
  started after ``redeliveryTimeoutMs`` (> the sink's timeout) pulled events and matched none
  of them. An agent that is down keeps them expected until it is back.
* The digest is over headers and body. Two events identical in both are told apart by count,
  not identity, so the one inexact case left is a crash *between an ack that reached the agent
  and its proof* (the task or the agent dies in between, or Spark's own sink committed a batch
  whose connection had dropped), followed within the window by a new event identical to one of
  that batch's: the new one is dropped once.

Spark's side of the contract then holds as for any replayable source: with a file sink (its
manifest is keyed by batch id) or an idempotent ``foreachBatch`` keyed by ``batch_id``, the
results are exactly once across driver kills; aggregation state is versioned by batch id.
The memory and console sinks lose their output with the driver, as always.

Limits
------
* ``stagingDir`` must be a POSIX file system seen by the driver and every executor (local disk
  in local mode; NFS or another shared mount on a cluster) with working ``flock`` and atomic
  ``rename``; object stores are not supported. Use one directory per query.
* Each part is fsynced: a slot costs one fsync (plus one of its directory) per
  ``maxUnackedBatches`` SparkSink batches, and the agent one channel commit per batch.
* A SparkSink's ``threads`` (default 10) must exceed ``maxUnackedBatches`` + 2 (a task holds
  that many batches, one poll in flight, and the driver's probe one); otherwise tasks wait
  ``pollTimeoutMs`` for a batch the sink cannot hand out. Apache Flume's SparkSink fails every
  poll larger than the channel's ``transactionCapacity``: keep ``maxBatchSize`` at or below it
  (flumelet's sink serves smaller batches instead).
* ``Trigger.AvailableNow`` is not supported: "everything available" is not knowable from a
  SparkSink.
"""

from __future__ import annotations

from typing import Any

try:
    from consumer.spark.source import FlumeDataSource, FlumeStreamReader
except ImportError as exc:  # the spark extra is missing: the pure parts still import
    _MISSING: ImportError | None = exc
else:
    _MISSING = None

__all__ = ["FlumeDataSource", "FlumeStreamReader"]


def __getattr__(name: str) -> Any:
    """Only reached when the spark extra is missing: say what to install."""
    if name in __all__ and _MISSING is not None:
        raise ImportError(f"consumer.spark needs the spark extra: pip install 'flumelet[spark]' "
                          f"({_MISSING})") from _MISSING
    raise AttributeError(f"module 'consumer.spark' has no attribute {name!r}")
