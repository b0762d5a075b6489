//! Durable pipe definitions and progress, one small file each under `<system>/pipes/`.
//!
//! Files are replaced atomically (write, fsync, rename, fsync the directory), so a crash leaves the
//! old or the new version, never a torn one.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use duet_common::status::{Status, StatusCode};

/// A pipe as created, plus its state.
#[derive(Clone, Debug, PartialEq)]
pub struct PipeMeta {
    /// Pipe name.
    pub name: String,
    /// Creation time, ms since the epoch.
    pub created_ms: i64,
    /// RUNNING (true) or STOPPED (false).
    pub running: bool,
    /// SOURCE parameters as written.
    pub source: Vec<(String, String)>,
    /// PROCESSOR parameters as written.
    pub processor: Vec<(String, String)>,
    /// SINK parameters as written.
    pub sink: Vec<(String, String)>,
    /// The last WAL sequence number when the pipe was created: history is what lies at or before it.
    pub created_seq: u64,
}

fn esc(s: &str) -> String {
    s.replace('%', "%25").replace('=', "%3D").replace('\n', "%0A").replace('\r', "%0D")
}

fn unesc(s: &str) -> String {
    s.replace("%0D", "\r").replace("%0A", "\n").replace("%3D", "=").replace("%25", "%")
}

fn io(what: &str, p: &Path, e: std::io::Error) -> Status {
    Status::new(StatusCode::PipeError, format!("cannot {what} {}: {e}", p.display()))
}

/// Writes a file atomically. Each write has its own temporary file: a pipe's definition and its
/// progress, or two saves of one file, may be written at the same time by different threads.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<(), Status> {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{n}.tmp"));
    let tmp = path.with_file_name(name);
    let mut f = fs::File::create(&tmp).map_err(|e| io("write", &tmp, e))?;
    f.write_all(data).and_then(|_| f.sync_all()).map_err(|e| io("write", &tmp, e))?;
    fs::rename(&tmp, path).map_err(|e| io("replace", path, e))?;
    if let Some(dir) = path.parent() {
        fs::File::open(dir).and_then(|d| d.sync_all()).map_err(|e| io("sync", dir, e))?;
    }
    Ok(())
}

/// Where pipe files live.
#[derive(Clone, Debug)]
pub struct MetaStore {
    dir: PathBuf,
}

impl MetaStore {
    /// Opens (creating) the directory.
    pub fn open(dir: PathBuf) -> Result<MetaStore, Status> {
        fs::create_dir_all(&dir).map_err(|e| io("create", &dir, e))?;
        // Temporary files a crash left half written.
        for e in fs::read_dir(&dir).map_err(|e| io("list", &dir, e))?.flatten() {
            if e.file_name().to_string_lossy().ends_with(".tmp") {
                let _ = fs::remove_file(e.path());
            }
        }
        Ok(MetaStore { dir })
    }

