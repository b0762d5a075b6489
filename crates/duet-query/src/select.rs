//! SELECT execution: binding paths and aggregates to series, raw time-aligned rows, windowed
//! aggregation (GROUP BY time / LEVEL, HAVING), FILL, LAST, ALIGN BY DEVICE and paging.
//!
//! Binding expands wildcards the way IoTDB does: every path of an expression expands to the series
//! it matches, an expression with several wildcard operands expands to the cartesian product of
//! their matches, and each result column is named by IoTDB's expression string
//! (`root.db.d1.s1 + root.db.d1.s2`, `count(root.db.d1.s1)`, `count(root.*.d1.s1)` under GROUP BY
//! LEVEL, and paths relative to the device under ALIGN BY DEVICE).
//!
//! Aggregation reads one series at a time (typed parts from `State::scan_parts`, or a scan and a
//! typed column when a value filter needs each point, then a per-window [`WindowAgg`]), so its
//! memory is one series' points plus one state per window of the group being aggregated, whatever
//! the number of series. A file page that one window holds whole is merged from its statistics.

use std::collections::{HashMap, HashSet};

use duet_common::path::{Path, PathPattern};
use duet_common::status::{Status, StatusCode};
use duet_common::types::{format_float, DataType, Value};
use duet_storage::engine::{ScanPart, State};

use crate::agg::{to_columns, AggFunc, Need, Partial, WindowAgg, Windows};
use crate::ast::*;
use crate::scalar::{Scalar, Trend};
use crate::eval::{binary, coerce_literal, duration, literal_value, time_value, TimeContext};
use crate::exec::{time_bounds, TimeBounds, ALL_TIME};
use crate::cursor::{RawCursor, RowFill, Scope};
use crate::result::{memory_exceeded, ResultSet, CELL_BYTES};
use crate::window::{self, TimeDuration};

/// At most this many aggregate cells (windows x aggregate columns) per query, so that a huge GROUP
/// BY range fails with a clear message instead of exhausting memory.
const MAX_AGG_CELLS: u64 = 50_000_000;

/// Most columns one binary expression of a select list may expand to.
const MAX_EXPANDED_COLUMNS: usize = 100_000;

fn semantic(msg: impl Into<String>) -> Status {
    Status::new(StatusCode::SemanticError, msg)
}

/// An expression with its paths resolved: raw series to series slots, aggregates to aggregate slots.
#[derive(Clone, Debug)]
pub(crate) enum Bound {
    Time,
    Series(usize),
    Agg(usize),
    Lit(Option<Value>),
    Bin(BinOp, Box<Bound>, Box<Bound>),
    Not(Box<Bound>),
    Neg(Box<Bound>),
    Between(Box<Bound>, Box<Bound>, Box<Bound>, bool),
    IsNull(Box<Bound>, bool),
    In(Box<Bound>, Vec<Option<Value>>, bool),
    /// A scalar function of one input; the function's name as written (for messages).
    Func(Box<Scalar>, Box<Bound>, String),
    /// A variation-trend function (DIFF, DERIVATIVE, ...) of one input, with its state.
    Trend(Box<Trend>, Box<Bound>, String),
    /// `__endTime`: the last time of a GROUP BY window (set where windows are shown).
    EndTime,
}

/// The value of a bound expression at time `t`, given the row's series values and aggregate values.
pub(crate) fn eval(b: &Bound, t: i64, row: &[Option<Value>], aggs: &[Option<Value>]) -> Result<Option<Value>, Status> {
    Ok(match b {
        Bound::Time => Some(Value::I64(t)),
        Bound::EndTime => None,
        Bound::Series(i) => row[*i].clone(),
        Bound::Agg(i) => aggs[*i].clone(),
        Bound::Lit(v) => v.clone(),
        Bound::Bin(op, a, c) => binary(*op, eval(a, t, row, aggs)?, eval(c, t, row, aggs)?)?,
        Bound::Not(a) => match eval(a, t, row, aggs)? {
            Some(Value::Bool(x)) => Some(Value::Bool(!x)),
            _ => None,
        },
        Bound::Neg(a) => match eval(a, t, row, aggs)? {
            Some(Value::I32(x)) => Some(Value::I32(x.wrapping_neg())),
            Some(Value::I64(x)) => Some(Value::I64(x.wrapping_neg())),
            Some(Value::F32(x)) => Some(Value::F32(-x)),
            other => other.and_then(|v| v.as_f64()).map(|x| Value::F64(-x)),
        },
        Bound::Between(x, lo, hi, not) => {
            let v = eval(x, t, row, aggs)?;
            let ge = binary(BinOp::Ge, v.clone(), eval(lo, t, row, aggs)?)?;
            let r = binary(BinOp::And, ge, binary(BinOp::Le, v, eval(hi, t, row, aggs)?)?)?;
            if *not {
                r.map(|x| Value::Bool(x != Value::Bool(true)))
            } else {
                r
            }
        }
        Bound::IsNull(a, not) => Some(Value::Bool(eval(a, t, row, aggs)?.is_none() != *not)),
        Bound::In(a, vals, not) => {
            let v = eval(a, t, row, aggs)?;
            v.map(|v| Value::Bool(vals.iter().flatten().any(|x| v.compare(x) == Some(std::cmp::Ordering::Equal)) != *not))
        }
        Bound::Func(f, a, _) => f.apply(eval(a, t, row, aggs)?)?,
        Bound::Trend(f, a, _) => f.next(t, eval(a, t, row, aggs)?),
    })
}

/// Whether a condition's value holds (SQL three-valued logic: null does not).
pub(crate) fn is_true(v: &Option<Value>) -> bool {
    matches!(v, Some(Value::Bool(true)))
}

/// One expanded SELECT column: its bound expression, IoTDB's name for it, and the priority IoTDB
/// uses to decide parentheses when the name is nested in a larger expression.
#[derive(Clone, Debug)]
struct Out {
    b: Bound,
    name: String,
    prio: u16,
}

const PRIO_CONST: u16 = 1400;
const PRIO_TIME: u16 = 1300;
const PRIO_SERIES: u16 = 1200;
const PRIO_FUNC: u16 = 1100;
const PRIO_UNARY: u16 = 1000;

fn bin_prio(op: BinOp) -> u16 {
    match op {
        BinOp::Mul | BinOp::Div | BinOp::Mod => 900,
        BinOp::Add | BinOp::Sub => 800,
        BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => 600,
        BinOp::And => 300,
        BinOp::Or => 200,
    }
}

/// IoTDB's column name for a scalar function: `sin(root.d.s)`, `CAST(root.d.s AS INT32)`,
/// `string_contains(root.d.s, "s"="warn")`.
fn scalar_name(f: &str, input: &str, extra: &[Expr]) -> String {
    fn arg(e: &Expr) -> String {
        match e {
            Expr::Lit(Literal::Str(s)) => format!("\"{s}\""),
            Expr::Lit(Literal::Int(v)) => v.to_string(),
            Expr::Lit(l) => lit_name(l, &None),
            Expr::Neg(x) => format!("-{}", arg(x)),
            Expr::Binary(BinOp::Eq, k, v) => format!("{}={}", arg(k), arg(v)),
            other => format!("{other:?}"),
        }
    }
    if f.eq_ignore_ascii_case("CAST") {
        if let [Expr::Lit(Literal::Str(t))] = extra {
            return format!("CAST({input} AS {})", t.to_ascii_uppercase());
        }
    }
    if f == crate::scalar::LIKE || f == crate::scalar::REGEXP {
        return format!("{input} {f} {}", extra.iter().map(arg).collect::<Vec<_>>().join(" "));
    }
    let mut parts = vec![input.to_string()];
    parts.extend(extra.iter().map(arg));
    format!("{f}({})", parts.join(", "))
}

fn lit_name(l: &Literal, v: &Option<Value>) -> String {
    match (l, v) {
        (Literal::Str(s), _) => format!("\"{s}\""),
        (Literal::Null, _) => "null".into(),
        (Literal::Float(f), _) => format_float(*f, false),
        (_, Some(v)) => v.render(DataType::Text),
        (_, None) => "null".into(),
    }
}

/// What a path may mean where it is bound.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// A raw SELECT column: paths are series, aggregates are not allowed.
    Raw,
    /// An aggregation's SELECT or HAVING: paths only inside aggregate functions.
    Agg,
    /// WHERE: paths are series, aggregates are not allowed.
    Where,
}

/// A set of series aggregated together: one series, or a GROUP BY LEVEL group.
#[derive(Debug)]
struct Group {
    label: String,
    members: Vec<(Path, DataType)>,
    need: Need,
}

#[derive(Debug)]
struct AggSlot {
    func: AggFunc,
    group: usize,
    dtype: DataType,
}

/// Resolves expressions against the schema for one scope (FROM prefixes, or one device).
struct Binder<'a> {
    st: &'a State,
    from: Vec<PathPattern>,
    tc: TimeContext,
    /// ALIGN BY DEVICE: paths are measurements of this device and columns are named relative to it.
    device: Option<Path>,
    levels: Vec<usize>,
    series: Vec<(Path, DataType)>,
    series_index: HashMap<Path, usize>,
    groups: Vec<Group>,
    group_index: HashMap<String, usize>,
    member_of: HashMap<Path, usize>,
    slots: Vec<AggSlot>,
    slot_index: HashMap<(AggFunc, usize), usize>,
    /// Most bytes a materialised result may hold (`query_memory_limit_in_byte`).
    max_bytes: usize,
    /// Whether the aggregates' types are settled (check_slots ran): literals compared with them
    /// are typed from then on.
    settled: bool,
    /// The control expression of GROUP BY VARIATION / CONDITION, bound over raw series slots.
    control: Option<Bound>,
}

