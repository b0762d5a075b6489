"""The SQL golden files, through the official Python client and through the CLI.

`tests/integration/sql/NAME.sql` holds statements and `NAME.result` what they return, rendered by
the Rust golden runner (`tests/integration/src/golden.rs`, run by `tests/integration/tests/golden.rs`).
This module replays every file, on a fresh server per file and per path, through:

* `python-binary` / `python-compact`: the official `apache-iotdb` Session (TBinaryProtocol /
  TCompactProtocol), queries with `execute_query_statement` (rows read with has_next()/next(), a
  fetch size of 3 so that results page through fetchResultsV2), everything else with
  `execute_non_query_statement`;
* `cli`: the `duet-cli` binary (what `sbin/start-cli.sh` runs), one `-e "SQL"` per statement, its
  boxed tables parsed back;

renders each outcome in exactly the golden format and compares it with the `.result` file, statement
by statement. The golden format (see golden.rs): each statement echoed after `> `, then `OK`,
`ERROR <code>`, or a tab-separated header (`Time` first unless the result has no time column) and one
line per row (`null` for nulls, floats as Rust prints them with `.0` for integral values, DATE as
yyyy-MM-dd, BLOB as 0x..., the Time column as the raw epoch number), then an empty line.

Differences that are real bugs are listed in KNOWN_DIFFERENCES: the file tests leave those
statements out, and each one is a strict xfail of its own, so it turns into a failure once fixed.
"""

import datetime
import os
import re
import subprocess
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional, Tuple

import numpy as np
import pandas as pd
import pytest

from duet_helpers import (
    CLIENT_TIMEOUT_MS,
    REPO,
    SMALL_FETCH_SIZE,
    DEFAULT_BIN,
    DuetServer,
    ServerStartError,
)
from iotdb.Session import Session
from iotdb.tsfile.utils.date_utils import parse_int_to_date
from iotdb.utils.exception import StatementExecutionException
from iotdb.utils.IoTDBConstants import TSDataType

GOLDEN_DIR = REPO / "tests" / "integration" / "sql"
GOLDEN_FILES = sorted(p.stem for p in GOLDEN_DIR.glob("*.sql"))

# The golden runner opens its session with time zone +00:00 (TestServer::session); the files
# depend on it (calendar months, ISO literals without an offset).
ZONE = "+00:00"

PATHS = ["python-binary", "python-compact", "cli"]

# (path, golden file, statement) -> why the path cannot run that statement at all. Empty: every
# golden statement goes through every path.
SKIPPED: Dict[Tuple[str, str, str], str] = {}

# (path, golden file, statement) -> the bug (server or CLI) that makes that path differ from the
# golden file. test_golden leaves them out of the per-file cases and runs each as a strict xfail
# case of its own (test_golden[PATH-FILE-knownN]). Empty: no path differs from the golden files.
KNOWN_DIFFERENCES: Dict[Tuple[str, str, str], str] = {}


# ------------------------------------------------------------------------------------------------
# Golden files
# ------------------------------------------------------------------------------------------------


def split_statements(script: str) -> List[str]:
    """golden.rs `split`, line for line: `;` outside quotes ends a statement, lines that are empty
    or start with `--` (outside quotes) are skipped, whitespace runs collapse to one space."""
    out: List[str] = []
    cur: List[str] = []
    quote: Optional[str] = None

    def finish():
        text = "".join(cur)
        if text.strip():
            out.append(" ".join(text.split()))

    # Rust's str::lines(): split at \n, drop one trailing \r.
    lines = script.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    for line in lines:
        if line.endswith("\r"):
            line = line[:-1]
        t = line.strip()
        if quote is None and (t.startswith("--") or t == ""):
            continue
        for c in line:
            if quote is not None:
                cur.append(c)
                if c == quote:
                    quote = None
            elif c == ";":
                finish()
                cur = []
            else:
                if c in "'\"`":
                    quote = c
                cur.append(c)
        cur.append(" ")
    finish()
    return out


class Golden(NamedTuple):
    name: str
    statements: List[str]
    expected: List[str]  # one rendered block per statement: "> stmt\n" + body + "\n"


