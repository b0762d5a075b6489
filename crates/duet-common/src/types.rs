//! Data types, encodings, compressors and values, with IoTDB's names and numeric codes.

use std::cmp::Ordering;
use std::fmt;

/// An IoTDB data type. The discriminant is the `TSDataType` code clients send.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum DataType {
    /// true/false.
    Boolean = 0,
    /// 32-bit signed integer.
    Int32 = 1,
    /// 64-bit signed integer.
    Int64 = 2,
    /// 32-bit IEEE float.
    Float = 3,
    /// 64-bit IEEE float.
    Double = 4,
    /// UTF-8 text.
    Text = 5,
    /// A timestamp in the instance's precision, stored as INT64.
    Timestamp = 8,
    /// A calendar date stored as the integer yyyymmdd.
    Date = 9,
    /// Raw bytes.
    Blob = 10,
    /// UTF-8 string (like TEXT, but a distinct type in IoTDB).
    String = 11,
}

/// Every data type, in code order.
pub const ALL_TYPES: [DataType; 10] = [
    DataType::Boolean,
    DataType::Int32,
    DataType::Int64,
    DataType::Float,
    DataType::Double,
    DataType::Text,
    DataType::Timestamp,
    DataType::Date,
    DataType::Blob,
    DataType::String,
];

impl DataType {
    /// The type for an IoTDB `TSDataType` code.
    pub fn from_code(code: i32) -> Option<DataType> {
        ALL_TYPES.iter().copied().find(|t| *t as i32 == code)
    }
    /// The IoTDB `TSDataType` code.
    pub fn code(self) -> u8 {
        self as u8
    }
    /// The upper-case IoTDB name (e.g. `DOUBLE`).
    pub fn name(self) -> &'static str {
        match self {
            DataType::Boolean => "BOOLEAN",
            DataType::Int32 => "INT32",
            DataType::Int64 => "INT64",
            DataType::Float => "FLOAT",
            DataType::Double => "DOUBLE",
            DataType::Text => "TEXT",
            DataType::Timestamp => "TIMESTAMP",
            DataType::Date => "DATE",
            DataType::Blob => "BLOB",
            DataType::String => "STRING",
        }
    }
    /// Parses a type name, case-insensitively (also IoTDB's aliases INT, LONG, BOOL...).
    pub fn parse(name: &str) -> Option<DataType> {
        Some(match name.to_ascii_uppercase().as_str() {
            "BOOLEAN" | "BOOL" => DataType::Boolean,
            "INT32" | "INT" | "INTEGER" => DataType::Int32,
            "INT64" | "LONG" | "BIGINT" => DataType::Int64,
            "FLOAT" => DataType::Float,
            "DOUBLE" => DataType::Double,
            "TEXT" => DataType::Text,
            "TIMESTAMP" => DataType::Timestamp,
            "DATE" => DataType::Date,
            "BLOB" => DataType::Blob,
            "STRING" => DataType::String,
            _ => return None,
        })
    }
    /// Whether values of this type are numbers (usable in SUM/AVG and arithmetic).
    pub fn is_numeric(self) -> bool {
        matches!(self, DataType::Int32 | DataType::Int64 | DataType::Float | DataType::Double)
    }
    /// Whether values of this type are byte strings.
    pub fn is_binary(self) -> bool {
        matches!(self, DataType::Text | DataType::String | DataType::Blob)
    }
    /// IoTDB's default encoding for the type.
    pub fn default_encoding(self) -> Encoding {
        match self {
            DataType::Boolean => Encoding::Rle,
            DataType::Int32 | DataType::Int64 | DataType::Timestamp | DataType::Date => Encoding::Ts2Diff,
            DataType::Float | DataType::Double => Encoding::Gorilla,
            DataType::Text | DataType::String | DataType::Blob => Encoding::Plain,
        }
    }
}

impl fmt::Display for DataType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

macro_rules! coded_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $var:ident = $code:expr, $text:expr;)* }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum $name { $($(#[$vm])* $var = $code,)* }
        impl $name {
            /// The variant for an IoTDB numeric code.
            pub fn from_code(code: i32) -> Option<Self> {
                match code { $($code => Some($name::$var),)* _ => None }
            }
            /// The IoTDB numeric code.
            pub fn code(self) -> u8 { self as u8 }
            /// The upper-case IoTDB name.
            pub fn name(self) -> &'static str {
                match self { $($name::$var => $text,)* }
            }
            /// Parses an IoTDB name, case-insensitively.
            pub fn parse(s: &str) -> Option<Self> {
                let up = s.to_ascii_uppercase();
                match up.as_str() { $($text => Some($name::$var),)* _ => None }
            }
        }
    };
}

