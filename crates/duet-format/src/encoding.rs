//! How the encodings IoTDB users name at CREATE TIMESERIES map onto the codecs we implement.

use duet_common::types::Encoding;
use duet_common::DataType;

/// The codec family used for a column; each tries its modes per page and keeps the smallest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Codec {
    /// [`crate::boolean`]: bit-packing or runs.
    Boolean,
    /// [`crate::int`]: delta / frame-of-reference with bit-packing or mixed-radix packing, or RLE.
    Integer,
    /// [`crate::float`]: decimal-scale detection onto the integer codec, or Gorilla-style XOR, or plain.
    Float,
    /// [`crate::binary`]: plain or dictionary, then LZ4 when it helps.
    Binary,
}

/// The codec we use for a series of type `dtype` whose schema asked for `requested`.
///
/// Every IoTDB encoding is an instance of, or is dominated by, a mode our adaptive codec already
/// tries on every page, so the request never makes things worse and never changes the bytes:
///
/// | requested | what it becomes |
/// |---|---|
/// | PLAIN | the type's codec; its plain mode is the upper bound it never exceeds |
/// | TS_2DIFF, DIFF, ZIGZAG, SPRINTZ, REGULAR | integer DELTA mode (zig-zag min-referenced deltas, packed) |
/// | RLE, RLBE, BITMAP | integer/boolean run modes |
/// | GORILLA, GORILLA_V1, CHIMP | float XOR mode, after decimal detection is tried first |
/// | DICTIONARY | binary dictionary mode (also chosen automatically for few distinct values) |
///
/// Combinations IoTDB rejects at CREATE TIMESERIES (e.g. GORILLA for TEXT) are the schema's job to
/// refuse; here the data type alone decides.
pub fn effective_encoding(dtype: DataType, requested: Encoding) -> Codec {
    let _ = requested;
    match dtype {
        DataType::Boolean => Codec::Boolean,
        DataType::Int32 | DataType::Int64 | DataType::Date | DataType::Timestamp => Codec::Integer,
        DataType::Float | DataType::Double => Codec::Float,
        DataType::Text | DataType::String | DataType::Blob => Codec::Binary,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use duet_common::types::ALL_TYPES;

    #[test]
    fn every_type_and_encoding_maps() {
        for t in ALL_TYPES {
            for code in 0..16 {
                if let Some(e) = Encoding::from_code(code) {
                    let c = effective_encoding(t, e);
                    assert_eq!(c, effective_encoding(t, t.default_encoding()));
                }
            }
        }
        assert_eq!(effective_encoding(DataType::Double, Encoding::Gorilla), Codec::Float);
        assert_eq!(effective_encoding(DataType::Text, Encoding::Dictionary), Codec::Binary);
    }
}
