//! Built-in scalar functions, one value in and one out per row: IoTDB's math functions, CAST, the
//! string functions, and the LIKE / REGEXP predicates of WHERE (bound as functions).
//!
//! A function is recognised by name when the query is bound ([`Scalar::bind`]), with its extra
//! arguments given either positionally (`ROUND(s, 2)`) or as IoTDB's attributes
//! (`STRING_CONTAINS(s, 's'='warn')`), and checked against its input's type before any data is read.

use duet_common::status::{Status, StatusCode};
use duet_common::types::{DataType, Value};
use regex::Regex;

use crate::ast::{BinOp, Expr, Literal};

fn semantic(msg: impl Into<String>) -> Status {
    Status::new(StatusCode::SemanticError, msg)
}

/// Math functions of one number.
#[derive(Clone, Copy, Debug)]
pub enum Math {
    /// ABS: keeps the input type.
    Abs,
    /// SIGN, CEIL, FLOOR and the rest: a DOUBLE.
    F(MathFn),
}

/// A scalar function bound to its arguments other than the input.
#[derive(Clone, Debug)]
pub enum Scalar {
    /// A math function.
    Math(Math),
    /// ROUND to this many places after the point (negative: before it).
    Round(i32),
    /// CAST(x AS type).
    Cast(DataType),
    /// LENGTH of text, in characters.
    Length,
    /// UPPER.
    Upper,
    /// LOWER.
    Lower,
    /// TRIM (spaces at both ends).
    Trim,
    /// STRING_CONTAINS(s, 's'='x').
    Contains(String),
    /// STARTSWITH(s, 'target'='x').
    StartsWith(String),
    /// ENDSWITH(s, 'target'='x').
    EndsWith(String),
    /// REPLACE(s, 'from', 'to').
    Replace(String, String),
    /// STRING_MATCHES(s, 'regex'='...'), `s REGEXP '...'` and `s LIKE '...'` (as a regex).
    Matches(Regex),
}

/// The scalar functions, for messages.
pub const NAMES: &str = "DIFF, DIFFERENCE, NON_NEGATIVE_DIFFERENCE, TIME_DIFFERENCE, DERIVATIVE, NON_NEGATIVE_DERIVATIVE, ABS, SIGN, CEIL, FLOOR, ROUND, SQRT, EXP, LN, LOG10, SIN, COS, TAN, ASIN, ACOS, ATAN, SINH, COSH, TANH, DEGREES, RADIANS, CAST, LENGTH, UPPER, LOWER, TRIM, STRING_CONTAINS, STRING_MATCHES, STARTSWITH, ENDSWITH, REPLACE";

/// The internal names the parser gives `x LIKE 'p'` and `x REGEXP 'p'`.
pub const LIKE: &str = "LIKE";
/// See [`LIKE`].
pub const REGEXP: &str = "REGEXP";

/// A math function of one number.
type MathFn = fn(f64) -> f64;

const MATH: &[(&str, MathFn)] = &[
    ("SIN", f64::sin),
    ("COS", f64::cos),
    ("TAN", f64::tan),
    ("ASIN", f64::asin),
    ("ACOS", f64::acos),
    ("ATAN", f64::atan),
    ("SINH", f64::sinh),
    ("COSH", f64::cosh),
    ("TANH", f64::tanh),
    ("DEGREES", f64::to_degrees),
    ("RADIANS", f64::to_radians),
    ("CEIL", f64::ceil),
    ("FLOOR", f64::floor),
    ("EXP", f64::exp),
    ("LN", f64::ln),
    ("LOG10", f64::log10),
    ("SQRT", f64::sqrt),
    ("SIGN", sign),
];

fn sign(x: f64) -> f64 {
    if x > 0.0 {
        1.0
    } else if x < 0.0 {
        -1.0
    } else {
        x
    }
}

/// An argument after the input: a literal, or an attribute `'key'='value'`.
enum Arg<'a> {
    Lit(&'a Literal),
    Attr(String, String),
}

