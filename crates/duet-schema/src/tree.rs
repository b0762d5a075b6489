//! Databases, devices and series, with validation of every schema change.

use std::collections::BTreeMap;

use duet_common::mutation::{Column, ColumnValues, InsertBatch, Mutation, Op, SeriesChange, SeriesDef};
use duet_common::path::{Path, PathPattern};
use duet_common::status::{Status, StatusCode};
use duet_common::types::DataType;
use duet_common::version::{InstanceId, Version};

/// A database (IoTDB's storage group) and its settings.
#[derive(Clone, Debug, PartialEq)]
pub struct DatabaseInfo {
    /// Time-to-live in timestamp units, if set.
    pub ttl: Option<i64>,
    /// Newest creation of the database (a deletion older than it leaves the database).
    pub version: Version,
    /// Earliest creation (for one kept by newer series through its deletion, the oldest of them):
    /// between databases that would nest, created on two replicas, the earlier one stays.
    pub created: Version,
    /// Version of the TTL setting in force: the newest one wins on every replica.
    pub ttl_version: Version,
}

/// What [`Schema::apply_with`] asks the stored data: the oldest version greater than the given one
/// among a series' points, of any type, with that point's type.
pub type NewerData<'a> = dyn Fn(&Path, Version) -> Option<(Version, DataType)> + 'a;

/// One time series.
#[derive(Clone, Debug, PartialEq)]
pub struct SeriesInfo {
    /// Its definition: the deciding creation's, with the ALTER TIMESERIES changes made since.
    pub def: SeriesDef,
    /// The database it belongs to.
    pub database: Path,
    /// Version of the write that created it; decides type conflicts between replicas, and its
    /// definition (alias, tags, encoding) is that of the earliest creation.
    pub version: Version,
    /// Newest creation (or write newer than a drop that it survived): a drop older than this
    /// leaves the series.
    pub latest: Version,
    /// Newest write to the series (kept in schema snapshots): a drop older than it leaves the
    /// series even when a later deletion removed the written points, as where the drop arrived
    /// first and the write made the series again.
    pub written: Version,
    /// That write's type and whether it was to an aligned device (on the writer): where a drop
    /// came first, the write makes the series again with them.
    pub written_as: (DataType, bool),
    /// Every creation since the series' newest drop (of any type: a losing type's too), oldest
    /// first, with writes that made it again after a drop: the series is the first's. A drop
    /// that arrives late takes away those older than it, and the first left decides again, as on
    /// a replica that saw the drop first and never applied them.
    creations: Vec<(Version, SeriesDef)>,
    /// The deciding creation's definition, before the changes below.
    base: SeriesDef,
    /// Every ALTER TIMESERIES since the series' newest drop, oldest first. Those newer than the
    /// series' creation (`version`) shape its definition, in version order: one older than that
    /// was made to a series that, where the drop came first, did not exist.
    alters: Vec<(Version, SeriesChange)>,
}

impl SeriesInfo {
    /// The creations since the series' newest drop, oldest first (the series is the first's).
    pub fn creations(&self) -> &[(Version, SeriesDef)] {
        &self.creations
    }

    /// The deciding creation's definition (without ALTER TIMESERIES changes).
    pub fn base(&self) -> &SeriesDef {
        &self.base
    }

    /// The ALTER TIMESERIES changes since the series' newest drop, oldest first.
    pub fn alters(&self) -> &[(Version, SeriesChange)] {
        &self.alters
    }

    fn new(d: &SeriesDef, database: Path, v: Version) -> SeriesInfo {
        SeriesInfo {
            def: d.clone(),
            database,
            version: v,
            latest: v,
            written: Version::default(),
            written_as: (d.dtype, false),
            creations: vec![(v, d.clone())],
            base: d.clone(),
            alters: vec![],
        }
    }

    /// Makes `d` the deciding definition (its alignment too, which the device may settle).
    fn set_base(&mut self, d: SeriesDef) {
        self.def.aligned = d.aligned;
        self.base = d;
        self.refresh();
    }

    /// Rebuilds the definition from the deciding one and the changes since the creation,
    /// keeping the alignment the device settled.
    fn refresh(&mut self) {
        let mut d = self.base.clone();
        for (_, c) in self.alters.iter().filter(|a| a.0 > self.version) {
            c.apply_to(&mut d);
        }
        d.aligned = self.def.aligned;
        self.def = d;
    }

    /// Records a creation at `v`, in version order (once per version).
    fn add_creation(&mut self, v: Version, d: &SeriesDef) {
        if let Err(i) = self.creations.binary_search_by(|c| c.0.cmp(&v)) {
            self.creations.insert(i, (v, d.clone()));
        }
    }
}

/// One device: a path with measurements below it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DeviceInfo {
    /// Whether the device is aligned.
    pub aligned: bool,
    /// Measurement names of the device.
    pub measurements: Vec<String>,
    /// The smallest creation version among its series (whose alignment the device takes), and
    /// how many series have it: kept so that adding or removing one of many series on a wide
    /// device does not look at all the others.
    earliest: (Version, usize),
}

/// The schema tree.
#[derive(Clone, Debug, Default)]
pub struct Schema {
    databases: BTreeMap<Path, DatabaseInfo>,
    series: BTreeMap<Path, SeriesInfo>,
    devices: BTreeMap<Path, DeviceInfo>,
    /// Newest drop of each series path: a creation older than it (a replica's, arriving late)
    /// is not applied.
    dropped_series: BTreeMap<Path, Version>,
    /// Newest deletion of each database path, likewise.
    dropped_databases: BTreeMap<Path, Version>,
    /// TTL settings newer than a database's deletion that arrived while it was gone (a replica
    /// set them before it saw the deletion, and then wrote into the database, bringing it back):
    /// applied when it comes back, as they were on that replica.
    pending_ttl: BTreeMap<Path, (Option<i64>, Version)>,
    /// Devices whose earliest series went during the op being applied: their alignment is
    /// settled once at its end (a drop of a wide device would otherwise look at all the others
    /// again for each series it removes).
    unsettled: std::collections::BTreeSet<Path>,
    /// ALTER TIMESERIES changes newer than the newest drop of a series that is not here (it went
    /// with an older drop, or never came): where that drop came first, a write or creation older
    /// than the change may yet make the series again, and the change then shapes it.
    pending_alters: BTreeMap<Path, Vec<(Version, SeriesChange)>>,
    /// TTL rules of devices and subtrees (IoTDB 1.3.3), besides the databases' TTLs.
    ttl_rules: crate::ttl::TtlRules,
}

/// The first words of [`Schema::describe`]'s keys of TTL rules (a peer of an earlier version has
/// none to compare).
pub const TTL_RULE_KEY: &str = "TTL rule ";

/// The entries of `map` whose paths `pattern` matches, in path order, looking only at the range of
/// its literal prefix (an exact pattern is one lookup): schemas of 100,000s of series are common.
fn matching<'a: 'p, 'p, V>(map: &'a BTreeMap<Path, V>, pattern: &'p PathPattern) -> Box<dyn Iterator<Item = (&'a Path, &'a V)> + 'p> {
    if !pattern.has_wildcard() {
        if let Some(p) = pattern.as_path() {
            return Box::new(map.get_key_value(&p).into_iter());
        }
    }
    match Path::from_nodes(pattern.literal_prefix().to_vec()) {
        Ok(prefix) => Box::new(map.range(prefix.clone()..).take_while(move |(p, _)| p.starts_with(&prefix)).filter(move |(p, _)| pattern.matches(p))),
        Err(_) => Box::new(map.iter().filter(move |(p, _)| pattern.matches(p))),
    }
}

