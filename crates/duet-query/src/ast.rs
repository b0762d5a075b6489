//! The statements DuetDB understands, as the parser produces them.

use duet_common::path::{Path, PathPattern};
use duet_common::types::{Compressor, DataType, Encoding};

/// A literal value as written in SQL.
#[derive(Clone, Debug, PartialEq)]
pub enum Literal {
    /// An integer.
    Int(i64),
    /// A decimal number (kept as text too, so FLOAT columns get the written digits).
    Float(f64),
    /// A quoted string.
    Str(String),
    /// true/false.
    Bool(bool),
    /// NULL.
    Null,
    /// A date or date-time literal, unparsed.
    DateTime(String),
    /// A hex blob literal X'..'.
    Blob(Vec<u8>),
    /// A duration such as `1d` or `30m`, unparsed.
    Duration(String),
}

/// A binary operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinOp {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
    /// `%`
    Mod,
    /// `=`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `AND`
    And,
    /// `OR`
    Or,
}

impl BinOp {
    /// The operator as written.
    pub fn symbol(self) -> &'static str {
        match self {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Mod => "%",
            BinOp::Eq => "=",
            BinOp::Ne => "!=",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
            BinOp::Gt => ">",
            BinOp::Ge => ">=",
            BinOp::And => "&",
            BinOp::Or => "|",
        }
    }
}

/// An expression in SELECT or WHERE.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    /// The `time` pseudo-column.
    Time,
    /// A path (relative to FROM, or absolute when it starts with `root`), possibly with wildcards.
    Path(Vec<String>),
    /// A literal.
    Lit(Literal),
    /// A binary operation.
    Binary(BinOp, Box<Expr>, Box<Expr>),
    /// `NOT e`.
    Not(Box<Expr>),
    /// `-e`.
    Neg(Box<Expr>),
    /// `e [NOT] BETWEEN lo AND hi`.
    Between {
        /// The tested expression.
        expr: Box<Expr>,
        /// Lower bound (inclusive).
        lo: Box<Expr>,
        /// Upper bound (inclusive).
        hi: Box<Expr>,
        /// Whether negated.
        not: bool,
    },
    /// `e IS [NOT] NULL`.
    IsNull(Box<Expr>, bool),
    /// `e [NOT] IN (...)`.
    In(Box<Expr>, Vec<Literal>, bool),
    /// A function call such as `count(s1)` or `now()`.
    Call(String, Vec<Expr>),
}

/// One item of a SELECT list.
#[derive(Clone, Debug, PartialEq)]
pub struct SelectItem {
    /// The expression.
    pub expr: Expr,
    /// `AS alias`.
    pub alias: Option<String>,
    /// The text the user wrote, used as the column name of computed columns.
    pub text: String,
}

/// A SELECT statement.
#[derive(Clone, Debug, PartialEq)]
pub struct Select {
    /// The SELECT list.
    pub items: Vec<SelectItem>,
    /// FROM prefixes.
    pub from: Vec<PathPattern>,
    /// WHERE condition.
    pub filter: Option<Expr>,
    /// ORDER BY TIME DESC.
    pub desc: bool,
    /// LIMIT.
    pub limit: Option<usize>,
    /// OFFSET.
    pub offset: usize,
    /// SLIMIT.
    pub slimit: Option<usize>,
    /// SOFFSET.
    pub soffset: usize,
    /// ALIGN BY DEVICE.
    pub align_by_device: bool,
}

/// One measurement of CREATE [ALIGNED] TIMESERIES.
#[derive(Clone, Debug, PartialEq)]
pub struct MeasurementSpec {
    /// Full series path.
    pub path: Path,
    /// Data type.
    pub dtype: DataType,
    /// Encoding (defaulted per type when omitted).
    pub encoding: Encoding,
    /// Compressor.
    pub compressor: Compressor,
    /// Alias.
    pub alias: Option<String>,
    /// Tags.
    pub tags: Vec<(String, String)>,
    /// Attributes.
    pub attributes: Vec<(String, String)>,
}

