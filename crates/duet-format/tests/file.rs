//! Whole-file tests: round trips of random files, corruption and truncation, API misuse, size.

mod support;

use duet_common::mutation::ColumnValues;
use duet_common::path::Path;
use duet_common::types::ALL_TYPES;
use duet_common::version::{InstanceId, Version};
use duet_common::{DataType, Status, StatusCode, Value};
use duet_format::{Error, FileReader, FileWriter, Points, Stats, WriterOptions};
use proptest::prelude::*;
use support::workload::{random_walk, timestamps, Rng};

/// A comparable form of points: floats by their bits so NaN == NaN and -0.0 != 0.0.
fn norm(p: &Points) -> Vec<(i64, String, Version)> {
    (0..p.len())
        .map(|i| {
            let (t, v, ver) = p.get(i);
            let v = match v {
                Value::F32(x) => format!("f32:{:08x}", x.to_bits()),
                Value::F64(x) => format!("f64:{:016x}", x.to_bits()),
                other => format!("{other:?}"),
            };
            (t, v, ver)
        })
        .collect()
}

/// Statistics as text, with the sum checked separately: page-wise sums add in a different order.
fn stats_text(s: &Option<Stats>) -> String {
    let mut s = s.clone();
    if let Some(st) = s.as_mut() {
        st.sum = st.sum.map(|x| format!("{x:.9e}").parse().unwrap());
    }
    format!("{s:?}")
}

struct Series {
    path: Path,
    dtype: DataType,
    points: Points,
}

fn value_for(dtype: DataType, seed: u64) -> Value {
    let nice = seed & 3 != 0;
    match dtype {
        DataType::Boolean => Value::Bool(seed & 8 != 0),
        DataType::Int32 | DataType::Date => Value::I32(if nice { (seed >> 8) as i32 % 1000 } else { (seed >> 2) as i32 }),
        DataType::Int64 | DataType::Timestamp => Value::I64(if nice { (seed >> 8) as i64 % 100_000 } else { seed as i64 }),
        DataType::Float => Value::F32(if nice { ((seed >> 8) % 100_000) as f32 / 100.0 } else { f32::from_bits((seed >> 3) as u32) }),
        DataType::Double => Value::F64(if nice { ((seed >> 8) % 1_000_000) as f64 / 100.0 - 5000.0 } else { f64::from_bits(seed) }),
        _ => Value::Bytes(if nice { format!("state-{}", (seed >> 8) % 5).into_bytes() } else { seed.to_le_bytes()[..(seed % 9) as usize].to_vec() }),
    }
}

fn make_series(idx: usize, dtype: DataType, start: i64, steps: &[(u8, u64, u8)]) -> Series {
    let mut points = Points::empty(dtype);
    let mut t = start;
    let origins = [InstanceId(0x1111_2222_3333_4444), InstanceId(u64::MAX), InstanceId(0)];
    for &(dt, seed, ver) in steps {
        t = t.saturating_add(dt as i64 % 4);
        points.times.push(t);
        points.values.push(value_for(dtype, seed));
        points.versions.push(Version { hlc: 1_000_000 + (ver / 3) as u64 * 977, origin: origins[(ver % 3) as usize] });
    }
    Series { path: Path::parse(&format!("root.db.d{}.s{idx:03}", idx % 3)).unwrap(), dtype, points }
}

fn write_file(dir: &std::path::Path, name: &str, series: &[Series], opts: WriterOptions) -> std::path::PathBuf {
    let path = dir.join(name);
    let mut w = FileWriter::create_with(&path, opts).unwrap();
    for s in series {
        w.write_series(&s.path, s.dtype, &s.points.times, &s.points.values, &s.points.versions).unwrap();
    }
    let summary = w.finish().unwrap();
    assert_eq!(summary.bytes, std::fs::metadata(&path).unwrap().len());
    path
}