/// The entries of `map` at or below `prefix`, in path order.
fn below<'a, V>(map: &'a BTreeMap<Path, V>, prefix: &'a Path) -> impl Iterator<Item = (&'a Path, &'a V)> + 'a {
    map.range(prefix.clone()..).take_while(move |(p, _)| p.starts_with(prefix))
}

fn ok_name(n: &str) -> bool {
    !n.is_empty() && n != "root" && !n.contains('*')
}

impl Schema {
    /// An empty schema.
    pub fn new() -> Schema {
        Schema::default()
    }

    /// All databases in path order.
    pub fn databases(&self) -> impl Iterator<Item = (&Path, &DatabaseInfo)> {
        self.databases.iter()
    }

    /// The database containing `path` (the path itself or a prefix of it).
    pub fn database_of(&self, path: &Path) -> Option<&Path> {
        (2..=path.nodes().len()).find_map(|n| {
            let p = Path::from_nodes(path.nodes()[..n].to_vec()).ok()?;
            self.databases.get_key_value(&p).map(|(k, _)| k)
        })
    }

    /// The settings of a database.
    pub fn database(&self, path: &Path) -> Option<&DatabaseInfo> {
        self.databases.get(path)
    }

    /// The device-level TTL rules.
    pub fn ttl_rules(&self) -> &crate::ttl::TtlRules {
        &self.ttl_rules
    }

    /// The TTL (timestamp units) the points of `series` live by; None: they never expire.
    pub fn ttl_of(&self, series: &Path) -> Option<i64> {
        let nodes = series.nodes();
        self.ttl_at(series, &nodes[..nodes.len() - 1])
    }

    /// The TTL the series of device `device` live by (for SHOW DEVICES).
    pub fn ttl_of_device(&self, device: &Path) -> Option<i64> {
        self.ttl_at(device, device.nodes())
    }

    /// The TTL of device `dev`, whose database is that of `within` (the device or one of its
    /// series: no path is built for the lookup).
    fn ttl_at(&self, within: &Path, dev: &[String]) -> Option<i64> {
        let db = self.database_of(within).and_then(|p| self.databases.get(p).map(|d| (p, d.ttl, d.ttl_version)));
        if self.ttl_rules.is_empty() {
            return db.and_then(|(_, t, _)| t).filter(|t| *t != duet_common::mutation::TTL_INF);
        }
        self.ttl_rules.effective(dev, db)
    }

    /// What a compaction at `now` logs as expired ([`crate::ttl::TtlRules::expiry`]).
    pub fn expiry(&self, now: i64) -> crate::ttl::Expiry {
        self.ttl_rules.expiry(self.databases.iter().map(|(p, d)| (p, d.ttl, d.ttl_version)), now)
    }

    /// The TTLs in force ([`crate::ttl::TtlRules::in_force`]).
    pub fn ttls_in_force(&self) -> Vec<(PathPattern, i64, bool)> {
        self.ttl_rules.in_force(self.databases.iter().map(|(p, d)| (p, d.ttl, d.ttl_version)))
    }

    /// A series by full path.
    pub fn series(&self, path: &Path) -> Option<&SeriesInfo> {
        self.series.get(path)
    }

    /// Resolves `device.name` where `name` is a measurement or an alias.
    pub fn resolve_measurement(&self, device: &Path, name: &str) -> Option<&SeriesInfo> {
        if let Some(s) = self.series.get(&device.child(name)) {
            return Some(s);
        }
        let d = self.devices.get(device)?;
        // (Replicas that gave two series one alias concurrently pick the same one.)
        d.measurements
            .iter()
            .filter_map(|m| self.series.get(&device.child(m)))
            .filter(|s| s.def.alias.as_deref() == Some(name))
            .min_by(|a, b| a.def.path.cmp(&b.def.path))
    }

    /// A device by path.
    pub fn device(&self, path: &Path) -> Option<&DeviceInfo> {
        self.devices.get(path)
    }

    /// All series, in path order.
    pub fn all_series(&self) -> impl Iterator<Item = &SeriesInfo> {
        self.series.values()
    }

    /// Series matching a pattern, in path order. A pattern's last node may also match an alias.
    pub fn series_matching(&self, pattern: &PathPattern) -> Vec<&SeriesInfo> {
        let mut out: Vec<&SeriesInfo> = matching(&self.series, pattern).map(|(_, s)| s).collect();
        if let Some(exact) = pattern.as_path() {
            if out.is_empty() {
                if let Some(dev) = exact.parent() {
                    if let Some(s) = self.resolve_measurement(&dev, exact.last()) {
                        out.push(s);
                    }
                }
            }
        }
        out
    }

    /// Devices matching a pattern, in path order.
    pub fn devices_matching(&self, pattern: &PathPattern) -> Vec<(&Path, &DeviceInfo)> {
        matching(&self.devices, pattern).collect()
    }

    /// Databases matching a pattern.
    pub fn databases_matching(&self, pattern: &PathPattern) -> Vec<Path> {
        matching(&self.databases, pattern).map(|(p, _)| p.clone()).collect()
    }

    /// Number of series.
    pub fn series_count(&self) -> usize {
        self.series.len()
    }

    /// Checks that `op` can be applied, without changing anything.
    pub fn validate(&self, op: &Op) -> Result<(), Status> {
        match op {
            Op::CreateDatabase(p) => self.check_new_database(p),
            Op::DeleteDatabases(ps) => {
                for p in ps {
                    if !self.databases.contains_key(p) {
                        return Err(Status::new(StatusCode::DatabaseNotExist, format!("Database {p} does not exist")));
                    }
                }
                Ok(())
            }
            Op::CreateSeries(defs) => {
                let mut seen = std::collections::HashSet::new();
                for d in defs {
                    if !seen.insert(&d.path) {
                        return Err(Status::new(StatusCode::IllegalParameter, format!("time series {} is given twice", d.path)));
                    }
                    self.check_new_series(d)?;
                }
                // All series of one device in a request must agree on alignment.
                let mut align: BTreeMap<Path, bool> = BTreeMap::new();
                for d in defs {
                    let dev = d.path.parent().unwrap();
                    if let Some(prev) = align.insert(dev.clone(), d.aligned) {
                        if prev != d.aligned {
                            return Err(Status::new(StatusCode::IllegalParameter, format!("device {dev} cannot be both aligned and not aligned")));
                        }
                    }
                }
                Ok(())
            }
            Op::DropSeries(ps) => {
                for p in ps {
                    if !self.series.contains_key(p) {
                        return Err(Status::new(StatusCode::PathNotExist, format!("Path [{p}] does not exist")));
                    }
                }
                Ok(())
            }
            Op::SetTtl { database, ttl } => {
                let Some(d) = self.databases.get(database) else {
                    return Err(Status::new(StatusCode::DatabaseNotExist, format!("Database {database} does not exist")));
                };
                if ttl.is_some_and(|t| t <= 0) {
                    return Err(Status::new(StatusCode::IllegalParameter, "TTL must be positive"));
                }
                self.check_ttl_room(ttl.is_some() && self.ttl_rules.at_database((database, d.ttl, d.ttl_version)).is_none())
            }
            Op::SetTtlRule { rule, ttl } => {
                if crate::ttl::rule_key(rule).is_none() {
                    return Err(Status::new(StatusCode::IllegalPath, format!("{rule} is no TTL path: a database, a device, or a path ending in .** (no other wildcard)")));
                }
                if ttl.is_some_and(|t| t <= 0) {
                    return Err(Status::new(StatusCode::IllegalParameter, "TTL must be positive"));
                }
                self.check_ttl_room(ttl.is_some() && self.ttl_rules.get(rule).is_none_or(|(t, _)| t.is_none()))
            }
            Op::AlterSeries { path, change } => self.check_alter(path, change),
            Op::Insert(_) | Op::Delete { .. } | Op::Stream(_) | Op::DropMatching(_) => Ok(()),
        }
    }