fn text_of(l: &Literal) -> Option<String> {
    match l {
        Literal::Str(s) | Literal::DateTime(s) => Some(s.clone()),
        Literal::Int(v) => Some(v.to_string()),
        Literal::Float(v) => Some(v.to_string()),
        Literal::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A constant argument's text (a negative number too).
fn const_text(e: &Expr) -> Option<String> {
    match e {
        Expr::Lit(l) => text_of(l),
        Expr::Neg(x) => match &**x {
            Expr::Lit(l @ (Literal::Int(_) | Literal::Float(_))) => Some(format!("-{}", text_of(l)?)),
            _ => None,
        },
        _ => None,
    }
}

fn args_of<'a>(f: &str, extra: &'a [Expr]) -> Result<Vec<Arg<'a>>, Status> {
    extra
        .iter()
        .map(|e| match e {
            Expr::Lit(l) => Ok(Arg::Lit(l)),
            Expr::Neg(_) => const_text(e).map(|v| Arg::Attr(String::new(), v)).ok_or_else(|| semantic(format!("{f}(): arguments after the first must be constants"))),
            Expr::Binary(BinOp::Eq, k, v) => match (&**k, const_text(v)) {
                (Expr::Lit(Literal::Str(k)), Some(v)) => Ok(Arg::Attr(k.clone(), v)),
                _ => Err(semantic(format!("{f}(): an attribute is written 'key'='value'"))),
            },
            _ => Err(semantic(format!("{f}(): arguments after the first must be constants or 'key'='value' attributes"))),
        })
        .collect()
}

/// The value of attribute `key` (or the positional argument at `pos`).
fn attr(f: &str, args: &[Arg], key: &str, pos: usize) -> Result<Option<String>, Status> {
    for a in args {
        if let Arg::Attr(k, v) = a {
            if k.eq_ignore_ascii_case(key) {
                return Ok(Some(v.clone()));
            }
        }
    }
    match args.get(pos) {
        Some(Arg::Lit(l)) => Ok(text_of(l)),
        Some(Arg::Attr(k, v)) if k.is_empty() => Ok(Some(v.clone())),
        Some(Arg::Attr(k, _)) => Err(semantic(format!("{f}(): unknown attribute '{k}' (expected '{key}')"))),
        None => Ok(None),
    }
}

fn required(f: &str, args: &[Arg], key: &str, pos: usize) -> Result<String, Status> {
    attr(f, args, key, pos)?.ok_or_else(|| semantic(format!("{f}() needs '{key}' (as {f}(x, '{key}'='...'))")))
}

/// A LIKE pattern as an anchored regex: `%` any run, `_` one character, `\` escapes the next.
pub fn like_regex(p: &str) -> String {
    let mut out = String::from("(?s)^");
    let mut chars = p.chars();
    while let Some(c) = chars.next() {
        match c {
            '%' => out.push_str(".*"),
            '_' => out.push('.'),
            '\\' => {
                if let Some(n) = chars.next() {
                    out.push_str(&regex::escape(&n.to_string()));
                }
            }
            c => out.push_str(&regex::escape(&c.to_string())),
        }
    }
    out.push('$');
    out
}

