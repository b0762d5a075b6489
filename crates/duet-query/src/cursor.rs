//! Raw queries answered page by page: a [`RawCursor`] keeps the bound query and the time position
//! it has reached, never the rows.
//!
//! Each page is read under its own short read lock on the engine's state, starting strictly after
//! the last timestamp the cursor consumed (strictly before it for ORDER BY TIME DESC). Each series
//! is read with [`State::scan_columns_limited`], a little more than the page needs, so a page costs
//! the pages and memtable slices around the position, whatever the size of the whole result.
//!
//! # Consistency
//! A page is one consistent read (one read lock), and it reflects the data as it is when that page
//! is fetched, not as it was when the query started: points written (or deleted) ahead of the
//! position (at later times; earlier ones for ORDER BY TIME DESC) before their page is fetched are
//! shown (or not); changes at or behind the position are not seen, because those rows have been
//! sent. Rows are keyed by their timestamp (by device, then timestamp, under ALIGN BY DEVICE), so
//! no row is ever sent twice and none is skipped because of where a page ended. OFFSET and LIMIT count rows as they are produced, FILL
//! carries its last values from one page to the next, and the columns (names and types) are fixed
//! when the query starts: a series created later is not added, and one dropped later reads as empty.

use duet_common::mutation::ColumnValues;
use duet_common::path::Path;
use duet_common::status::Status;
use duet_common::types::{DataType, Value};
use duet_storage::engine::State;
use duet_storage::Engine;

use crate::ast::{Literal, Select};
use crate::result::{memory_exceeded, ResultSet, CELL_BYTES};
use crate::select::{eval, fill_constant, is_true, Bound};

/// Fewest points read per series and round (so that tiny pages do not cost a read per row).
const MIN_BATCH: usize = 256;
/// Fewest points read per series and round when many series share the memory limit.
const MIN_BATCH_WIDE: usize = 16;
/// Most points read per series and round.
const MAX_BATCH: usize = 65_536;
/// Memory of a point while a page is assembled (time, value and the row it lands in).
const POINT_BYTES: usize = 8 + 2 * CELL_BYTES;

/// One scope of a raw query: the FROM prefixes, or one device under ALIGN BY DEVICE.
#[derive(Debug)]
pub(crate) struct Scope {
    /// ALIGN BY DEVICE: the Device column's value.
    pub(crate) device: Option<Value>,
    /// The series read, by slot (outputs and WHERE).
    pub(crate) series: Vec<(Path, DataType)>,
    /// Which slots drive rows (a row exists where one of them has a point).
    pub(crate) driving: Vec<bool>,
    /// The scope's output expressions.
    pub(crate) outputs: Vec<Bound>,
    /// Their types (what FILL with a constant fits).
    pub(crate) output_types: Vec<DataType>,
    /// For each result column after Device (or each column without it), the output that fills it.
    pub(crate) index: Vec<Option<usize>>,
    /// WHERE.
    pub(crate) filter: Option<Bound>,
    /// First time WHERE can match.
    pub(crate) lo: i64,
    /// Last time WHERE can match.
    pub(crate) hi: i64,
}

/// A FILL that works row by row, so it can carry over from one page to the next.
#[derive(Debug)]
pub(crate) enum RowFill {
    /// FILL(PREVIOUS[, limit]): the limit in time units.
    Previous(Option<i64>),
    /// FILL(constant).
    Value(Literal),
}

/// A raw (non-aggregate) query being read page by page.
#[derive(Debug)]
pub struct RawCursor {
    columns: Vec<String>,
    types: Vec<DataType>,
    scopes: Vec<Scope>,
    /// The scope being read.
    scope: usize,
    /// The last time consumed in the current scope (every row up to it, or down to it when
    /// descending, has been sent, skipped by OFFSET or filtered out).
    pos: Option<i64>,
    desc: bool,
    /// OFFSET rows still to skip.
    skip: usize,
    /// LIMIT rows still to send.
    left: Option<usize>,
    fill: Option<RowFill>,
    /// FILL(PREVIOUS): the last value of each output of the current scope.
    prev: Vec<Option<(i64, Value)>>,
    done: bool,
}