impl<'a> Binder<'a> {
    fn new(st: &'a State, from: Vec<PathPattern>, tc: TimeContext, device: Option<Path>, levels: Vec<usize>) -> Binder<'a> {
        Binder {
            st,
            from,
            tc,
            device,
            levels,
            series: Vec::new(),
            series_index: HashMap::new(),
            groups: Vec::new(),
            group_index: HashMap::new(),
            member_of: HashMap::new(),
            slots: Vec::new(),
            slot_index: HashMap::new(),
            max_bytes: usize::MAX,
            settled: false,
            control: None,
        }
    }

    fn render(&self, p: &Path) -> String {
        let full = p.to_string();
        match &self.device {
            Some(d) => full.strip_prefix(&format!("{d}.")).map(str::to_string).unwrap_or(full),
            None => full,
        }
    }

    /// The series a path names here, in path order without duplicates.
    fn matches(&self, nodes: &[String]) -> Result<Vec<(Path, DataType)>, Status> {
        let patterns: Vec<PathPattern> = match &self.device {
            Some(d) => {
                if nodes.len() != 1 || nodes[0] == "root" {
                    return Err(semantic(format!(
                        "ALIGN BY DEVICE selects measurements of each device (such as s1 or *), not '{}'",
                        nodes.join(".")
                    )));
                }
                let node = if nodes[0] == "**" { "*".to_string() } else { nodes[0].clone() };
                vec![PathPattern::exact(d).join(&[node])]
            }
            None if nodes.first().map(|s| s.as_str()) == Some("root") => vec![PathPattern::from_nodes(nodes.to_vec())],
            None => self.from.iter().map(|f| f.join(nodes)).collect(),
        };
        let mut out: Vec<(Path, DataType)> = Vec::new();
        let mut seen = HashSet::new();
        for p in &patterns {
            for s in self.st.schema.series_matching(p) {
                if seen.insert(s.def.path.clone()) {
                    out.push((s.def.path.clone(), s.def.dtype));
                }
            }
        }
        Ok(out)
    }

    fn series_slot(&mut self, p: Path, t: DataType) -> usize {
        if let Some(i) = self.series_index.get(&p) {
            return *i;
        }
        self.series.push((p.clone(), t));
        self.series_index.insert(p, self.series.len() - 1);
        self.series.len() - 1
    }

    /// The group a series is aggregated in: itself, or its GROUP BY LEVEL key (nodes at the given
    /// levels and the measurement kept, the others replaced by `*`).
    fn group_of(&mut self, p: &Path, t: DataType) -> usize {
        if let Some(g) = self.member_of.get(p) {
            return *g;
        }
        let label = if self.levels.is_empty() {
            self.render(p)
        } else {
            let n = p.nodes().len();
            let nodes: Vec<String> = p
                .nodes()
                .iter()
                .enumerate()
                .map(|(i, s)| if i == 0 || i == n - 1 || self.levels.contains(&i) { s.clone() } else { "*".into() })
                .collect();
            PathPattern::from_nodes(nodes).to_string()
        };
        let g = match self.group_index.get(&label) {
            Some(g) => *g,
            None => {
                self.groups.push(Group { label: label.clone(), members: Vec::new(), need: Need::default() });
                self.group_index.insert(label, self.groups.len() - 1);
                self.groups.len() - 1
            }
        };
        self.groups[g].members.push((p.clone(), t));
        self.member_of.insert(p.clone(), g);
        g
    }

    /// A group of the given series under a label of the caller's (GROUP BY TAGS): a series may be
    /// in several such groups.
    fn group_labeled(&mut self, label: String, members: Vec<(Path, DataType)>) -> usize {
        if let Some(g) = self.group_index.get(&label) {
            return *g;
        }
        self.groups.push(Group { label: label.clone(), members, need: Need::default() });
        self.group_index.insert(label, self.groups.len() - 1);
        self.groups.len() - 1
    }

    fn agg_slot(&mut self, func: AggFunc, group: usize) -> usize {
        if let Some(i) = self.slot_index.get(&(func, group)) {
            return *i;
        }
        self.groups[group].need = self.groups[group].need.union(func.need());
        // The type is settled in `check_slots` once every member of the group is known.
        self.slots.push(AggSlot { func, group, dtype: DataType::Int64 });
        self.slot_index.insert((func, group), self.slots.len() - 1);
        self.slots.len() - 1
    }

    /// Checks every aggregate's input types and settles its result type.
    fn check_slots(&mut self) -> Result<(), Status> {
        for s in self.slots.iter_mut() {
            let g = &self.groups[s.group];
            let mut ty = None;
            for (p, t) in &g.members {
                let r = s.func.result_type(*t).map_err(|e| semantic(format!("{} (series {p})", e.message)))?;
                match ty {
                    None => ty = Some(r),
                    Some(prev) if prev != r => {
                        return Err(semantic(format!(
                            "{}({}) aggregates series of different types ({} and {}); select them separately",
                            s.func.name().to_ascii_lowercase(),
                            g.label,
                            prev.name(),
                            r.name()
                        )))
                    }
                    Some(_) => {}
                }
            }
            s.dtype = ty.unwrap_or(DataType::Int64);
        }
        Ok(())
    }

    /// Whether an expression is a constant point in time or duration (`now() - 1d`), which is
    /// folded to an integer so that time arithmetic stays exact.
    fn is_time_const(e: &Expr) -> bool {
        fn walk(e: &Expr, timeish: &mut bool) -> bool {
            match e {
                Expr::Lit(Literal::DateTime(_) | Literal::Duration(_)) => {
                    *timeish = true;
                    true
                }
                Expr::Lit(Literal::Int(_)) => true,
                Expr::Call(f, a) if f.eq_ignore_ascii_case("now") && a.is_empty() => {
                    *timeish = true;
                    true
                }
                Expr::Binary(BinOp::Add | BinOp::Sub, a, b) => walk(a, timeish) && walk(b, timeish),
                Expr::Neg(a) => walk(a, timeish),
                _ => false,
            }
        }
        let mut timeish = false;
        walk(e, &mut timeish) && timeish
    }

    /// Expands an expression into the columns it stands for.
    fn expand(&mut self, e: &Expr, mode: Mode) -> Result<Vec<Out>, Status> {
        Ok(match e {
            Expr::Time => vec![Out { b: Bound::Time, name: "Time".into(), prio: PRIO_TIME }],
            Expr::Path(nodes) if nodes.len() == 1 && nodes[0].eq_ignore_ascii_case("__endTime") => {
                if mode != Mode::Agg {
                    return Err(semantic("__endTime is the end of a GROUP BY window: select it with aggregates and GROUP BY"));
                }
                vec![Out { b: Bound::EndTime, name: "__endTime".into(), prio: PRIO_TIME }]
            }
            Expr::Path(nodes) => {
                if mode == Mode::Agg {
                    return Err(semantic(format!(
                        "Raw data and aggregation hybrid query is not supported: '{}' is not inside an aggregate function",
                        nodes.join(".")
                    )));
                }
                let mut out = Vec::new();
                for (p, t) in self.matches(nodes)? {
                    let name = self.render(&p);
                    out.push(Out { b: Bound::Series(self.series_slot(p, t)), name, prio: PRIO_SERIES });
                }
                out
            }
            Expr::Lit(l) => {
                let v = literal_value(l, &self.tc)?;
                vec![Out { name: lit_name(l, &v), b: Bound::Lit(v), prio: PRIO_CONST }]
            }
            Expr::Binary(..) | Expr::Neg(_) if Binder::is_time_const(e) => {
                let v = time_value(e, &self.tc)?;
                vec![Out { b: Bound::Lit(Some(Value::I64(v))), name: v.to_string(), prio: PRIO_CONST }]
            }
            Expr::Binary(op, a, c) => {
                let (mut la, mut lc) = (self.expand(a, mode)?, self.expand(c, mode)?);
                if matches!(op, BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge) {
                    // A literal compared with a column takes the column's type ('2024-03-01' for a
                    // DATE, an ISO string for the time), or the comparison is refused.
                    if let (Expr::Lit(l), [other]) = (&**c, la.as_slice()) {
                        lc[0].b = self.compared_literal(other, l, &lc[0], false)?;
                    } else if let (Expr::Lit(l), [other]) = (&**a, lc.as_slice()) {
                        la[0].b = self.compared_literal(other, l, &la[0], false)?;
                    } else if let Expr::Lit(l) = &**c {
                        for x in &la {
                            self.compared_literal(x, l, &lc[0], false)?;
                        }
                    } else if let Expr::Lit(l) = &**a {
                        for x in &lc {
                            self.compared_literal(x, l, &la[0], false)?;
                        }
                    }
                }
                // Each side's series pair up: `* + * + *` over a hundred series is a million
                // columns, and a few more operators would exhaust memory.
                if la.len().saturating_mul(lc.len()) > MAX_EXPANDED_COLUMNS {
                    return Err(semantic(format!(
                        "expression expands to {} x {} columns, more than the {MAX_EXPANDED_COLUMNS} a query may have; narrow its paths",
                        la.len(),
                        lc.len()
                    )));
                }
                if matches!(op, BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::Mod) {
                    for o in la.iter().chain(&lc) {
                        self.check_numeric(o, op.symbol())?;
                    }
                }
                let prio = bin_prio(*op);
                let wrap = |o: &Out| if o.prio < prio { format!("({})", o.name) } else { o.name.clone() };
                let mut out = Vec::with_capacity(la.len() * lc.len());
                for x in &la {
                    for y in &lc {
                        out.push(Out {
                            b: Bound::Bin(*op, Box::new(x.b.clone()), Box::new(y.b.clone())),
                            name: format!("{} {} {}", wrap(x), op.symbol(), wrap(y)),
                            prio,
                        });
                    }
                }
                out
            }
            Expr::Not(a) | Expr::Neg(a) => {
                let neg = matches!(e, Expr::Neg(_));
                let sym = if neg { "-" } else { "!" };
                let inner = self.expand(a, mode)?;
                if neg {
                    for o in &inner {
                        self.check_numeric(o, "-")?;
                    }
                }
                inner
                    .into_iter()
                    .map(|x| {
                        let bare = (x.prio == PRIO_SERIES || x.prio == PRIO_FUNC || x.prio == PRIO_CONST) && !x.name.starts_with('-');
                        let name = if bare { format!("{sym}{}", x.name) } else { format!("{sym}({})", x.name) };
                        let b = if neg { Bound::Neg(Box::new(x.b)) } else { Bound::Not(Box::new(x.b)) };
                        Out { b, name, prio: PRIO_UNARY }
                    })
                    .collect()
            }
            Expr::Between { expr, lo, hi, not } => {
                let (lx, mut ll, mut lh) = (self.expand(expr, mode)?, self.expand(lo, mode)?, self.expand(hi, mode)?);
                if let [x] = lx.as_slice() {
                    for (e, l) in [(lo, &mut ll), (hi, &mut lh)] {
                        if let (Expr::Lit(lit), [o]) = (&**e, l.as_mut_slice()) {
                            o.b = self.compared_literal(x, lit, o, true)?;
                        }
                    }
                }
                if lx.len().saturating_mul(ll.len()).saturating_mul(lh.len()) > MAX_EXPANDED_COLUMNS {
                    return Err(semantic(format!(
                        "BETWEEN expands to {} x {} x {} columns, more than the {MAX_EXPANDED_COLUMNS} a query may have; narrow its paths",
                        lx.len(),
                        ll.len(),
                        lh.len()
                    )));
                }
                let mut out = Vec::new();
                for x in &lx {
                    for l in &ll {
                        for h in &lh {
                            out.push(Out {
                                b: Bound::Between(Box::new(x.b.clone()), Box::new(l.b.clone()), Box::new(h.b.clone()), *not),
                                name: format!("{} {}BETWEEN {} AND {}", x.name, if *not { "NOT " } else { "" }, l.name, h.name),
                                prio: 450,
                            });
                        }
                    }
                }
                out
            }
            Expr::IsNull(a, not) => self
                .expand(a, mode)?
                .into_iter()
                .map(|x| Out {
                    name: format!("{} IS {}NULL", x.name, if *not { "NOT " } else { "" }),
                    b: Bound::IsNull(Box::new(x.b), *not),
                    prio: 475,
                })
                .collect(),
            Expr::In(a, lits, not) => {
                let vals = lits.iter().map(|l| literal_value(l, &self.tc)).collect::<Result<Vec<_>, _>>()?;
                let names: Vec<String> = lits.iter().zip(&vals).map(|(l, v)| lit_name(l, v)).collect();
                let mut out = Vec::new();
                for x in self.expand(a, mode)? {
                    // Each value as it compares with this column (see compared_literal).
                    let mut typed = Vec::with_capacity(vals.len());
                    for ((l, v), name) in lits.iter().zip(&vals).zip(&names) {
                        let lit = Out { b: Bound::Lit(v.clone()), name: name.clone(), prio: PRIO_CONST };
                        typed.push(match self.compared_literal(&x, l, &lit, true)? {
                            Bound::Lit(v) => v,
                            _ => v.clone(),
                        });
                    }
                    out.push(Out { name: format!("{} {}IN ({})", x.name, if *not { "NOT " } else { "" }, names.join(", ")), b: Bound::In(Box::new(x.b), typed, *not), prio: 400 });
                }
                out
            }
            Expr::Call(f, args) if f.eq_ignore_ascii_case("now") && args.is_empty() => {
                vec![Out { b: Bound::Lit(Some(Value::I64(self.tc.now))), name: self.tc.now.to_string(), prio: PRIO_CONST }]
            }
            Expr::Call(f, args) if !args.is_empty() && Trend::bind(f, &args[1..]).is_some() => {
                if mode != Mode::Raw {
                    return Err(semantic(format!("{f}() compares rows of a raw query; it cannot be used in WHERE, HAVING or with aggregates")));
                }
                let func = Trend::bind(f, &args[1..]).unwrap()?;
                let mut out = Vec::new();
                for x in self.expand(&args[0], mode)? {
                    func.output_type(f, &x.name, self.type_of(&x.b))?;
                    out.push(Out { name: scalar_name(f, &x.name, &args[1..]), b: Bound::Trend(Box::new(func.fresh()), Box::new(x.b), f.clone()), prio: PRIO_FUNC });
                }
                out
            }
            Expr::Call(f, args) if !args.is_empty() && Scalar::bind(f, &args[1..]).is_some() => {
                let func = Scalar::bind(f, &args[1..]).unwrap()?;
                let mut out = Vec::new();
                for x in self.expand(&args[0], mode)? {
                    let o = Out { name: scalar_name(f, &x.name, &args[1..]), b: Bound::Func(Box::new(func.clone()), Box::new(x.b), f.clone()), prio: PRIO_FUNC };
                    // (Over an aggregate, once its type is settled: see bind_scope.)
                    if !has_agg(&o.b) {
                        self.check_func(&o.b)?;
                    }
                    out.push(o);
                }
                out
            }
            Expr::Call(f, args) => {
                let Some(func) = AggFunc::parse(f) else {
                    return Err(semantic(format!(
                        "unknown function {f}(); DuetDB supports the aggregates COUNT, SUM, AVG, MIN_VALUE, MAX_VALUE, EXTREME, FIRST_VALUE, LAST_VALUE, MIN_TIME, MAX_TIME, now(), and the scalar functions {}", crate::scalar::NAMES
                    )));
                };
                if mode != Mode::Agg {
                    return Err(semantic(format!(
                        "{f}() is an aggregate function; it cannot be mixed with raw columns{}",
                        if mode == Mode::Where { " or used in WHERE (use HAVING)" } else { "" }
                    )));
                }
                let [Expr::Path(nodes)] = args.as_slice() else {
                    return Err(semantic(format!("{f}() takes exactly one series path (expressions inside aggregates are not supported)")));
                };
                let mut out: Vec<Out> = Vec::new();
                let mut seen = HashSet::new();
                for (p, t) in self.matches(nodes)? {
                    let g = self.group_of(&p, t);
                    let slot = self.agg_slot(func, g);
                    if seen.insert(slot) {
                        out.push(Out { b: Bound::Agg(slot), name: format!("{f}({})", self.groups[g].label), prio: PRIO_FUNC });
                    }
                }
                out
            }
        })
    }

    /// Binds a condition (WHERE or HAVING); a wildcard condition holds when it holds for every
    /// series it expands to, as in IoTDB.
    fn condition(&mut self, e: &Expr, mode: Mode) -> Result<Bound, Status> {
        // A wildcard condition holds for every series it expands to: ANDed as a balanced tree,
        // since evaluating one recurses per level and a chain of 100,000 would overflow the stack.
        let mut level: Vec<Bound> = self.expand(e, mode)?.into_iter().map(|o| o.b).collect();
        if level.is_empty() {
            return Ok(Bound::Lit(None));
        }
        while level.len() > 1 {
            let mut next = Vec::with_capacity(level.len().div_ceil(2));
            let mut it = level.into_iter();
            while let Some(a) = it.next() {
                next.push(match it.next() {
                    Some(b) => Bound::Bin(BinOp::And, Box::new(a), Box::new(b)),
                    None => a,
                });
            }
            level = next;
        }
        Ok(level.pop().unwrap())
    }

    /// The value literal `l` (expanded as `lit`) takes where it is compared with `other`: a time
    /// or a TIMESTAMP column takes a date-time string, a DATE column a date; one that cannot be
    /// compared with the column's type is refused, as IoTDB does (a string with a number, ...),
    /// rather than matching nothing. A FLOAT column takes a number as a FLOAT (`f = 0.1` finds
    /// the 0.1 stored). `lenient` (IN and BETWEEN lists) converts any value that converts, as
    /// IoTDB does (`i in (1, '2')`). (Where a pattern expands to columns of several types, the
    /// literal is checked against each but keeps its own value.)
    fn compared_literal(&self, other: &Out, l: &Literal, lit: &Out, lenient: bool) -> Result<Bound, Status> {
        let t = match &other.b {
            Bound::Time | Bound::EndTime => DataType::Timestamp,
            Bound::Lit(_) => return Ok(lit.b.clone()),
            // (A time, though its type is INT64.)
            Bound::Agg(i) if matches!(self.slots[*i].func, AggFunc::MinTime | AggFunc::MaxTime) => DataType::Timestamp,
            // An aggregate's type is settled after binding (check_slots): HAVING is bound again
            // then.
            b if has_agg(b) && !self.settled => return Ok(lit.b.clone()),
            b => self.type_of(b),
        };
        let coerced = |t| match coerce_literal(l, t, &self.tc) {
            Ok(v) => Ok(Bound::Lit(v)),
            Err(e) => Err(semantic(format!("{} cannot be compared with {}: {e}", other.name, lit.name))),
        };
        let refuse = || Err(semantic(format!("{} is {}; it cannot be compared with {}", other.name, t.name(), lit.name)));
        match (t, l) {
            (_, Literal::Null) => Ok(lit.b.clone()),
            (DataType::Timestamp, Literal::Str(_) | Literal::DateTime(_)) => coerced(DataType::Timestamp),
            (DataType::Date, Literal::Str(_) | Literal::DateTime(_)) => coerced(DataType::Date),
            (DataType::Date | DataType::Timestamp, Literal::Int(_) | Literal::Float(_) | Literal::Duration(_)) => Ok(lit.b.clone()),
            (DataType::Float, Literal::Int(_) | Literal::Float(_)) => coerced(DataType::Float),
            (t, Literal::Int(_) | Literal::Float(_) | Literal::DateTime(_) | Literal::Duration(_)) if t.is_numeric() => Ok(lit.b.clone()),
            (DataType::Text | DataType::String, Literal::Str(_)) => Ok(lit.b.clone()),
            (DataType::Blob, Literal::Blob(_) | Literal::Str(_)) => Ok(lit.b.clone()),
            (DataType::Boolean, Literal::Bool(_)) => Ok(lit.b.clone()),
            // A boolean column compared with a comparison's result, etc.
            (DataType::Boolean, _) if !matches!(other.b, Bound::Series(_) | Bound::Agg(_)) => Ok(lit.b.clone()),
            (t, _) if lenient => coerced(t),
            _ => refuse(),
        }
    }

    /// Refuses a scalar function (anywhere in `b`) whose input type it does not take.
    fn check_func(&self, b: &Bound) -> Result<(), Status> {
        match b {
            Bound::Func(f, a, name) => {
                self.check_func(a)?;
                let input = match &**a {
                    Bound::Series(i) => self.series[*i].0.to_string(),
                    _ => "its input".to_string(),
                };
                f.output_type(name, &input, self.type_of(a)).map(|_| ())
            }
            Bound::Bin(_, a, c) => self.check_func(a).and(self.check_func(c)),
            Bound::Between(a, x, c, _) => self.check_func(a).and(self.check_func(x)).and(self.check_func(c)),
            Bound::Not(a) | Bound::Neg(a) | Bound::IsNull(a, _) | Bound::In(a, _, _) | Bound::Trend(_, a, _) => self.check_func(a),
            Bound::Time | Bound::EndTime | Bound::Series(_) | Bound::Agg(_) | Bound::Lit(_) => Ok(()),
        }
    }

    /// Refuses arithmetic on a column that is not a number (IoTDB checks this before running).
    fn check_numeric(&self, o: &Out, op: &str) -> Result<(), Status> {
        let t = self.type_of(&o.b);
        if t.is_numeric() || t == DataType::Timestamp || matches!(o.b, Bound::Lit(None)) {
            return Ok(());
        }
        Err(semantic(format!("operator {op} needs numbers, but {} is {}", o.name, t.name())))
    }

    fn type_of(&self, b: &Bound) -> DataType {
        match b {
            Bound::Bin(BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::Mod, _, _) => DataType::Double,
            Bound::Bin(..) | Bound::Not(_) | Bound::Between(..) | Bound::IsNull(..) | Bound::In(..) => DataType::Boolean,
            Bound::Neg(a) => match self.type_of(a) {
                t @ (DataType::Int32 | DataType::Int64 | DataType::Float) => t,
                _ => DataType::Double,
            },
            Bound::Series(i) => self.series[*i].1,
            Bound::Agg(i) => self.slots[*i].dtype,
            // (Checked when bound: see check_func.)
            Bound::Func(f, a, name) => f.output_type(name, "", self.type_of(a)).unwrap_or(DataType::Double),
            Bound::Trend(f, a, name) => f.output_type(name, "", self.type_of(a)).unwrap_or(DataType::Double),
            Bound::Time | Bound::EndTime => DataType::Int64,
            Bound::Lit(Some(Value::Bool(_))) => DataType::Boolean,
            Bound::Lit(Some(Value::Bytes(_))) => DataType::Text,
            Bound::Lit(Some(Value::I64(_))) => DataType::Int64,
            Bound::Lit(_) => DataType::Double,
        }
    }
}

/// Whether an expression calls a variation-trend function (DIFF, DERIVATIVE, ...).
fn has_trend(e: &Expr) -> bool {
    match e {
        Expr::Call(f, args) => crate::scalar::is_trend(f) || args.iter().any(has_trend),
        Expr::Binary(_, a, b) => has_trend(a) || has_trend(b),
        Expr::Not(a) | Expr::Neg(a) | Expr::IsNull(a, _) | Expr::In(a, _, _) => has_trend(a),
        Expr::Between { expr, lo, hi, .. } => has_trend(expr) || has_trend(lo) || has_trend(hi),
        Expr::Time | Expr::Path(_) | Expr::Lit(_) => false,
    }
}

/// Whether a bound expression reads an aggregate.
fn has_agg(b: &Bound) -> bool {
    match b {
        Bound::Agg(_) => true,
        Bound::Bin(_, a, c) => has_agg(a) || has_agg(c),
        Bound::Between(a, x, c, _) => has_agg(a) || has_agg(x) || has_agg(c),
        Bound::Not(a) | Bound::Neg(a) | Bound::IsNull(a, _) | Bound::In(a, _, _) | Bound::Func(_, a, _) | Bound::Trend(_, a, _) => has_agg(a),
        Bound::Time | Bound::EndTime | Bound::Series(_) | Bound::Lit(_) => false,
    }
}

fn has_aggregate(e: &Expr) -> bool {
    match e {
        Expr::Call(f, args) => AggFunc::parse(f).is_some() || args.iter().any(has_aggregate),
        Expr::Binary(_, a, b) => has_aggregate(a) || has_aggregate(b),
        Expr::Not(a) | Expr::Neg(a) | Expr::IsNull(a, _) | Expr::In(a, _, _) => has_aggregate(a),
        Expr::Between { expr, lo, hi, .. } => has_aggregate(expr) || has_aggregate(lo) || has_aggregate(hi),
        Expr::Time | Expr::Path(_) | Expr::Lit(_) => false,
    }
}

/// Checks the clauses a SELECT combines; returns whether it aggregates.
fn check_clauses(q: &Query) -> Result<bool, Status> {
    let s = &q.select;
    let aggregate = s.items.iter().any(|i| has_aggregate(&i.expr));
    if q.last && !q.order_by.is_empty() {
        return Err(semantic("a LAST query is ordered by TIMESERIES only"));
    }
    if q.last {
        if q.group_by.is_some() || q.having.is_some() || q.fill.is_some() || s.align_by_device {
            return Err(semantic("a LAST query takes no GROUP BY, HAVING, FILL or ALIGN BY DEVICE"));
        }
        if aggregate {
            return Err(semantic("a LAST query selects series, not aggregate functions"));
        }
        return Ok(false);
    }
    for k in &q.order_by {
        match &k.key {
            SortKey::Device if !s.align_by_device => return Err(semantic("ORDER BY DEVICE needs ALIGN BY DEVICE")),
            SortKey::Expr(_) if s.slimit.is_some() || s.soffset > 0 => return Err(semantic("ORDER BY an expression cannot be combined with SLIMIT or SOFFSET")),
            _ => {}
        }
    }
    if q.order_by_timeseries.is_some() {
        return Err(semantic("ORDER BY TIMESERIES applies to LAST queries only"));
    }
    if !aggregate {
        if q.group_by.is_some() {
            return Err(semantic("GROUP BY needs aggregate functions in SELECT (e.g. count(s1))"));
        }
        if q.having.is_some() {
            return Err(semantic("HAVING needs aggregate functions in SELECT"));
        }
    }
    Ok(aggregate)
}

/// How a SELECT is answered.
pub enum Started {
    /// A materialised result (aggregations, LAST, raw rows with linear FILL).
    Rows(ResultSet),
    /// Raw rows, read page by page as the client fetches them.
    Cursor(RawCursor),
}

/// Starts a SELECT of any kind: raw queries become a [`RawCursor`] that holds no rows (linear
/// FILL, which needs every row, excepted); everything else is computed here, holding at most
/// `max_bytes` (`query_memory_limit_in_byte`).
pub fn start(st: &State, tc: TimeContext, q: &Query, max_bytes: usize) -> Result<Started, Status> {
    let aggregate = check_clauses(q)?;
    // (A variation-trend function must see each row once, in order: computed whole.)
    let trend = q.select.items.iter().any(|i| has_trend(&i.expr));
    if !q.last && !aggregate && q.fill != Some(Fill::Linear) && q.order_by.is_empty() && !trend {
        return raw_cursor(st, tc, q).map(Started::Cursor);
    }
    run(st, tc, q, max_bytes).map(Started::Rows)
}

/// Runs a SELECT of any kind to a whole result, holding at most `max_bytes` of it in memory.
pub fn run(st: &State, tc: TimeContext, q: &Query, max_bytes: usize) -> Result<ResultSet, Status> {
    let s = &q.select;
    let aggregate = check_clauses(q)?;
    if q.last {
        return run_last(st, tc, q);
    }
    if !q.order_by.is_empty() {
        return run_sorted(st, tc, q, max_bytes);
    }
    if q.group_by.as_ref().is_some_and(|g| !g.tags.is_empty()) {
        return run_tags(st, tc, q, max_bytes);
    }
    // Rows beyond OFFSET + LIMIT are never shown; HAVING and linear FILL need to see them all.
    let cap = s.limit.map(|l| l.saturating_add(s.offset)).filter(|_| q.having.is_none() && q.fill != Some(Fill::Linear));
    let mut rs = if s.align_by_device {
        by_device(st, tc, q, aggregate, cap, max_bytes)?
    } else {
        let levels = q.group_by.as_ref().map(|g| g.levels.clone()).unwrap_or_default();
        let mut b = Binder::new(st, s.from.clone(), tc, None, levels);
        b.max_bytes = max_bytes;
        run_scope(b, q, aggregate, cap, true)?
    };
    rs.page(s.offset, s.limit);
    Ok(rs)
}

/// The time range of a WHERE that may hold only time conditions (else `refusal`).
fn time_only_bounds(filter: Option<&Expr>, tc: &TimeContext, refusal: &str) -> Result<TimeBounds, Status> {
    let Some(f) = filter else { return Ok(ALL_TIME) };
    let b = time_bounds(f, tc)?;
    if !b.exact {
        return Err(semantic(refusal));
    }
    Ok(b)
}

/// GROUP BY TAGS(k, ...): each aggregate over the series its path matches, grouped by their values
/// of the tags (a series without one is in the group of NULL for it), optionally per time window.
/// Rows: one per window and tag-value combination (combinations in order of their values, NULL
/// last), with the tag values first. As IoTDB 1.3: aggregates of one path each; no HAVING, value
/// filter, LIMIT/OFFSET/SLIMIT/SOFFSET, ALIGN BY DEVICE or LEVEL with it.
fn run_tags(st: &State, tc: TimeContext, q: &Query, max_bytes: usize) -> Result<ResultSet, Status> {
    let s = &q.select;
    let g = q.group_by.as_ref().expect("GROUP BY TAGS");
    if q.having.is_some() || s.align_by_device || s.limit.is_some() || s.offset > 0 || s.slimit.is_some() || s.soffset > 0 || !g.levels.is_empty() || q.fill.is_some() {
        return Err(semantic("GROUP BY TAGS takes no HAVING, FILL, LIMIT, OFFSET, SLIMIT, SOFFSET, ALIGN BY DEVICE or LEVEL"));
    }
    let bounds = time_only_bounds(s.filter.as_ref(), &tc, "GROUP BY TAGS takes only time conditions in WHERE")?;
    let mut b = Binder::new(st, s.from.clone(), tc, None, Vec::new());
    b.max_bytes = max_bytes;
    // (function, column name, matching series)
    type Item = (AggFunc, String, Vec<(Path, DataType)>);
    let mut items: Vec<Item> = Vec::new();
    for it in &s.items {
        let (Expr::Call(f, args), Some(func)) = (&it.expr, match &it.expr {
            Expr::Call(f, _) => AggFunc::parse(f),
            _ => None,
        }) else {
            return Err(semantic(format!("GROUP BY TAGS selects aggregates of one path each, not {}", it.text)));
        };
        let [Expr::Path(nodes)] = args.as_slice() else {
            return Err(semantic(format!("GROUP BY TAGS: {f}() takes one path here (no expressions)")));
        };
        let name = it.alias.clone().unwrap_or_else(|| format!("{}({})", f.to_ascii_lowercase(), nodes.join(".")));
        items.push((func, name, b.matches(nodes)?));
    }
    let tuple = |p: &Path| -> Vec<Option<String>> {
        let tags = st.schema.series(p).map(|s| s.def.tags.clone()).unwrap_or_default();
        g.tags.iter().map(|k| tags.iter().find(|(x, _)| x == k).map(|(_, v)| v.clone())).collect()
    };
    let mut combos: Vec<Vec<Option<String>>> = items.iter().flat_map(|(_, _, series)| series.iter().map(|(p, _)| tuple(p))).collect();
    // Values in order, a missing tag (NULL) after every value.
    let key = |c: &Vec<Option<String>>| c.iter().map(|v| (v.is_none(), v.clone())).collect::<Vec<_>>();
    combos.sort_by_key(key);
    combos.dedup();
    let mut outputs = Vec::new();
    for c in &combos {
        for (i, (func, name, series)) in items.iter().enumerate() {
            let members: Vec<(Path, DataType)> = series.iter().filter(|(p, _)| tuple(p) == *c).cloned().collect();
            let bound = if members.is_empty() {
                Bound::Lit(None)
            } else {
                let group = b.group_labeled(format!("{i}:{c:?}"), members);
                Bound::Agg(b.agg_slot(*func, group))
            };
            outputs.push(Out { b: bound, name: name.clone(), prio: PRIO_FUNC });
        }
    }
    b.check_slots()?;
    let rs = aggregate_rows(&b, q, &outputs, None, None, bounds, None)?;
    let n = items.len();
    let mut columns: Vec<String> = g.tags.clone();
    columns.extend(items.iter().map(|(_, name, _)| name.clone()));
    let mut types = vec![DataType::Text; g.tags.len()];
    for (i, (func, _, series)) in items.iter().enumerate() {
        // The type its groups aggregate to (alike across groups of one path, else checked above).
        let t = outputs.iter().skip(i).step_by(n).find_map(|o| match o.b {
            Bound::Agg(slot) => Some(b.slots[slot].dtype),
            _ => None,
        });
        types.push(t.unwrap_or_else(|| func.result_type(series.first().map_or(DataType::Double, |s| s.1)).unwrap_or(DataType::Int64)));
    }
    let mut out = ResultSet { columns, types, ignore_time: rs.ignore_time, times: Vec::new(), cols: vec![Vec::new(); g.tags.len() + n] };
    for w in 0..rs.len() {
        for (k, c) in combos.iter().enumerate() {
            out.times.push(rs.times[w]);
            for (j, v) in c.iter().enumerate() {
                out.cols[j].push(v.clone().map(|v| Value::Bytes(v.into_bytes())));
            }
            for i in 0..n {
                out.cols[g.tags.len() + i].push(rs.cols[k * n + i][w].clone());
            }
        }
    }
    Ok(out)
}

/// The alias a sort key's hidden column goes by (see [`run_sorted`]).
const ORDER_ALIAS: &str = "__order_by_";

/// Runs a query with ORDER BY keys other than a lone TIME: the whole result (every row: sorting
/// needs them, within `max_bytes`), a hidden column per expression key (a selected expression or
/// alias, computed again under a name of its own), rows sorted stably by the keys, then paged.
fn run_sorted(st: &State, tc: TimeContext, q: &Query, max_bytes: usize) -> Result<ResultSet, Status> {
    let mut whole = q.clone();
    whole.order_by.clear();
    whole.select.limit = None;
    whole.select.offset = 0;
    let mut hidden = 0;
    let mut keys: Vec<(Option<usize>, &OrderKey)> = Vec::new();
    for k in &q.order_by {
        let SortKey::Expr(e) = &k.key else {
            keys.push((None, k));
            continue;
        };
        let item = q.select.items.iter().find(|i| i.expr == *e || matches!(e, Expr::Path(n) if n.len() == 1 && i.alias.as_deref() == Some(n[0].as_str())));
        let Some(item) = item else {
            let shown = match e {
                Expr::Path(n) => n.join("."),
                other => format!("{other:?}"),
            };
            return Err(semantic(format!("ORDER BY {shown}: sort by TIME, DEVICE, or one of the selected expressions (or its alias)")));
        };
        whole.select.items.push(SelectItem { expr: item.expr.clone(), alias: Some(format!("{ORDER_ALIAS}{hidden}")), text: item.text.clone() });
        keys.push((Some(hidden), k));
        hidden += 1;
    }
    let mut rs = run(st, tc, &whole, max_bytes)?;
    let visible = rs.columns.len() - hidden;
    let device = rs.columns.iter().position(|c| c == "Device");
    let value = |r: usize, key: &(Option<usize>, &OrderKey)| -> Option<Value> {
        match (&key.1.key, key.0) {
            (SortKey::Time, _) => Some(Value::I64(rs.times[r])),
            (SortKey::Device, _) => device.and_then(|c| rs.cols[c][r].clone()),
            (_, Some(h)) => rs.cols[visible + h][r].clone(),
            (_, None) => None,
        }
    };
    let mut order: Vec<usize> = (0..rs.len()).collect();
    order.sort_by(|&a, &b| {
        for k in &keys {
            let (x, y) = (value(a, k), value(b, k));
            let o = match (&x, &y) {
                (None, None) => std::cmp::Ordering::Equal,
                (None, Some(_)) => if k.1.nulls_first { std::cmp::Ordering::Less } else { std::cmp::Ordering::Greater },
                (Some(_), None) => if k.1.nulls_first { std::cmp::Ordering::Greater } else { std::cmp::Ordering::Less },
                (Some(x), Some(y)) => {
                    let o = x.compare(y).unwrap_or(std::cmp::Ordering::Equal);
                    if k.1.desc { o.reverse() } else { o }
                }
            };
            if o != std::cmp::Ordering::Equal {
                return o;
            }
        }
        std::cmp::Ordering::Equal
    });
    rs.times = order.iter().map(|&r| rs.times[r]).collect();
    rs.cols.truncate(visible);
    rs.columns.truncate(visible);
    rs.types.truncate(visible);
    for c in rs.cols.iter_mut() {
        *c = order.iter().map(|&r| c[r].clone()).collect();
    }
    rs.page(q.select.offset, q.select.limit);
    Ok(rs)
}

/// Binds a raw query for paging: one scope over the FROM prefixes, or under ALIGN BY DEVICE one
/// per device (columns are the union of the devices' columns, SLIMIT applied to the union, and a
/// device none of whose columns survive is left out, as [`by_device`] does).
fn raw_cursor(st: &State, tc: TimeContext, q: &Query) -> Result<RawCursor, Status> {
    let s = &q.select;
    let fill = match &q.fill {
        None => None,
        Some(Fill::Previous(limit)) => Some(RowFill::Previous(match limit {
            Some(d) => Some(duration(d, tc.precision)?),
            None => None,
        })),
        Some(Fill::Value(lit)) => Some(RowFill::Value(lit.clone())),
        Some(Fill::Linear) => return Err(semantic("linear FILL needs every row; it is not read page by page")),
    };
    let scope = |b: &Binder, outputs: &[Out], filter: Option<Bound>, bounds: TimeBounds, device: Option<&Path>, index: Vec<Option<usize>>| Scope {
        device: device.map(|d| Value::Bytes(d.to_string().into_bytes())),
        series: b.series.clone(),
        driving: driving_series(b.series.len(), outputs),
        outputs: outputs.iter().map(|o| o.b.clone()).collect(),
        output_types: outputs.iter().map(|o| b.type_of(&o.b)).collect(),
        index,
        filter,
        lo: bounds.lo,
        hi: bounds.hi,
    };
    if !s.align_by_device {
        let mut b = Binder::new(st, s.from.clone(), tc, None, Vec::new());
        let (outputs, _, filter, bounds) = bind_scope(&mut b, q, false, true)?;
        let columns = outputs.iter().map(|o| o.name.clone()).collect();
        let types = outputs.iter().map(|o| b.type_of(&o.b)).collect();
        let sc = scope(&b, &outputs, filter, bounds, None, (0..outputs.len()).map(Some).collect());
        return Ok(RawCursor::new(columns, types, vec![sc], s, fill));
    }
    let mut devices: Vec<Path> = s.from.iter().flat_map(|f| st.schema.devices_matching(f).into_iter().map(|(p, _)| p.clone())).collect();
    devices.sort();
    devices.dedup();
    /// One device's scope, bound.
    struct DeviceScope<'a> {
        device: Path,
        b: Binder<'a>,
        outputs: Vec<Out>,
        filter: Option<Bound>,
        bounds: TimeBounds,
    }
    let mut bound: Vec<DeviceScope> = Vec::new();
    let mut columns: Vec<(String, DataType)> = Vec::new();
    for d in devices {
        crate::running::checkpoint()?;
        let mut b = Binder::new(st, vec![PathPattern::exact(&d)], tc, Some(d.clone()), Vec::new());
        let (outputs, _, filter, bounds) = bind_scope(&mut b, q, false, false)?;
        if outputs.is_empty() {
            continue;
        }
        for o in &outputs {
            let t = b.type_of(&o.b);
            match columns.iter().find(|(n, _)| *n == o.name) {
                Some((_, prev)) if *prev != t => {
                    return Err(semantic(format!(
                        "ALIGN BY DEVICE: column {} is {} on {d} but {} on another device; the same measurement must have one type",
                        o.name,
                        t.name(),
                        prev.name()
                    )))
                }
                Some(_) => {}
                None => columns.push((o.name.clone(), t)),
            }
        }
        bound.push(DeviceScope { device: d, b, outputs, filter, bounds });
    }
    let columns = column_page(columns, s);
    let mut scopes = Vec::new();
    for DeviceScope { device: d, b, outputs, filter, bounds } in bound {
        let index: Vec<Option<usize>> = columns.iter().map(|(n, _)| outputs.iter().position(|o| o.name == *n)).collect();
        if index.iter().all(Option::is_none) {
            // None of this device's columns survived SLIMIT: IoTDB would not query it at all.
            continue;
        }
        scopes.push(scope(&b, &outputs, filter, bounds, Some(&d), index));
    }
    let names = std::iter::once("Device".to_string()).chain(columns.iter().map(|(n, _)| n.clone())).collect();
    let types = std::iter::once(DataType::Text).chain(columns.iter().map(|(_, t)| *t)).collect();
    Ok(RawCursor::new(names, types, scopes, s, fill))
}

