"""The query engine through the official IoTDB Python client (apache-iotdb 2.0.11).

Aggregations, GROUP BY time and LEVEL, HAVING, FILL, LAST, ALIGN BY DEVICE, expressions and the
SHOW family, with results checked against values computed here in Python from the same data, over
both protocols (the `session` fixture) and with fetch_size=3, so most results page through
fetchResultsV2. Session time zones, which the SQL golden files cannot set, are covered here.

The benchmark at the end loads the standard workload and times queries; it is skipped unless
DUET_BENCH=1 (use a release server: DUETDB_BIN=target/release/duetdb).
"""

import math
import os
import random
import statistics
import time

import numpy as np
import pytest

from iotdb.utils.exception import StatementExecutionException
from iotdb.utils.IoTDBConstants import TSDataType
from iotdb.utils.NumpyTablet import NumpyTablet
from iotdb.utils.Tablet import Tablet

from duet_helpers import count_client_calls, fval, py_value, query, read_dataset, uncount_client_calls

T = TSDataType


def close(a, b):
    if a is None or b is None:
        return a is b
    return math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-9)


def random_series(seed, n, t0=0, step_max=40, null_every=0):
    """Sorted unique timestamps and values (None = null) for one series."""
    rnd = random.Random(seed)
    times, t = [], t0
    for _ in range(n):
        t += rnd.randint(1, step_max)
        times.append(t)
    vals = [None if null_every and i % null_every == 3 else round(rnd.uniform(-50, 50), 2) for i in range(n)]
    return times, vals


def write_double_int(session, dev, times, dvals, ivals):
    """One tablet with a DOUBLE column d and an INT32 column i (rows where both are null are skipped)."""
    rows = [(t, d, i) for t, d, i in zip(times, dvals, ivals) if not (d is None and i is None)]
    session.insert_tablet(Tablet(dev, ["d", "i"], [T.DOUBLE, T.INT32], [[d, i] for _, d, i in rows], [t for t, _, _ in rows]))


def points(times, vals):
    return [(t, v) for t, v in zip(times, vals) if v is not None]


def expected_aggs(pts):
    """IoTDB's aggregates of (time, value) points: count, sum, avg, min, max, first, last, min/max time, extreme."""
    if not pts:
        return dict(count=0, sum=None, avg=None, min=None, max=None, first=None, last=None, min_time=None, max_time=None, extreme=None)
    vals = [v for _, v in pts]
    lo, hi = min(vals), max(vals)
    s = 0.0
    for v in vals:
        s += v
    return dict(
        count=len(vals),
        sum=s,
        avg=s / len(vals),
        min=lo,
        max=hi,
        first=pts[0][1],
        last=pts[-1][1],
        min_time=pts[0][0],
        max_time=pts[-1][0],
        extreme=hi if abs(hi) >= abs(lo) else lo,
    )


# ------------------------------------------------------------------------------------------------
# Aggregations
# ------------------------------------------------------------------------------------------------


def test_aggregations_names_types_and_values(session, db):
    dev = f"{db}.d"
    times, dvals = random_series(1, 200, null_every=7)
    ivals = [None if v is None or k % 5 == 0 else int(v) for k, v in enumerate(dvals)]
    write_double_int(session, dev, times, dvals, ivals)
    res = query(
        session,
        f"SELECT count(d), sum(d), avg(d), min_value(d), max_value(d), extreme(d), first_value(d), last_value(d), "
        f"min_time(d), max_time(d), count(i), sum(i), max_value(i) FROM {dev}",
    )
    assert not res.has_time, "an aggregation without GROUP BY time has no Time column"
    names = ["count", "sum", "avg", "min_value", "max_value", "extreme", "first_value", "last_value", "min_time", "max_time"]
    assert res.columns == [f"{n}({dev}.d)" for n in names] + [f"count({dev}.i)", f"sum({dev}.i)", f"max_value({dev}.i)"]
    assert res.types == [T.INT64, T.DOUBLE, T.DOUBLE, T.DOUBLE, T.DOUBLE, T.DOUBLE, T.DOUBLE, T.DOUBLE, T.INT64, T.INT64, T.INT64, T.DOUBLE, T.INT32]
    assert len(res.rows) == 1
    row = res.rows[0]
    e = expected_aggs(points(times, dvals))
    got = dict(zip(names, row[:10]))
    assert got["count"] == e["count"] and got["min_time"] == e["min_time"] and got["max_time"] == e["max_time"]
    for k in ["sum", "avg", "min_value", "max_value", "extreme", "first_value", "last_value"]:
        key = {"min_value": "min", "max_value": "max", "first_value": "first", "last_value": "last"}.get(k, k)
        assert close(got[k], e[key]), (k, got[k], e[key])
    ei = expected_aggs(points(times, ivals))
    assert row[10] == ei["count"] and close(row[11], ei["sum"]) and row[12] == ei["max"]