/// What the row at a time is.
enum RowFate {
    /// No row: WHERE does not hold, or every output is null.
    Hidden,
    /// A row of the scope that FILL sees, but not of the result: under ALIGN BY DEVICE, every
    /// column the result shows is null (the scope's other outputs were cut by SLIMIT).
    Dropped,
    /// A row of the result (once OFFSET has passed).
    Shown(Vec<Option<Value>>),
}

impl RawCursor {
    /// A cursor before its first page: the result header, the bound scopes, and the query's
    /// order, OFFSET, LIMIT and FILL.
    pub(crate) fn new(columns: Vec<String>, types: Vec<DataType>, scopes: Vec<Scope>, s: &Select, fill: Option<RowFill>) -> RawCursor {
        let mut c = RawCursor { columns, types, scopes, scope: 0, pos: None, desc: s.desc, skip: s.offset, left: s.limit, fill, prev: Vec::new(), done: s.limit == Some(0) };
        c.enter_scope(0);
        c
    }

    /// Column names, excluding Time (Device first under ALIGN BY DEVICE).
    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// Column types, in the order of [`RawCursor::columns`].
    pub fn types(&self) -> &[DataType] {
        &self.types
    }

    /// Whether every row has been produced.
    pub fn is_done(&self) -> bool {
        self.done
    }

    fn enter_scope(&mut self, i: usize) {
        self.scope = i;
        self.pos = None;
        self.prev = vec![None; self.scopes.get(i).map_or(0, |s| s.outputs.len())];
        if i >= self.scopes.len() {
            self.done = true;
        }
    }

    fn empty_page(&self) -> ResultSet {
        ResultSet { columns: self.columns.clone(), types: self.types.clone(), ignore_time: false, times: Vec::new(), cols: vec![Vec::new(); self.columns.len()] }
    }

