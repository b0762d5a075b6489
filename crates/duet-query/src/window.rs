//! GROUP BY time windows: durations with calendar months, and the window sets they produce.

use duet_common::status::{Status, StatusCode};
use duet_common::time::{civil_from_days, days_from_civil, Precision};

use crate::agg::Windows;
use crate::eval::duration;
use crate::parser::duration_parts;

/// A GROUP BY duration: calendar months (`mo`, and `y` as 12 months, as IoTDB does) plus a fixed
/// number of time units for everything else.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeDuration {
    /// Calendar months.
    pub months: i64,
    /// Time units in the instance's precision.
    pub units: i64,
}

fn semantic(msg: impl Into<String>) -> Status {
    Status::new(StatusCode::SemanticError, msg)
}

impl TimeDuration {
    /// Parses `1mo`, `1y2d`, `10m` or a bare number of time units.
    pub fn parse(s: &str, p: Precision) -> Result<TimeDuration, Status> {
        if let Ok(n) = s.parse::<i64>() {
            return Ok(TimeDuration { months: 0, units: n });
        }
        let parts = duration_parts(s).ok_or_else(|| semantic(format!("'{s}' is not a duration")))?;
        let mut d = TimeDuration { months: 0, units: 0 };
        for (n, unit) in parts {
            match unit.as_str() {
                "y" => d.months += n * 12,
                "mo" => d.months += n,
                u => d.units += duration(&format!("{n}{u}"), p)?,
            }
        }
        Ok(d)
    }

    /// Whether the duration is zero.
    pub fn is_zero(&self) -> bool {
        self.months == 0 && self.units == 0
    }

    /// `t` moved forward by `k` times this duration; months are counted on the calendar of the
    /// session's time zone, from `t` itself, so that a window starting on the 31st keeps starting
    /// on the last day of shorter months without drifting.
    pub fn add_to(&self, t: i64, k: i64, p: Precision, zone_offset: i32) -> Option<i64> {
        let mut r = t;
        if self.months != 0 {
            r = add_months(t, self.months.checked_mul(k)?, p, zone_offset)?;
        }
        r.checked_add(self.units.checked_mul(k)?)
    }
}


fn add_months(t: i64, months: i64, p: Precision, zone_offset: i32) -> Option<i64> {
    let per = p.per_second();
    let local = t.div_euclid(per).checked_add(zone_offset as i64)?;
    let frac = t.rem_euclid(per);
    let (y, m, d) = civil_from_days(local.div_euclid(86_400));
    let sod = local.rem_euclid(86_400);
    let total = y.checked_mul(12)?.checked_add(m as i64 - 1)?.checked_add(months)?;
    let (ny, nm) = (total.div_euclid(12), (total.rem_euclid(12) + 1) as u32);
    let nd = d.min(duet_common::time::days_in_month(ny, nm));
    let secs = days_from_civil(ny, nm, nd).checked_mul(86_400)?.checked_add(sod - zone_offset as i64)?;
    secs.checked_mul(per)?.checked_add(frac)
}

/// Checks a GROUP BY interval and sliding step.
pub fn check(interval: TimeDuration, step: TimeDuration) -> Result<(), Status> {
    if interval.is_zero() || interval.months < 0 || interval.units < 0 || step.is_zero() || step.months < 0 || step.units < 0 {
        return Err(semantic("the GROUP BY interval and sliding step must be positive"));
    }
    Ok(())
}

/// How many windows `GROUP BY ([start, end), _, step)` has, without building them (so that LIMIT
/// can pick the few it needs and a huge range is refused before any memory is spent).
pub fn count(start: i64, end: i64, step: TimeDuration, p: Precision, zone_offset: i32) -> Option<u64> {
    if end <= start {
        return Some(0);
    }
    if step.months == 0 {
        let span = (end as i128) - (start as i128);
        return u64::try_from((span + step.units as i128 - 1) / step.units as i128).ok();
    }
    // Calendar steps: months are at least 28 days, which bounds the count; then a binary search
    // for the first window starting at or past the end (a walk from the bound took hundreds of
    // millions of steps over the whole time range).
    let per_month_min = 28 * 86_400 * p.per_second() as i128;
    let bound = ((end as i128 - start as i128) / (per_month_min * step.months as i128 + step.units as i128)).clamp(0, i64::MAX as i128 - 2) as i64 + 2;
    let starts_before_end = |k: i64| step.add_to(start, k, p, zone_offset).is_some_and(|s| s < end);
    let (mut lo, mut hi) = (0i64, bound);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if starts_before_end(mid) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    Some(lo as u64)
}