impl Scalar {
    /// The function `name` with the arguments after its input, if it is a scalar function; the
    /// number of inputs it takes first (always 1).
    pub fn bind(name: &str, extra: &[Expr]) -> Option<Result<Scalar, Status>> {
        let up = name.to_ascii_uppercase();
        let f = up.as_str();
        let known = MATH.iter().any(|(n, _)| *n == f)
            || matches!(f, "ABS" | "ROUND" | "CAST" | "LENGTH" | "UPPER" | "LOWER" | "TRIM" | "STRING_CONTAINS" | "STARTSWITH" | "ENDSWITH" | "REPLACE" | "STRING_MATCHES" | LIKE | REGEXP);
        if !known {
            return None;
        }
        Some((|| {
            let args = args_of(f, extra)?;
            let no_more = |n: usize| if args.len() > n { Err(semantic(format!("{name}() takes {} argument{}", n + 1, if n == 0 { "" } else { "s" }))) } else { Ok(()) };
            // (regex's message spans lines, with a caret under the spot; its last line says what.)
            let regex = |p: &str| Regex::new(p).map_err(|e| semantic(format!("{name}: invalid regular expression '{p}': {}", e.to_string().lines().last().unwrap_or_default().trim_start_matches("error: "))));
            Ok(match f {
                "ABS" => {
                    no_more(0)?;
                    Scalar::Math(Math::Abs)
                }
                "ROUND" => {
                    no_more(1)?;
                    let places = attr(f, &args, "places", 0)?.unwrap_or_else(|| "0".into());
                    Scalar::Round(places.trim().parse().map_err(|_| semantic(format!("ROUND(): places must be an integer, not '{places}'")))?)
                }
                "CAST" => {
                    let t = required(f, &args, "type", 0)?;
                    let to = DataType::parse(&t).ok_or_else(|| semantic(format!("CAST: unknown data type '{t}'")))?;
                    // IoTDB 1.3 casts to these.
                    if !matches!(to, DataType::Int32 | DataType::Int64 | DataType::Float | DataType::Double | DataType::Boolean | DataType::Text | DataType::String) {
                        return Err(semantic(format!("CAST to {} is not supported (INT32, INT64, FLOAT, DOUBLE, BOOLEAN, TEXT or STRING)", to.name())));
                    }
                    Scalar::Cast(to)
                }
                "LENGTH" | "UPPER" | "LOWER" | "TRIM" => {
                    no_more(0)?;
                    match f {
                        "LENGTH" => Scalar::Length,
                        "UPPER" => Scalar::Upper,
                        "LOWER" => Scalar::Lower,
                        _ => Scalar::Trim,
                    }
                }
                "STRING_CONTAINS" => Scalar::Contains(required(f, &args, "s", 0)?),
                "STARTSWITH" => Scalar::StartsWith(required(f, &args, "target", 0)?),
                "ENDSWITH" => Scalar::EndsWith(required(f, &args, "target", 0)?),
                "REPLACE" => {
                    no_more(2)?;
                    Scalar::Replace(required(f, &args, "from", 0)?, required(f, &args, "to", 1)?)
                }
                "STRING_MATCHES" | REGEXP => Scalar::Matches(regex(&required(f, &args, "regex", 0)?)?),
                LIKE => Scalar::Matches(regex(&like_regex(&required(f, &args, "pattern", 0)?))?),
                _ => {
                    no_more(0)?;
                    Scalar::Math(Math::F(MATH.iter().find(|(n, _)| *n == f).unwrap().1))
                }
            })
        })())
    }

    /// The output type for an input of type `t`, or why the function does not take it.
    pub fn output_type(&self, name: &str, input: &str, t: DataType) -> Result<DataType, Status> {
        let text = matches!(t, DataType::Text | DataType::String);
        let ok = match self {
            Scalar::Math(_) | Scalar::Round(_) => t.is_numeric(),
            Scalar::Cast(to) => *to != DataType::Blob && t != DataType::Blob,
            _ => text,
        };
        if !ok {
            let wants = match self {
                Scalar::Math(_) | Scalar::Round(_) => "a number (INT32, INT64, FLOAT or DOUBLE)",
                Scalar::Cast(_) => "a value other than a BLOB",
                _ => "TEXT or STRING",
            };
            let name = if name == LIKE || name == REGEXP { name.to_string() } else { format!("{name}()") };
            return Err(semantic(format!("{name} takes {wants}, but {input} is {}", t.name())));
        }
        Ok(match self {
            Scalar::Math(Math::Abs) => t,
            Scalar::Math(_) | Scalar::Round(_) => DataType::Double,
            Scalar::Cast(to) => *to,
            Scalar::Length => DataType::Int32,
            Scalar::Upper | Scalar::Lower | Scalar::Trim | Scalar::Replace(..) => t,
            Scalar::Contains(_) | Scalar::StartsWith(_) | Scalar::EndsWith(_) | Scalar::Matches(_) => DataType::Boolean,
        })
    }

