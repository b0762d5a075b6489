"""Fixtures that run the real DuetDB server binary and connect the official IoTDB client to it.

Binary: $DUETDB_BIN, default <repo>/target/debug/duetdb. Started as
    duetdb --home <tmp>/home --rpc-address 127.0.0.1 --rpc-port <free port> [-c key=value ...]
Ready when the port accepts TCP connections (30 s at most). stdout+stderr go to <tmp>/server.log,
whose tail is attached to the report of any failing test that used the server.
"""

import atexit
import itertools
import os
import re
from pathlib import Path

import pytest

from duet_helpers import (
    DEFAULT_BIN,
    DuetServer,
    ServerStartError,
    kill_all_live_servers,
)

atexit.register(kill_all_live_servers)


def _binary() -> Path:
    return Path(os.environ.get("DUETDB_BIN") or DEFAULT_BIN)


class ServerFactory:
    """Creates servers in a test's temp dir; all are stopped at teardown."""

    def __init__(self, tmp_path_factory, name: str):
        self._tmp = tmp_path_factory
        self._name = name
        self.servers = []

    def create(self, config=None, port=None) -> DuetServer:
        d = self._tmp.mktemp(self._name)
        srv = DuetServer(_binary(), d / "home", d / "server.log", port=port, config=config)
        self.servers.append(srv)
        return srv

    def start(self, config=None, port=None) -> DuetServer:
        srv = self.create(config=config, port=port)
        _start_or_fail(srv)
        return srv

    def stop_all(self):
        for srv in self.servers:
            srv.stop()


def _start_or_fail(srv: DuetServer):
    error = None
    try:
        srv.start()
    except ServerStartError as e:
        error = str(e)
    if error is not None:
        pytest.fail(error, pytrace=False)


@pytest.fixture(scope="session")
def duetdb_bin() -> Path:
    return _binary()


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """One server shared by the tests that do not restart it. Tests keep to their own database."""
    factory = ServerFactory(tmp_path_factory, "shared")
    srv = factory.start()
    yield srv
    factory.stop_all()


@pytest.fixture
def server_factory(tmp_path_factory, request):
    """For tests that need their own server (restarts, kill -9, config overrides)."""
    name = re.sub(r"[^A-Za-z0-9_]", "_", request.node.name)[:40]
    factory = ServerFactory(tmp_path_factory, name)
    yield factory
    factory.stop_all()


@pytest.fixture(params=[False, True], ids=["binary", "compact"])
def compression(request) -> bool:
    """enable_rpc_compression: False = TBinaryProtocol, True = TCompactProtocol."""
    return request.param


@pytest.fixture
def session(server, compression):
    """An opened Session(host, port, "root", "root") on the shared server, fetch_size=3."""
    s = server.session(compression=compression)
    yield s
    s.close()


_db_counter = itertools.count(1)


@pytest.fixture
def db_name(request) -> str:
    """A database name unique to this test (and to its parameters)."""
    base = request.node.name
    base = re.sub(r"^test_", "", base)
    base = re.sub(r"[^A-Za-z0-9_]", "_", base).strip("_").lower()
    return f"root.t{next(_db_counter)}_{base[:40]}"


@pytest.fixture
def db(session, db_name) -> str:
    """db_name, created with set_storage_group on `session`."""
    session.set_storage_group(db_name)
    return db_name


# ------------------------------------------------------------------------------------------------
# Attach the server log tail to failing tests.
# ------------------------------------------------------------------------------------------------


def _servers_of(item):
    found = []
    funcargs = getattr(item, "funcargs", None) or {}
    for value in funcargs.values():
        if isinstance(value, DuetServer):
            found.append(value)
        elif isinstance(value, ServerFactory):
            found.extend(value.servers)
    seen, out = set(), []
    for s in found:
        if id(s) not in seen:
            seen.add(id(s))
            out.append(s)
    return out


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        for srv in _servers_of(item):
            rep.sections.append(
                (f"duetdb log tail: {srv.log_path}", srv.log_tail(80))
            )


def pytest_report_header(config):
    b = _binary()
    state = "present" if b.is_file() else "MISSING"
    return f"duetdb binary: {b} ({state})"
