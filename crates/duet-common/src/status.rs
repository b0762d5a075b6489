//! IoTDB status codes and the status value errors are turned into at the protocol edge.

use std::fmt;

/// An IoTDB status code (the numbers the official clients understand).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(i32)]
pub enum StatusCode {
    /// The request succeeded.
    Success = 200,
    /// A statement failed while executing.
    ExecuteStatementError = 301,
    /// A request parameter is invalid.
    IllegalParameter = 303,
    /// Several sub-requests failed; see the sub-statuses.
    MultipleError = 302,
    /// An internal server error.
    InternalServerError = 305,
    /// The database (storage group) does not exist.
    DatabaseNotExist = 500,
    /// The database already exists.
    DatabaseAlreadyExists = 501,
    /// A time series already exists.
    TimeseriesAlreadyExist = 503,
    /// A path does not name an existing series or device.
    PathNotExist = 508,
    /// A path is syntactically invalid.
    IllegalPath = 509,
    /// A value does not match the series' data type.
    DataTypeMismatch = 507,
    /// A series cannot be made with the other alignment than its device's (ALIGNED_TIMESERIES_ERROR).
    AlignedTimeseriesError = 609,
    /// No more TTLs may be set (IoTDB's OVERSIZE_TTL; see `ttl_rule_capacity`).
    OversizeTtl = 612,
    /// A metadata operation failed.
    MetadataError = 1000,
    /// A write was rejected by the storage engine.
    WriteProcessError = 606,
    /// The system is read-only or out of resources.
    SystemReadOnly = 603,
    /// SQL could not be parsed.
    SqlParseError = 700,
    /// A semantic error in an otherwise well-formed statement.
    SemanticError = 701,
    /// A query would hold more memory than it may (IoTDB's QUERY_EXECUTION_MEMORY_NOT_ENOUGH).
    QueryExecutionMemoryNotEnough = 719,
    /// KILL QUERY named no statement in flight (NO_SUCH_QUERY).
    NoSuchQuery = 714,
    /// The statement was stopped by KILL QUERY (QUERY_WAS_KILLED).
    QueryWasKilled = 715,
    /// A call for the statement ran past its timeout (QUERY_TIMEOUT).
    QueryTimeout = 720,
    /// The user/password pair is wrong.
    WrongLoginPassword = 801,
    /// The user does not exist (USER_NOT_EXIST).
    UserNotExist = 804,
    /// The user/role/privilege operation is not supported (UNSUPPORTED_AUTH_OPERATION).
    UnsupportedAuthOperation = 814,
    /// The session is not logged in.
    NotLogin = 802,
    /// No permission for the operation.
    NoPermission = 803,
    /// A pipe-related error.
    PipeError = 1107,
    /// A pipe handshake was refused.
    PipeHandshakeError = 1800,
    /// The operation is not supported.
    UnsupportedOperation = 1104,
    /// No continuous query has that id (NO_SUCH_CQ).
    NoSuchCq = 1400,
    /// A continuous query with that id exists (CQ_ALREADY_EXIST).
    CqAlreadyExist = 1402,
}

impl StatusCode {
    /// The numeric code sent on the wire.
    pub fn code(self) -> i32 {
        self as i32
    }
}

/// A status: a code and a human-readable message saying what went wrong and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    /// The IoTDB status code.
    pub code: StatusCode,
    /// What went wrong.
    pub message: String,
}

impl Status {
    /// A status with the given code and message.
    pub fn new(code: StatusCode, message: impl Into<String>) -> Self {
        Status { code, message: message.into() }
    }
    /// The success status.
    pub fn ok() -> Self {
        Status::new(StatusCode::Success, "")
    }
    /// Whether this status means success.
    pub fn is_ok(&self) -> bool {
        self.code == StatusCode::Success
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.code(), self.message)
    }
}

impl std::error::Error for Status {}

/// Shorthand for building an error status.
pub fn err<T>(code: StatusCode, message: impl Into<String>) -> Result<T, Status> {
    Err(Status::new(code, message))
}
