//! # DuetDB columnar file format
//!
//! Immutable, checksummed files that hold many series' points as compressed columns
//! (TsFile-inspired, our own layout). The engine writes one on flush or compaction and reads them
//! for queries.
//!
//! # Layout
//! - [`error`]: the crate's [`Error`] (I/O, corruption with file + offset, misuse), convertible to
//!   `duet_common::Status`.
//! - [`bits`]: zig-zag, bit writer/reader and a bounds-checked byte cursor used by every codec.
//! - [`int`]: integer columns (times, INT32/INT64/DATE/TIMESTAMP): delta/frame-of-reference with
//!   block bit-packing or mixed-radix packing, and run-length coding.
//! - [`float`]: FLOAT/DOUBLE columns: decimal-scale detection onto the integer codec, Gorilla-style
//!   XOR, plain.
//! - [`boolean`]: BOOLEAN columns: bit-packing or runs.
//! - [`binary`]: TEXT/STRING/BLOB columns: plain or dictionary, then LZ4 when it helps.
//! - [`versions`]: the per-point [`duet_common::version::Version`] column, as runs.

pub mod binary;
pub mod bits;
pub mod boolean;
pub mod error;
pub mod float;
pub mod int;
pub mod versions;

pub use error::{Error, Result};
