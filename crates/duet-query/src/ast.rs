//! The statements DuetDB understands, as the parser produces them.

use duet_common::path::{Path, PathPattern};
use duet_common::types::{Compressor, DataType, Encoding};

/// A literal value as written in SQL.
#[derive(Clone, Debug, PartialEq)]
pub enum Literal {
    /// An integer.
    Int(i64),
    /// A decimal number.
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
    /// A function call such as `count(s1)` or `now()`; the name is kept as written because IoTDB
    /// column names repeat it (`COUNT(root.db.d.s)`), and is matched case-insensitively.
    Call(String, Vec<Expr>),
}

/// One item of a SELECT list.
#[derive(Clone, Debug, PartialEq)]
pub struct SelectItem {
    /// The expression.
    pub expr: Expr,
    /// `AS alias`.
    pub alias: Option<String>,
    /// The text as written (columns are named by IoTDB's expression strings, not by this).
    pub text: String,
}

/// The core of a SELECT: projection, source, filter, ordering, paging and alignment.
///
/// The parser wraps it in a [`Query`] together with LAST / GROUP BY / HAVING / FILL; callers that
/// build a plain projection themselves (the raw-data RPC) may run it as [`Statement::Select`].
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

/// A SELECT as written: the [`Select`] core plus the clauses of aggregation and LAST queries.
#[derive(Clone, Debug, PartialEq)]
pub struct Query {
    /// SELECT list, FROM, WHERE, ORDER BY TIME, LIMIT/OFFSET, SLIMIT/SOFFSET, ALIGN BY DEVICE.
    pub select: Select,
    /// `SELECT LAST ...`.
    pub last: bool,
    /// GROUP BY time windows and/or levels.
    pub group_by: Option<GroupBy>,
    /// HAVING condition (on aggregates).
    pub having: Option<Expr>,
    /// FILL.
    pub fill: Option<Fill>,
    /// `ORDER BY TIMESERIES [ASC|DESC]` of a LAST query: `Some(true)` for DESC.
    pub order_by_timeseries: Option<bool>,
    /// `INTO` targets (SELECT INTO: the result is written to them).
    pub into: Option<Vec<IntoItem>>,
    /// `ORDER BY` keys other than a lone TIME (which is [`Select::desc`]): rows are sorted by
    /// them, in order, after the result is complete.
    pub order_by: Vec<OrderKey>,
}

/// A continuous query: a SELECT INTO run every `every` over the window that ends `range.1`
/// before each execution time and starts `range.0` before it.
#[derive(Clone, Debug, PartialEq)]
pub struct CqSpec {
    /// Its id.
    pub id: String,
    /// `EVERY` as written (default: the GROUP BY interval).
    pub every: Option<String>,
    /// `BOUNDARY`: execution times are `boundary + k * every` (default 0, as in IoTDB).
    pub boundary: Option<Expr>,
    /// `RANGE start_offset[, end_offset]` as written (default: every, 0).
    pub range: Option<(String, Option<String>)>,
    /// `TIMEOUT POLICY DISCARD` (default BLOCKED: late windows still run, in order).
    pub discard: bool,
    /// The query, with INTO, and GROUP BY without a time range.
    pub query: Box<Query>,
    /// The statement as written.
    pub text: String,
}

/// One target of SELECT INTO: `[ALIGNED] device(measurement, ...)`, where nodes may hold the
/// placeholders `::` (the source's suffix from this level, or its measurement) and `${i}` (the
/// source path's node at level i).
#[derive(Clone, Debug, PartialEq)]
pub struct IntoItem {
    /// Write as an aligned device.
    pub aligned: bool,
    /// The target device's nodes.
    pub device: Vec<String>,
    /// The target measurements.
    pub measurements: Vec<String>,
}

/// One key of ORDER BY.
#[derive(Clone, Debug, PartialEq)]
pub struct OrderKey {
    /// What is compared.
    pub key: SortKey,
    /// DESC.
    pub desc: bool,
    /// NULLS FIRST (nulls come last by default).
    pub nulls_first: bool,
}

/// What an ORDER BY key compares.
#[derive(Clone, Debug, PartialEq)]
pub enum SortKey {
    /// The time.
    Time,
    /// The device (ALIGN BY DEVICE).
    Device,
    /// One of the selected expressions (or its alias).
    Expr(Expr),
}

impl Query {
    /// A query with only the [`Select`] core.
    pub fn plain(select: Select) -> Query {
        Query { select, last: false, group_by: None, having: None, fill: None, order_by_timeseries: None, into: None, order_by: Vec::new() }
    }
}