/// Which series slots drive rows: a row exists where a series of an output column has a point.
fn driving_series(n: usize, outputs: &[Out]) -> Vec<bool> {
    fn mark(b: &Bound, d: &mut [bool]) {
        match b {
            Bound::Series(i) => d[*i] = true,
            Bound::Bin(_, a, c) => {
                mark(a, d);
                mark(c, d)
            }
            Bound::Not(a) | Bound::Neg(a) | Bound::IsNull(a, _) | Bound::In(a, _, _) | Bound::Func(_, a, _) | Bound::Trend(_, a, _) => mark(a, d),
            Bound::Between(a, x, c, _) => {
                mark(a, d);
                mark(x, d);
                mark(c, d)
            }
            Bound::Time | Bound::EndTime | Bound::Lit(_) | Bound::Agg(_) => {}
        }
    }
    let mut driving = vec![false; n];
    for o in outputs {
        mark(&o.b, &mut driving);
    }
    driving
}

/// Applies SLIMIT/SOFFSET to expanded columns.
fn column_page<T>(v: Vec<T>, s: &Select) -> Vec<T> {
    v.into_iter().skip(s.soffset).take(s.slimit.unwrap_or(usize::MAX)).collect()
}

/// Runs a query in one scope (all FROM prefixes, or one device): rows in output order after
/// HAVING and FILL, before OFFSET/LIMIT. `cap` says how many rows the caller can use at most.
fn run_scope(mut b: Binder, q: &Query, aggregate: bool, cap: Option<usize>, slimit: bool) -> Result<ResultSet, Status> {
    let s = &q.select;
    let (outputs, having, filter, bounds) = bind_scope(&mut b, q, aggregate, slimit)?;
    let mut rs = if aggregate {
        aggregate_rows(&b, q, &outputs, having.as_ref(), filter.as_ref(), bounds, cap)?
    } else {
        raw_rows(&b, s, &outputs, filter.as_ref(), bounds, cap)?
    };
    if let Some(f) = &q.fill {
        fill(&mut rs, f, &b.tc)?;
    }
    Ok(rs)
}

