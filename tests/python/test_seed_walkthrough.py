"""The dual-active deployment guide (shared/seed/dual-active-deployment.txt), run literally.

Two hosts, A (iotdb-1) and B (iotdb-2), are two network namespaces joined by a veth pair, each with
its own /etc/hosts naming both, each running an instance on port 6667 started by
sbin/start-standalone.sh with cn/dn_internal_address set to its hostname. Pipes AB and BA are
created with the guide's SQL through sbin/start-cli.sh -h <hostname>; the guide's first statement
(which lacks a closing parenthesis) must fail with a parse error that points at the problem.
Where namespaces cannot be made (not root, no iproute2), the same walk runs on two loopback
addresses (127.0.0.2 and 127.0.0.3) with the same port, addressing the hosts by IP.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from duet_helpers import REPO

BIN_DIR = Path(os.environ.get("DUETDB_BIN", REPO / "target" / "debug" / "duetdb")).parent

SEED_AB_BROKEN = """create pipe AB
with source (
'source.mode.double-living' ='true'
with sink (
'sink'='iotdb-thrift-sink',
'sink.ip'='{b}',
'sink.port'='6667'
)
"""

SEED_AB_FIXED = """create pipe AB
with source (
'source.mode.double-living' ='true'
)
with sink (
'sink'='iotdb-thrift-sink',
'sink.ip'='{b}',
'sink.port'='6667'
)
"""

SEED_BA = """create pipe BA
with source (
'source.mode.double-living' ='true'
)
with sink (
'sink'='iotdb-thrift-sink',
'sink.ip'='{a}',
'sink.port'='6667'
)
"""


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, **kw)


def netns_possible() -> bool:
    if os.geteuid() != 0 or shutil.which("ip") is None:
        return False
    name = f"duet-probe-{os.getpid()}"
    ok = run(["ip", "netns", "add", name]).returncode == 0
    if ok:
        run(["ip", "netns", "del", name])
    return ok


class Host:
    def __init__(self, name, ns, addr, home):
        self.name, self.ns, self.addr, self.home = name, ns, addr, home

    def prefix(self):
        return ["ip", "netns", "exec", self.ns] if self.ns else []

    def env(self):
        e = dict(os.environ)
        e["DUETDB_HOME"] = str(self.home)
        e["DUETDB_BIN_DIR"] = str(BIN_DIR)
        return e

    def sbin(self, script, *args, stdin=None):
        return subprocess.run(self.prefix() + ["bash", str(REPO / "sbin" / script), *args], capture_output=True, text=True, input=stdin, env=self.env(), timeout=120)

    def cli(self, stdin=None, sql=None):
        args = ["-h", self.name]
        if sql is not None:
            args += ["-e", sql]
        return self.sbin("start-cli.sh", *args, stdin=stdin)

    def client(self, *args):
        r = subprocess.run(self.prefix() + [sys.executable, str(Path(__file__).parent / "netns_client.py"), self.name, "6667", *args], capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        return json.loads(r.stdout)


@pytest.fixture
def hosts():
    tmp = Path(tempfile.mkdtemp(prefix="duet-seed-"))
    use_ns = netns_possible()
    tag = str(os.getpid())[-5:]
    created_ns = []
    if use_ns:
        a_ns, b_ns = f"duet-a-{tag}", f"duet-b-{tag}"
        va, vb = f"dva{tag}", f"dvb{tag}"
        a_ip, b_ip = "10.231.7.1", "10.231.7.2"
        hosts_file = f"127.0.0.1 localhost\n{a_ip} iotdb-1\n{b_ip} iotdb-2\n"
        for ns in (a_ns, b_ns):
            assert run(["ip", "netns", "add", ns]).returncode == 0
            created_ns.append(ns)
            os.makedirs(f"/etc/netns/{ns}", exist_ok=True)
            Path(f"/etc/netns/{ns}/hosts").write_text(hosts_file)
            run(["ip", "-n", ns, "link", "set", "lo", "up"])
        for cmd in (
            ["ip", "link", "add", va, "type", "veth", "peer", "name", vb],
            ["ip", "link", "set", va, "netns", a_ns],
            ["ip", "link", "set", vb, "netns", b_ns],
            ["ip", "-n", a_ns, "addr", "add", f"{a_ip}/24", "dev", va],
            ["ip", "-n", b_ns, "addr", "add", f"{b_ip}/24", "dev", vb],
            ["ip", "-n", a_ns, "link", "set", va, "up"],
            ["ip", "-n", b_ns, "link", "set", vb, "up"],
        ):
            r = run(cmd)
            assert r.returncode == 0, f"{cmd}: {r.stderr}"
        a = Host("iotdb-1", a_ns, a_ip, tmp / "A")
        b = Host("iotdb-2", b_ns, b_ip, tmp / "B")
    else:
        a = Host("127.0.0.2", None, "127.0.0.2", tmp / "A")
        b = Host("127.0.0.3", None, "127.0.0.3", tmp / "B")
    for h in (a, b):
        (h.home / "conf").mkdir(parents=True)
        rpc = "0.0.0.0" if use_ns else h.addr
        (h.home / "conf" / "iotdb-system.properties").write_text(
            f"dn_rpc_address={rpc}\ndn_rpc_port=6667\ncn_internal_address={h.name}\ndn_internal_address={h.name}\n"
        )
    yield a, b
    for h in (a, b):
        h.sbin("stop-standalone.sh")
        pidfile = h.home / "data" / "duetdb.pid"
        if pidfile.exists():
            try:
                os.kill(int(pidfile.read_text().strip()), 9)
            except (ProcessLookupError, ValueError):
                pass
    for ns in created_ns:
        run(["ip", "netns", "del", ns])
        shutil.rmtree(f"/etc/netns/{ns}", ignore_errors=True)
    shutil.rmtree(tmp, ignore_errors=True)


def table_rows(out: str):
    """Data rows of the CLI's boxed tables, as lists of stripped cells."""
    return [[c.strip() for c in line.strip("|").split("|")] for line in out.splitlines() if line.startswith("|")]


def test_dual_active_deployment_guide(hosts):
    a, b = hosts
    # 3.1: two independent instances.
    for h in (a, b):
        r = h.sbin("start-standalone.sh")
        assert r.returncode == 0, r.stdout + r.stderr
        assert "DuetDB started" in r.stdout

    # 3.2 on A: the guide's statement as printed is missing a ')'; the CLI reports where.
    r = a.cli(stdin=SEED_AB_BROKEN.format(b=b.name))
    assert "700" in r.stdout and "line 4:0" in r.stdout and "'with'" in r.stdout and "expecting ',' or ')'" in r.stdout, r.stdout + r.stderr
    r = a.cli(stdin=SEED_AB_FIXED.format(b=b.name))
    assert r.returncode == 0 and "executed successfully" in r.stdout, r.stdout + r.stderr
    # 3.3 on B.
    r = b.cli(stdin=SEED_BA.format(a=a.name))
    assert r.returncode == 0 and "executed successfully" in r.stdout, r.stdout + r.stderr

    # 3.4: show cluster on both nodes: ConfigNode and DataNode Running, at the configured hostnames.
    for h in (a, b):
        r = h.cli(sql="show cluster")
        assert r.returncode == 0, r.stdout + r.stderr
        rows = table_rows(r.stdout)
        assert rows[0][:5] == ["NodeID", "NodeType", "Status", "InternalAddress", "InternalPort"]
        body = rows[1:]
        assert [row[1] for row in body] == ["ConfigNode", "DataNode"]
        assert all(row[2] == "Running" and row[3] == h.name for row in body), r.stdout

    # Clients write to both sides, including the same series, through the official client.
    a.client("write", "root.plant.line1", "0", "500", "0.25")
    b.client("write", "root.plant.line2", "0", "500", "0.5")
    b.client("write", "root.plant.line1", "400", "200", "1000.0")
    a.cli(sql="insert into root.plant.line3(timestamp, status) values (1, true), (2, false)")

    # Pipes RUNNING, and their remaining counts fall to 0.
    deadline = time.time() + 60
    while True:
        states = []
        for h, pipe in ((a, "AB"), (b, "BA")):
            r = h.cli(sql="show pipes")
            rows = table_rows(r.stdout)
            head = rows[0]
            row = dict(zip(head, rows[1]))
            states.append((row["ID"], row["State"], row["RemainingEventCount"], row["ExceptionMessage"]))
        if all(s[1] == "RUNNING" for s in states) and all(s[2] == "0" for s in states):
            break
        assert time.time() < deadline, states
        time.sleep(0.2)
    assert [s[0] for s in states] == ["AB", "BA"]

    # Data checked on both sides: identical, with every point.
    da, db = a.client("dump"), b.client("dump")
    assert da == db
    cols = da["columns"]
    assert cols == ["Time", "root.plant.line1.counter", "root.plant.line1.temperature", "root.plant.line2.counter", "root.plant.line2.temperature", "root.plant.line3.status"]
    assert len(da["rows"]) == 600
    by_time = {row[0]: row for row in da["rows"]}
    assert by_time[450][2] == str(450 + 1000.0), "the later write to the same point wins on both sides"
    assert by_time[10][2] == "10.25"

    # 3.5: stop the pipes, then the instances.
    assert "executed successfully" in a.cli(stdin="stop pipe AB\n").stdout
    assert "executed successfully" in b.cli(stdin="stop pipe BA\n").stdout
    r = a.cli(sql="show pipes")
    assert "STOPPED" in r.stdout
    for h in (a, b):
        r = h.sbin("stop-standalone.sh")
        assert r.returncode == 0 and "stopped" in r.stdout, r.stdout + r.stderr
        assert "shutdown complete" in (h.home / "logs" / "duetdb.log").read_text()
