//! The TsBlock format in which query results travel (big-endian; see the protocol reference §7).

use duet_common::types::{DataType, Value};

/// A TsBlock column encoding code.
fn encoding_of(t: DataType) -> u8 {
    match t {
        DataType::Boolean => 0,
        DataType::Int32 | DataType::Float | DataType::Date => 1,
        DataType::Int64 | DataType::Double | DataType::Timestamp => 2,
        DataType::Text | DataType::String | DataType::Blob => 3,
    }
}

/// The physical type code written in a TsBlock header (TIMESTAMP as INT64, STRING/BLOB as TEXT, DATE as INT32).
fn physical_code(t: DataType) -> u8 {
    match t {
        DataType::Timestamp => DataType::Int64.code(),
        DataType::String | DataType::Blob => DataType::Text.code(),
        DataType::Date => DataType::Int32.code(),
        t => t.code(),
    }
}

fn null_block(out: &mut Vec<u8>, col: &[Option<Value>]) {
    if col.iter().all(|v| v.is_some()) {
        out.push(0);
        return;
    }
    out.push(1);
    let mut bits = vec![0u8; col.len().div_ceil(8)];
    for (r, v) in col.iter().enumerate() {
        if v.is_none() {
            bits[r / 8] |= 0x80 >> (r % 8);
        }
    }
    out.extend_from_slice(&bits);
}

/// Encodes one TsBlock with a time column and value columns of the given logical types.
pub fn encode(times: &[i64], columns: &[(DataType, &[Option<Value>])]) -> Vec<u8> {
    let rows = times.len();
    let mut out = Vec::with_capacity(16 + rows * (8 + 9 * columns.len()));
    out.extend_from_slice(&(columns.len() as i32).to_be_bytes());
    for (t, _) in columns {
        out.push(physical_code(*t));
    }
    out.extend_from_slice(&(rows as i32).to_be_bytes());
    out.push(2);
    for (t, _) in columns {
        out.push(encoding_of(*t));
    }
    out.push(0);
    for t in times {
        out.extend_from_slice(&t.to_be_bytes());
    }
    for (t, col) in columns {
        debug_assert_eq!(col.len(), rows);
        null_block(&mut out, col);
        match t {
            DataType::Boolean => {
                let mut bits = vec![0u8; rows.div_ceil(8)];
                for (r, v) in col.iter().enumerate() {
                    if let Some(Value::Bool(true)) = v {
                        bits[r / 8] |= 0x80 >> (r % 8);
                    }
                }
                out.extend_from_slice(&bits);
            }
            _ => {
                for v in col.iter().flatten() {
                    match v {
                        Value::I32(x) => out.extend_from_slice(&x.to_be_bytes()),
                        Value::F32(x) => out.extend_from_slice(&x.to_be_bytes()),
                        Value::I64(x) => out.extend_from_slice(&x.to_be_bytes()),
                        Value::F64(x) => out.extend_from_slice(&x.to_be_bytes()),
                        Value::Bytes(b) => {
                            out.extend_from_slice(&(b.len() as i32).to_be_bytes());
                            out.extend_from_slice(b);
                        }
                        Value::Bool(b) => out.push(*b as u8),
                    }
                }
            }
        }
    }
    out
}

/// A decoded TsBlock: times and, per column, one optional value per row.
#[derive(Debug, Clone, PartialEq)]
pub struct Block {
    /// The time column.
    pub times: Vec<i64>,
    /// Value columns, row-aligned with `times`.
    pub columns: Vec<Vec<Option<Value>>>,
}

struct Cur<'a> {
    b: &'a [u8],
    p: usize,
}

impl<'a> Cur<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.p + n > self.b.len() {
            return Err(format!("TsBlock truncated at byte {} (needed {n} more)", self.p));
        }
        let s = &self.b[self.p..self.p + n];
        self.p += n;
        Ok(s)
    }
    fn i32(&mut self) -> Result<i32, String> {
        Ok(i32::from_be_bytes(self.take(4)?.try_into().unwrap()))
    }
}