/// Binds a query in one scope: the output columns (SLIMIT applied when `slimit`), HAVING, WHERE
/// and the time bounds WHERE implies.
#[allow(clippy::type_complexity)]
fn bind_scope(b: &mut Binder, q: &Query, aggregate: bool, slimit: bool) -> Result<(Vec<Out>, Option<Bound>, Option<Bound>, TimeBounds), Status> {
    let s = &q.select;
    let mode = if aggregate { Mode::Agg } else { Mode::Raw };
    let mut outputs: Vec<Out> = Vec::new();
    for item in &s.items {
        let mut outs = b.expand(&item.expr, mode)?;
        if let Some(alias) = &item.alias {
            if alias.starts_with(ORDER_ALIAS) && outs.len() != 1 {
                return Err(semantic(format!("ORDER BY sorts by one column, but {} stands for {}", item.text, outs.len())));
            }
            if outs.len() > 1 {
                return Err(semantic(format!("alias {alias} would name {} columns", outs.len())));
            }
            for o in outs.iter_mut() {
                o.name = alias.clone();
            }
        }
        outputs.extend(outs);
    }
    if slimit {
        outputs = column_page(outputs, s);
    }
    if let Some(h) = &q.having {
        // Bound once for its aggregates, whose types check_slots settles.
        b.condition(h, Mode::Agg)?;
    }
    b.check_slots()?;
    b.settled = true;
    let having = match &q.having {
        Some(h) => Some(b.condition(h, Mode::Agg)?),
        None => None,
    };
    for o in outputs.iter().map(|o| &o.b).chain(having.as_ref()) {
        b.check_func(o)?;
    }
    if let Some(EventGroup::Variation { expr, .. } | EventGroup::Condition { expr, .. }) = q.group_by.as_ref().and_then(|g| g.events.as_ref()) {
        b.control = Some(b.condition(expr, Mode::Where)?);
    }
    // Series bound so far are outputs (raw), the control expression's, or nothing; WHERE adds
    // its own.
    let filter = match &s.filter {
        Some(f) => Some(b.condition(f, Mode::Where)?),
        None => None,
    };
    let bounds = match &s.filter {
        Some(f) => time_bounds(f, &b.tc)?,
        None => ALL_TIME,
    };
    Ok((outputs, having, filter, bounds))
}

