"""The SparkSink's ack proof: an extension of SparkFlumeProtocol carried in call metadata.

Spark's SparkSink answers ``ack`` and ``nack`` with ``null`` whatever happened, even for a
sequence number it never issued (an agent restarted since the batch was served): a poller
cannot tell a committed batch from one the agent's channel will serve again. flumelet's
SparkSink answers the same ``null`` and adds one entry to the response's call metadata,
which Spark's Java receiver reads and ignores, so the wire stays compatible both ways:

``flumelet.ack`` = ``committed``   the take was committed in the channel: the batch is gone;
                 ``rolled-back``   (a nack, or a commit that failed) its events come back;
                 ``unknown``       no open batch has this number (expired, or another run).
"""

from __future__ import annotations

ACK_META_KEY = "flumelet.ack"
COMMITTED = b"committed"
ROLLED_BACK = b"rolled-back"
UNKNOWN = b"unknown"

__all__ = ["ACK_META_KEY", "COMMITTED", "ROLLED_BACK", "UNKNOWN"]
