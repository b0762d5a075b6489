"""Crash recovery: kill -9 the DuetDB server while a client is writing, restart it on the same home
dir, and check that every acknowledged write is there with its exact value.

A write counts as acknowledged only once the client call returned without an exception. Writes in
flight at the moment of the kill may or may not survive, but whatever is present must be a point
that was really written, complete and with its exact value (values are a function of the timestamp).
"""

import threading
import time

import pytest

from iotdb.utils.IoTDBConstants import Compressor, TSDataType, TSEncoding
from iotdb.utils.Tablet import Tablet

from duet_helpers import fval, query

T = TSDataType
E = TSEncoding
C = Compressor

DB = "root.crash"
D_REC = f"{DB}.rec"  # non-aligned, written with insert_record
D_TAB = f"{DB}.tab"  # aligned, written with insert_aligned_tablet

REC_MEAS = ["i64", "dbl", "txt", "flag"]
REC_TYPES = [T.INT64, T.DOUBLE, T.TEXT, T.BOOLEAN]
TAB_MEAS = ["i32", "flt", "txt"]
TAB_TYPES = [T.INT32, T.FLOAT, T.TEXT]

# (seconds the writer runs before the kill, rows per tablet): different timings per cycle.
CYCLES = [(3.0, 5), (1.2, 1), (2.3, 17)]

WRITER_GRACE_S = 20.0  # after the kill, the writer must notice within this time


def rec_values(t):
    return [t * 31 - 7, t / 4.0, f"r{t}", t % 2 == 0]


def tab_values(t):
    # every 4th FLOAT is null, so bitmaps go through the WAL as well
    return [(t % 100_000) * 3 - 5, None if t % 4 == 0 else (t % 10_000) * 0.5, f"tab-{t}"]


def tab_expected(t):
    v = tab_values(t)
    return [v[0], None if v[1] is None else fval(v[1]), v[2]]


def create_schema(session):
    session.set_storage_group(DB)
    session.create_multi_time_series(
        [f"{D_REC}.{m}" for m in REC_MEAS],
        REC_TYPES,
        [E.PLAIN, E.GORILLA, E.PLAIN, E.PLAIN],
        [C.SNAPPY, C.SNAPPY, C.LZ4, C.UNCOMPRESSED],
    )
    session.create_aligned_time_series(D_TAB, TAB_MEAS, TAB_TYPES, [E.PLAIN] * 3, [C.SNAPPY] * 3)


class Writer(threading.Thread):
    def __init__(self, srv, first_ts, tablet_rows, max_seconds):
        super().__init__(daemon=True, name="duetdb-writer")
        self.srv = srv
        self.next_ts = first_ts
        self.tablet_rows = tablet_rows
        self.max_seconds = max_seconds
        self.stop_event = threading.Event()
        self.killed = threading.Event()  # set by the test right before kill -9
        self.acked = {D_REC: [], D_TAB: []}
        self.attempted = {D_REC: set(), D_TAB: set()}
        self.calls = 0
        self.error = None
        self.error_after_kill = None
        self.started_writing = threading.Event()

    def run(self):
        session = None
        deadline = time.monotonic() + self.max_seconds
        try:
            session = self.srv.session(fetch_size=1000)
            self.started_writing.set()
            i = 0
            while not self.stop_event.is_set() and time.monotonic() < deadline:
                if i % 2 == 0:
                    t = self.next_ts
                    self.next_ts += 1
                    self.attempted[D_REC].add(t)
                    session.insert_record(D_REC, t, REC_MEAS, REC_TYPES, rec_values(t))
                    self.acked[D_REC].append(t)
                else:
                    ts = list(range(self.next_ts, self.next_ts + self.tablet_rows))
                    self.next_ts += self.tablet_rows
                    self.attempted[D_TAB].update(ts)
                    session.insert_aligned_tablet(Tablet(D_TAB, TAB_MEAS, TAB_TYPES, [tab_values(t) for t in ts], ts))
                    self.acked[D_TAB].extend(ts)
                self.calls += 1
                i += 1
        except Exception as e:  # noqa: BLE001 - every failure is reported by the test
            if self.killed.is_set():
                self.error_after_kill = e
            else:
                self.error = e
        finally:
            self.started_writing.set()
            if session is not None:
                try:
                    session.close()
                except Exception:
                    pass


def verify(srv, acked, attempted, label):
    """All acknowledged points present and exact; nothing present that was never written."""
    s = srv.session(fetch_size=2000)
    try:
        rec = query(s, f"SELECT {', '.join(REC_MEAS)} FROM {D_REC}")
        assert rec.columns == ["Time"] + [f"{D_REC}.{m}" for m in REC_MEAS]
        got = {r[0]: r[1:] for r in rec.rows}
        assert len(got) == len(rec.rows), f"{label}: duplicate timestamps in {D_REC}"
        missing = [t for t in acked[D_REC] if t not in got]
        assert not missing, f"{label}: {len(missing)} acknowledged records lost, e.g. {missing[:10]}"
        for t, vals in got.items():
            assert t in attempted[D_REC], f"{label}: {D_REC} has time {t} that was never written"
            assert vals == rec_values(t), f"{label}: {D_REC} at {t}: {vals} != {rec_values(t)}"

        tab = query(s, f"SELECT {', '.join(TAB_MEAS)} FROM {D_TAB}")
        assert tab.columns == ["Time"] + [f"{D_TAB}.{m}" for m in TAB_MEAS]
        got = {r[0]: r[1:] for r in tab.rows}
        assert len(got) == len(tab.rows), f"{label}: duplicate timestamps in {D_TAB}"
        missing = [t for t in acked[D_TAB] if t not in got]
        assert not missing, f"{label}: {len(missing)} acknowledged tablet rows lost, e.g. {missing[:10]}"
        for t, vals in got.items():
            assert t in attempted[D_TAB], f"{label}: {D_TAB} has time {t} that was never written"
            assert vals == tab_expected(t), f"{label}: {D_TAB} at {t}: {vals} != {tab_expected(t)}"

        series = {d["Timeseries"] for d in query(s, f"SHOW TIMESERIES {DB}.**").dicts()}
        assert series == {f"{D_REC}.{m}" for m in REC_MEAS} | {f"{D_TAB}.{m}" for m in TAB_MEAS}, label
        aligned = {d["Device"]: d["IsAligned"] for d in query(s, f"SHOW DEVICES {DB}.**").dicts()}
        assert aligned == {D_REC: "false", D_TAB: "true"}, label
    finally:
        s.close()


