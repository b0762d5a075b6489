"""A throwaway DuetDB server for the Python benchmark scripts: `with running(bindir, port) as s:`
starts `duetdb` on a fresh home, yields a logged-in root session once it accepts one, and kills
the server and removes its home afterwards."""
import contextlib, os, shutil, subprocess, tempfile, time

from iotdb.Session import Session


@contextlib.contextmanager
def running(bindir, port, prefix="duet-bench."):
    home = tempfile.mkdtemp(prefix=prefix)
    srv = subprocess.Popen([os.path.join(bindir, "duetdb"), "--home", home, "--rpc-address", "127.0.0.1", "--rpc-port", str(port)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            if srv.poll() is not None:
                raise SystemExit(f"duetdb exited with {srv.returncode} (is port {port} taken?)")
            try:
                s = Session("127.0.0.1", port, "root", "root")
                s.open(False)
                break
            except Exception:
                time.sleep(0.1)
        else:
            raise SystemExit(f"the server in {home} did not start")
        try:
            yield s
        finally:
            s.close()
    finally:
        srv.kill()
        srv.wait()
        shutil.rmtree(home, ignore_errors=True)
