//! IoTDB 1.3.3's device-level TTL rules, beside the databases' own TTLs (kept in
//! [`crate::DatabaseInfo`]): which TTL a device's points live by, and what a compaction may log as
//! expired.
//!
//! A rule names one device (`root.db.d1`) or every device below a path (`root.db.g.**`,
//! `root.**`). A device lives by the most precise TTL that reaches it: its own rule, then the
//! `**` rule or database TTL with the longest path. A `**` rule and the database's TTL at the
//! same path are one setting made two ways (SET TTL takes a database's path as its TTL, and any
//! other path as a rule; a replica may not have the database yet): the newer decides, an UNSET
//! included, for the whole database (the devices at its path too). `INF` ([`TTL_INF`]) is a TTL too: it keeps a device's data where a broader rule
//! would expire it.

use std::collections::{BTreeMap, HashMap};

use duet_common::mutation::TTL_INF;
use duet_common::path::{Path, PathPattern};
use duet_common::version::Version;

/// How many TTLs (rules and databases' TTLs) may be set at once (IoTDB's `ttl_rule_capacity`
/// default): each read of a series looks its TTL up, and each compaction weighs them all.
pub const TTL_RULE_CAPACITY: usize = 1000;

/// A rule's setting: the TTL in timestamp units (None: unset, kept with its version so that an
/// older setting arriving late from a replica does not come back) and the version that made it.
pub type Setting = (Option<i64>, Version);

/// The rules, by the nodes of their paths.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TtlRules {
    /// Rules of one device.
    devices: BTreeMap<Vec<String>, Setting>,
    /// Rules `prefix.**`, by the prefix (`root` alone for `root.**`).
    below: BTreeMap<Vec<String>, Setting>,
    /// How many of them have a TTL set (none: reads look up databases' TTLs only).
    set: usize,
}

/// A database's TTL as the rules see it: its path, TTL and the version of that setting.
pub type DatabaseTtl<'a> = (&'a Path, Option<i64>, Version);

/// The devices a TTL reaches.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Scope {
    /// A database's TTL: the devices at or below its path.
    Database(Vec<String>),
    /// A rule `prefix.**`: the devices strictly below the prefix.
    Below(Vec<String>),
    /// A rule of one device.
    Device(Vec<String>),
}

impl Scope {
    fn contains_device(&self, dev: &[String]) -> bool {
        match self {
            Scope::Database(p) => dev.starts_with(p),
            Scope::Below(p) => dev.len() > p.len() && dev.starts_with(p),
            Scope::Device(p) => dev == &p[..],
        }
    }

    /// Whether `self` reaches only devices `outer` reaches too, and is the more precise of the two
    /// (so those devices live by `self`).
    fn nested_in(&self, outer: &Scope) -> bool {
        if self == outer {
            return false;
        }
        match (self, outer) {
            (Scope::Device(d), o) => o.contains_device(d),
            (_, Scope::Device(_)) => false,
            (Scope::Below(q) | Scope::Database(q), Scope::Database(p)) => q.starts_with(p),
            (Scope::Below(q) | Scope::Database(q), Scope::Below(p)) => q.len() > p.len() && q.starts_with(p),
        }
    }

    /// The series whose points it governs, as a deletion pattern.
    fn series_pattern(&self) -> PathPattern {
        let (mut nodes, tail): (Vec<String>, &[&str]) = match self {
            Scope::Database(p) => (p.clone(), &["**"]),
            Scope::Below(p) => (p.clone(), &["*", "**"]),
            Scope::Device(p) => (p.clone(), &["*"]),
        };
        nodes.extend(tail.iter().map(|s| s.to_string()));
        PathPattern::from_nodes(nodes)
    }
}

/// The map key of a rule: its path's nodes (without `**`) and whether it ends in `**`; None for a
/// pattern that is no rule (a wildcard elsewhere, or not below `root`).
pub fn rule_key(rule: &PathPattern) -> Option<(Vec<String>, bool)> {
    let nodes = rule.nodes();
    let (prefix, below) = match nodes.split_last() {
        Some((last, rest)) if last == "**" => (rest, true),
        _ => (nodes, false),
    };
    let ok = prefix.first().is_some_and(|r| r == "root") && prefix.iter().skip(1).all(|n| !n.is_empty() && !n.contains('*') && n != "root");
    (ok && (below || prefix.len() >= 2)).then(|| (prefix.to_vec(), below))
}