    /// Refuses a new TTL past the most there may be (IoTDB's OVERSIZE_TTL).
    fn check_ttl_room(&self, new: bool) -> Result<(), Status> {
        if !new {
            return Ok(());
        }
        // (A database's TTL and a `**` rule at its path are one setting.)
        let set = self.ttls_in_force().len();
        if set >= crate::ttl::TTL_RULE_CAPACITY {
            return Err(Status::new(StatusCode::OversizeTtl, format!("{set} TTLs are set, the most there may be ({}): unset one first", crate::ttl::TTL_RULE_CAPACITY)));
        }
        Ok(())
    }

    /// What IoTDB refuses of ALTER TIMESERIES (a replica's change is applied as it can be).
    fn check_alter(&self, path: &Path, change: &SeriesChange) -> Result<(), Status> {
        let Some(s) = self.series.get(path) else {
            return Err(Status::new(StatusCode::PathNotExist, format!("Path [{path}] does not exist")));
        };
        let d = &s.def;
        let has = |k: &str| d.tags.iter().chain(&d.attributes).any(|(x, _)| x == k);
        let missing = |k: &str| Status::new(StatusCode::MetadataError, format!("TimeSeries [{path}] does not have tag/attribute [{k}]."));
        match change {
            SeriesChange::Rename { from, to } => {
                if !has(from) {
                    return Err(missing(from));
                }
                if has(to) {
                    return Err(Status::new(StatusCode::MetadataError, format!("TimeSeries [{path}] already has a tag/attribute named [{to}].")));
                }
            }
            SeriesChange::Set(kv) => {
                if let Some((k, _)) = kv.iter().find(|(k, _)| !has(k)) {
                    return Err(missing(k));
                }
            }
            SeriesChange::Drop(_) => {}
            SeriesChange::AddTags(kv) => {
                if let Some((k, _)) = kv.iter().find(|(k, _)| d.tags.iter().any(|(x, _)| x == k)) {
                    return Err(Status::new(StatusCode::MetadataError, format!("TimeSeries [{path}] already has the tag [{k}].")));
                }
            }
            SeriesChange::AddAttributes(kv) => {
                if let Some((k, _)) = kv.iter().find(|(k, _)| d.attributes.iter().any(|(x, _)| x == k)) {
                    return Err(Status::new(StatusCode::MetadataError, format!("TimeSeries [{path}] already has the attribute [{k}].")));
                }
            }
            SeriesChange::Upsert { alias: Some(a), .. } => {
                let dev = path.parent().unwrap();
                if a != path.last() && self.resolve_measurement(&dev, a).is_some_and(|o| o.def.path != *path) {
                    return Err(Status::new(StatusCode::TimeseriesAlreadyExist, format!("alias {a} is already used on device {dev}")));
                }
            }
            SeriesChange::Upsert { alias: None, .. } => {}
        }
        Ok(())
    }

    fn check_new_database(&self, p: &Path) -> Result<(), Status> {
        if !p.nodes().iter().skip(1).all(|n| ok_name(n)) {
            return Err(Status::new(StatusCode::IllegalPath, format!("{p} is not a valid database name")));
        }
        if self.databases.contains_key(p) {
            return Err(Status::new(StatusCode::DatabaseAlreadyExists, format!("{p} has already been created as database")));
        }
        for db in self.databases.keys() {
            if p.starts_with(db) {
                return Err(Status::new(StatusCode::DatabaseAlreadyExists, format!("{db} has already been created as database, so {p} cannot be one")));
            }
            if db.starts_with(p) {
                return Err(Status::new(StatusCode::DatabaseAlreadyExists, format!("{p} cannot be a database: its descendant {db} already is one")));
            }
        }
        if self.series.contains_key(p) {
            return Err(Status::new(StatusCode::PathNotExist, format!("{p} is a time series and cannot be a database")));
        }
        Ok(())
    }

    fn check_new_series(&self, d: &SeriesDef) -> Result<(), Status> {
        let p = &d.path;
        if !d.encoding.supports(d.dtype) {
            return Err(Status::new(StatusCode::MetadataError, format!("encoding {} does not support {} (time series {p})", d.encoding.name(), d.dtype.name())));
        }
        if !p.nodes().iter().skip(1).all(|n| ok_name(n)) {
            return Err(Status::new(StatusCode::IllegalPath, format!("{p} is not a valid time series path")));
        }
        let Some(db) = self.database_of(p) else {
            return Err(Status::new(StatusCode::DatabaseNotExist, format!("Database for {p} does not exist; create it first")));
        };
        if db == p {
            return Err(Status::new(StatusCode::IllegalPath, format!("{p} is a database and cannot be a time series")));
        }
        if self.series.contains_key(p) {
            return Err(Status::new(StatusCode::TimeseriesAlreadyExist, format!("Timeseries [{p}] already exist")));
        }
        if self.devices.contains_key(p) {
            return Err(Status::new(StatusCode::TimeseriesAlreadyExist, format!("{p} is a device and cannot also be a time series")));
        }
        // A series cannot sit below another series.
        let mut anc = p.parent();
        while let Some(a) = anc {
            if self.series.contains_key(&a) {
                return Err(Status::new(StatusCode::IllegalPath, format!("{a} is a time series, so {p} cannot be created below it")));
            }
            anc = a.parent();
        }
        let dev = p.parent().unwrap();
        if let Some(info) = self.devices.get(&dev) {
            if info.aligned != d.aligned {
                let (is, create) = if info.aligned { ("is", "createAlignedTimeseries") } else { ("is not", "createTimeseries") };
                let as_ = if d.aligned { "an aligned" } else { "a non-aligned" };
                return Err(Status::new(
                    StatusCode::AlignedTimeseriesError,
                    format!("Timeseries under this device {is} aligned, please use {create} or change device. (Path: {dev}): {p} cannot be added as {as_} series"),
                ));
            }
            if let Some(alias) = &d.alias {
                if self.resolve_measurement(&dev, alias).is_some() {
                    return Err(Status::new(StatusCode::TimeseriesAlreadyExist, format!("alias {alias} is already used on device {dev}")));
                }
            }
        }
        Ok(())
    }

    /// Applies a schema op (validate first for local writes; replay and replication apply directly)
    /// made by a write of version `v`. Non-schema ops are ignored. Returns the series whose data
    /// must be dropped (removed series, and series replaced by a type-conflict resolution).
    /// Drops keep series that have data newer than them only through [`Schema::apply_with`].
    pub fn apply(&mut self, op: &Op, v: Version) -> Vec<Path> {
        self.apply_with(op, v, &|_, _| None)
    }

    /// Like [`Schema::apply`]; `newer_data(series, v)` gives the oldest version greater than `v`
    /// among the series' stored points, of any type (points of a type that lost a conflict
    /// included), with that point's type.
    ///
    /// Every rule compares versions, so that replicas applying the same ops in any order agree:
    /// - type conflicts (the same series created with different types on two replicas) resolve
    ///   to the creation with the smaller version, and so does the rest of the definition;
    /// - a drop (of a series, or of its database) at `v` removes a series only if nothing about
    ///   it is newer than `v` (a creation, or points); a creation older than the newest drop of
    ///   its path is not applied, and a creation newer than a database's deletion brings the
    ///   database back;
    /// - a database goes with a deletion newer than its creation once no series is left in it;
    /// - the newest TTL setting wins.
    pub fn apply_with(&mut self, op: &Op, v: Version, newer_data: &NewerData<'_>) -> Vec<Path> {
        let gone = self.apply_op(op, v, newer_data);
        for dev in std::mem::take(&mut self.unsettled) {
            self.settle_device(&dev);
        }
        gone
    }