def block(stmt: str, body_lines: List[str]) -> str:
    return f"> {stmt}\n" + "".join(line + "\n" for line in body_lines) + "\n"


def load_golden(name: str) -> Golden:
    sql = (GOLDEN_DIR / f"{name}.sql").read_text(encoding="utf-8")
    result = (GOLDEN_DIR / f"{name}.result").read_text(encoding="utf-8")
    stmts = split_statements(sql)
    # Cut the .result into one block per statement, in order: block i starts with "> " + stmt i
    # at the beginning of a line. The blocks must add up to the whole file.
    expected: List[str] = []
    pos = 0
    for i, stmt in enumerate(stmts):
        head = f"> {stmt}\n"
        assert result.startswith(head, pos), (
            f"{name}.result does not continue with the echo of statement {i + 1} {stmt!r} at "
            f"offset {pos}: this module splits the .sql differently from golden.rs, or the "
            f".result is stale"
        )
        if i + 1 < len(stmts):
            nxt = result.find(f"\n\n> {stmts[i + 1]}\n", pos + len(head) - 1)
            assert nxt >= 0, f"{name}.result: no block for statement {i + 2} {stmts[i + 1]!r}"
            end = nxt + 2
        else:
            end = len(result)
        expected.append(result[pos:end])
        pos = end
    assert "".join(expected) == result
    for b in expected:
        assert b.endswith("\n\n"), f"{name}.result: block does not end with an empty line: {b!r}"
    return Golden(name, stmts, expected)


# ------------------------------------------------------------------------------------------------
# Rendering values the way golden.rs does (duet_common::types::Value::render)
# ------------------------------------------------------------------------------------------------


def format_float(v, single: bool) -> str:
    """duet_common::types::format_float: Rust's shortest round-trip Display (never exponent
    notation) of the f32 or f64 value, with ".0" added to integral values."""
    x = np.float32(v) if single else np.float64(v)
    if np.isnan(x):
        return "NaN"
    if np.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    # unique=True: the shortest digits that round-trip in x's own type (f32 for FLOAT, as Rust's
    # `{}` of an f32); trim="0" keeps one zero after the point, as format_float appends ".0".
    return np.format_float_positional(x, unique=True, trim="0")


def is_null(v) -> bool:
    return v is None or v is pd.NA


def render_python_value(v, t: TSDataType) -> str:
    """One cell read through the official client's row API, rendered like Value::render.

    The client hands out numpy/pandas values rather than IoTDB's own (np.float32 / np.int32,
    pandas NA for nulls in integer and boolean columns, bytes for text, the raw yyyymmdd int
    for DATE); each is turned back into the exact value it decodes from, and anything of an
    unexpected Python type fails instead of being coerced.
    """
    if is_null(v):
        return "null"
    if t == TSDataType.BOOLEAN:
        assert isinstance(v, (bool, np.bool_)), f"BOOLEAN cell {v!r} is {type(v)}"
        return "true" if v else "false"
    if t in (TSDataType.INT32, TSDataType.INT64, TSDataType.TIMESTAMP):
        assert isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)), f"{t.name} cell {v!r} is {type(v)}"
        return str(int(v))
    if t in (TSDataType.FLOAT, TSDataType.DOUBLE):
        assert isinstance(v, (float, np.floating)), f"{t.name} cell {v!r} is {type(v)}"
        # A FLOAT column arrives as f32 (or its exact f64 widening): np.float32() is lossless.
        return format_float(v, single=(t == TSDataType.FLOAT))
    if t in (TSDataType.TEXT, TSDataType.STRING):
        if isinstance(v, (bytes, bytearray)):
            # Rust renders with String::from_utf8_lossy.
            return bytes(v).decode("utf-8", errors="replace")
        assert isinstance(v, str), f"{t.name} cell {v!r} is {type(v)}"
        return v
    if t == TSDataType.BLOB:
        assert isinstance(v, (bytes, bytearray)), f"BLOB cell {v!r} is {type(v)}"
        return "0x" + bytes(v).hex()
    if t == TSDataType.DATE:
        if isinstance(v, datetime.date):
            return v.isoformat()
        assert isinstance(v, (int, np.integer)), f"DATE cell {v!r} is {type(v)}"
        # The client's own DATE conversion (it raises on anything that is not a valid date).
        return parse_int_to_date(int(v)).isoformat()
    raise AssertionError(f"unexpected column type {t!r}")