def test_aggregation_of_nothing(session, db):
    session.execute_non_query_statement(f"CREATE TIMESERIES {db}.d.v DOUBLE")
    res = query(session, f"SELECT count(v), avg(v), first_value(v), max_time(v) FROM {db}.d")
    assert res.rows == [[0, None, None, None]]


def test_wildcards_filters_and_expressions(session, db):
    data = {}
    for k in range(3):
        times, vals = random_series(10 + k, 60, null_every=5)
        ivals = [None if v is None else int(v * 2) for v in vals]
        write_double_int(session, f"{db}.dev{k}", times, vals, ivals)
        data[k] = (times, vals, ivals)
    res = query(session, f"SELECT count(*) FROM {db}.**")
    want = []
    for k in range(3):
        times, vals, ivals = data[k]
        want += [len(points(times, vals)), len(points(times, ivals))]
    assert res.columns == [f"count({db}.dev{k}.{m})" for k in range(3) for m in ("d", "i")]
    assert res.rows == [want]

    # A value filter: only points at timestamps where the device's d is positive.
    times, vals, ivals = data[0]
    res = query(session, f"SELECT count(i), sum(i) FROM {db}.dev0 WHERE d > 0 AND time >= 100")
    sel = [(t, i) for t, d, i in zip(times, vals, ivals) if d is not None and d > 0 and t >= 100 and i is not None]
    assert res.rows[0][0] == len(sel) and close(res.rows[0][1], float(sum(i for _, i in sel)) if sel else None)

    # Expressions over aggregates and raw expressions are named with full paths.
    res = query(session, f"SELECT sum(d) / count(d), count(d) + 1 AS n FROM {db}.dev1")
    e = expected_aggs(points(data[1][0], data[1][1]))
    assert res.columns == [f"sum({db}.dev1.d) / count({db}.dev1.d)", "n"]
    assert close(res.rows[0][0], e["sum"] / e["count"]) and res.rows[0][1] == e["count"] + 1
    res = query(session, f"SELECT d + i, d * 2 FROM {db}.dev2 WHERE time <= 300")
    assert res.columns == ["Time", f"{db}.dev2.d + {db}.dev2.i", f"{db}.dev2.d * 2"]
    times, vals, ivals = data[2]
    want = [[t, None if d is None or i is None else d + i, None if d is None else d * 2] for t, d, i in zip(times, vals, ivals) if t <= 300 and d is not None]
    assert len(res.rows) == len(want)
    for got, w in zip(res.rows, want):
        assert got[0] == w[0] and close(got[1], w[1]) and close(got[2], w[2])


def test_aggregates_see_out_of_order_overwritten_and_deleted_points(session, db):
    dev = f"{db}.d"
    session.insert_tablet(Tablet(dev, ["v"], [T.INT64], [[5], [1], [3]], [50, 10, 30]))
    session.insert_tablet(Tablet(dev, ["v"], [T.INT64], [[2], [4]], [20, 40]))
    session.insert_tablet(Tablet(dev, ["v"], [T.INT64], [[300]], [30]))  # overwrite
    session.execute_non_query_statement(f"DELETE FROM {dev}.v WHERE time >= 40 AND time <= 45")
    res = query(session, f"SELECT count(v), sum(v), min_value(v), max_value(v), first_value(v), last_value(v) FROM {dev}")
    assert res.rows == [[4, 308.0, 1, 300, 1, 5]]
    res = query(session, f"SELECT count(v) FROM {dev} GROUP BY ([0, 60), 20ms)")
    assert res.rows == [[0, 1], [20, 2], [40, 1]]


