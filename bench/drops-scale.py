#!/usr/bin/env python3
"""Query latency after many series drops, through the Python client.

Each DROP TIMESERIES leaves a tombstone (its points may still sit in files, and a replica's older
write may still arrive); a query over series the drops never touched should not pay for them.
200 series of 1,000 points are written, then DROPS other series are created and dropped one
statement each, and three queries are timed (median of 11): one series, count() over the 200,
and a raw read of the 200 (LIMIT 100).

    .venv/bin/python bench/drops-scale.py [BIN_DIR] [DROPS...]
BIN_DIR defaults to target/release (cargo build --release -p duet-server first); DROPS defaults
to 0 5000 20000. Pass another BIN_DIR (an older build) to compare in the same run.
"""
import os, sys, time

from iotdb.utils.IoTDBConstants import TSDataType
from iotdb.utils.Tablet import Tablet

from duetserver import running

repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
bindir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(repo, "target", "release")
counts = [int(x) for x in sys.argv[2:]] or [0, 5000, 20000]
port = 18802


def median_ms(s, sql, n=11):
    xs = []
    for _ in range(n):
        t = time.perf_counter()
        ds = s.execute_query_statement(sql)
        while ds.has_next():
            ds.next()
        ds.close_operation_handle()
        xs.append((time.perf_counter() - t) * 1000)
    return sorted(xs)[n // 2]


for drops in counts:
    with running(bindir, port, "duet-drops.") as s:
        ts = list(range(1000))
        s.insert_tablets([Tablet(f"root.q.d{i}", ["s1"], [TSDataType.INT64], [[t] for t in ts], ts) for i in range(200)])
        if drops:
            s.insert_tablets([Tablet(f"root.tmp.e{i}", ["s1"], [TSDataType.INT64], [[1]], [1]) for i in range(drops)])
        for i in range(drops):
            s.execute_non_query_statement(f"drop timeseries root.tmp.e{i}.s1")
        one = median_ms(s, "select s1 from root.q.d1")
        count = median_ms(s, "select count(s1) from root.q.**")
        raw = median_ms(s, "select s1 from root.q.** limit 100")
        print(f"drops={drops}: one series {one:.2f} ms, count over 200 series {count:.2f} ms, raw 200 series {raw:.2f} ms")
