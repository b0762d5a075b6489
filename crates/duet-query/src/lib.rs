//! # DuetDB query layer
//!
//! SQL text in, results out: a hand-written lexer and recursive-descent parser for IoTDB's tree
//! dialect, and an executor that runs statements against the storage engine.
//!
//! # Layout
//! - [`lexer`]: tokens with byte offsets, so every error can name its line and column.
//! - [`ast`]: the statements and expressions the parser produces.
//! - [`parser`]: the parser, plus script splitting for the CLI.
//! - [`result`]: [`result::ResultSet`], the columnar result every statement returns.
//! - [`eval`]: expression evaluation and time arithmetic (literals, durations, `now()`).
//! - [`exec`]: statement execution: schema statements, INSERT, DELETE, SHOW, raw SELECT.

pub mod ast;
pub mod eval;
pub mod exec;
pub mod lexer;
pub mod parser;
pub mod result;

pub use exec::{execute, Context, Output, PipeControl, ServerInfo};
pub use parser::parse;
pub use result::ResultSet;
