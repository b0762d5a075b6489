"""End-to-end tests of the IoTDB Session API (apache-iotdb 2.0.11) against the DuetDB server.

Most tests run twice through the `session` fixture: once over TBinaryProtocol
(enable_rpc_compression=False) and once over TCompactProtocol (True). Each test works in its own
database (`db` / `db_name` fixtures) on a shared server; tests that restart the server or need
config overrides start their own server through `server_factory`.

Results are read back row by row and value by value through the client's SessionDataSet with
fetch_size=3, so every result of more than 3 rows has to page through fetchResultsV2.
"""

import datetime

import numpy as np
import pytest

from iotdb.utils.BitMap import BitMap
from iotdb.utils.exception import IoTDBConnectionException, StatementExecutionException
from iotdb.utils.IoTDBConstants import Compressor, TSDataType, TSEncoding
from iotdb.utils.NumpyTablet import NumpyTablet
from iotdb.utils.Tablet import Tablet

from duet_helpers import (
    ALL_TYPES,
    count_client_calls,
    expected_read,
    fval,
    parse_json_map,
    query,
    read_dataset,
    sample_value,
    uncount_client_calls,
)

T = TSDataType
E = TSEncoding
C = Compressor

MEAS = {
    T.BOOLEAN: "s_bool",
    T.INT32: "s_i32",
    T.INT64: "s_i64",
    T.FLOAT: "s_float",
    T.DOUBLE: "s_double",
    T.TEXT: "s_text",
    T.STRING: "s_string",
    T.BLOB: "s_blob",
    T.DATE: "s_date",
    T.TIMESTAMP: "s_ts",
}

SHOW_TIMESERIES_COLUMNS = [
    "Timeseries",
    "Alias",
    "Database",
    "DataType",
    "Encoding",
    "Compression",
    "Tags",
    "Attributes",
]


def show_timeseries(session, pattern):
    res = query(session, f"SHOW TIMESERIES {pattern}")
    assert not res.has_time, "SHOW TIMESERIES must not have a Time column"
    for c in SHOW_TIMESERIES_COLUMNS:
        assert c in res.columns, f"SHOW TIMESERIES lacks column {c}: {res.columns}"
    rows = {}
    for d in res.dicts():
        assert d["Timeseries"] not in rows, f"duplicate row for {d['Timeseries']}"
        rows[d["Timeseries"]] = d
    return rows


def assert_series_row(row, *, path, db, dtype, encoding, compression, alias=None, tags=None, attributes=None):
    assert row["Timeseries"] == path
    assert row["Database"] == db
    assert row["DataType"] == dtype
    assert row["Encoding"] == encoding
    assert row["Compression"] == compression
    assert row["Alias"] == alias
    assert parse_json_map(row["Tags"]) == tags
    assert parse_json_map(row["Attributes"]) == attributes


def null_pattern(r, c):
    """Cell (row r, column c) of the all-types tablets is null: every column has nulls, no row is all-null."""
    return (r + c) % 4 == 0


def all_types_rows(n):
    return [
        [None if null_pattern(r, c) else sample_value(dt, r) for c, dt in enumerate(ALL_TYPES)]
        for r in range(n)
    ]


def check_all_types_result(res, device, timestamps, rows):
    """res is a SELECT * over `device` holding exactly the all-types rows written at `timestamps`."""
    expected_cols = {"Time"} | {f"{device}.{MEAS[dt]}" for dt in ALL_TYPES}
    assert res.columns[0] == "Time"
    assert set(res.columns) == expected_cols
    assert len(res.columns) == len(expected_cols)
    for dt in ALL_TYPES:
        assert res.type_of(f"{device}.{MEAS[dt]}") == dt, f"type of {MEAS[dt]}"
    assert res.times() == timestamps, "rows must come back in time order, each exactly once"
    got = res.by_time()
    for t, row in zip(timestamps, rows):
        for c, dt in enumerate(ALL_TYPES):
            col = f"{device}.{MEAS[dt]}"
            assert got[t][col] == expected_read(dt, row[c]), f"time {t}, column {col}"


# ------------------------------------------------------------------------------------------------
# Connecting
# ------------------------------------------------------------------------------------------------


def test_open_session(session, compression, db):
    assert session.is_open()
    session.insert_record(f"{db}.d1", 1, ["v"], [T.INT64], [123])
    res = query(session, f"SELECT v FROM {db}.d1")
    assert res.columns == ["Time", f"{db}.d1.v"]
    assert res.rows == [[1, 123]]


def test_binary_and_compact_sessions_side_by_side(server, db_name):
    binary = server.session(compression=False)
    compact = server.session(compression=True)
    try:
        binary.set_storage_group(db_name)
        binary.insert_record(f"{db_name}.d", 1, ["a"], [T.TEXT], ["from binary"])
        compact.insert_record(f"{db_name}.d", 2, ["a"], [T.TEXT], ["from compact"])
        for s in (binary, compact):
            res = query(s, f"SELECT a FROM {db_name}.d")
            assert res.rows == [[1, "from binary"], [2, "from compact"]]
    finally:
        binary.close()
        compact.close()


def test_wrong_password_rejected(server, compression):
    from iotdb.Session import Session

    bad = Session(server.host, server.port, "root", "definitely-wrong", connection_timeout_in_ms=30_000)
    with pytest.raises(StatementExecutionException) as ei:
        bad.open(enable_rpc_compression=compression)
    assert "801" in str(ei.value), f"expected WRONG_LOGIN_PASSWORD (801), got: {ei.value}"
    assert not bad.is_open()
    # The server is fine afterwards.
    good = server.session(compression=compression)
    try:
        res = query(good, "SHOW VERSION")
        assert len(res.rows) == 1
    finally:
        good.close()