/// GROUP BY: time windows, path levels, or both.
#[derive(Clone, Debug, PartialEq)]
pub struct GroupBy {
    /// `([start, end), interval[, step])`.
    pub time: Option<TimeGroup>,
    /// `LEVEL = n[, m...]`: levels whose node names are kept in the group key.
    pub levels: Vec<usize>,
    /// `TAGS(k, ...)`: series are aggregated together by their values of these tags.
    pub tags: Vec<String>,
    /// `SESSION(gap)` or `COUNT(path, size[, ignoreNull=...])`: windows made by the data.
    pub events: Option<EventGroup>,
}

/// GROUP BY windows that the data makes.
#[derive(Clone, Debug, PartialEq)]
pub enum EventGroup {
    /// `SESSION(gap)`: rows closer than the gap (as written) to the previous one share a window.
    Session(String),
    /// `COUNT(path, size[, ignoreNull=true|false])`: every `size` rows of the path (its points,
    /// or with ignoreNull=false every row of the query, null there or not) make a window; a last
    /// one with fewer is left out.
    Count {
        /// The counted series (a path relative to FROM).
        path: Vec<String>,
        /// Rows per window.
        size: usize,
        /// Whether rows where the path has no value are passed over.
        ignore_null: bool,
    },
    /// `VARIATION(expr[, delta][, ignoreNull=...])`: a row joins the window while the expression
    /// stays within `delta` of its value at the window's first row (equal, for 0).
    Variation {
        /// The control expression.
        expr: Expr,
        /// The largest difference from the first row's value.
        delta: f64,
        /// Whether rows where the expression is null are passed over (else they make windows).
        ignore_null: bool,
    },
    /// `CONDITION(predicate, [KEEP op] n[, ignoreNull=...])`: runs of rows where the predicate
    /// holds, kept when their length satisfies `op n`.
    Condition {
        /// The predicate.
        expr: Expr,
        /// The comparison of a run's length with `keep`.
        op: BinOp,
        /// The length it is compared with.
        keep: usize,
        /// Whether rows where the predicate is null are passed over (else they end a run).
        ignore_null: bool,
    },
}

/// The time windows of GROUP BY.
#[derive(Clone, Debug, PartialEq)]
pub struct TimeGroup {
    /// `(start, end)` when written; otherwise the data's first and last timestamps are used.
    pub range: Option<(Expr, Expr)>,
    /// Whether the range is `(start, end]`: windows are left-open and shown at their end.
    pub left_open: bool,
    /// Window length as written (`10m`, `1mo`, or a number of time units).
    pub interval: String,
    /// Sliding step as written; the interval when omitted.
    pub step: Option<String>,
}

/// How FILL replaces nulls.
#[derive(Clone, Debug, PartialEq)]
pub enum Fill {
    /// The previous non-null value of the column, optionally only within a duration (as written).
    Previous(Option<String>),
    /// Linear interpolation between the neighbouring non-null values (numeric columns).
    Linear,
    /// A constant, used only for columns whose type it fits.
    Value(Literal),
}

