//! # DuetDB common types
//!
//! The bottom layer: everything here is plain data with no I/O, shared by storage, schema, query,
//! pipes and the server.
//!
//! # Layout
//! - [`status`]: IoTDB status codes and the [`status::Status`] that every crate's error maps to.
//! - [`types`]: data types (with IoTDB's numeric codes), encodings, compressors and [`types::Value`].
//! - [`path`]: series paths (`root.db.d.s`) and path patterns with `*` and `**`.
//! - [`time`]: timestamp precision, ISO-8601 parsing and formatting.
//! - [`version`]: instance ids, the hybrid logical clock and the per-write [`version::Version`].
//! - [`mutation`]: every durable change (inserts, deletes, schema changes) and its binary codec;
//!   the unit the WAL stores and pipes ship.
//! - [`codec`]: little helpers for the binary encodings above.

pub mod codec;
pub mod mutation;
pub mod path;
pub mod status;
pub mod time;
pub mod types;
pub mod version;

pub use status::{Status, StatusCode};
pub use types::{DataType, Value};