# ------------------------------------------------------------------------------------------------
# GROUP BY
# ------------------------------------------------------------------------------------------------


def windows(start, end, interval, step, left_open=False):
    out, s = [], start
    while s < end:
        e = min(s + interval, end)
        out.append((s + 1, e, e) if left_open else (s, e - 1, s))  # (lo, hi, shown)
        s += step
    return out


@pytest.mark.parametrize("left_open,interval,step", [(False, 100, 100), (True, 100, 100), (False, 150, 50), (False, 30, 100)])
def test_group_by_time_windows_match_python(session, db, left_open, interval, step):
    dev = f"{db}.d"
    times, vals = random_series(3, 150, t0=0, step_max=12, null_every=9)
    write_double_int(session, dev, times, vals, [None] * len(times))
    pts = points(times, vals)
    start, end = 0, 1400  # past the data, so the last windows are empty
    rng = f"({start}, {end}]" if left_open else f"[{start}, {end})"
    step_sql = f", {step}ms" if step != interval else ""
    res = query(session, f"SELECT count(d), avg(d), max_value(d), last_value(d) FROM {dev} GROUP BY ({rng}, {interval}ms{step_sql})")
    assert res.has_time and res.columns == ["Time", f"count({dev}.d)", f"avg({dev}.d)", f"max_value({dev}.d)", f"last_value({dev}.d)"]
    want = []
    for lo, hi, shown in windows(start, end, interval, step, left_open):
        e = expected_aggs([(t, v) for t, v in pts if lo <= t <= hi])
        want.append([shown, e["count"], e["avg"], e["max"], e["last"]])
    assert len(res.rows) == len(want)
    for got, w in zip(res.rows, want):
        assert got[0] == w[0] and got[1] == w[1], (got, w)
        assert all(close(a, b) for a, b in zip(got[2:], w[2:])), (got, w)
    assert any(w[1] == 0 for w in want), "some windows must be empty"


def test_group_by_paging_ordering_having_fill(session, db):
    dev = f"{db}.d"
    session.insert_tablet(Tablet(dev, ["v"], [T.DOUBLE], [[1.0], [2.0], [4.0], [8.0]], [1, 2, 7, 13]))
    base = f"SELECT count(v), sum(v) FROM {dev} GROUP BY ([0, 15), 3ms)"
    assert query(session, base).rows == [[0, 2, 3.0], [3, 0, None], [6, 1, 4.0], [9, 0, None], [12, 1, 8.0]]
    assert query(session, base + " ORDER BY TIME DESC LIMIT 2").rows == [[12, 1, 8.0], [9, 0, None]]
    assert query(session, base + " LIMIT 2 OFFSET 2").rows == [[6, 1, 4.0], [9, 0, None]]
    assert query(session, base + " HAVING count(v) > 0").rows == [[0, 2, 3.0], [6, 1, 4.0], [12, 1, 8.0]]
    assert query(session, base + " FILL(PREVIOUS)").rows == [[0, 2, 3.0], [3, 0, 3.0], [6, 1, 4.0], [9, 0, 4.0], [12, 1, 8.0]]
    assert query(session, base + " FILL(LINEAR)").rows == [[0, 2, 3.0], [3, 0, 3.5], [6, 1, 4.0], [9, 0, 6.0], [12, 1, 8.0]]
    assert query(session, base + " FILL(-1)").rows == [[0, 2, 3.0], [3, 0, -1.0], [6, 1, 4.0], [9, 0, -1.0], [12, 1, 8.0]]