fn check_file(path: &std::path::Path, series: &[Series], ranges: &[(i64, i64)]) {
    let r = FileReader::open(path).unwrap();
    assert_eq!(r.series().len(), series.len());
    for s in series {
        let meta = r.series_meta(&s.path).expect("series listed");
        assert_eq!(meta.dtype, s.dtype);
        let n = s.points.len();
        let expect_stats = Stats::of(&s.points.times, &s.points.values, &s.points.versions, 0..n);
        assert_eq!(stats_text(&meta.stats), stats_text(&expect_stats), "{}", s.path);
        let all = r.read_series(&s.path, s.dtype, i64::MIN, i64::MAX).unwrap().unwrap();
        assert_eq!(norm(&all), norm(&s.points), "{}", s.path);
        let pages = r.series_pages(&s.path).unwrap().unwrap();
        assert_eq!(pages.iter().map(|p| p.stats.count).sum::<u64>(), n as u64);
        for p in &pages {
            let pts = r.read_page(p).unwrap();
            assert_eq!(stats_text(&Stats::of(&pts.times, &pts.values, &pts.versions, 0..pts.len())), stats_text(&Some(p.stats.clone())));
        }
        for &(a, b) in ranges {
            let got = r.read_series(&s.path, s.dtype, a, b).unwrap().unwrap();
            let want: Vec<_> = norm(&s.points).into_iter().filter(|p| p.0 >= a && p.0 <= b).collect();
            assert_eq!(norm(&got), want, "{} in [{a}, {b}]", s.path);
        }
    }
    assert!(r.series_meta(&Path::parse("root.db.missing").unwrap()).is_none());
    assert!(r.read_series(&Path::parse("root.db.missing").unwrap(), DataType::Int64, 0, 1).unwrap().is_none());
    assert_eq!(r.verify().unwrap(), series.iter().map(|s| s.points.len() as u64).sum::<u64>());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
    #[test]
    fn random_files_round_trip(
        series in prop::collection::vec((0usize..10, any::<i64>(), prop::collection::vec((any::<u8>(), any::<u64>(), 0u8..12), 0..120)), 0..8),
        page_points in 1usize..40,
        chunk_pages in 1usize..4,
        ranges in prop::collection::vec((any::<i64>(), 0i64..200), 1..4),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let series: Vec<Series> = series
            .iter()
            .enumerate()
            .map(|(i, (t, start, steps))| make_series(i, ALL_TYPES[*t], start / 2, steps))
            .collect();
        let mut series = series;
        series.sort_by(|a, b| a.path.cmp(&b.path));
        let path = write_file(dir.path(), "f.dcf", &series, WriterOptions { page_points, chunk_pages, sync_every_bytes: 4096 });
        let mut ranges: Vec<(i64, i64)> = ranges.into_iter().map(|(a, w)| (a, a.saturating_add(w))).collect();
        if let Some(s) = series.iter().find(|s| !s.points.is_empty()) {
            let t = s.points.times[s.points.len() / 2];
            ranges.push((t - 3, t + 5));
            ranges.push((t, t));
        }
        check_file(&path, &series, &ranges);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
    /// A compaction's output: the parts of one series from several files, following each other in
    /// time, some pages copied as stored and some decoded and written again, for every type and
    /// with origins that each file numbers in its own order.
    #[test]
    fn files_built_from_copied_and_rewritten_pages_read_back_whole(
        t in 0usize..ALL_TYPES.len(),
        parts in prop::collection::vec((prop::collection::vec((any::<u8>(), any::<u64>(), 0u8..12), 1..80), any::<bool>()), 1..4),
        page_points in 1usize..20,
        chunk_pages in 1usize..4,
        ranges in prop::collection::vec((any::<i64>(), 0i64..200), 1..3),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let dtype = ALL_TYPES[t];
        let opts = WriterOptions { page_points, chunk_pages, sync_every_bytes: 0 };
        let mut start = -1_000i64;
        let mut files = Vec::new();
        let mut whole: Option<Series> = None;
        for (k, (steps, copy)) in parts.iter().enumerate() {
            let part = make_series(0, dtype, start, steps);
            start = part.points.times.last().unwrap() + 1;
            let path = write_file(dir.path(), &format!("{k}.dcf"), std::slice::from_ref(&part), opts.clone());
            files.push((FileReader::open(path).unwrap(), *copy));
            match whole.as_mut() {
                Some(w) => w.points.append(part.points),
                None => whole = Some(part),
            }
        }
        let whole = whole.unwrap();
        let out = dir.path().join("out.dcf");
        let mut w = FileWriter::create_with(&out, WriterOptions { page_points: page_points + 3, ..opts }).unwrap();
        let maps: Vec<Vec<u64>> = files.iter().map(|(f, _)| w.map_origins(f.origins())).collect();
        w.begin_series(&whole.path, dtype).unwrap();
        for ((f, copy), map) in files.iter().zip(&maps) {
            for p in f.series_pages(&whole.path).unwrap().unwrap() {
                if *copy {
                    w.copy_page(&f.read_raw_page(&p).unwrap(), p.stats.clone(), map).unwrap();
                } else {
                    let pts = f.read_page(&p).unwrap();
                    w.append_points(&pts.times, &pts.values, &pts.versions).unwrap();
                }
            }
        }
        w.end_series().unwrap();
        w.finish().unwrap();
        let ranges: Vec<(i64, i64)> = ranges.into_iter().map(|(a, len)| (a % 2_000, (a % 2_000).saturating_add(len))).collect();
        check_file(&out, &[whole], &ranges);
    }
}

fn small_file(dir: &std::path::Path) -> (std::path::PathBuf, Vec<Series>) {
    let mut rng = Rng(7);
    let mut series: Vec<Series> = ALL_TYPES
        .iter()
        .enumerate()
        .map(|(i, &t)| {
            let steps: Vec<(u8, u64, u8)> = (0..12).map(|_| (1 + rng.next_u64() as u8 % 3, rng.next_u64(), (rng.next_u64() % 12) as u8)).collect();
            make_series(i, t, 1_700_000_000_000, &steps)
        })
        .collect();
    series.push(make_series(20, DataType::Double, 0, &[]));
    series.sort_by(|a, b| a.path.cmp(&b.path));
    (write_file(dir, "small.dcf", &series, WriterOptions { page_points: 5, chunk_pages: 2, sync_every_bytes: 0 }), series)
}

type Contents = Vec<Vec<(i64, String, Version)>>;

fn read_everything(path: &std::path::Path) -> Result<Contents, Error> {
    let r = FileReader::open(path)?;
    r.verify()?;
    r.series().iter().map(|s| Ok(norm(&r.read_series(&s.path, s.dtype, i64::MIN, i64::MAX)?.unwrap()))).collect()
}

#[test]
fn every_flipped_byte_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let (path, series) = small_file(dir.path());
    check_file(&path, &series, &[]);
    let good = std::fs::read(&path).unwrap();
    let expect = read_everything(&path).unwrap();
    let bad = dir.path().join("bad.dcf");
    let mut detected = 0;
    for i in 0..good.len() {
        for mask in [0xffu8, 0x01, 0x80] {
            let mut bytes = good.clone();
            bytes[i] ^= mask;
            std::fs::write(&bad, &bytes).unwrap();
            match read_everything(&bad) {
                Err(e) => {
                    let msg = e.to_string();
                    assert!(msg.contains("bad.dcf") && msg.contains("offset"), "byte {i}: error without location: {msg}");
                    assert!(matches!(e, Error::Corrupt { .. }), "byte {i}: {e:?}");
                    detected += 1;
                }
                // Every byte is under a checksum or a magic, so nothing may slip through; identical
                // data would be acceptable for padding, but the format has none.
                Ok(data) => panic!("flip {mask:#04x} at byte {i} of {} went unnoticed (same data: {})", good.len(), data == expect),
            }
        }
    }
    assert_eq!(detected, good.len() * 3);
    println!("{} bytes, every single-byte corruption detected", good.len());
}