    fn apply_op(&mut self, op: &Op, v: Version, newer_data: &NewerData<'_>) -> Vec<Path> {
        match op {
            Op::CreateDatabase(p) => {
                if self.dropped_databases.get(p).is_some_and(|d| v < *d) {
                    return vec![];
                }
                if !self.databases.contains_key(p) && !self.nest(p, v) {
                    return vec![];
                }
                // Created again after a deletion: TTL settings older than the deletion are gone.
                let ttl_version = self.dropped_databases.get(p).copied().unwrap_or(Version { hlc: 0, origin: InstanceId(0) });
                let d = self.databases.entry(p.clone()).or_insert(DatabaseInfo { ttl: None, version: v, created: v, ttl_version });
                d.version = d.version.max(v);
                d.created = d.created.min(v);
                if let Some((ttl, tv)) = self.pending_ttl.remove(p) {
                    if tv > d.ttl_version {
                        d.ttl = ttl;
                        d.ttl_version = tv;
                    }
                }
                vec![]
            }
            Op::DeleteDatabases(ps) => {
                let mut gone = vec![];
                for db in ps {
                    let d = self.dropped_databases.entry(db.clone()).or_insert(v);
                    *d = (*d).max(v);
                    let waiting: Vec<Path> = below(&self.pending_alters, db).map(|(p, _)| p.clone()).collect();
                    for p in waiting {
                        self.prune_pending_alters(&p, v);
                    }
                    if self.pending_ttl.get(db).is_some_and(|(_, tv)| *tv < v) {
                        self.pending_ttl.remove(db);
                    }
                    let doomed: Vec<Path> = below(&self.series, db).map(|(s, _)| s.clone()).collect();
                    let mut left = false;
                    for s in doomed {
                        if self.survives_drop(&s, v, newer_data) {
                            left = true;
                        } else {
                            self.remove_series(&s);
                            gone.push(s);
                        }
                    }
                    // What brings it back where the deletion came first: its oldest surviving
                    // series, or a creation after the deletion.
                    let revived = self.series.range(db.clone()..).take_while(|(s, _)| s.starts_with(db)).map(|(_, i)| i.version).min();
                    match self.databases.get_mut(db) {
                        Some(info) if left || info.version > v => {
                            // It stays (as where the other side creates it again), without the
                            // settings the deletion removed.
                            let again = (info.version > v).then_some(info.version);
                            info.created = [revived, again].into_iter().flatten().min().unwrap_or(info.created);
                            info.version = info.version.max(v);
                            if v > info.ttl_version {
                                info.ttl = None;
                                info.ttl_version = v;
                            }
                        }
                        Some(_) => {
                            // A TTL set after the deletion (by a replica that had not seen it yet)
                            // waits for the database to come back, as it does there.
                            let info = self.databases.remove(db).unwrap();
                            if info.ttl_version > v && self.pending_ttl.get(db).is_none_or(|(_, pv)| info.ttl_version > *pv) {
                                self.pending_ttl.insert(db.clone(), (info.ttl, info.ttl_version));
                            }
                        }
                        None => {}
                    }
                }
                gone
            }
            Op::CreateSeries(defs) => {
                let mut gone = vec![];
                for d in defs {
                    if v < self.drop_version(&d.path) {
                        continue;
                    }
                    let db = match self.database_of(&d.path).cloned() {
                        Some(db) => db,
                        None => match self.revivable_database(&d.path, v) {
                            Some(db) => {
                                self.apply_with(&Op::CreateDatabase(db.clone()), v, newer_data);
                                match self.database_of(&d.path) {
                                    Some(db) => db.clone(),
                                    None => continue,
                                }
                            }
                            None => continue,
                        },
                    };
                    // The database was in use then: a deletion older than this leaves it, as
                    // where the deletion came first and this creation made it again.
                    if let Some(info) = self.databases.get_mut(&db) {
                        info.version = info.version.max(v);
                    }
                    let dev = d.path.parent().unwrap();
                    if let Some(existing) = self.series.get_mut(&d.path) {
                        // Kept whether it decides or not: a later drop may leave it the first.
                        existing.add_creation(v, d);
                        existing.latest = existing.latest.max(v);
                        if v < existing.version {
                            // The earliest creation decides the type and the definition, on every
                            // replica; the points of a type that lost go aside.
                            if existing.def.dtype != d.dtype {
                                tracing_conflict(&d.path, existing, d, v);
                                gone.push(d.path.clone());
                            }
                            existing.version = v;
                            existing.set_base(d.clone());
                            match self.devices.get(&dev) {
                                Some(x) if v > x.earliest.0 => self.series.get_mut(&d.path).unwrap().def.aligned = x.aligned,
                                _ => {
                                    self.unsettled.insert(dev);
                                }
                            }
                        }
                        continue;
                    }
                    let info = self.devices.entry(dev.clone()).or_insert_with(|| DeviceInfo { aligned: d.aligned, measurements: vec![], earliest: (v, 0) });
                    info.measurements.push(d.path.last().to_string());
                    let mut series = SeriesInfo::new(d, db, v);
                    series.alters = self.pending_alters.remove(&d.path).unwrap_or_default();
                    if v >= info.earliest.0 {
                        // A later series (or one of the same op) takes the device's alignment.
                        series.def.aligned = info.aligned;
                        if v == info.earliest.0 {
                            info.earliest.1 += 1;
                        }
                    } else {
                        self.unsettled.insert(dev);
                    }
                    series.refresh();
                    self.series.insert(d.path.clone(), series);
                }
                gone
            }
            Op::DropSeries(ps) => {
                let mut gone = vec![];
                for p in ps {
                    let d = self.dropped_series.entry(p.clone()).or_insert(v);
                    *d = (*d).max(v);
                    self.prune_pending_alters(p, v);
                    if self.series.contains_key(p) && !self.survives_drop(p, v, newer_data) && self.remove_series(p) {
                        gone.push(p.clone());
                    }
                }
                gone
            }
            Op::SetTtl { database, ttl } => {
                if let Some(d) = self.databases.get_mut(database) {
                    if v >= d.ttl_version {
                        d.ttl = *ttl;
                        d.ttl_version = v;
                    }
                } else if self.dropped_databases.get(database).is_some_and(|dv| v > *dv) && self.pending_ttl.get(database).is_none_or(|(_, pv)| v > *pv) {
                    self.pending_ttl.insert(database.clone(), (*ttl, v));
                }
                vec![]
            }
            Op::SetTtlRule { rule, ttl } => {
                self.ttl_rules.apply(rule, *ttl, v);
                vec![]
            }
            Op::DropMatching(patterns) => {
                // The series held here (by path: an alias is not a series' path).
                let mut paths: Vec<Path> = patterns.iter().flat_map(|p| matching(&self.series, p).map(|(s, _)| s.clone())).collect();
                paths.sort();
                paths.dedup();
                self.apply_with(&Op::DropSeries(paths), v, newer_data)
            }
            Op::AlterSeries { path, change } => {
                // One older than the series' newest drop went with it; one to a series not here
                // was made where it was (its drop, arriving there later, takes it away).
                if v > self.drop_version(path) {
                    let add = |alters: &mut Vec<(Version, SeriesChange)>| match alters.binary_search_by(|a| a.0.cmp(&v)) {
                        Err(i) => {
                            alters.insert(i, (v, change.clone()));
                            true
                        }
                        Ok(_) => false,
                    };
                    match self.series.get_mut(path) {
                        Some(info) => {
                            if add(&mut info.alters) {
                                info.refresh();
                            }
                        }
                        None => {
                            add(self.pending_alters.entry(path.clone()).or_default());
                        }
                    }
                }
                vec![]
            }
            Op::Insert(_) | Op::Delete { .. } | Op::Stream(_) => vec![],
        }
    }

