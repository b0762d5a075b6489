"""Helpers shared by the DuetDB end-to-end tests (imported by conftest and the test modules).

Everything here talks to the server only through the official `apache-iotdb` client.
"""

import datetime
import json
import math
import os
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np
import pandas as pd

from iotdb.Session import Session
from iotdb.tsfile.utils.date_utils import parse_int_to_date
from iotdb.utils.IoTDBConstants import TSDataType

REPO = Path(__file__).resolve().parents[2]
DEFAULT_BIN = REPO / "target" / "debug" / "duetdb"

HOST = "127.0.0.1"
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
# Socket timeout for every client connection: no test can hang forever on a dead server.
CLIENT_TIMEOUT_MS = 30_000
# Small fetch size so that any result of more than a few rows must page through fetchResultsV2.
SMALL_FETCH_SIZE = 3

ALL_TYPES = [
    TSDataType.BOOLEAN,
    TSDataType.INT32,
    TSDataType.INT64,
    TSDataType.FLOAT,
    TSDataType.DOUBLE,
    TSDataType.TEXT,
    TSDataType.STRING,
    TSDataType.BLOB,
    TSDataType.DATE,
    TSDataType.TIMESTAMP,
]


class ServerStartError(Exception):
    pass


def free_port(host: str = HOST) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def port_accepts(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def tail(path: Path, lines: int = 80) -> str:
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        return f"<cannot read {path}: {e}>"
    text = data[-200_000:].decode("utf-8", errors="replace")
    return "\n".join(text.splitlines()[-lines:])


class DuetServer:
    """One DuetDB server process bound to a fixed home dir and port.

    The same object can be stopped (gracefully or with kill -9) and started again; it keeps
    the home dir, the port and the config overrides, so a restart reopens the same data.
    stdout and stderr of every incarnation are appended to `log_path`.
    """

    def __init__(
        self,
        binary: Path,
        home: Path,
        log_path: Path,
        port: Optional[int] = None,
        config: Optional[Dict[str, Any]] = None,
        host: str = HOST,
    ):
        self.binary = Path(binary)
        self.home = Path(home)
        self.log_path = Path(log_path)
        self.host = host
        self.port = port if port is not None else free_port(host)
        self.config = dict(config or {})
        self.proc: Optional[subprocess.Popen] = None
        self.starts = 0
        self.last_exit_code: Optional[int] = None

    # -- process control -------------------------------------------------------------------

    def command(self) -> List[str]:
        cmd = [
            str(self.binary),
            "--home",
            str(self.home),
            "--rpc-address",
            self.host,
            "--rpc-port",
            str(self.port),
        ]
        for key, value in self.config.items():
            if isinstance(value, bool):
                value = "true" if value else "false"
            cmd += ["-c", f"{key}={value}"]
        return cmd

    def is_running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> Optional[int]:
        return self.proc.pid if self.proc is not None else None

    def start(self, timeout: float = START_TIMEOUT_S) -> "DuetServer":
        assert not self.is_running(), "server already running"
        if not self.binary.is_file() or not os.access(self.binary, os.X_OK):
            raise ServerStartError(
                f"DuetDB binary not found or not executable: {self.binary} "
                f"(build it with `cargo build`, or point DUETDB_BIN at it)"
            )
        self.home.mkdir(parents=True, exist_ok=True)
        self.starts += 1
        cmd = self.command()
        env = dict(os.environ)
        env.setdefault("RUST_BACKTRACE", "1")
        with open(self.log_path, "ab") as log:
            log.write(
                f"\n===== [duetdb-tests] start #{self.starts} at {time.strftime('%H:%M:%S')}: "
                f"{' '.join(cmd)}\n".encode()
            )
            log.flush()
            self.proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                env=env,
                cwd=str(self.home),
                start_new_session=True,  # a Ctrl-C on the test run does not hit the server first
            )
        _LIVE.add(self)
        deadline = time.monotonic() + timeout
        while True:
            code = self.proc.poll()
            if code is not None:
                self.last_exit_code = code
                _LIVE.discard(self)
                raise ServerStartError(
                    f"duetdb exited with code {code} before accepting connections on "
                    f"{self.host}:{self.port}\n--- log tail ({self.log_path}) ---\n{self.log_tail()}"
                )
            if port_accepts(self.host, self.port):
                return self
            if time.monotonic() > deadline:
                self.kill()
                raise ServerStartError(
                    f"duetdb did not accept connections on {self.host}:{self.port} within "
                    f"{timeout:.0f}s\n--- log tail ({self.log_path}) ---\n{self.log_tail()}"
                )
            time.sleep(0.05)

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> bool:
        """SIGTERM, wait up to `timeout`, then SIGKILL. Returns True if it exited on SIGTERM alone."""
        if self.proc is None:
            return True
        if self.proc.poll() is not None:
            self.last_exit_code = self.proc.returncode
            _LIVE.discard(self)
            return True
        graceful = True
        try:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            graceful = False
            self._append_log(f"did not exit within {timeout}s of SIGTERM; sending SIGKILL")
            self.proc.kill()
            self.proc.wait(timeout=30)
        self.last_exit_code = self.proc.returncode
        self._append_log(f"stopped (exit code {self.last_exit_code}, graceful={graceful})")
        _LIVE.discard(self)
        return graceful

    def kill(self) -> None:
        """kill -9, and wait until the process is gone."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)
            self._append_log("killed with SIGKILL by the test")
        self.last_exit_code = self.proc.returncode
        _LIVE.discard(self)

    def restart(self, graceful: bool = True, timeout: float = START_TIMEOUT_S) -> bool:
        """Stop (SIGTERM, or kill -9 when graceful=False) and start again on the same home and port.

        Returns what stop() returned (True for a clean SIGTERM shutdown); always False for kill -9.
        """
        if graceful:
            clean = self.stop()
        else:
            self.kill()
            clean = False
        self.start(timeout=timeout)
        return clean

    # -- clients -----------------------------------------------------------------------------

    def session(
        self,
        compression: bool = False,
        fetch_size: int = SMALL_FETCH_SIZE,
        user: str = "root",
        password: str = "root",
    ) -> Session:
        s = Session(
            self.host,
            self.port,
            user,
            password,
            fetch_size=fetch_size,
            connection_timeout_in_ms=CLIENT_TIMEOUT_MS,
        )
        s.open(enable_rpc_compression=compression)
        return s

    # -- logs --------------------------------------------------------------------------------

    def log_tail(self, lines: int = 80) -> str:
        return tail(self.log_path, lines)

    def _append_log(self, msg: str) -> None:
        try:
            with open(self.log_path, "ab") as log:
                log.write(f"===== [duetdb-tests] {time.strftime('%H:%M:%S')} {msg}\n".encode())
        except OSError:
            pass

    def __repr__(self):
        return f"DuetServer(port={self.port}, home={self.home}, pid={self.pid})"


# Every server currently running, so that an interrupted run still cleans up (see conftest).
_LIVE: "set[DuetServer]" = set()


def kill_all_live_servers() -> None:
    for srv in list(_LIVE):
        try:
            srv.kill()
        except Exception:
            pass


# ------------------------------------------------------------------------------------------------
# Reading results
# ------------------------------------------------------------------------------------------------


def py_value(fld) -> Any:
    """Convert one client Field to a plain Python value (None for null).

    BOOLEAN -> bool, INT32/INT64/TIMESTAMP -> int (TIMESTAMP as the raw epoch number),
    FLOAT/DOUBLE -> float, TEXT/STRING -> str, BLOB -> bytes, DATE -> datetime.date.
    """
    if fld is None:
        return None
    dt = fld.get_data_type()
    v = fld.value
    if dt is None or v is None or v is pd.NA:
        return None
    if isinstance(v, float) and math.isnan(v):
        return None
    if dt == TSDataType.BOOLEAN:
        return bool(v)
    if dt in (TSDataType.INT32, TSDataType.INT64, TSDataType.TIMESTAMP):
        return int(v)
    if dt in (TSDataType.FLOAT, TSDataType.DOUBLE):
        f = float(v)
        return None if math.isnan(f) else f
    if dt in (TSDataType.TEXT, TSDataType.STRING):
        return v.decode("utf-8") if isinstance(v, (bytes, bytearray)) else str(v)
    if dt == TSDataType.BLOB:
        return bytes(v)
    if dt == TSDataType.DATE:
        return parse_int_to_date(int(v))
    raise AssertionError(f"unexpected data type {dt!r} in result")


@dataclass
class Result:
    columns: List[str]  # as SessionDataSet.get_column_names(): "Time" first unless ignoreTimeStamp
    types: List[TSDataType]
    rows: List[list]  # one list per row, aligned with `columns` (time included when present)
    has_time: bool

    def column(self, name: str) -> list:
        assert name in self.columns, f"no column {name!r} in {self.columns}"
        i = self.columns.index(name)
        return [r[i] for r in self.rows]

    def dicts(self) -> List[Dict[str, Any]]:
        return [dict(zip(self.columns, r)) for r in self.rows]

    def by_time(self) -> Dict[int, Dict[str, Any]]:
        assert self.has_time, "result has no Time column"
        out = {}
        for r in self.rows:
            t = r[0]
            assert t not in out, f"duplicate timestamp {t} in result"
            out[t] = dict(zip(self.columns[1:], r[1:]))
        return out

    def times(self) -> List[int]:
        assert self.has_time, "result has no Time column"
        return [r[0] for r in self.rows]

    def type_of(self, name: str) -> TSDataType:
        return self.types[self.columns.index(name)]


def read_dataset(ds, max_rows: int = 2_000_000) -> Result:
    """Drain a SessionDataSet row by row (the client's has_next()/next() path)."""
    try:
        rpc = ds.iotdb_rpc_data_set
        has_time = not rpc.ignore_timestamp
        columns = list(ds.get_column_names())
        types = list(ds.get_column_types())
        rows = []
        while ds.has_next():
            rec = ds.next()
            if rec is None:
                break
            # Fields are reused by the client between rows: convert immediately.
            vals = [py_value(f) for f in rec.get_fields()]
            rows.append(([int(rec.get_timestamp())] if has_time else []) + vals)
            assert len(rows) <= max_rows, "result does not end"
        for r in rows:
            assert len(r) == len(columns), f"row {r} does not match columns {columns}"
        return Result(columns, types, rows, has_time)
    finally:
        ds.close_operation_handle()


def query(session: Session, sql: str) -> Result:
    return read_dataset(session.execute_query_statement(sql))


def fval(x: float) -> float:
    """What a FLOAT (f32) value reads back as."""
    return float(np.float32(x))


def parse_json_map(text) -> Optional[dict]:
    """Tags/Attributes cells of SHOW TIMESERIES are JSON objects (null when there are none)."""
    if text is None:
        return None
    return json.loads(text)


class ClientCallCounter:
    """Wraps the thrift client of a Session and counts RPC calls by method name.

    Installed on the session *before* a query, so the SessionDataSet it returns (which keeps a
    reference to the client) reports its fetchResultsV2 calls here too.
    """

    def __init__(self, inner):
        self._inner = inner
        self.calls: Dict[str, int] = {}
        self._lock = threading.Lock()

    def __getattr__(self, name):
        attr = getattr(self._inner, name)
        if not callable(attr):
            return attr

        def wrapper(*args, **kwargs):
            with self._lock:
                self.calls[name] = self.calls.get(name, 0) + 1
            return attr(*args, **kwargs)

        return wrapper


def count_client_calls(session: Session) -> ClientCallCounter:
    """Replace the session's client with a counting proxy; returns the proxy."""
    inner = session._Session__client
    proxy = ClientCallCounter(inner)
    session._Session__client = proxy
    return proxy


def uncount_client_calls(session: Session, proxy: ClientCallCounter) -> None:
    session._Session__client = proxy._inner


def wait_until(pred, timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(interval)
    return pred()


def sample_value(dt: TSDataType, r: int) -> Any:
    """A deterministic, exactly round-trippable value of type dt for row r."""
    if dt == TSDataType.BOOLEAN:
        return r % 3 == 0
    if dt == TSDataType.INT32:
        return r * 1000 - 70_000
    if dt == TSDataType.INT64:
        return r * 10**12 + 7 - 5 * 10**12
    if dt == TSDataType.FLOAT:
        return r * 0.5 - 1.25
    if dt == TSDataType.DOUBLE:
        return r / 8.0 + 1e10 + 0.1
    if dt == TSDataType.TEXT:
        return "" if r == 2 else f"t{r}-ü漢"
    if dt == TSDataType.STRING:
        return f"s{r}'\"x"
    if dt == TSDataType.BLOB:
        return bytes([r + 1, 0, 255, (r * 37) % 256 or 1])
    if dt == TSDataType.DATE:
        return datetime.date(2024, 1, 1) + datetime.timedelta(days=r * 40)
    if dt == TSDataType.TIMESTAMP:
        return 1_700_000_000_000 + r * 1001
    raise AssertionError(dt)


def expected_read(dt: TSDataType, v: Any) -> Any:
    """What py_value() gives back for a value written with type dt."""
    if v is None:
        return None
    if dt == TSDataType.FLOAT:
        return fval(v)
    if dt == TSDataType.BLOB:
        return bytes(v)
    return v