#[test]
fn truncation_and_trailing_garbage_are_detected() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = small_file(dir.path());
    let good = std::fs::read(&path).unwrap();
    let bad = dir.path().join("cut.dcf");
    for len in 0..good.len() {
        std::fs::write(&bad, &good[..len]).unwrap();
        let e = read_everything(&bad).expect_err("truncated file accepted");
        assert!(matches!(e, Error::Corrupt { .. }), "{len}: {e}");
    }
    let mut longer = good.clone();
    longer.extend_from_slice(b"junk");
    std::fs::write(&bad, &longer).unwrap();
    assert!(read_everything(&bad).is_err());
    let missing = FileReader::open(dir.path().join("nope.dcf")).unwrap_err();
    assert!(matches!(missing, Error::Io { .. }));
    let status: Status = missing.into();
    assert_eq!(status.code, StatusCode::InternalServerError);
    assert!(status.message.contains("nope.dcf"));
}

#[test]
fn misuse_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("m.dcf");
    let mut w = FileWriter::create(&p).unwrap();
    assert!(matches!(FileWriter::create(&p), Err(Error::Io { .. })), "an existing file must not be overwritten");
    let b = Path::parse("root.db.d.b").unwrap();
    let a = Path::parse("root.db.d.a").unwrap();
    let v = Version { hlc: 1, origin: InstanceId(1) };
    w.write_points(&b, DataType::Int64, &[(1, Value::I64(1), v)]).unwrap();
    assert!(matches!(w.write_points(&a, DataType::Int64, &[]), Err(Error::Invalid(_))), "paths must ascend");
    assert!(matches!(w.write_points(&b, DataType::Int64, &[]), Err(Error::Invalid(_))), "no duplicate paths");
    let c = Path::parse("root.db.d.c").unwrap();
    assert!(matches!(w.write_points(&c, DataType::Int64, &[(1, Value::F64(1.0), v)]), Err(Error::Invalid(_))));
    assert!(matches!(w.write_series(&c, DataType::Double, &[1], &ColumnValues::I64(vec![1]), &[v]), Err(Error::Invalid(_))));
    assert!(matches!(w.write_series(&c, DataType::Int64, &[1, 2], &ColumnValues::I64(vec![1]), &[v, v]), Err(Error::Invalid(_))));
    assert!(matches!(
        w.write_series(&c, DataType::Int64, &[2, 1], &ColumnValues::I64(vec![1, 2]), &[v, v]),
        Err(Error::Invalid(_))
    ));
    // Duplicate timestamps are allowed (e.g. two versions kept side by side).
    w.write_series(&c, DataType::Int64, &[5, 5], &ColumnValues::I64(vec![1, 2]), &[v, v]).unwrap();
    // A path may come again with another type (points of a type that lost a schema conflict),
    // in type order.
    w.write_points(&c, DataType::Text, &[(7, Value::Bytes(b"t".to_vec()), v)]).unwrap();
    assert!(matches!(w.write_points(&c, DataType::Int32, &[(1, Value::I32(1), v)]), Err(Error::Invalid(_))), "types ascend");
    w.finish().unwrap();
    let r = FileReader::open(&p).unwrap();
    assert_eq!(r.read_series(&c, DataType::Int64, 5, 5).unwrap().unwrap().len(), 2);
    assert_eq!(r.series_of(&c).iter().map(|m| m.dtype).collect::<Vec<_>>(), vec![DataType::Int64, DataType::Text]);
    assert_eq!(r.read_series(&c, DataType::Text, i64::MIN, i64::MAX).unwrap().unwrap().times, vec![7]);
    assert!(r.series_typed(&c, |d| d == DataType::Double).is_none());
    assert_eq!(r.meta_pages(r.series_typed(&c, |d| d == DataType::Text).unwrap()).unwrap().len(), 1);
    let unfinished = dir.path().join("u.dcf");
    drop(FileWriter::create(&unfinished).unwrap());
    assert!(matches!(FileReader::open(&unfinished), Err(Error::Corrupt { .. })));
}