coded_enum!(
    /// A column encoding named in CREATE TIMESERIES (IoTDB `TSEncoding`).
    Encoding {
        /// No encoding.
        Plain = 0, "PLAIN";
        /// Dictionary encoding.
        Dictionary = 1, "DICTIONARY";
        /// Run-length encoding.
        Rle = 2, "RLE";
        /// Delta encoding.
        Diff = 3, "DIFF";
        /// Second-order delta encoding.
        Ts2Diff = 4, "TS_2DIFF";
        /// Bitmap encoding.
        Bitmap = 5, "BITMAP";
        /// Gorilla (v1).
        GorillaV1 = 6, "GORILLA_V1";
        /// Regular-interval encoding.
        Regular = 7, "REGULAR";
        /// Gorilla XOR encoding.
        Gorilla = 8, "GORILLA";
        /// Zig-zag encoding.
        Zigzag = 9, "ZIGZAG";
        /// Chimp encoding.
        Chimp = 11, "CHIMP";
        /// Sprintz encoding.
        Sprintz = 12, "SPRINTZ";
        /// RLBE encoding.
        Rlbe = 13, "RLBE";
    }
);

impl Encoding {
    /// Whether IoTDB 1.3 accepts this encoding for a series of type `t` (the older encodings it
    /// no longer offers, DIFF, BITMAP, GORILLA_V1 and REGULAR, for none).
    pub fn supports(self, t: DataType) -> bool {
        use Encoding::*;
        match t {
            DataType::Boolean => matches!(self, Plain | Rle),
            DataType::Int32 | DataType::Int64 | DataType::Date | DataType::Timestamp => matches!(self, Plain | Rle | Ts2Diff | Gorilla | Zigzag | Chimp | Sprintz | Rlbe),
            DataType::Float | DataType::Double => matches!(self, Plain | Rle | Ts2Diff | Gorilla | Chimp | Sprintz | Rlbe),
            DataType::Text | DataType::String => matches!(self, Plain | Dictionary),
            DataType::Blob => self == Plain,
        }
    }
}

coded_enum!(
    /// A block compressor named in CREATE TIMESERIES (IoTDB `CompressionType`).
    Compressor {
        /// No compression.
        Uncompressed = 0, "UNCOMPRESSED";
        /// Snappy.
        Snappy = 1, "SNAPPY";
        /// Gzip.
        Gzip = 2, "GZIP";
        /// LZO.
        Lzo = 3, "LZO";
        /// SDT.
        Sdt = 4, "SDT";
        /// PAA.
        Paa = 5, "PAA";
        /// PLA.
        Pla = 6, "PLA";
        /// LZ4.
        Lz4 = 7, "LZ4";
        /// Zstandard.
        Zstd = 8, "ZSTD";
        /// LZMA2.
        Lzma2 = 9, "LZMA2";
    }
);

/// One non-null value. DATE is held as the integer yyyymmdd and TIMESTAMP as an INT64.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// BOOLEAN.
    Bool(bool),
    /// INT32 or DATE.
    I32(i32),
    /// INT64 or TIMESTAMP.
    I64(i64),
    /// FLOAT.
    F32(f32),
    /// DOUBLE.
    F64(f64),
    /// TEXT, STRING or BLOB.
    Bytes(Vec<u8>),
}

