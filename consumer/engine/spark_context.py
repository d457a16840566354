"""A light ``SparkContext`` stand-in, so PySpark jobs run with only their imports changed.

It owns nothing heavy: ``parallelize`` builds a list-backed :class:`~consumer.engine.rdd.RDD`,
``setLogLevel`` maps Spark's level names onto Python logging, and everything else a
streaming job touches (appName, master, conf, broadcast, accumulator) is accepted and kept.
Unlike Spark, several contexts may coexist (tests create many); nothing is shared globally
except the ``getOrCreate`` singleton.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any, ClassVar

from consumer.engine.rdd import RDD

__all__ = ["Accumulator", "Broadcast", "SparkConf", "SparkContext"]

FLUMELET_LOGGERS = ("consumer", "protocol", "common")
_LOG_LEVELS = {
    "ALL": logging.NOTSET, "TRACE": logging.DEBUG, "DEBUG": logging.DEBUG, "INFO": logging.INFO,
    "WARN": logging.WARNING, "ERROR": logging.ERROR, "FATAL": logging.CRITICAL,
    "OFF": logging.CRITICAL + 10,
}


class SparkConf:
    """Key/value settings, kept only so ``SparkContext(conf=...)`` jobs run."""

    def __init__(self, loadDefaults: bool = True) -> None:
        self._values: dict[str, str] = {}

    def set(self, key: str, value: Any) -> SparkConf:
        self._values[key] = str(value)
        return self

    def setAppName(self, value: str) -> SparkConf:
        return self.set("spark.app.name", value)

    def setMaster(self, value: str) -> SparkConf:
        return self.set("spark.master", value)

    def setAll(self, pairs: Iterable[tuple[str, Any]]) -> SparkConf:
        for k, v in pairs:
            self.set(k, v)
        return self

    def get(self, key: str, defaultValue: str | None = None) -> str | None:
        return self._values.get(key, defaultValue)

    def getAll(self) -> list[tuple[str, str]]:
        return list(self._values.items())

    def contains(self, key: str) -> bool:
        return key in self._values


class Broadcast:
    """``sc.broadcast(v).value``: in one process a broadcast is just a reference."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def unpersist(self, blocking: bool = False) -> None:
        return None

    def destroy(self) -> None:
        return None


class Accumulator:
    """``sc.accumulator(0)``; ``add``/``+=`` from job functions, ``.value`` on the driver."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def add(self, term: Any) -> None:
        self.value += term

    def __iadd__(self, term: Any) -> Accumulator:
        self.add(term)
        return self


class SparkContext:
    """Accepts PySpark's constructor arguments; ``appName``/``master`` are informational."""

    _active: ClassVar[SparkContext | None] = None
    defaultParallelism = 2

    def __init__(self, master: str | None = None, appName: str | None = None,
                 sparkHome: str | None = None, pyFiles: Any = None, environment: Any = None,
                 batchSize: int = 0, serializer: Any = None, conf: SparkConf | None = None,
                 gateway: Any = None, jsc: Any = None, profiler_cls: Any = None) -> None:
        self._conf = conf or SparkConf()
        self.master = master or self._conf.get("spark.master") or "local[*]"
        self.appName = appName or self._conf.get("spark.app.name") or "flumelet"
        self.sparkHome = sparkHome
        self._stopped = False
        self._checkpoint_dir: str | None = None
        SparkContext._active = self

    @classmethod
    def getOrCreate(cls, conf: SparkConf | None = None) -> SparkContext:
        if cls._active is None or cls._active._stopped:
            return cls(conf=conf)
        return cls._active

    def getConf(self) -> SparkConf:
        return self._conf

    @property
    def version(self) -> str:
        return "2.4.8-flumelet"

    def parallelize(self, c: Iterable[Any], numSlices: int | None = None) -> RDD:
        data = list(c)
        return RDD(data, self, numSlices or (self.defaultParallelism if data else 1))

    def emptyRDD(self) -> RDD:
        return RDD([], self, 0)

    def union(self, rdds: list[RDD]) -> RDD:
        out = RDD([], self, 0)
        for r in rdds:
            out = out.union(r)
        return out

    def broadcast(self, value: Any) -> Broadcast:
        return Broadcast(value)

    def accumulator(self, value: Any, accum_param: Any = None) -> Accumulator:
        return Accumulator(value)

    def setCheckpointDir(self, dirName: str) -> None:
        self._checkpoint_dir = dirName

    def setLogLevel(self, logLevel: str) -> None:
        """Spark's level names (ALL, DEBUG, ERROR, FATAL, INFO, OFF, TRACE, WARN)."""
        level = _LOG_LEVELS.get(logLevel.upper())
        if level is None:
            raise ValueError(
                f"Supplied level {logLevel} did not match one of: {','.join(_LOG_LEVELS)}")
        for name in FLUMELET_LOGGERS:  # every logger flumelet's consumer side logs to
            logging.getLogger(name).setLevel(level)

    def stop(self) -> None:
        self._stopped = True
        if SparkContext._active is self:
            SparkContext._active = None