#[test]
fn empty_file_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("e.dcf");
    let s = FileWriter::create(&p).unwrap().finish().unwrap();
    let r = FileReader::open(&p).unwrap();
    assert!(r.is_empty());
    assert_eq!(r.len(), s.bytes);
}

/// A slice of the standard workload: devices x 10 DOUBLE sensors x 10,000 points 1 s apart, each
/// device written as tablets of 1,000 rows (one version per tablet). Prints bytes/point.
#[test]
fn standard_workload_size() {
    let devices = 2;
    let (points, tablet) = (10_000usize, 1_000usize);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("std.dcf");
    let mut w = FileWriter::create(&path).unwrap();
    let mut rng = Rng(42);
    let origin = InstanceId(0x5eed_0000_0000_0001);
    let times = timestamps(points);
    let mut all = Vec::new();
    for d in 0..devices {
        for s in 0..10 {
            let values = random_walk(&mut rng, points);
            let versions: Vec<Version> = (0..points)
                .map(|i| Version { hlc: ((support::workload::START_MS as u64 + (i / tablet * tablet) as u64 * 1000) << 16) + d as u64, origin })
                .collect();
            let path = Path::parse(&format!("root.sg.d{d:03}.s{s}")).unwrap();
            w.write_series(&path, DataType::Double, &times, &ColumnValues::F64(values.clone()), &versions).unwrap();
            all.push((path, values));
        }
    }
    let summary = w.finish().unwrap();
    let bpp = summary.bytes as f64 / summary.points as f64;
    println!("standard workload slice: {} points, {} bytes, {bpp:.4} bytes/point", summary.points, summary.bytes);
    assert!(bpp <= 0.85, "{bpp} bytes/point");
    let r = FileReader::open(&path).unwrap();
    for (p, values) in &all {
        let got = r.read_series(p, DataType::Double, i64::MIN, i64::MAX).unwrap().unwrap();
        assert!(matches!(&got.values, ColumnValues::F64(v) if v.iter().zip(values).all(|(a, b)| a.to_bits() == b.to_bits())));
    }
}

