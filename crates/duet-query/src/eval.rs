//! Expression evaluation: literals, time arithmetic, comparisons and arithmetic with null semantics.

use std::cmp::Ordering;

use duet_common::status::{Status, StatusCode};
use duet_common::time::{parse_datetime, Precision};
use duet_common::types::{DataType, Value};

use crate::ast::{BinOp, Expr, Literal};
use crate::parser::duration_parts;

/// What evaluation needs besides the row: precision, session time zone and the statement's `now()`.
#[derive(Clone, Copy, Debug)]
pub struct TimeContext {
    /// Timestamp precision of the instance.
    pub precision: Precision,
    /// Session time zone, seconds east of UTC.
    pub zone_offset: i32,
    /// `now()` for this statement.
    pub now: i64,
}

fn semantic(msg: impl Into<String>) -> Status {
    Status::new(StatusCode::SemanticError, msg)
}

/// A duration literal in timestamp units.
pub fn duration(s: &str, p: Precision) -> Result<i64, Status> {
    let parts = duration_parts(s).ok_or_else(|| semantic(format!("'{s}' is not a duration")))?;
    let ns_per: fn(&str) -> i128 = |u| match u {
        "y" => 365 * 86_400_000_000_000,
        "mo" => 30 * 86_400_000_000_000,
        "w" => 7 * 86_400_000_000_000,
        "d" => 86_400_000_000_000,
        "h" => 3_600_000_000_000,
        "m" => 60_000_000_000,
        "s" => 1_000_000_000,
        "ms" => 1_000_000,
        "us" => 1_000,
        _ => 1,
    };
    let total: i128 = parts.iter().map(|(n, u)| *n as i128 * ns_per(u)).sum();
    let units = total / (1_000_000_000 / p.per_second() as i128);
    i64::try_from(units).map_err(|_| semantic(format!("duration '{s}' is out of range")))
}

/// Evaluates an expression that must be a point in time (INSERT timestamps, WHERE time bounds).
pub fn time_value(e: &Expr, tc: &TimeContext) -> Result<i64, Status> {
    match e {
        Expr::Lit(Literal::Int(v)) => Ok(*v),
        Expr::Lit(Literal::DateTime(s)) | Expr::Lit(Literal::Str(s)) => {
            parse_datetime(s, tc.precision, tc.zone_offset).map_err(semantic)
        }
        Expr::Lit(Literal::Duration(s)) => duration(s, tc.precision),
        Expr::Call(f, args) if f.eq_ignore_ascii_case("now") && args.is_empty() => Ok(tc.now),
        Expr::Binary(op @ (BinOp::Add | BinOp::Sub), a, b) => {
            let (x, y) = (time_value(a, tc)?, time_value(b, tc)?);
            let r = if *op == BinOp::Add { x.checked_add(y) } else { x.checked_sub(y) };
            r.ok_or_else(|| semantic("time arithmetic overflows"))
        }
        Expr::Neg(a) => Ok(-time_value(a, tc)?),
        other => Err(semantic(format!("expected a time (integer, ISO-8601 date-time or now()), found {other:?}"))),
    }
}

/// The value of a literal, if it has one (NULL has none).
pub fn literal_value(l: &Literal, tc: &TimeContext) -> Result<Option<Value>, Status> {
    Ok(Some(match l {
        Literal::Int(v) => Value::I64(*v),
        Literal::Float(v) => Value::F64(*v),
        Literal::Str(s) => Value::Bytes(s.as_bytes().to_vec()),
        Literal::Bool(b) => Value::Bool(*b),
        Literal::Null => return Ok(None),
        Literal::DateTime(s) => Value::I64(parse_datetime(s, tc.precision, tc.zone_offset).map_err(semantic)?),
        Literal::Blob(b) => Value::Bytes(b.clone()),
        Literal::Duration(s) => Value::I64(duration(s, tc.precision)?),
    }))
}

/// Converts a literal to a value of type `t` for INSERT, naming the problem when impossible.
pub fn coerce_literal(l: &Literal, t: DataType, tc: &TimeContext) -> Result<Option<Value>, String> {
    let bad = |what: &str| format!("{what} cannot be stored in a {} series", t.name());
    Ok(Some(match (l, t) {
        (Literal::Null, _) => return Ok(None),
        (Literal::Int(v), DataType::Int32) => Value::I32(i32::try_from(*v).map_err(|_| format!("{v} is out of range for INT32"))?),
        (Literal::Int(v), DataType::Int64 | DataType::Timestamp) => Value::I64(*v),
        (Literal::Int(v), DataType::Float) => Value::F32(*v as f32),
        (Literal::Int(v), DataType::Double) => Value::F64(*v as f64),
        (Literal::Int(v), DataType::Text | DataType::String) => Value::Bytes(v.to_string().into_bytes()),
        (Literal::Float(v), DataType::Float) => Value::F32(*v as f32),
        (Literal::Float(v), DataType::Double) => Value::F64(*v),
        (Literal::Float(v), DataType::Text | DataType::String) => Value::Bytes(duet_common::types::format_float(*v, false).into_bytes()),
        (Literal::Bool(b), DataType::Boolean) => Value::Bool(*b),
        (Literal::Bool(b), DataType::Text | DataType::String) => Value::Bytes(b.to_string().into_bytes()),
        (Literal::Blob(b), DataType::Blob) => Value::Bytes(b.clone()),
        (Literal::DateTime(s), DataType::Timestamp) => Value::I64(parse_datetime(s, tc.precision, tc.zone_offset)?),
        (Literal::DateTime(s), DataType::Date) => Value::parse_as(&s.get(..10).unwrap_or(s).replace('/', "-"), DataType::Date)?,
        (Literal::DateTime(s), DataType::Text | DataType::String) => Value::Bytes(s.as_bytes().to_vec()),
        (Literal::Str(s), DataType::Timestamp) => Value::I64(parse_datetime(s, tc.precision, tc.zone_offset)?),
        (Literal::Str(s), _) => Value::parse_as(s, t)?,
        (Literal::Int(_), _) => return Err(bad("an integer")),
        (Literal::Float(_), _) => return Err(bad("a decimal number")),
        (Literal::Bool(_), _) => return Err(bad("a boolean")),
        (Literal::Blob(_), _) => return Err(bad("a blob")),
        (Literal::DateTime(_), _) => return Err(bad("a date-time")),
        (Literal::Duration(_), _) => return Err(bad("a duration")),
    }))
}