def test_root_password_change_is_durable_and_the_old_one_refused(server_factory):
    srv = server_factory.start()
    s = srv.session()
    try:
        res = query(s, "LIST USER")
        assert (res.columns, res.rows) == (["User"], [["root"]])
        refusals = [
            ("ALTER USER root SET PASSWORD 'abc'", "303"),  # too short
            ("ALTER USER bob SET PASSWORD 'pw1234'", "804"),
            ("CREATE USER u1 'pw1234'", "814"),
            ("GRANT READ_DATA ON root.** TO USER u1", "814"),
            ("LIST PRIVILEGES OF USER root", "814"),
        ]
        for sql, code in refusals:
            with pytest.raises(StatementExecutionException) as ei:
                s.execute_non_query_statement(sql)
            assert code in str(ei.value), (sql, ei.value)
        s.execute_non_query_statement("ALTER USER root SET PASSWORD 'n3w-Secret'")
        # A session opened before the change stays usable.
        s.insert_record("root.pw.d", 1, ["v"], [T.INT32], [1])
    finally:
        s.close()
    for _ in range(2):
        with pytest.raises(StatementExecutionException) as ei:
            srv.session(password="root")
        assert "801" in str(ei.value)
        ok = srv.session(password="n3w-Secret")
        assert query(ok, "SELECT v FROM root.pw.d").rows == [[1, 1]]
        ok.close()
        # Durable: it holds after kill -9 and restart (and the file holds no clear text).
        srv.restart(graceful=False)
    stored = (srv.home / "data" / "datanode" / "system" / "users").read_text()
    assert "n3w-Secret" not in stored and "pbkdf2-sha256" in stored


def test_close_and_reopen_session_keeps_data(server, compression, db_name):
    s = server.session(compression=compression)
    s.set_storage_group(db_name)
    s.insert_record(f"{db_name}.d", 10, ["x", "y"], [T.INT32, T.TEXT], [7, "seven"])
    s.close()
    assert not s.is_open()

    s2 = server.session(compression=compression)
    try:
        res = query(s2, f"SELECT x, y FROM {db_name}.d")
        assert res.columns == ["Time", f"{db_name}.d.x", f"{db_name}.d.y"]
        assert res.rows == [[10, 7, "seven"]]
    finally:
        s2.close()


# ------------------------------------------------------------------------------------------------
# Schema
# ------------------------------------------------------------------------------------------------


def test_set_storage_group(session, db_name):
    session.set_storage_group(db_name)
    res = query(session, "SHOW DATABASES")
    assert "Database" in res.columns
    assert db_name in res.column("Database")
    with pytest.raises(StatementExecutionException):
        session.set_storage_group(db_name)  # already exists
    # still usable afterwards
    assert db_name in query(session, "SHOW DATABASES").column("Database")


def test_create_time_series_with_tags_attributes_alias(session, db):
    dev = f"{db}.d1"
    session.create_time_series(
        f"{dev}.temperature",
        T.DOUBLE,
        E.GORILLA,
        C.SNAPPY,
        tags={"unit": "celsius", "loc": "room1"},
        attributes={"owner": "alice", "desc": "main sensor"},
        alias="temp",
    )
    session.create_time_series(f"{dev}.status", T.BOOLEAN, E.PLAIN, C.UNCOMPRESSED)
    session.create_time_series(f"{dev}.counter", T.INT64, E.RLE, C.LZ4, tags={"kind": "count"})

    rows = show_timeseries(session, f"{db}.**")
    assert set(rows) == {f"{dev}.temperature", f"{dev}.status", f"{dev}.counter"}
    assert_series_row(
        rows[f"{dev}.temperature"],
        path=f"{dev}.temperature",
        db=db,
        dtype="DOUBLE",
        encoding="GORILLA",
        compression="SNAPPY",
        alias="temp",
        tags={"unit": "celsius", "loc": "room1"},
        attributes={"owner": "alice", "desc": "main sensor"},
    )
    assert_series_row(
        rows[f"{dev}.status"], path=f"{dev}.status", db=db, dtype="BOOLEAN", encoding="PLAIN", compression="UNCOMPRESSED"
    )
    assert_series_row(
        rows[f"{dev}.counter"],
        path=f"{dev}.counter",
        db=db,
        dtype="INT64",
        encoding="RLE",
        compression="LZ4",
        tags={"kind": "count"},
    )

    # A single full path matches exactly one series.
    one = show_timeseries(session, f"{dev}.temperature")
    assert list(one) == [f"{dev}.temperature"]

    with pytest.raises(StatementExecutionException):
        session.create_time_series(f"{dev}.temperature", T.DOUBLE, E.GORILLA, C.SNAPPY)

    session.insert_record(dev, 5, ["temperature", "status", "counter"], [T.DOUBLE, T.BOOLEAN, T.INT64], [21.5, True, 9])
    res = query(session, f"SELECT temperature, status, counter FROM {dev}")
    assert res.columns == ["Time", f"{dev}.temperature", f"{dev}.status", f"{dev}.counter"]
    assert res.types == [T.INT64, T.DOUBLE, T.BOOLEAN, T.INT64]
    assert res.rows == [[5, 21.5, True, 9]]


def test_create_multi_time_series(session, db):
    paths = [f"{db}.d1.a", f"{db}.d2.b", f"{db}.d2.c"]
    session.create_multi_time_series(
        paths,
        [T.INT32, T.FLOAT, T.TEXT],
        [E.RLE, E.GORILLA, E.PLAIN],
        [C.SNAPPY, C.LZ4, C.UNCOMPRESSED],
        tags_lst=[{"t": "1"}, {"t": "2", "u": "x"}, {"t": "3"}],
        attributes_lst=[{"at": "a1"}, {"at": "b1"}, {"at": "c1"}],
        alias_lst=["alias_a", "alias_b", "alias_c"],
    )
    rows = show_timeseries(session, f"{db}.**")
    assert set(rows) == set(paths)
    assert_series_row(
        rows[paths[0]], path=paths[0], db=db, dtype="INT32", encoding="RLE", compression="SNAPPY",
        alias="alias_a", tags={"t": "1"}, attributes={"at": "a1"},
    )
    assert_series_row(
        rows[paths[1]], path=paths[1], db=db, dtype="FLOAT", encoding="GORILLA", compression="LZ4",
        alias="alias_b", tags={"t": "2", "u": "x"}, attributes={"at": "b1"},
    )
    assert_series_row(
        rows[paths[2]], path=paths[2], db=db, dtype="TEXT", encoding="PLAIN", compression="UNCOMPRESSED",
        alias="alias_c", tags={"t": "3"}, attributes={"at": "c1"},
    )
    count = query(session, f"COUNT TIMESERIES {db}.**")
    assert count.rows == [[3]]


