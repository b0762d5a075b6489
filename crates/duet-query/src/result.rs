//! The columnar result of a statement.

use duet_common::status::{Status, StatusCode};
use duet_common::types::{DataType, Value};

/// The configuration key that bounds the memory of one query (see [`memory_exceeded`]).
pub const MEMORY_LIMIT_KEY: &str = "query_memory_limit_in_byte";

/// Bytes one cell of a result takes in memory, besides the heap bytes of a text value.
pub const CELL_BYTES: usize = std::mem::size_of::<Option<Value>>();

/// The error of a query that would hold more than `limit` bytes: IoTDB's
/// QUERY_EXECUTION_MEMORY_NOT_ENOUGH (719), naming the limit and its configuration key.
pub fn memory_exceeded(what: &str, needed: usize, limit: usize) -> Status {
    Status::new(
        StatusCode::QueryExecutionMemoryNotEnough,
        format!(
            "{what} would hold about {} MiB in memory, more than the {} MiB one query may hold ({MEMORY_LIMIT_KEY}={limit}); \
             narrow the time range or the series, widen the GROUP BY interval, add LIMIT, or raise {MEMORY_LIMIT_KEY}",
            needed.div_ceil(1 << 20),
            limit / (1 << 20)
        ),
    )
}

/// Columns of a result, with a time column unless `ignore_time`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ResultSet {
    /// Column names (excluding Time).
    pub columns: Vec<String>,
    /// Column types.
    pub types: Vec<DataType>,
    /// Whether the result has no Time column (SHOW statements).
    pub ignore_time: bool,
    /// Time of each row.
    pub times: Vec<i64>,
    /// Column-major values: `cols[c][row]`.
    pub cols: Vec<Vec<Option<Value>>>,
}

impl ResultSet {
    /// An empty result with the given TEXT columns and no time column (for SHOW statements).
    pub fn text(columns: &[&str]) -> ResultSet {
        ResultSet {
            columns: columns.iter().map(|s| s.to_string()).collect(),
            types: vec![DataType::Text; columns.len()],
            ignore_time: true,
            times: vec![],
            cols: vec![Vec::new(); columns.len()],
        }
    }

    /// Appends a row of optional strings (for SHOW statements).
    pub fn push_text_row(&mut self, row: Vec<Option<String>>) {
        self.times.push(0);
        for (c, v) in row.into_iter().enumerate() {
            self.cols[c].push(v.map(|s| Value::Bytes(s.into_bytes())));
        }
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.times.len()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.times.is_empty()
    }

    /// Approximate bytes the result holds in memory (times, cells and text values).
    pub fn approx_bytes(&self) -> usize {
        let text: usize = self.cols.iter().flatten().map(|v| match v {
            Some(Value::Bytes(b)) => b.len(),
            _ => 0,
        }).sum();
        self.times.len() * (8 + CELL_BYTES * self.cols.len()) + text
    }

    /// Keeps rows `offset..offset+limit`.
    pub fn page(&mut self, offset: usize, limit: Option<usize>) {
        let n = self.len();
        let lo = offset.min(n);
        let hi = limit.map_or(n, |l| (lo + l).min(n));
        self.times = self.times[lo..hi].to_vec();
        for c in self.cols.iter_mut() {
            *c = c[lo..hi].to_vec();
        }
    }
}
