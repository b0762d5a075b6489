//! The version column: the [`Version`] (HLC + origin) of every point, as runs.
//!
//! A flush holds few writes, each covering many points (a tablet, a batch of records), so the
//! column is stored as runs of equal versions: per run its length, its HLC relative to a base the
//! caller knows (the page's oldest version, kept in its statistics) and its origin as an index into
//! a table the caller keeps once per file. Pages from bulk writes cost about ten bytes in total;
//! one version per point costs what its HLC deltas cost (near zero for a steady writer).

use crate::bits::Input;
use crate::error::{Error, Result};
use crate::int::{pack_unsigned, read_i64, unpack_unsigned, write_i64};
use duet_common::version::{InstanceId, Version, HLC_LOGICAL_BITS};

const LOGICAL_MASK: u64 = (1 << HLC_LOGICAL_BITS) - 1;

/// The index of `o` in `origins`, appending it when new.
pub fn origin_index(origins: &mut Vec<InstanceId>, o: InstanceId) -> u64 {
    match origins.iter().position(|&x| x == o) {
        Some(i) => i as u64,
        None => {
            origins.push(o);
            origins.len() as u64 - 1
        }
    }
}

/// Encodes a version column with HLCs relative to `base_hlc`, registering origins in `origins`;
/// decode with [`decode_versions`], the same count, base and table.
pub fn encode_versions(versions: &[Version], base_hlc: u64, origins: &mut Vec<InstanceId>) -> Vec<u8> {
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
        lens.push(0);
        hlcs.push(v.hlc as i64);
        idx.push(origin_index(origins, v.origin) as i64);
    }
    let mut out = Vec::new();
    crate::bits::put_var(&mut out, lens.len() as u64);
    pack_unsigned(&lens, &mut out);
    // Milliseconds and the logical counter vary independently (jittered ms, mostly-zero counter);
    // packing them as one number would make the counter's 16 bits pay for the jitter's range.
    // Only the millisecond part is relative to the base: subtracting whole HLCs would borrow across
    // the counter's bits and scramble them.
    let base_ms = base_hlc >> HLC_LOGICAL_BITS;
    let ms: Vec<i64> = hlcs.iter().map(|&h| ((h as u64) >> HLC_LOGICAL_BITS).wrapping_sub(base_ms) as i64).collect();
    let logical: Vec<i64> = hlcs.iter().map(|&h| (h as u64 & LOGICAL_MASK) as i64).collect();
    write_i64(&ms, &mut out);
    write_i64(&logical, &mut out);
    write_i64(&idx, &mut out);
    out
}

/// Decodes `n` versions written by [`encode_versions`].
pub fn decode_versions(buf: &[u8], n: usize, base_hlc: u64, origins: &[InstanceId]) -> Result<Vec<Version>> {
    let mut input = Input::new(buf);
    let runs = input.count(n, "version run count")?;
    if (runs == 0) != (n == 0) {
        return Err(Error::decode("version runs do not match the point count"));
    }
    let lens = unpack_unsigned(&mut input, runs)?;
    let ms = read_i64(&mut input, runs)?;
    let logical = read_i64(&mut input, runs)?;
    let base_ms = base_hlc >> HLC_LOGICAL_BITS;
    let hlcs = ms.into_iter().zip(logical).map(|(m, l)| (base_ms.wrapping_add(m as u64) << HLC_LOGICAL_BITS) | (l as u64 & LOGICAL_MASK));
    let idx = read_i64(&mut input, runs)?;
    input.finish("a version column")?;
    let mut out = Vec::with_capacity(n);
    for ((l, h), i) in lens.into_iter().zip(hlcs).zip(idx) {
        let origin = usize::try_from(i).ok().and_then(|i| origins.get(i).copied());
        let origin = origin.ok_or_else(|| Error::decode(format!("origin index {i} out of {}", origins.len())))?;
        let len = l.checked_add(1).filter(|&l| l <= (n - out.len()) as u64);
        let len = len.ok_or_else(|| Error::decode("version runs are longer than the column"))?;
        out.extend(std::iter::repeat_n(Version { hlc: h, origin }, len as usize));
    }
    if out.len() != n {
        return Err(Error::decode("version runs are shorter than the column"));
    }
    Ok(out)
}

