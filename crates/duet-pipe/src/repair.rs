//! How REPAIR PIPE asks the peer for its points of the differing buckets: in requests sized by the
//! peer's own point counts (from its digest), and halved when the peer still finds one too large.

use duet_common::mutation::Mutation;
use duet_common::path::Path;

/// A series and an inclusive time range of it.
pub type Range = (Path, i64, i64);

/// Asks the peer for its points of some ranges.
pub type Fetch<'a> = dyn FnMut(&[Range]) -> Result<Vec<Mutation>, String> + 'a;

/// What a receiver's refusal of a fetch says when the ranges hold more than one reply carries
/// (and what receivers before it said).
pub const TOO_LARGE: &str = "more than one reply carries";
const TOO_LARGE_BEFORE: &str = "the most one reply carries";

/// Groups the differing ranges, each with the peer's point count in it, into fetch requests of at
/// most `max_ranges` ranges and about `max_points` points. A range holding more points is cut into
/// equal time slices (points are rarely spread evenly: [`fetch_halving`] takes care of the rest).
pub fn plan_fetches(ranges: &[(Range, u64)], max_ranges: usize, max_points: u64) -> Vec<Vec<Range>> {
    let max_points = max_points.max(1);
    let mut out: Vec<Vec<Range>> = Vec::new();
    let mut cur: Vec<Range> = Vec::new();
    let mut points = 0u64;
    for ((p, a, b), n) in ranges {
        // (In i128: a range may span all of time.)
        let span = *b as i128 - *a as i128 + 1;
        let slices = (n.div_ceil(max_points).max(1) as i128).min(span);
        let width = span / slices;
        for i in 0..slices {
            let start = (*a as i128 + i * width) as i64;
            let end = if i == slices - 1 { *b } else { (start as i128 + width - 1) as i64 };
            let share = n / slices as u64;
            if !cur.is_empty() && (cur.len() >= max_ranges || points + share > max_points) {
                out.push(std::mem::take(&mut cur));
                points = 0;
            }
            cur.push((p.clone(), start, end));
            points += share;
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Fetches `ranges` with `fetch` and hands what comes back to `apply`. A request refused as too
/// large ([`TOO_LARGE`]) is split in two, by ranges while it has several, then by time, until
/// every part fits; any other error ends the repair.
pub fn fetch_halving(
    fetch: &mut Fetch<'_>,
    ranges: &[Range],
    apply: &mut dyn FnMut(Vec<Mutation>) -> Result<(), String>,
) -> Result<(), String> {
    match fetch(ranges) {
        Ok(muts) => apply(muts),
        Err(e) if e.contains(TOO_LARGE) || e.contains(TOO_LARGE_BEFORE) => {
            if ranges.len() > 1 {
                let (l, r) = ranges.split_at(ranges.len() / 2);
                fetch_halving(fetch, l, apply)?;
                return fetch_halving(fetch, r, apply);
            }
            let (p, a, b) = &ranges[0];
            if a >= b {
                return Err(format!("{e} (the points of {p} at time {a} alone)"));
            }
            let mid = ((*a as i128 + *b as i128).div_euclid(2)) as i64;
            fetch_halving(fetch, &[(p.clone(), *a, mid)], apply)?;
            fetch_halving(fetch, &[(p.clone(), mid + 1, *b)], apply)
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use duet_common::mutation::{Column, ColumnValues, InsertBatch, Op};
    use duet_common::types::DataType;
    use duet_common::version::Version;

    fn p(s: &str) -> Path {
        Path::parse(s).unwrap()
    }

    #[test]
    fn fetches_are_planned_by_the_peers_point_counts() {
        let plan = plan_fetches(&[((p("root.a.d.s"), 0, 99), 10), ((p("root.a.d.t"), 0, 99), 10), ((p("root.a.d.u"), 0, 99), 35)], 8, 20);
        assert_eq!(
            plan,
            vec![
                vec![(p("root.a.d.s"), 0, 99), (p("root.a.d.t"), 0, 99)],
                vec![(p("root.a.d.u"), 0, 49)],
                vec![(p("root.a.d.u"), 50, 99)],
            ],
            "two small ranges share a request; one of 35 points is cut in two"
        );
        let many: Vec<(Range, u64)> = (0..5).map(|i| ((p("root.a.d.s"), i * 10, i * 10 + 9), 0)).collect();
        assert_eq!(plan_fetches(&many, 2, 100).iter().map(|f| f.len()).collect::<Vec<_>>(), vec![2, 2, 1]);
        assert_eq!(plan_fetches(&[((p("root.a.d.s"), 5, 5), 1000)], 8, 10), vec![vec![(p("root.a.d.s"), 5, 5)]], "one instant is not cut");
        let all_time = plan_fetches(&[((p("root.a.d.s"), i64::MIN, i64::MAX), 30)], 8, 10);
        assert_eq!(all_time.iter().flatten().map(|r| (r.1, r.2)).collect::<Vec<_>>().first().map(|r| r.0), Some(i64::MIN));
        assert_eq!(all_time.iter().flatten().last().map(|r| r.2), Some(i64::MAX), "all of time, in three slices");
        assert_eq!(all_time.len(), 3);
    }

    #[test]
    fn a_fetch_refused_as_too_large_is_halved_until_it_fits() {
        // A peer whose series hold one point at every time 0..1000, answering up to 100 points.
        let held = |r: &Range| (r.1.max(0)..=r.2.min(999)).collect::<Vec<i64>>();
        let mut requests = 0;
        let mut fetch = |ranges: &[Range]| -> Result<Vec<Mutation>, String> {
            requests += 1;
            let times: Vec<Vec<i64>> = ranges.iter().map(held).collect();
            if times.iter().map(|t| t.len()).sum::<usize>() > 100 {
                return Err(format!("peer refused: the ranges asked for hold {TOO_LARGE}"));
            }
            Ok(ranges
                .iter()
                .zip(times)
                .map(|((s, _, _), times)| {
                    let n = times.len();
                    let col = Column { name: s.last().to_string(), dtype: DataType::Int64, values: ColumnValues::I64(vec![1; n]), nulls: None };
                    Mutation { version: Version::default(), origin_seq: 0, op: Op::Insert(vec![InsertBatch { device: s.parent().unwrap(), aligned: false, times, columns: vec![col] }]) }
                })
                .collect())
        };
        let mut got: Vec<(Path, i64)> = Vec::new();
        let mut apply = |muts: Vec<Mutation>| -> Result<(), String> {
            for m in muts {
                let Op::Insert(bs) = m.op else { unreachable!() };
                got.extend(bs.iter().flat_map(|b| b.times.iter().map(|t| (b.device.child(&b.columns[0].name), *t))));
            }
            Ok(())
        };
        let ranges = vec![(p("root.a.d.s"), 0, 999), (p("root.a.d.t"), 0, 49)];
        fetch_halving(&mut fetch, &ranges, &mut apply).unwrap();
        got.sort();
        let want: Vec<(Path, i64)> = (0..1000).map(|t| (p("root.a.d.s"), t)).chain((0..50).map(|t| (p("root.a.d.t"), t))).collect();
        assert_eq!(got, want, "every point once");
        assert!(requests < 40, "{requests} requests");
        // An error other than the size ends the repair.
        let mut failing = |_: &[Range]| -> Result<Vec<Mutation>, String> { Err("connection reset".into()) };
        assert_eq!(fetch_halving(&mut failing, &ranges, &mut |_| Ok(())), Err("connection reset".into()));
    }
}
