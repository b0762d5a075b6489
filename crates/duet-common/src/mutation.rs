//! Every durable change to an instance, as one [`Mutation`], and its binary codec.
//!
//! A mutation is what the WAL stores (one record each), what recovery replays, and what a pipe
//! ships to the peer: the same bytes on every path, so origin and version cannot get lost between
//! them.

use crate::codec::{DecodeError, Put, Reader};
use crate::path::{Path, PathPattern};
use crate::types::{Compressor, DataType, Encoding, Value};
use crate::version::{InstanceId, Version};

/// The values of one column of a batch; null rows hold a placeholder.
#[derive(Clone, Debug, PartialEq)]
pub enum ColumnValues {
    /// BOOLEAN.
    Bool(Vec<bool>),
    /// INT32 and DATE.
    I32(Vec<i32>),
    /// INT64 and TIMESTAMP.
    I64(Vec<i64>),
    /// FLOAT.
    F32(Vec<f32>),
    /// DOUBLE.
    F64(Vec<f64>),
    /// TEXT, STRING and BLOB.
    Bytes(Vec<Vec<u8>>),
}

impl ColumnValues {
    /// An empty column for values of type `t`.
    pub fn empty(t: DataType, cap: usize) -> ColumnValues {
        match t {
            DataType::Boolean => ColumnValues::Bool(Vec::with_capacity(cap)),
            DataType::Int32 | DataType::Date => ColumnValues::I32(Vec::with_capacity(cap)),
            DataType::Int64 | DataType::Timestamp => ColumnValues::I64(Vec::with_capacity(cap)),
            DataType::Float => ColumnValues::F32(Vec::with_capacity(cap)),
            DataType::Double => ColumnValues::F64(Vec::with_capacity(cap)),
            _ => ColumnValues::Bytes(Vec::with_capacity(cap)),
        }
    }
    /// Removes every value, keeping the buffer's capacity.
    pub fn clear(&mut self) {
        match self {
            ColumnValues::Bool(v) => v.clear(),
            ColumnValues::I32(v) => v.clear(),
            ColumnValues::I64(v) => v.clear(),
            ColumnValues::F32(v) => v.clear(),
            ColumnValues::F64(v) => v.clear(),
            ColumnValues::Bytes(v) => v.clear(),
        }
    }

    /// Keeps the first `n` values.
    pub fn truncate(&mut self, n: usize) {
        match self {
            ColumnValues::Bool(v) => v.truncate(n),
            ColumnValues::I32(v) => v.truncate(n),
            ColumnValues::I64(v) => v.truncate(n),
            ColumnValues::F32(v) => v.truncate(n),
            ColumnValues::F64(v) => v.truncate(n),
            ColumnValues::Bytes(v) => v.truncate(n),
        }
    }