    /// Whether series `p` outlives a drop at `v`: created again after it, or holding newer points
    /// (which the drop does not hide). One kept for its points is, from then on, what the other
    /// side makes of them: a series created by the oldest of them, with a default definition (and
    /// a snapshot replayed without data to look at keeps it too).
    fn survives_drop(&mut self, p: &Path, v: Version, newer_data: &NewerData<'_>) -> bool {
        // Only what is newer than the newest drop of the series counts (one applied before this
        // older one already took away what came before it).
        let v = v.max(self.drop_version(p));
        let Some(info) = self.series.get_mut(p) else { return false };
        info.creations.retain(|c| c.0 > v);
        info.alters.retain(|a| a.0 > v);
        // What makes the series again after the drop, where the drop came first: the oldest of
        // its creations after it, and of its writes after it (a point of a type that lost a
        // conflict before the drop may be that).
        let creation = info.creations.first().cloned();
        let written = (info.written > v).then_some((info.written, info.written_as.0));
        let write = newer_data(p, v).filter(|n| n.0 > v).or(written);
        let info = self.series.get_mut(p).unwrap();
        // (The alignment the write was made with is known for the newest write only.)
        let made = |w: (Version, DataType)| (w.0, SeriesDef::simple(p.clone(), w.1, if w.0 == info.written { info.written_as.1 } else { info.def.aligned }));
        let (first, def) = match (creation, write) {
            (Some(c), Some(w)) if w.0 < c.0 => made(w),
            (Some(c), _) => c,
            (None, Some(w)) => made(w),
            (None, None) => return false,
        };
        if (first, &def) != (info.version, &info.base) {
            info.add_creation(first, &def);
            info.version = first;
            info.set_base(def);
            info.latest = info.creations.last().map_or(first, |c| c.0);
            self.unsettled.insert(p.parent().unwrap());
        } else {
            info.refresh();
        }
        true
    }