/// The points of `p` in `[lo, hi]` when holding them (`copies` times over) on top of `held` bytes
/// stays within `max_bytes`; else at least the bytes they would need. Read with a limit, so a
/// series too long is refused before it is in memory, not after.
#[allow(clippy::too_many_arguments)]
fn scan_within(st: &State, p: &Path, lo: i64, hi: i64, now: i64, held: usize, copies: usize, max_bytes: usize) -> Result<Vec<(i64, Value)>, usize> {
    let per = copies.max(1) * std::mem::size_of::<(i64, Value)>();
    let room = max_bytes.saturating_sub(held) / per;
    let Some((t, v)) = st.scan_columns_limited(p, lo, hi, now, room.saturating_add(1), false) else { return Ok(Vec::new()) };
    if t.len() > room {
        return Err(held.saturating_add(t.len() * per));
    }
    Ok(t.into_iter().enumerate().map(|(i, t)| (t, v.get(i))).collect())
}

/// Time-aligned raw rows: the union of the timestamps of the series in the output columns,
/// filtered by WHERE.
fn raw_rows(b: &Binder, s: &Select, outputs: &[Out], filter: Option<&Bound>, bounds: TimeBounds, cap: Option<usize>) -> Result<ResultSet, Status> {
    let series = &b.series;
    // Every point is held at once here (only linear FILL comes this way; other raw queries page
    // through a cursor), so the points count against the query's memory limit as they are read.
    let mut data: Vec<Vec<(i64, Value)>> = Vec::with_capacity(series.len());
    let mut held = 0usize;
    for (p, _) in series {
        crate::running::checkpoint()?;
        let pts = scan_within(b.st, p, bounds.lo, bounds.hi, b.tc.now, held, 1, b.max_bytes)
            .map_err(|needed| memory_exceeded("reading the points of this query (linear FILL needs all of them at once)", needed, b.max_bytes))?;
        held = held.saturating_add(pts.len() * std::mem::size_of::<(i64, Value)>());
        data.push(pts);
    }
    let driving = driving_series(series.len(), outputs);
    let mut times: Vec<i64> = data.iter().enumerate().filter(|(i, _)| driving[*i]).flat_map(|(_, d)| d.iter().map(|p| p.0)).collect();
    times.sort_unstable();
    times.dedup();
    if s.desc {
        times.reverse();
    }
    let mut rs = ResultSet {
        columns: outputs.iter().map(|o| o.name.clone()).collect(),
        types: outputs.iter().map(|o| b.type_of(&o.b)).collect(),
        ignore_time: false,
        times: Vec::new(),
        cols: vec![Vec::new(); outputs.len()],
    };
    let cap = cap.unwrap_or(usize::MAX);
    let mut cursors: Vec<usize> = data.iter().map(|d| if s.desc { d.len() } else { 0 }).collect();
    let mut row: Vec<Option<Value>> = vec![None; series.len()];
    for t in times {
        if rs.times.len() >= cap {
            break;
        }
        for (i, d) in data.iter().enumerate() {
            let c = &mut cursors[i];
            row[i] = None;
            if s.desc {
                while *c > 0 && d[*c - 1].0 > t {
                    *c -= 1;
                }
                if *c > 0 && d[*c - 1].0 == t {
                    row[i] = Some(d[*c - 1].1.clone());
                }
            } else {
                while *c < d.len() && d[*c].0 < t {
                    *c += 1;
                }
                if *c < d.len() && d[*c].0 == t {
                    row[i] = Some(d[*c].1.clone());
                }
            }
        }
        if let Some(f) = filter {
            if !is_true(&eval(f, t, &row, &[])?) {
                continue;
            }
        }
        let vals: Vec<Option<Value>> = outputs.iter().map(|o| eval(&o.b, t, &row, &[])).collect::<Result<_, _>>()?;
        if vals.iter().all(|v| v.is_none()) {
            continue;
        }
        rs.times.push(t);
        for (c, v) in vals.into_iter().enumerate() {
            rs.cols[c].push(v);
        }
    }
    Ok(rs)
}