    /// Bytes reserved by the column's own buffer (not counting the heap of TEXT values).
    pub fn capacity_bytes(&self) -> usize {
        match self {
            ColumnValues::Bool(v) => v.capacity(),
            ColumnValues::I32(v) => v.capacity() * 4,
            ColumnValues::I64(v) => v.capacity() * 8,
            ColumnValues::F32(v) => v.capacity() * 4,
            ColumnValues::F64(v) => v.capacity() * 8,
            ColumnValues::Bytes(v) => v.capacity() * 24,
        }
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        match self {
            ColumnValues::Bool(v) => v.len(),
            ColumnValues::I32(v) => v.len(),
            ColumnValues::I64(v) => v.len(),
            ColumnValues::F32(v) => v.len(),
            ColumnValues::F64(v) => v.len(),
            ColumnValues::Bytes(v) => v.len(),
        }
    }
    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The value at row `i`.
    pub fn get(&self, i: usize) -> Value {
        match self {
            ColumnValues::Bool(v) => Value::Bool(v[i]),
            ColumnValues::I32(v) => Value::I32(v[i]),
            ColumnValues::I64(v) => Value::I64(v[i]),
            ColumnValues::F32(v) => Value::F32(v[i]),
            ColumnValues::F64(v) => Value::F64(v[i]),
            ColumnValues::Bytes(v) => Value::Bytes(v[i].clone()),
        }
    }
    /// Appends a value; returns false when its kind does not match the column.
    pub fn push(&mut self, v: Value) -> bool {
        match (self, v) {
            (ColumnValues::Bool(c), Value::Bool(x)) => c.push(x),
            (ColumnValues::I32(c), Value::I32(x)) => c.push(x),
            (ColumnValues::I64(c), Value::I64(x)) => c.push(x),
            (ColumnValues::F32(c), Value::F32(x)) => c.push(x),
            (ColumnValues::F64(c), Value::F64(x)) => c.push(x),
            (ColumnValues::Bytes(c), Value::Bytes(x)) => c.push(x),
            _ => return false,
        }
        true
    }
    /// Appends the placeholder used for a null row.
    pub fn push_placeholder(&mut self) {
        match self {
            ColumnValues::Bool(c) => c.push(false),
            ColumnValues::I32(c) => c.push(0),
            ColumnValues::I64(c) => c.push(0),
            ColumnValues::F32(c) => c.push(0.0),
            ColumnValues::F64(c) => c.push(0.0),
            ColumnValues::Bytes(c) => c.push(Vec::new()),
        }
    }
}

/// One column of an insert: a measurement, its type, values and optional null flags.
#[derive(Clone, Debug, PartialEq)]
pub struct Column {
    /// The measurement name (last node of the series path).
    pub name: String,
    /// The data type the client declared for the values.
    pub dtype: DataType,
    /// One value per row (placeholders where null).
    pub values: ColumnValues,
    /// `Some(flags)` when some rows are null (`true` = null).
    pub nulls: Option<Vec<bool>>,
}

impl Column {
    /// Whether row `i` is null.
    pub fn is_null(&self, i: usize) -> bool {
        self.nulls.as_ref().is_some_and(|n| n[i])
    }
    /// The value at row `i`, or None when null.
    pub fn value(&self, i: usize) -> Option<Value> {
        if self.is_null(i) {
            None
        } else {
            Some(self.values.get(i))
        }
    }
}

/// Rows for one device: timestamps and columns of equal length.
#[derive(Clone, Debug, PartialEq)]
pub struct InsertBatch {
    /// The device path (`root.db.d1`).
    pub device: Path,
    /// Whether the device is aligned.
    pub aligned: bool,
    /// One timestamp per row.
    pub times: Vec<i64>,
    /// The columns.
    pub columns: Vec<Column>,
}

impl InsertBatch {
    /// Number of non-null points in the batch.
    pub fn point_count(&self) -> usize {
        self.columns.iter().map(|c| self.times.len() - c.nulls.as_ref().map_or(0, |n| n.iter().filter(|x| **x).count())).sum()
    }
}

/// Definition of one time series, as CREATE TIMESERIES gives it.
#[derive(Clone, Debug, PartialEq)]
pub struct SeriesDef {
    /// Full path of the series.
    pub path: Path,
    /// Data type.
    pub dtype: DataType,
    /// Requested encoding.
    pub encoding: Encoding,
    /// Requested compressor.
    pub compressor: Compressor,
    /// Optional alias of the measurement.
    pub alias: Option<String>,
    /// Tags (indexed key/values).
    pub tags: Vec<(String, String)>,
    /// Attributes (unindexed key/values).
    pub attributes: Vec<(String, String)>,
    /// Whether the series belongs to an aligned device.
    pub aligned: bool,
}

impl SeriesDef {
    /// A definition with default encoding and compressor for the type.
    pub fn simple(path: Path, dtype: DataType, aligned: bool) -> SeriesDef {
        SeriesDef {
            path,
            dtype,
            encoding: dtype.default_encoding(),
            compressor: Compressor::Lz4,
            alias: None,
            tags: vec![],
            attributes: vec![],
            aligned,
        }
    }
}