    /// The next page from `st` (TTL measured at `now`): at most `max_rows` rows, fewer when they
    /// would hold more than `max_bytes`; and whether more rows may follow (when true, the next page
    /// may still turn out empty). Hold `st` only for this call: the cursor keeps no reference.
    pub fn fetch(&mut self, st: &State, now: i64, max_rows: usize, max_bytes: usize) -> Result<(ResultSet, bool), Status> {
        let mut page = self.empty_page();
        let max_rows = max_rows.max(1);
        let mut bytes = 0usize;
        'scopes: while !self.done && page.len() < max_rows && bytes < max_bytes {
            crate::running::checkpoint()?;
            let sc = &self.scopes[self.scope];
            let (lo, hi) = match (self.pos, self.desc) {
                (None, _) => (sc.lo, sc.hi),
                (Some(p), false) if p < sc.hi => (p + 1, sc.hi),
                (Some(p), true) if p > sc.lo => (sc.lo, p - 1),
                _ => (1, 0),
            };
            if lo > hi || !sc.driving.iter().any(|d| *d) {
                self.enter_scope(self.scope + 1);
                continue;
            }
            // Enough points per series for the rest of the page, the rows OFFSET still skips and
            // one more (to know whether more follow), within the memory limit.
            let want = (max_rows - page.len()).saturating_add(self.skip).saturating_add(1);
            let per_series = (max_bytes / (POINT_BYTES * sc.series.len().max(1))).max(MIN_BATCH_WIDE);
            let batch = want.clamp(MIN_BATCH, MAX_BATCH).min(per_series);
            let data: Vec<(Vec<i64>, ColumnValues)> = sc.series.iter().map(|(p, t)| read(st, p, *t, lo, hi, now, batch, self.desc)).collect();
            // Every series is complete up to `reach` (down to it when descending): one that gave a
            // whole batch may have more points just beyond its last one.
            let mut reach = if self.desc { lo } else { hi };
            for (t, _) in data.iter().filter(|(t, _)| t.len() >= batch) {
                reach = if self.desc { reach.max(t[0]) } else { reach.min(t[t.len() - 1]) };
            }
            let within = |t: i64| if self.desc { t >= reach } else { t <= reach };
            let mut times: Vec<i64> = data.iter().zip(&sc.driving).filter(|(_, d)| **d).flat_map(|((t, _), _)| t.iter().copied().filter(|t| within(*t))).collect();
            times.sort_unstable();
            times.dedup();
            if self.desc {
                times.reverse();
            }
            let mut cursors: Vec<usize> = data.iter().map(|(t, _)| if self.desc { t.len() } else { 0 }).collect();
            let mut row: Vec<Option<Value>> = vec![None; data.len()];
            for t in times {
                for (i, (dt, dv)) in data.iter().enumerate() {
                    let c = &mut cursors[i];
                    row[i] = None;
                    if self.desc {
                        while *c > 0 && dt[*c - 1] > t {
                            *c -= 1;
                        }
                        if *c > 0 && dt[*c - 1] == t {
                            row[i] = Some(dv.get(*c - 1));
                        }
                    } else {
                        while *c < dt.len() && dt[*c] < t {
                            *c += 1;
                        }
                        if *c < dt.len() && dt[*c] == t {
                            row[i] = Some(dv.get(*c));
                        }
                    }
                }
                let fate = self.row_at(t, &row)?;
                if let RowFate::Shown(_) = &fate {
                    if self.skip == 0 && (page.len() >= max_rows || bytes >= max_bytes) {
                        // The page is full and this row is the next one: it stays unconsumed.
                        break 'scopes;
                    }
                }
                self.pos = Some(t);
                if matches!(fate, RowFate::Hidden) {
                    continue;
                }
                self.commit_fill(t, &row)?;
                let RowFate::Shown(vals) = fate else { continue };
                if self.skip > 0 {
                    self.skip -= 1;
                    continue;
                }
                bytes += 8 + vals.iter().map(|v| CELL_BYTES + if let Some(Value::Bytes(b)) = v { b.len() } else { 0 }).sum::<usize>();
                page.times.push(t);
                for (c, v) in vals.into_iter().enumerate() {
                    page.cols[c].push(v);
                }
                if let Some(l) = &mut self.left {
                    *l -= 1;
                    if *l == 0 {
                        self.done = true;
                        break 'scopes;
                    }
                }
            }
            // Everything up to `reach` is consumed.
            let sc = &self.scopes[self.scope];
            if (!self.desc && reach >= sc.hi) || (self.desc && reach <= sc.lo) {
                self.enter_scope(self.scope + 1);
            } else {
                self.pos = Some(reach);
            }
        }
        Ok((page, !self.done))
    }

    /// What the row at `t` shows, given the values of the scope's series there, with FILL applied
    /// (without recording the row's values for later fills: see [`RawCursor::commit_fill`]).
    fn row_at(&self, t: i64, row: &[Option<Value>]) -> Result<RowFate, Status> {
        let sc = &self.scopes[self.scope];
        if let Some(f) = &sc.filter {
            if !is_true(&eval(f, t, row, &[])?) {
                return Ok(RowFate::Hidden);
            }
        }
        let mut vals: Vec<Option<Value>> = sc.outputs.iter().map(|o| eval(o, t, row, &[])).collect::<Result<_, _>>()?;
        if vals.iter().all(Option::is_none) {
            return Ok(RowFate::Hidden);
        }
        match &self.fill {
            Some(RowFill::Previous(limit)) => {
                for (v, prev) in vals.iter_mut().zip(&self.prev) {
                    if let (None, Some((pt, pv))) = (&v, prev) {
                        if limit.is_none_or(|l| (t - pt).abs() <= l) {
                            *v = Some(pv.clone());
                        }
                    }
                }
            }
            Some(RowFill::Value(lit)) => {
                for (v, ty) in vals.iter_mut().zip(&sc.output_types) {
                    if v.is_none() {
                        *v = fill_constant(lit, *ty);
                    }
                }
            }
            None => {}
        }
        let mapped: Vec<Option<Value>> = sc.index.iter().map(|i| i.and_then(|i| vals[i].clone())).collect();
        match &sc.device {
            // A device's row whose shown columns are all null is not a row of the result.
            Some(_) if mapped.iter().all(Option::is_none) => Ok(RowFate::Dropped),
            Some(d) => Ok(RowFate::Shown(std::iter::once(Some(d.clone())).chain(mapped).collect())),
            None => Ok(RowFate::Shown(mapped)),
        }
    }

    /// Records the values of a consumed row for FILL(PREVIOUS).
    fn commit_fill(&mut self, t: i64, row: &[Option<Value>]) -> Result<(), Status> {
        if !matches!(self.fill, Some(RowFill::Previous(_))) {
            return Ok(());
        }
        let sc = &self.scopes[self.scope];
        for (o, prev) in sc.outputs.iter().zip(self.prev.iter_mut()) {
            if let Some(v) = eval(o, t, row, &[])? {
                *prev = Some((t, v));
            }
        }
        Ok(())
    }

    /// Reads every remaining row into one result, a page at a time, refusing past `max_bytes`
    /// (for callers that want the whole result, such as tests).
    pub fn drain(&mut self, engine: &Engine, max_bytes: usize) -> Result<ResultSet, Status> {
        let mut all = self.empty_page();
        let mut held = 0usize;
        loop {
            let (page, more) = {
                let st = engine.state();
                self.fetch(&st, engine.now(), MAX_BATCH, max_bytes)?
            };
            held = held.saturating_add(page.approx_bytes());
            if held > max_bytes {
                return Err(memory_exceeded("the whole result of this query", held, max_bytes));
            }
            all.times.extend(page.times);
            for (c, col) in page.cols.into_iter().enumerate() {
                all.cols[c].extend(col);
            }
            if !more {
                return Ok(all);
            }
        }
    }
}