def test_create_aligned_time_series(session, db):
    dev = f"{db}.ad"
    session.create_aligned_time_series(
        dev, ["x", "y", "z"], [T.INT32, T.DOUBLE, T.TEXT], [E.RLE, E.GORILLA, E.PLAIN], [C.SNAPPY, C.SNAPPY, C.LZ4]
    )
    rows = show_timeseries(session, f"{dev}.*")
    assert set(rows) == {f"{dev}.x", f"{dev}.y", f"{dev}.z"}
    assert_series_row(rows[f"{dev}.x"], path=f"{dev}.x", db=db, dtype="INT32", encoding="RLE", compression="SNAPPY")
    assert_series_row(rows[f"{dev}.y"], path=f"{dev}.y", db=db, dtype="DOUBLE", encoding="GORILLA", compression="SNAPPY")
    assert_series_row(rows[f"{dev}.z"], path=f"{dev}.z", db=db, dtype="TEXT", encoding="PLAIN", compression="LZ4")

    devices = query(session, f"SHOW DEVICES {db}.**")
    assert "Device" in devices.columns and "IsAligned" in devices.columns
    assert [(d["Device"], d["IsAligned"]) for d in devices.dicts()] == [(dev, "true")]

    session.insert_aligned_record(dev, 1, ["x", "y", "z"], [T.INT32, T.DOUBLE, T.TEXT], [1, 2.5, "a"])
    session.insert_aligned_record(dev, 2, ["x", "z"], [T.INT32, T.TEXT], [2, "b"])
    session.insert_aligned_record(dev, 3, ["y"], [T.DOUBLE], [-0.75])
    res = query(session, f"SELECT x, y, z FROM {dev}")
    assert res.columns == ["Time", f"{dev}.x", f"{dev}.y", f"{dev}.z"]
    assert res.rows == [[1, 1, 2.5, "a"], [2, 2, None, "b"], [3, None, -0.75, None]]


def test_alignment_mismatch_refused_where_it_would_make_a_series(session, db):
    # As IoTDB: a series is never made with the other alignment than its device's; a write to the
    # existing series with the other flag is taken (stored with the device's alignment).
    plain, al = f"{db}.plain", f"{db}.al"
    session.insert_record(plain, 1, ["a"], [T.INT64], [1])
    session.insert_aligned_record(al, 1, ["a"], [T.INT64], [1])
    with pytest.raises(StatementExecutionException) as ei:
        session.insert_aligned_record(plain, 2, ["a", "b"], [T.INT64, T.INT64], [2, 2])
    assert "701" in str(ei.value) and "is not aligned" in str(ei.value) and f"{plain}.b" in str(ei.value)
    with pytest.raises(StatementExecutionException) as ei:
        session.insert_record(al, 2, ["b"], [T.INT64], [2])
    assert "701" in str(ei.value) and "is aligned" in str(ei.value)
    with pytest.raises(StatementExecutionException) as ei:
        session.create_aligned_time_series(plain, ["c"], [T.INT32], [E.PLAIN], [C.LZ4])
    assert "609" in str(ei.value) and "createTimeseries" in str(ei.value)
    with pytest.raises(StatementExecutionException) as ei:
        session.execute_non_query_statement(f"CREATE TIMESERIES {al}.c INT32")
    assert "609" in str(ei.value) and "createAlignedTimeseries" in str(ei.value)
    # Nothing of the refused writes was applied, not even in part.
    assert query(session, f"SELECT * FROM {plain}").rows == [[1, 1]]
    assert sorted(show_timeseries(session, f"{db}.**")) == [f"{al}.a", f"{plain}.a"]
    session.insert_aligned_record(plain, 3, ["a"], [T.INT64], [3])
    session.insert_record(al, 3, ["a"], [T.INT64], [3])
    assert query(session, f"SELECT a FROM {plain}").rows == [[1, 1], [3, 3]]
    assert query(session, f"SELECT a FROM {al}").rows == [[1, 1], [3, 3]]
    devices = query(session, f"SHOW DEVICES {db}.**")
    assert sorted((d["Device"], d["IsAligned"]) for d in devices.dicts()) == [(al, "true"), (plain, "false")]


# ------------------------------------------------------------------------------------------------
# Writing and reading back
# ------------------------------------------------------------------------------------------------


def test_insert_record_all_types(session, db):
    dev = f"{db}.rec"
    meas = [MEAS[dt] for dt in ALL_TYPES]
    v1 = [sample_value(dt, 1) for dt in ALL_TYPES]
    v3 = [sample_value(dt, 3) for dt in ALL_TYPES]
    session.insert_record(dev, 100, meas, ALL_TYPES, v1)
    # None values are dropped by the client: only every other measurement is written at t=200.
    v3_sparse = [v if i % 2 == 0 else None for i, v in enumerate(v3)]
    session.insert_record(dev, 200, meas, ALL_TYPES, v3_sparse)
    session.insert_record(dev, 50, [MEAS[T.TEXT]], [T.TEXT], ["early"])

    res = query(session, f"SELECT * FROM {dev}")
    check_all_types_result(
        res,
        dev,
        [50, 100, 200],
        [
            [None] * 5 + ["early"] + [None] * 4,
            v1,
            v3_sparse,
        ],
    )
    # Explicit select list: columns in the order asked for.
    res = query(session, f"SELECT s_text, s_bool, s_date FROM {dev} WHERE time >= 100")
    assert res.columns == ["Time", f"{dev}.s_text", f"{dev}.s_bool", f"{dev}.s_date"]
    assert res.types == [T.INT64, T.TEXT, T.BOOLEAN, T.DATE]
    assert res.rows == [
        [100, v1[5], v1[0], v1[8]],
        [200, None, v3[0], v3[8]],
    ]
    # Auto-created series have the types of the record.
    rows = show_timeseries(session, f"{dev}.*")
    assert {p: r["DataType"] for p, r in rows.items()} == {f"{dev}.{MEAS[dt]}": dt.name for dt in ALL_TYPES}


def test_insert_records_several_devices(session, db):
    d1, d2, d3 = f"{db}.d1", f"{db}.d2", f"{db}.d3"
    session.insert_records(
        [d1, d2, d3, d1, d2],
        [10, 10, 20, 30, 5],
        [["a", "b"], ["a"], ["flag", "n"], ["a"], ["a"]],
        [[T.INT64, T.DOUBLE], [T.TEXT], [T.BOOLEAN, T.INT32], [T.INT64], [T.TEXT]],
        [[1, 1.5], ["x"], [False, -3], [3], ["early"]],
    )
    r1 = query(session, f"SELECT a, b FROM {d1}")
    assert r1.rows == [[10, 1, 1.5], [30, 3, None]]
    r2 = query(session, f"SELECT a FROM {d2}")
    assert r2.rows == [[5, "early"], [10, "x"]]
    r3 = query(session, f"SELECT flag, n FROM {d3}")
    assert r3.rows == [[20, False, -3]]

    res = query(session, f"SELECT * FROM {db}.**")
    cols = [f"{d1}.a", f"{d1}.b", f"{d2}.a", f"{d3}.flag", f"{d3}.n"]
    assert res.columns[0] == "Time"
    assert sorted(res.columns[1:]) == sorted(cols)
    assert res.times() == [5, 10, 20, 30]
    expected = {
        5: {f"{d2}.a": "early"},
        10: {f"{d1}.a": 1, f"{d1}.b": 1.5, f"{d2}.a": "x"},
        20: {f"{d3}.flag": False, f"{d3}.n": -3},
        30: {f"{d1}.a": 3},
    }
    got = res.by_time()
    for t, vals in expected.items():
        assert got[t] == {c: vals.get(c) for c in cols}, f"time {t}"