    /// The function's value for one input value (a null input gives null).
    pub fn apply(&self, v: Option<Value>) -> Result<Option<Value>, Status> {
        let Some(v) = v else { return Ok(None) };
        let num = |v: &Value| v.as_f64().ok_or_else(|| semantic(format!("expected a number, found {v:?}")));
        let text = |v: &Value| match v {
            Value::Bytes(b) => Ok(String::from_utf8_lossy(b).into_owned()),
            other => Err(semantic(format!("expected text, found {other:?}"))),
        };
        Ok(Some(match self {
            Scalar::Math(Math::Abs) => match v {
                Value::I32(x) => Value::I32(x.wrapping_abs()),
                Value::I64(x) => Value::I64(x.wrapping_abs()),
                Value::F32(x) => Value::F32(x.abs()),
                other => Value::F64(num(&other)?.abs()),
            },
            Scalar::Math(Math::F(f)) => Value::F64(f(num(&v)?)),
            Scalar::Round(places) => {
                let x = num(&v)?;
                // Half to even, as Java's Math.rint (IoTDB's ROUND): round(2.5) is 2.
                let k = 10f64.powi(*places);
                Value::F64((x * k).round_ties_even() / k)
            }
            Scalar::Cast(to) => return cast(v, *to).map(Some),
            Scalar::Length => Value::I32(text(&v)?.chars().count() as i32),
            Scalar::Upper => Value::Bytes(text(&v)?.to_uppercase().into_bytes()),
            Scalar::Lower => Value::Bytes(text(&v)?.to_lowercase().into_bytes()),
            Scalar::Trim => Value::Bytes(text(&v)?.trim().as_bytes().to_vec()),
            Scalar::Contains(s) => Value::Bool(text(&v)?.contains(s.as_str())),
            Scalar::StartsWith(s) => Value::Bool(text(&v)?.starts_with(s.as_str())),
            Scalar::EndsWith(s) => Value::Bool(text(&v)?.ends_with(s.as_str())),
            Scalar::Replace(a, b) => Value::Bytes(text(&v)?.replace(a.as_str(), b).into_bytes()),
            Scalar::Matches(r) => Value::Bool(r.is_match(&text(&v)?)),
        }))
    }
}

/// IoTDB's variation-trend functions: each row's value against the previous row's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrendKind {
    /// DIFF(x[, 'ignoreNull'='true']): x minus the previous value, as a DOUBLE.
    Diff,
    /// DIFFERENCE(x): x minus the previous value, in x's type.
    Difference,
    /// NON_NEGATIVE_DIFFERENCE(x): its absolute value.
    NonNegativeDifference,
    /// TIME_DIFFERENCE(x): the time since the previous value's (INT64).
    TimeDifference,
    /// DERIVATIVE(x): the difference over the time between them (DOUBLE).
    Derivative,
    /// NON_NEGATIVE_DERIVATIVE(x): its absolute value.
    NonNegativeDerivative,
}

/// A variation-trend function with what it remembers of the previous row. Rows must be shown to
/// it once each, in the result's order: queries using one are computed whole (not paged).
#[derive(Clone, Debug)]
pub struct Trend {
    /// Which function.
    pub kind: TrendKind,
    /// Whether a row where x is null is passed over (else the next row's value is null too).
    pub ignore_null: bool,
    /// (time, value) of the previous row's x, or None after a null row that is not passed over.
    prev: std::sync::Arc<std::sync::Mutex<Option<(i64, Value)>>>,
}