def test_kill9_while_writing_keeps_acknowledged_writes(server_factory):
    srv = server_factory.start()
    s = srv.session()
    try:
        create_schema(s)
    finally:
        s.close()

    acked = {D_REC: [], D_TAB: []}
    attempted = {D_REC: set(), D_TAB: set()}
    next_ts = 1
    for cycle, (kill_after, tablet_rows) in enumerate(CYCLES, 1):
        label = f"cycle {cycle} (kill after {kill_after}s)"
        writer = Writer(srv, next_ts, tablet_rows, max_seconds=kill_after + WRITER_GRACE_S)
        writer.start()
        assert writer.started_writing.wait(30), f"{label}: writer could not connect"
        time.sleep(kill_after)

        if writer.error is not None or not writer.is_alive():
            writer.stop_event.set()
            writer.join(WRITER_GRACE_S)
            pytest.fail(f"{label}: writer stopped before the kill: {writer.error!r}")
        writer.killed.set()
        srv.kill()
        writer.join(WRITER_GRACE_S)
        assert not writer.is_alive(), f"{label}: writer still blocked {WRITER_GRACE_S}s after kill -9"
        assert writer.error is None, f"{label}: writer failed before the kill: {writer.error!r}"

        n_acked = len(writer.acked[D_REC]) + len(writer.acked[D_TAB])
        assert n_acked > 0, f"{label}: no write was acknowledged in {kill_after}s"
        for d in (D_REC, D_TAB):
            acked[d].extend(writer.acked[d])
            attempted[d] |= writer.attempted[d]
        next_ts = writer.next_ts + 1000  # leave a gap between cycles

        srv.start()
        # Everything acknowledged so far, in this and in all earlier cycles.
        verify(srv, acked, attempted, label)

    # A last graceful restart after three crash recoveries loses nothing either.
    assert srv.restart(graceful=True), "server did not exit within 10 s of SIGTERM"
    verify(srv, acked, attempted, "after final graceful restart")


def test_kill9_right_after_acknowledged_schema_and_deletes(server_factory):
    """Acknowledged schema changes, inserts and deletions survive a kill -9 straight after the ack."""
    srv = server_factory.start()
    db = "root.ack"
    s = srv.session()
    s.set_storage_group(db)
    s.create_time_series(f"{db}.d.temp", T.FLOAT, E.GORILLA, C.SNAPPY, tags={"unit": "c"}, attributes={"o": "x"}, alias="tmp")
    s.create_aligned_time_series(f"{db}.al", ["a", "b"], [T.INT64, T.STRING], [E.PLAIN, E.PLAIN], [C.LZ4, C.LZ4])
    s.insert_records(
        [f"{db}.d", f"{db}.d", f"{db}.d"], [1, 2, 3], [["temp"]] * 3, [[T.FLOAT]] * 3, [[1.5], [2.5], [3.5]]
    )
    s.insert_aligned_tablet(Tablet(f"{db}.al", ["a", "b"], [T.INT64, T.STRING], [[10, "x"], [None, "y"], [30, None]], [1, 2, 3]))
    s.insert_record(f"{db}.tmp", 1, ["v"], [T.INT32], [1])
    s.delete_time_series([f"{db}.tmp.v"])
    s.delete_data([f"{db}.d.temp"], 1)
    s.insert_record(f"{db}.d", 4, ["temp"], [T.FLOAT], [4.5])
    srv.kill()  # no close, no pause

    srv.start()
    s = srv.session()
    try:
        assert query(s, f"SELECT temp FROM {db}.d").rows == [[2, 2.5], [3, 3.5], [4, 4.5]]
        assert query(s, f"SELECT a, b FROM {db}.al").rows == [[1, 10, "x"], [2, None, "y"], [3, 30, None]]
        rows = {d["Timeseries"]: d for d in query(s, f"SHOW TIMESERIES {db}.**").dicts()}
        assert set(rows) == {f"{db}.d.temp", f"{db}.al.a", f"{db}.al.b"}
        assert rows[f"{db}.d.temp"]["Alias"] == "tmp"
        assert rows[f"{db}.d.temp"]["DataType"] == "FLOAT"
        assert rows[f"{db}.al.b"]["DataType"] == "STRING"
        devices = {d["Device"]: d["IsAligned"] for d in query(s, f"SHOW DEVICES {db}.**").dicts()}
        assert devices[f"{db}.al"] == "true"
    finally:
        s.close()
