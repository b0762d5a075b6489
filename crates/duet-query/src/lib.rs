//! # DuetDB query layer
//!
//! SQL text in, results out: a hand-written lexer and recursive-descent parser for IoTDB's tree
//! dialect, and an executor that runs statements against the storage engine.
//!
//! # Layout
//! - [`lexer`]: tokens with byte offsets, so every error can name its line and column.
//! - [`ast`]: the statements and expressions the parser produces.
//! - [`parser`]: the parser, plus script splitting for the CLI.
//! - [`result`]: [`result::ResultSet`], the columnar result of a statement, and the memory limit
//!   of a query (`query_memory_limit_in_byte`).
//! - [`cursor`]: [`cursor::RawCursor`], a raw query read page by page from the time position it
//!   reached (what `fetchResultsV2` pages through), and the consistency that gives.
//! - [`eval`]: expression evaluation and time arithmetic (literals, durations, `now()`).
//! - [`scalar`]: built-in scalar functions (math, CAST, strings) and LIKE / REGEXP.
//! - [`into`]: SELECT INTO: a result written to target series (placeholders `::`, `${i}`).
//! - [`running`]: statements in flight (SHOW QUERIES, KILL QUERY) and the checkpoints where a
//!   killed query stops.
//! - [`exec`]: statement dispatch: schema statements, INSERT, DELETE, time bounds of a WHERE.
//! - [`select`]: SELECT: binding and naming, raw rows, aggregation, GROUP BY, HAVING, FILL, LAST,
//!   ALIGN BY DEVICE.
//! - [`agg`]: aggregate functions over typed columns and the partial states that windows keep
//!   (the interface for feeding raw points or page/chunk statistics).
//! - [`window`]: GROUP BY time windows, with calendar months in the session's time zone.
//! - [`show`]: SHOW / COUNT over the schema tree (time series with tag conditions, devices, child
//!   paths and nodes, counts by level).
//! - `engine_tests` (tests only): statements against a real engine with a session time zone, and
//!   the ignored query benchmark over the standard workload.

pub mod agg;
pub mod ast;
pub mod cursor;
pub mod eval;
pub mod exec;
pub mod into;
pub mod lexer;
pub mod parser;
pub mod result;
pub mod running;
pub mod scalar;
pub mod select;
pub mod show;
pub mod window;

#[cfg(test)]
mod engine_tests;

pub use exec::{execute, Context, CqControl, Output, PipeControl, ServerInfo};
pub use parser::parse;
pub use cursor::RawCursor;
pub use result::ResultSet;
