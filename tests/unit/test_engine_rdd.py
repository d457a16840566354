"""The list-backed RDD: PySpark's methods and results on small inputs."""

from __future__ import annotations

import operator

import pytest

from consumer import SparkContext
from consumer.engine.rdd import RDD


@pytest.fixture
def sc():
    return SparkContext(appName="rdd")


def test_basic_transformations(sc):
    r = sc.parallelize([1, 2, 3, 4])
    assert r.map(lambda x: x * 2).collect() == [2, 4, 6, 8]
    assert r.flatMap(lambda x: [x] * x).count() == 10
    assert r.filter(lambda x: x % 2).collect() == [1, 3]
    assert r.mapPartitions(lambda it: [sum(it)]).collect() == [10]
    assert r.glom().collect() == [[1, 2, 3, 4]]
    assert r.distinct().count() == 4
    assert r.union(sc.parallelize([5])).collect() == [1, 2, 3, 4, 5]
    assert r.reduce(operator.add) == 10 and r.fold(0, operator.add) == 10 and r.sum() == 10
    assert r.take(2) == [1, 2] and r.first() == 1
    assert r.top(2) == [4, 3] and r.takeOrdered(2, key=lambda x: -x) == [4, 3]
    assert r.getNumPartitions() == 2 and r.repartition(8) is r and not r.isEmpty()
    assert bool(sc.emptyRDD()) is True  # RDDs are always truthy, as in PySpark


def test_pair_operations(sc):
    r = sc.parallelize([("a", 1), ("b", 2), ("a", 3)])
    assert r.reduceByKey(operator.add).collect() == [("a", 4), ("b", 2)]
    assert [(k, list(v)) for k, v in r.groupByKey().collect()] == [("a", [1, 3]), ("b", [2])]
    assert dict(r.countByKey()) == {"a": 2, "b": 1}
    assert r.mapValues(lambda v: v * 10).values().collect() == [10, 20, 30]
    assert r.flatMapValues(lambda v: range(v)).count() == 6
    assert r.keys().collect() == ["a", "b", "a"]
    assert r.sortByKey(ascending=False).collect()[0] == ("b", 2)
    assert r.sortBy(lambda kv: kv[1], False).collect() == [("a", 3), ("b", 2), ("a", 1)]
    other = sc.parallelize([("a", "x"), ("c", "y")])
    assert r.join(other).collect() == [("a", (1, "x")), ("a", (3, "x"))]
    assert r.leftOuterJoin(other).collect() == [("a", (1, "x")), ("a", (3, "x")),
                                                ("b", (2, None))]
    assert r.rightOuterJoin(other).collect()[-1] == ("c", (None, "y"))
    assert len(r.fullOuterJoin(other).collect()) == 4
    assert [(k, list(a), list(b)) for k, (a, b) in r.cogroup(other).collect()] == [
        ("a", [1, 3], ["x"]), ("b", [2], []), ("c", [], ["y"])]
    assert dict(sc.parallelize(["x", "y", "x"]).countByValue()) == {"x": 2, "y": 1}


def test_pyspark_error_texts(sc):
    with pytest.raises(ValueError, match="Can not reduce\\(\\) empty RDD"):
        sc.parallelize([]).reduce(operator.add)
    with pytest.raises(ValueError, match="RDD is empty"):
        sc.parallelize([]).first()


def test_zero_partition_rdd_skips_partition_functions():
    calls = []
    RDD([], None, 0).foreachPartition(calls.append)
    assert RDD([], None, 0).mapPartitions(lambda it: [1]).collect() == []
    assert calls == []
    assert RDD([], None, 1).mapPartitions(lambda it: [1]).collect() == [1]


def test_save_as_text_file_layout(sc, tmp_path):
    path = tmp_path / "out"
    sc.parallelize([("a", 1), "b"]).saveAsTextFile(str(path))
    assert (path / "part-00000").read_text() == "('a', 1)\nb\n"
    assert (path / "_SUCCESS").exists()