/// Up to `limit` points of a series in `[lo, hi]` from the starting end, in ascending order; none
/// when the series no longer exists with the type the query was bound to.
#[allow(clippy::too_many_arguments)]
fn read(st: &State, p: &Path, t: DataType, lo: i64, hi: i64, now: i64, limit: usize, desc: bool) -> (Vec<i64>, ColumnValues) {
    if st.schema.series(p).is_none_or(|s| s.def.dtype != t) {
        return (Vec::new(), ColumnValues::empty(t, 0));
    }
    st.scan_columns_limited(p, lo, hi, now, limit, desc).unwrap_or_else(|| (Vec::new(), ColumnValues::empty(t, 0)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ast::{Query, Statement};
    use crate::eval::TimeContext;
    use crate::select::{run, start, Started};
    use crate::engine_tests::{engine_at_level, NoServer};
    use crate::{execute, parse, Context, Output};
    use duet_common::time::Precision;
    use duet_common::status::StatusCode;

    fn engine(dir: &std::path::Path) -> Engine {
        engine_at_level(dir, 2)
    }

    fn sql(e: &Engine, text: &str, max_bytes: usize) -> Result<Output, Status> {
        let ctx = Context { engine: e, zone_offset: 0, server: &NoServer, pipes: None, max_result_bytes: max_bytes, queries: None, cqs: None };
        execute(&ctx, parse(text)?)
    }

    fn exec(e: &Engine, text: &str) {
        sql(e, text, usize::MAX).unwrap_or_else(|s| panic!("{text}: {}", s.message));
    }

    fn query(text: &str) -> Query {
        match parse(text).unwrap() {
            Statement::Query(q) => *q,
            other => panic!("not a query: {other:?}"),
        }
    }

    fn rows_of(rs: &ResultSet) -> Vec<(i64, Vec<Option<Value>>)> {
        (0..rs.len()).map(|r| (rs.times[r], rs.cols.iter().map(|c| c[r].clone()).collect())).collect()
    }

    /// Two databases of devices with points in two overlapping files and the memtable, nulls,
    /// rewrites and deletions.
    fn load(e: &Engine) {
        exec(e, "create timeseries root.c.d1.s1 int32");
        exec(e, "create timeseries root.c.d1.s2 double");
        exec(e, "create timeseries root.c.d1.t text");
        exec(e, "create timeseries root.c.d2.s1 int32");
        exec(e, "create timeseries root.c.d2.b boolean");
        for round in 0..3i64 {
            let mut v1 = Vec::new();
            let mut v2 = Vec::new();
            for i in 0..700i64 {
                let t = i * 3 + round;
                let s2 = if t % 7 == 0 { "null".to_string() } else { format!("{}.5", t % 50) };
                v1.push(format!("({t}, {}, {s2}, 'x{}')", (t * 31 + round) % 100, t % 13));
                if i % 2 == 0 {
                    v2.push(format!("({}, {}, {})", t * 2, t % 40, t % 3 == 0));
                }
            }
            exec(e, &format!("insert into root.c.d1(timestamp, s1, s2, t) values {}", v1.join(", ")));
            exec(e, &format!("insert into root.c.d2(timestamp, s1, b) values {}", v2.join(", ")));
            if round == 1 {
                exec(e, "delete from root.c.d1.s1 where time >= 300 and time <= 420");
                exec(e, "delete from root.c.d2.** where time >= 1000 and time <= 1100");
            }
            if round < 2 {
                exec(e, "flush");
            }
        }
        exec(e, "insert into root.c.d1(timestamp, s1) values (5, 500), (2000, 2000)");
    }

    /// Reads a cursor in pages of `page` rows, checking each page's size.
    fn paged(st: &State, now: i64, q: &Query, page: usize, max_bytes: usize) -> Result<ResultSet, Status> {
        let Started::Cursor(mut c) = start(st, TimeContext { precision: Precision::Ms, zone_offset: 0, now }, q, usize::MAX)? else { panic!("a raw query pages") };
        let mut all = c.empty_page();
        loop {
            let (p, more) = c.fetch(st, now, page, max_bytes)?;
            assert!(p.len() <= page, "a page holds at most the fetch size");
            assert_eq!((&p.columns, &p.types), (&all.columns, &all.types), "every page has the header");
            all.times.extend(p.times);
            for (c, col) in p.cols.into_iter().enumerate() {
                all.cols[c].extend(col);
            }
            if !more {
                assert!(c.is_done());
                return Ok(all);
            }
        }
    }

    #[test]
    fn pages_are_the_whole_result_cut_anywhere() {
        let d = tempfile::tempdir().unwrap();
        let e = engine(d.path());
        load(&e);
        let queries = [
            "select s1, s2 from root.c.d1",
            "select * from root.c.**",
            "select * from root.c.** order by time desc",
            "select s1, t from root.c.d1 where time >= 100 and time < 1500",
            "select s1, t from root.c.d1 where time >= 100 and time < 1500 order by time desc",
            "select s1 from root.c.d1 where s2 > 20 and s1 < 60",
            "select s1 + 1, s2 * 2 from root.c.d1 where s2 is null or s1 > 90",
            "select s1 from root.c.d1, root.c.d2 where time > 50 order by time desc",
            "select * from root.c.** limit 777 offset 123",
            "select * from root.c.** order by time desc limit 500 offset 999",
            "select s1 from root.c.** limit 10 offset 100000",
            "select * from root.c.** slimit 2 soffset 1 limit 300",
            "select s2 from root.c.d1 fill(previous)",
            "select s2, s1 from root.c.d1 fill(previous, 2ms) order by time desc",
            "select s2 from root.c.d1 fill(-1) limit 100 offset 7",
            "select * from root.c.** align by device",
            "select * from root.c.** order by time desc align by device",
            "select s1 from root.c.** where s1 > 30 limit 600 offset 650 align by device",
            "select * from root.c.** slimit 1 soffset 2 align by device",
            "select s1, b from root.c.** fill(previous) order by time desc limit 900 align by device",
            "select nosuch from root.c.d1",
            "select s1 from root.c.d1 where time > 5000",
            "select s1 from root.c.d1 limit 0",
        ];
        let st = e.state();
        let now = e.now();
        for text in queries {
            let q = query(text);
            let want = run(&st, TimeContext { precision: Precision::Ms, zone_offset: 0, now }, &q, usize::MAX).unwrap();
            for page in [3, 256, 1000, 100_000] {
                let got = paged(&st, now, &q, page, usize::MAX).unwrap();
                assert_eq!((&got.columns, &got.types), (&want.columns, &want.types), "{text}");
                assert_eq!(rows_of(&got), rows_of(&want), "{text}, pages of {page}");
            }
            // A small byte budget cuts pages short, never the result.
            let got = paged(&st, now, &q, 1000, 4096).unwrap();
            assert_eq!(rows_of(&got), rows_of(&want), "{text}, 4 KiB pages");
        }
        let big = run(&st, TimeContext { precision: Precision::Ms, zone_offset: 0, now }, &query("select * from root.c.**"), usize::MAX).unwrap();
        assert!(big.len() > 2000, "the comparison saw real data ({} rows)", big.len());
    }

    #[test]
    fn a_page_sees_writes_after_its_position_and_never_repeats_a_row() {
        let d = tempfile::tempdir().unwrap();
        let e = engine(d.path());
        for dev in ["asc", "desc"] {
            exec(&e, &format!("insert into root.w.{dev}(timestamp, v) values {}", (0..1000).map(|t| format!("({}, {t})", t * 10)).collect::<Vec<_>>().join(", ")));
        }
        exec(&e, "flush");
        for desc in [false, true] {
            let dev = if desc { "desc" } else { "asc" };
            let text = if desc { "select v from root.w.desc order by time desc".to_string() } else { "select v from root.w.asc".to_string() };
            let Output::Cursor(mut c) = sql(&e, &text, usize::MAX).unwrap() else { panic!("a raw query pages") };
            let mut times = Vec::new();
            let mut round = 0i64;
            loop {
                let (p, more) = c.fetch(&e.state(), e.now(), 100, usize::MAX).unwrap();
                times.extend(p.times.iter().copied());
                if !more {
                    break;
                }
                // Between two fetches: a point on each side of the position, and an overwrite of
                // a row already sent.
                round += 1;
                let last = *times.last().unwrap();
                let (behind, ahead) = if desc { (last + 5, last - 5) } else { (last - 5, last + 5) };
                exec(&e, &format!("insert into root.w.{dev}(timestamp, v) values ({behind}, -{round}), ({ahead}, -{round}), ({last}, -1)"));
            }
            let mut sorted = times.clone();
            sorted.sort_unstable();
            sorted.dedup();
            assert_eq!(sorted.len(), times.len(), "no row is sent twice (desc={desc})");
            let mut ordered = times.clone();
            if desc {
                ordered.reverse();
            }
            assert_eq!(ordered, sorted, "rows come in time order (desc={desc})");
            // Every original row, and every point written ahead of the position, was sent.
            assert!((0..1000).all(|t| times.contains(&(t * 10))), "desc={desc}");
            assert_eq!(times.len(), 1000 + round as usize, "each round's point ahead of the position is seen once (desc={desc})");
        }
    }

    #[test]
    fn materialised_results_stay_within_the_memory_limit() {
        let d = tempfile::tempdir().unwrap();
        let e = engine(d.path());
        exec(&e, &format!("insert into root.m.d(timestamp, v) values {}", (0..40_000).map(|t| format!("({t}, {t})")).collect::<Vec<_>>().join(", ")));
        let limit = 1 << 20;
        let refused = |text: &str| match sql(&e, text, limit).and_then(|o| o.into_result(&e, limit)) {
            Err(s) => {
                assert_eq!(s.code, StatusCode::QueryExecutionMemoryNotEnough, "{text}: {}", s.message);
                assert!(s.message.contains("query_memory_limit_in_byte=1048576"), "{}", s.message);
            }
            Ok(_) => panic!("{text} should exceed {limit} bytes"),
        };
        // A million windows, linear FILL's points, and a whole raw result drained at once.
        refused("select count(v) from root.m.d group by ([0, 1000000), 1ms)");
        refused("select v from root.m.d fill(linear)");
        sql(&e, "select v from root.m.d where time < 100 fill(linear)", limit).unwrap();
        refused("select v, v + 1 from root.m.d");
        // A raw query is a cursor: the same limit holds only a page at a time.
        let Output::Cursor(mut c) = sql(&e, "select v, v + 1, v * 2 from root.m.d", limit).unwrap() else { panic!("a raw query pages") };
        let (p, more) = c.fetch(&e.state(), e.now(), 40_000, limit).unwrap();
        assert!(more && p.len() < 40_000 && p.approx_bytes() <= limit + 1024, "a page is cut at the limit ({} rows)", p.len());
        // Aggregations within the limit are fine.
        let Output::Rows(rs) = sql(&e, "select count(v) from root.m.d group by ([0, 5000), 1ms)", limit).unwrap() else { panic!("rows") };
        assert_eq!(rs.len(), 5000);
        // A value filter holds the points it reads: 40,000 of them pass 1 MiB, a tenth does not.
        refused("select count(v) from root.m.d where v > 5");
        let Output::Rows(rs) = sql(&e, "select count(v) from root.m.d where v > 5 and time < 4000", limit).unwrap() else { panic!("rows") };
        assert_eq!(rs.cols[0][0], Some(Value::I64(3994)));
        // Without a value filter the points stream through the aggregation: no limit applies.
        sql(&e, "select count(v), avg(v) from root.m.d", limit).unwrap();
    }
}
