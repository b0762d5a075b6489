//! The checkpoint: which data files are live and what the WAL no longer needs to hold.
//!
//! One file, `CHECKPOINT`, replaced atomically (write a temporary file, fsync, rename, fsync the
//! directory). Flush and compaction change the set of live files only by writing a new checkpoint,
//! so after a crash at any step either the old or the new set is in use, never both or neither;
//! data files the checkpoint does not name are leftovers of an interrupted step and are deleted at
//! start-up.
//!
//! Layout: `DUETCKP1`, then the fields below in the common codec, then a CRC32C of all of it.

use std::fs;
use std::io::Write;
use std::path::Path as FsPath;

use duet_common::codec::{Put, Reader};
use duet_common::path::PathPattern;
use duet_common::status::{Status, StatusCode};
use duet_common::version::{InstanceId, Version};

use crate::engine::Tombstone;

const MAGIC: &[u8; 8] = b"DUETCKP1";
/// File name of the checkpoint inside the data directory.
pub const FILE: &str = "CHECKPOINT";

/// Everything recovery needs besides the data files and the WAL tail.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Checkpoint {
    /// Every mutation with a WAL sequence up to this one is in the files and the snapshot below.
    pub flushed_seq: u64,
    /// Ids of the live data files, oldest first.
    pub files: Vec<u64>,
    /// Next file id to use.
    pub next_file: u64,
    /// Schema snapshot as of `flushed_seq`.
    pub schema: Vec<u8>,
    /// Per-origin applied watermarks as of `flushed_seq`.
    pub applied: Vec<(InstanceId, u64)>,
    /// Range tombstones as of `flushed_seq`.
    pub tombstones: Vec<Tombstone>,
    /// Greatest HLC issued or seen, so the clock never goes back.
    pub max_hlc: u64,
    /// Per replication stream (a sender's pipe), per origin, the highest origin sequence applied
    /// through it, as of `flushed_seq`. (Written after the fields above; a checkpoint without it
    /// reads as empty.)
    pub streams: Vec<(String, Vec<(InstanceId, u64)>)>,
}

fn corrupt(path: &FsPath, why: &str) -> Status {
    Status::new(StatusCode::InternalServerError, format!("checkpoint {} is damaged: {why}", path.display()))
}

