//! What a pipe ships: the source's selection and trimming of one WAL mutation.

use duet_common::mutation::{Mutation, Op};
use duet_common::path::{Path, PathPattern};
use duet_common::version::InstanceId;

use crate::params::SourceParams;

fn covers(patterns: &[PathPattern], p: &Path) -> bool {
    patterns.iter().any(|pat| pat.matches(p))
}

fn may_cover_below(patterns: &[PathPattern], p: &Path) -> bool {
    patterns.iter().any(|pat| pat.may_match_below(p) || pat.covers(p))
}

/// A deletion's patterns cut down to the paths the pipe covers: each kept as it is when one of the
/// pipe's patterns contains it, else its intersection with each of them. Where an intersection
/// cannot be expressed (`**` on both sides in ways [`PathPattern::intersect`] does not take,
/// either way round), the pattern is kept whole if it can reach a covered series and `whole`
/// allows (a deletion of points: deleting more than the pipe covers on the peer, as before), or
/// left out (a drop of series must not reach the peer's own).
fn narrow(covered: &[PathPattern], patterns: Vec<PathPattern>, whole: bool) -> Vec<PathPattern> {
    let mut out: Vec<PathPattern> = Vec::new();
    for dp in patterns {
        if covered.iter().any(|c| c.contains(&dp)) {
            out.push(dp);
            continue;
        }
        for c in covered {
            match dp.intersect(c).or_else(|| c.intersect(&dp)) {
                Some(parts) => out.extend(parts),
                None => {
                    let fixed: Vec<String> = dp.nodes().iter().take_while(|n| !n.contains('*')).cloned().collect();
                    if Path::from_nodes(fixed).map(|prefix| may_cover_below(covered, &prefix)).unwrap_or(true) {
                        if whole {
                            tracing::warn!(deletion = %dp, pipe_path = %c, "a deletion crosses the pipe's path in a way that cannot be narrowed: shipped whole");
                            out.push(dp.clone());
                        } else {
                            tracing::warn!(deletion = %dp, pipe_path = %c, "a drop crosses the pipe's path in a way that cannot be narrowed: not shipped");
                        }
                    }
                }
            }
        }
    }
    out.sort_by_key(|p| p.to_string());
    out.dedup();
    out
}

/// What a receiver of an earlier version gets instead of an op it does not take: for
/// [`Op::DropMatching`], a deletion of the points of the series it would drop (their definitions
/// stay there); an [`Op::AlterSeries`] is held back (logged), so that the pipe's data keeps
/// flowing during a rolling upgrade rather than stalling on a record the peer cannot decode.
pub fn for_older_receiver(m: Mutation, caps: &crate::sink::PeerCaps) -> Option<Mutation> {
    match m.op {
        Op::DropMatching(patterns) if !caps.drop_matching => Some(Mutation { op: Op::Delete { patterns, start: i64::MIN, end: i64::MAX }, ..m }),
        Op::AlterSeries { path, .. } if !caps.alter_series => {
            tracing::warn!(series = %path, "ALTER TIMESERIES not shipped: the peer runs an earlier version that does not take it; once it is upgraded, run the ALTER there too");
            None
        }
        // (INF is news to it too: no TTL is what it means there, without rules to override.)
        Op::SetTtl { database, ttl: Some(duet_common::mutation::TTL_INF) } if !caps.ttl_rules => Some(Mutation { op: Op::SetTtl { database, ttl: None }, ..m }),
        Op::SetTtlRule { rule, .. } if !caps.ttl_rules => {
            tracing::warn!(%rule, "device-level TTL not shipped: the peer runs an earlier version that does not take it; once it is upgraded, set it there too");
            None
        }
        _ => Some(m),
    }
}

/// Whether the source ships every local mutation unchanged (no path, time or inclusion filter):
/// then a WAL record can be forwarded as bytes, with only its origin sequence patched in.
pub fn ships_local_verbatim(p: &SourceParams) -> bool {
    (p.double_living || !p.forwarding)
        && p.patterns.len() == 1
        && p.patterns[0].nodes() == ["root", "**"]
        && p.start_time == i64::MIN
        && p.end_time == i64::MAX
        && crate::params::CATEGORIES.iter().all(|c| p.inclusion.has(c))
}

/// Byte offsets of the fields a verbatim forward reads or patches (see `Mutation::encode`).
pub const HLC_AT: std::ops::Range<usize> = 0..8;
/// Offset of the origin instance id.
pub const ORIGIN_AT: std::ops::Range<usize> = 8..16;
/// Offset of the origin sequence number.
pub const ORIGIN_SEQ_AT: std::ops::Range<usize> = 16..24;

