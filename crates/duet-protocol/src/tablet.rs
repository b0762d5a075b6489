//! Value buffers of insertTablet and insertRecord (big-endian; see the protocol reference §5).

use duet_common::mutation::{Column, ColumnValues, InsertBatch};
use duet_common::path::Path;
use duet_common::status::{Status, StatusCode};
use duet_common::types::{DataType, Value};

struct Cur<'a> {
    b: &'a [u8],
    p: usize,
    what: &'static str,
}

impl<'a> Cur<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Status> {
        if n > self.b.len() - self.p {
            return Err(Status::new(
                StatusCode::IllegalParameter,
                format!("{} buffer truncated at byte {}: needed {n} more bytes, {} left", self.what, self.p, self.b.len() - self.p),
            ));
        }
        let s = &self.b[self.p..self.p + n];
        self.p += n;
        Ok(s)
    }
    fn value(&mut self, t: DataType) -> Result<Value, Status> {
        Ok(match t {
            DataType::Boolean => Value::Bool(self.take(1)?[0] != 0),
            DataType::Int32 | DataType::Date => Value::I32(i32::from_be_bytes(self.take(4)?.try_into().unwrap())),
            DataType::Int64 | DataType::Timestamp => Value::I64(i64::from_be_bytes(self.take(8)?.try_into().unwrap())),
            DataType::Float => Value::F32(f32::from_be_bytes(self.take(4)?.try_into().unwrap())),
            DataType::Double => Value::F64(f64::from_be_bytes(self.take(8)?.try_into().unwrap())),
            DataType::Text | DataType::String | DataType::Blob => {
                let len = i32::from_be_bytes(self.take(4)?.try_into().unwrap());
                if len < 0 {
                    return Err(Status::new(StatusCode::IllegalParameter, format!("negative length {len} in {} buffer", self.what)));
                }
                Value::Bytes(self.take(len as usize)?.to_vec())
            }
        })
    }
}

/// Maps a client type code to a data type, with a clear error.
pub fn data_type(code: i32) -> Result<DataType, Status> {
    DataType::from_code(code).ok_or_else(|| Status::new(StatusCode::IllegalParameter, format!("unknown data type code {code}")))
}

/// Decodes an insertTablet request body into a batch.
pub fn decode_tablet(
    device: Path,
    aligned: bool,
    measurements: &[String],
    types: &[i32],
    size: i32,
    values: &[u8],
    timestamps: &[u8],
) -> Result<InsertBatch, Status> {
    if size < 0 {
        return Err(Status::new(StatusCode::IllegalParameter, format!("tablet size {size} is negative")));
    }
    let rows = size as usize;
    if measurements.len() != types.len() {
        return Err(Status::new(
            StatusCode::IllegalParameter,
            format!("tablet has {} measurements but {} types", measurements.len(), types.len()),
        ));
    }
    if timestamps.len() != rows * 8 {
        return Err(Status::new(
            StatusCode::IllegalParameter,
            format!("tablet of {rows} rows needs {} timestamp bytes, got {}", rows * 8, timestamps.len()),
        ));
    }
    let times: Vec<i64> = timestamps.chunks_exact(8).map(|c| i64::from_be_bytes(c.try_into().unwrap())).collect();
    let mut cur = Cur { b: values, p: 0, what: "tablet values" };
    let mut columns = Vec::with_capacity(types.len());
    for (name, code) in measurements.iter().zip(types) {
        let dtype = data_type(*code)?;
        let mut col = ColumnValues::empty(dtype, rows);
        match &mut col {
            ColumnValues::F64(v) => {
                for c in cur.take(rows * 8)?.chunks_exact(8) {
                    v.push(f64::from_be_bytes(c.try_into().unwrap()));
                }
            }
            ColumnValues::I64(v) => {
                for c in cur.take(rows * 8)?.chunks_exact(8) {
                    v.push(i64::from_be_bytes(c.try_into().unwrap()));
                }
            }
            _ => {
                for _ in 0..rows {
                    col.push(cur.value(dtype)?);
                }
            }
        }
        columns.push(Column { name: name.clone(), dtype, values: col, nulls: None });
    }
    // Optional bitmap trailer: per column a flag byte, then size/8+1 bytes LSB-first (1 = null).
    if cur.p < values.len() {
        for c in columns.iter_mut() {
            if cur.take(1)?[0] == 0 {
                continue;
            }
            let bits = cur.take(rows / 8 + 1)?;
            let nulls: Vec<bool> = (0..rows).map(|r| bits[r / 8] & (1 << (r % 8)) != 0).collect();
            if nulls.iter().any(|x| *x) {
                c.nulls = Some(nulls);
            }
        }
    }
    if cur.p != values.len() {
        return Err(Status::new(StatusCode::IllegalParameter, format!("{} unexpected bytes after tablet values", values.len() - cur.p)));
    }
    Ok(InsertBatch { device, aligned, times, columns })
}