/// Compaction copies pages between files without decoding them: the copies must read back as the
/// originals, also when the two files number their origins differently.
#[test]
fn copied_pages_read_back_like_the_originals() {
    let dir = tempfile::tempdir().unwrap();
    let opts = WriterOptions { page_points: 100, chunk_pages: 3, sync_every_bytes: 0 };
    let x = Path::parse("root.db.d.x").unwrap();
    let ver = |i: i64, o: u64| Version { hlc: (1_700_000_000_000 + i as u64 / 30) << 16, origin: InstanceId(o) };
    // Points i in [from, to), origin alternating in runs of 70 between `first` and `second`.
    let points = |from: i64, to: i64, first: u64, second: u64| -> Points {
        let times: Vec<i64> = (from..to).map(|i| i * 10).collect();
        let values = ColumnValues::F64((from..to).map(|i| i as f64 / 4.0).collect());
        let versions = (from..to).map(|i| ver(i, if (i / 70) % 2 == 0 { first } else { second })).collect();
        Points { times, values, versions }
    };
    let write = |name: &str, p: &Points| {
        let path = dir.path().join(name);
        let mut w = FileWriter::create_with(&path, opts.clone()).unwrap();
        w.write_series(&x, DataType::Double, &p.times, &p.values, &p.versions).unwrap();
        w.finish().unwrap();
        FileReader::open(path).unwrap()
    };
    let (p1, p2, mid) = (points(0, 450, 1, 2), points(600, 1000, 2, 1), points(450, 520, 3, 1));
    let (f1, f2) = (write("1.dcf", &p1), write("2.dcf", &p2));
    assert_eq!(f1.origins(), [InstanceId(1), InstanceId(2)]);
    assert_eq!(f2.origins(), [InstanceId(2), InstanceId(1)]);

    let out = dir.path().join("3.dcf");
    let mut w = FileWriter::create_with(&out, opts.clone()).unwrap();
    let (m1, m2) = (w.map_origins(f1.origins()), w.map_origins(f2.origins()));
    assert_eq!((m1.clone(), m2.clone()), (vec![0, 1], vec![1, 0]), "the second file's pages need their origins remapped");
    w.begin_series(&x, DataType::Double).unwrap();
    let pages1 = f1.series_pages(&x).unwrap().unwrap();
    let pages2 = f2.series_pages(&x).unwrap().unwrap();
    for p in &pages1 {
        w.copy_page(&f1.read_raw_page(p).unwrap(), p.stats.clone(), &m1).unwrap();
    }
    w.append_points(&mid.times, &mid.values, &mid.versions).unwrap();
    for p in &pages2 {
        w.copy_page(&f2.read_raw_page(p).unwrap(), p.stats.clone(), &m2).unwrap();
    }
    assert!(
        matches!(w.copy_page(&f1.read_raw_page(&pages1[0]).unwrap(), pages1[0].stats.clone(), &m1), Err(Error::Invalid(_))),
        "a page must not go back in time"
    );
    let mut damaged = f1.read_raw_page(&pages1[1]).unwrap();
    damaged[3] ^= 1;
    assert!(w.copy_page(&damaged, pages1[1].stats.clone(), &m1).is_err(), "a damaged page is not copied");
    w.end_series().unwrap();
    let summary = w.finish().unwrap();
    assert_eq!(summary.points, 450 + 70 + 400);

    let r = FileReader::open(&out).unwrap();
    assert_eq!(r.verify().unwrap(), 920);
    let mut want = p1.clone();
    want.append(mid.clone());
    want.append(p2.clone());
    assert_eq!(norm(&r.read_series(&x, DataType::Double, i64::MIN, i64::MAX).unwrap().unwrap()), norm(&want));
    assert_eq!(norm(&r.read_series(&x, DataType::Double, 4400, 6050).unwrap().unwrap()).len(), 10 + 70 + 6);
    let meta = r.series_meta(&x).unwrap();
    assert_eq!(meta.stats.as_ref().unwrap().count, 920);
    assert_eq!(meta.chunks.len(), 4, "5 + 1 + 4 pages in chunks of 3");
}