/// Decodes a TsBlock. `types` gives the logical types (from dataTypeList) to interpret columns with.
pub fn decode(buf: &[u8], types: &[DataType]) -> Result<Block, String> {
    let mut c = Cur { b: buf, p: 0 };
    let n = c.i32()?;
    if n < 0 || n as usize != types.len() {
        return Err(format!("TsBlock has {n} value columns, expected {}", types.len()));
    }
    c.take(n as usize)?;
    let rows = c.i32()?;
    if rows < 0 || rows as usize > buf.len() {
        return Err(format!("TsBlock claims {rows} rows"));
    }
    let rows = rows as usize;
    let encodings = c.take(n as usize + 1)?.to_vec();
    let read_nulls = |c: &mut Cur| -> Result<Vec<bool>, String> {
        if c.take(1)?[0] == 0 {
            return Ok(vec![false; rows]);
        }
        let bits = c.take(rows.div_ceil(8))?;
        Ok((0..rows).map(|r| bits[r / 8] & (0x80 >> (r % 8)) != 0).collect())
    };
    let tnulls = read_nulls(&mut c)?;
    let mut times = Vec::with_capacity(rows);
    for &null in tnulls.iter().take(rows) {
        times.push(if null { 0 } else { i64::from_be_bytes(c.take(8)?.try_into().unwrap()) });
    }
    let mut columns = Vec::with_capacity(types.len());
    for (i, t) in types.iter().enumerate() {
        let nulls = read_nulls(&mut c)?;
        let mut col = Vec::with_capacity(rows);
        match encodings[i + 1] {
            0 => {
                let bits = c.take(rows.div_ceil(8))?;
                for r in 0..rows {
                    col.push((!nulls[r]).then(|| Value::Bool(bits[r / 8] & (0x80 >> (r % 8)) != 0)));
                }
            }
            1..=3 => {
                for null in nulls.iter().take(rows) {
                    if *null {
                        col.push(None);
                        continue;
                    }
                    let v = match t {
                        DataType::Int32 | DataType::Date => Value::I32(c.i32()?),
                        DataType::Float => Value::F32(f32::from_be_bytes(c.take(4)?.try_into().unwrap())),
                        DataType::Int64 | DataType::Timestamp => Value::I64(i64::from_be_bytes(c.take(8)?.try_into().unwrap())),
                        DataType::Double => Value::F64(f64::from_be_bytes(c.take(8)?.try_into().unwrap())),
                        DataType::Text | DataType::String | DataType::Blob => {
                            let len = c.i32()?;
                            if len < 0 {
                                return Err("negative text length in TsBlock".into());
                            }
                            Value::Bytes(c.take(len as usize)?.to_vec())
                        }
                        DataType::Boolean => Value::Bool(c.take(1)?[0] != 0),
                    };
                    col.push(Some(v));
                }
            }
            e => return Err(format!("unsupported TsBlock column encoding {e}")),
        }
        columns.push(col);
    }
    Ok(Block { times, columns })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_reference_example() {
        let col = vec![Some(Value::I64(10)), None];
        let b = encode(&[1, 2], &[(DataType::Int64, &col)]);
        let want: Vec<u8> = vec![
            0, 0, 0, 1, 2, 0, 0, 0, 2, 2, 2, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2, 1, 0x40, 0, 0, 0, 0, 0, 0, 0, 10,
        ];
        assert_eq!(b, want);
        assert_eq!(decode(&b, &[DataType::Int64]).unwrap(), Block { times: vec![1, 2], columns: vec![col] });
    }

    #[test]
    fn round_trips_all_types() {
        let cols: Vec<(DataType, Vec<Option<Value>>)> = vec![
            (DataType::Boolean, vec![Some(Value::Bool(true)), None, Some(Value::Bool(false))]),
            (DataType::Int32, vec![None, Some(Value::I32(-5)), Some(Value::I32(7))]),
            (DataType::Float, vec![Some(Value::F32(1.5)), None, None]),
            (DataType::Double, vec![Some(Value::F64(2.25)), Some(Value::F64(-1.0)), None]),
            (DataType::Text, vec![Some(Value::Bytes(b"hi".to_vec())), None, Some(Value::Bytes(vec![]))]),
            (DataType::Date, vec![Some(Value::I32(20240101)), None, None]),
            (DataType::Timestamp, vec![None, None, Some(Value::I64(99))]),
        ];
        let refs: Vec<(DataType, &[Option<Value>])> = cols.iter().map(|(t, c)| (*t, c.as_slice())).collect();
        let buf = encode(&[10, 20, 30], &refs);
        let types: Vec<DataType> = cols.iter().map(|c| c.0).collect();
        let back = decode(&buf, &types).unwrap();
        assert_eq!(back.times, vec![10, 20, 30]);
        for (i, (_, c)) in cols.iter().enumerate() {
            assert_eq!(&back.columns[i], c);
        }
        for cut in 0..buf.len() {
            assert!(decode(&buf[..cut], &types).is_err());
        }
    }
}