    fn meta_path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.pipe"))
    }

    fn progress_path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.progress"))
    }

    fn resync_path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.resync"))
    }

    /// Asks the pipe to ship the stored data its source selects before it resumes from the WAL
    /// (after an ALTER PIPE widened what it selects), until [`MetaStore::resync_done`].
    pub fn request_resync(&self, name: &str) -> Result<(), Status> {
        write_atomic(&self.resync_path(name), b"widened\n")
    }

    /// Whether a resynchronisation was asked for and not done yet.
    pub fn resync_requested(&self, name: &str) -> bool {
        self.resync_path(name).exists()
    }

    /// Records that the asked-for resynchronisation is done.
    pub fn resync_done(&self, name: &str) -> Result<(), Status> {
        let p = self.resync_path(name);
        match fs::remove_file(&p) {
            Ok(()) => fs::File::open(&self.dir).and_then(|d| d.sync_all()).map_err(|e| io("sync", &self.dir, e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io("remove", &p, e)),
        }
    }

    /// Saves a definition.
    pub fn save(&self, m: &PipeMeta) -> Result<(), Status> {
        let mut t = String::new();
        t.push_str(&format!("name={}\ncreated_ms={}\nstate={}\ncreated_seq={}\n", esc(&m.name), m.created_ms, if m.running { "RUNNING" } else { "STOPPED" }, m.created_seq));
        for (section, kvs) in [("source", &m.source), ("processor", &m.processor), ("sink", &m.sink)] {
            for (k, v) in kvs {
                t.push_str(&format!("{section}:{}={}\n", esc(k), esc(v)));
            }
        }
        write_atomic(&self.meta_path(&m.name), t.as_bytes())
    }

    /// Loads every definition.
    pub fn load_all(&self) -> Result<Vec<PipeMeta>, Status> {
        let mut out = Vec::new();
        for e in fs::read_dir(&self.dir).map_err(|e| io("list", &self.dir, e))? {
            let p = e.map_err(|e| io("list", &self.dir, e))?.path();
            if p.extension().is_some_and(|x| x == "pipe") {
                let text = fs::read_to_string(&p).map_err(|e| io("read", &p, e))?;
                out.push(parse_meta(&text).ok_or_else(|| Status::new(StatusCode::PipeError, format!("{} is damaged", p.display())))?);
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Deletes a pipe's files.
    pub fn remove(&self, name: &str) -> Result<(), Status> {
        for p in [self.meta_path(name), self.progress_path(name), self.resync_path(name)] {
            if p.exists() {
                fs::remove_file(&p).map_err(|e| io("remove", &p, e))?;
            }
        }
        // Or a power cut could bring the dropped pipe back, running.
        fs::File::open(&self.dir).and_then(|d| d.sync_all()).map_err(|e| io("sync", &self.dir, e))
    }

    /// The last WAL sequence number whose fate the receiver confirmed, and the receiver's instance
    /// id (progress only holds for that same receiver). (0, 0) when none.
    pub fn progress(&self, name: &str) -> (u64, u64) {
        let text = fs::read_to_string(self.progress_path(name)).unwrap_or_default();
        let mut out = (0, 0);
        for line in text.lines() {
            match line.split_once('=') {
                Some(("confirmed", v)) => out.0 = v.parse().unwrap_or(0),
                Some(("peer", v)) => out.1 = u64::from_str_radix(v, 16).unwrap_or(0),
                _ => {}
            }
        }
        out
    }

    /// Records progress.
    pub fn save_progress(&self, name: &str, confirmed: u64, peer: u64) -> Result<(), Status> {
        write_atomic(&self.progress_path(name), format!("confirmed={confirmed}\npeer={peer:016x}\n").as_bytes())
    }
}

fn parse_meta(text: &str) -> Option<PipeMeta> {
    let mut m = PipeMeta { name: String::new(), created_ms: 0, running: true, source: vec![], processor: vec![], sink: vec![], created_seq: 0 };
    for line in text.lines() {
        let (k, v) = line.split_once('=')?;
        match k {
            "name" => m.name = unesc(v),
            "created_ms" => m.created_ms = v.parse().ok()?,
            "state" => m.running = v == "RUNNING",
            "created_seq" => m.created_seq = v.parse().ok()?,
            _ => {
                let (section, key) = k.split_once(':')?;
                let kv = (unesc(key), unesc(v));
                match section {
                    "source" => m.source.push(kv),
                    "processor" => m.processor.push(kv),
                    "sink" => m.sink.push(kv),
                    _ => return None,
                }
            }
        }
    }
    (!m.name.is_empty()).then_some(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let d = tempfile::tempdir().unwrap();
        let s = MetaStore::open(d.path().join("pipes")).unwrap();
        let m = PipeMeta {
            name: "AB".into(),
            created_ms: 5,
            running: false,
            source: vec![("source.mode.double-living".into(), "true".into())],
            processor: vec![],
            sink: vec![("sink.password".into(), "a=b%c\nd".into())],
            created_seq: 9,
        };
        s.save(&m).unwrap();
        assert_eq!(s.load_all().unwrap(), vec![m]);
        assert_eq!(s.progress("AB"), (0, 0));
        s.save_progress("AB", 42, 0xabc).unwrap();
        assert_eq!(s.progress("AB"), (42, 0xabc));
        assert!(!s.resync_requested("AB"));
        s.request_resync("AB").unwrap();
        assert!(s.resync_requested("AB"));
        s.resync_done("AB").unwrap();
        assert!(!s.resync_requested("AB"));
        s.request_resync("AB").unwrap();
        s.remove("AB").unwrap();
        assert!(!s.resync_requested("AB"), "a dropped pipe's request goes with it");
        assert!(s.load_all().unwrap().is_empty());
    }

    #[test]
    fn a_definition_and_progress_saved_at_once_both_stay_whole() {
        // ALTER PIPE saves the definition while the pipe's thread saves its progress.
        let d = tempfile::tempdir().unwrap();
        let s = MetaStore::open(d.path().join("pipes")).unwrap();
        let m = PipeMeta { name: "AB".into(), created_ms: 5, running: true, source: vec![], processor: vec![], sink: vec![], created_seq: 9 };
        std::thread::scope(|sc| {
            sc.spawn(|| (0..300).for_each(|i| s.save_progress("AB", i, 7).unwrap()));
            sc.spawn(|| (0..300).for_each(|_| s.save(&m).unwrap()));
        });
        assert_eq!(s.load_all().unwrap(), vec![m]);
        assert_eq!(s.progress("AB"), (299, 7));
        // A temporary file a crash left behind is cleared at the next start.
        fs::write(d.path().join("pipes").join("AB.pipe.3.tmp"), "half").unwrap();
        MetaStore::open(d.path().join("pipes")).unwrap();
        assert_eq!(fs::read_dir(d.path().join("pipes")).unwrap().count(), 2);
    }
}
