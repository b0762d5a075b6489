//! The standard workload shared by the size test and `examples/measure.rs`: per series a random walk
//! starting at a random value, uniform steps in [-0.5, 0.5], every value rounded to 2 decimals,
//! one point per second.

/// A small deterministic generator (SplitMix64) so runs are reproducible without extra crates.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// First timestamp of the workload (2024-01-01T00:00:00Z in milliseconds).
pub const START_MS: i64 = 1_704_067_200_000;

/// One series of the standard workload: `n` values of a 2-decimal random walk.
pub fn random_walk(rng: &mut Rng, n: usize) -> Vec<f64> {
    let mut v = (rng.unit() * 200.0 - 100.0).mul_add(100.0, 0.0).round() / 100.0;
    (0..n)
        .map(|_| {
            let step = rng.unit() - 0.5;
            v = ((v + step) * 100.0).round() / 100.0;
            v
        })
        .collect()
}

/// Timestamps 1 s apart.
pub fn timestamps(n: usize) -> Vec<i64> {
    (0..n as i64).map(|i| START_MS + i * 1000).collect()
}