impl Checkpoint {
    fn encode(&self) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        out.put_u64(self.flushed_seq);
        out.put_u64(self.next_file);
        out.put_u64(self.max_hlc);
        out.put_var(self.files.len() as u64);
        for f in &self.files {
            out.put_u64(*f);
        }
        // Schema snapshots repeat path prefixes: compressed they are a fraction of the size.
        out.put_bytes(&lz4_flex::compress_prepend_size(&self.schema));
        out.put_var(self.applied.len() as u64);
        for (o, s) in &self.applied {
            out.put_u64(o.0);
            out.put_u64(*s);
        }
        out.put_var(self.tombstones.len() as u64);
        for t in &self.tombstones {
            out.put_var(t.patterns.len() as u64);
            for p in &t.patterns {
                out.put_var(p.nodes().len() as u64);
                for n in p.nodes() {
                    out.put_str(n);
                }
            }
            out.put_u64(t.start as u64);
            out.put_u64(t.end as u64);
            out.put_u64(t.version.hlc);
            out.put_u64(t.version.origin.0);
        }
        out.put_var(self.streams.len() as u64);
        for (stream, marks) in &self.streams {
            out.put_str(stream);
            out.put_var(marks.len() as u64);
            for (o, s) in marks {
                out.put_u64(o.0);
                out.put_u64(*s);
            }
        }
        let crc = crc32c::crc32c(&out);
        out.put_u32(crc);
        out
    }

    fn decode(buf: &[u8], path: &FsPath) -> Result<Checkpoint, Status> {
        if buf.len() < 12 || &buf[..8] != MAGIC {
            return Err(corrupt(path, "bad header"));
        }
        let (body, tail) = buf.split_at(buf.len() - 4);
        if crc32c::crc32c(body) != u32::from_le_bytes(tail.try_into().unwrap()) {
            return Err(corrupt(path, "checksum mismatch"));
        }
        let mut r = Reader::new(&body[8..]);
        let e = |x: duet_common::codec::DecodeError| corrupt(path, &x.0);
        let mut c = Checkpoint { flushed_seq: r.u64().map_err(e)?, next_file: r.u64().map_err(e)?, max_hlc: r.u64().map_err(e)?, ..Default::default() };
        for _ in 0..r.count().map_err(e)? {
            c.files.push(r.u64().map_err(e)?);
        }
        c.schema = lz4_flex::decompress_size_prepended(r.bytes().map_err(e)?).map_err(|x| corrupt(path, &format!("schema snapshot: {x}")))?;
        for _ in 0..r.count().map_err(e)? {
            c.applied.push((InstanceId(r.u64().map_err(e)?), r.u64().map_err(e)?));
        }
        for _ in 0..r.count().map_err(e)? {
            let mut patterns = Vec::new();
            for _ in 0..r.count().map_err(e)? {
                let n = r.count().map_err(e)?;
                let nodes = (0..n).map(|_| r.string()).collect::<Result<Vec<_>, _>>().map_err(e)?;
                patterns.push(PathPattern::from_nodes(nodes));
            }
            let start = r.u64().map_err(e)? as i64;
            let end = r.u64().map_err(e)? as i64;
            let version = Version { hlc: r.u64().map_err(e)?, origin: InstanceId(r.u64().map_err(e)?) };
            c.tombstones.push(Tombstone { patterns, start, end, version });
        }
        if r.remaining() > 0 {
            for _ in 0..r.count().map_err(e)? {
                let stream = r.string().map_err(e)?;
                let marks = (0..r.count().map_err(e)?).map(|_| Ok((InstanceId(r.u64()?), r.u64()?))).collect::<Result<Vec<_>, _>>().map_err(e)?;
                c.streams.push((stream, marks));
            }
        }
        Ok(c)
    }

    /// Reads the checkpoint of `dir`, or None on a fresh directory.
    pub fn load(dir: &FsPath) -> Result<Option<Checkpoint>, Status> {
        let path = dir.join(FILE);
        match fs::read(&path) {
            Ok(buf) => Checkpoint::decode(&buf, &path).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Status::new(StatusCode::InternalServerError, format!("cannot read {}: {e}", path.display()))),
        }
    }

    /// Replaces the checkpoint of `dir` atomically.
    pub fn store(&self, dir: &FsPath) -> Result<(), Status> {
        let io = |what: &str, e: std::io::Error| Status::new(StatusCode::WriteProcessError, format!("cannot {what} the checkpoint in {}: {e}", dir.display()));
        let tmp = dir.join(format!("{FILE}.tmp"));
        let mut f = fs::File::create(&tmp).map_err(|e| io("write", e))?;
        f.write_all(&self.encode()).and_then(|_| f.sync_all()).map_err(|e| io("write", e))?;
        fs::rename(&tmp, dir.join(FILE)).map_err(|e| io("install", e))?;
        fs::File::open(dir).and_then(|d| d.sync_all()).map_err(|e| io("sync", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_damage() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(Checkpoint::load(d.path()).unwrap(), None);
        let c = Checkpoint {
            flushed_seq: 9,
            files: vec![1, 4],
            next_file: 5,
            schema: vec![1, 2, 3],
            applied: vec![(InstanceId(7), 70)],
            tombstones: vec![Tombstone { patterns: vec![PathPattern::parse("root.a.**").unwrap()], start: -5, end: i64::MAX, version: Version { hlc: 3, origin: InstanceId(2) } }],
            max_hlc: 11,
            streams: vec![("7/AB@5".into(), vec![(InstanceId(7), 70), (InstanceId(8), 3)]), ("9/x@1".into(), vec![])],
        };
        c.store(d.path()).unwrap();
        assert_eq!(Checkpoint::load(d.path()).unwrap(), Some(c.clone()));
        // One written before streams were kept reads with none.
        let old = Checkpoint { streams: vec![], ..c.clone() }.encode();
        let cut = &old[..old.len() - 4 - 1];
        let mut legacy = cut.to_vec();
        legacy.put_u32(crc32c::crc32c(cut));
        assert_eq!(Checkpoint::decode(&legacy, d.path()).unwrap(), Checkpoint { streams: vec![], ..c });
        let p = d.path().join(FILE);
        let mut b = fs::read(&p).unwrap();
        b[20] ^= 1;
        fs::write(&p, &b).unwrap();
        assert!(Checkpoint::load(d.path()).is_err());
    }
}
