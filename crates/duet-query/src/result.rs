//! The columnar result of a statement.

use duet_common::types::{DataType, Value};

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