def test_group_by_level(session, db):
    # db.<site>.<dev>.s: level 2 is the site, level 3 the device.
    data = {}
    for k, site in enumerate(("north", "south")):
        for j, dev in enumerate(("a", "b")):
            times, vals = random_series(100 + 10 * k + j, 30)
            session.insert_tablet(Tablet(f"{db}.{site}.{dev}", ["s"], [T.DOUBLE], [[v] for v in vals], times))
            data[(site, dev)] = points(times, vals)
    level = db.count(".") + 1  # the <site> level
    res = query(session, f"SELECT count(s), max_value(s) FROM {db}.** GROUP BY LEVEL = {level}")
    stars = ".".join(["root"] + ["*"] * (level - 1))
    assert res.columns == [f"count({stars}.north.*.s)", f"count({stars}.south.*.s)", f"max_value({stars}.north.*.s)", f"max_value({stars}.south.*.s)"]
    want_counts = [sum(len(data[(site, d)]) for d in "ab") for site in ("north", "south")]
    want_max = [max(v for d in "ab" for _, v in data[(site, d)]) for site in ("north", "south")]
    assert res.rows == [want_counts + want_max]
    res = query(session, f"SELECT count(s) FROM {db}.** GROUP BY ([0, 2000), 1000ms), LEVEL = {level + 1}")
    assert res.columns == ["Time", f"count({stars}.*.a.s)", f"count({stars}.*.b.s)"]
    for row in res.rows:
        lo = row[0]
        assert row[1:] == [sum(1 for site in ("north", "south") for t, _ in data[(site, d)] if lo <= t < lo + 1000) for d in "ab"]


def test_session_time_zone_reads_literals_and_counts_months(server, compression, db_name):
    s = server.session(compression=compression)
    try:
        s.set_storage_group(db_name)
        dev = f"{db_name}.d"
        # 2024-01-31T20:00Z is already February in +08:00.
        t = [1706731200000, 1707523200000, 1709251200000]  # 01-31T20:00Z, 02-10T00:00Z, 03-01T00:00Z
        s.insert_tablet(Tablet(dev, ["v"], [T.INT64], [[1], [2], [3]], t))
        q = f"SELECT count(v) FROM {dev} GROUP BY ([2024-01-01T00:00:00, 2024-04-01T00:00:00), 1mo)"
        utc = query(s, q)
        assert [r[1] for r in utc.rows] == [1, 1, 1]
        assert utc.rows[1][0] == 1706745600000  # 2024-02-01T00:00Z
        s.set_time_zone("+08:00")
        east = query(s, q)
        assert [r[1] for r in east.rows] == [0, 2, 1]
        assert east.rows[1][0] == 1706716800000  # 2024-02-01T00:00+08:00
        res = query(s, f"SELECT v FROM {dev} WHERE time >= 2024-02-01T00:00:00 AND time < 2024-02-01T06:00:00+08:00")
        assert res.rows == [[t[0], 1]]
    finally:
        s.close()


# ------------------------------------------------------------------------------------------------
# LAST, ALIGN BY DEVICE, SHOW
# ------------------------------------------------------------------------------------------------


def test_last_query_sql_and_rpc(session, db):
    session.insert_tablet(Tablet(f"{db}.d1", ["a", "b"], [T.INT32, T.TEXT], [[1, "x"], [2, None], [3, None]], [10, 20, 30]))
    session.insert_tablet(Tablet(f"{db}.d2", ["a"], [T.FLOAT], [[1.5], [2.5]], [5, 25]))
    res = query(session, f"SELECT LAST * FROM {db}.**")
    assert res.columns == ["Time", "Timeseries", "Value", "DataType"]
    want = [[30, f"{db}.d1.a", "3", "INT32"], [10, f"{db}.d1.b", "x", "TEXT"], [25, f"{db}.d2.a", "2.5", "FLOAT"]]
    assert res.rows == want
    assert query(session, f"SELECT LAST * FROM {db}.** WHERE time >= 20").rows == [want[0], want[2]]
    assert query(session, f"SELECT LAST a FROM {db}.* ORDER BY TIMESERIES DESC").rows == [want[2], want[0]]
    rpc = read_dataset(session.execute_last_data_query([f"{db}.d1.a", f"{db}.d2.a"], 0))
    assert rpc.rows == [want[0], want[2]]