/// Decodes an insertRecord value buffer: per measurement a type byte and a value.
pub fn decode_record(values: &[u8], count: usize) -> Result<Vec<(DataType, Value)>, Status> {
    let mut cur = Cur { b: values, p: 0, what: "record values" };
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let code = cur.take(1)?[0];
        let t = data_type(code as i32)?;
        out.push((t, cur.value(t)?));
    }
    if cur.p != values.len() {
        return Err(Status::new(StatusCode::IllegalParameter, format!("{} unexpected bytes after record values", values.len() - cur.p)));
    }
    Ok(out)
}

fn put_value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Bool(b) => out.push(*b as u8),
        Value::I32(x) => out.extend_from_slice(&x.to_be_bytes()),
        Value::I64(x) => out.extend_from_slice(&x.to_be_bytes()),
        Value::F32(x) => out.extend_from_slice(&x.to_be_bytes()),
        Value::F64(x) => out.extend_from_slice(&x.to_be_bytes()),
        Value::Bytes(b) => {
            out.extend_from_slice(&(b.len() as i32).to_be_bytes());
            out.extend_from_slice(b);
        }
    }
}

/// Encodes an insertRecord value buffer.
pub fn encode_record(values: &[(DataType, Value)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (t, v) in values {
        out.push(t.code());
        put_value(&mut out, v);
    }
    out
}

/// Encodes a batch as insertTablet buffers: (values, timestamps, type codes).
pub fn encode_tablet(batch: &InsertBatch) -> (Vec<u8>, Vec<u8>, Vec<i32>) {
    let rows = batch.times.len();
    let mut ts = Vec::with_capacity(rows * 8);
    for t in &batch.times {
        ts.extend_from_slice(&t.to_be_bytes());
    }
    let mut vals = Vec::with_capacity(rows * 8 * batch.columns.len());
    for c in &batch.columns {
        match &c.values {
            ColumnValues::F64(v) => v.iter().for_each(|x| vals.extend_from_slice(&x.to_be_bytes())),
            other => (0..rows).for_each(|i| put_value(&mut vals, &other.get(i))),
        }
    }
    if batch.columns.iter().any(|c| c.nulls.is_some()) {
        for c in &batch.columns {
            match &c.nulls {
                None => vals.push(0),
                Some(n) => {
                    vals.push(1);
                    let mut bits = vec![0u8; rows / 8 + 1];
                    for (r, x) in n.iter().enumerate() {
                        if *x {
                            bits[r / 8] |= 1 << (r % 8);
                        }
                    }
                    vals.extend_from_slice(&bits);
                }
            }
        }
    }
    (vals, ts, batch.columns.iter().map(|c| c.dtype.code() as i32).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_matches_reference_example() {
        let vals = vec![
            (DataType::Int64, Value::I64(7)),
            (DataType::Double, Value::F64(1.5)),
            (DataType::Boolean, Value::Bool(true)),
            (DataType::Text, Value::Bytes(b"hi".to_vec())),
            (DataType::Float, Value::F32(2.0)),
        ];
        let buf = encode_record(&vals);
        let hex: String = buf.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "020000000000000007043ff80000000000000001050000000268690340000000");
        assert_eq!(decode_record(&buf, 5).unwrap(), vals);
        assert!(decode_record(&buf[..buf.len() - 1], 5).is_err());
    }

    #[test]
    fn tablet_bitmap_matches_reference_example() {
        let batch = InsertBatch {
            device: Path::parse("root.db.d").unwrap(),
            aligned: false,
            times: vec![1, 2, 3],
            columns: vec![
                Column { name: "a".into(), dtype: DataType::Int64, values: ColumnValues::I64(vec![1, 0, 3]), nulls: Some(vec![false, true, false]) },
                Column { name: "b".into(), dtype: DataType::Double, values: ColumnValues::F64(vec![1.0, 2.0, 0.0]), nulls: Some(vec![false, false, true]) },
                Column { name: "c".into(), dtype: DataType::Boolean, values: ColumnValues::Bool(vec![true, false, true]), nulls: None },
                Column { name: "d".into(), dtype: DataType::Text, values: ColumnValues::Bytes(vec![b"x".to_vec(), vec![], b"zz".to_vec()]), nulls: Some(vec![false, true, false]) },
            ],
        };
        let (vals, ts, types) = encode_tablet(&batch);
        assert_eq!(&vals[vals.len() - 7..], &[1, 2, 1, 4, 0, 1, 2]);
        let names: Vec<String> = batch.columns.iter().map(|c| c.name.clone()).collect();
        let back = decode_tablet(batch.device.clone(), false, &names, &types, 3, &vals, &ts).unwrap();
        assert_eq!(back, batch);
        assert!(decode_tablet(batch.device.clone(), false, &names, &types, 4, &vals, &ts).is_err());
    }
}