# ------------------------------------------------------------------------------------------------
# Path 1: the official Python client
# ------------------------------------------------------------------------------------------------

# The official client has no call that runs any statement and says whether it was a query:
# Session.execute_statement sends its timeout argument as the fetch size and returns None for a
# query whose result has no value columns (`SELECT nosuch FROM ...` has a Time-only result in the
# golden file), which would be indistinguishable from OK. So statements are routed the way an
# IoTDB user routes them, by their first keyword.
QUERY_KEYWORDS = {"SELECT", "SHOW", "COUNT"}


def is_query(stmt: str) -> bool:
    first = stmt.split(None, 1)[0].upper() if stmt.split() else ""
    return first in QUERY_KEYWORDS


def python_session(srv: DuetServer, compression: bool) -> Session:
    s = Session(
        srv.host,
        srv.port,
        "root",
        "root",
        fetch_size=SMALL_FETCH_SIZE,
        zone_id=ZONE,
        connection_timeout_in_ms=CLIENT_TIMEOUT_MS,
    )
    s.open(enable_rpc_compression=compression)
    return s


def render_dataset(ds) -> List[str]:
    try:
        rpc = ds.iotdb_rpc_data_set
        has_time = not rpc.ignore_timestamp
        # get_column_names() already starts with "Time" when the result has a time column.
        names = list(ds.get_column_names())
        types = list(ds.get_column_types())
        value_types = types[1:] if has_time else types
        if has_time:
            assert names[0] == "Time", names
        lines = ["\t".join(names)]
        while ds.has_next():
            rec = ds.next()
            if rec is None:
                break
            fields = rec.get_fields()
            assert len(fields) == len(value_types), f"row has {len(fields)} fields for columns {names}"
            cells = [str(int(rec.get_timestamp()))] if has_time else []
            # Render at once: the client reuses its Field objects from row to row.
            cells += [render_python_value(f.value, t) for f, t in zip(fields, value_types)]
            lines.append("\t".join(cells))
        return lines
    finally:
        ds.close_operation_handle()


ERROR_RE = re.compile(r"^(-?\d+): ", re.S)


def run_python(srv: DuetServer, stmts: List[str], compression: bool) -> List[List[str]]:
    s = python_session(srv, compression)
    out: List[List[str]] = []
    try:
        for stmt in stmts:
            try:
                if is_query(stmt):
                    out.append(render_dataset(s.execute_query_statement(stmt)))
                else:
                    s.execute_non_query_statement(stmt)
                    out.append(["OK"])
            except StatementExecutionException as e:
                # The client raises StatementExecutionException("<code>: <message>").
                m = ERROR_RE.match(str(e))
                out.append([f"ERROR {m.group(1)}"] if m else [f"UNPARSEABLE ERROR {e}"])
            except Exception as e:  # noqa: BLE001 - rendered, so the comparison shows it
                out.append([f"CLIENT EXCEPTION {type(e).__name__}: {e}"])
    finally:
        try:
            s.close()
        except Exception:
            pass
    return out


# ------------------------------------------------------------------------------------------------
# Path 2: the CLI
# ------------------------------------------------------------------------------------------------


def server_binary() -> Path:
    """As conftest: $DUETDB_BIN, default target/debug/duetdb."""
    return Path(os.environ.get("DUETDB_BIN") or DEFAULT_BIN)


def cli_binary() -> Path:
    """$DUETDB_CLI, else duet-cli next to the server binary (target/debug/ by default)."""
    env = os.environ.get("DUETDB_CLI")
    return Path(env) if env else server_binary().parent / "duet-cli"


# A result with no columns at all (`SELECT count(nosuch) ...` has neither a time column nor a value
# column) is drawn as a box without cells: "+", "|", "+".
BORDER_RE = re.compile(r"^\+(?:-+\+)*$")
COST_RE = re.compile(r"^It costs \d+\.\d{3}s$")
TOTAL_RE = re.compile(r"^Total line number = (\d+)$")
# The CLI shows the Time column as ISO-8601 in the session's zone (-tz +00:00), in ms precision.
ISO_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})\.(\d{3})\+00:00$")
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


