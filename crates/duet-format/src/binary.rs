//! TEXT, STRING and BLOB columns.
//!
//! Values are written either plainly (lengths as an integer column, then the bytes) or, when few
//! distinct values repeat, as a dictionary plus an index column. The result is then LZ4-compressed
//! when that makes it smaller, which catches repetition inside values (JSON, log lines).

use crate::bits::{put_var, Input};
use crate::error::{Error, Result};
use crate::int::{read_i64, write_i64};
use std::collections::HashMap;

const DICTIONARY: u8 = 1;
const LZ4: u8 = 2;

/// Upper bound on what one LZ4 block may expand to, so corrupt sizes cannot force huge allocations.
const MAX_LZ4_RATIO: usize = 255;

/// Encodes a TEXT/STRING/BLOB column; decode with [`decode_bytes`] and the same count.
pub fn encode_bytes(values: &[Vec<u8>]) -> Vec<u8> {
    let mut index: HashMap<&[u8], i64> = HashMap::new();
    let mut dict: Vec<&[u8]> = Vec::new();
    let ids: Vec<i64> = values
        .iter()
        .map(|v| {
            *index.entry(v.as_slice()).or_insert_with(|| {
                dict.push(v);
                dict.len() as i64 - 1
            })
        })
        .collect();
    let mut flags = 0;
    let mut body = Vec::new();
    if dict.len() * 2 <= values.len() {
        flags |= DICTIONARY;
        put_var(&mut body, dict.len() as u64);
        put_plain(&dict, &mut body);
        write_i64(&ids, &mut body);
    } else {
        put_plain(values, &mut body);
    }
    let mut out = vec![flags];
    let packed = lz4_flex::block::compress(&body);
    if packed.len() + 10 < body.len() {
        out[0] |= LZ4;
        put_var(&mut out, body.len() as u64);
        out.extend_from_slice(&packed);
    } else {
        out.extend_from_slice(&body);
    }
    out
}

fn put_plain<T: AsRef<[u8]>>(values: &[T], out: &mut Vec<u8>) {
    let lens: Vec<i64> = values.iter().map(|v| v.as_ref().len() as i64).collect();
    write_i64(&lens, out);
    for v in values {
        out.extend_from_slice(v.as_ref());
    }
}

fn get_plain(input: &mut Input, n: usize) -> Result<Vec<Vec<u8>>> {
    let lens = read_i64(input, n)?;
    lens.into_iter()
        .map(|l| {
            let l = usize::try_from(l).map_err(|_| Error::decode(format!("negative length {l}")))?;
            Ok(input.take(l)?.to_vec())
        })
        .collect()
}

/// Decodes `n` values written by [`encode_bytes`].
pub fn decode_bytes(buf: &[u8], n: usize) -> Result<Vec<Vec<u8>>> {
    let mut input = Input::new(buf);
    let flags = input.u8()?;
    if flags & !(DICTIONARY | LZ4) != 0 {
        return Err(Error::decode(format!("unknown binary column flags {flags:#x}")));
    }
    let unpacked;
    let mut body = if flags & LZ4 != 0 {
        let raw_len = input.count(input.remaining().saturating_mul(MAX_LZ4_RATIO), "uncompressed length")?;
        unpacked = lz4_flex::block::decompress(input.rest(), raw_len).map_err(|e| Error::decode(format!("lz4: {e}")))?;
        if unpacked.len() != raw_len {
            return Err(Error::decode("lz4 block has the wrong uncompressed length"));
        }
        Input::new(&unpacked)
    } else {
        Input::new(input.rest())
    };
    let out = if flags & DICTIONARY != 0 {
        let d = body.count(n, "dictionary size")?;
        let dict = get_plain(&mut body, d)?;
        let ids = read_i64(&mut body, n)?;
        ids.into_iter()
            .map(|i| {
                usize::try_from(i)
                    .ok()
                    .and_then(|i| dict.get(i).cloned())
                    .ok_or_else(|| Error::decode(format!("dictionary index {i} out of {d}")))
            })
            .collect::<Result<Vec<_>>>()?
    } else {
        get_plain(&mut body, n)?
    };
    body.finish("a binary column")?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rt(v: &[Vec<u8>]) -> Vec<u8> {
        let enc = encode_bytes(v);
        assert_eq!(decode_bytes(&enc, v.len()).unwrap(), v);
        enc
    }

    #[test]
    fn edge_cases_and_modes() {
        rt(&[]);
        rt(&[vec![]]);
        rt(&[vec![0xff; 3]]);
        let states: Vec<Vec<u8>> = (0..1000).map(|i| ["on", "off", "standby"][i % 3].as_bytes().to_vec()).collect();
        let enc = rt(&states);
        assert!(enc[0] & DICTIONARY != 0 && enc.len() < 250, "{} bytes", enc.len());
        let logs: Vec<Vec<u8>> = (0..500).map(|i| format!("{{\"level\":\"info\",\"request\":{i},\"path\":\"/api/v1/items\"}}").into_bytes()).collect();
        let enc = rt(&logs);
        assert!(enc[0] & LZ4 != 0, "json lines should compress");
    }

    #[test]
    fn corrupt_input_is_an_error_not_a_panic() {
        let logs: Vec<Vec<u8>> = (0..200).map(|i| format!("line {} of {}", i % 7, i % 3).into_bytes()).collect();
        let enc = encode_bytes(&logs);
        for i in 0..enc.len() {
            let mut bad = enc.clone();
            bad[i] ^= 0x3c;
            let _ = decode_bytes(&bad, logs.len());
            let _ = decode_bytes(&enc[..i], logs.len());
        }
    }

    proptest! {
        #[test]
        fn random_round_trip(v in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..40), 0..200)) {
            rt(&v);
        }
        #[test]
        fn few_distinct_round_trip(v in prop::collection::vec(prop::sample::select(vec![b"a".to_vec(), vec![], b"hello world".to_vec(), vec![0u8; 100]]), 0..500)) {
            rt(&v);
        }
    }
}
