//! # DuetDB storage engine
//!
//! Owns everything durable about an instance's data: the write-ahead log, the schema (through the
//! same log), and the in-memory tables that serve reads.
//!
//! # Layout
//! - [`wal`]: segmented, checksummed write-ahead log with monotonic sequence numbers and group commit;
//!   replay truncates a torn tail.
//! - [`memtable`]: per-series columnar buffers that keep, for every point, the version (HLC time and
//!   origin instance) of the write that produced it; newest version wins per timestamp.
//! - [`checkpoint`]: the atomically replaced record of live data files, flushed WAL position,
//!   schema snapshot, watermarks and tombstones.
//! - [`summary`]: statistics per aligned time bucket of file pages, cached within a byte budget so
//!   that time-window aggregations merge them instead of decoding pages.
//! - [`engine`]: the [`Engine`]: validates and versions writes, logs them, applies them, answers
//!   scans over memtables and files, flushes memtables to files (with backpressure), compacts files,
//!   and recovers from checkpoint + log at start-up.

pub mod checkpoint;
pub mod engine;
pub mod memtable;
pub mod summary;
pub mod wal;

pub use engine::{CompactionTotals, Engine, EngineConfig, RemoteApplied, WriteAck};
pub use wal::WalCursor;
pub use wal::SyncMode;