    /// The schema under `patterns` as (path, description) pairs, for comparing replicas: each
    /// series matching them (type, alias, tags, attributes, alignment) and each database that
    /// holds or may hold such series (its TTL).
    pub fn describe(&self, patterns: &[PathPattern]) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (p, d) in &self.databases {
            if patterns.iter().any(|pat| pat.matches(p) || pat.may_match_below(p)) {
                // (The setting in force at its path, made as its TTL or as a `**` rule.)
                let ttl = self.ttl_rules.at_database((p, d.ttl, d.ttl_version));
                out.push((p.to_string(), format!("database, TTL {}", match ttl {
                    // (INF set is not no TTL: it keeps data a broader rule would expire.)
                    Some(duet_common::mutation::TTL_INF) => "INF (set)".to_string(),
                    Some(t) => t.to_string(),
                    None => "INF".to_string(),
                })));
            }
        }
        // (TTL rules in force reaching below what the patterns may match; `root.**` reaches
        // everything. Keyed apart from paths: a device rule may name a database's path.)
        for (rule, t, _) in self.ttls_in_force().into_iter().filter(|(_, _, db)| !db) {
            let reaches = match Path::from_nodes(rule.literal_prefix().to_vec()) {
                Ok(p) => patterns.iter().any(|pat| pat.matches(&p) || pat.may_match_below(&p) || pat.covers(&p)),
                Err(_) => true,
            };
            if reaches {
                out.push((format!("{TTL_RULE_KEY}{rule}"), format!("TTL {}", if t == duet_common::mutation::TTL_INF { "INF".to_string() } else { t.to_string() })));
            }
        }
        let mut series: Vec<(&Path, &SeriesInfo)> = patterns.iter().flat_map(|pat| matching(&self.series, pat)).collect();
        series.sort_by(|a, b| a.0.cmp(b.0));
        series.dedup_by(|a, b| a.0 == b.0);
        for (p, s) in series {
            let d = &s.def;
            out.push((
                p.to_string(),
                format!("{} alias={} tags={:?} attributes={:?} aligned={}", d.dtype, d.alias.as_deref().unwrap_or("-"), d.tags, d.attributes, d.aligned),
            ));
        }
        out
    }

    /// Records a write to series `p` (of its type) at `v`: evidence, for drops and deletions older
    /// than it that arrive later, that the series and its database were in use after them.
    pub fn note_write(&mut self, p: &Path, v: Version, dtype: DataType, aligned: bool) {
        let Some(info) = self.series.get_mut(p) else { return };
        if v <= info.written {
            return;
        }
        (info.written, info.written_as) = (v, (dtype, aligned));
        if let Some(db) = self.databases.get_mut(&info.database) {
            db.version = db.version.max(v);
        }
    }

    /// The drops remembered, as the ops that made them (newest of each path), with their versions.
    pub fn drops(&self) -> impl Iterator<Item = (Op, Version)> + '_ {
        let dbs = self.dropped_databases.iter().map(|(p, v)| (Op::DeleteDatabases(vec![p.clone()]), *v));
        dbs.chain(self.dropped_series.iter().map(|(p, v)| (Op::DropSeries(vec![p.clone()]), *v)))
    }

    /// The newest drop reaching series path `p` (of the series itself or of a database above it).
    pub fn drop_version(&self, p: &Path) -> Version {
        let zero = Version { hlc: 0, origin: InstanceId(0) };
        let series = self.dropped_series.get(p).copied().unwrap_or(zero);
        self.dropped_databases.iter().filter(|(d, _)| p.starts_with(d)).map(|(_, v)| *v).fold(series, Version::max)
    }

    /// A deleted database above `p` that a creation at `v` (newer than the deletion) brings back
    /// (deeper, where a database created since lies below it: see [`Schema::placement`]).
    pub fn revivable_database(&self, p: &Path, v: Version) -> Option<Path> {
        let db = self.dropped_databases.iter().filter(|(d, dv)| p.starts_with(d) && **dv < v).map(|(d, _)| d.clone()).next()?;
        self.placement(p, &db)
    }

    /// Where a database for series `path` goes when it would be `candidate` (a prefix of it): the
    /// shortest prefix of `path` at least as long that has no database above or below it. None
    /// when `path` has none (it lies in a database, or is too short).
    pub fn placement(&self, path: &Path, candidate: &Path) -> Option<Path> {
        let nodes = path.nodes();
        (candidate.nodes().len()..nodes.len()).find_map(|n| {
            let p = Path::from_nodes(nodes[..n].to_vec()).ok()?;
            let clash = self.databases.keys().any(|d| p.starts_with(d) || d.starts_with(&p));
            (!clash).then_some(p)
        })
    }

    /// Makes room for database `p` created at `v` among databases that would nest with it (IoTDB
    /// allows no database below another; replicas that created nested ones concurrently, or one
    /// brought back by a replica's write, keep the earlier creation, the outer one at a tie).
    /// Returns whether `p` is to be created: a database above it created at or before `v`, or one
    /// below it created before `v`, keeps its place instead. A later one above it gives way: its
    /// series outside `p` go to databases one level down (where [`Schema::placement`] puts them,
    /// as a replica that never had it does); later ones below it are merged into it.
    fn nest(&mut self, p: &Path, v: Version) -> bool {
        let zero = Version { hlc: 0, origin: InstanceId(0) };
        let below = |s: &Schema, d: &Path| s.series.range(d.clone()..).take_while(|(x, _)| x.starts_with(d)).map(|(x, i)| (x.clone(), i.version)).collect::<Vec<_>>();
        let outer = self.databases.iter().find(|(d, _)| p.starts_with(d)).map(|(d, i)| (d.clone(), i.created));
        let moves: Vec<(Path, Path, Version)> = match outer {
            Some((_, c)) if c <= v => return false,
            Some((q, _)) => {
                // (No database lies below q: databases never nest before this.)
                let info = self.databases.remove(&q).unwrap();
                self.databases.insert(p.clone(), DatabaseInfo { ttl: None, version: v, created: v, ttl_version: zero });
                let placed: Vec<(Path, Option<Path>, Version)> = below(self, &q)
                    .into_iter()
                    .map(|(s, sv)| {
                        let db = if s.starts_with(p) { Some(p.clone()) } else { self.placement(&s, &q) };
                        (s, db, sv)
                    })
                    .collect();
                self.databases.remove(p);
                if placed.iter().any(|(_, db, _)| db.is_none()) {
                    // A series right beside p's branch has no database of its own to go to.
                    self.databases.insert(q, info);
                    return false;
                }
                tracing::warn!(database = %q, below = %p, "databases created on two replicas nest: the later one, above, gives way to the earlier one below");
                placed.into_iter().map(|(s, db, sv)| (s, db.unwrap(), sv)).collect()
            }
            None => {
                let inner: Vec<(Path, Version)> = self.databases.iter().filter(|(d, _)| d.starts_with(p)).map(|(d, i)| (d.clone(), i.created)).collect();
                if inner.iter().any(|(_, c)| *c < v) {
                    return false;
                }
                for (d, _) in &inner {
                    tracing::warn!(database = %d, into = %p, "databases created on two replicas nest: the later one, below, is merged into the earlier one above");
                    self.databases.remove(d);
                }
                below(self, p).into_iter().map(|(s, sv)| (s, p.clone(), sv)).collect()
            }
        };
        for (s, db, sv) in moves {
            if db != *p {
                let d = self.databases.entry(db.clone()).or_insert(DatabaseInfo { ttl: None, version: sv, created: sv, ttl_version: zero });
                d.created = d.created.min(sv);
                d.version = d.version.max(sv);
            }
            self.series.get_mut(&s).unwrap().database = db;
        }
        true
    }

    /// Whether applying `CreateSeries` of `d` at version `v` would be a type conflict, and if so
    /// whether the incoming definition wins.
    pub fn type_conflict(&self, d: &SeriesDef, v: Version) -> Option<bool> {
        let e = self.series.get(&d.path)?;
        (e.def.dtype != d.dtype).then_some(v < e.version)
    }

    /// Gives a device, and every series on it, the alignment of its earliest series (the smallest
    /// creation version): replicas that made the device aligned on one side and not on the other
    /// (concurrently) agree on it whatever order the creations arrive in.
    fn settle_device(&mut self, dev: &Path) {
        let Some(info) = self.devices.get(dev) else { return };
        let series: Vec<&SeriesInfo> = info.measurements.iter().filter_map(|m| self.series.get(&dev.child(m))).collect();
        let Some(first) = series.iter().min_by_key(|s| s.version) else { return };
        let earliest = (first.version, series.iter().filter(|s| s.version == first.version).count());
        // (As the first creation asked: the series' own flag may have been settled otherwise.)
        let aligned = first.creations.first().filter(|c| c.0 == first.version).map_or(first.def.aligned, |c| c.1.aligned);
        let info = self.devices.get_mut(dev).unwrap();
        info.aligned = aligned;
        info.earliest = earliest;
        for m in info.measurements.clone() {
            if let Some(s) = self.series.get_mut(&dev.child(&m)) {
                s.def.aligned = aligned;
            }
        }
    }

    /// Forgets the waiting changes of series path `p` that a drop at `v` takes away.
    fn prune_pending_alters(&mut self, p: &Path, v: Version) {
        if let Some(alters) = self.pending_alters.get_mut(p) {
            alters.retain(|a| a.0 > v);
            if alters.is_empty() {
                self.pending_alters.remove(p);
            }
        }
    }

    /// The ALTER TIMESERIES changes waiting for their series (see `pending_alters`), as ops with
    /// their versions.
    pub fn pending_alters(&self) -> impl Iterator<Item = (Op, Version)> + '_ {
        self.pending_alters.iter().flat_map(|(p, alters)| alters.iter().map(|(v, c)| (Op::AlterSeries { path: p.clone(), change: c.clone() }, *v)))
    }

    fn remove_series(&mut self, p: &Path) -> bool {
        let Some(mut gone) = self.series.remove(p) else { return false };
        // (Removed by a drop: those left are newer than it.)
        if !gone.alters.is_empty() {
            self.pending_alters.insert(p.clone(), std::mem::take(&mut gone.alters));
        }
        let dev = p.parent().unwrap();
        let mut settle = false;
        if let Some(info) = self.devices.get_mut(&dev) {
            if let Some(i) = info.measurements.iter().position(|m| m == p.last()) {
                info.measurements.remove(i);
            }
            if info.measurements.is_empty() {
                self.devices.remove(&dev);
            } else if gone.version == info.earliest.0 {
                // The last of the earliest series gone: another decides the alignment now.
                info.earliest.1 = info.earliest.1.saturating_sub(1);
                settle = info.earliest.1 == 0;
            }
        }
        if settle {
            self.unsettled.insert(dev);
        }
        true
    }

    /// The schema as a list of ops that rebuild it, encoded as mutations (for snapshots).
    pub fn snapshot(&self) -> Vec<u8> {
        let mut ops: Vec<(Op, Version)> = Vec::new();
        for (p, info) in &self.databases {
            ops.push((Op::CreateDatabase(p.clone()), info.created));
            if info.version != info.created {
                ops.push((Op::CreateDatabase(p.clone()), info.version));
            }
            if info.ttl.is_some() || info.ttl_version.hlc > 0 {
                ops.push((Op::SetTtl { database: p.clone(), ttl: info.ttl }, info.ttl_version));
            }
        }
        for s in self.series.values() {
            // Every creation a late drop may still take away, with its own definition (the
            // series' is the first's).
            ops.extend(s.creations.iter().map(|(v, d)| (Op::CreateSeries(vec![d.clone()]), *v)));
            if s.creations.is_empty() {
                ops.push((Op::CreateSeries(vec![s.base.clone()]), s.version));
            }
            ops.extend(s.alters.iter().map(|(v, c)| (Op::AlterSeries { path: s.def.path.clone(), change: c.clone() }, *v)));
        }
        // The newest write of each series, as an insert of no rows (evidence for drops to come;
        // see SeriesInfo::written). Schema::apply passes over inserts; from_snapshot reads these.
        for s in self.series.values().filter(|s| s.written > Version::default()) {
            let (dev, name, (dtype, aligned)) = (s.def.path.parent().unwrap(), s.def.path.last().to_string(), s.written_as);
            let column = Column { name, dtype, values: ColumnValues::empty(dtype, 0), nulls: None };
            ops.push((Op::Insert(vec![InsertBatch { device: dev, aligned, times: vec![], columns: vec![column] }]), s.written));
        }
        // Drops last: what exists now outlived them (its `latest` is newer), and the records stay
        // for creations that may still arrive; then TTLs waiting for their database.
        ops.extend(self.drops());
        ops.extend(self.pending_alters());
        for (p, (ttl, v)) in &self.pending_ttl {
            ops.push((Op::SetTtl { database: p.clone(), ttl: *ttl }, *v));
        }
        ops.extend(self.ttl_rules.all().map(|(rule, (ttl, v))| (Op::SetTtlRule { rule, ttl }, v)));
        let mut out = Vec::new();
        for (op, version) in ops {
            let mut buf = Vec::new();
            Mutation { version, origin_seq: 0, op }.encode(&mut buf);
            out.extend_from_slice(&(buf.len() as u32).to_le_bytes());
            out.extend_from_slice(&buf);
        }
        out
    }

    /// Rebuilds a schema from [`Schema::snapshot`] bytes.
    pub fn from_snapshot(mut buf: &[u8]) -> Result<Schema, String> {
        let mut s = Schema::new();
        while !buf.is_empty() {
            if buf.len() < 4 {
                return Err("schema snapshot truncated".into());
            }
            let n = u32::from_le_bytes(buf[..4].try_into().unwrap()) as usize;
            let body = buf.get(4..4 + n).ok_or("schema snapshot truncated")?;
            let m = Mutation::decode(body).map_err(|e| e.to_string())?;
            match &m.op {
                Op::Insert(batches) => {
                    for b in batches {
                        for c in &b.columns {
                            s.note_write(&b.device.child(&c.name), m.version, c.dtype, b.aligned);
                        }
                    }
                }
                op => {
                    s.apply(op, m.version);
                }
            }
            buf = &buf[4 + n..];
        }
        Ok(s)
    }
}

