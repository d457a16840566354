"""Spark's classic top-URLs job as a Structured Streaming query over Flume/flumelet agents.

Hits per URL of Apache access-log lines in 5-minute event-time windows sliding every minute,
read from the agents' SparkSinks with the ``flume`` source (``consumer.spark``), exactly once:

    python configs/spark/top_urls.py --addresses host1:9999,host2:9999 \\
        --staging /shared/flume-staging/top-urls --checkpoint /shared/checkpoints/top-urls \\
        --output /data/top-urls          # parquet: window_start, window_end, url, count

(or ``spark-submit configs/spark/top_urls.py ...`` on a cluster). Without ``--output`` the ten
busiest URLs of each window updated by a micro-batch are printed instead.

With ``--output``, a window is written once, when the watermark (the newest event time seen
minus ``--watermark``) passes its end: later events for it are dropped as late, so choose the
watermark larger than the agents' delivery delay. Restarted on the same ``--checkpoint`` and
``--staging`` after a crash, the job writes every window exactly once with exact counts.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Sequence
from typing import Any

# The classic example's pattern (Apache combined format); group 4 is the time, 6 the URL.
LOG_PATTERN = (r'^(\S+) (\S+) (\S+) \[([^\]]+)\] "(\S+) (\S+)\s*(\S*)" (\d{3}) (\d+|-) '
               r'"([^"]*)" "([^"]*)"')
TIME_FORMAT = "dd/MMM/yyyy:HH:mm:ss Z"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--addresses", required=True, help="host:port,... of the agents' SparkSinks")
    p.add_argument("--staging", required=True, help="the source's stagingDir (one per query)")
    p.add_argument("--checkpoint", required=True, help="the query's checkpointLocation")
    p.add_argument("--output", help="write finished windows here (parquet) instead of printing")
    p.add_argument("--master", help="Spark master (default: spark-submit's, else local[*])")
    p.add_argument("--watermark", default="10 minutes")
    p.add_argument("--trigger", default="1 second", help="processing-time trigger interval")
    p.add_argument("--max-events-per-trigger", type=int, default=100_000)
    p.add_argument("--max-batch-size", type=int, default=1000)
    p.add_argument("--shuffle-partitions", type=int, default=8,
                   help="spark.sql.shuffle.partitions: state store partitions (Spark: 200)")
    p.add_argument("--conf", action="append", default=[], metavar="KEY=VALUE",
                   help="any other Spark setting (repeatable)")
    return p.parse_args(argv)


def url_hits(spark: Any, args: argparse.Namespace) -> Any:
    """The streaming DataFrame of (time, url), one row per well-formed line."""
    from pyspark.sql.functions import col, regexp_extract, to_timestamp

    from consumer.spark import FlumeDataSource

    spark.dataSource.register(FlumeDataSource)
    lines = (spark.readStream.format("flume")
             .option("addresses", args.addresses)
             .option("stagingDir", args.staging)
             .option("maxEventsPerTrigger", args.max_events_per_trigger)
             .option("maxBatchSize", args.max_batch_size)
             .option("bodyDecoder", "utf-8")
             .load())
    return (lines
            .select(regexp_extract("body", LOG_PATTERN, 6).alias("url"),
                    to_timestamp(regexp_extract("body", LOG_PATTERN, 4), TIME_FORMAT)
                    .alias("time"))
            .where((col("url") != "") & col("time").isNotNull()))


def window_counts(hits: Any, watermark: str) -> Any:
    from pyspark.sql.functions import col, window

    return (hits.withWatermark("time", watermark)
            .groupBy(window("time", "5 minutes", "1 minute"), "url")
            .count()
            .select(col("window.start").alias("window_start"),
                    col("window.end").alias("window_end"), "url", "count"))


def print_top(batch: Any, batch_id: int) -> None:
    """foreachBatch: the ten busiest URLs of each window this micro-batch changed."""
    from pyspark.sql import Window
    from pyspark.sql.functions import col, row_number

    rank = Window.partitionBy("window_start").orderBy(col("count").desc(), col("url"))
    top = (batch.withColumn("rank", row_number().over(rank)).where("rank <= 10")
           .orderBy("window_start", "rank").collect())
    print(f"-------------------------------------------\nBatch: {batch_id}")
    for row in top:
        print(f"{row.window_start:%Y-%m-%d %H:%M}  {row['count']:>8}  {row.url}")
    sys.stdout.flush()


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # local workers: this interpreter
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName("flume-top-urls")
    if args.master:
        builder = builder.master(args.master)
    for setting in args.conf:
        key, _, value = setting.partition("=")
        builder = builder.config(key, value)
    spark = (builder.config("spark.sql.shuffle.partitions", str(args.shuffle_partitions))
             .config("spark.sql.session.timeZone", "UTC")
             .getOrCreate())
    counts = window_counts(url_hits(spark, args), args.watermark)
    writer = counts.writeStream.option("checkpointLocation", args.checkpoint) \
        .trigger(processingTime=args.trigger)
    if args.output:
        query = writer.outputMode("append").format("parquet").start(args.output)
    else:
        query = writer.outputMode("update").foreachBatch(print_top).start()
    signal.signal(signal.SIGTERM, lambda *_: query.stop())
    query.awaitTermination()
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
