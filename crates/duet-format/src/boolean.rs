//! BOOLEAN columns: one bit per value, or run lengths when the column changes rarely.

use crate::bits::{BitReader, BitWriter, Input};
use crate::error::{Error, Result};
use crate::int::{pack_unsigned, unpack_unsigned};

const BITS: u8 = 0;
const RUNS: u8 = 1;

/// Encodes a BOOLEAN column; decode with [`decode_bool`] and the same count.
pub fn encode_bool(values: &[bool]) -> Vec<u8> {
    let mut bits = BitWriter::new(vec![BITS]);
    for &b in values {
        bits.write(b as u64, 1);
    }
    let bits = bits.finish();
    let Some(&first) = values.first() else { return bits };
    let mut lens: Vec<u64> = vec![0];
    for w in values.windows(2) {
        if w[0] == w[1] {
            *lens.last_mut().unwrap() += 1;
        } else {
            lens.push(0);
        }
    }
    // Runs only pay off when they are long; skip building them for chatty columns.
    if lens.len() * 4 > values.len() {
        return bits;
    }
    let mut runs = vec![RUNS, first as u8];
    crate::bits::put_var(&mut runs, lens.len() as u64);
    pack_unsigned(&lens, &mut runs);
    if runs.len() < bits.len() {
        runs
    } else {
        bits
    }
}

/// Decodes `n` values written by [`encode_bool`].
pub fn decode_bool(buf: &[u8], n: usize) -> Result<Vec<bool>> {
    let mut input = Input::new(buf);
    match input.u8()? {
        BITS => {
            let mut r = BitReader::new(input.rest());
            let out = (0..n).map(|_| r.read(1).map(|b| b == 1)).collect::<Result<Vec<bool>>>()?;
            r.finish()?;
            Ok(out)
        }
        RUNS => {
            let mut cur = match input.u8()? {
                0 => false,
                1 => true,
                b => return Err(Error::decode(format!("boolean byte {b}"))),
            };
            let runs = input.count(n, "run count")?;
            let lens = unpack_unsigned(&mut input, runs)?;
            input.finish("a boolean column")?;
            let mut out = Vec::with_capacity(n);
            for l in lens {
                let len = l.checked_add(1).filter(|&l| l <= (n - out.len()) as u64);
                let len = len.ok_or_else(|| Error::decode("boolean runs are longer than the column"))?;
                out.extend(std::iter::repeat_n(cur, len as usize));
                cur = !cur;
            }
            if out.len() != n {
                return Err(Error::decode("boolean runs are shorter than the column"));
            }
            Ok(out)
        }
        m => Err(Error::decode(format!("unknown boolean column mode {m}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn edge_cases_and_sizes() {
        for v in [vec![], vec![true], vec![false], vec![true; 1000], vec![false; 70_000]] {
            let enc = encode_bool(&v);
            assert_eq!(decode_bool(&enc, v.len()).unwrap(), v);
            assert!(enc.len() <= 10, "{} bytes", enc.len());
        }
        let alt: Vec<bool> = (0..1000).map(|i| i % 3 == 0).collect();
        let enc = encode_bool(&alt);
        assert_eq!(enc.len(), 1 + 125);
        assert!(decode_bool(&enc, 1001).is_err());
        assert!(decode_bool(&enc, 999).is_err());
    }

    proptest! {
        #[test]
        fn random_round_trip(v in prop::collection::vec(any::<bool>(), 0..2000)) {
            prop_assert_eq!(decode_bool(&encode_bool(&v), v.len()).unwrap(), v);
        }
        #[test]
        fn runs_round_trip(runs in prop::collection::vec(1usize..300, 0..30), first in any::<bool>()) {
            let mut cur = first;
            let v: Vec<bool> = runs.into_iter().flat_map(|n| { cur = !cur; std::iter::repeat_n(cur, n) }).collect();
            prop_assert_eq!(decode_bool(&encode_bool(&v), v.len()).unwrap(), v);
        }
    }
}