impl Trend {
    /// The function `name` (with its attributes), if it is one.
    pub fn bind(name: &str, extra: &[Expr]) -> Option<Result<Trend, Status>> {
        let kind = match name.to_ascii_uppercase().as_str() {
            "DIFF" => TrendKind::Diff,
            "DIFFERENCE" => TrendKind::Difference,
            "NON_NEGATIVE_DIFFERENCE" => TrendKind::NonNegativeDifference,
            "TIME_DIFFERENCE" => TrendKind::TimeDifference,
            "DERIVATIVE" => TrendKind::Derivative,
            "NON_NEGATIVE_DERIVATIVE" => TrendKind::NonNegativeDerivative,
            _ => return None,
        };
        Some((|| {
            let args = args_of(name, extra)?;
            let ignore_null = match attr(name, &args, "ignoreNull", 0)? {
                None => true,
                Some(v) if kind == TrendKind::Diff => match v.to_ascii_lowercase().as_str() {
                    "true" => true,
                    "false" => false,
                    _ => return Err(semantic(format!("{name}(): ignoreNull is true or false, not '{v}'"))),
                },
                Some(_) => return Err(semantic(format!("{name}() takes one argument"))),
            };
            Ok(Trend { kind, ignore_null, prev: Default::default() })
        })())
    }

    /// The same function with nothing remembered yet (each column keeps its own).
    pub fn fresh(&self) -> Trend {
        Trend { prev: Default::default(), ..self.clone() }
    }

    /// The output type for an input of type `t`, or why the function does not take it.
    pub fn output_type(&self, name: &str, input: &str, t: DataType) -> Result<DataType, Status> {
        if !t.is_numeric() {
            return Err(semantic(format!("{name}() takes a number (INT32, INT64, FLOAT or DOUBLE), but {input} is {}", t.name())));
        }
        Ok(match self.kind {
            TrendKind::Difference | TrendKind::NonNegativeDifference => t,
            TrendKind::TimeDifference => DataType::Int64,
            _ => DataType::Double,
        })
    }

    /// The function's value at the next row (time `t`, input `v`).
    pub fn next(&self, t: i64, v: Option<Value>) -> Option<Value> {
        let mut prev = self.prev.lock().unwrap_or_else(|p| p.into_inner());
        let Some(v) = v else {
            if !self.ignore_null {
                *prev = None;
            }
            return None;
        };
        let out = prev.as_ref().and_then(|(pt, pv)| {
            let dt = t.abs_diff(*pt) as f64;
            let d = v.as_f64()? - pv.as_f64()?;
            Some(match self.kind {
                TrendKind::Diff => Value::F64(d),
                TrendKind::TimeDifference => Value::I64(t - pt),
                TrendKind::Derivative => Value::F64(d / dt),
                TrendKind::NonNegativeDerivative => Value::F64((d / dt).abs()),
                TrendKind::Difference | TrendKind::NonNegativeDifference => {
                    let abs = self.kind == TrendKind::NonNegativeDifference;
                    match (&v, pv) {
                        (Value::I32(a), Value::I32(b)) => Value::I32(if abs { a.wrapping_sub(*b).wrapping_abs() } else { a.wrapping_sub(*b) }),
                        (Value::I64(a), Value::I64(b)) => Value::I64(if abs { a.wrapping_sub(*b).wrapping_abs() } else { a.wrapping_sub(*b) }),
                        (Value::F32(a), Value::F32(b)) => Value::F32(if abs { (a - b).abs() } else { a - b }),
                        _ => Value::F64(if abs { d.abs() } else { d }),
                    }
                }
            })
        });
        *prev = Some((t, v));
        out
    }
}

/// The names of the variation-trend functions (queries using them are computed whole).
pub fn is_trend(name: &str) -> bool {
    matches!(name.to_ascii_uppercase().as_str(), "DIFF" | "DIFFERENCE" | "NON_NEGATIVE_DIFFERENCE" | "TIME_DIFFERENCE" | "DERIVATIVE" | "NON_NEGATIVE_DERIVATIVE")
}