class CliOutputError(Exception):
    pass


def iso_to_epoch_ms(text: str) -> int:
    m = ISO_RE.match(text)
    if not m:
        raise CliOutputError(f"Time cell {text!r} is not yyyy-MM-ddTHH:mm:ss.SSS+00:00")
    y, mo, d, h, mi, s, ms = (int(g) for g in m.groups())
    try:
        dt = datetime.datetime(y, mo, d, h, mi, s, tzinfo=datetime.timezone.utc)
    except ValueError as e:  # e.g. 02-30
        raise CliOutputError(f"Time cell {text!r}: {e}") from None
    delta = dt - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1000 + ms


def parse_cli_row(line: str, widths: List[int]) -> List[str]:
    """One `|  a|bcd|` line of the box. Cells are right-aligned to the column width (counted in
    chars), so a cell is its last `width` chars with the left padding removed. (A text value with
    leading spaces cannot be told from padding; no golden value has one.)"""
    want = 1 + sum(w + 1 for w in widths)
    if len(line) != want or line[0] != "|":
        raise CliOutputError(f"row {line!r} does not fit the column widths {widths}")
    cells, pos = [], 1
    for w in widths:
        cell = line[pos : pos + w]
        if line[pos + w] != "|":
            raise CliOutputError(f"row {line!r}: no '|' after a cell of width {w}")
        cells.append(cell.lstrip(" "))
        pos += w + 1
    return cells


def normalise_cli_table(lines: List[str]) -> List[str]:
    """The CLI's boxed table (render.rs) -> the golden header and rows."""
    if len(lines) < 3 or not BORDER_RE.match(lines[0]) or lines[2] != lines[0]:
        raise CliOutputError("no table header box")
    border = lines[0]
    widths = [len(seg) for seg in border[1:-1].split("+")] if border != "+" else []
    header = parse_cli_row(lines[1], widths)
    rows: List[List[str]] = []
    rest = lines[3:]
    if rest and rest[0] == "Empty set.":
        rest = rest[1:]
    else:
        while rest and rest[0] != border:
            rows.append(parse_cli_row(rest[0], widths))
            rest = rest[1:]
        if not rest or not rows:
            raise CliOutputError("table rows not closed by a border")
        rest = rest[1:]
    if len(rest) != 1 or not TOTAL_RE.match(rest[0]):
        raise CliOutputError(f"expected only 'Total line number = N' after the table, got {rest!r}")
    total = int(TOTAL_RE.match(rest[0]).group(1))
    if total != len(rows):
        raise CliOutputError(f"'Total line number = {total}' but the table has {len(rows)} rows")
    if header and header[0] == "Time":
        for r in rows:
            r[0] = str(iso_to_epoch_ms(r[0]))
    return ["\t".join(header)] + ["\t".join(r) for r in rows]


def normalise_cli_output(rc: int, stdout: str, stderr: str) -> List[str]:
    """One `duet-cli -e STMT` run -> the golden body (OK / ERROR code / header and rows)."""
    if rc == 1 and stdout == "":
        # main.rs: a failed statement prints "Msg: <code>: <message>" on stderr and exits 1.
        m = re.match(r"^Msg: (-?\d+): .*\n$", stderr, re.S)
        if not m:
            raise CliOutputError("exit code 1 without a 'Msg: <code>: ...' line on stderr")
        return [f"ERROR {m.group(1)}"]
    if rc != 0 or stderr != "":
        raise CliOutputError("unexpected exit code or stderr")
    if not stdout.endswith("\n"):
        raise CliOutputError("stdout does not end with a newline")
    lines = stdout[:-1].split("\n")
    if not lines or not COST_RE.match(lines[-1]):
        raise CliOutputError("no 'It costs N.NNNs' last line")
    lines = lines[:-1]
    if lines == ["Msg: The statement is executed successfully."]:
        return ["OK"]
    return normalise_cli_table(lines)