/// What a mutation does.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    /// Insert rows, possibly for several devices, atomically.
    Insert(Vec<InsertBatch>),
    /// Delete points of matching series in `[start, end]` (inclusive), older than the mutation.
    Delete {
        /// Series patterns.
        patterns: Vec<PathPattern>,
        /// First deleted time.
        start: i64,
        /// Last deleted time.
        end: i64,
    },
    /// Create a database.
    CreateDatabase(Path),
    /// Delete databases with all their series and data.
    DeleteDatabases(Vec<Path>),
    /// Create time series (all or nothing).
    CreateSeries(Vec<SeriesDef>),
    /// Drop time series with their data.
    DropSeries(Vec<Path>),
    /// Set (Some) or unset (None) the TTL of a database, in timestamp units.
    SetTtl {
        /// The database path.
        database: Path,
        /// The TTL.
        ttl: Option<i64>,
    },
    /// Set (Some) or unset (None) a TTL rule of IoTDB 1.3.3's device-level TTL, in timestamp
    /// units ([`TTL_INF`] keeps data forever, overriding a broader rule): `rule` is a device path
    /// (that device) or a path followed by `**` (every device below it). A database's own TTL
    /// stays [`Op::SetTtl`].
    SetTtlRule {
        /// The device path, or the prefix followed by `**`.
        rule: PathPattern,
        /// The TTL.
        ttl: Option<i64>,
    },
    /// A receiver's note in its own WAL: the replicated mutations logged after it (up to the next
    /// such note) came through this replication stream (a sender's pipe). Replay rebuilds from it
    /// exactly what each stream has applied, which two pipes from one sender need (each ships at
    /// its own pace). Never shipped; its version's origin is no instance's (0), so no pipe takes
    /// it for a local write.
    Stream(String),
    /// Drop the series matching these patterns, whichever the receiver holds: what a pipe that
    /// carries only part of a database ships of its deletion (the sender cannot list the peer's
    /// series). A receiver turns it into [`Op::DropSeries`] of its matching series before logging.
    DropMatching(Vec<PathPattern>),
    /// Change a series' alias, tags or attributes (ALTER TIMESERIES).
    AlterSeries {
        /// The series (its path, not an alias).
        path: Path,
        /// What changes.
        change: SeriesChange,
    },
}

/// What ALTER TIMESERIES changes of a series' definition.
///
/// [`SeriesChange::apply_to`] never fails: where a replica's change meets a definition it was not
/// made against (a key renamed or dropped on the other side meanwhile), it does what it can and
/// leaves the rest, the same way on every replica, so that replicas applying the same changes in
/// version order agree. Local statements are checked first (the schema's `validate`).
#[derive(Clone, Debug, PartialEq)]
pub enum SeriesChange {
    /// `RENAME old TO new`: a tag's or attribute's key.
    Rename {
        /// The key now.
        from: String,
        /// The key after.
        to: String,
    },
    /// `SET k=v, ...`: new values of existing tags or attributes.
    Set(Vec<(String, String)>),
    /// `DROP k, ...`: remove tags or attributes.
    Drop(Vec<String>),
    /// `ADD TAGS k=v, ...`.
    AddTags(Vec<(String, String)>),
    /// `ADD ATTRIBUTES k=v, ...`.
    AddAttributes(Vec<(String, String)>),
    /// `UPSERT [ALIAS=a] [TAGS(...)] [ATTRIBUTES(...)]`: set the alias, add or update tags and
    /// attributes.
    Upsert {
        /// The new alias, if given.
        alias: Option<String>,
        /// Tags to add or update.
        tags: Vec<(String, String)>,
        /// Attributes to add or update.
        attributes: Vec<(String, String)>,
    },
}

fn upsert(kv: &mut Vec<(String, String)>, k: &str, v: &str) {
    match kv.iter_mut().find(|(x, _)| x == k) {
        Some(e) => e.1 = v.to_string(),
        None => kv.push((k.to_string(), v.to_string())),
    }
}

