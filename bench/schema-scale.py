#!/usr/bin/env python3
"""Query latency against a large schema (100,000 series on 10,000 devices), through the Python client.

A query should cost what it matches, not the size of the schema: an exact path, one device's
series, SHOW TIMESERIES of one path, and ALIGN BY DEVICE over 1,111 and 10,000 devices (each of
which holds a point only on every ninth device); then SHOW CHILD PATHS / NODES, COUNT NODES and
SHOW DEVICES, with 1,000 more (empty) databases.

    .venv/bin/python bench/schema-scale.py [BIN_DIR] [PORT] [SERIES]
BIN_DIR defaults to target/release (build it first: cargo build --release -p duet-server); the
.venv is the one tests/python/run.sh makes (apache-iotdb). Pass another BIN_DIR (an older build) to
compare in the same run.
"""
import os, sys, time

from iotdb.utils.IoTDBConstants import Compressor, TSDataType, TSEncoding

from duetserver import running

repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
bindir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(repo, "target", "release")
port = int(sys.argv[2]) if len(sys.argv) > 2 else 18801
n = int(sys.argv[3]) if len(sys.argv) > 3 else 100_000
with running(bindir, port, "duet-scale.") as s:
    t0 = time.time()
    for b in range(0, n, 5000):
        paths = [f"root.many.d{i // 10}.s{i % 10}" for i in range(b, min(b + 5000, n))]
        k = len(paths)
        s.create_multi_time_series(paths, [TSDataType.DOUBLE] * k, [TSEncoding.GORILLA] * k, [Compressor.LZ4] * k)
    print(f"{bindir}: {n} series created in {time.time() - t0:.1f} s")
    s.execute_non_query_statement("insert into root.q.d1(time, s1) values (1, 1)")
    devices = n // 10
    for d in range(0, devices, 9):
        s.execute_non_query_statement(f"insert into root.many.d{d}(time, s1) values (1, {d})")

    def lat(name, sql, runs=20):
        t0 = time.time()
        for _ in range(runs):
            s.execute_query_statement(sql).todf()
        print(f"  {name:<34} {(time.time() - t0) / runs * 1000:9.2f} ms")

    lat("select s1 from root.q.d1", "select s1 from root.q.d1")
    lat("select count(s1) from root.q.d1", "select count(s1) from root.q.d1")
    lat("show timeseries root.q.d1.s1", "show timeseries root.q.d1.s1")
    lat("select * from root.many.d5", "select * from root.many.d5")
    lat("align by device, root.many.d1*", "select s1 from root.many.d1* align by device", runs=1)
    lat(f"align by device, all {devices} devices", "select s1 from root.many.* align by device", runs=1)
    # Schema statements over one device, and over the whole tree, with 1,000 more databases.
    for k in range(1000):
        s.execute_non_query_statement(f"create database root.sg{k:04}")
    lat("show child paths root.many.d5", "show child paths root.many.d5", runs=5)
    lat("show child nodes root.many", "show child nodes root.many", runs=1)
    lat("count nodes root.** level=2", "count nodes root.** level=2", runs=1)
    lat("show devices root.many.d5", "show devices root.many.d5", runs=5)
