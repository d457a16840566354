"""Sans-I/O Avro IPC as spoken by Apache Flume and Spark's Flume integration.

Everything here except :mod:`protocol.transport` is pure: bytes in, typed messages out.
"""