def test_insert_tablet_all_types_with_nulls(session, db):
    dev = f"{db}.tab"
    n = 12
    rows = all_types_rows(n)
    timestamps = [1000 + 10 * r for r in range(n)]
    for c in range(len(ALL_TYPES)):
        assert any(rows[r][c] is None for r in range(n)), "every column must contain nulls"
    # Rows handed to the client out of order: the client sorts the tablet.
    order = list(range(n))[::-1]
    tablet = Tablet(
        dev,
        [MEAS[dt] for dt in ALL_TYPES],
        list(ALL_TYPES),
        [rows[i] for i in order],
        [timestamps[i] for i in order],
    )
    session.insert_tablet(tablet)

    counter = count_client_calls(session)
    try:
        res = query(session, f"SELECT * FROM {dev}")
    finally:
        uncount_client_calls(session, counter)
    check_all_types_result(res, dev, timestamps, rows)
    assert counter.calls.get("fetchResultsV2", 0) >= 1, (
        f"{n} rows with fetch_size=3 must page through fetchResultsV2; calls: {counter.calls}"
    )

    # A time range in the middle, explicit columns, including the "" TEXT value of row 2.
    res = query(session, f"SELECT s_text, s_blob, s_float FROM {dev} WHERE time >= 1010 AND time <= 1050")
    assert res.columns == ["Time", f"{dev}.s_text", f"{dev}.s_blob", f"{dev}.s_float"]
    ti, bi, fi = ALL_TYPES.index(T.TEXT), ALL_TYPES.index(T.BLOB), ALL_TYPES.index(T.FLOAT)
    want = [
        [timestamps[r], rows[r][ti], rows[r][bi], None if rows[r][fi] is None else fval(rows[r][fi])]
        for r in range(1, 6)
        if not (rows[r][ti] is None and rows[r][bi] is None and rows[r][fi] is None)
    ]
    assert res.rows == want
    assert any(r[1] == "" for r in res.rows), "the empty TEXT value must read back as '', not null"


def test_insert_aligned_tablet_numpy_with_bitmaps(session, db):
    dev = f"{db}.aligned"
    session.create_aligned_time_series(
        dev,
        [MEAS[dt] for dt in ALL_TYPES],
        list(ALL_TYPES),
        [E.PLAIN] * len(ALL_TYPES),
        [C.SNAPPY] * len(ALL_TYPES),
    )
    n = 10
    rows = all_types_rows(n)
    timestamps = [5000 + 3 * r for r in range(n)]
    placeholders = {
        T.BOOLEAN: False,
        T.INT32: 0,
        T.INT64: 0,
        T.FLOAT: 0.0,
        T.DOUBLE: 0.0,
        T.TEXT: "",
        T.STRING: "",
        T.BLOB: b"\x01",
        T.DATE: datetime.date(1970, 1, 1),
        T.TIMESTAMP: 0,
    }
    values, bitmaps = [], []
    for c, dt in enumerate(ALL_TYPES):
        col = [rows[r][c] if rows[r][c] is not None else placeholders[dt] for r in range(n)]
        if dt in (T.TEXT, T.STRING, T.BLOB, T.DATE):
            arr = np.array(col, dtype=object)
        else:
            arr = np.array(col, dtype=dt.np_dtype())
        values.append(arr)
        bm = BitMap(n)
        for r in range(n):
            if rows[r][c] is None:
                bm.mark(r)
        bitmaps.append(bm)
    tablet = NumpyTablet(
        dev, [MEAS[dt] for dt in ALL_TYPES], list(ALL_TYPES), values, np.array(timestamps, dtype=">i8"), bitmaps
    )
    session.insert_aligned_tablet(tablet)

    res = query(session, f"SELECT * FROM {dev}")
    check_all_types_result(res, dev, timestamps, rows)

    devices = query(session, f"SHOW DEVICES {dev}")
    assert [(d["Device"], d["IsAligned"]) for d in devices.dicts()] == [(dev, "true")]

    # A second aligned tablet (plain Tablet with None cells) appends to the same device.
    more_ts = [timestamps[-1] + 1, timestamps[-1] + 2]
    more = [[True] + [None] * 9, [None] * 9 + [123]]
    session.insert_aligned_tablet(Tablet(dev, [MEAS[dt] for dt in ALL_TYPES], list(ALL_TYPES), more, more_ts))
    res = query(session, f"SELECT * FROM {dev}")
    check_all_types_result(res, dev, timestamps + more_ts, rows + more)


def test_query_pages_through_many_rows(session, db):
    dev = f"{db}.many"
    n = 200
    ts = list(range(1, n + 1))
    vals = [[t * 3, None if t % 7 == 0 else t / 4.0, f"row{t}"] for t in ts]
    session.insert_tablet(Tablet(dev, ["i", "d", "s"], [T.INT64, T.DOUBLE, T.TEXT], vals, ts))

    counter = count_client_calls(session)
    try:
        res = query(session, f"SELECT i, d, s FROM {dev}")
    finally:
        uncount_client_calls(session, counter)
    assert res.rows == [[t] + v for t, v in zip(ts, vals)]
    assert counter.calls.get("fetchResultsV2", 0) >= 1, f"200 rows at fetch_size=3 must page; calls: {counter.calls}"

    res = query(session, f"SELECT i, d, s FROM {dev} ORDER BY TIME DESC")
    assert res.rows == [[t] + v for t, v in reversed(list(zip(ts, vals)))]

    # The DataFrame path of the client decodes the same blocks.
    ds = session.execute_query_statement(f"SELECT i, d, s FROM {dev}")
    try:
        df = ds.todf()
    finally:
        ds.close_operation_handle()
    assert list(df.columns) == ["Time", f"{dev}.i", f"{dev}.d", f"{dev}.s"]
    assert len(df) == n
    assert [int(x) for x in df["Time"]] == ts
    assert [int(x) for x in df[f"{dev}.i"]] == [v[0] for v in vals]
    assert [f"{x}" for x in df[f"{dev}.s"]] == [v[2] for v in vals]
    d_col = list(df[f"{dev}.d"])
    for t, v, got in zip(ts, vals, d_col):
        if v[1] is None:
            assert got is None or got != got, f"time {t}: expected null, got {got!r}"  # NaN != NaN
        else:
            assert float(got) == v[1], f"time {t}"