def run_cli(srv: DuetServer, stmts: List[str]) -> List[List[str]]:
    cli = cli_binary()
    out: List[List[str]] = []
    for stmt in stmts:
        cmd = [str(cli), "-h", srv.host, "-p", str(srv.port), "-u", "root", "-pw", "root", "-tz", ZONE, "-e", stmt]
        p = subprocess.run(cmd, capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
        stdout = p.stdout.decode("utf-8", errors="replace")
        stderr = p.stderr.decode("utf-8", errors="replace")
        try:
            out.append(normalise_cli_output(p.returncode, stdout, stderr))
        except CliOutputError as e:
            out.append([f"UNPARSEABLE CLI OUTPUT ({e}): exit {p.returncode}", "--- stdout", *stdout.split("\n"), "--- stderr", *stderr.split("\n")])
    return out


# ------------------------------------------------------------------------------------------------
# Running a file on a fresh server (once per path and file, shared by the tests below)
# ------------------------------------------------------------------------------------------------


class Run(NamedTuple):
    golden: Golden
    got: List[str]  # one rendered block per statement, None where the statement was skipped
    log_tail: str


@pytest.fixture(scope="module")
def golden_run(tmp_path_factory):
    cache: Dict[Tuple[str, str], Run] = {}
    servers: List[DuetServer] = []

    def run(path: str, name: str) -> Run:
        key = (path, name)
        if key in cache:
            return cache[key]
        g = load_golden(name)
        d = tmp_path_factory.mktemp(f"golden_{path}_{name}")
        srv = DuetServer(server_binary(), d / "home", d / "server.log")
        servers.append(srv)
        try:
            srv.start()
        except ServerStartError as e:
            pytest.fail(str(e), pytrace=False)
        if path == "cli" and not os.access(cli_binary(), os.X_OK):
            srv.stop()
            pytest.fail(f"CLI binary not found: {cli_binary()} (build it with `cargo build`, or set DUETDB_CLI)", pytrace=False)
        todo = [s for s in g.statements if (path, name, s) not in SKIPPED]
        try:
            if path == "cli":
                bodies = run_cli(srv, todo)
            else:
                bodies = run_python(srv, todo, compression=(path == "python-compact"))
        finally:
            srv.stop()
        it = iter(bodies)
        got = [None if (path, name, s) in SKIPPED else block(s, next(it)) for s in g.statements]
        cache[key] = Run(g, got, srv.log_tail(40))
        return cache[key]

    yield run
    for srv in servers:
        srv.stop()


def describe(path: str, name: str, stmt: str, want: str, got: Optional[str]) -> str:
    return f"[{path}] {name}.sql: {stmt}\n--- expected\n{want}--- got\n{got}"


# ------------------------------------------------------------------------------------------------
# Tests
# ------------------------------------------------------------------------------------------------


def test_golden_files_found():
    assert GOLDEN_FILES, f"no golden files in {GOLDEN_DIR}"


@pytest.mark.parametrize("name", GOLDEN_FILES)
def test_golden_split_matches_result_file(name):
    """This module's statement split agrees with the echoes in the .result (golden.rs's split)."""
    g = load_golden(name)
    assert len(g.statements) == len(g.expected) > 0


def test_golden_exception_lists_name_real_statements():
    """Every SKIPPED / KNOWN_DIFFERENCES entry names a path, a golden file and one of its statements."""
    for table in (SKIPPED, KNOWN_DIFFERENCES):
        for path, name, stmt in table:
            assert path in PATHS, path
            assert name in GOLDEN_FILES, name
            assert stmt in load_golden(name).statements, f"{name}.sql has no statement {stmt!r}"


def _cases():
    # One case per path and file: every statement, except the skipped ones and the known
    # differences, which follow as strict xfails of their own (an xfail that starts passing fails
    # the run, so a fixed bug is taken off the list).
    for path in PATHS:
        for name in GOLDEN_FILES:
            yield pytest.param(path, name, None, id=f"{path}-{name}")
    for i, ((path, name, stmt), reason) in enumerate(sorted(KNOWN_DIFFERENCES.items())):
        yield pytest.param(path, name, stmt, id=f"{path}-{name}-known{i + 1}", marks=pytest.mark.xfail(strict=True, reason=reason))


@pytest.mark.parametrize("path,name,stmt", list(_cases()))
def test_golden(golden_run, path, name, stmt):
    run = golden_run(path, name)
    g = run.golden
    failures = []
    for s, want, got in zip(g.statements, g.expected, run.got):
        key = (path, name, s)
        if stmt is None and (key in SKIPPED or key in KNOWN_DIFFERENCES):
            continue
        if stmt is not None and s != stmt:
            continue
        if got != want:
            failures.append(describe(path, name, s, want, got))
    assert not failures, (
        f"{len(failures)} of {len(g.statements)} statements differ from {name}.result\n\n"
        + "\n".join(failures)
        + f"\n--- server log tail\n{run.log_tail}"
    )


# ------------------------------------------------------------------------------------------------
# The normalisers themselves must be able to fail.
# ------------------------------------------------------------------------------------------------


def test_cli_normaliser_reads_tables_exactly():
    out = (
        "+-----------------------------+------------+------------+\n"
        "|                         Time|root.db.d2.b|root.db.d2.t|\n"
        "+-----------------------------+------------+------------+\n"
        "|1970-01-01T00:00:00.005+00:00|        true|       hello|\n"
        "|2024-02-29T23:00:00.000+00:00|        null|        it's|\n"
        "+-----------------------------+------------+------------+\n"
        "Total line number = 2\n"
        "It costs 0.001s\n"
    )
    assert normalise_cli_output(0, out, "") == [
        "Time\troot.db.d2.b\troot.db.d2.t",
        "5\ttrue\thello",
        "1709247600000\tnull\tit's",
    ]
    # A row count that disagrees with the table, a misaligned row, a bad time: refused.
    with pytest.raises(CliOutputError):
        normalise_cli_output(0, out.replace("= 2", "= 3"), "")
    with pytest.raises(CliOutputError):
        normalise_cli_output(0, out.replace("|        true|", "|       true|"), "")
    with pytest.raises(CliOutputError):
        normalise_cli_output(0, out.replace("2024-02-29", "2023-02-29"), "")
    empty = "+----+\n|Time|\n+----+\nEmpty set.\nTotal line number = 0\nIt costs 0.000s\n"
    assert normalise_cli_output(0, empty, "") == ["Time"]
    # No columns at all (no time column either): an empty header line.
    assert normalise_cli_output(0, "+\n|\n+\nEmpty set.\nTotal line number = 0\nIt costs 0.000s\n", "") == [""]
    assert normalise_cli_output(0, "Msg: The statement is executed successfully.\nIt costs 0.003s\n", "") == ["OK"]
    assert normalise_cli_output(1, "", "Msg: 701: bad time\n") == ["ERROR 701"]
    with pytest.raises(CliOutputError):
        normalise_cli_output(1, "", "Cannot connect to 127.0.0.1:1: refused\n")


def test_value_rendering_matches_rust():
    assert format_float(np.float32(0.1), single=True) == "0.1"
    assert format_float(0.1, single=False) == "0.1"
    assert format_float(np.float32(0.1), single=False) == "0.10000000149011612"
    assert format_float(450.0, single=False) == "450.0"
    assert format_float(1e20, single=False) == "100000000000000000000.0"
    assert format_float(1e-7, single=False) == "0.0000001"
    assert format_float(3.1666666666666665, single=False) == "3.1666666666666665"
    assert format_float(float("nan"), single=False) == "NaN"
    assert format_float(float("-inf"), single=True) == "-Infinity"
    assert render_python_value(pd.NA, TSDataType.INT32) == "null"
    assert render_python_value(np.int32(7), TSDataType.INT32) == "7"
    assert render_python_value(np.bool_(False), TSDataType.BOOLEAN) == "false"
    assert render_python_value(b"it's", TSDataType.TEXT) == "it's"
    assert render_python_value(b"\x00\x0f", TSDataType.BLOB) == "0x000f"
    assert render_python_value(20240229, TSDataType.DATE) == "2024-02-29"
    with pytest.raises(AssertionError):
        render_python_value("1", TSDataType.INT64)
    with pytest.raises(AssertionError):
        render_python_value(1, TSDataType.BOOLEAN)
