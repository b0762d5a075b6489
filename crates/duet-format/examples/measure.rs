//! Prints bytes/point of each float candidate on the standard workload (values only), then of
//! whole files. Run: `cargo run --release -p duet-format --example measure [series] [points]`.

#[path = "../tests/support/workload.rs"]
mod workload;

use duet_format::float::{decode_f64, encode_f64, encode_f64_with, FloatMethod};
use std::time::Instant;
use workload::{random_walk, Rng};

fn main() {
    let args: Vec<usize> = std::env::args().skip(1).map(|a| a.parse().expect("a number")).collect();
    let series = args.first().copied().unwrap_or(1000);
    let points = args.get(1).copied().unwrap_or(10_000);
    let mut rng = Rng(42);
    let walks: Vec<Vec<f64>> = (0..series).map(|_| random_walk(&mut rng, points)).collect();
    let total = (series * points) as f64;
    println!("float candidates, values only, {series} series x {points} points:");
    for (name, method) in [("plain", FloatMethod::Plain), ("xor (gorilla-style)", FloatMethod::Xor), ("decimal", FloatMethod::Decimal)] {
        let t = Instant::now();
        let bytes: usize = walks.iter().map(|w| encode_f64_with(w, method).map_or(usize::MAX / series, |e| e.len())).sum();
        println!("  {name:<22} {:>8.4} bytes/point  ({:.0} ns/point encode)", bytes as f64 / total, t.elapsed().as_nanos() as f64 / total);
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
    println!("  {:<22} {:>8.4} bytes/point  ({enc_ns:.0} ns/point encode, {dec_ns:.0} ns/point decode)", "pco 1.1 (default cfg)", bytes as f64 / total);
    let t = Instant::now();
    let ours: Vec<Vec<u8>> = walks.iter().map(|w| encode_f64(w)).collect();
    let enc_ns = t.elapsed().as_nanos() as f64 / total;
    let t = Instant::now();
    for (e, w) in ours.iter().zip(&walks) {
        let d = decode_f64(e, w.len()).unwrap();
        assert!(d.iter().zip(w).all(|(a, b)| a.to_bits() == b.to_bits()));
    }
    let dec_ns = t.elapsed().as_nanos() as f64 / total;
    let bytes: usize = ours.iter().map(|p| p.len()).sum();
    println!("  {:<22} {:>8.4} bytes/point  ({enc_ns:.0} ns/point encode, {dec_ns:.0} ns/point decode)", "chosen (encode_f64)", bytes as f64 / total);
}