/// A condition of SHOW/COUNT TIMESERIES ... WHERE.
#[derive(Clone, Debug, PartialEq)]
pub enum SchemaFilter {
    /// `TAGS(k) = 'v'` or IoTDB's older `k = 'v'`.
    TagEquals(String, String),
    /// `TAGS(k) CONTAINS 'v'` or `k CONTAINS 'v'`.
    TagContains(String, String),
    /// `ATTRIBUTES(k) = 'v'` (a DuetDB extension; IoTDB indexes only tags).
    AttributeEquals(String, String),
    /// `TIMESERIES CONTAINS 'text'`.
    PathContains(String),
    /// `DATATYPE = T`.
    DataType(DataType),
    /// Both.
    And(Box<SchemaFilter>, Box<SchemaFilter>),
    /// Either.
    Or(Box<SchemaFilter>, Box<SchemaFilter>),
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
    /// ALTER TIMESERIES: alias, tags, attributes.
    AlterTimeseries(Path, duet_common::mutation::SeriesChange),
    /// SHOW DATABASES [pattern].
    ShowDatabases(Option<PathPattern>),
    /// SHOW TIMESERIES [pattern] [WHERE ...] [LIMIT] [OFFSET].
    ShowTimeseries {
        /// Pattern.
        pattern: Option<PathPattern>,
        /// WHERE on tags, attributes, path or type.
        filter: Option<SchemaFilter>,
        /// LIMIT.
        limit: Option<usize>,
        /// OFFSET.
        offset: usize,
    },
    /// SHOW DEVICES [pattern] [WITH DATABASE] [WHERE DEVICE CONTAINS 's' | WHERE TEMPLATE ...].
    ShowDevices {
        /// Pattern.
        pattern: Option<PathPattern>,
        /// WITH DATABASE (adds the Database column).
        with_database: bool,
        /// `WHERE DEVICE CONTAINS 's'`: devices whose path contains this text; `Some("")` keeps
        /// all, and None after `WHERE TEMPLATE = t` (no device uses a template here) keeps none.
        contains: Option<String>,
        /// LIMIT.
        limit: Option<usize>,
        /// OFFSET.
        offset: usize,
    },
    /// COUNT TIMESERIES [pattern] [WHERE ...] [GROUP BY LEVEL = n].
    CountTimeseries {
        /// Pattern.
        pattern: Option<PathPattern>,
        /// WHERE on tags, attributes, path or type.
        filter: Option<SchemaFilter>,
        /// GROUP BY LEVEL.
        level: Option<usize>,
    },
    /// COUNT NODES pattern LEVEL = n.
    CountNodes {
        /// Pattern.
        pattern: PathPattern,
        /// Level.
        level: usize,
    },
    /// SHOW CHILD PATHS [pattern].
    ShowChildPaths(Option<PathPattern>),
    /// SHOW CHILD NODES [pattern].
    ShowChildNodes(Option<PathPattern>),
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
    /// A SELECT of any kind, as the parser produces it.
    Query(Box<Query>),
    /// A plain projection built by a caller (runs like a [`Query`] without extra clauses).
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
    /// SHOW VARIABLES.
    ShowVariables,
    /// SHOW QUERIES [WHERE ...] [ORDER BY column [ASC|DESC], ...] [LIMIT n] [OFFSET n].
    ShowQueries {
        /// Condition over the columns (Time, QueryId, DataNodeId, ElapsedTime, Statement).
        filter: Option<Expr>,
        /// Sort keys: column name and whether descending.
        order: Vec<(String, bool)>,
        /// LIMIT.
        limit: Option<usize>,
        /// OFFSET.
        offset: usize,
    },
    /// KILL QUERY 'id' (Some) or KILL ALL QUERIES (None).
    KillQuery(Option<String>),
    /// ALTER USER name SET PASSWORD 'password'.
    AlterUserPassword {
        /// The user.
        user: String,
        /// The new password.
        password: String,
    },
    /// LIST USER.
    ListUser,
    /// CREATE CONTINUOUS QUERY / CREATE CQ.
    CreateCq(Box<CqSpec>),
    /// DROP CONTINUOUS QUERY / DROP CQ.
    DropCq(String),
    /// SHOW CONTINUOUS QUERIES / SHOW CQS.
    ShowCqs,
    /// A user, role or privilege statement DuetDB does not have (CREATE USER, GRANT, ...): named
    /// by its leading words, refused with 814.
    AuthUnsupported(String),
    /// SHOW CLUSTER [DETAILS].
    ShowCluster(bool),
    /// SHOW DATANODES (true) or SHOW CONFIGNODES (false).
    ShowNodes(bool),
    /// SET TTL TO path ttl: a database, a device or `path.**` (IoTDB 1.3.3's rules), with a TTL
    /// in milliseconds (`INF`: [`duet_common::mutation::TTL_INF`]).
    SetTtl(PathPattern, i64),
    /// UNSET TTL TO|FROM path.
    UnsetTtl(PathPattern),
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
    ShowPipes(PipeFilter),
    /// CHECK PIPE name (compare with the peer) / REPAIR PIPE name (and fix what differs).
    CheckPipe {
        /// Pipe name.
        name: String,
        /// REPAIR rather than CHECK.
        repair: bool,
    },
    /// MERGE: compact the data files now (IoTDB's statement for compaction).
    Merge,
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

/// Which pipes SHOW PIPES lists.
#[derive(Clone, Debug, PartialEq)]
pub enum PipeFilter {
    /// `SHOW PIPES`: every pipe.
    All,
    /// `SHOW PIPE name`: that pipe.
    Named(String),
    /// `SHOW PIPES WHERE SINK USED BY name` (or CONNECTOR): the pipes whose sink is the same as
    /// that pipe's (same receiver and sink settings), the pipe itself included.
    SinkUsedBy(String),
}
