//! The crate's single error type and its mapping to [`duet_common::Status`].

use duet_common::{Status, StatusCode};
use std::fmt;
use std::path::PathBuf;

/// Everything that can go wrong while encoding, writing or reading a columnar file.
#[derive(Debug)]
pub enum Error {
    /// An operating-system I/O call failed.
    Io {
        /// The file being accessed.
        file: PathBuf,
        /// What we were doing (e.g. "write", "fsync").
        op: &'static str,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Bytes on disk are not what the writer produced: bad checksum, truncation, impossible values.
    Corrupt {
        /// The damaged file.
        file: PathBuf,
        /// Byte offset of the damaged block (or of the first byte found to be wrong).
        offset: u64,
        /// What check failed.
        reason: String,
    },
    /// An encoded buffer is malformed; the file reader turns this into [`Error::Corrupt`] with a location.
    Decode(String),
    /// The caller broke a rule of the API (unsorted series paths, mismatched column lengths, ...).
    Invalid(String),
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Shorthand for a decode error.
    pub(crate) fn decode(msg: impl Into<String>) -> Error {
        Error::Decode(msg.into())
    }

    /// Attaches a file and block offset to a decode error so every report says where the damage is.
    pub(crate) fn at(self, file: &std::path::Path, offset: u64) -> Error {
        match self {
            Error::Decode(reason) => Error::Corrupt { file: file.to_path_buf(), offset, reason },
            other => other,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io { file, op, source } => write!(f, "{op} failed on {}: {source}", file.display()),
            Error::Corrupt { file, offset, reason } => {
                write!(f, "corrupt columnar file {} at byte offset {offset}: {reason}", file.display())
            }
            Error::Decode(m) => write!(f, "malformed encoded data: {m}"),
            Error::Invalid(m) => write!(f, "invalid use of the columnar file API: {m}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl From<Error> for Status {
    fn from(e: Error) -> Status {
        // A client can do nothing about a damaged or mis-written data file: it is the server's problem.
        Status::new(StatusCode::InternalServerError, e.to_string())
    }
}
