//! # DuetDB schema
//!
//! The tree of databases, devices and time series, as IoTDB's tree model defines it. Pure
//! in-memory state changed only through [`Schema::apply`] with schema [`Op`]s, so that the WAL (and
//! a peer, through a pipe) can replay exactly the same changes. Durability comes from the WAL and
//! from snapshots ([`Schema::snapshot`]), both owned by the storage engine.
//!
//! # Layout
//! - [`tree`]: the [`Schema`] itself: validation, application of ops, lookups by path and pattern,
//!   and snapshots.
//! - [`ttl`]: device-level TTL rules (IoTDB 1.3.3): the TTL each device lives by, and what a
//!   compaction logs as expired.

pub mod tree;
pub mod ttl;

pub use tree::{DatabaseInfo, DeviceInfo, Schema, SeriesInfo};
pub use duet_common::mutation::Op;