def test_align_by_device(session, db):
    session.insert_tablet(Tablet(f"{db}.d1", ["s1", "s2"], [T.INT32, T.DOUBLE], [[1, 0.5], [2, None], [None, 3.5]], [1, 2, 3]))
    session.insert_tablet(Tablet(f"{db}.d2", ["s1"], [T.INT32], [[10], [20]], [2, 4]))
    res = query(session, f"SELECT * FROM {db}.* ALIGN BY DEVICE")
    assert res.columns == ["Time", "Device", "s1", "s2"]
    assert res.rows == [[1, f"{db}.d1", 1, 0.5], [2, f"{db}.d1", 2, None], [3, f"{db}.d1", None, 3.5], [2, f"{db}.d2", 10, None], [4, f"{db}.d2", 20, None]]
    res = query(session, f"SELECT count(s1), sum(s1) FROM {db}.* ALIGN BY DEVICE")
    assert not res.has_time and res.columns == ["Device", "count(s1)", "sum(s1)"]
    assert res.rows == [[f"{db}.d1", 2, 3.0], [f"{db}.d2", 2, 30.0]]
    res = query(session, f"SELECT s1 + 1 FROM {db}.* WHERE s1 > 1 ORDER BY TIME DESC LIMIT 2 ALIGN BY DEVICE")
    assert res.rows == [[2, f"{db}.d1", 3.0], [4, f"{db}.d2", 21.0]]


def test_show_family(session, db):
    session.execute_non_query_statement(f"CREATE TIMESERIES {db}.wf1.wt1.temp FLOAT TAGS(unit=c) ATTRIBUTES(owner=ops)")
    session.execute_non_query_statement(f"CREATE TIMESERIES {db}.wf1.wt1.flag BOOLEAN TAGS(unit=flag)")
    session.execute_non_query_statement(f"CREATE TIMESERIES {db}.wf2.wt2.temp FLOAT TAGS(unit=c)")
    res = query(session, f"SHOW TIMESERIES {db}.** WHERE TAGS(unit) = 'c'")
    assert [d["Timeseries"] for d in res.dicts()] == [f"{db}.wf1.wt1.temp", f"{db}.wf2.wt2.temp"]
    res = query(session, f"SHOW TIMESERIES {db}.** WHERE unit = flag")
    assert [d["Timeseries"] for d in res.dicts()] == [f"{db}.wf1.wt1.flag"]
    level = db.count(".") + 1
    res = query(session, f"COUNT TIMESERIES {db}.** GROUP BY LEVEL = {level}")
    assert res.columns == ["Column", "count(timeseries)"] and res.rows == [[f"{db}.wf1", 2], [f"{db}.wf2", 1]]
    res = query(session, f"SHOW CHILD PATHS {db}.wf1")
    assert res.rows == [[f"{db}.wf1.wt1", "DEVICE"]]
    res = query(session, f"SHOW CHILD NODES {db}")
    assert res.rows == [["wf1"], ["wf2"]]
    res = query(session, f"SHOW DEVICES {db}.** WITH DATABASE")
    assert [r[:2] for r in res.rows] == [[f"{db}.wf1.wt1", db], [f"{db}.wf2.wt2", db]]
    assert query(session, f"COUNT DEVICES {db}.**").rows == [[2]]


def test_semantic_errors_keep_the_session(session, db):
    session.execute_non_query_statement(f"CREATE TIMESERIES {db}.d.t TEXT")
    for sql in [f"SELECT sum(t) FROM {db}.d", f"SELECT count(t), t FROM {db}.d", f"SELECT t FROM {db}.d GROUP BY ([0, 10), 1ms)"]:
        with pytest.raises(StatementExecutionException) as e:
            query(session, sql)
        assert "701" in str(e.value), str(e.value)
    assert query(session, f"SELECT count(t) FROM {db}.d").rows == [[0]]


# ------------------------------------------------------------------------------------------------
# Raw results streamed in pages
# ------------------------------------------------------------------------------------------------

PAGED_ROWS = 50_000
PAGE = 1000