def test_show_queries_and_kill_query(session, server, db):
    import re

    dev = f"{db}.kq"
    ts = list(range(1, 201))
    session.insert_tablet(Tablet(dev, ["v"], [T.INT64], [[t] for t in ts], ts))
    sql = f"SELECT v FROM {dev}"
    # fetch_size=3: the first rows came with the reply, the rest waits for fetches, and the query
    # is in flight (listed, killable) until it is read to its end or closed, as in IoTDB.
    ds = session.execute_query_statement(sql)
    other = server.session(compression=False)
    try:
        res = query(other, "SHOW QUERIES")
        assert res.columns == ["Time", "QueryId", "DataNodeId", "ElapsedTime", "Statement"]
        rows = res.dicts()
        mine = [r for r in rows if r["Statement"] == sql]
        assert len(mine) == 1, rows
        qid = mine[0]["QueryId"]
        assert re.fullmatch(r"\d{8}_\d{6}_\d{5}_1", qid), qid
        assert mine[0]["DataNodeId"] == 1 and 0 <= mine[0]["ElapsedTime"] < 600
        assert any(r["Statement"] == "SHOW QUERIES" for r in rows), "SHOW QUERIES lists itself"
        assert [r["QueryId"] for r in query(other, f"SHOW QUERIES WHERE QueryId = '{qid}'").dicts()] == [qid]
        assert query(other, "SHOW QUERIES WHERE ElapsedTime > 100000").rows == []
        newest_first = query(other, "SHOW QUERIES ORDER BY Time DESC LIMIT 1").dicts()
        assert len(newest_first) == 1 and newest_first[0]["Statement"].startswith("SHOW QUERIES ORDER BY")
        with pytest.raises(StatementExecutionException) as ei:
            other.execute_non_query_statement("KILL QUERY '20000101_000000_00000_1'")
        assert "714" in str(ei.value)
        with pytest.raises(StatementExecutionException) as ei:
            other.execute_non_query_statement("KILL QUERY 20000101_000000_00000_1")  # unquoted, as in IoTDB's docs
        assert "714" in str(ei.value)

        other.execute_non_query_statement(f"KILL QUERY '{qid}'")
        # Off the list at once (and what it held for its client freed), before that client fetches.
        assert not [r for r in query(other, "SHOW QUERIES").dicts() if r["Statement"] == sql]
        with pytest.raises(Exception) as ei:
            while ds.has_next():
                ds.next()
        assert "715" in str(ei.value) or "killed" in str(ei.value), ei.value

        # A computed result held between fetches (GROUP BY: 200 rows) is killed the same way.
        grouped = f"SELECT count(v) FROM {dev} GROUP BY ([1, 201), 1ms)"
        held = session.execute_query_statement(grouped)
        gid = [r["QueryId"] for r in query(other, "SHOW QUERIES").dicts() if r["Statement"] == grouped]
        assert len(gid) == 1
        other.execute_non_query_statement(f"KILL QUERY '{gid[0]}'")
        with pytest.raises(Exception) as ei:
            while held.has_next():
                held.next()
        assert "715" in str(ei.value) or "killed" in str(ei.value), ei.value

        # KILL ALL QUERIES stops every statement in flight but itself; new queries run.
        pending = session.execute_query_statement(sql)
        other.execute_non_query_statement("KILL ALL QUERIES")
        with pytest.raises(Exception) as ei:
            while pending.has_next():
                pending.next()
        assert "715" in str(ei.value) or "killed" in str(ei.value), ei.value
        assert len(query(session, sql).rows) == 200
        assert [r["Statement"] for r in query(other, "SHOW QUERIES").dicts()] == ["SHOW QUERIES"]
    finally:
        other.close()


def test_query_timeout_from_the_request(session, db):
    # 600 series: an aggregation over all of them computes for well over 1 ms, and stops at the
    # first series past the client's 1 ms timeout with IoTDB's QUERY_TIMEOUT.
    devices = [f"{db}.t{i}" for i in range(600)]
    session.insert_tablets([Tablet(d, ["v"], [T.INT64], [[t] for t in range(20)], list(range(20))) for d in devices])
    sql = f"SELECT count(v) FROM {db}.** GROUP BY ([0, 20), 1ms)"
    with pytest.raises(StatementExecutionException) as ei:
        session.execute_query_statement(sql, timeout=1)
    assert "720" in str(ei.value) and "time out" in str(ei.value), ei.value
    # Without a timeout of its own the query gets query_timeout_threshold (60 s) and completes.
    res = query(session, sql)
    assert len(res.rows) == 20 and all(v == 1 for row in res.rows for v in row[1:])


def test_schema_statements_stop_at_the_request_timeout(session, db):
    # 20,000 series: a walk over them passes a checkpoint every 1,024 and stops there once the
    # client's 1 ms is over, as a query does; without the timeout each completes.
    paths = [f"{db}.d{i // 10}.s{i % 10}" for i in range(20_000)]
    for b in range(0, len(paths), 5000):
        part = paths[b:b + 5000]
        session.create_multi_time_series(part, [T.INT64] * len(part), [TSEncoding.PLAIN] * len(part), [Compressor.LZ4] * len(part))
    for sql in [f"SHOW TIMESERIES {db}.**", f"SHOW CHILD NODES {db}", f"COUNT NODES {db}.** LEVEL=3", f"COUNT TIMESERIES {db}.** GROUP BY LEVEL=2"]:
        with pytest.raises(StatementExecutionException) as ei:
            session.execute_query_statement(sql, timeout=1)
        assert "720" in str(ei.value), (sql, ei.value)
    assert len(query(session, f"SHOW CHILD NODES {db}").rows) == 2000
    assert query(session, f"COUNT TIMESERIES {db}.**").rows[0][0] == 20_000