impl SeriesChange {
    /// Applies the change to a definition (see the type's note on changes that no longer fit).
    pub fn apply_to(&self, d: &mut SeriesDef) {
        match self {
            SeriesChange::Rename { from, to } => {
                let taken = d.tags.iter().chain(&d.attributes).any(|(k, _)| k == to);
                if !taken {
                    if let Some(e) = d.tags.iter_mut().chain(d.attributes.iter_mut()).find(|(k, _)| k == from) {
                        e.0 = to.clone();
                    }
                }
            }
            SeriesChange::Set(kv) => {
                for (k, v) in kv {
                    if let Some(e) = d.tags.iter_mut().chain(d.attributes.iter_mut()).find(|(x, _)| x == k) {
                        e.1 = v.clone();
                    }
                }
            }
            SeriesChange::Drop(keys) => {
                d.tags.retain(|(k, _)| !keys.contains(k));
                d.attributes.retain(|(k, _)| !keys.contains(k));
            }
            SeriesChange::AddTags(kv) => kv.iter().for_each(|(k, v)| upsert(&mut d.tags, k, v)),
            SeriesChange::AddAttributes(kv) => kv.iter().for_each(|(k, v)| upsert(&mut d.attributes, k, v)),
            SeriesChange::Upsert { alias, tags, attributes } => {
                if alias.is_some() {
                    d.alias = alias.clone();
                }
                tags.iter().for_each(|(k, v)| upsert(&mut d.tags, k, v));
                attributes.iter().for_each(|(k, v)| upsert(&mut d.attributes, k, v));
            }
        }
    }
}

/// One durable change with its version and origin.
#[derive(Clone, Debug, PartialEq)]
pub struct Mutation {
    /// HLC time and origin instance of the write.
    pub version: Version,
    /// The sequence number the write had in its origin's WAL (0 when it is local and not yet logged).
    pub origin_seq: u64,
    /// The change.
    pub op: Op,
}

const TAG_INSERT: u8 = 1;
const TAG_DELETE: u8 = 2;
const TAG_CREATE_DB: u8 = 3;
const TAG_DELETE_DB: u8 = 4;
const TAG_CREATE_SERIES: u8 = 5;
const TAG_DROP_SERIES: u8 = 6;
const TAG_SET_TTL: u8 = 7;
const TAG_STREAM: u8 = 8;
const TAG_DROP_MATCHING: u8 = 9;
const TAG_ALTER_SERIES: u8 = 10;
const TAG_SET_TTL_RULE: u8 = 11;

/// The TTL of data kept forever (IoTDB's `INF`), where a rule must say so to override a broader one.
pub const TTL_INF: i64 = i64::MAX;

fn put_path(out: &mut Vec<u8>, p: &[String]) {
    out.put_var(p.len() as u64);
    for n in p {
        out.put_str(n);
    }
}

fn get_nodes(r: &mut Reader) -> Result<Vec<String>, DecodeError> {
    let n = r.count()?;
    (0..n).map(|_| r.string()).collect()
}

/// A TTL setting: a flag, then the TTL if set.
fn put_ttl(out: &mut Vec<u8>, ttl: Option<i64>) {
    match ttl {
        None => out.put_u8(0),
        Some(t) => {
            out.put_u8(1);
            out.put_u64(t as u64);
        }
    }
}

fn get_ttl(r: &mut Reader) -> Result<Option<i64>, DecodeError> {
    Ok(if r.u8()? != 0 { Some(r.u64()? as i64) } else { None })
}

fn get_path(r: &mut Reader) -> Result<Path, DecodeError> {
    Path::from_nodes(get_nodes(r)?).map_err(DecodeError)
}

fn put_kv(out: &mut Vec<u8>, kv: &[(String, String)]) {
    out.put_var(kv.len() as u64);
    for (k, v) in kv {
        out.put_str(k);
        out.put_str(v);
    }
}