/// CAST as IoTDB does it: numbers convert (a fraction rounds to the nearest integer; out of range
/// is an error), booleans are 1 and 0, text parses.
fn cast(v: Value, to: DataType) -> Result<Value, Status> {
    let fail = |why: String| Status::new(StatusCode::SemanticError, format!("CAST to {}: {why}", to.name()));
    let int = |x: f64, lo: f64, hi: f64| -> Result<f64, Status> {
        // Half up, as Java's Math.round (IoTDB's CAST): -0.5 gives 0.
        let r = (x + 0.5).floor();
        if r.is_nan() || r < lo || r > hi {
            return Err(fail(format!("{x} is out of range")));
        }
        Ok(r)
    };
    Ok(match (v, to) {
        (Value::Bytes(b), DataType::Text | DataType::String) => Value::Bytes(b),
        (Value::Bytes(b), t) => {
            let s = String::from_utf8_lossy(&b).into_owned();
            match t {
                DataType::Boolean => match s.trim().to_ascii_lowercase().as_str() {
                    "true" => Value::Bool(true),
                    "false" => Value::Bool(false),
                    _ => return Err(fail(format!("'{s}' is not a boolean"))),
                },
                t => Value::parse_as(&s, t).map_err(fail)?,
            }
        }
        (Value::Bool(b), DataType::Boolean) => Value::Bool(b),
        (Value::Bool(b), DataType::Text | DataType::String) => Value::Bytes(b.to_string().into_bytes()),
        (Value::Bool(b), t) => return cast(Value::I32(b as i32), t),
        (v, DataType::Boolean) => Value::Bool(v.as_f64().is_some_and(|x| x != 0.0)),
        (v, DataType::Text | DataType::String) => Value::Bytes(
            match v {
                Value::F32(x) => java_float_string(x as f64, true),
                Value::F64(x) => java_float_string(x, false),
                other => other.render(DataType::Int64),
            }
            .into_bytes(),
        ),
        (Value::I32(x), DataType::Int32) => Value::I32(x),
        (Value::I64(x), DataType::Int64 | DataType::Timestamp) => Value::I64(x),
        (v, DataType::Int32 | DataType::Date) => Value::I32(int(v.as_f64().unwrap_or(f64::NAN), i32::MIN as f64, i32::MAX as f64)? as i32),
        (Value::I32(x), DataType::Int64 | DataType::Timestamp) => Value::I64(x as i64),
        (v, DataType::Int64 | DataType::Timestamp) => Value::I64(int(v.as_f64().unwrap_or(f64::NAN), i64::MIN as f64, i64::MAX as f64)? as i64),
        (v, DataType::Float) => {
            let x = v.as_f64().unwrap_or(f64::NAN);
            if x.is_finite() && x.abs() > f32::MAX as f64 {
                return Err(fail(format!("{x} is out of the range of FLOAT")));
            }
            Value::F32(x as f32)
        }
        (v, DataType::Double) => Value::F64(v.as_f64().unwrap_or(f64::NAN)),
        (_, DataType::Blob) => return Err(fail("a BLOB cannot be cast to".into())),
    })
}