/// The type a literal gives a series created by INSERT (IoTDB's inference defaults).
pub fn infer_literal_type(l: &Literal) -> Option<DataType> {
    match l {
        Literal::Null => None,
        Literal::Int(_) | Literal::Float(_) => Some(DataType::Double),
        Literal::Bool(_) => Some(DataType::Boolean),
        Literal::Blob(_) => Some(DataType::Blob),
        Literal::Str(_) | Literal::DateTime(_) | Literal::Duration(_) => Some(DataType::Text),
    }
}

fn truthy(v: &Option<Value>) -> bool {
    matches!(v, Some(Value::Bool(true)))
}

/// Applies a binary operator with SQL null semantics (null in, null out; AND/OR three-valued).
pub fn binary(op: BinOp, a: Option<Value>, b: Option<Value>) -> Result<Option<Value>, Status> {
    match op {
        BinOp::And => {
            if matches!(a, Some(Value::Bool(false))) || matches!(b, Some(Value::Bool(false))) {
                return Ok(Some(Value::Bool(false)));
            }
            if a.is_none() || b.is_none() {
                return Ok(None);
            }
            return Ok(Some(Value::Bool(truthy(&a) && truthy(&b))));
        }
        BinOp::Or => {
            if truthy(&a) || truthy(&b) {
                return Ok(Some(Value::Bool(true)));
            }
            if a.is_none() || b.is_none() {
                return Ok(None);
            }
            return Ok(Some(Value::Bool(false)));
        }
        _ => {}
    }
    let (Some(a), Some(b)) = (a, b) else { return Ok(None) };
    let cmp = |o: Option<Ordering>, f: fn(Ordering) -> bool| -> Result<Option<Value>, Status> {
        match o {
            Some(o) => Ok(Some(Value::Bool(f(o)))),
            None => Ok(None),
        }
    };
    match op {
        BinOp::Eq => cmp(a.compare(&b), |o| o == Ordering::Equal),
        BinOp::Ne => cmp(a.compare(&b), |o| o != Ordering::Equal),
        BinOp::Lt => cmp(a.compare(&b), |o| o == Ordering::Less),
        BinOp::Le => cmp(a.compare(&b), |o| o != Ordering::Greater),
        BinOp::Gt => cmp(a.compare(&b), |o| o == Ordering::Greater),
        BinOp::Ge => cmp(a.compare(&b), |o| o != Ordering::Less),
        _ => {
            let (Some(x), Some(y)) = (a.as_f64(), b.as_f64()) else {
                return Err(semantic(format!("operator {} needs numbers", op.symbol())));
            };
            Ok(Some(Value::F64(match op {
                BinOp::Add => x + y,
                BinOp::Sub => x - y,
                BinOp::Mul => x * y,
                BinOp::Div => x / y,
                BinOp::Mod => x % y,
                _ => unreachable!(),
            })))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_times() {
        let tc = TimeContext { precision: Precision::Ms, zone_offset: 3600, now: 1_000_000_000 };
        assert_eq!(duration("1h30m", Precision::Ms).unwrap(), 5_400_000);
        assert_eq!(duration("1d", Precision::Ns).unwrap(), 86_400_000_000_000);
        let e = Expr::Binary(BinOp::Sub, Box::new(Expr::Call("now".into(), vec![])), Box::new(Expr::Lit(Literal::Duration("1s".into()))));
        assert_eq!(time_value(&e, &tc).unwrap(), 999_999_000);
        assert_eq!(time_value(&Expr::Lit(Literal::DateTime("1970-01-01T01:00:00".into())), &tc).unwrap(), 0);
    }

    #[test]
    fn three_valued_logic() {
        let t = Some(Value::Bool(true));
        let f = Some(Value::Bool(false));
        assert_eq!(binary(BinOp::And, None, f.clone()).unwrap(), f);
        assert_eq!(binary(BinOp::Or, None, t.clone()).unwrap(), t);
        assert_eq!(binary(BinOp::And, None, t).unwrap(), None);
        assert_eq!(binary(BinOp::Gt, Some(Value::I32(3)), Some(Value::F64(2.5))).unwrap(), Some(Value::Bool(true)));
        assert_eq!(binary(BinOp::Add, Some(Value::I64(1)), None).unwrap(), None);
    }
}