/// The windows of the query: GROUP BY time, or one window over the WHERE time range.
fn windows_of(b: &Binder, q: &Query, bounds: TimeBounds, cap: Option<usize>) -> Result<Windows, Status> {
    let tc = &b.tc;
    let Some(tg) = q.group_by.as_ref().and_then(|g| g.time.as_ref()) else {
        return Ok(Windows::single(bounds.lo, bounds.hi));
    };
    let interval = TimeDuration::parse(&tg.interval, tc.precision)?;
    let step = match &tg.step {
        Some(s) => TimeDuration::parse(s, tc.precision)?,
        None => interval,
    };
    window::check(interval, step)?;
    let (start, end) = match &tg.range {
        Some((s, e)) => {
            let (s, e) = (time_value(s, tc)?, time_value(e, tc)?);
            if e <= s {
                return Err(semantic(format!("the GROUP BY time range is empty: the start {s} is not before the end {e}")));
            }
            (s, e)
        }
        None => {
            // Without a range, IoTDB spans the data that the query selects: each series' first
            // and last point, read from the ends of the series only.
            let (mut lo, mut hi) = (i64::MAX, i64::MIN);
            for g in &b.groups {
                for (p, _) in &g.members {
                    let first = b.st.scan_columns_limited(p, bounds.lo, bounds.hi, tc.now, 1, false).and_then(|(t, _)| t.first().copied());
                    let last = b.st.scan_columns_limited(p, bounds.lo, bounds.hi, tc.now, 1, true).and_then(|(t, _)| t.first().copied());
                    if let (Some(f), Some(l)) = (first, last) {
                        lo = lo.min(f);
                        hi = hi.max(l);
                    }
                }
            }
            if lo > hi {
                return Ok(Windows::default());
            }
            if tg.left_open {
                (lo.saturating_sub(1), hi)
            } else {
                (lo, hi.saturating_add(1))
            }
        }
    };
    let n = window::count(start, end, step, tc.precision, tc.zone_offset).ok_or_else(|| semantic("GROUP BY has too many windows"))?;
    let (first, len) = match cap {
        Some(c) if (c as u64) < n => (if q.select.desc { n - c as u64 } else { 0 }, c as u64),
        _ => (0, n),
    };
    let cells = len.saturating_mul(b.slots.len().max(1) as u64);
    if cells > MAX_AGG_CELLS {
        return Err(semantic(format!(
            "GROUP BY would compute {len} windows x {} aggregates; narrow the time range, widen the interval or add LIMIT",
            b.slots.len()
        )));
    }
    // Per window: the finished aggregate columns, the state each aggregate keeps while its group
    // is read, and the result row.
    let per_window = 8 + b.slots.len().max(1) * (2 * CELL_BYTES + std::mem::size_of::<Partial>());
    let bytes = (len as usize).saturating_mul(per_window);
    if bytes > b.max_bytes {
        return Err(memory_exceeded(&format!("GROUP BY over {len} windows x {} aggregates", b.slots.len()), bytes, b.max_bytes));
    }
    window::build(start, end, tg.left_open, interval, step, tc.precision, tc.zone_offset, first, len as usize)
}

/// The windows of GROUP BY SESSION / COUNT, from the timestamps of the rows (read within the
/// query's memory limit): a window per session, or per `size` rows of the counted series. Also
/// the segments the points are read in, each with its window: a row passed over (COUNT's
/// ignoreNull, where the counted series has no value) splits a window into segments around it,
/// and is in none.
fn event_windows(b: &Binder, ev: &EventGroup, bounds: TimeBounds) -> Result<(Windows, Windows, Vec<usize>), Status> {
    let tc = &b.tc;
    let mut held = 0usize;
    let mut points_of = |p: &Path| -> Result<Vec<(i64, Value)>, Status> {
        let pts = scan_within(b.st, p, bounds.lo, bounds.hi, tc.now, held, 1, b.max_bytes).map_err(|need| memory_exceeded("the rows that make GROUP BY windows", need, b.max_bytes))?;
        held += pts.len() * std::mem::size_of::<(i64, Value)>();
        Ok(pts)
    };
    let times = |pts: Vec<(i64, Value)>| pts.into_iter().map(|(t, _)| t).collect::<Vec<i64>>();
    // The query's rows: every timestamp of the series it aggregates.
    let mut rows = Vec::new();
    for g in &b.groups {
        for (p, _) in &g.members {
            rows.extend(times(points_of(p)?));
        }
    }
    let mut w = Windows::default();
    let mut segments = Windows::default();
    let mut seg_window: Vec<usize> = Vec::new();
    fn push(w: &mut Windows, lo: i64, hi: i64) {
        w.lo.push(lo);
        w.hi.push(hi);
        w.shown.push(lo);
    }
    match ev {
        EventGroup::Session(gap) => {
            let gap = match TimeDuration::parse(gap, tc.precision)? {
                TimeDuration { months: 0, units } if units > 0 => units,
                _ => return Err(semantic("GROUP BY SESSION takes a fixed interval (not months)")),
            };
            rows.sort_unstable();
            rows.dedup();
            let mut start = 0;
            for i in 1..=rows.len() {
                if i == rows.len() || rows[i] - rows[i - 1] > gap {
                    seg_window.push(w.lo.len());
                    push(&mut segments, rows[start], rows[i - 1]);
                    push(&mut w, rows[start], rows[i - 1]);
                    start = i;
                }
            }
        }
        EventGroup::Variation { ignore_null, .. } | EventGroup::Condition { ignore_null, .. } => {
            let delta = match ev {
                EventGroup::Variation { delta, .. } => *delta,
                _ => 0.0,
            };
            // The control expression's value at each row of the query and of its own series.
            let control = b.control.as_ref().expect("bound with the query");
            let mut data: Vec<Vec<(i64, Value)>> = Vec::with_capacity(b.series.len());
            for (p, _) in &b.series {
                let pts = points_of(p)?;
                rows.extend(pts.iter().map(|p| p.0));
                data.push(pts);
            }
            rows.sort_unstable();
            rows.dedup();
            let mut cursors = vec![0usize; data.len()];
            let mut row: Vec<Option<Value>> = vec![None; data.len()];
            // Rows of the current window: its first value (VARIATION), its segments so far and
            // the row count (CONDITION).
            let mut base: Option<Option<Value>> = None;
            let (mut first, mut last, mut run, mut count): (i64, i64, Option<(i64, i64)>, usize) = (0, 0, None, 0);
            let mut segs: Vec<(i64, i64)> = Vec::new();
            let keep_ok = |n: usize| match ev {
                EventGroup::Condition { op, keep, .. } => match op {
                    BinOp::Gt => n > *keep,
                    BinOp::Ge => n >= *keep,
                    BinOp::Lt => n < *keep,
                    BinOp::Le => n <= *keep,
                    _ => n == *keep,
                },
                _ => true,
            };
            let close = |segs: &mut Vec<(i64, i64)>, run: &mut Option<(i64, i64)>, first: i64, last: i64, count: usize, w: &mut Windows, segments: &mut Windows, seg_window: &mut Vec<usize>| {
                segs.extend(run.take());
                if count > 0 && keep_ok(count) {
                    for (lo, hi) in segs.drain(..) {
                        seg_window.push(w.lo.len());
                        push(segments, lo, hi);
                    }
                    push(w, first, last);
                }
                segs.clear();
            };
            let variation = matches!(ev, EventGroup::Variation { .. });
            for t in rows {
                for (i, d) in data.iter().enumerate() {
                    let c = &mut cursors[i];
                    while *c < d.len() && d[*c].0 < t {
                        *c += 1;
                    }
                    row[i] = (*c < d.len() && d[*c].0 == t).then(|| d[*c].1.clone());
                }
                let v = eval(control, t, &row, &[])?;
                if v.is_none() && *ignore_null {
                    // Passed over: in no window, and a hole in the one it falls in.
                    segs.extend(run.take());
                    continue;
                }
                // Whether the row continues the current window (VARIATION: within delta of its
                // first value, nulls together; CONDITION: the predicate holds).
                let joins = if variation {
                    match (&base, &v) {
                        (None, _) => false,
                        (Some(None), None) => true,
                        (Some(Some(b0)), Some(x)) => match (b0.as_f64(), x.as_f64()) {
                            (Some(a), Some(c)) => (c - a).abs() <= delta,
                            _ => b0 == x,
                        },
                        _ => false,
                    }
                } else {
                    is_true(&v)
                };
                if variation {
                    if !joins {
                        if base.is_some() {
                            close(&mut segs, &mut run, first, last, count, &mut w, &mut segments, &mut seg_window);
                        }
                        base = Some(v.clone());
                        first = t;
                        count = 0;
                    }
                } else if !joins {
                    // The predicate is false (or null, not passed over): the run ends.
                    close(&mut segs, &mut run, first, last, count, &mut w, &mut segments, &mut seg_window);
                    count = 0;
                    continue;
                } else if count == 0 {
                    first = t;
                }
                count += 1;
                last = t;
                run = Some(run.map_or((t, t), |(lo, _)| (lo, t)));
            }
            close(&mut segs, &mut run, first, last, count, &mut w, &mut segments, &mut seg_window);
        }
        EventGroup::Count { path, size, ignore_null } => {
            let counted = b.matches(path)?;
            let [(p, _)] = counted.as_slice() else {
                return Err(semantic(format!("GROUP BY COUNT counts one series; {} matches {}", path.join("."), counted.len())));
            };
            let counted_at = times(points_of(p)?);
            rows.extend(&counted_at);
            rows.sort_unstable();
            rows.dedup();
            // ignoreNull passes over the rows where the counted series has no value: they belong
            // to no window, and split the window they fall in into segments.
            let mut group: Vec<i64> = Vec::with_capacity(*size);
            let mut segs: Vec<(i64, i64)> = Vec::new();
            let mut run: Option<(i64, i64)> = None;
            for t in rows {
                if *ignore_null && counted_at.binary_search(&t).is_err() {
                    segs.extend(run.take());
                    continue;
                }
                group.push(t);
                run = Some(run.map_or((t, t), |(lo, _)| (lo, t)));
                if group.len() == *size {
                    segs.extend(run.take());
                    for (lo, hi) in segs.drain(..) {
                        seg_window.push(w.lo.len());
                        push(&mut segments, lo, hi);
                    }
                    push(&mut w, group[0], group[group.len() - 1]);
                    group.clear();
                }
            }
        }
    }
    Ok((w, segments, seg_window))
}