def test_device_level_ttl_through_the_client(session, db):
    # IoTDB 1.3.3's device-level TTL: a device's own rule is more precise than its database's.
    now = int(datetime.datetime.now().timestamp() * 1000)
    for dev in ("a", "b"):
        session.insert_records_of_one_device(f"{db}.{dev}", [now - 7_200_000, now - 1_800_000], [["v"]] * 2, [[T.INT64]] * 2, [[1], [2]])
    session.execute_non_query_statement(f"SET TTL TO {db}.a 3600000")
    session.execute_non_query_statement(f"SET TTL TO {db} 60000")
    assert [len(query(session, f"SELECT v FROM {db}.{d}").rows) for d in ("a", "b")] == [1, 0]
    assert query(session, f"SHOW TTL ON {db}.**").rows == [[f"{db}.**", "60000"], [f"{db}.a", "3600000"]]
    assert [r[-1] for r in query(session, f"SHOW DEVICES {db}.**").rows] == ["3600000", "60000"]
    session.execute_non_query_statement(f"SET TTL TO {db}.b INF")
    session.execute_non_query_statement(f"UNSET TTL FROM {db}.a")
    assert [len(query(session, f"SELECT v FROM {db}.{d}").rows) for d in ("a", "b")] == [0, 2]
    with pytest.raises(StatementExecutionException) as ei:
        session.execute_non_query_statement(f"SET TTL TO {db}.*.x 1000")
    assert "700" in str(ei.value) and "root.db.**" in str(ei.value), ei.value


def test_empty_query_result(session, db):
    session.insert_record(f"{db}.d", 10, ["v"], [T.INT32], [1])
    res = query(session, f"SELECT v FROM {db}.d WHERE time > 1000")
    assert res.columns == ["Time", f"{db}.d.v"]
    assert res.rows == []


# ------------------------------------------------------------------------------------------------
# Deleting
# ------------------------------------------------------------------------------------------------


def test_delete_data(session, db):
    dev = f"{db}.d"
    ts = list(range(1, 11))
    session.insert_tablet(Tablet(dev, ["s1", "s2"], [T.INT64, T.TEXT], [[t * 10, f"v{t}"] for t in ts], ts))

    session.delete_data([f"{dev}.s1"], 5)  # s1: every point with time <= 5
    res = query(session, f"SELECT s1, s2 FROM {dev}")
    assert res.rows == [[t, None if t <= 5 else t * 10, f"v{t}"] for t in ts]

    session.delete_data_in_range([f"{dev}.s2"], 3, 4)  # inclusive on both ends
    res = query(session, f"SELECT s1, s2 FROM {dev}")
    # times 3 and 4 now have no value in any column, so they are no longer in the result
    expect = [[t, None if t <= 5 else t * 10, None if t in (3, 4) else f"v{t}"] for t in ts if t not in (3, 4)]
    assert res.rows == expect

    # The schema stays; new points at deleted times are visible again.
    assert set(show_timeseries(session, f"{dev}.*")) == {f"{dev}.s1", f"{dev}.s2"}
    session.insert_record(dev, 3, ["s1"], [T.INT64], [-3])
    res = query(session, f"SELECT s1 FROM {dev} WHERE time <= 6")
    assert res.rows == [[3, -3], [6, 60]]


def test_delete_time_series(session, db):
    dev = f"{db}.d"
    session.create_time_series(f"{dev}.s1", T.INT32, E.RLE, C.SNAPPY)
    session.create_time_series(f"{dev}.s2", T.DOUBLE, E.GORILLA, C.SNAPPY)
    session.insert_records([dev, dev], [1, 2], [["s1", "s2"], ["s1", "s2"]], [[T.INT32, T.DOUBLE]] * 2, [[1, 1.5], [2, 2.5]])
    assert session.check_time_series_exists(f"{dev}.s1")

    session.delete_time_series([f"{dev}.s1"])

    assert set(show_timeseries(session, f"{db}.**")) == {f"{dev}.s2"}
    assert show_timeseries(session, f"{dev}.s1") == {}
    assert not session.check_time_series_exists(f"{dev}.s1")
    try:
        res = query(session, f"SELECT s1 FROM {dev}")
    except StatementExecutionException:
        pass  # acceptable: the path no longer exists
    else:
        assert res.rows == [], f"deleted series still returns data: {res.rows}"
    res = query(session, f"SELECT * FROM {dev}")
    assert res.columns == ["Time", f"{dev}.s2"]
    assert res.rows == [[1, 1.5], [2, 2.5]]
    assert query(session, f"COUNT TIMESERIES {db}.**").rows == [[1]]


# ------------------------------------------------------------------------------------------------
# Errors
# ------------------------------------------------------------------------------------------------


def test_invalid_sql_raises_and_session_survives(session, db):
    with pytest.raises(StatementExecutionException):
        session.execute_non_query_statement("SELEC * FRM nowhere")
    with pytest.raises(StatementExecutionException):
        session.execute_query_statement("this is not sql at all")
    with pytest.raises(StatementExecutionException):
        session.execute_non_query_statement(f"INSERT INTO {db}.d(timestamp, a) VALUES (1")
    with pytest.raises(StatementExecutionException):
        session.execute_query_statement(f"SELECT FROM {db}.d")
    # The session still works.
    session.insert_record(f"{db}.d", 1, ["a"], [T.INT32], [5])
    assert query(session, f"SELECT a FROM {db}.d").rows == [[1, 5]]
    session.execute_non_query_statement(f"INSERT INTO {db}.d(timestamp, a) VALUES (2, 6)")
    assert query(session, f"SELECT a FROM {db}.d").rows == [[1, 5], [2, 6]]


def test_wrong_type_write_is_rejected_and_not_applied(session, db):
    dev = f"{db}.d"
    session.create_time_series(f"{dev}.v", T.INT64, E.PLAIN, C.UNCOMPRESSED)
    session.insert_record(dev, 1, ["v"], [T.INT64], [42])

    with pytest.raises(StatementExecutionException):
        session.insert_record(dev, 2, ["v"], [T.TEXT], ["not a number"])
    with pytest.raises(StatementExecutionException):
        session.insert_tablet(Tablet(dev, ["v"], [T.TEXT], [["x"], ["y"], ["z"]], [3, 4, 5]))
    with pytest.raises(StatementExecutionException):
        session.insert_records([dev, dev], [6, 7], [["v"], ["v"]], [[T.TEXT], [T.TEXT]], [["p"], ["q"]])
    with pytest.raises(StatementExecutionException):
        session.execute_non_query_statement(f"INSERT INTO {dev}(timestamp, v) VALUES (8, 'abc')")

    res = query(session, f"SELECT v FROM {dev}")
    assert res.types == [T.INT64, T.INT64]
    assert res.rows == [[1, 42]]
    rows = show_timeseries(session, f"{db}.**")
    assert list(rows) == [f"{dev}.v"]
    assert rows[f"{dev}.v"]["DataType"] == "INT64"
    # and the session is still usable
    session.insert_record(dev, 9, ["v"], [T.INT64], [43])
    assert query(session, f"SELECT v FROM {dev}").rows == [[1, 42], [9, 43]]