fn get_kv(r: &mut Reader) -> Result<Vec<(String, String)>, DecodeError> {
    let n = r.count()?;
    (0..n).map(|_| Ok((r.string()?, r.string()?))).collect()
}

fn put_column(out: &mut Vec<u8>, c: &Column) {
    out.put_str(&c.name);
    out.put_u8(c.dtype.code());
    match &c.nulls {
        None => out.put_u8(0),
        Some(n) => {
            out.put_u8(1);
            let mut bits = vec![0u8; n.len().div_ceil(8)];
            for (i, x) in n.iter().enumerate() {
                if *x {
                    bits[i / 8] |= 1 << (i % 8);
                }
            }
            out.extend_from_slice(&bits);
        }
    }
    match &c.values {
        ColumnValues::Bool(v) => v.iter().for_each(|x| out.put_u8(*x as u8)),
        ColumnValues::I32(v) => v.iter().for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        ColumnValues::I64(v) => v.iter().for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        ColumnValues::F32(v) => v.iter().for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        ColumnValues::F64(v) => v.iter().for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        ColumnValues::Bytes(v) => v.iter().for_each(|x| out.put_bytes(x)),
    }
}

fn get_column(r: &mut Reader, rows: usize) -> Result<Column, DecodeError> {
    let name = r.string()?;
    let code = r.u8()?;
    let dtype = DataType::from_code(code as i32).ok_or_else(|| DecodeError(format!("unknown data type {code}")))?;
    let nulls = match r.u8()? {
        0 => None,
        _ => {
            let bits = r.take(rows.div_ceil(8))?;
            Some((0..rows).map(|i| bits[i / 8] & (1 << (i % 8)) != 0).collect())
        }
    };
    let mut values = ColumnValues::empty(dtype, rows);
    // One bounds check per column, then a loop the compiler turns into a plain copy: checking
    // every value made decoding a visible part of applying a replicated batch.
    macro_rules! fixed {
        ($v:expr, $t:ty, $n:expr) => {{
            let raw = r.take(rows.checked_mul($n).ok_or_else(|| DecodeError(format!("{rows} rows overflow")))?)?;
            $v.extend(raw.chunks_exact($n).map(|c| <$t>::from_le_bytes(c.try_into().unwrap())));
        }};
    }
    match &mut values {
        ColumnValues::Bool(v) => {
            for _ in 0..rows {
                v.push(r.u8()? != 0)
            }
        }
        ColumnValues::I32(v) => fixed!(v, i32, 4),
        ColumnValues::I64(v) => fixed!(v, i64, 8),
        ColumnValues::F32(v) => fixed!(v, f32, 4),
        ColumnValues::F64(v) => fixed!(v, f64, 8),
        ColumnValues::Bytes(v) => {
            for _ in 0..rows {
                v.push(r.bytes()?.to_vec())
            }
        }
    }
    Ok(Column { name, dtype, values, nulls })
}