def _load_paged(s, dev, lo, hi):
    """Rows lo..hi of v (INT64) = t / 10 and w (DOUBLE) = t / 4 at t = 0, 10, 20, ..."""
    ts = np.arange(lo, hi, dtype=np.int64) * 10
    s.insert_tablet(NumpyTablet(dev, ["v", "w"], [T.INT64, T.DOUBLE], [ts // 10, ts.astype(np.float64) / 4.0], ts))


def test_raw_results_stream_in_pages(server, db_name):
    """50,000 raw rows through fetchResultsV2 with fetch_size=1000 (the first 30,000 in a data file,
    the rest in the memtable): every row once and in order, ascending and descending, with
    LIMIT/OFFSET across page boundaries, and with writes between fetches (a point behind the
    position is not shown, one ahead of it is shown once, a rewritten row is not sent again)."""
    s = server.session(fetch_size=PAGE)
    try:
        s.set_storage_group(db_name)
        devs = {name: f"{db_name}.{name}" for name in ("d", "up", "down")}
        for dev in devs.values():
            _load_paged(s, dev, 0, 30_000)
        s.execute_non_query_statement("FLUSH")
        for dev in devs.values():
            _load_paged(s, dev, 30_000, PAGED_ROWS)
        dev = devs["d"]
        want = [[k * 10, k, k * 10 / 4.0] for k in range(PAGED_ROWS)]

        counter = count_client_calls(s)
        try:
            res = query(s, f"SELECT v, w FROM {dev}")
        finally:
            uncount_client_calls(s, counter)
        assert res.columns == ["Time", f"{dev}.v", f"{dev}.w"]
        assert res.rows == want
        assert counter.calls.get("fetchResultsV2", 0) >= PAGED_ROWS // PAGE - 1, counter.calls
        desc = want[::-1]
        assert query(s, f"SELECT v, w FROM {dev} ORDER BY TIME DESC").rows == desc
        for sql, expect in [
            (f"SELECT v, w FROM {dev} LIMIT 2500 OFFSET 1500", want[1500:4000]),
            (f"SELECT v, w FROM {dev} LIMIT 3001 OFFSET 28999", want[28999:32000]),
            (f"SELECT v, w FROM {dev} ORDER BY TIME DESC LIMIT 2500 OFFSET 1500", desc[1500:4000]),
            (f"SELECT v, w FROM {dev} ORDER BY TIME DESC LIMIT 3001 OFFSET 18999", desc[18999:22000]),
            (f"SELECT v, w FROM {dev} WHERE v % 3 = 0 LIMIT 2000 OFFSET 1000", [r for r in want if r[1] % 3 == 0][1000:3000]),
            (f"SELECT v, w FROM {dev} OFFSET 49500", want[49500:]),
        ]:
            assert query(s, sql).rows == expect, sql

        for name, descending in (("up", False), ("down", True)):
            dev = devs[name]
            ds = s.execute_query_statement(f"SELECT v FROM {dev}" + (" ORDER BY TIME DESC" if descending else ""))
            times, values, ahead, behind = [], [], [], []
            try:
                while ds.has_next():
                    rec = ds.next()
                    t = int(rec.get_timestamp())
                    times.append(t)
                    values.append(py_value(rec.get_fields()[0]))
                    if len(times) % PAGE == 0:
                        # The client fetches the next page on its next has_next().
                        b, a = (t + 5, t - 5) if descending else (t - 5, t + 5)
                        s.execute_non_query_statement(f"INSERT INTO {dev}(timestamp, v) VALUES ({b}, -1), ({a}, -2), ({t}, -3)")
                        behind.append(b)
                        if 0 < a < PAGED_ROWS * 10:
                            ahead.append(a)
            finally:
                ds.close_operation_handle()
            assert len(set(times)) == len(times), f"{name}: no row is sent twice"
            assert times == sorted(times, reverse=descending), f"{name}: rows come in order"
            assert set(times) == set(range(0, PAGED_ROWS * 10, 10)) | set(ahead), f"{name}: every row once, plus the points written ahead"
            assert not set(behind) & set(times)
            assert -1 not in values and -3 not in values and values.count(-2) == len(ahead)
    finally:
        s.close()


# ------------------------------------------------------------------------------------------------
# Benchmark (report only)
# ------------------------------------------------------------------------------------------------

BENCH_QUERIES = [
    "SELECT avg(*) FROM root.bench.** GROUP BY ([0, 10000s), 10m)",
    "SELECT count(*), max_value(*) FROM root.bench.**",
    "SELECT avg(s0) FROM root.bench.d0 GROUP BY ([0, 10000s), 10m)",
    "SELECT avg(*) FROM root.bench.** WHERE time >= 3600s AND time < 7200s GROUP BY ([3600s, 7200s), 1m)",
    "SELECT avg(s0) FROM root.bench.** GROUP BY ([0, 10000s), 10m), LEVEL = 1",
    "SELECT LAST * FROM root.bench.**",
    "SELECT * FROM root.bench.d0",
]


@pytest.mark.skipif(os.environ.get("DUET_BENCH") != "1", reason="benchmark: set DUET_BENCH=1 (and DUETDB_BIN to a release build)")
def test_benchmark_standard_workload(server_factory):
    """100 devices x 10 DOUBLE sensors x 10,000 timestamps 1 s apart; random walks with steps
    uniform in [-0.5, 0.5] rounded to 2 decimals. Prints the median latency of 7 runs per query,
    results fully drained through the client (fetch_size 10,000)."""
    srv = server_factory.start()
    s = srv.session(fetch_size=10_000)
    try:
        rng = np.random.default_rng(42)
        ts = np.arange(10_000, dtype=np.int64) * 1000
        t0 = time.perf_counter()
        for d in range(100):
            steps = np.round(rng.uniform(-0.5, 0.5, size=(10, ts.size)), 2)
            walks = np.round(np.cumsum(steps, axis=1), 2)
            tab = NumpyTablet(f"root.bench.d{d}", [f"s{k}" for k in range(10)], [T.DOUBLE] * 10, [walks[k].astype(np.float64) for k in range(10)], ts)
            s.insert_tablet(tab)
        load = time.perf_counter() - t0
        print(f"\nloaded 10,000,000 points through insert_tablet in {load:.2f} s ({10_000_000 / load:,.0f} points/s)")
        for sql in BENCH_QUERIES:
            lat = []
            for _ in range(7):
                t = time.perf_counter()
                res = query(s, sql)
                lat.append((time.perf_counter() - t) * 1000)
            print(f"{statistics.median(lat):9.1f} ms median of 7  ({len(res.rows)} rows x {len(res.columns)} cols)  {sql}")
    finally:
        s.close()


def test_continuous_query_downsamples_survives_restart_and_stops_when_dropped(server_factory):
    from duet_helpers import wait_until

    srv = server_factory.start()
    s = srv.session()
    try:
        # Ten points a second over the last 20 seconds, on whole seconds of the server's clock
        # (the client and the server share this machine's clock).
        now_ms = int(time.time() * 1000)
        base = (now_ms // 1000 - 20) * 1000
        ts = list(range(base, now_ms - 2000, 100))
        s.insert_tablet(Tablet("root.cq.src", ["v"], [TSDataType.INT64], [[1] for _ in ts], ts))
        s.execute_non_query_statement(
            "CREATE CONTINUOUS QUERY cq1 RESAMPLE EVERY 1s RANGE 10s BEGIN "
            "SELECT count(v), sum(v) INTO root.cq.out(n, total) FROM root.cq.src GROUP BY(1s) END"
        )
        # One row per execution (a one-second window), to see that none is missed.
        s.execute_non_query_statement(
            "CREATE CQ tick RESAMPLE EVERY 1s RANGE 1s BEGIN SELECT count(v) INTO root.cq.tick(n) FROM root.cq.src GROUP BY(1s) END"
        )
        res = query(s, "SHOW CONTINUOUS QUERIES")
        assert res.columns == ["cq_id", "query", "state"]
        assert [r[0] for r in res.rows] == ["cq1", "tick"] and all(r[2] == "ACTIVE" for r in res.rows)
        assert res.rows[0][1].startswith("CREATE CONTINUOUS QUERY cq1 RESAMPLE EVERY 1s RANGE 10s BEGIN")
        # The first windows cover the data's seconds: ten points each.
        assert wait_until(lambda: len(query(s, "SELECT n FROM root.cq.out").rows) >= 8, 10), srv.log_tail()
        rows = query(s, "SELECT n, total FROM root.cq.out").rows
        full = [r for r in rows if base <= r[0] < now_ms - 3000]
        assert full and all(r[1] == 10 and r[2] == 10.0 for r in full), rows
        # Refusals, with IoTDB's codes.
        for sql, code in [
            ("CREATE CQ cq1 RESAMPLE EVERY 1s BEGIN SELECT count(v) INTO root.cq.x(n) FROM root.cq.src GROUP BY(1s) END", "1402"),
            ("CREATE CQ cq2 RESAMPLE EVERY 10ms BEGIN SELECT count(v) INTO root.cq.x(n) FROM root.cq.src GROUP BY(1s) END", "701"),
            ("CREATE CQ cq3 BEGIN SELECT count(v) FROM root.cq.src GROUP BY(1s) END", "701"),
            ("CREATE CQ cq4 BEGIN SELECT count(v) INTO root.cq.x(n) FROM root.cq.src GROUP BY([0, 10), 1s) END", "701"),
            ("DROP CQ nosuch", "1400"),
            # A schedule far outside i64 arithmetic is refused, not run.
            ("CREATE CQ far RESAMPLE EVERY 1s BOUNDARY -9223372036854775807 BEGIN SELECT count(v) INTO root.cq.x(n) FROM root.cq.src GROUP BY(1s) END", "701"),
            ("CREATE CQ long RESAMPLE EVERY 1000000d BEGIN SELECT count(v) INTO root.cq.x(n) FROM root.cq.src GROUP BY(1s) END", "701"),
        ]:
            with pytest.raises(StatementExecutionException) as ei:
                s.execute_non_query_statement(sql)
            assert code in str(ei.value), (sql, ei.value)
    finally:
        s.close()

    # Stopped for a few seconds: the windows that came due meanwhile run after the restart, in
    # order (TIMEOUT POLICY BLOCKED), so the one-second windows have no gap.
    srv.stop()
    stopped_at = int(time.time() * 1000)
    time.sleep(3)
    srv.start()
    s = srv.session()
    try:
        assert [r[0] for r in query(s, "SHOW CQS").rows] == ["cq1", "tick"]
        assert wait_until(lambda: query(s, "SELECT n FROM root.cq.tick").times()[-1] >= stopped_at + 2000, 10), srv.log_tail()
        times = query(s, "SELECT n FROM root.cq.tick").times()
        assert times == list(range(times[0], times[-1] + 1, 1000)), f"gaps in {times}"
        assert any(stopped_at < t < stopped_at + 2000 for t in times), (stopped_at, times)
        s.execute_non_query_statement("DROP CONTINUOUS QUERY cq1")
        s.execute_non_query_statement("DROP CQ tick")
        assert query(s, "SHOW CQS").rows == []
        last = query(s, "SELECT n FROM root.cq.out").times()[-1]
        time.sleep(2.5)
        assert query(s, "SELECT n FROM root.cq.out").times()[-1] == last, "a dropped CQ does not run"
    finally:
        s.close()
    srv.restart()
    s = srv.session()
    try:
        assert query(s, "SHOW CQS").rows == [], "the drop is durable"
    finally:
        s.close()


def test_a_damaged_continuous_query_file_is_set_aside_not_fatal(server_factory):
    srv = server_factory.start()
    srv.stop()
    cqs = srv.home / "data" / "datanode" / "system" / "cqs"
    cqs.mkdir(parents=True, exist_ok=True)
    (cqs / "6263.cq").write_text("next=1\nzone=0\nCREATE CQ bc BEGIN not a query END")
    srv.start()
    s = srv.session()
    try:
        assert query(s, "SHOW CQS").rows == []
        assert not (cqs / "6263.cq").exists() and (cqs / "6263.cq.invalid").exists()
        assert "continuous query not loaded" in srv.log_tail(200)
    finally:
        s.close()