/// Keeps the points at which a value filter holds (`fdata[i]` are the points of series slot `i`).
fn filter_points(points: Vec<(i64, Value)>, filter: &Bound, fdata: &[Vec<(i64, Value)>]) -> Result<Vec<(i64, Value)>, Status> {
    let mut cursors = vec![0usize; fdata.len()];
    let mut row: Vec<Option<Value>> = vec![None; fdata.len()];
    let mut out = Vec::with_capacity(points.len());
    for (t, v) in points {
        for (i, d) in fdata.iter().enumerate() {
            let c = &mut cursors[i];
            while *c < d.len() && d[*c].0 < t {
                *c += 1;
            }
            row[i] = if *c < d.len() && d[*c].0 == t { Some(d[*c].1.clone()) } else { None };
        }
        if is_true(&eval(filter, t, &row, &[])?) {
            out.push((t, v));
        }
    }
    Ok(out)
}

/// Groups are aggregated on up to this many threads (the read view is shared; each thread holds one
/// series' points at a time).
const MAX_THREADS: usize = 8;

/// Enough groups to be worth a thread each.
const GROUPS_PER_THREAD: usize = 16;

fn worker_threads(groups: usize) -> usize {
    // Read once: on Linux each call reads the cgroup files (half a millisecond per query).
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    let cores = *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    cores.min(MAX_THREADS).min(groups / GROUPS_PER_THREAD).max(1)
}

/// Finished aggregate columns, by aggregate slot.
type SlotColumns = Vec<(usize, Vec<Option<Value>>)>;

/// What aggregating a group needs: the binder, the windows, the scan range and the value filter.
struct GroupJob<'a> {
    b: &'a Binder<'a>,
    windows: &'a Windows,
    /// Segments read as windows and merged into these (segment -> window, number of windows).
    merge: Option<(&'a [usize], usize)>,
    lo: i64,
    hi: i64,
    /// Bucket grid for page summaries (see `duet_storage::summary`).
    grain: Option<duet_storage::summary::Grain>,
    filter: Option<&'a Bound>,
    fdata: &'a [Vec<(i64, Value)>],
    /// Memory `fdata` holds.
    fdata_bytes: usize,
}

impl GroupJob<'_> {
    /// Aggregates `groups` and returns the finished column of each of their slots.
    fn run(&self, groups: &[usize], slots_of: &[Vec<usize>]) -> Result<SlotColumns, Status> {
        let b = self.b;
        let mut out = Vec::new();
        for &gi in groups {
            let g = &b.groups[gi];
            let mut agg = WindowAgg::new(self.windows, g.need);
            if self.lo <= self.hi {
                for (p, t) in &g.members {
                    crate::running::checkpoint()?;
                    // Without a value filter typed parts go straight into the aggregates (no
                    // per-point `Value`), and a page that only one window holds is merged from its
                    // statistics without being decoded.
                    if self.filter.is_none() {
                        let need = g.need;
                        let fed = b.st.scan_parts(p, self.lo, self.hi, b.tc.now, self.grain, &mut |part| match part {
                            ScanPart::Stats(s) => Partial::of_stats(s, need).is_some_and(|pa| agg.feed_partial(s.start_time, s.end_time, &pa)),
                            ScanPart::Buckets(sm, r) => agg.feed_summary(sm, r),
                            ScanPart::Points(times, vals) => {
                                agg.feed_points(times, vals);
                                true
                            }
                        });
                        if fed {
                            continue;
                        }
                    }
                    let mut pts = scan_within(b.st, p, self.lo, self.hi, b.tc.now, self.fdata_bytes, 2, b.max_bytes)
                        .map_err(|needed| memory_exceeded(&format!("aggregating {p} under a WHERE value filter"), needed, b.max_bytes))?;
                    if let Some(f) = self.filter {
                        pts = filter_points(pts, f, self.fdata)?;
                    }
                    let (times, vals) = to_columns(pts, *t);
                    agg.feed_points(&times, &vals);
                }
            }
            let mut states = agg.finish();
            if let Some((map, n)) = self.merge {
                let mut merged = vec![Partial::default(); n];
                for (seg, p) in states.into_iter().enumerate() {
                    merged[map[seg]].merge(p);
                }
                states = merged;
            }
            for &si in &slots_of[gi] {
                let func = b.slots[si].func;
                out.push((si, states.iter().map(|p| func.finish(p)).collect()));
            }
        }
        Ok(out)
    }
}

/// Aggregation rows: one per window (one in all without GROUP BY time).
fn aggregate_rows(
    b: &Binder,
    q: &Query,
    outputs: &[Out],
    having: Option<&Bound>,
    filter: Option<&Bound>,
    bounds: TimeBounds,
    cap: Option<usize>,
) -> Result<ResultSet, Status> {
    let tc = &b.tc;
    if q.group_by.as_ref().is_some_and(|g| g.events.is_some()) && filter.is_some() && !bounds.exact {
        return Err(semantic("GROUP BY SESSION / COUNT take only time conditions in WHERE (the windows come from the rows)"));
    }
    // GROUP BY SESSION / COUNT read their points in segments, merged into their windows.
    let (windows, segments) = match q.group_by.as_ref().and_then(|g| g.events.as_ref()) {
        Some(ev) => {
            let (w, segs, map) = event_windows(b, ev, bounds)?;
            (w, Some((segs, map)))
        }
        None => (windows_of(b, q, bounds, cap)?, None),
    };
    let grouped_by_time = q.group_by.as_ref().is_some_and(|g| g.time.is_some() || g.events.is_some());
    let mut agg_cols: Vec<Vec<Option<Value>>> = vec![Vec::new(); b.slots.len()];
    if !windows.is_empty() {
        let read = segments.as_ref().map_or(&windows, |(s, _)| s);
        let lo = bounds.lo.max(read.lo[0]);
        let hi = bounds.hi.min(*read.hi.last().unwrap());
        // A WHERE that is exactly a time range is already the scan range; anything else is
        // evaluated point by point against the series it names.
        let value_filter = filter.filter(|_| !bounds.exact);
        // A value filter is evaluated on points held in memory: the series it names for the
        // whole range, plus one aggregated series at a time per worker. Both count against the
        // query's memory limit as they are read.
        let mut fdata: Vec<Vec<(i64, Value)>> = Vec::new();
        let mut fdata_bytes = 0usize;
        if value_filter.is_some() {
            for (p, _) in &b.series {
                let pts = scan_within(b.st, p, lo, hi, tc.now, fdata_bytes, 1, b.max_bytes)
                    .map_err(|needed| memory_exceeded("reading the series the WHERE value filter names", needed, b.max_bytes))?;
                fdata_bytes = fdata_bytes.saturating_add(pts.len() * std::mem::size_of::<(i64, Value)>());
                fdata.push(pts);
            }
        }
        // The round grid the window edges fall on: pages cut by windows are summarised in its
        // buckets. The end of the last window is left out: it is usually the end
        // of the range asked for (`[0, 10000s)`), past the data; were it cutting a bucket that
        // holds points, the check on the buckets' own times sends that page to be decoded.
        let grain = {
            let mut firsts = read.lo.clone();
            firsts.push(lo);
            b.st.summaries.grain(&firsts, &read.hi[..read.len() - 1])
        };
        let merge = segments.as_ref().map(|(_, map)| (map.as_slice(), windows.len()));
        let job = GroupJob { b, windows: read, merge, lo, hi, grain, filter: value_filter, fdata: &fdata, fdata_bytes };
        let mut slots_of: Vec<Vec<usize>> = vec![Vec::new(); b.groups.len()];
        for (si, slot) in b.slots.iter().enumerate() {
            slots_of[slot.group].push(si);
        }
        let groups: Vec<usize> = (0..b.groups.len()).collect();
        let threads = worker_threads(b.groups.len());
        let results: Vec<Result<SlotColumns, Status>> = if threads <= 1 {
            vec![job.run(&groups, &slots_of)]
        } else {
            let chunk = groups.len().div_ceil(threads);
            let current = crate::running::current();
            std::thread::scope(|scope| {
                let handles: Vec<_> =
                    groups.chunks(chunk).map(|part| scope.spawn(|| crate::running::within(current.clone(), || job.run(part, &slots_of)))).collect();
                handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err(Status::new(StatusCode::InternalServerError, "an aggregation thread panicked")))).collect()
            })
        };
        for r in results {
            for (si, col) in r? {
                agg_cols[si] = col;
            }
        }
    }
    let mut rs = ResultSet {
        columns: outputs.iter().map(|o| o.name.clone()).collect(),
        types: outputs.iter().map(|o| b.type_of(&o.b)).collect(),
        ignore_time: !grouped_by_time,
        times: Vec::new(),
        cols: vec![Vec::new(); outputs.len()],
    };
    if outputs.is_empty() {
        return Ok(rs);
    }
    let order: Box<dyn Iterator<Item = usize>> = if q.select.desc { Box::new((0..windows.len()).rev()) } else { Box::new(0..windows.len()) };
    let mut aggs: Vec<Option<Value>> = vec![None; b.slots.len()];
    for w in order {
        for (si, col) in agg_cols.iter().enumerate() {
            aggs[si] = col[w].clone();
        }
        let t = windows.shown[w];
        if let Some(h) = having {
            if !is_true(&eval(h, t, &[], &aggs)?) {
                continue;
            }
        }
        rs.times.push(if grouped_by_time { t } else { 0 });
        for (c, o) in outputs.iter().enumerate() {
            let v = match &o.b {
                Bound::Agg(i) => aggs[*i].clone(),
                Bound::EndTime if grouped_by_time => Some(Value::I64(windows.hi[w])),
                other => eval(other, t, &[], &aggs)?,
            };
            rs.cols[c].push(v);
        }
    }
    Ok(rs)
}

