//! # Test harness
//!
//! [`TestServer`] spawns the real `duetdb` binary (built by `cargo build --workspace --bins`) in a
//! temporary home on a free loopback port, waits until it accepts connections, and kills it on drop.
//!
//! # Layout
//! - [`TestServer`]: start, restart, stop gracefully, kill -9, read the log.
//! - [`golden`]: runs a `.sql` file and renders results in a stable text form for golden files.

pub mod golden;

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use duet_protocol::client::Session;

/// Path of a workspace binary in the same profile as the running test.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    // target/<profile>/deps/<test> -> target/<profile>/<name>
    let dir = exe.parent().and_then(|d| d.parent()).expect("target dir");
    let p = dir.join(name);
    assert!(p.exists(), "{} is missing: run `cargo build --workspace --bins` before the tests", p.display());
    p
}

/// A free TCP port on 127.0.0.1.
///
/// Ports come from below the kernel's ephemeral range, handed out once per test process: a port
/// released while its server restarts must not be given to a server of a test running in parallel
/// (which `bind(0)` can do).
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let base = 20_000 + (std::process::id() % 600) * 20;
    loop {
        let p = 20_000 + (base - 20_000 + NEXT.fetch_add(1, Ordering::Relaxed)) % 12_000;
        if TcpListener::bind(("127.0.0.1", p as u16)).is_ok() {
            return p as u16;
        }
    }
}

/// A running `duetdb` process in its own home directory.
pub struct TestServer {
    /// Home directory (kept across restarts).
    pub home: PathBuf,
    _tmp: Option<tempfile::TempDir>,
    /// Client port.
    pub port: u16,
    /// Extra `-c key=value` settings.
    pub settings: Vec<String>,
    /// Extra environment variables for the next spawn (e.g. crash injection).
    pub env: Vec<(String, String)>,
    child: Option<Child>,
}

impl TestServer {
    /// Starts a server in a fresh temporary home.
    pub fn start(settings: &[&str]) -> TestServer {
        let tmp = tempfile::tempdir().unwrap();
        let mut s = TestServer {
            home: tmp.path().to_path_buf(),
            _tmp: Some(tmp),
            port: free_port(),
            settings: settings.iter().map(|s| s.to_string()).collect(),
            env: Vec::new(),
            child: None,
        };
        s.spawn().expect("server starts");
        s
    }

    /// A server that uses an existing home and is not started yet (call [`TestServer::spawn`]).
    pub fn unstarted(home: PathBuf, settings: &[&str]) -> TestServer {
        TestServer { home, _tmp: None, port: free_port(), settings: settings.iter().map(|s| s.to_string()).collect(), env: Vec::new(), child: None }
    }

    fn log_path(&self) -> PathBuf {
        self.home.join("server.log")
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Starts the process (again) on the same home and port; Err holds the log if it exits early.
    pub fn spawn(&mut self) -> Result<(), String> {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.log_path()).unwrap();
        let log_start = self.log().len();
        let mut cmd = Command::new(bin("duetdb"));
        cmd.arg("--home").arg(&self.home).arg("--rpc-address").arg("127.0.0.1").arg("--rpc-port").arg(self.port.to_string());
        for s in &self.settings {
            cmd.arg("-c").arg(s);
        }
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let mut child = cmd.stdout(Stdio::null()).stderr(log).spawn().expect("spawn duetdb");
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(status) = child.try_wait().unwrap() {
                return Err(format!("duetdb exited with {status} during start:\n{}", self.log()));
            }
            // Ready means this process logged that it listens, not just that something answers.
            let ours = self.log().get(log_start..).is_some_and(|l| l.contains("DuetDB is ready for clients"));
            if ours && TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                self.child = Some(child);
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        Err(format!("duetdb did not open its port within 30 s:\n{}", self.log()))
    }

    /// Opens a client session as root.
    pub fn session(&self) -> Session {
        Session::open("127.0.0.1", self.port, "root", "root", "+00:00").expect("open session")
    }

    /// SIGTERM and wait; returns whether it exited successfully.
    pub fn stop(&mut self) -> bool {
        let Some(mut c) = self.child.take() else { return true };
        unsafe_kill(c.id(), "TERM");
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(st) = c.try_wait().unwrap() {
                return st.success();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = c.kill();
        let _ = c.wait();
        false
    }

    /// Waits for the process to exit by itself (e.g. an injected crash); returns its exit status.
    pub fn wait_exit(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Some(c) = self.child.as_mut() {
                if let Some(st) = c.try_wait().unwrap() {
                    self.child = None;
                    return Some(st);
                }
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }

    /// kill -9.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Restarts after a stop or kill.
    pub fn restart(&mut self) {
        self.spawn().expect("server restarts");
    }

    /// Home-relative path.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.home.join(rel)
    }
}

fn unsafe_kill(pid: u32, sig: &str) {
    let _ = Command::new("kill").arg(format!("-{sig}")).arg(pid.to_string()).status();
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Reads a file relative to this crate.
pub fn crate_file(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}