impl Value {
    /// Whether this value can be stored in a series of type `t`.
    pub fn fits(&self, t: DataType) -> bool {
        matches!(
            (self, t),
            (Value::Bool(_), DataType::Boolean)
                | (Value::I32(_), DataType::Int32 | DataType::Date)
                | (Value::I64(_), DataType::Int64 | DataType::Timestamp)
                | (Value::F32(_), DataType::Float)
                | (Value::F64(_), DataType::Double)
                | (Value::Bytes(_), DataType::Text | DataType::String | DataType::Blob)
        )
    }
    /// The value as an f64 when it is numeric.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::I32(v) => Some(*v as f64),
            Value::I64(v) => Some(*v as f64),
            Value::F32(v) => Some(*v as f64),
            Value::F64(v) => Some(*v),
            _ => None,
        }
    }
    /// A total order used by comparisons in WHERE clauses (numbers compare numerically).
    pub fn compare(&self, other: &Value) -> Option<Ordering> {
        match (self, other) {
            (Value::Bool(a), Value::Bool(b)) => Some(a.cmp(b)),
            (Value::Bytes(a), Value::Bytes(b)) => Some(a.cmp(b)),
            (Value::I64(a), Value::I64(b)) => Some(a.cmp(b)),
            (Value::I32(a), Value::I32(b)) => Some(a.cmp(b)),
            _ => self.as_f64()?.partial_cmp(&other.as_f64()?),
        }
    }
    /// Renders the value for display in type `t` (dates as yyyy-mm-dd, text as UTF-8).
    pub fn render(&self, t: DataType) -> String {
        match self {
            Value::Bool(b) => b.to_string(),
            Value::I32(v) if t == DataType::Date => crate::time::format_date_int(*v),
            Value::I32(v) => v.to_string(),
            Value::I64(v) => v.to_string(),
            Value::F32(v) => format_float(*v as f64, true),
            Value::F64(v) => format_float(*v, false),
            Value::Bytes(b) if t == DataType::Blob => {
                let mut s = String::from("0x");
                for x in b {
                    s.push_str(&format!("{x:02x}"));
                }
                s
            }
            Value::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
        }
    }
}

/// Formats a float the way IoTDB's CLI does (integral values keep one decimal).
pub fn format_float(v: f64, single: bool) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "Infinity".into() } else { "-Infinity".into() };
    }
    let s = if single { format!("{}", v as f32) } else { format!("{v}") };
    if s.contains('.') || s.contains('e') || s.contains("inf") {
        s
    } else {
        format!("{s}.0")
    }
}

/// The type IoTDB infers for an unquoted or quoted literal when a series is auto-created
/// (`boolean_string_infer_type=BOOLEAN`, `integer_string_infer_type=DOUBLE`,
/// `floating_string_infer_type=DOUBLE`, quoted text is TEXT).
pub fn infer_type(text: &str, quoted: bool) -> DataType {
    if quoted {
        return DataType::Text;
    }
    let t = text.trim();
    if t.eq_ignore_ascii_case("true") || t.eq_ignore_ascii_case("false") {
        return DataType::Boolean;
    }
    if t.parse::<f64>().is_ok() || t.eq_ignore_ascii_case("nan") {
        return DataType::Double;
    }
    DataType::Text
}

impl Value {
    /// Converts a literal to a value of type `t`, with a message naming the problem when it cannot.
    pub fn parse_as(text: &str, t: DataType) -> Result<Value, String> {
        let s = text.trim();
        let bad = || format!("'{text}' is not a valid {} value", t.name());
        Ok(match t {
            DataType::Boolean => match s.to_ascii_lowercase().as_str() {
                "true" | "1" => Value::Bool(true),
                "false" | "0" => Value::Bool(false),
                _ => return Err(bad()),
            },
            DataType::Int32 => Value::I32(s.parse().map_err(|_| bad())?),
            DataType::Int64 | DataType::Timestamp => Value::I64(s.parse().map_err(|_| bad())?),
            DataType::Float => Value::F32(s.parse().map_err(|_| bad())?),
            DataType::Double => Value::F64(s.parse().map_err(|_| bad())?),
            DataType::Date => Value::I32(crate::time::parse_date_int(s).ok_or_else(bad)?),
            DataType::Text | DataType::String => Value::Bytes(text.as_bytes().to_vec()),
            DataType::Blob => {
                let hex = s.strip_prefix("X'").or_else(|| s.strip_prefix("x'")).and_then(|h| h.strip_suffix('\''));
                let hex = hex.or_else(|| s.strip_prefix("0x")).or_else(|| s.strip_prefix("0X")).ok_or_else(bad)?;
                if hex.len() % 2 != 0 {
                    return Err(bad());
                }
                let mut out = Vec::with_capacity(hex.len() / 2);
                for i in (0..hex.len()).step_by(2) {
                    out.push(u8::from_str_radix(&hex[i..i + 2], 16).map_err(|_| bad())?);
                }
                Value::Bytes(out)
            }
        })
    }
}
