//! The version column: the [`Version`] (HLC + origin) of every point, as runs.
//!
//! A flush holds few writes, each covering many points (a tablet, a batch of records), so the
//! column is stored as runs of equal versions: an origin dictionary (8 bytes per distinct origin),
//! then per run its length, HLC and origin index, each as an integer column. Pages from bulk
//! writes cost a few dozen bytes in total; one version per point costs what its HLC deltas cost
//! (near zero for a steady writer).

use crate::bits::{put_var, Input};
use crate::error::{Error, Result};
use crate::int::{pack_unsigned, read_i64, unpack_unsigned, write_i64};
use duet_common::version::{InstanceId, Version};

/// Encodes a version column; decode with [`decode_versions`] and the same count.
pub fn encode_versions(versions: &[Version]) -> Vec<u8> {
    let mut origins: Vec<InstanceId> = Vec::new();
    let mut lens: Vec<u64> = Vec::new();
    let mut hlcs: Vec<i64> = Vec::new();
    let mut idx: Vec<i64> = Vec::new();
    let mut prev: Option<Version> = None;
    for v in versions {
        if prev == Some(*v) {
            *lens.last_mut().unwrap() += 1;
            continue;
        }
        prev = Some(*v);
        let o = match origins.iter().position(|&o| o == v.origin) {
            Some(o) => o,
            None => {
                origins.push(v.origin);
                origins.len() - 1
            }
        };
        lens.push(0);
        hlcs.push(v.hlc as i64);
        idx.push(o as i64);
    }
    let mut out = Vec::new();
    put_var(&mut out, origins.len() as u64);
    for o in &origins {
        out.extend_from_slice(&o.0.to_le_bytes());
    }
    put_var(&mut out, lens.len() as u64);
    pack_unsigned(&lens, &mut out);
    write_i64(&hlcs, &mut out);
    if origins.len() > 1 {
        write_i64(&idx, &mut out);
    }
    out
}

/// Decodes `n` versions written by [`encode_versions`].
pub fn decode_versions(buf: &[u8], n: usize) -> Result<Vec<Version>> {
    let mut input = Input::new(buf);
    let o = input.count(n, "origin count")?;
    let origins = (0..o).map(|_| input.u64().map(InstanceId)).collect::<Result<Vec<_>>>()?;
    let runs = input.count(n, "version run count")?;
    if (runs == 0) != (n == 0) || (o == 0) != (n == 0) {
        return Err(Error::decode("version runs do not match the point count"));
    }
    let lens = unpack_unsigned(&mut input, runs)?;
    let hlcs = read_i64(&mut input, runs)?;
    let idx = if o > 1 { read_i64(&mut input, runs)? } else { vec![0; runs] };
    input.finish("a version column")?;
    let mut out = Vec::with_capacity(n);
    for ((l, h), i) in lens.into_iter().zip(hlcs).zip(idx) {
        let origin = usize::try_from(i).ok().and_then(|i| origins.get(i).copied());
        let origin = origin.ok_or_else(|| Error::decode(format!("origin index {i} out of {o}")))?;
        let len = l.checked_add(1).filter(|&l| l <= (n - out.len()) as u64);
        let len = len.ok_or_else(|| Error::decode("version runs are longer than the column"))?;
        out.extend(std::iter::repeat(Version { hlc: h as u64, origin }).take(len as usize));
    }
    if out.len() != n {
        return Err(Error::decode("version runs are shorter than the column"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn v(hlc: u64, o: u64) -> Version {
        Version { hlc, origin: InstanceId(o) }
    }

    #[test]
    fn sizes_of_typical_pages() {
        let one: Vec<Version> = vec![v(1_700_000_000_000 << 16, 0xdead_beef_cafe_f00d); 10_000];
        let enc = encode_versions(&one);
        assert_eq!(decode_versions(&enc, one.len()).unwrap(), one);
        assert!(enc.len() <= 26, "{}", enc.len());
        assert_eq!(decode_versions(&encode_versions(&[]), 0).unwrap(), vec![]);
        let extremes = vec![v(u64::MAX, u64::MAX), v(0, 0), v(u64::MAX, 0), v(1 << 63, u64::MAX)];
        assert_eq!(decode_versions(&encode_versions(&extremes), 4).unwrap(), extremes);
    }

    proptest! {
        #[test]
        fn random_round_trip(runs in prop::collection::vec((any::<u64>(), 0u64..4, 1usize..50), 0..60)) {
            let vs: Vec<Version> = runs.into_iter().flat_map(|(h, o, n)| std::iter::repeat(v(h, o * 0x1234_5678_9abc)).take(n)).collect();
            let enc = encode_versions(&vs);
            prop_assert_eq!(decode_versions(&enc, vs.len()).unwrap(), vs);
        }
    }
}