/// Rewrites a version column written by [`encode_versions`] against another file's origin table:
/// `map[i]` is the new index of the origin at index `i` of the old table. Only the origin indexes
/// change (a page copied by a compaction keeps its other bytes); None when the column needs no
/// change, because every index it uses maps to itself.
pub fn remap_origins(buf: &[u8], n: usize, map: &[u64]) -> Result<Option<Vec<u8>>> {
    let mut input = Input::new(buf);
    let runs = input.count(n, "version run count")?;
    unpack_unsigned(&mut input, runs)?;
    read_i64(&mut input, runs)?;
    read_i64(&mut input, runs)?;
    let kept = input.pos();
    let idx = read_i64(&mut input, runs)?;
    input.finish("a version column")?;
    let mut changed = false;
    let mut fresh = Vec::with_capacity(idx.len());
    for i in idx {
        let to = usize::try_from(i).ok().and_then(|i| map.get(i).copied());
        let to = to.ok_or_else(|| Error::decode(format!("origin index {i} out of {}", map.len())))?;
        changed |= to != i as u64;
        fresh.push(to as i64);
    }
    if !changed {
        return Ok(None);
    }
    let mut out = buf[..kept].to_vec();
    write_i64(&fresh, &mut out);
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn v(hlc: u64, o: u64) -> Version {
        Version { hlc, origin: InstanceId(o) }
    }

    fn rt(vs: &[Version], base: u64) -> usize {
        let mut origins = vec![InstanceId(99)];
        let enc = encode_versions(vs, base, &mut origins);
        assert_eq!(decode_versions(&enc, vs.len(), base, &origins).unwrap(), vs);
        enc.len()
    }

    #[test]
    fn sizes_of_typical_pages() {
        let hlc = 1_700_000_000_000 << 16;
        let one: Vec<Version> = vec![v(hlc, 0xdead_beef_cafe_f00d); 10_000];
        assert!(rt(&one, hlc) <= 14, "{}", rt(&one, hlc));
        let tablets: Vec<Version> = (0..10_000).map(|i| v(hlc + (i / 1000) * (1000 << 16), 7)).collect();
        assert!(rt(&tablets, hlc) <= 30, "{}", rt(&tablets, hlc));
        rt(&[], 0);
        let extremes = vec![v(u64::MAX, u64::MAX), v(0, 0), v(u64::MAX, 0), v(1 << 63, u64::MAX)];
        rt(&extremes, 0);
        rt(&extremes, u64::MAX);
        let mut origins = Vec::new();
        let enc = encode_versions(&extremes, 5, &mut origins);
        assert!(decode_versions(&enc, 4, 5, &origins[..1]).is_err());
    }

    #[test]
    fn remapped_origins_decode_against_the_new_table() {
        let hlc = 1_700_000_000_000 << 16;
        let vs: Vec<Version> = (0..100).map(|i| v(hlc + (i / 7) * (3 << 16) + i % 2, [5, 9, 5, 7][(i / 25) as usize])).collect();
        let mut old = Vec::new();
        let enc = encode_versions(&vs, hlc, &mut old);
        assert_eq!(old, [InstanceId(5), InstanceId(9), InstanceId(7)]);
        assert_eq!(remap_origins(&enc, 100, &[0, 1, 2]).unwrap(), None, "identity: copied as is");
        let new = [InstanceId(7), InstanceId(1), InstanceId(5), InstanceId(9)];
        let re = remap_origins(&enc, 100, &[2, 3, 0]).unwrap().unwrap();
        assert_eq!(decode_versions(&re, 100, hlc, &new).unwrap(), vs);
        assert!(remap_origins(&enc, 100, &[0, 1]).is_err(), "an index past the map is damage");
        assert!(remap_origins(&enc[..enc.len() - 1], 100, &[0, 1, 2]).is_err());
    }

    proptest! {
        #[test]
        fn random_round_trip(runs in prop::collection::vec((any::<u64>(), 0u64..4, 1usize..50), 0..60), base in any::<u64>()) {
            let vs: Vec<Version> = runs.into_iter().flat_map(|(h, o, n)| std::iter::repeat_n(v(h, o * 0x1234_5678_9abc), n)).collect();
            rt(&vs, base);
        }
    }
}