/// Turns the WAL record `seq` into what the pipe ships, or None when the source does not select it.
///
/// Local writes get `origin_seq = seq`, the position the receiver records as its watermark for this
/// instance; writes that came from elsewhere keep their origin and origin sequence and are only
/// shipped when the source forwards pipe requests (never by a double-living source).
pub fn select(p: &SourceParams, me: InstanceId, seq: u64, mut m: Mutation) -> Option<Mutation> {
    if m.version.origin == me {
        m.origin_seq = seq;
    } else if p.double_living || !p.forwarding {
        return None;
    }
    let inc = &p.inclusion;
    let all_paths = p.patterns.len() == 1 && p.patterns[0].nodes() == ["root", "**"];
    let op = match m.op {
        Op::Insert(mut batches) => {
            if !inc.has("data.insert") {
                return None;
            }
            for b in batches.iter_mut() {
                if !all_paths {
                    let dev = b.device.clone();
                    b.columns.retain(|c| covers(&p.patterns, &dev.child(&c.name)));
                }
                if p.start_time != i64::MIN || p.end_time != i64::MAX {
                    let keep: Vec<usize> = (0..b.times.len()).filter(|&i| b.times[i] >= p.start_time && b.times[i] <= p.end_time).collect();
                    if keep.len() != b.times.len() {
                        b.times = keep.iter().map(|&i| b.times[i]).collect();
                        for c in b.columns.iter_mut() {
                            let mut vals = duet_common::mutation::ColumnValues::empty(c.dtype, keep.len());
                            for &i in &keep {
                                vals.push(c.values.get(i));
                            }
                            c.values = vals;
                            c.nulls = c.nulls.as_ref().map(|n| keep.iter().map(|&i| n[i]).collect());
                        }
                    }
                }
            }
            batches.retain(|b| !b.columns.is_empty() && !b.times.is_empty());
            if batches.is_empty() {
                return None;
            }
            Op::Insert(batches)
        }
        Op::Delete { patterns, start, end } => {
            if !inc.has("data.delete") {
                return None;
            }
            let (start, end) = (start.max(p.start_time), end.min(p.end_time));
            if start > end {
                return None;
            }
            if !all_paths {
                // Only what the pipe covers: `delete from root.**` on this side must not reach the
                // peer's series outside the pipe's paths.
                let patterns = narrow(&p.patterns, patterns, true);
                if patterns.is_empty() {
                    return None;
                }
                return Some(Mutation { op: Op::Delete { patterns, start, end }, ..m });
            }
            Op::Delete { patterns, start, end }
        }
        Op::CreateDatabase(db) => {
            if !inc.has("schema.database.create") || !(all_paths || may_cover_below(&p.patterns, &db)) {
                return None;
            }
            Op::CreateDatabase(db)
        }
        Op::DeleteDatabases(dbs) => {
            if !inc.has("schema.database.drop") {
                return None;
            }
            let dbs: Vec<Path> = dbs.into_iter().filter(|d| all_paths || may_cover_below(&p.patterns, d)).collect();
            if dbs.is_empty() {
                return None;
            }
            if !all_paths && !dbs.iter().all(|d| p.patterns.iter().any(|c| c.contains(&PathPattern::below(d)))) {
                // The pipe carries only part of a database: on the peer, the series it carries of
                // it are dropped (the peer keeps the rest of the database, and its series).
                let patterns = narrow(&p.patterns, dbs.iter().map(PathPattern::below).collect(), false);
                if patterns.is_empty() {
                    return None;
                }
                return Some(Mutation { op: Op::DropMatching(patterns), ..m });
            }
            Op::DeleteDatabases(dbs)
        }
        Op::CreateSeries(mut defs) => {
            if !inc.has("schema.timeseries.ordinary.create") {
                return None;
            }
            defs.retain(|d| all_paths || covers(&p.patterns, &d.path));
            if defs.is_empty() {
                return None;
            }
            Op::CreateSeries(defs)
        }
        Op::DropSeries(mut ps) => {
            if !inc.has("schema.timeseries.ordinary.drop") {
                return None;
            }
            ps.retain(|s| all_paths || covers(&p.patterns, s));
            if ps.is_empty() {
                return None;
            }
            Op::DropSeries(ps)
        }
        Op::SetTtl { database, ttl } => {
            if !inc.has("schema.ttl") || !(all_paths || may_cover_below(&p.patterns, &database)) {
                return None;
            }
            Op::SetTtl { database, ttl }
        }
        Op::SetTtlRule { rule, ttl } => {
            // (`root.**` reaches every path a pipe may carry.)
            let reaches = || match Path::from_nodes(rule.literal_prefix().to_vec()) {
                Ok(prefix) => may_cover_below(&p.patterns, &prefix),
                Err(_) => true,
            };
            if !inc.has("schema.ttl") || !(all_paths || reaches()) {
                return None;
            }
            Op::SetTtlRule { rule, ttl }
        }
        Op::DropMatching(patterns) => {
            if !inc.has("schema.timeseries.ordinary.drop") {
                return None;
            }
            let patterns = if all_paths { patterns } else { narrow(&p.patterns, patterns, false) };
            if patterns.is_empty() {
                return None;
            }
            Op::DropMatching(patterns)
        }
        Op::AlterSeries { path, change } => {
            if !inc.has("schema.timeseries.ordinary.alter") || !(all_paths || covers(&p.patterns, &path)) {
                return None;
            }
            Op::AlterSeries { path, change }
        }
        // A receiver's own bookkeeping of where replicated writes came from.
        Op::Stream(_) => return None,
    };
    m.op = op;
    Some(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::PipeParams;
    use duet_common::mutation::{Column, ColumnValues, InsertBatch};
    use duet_common::time::Precision;
    use duet_common::types::DataType;
    use duet_common::version::Version;

    fn params(source: &[(&str, &str)]) -> SourceParams {
        let s: Vec<(String, String)> = source.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
        PipeParams::parse(&s, &[], &[("sink".into(), "do-nothing-sink".into())], Precision::Ms).unwrap().source
    }

    fn insert(origin: u64, dev: &str, times: Vec<i64>) -> Mutation {
        let n = times.len();
        Mutation {
            version: Version { hlc: 1, origin: InstanceId(origin) },
            origin_seq: 0,
            op: Op::Insert(vec![InsertBatch {
                device: Path::parse(dev).unwrap(),
                aligned: false,
                times,
                columns: vec![
                    Column { name: "a".into(), dtype: DataType::Int64, values: ColumnValues::I64((0..n as i64).collect()), nulls: None },
                    Column { name: "b".into(), dtype: DataType::Int64, values: ColumnValues::I64(vec![7; n]), nulls: None },
                ],
            }]),
        }
    }

    #[test]
    fn double_living_ships_only_local_writes() {
        let p = params(&[("source.mode.double-living", "true")]);
        let got = select(&p, InstanceId(1), 9, insert(1, "root.db.d", vec![1])).unwrap();
        assert_eq!(got.origin_seq, 9);
        assert!(select(&p, InstanceId(1), 10, insert(2, "root.db.d", vec![1])).is_none(), "no echo");
        let fwd = params(&[]);
        let m = Mutation { origin_seq: 4, ..insert(2, "root.db.d", vec![1]) };
        assert_eq!(select(&fwd, InstanceId(1), 10, m).unwrap().origin_seq, 4, "forwarded writes keep their origin position");
    }

    #[test]
    fn verbatim_forwarding_matches_select() {
        let p = params(&[("source.mode.double-living", "true")]);
        assert!(ships_local_verbatim(&p));
        assert!(!ships_local_verbatim(&params(&[("path", "root.db.**")])));
        assert!(!ships_local_verbatim(&params(&[("inclusion", "data.insert")])));
        let m = insert(1, "root.db.d", vec![1, 2]);
        let mut raw = Vec::new();
        m.encode(&mut raw);
        assert_eq!(u64::from_le_bytes(raw[ORIGIN_AT].try_into().unwrap()), 1);
        raw[ORIGIN_SEQ_AT].copy_from_slice(&77u64.to_le_bytes());
        let mut want = Vec::new();
        select(&p, InstanceId(1), 77, m).unwrap().encode(&mut want);
        assert_eq!(raw, want);
    }

    #[test]
    fn a_deletion_is_narrowed_to_the_pipes_paths() {
        let p = params(&[("path", "root.a.**")]);
        let del = |pat: &str| Mutation { version: Version::default(), origin_seq: 0, op: Op::Delete { patterns: vec![PathPattern::parse(pat).unwrap()], start: 0, end: 1 } };
        let shipped = |pat: &str| match select(&p, InstanceId(0), 1, del(pat)).map(|m| m.op) {
            Some(Op::Delete { patterns, .. }) => patterns.iter().map(|x| x.to_string()).collect::<Vec<_>>(),
            None => vec![],
            Some(op) => panic!("{op:?}"),
        };
        assert_eq!(shipped("root.**"), ["root.a.**"], "the peer's series outside root.a are not touched");
        assert_eq!(shipped("root.a.d.s"), ["root.a.d.s"]);
        assert_eq!(shipped("root.*.d.s"), ["root.a.d.s"]);
        assert_eq!(shipped("root.**.s"), ["root.a.**.s", "root.a.s"]);
        assert!(shipped("root.b.**").is_empty());
        // A database the pipe covers only in part: its covered points are deleted, not the database.
        let gone = |paths: &[(&str, &str)], db: &str| select(&params(paths), InstanceId(0), 1, Mutation { version: Version::default(), origin_seq: 0, op: Op::DeleteDatabases(vec![Path::parse(db).unwrap()]) }).map(|m| m.op);
        let x = vec![PathPattern::parse("root.a.x.**").unwrap()];
        assert_eq!(gone(&[("path", "root.a.x.**")], "root.a"), Some(Op::DropMatching(x.clone())), "the covered series are dropped");
        let m = Mutation { version: Version::default(), origin_seq: 0, op: Op::DropMatching(x.clone()) };
        let old = crate::sink::PeerCaps::default();
        assert_eq!(for_older_receiver(m.clone(), &old).unwrap().op, Op::Delete { patterns: x, start: i64::MIN, end: i64::MAX }, "or their points deleted");
        let new = crate::sink::PeerCaps { drop_matching: true, alter_series: true, ttl_rules: true, ..old };
        assert_eq!(for_older_receiver(m, &new).unwrap().op, Op::DropMatching(vec![PathPattern::parse("root.a.x.**").unwrap()]));
        let alter = Mutation { version: Version::default(), origin_seq: 0, op: Op::AlterSeries { path: Path::parse("root.a.d.s").unwrap(), change: duet_common::mutation::SeriesChange::Drop(vec!["k".into()]) } };
        assert!(for_older_receiver(alter.clone(), &old).is_none(), "held back from a receiver that cannot decode it");
        assert!(for_older_receiver(alter, &new).is_some());
        let rule = Mutation { version: Version::default(), origin_seq: 0, op: Op::SetTtlRule { rule: PathPattern::parse("root.a.d").unwrap(), ttl: Some(5) } };
        assert!(for_older_receiver(rule.clone(), &old).is_none(), "a TTL rule is held back likewise");
        assert!(for_older_receiver(rule, &new).is_some());
        assert_eq!(gone(&[("path", "root.a.**")], "root.a"), Some(Op::DeleteDatabases(vec![Path::parse("root.a").unwrap()])));
        // Pipe paths with wildcards before `**`, or `**` inside: cut the other way round (these
        // went whole, and dropped the peer's own series outside the pipe).
        let pats = |v: &[&str]| v.iter().map(|x| PathPattern::parse(x).unwrap()).collect::<Vec<_>>();
        assert_eq!(gone(&[("path", "root.*.x.**")], "root.p"), Some(Op::DropMatching(pats(&["root.p.x.**"]))));
        assert_eq!(gone(&[("path", "root.**.s")], "root.p"), Some(Op::DropMatching(pats(&["root.p.**.s", "root.p.s"]))));
        assert_eq!(gone(&[("path", "root.a.**")], "root.b"), None);
    }

    #[test]
    fn paths_times_and_inclusion_trim() {
        let p = params(&[("path", "root.db.*.a"), ("start-time", "2"), ("end-time", "3")]);
        let got = select(&p, InstanceId(1), 1, insert(1, "root.db.d", vec![1, 2, 3, 4])).unwrap();
        let Op::Insert(b) = got.op else { panic!() };
        assert_eq!(b[0].times, vec![2, 3]);
        assert_eq!(b[0].columns.len(), 1);
        assert_eq!(b[0].columns[0].values, ColumnValues::I64(vec![1, 2]));
        assert!(select(&p, InstanceId(1), 1, insert(1, "root.other.d", vec![2])).is_none());
        let only_inserts = params(&[("inclusion", "data.insert")]);
        let del = Mutation { version: Version::default(), origin_seq: 0, op: Op::Delete { patterns: vec![PathPattern::parse("root.**").unwrap()], start: 0, end: 1 } };
        assert!(select(&only_inserts, InstanceId(0), 1, del.clone()).is_none());
        assert!(select(&params(&[]), InstanceId(0), 1, del).is_some());
    }
}