/// A rule's pattern from its key.
fn rule_pattern(prefix: &[String], below: bool) -> PathPattern {
    let mut nodes = prefix.to_vec();
    if below {
        nodes.push("**".into());
    }
    PathPattern::from_nodes(nodes)
}

/// A TTL as it applies: INF keeps data forever.
fn finite(ttl: i64) -> Option<i64> {
    (ttl != TTL_INF).then_some(ttl)
}

impl TtlRules {
    /// Whether no rule has a TTL set and no `**` rule was ever unset (one may stand for a
    /// database's TTL, unset): then only databases' TTLs apply, looked up as before.
    pub fn is_empty(&self) -> bool {
        self.set == 0 && self.below.is_empty()
    }

    /// How many rules have a TTL set.
    pub fn count_set(&self) -> usize {
        self.set
    }

    /// The setting of a rule, if it was ever set or unset.
    pub fn get(&self, rule: &PathPattern) -> Option<Setting> {
        let (key, below) = rule_key(rule)?;
        if below { self.below.get(&key) } else { self.devices.get(&key) }.copied()
    }

    /// Applies a setting made at `v`: the newest one wins, on every replica in any order.
    pub fn apply(&mut self, rule: &PathPattern, ttl: Option<i64>, v: Version) {
        let Some((key, below)) = rule_key(rule) else { return };
        let map = if below { &mut self.below } else { &mut self.devices };
        if map.get(&key).is_none_or(|(_, old)| v >= *old) {
            if let Some((Some(_), _)) = map.insert(key, (ttl, v)) {
                self.set -= 1;
            }
            self.set += usize::from(ttl.is_some());
        }
    }

    /// The one setting at a database's path: the newer of its TTL and a `**` rule there.
    pub(crate) fn at_database(&self, db: DatabaseTtl<'_>) -> Option<i64> {
        let (p, t, dv) = db;
        match self.below.get(p.nodes()) {
            Some((rt, rv)) if *rv > dv => *rt,
            _ => t,
        }
    }