fn tracing_conflict(path: &Path, existing: &SeriesInfo, incoming: &SeriesDef, v: Version) {
    tracing::warn!(
        "schema conflict on {path}: {} (version {:?}) replaced by {} (version {:?}); the earlier creation wins on every replica",
        existing.def.dtype, existing.version, incoming.dtype, v
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use duet_common::types::DataType;

    const V0: Version = Version { hlc: 0, origin: InstanceId(0) };

    fn p(s: &str) -> Path {
        Path::parse(s).unwrap()
    }

    #[test]
    fn an_unset_made_as_a_rule_unsets_the_database_ttl_at_its_path() {
        let mut s = Schema::new();
        let v = |hlc: u64| Version { hlc, origin: InstanceId(1) };
        s.apply(&Op::CreateDatabase(p("root.sg")), v(1));
        s.apply(&Op::SetTtl { database: p("root.sg"), ttl: Some(60_000) }, v(2));
        assert_eq!(s.ttl_of(&p("root.sg.d.s")), Some(60_000));
        // A replica that had no root.sg yet unset it as a rule, later: no TTL there, for reads
        // (no other rule is set), SHOW TTL and compactions alike.
        s.apply(&Op::SetTtlRule { rule: PathPattern::parse("root.sg.**").unwrap(), ttl: None }, v(3));
        assert_eq!((s.ttl_of(&p("root.sg.d.s")), s.ttl_of(&p("root.sg.s"))), (None, None));
        assert!(s.ttls_in_force().is_empty());
        assert_eq!(s.expiry(1_000_000).deletes().count(), 0);
        assert!(s.describe(&[PathPattern::parse("root.**").unwrap()]).iter().any(|(k, d)| k == "root.sg" && d == "database, TTL INF"));
    }

    #[test]
    fn ttl_rules_are_checked_and_bounded() {
        let mut s = Schema::new();
        let rule = |r: &str, ttl: Option<i64>| Op::SetTtlRule { rule: PathPattern::parse(r).unwrap(), ttl };
        assert_eq!(s.validate(&rule("root.*.d", Some(5))).unwrap_err().code, StatusCode::IllegalPath);
        assert_eq!(s.validate(&rule("root.d.x", Some(0))).unwrap_err().code, StatusCode::IllegalParameter);
        s.apply(&Op::CreateDatabase(p("root.db")), V0);
        s.apply(&Op::SetTtl { database: p("root.db"), ttl: Some(9) }, V0);
        for i in 0..crate::ttl::TTL_RULE_CAPACITY - 1 {
            let op = rule(&format!("root.db.d{i}"), Some(5));
            s.validate(&op).unwrap();
            s.apply(&op, V0);
        }
        // A database's TTL counts too: the next new rule is one too many (OVERSIZE_TTL).
        let e = s.validate(&rule("root.db.more", Some(5))).unwrap_err();
        assert_eq!((e.code, e.code as i32), (StatusCode::OversizeTtl, 612), "{}", e.message);
        s.validate(&rule("root.db.d0", Some(6))).expect("changing a rule that is set is no new one");
        s.validate(&rule("root.db.more", None)).expect("unsetting is always allowed");
        s.apply(&rule("root.db.d0", None), V0);
        s.validate(&rule("root.db.more", Some(5))).expect("room again");
    }

    #[test]
    fn database_rules() {
        let mut s = Schema::new();
        let op = Op::CreateDatabase(p("root.db"));
        s.validate(&op).unwrap();
        s.apply(&op, V0);
        assert_eq!(s.validate(&op).unwrap_err().code, StatusCode::DatabaseAlreadyExists);
        assert_eq!(s.validate(&Op::CreateDatabase(p("root.db.x"))).unwrap_err().code, StatusCode::DatabaseAlreadyExists);
        assert_eq!(s.database_of(&p("root.db.d.s")), Some(&p("root.db")));
    }

    #[test]
    fn series_rules_and_snapshot() {
        let mut s = Schema::new();
        s.apply(&Op::CreateDatabase(p("root.db")), V0);
        let def = SeriesDef { alias: Some("temp".into()), ..SeriesDef::simple(p("root.db.d.s1"), DataType::Double, false) };
        let op = Op::CreateSeries(vec![def.clone()]);
        s.validate(&op).unwrap();
        s.apply(&op, V0);
        assert_eq!(s.validate(&op).unwrap_err().code, StatusCode::TimeseriesAlreadyExist);
        let nodb = Op::CreateSeries(vec![SeriesDef::simple(p("root.other.d.s"), DataType::Int32, false)]);
        assert_eq!(s.validate(&nodb).unwrap_err().code, StatusCode::DatabaseNotExist);
        let mixed = Op::CreateSeries(vec![SeriesDef::simple(p("root.db.d.s2"), DataType::Int32, true)]);
        assert_eq!(s.validate(&mixed).unwrap_err().code, StatusCode::AlignedTimeseriesError);
        assert_eq!(s.resolve_measurement(&p("root.db.d"), "temp").unwrap().def.path, p("root.db.d.s1"));
        let back = Schema::from_snapshot(&s.snapshot()).unwrap();
        assert_eq!(back.series(&p("root.db.d.s1")).unwrap().def, def);
        assert_eq!(s.apply(&Op::DeleteDatabases(vec![p("root.db")]), V0), vec![p("root.db.d.s1")]);
        assert_eq!(s.series_count(), 0);
        assert!(s.device(&p("root.db.d")).is_none());
    }

    #[test]
    fn a_drop_by_pattern_drops_the_matching_series_held_here_older_than_it() {
        let mut s = Schema::new();
        s.apply(&Op::CreateDatabase(p("root.p")), V0);
        let v = |hlc| Version { hlc, origin: InstanceId(1) };
        let (v1, v2, v3) = (v(1), v(2), v(3));
        for (path, v) in [("root.p.x.d.s", v1), ("root.p.x.e.s", v1), ("root.p.x.n.s", v3), ("root.p.y.d.s", v1)] {
            s.apply(&Op::CreateSeries(vec![SeriesDef::simple(p(path), DataType::Int64, false)]), v);
        }
        let gone = s.apply(&Op::DropMatching(vec![PathPattern::parse("root.p.x.**").unwrap()]), v2);
        assert_eq!(gone, vec![p("root.p.x.d.s"), p("root.p.x.e.s")], "created after the drop: root.p.x.n.s stays");
        assert!(s.series(&p("root.p.y.d.s")).is_some() && s.database(&p("root.p")).is_some(), "the rest of the database stays");
        assert_eq!(s.drop_version(&p("root.p.x.d.s")), v2, "remembered per series, as DROP TIMESERIES is");
        let late = Op::CreateSeries(vec![SeriesDef::simple(p("root.p.x.d.s"), DataType::Int64, false)]);
        s.apply(&late, v1);
        assert!(s.series(&p("root.p.x.d.s")).is_none(), "an older creation arriving late stays dropped");
    }

    #[test]
    fn a_device_takes_the_alignment_of_its_earliest_series() {
        let v = |h| Version { hlc: h, origin: InstanceId(1) };
        let mut s = Schema::new();
        s.apply(&Op::CreateDatabase(p("root.db")), V0);
        // Replicas that made the device aligned and not aligned (applied here unvalidated, as
        // replication does): the earlier creation decides, for every series on it.
        s.apply(&Op::CreateSeries(vec![SeriesDef::simple(p("root.db.d.b"), DataType::Int64, false)]), v(20));
        s.apply(&Op::CreateSeries(vec![SeriesDef::simple(p("root.db.d.a"), DataType::Int64, true)]), v(10));
        let aligned = |s: &Schema| (s.device(&p("root.db.d")).unwrap().aligned, s.series(&p("root.db.d.b")).unwrap().def.aligned);
        assert_eq!(aligned(&s), (true, true));
        // Many later series of one device (one op each), then the earliest goes: the next
        // earliest decides, as created.
        for i in 0..2000 {
            s.apply(&Op::CreateSeries(vec![SeriesDef::simple(p(&format!("root.db.d.m{i}")), DataType::Int64, true)]), v(30 + i));
        }
        assert!(s.series(&p("root.db.d.m7")).unwrap().def.aligned);
        s.apply(&Op::DropSeries(vec![p("root.db.d.a")]), v(5000));
        assert_eq!(aligned(&s), (false, false));
        assert!(!s.series(&p("root.db.d.m1999")).unwrap().def.aligned);
        let all: Vec<Path> = (0..2000).map(|i| p(&format!("root.db.d.m{i}"))).chain([p("root.db.d.b")]).collect();
        s.apply(&Op::DropSeries(all), v(6000));
        assert!(s.device(&p("root.db.d")).is_none());
    }

    #[test]
    fn alters_shape_the_definition_in_version_order_and_survive_snapshots_and_drops() {
        let v = |h| Version { hlc: h, origin: InstanceId(1) };
        let path = p("root.db.d.s");
        let alter = |c| Op::AlterSeries { path: path.clone(), change: c };
        let mut s = Schema::new();
        s.apply(&Op::CreateDatabase(p("root.db")), V0);
        s.apply(&Op::CreateSeries(vec![SeriesDef { tags: vec![("a".into(), "1".into())], ..SeriesDef::simple(path.clone(), DataType::Int64, false) }]), v(10));
        // Arriving out of order (a replica's), they still apply in version order.
        s.apply(&alter(SeriesChange::Set(vec![("b".into(), "2".into())])), v(30));
        s.apply(&alter(SeriesChange::Rename { from: "a".into(), to: "b".into() }), v(20));
        assert_eq!(s.series(&path).unwrap().def.tags, vec![("b".into(), "2".into())]);
        assert_eq!(s.validate(&alter(SeriesChange::AddTags(vec![("b".into(), "x".into())]))).unwrap_err().code, StatusCode::MetadataError);
        let back = Schema::from_snapshot(&s.snapshot()).unwrap();
        assert_eq!(back.series(&path).unwrap().def, s.series(&path).unwrap().def);
        // A drop between them takes the older one away; the newer one waits (also through a
        // snapshot) for a write older than it that makes the series again, as where the drop
        // came first.
        s.apply(&Op::DropSeries(vec![path.clone()]), v(25));
        assert!(s.series(&path).is_none());
        let mut s = Schema::from_snapshot(&s.snapshot()).unwrap();
        s.apply(&Op::CreateSeries(vec![SeriesDef::simple(path.clone(), DataType::Int64, false)]), v(27));
        assert_eq!(s.series(&path).unwrap().def.tags, vec![], "made without the tag a: the rename finds nothing, the set no b");
        s.apply(&alter(SeriesChange::AddTags(vec![("c".into(), "3".into())])), v(40));
        assert_eq!(s.series(&path).unwrap().def.tags, vec![("c".into(), "3".into())]);
    }

    #[test]
    fn lookups_by_pattern_find_what_a_scan_of_every_series_finds() {
        let mut s = Schema::new();
        s.apply(&Op::CreateDatabase(p("root.a")), V0);
        s.apply(&Op::CreateDatabase(p("root.ab")), V0);
        let paths = ["root.a.d1.s", "root.a.d1.t", "root.a.d10.s", "root.a.d2.x.s", "root.a.e.s", "root.ab.d1.s"];
        for x in paths {
            s.apply(&Op::CreateSeries(vec![SeriesDef::simple(p(x), DataType::Int64, false)]), V0);
        }
        for pat in ["root.a.d1.s", "root.a.d1.*", "root.a.d1*.s", "root.a.**", "root.a.**.s", "root.**", "root.*.d1.s", "root.a", "root.a.d1", "root.ab.d1.s", "root.a.d9.s"] {
            let pat = PathPattern::parse(pat).unwrap();
            let scan: Vec<&Path> = s.all_series().map(|i| &i.def.path).filter(|x| pat.matches(x)).collect();
            let found: Vec<&Path> = s.series_matching(&pat).into_iter().map(|i| &i.def.path).collect();
            assert_eq!(found, scan, "{pat:?}");
            let devs: Vec<&Path> = s.devices_matching(&pat).into_iter().map(|(d, _)| d).collect();
            let all_devs: Vec<&Path> = s.devices_matching(&PathPattern::parse("root.**").unwrap()).into_iter().map(|(d, _)| d).filter(|d| pat.matches(d)).collect();
            assert_eq!(devs, all_devs, "{pat:?}");
        }
    }

    #[test]
    fn type_conflicts_resolve_to_the_earlier_creation_in_any_order() {
        let a = SeriesDef::simple(p("root.db.d.s"), DataType::Int64, false);
        let b = SeriesDef::simple(p("root.db.d.s"), DataType::Text, false);
        let va = Version { hlc: 10, origin: InstanceId(1) };
        let vb = Version { hlc: 10, origin: InstanceId(2) };
        for order in [[(&a, va), (&b, vb)], [(&b, vb), (&a, va)]] {
            let mut s = Schema::new();
            s.apply(&Op::CreateDatabase(p("root.db")), V0);
            for (d, v) in order {
                s.apply(&Op::CreateSeries(vec![d.clone()]), v);
            }
            assert_eq!(s.series(&p("root.db.d.s")).unwrap().def.dtype, DataType::Int64);
        }
    }
}
