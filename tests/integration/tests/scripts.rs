//! The operator's tools, run as a user runs them: sbin scripts and the CLI.

use std::path::PathBuf;
use std::process::{Command, Output};

use duet_tests::{bin, free_port};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

fn script(name: &str, home: &std::path::Path, args: &[&str]) -> Output {
    Command::new("bash")
        .arg(repo().join("sbin").join(name))
        .args(args)
        .env("DUETDB_HOME", home)
        .env("DUETDB_BIN_DIR", bin("duetdb").parent().unwrap())
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

#[test]
fn start_cli_stop_like_an_operator() {
    let home = tempfile::tempdir().unwrap();
    let port = free_port();
    std::fs::create_dir_all(home.path().join("conf")).unwrap();
    std::fs::write(
        home.path().join("conf/iotdb-system.properties"),
        format!("dn_rpc_address=127.0.0.1\ndn_rpc_port={port}\ndn_internal_address=localhost\ncn_internal_address=localhost\n"),
    )
    .unwrap();
    let o = script("start-standalone.sh", home.path(), &[]);
    assert!(o.status.success(), "start failed: {}", text(&o));
    assert!(text(&o).contains("DuetDB started"), "{}", text(&o));
    let pid: u32 = std::fs::read_to_string(home.path().join("data/duetdb.pid")).unwrap().trim().parse().unwrap();

    // Starting twice is harmless.
    let again = script("start-standalone.sh", home.path(), &[]);
    assert!(again.status.success() && text(&again).contains("already running"), "{}", text(&again));

    let p = port.to_string();
    let o = script(
        "start-cli.sh",
        home.path(),
        &["-h", "localhost", "-p", &p, "-u", "root", "-pw", "root", "-e", "insert into root.op.d(timestamp, s) values (1, 2.5); select s from root.op.d; show cluster"],
    );
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(out.contains("|root.op.d.s|") && out.contains("2.5|") && out.contains("Total line number = 1"), "{out}");
    assert!(out.contains("ConfigNode") && out.contains("DataNode") && out.contains("Running") && out.contains("localhost"), "{out}");
    assert!(out.contains("It costs"), "{out}");

    let bad = script("start-cli.sh", home.path(), &["-p", &p, "-e", "select from where"]);
    assert!(!bad.status.success(), "a failing -e statement exits non-zero");
    assert!(text(&bad).contains("700"), "{}", text(&bad));

    let wrong = script("start-cli.sh", home.path(), &["-p", &p, "-pw", "nope", "-e", "show databases"]);
    assert!(!wrong.status.success() && text(&wrong).contains("801"), "{}", text(&wrong));

    // Multi-line statements through the REPL on stdin.
    let mut child = Command::new("bash")
        .arg(repo().join("sbin/start-cli.sh"))
        .args(["-p", &p])
        .env("DUETDB_BIN_DIR", bin("duetdb").parent().unwrap())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"create timeseries\n  root.op.d.t\n  with datatype=INT32;\ncount timeseries root.op.**\nexit\n").unwrap();
    let out = child.wait_with_output().unwrap();
    let s = String::from_utf8_lossy(&out.stdout);
    assert!(s.contains("count(timeseries)") && s.contains("|                2|"), "{s}");

    let o = script("stop-standalone.sh", home.path(), &[]);
    assert!(o.status.success() && text(&o).contains("stopped"), "{}", text(&o));
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists(), "the server process is gone");
    let log = std::fs::read_to_string(home.path().join("logs/duetdb.log")).unwrap();
    assert!(log.contains("shutdown complete"), "{log}");
    let o = script("stop-standalone.sh", home.path(), &[]);
    assert!(o.status.success() && text(&o).contains("not running"));
}

#[test]
fn a_failed_start_is_loud() {
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(home.path().join("conf")).unwrap();
    std::fs::write(home.path().join("conf/iotdb-system.properties"), "dn_rpc_address=127.0.0.1\ndn_rpc_port=1\ntimestamp_precision=minutes\n").unwrap();
    let o = script("start-standalone.sh", home.path(), &[]);
    assert!(!o.status.success());
    assert!(text(&o).contains("timestamp_precision"), "{}", text(&o));
}
