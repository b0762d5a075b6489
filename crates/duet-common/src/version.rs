//! Instance identity, the hybrid logical clock and per-write versions.
//!
//! Every write carries a [`Version`]: an HLC timestamp plus the id of the instance that accepted it
//! from a client (its origin). For the same (series, time) the greatest version wins on every
//! instance, which is what makes two replicating instances converge.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// The persistent identity of one DuetDB instance, created at its first start.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct InstanceId(pub u64);

impl fmt::Display for InstanceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl InstanceId {
    /// Parses the 16-hex-digit form written by `Display`.
    pub fn parse(s: &str) -> Option<InstanceId> {
        u64::from_str_radix(s.trim(), 16).ok().map(InstanceId)
    }
}

/// The version of a write: compared by HLC time first, then by origin id to break ties deterministically.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Version {
    /// Hybrid logical clock value: physical milliseconds << 16 | logical counter.
    pub hlc: u64,
    /// The instance that accepted the write from a client.
    pub origin: InstanceId,
}

/// Bits of the HLC reserved for the logical counter.
pub const HLC_LOGICAL_BITS: u32 = 16;

/// A hybrid logical clock: monotonic, close to wall time, and never behind any version it has seen.
#[derive(Debug, Default)]
pub struct Hlc {
    last: AtomicU64,
}

fn wall_hlc() -> u64 {
    let ms = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as u64;
    ms << HLC_LOGICAL_BITS
}

impl Hlc {
    /// A clock that starts no lower than `floor` (the greatest version recovered from disk).
    pub fn new(floor: u64) -> Hlc {
        Hlc { last: AtomicU64::new(floor) }
    }
    /// A new timestamp, greater than every one issued or observed before.
    pub fn tick(&self) -> u64 {
        let wall = wall_hlc();
        let mut cur = self.last.load(Ordering::Relaxed);
        loop {
            let next = if wall > cur { wall } else { cur + 1 };
            match self.last.compare_exchange_weak(cur, next, Ordering::AcqRel, Ordering::Relaxed) {
                Ok(_) => return next,
                Err(v) => cur = v,
            }
        }
    }
    /// Moves the clock past a timestamp seen on a replicated write.
    pub fn observe(&self, remote: u64) {
        self.last.fetch_max(remote, Ordering::AcqRel);
    }
    /// The last timestamp issued or observed.
    pub fn current(&self) -> u64 {
        self.last.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hlc_is_monotonic_and_observes() {
        let c = Hlc::new(0);
        let a = c.tick();
        let b = c.tick();
        assert!(b > a);
        c.observe(b + (1 << 40));
        assert!(c.tick() > b + (1 << 40));
    }

    #[test]
    fn version_order_breaks_ties_by_origin() {
        let a = Version { hlc: 5, origin: InstanceId(1) };
        let b = Version { hlc: 5, origin: InstanceId(2) };
        assert!(b > a);
        assert!(Version { hlc: 6, origin: InstanceId(0) } > b);
    }
}