# ------------------------------------------------------------------------------------------------
# SQL through execute_non_query_statement / execute_query_statement
# ------------------------------------------------------------------------------------------------


def test_sql_statements(session, db_name):
    db = db_name
    dev = f"{db}.d"
    session.execute_non_query_statement(f"CREATE DATABASE {db}")
    session.execute_non_query_statement(f"CREATE TIMESERIES {dev}.s1 WITH DATATYPE=INT32, ENCODING=RLE")
    session.execute_non_query_statement(f"CREATE TIMESERIES {dev}.s2 WITH DATATYPE=TEXT, ENCODING=PLAIN")
    session.execute_non_query_statement(f"INSERT INTO {dev}(timestamp,s1,s2) VALUES (1,1,'a'),(2,2,'b')")

    res = query(session, f"SELECT * FROM {db}.**")
    assert res.columns[0] == "Time"
    assert sorted(res.columns[1:]) == [f"{dev}.s1", f"{dev}.s2"]
    assert res.types[res.columns.index(f"{dev}.s1")] == T.INT32
    assert res.types[res.columns.index(f"{dev}.s2")] == T.TEXT
    assert res.by_time() == {1: {f"{dev}.s1": 1, f"{dev}.s2": "a"}, 2: {f"{dev}.s1": 2, f"{dev}.s2": "b"}}
    assert res.times() == [1, 2]

    session.execute_non_query_statement(f"INSERT INTO {dev}(timestamp,s1,s2) VALUES (3,3,'c'),(4,4,'d'),(5,5,'e')")
    all_rows = [[t, t, "abcde"[t - 1]] for t in range(1, 6)]
    sel = f"SELECT s1, s2 FROM {dev}"

    res = query(session, sel)
    assert res.columns == ["Time", f"{dev}.s1", f"{dev}.s2"]
    assert res.rows == all_rows
    assert query(session, f"{sel} WHERE time >= 3").rows == all_rows[2:]
    assert query(session, f"{sel} WHERE time >= 2 AND time < 4").rows == all_rows[1:3]
    assert query(session, f"{sel} WHERE time BETWEEN 2 AND 4").rows == all_rows[1:4]
    assert query(session, f"{sel} WHERE s1 > 3").rows == all_rows[3:]
    assert query(session, f"{sel} LIMIT 2").rows == all_rows[:2]
    assert query(session, f"{sel} LIMIT 2 OFFSET 1").rows == all_rows[1:3]
    assert query(session, f"{sel} ORDER BY TIME DESC").rows == all_rows[::-1]
    assert query(session, f"{sel} ORDER BY TIME DESC LIMIT 2 OFFSET 1").rows == [all_rows[3], all_rows[2]]
    assert query(session, f"{sel} WHERE time >= 2 ORDER BY TIME DESC LIMIT 3").rows == [all_rows[4], all_rows[3], all_rows[2]]
    assert query(session, f"SELECT s2 FROM {dev} WHERE time BETWEEN 4 AND 100").rows == [[4, "d"], [5, "e"]]

    count = query(session, f"COUNT TIMESERIES {db}.**")
    assert not count.has_time
    assert count.columns == ["count(timeseries)"]
    assert count.rows == [[2]]

    dbs = query(session, "SHOW DATABASES")
    assert not dbs.has_time
    assert "Database" in dbs.columns
    assert db in dbs.column("Database")
    only = query(session, f"SHOW DATABASES {db}")
    assert only.column("Database") == [db]

    devices = query(session, f"SHOW DEVICES {db}.**")
    assert not devices.has_time
    assert "Device" in devices.columns and "IsAligned" in devices.columns
    assert [(d["Device"], d["IsAligned"]) for d in devices.dicts()] == [(dev, "false")]

    ts = show_timeseries(session, f"{db}.**")
    assert set(ts) == {f"{dev}.s1", f"{dev}.s2"}
    assert ts[f"{dev}.s1"]["DataType"] == "INT32" and ts[f"{dev}.s1"]["Encoding"] == "RLE"
    assert ts[f"{dev}.s2"]["DataType"] == "TEXT" and ts[f"{dev}.s2"]["Encoding"] == "PLAIN"

    with pytest.raises(StatementExecutionException):
        session.execute_non_query_statement(f"CREATE DATABASE {db}")


def test_show_version(session):
    res = query(session, "SHOW VERSION")
    assert not res.has_time
    assert "Version" in res.columns and "BuildInfo" in res.columns
    assert len(res.rows) == 1
    version = res.dicts()[0]["Version"]
    assert isinstance(version, str) and version.strip() != ""


def test_show_cluster(session):
    res = query(session, "SHOW CLUSTER")
    assert not res.has_time
    for c in ["NodeID", "NodeType", "Status", "InternalAddress", "InternalPort", "Version", "BuildInfo"]:
        assert c in res.columns, f"SHOW CLUSTER lacks column {c}: {res.columns}"
    rows = res.dicts()
    assert sorted(r["NodeType"] for r in rows) == ["ConfigNode", "DataNode"]
    for r in rows:
        assert r["Status"] == "Running", r
        assert isinstance(r["NodeID"], int), r
        assert isinstance(r["InternalPort"], int) and 0 < r["InternalPort"] < 65536, r
        assert isinstance(r["InternalAddress"], str) and r["InternalAddress"], r
    assert len({r["NodeID"] for r in rows}) == 2, "node ids must differ"


def test_show_datanodes_and_confignodes_match_show_cluster(session, db):
    cluster = {r["NodeType"]: r for r in query(session, "SHOW CLUSTER").dicts()}
    cn = query(session, "SHOW CONFIGNODES")
    assert cn.columns == ["NodeID", "Status", "InternalAddress", "InternalPort", "Role"]
    [c] = cn.dicts()
    assert (c["NodeID"], c["Status"], c["InternalAddress"], c["InternalPort"], c["Role"]) == (
        cluster["ConfigNode"]["NodeID"], "Running", cluster["ConfigNode"]["InternalAddress"], cluster["ConfigNode"]["InternalPort"], "Leader")
    dn = query(session, "SHOW DATANODES")
    assert dn.columns == ["NodeID", "Status", "RpcAddress", "RpcPort", "DataRegionNum", "SchemaRegionNum"]
    [d] = dn.dicts()
    details = {r["NodeType"]: r for r in query(session, "SHOW CLUSTER DETAILS").dicts()}["DataNode"]
    assert (d["NodeID"], d["Status"], d["RpcAddress"], d["RpcPort"]) == (cluster["DataNode"]["NodeID"], "Running", details["RpcAddress"], details["RpcPort"])
    # Each database is one data and one schema region here.
    databases = len(query(session, "SHOW DATABASES").rows)
    assert databases >= 1 and d["DataRegionNum"] == d["SchemaRegionNum"] == databases