impl Mutation {
    /// Encodes the mutation (without the WAL's framing).
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u64(self.version.hlc);
        out.put_u64(self.version.origin.0);
        out.put_u64(self.origin_seq);
        match &self.op {
            Op::Insert(batches) => {
                out.put_u8(TAG_INSERT);
                out.put_var(batches.len() as u64);
                for b in batches {
                    put_path(out, b.device.nodes());
                    out.put_u8(b.aligned as u8);
                    out.put_var(b.times.len() as u64);
                    for t in &b.times {
                        out.extend_from_slice(&t.to_le_bytes());
                    }
                    out.put_var(b.columns.len() as u64);
                    for c in &b.columns {
                        put_column(out, c);
                    }
                }
            }
            Op::Delete { patterns, start, end } => {
                out.put_u8(TAG_DELETE);
                out.put_var(patterns.len() as u64);
                for p in patterns {
                    put_path(out, p.nodes());
                }
                out.put_u64(*start as u64);
                out.put_u64(*end as u64);
            }
            Op::CreateDatabase(p) => {
                out.put_u8(TAG_CREATE_DB);
                put_path(out, p.nodes());
            }
            Op::DeleteDatabases(ps) => {
                out.put_u8(TAG_DELETE_DB);
                out.put_var(ps.len() as u64);
                for p in ps {
                    put_path(out, p.nodes());
                }
            }
            Op::CreateSeries(defs) => {
                out.put_u8(TAG_CREATE_SERIES);
                out.put_var(defs.len() as u64);
                for d in defs {
                    put_path(out, d.path.nodes());
                    out.put_u8(d.dtype.code());
                    out.put_u8(d.encoding.code());
                    out.put_u8(d.compressor.code());
                    match &d.alias {
                        None => out.put_u8(0),
                        Some(a) => {
                            out.put_u8(1);
                            out.put_str(a);
                        }
                    }
                    put_kv(out, &d.tags);
                    put_kv(out, &d.attributes);
                    out.put_u8(d.aligned as u8);
                }
            }
            Op::DropSeries(ps) => {
                out.put_u8(TAG_DROP_SERIES);
                out.put_var(ps.len() as u64);
                for p in ps {
                    put_path(out, p.nodes());
                }
            }
            Op::SetTtl { database, ttl } => {
                out.put_u8(TAG_SET_TTL);
                put_path(out, database.nodes());
                put_ttl(out, *ttl);
            }
            Op::SetTtlRule { rule, ttl } => {
                out.put_u8(TAG_SET_TTL_RULE);
                put_path(out, rule.nodes());
                put_ttl(out, *ttl);
            }
            Op::Stream(s) => {
                out.put_u8(TAG_STREAM);
                out.put_str(s);
            }
            Op::DropMatching(patterns) => {
                out.put_u8(TAG_DROP_MATCHING);
                out.put_var(patterns.len() as u64);
                for p in patterns {
                    put_path(out, p.nodes());
                }
            }
            Op::AlterSeries { path, change } => {
                out.put_u8(TAG_ALTER_SERIES);
                put_path(out, path.nodes());
                match change {
                    SeriesChange::Rename { from, to } => {
                        out.put_u8(1);
                        out.put_str(from);
                        out.put_str(to);
                    }
                    SeriesChange::Set(kv) => {
                        out.put_u8(2);
                        put_kv(out, kv);
                    }
                    SeriesChange::Drop(keys) => {
                        out.put_u8(3);
                        out.put_var(keys.len() as u64);
                        keys.iter().for_each(|k| out.put_str(k));
                    }
                    SeriesChange::AddTags(kv) => {
                        out.put_u8(4);
                        put_kv(out, kv);
                    }
                    SeriesChange::AddAttributes(kv) => {
                        out.put_u8(5);
                        put_kv(out, kv);
                    }
                    SeriesChange::Upsert { alias, tags, attributes } => {
                        out.put_u8(6);
                        match alias {
                            None => out.put_u8(0),
                            Some(a) => {
                                out.put_u8(1);
                                out.put_str(a);
                            }
                        }
                        put_kv(out, tags);
                        put_kv(out, attributes);
                    }
                }
            }
        }
    }

    /// Decodes a mutation written by [`Mutation::encode`].
    pub fn decode(buf: &[u8]) -> Result<Mutation, DecodeError> {
        let mut r = Reader::new(buf);
        let hlc = r.u64()?;
        let origin = InstanceId(r.u64()?);
        let origin_seq = r.u64()?;
        let tag = r.u8()?;
        let op = match tag {
            TAG_INSERT => {
                let n = r.count()?;
                let mut batches = Vec::with_capacity(n);
                for _ in 0..n {
                    let device = get_path(&mut r)?;
                    let aligned = r.u8()? != 0;
                    let rows = r.count()?;
                    let raw = r.take(rows.checked_mul(8).ok_or_else(|| DecodeError(format!("{rows} rows overflow")))?)?;
                    let times: Vec<i64> = raw.chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().unwrap())).collect();
                    let nc = r.count()?;
                    let mut columns = Vec::with_capacity(nc);
                    for _ in 0..nc {
                        columns.push(get_column(&mut r, rows)?);
                    }
                    batches.push(InsertBatch { device, aligned, times, columns });
                }
                Op::Insert(batches)
            }
            TAG_DELETE => {
                let n = r.count()?;
                let patterns = (0..n).map(|_| get_nodes(&mut r).map(PathPattern::from_nodes)).collect::<Result<_, _>>()?;
                Op::Delete { patterns, start: r.u64()? as i64, end: r.u64()? as i64 }
            }
            TAG_CREATE_DB => Op::CreateDatabase(get_path(&mut r)?),
            TAG_DELETE_DB => {
                let n = r.count()?;
                Op::DeleteDatabases((0..n).map(|_| get_path(&mut r)).collect::<Result<_, _>>()?)
            }
            TAG_CREATE_SERIES => {
                let n = r.count()?;
                let mut defs = Vec::with_capacity(n);
                for _ in 0..n {
                    let path = get_path(&mut r)?;
                    let dt = r.u8()?;
                    let dtype = DataType::from_code(dt as i32).ok_or_else(|| DecodeError(format!("unknown data type {dt}")))?;
                    let encoding = Encoding::from_code(r.u8()? as i32).unwrap_or(dtype.default_encoding());
                    let compressor = Compressor::from_code(r.u8()? as i32).unwrap_or(Compressor::Lz4);
                    let alias = if r.u8()? != 0 { Some(r.string()?) } else { None };
                    let tags = get_kv(&mut r)?;
                    let attributes = get_kv(&mut r)?;
                    let aligned = r.u8()? != 0;
                    defs.push(SeriesDef { path, dtype, encoding, compressor, alias, tags, attributes, aligned });
                }
                Op::CreateSeries(defs)
            }
            TAG_DROP_SERIES => {
                let n = r.count()?;
                Op::DropSeries((0..n).map(|_| get_path(&mut r)).collect::<Result<_, _>>()?)
            }
            TAG_SET_TTL => {
                let database = get_path(&mut r)?;
                Op::SetTtl { database, ttl: get_ttl(&mut r)? }
            }
            TAG_SET_TTL_RULE => {
                let rule = PathPattern::from_nodes(get_nodes(&mut r)?);
                Op::SetTtlRule { rule, ttl: get_ttl(&mut r)? }
            }
            TAG_STREAM => Op::Stream(r.string()?),
            TAG_DROP_MATCHING => {
                let n = r.count()?;
                Op::DropMatching((0..n).map(|_| get_nodes(&mut r).map(PathPattern::from_nodes)).collect::<Result<_, _>>()?)
            }
            TAG_ALTER_SERIES => {
                let path = get_path(&mut r)?;
                let change = match r.u8()? {
                    1 => SeriesChange::Rename { from: r.string()?, to: r.string()? },
                    2 => SeriesChange::Set(get_kv(&mut r)?),
                    3 => {
                        let n = r.count()?;
                        SeriesChange::Drop((0..n).map(|_| r.string()).collect::<Result<_, _>>()?)
                    }
                    4 => SeriesChange::AddTags(get_kv(&mut r)?),
                    5 => SeriesChange::AddAttributes(get_kv(&mut r)?),
                    6 => {
                        let alias = if r.u8()? != 0 { Some(r.string()?) } else { None };
                        SeriesChange::Upsert { alias, tags: get_kv(&mut r)?, attributes: get_kv(&mut r)? }
                    }
                    c => return Err(DecodeError(format!("unknown series change {c}"))),
                };
                Op::AlterSeries { path, change }
            }
            t => return Err(DecodeError(format!("unknown mutation tag {t}"))),
        };
        if r.remaining() != 0 {
            return Err(DecodeError(format!("{} trailing bytes after mutation", r.remaining())));
        }
        Ok(Mutation { version: Version { hlc, origin }, origin_seq, op })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_every_op() {
        let dev = Path::parse("root.db.d1").unwrap();
        let ops = vec![
            Op::Insert(vec![InsertBatch {
                device: dev.clone(),
                aligned: true,
                times: vec![1, 2, 3],
                columns: vec![
                    Column { name: "a".into(), dtype: DataType::Double, values: ColumnValues::F64(vec![1.5, f64::NAN, -0.0]), nulls: Some(vec![false, true, false]) },
                    Column { name: "b".into(), dtype: DataType::Text, values: ColumnValues::Bytes(vec![b"x".to_vec(), vec![], b"zz".to_vec()]), nulls: None },
                    Column { name: "c".into(), dtype: DataType::Date, values: ColumnValues::I32(vec![20240101, 0, 1]), nulls: None },
                    Column { name: "d".into(), dtype: DataType::Int64, values: ColumnValues::I64(vec![i64::MIN, -1, i64::MAX]), nulls: None },
                    Column { name: "e".into(), dtype: DataType::Float, values: ColumnValues::F32(vec![0.25, f32::INFINITY, -3.0]), nulls: None },
                    Column { name: "f".into(), dtype: DataType::Boolean, values: ColumnValues::Bool(vec![true, false, true]), nulls: None },
                ],
            }]),
            Op::Delete { patterns: vec![PathPattern::parse("root.db.**").unwrap()], start: i64::MIN, end: 7 },
            Op::CreateDatabase(Path::parse("root.db").unwrap()),
            Op::DeleteDatabases(vec![Path::parse("root.db").unwrap()]),
            Op::CreateSeries(vec![SeriesDef {
                alias: Some("temp".into()),
                tags: vec![("k".into(), "v".into())],
                ..SeriesDef::simple(dev.child("s"), DataType::Int64, false)
            }]),
            Op::DropSeries(vec![dev.child("s")]),
            Op::SetTtl { database: Path::parse("root.db").unwrap(), ttl: Some(3600) },
            Op::SetTtlRule { rule: PathPattern::parse("root.db.g.**").unwrap(), ttl: Some(TTL_INF) },
            Op::SetTtlRule { rule: PathPattern::parse("root.db.g.d1").unwrap(), ttl: None },
            Op::Stream("7/AB@1764190000000".into()),
            Op::DropMatching(vec![PathPattern::parse("root.db.x.**").unwrap(), PathPattern::parse("root.db.*.s").unwrap()]),
            Op::AlterSeries { path: dev.child("s"), change: SeriesChange::Rename { from: "a".into(), to: "b".into() } },
            Op::AlterSeries { path: dev.child("s"), change: SeriesChange::Set(vec![("a".into(), "1".into())]) },
            Op::AlterSeries { path: dev.child("s"), change: SeriesChange::Drop(vec!["a".into(), "b".into()]) },
            Op::AlterSeries { path: dev.child("s"), change: SeriesChange::AddTags(vec![("t".into(), "x".into())]) },
            Op::AlterSeries { path: dev.child("s"), change: SeriesChange::AddAttributes(vec![("u".into(), "y".into())]) },
            Op::AlterSeries { path: dev.child("s"), change: SeriesChange::Upsert { alias: Some("al".into()), tags: vec![("t".into(), "z".into())], attributes: vec![] } },
            Op::AlterSeries { path: dev.child("s"), change: SeriesChange::Upsert { alias: None, tags: vec![], attributes: vec![("u".into(), "w".into())] } },
        ];
        for op in ops {
            let m = Mutation { version: Version { hlc: 99, origin: InstanceId(7) }, origin_seq: 12, op };
            let mut buf = Vec::new();
            m.encode(&mut buf);
            let back = Mutation::decode(&buf).unwrap();
            // NaN != NaN, so compare the encodings.
            let mut buf2 = Vec::new();
            back.encode(&mut buf2);
            assert_eq!(buf, buf2);
            for cut in 0..buf.len() {
                assert!(Mutation::decode(&buf[..cut]).is_err(), "truncated at {cut} decoded");
            }
        }
    }
}