/// A float as Java's `String.valueOf` writes it (IoTDB's CAST to TEXT): plain between 1e-3 and
/// 1e7, else `1.0E20`; always with a fractional part.
fn java_float_string(x: f64, single: bool) -> String {
    if !x.is_finite() {
        return duet_common::types::format_float(x, single);
    }
    let a = x.abs();
    if a == 0.0 || (1e-3..1e7).contains(&a) {
        return duet_common::types::format_float(x, single);
    }
    let s = if single { format!("{:e}", x as f32) } else { format!("{x:e}") };
    let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let mantissa = if mantissa.contains('.') { mantissa.to_string() } else { format!("{mantissa}.0") };
    format!("{mantissa}E{exp}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lit(s: &str) -> Expr {
        Expr::Lit(Literal::Str(s.into()))
    }

    #[test]
    fn functions_bind_with_positional_or_attribute_arguments_and_apply() {
        let f = |name: &str, extra: Vec<Expr>, v: Value| Scalar::bind(name, &extra).unwrap().unwrap().apply(Some(v)).unwrap().unwrap();
        assert_eq!(f("abs", vec![], Value::I32(-3)), Value::I32(3));
        assert_eq!(f("ROUND", vec![Expr::Lit(Literal::Int(2))], Value::F64(1.23456)), Value::F64(1.23));
        assert_eq!(f("round", vec![Expr::Binary(BinOp::Eq, Box::new(lit("places")), Box::new(Expr::Neg(Box::new(Expr::Lit(Literal::Int(1))))))], Value::F64(1234.0)), Value::F64(1230.0));
        assert_eq!(f("sqrt", vec![], Value::I64(16)), Value::F64(4.0));
        assert_eq!(f("cast", vec![lit("INT32")], Value::F64(2.5)), Value::I32(3));
        assert_eq!(f("cast", vec![lit("BOOLEAN")], Value::Bytes(b"TRUE".to_vec())), Value::Bool(true));
        assert_eq!(f("cast", vec![lit("TEXT")], Value::F64(2.0)), Value::Bytes(b"2.0".to_vec()));
        assert_eq!(f("cast", vec![lit("TEXT")], Value::F64(1e20)), Value::Bytes(b"1.0E20".to_vec()));
        assert_eq!(f("cast", vec![lit("TEXT")], Value::F64(-1.5e-5)), Value::Bytes(b"-1.5E-5".to_vec()));
        assert!(Scalar::bind("cast", &[lit("FLOAT")]).unwrap().unwrap().apply(Some(Value::F64(1e300))).is_err(), "out of FLOAT's range");
        assert!(Scalar::bind("cast", &[lit("DATE")]).unwrap().is_err());
        assert_eq!(f("round", vec![], Value::F64(2.5)), Value::F64(2.0), "half to even, as Math.rint");
        assert_eq!(f("round", vec![], Value::F64(-0.5)), Value::F64(-0.0));
        assert!(Scalar::bind("cast", &[lit("INT32")]).unwrap().unwrap().apply(Some(Value::F64(1e12))).is_err());
        let attr = |k: &str, v: &str| Expr::Binary(BinOp::Eq, Box::new(lit(k)), Box::new(lit(v)));
        assert_eq!(f("string_contains", vec![attr("s", "warn")], Value::Bytes(b"a warning".to_vec())), Value::Bool(true));
        assert_eq!(f("replace", vec![lit("a"), lit("o")], Value::Bytes(b"banana".to_vec())), Value::Bytes(b"bonono".to_vec()));
        assert_eq!(f("length", vec![], Value::Bytes("héllo".as_bytes().to_vec())), Value::I32(5));
        assert_eq!(f("trim", vec![], Value::Bytes(b"  a b  ".to_vec())), Value::Bytes(b"a b".to_vec()));
        assert_eq!(f(LIKE, vec![lit("w_rn%")], Value::Bytes(b"warning".to_vec())), Value::Bool(true));
        assert_eq!(f(LIKE, vec![lit("w_rn%")], Value::Bytes(b"a warning".to_vec())), Value::Bool(false));
        assert_eq!(f(LIKE, vec![lit("100\\%")], Value::Bytes(b"100%".to_vec())), Value::Bool(true));
        assert_eq!(f(REGEXP, vec![lit("^[a-z]+$")], Value::Bytes(b"abc".to_vec())), Value::Bool(true));
        assert!(Scalar::bind("regexp", &[lit("(")]).unwrap().is_err(), "a bad regex is refused when bound");
        assert!(Scalar::bind("sin", &[lit("x")]).unwrap().is_err(), "SIN takes one argument");
        assert!(Scalar::bind("nosuch", &[]).is_none());
        let sin = Scalar::bind("sin", &[]).unwrap().unwrap();
        assert!(sin.output_type("sin", "root.d.t", DataType::Text).is_err());
        assert_eq!(sin.output_type("sin", "root.d.s", DataType::Int32).unwrap(), DataType::Double);
    }
}