def test_execute_statement_dbapi_path(session, db):
    """execute_statement (executeStatementV2) returns a data set for queries and None otherwise."""
    assert session.execute_statement(f"CREATE TIMESERIES {db}.d.v WITH DATATYPE=INT64, ENCODING=PLAIN") is None
    assert session.execute_statement(f"INSERT INTO {db}.d(timestamp, v) VALUES (1, 10), (2, 20), (3, 30), (4, 40), (5, 50)") is None
    ds = session.execute_statement(f"SELECT v FROM {db}.d")
    assert ds is not None
    res = read_dataset(ds)
    assert res.columns == ["Time", f"{db}.d.v"]
    assert res.rows == [[t, t * 10] for t in range(1, 6)]


# ------------------------------------------------------------------------------------------------
# Restart and configuration (own server)
# ------------------------------------------------------------------------------------------------


def test_restart_keeps_data_and_schema(server_factory):
    srv = server_factory.start()
    db = "root.restart"
    s = srv.session()
    try:
        s.set_storage_group(db)
        s.create_time_series(f"{db}.d1.temp", T.DOUBLE, E.GORILLA, C.SNAPPY, tags={"unit": "c"}, attributes={"a": "b"}, alias="t")
        s.create_aligned_time_series(f"{db}.ad", ["x", "y"], [T.INT32, T.TEXT], [E.PLAIN, E.PLAIN], [C.SNAPPY, C.SNAPPY])
        s.insert_record(f"{db}.d1", 1, ["temp"], [T.DOUBLE], [20.5])
        s.insert_records([f"{db}.d1", f"{db}.d2"], [2, 2], [["temp"], ["flag"]], [[T.DOUBLE], [T.BOOLEAN]], [[21.5], [True]])
        rows = all_types_rows(8)
        ts = [100 + r for r in range(8)]
        s.insert_tablet(Tablet(f"{db}.all", [MEAS[dt] for dt in ALL_TYPES], list(ALL_TYPES), rows, ts))
        s.insert_aligned_tablet(Tablet(f"{db}.ad", ["x", "y"], [T.INT32, T.TEXT], [[1, "one"], [None, "two"], [3, None]], [1, 2, 3]))
        s.insert_record(f"{db}.gone", 1, ["v"], [T.INT32], [1])
        s.delete_time_series([f"{db}.gone.v"])
        s.insert_record(f"{db}.d1", 3, ["temp"], [T.DOUBLE], [99.0])
        s.delete_data([f"{db}.d1.temp"], 1)  # removes t=1 only
    finally:
        s.close()

    def check(session):
        assert query(session, f"SELECT temp FROM {db}.d1").rows == [[2, 21.5], [3, 99.0]]
        assert query(session, f"SELECT flag FROM {db}.d2").rows == [[2, True]]
        check_all_types_result(query(session, f"SELECT * FROM {db}.all"), f"{db}.all", ts, rows)
        assert query(session, f"SELECT x, y FROM {db}.ad").rows == [[1, 1, "one"], [2, None, "two"], [3, 3, None]]
        series = show_timeseries(session, f"{db}.**")
        assert f"{db}.gone.v" not in series
        assert_series_row(
            series[f"{db}.d1.temp"], path=f"{db}.d1.temp", db=db, dtype="DOUBLE", encoding="GORILLA",
            compression="SNAPPY", alias="t", tags={"unit": "c"}, attributes={"a": "b"},
        )
        devices = {d["Device"]: d["IsAligned"] for d in query(session, f"SHOW DEVICES {db}.**").dicts()}
        assert devices[f"{db}.ad"] == "true"
        assert devices[f"{db}.d1"] == "false"
        assert db in query(session, "SHOW DATABASES").column("Database")

    clean = srv.restart(graceful=True)
    assert clean, "server did not exit within 10 s of SIGTERM"
    for compression in (False, True):
        s = srv.session(compression=compression)
        try:
            check(s)
        finally:
            s.close()

    # A second graceful restart after writing more on the recovered server.
    s = srv.session()
    try:
        s.insert_record(f"{db}.d1", 4, ["temp"], [T.DOUBLE], [4.25])
    finally:
        s.close()
    assert srv.restart(graceful=True)
    s = srv.session()
    try:
        assert query(s, f"SELECT temp FROM {db}.d1").rows == [[2, 21.5], [3, 99.0], [4, 4.25]]
        check_all_types_result(query(s, f"SELECT * FROM {db}.all"), f"{db}.all", ts, rows)
    finally:
        s.close()


def test_session_fails_cleanly_when_server_is_down(server_factory):
    srv = server_factory.start()
    s = srv.session()
    s.set_storage_group("root.down")
    srv.stop()
    with pytest.raises((IoTDBConnectionException, StatementExecutionException)):
        s.insert_record("root.down.d", 1, ["v"], [T.INT32], [1])
    srv.start()
    s2 = srv.session()
    try:
        assert "root.down" in query(s2, "SHOW DATABASES").column("Database")
    finally:
        s2.close()


def test_auto_create_schema_disabled(server_factory):
    srv = server_factory.start(config={"enable_auto_create_schema": "false"})
    s = srv.session()
    try:
        s.set_storage_group("root.noauto")
        with pytest.raises(StatementExecutionException):
            s.insert_record("root.noauto.d", 1, ["v"], [T.INT64], [1])
        with pytest.raises(StatementExecutionException):
            s.insert_tablet(Tablet("root.noauto.d", ["v"], [T.INT64], [[1], [2]], [1, 2]))
        assert show_timeseries(s, "root.noauto.**") == {}
        s.create_time_series("root.noauto.d.v", T.INT64, E.PLAIN, C.UNCOMPRESSED)
        s.insert_record("root.noauto.d", 1, ["v"], [T.INT64], [1])
        assert query(s, "SELECT v FROM root.noauto.d").rows == [[1, 1]]
    finally:
        s.close()