    /// The TTLs in force, in path order: (path, TTL, whether it is a database's, shown as
    /// `path.**`), for SHOW TTL and for comparing replicas.
    pub fn in_force<'a>(&self, databases: impl Iterator<Item = DatabaseTtl<'a>>) -> Vec<(PathPattern, i64, bool)> {
        let databases: Vec<DatabaseTtl<'a>> = databases.collect();
        let db_paths: std::collections::HashSet<&[String]> = databases.iter().map(|(p, ..)| p.nodes()).collect();
        let mut out: Vec<(PathPattern, i64, bool)> = self.devices.iter().filter_map(|(k, (t, _))| Some((rule_pattern(k, false), (*t)?, false))).collect();
        for (k, (t, _)) in self.below.iter().filter(|(k, _)| !db_paths.contains(&k[..])) {
            if let Some(t) = t {
                out.push((rule_pattern(k, true), *t, false));
            }
        }
        for db in &databases {
            if let Some(t) = self.at_database(*db) {
                out.push((PathPattern::below(db.0), t, true));
            }
        }
        out.sort_by_key(|e| e.0.to_string());
        out
    }

    /// Every rule with its setting (unset ones too), devices' first, in path order.
    pub fn all(&self) -> impl Iterator<Item = (PathPattern, Setting)> + '_ {
        let devices = self.devices.iter().map(|(k, s)| (rule_pattern(k, false), *s));
        devices.chain(self.below.iter().map(|(k, s)| (rule_pattern(k, true), *s)))
    }

    /// The TTL the device `dev` lives by (None: its data never expires), given the database it
    /// is in.
    pub fn effective(&self, dev: &[String], db: Option<DatabaseTtl<'_>>) -> Option<i64> {
        if let Some((Some(t), _)) = self.devices.get(dev) {
            return finite(*t);
        }
        for len in (1..=dev.len()).rev() {
            match db.filter(|(p, ..)| p.nodes().len() == len) {
                // The database's path: its one setting reaches the devices at and below it.
                Some(db) => {
                    if let Some(t) = self.at_database(db) {
                        return finite(t);
                    }
                }
                None if len < dev.len() => {
                    if let Some((Some(t), _)) = self.below.get(&dev[..len]) {
                        return finite(*t);
                    }
                }
                None => {}
            }
        }
        None
    }

    /// What a compaction at `now` logs as expired, given the databases' TTLs: one deletion per
    /// TTL, of the points older than it under its path. A TTL that reaches devices living by a
    /// longer one (a more precise rule) deletes only what is older than the longest of them, and
    /// none where one is INF: a deletion by path pattern cannot leave those devices out. (Reads
    /// still hide every expired point; what such a TTL leaves on disk waits for its rules to change.)
    pub fn expiry<'a>(&self, databases: impl Iterator<Item = DatabaseTtl<'a>>, now: i64) -> Expiry {
        // (At a database's path, its one setting, whichever way it was made.)
        let databases: Vec<DatabaseTtl<'a>> = databases.collect();
        let db_paths: std::collections::HashSet<&[String]> = databases.iter().map(|(p, ..)| p.nodes()).collect();
        let mut set: Vec<(Scope, i64)> = databases.iter().filter_map(|db| Some((Scope::Database(db.0.nodes().to_vec()), self.at_database(*db)?))).collect();
        set.extend(self.devices.iter().filter_map(|(k, (t, _))| Some((Scope::Device(k.clone()), (*t)?))));
        set.extend(self.below.iter().filter(|(k, _)| !db_paths.contains(&k[..])).filter_map(|(k, (t, _))| Some((Scope::Below(k.clone()), (*t)?))));
        let mut out = Expiry::default();
        for (scope, ttl) in &set {
            let longest = set.iter().filter(|(inner, _)| inner.nested_in(scope)).map(|(_, t)| *t).fold(*ttl, i64::max);
            if longest == TTL_INF {
                continue;
            }
            let cutoff = now.saturating_sub(longest);
            if cutoff == i64::MIN {
                continue;
            }
            let map = match scope {
                Scope::Database(_) => &mut out.databases,
                Scope::Below(_) => &mut out.below,
                Scope::Device(_) => &mut out.devices,
            };
            let (Scope::Database(k) | Scope::Below(k) | Scope::Device(k)) = scope;
            map.insert(k.clone(), cutoff);
            out.deletes.push((scope.series_pattern(), cutoff, scope.clone()));
        }
        out
    }
}

/// What a compaction logs as expired ([`TtlRules::expiry`]).
#[derive(Clone, Debug, Default)]
pub struct Expiry {
    /// (series pattern, cutoff, scope): the points older than the cutoff under the pattern.
    deletes: Vec<(PathPattern, i64, Scope)>,
    databases: HashMap<Vec<String>, i64>,
    below: HashMap<Vec<String>, i64>,
    devices: HashMap<Vec<String>, i64>,
}

impl Expiry {
    /// The deletions: (series pattern, cutoff), the points older than the cutoff under the pattern.
    pub fn deletes(&self) -> impl Iterator<Item = (&PathPattern, i64)> {
        self.deletes.iter().map(|(p, c, _)| (p, *c))
    }

