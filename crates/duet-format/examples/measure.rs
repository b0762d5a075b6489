//! Measurements behind the format's choices, on the standard workload (devices x 10 DOUBLE sensors
//! x 10,000 points 1 s apart, 2-decimal random walk):
//! 1. float candidates on the values alone (plain, Gorilla-style XOR, decimal detection, pco);
//! 2. a whole file, with a breakdown of where the bytes go;
//! 3. the version column under several write patterns.
//!
//! Run: `cargo run --release -p duet-format --example measure [devices] [points]` (default 100 10000).

#[path = "../tests/support/workload.rs"]
#[allow(dead_code)]
mod workload;

use duet_common::mutation::ColumnValues;
use duet_common::path::Path;
use duet_common::version::{InstanceId, Version};
use duet_common::DataType;
use duet_format::float::{decode_f64, encode_f64, encode_f64_with, FloatMethod};
use duet_format::{int, versions, FileReader, FileWriter};
use std::time::Instant;
use workload::{random_walk, timestamps, Rng, START_MS};

fn main() {
    let args: Vec<usize> = std::env::args().skip(1).map(|a| a.parse().expect("a number")).collect();
    let devices = args.first().copied().unwrap_or(100);
    let points = args.get(1).copied().unwrap_or(10_000);
    let sensors = 10;
    let series = devices * sensors;
    let mut rng = Rng(42);
    let walks: Vec<Vec<f64>> = (0..series).map(|_| random_walk(&mut rng, points)).collect();
    let total = (series * points) as f64;

    println!("1. float candidates, values only, {series} series x {points} points:");
    for (name, method) in [("plain", FloatMethod::Plain), ("xor (gorilla-style)", FloatMethod::Xor), ("decimal detection", FloatMethod::Decimal)] {
        let t = Instant::now();
        let bytes: usize = walks.iter().map(|w| encode_f64_with(w, method).expect("applies").len()).sum();
        println!("   {name:<24} {:>7.4} bytes/point  encode {:>4.0} ns/point", bytes as f64 / total, t.elapsed().as_nanos() as f64 / total);
    }
    let t = Instant::now();
    let pco: Vec<Vec<u8>> = walks.iter().map(|w| pco::standalone::simple_compress(w, &pco::ChunkConfig::default()).unwrap()).collect();
    let enc_ns = t.elapsed().as_nanos() as f64 / total;
    let t = Instant::now();
    for (p, w) in pco.iter().zip(&walks) {
        let d: Vec<f64> = pco::standalone::simple_decompress(p).unwrap();
        assert!(d.iter().zip(w).all(|(a, b)| a.to_bits() == b.to_bits()));
    }
    let dec_ns = t.elapsed().as_nanos() as f64 / total;
    let bytes: usize = pco.iter().map(|p| p.len()).sum();
    println!("   {:<24} {:>7.4} bytes/point  encode {enc_ns:>4.0} ns/point, decode {dec_ns:.0} ns/point", "pco 1.1 (default config)", bytes as f64 / total);
    let t = Instant::now();
    let ours: Vec<Vec<u8>> = walks.iter().map(|w| encode_f64(w)).collect();
    let enc_ns = t.elapsed().as_nanos() as f64 / total;
    let t = Instant::now();
    for (e, w) in ours.iter().zip(&walks) {
        let d = decode_f64(e, w.len()).unwrap();
        assert!(d.iter().zip(w).all(|(a, b)| a.to_bits() == b.to_bits()));
    }
    let dec_ns = t.elapsed().as_nanos() as f64 / total;
    let value_bytes: usize = ours.iter().map(|p| p.len()).sum();
    println!("   {:<24} {:>7.4} bytes/point  encode {enc_ns:>4.0} ns/point, decode {dec_ns:.0} ns/point", "chosen (encode_f64)", value_bytes as f64 / total);

    // 2. A whole file: each device is written as tablets of 1,000 rows, one version per tablet.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("standard.dcf");
    let times = timestamps(points);
    let origin = InstanceId(0x5eed_0000_0000_0001);
    let tablet_versions = |d: usize| -> Vec<Version> {
        (0..points).map(|i| Version { hlc: ((START_MS as u64 + (i / 1000 * 1000) as u64 * 1000) << 16) + d as u64, origin }).collect()
    };
    let t = Instant::now();
    let mut w = FileWriter::create(&path).unwrap();
    let mut version_bytes = 0;
    for d in 0..devices {
        let vs = tablet_versions(d);
        version_bytes += sensors * versions::encode_versions(&vs, vs[0].hlc, &mut Vec::new()).len();
        for s in 0..sensors {
            let p = Path::parse(&format!("root.sg.d{d:03}.s{s}")).unwrap();
            w.write_series(&p, DataType::Double, &times, &ColumnValues::F64(walks[d * sensors + s].clone()), &vs).unwrap();
        }
    }
    let summary = w.finish().unwrap();
    let write_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let r = FileReader::open(&path).unwrap();
    let open_ms = t.elapsed().as_secs_f64() * 1e3;
    let t = Instant::now();
    let n = r.verify().unwrap();
    let read_s = t.elapsed().as_secs_f64();
    let rel_times: Vec<i64> = times.iter().map(|t| t - times[0]).collect();
    let time_bytes = series * int::encode_i64(&rel_times).len();
    let b = summary.bytes as f64;
    println!("2. whole file, {devices} devices x {sensors} DOUBLE sensors x {points} points = {n} points:");
    println!("   file size {} bytes = {:.4} bytes/point (write {write_s:.2} s incl. fsync, open {open_ms:.1} ms, read all {read_s:.2} s)", summary.bytes, b / total);
    println!("   values {:.4}, times {:.4}, versions {:.4}, pages/chunk framing + statistics + footer {:.4} bytes/point",
        value_bytes as f64 / total, time_bytes as f64 / total, version_bytes as f64 / total,
        (b - (value_bytes + time_bytes + version_bytes) as f64) / total);

    // 3. The version column (one 10,000-point page) under several write patterns.
    println!("3. version column, {points} points of one series:");
    let base_hlc = (START_MS as u64) << 16;
    let mut jitter = Rng(3);
    let a = InstanceId(0xaaaa_0000_0000_0001);
    let bb = InstanceId(0xbbbb_0000_0000_0002);
    let patterns: Vec<(&str, Vec<Version>)> = vec![
        ("one write for the whole page", vec![Version { hlc: base_hlc, origin: a }; points]),
        ("tablets of 1,000 rows", tablet_versions(0)),
        ("tablets of 100 rows", (0..points).map(|i| Version { hlc: base_hlc + (((i / 100) as u64 * 100_000) << 16), origin: a }).collect()),
        ("one write per point, steady 1 s", (0..points).map(|i| Version { hlc: base_hlc + ((i as u64 * 1000) << 16), origin: a }).collect()),
        ("one write per point, jittered", (0..points).map(|i| Version { hlc: base_hlc + ((i as u64 * 1000 + jitter.next_u64() % 20) << 16) + jitter.next_u64() % 4, origin: a }).collect()),
        ("per point, 2 origins (dual-active)", (0..points).map(|i| {
            let o = if jitter.next_u64().is_multiple_of(2) { a } else { bb };
            Version { hlc: base_hlc + ((i as u64 * 1000 + jitter.next_u64() % 20) << 16), origin: o }
        }).collect()),
    ];
    for (name, vs) in patterns {
        let min = vs.iter().map(|v| v.hlc).min().unwrap();
        let mut origins = Vec::new();
        let enc = versions::encode_versions(&vs, min, &mut origins);
        assert_eq!(versions::decode_versions(&enc, vs.len(), min, &origins).unwrap(), vs);
        println!("   {name:<36} {:>6} bytes = {:.4} bytes/point (plain would be 16)", enc.len(), enc.len() as f64 / points as f64);
    }
}