/// Windows `first..first + n` of `GROUP BY ([start, end), interval, step)`, or of `(start, end]`
/// when `left_open`.
///
/// Window `k` starts at `start + k * step` while that is before `end`, lasts `interval` and is cut
/// at `end`. A `[s, e)` window is shown at its start; a `(s, e]` window covers `(lo, hi]` and is
/// shown at its end, as IoTDB does.
#[allow(clippy::too_many_arguments)]
pub fn build(
    start: i64,
    end: i64,
    left_open: bool,
    interval: TimeDuration,
    step: TimeDuration,
    p: Precision,
    zone_offset: i32,
    first: u64,
    n: usize,
) -> Result<Windows, Status> {
    let overflow = || semantic("GROUP BY window arithmetic overflows");
    let mut w = Windows::default();
    for k in first..first + n as u64 {
        let s = step.add_to(start, k as i64, p, zone_offset).ok_or_else(overflow)?;
        if s >= end {
            break;
        }
        let e = interval.add_to(s, 1, p, zone_offset).ok_or_else(overflow)?.min(end);
        if left_open {
            w.lo.push(s + 1);
            w.hi.push(e);
            w.shown.push(e);
        } else {
            w.lo.push(s);
            w.hi.push(e - 1);
            w.shown.push(s);
        }
    }
    Ok(w)
}

#[cfg(test)]
mod tests {
    use super::*;
    use duet_common::time::parse_datetime;

    const MS: Precision = Precision::Ms;

    fn d(s: &str) -> TimeDuration {
        TimeDuration::parse(s, MS).unwrap()
    }

    #[test]
    fn fixed_windows() {
        let w = build(0, 10, false, d("3ms"), d("3ms"), MS, 0, 0, 100).unwrap();
        assert_eq!((w.lo.clone(), w.hi.clone(), w.shown.clone()), (vec![0, 3, 6, 9], vec![2, 5, 8, 9], vec![0, 3, 6, 9]));
        let w = build(0, 10, true, d("3ms"), d("3ms"), MS, 0, 0, 100).unwrap();
        assert_eq!((w.lo.clone(), w.hi.clone(), w.shown.clone()), (vec![1, 4, 7, 10], vec![3, 6, 9, 10], vec![3, 6, 9, 10]));
        let w = build(0, 10, false, d("2ms"), d("4ms"), MS, 0, 0, 100).unwrap();
        assert_eq!((w.lo.clone(), w.hi.clone()), (vec![0, 4, 8], vec![1, 5, 9]));
        assert!(check(d("0ms"), d("1ms")).is_err());
        assert_eq!(count(0, 10, d("3ms"), MS, 0), Some(4));
        assert_eq!(count(0, 9, d("3ms"), MS, 0), Some(3));
        let r = build(0, 10, false, d("3ms"), d("3ms"), MS, 0, 2, 5).unwrap();
        assert_eq!(r.lo, vec![6, 9]);
    }

    #[test]
    fn calendar_months_follow_the_zone() {
        let z = 8 * 3600;
        let t = |s: &str| parse_datetime(s, MS, z).unwrap();
        let w = build(t("2024-01-31T00:00:00"), t("2024-05-01T00:00:00"), false, d("1mo"), d("1mo"), MS, z, 0, 100).unwrap();
        let starts: Vec<i64> = w.lo.clone();
        assert_eq!(starts, vec![t("2024-01-31T00:00:00"), t("2024-02-29T00:00:00"), t("2024-03-31T00:00:00"), t("2024-04-30T00:00:00")]);
        assert_eq!(w.hi[0], t("2024-02-29T00:00:00") - 1);
        assert_eq!(d("1y"), TimeDuration { months: 12, units: 0 });
        assert_eq!(count(t("2024-01-31T00:00:00"), t("2024-05-01T00:00:00"), d("1mo"), MS, z), Some(4));
    }

    #[test]
    fn calendar_window_counts_match_counting_one_by_one_and_the_whole_time_range_is_quick() {
        let z = 8 * 3600;
        let t = |s: &str| parse_datetime(s, MS, z).unwrap();
        let start = t("1999-12-31T13:00:00");
        for step in ["1mo", "1mo3d", "2mo", "1y", "13mo12h"] {
            for days in [0, 1, 27, 28, 29, 31, 62, 365, 3000, 40_000] {
                let end = start + days * 86_400_000 + 1;
                let mut k = 0;
                while d(step).add_to(start, k, MS, z).is_some_and(|s| s < end) {
                    k += 1;
                }
                assert_eq!(count(start, end, d(step), MS, z), Some(k as u64), "{step} over {days} days");
            }
        }
        // Over all of time: counted in a few dozen steps (a walk from the bound took hundreds of
        // millions, about half a minute).
        let n = count(-i64::MAX, i64::MAX, d("1mo"), MS, 0).unwrap();
        assert!(n > 3_000_000_000, "{n}");
    }
}