/// A parsed statement.
#[derive(Clone, Debug, PartialEq)]
pub enum Statement {
    /// CREATE DATABASE / SET STORAGE GROUP TO.
    CreateDatabase(Path),
    /// DELETE DATABASE / DROP DATABASE.
    DeleteDatabase(Vec<PathPattern>),
    /// CREATE TIMESERIES.
    CreateTimeseries(MeasurementSpec),
    /// CREATE ALIGNED TIMESERIES.
    CreateAlignedTimeseries(Vec<MeasurementSpec>),
    /// DROP TIMESERIES / DELETE TIMESERIES.
    DropTimeseries(Vec<PathPattern>),
    /// SHOW DATABASES [pattern].
    ShowDatabases(Option<PathPattern>),
    /// SHOW TIMESERIES [pattern] [LIMIT] [OFFSET].
    ShowTimeseries {
        /// Pattern.
        pattern: Option<PathPattern>,
        /// LIMIT.
        limit: Option<usize>,
        /// OFFSET.
        offset: usize,
    },
    /// SHOW DEVICES [pattern].
    ShowDevices {
        /// Pattern.
        pattern: Option<PathPattern>,
        /// LIMIT.
        limit: Option<usize>,
        /// OFFSET.
        offset: usize,
    },
    /// COUNT TIMESERIES [pattern].
    CountTimeseries(Option<PathPattern>),
    /// COUNT DEVICES [pattern].
    CountDevices(Option<PathPattern>),
    /// COUNT DATABASES [pattern].
    CountDatabases(Option<PathPattern>),
    /// INSERT INTO device(timestamp, m...) [ALIGNED] VALUES (...), ...
    Insert {
        /// Device path.
        device: Path,
        /// Whether ALIGNED was written.
        aligned: bool,
        /// Measurement names.
        measurements: Vec<String>,
        /// Rows: time expression and one literal per measurement.
        rows: Vec<(Expr, Vec<Literal>)>,
    },
    /// SELECT.
    Select(Box<Select>),
    /// DELETE FROM paths [WHERE time ...].
    Delete {
        /// Series patterns.
        patterns: Vec<PathPattern>,
        /// Time condition.
        filter: Option<Expr>,
    },
    /// FLUSH.
    Flush,
    /// SHOW VERSION.
    ShowVersion,
    /// SHOW CLUSTER [DETAILS].
    ShowCluster(bool),
    /// SET TTL TO path ttl.
    SetTtl(Path, i64),
    /// UNSET TTL TO path.
    UnsetTtl(Path),
    /// SHOW TTL [ON pattern] / SHOW ALL TTL.
    ShowTtl(Option<PathPattern>),
    /// CREATE PIPE.
    CreatePipe(PipeSpec),
    /// ALTER PIPE name MODIFY|REPLACE SOURCE/PROCESSOR/SINK(...).
    AlterPipe {
        /// Pipe name.
        name: String,
        /// IF EXISTS given.
        if_exists: bool,
        /// New source parameters; `true` = REPLACE (else MODIFY merges).
        source: Option<(bool, Vec<(String, String)>)>,
        /// New processor parameters.
        processor: Option<(bool, Vec<(String, String)>)>,
        /// New sink parameters.
        sink: Option<(bool, Vec<(String, String)>)>,
    },
    /// START PIPE name.
    StartPipe(String),
    /// STOP PIPE name.
    StopPipe(String),
    /// DROP PIPE [IF EXISTS] name.
    DropPipe {
        /// Pipe name.
        name: String,
        /// IF EXISTS given.
        if_exists: bool,
    },
    /// SHOW PIPES / SHOW PIPE name.
    ShowPipes(Option<String>),
}

/// A CREATE PIPE statement: parameters exactly as written (prefixes stripped later).
#[derive(Clone, Debug, PartialEq)]
pub struct PipeSpec {
    /// Pipe name.
    pub name: String,
    /// IF NOT EXISTS given.
    pub if_not_exists: bool,
    /// WITH SOURCE / EXTRACTOR parameters.
    pub source: Vec<(String, String)>,
    /// WITH PROCESSOR parameters.
    pub processor: Vec<(String, String)>,
    /// WITH SINK / CONNECTOR parameters.
    pub sink: Vec<(String, String)>,
}
