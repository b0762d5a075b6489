//! SELECT INTO: a query's result written to target series, as IoTDB 1.3 matches result columns to
//! targets (in order, or through the placeholders `::` and `${i}`), with the report of what went
//! where.
//!
//! The writes are ordinary inserts of this instance: a pipe ships them like any other.

use duet_common::mutation::{Column, ColumnValues, InsertBatch, Op};
use duet_common::path::Path;
use duet_common::status::{Status, StatusCode};
use duet_common::types::{DataType, Value};
use duet_storage::Engine;

use crate::ast::{IntoItem, Query};
use crate::result::ResultSet;

fn semantic(msg: impl Into<String>) -> Status {
    Status::new(StatusCode::SemanticError, msg)
}

/// Rows per insert: a result of millions of rows goes in WAL records of bounded size.
const ROWS_PER_WRITE: usize = 10_000;

fn has_placeholder(n: &str) -> bool {
    n.contains("::") || n.contains("${")
}

/// `node` with `${i}` replaced by node i of `source` (root is 0).
fn fill_levels(node: &str, source: &Path) -> Result<String, Status> {
    let mut out = String::new();
    let mut rest = node;
    while let Some(at) = rest.find("${") {
        out.push_str(&rest[..at]);
        let end = rest[at..].find('}').ok_or_else(|| semantic(format!("INTO: unclosed placeholder in '{node}'")))? + at;
        let i: usize = rest[at + 2..end].trim().parse().map_err(|_| semantic(format!("INTO: '{}' is not a level number", &rest[at + 2..end])))?;
        let n = source.nodes().get(i).ok_or_else(|| semantic(format!("INTO: {source} has no level {i}")))?;
        out.push_str(n);
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The target device of `item` (placeholders filled): `::` copies `device`'s nodes from its level
/// on, `${i}` takes node i of `levels` (the source series; under ALIGN BY DEVICE, the device).
fn device_for(item: &IntoItem, levels: Option<&Path>, device: Option<&Path>) -> Result<Path, Status> {
    let mut nodes = Vec::new();
    for (level, n) in item.device.iter().enumerate() {
        if !has_placeholder(n) {
            nodes.push(n.clone());
            continue;
        }
        let (Some(src), Some(dev)) = (levels, device) else {
            return Err(semantic("INTO: placeholders stand for time series; this column is computed (an aggregate or an expression)"));
        };
        if n == "::" {
            nodes.extend(dev.nodes().iter().skip(level).cloned());
        } else {
            nodes.push(fill_levels(n, src)?);
        }
    }
    if nodes.first().map(String::as_str) != Some("root") {
        return Err(semantic(format!("INTO: target device {} does not start with root", nodes.join("."))));
    }
    Path::from_nodes(nodes).map_err(|m| Status::new(StatusCode::IllegalPath, format!("INTO: {m}")))
}

/// The target measurement `m` for a source series.
fn measurement_for(m: &str, source: Option<&Path>) -> Result<String, Status> {
    if !has_placeholder(m) {
        return Ok(m.to_string());
    }
    let src = source.ok_or_else(|| semantic("INTO: placeholders stand for time series; this column is computed (an aggregate or an expression)"))?;
    if m == "::" {
        return Ok(src.last().to_string());
    }
    fill_levels(m, src)
}

/// One result column's destination.
struct Target {
    /// Index of the result column.
    col: usize,
    /// The source device (ALIGN BY DEVICE), for the report and to pick rows.
    device: Option<String>,
    series: Path,
    aligned: bool,
}

/// Runs `q` (which has INTO) and writes its result; returns IoTDB's report: (SourceDevice,)
/// SourceColumn, TargetTimeseries, Written.
pub fn run(engine: &Engine, q: &Query, rs: ResultSet) -> Result<ResultSet, Status> {
    let items = q.into.as_ref().expect("a SELECT INTO");
    let s = &q.select;
    if q.last || s.slimit.is_some() || s.soffset > 0 {
        return Err(semantic("SELECT INTO does not take LAST, SLIMIT or SOFFSET (its columns must be known)"));
    }
    let by_device = s.align_by_device;
    let first = usize::from(by_device);
    let values: Vec<usize> = (first..rs.columns.len()).collect();
    // The time series a column reads, when it is one (placeholders stand for them).
    let series_of = |device: Option<&str>, col: usize| -> Option<Path> {
        let name = &rs.columns[col];
        let p = match device {
            Some(d) => Path::parse(d).ok()?.child(name),
            None => Path::parse(name).ok()?,
        };
        engine.state().schema.series(&p).map(|_| p)
    };
    let placeholders = |it: &IntoItem| (it.device.iter().any(|n| has_placeholder(n)), it.measurements.iter().any(|n| has_placeholder(n)));
    let mut targets: Vec<Target> = Vec::new();
    if !by_device {
        let n = values.len();
        let total: usize = items.iter().map(|i| i.measurements.len()).sum();
        let any_meas_ph = items.iter().any(|i| placeholders(i).1);
        // (item, measurement) for each column, in order.
        let pairs: Vec<(&IntoItem, &String)> = if any_meas_ph {
            if items.iter().any(|i| i.measurements.len() != 1) {
                return Err(semantic("INTO: with a placeholder among the measurements, each target lists one measurement"));
            }
            match items.len() {
                1 => values.iter().map(|_| (&items[0], &items[0].measurements[0])).collect(),
                k if k == n => items.iter().map(|i| (i, &i.measurements[0])).collect(),
                k => return Err(semantic(format!("INTO: {k} targets for {n} result columns (give one target, or one per column)"))),
            }
        } else {
            if total != n {
                return Err(semantic(format!("INTO names {total} target time series for {n} result columns")));
            }
            items.iter().flat_map(|i| i.measurements.iter().map(move |m| (i, m))).collect()
        };
        for (&col, (item, m)) in values.iter().zip(pairs) {
            let src = series_of(None, col);
            let device = device_for(item, src.as_ref(), src.as_ref().and_then(Path::parent).as_ref())?;
            targets.push(Target { col, device: None, series: device.child(&measurement_for(m, src.as_ref())?), aligned: item.aligned });
        }
    } else {
        let mut devices: Vec<String> = Vec::new();
        for v in rs.cols[0].iter().flatten() {
            let d = String::from_utf8_lossy(match v {
                Value::Bytes(b) => b,
                _ => continue,
            })
            .into_owned();
            if !devices.contains(&d) {
                devices.push(d);
            }
        }
        let one_with_ph = items.len() == 1 && placeholders(&items[0]).0;
        if !one_with_ph && items.len() != devices.len() {
            return Err(semantic(format!("INTO names {} target devices for {} queried devices (ALIGN BY DEVICE: one per device, or one with placeholders)", items.len(), devices.len())));
        }
        for (k, d) in devices.iter().enumerate() {
            let item = if one_with_ph { &items[0] } else { &items[k] };
            let dev_path = Path::parse(d).ok();
            let device = device_for(item, dev_path.as_ref(), dev_path.as_ref())?;
            let ms: Vec<&String> = match item.measurements.as_slice() {
                [m] if has_placeholder(m) => values.iter().map(|_| m).collect(),
                ms if ms.len() == values.len() => ms.iter().collect(),
                ms => return Err(semantic(format!("INTO {}: {} measurements for {} result columns", item.device.join("."), ms.len(), values.len()))),
            };
            for (&col, m) in values.iter().zip(ms) {
                let src = series_of(Some(d), col);
                targets.push(Target { col, device: Some(d.clone()), series: device.child(&measurement_for(m, src.as_ref())?), aligned: item.aligned });
            }
        }
    }
    let mut seen = std::collections::HashSet::new();
    for t in &targets {
        if !seen.insert(&t.series) {
            return Err(semantic(format!("INTO writes two result columns to {}", t.series)));
        }
    }
    // Types: an existing target's, which the column's values must convert to; else the column's.
    let types: Vec<DataType> = {
        let st = engine.state();
        targets
            .iter()
            .map(|t| {
                let from = rs.types[t.col];
                match st.schema.series(&t.series) {
                    Some(s) if s.def.dtype != from && !convertible(from, s.def.dtype) => {
                        Err(Status::new(StatusCode::DataTypeMismatch, format!("INTO: {} is {}; {} values of {} cannot be written to it", t.series, s.def.dtype.name(), from.name(), rs.columns[t.col])))
                    }
                    Some(s) => Ok(s.def.dtype),
                    None => Ok(from),
                }
            })
            .collect::<Result<_, _>>()?
    };
    // An aggregation without time windows has no meaningful time: IoTDB stores it at 0.
    let time = |r: usize| if rs.ignore_time { 0 } else { rs.times[r] };
    let mut written = vec![0i64; targets.len()];
    // Target devices, each with its targets (indexes), in order of first appearance.
    let mut devs: Vec<(Path, bool, Option<String>, Vec<usize>)> = Vec::new();
    for (i, t) in targets.iter().enumerate() {
        let dev = t.series.parent().unwrap();
        match devs.iter_mut().find(|(d, _, src, _)| *d == dev && *src == t.device) {
            Some(e) => e.3.push(i),
            None => devs.push((dev, t.aligned, t.device.clone(), vec![i])),
        }
    }
    for (dev, aligned, src_dev, idx) in &devs {
        let rows: Vec<usize> = (0..rs.len())
            .filter(|&r| match src_dev {
                Some(d) => matches!(&rs.cols[0][r], Some(Value::Bytes(b)) if b == d.as_bytes()),
                None => true,
            })
            .filter(|&r| idx.iter().any(|&i| rs.cols[targets[i].col][r].is_some()))
            .collect();
        for chunk in rows.chunks(ROWS_PER_WRITE) {
            let mut columns = Vec::new();
            for &i in idx {
                let (t, dtype) = (&targets[i], types[i]);
                let mut values = ColumnValues::empty(dtype, chunk.len());
                let mut nulls = vec![false; chunk.len()];
                for (k, &r) in chunk.iter().enumerate() {
                    match rs.cols[t.col][r].as_ref().map(|v| convert(v, dtype)) {
                        Some(Some(v)) => {
                            values.push(v);
                            written[i] += 1;
                        }
                        _ => {
                            nulls[k] = true;
                            values.push_placeholder();
                        }
                    }
                }
                if nulls.iter().all(|x| *x) {
                    continue;
                }
                let nulls = nulls.iter().any(|x| *x).then_some(nulls);
                columns.push(Column { name: t.series.last().to_string(), dtype, values, nulls });
            }
            if columns.is_empty() {
                continue;
            }
            let times = chunk.iter().map(|&r| time(r)).collect();
            engine.write(Op::Insert(vec![InsertBatch { device: dev.clone(), aligned: *aligned, times, columns }]))?;
        }
    }
    let mut head = vec!["SourceColumn", "TargetTimeseries", "Written"];
    if by_device {
        head.insert(0, "SourceDevice");
    }
    let mut out = ResultSet::text(&head);
    *out.types.last_mut().unwrap() = DataType::Int64;
    for (i, t) in targets.iter().enumerate() {
        let mut row: Vec<Option<Value>> = Vec::new();
        if let Some(d) = &t.device {
            row.push(Some(Value::Bytes(d.clone().into_bytes())));
        }
        row.push(Some(Value::Bytes(rs.columns[t.col].clone().into_bytes())));
        row.push(Some(Value::Bytes(t.series.to_string().into_bytes())));
        row.push(Some(Value::I64(written[i])));
        out.times.push(0);
        for (c, v) in row.into_iter().enumerate() {
            out.cols[c].push(v);
        }
    }
    Ok(out)
}

/// Whether values of `from` may be written to a series of type `to` (IoTDB's compatible types).
fn convertible(from: DataType, to: DataType) -> bool {
    use DataType::*;
    matches!((from, to), (Int32, Int64 | Float | Double) | (Int64, Double) | (Float, Double) | (Text, String) | (String, Text))
}

fn convert(v: &Value, to: DataType) -> Option<Value> {
    if v.fits(to) {
        return Some(v.clone());
    }
    Some(match (v, to) {
        (Value::I32(x), DataType::Int64) => Value::I64(*x as i64),
        (Value::I32(x), DataType::Float) => Value::F32(*x as f32),
        (Value::I32(x), DataType::Double) => Value::F64(*x as f64),
        (Value::I64(x), DataType::Double) => Value::F64(*x as f64),
        (Value::F32(x), DataType::Double) => Value::F64(*x as f64),
        _ => return None,
    })
}