/// ALIGN BY DEVICE: the query runs per device (paths relative to it) and the results are stacked
/// with a Device column; columns are the union of the devices' columns in order of appearance.
fn by_device(st: &State, tc: TimeContext, q: &Query, aggregate: bool, cap: Option<usize>, max_bytes: usize) -> Result<ResultSet, Status> {
    let s = &q.select;
    if q.group_by.as_ref().is_some_and(|g| !g.levels.is_empty()) {
        return Err(semantic("GROUP BY LEVEL cannot be combined with ALIGN BY DEVICE"));
    }
    let mut devices: Vec<Path> = s.from.iter().flat_map(|f| st.schema.devices_matching(f).into_iter().map(|(p, _)| p.clone())).collect();
    devices.sort();
    devices.dedup();
    let mut parts: Vec<(Path, ResultSet)> = Vec::new();
    let mut columns: Vec<(String, DataType)> = Vec::new();
    // SLIMIT is applied to the union of the devices' columns, after their rows are computed: rows
    // may then vanish, so no device may stop early.
    let cap = cap.filter(|_| s.slimit.is_none() && s.soffset == 0);
    // The devices' results are held together until they are stacked: they share the budget.
    let mut held = 0usize;
    for d in devices {
        crate::running::checkpoint()?;
        let mut b = Binder::new(st, vec![PathPattern::exact(&d)], tc, Some(d.clone()), Vec::new());
        b.max_bytes = max_bytes.saturating_sub(held);
        let rs = run_scope(b, q, aggregate, cap, false)?;
        if rs.columns.is_empty() {
            continue;
        }
        held = held.saturating_add(rs.approx_bytes());
        if held > max_bytes {
            return Err(memory_exceeded("the ALIGN BY DEVICE result of this query", held, max_bytes));
        }
        for (name, t) in rs.columns.iter().zip(&rs.types) {
            match columns.iter().find(|(n, _)| n == name) {
                Some((_, prev)) if prev != t => {
                    return Err(semantic(format!(
                        "ALIGN BY DEVICE: column {name} is {} on {d} but {} on another device; the same measurement must have one type",
                        t.name(),
                        prev.name()
                    )))
                }
                Some(_) => {}
                None => columns.push((name.clone(), *t)),
            }
        }
        parts.push((d, rs));
    }
    let columns = column_page(columns, s);
    let mut out = ResultSet {
        columns: std::iter::once("Device".to_string()).chain(columns.iter().map(|(n, _)| n.clone())).collect(),
        types: std::iter::once(DataType::Text).chain(columns.iter().map(|(_, t)| *t)).collect(),
        ignore_time: aggregate && q.group_by.as_ref().is_none_or(|g| g.time.is_none() && g.events.is_none()),
        times: Vec::new(),
        cols: vec![Vec::new(); columns.len() + 1],
    };
    for (d, rs) in parts {
        let index: Vec<Option<usize>> = columns.iter().map(|(n, _)| rs.columns.iter().position(|c| c == n)).collect();
        if index.iter().all(Option::is_none) {
            // None of this device's columns survived SLIMIT: IoTDB would not query it at all.
            continue;
        }
        let name = Value::Bytes(d.to_string().into_bytes());
        for r in 0..rs.len() {
            if !aggregate && index.iter().all(|i| i.is_none_or(|i| rs.cols[i][r].is_none())) {
                continue;
            }
            out.times.push(rs.times[r]);
            out.cols[0].push(Some(name.clone()));
            for (c, i) in index.iter().enumerate() {
                out.cols[c + 1].push(i.and_then(|i| rs.cols[i][r].clone()));
            }
        }
    }
    Ok(out)
}

/// The newest point of each series with time in `lo..=hi`: IoTDB's LAST result (Time, Timeseries,
/// Value, DataType), rows in the order of `series`.
pub fn last_rows(st: &State, series: &[(Path, DataType)], lo: i64, hi: i64, now: i64) -> Result<ResultSet, Status> {
    let mut rs = ResultSet {
        columns: vec!["Timeseries".into(), "Value".into(), "DataType".into()],
        types: vec![DataType::Text; 3],
        ignore_time: false,
        times: vec![],
        cols: vec![vec![]; 3],
    };
    // Storage has no "newest point" read, so each series is read (from page statistics where it
    // can be); spread them over threads.
    let newest = |part: &[(Path, DataType)]| -> Result<Vec<Option<(i64, Value)>>, Status> {
        part.iter()
            .map(|(p, _)| {
                crate::running::checkpoint()?;
                Ok(newest_point(st, p, lo, hi, now))
            })
            .collect()
    };
    let threads = worker_threads(series.len());
    let found: Vec<Option<(i64, Value)>> = if threads <= 1 {
        newest(series)?
    } else {
        let chunk = series.len().div_ceil(threads);
        let current = crate::running::current();
        let parts: Vec<_> = std::thread::scope(|scope| {
            let handles: Vec<_> = series.chunks(chunk).map(|part| scope.spawn(|| crate::running::within(current.clone(), || newest(part)))).collect();
            handles.into_iter().map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e))).collect()
        });
        let mut all = Vec::with_capacity(series.len());
        for part in parts {
            all.extend(part?);
        }
        all
    };
    for ((p, t), point) in series.iter().zip(found) {
        if let Some((time, v)) = point {
            rs.times.push(time);
            rs.cols[0].push(Some(Value::Bytes(p.to_string().into_bytes())));
            rs.cols[1].push(Some(Value::Bytes(v.render(*t).into_bytes())));
            rs.cols[2].push(Some(Value::Bytes(t.name().as_bytes().to_vec())));
        }
    }
    Ok(rs)
}

/// The newest point of a series in `lo..=hi`. Typed parts avoid a `Value` per point, and a file
/// page that statistics may stand for gives its last point without being decoded.
fn newest_point(st: &State, p: &Path, lo: i64, hi: i64, now: i64) -> Option<(i64, Value)> {
    st.newest(p, lo, hi, now)
}

fn run_last(st: &State, tc: TimeContext, q: &Query) -> Result<ResultSet, Status> {
    let s = &q.select;
    let mut b = Binder::new(st, s.from.clone(), tc, None, Vec::new());
    for item in &s.items {
        if item.alias.is_some() {
            return Err(semantic("a LAST query cannot rename its columns"));
        }
        for o in b.expand(&item.expr, Mode::Raw)? {
            if !matches!(o.b, Bound::Series(_)) {
                return Err(semantic(format!("a LAST query selects series, not '{}'", o.name)));
            }
        }
    }
    let bounds = time_only_bounds(s.filter.as_ref(), &tc, "a LAST query supports only a time filter in WHERE (e.g. time >= 2024-01-01T00:00:00)")?;
    let mut series = b.series.clone();
    series.sort_by(|a, b| a.0.cmp(&b.0));
    if q.order_by_timeseries == Some(true) {
        series.reverse();
    }
    let mut rs = last_rows(st, &series, bounds.lo, bounds.hi, tc.now)?;
    rs.page(s.offset, s.limit);
    Ok(rs)
}

/// Replaces nulls as FILL asks, column by column in output order.
fn fill(rs: &mut ResultSet, f: &Fill, tc: &TimeContext) -> Result<(), Status> {
    let n = rs.len();
    match f {
        Fill::Previous(limit) => {
            let limit = match limit {
                Some(d) => Some(duration(d, tc.precision)?),
                None => None,
            };
            for col in rs.cols.iter_mut() {
                let mut prev: Option<(i64, Value)> = None;
                for (cell, &t) in col.iter_mut().zip(&rs.times) {
                    match cell {
                        Some(v) => prev = Some((t, v.clone())),
                        None => {
                            if let Some((pt, v)) = &prev {
                                if limit.is_none_or(|l| (t - pt).abs() <= l) {
                                    *cell = Some(v.clone());
                                }
                            }
                        }
                    }
                }
            }
        }
        Fill::Linear => {
            for (c, col) in rs.cols.iter_mut().enumerate() {
                if !rs.types[c].is_numeric() {
                    continue;
                }
                let known: Vec<usize> = (0..n).filter(|r| col[*r].is_some()).collect();
                for pair in known.windows(2) {
                    let (i, k) = (pair[0], pair[1]);
                    let (ti, tk) = (rs.times[i] as f64, rs.times[k] as f64);
                    let (vi, vk) = (col[i].as_ref().and_then(Value::as_f64), col[k].as_ref().and_then(Value::as_f64));
                    let (Some(vi), Some(vk)) = (vi, vk) else { continue };
                    for (cell, &tj) in col[i + 1..k].iter_mut().zip(&rs.times[i + 1..k]) {
                        let x = vi + (vk - vi) * ((tj as f64 - ti) / (tk - ti));
                        *cell = Some(match rs.types[c] {
                            DataType::Int32 => Value::I32(x as i32),
                            DataType::Int64 => Value::I64(x as i64),
                            DataType::Float => Value::F32(x as f32),
                            _ => Value::F64(x),
                        });
                    }
                }
            }
        }
        Fill::Value(lit) => {
            for (c, col) in rs.cols.iter_mut().enumerate() {
                let Some(v) = fill_constant(lit, rs.types[c]) else { continue };
                for cell in col.iter_mut() {
                    if cell.is_none() {
                        *cell = Some(v.clone());
                    }
                }
            }
        }
    }
    Ok(())
}

/// The constant FILL puts in a column of type `t`, if it fits (IoTDB leaves other columns alone).
pub(crate) fn fill_constant(l: &Literal, t: DataType) -> Option<Value> {
    use DataType::*;
    let text = |s: std::string::String| Some(Value::Bytes(s.into_bytes()));
    match (l, t) {
        (Literal::Int(v), Int32) => i32::try_from(*v).ok().map(Value::I32),
        (Literal::Int(v), Int64 | Timestamp) => Some(Value::I64(*v)),
        (Literal::Int(v), Float) => Some(Value::F32(*v as f32)),
        (Literal::Int(v), Double) => Some(Value::F64(*v as f64)),
        (Literal::Int(v), Text | String) => text(v.to_string()),
        (Literal::Float(v), Float) => Some(Value::F32(*v as f32)),
        (Literal::Float(v), Double) => Some(Value::F64(*v)),
        (Literal::Float(v), Text | String) => text(format_float(*v, false)),
        (Literal::Bool(b), Boolean) => Some(Value::Bool(*b)),
        (Literal::Bool(b), Text | String) => text(b.to_string()),
        (Literal::Str(s) | Literal::DateTime(s), Text | String) => text(s.clone()),
        _ => None,
    }
}