    /// Keeps only the deletions that reach a point of `series` (each with the earliest time it
    /// holds): a compaction logs those that take something from its files, not every TTL every
    /// time. [`Expiry::drop_before`] then answers by what is left.
    pub fn retain_reaching<'a>(&mut self, series: impl Iterator<Item = (&'a Path, i64)>) {
        let mut needed: std::collections::HashSet<Scope> = std::collections::HashSet::new();
        for (s, start) in series {
            let nodes = s.nodes();
            let dev = &nodes[..nodes.len() - 1];
            let reached = |cutoff: Option<&i64>| cutoff.is_some_and(|c| start < *c);
            if reached(self.devices.get(dev)) {
                needed.insert(Scope::Device(dev.to_vec()));
            }
            for len in 1..=dev.len() {
                if reached(self.databases.get(&dev[..len])) {
                    needed.insert(Scope::Database(dev[..len].to_vec()));
                }
                if len < dev.len() && reached(self.below.get(&dev[..len])) {
                    needed.insert(Scope::Below(dev[..len].to_vec()));
                }
            }
        }
        let (databases, below, devices) = (&mut self.databases, &mut self.below, &mut self.devices);
        self.deletes.retain(|(_, _, scope)| {
            let keep = needed.contains(scope);
            if !keep {
                match scope {
                    Scope::Database(k) => databases.remove(k),
                    Scope::Below(k) => below.remove(k),
                    Scope::Device(k) => devices.remove(k),
                };
            }
            keep
        });
    }

    /// The time before which the points of `series` are deleted by these deletions (the latest of
    /// those that reach it), if any: what a compaction may leave out of its file.
    pub fn drop_before(&self, series: &Path) -> Option<i64> {
        let nodes = series.nodes();
        let dev = &nodes[..nodes.len() - 1];
        let mut best = self.devices.get(dev).copied();
        for len in 1..=dev.len() {
            let here = [self.databases.get(&dev[..len]), if len < dev.len() { self.below.get(&dev[..len]) } else { None }];
            for c in here.into_iter().flatten() {
                best = Some(best.map_or(*c, |b| b.max(*c)));
            }
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use duet_common::version::InstanceId;

    fn v(hlc: u64) -> Version {
        Version { hlc, origin: InstanceId(1) }
    }

    fn pat(s: &str) -> PathPattern {
        PathPattern::parse(s).unwrap()
    }

    fn nodes(s: &str) -> Vec<String> {
        Path::parse(s).unwrap().nodes().to_vec()
    }

    #[test]
    fn rules_take_devices_and_double_star_tails_only() {
        assert_eq!(rule_key(&pat("root.**")), Some((vec!["root".into()], true)));
        assert_eq!(rule_key(&pat("root.db.d1")), Some((nodes("root.db.d1"), false)));
        for bad in ["root.*.db", "root.**.db.*", "root.db.*", "root.db.d*.**"] {
            assert_eq!(rule_key(&pat(bad)), None, "{bad}");
        }
    }

    #[test]
    fn the_most_precise_ttl_decides_and_inf_keeps() {
        let mut r = TtlRules::default();
        r.apply(&pat("root.**"), Some(100), v(1));
        r.apply(&pat("root.db.g.**"), Some(50), v(2));
        r.apply(&pat("root.db.g.keep"), Some(TTL_INF), v(3));
        let db = Path::parse("root.db").unwrap();
        let eff = |r: &TtlRules, d: &str, db_ttl: Option<i64>| r.effective(&nodes(d), Some((&db, db_ttl, v(0))));
        assert_eq!(eff(&r, "root.db.g.x", Some(70)), Some(50), "the longest ** rule");
        assert_eq!(eff(&r, "root.db.g", Some(70)), Some(70), "** reaches only below its path: the database's");
        assert_eq!(eff(&r, "root.db.h", None), Some(100), "a database without a TTL: root.**");
        assert_eq!(eff(&r, "root.db.g.keep", Some(70)), None, "INF");
        assert_eq!(r.effective(&nodes("root.other.d"), None), Some(100));
        // An unset rule no longer counts; an older setting arriving late does not undo it.
        r.apply(&pat("root.db.g.**"), None, v(4));
        r.apply(&pat("root.db.g.**"), Some(5), v(3));
        assert_eq!(eff(&r, "root.db.g.x", Some(70)), Some(70));
        assert_eq!(r.count_set(), 2);
    }

    #[test]
    fn expiry_never_deletes_what_a_longer_precise_rule_keeps() {
        let mut r = TtlRules::default();
        r.apply(&pat("root.**"), Some(100), v(1));
        r.apply(&pat("root.a.g.**"), Some(300), v(1));
        r.apply(&pat("root.b.keep"), Some(TTL_INF), v(1));
        r.apply(&pat("root.c.d"), Some(10), v(1));
        let c = Path::parse("root.c").unwrap();
        let e = r.expiry([(&c, Some(20), v(1))].into_iter(), 1000);
        let mut got: Vec<(String, i64)> = e.deletes().map(|(p, c)| (p.to_string(), c)).collect();
        got.sort();
        // root.** reaches root.b.keep (INF): no deletion of its own; root.c's (20) reaches
        // root.c.d (10), a shorter one: its own cutoff.
        assert_eq!(got, vec![("root.a.g.*.**".to_string(), 700), ("root.c.**".to_string(), 980), ("root.c.d.*".to_string(), 990)]);
        let before = |s: &str| e.drop_before(&Path::parse(s).unwrap());
        assert_eq!(before("root.c.d.s"), Some(990), "the latest deletion that reaches it");
        assert_eq!(before("root.c.e.s"), Some(980));
        assert_eq!(before("root.a.g.x.s"), Some(700));
        assert_eq!(before("root.a.h.s"), None, "root.** deleted nothing");
        // Without the INF rule, root.** deletes what root.a.g.**'s longer TTL lets go.
        r.apply(&pat("root.b.keep"), None, v(2));
        let mut e = r.expiry([(&c, Some(20), v(1))].into_iter(), 1000);
        assert!(e.deletes().any(|(p, c)| p.to_string() == "root.*.**" && c == 700), "{:?}", e.deletes);
        assert_eq!(e.drop_before(&Path::parse("root.a.h.s").unwrap()), Some(700));
        // A compaction logs only what reaches points of its files, and drops only that.
        let (old_c, new_a) = (Path::parse("root.c.d.s").unwrap(), Path::parse("root.a.h.s").unwrap());
        e.retain_reaching([(&old_c, 750), (&new_a, 800)].into_iter());
        assert_eq!(e.deletes().map(|(p, _)| p.to_string()).collect::<Vec<_>>(), vec!["root.c.**", "root.c.d.*"]);
        assert_eq!(e.drop_before(&new_a), None);
        assert_eq!(e.drop_before(&old_c), Some(990));
    }

    #[test]
    fn a_double_star_rule_and_the_database_ttl_at_one_path_are_one_setting() {
        let mut r = TtlRules::default();
        let db = Path::parse("root.sg").unwrap();
        // A rule set while root.sg was no database here, then the database's TTL, newer.
        r.apply(&pat("root.sg.**"), Some(3_600), v(1));
        let on = |r: &TtlRules, db_ttl: Option<i64>, dv: u64| r.effective(&nodes("root.sg.d"), Some((&db, db_ttl, v(dv))));
        assert_eq!(on(&r, Some(86_400), 2), Some(86_400), "the newer decides");
        assert_eq!(on(&r, None, 2), None, "an UNSET of the database's TTL, newer, too");
        assert_eq!(on(&r, Some(86_400), 0), Some(3_600));
        assert_eq!(r.effective(&nodes("root.sg"), Some((&db, Some(86_400), v(0)))), Some(3_600), "the devices at the database's path too");
        let shown = |r: &TtlRules, dv: u64| r.in_force([(&db, Some(86_400), v(dv))].into_iter());
        assert_eq!(shown(&r, 2), vec![(pat("root.sg.**"), 86_400, true)]);
        assert_eq!(shown(&r, 0), vec![(pat("root.sg.**"), 3_600, true)]);
        // One deletion, by the setting in force.
        let deletes = |r: &TtlRules, dv: u64| r.expiry([(&db, Some(86_400), v(dv))].into_iter(), 100_000).deletes().map(|(p, c)| (p.to_string(), c)).collect::<Vec<_>>();
        assert_eq!(deletes(&r, 2), vec![("root.sg.**".to_string(), 13_600)]);
        assert_eq!(deletes(&r, 0), vec![("root.sg.**".to_string(), 96_400)]);
        // An UNSET through the rule, newer than the database's TTL: no TTL there at all.
        r.apply(&pat("root.sg.**"), None, v(3));
        assert!(!r.is_empty(), "reads look at the rules");
        assert_eq!(on(&r, Some(86_400), 2), None);
        assert_eq!(r.effective(&nodes("root.sg"), Some((&db, Some(86_400), v(2)))), None);
        assert!(shown(&r, 2).is_empty());
        assert!(deletes(&r, 2).is_empty());
    }
}
