//! A hand-written recursive-descent parser for IoTDB's tree-model SQL.
//!
//! Errors name the line and column of the offending token and what was expected there, in the
//! style of IoTDB's own messages (`line 1:14 mismatched input 'x' expecting ...`).

use duet_common::mutation::SeriesChange;
use duet_common::path::{Path, PathPattern};
use duet_common::status::{Status, StatusCode};
use duet_common::types::{Compressor, DataType, Encoding};

use crate::ast::*;
use crate::lexer::{error_at, lex, Tok, Token};

/// Parses one statement (a trailing `;` is allowed).
pub fn parse(sql: &str) -> Result<Statement, Status> {
    let mut p = Parser { sql, toks: lex(sql)?, pos: 0, depth: 0, height: 0 };
    let st = p.statement()?;
    p.eat_sym(";");
    if p.peek() != &Tok::Eof {
        return Err(p.error("extraneous input after the end of the statement"));
    }
    Ok(st)
}

/// `sql` with the values of passwords masked (`SET PASSWORD '...'`, `'sink.password'='...'`), for
/// SHOW QUERIES and logs. A statement that does not lex and mentions a password is not shown.
pub fn redact_secrets(sql: &str) -> std::borrow::Cow<'_, str> {
    // (Every statement passes here: looked for without copying it.)
    if !sql.as_bytes().windows(8).any(|w| w.eq_ignore_ascii_case(b"password")) {
        return std::borrow::Cow::Borrowed(sql);
    }
    let Ok(toks) = lex(sql) else { return std::borrow::Cow::Owned("<a statement with a password, not shown>".into()) };
    let mut out = String::with_capacity(sql.len());
    let (mut copied, mut masking) = (0, false);
    for t in &toks {
        match &t.tok {
            Tok::Ident(w) if w.eq_ignore_ascii_case("PASSWORD") => masking = true,
            Tok::Str(k) if !masking && k.to_ascii_lowercase().ends_with("password") => masking = true,
            Tok::Str(_) if masking => {
                out.push_str(&sql[copied..t.start]);
                out.push_str("'******'");
                copied = t.end;
                masking = false;
            }
            Tok::Sym("=") => {}
            _ => masking = false,
        }
    }
    out.push_str(&sql[copied..]);
    std::borrow::Cow::Owned(out)
}

/// Whether `sql` is the beginning of a statement that needs more input: it fails to parse only
/// because it ends too early (an open quote, or the input ends where more was expected). The CLI
/// uses this to read multi-line statements without requiring `;`.
pub fn is_incomplete(sql: &str) -> bool {
    let toks = match lex(sql) {
        Ok(t) => t,
        Err(e) => return e.message.contains("unterminated"),
    };
    if toks.len() == 1 {
        return false;
    }
    let mut p = Parser { sql, toks, pos: 0, depth: 0, height: 0 };
    match p.statement() {
        Ok(_) => false,
        Err(_) => p.peek() == &Tok::Eof,
    }
}

/// Splits a script into statements at top-level `;` (not inside quotes or comments).
pub fn split_statements(script: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut chars = script.chars().peekable();
    while let Some(c) = chars.next() {
        match quote {
            Some(q) => {
                cur.push(c);
                if c == q {
                    quote = None;
                }
            }
            None => match c {
                '\'' | '"' | '`' => {
                    quote = Some(c);
                    cur.push(c);
                }
                '-' if chars.peek() == Some(&'-') => {
                    for n in chars.by_ref() {
                        if n == '\n' {
                            cur.push('\n');
                            break;
                        }
                    }
                }
                ';' => {
                    if !cur.trim().is_empty() {
                        out.push(cur.trim().to_string());
                    }
                    cur.clear();
                }
                _ => cur.push(c),
            },
        }
    }
    if !cur.trim().is_empty() {
        out.push(cur.trim().to_string());
    }
    out
}

struct Parser<'a> {
    sql: &'a str,
    toks: Vec<Token>,
    pos: usize,
    /// How deep the parser's own recursion is in the expression being parsed (parentheses,
    /// function arguments, NOT and signs): bounded, as each level is several stack frames.
    depth: usize,
    /// Height of the expression tree last parsed (a leaf is 1): bounded too, since evaluating
    /// and dropping an expression recurse once per level, and a chain of chains (`((s + s + ...)
    /// + s + ...)`) grows the tree more than the parser's recursion.
    height: usize,
}

/// Deepest parser recursion accepted. Far beyond what anyone writes; a connection thread's stack
/// holds it with room to spare, where a hundred thousand parentheses would overflow it and abort
/// the process.
const MAX_EXPR_DEPTH: usize = 200;
/// Highest expression tree accepted (a chain of a thousand ORs is fine).
const MAX_EXPR_HEIGHT: usize = 2000;

const RESERVED_AFTER_PATH: &[&str] = &[
    "WHERE", "LIMIT", "OFFSET", "ORDER", "SLIMIT", "SOFFSET", "ALIGN", "GROUP", "FILL", "HAVING", "WITH", "TAGS", "ATTRIBUTES", "VALUES",
    "ALIGNED", "AS", "FROM", "ON",
];

impl<'a> Parser<'a> {
    fn peek(&self) -> &Tok {
        &self.toks[self.pos].tok
    }
    fn peek_at(&self, n: usize) -> &Tok {
        &self.toks[(self.pos + n).min(self.toks.len() - 1)].tok
    }
    fn cur(&self) -> &Token {
        &self.toks[self.pos]
    }
    fn bump(&mut self) -> Token {
        let t = self.toks[self.pos].clone();
        if self.pos < self.toks.len() - 1 {
            self.pos += 1;
        }
        t
    }
    /// One level deeper into an expression; [`Parser::up`] leaves it.
    fn down(&mut self) -> Result<(), Status> {
        self.depth += 1;
        if self.depth > MAX_EXPR_DEPTH {
            return Err(self.error(&format!("expression nested too deeply (more than {MAX_EXPR_DEPTH} levels)")));
        }
        Ok(())
    }
    fn up(&mut self, levels: usize) {
        self.depth -= levels;
    }
    /// Records the height of a node over children of heights `kids` (the last parsed, for a leaf).
    fn grew(&mut self, kids: &[usize]) -> Result<(), Status> {
        self.height = kids.iter().copied().max().unwrap_or(0) + 1;
        if self.height > MAX_EXPR_HEIGHT {
            return Err(self.error(&format!("expression nested or chained too deeply (more than {MAX_EXPR_HEIGHT} levels)")));
        }
        Ok(())
    }
    fn error(&self, msg: &str) -> Status {
        let t = self.cur();
        error_at(self.sql, t.start, format!("{msg} (at '{}')", t.tok.describe()))
    }
    fn expected(&self, what: &str) -> Status {
        let t = self.cur();
        error_at(self.sql, t.start, format!("mismatched input '{}' expecting {what}", t.tok.describe()))
    }
    fn is_kw(&self, kw: &str) -> bool {
        matches!(self.peek(), Tok::Ident(s) if s.eq_ignore_ascii_case(kw))
    }
    fn is_kw_at(&self, n: usize, kw: &str) -> bool {
        matches!(self.peek_at(n), Tok::Ident(s) if s.eq_ignore_ascii_case(kw))
    }
    fn eat_kw(&mut self, kw: &str) -> bool {
        if self.is_kw(kw) {
            self.bump();
            true
        } else {
            false
        }
    }
    fn expect_kw(&mut self, kw: &str) -> Result<(), Status> {
        if self.eat_kw(kw) {
            Ok(())
        } else {
            Err(self.expected(kw))
        }
    }
    fn is_sym(&self, s: &str) -> bool {
        matches!(self.peek(), Tok::Sym(x) if *x == s)
    }
    fn eat_sym(&mut self, s: &str) -> bool {
        if self.is_sym(s) {
            self.bump();
            true
        } else {
            false
        }
    }
    fn expect_sym(&mut self, s: &str) -> Result<(), Status> {
        if self.eat_sym(s) {
            Ok(())
        } else {
            Err(self.expected(&format!("'{s}'")))
        }
    }

    fn statement(&mut self) -> Result<Statement, Status> {
        let Tok::Ident(first) = self.peek().clone() else {
            return Err(self.expected("a statement (SELECT, INSERT, CREATE, SHOW, DELETE, DROP, COUNT, FLUSH, SET, UNSET, START, STOP, ALTER, KILL, LIST)"));
        };
        match first.to_ascii_uppercase().as_str() {
            "LIST" if self.is_kw_at(1, "USER") && matches!(self.peek_at(2), Tok::Eof | Tok::Sym(";")) => {
                self.bump();
                self.bump();
                Ok(Statement::ListUser)
            }
            "CREATE" | "DROP" | "LIST" if self.is_kw_at(1, "USER") || self.is_kw_at(1, "ROLE") || self.is_kw_at(1, "PRIVILEGES") => self.auth_unsupported(2),
            "SELECT" => self.select().map(|q| Statement::Query(Box::new(q))),
            "INSERT" => self.insert(),
            "CREATE" => self.create(),
            "SHOW" => self.show(),
            "KILL" => {
                self.bump();
                if self.eat_kw("ALL") {
                    self.expect_kw("QUERIES")?;
                    return Ok(Statement::KillQuery(None));
                }
                self.expect_kw("QUERY")?;
                self.query_id().map(|id| Statement::KillQuery(Some(id)))
            }
            "COUNT" => self.count(),
            "DELETE" => self.delete(),
            "DROP" => self.drop(),
            "CHECK" | "REPAIR" => {
                let repair = first.eq_ignore_ascii_case("REPAIR");
                self.bump();
                self.expect_kw("PIPE")?;
                Ok(Statement::CheckPipe { name: self.name()?, repair })
            }
            "MERGE" | "COMPACT" => {
                self.bump();
                self.eat_kw("FULL");
                Ok(Statement::Merge)
            }
            "FLUSH" => {
                self.bump();
                while !matches!(self.peek(), Tok::Eof | Tok::Sym(";")) {
                    self.bump();
                }
                Ok(Statement::Flush)
            }
            "SET" => {
                self.bump();
                if self.eat_kw("TTL") {
                    self.expect_kw("TO")?;
                    let p = self.ttl_target()?;
                    if self.eat_kw("INF") {
                        return Ok(Statement::SetTtl(p, duet_common::mutation::TTL_INF));
                    }
                    let ttl = self.int()?;
                    if ttl <= 0 {
                        return Err(self.error("TTL must be a positive number of milliseconds, or INF"));
                    }
                    return Ok(Statement::SetTtl(p, ttl));
                }
                if self.eat_kw("STORAGE") {
                    self.expect_kw("GROUP")?;
                    self.expect_kw("TO")?;
                    return Ok(Statement::CreateDatabase(self.path()?));
                }
                Err(self.expected("TTL or STORAGE GROUP"))
            }
            "START" | "STOP" => {
                let start = first.eq_ignore_ascii_case("START");
                self.bump();
                self.expect_kw("PIPE")?;
                let name = self.name()?;
                Ok(if start { Statement::StartPipe(name) } else { Statement::StopPipe(name) })
            }
            "ALTER" if self.is_kw_at(1, "TIMESERIES") => self.alter_timeseries(),
            "ALTER" if self.is_kw_at(1, "USER") => {
                self.bump();
                self.bump();
                let user = self.name()?;
                self.expect_kw("SET")?;
                self.expect_kw("PASSWORD")?;
                let Tok::Str(password) = self.peek().clone() else { return Err(self.expected("the new password, quoted")) };
                self.bump();
                Ok(Statement::AlterUserPassword { user, password })
            }
            "GRANT" | "REVOKE" => self.auth_unsupported(1),
            "ALTER" => self.alter_pipe(),
            "UNSET" => {
                self.bump();
                self.expect_kw("TTL")?;
                if !self.eat_kw("TO") {
                    self.expect_kw("FROM")?;
                }
                Ok(Statement::UnsetTtl(self.ttl_target()?))
            }
            _ => Err(self.expected("a statement (SELECT, INSERT, CREATE, SHOW, DELETE, DROP, COUNT, FLUSH, SET, UNSET, START, STOP, ALTER, KILL, LIST)")),
        }
    }

    // ---- paths ----

    /// One path node; `glue` joins adjacent `*` and identifier pieces (`d*`) into one node.
    fn node(&mut self, glue: bool) -> Result<String, Status> {
        let mut text = match self.peek().clone() {
            Tok::Ident(s) | Tok::Int(s) => {
                self.bump();
                s
            }
            Tok::Quoted(s) => {
                self.bump();
                return Ok(s);
            }
            Tok::Sym("*") => {
                self.bump();
                "*".into()
            }
            Tok::Sym("**") => {
                self.bump();
                return Ok("**".into());
            }
            _ => return Err(self.expected("a path node")),
        };
        // `d*` / `*d` style nodes: always in FROM-like positions; in expressions only when the glued
        // piece is directly followed by `.`, so that `s1 * s2` stays a multiplication.
        while self.toks[self.pos - 1].end == self.cur().start {
            let piece = match self.peek().clone() {
                Tok::Sym("*") => "*".to_string(),
                Tok::Ident(s) | Tok::Int(s) if text.ends_with('*') => s,
                _ => break,
            };
            let next_is_dot = self.toks[self.pos].end == self.toks[(self.pos + 1).min(self.toks.len() - 1)].start && self.is_sym_at(1, ".");
            if !glue && !next_is_dot {
                break;
            }
            self.bump();
            text.push_str(&piece);
        }
        Ok(text)
    }

    fn nodes(&mut self, glue: bool) -> Result<Vec<String>, Status> {
        let mut nodes = vec![self.node(glue)?];
        while self.is_sym(".") {
            self.bump();
            nodes.push(self.node(glue)?);
        }
        Ok(nodes)
    }

    fn path(&mut self) -> Result<Path, Status> {
        let start = self.cur().start;
        let nodes = self.nodes(false)?;
        Path::from_nodes(nodes).map_err(|m| error_at(self.sql, start, m))
    }

    /// What a TTL is set on: a database or a device (its path), or the devices below a path
    /// (the path followed by `.**`, `root.**` included), as IoTDB 1.3.3 takes it.
    fn ttl_target(&mut self) -> Result<PathPattern, Status> {
        let start = self.cur().start;
        let p = PathPattern::from_nodes(self.nodes(true)?);
        if duet_schema::ttl::rule_key(&p).is_none() {
            return Err(error_at(self.sql, start, "a TTL is set on a database or device (root.db, root.db.d1) or on the devices below a path (root.db.**, root.**); no other wildcard"));
        }
        Ok(p)
    }

    fn pattern(&mut self) -> Result<PathPattern, Status> {
        let start = self.cur().start;
        let nodes = self.nodes(true)?;
        if nodes[0] != "root" {
            return Err(error_at(self.sql, start, "a path must start with 'root'"));
        }
        Ok(PathPattern::from_nodes(nodes))
    }

    fn patterns(&mut self) -> Result<Vec<PathPattern>, Status> {
        let mut v = vec![self.pattern()?];
        while self.eat_sym(",") {
            v.push(self.pattern()?);
        }
        Ok(v)
    }

    fn optional_pattern(&mut self) -> Result<Option<PathPattern>, Status> {
        if self.is_kw("root") {
            Ok(Some(self.pattern()?))
        } else {
            Ok(None)
        }
    }

    fn int(&mut self) -> Result<i64, Status> {
        let neg = self.eat_sym("-");
        match self.peek().clone() {
            Tok::Int(s) => {
                self.bump();
                let v: i64 = s.parse().map_err(|_| self.error("integer out of range"))?;
                Ok(if neg { -v } else { v })
            }
            _ => Err(self.expected("an integer")),
        }
    }

    /// A user/role/privilege statement DuetDB does not have: its first `words` name it; the rest
    /// is not read.
    fn auth_unsupported(&mut self, words: usize) -> Result<Statement, Status> {
        let mut what = Vec::new();
        for _ in 0..words {
            what.push(self.bump().tok.describe().to_ascii_uppercase());
        }
        while !matches!(self.peek(), Tok::Eof | Tok::Sym(";")) {
            self.bump();
        }
        Ok(Statement::AuthUnsupported(what.join(" ")))
    }

    /// A query id as SHOW QUERIES lists it: quoted, or as written (`20240301_123456_00000_1`
    /// lexes as a number followed by an identifier; the adjacent tokens are taken together).
    fn query_id(&mut self) -> Result<String, Status> {
        if let Tok::Str(s) = self.peek().clone() {
            self.bump();
            return Ok(s);
        }
        let first = self.cur().clone();
        if !matches!(first.tok, Tok::Int(_) | Tok::Ident(_)) {
            return Err(self.expected("a query id such as '20240301_123456_00000_1'"));
        }
        let mut end = first.end;
        self.bump();
        while self.cur().start == end && matches!(self.peek(), Tok::Int(_) | Tok::Ident(_)) {
            end = self.bump().end;
        }
        Ok(self.sql[first.start..end].to_string())
    }

    fn usize(&mut self) -> Result<usize, Status> {
        let v = self.int()?;
        usize::try_from(v).map_err(|_| self.error("expected a non-negative integer"))
    }

    fn limit_offset(&mut self) -> Result<(Option<usize>, usize), Status> {
        let (mut limit, mut offset) = (None, 0);
        loop {
            if self.eat_kw("LIMIT") {
                limit = Some(self.usize()?);
            } else if self.eat_kw("OFFSET") {
                offset = self.usize()?;
            } else {
                return Ok((limit, offset));
            }
        }
    }

    // ---- CREATE ----

    /// After CREATE: `(CONTINUOUS QUERY | CQ) id [RESAMPLE [EVERY d] [BOUNDARY t] [RANGE d[, d]]]
    /// [TIMEOUT POLICY BLOCKED|DISCARD] BEGIN select END`.
    fn create_cq(&mut self, start: usize) -> Result<Statement, Status> {
        let id = self.name()?;
        let (mut every, mut boundary, mut range) = (None, None, None);
        if self.eat_kw("RESAMPLE") {
            loop {
                if self.eat_kw("EVERY") {
                    every = Some(self.duration_word()?);
                } else if self.eat_kw("BOUNDARY") {
                    boundary = Some(self.expr()?);
                } else if self.eat_kw("RANGE") {
                    let from = self.duration_word()?;
                    range = Some((from, if self.eat_sym(",") { Some(self.duration_word()?) } else { None }));
                } else {
                    break;
                }
            }
        }
        let mut discard = false;
        if self.eat_kw("TIMEOUT") {
            self.expect_kw("POLICY")?;
            discard = if self.eat_kw("DISCARD") {
                true
            } else {
                self.expect_kw("BLOCKED")?;
                false
            };
        }
        self.expect_kw("BEGIN")?;
        let query = self.select()?;
        self.expect_kw("END")?;
        let text = self.sql[start..self.toks[self.pos - 1].end].to_string();
        Ok(Statement::CreateCq(Box::new(CqSpec { id, every, boundary, range, discard, query: Box::new(query), text })))
    }

    fn create(&mut self) -> Result<Statement, Status> {
        let start = self.cur().start;
        self.expect_kw("CREATE")?;
        if self.eat_kw("CQ") || (self.is_kw("CONTINUOUS") && self.is_kw_at(1, "QUERY") && {
            self.bump();
            self.bump();
            true
        }) {
            return self.create_cq(start);
        }
        if self.eat_kw("DATABASE") {
            return Ok(Statement::CreateDatabase(self.path()?));
        }
        if self.eat_kw("STORAGE") {
            self.expect_kw("GROUP")?;
            return Ok(Statement::CreateDatabase(self.path()?));
        }
        if self.eat_kw("ALIGNED") {
            self.expect_kw("TIMESERIES")?;
            let device = self.path()?;
            self.expect_sym("(")?;
            let mut specs = Vec::new();
            loop {
                let name_at = self.cur().start;
                let name = self.node(false)?;
                if name.contains('*') {
                    return Err(error_at(self.sql, name_at, "wildcards are not allowed in a measurement name"));
                }
                let alias = self.alias_paren()?;
                let mut spec = self.series_props(device.child(&name), alias, true)?;
                spec.path = device.child(&name);
                specs.push(spec);
                if self.eat_sym(")") {
                    break;
                }
                self.expect_sym(",")?;
            }
            return Ok(Statement::CreateAlignedTimeseries(specs));
        }
        if self.eat_kw("TIMESERIES") {
            let path = self.path()?;
            let alias = self.alias_paren()?;
            return Ok(Statement::CreateTimeseries(self.series_props(path, alias, false)?));
        }
        if self.eat_kw("PIPE") {
            return self.create_pipe();
        }
        Err(self.expected("DATABASE, TIMESERIES, ALIGNED TIMESERIES or PIPE"))
    }

    fn alias_paren(&mut self) -> Result<Option<String>, Status> {
        if self.is_sym("(") && matches!(self.peek_at(1), Tok::Ident(_) | Tok::Quoted(_)) && matches!(self.peek_at(2), Tok::Sym(")")) {
            self.bump();
            let a = self.node(false)?;
            self.expect_sym(")")?;
            return Ok(Some(a));
        }
        Ok(None)
    }

    /// `[WITH] DATATYPE=T, ENCODING=E, COMPRESSOR=C` or `T [ENCODING=E] [COMPRESSOR=C]`, then TAGS/ATTRIBUTES.
    fn series_props(&mut self, path: Path, alias: Option<String>, in_list: bool) -> Result<MeasurementSpec, Status> {
        self.eat_kw("WITH");
        let mut dtype = None;
        let mut encoding = None;
        let mut compressor = None;
        let mut tags = Vec::new();
        let mut attributes = Vec::new();
        // Short form: a bare type name.
        if let Tok::Ident(s) = self.peek().clone() {
            if !self.is_sym_at(1, "=") {
                if let Some(t) = DataType::parse(&s) {
                    self.bump();
                    dtype = Some(t);
                }
            }
        }
        loop {
            // Properties are comma-separated in CREATE TIMESERIES but space-separated inside the
            // measurement list of CREATE ALIGNED TIMESERIES, where a comma starts the next measurement.
            if !in_list {
                self.eat_sym(",");
            }
            let Tok::Ident(key) = self.peek().clone() else { break };
            let up = key.to_ascii_uppercase();
            if up == "TAGS" || up == "ATTRIBUTES" {
                self.bump();
                let kv = self.kv_list()?;
                if up == "TAGS" {
                    tags = kv;
                } else {
                    attributes = kv;
                }
                continue;
            }
            if !self.is_sym_at(1, "=") {
                break;
            }
            let at = self.cur().start;
            self.bump();
            self.bump();
            let vat = self.cur().start;
            let val = match self.bump().tok {
                Tok::Ident(v) | Tok::Str(v) | Tok::Int(v) => v,
                _ => return Err(error_at(self.sql, vat, format!("expected a value for {key}"))),
            };
            match up.as_str() {
                "DATATYPE" => dtype = Some(DataType::parse(&val).ok_or_else(|| error_at(self.sql, vat, format!("unknown data type '{val}'")))?),
                "ENCODING" => encoding = Some(Encoding::parse(&val).ok_or_else(|| error_at(self.sql, vat, format!("unknown encoding '{val}'")))?),
                "COMPRESSOR" | "COMPRESSION" => {
                    compressor = Some(Compressor::parse(&val).ok_or_else(|| error_at(self.sql, vat, format!("unknown compressor '{val}'")))?)
                }
                _ => return Err(error_at(self.sql, at, format!("unknown time series property '{key}'"))),
            }
            if in_list && (self.is_sym(",") || self.is_sym(")")) {
                break;
            }
        }
        let dtype = dtype.ok_or_else(|| self.expected("a data type (DATATYPE=... or a type name)"))?;
        Ok(MeasurementSpec {
            path,
            dtype,
            encoding: encoding.unwrap_or(dtype.default_encoding()),
            compressor: compressor.unwrap_or(Compressor::Lz4),
            alias,
            tags,
            attributes,
        })
    }

    fn is_sym_at(&self, n: usize, s: &str) -> bool {
        matches!(self.peek_at(n), Tok::Sym(x) if *x == s)
    }

    fn kv_list(&mut self) -> Result<Vec<(String, String)>, Status> {
        self.expect_sym("(")?;
        let mut out = Vec::new();
        if self.eat_sym(")") {
            return Ok(out);
        }
        loop {
            let k = self.word()?;
            self.expect_sym("=")?;
            let v = self.word()?;
            out.push((k, v));
            if self.eat_sym(")") {
                return Ok(out);
            }
            self.expect_sym(",")?;
        }
    }

    fn word(&mut self) -> Result<String, Status> {
        match self.peek().clone() {
            Tok::Ident(s) | Tok::Quoted(s) | Tok::Str(s) | Tok::Int(s) | Tok::Float(s) | Tok::DateTime(s) => {
                self.bump();
                Ok(s)
            }
            _ => Err(self.expected("a name or a value")),
        }
    }

    // ---- PIPES ----

    fn name(&mut self) -> Result<String, Status> {
        match self.peek().clone() {
            Tok::Ident(s) | Tok::Quoted(s) => {
                self.bump();
                Ok(s)
            }
            _ => Err(self.expected("a name")),
        }
    }

    fn if_exists(&mut self) -> Result<bool, Status> {
        if self.is_kw("IF") && self.is_kw_at(1, "EXISTS") {
            self.bump();
            self.bump();
            return Ok(true);
        }
        Ok(false)
    }

    /// `( 'key' = 'value', ... )`, a trailing comma allowed.
    fn pipe_params(&mut self) -> Result<Vec<(String, String)>, Status> {
        self.expect_sym("(")?;
        let mut out: Vec<(String, String)> = Vec::new();
        loop {
            if self.eat_sym(")") {
                return Ok(out);
            }
            let at = self.cur().start;
            let key = match self.peek().clone() {
                Tok::Str(s) | Tok::Ident(s) | Tok::Quoted(s) => {
                    self.bump();
                    s
                }
                _ => return Err(self.expected("a quoted parameter name or ')'")),
            };
            self.expect_sym("=")?;
            let value = match self.peek().clone() {
                Tok::Str(s) | Tok::Ident(s) | Tok::Int(s) | Tok::Float(s) | Tok::Quoted(s) => {
                    self.bump();
                    s
                }
                _ => return Err(self.expected(&format!("a quoted value for '{key}'"))),
            };
            if out.iter().any(|(k, _)| k.eq_ignore_ascii_case(&key)) {
                return Err(error_at(self.sql, at, format!("parameter '{key}' is given twice")));
            }
            out.push((key, value));
            if !self.eat_sym(",") && !self.is_sym(")") {
                return Err(self.expected("',' or ')'"));
            }
        }
    }

    fn create_pipe(&mut self) -> Result<Statement, Status> {
        let if_not_exists = if self.is_kw("IF") {
            self.bump();
            self.expect_kw("NOT")?;
            self.expect_kw("EXISTS")?;
            true
        } else {
            false
        };
        let name = self.name()?;
        let mut spec = PipeSpec { name, if_not_exists, source: vec![], processor: vec![], sink: vec![] };
        let mut have_sink = false;
        while self.eat_kw("WITH") {
            let at = self.cur().start;
            let Tok::Ident(kind) = self.peek().clone() else { return Err(self.expected("SOURCE, EXTRACTOR, PROCESSOR, SINK or CONNECTOR")) };
            self.bump();
            let params = self.pipe_params()?;
            match kind.to_ascii_uppercase().as_str() {
                "SOURCE" | "EXTRACTOR" => spec.source = params,
                "PROCESSOR" => spec.processor = params,
                "SINK" | "CONNECTOR" => {
                    spec.sink = params;
                    have_sink = true;
                }
                _ => return Err(error_at(self.sql, at, format!("mismatched input '{kind}' expecting SOURCE, EXTRACTOR, PROCESSOR, SINK or CONNECTOR"))),
            }
        }
        if !have_sink {
            return Err(self.expected("WITH SINK (...)"));
        }
        Ok(Statement::CreatePipe(spec))
    }

    /// `ALTER TIMESERIES path RENAME k TO k2 | SET k=v, ... | DROP k, ... | ADD TAGS k=v, ... |
    /// ADD ATTRIBUTES k=v, ... | UPSERT [ALIAS=a] [TAGS(k=v, ...)] [ATTRIBUTES(k=v, ...)]`.
    fn alter_timeseries(&mut self) -> Result<Statement, Status> {
        self.expect_kw("ALTER")?;
        self.expect_kw("TIMESERIES")?;
        let path = self.path()?;
        let pairs = |p: &mut Self| -> Result<Vec<(String, String)>, Status> {
            let mut out = Vec::new();
            loop {
                let k = p.word()?;
                p.expect_sym("=")?;
                out.push((k, p.word()?));
                if !p.eat_sym(",") {
                    return Ok(out);
                }
            }
        };
        let change = if self.eat_kw("RENAME") {
            let from = self.word()?;
            self.expect_kw("TO")?;
            SeriesChange::Rename { from, to: self.word()? }
        } else if self.eat_kw("SET") {
            SeriesChange::Set(pairs(self)?)
        } else if self.eat_kw("DROP") {
            let mut keys = vec![self.word()?];
            while self.eat_sym(",") {
                keys.push(self.word()?);
            }
            SeriesChange::Drop(keys)
        } else if self.eat_kw("ADD") {
            if self.eat_kw("TAGS") {
                SeriesChange::AddTags(pairs(self)?)
            } else if self.eat_kw("ATTRIBUTES") {
                SeriesChange::AddAttributes(pairs(self)?)
            } else {
                return Err(self.expected("TAGS or ATTRIBUTES"));
            }
        } else if self.eat_kw("UPSERT") {
            let (mut alias, mut tags, mut attributes) = (None, vec![], vec![]);
            if self.eat_kw("ALIAS") {
                self.expect_sym("=")?;
                alias = Some(self.word()?);
            }
            if self.eat_kw("TAGS") {
                tags = self.kv_list()?;
            }
            if self.eat_kw("ATTRIBUTES") {
                attributes = self.kv_list()?;
            }
            if alias.is_none() && tags.is_empty() && attributes.is_empty() {
                return Err(self.expected("ALIAS=..., TAGS(...) or ATTRIBUTES(...)"));
            }
            SeriesChange::Upsert { alias, tags, attributes }
        } else {
            return Err(self.expected("RENAME, SET, DROP, ADD TAGS, ADD ATTRIBUTES or UPSERT"));
        };
        Ok(Statement::AlterTimeseries(path, change))
    }

    fn alter_pipe(&mut self) -> Result<Statement, Status> {
        self.expect_kw("ALTER")?;
        self.expect_kw("PIPE")?;
        let if_exists = self.if_exists()?;
        let name = self.name()?;
        let (mut source, mut processor, mut sink) = (None, None, None);
        loop {
            let replace = if self.eat_kw("REPLACE") {
                true
            } else if self.eat_kw("MODIFY") {
                false
            } else {
                break;
            };
            let at = self.cur().start;
            let Tok::Ident(kind) = self.peek().clone() else { return Err(self.expected("SOURCE, PROCESSOR or SINK")) };
            self.bump();
            let params = self.pipe_params()?;
            match kind.to_ascii_uppercase().as_str() {
                "SOURCE" | "EXTRACTOR" => source = Some((replace, params)),
                "PROCESSOR" => processor = Some((replace, params)),
                "SINK" | "CONNECTOR" => sink = Some((replace, params)),
                _ => return Err(error_at(self.sql, at, format!("mismatched input '{kind}' expecting SOURCE, PROCESSOR or SINK"))),
            }
        }
        if source.is_none() && processor.is_none() && sink.is_none() {
            return Err(self.expected("MODIFY or REPLACE"));
        }
        Ok(Statement::AlterPipe { name, if_exists, source, processor, sink })
    }

    // ---- SHOW / COUNT ----

    fn show(&mut self) -> Result<Statement, Status> {
        self.expect_kw("SHOW")?;
        if self.eat_kw("DATABASES") || (self.eat_kw("STORAGE") && { self.expect_kw("GROUP")?; true }) {
            return Ok(Statement::ShowDatabases(self.optional_pattern()?));
        }
        if self.eat_kw("TIMESERIES") {
            let pattern = self.optional_pattern()?;
            let filter = self.schema_where()?;
            let (limit, offset) = self.limit_offset()?;
            return Ok(Statement::ShowTimeseries { pattern, filter, limit, offset });
        }
        if self.eat_kw("DEVICES") {
            let pattern = self.optional_pattern()?;
            let with_database = self.is_kw("WITH") && (self.is_kw_at(1, "DATABASE") || self.is_kw_at(1, "STORAGE"));
            if with_database {
                self.bump();
                if self.eat_kw("STORAGE") {
                    self.expect_kw("GROUP")?;
                } else {
                    self.expect_kw("DATABASE")?;
                }
            }
            // IoTDB 1.3's filters; no device uses a schema template here.
            let mut contains = Some(String::new());
            if self.eat_kw("WHERE") {
                if self.eat_kw("DEVICE") {
                    self.expect_kw("CONTAINS")?;
                    let Tok::Str(s) = self.peek().clone() else { return Err(self.expected("a quoted text")) };
                    self.bump();
                    contains = Some(s);
                } else if self.eat_kw("TEMPLATE") {
                    if self.eat_kw("IS") {
                        let not = self.eat_kw("NOT");
                        self.expect_kw("NULL")?;
                        contains = if not { None } else { Some(String::new()) };
                    } else {
                        self.expect_sym("=")?;
                        self.word()?;
                        contains = None;
                    }
                } else {
                    return Err(self.expected("DEVICE CONTAINS or TEMPLATE"));
                }
            }
            let (limit, offset) = self.limit_offset()?;
            return Ok(Statement::ShowDevices { pattern, with_database, contains, limit, offset });
        }
        if self.eat_kw("CHILD") {
            if self.eat_kw("PATHS") {
                return Ok(Statement::ShowChildPaths(self.optional_pattern()?));
            }
            self.expect_kw("NODES")?;
            return Ok(Statement::ShowChildNodes(self.optional_pattern()?));
        }
        if self.eat_kw("VERSION") {
            return Ok(Statement::ShowVersion);
        }
        if self.eat_kw("VARIABLES") {
            return Ok(Statement::ShowVariables);
        }
        if self.eat_kw("CQS") || (self.eat_kw("CONTINUOUS") && {
            self.expect_kw("QUERIES")?;
            true
        }) {
            return Ok(Statement::ShowCqs);
        }
        if self.eat_kw("QUERIES") {
            let filter = if self.eat_kw("WHERE") { Some(self.expr()?) } else { None };
            let mut order = Vec::new();
            if self.eat_kw("ORDER") {
                self.expect_kw("BY")?;
                loop {
                    let col = if self.eat_kw("TIME") { "Time".to_string() } else { self.name()? };
                    let desc = self.eat_kw("DESC");
                    if !desc {
                        self.eat_kw("ASC");
                    }
                    order.push((col, desc));
                    if !self.eat_sym(",") {
                        break;
                    }
                }
            }
            let (limit, offset) = self.limit_offset()?;
            return Ok(Statement::ShowQueries { filter, order, limit, offset });
        }
        if self.eat_kw("PIPES") {
            if self.eat_kw("WHERE") {
                if !(self.eat_kw("SINK") || self.eat_kw("CONNECTOR")) {
                    self.expect_kw("SINK")?;
                }
                self.expect_kw("USED")?;
                self.expect_kw("BY")?;
                return Ok(Statement::ShowPipes(PipeFilter::SinkUsedBy(self.name()?)));
            }
            return Ok(Statement::ShowPipes(PipeFilter::All));
        }
        if self.eat_kw("PIPE") {
            return Ok(Statement::ShowPipes(PipeFilter::Named(self.name()?)));
        }
        if self.eat_kw("CLUSTER") {
            return Ok(Statement::ShowCluster(self.eat_kw("DETAILS")));
        }
        if self.eat_kw("DATANODES") {
            return Ok(Statement::ShowNodes(true));
        }
        if self.eat_kw("CONFIGNODES") {
            return Ok(Statement::ShowNodes(false));
        }
        if self.eat_kw("TTL") {
            if self.eat_kw("ON") {
                return Ok(Statement::ShowTtl(Some(self.pattern()?)));
            }
            return Ok(Statement::ShowTtl(None));
        }
        if self.eat_kw("ALL") {
            self.expect_kw("TTL")?;
            return Ok(Statement::ShowTtl(None));
        }
        Err(self.expected("DATABASES, TIMESERIES, DEVICES, CHILD PATHS, CHILD NODES, VERSION, VARIABLES, CLUSTER, DATANODES, CONFIGNODES, TTL, PIPES, PIPE, QUERIES or CONTINUOUS QUERIES"))
    }

    fn count(&mut self) -> Result<Statement, Status> {
        self.expect_kw("COUNT")?;
        if self.eat_kw("TIMESERIES") {
            let pattern = self.optional_pattern()?;
            let filter = self.schema_where()?;
            let level = if self.eat_kw("GROUP") {
                self.expect_kw("BY")?;
                self.expect_kw("LEVEL")?;
                self.expect_sym("=")?;
                Some(self.usize()?)
            } else {
                None
            };
            return Ok(Statement::CountTimeseries { pattern, filter, level });
        }
        if self.eat_kw("NODES") {
            let pattern = self.pattern()?;
            self.expect_kw("LEVEL")?;
            self.expect_sym("=")?;
            return Ok(Statement::CountNodes { pattern, level: self.usize()? });
        }
        if self.eat_kw("DEVICES") {
            return Ok(Statement::CountDevices(self.optional_pattern()?));
        }
        if self.eat_kw("DATABASES") || (self.eat_kw("STORAGE") && { self.expect_kw("GROUP")?; true }) {
            return Ok(Statement::CountDatabases(self.optional_pattern()?));
        }
        Err(self.expected("TIMESERIES, DEVICES, NODES or DATABASES"))
    }

    /// `[WHERE cond]` of SHOW/COUNT TIMESERIES: conditions on tags, attributes, path and type,
    /// joined with AND/OR.
    fn schema_where(&mut self) -> Result<Option<SchemaFilter>, Status> {
        if !self.eat_kw("WHERE") {
            return Ok(None);
        }
        self.schema_or().map(Some)
    }

    fn schema_or(&mut self) -> Result<SchemaFilter, Status> {
        let mut l = self.schema_and()?;
        while self.eat_kw("OR") || self.eat_sym("||") {
            let r = self.schema_and()?;
            l = SchemaFilter::Or(Box::new(l), Box::new(r));
        }
        Ok(l)
    }

    fn schema_and(&mut self) -> Result<SchemaFilter, Status> {
        let mut l = self.schema_term()?;
        while self.eat_kw("AND") || self.eat_sym("&&") {
            let r = self.schema_term()?;
            l = SchemaFilter::And(Box::new(l), Box::new(r));
        }
        Ok(l)
    }

    fn schema_term(&mut self) -> Result<SchemaFilter, Status> {
        if self.eat_sym("(") {
            let f = self.schema_or()?;
            self.expect_sym(")")?;
            return Ok(f);
        }
        if (self.is_kw("TAGS") || self.is_kw("ATTRIBUTES")) && self.is_sym_at(1, "(") {
            let tags = self.is_kw("TAGS");
            self.bump();
            self.bump();
            let key = self.word()?;
            self.expect_sym(")")?;
            let at = self.cur().start;
            let contains = self.eat_kw("CONTAINS");
            if !contains {
                self.expect_sym("=")?;
            }
            let value = self.word()?;
            return match (tags, contains) {
                (true, false) => Ok(SchemaFilter::TagEquals(key, value)),
                (true, true) => Ok(SchemaFilter::TagContains(key, value)),
                (false, false) => Ok(SchemaFilter::AttributeEquals(key, value)),
                (false, true) => Err(error_at(self.sql, at, "attributes support only '=' (CONTAINS works on tags)")),
            };
        }
        if self.is_kw("TIMESERIES") && self.is_kw_at(1, "CONTAINS") {
            self.bump();
            self.bump();
            return Ok(SchemaFilter::PathContains(self.word()?));
        }
        if self.is_kw("DATATYPE") && self.is_sym_at(1, "=") {
            self.bump();
            self.bump();
            let at = self.cur().start;
            let name = self.word()?;
            let t = DataType::parse(&name).ok_or_else(|| error_at(self.sql, at, format!("unknown data type '{name}'")))?;
            return Ok(SchemaFilter::DataType(t));
        }
        // IoTDB's older form: `key = 'value'` / `key CONTAINS 'value'` on tags.
        let key = self.word()?;
        if self.eat_kw("CONTAINS") {
            return Ok(SchemaFilter::TagContains(key, self.word()?));
        }
        if !self.eat_sym("=") && !self.eat_sym("==") {
            return Err(self.expected("'=' or CONTAINS"));
        }
        Ok(SchemaFilter::TagEquals(key, self.word()?))
    }

    // ---- DELETE / DROP ----

    fn delete(&mut self) -> Result<Statement, Status> {
        self.expect_kw("DELETE")?;
        if self.eat_kw("DATABASE") || (self.eat_kw("STORAGE") && { self.expect_kw("GROUP")?; true }) {
            return Ok(Statement::DeleteDatabase(self.patterns()?));
        }
        if self.eat_kw("TIMESERIES") {
            return Ok(Statement::DropTimeseries(self.patterns()?));
        }
        self.expect_kw("FROM")?;
        let patterns = self.patterns()?;
        let filter = if self.eat_kw("WHERE") { Some(self.expr()?) } else { None };
        Ok(Statement::Delete { patterns, filter })
    }

    fn drop(&mut self) -> Result<Statement, Status> {
        self.expect_kw("DROP")?;
        if self.eat_kw("CQ") || (self.eat_kw("CONTINUOUS") && {
            self.expect_kw("QUERY")?;
            true
        }) {
            return Ok(Statement::DropCq(self.name()?));
        }
        if self.eat_kw("DATABASE") {
            return Ok(Statement::DeleteDatabase(self.patterns()?));
        }
        if self.eat_kw("TIMESERIES") {
            return Ok(Statement::DropTimeseries(self.patterns()?));
        }
        if self.eat_kw("PIPE") {
            let if_exists = self.if_exists()?;
            return Ok(Statement::DropPipe { name: self.name()?, if_exists });
        }
        Err(self.expected("DATABASE, TIMESERIES or PIPE"))
    }

    // ---- INSERT ----

    fn insert(&mut self) -> Result<Statement, Status> {
        self.expect_kw("INSERT")?;
        self.expect_kw("INTO")?;
        let device = self.path()?;
        self.expect_sym("(")?;
        let mut measurements = Vec::new();
        let mut has_time = false;
        loop {
            let at = self.cur().start;
            let n = self.node(false)?;
            if measurements.is_empty() && !has_time && (n.eq_ignore_ascii_case("timestamp") || n.eq_ignore_ascii_case("time")) {
                has_time = true;
            } else {
                if n.contains('*') {
                    return Err(error_at(self.sql, at, "wildcards are not allowed in INSERT"));
                }
                measurements.push(n);
            }
            if self.eat_sym(")") {
                break;
            }
            self.expect_sym(",")?;
        }
        if measurements.is_empty() {
            return Err(self.error("INSERT needs at least one measurement"));
        }
        let aligned = self.eat_kw("ALIGNED");
        self.expect_kw("VALUES")?;
        let mut rows = Vec::new();
        loop {
            let row_at = self.cur().start;
            self.expect_sym("(")?;
            let time = if has_time {
                let t = self.additive()?;
                self.expect_sym(",")?;
                t
            } else {
                Expr::Call("now".into(), vec![])
            };
            let mut vals = Vec::new();
            loop {
                vals.push(self.literal_value()?);
                if self.eat_sym(")") {
                    break;
                }
                self.expect_sym(",")?;
            }
            if vals.len() != measurements.len() {
                return Err(error_at(
                    self.sql,
                    row_at,
                    format!("this row has {} values but {} measurements were named", vals.len(), measurements.len()),
                ));
            }
            rows.push((time, vals));
            if !self.eat_sym(",") {
                break;
            }
        }
        Ok(Statement::Insert { device, aligned, measurements, rows })
    }

    fn literal_value(&mut self) -> Result<Literal, Status> {
        let neg = if self.eat_sym("-") {
            true
        } else {
            self.eat_sym("+");
            false
        };
        let at = self.cur().start;
        let t = self.bump();
        let lit = match t.tok {
            Tok::Int(s) => match s.parse::<i64>() {
                Ok(v) => Literal::Int(if neg { -v } else { v }),
                Err(_) => Literal::Float(format!("{}{s}", if neg { "-" } else { "" }).parse().unwrap_or(f64::INFINITY)),
            },
            Tok::Float(s) => Literal::Float(format!("{}{s}", if neg { "-" } else { "" }).parse().map_err(|_| error_at(self.sql, at, "bad number"))?),
            Tok::Str(s) if !neg => Literal::Str(s),
            Tok::DateTime(s) if !neg => Literal::DateTime(s),
            Tok::Ident(s) if !neg && (s == "X" || s == "x") && matches!(self.peek(), Tok::Str(_)) && self.cur().start == t.end => {
                let Tok::Str(hex) = self.bump().tok else { unreachable!() };
                match duet_common::types::Value::parse_as(&format!("0x{hex}"), DataType::Blob) {
                    Ok(duet_common::types::Value::Bytes(b)) => Literal::Blob(b),
                    _ => return Err(error_at(self.sql, at, "bad hex blob literal")),
                }
            }
            Tok::Ident(s) if !neg && s.eq_ignore_ascii_case("true") => Literal::Bool(true),
            Tok::Ident(s) if !neg && s.eq_ignore_ascii_case("false") => Literal::Bool(false),
            Tok::Ident(s) if !neg && s.eq_ignore_ascii_case("null") => Literal::Null,
            Tok::Ident(s) if s.eq_ignore_ascii_case("nan") => Literal::Float(f64::NAN),
            Tok::Ident(s) if s.eq_ignore_ascii_case("infinity") || s.eq_ignore_ascii_case("inf") => {
                Literal::Float(if neg { f64::NEG_INFINITY } else { f64::INFINITY })
            }
            Tok::Ident(s) if !neg && is_duration(&s) => Literal::Duration(s),
            other => return Err(error_at(self.sql, at, format!("mismatched input '{}' expecting a value", other.describe()))),
        };
        Ok(lit)
    }

    // ---- SELECT ----

    fn select(&mut self) -> Result<Query, Status> {
        self.expect_kw("SELECT")?;
        // `LAST` starts a last-point query unless it is itself the selected path (`select last from`).
        let last = self.is_kw("LAST") && !matches!(self.peek_at(1), Tok::Sym("(" | "," | ".")) && !self.is_kw_at(1, "FROM");
        if last {
            self.bump();
        }
        let mut items = Vec::new();
        loop {
            let start = self.cur().start;
            let expr = self.expr()?;
            let end = self.toks[self.pos - 1].end;
            let text = self.sql[start..end].to_string();
            let alias = if self.eat_kw("AS") { Some(self.node(false)?) } else { None };
            items.push(SelectItem { expr, alias, text });
            if !self.eat_sym(",") {
                break;
            }
        }
        let into = if self.eat_kw("INTO") {
            let mut items = vec![self.target_item()?];
            while self.eat_sym(",") {
                items.push(self.target_item()?);
            }
            Some(items)
        } else {
            None
        };
        self.expect_kw("FROM")?;
        let from = self.patterns()?;
        let select = Select { items, from, filter: None, desc: false, limit: None, offset: 0, slimit: None, soffset: 0, align_by_device: false };
        let mut q = Query { last, into, ..Query::plain(select) };
        if self.eat_kw("WHERE") {
            q.select.filter = Some(self.expr()?);
        }
        loop {
            let at = self.cur().start;
            if self.eat_kw("GROUP") {
                self.expect_kw("BY")?;
                if q.group_by.is_some() {
                    return Err(error_at(self.sql, at, "GROUP BY is given twice"));
                }
                q.group_by = Some(self.group_by()?);
            } else if self.eat_kw("HAVING") {
                q.having = Some(self.expr()?);
            } else if self.eat_kw("FILL") {
                q.fill = Some(self.fill()?);
            } else if self.eat_kw("ORDER") {
                self.expect_kw("BY")?;
                if self.eat_kw("TIMESERIES") {
                    q.order_by_timeseries = Some(self.asc_desc());
                } else {
                    let mut keys = Vec::new();
                    loop {
                        let key = if (self.is_kw("TIME") || self.is_kw("TIMESTAMP")) && !self.is_sym_at(1, ".") {
                            self.bump();
                            SortKey::Time
                        } else if self.is_kw("DEVICE") && !self.is_sym_at(1, ".") {
                            self.bump();
                            SortKey::Device
                        } else {
                            SortKey::Expr(self.expr()?)
                        };
                        let desc = self.asc_desc();
                        let nulls_first = if self.eat_kw("NULLS") {
                            if self.eat_kw("FIRST") {
                                true
                            } else {
                                self.expect_kw("LAST")?;
                                false
                            }
                        } else {
                            false
                        };
                        keys.push(OrderKey { key, desc, nulls_first });
                        if !self.eat_sym(",") {
                            break;
                        }
                    }
                    // A lone TIME is the order rows are read in (streamed); anything else sorts.
                    match keys.as_slice() {
                        [OrderKey { key: SortKey::Time, desc, nulls_first: false }] => q.select.desc = *desc,
                        _ => q.order_by = keys,
                    }
                }
            } else if self.eat_kw("LIMIT") {
                q.select.limit = Some(self.usize()?);
            } else if self.eat_kw("OFFSET") {
                q.select.offset = self.usize()?;
            } else if self.eat_kw("SLIMIT") {
                q.select.slimit = Some(self.usize()?);
            } else if self.eat_kw("SOFFSET") {
                q.select.soffset = self.usize()?;
            } else if self.eat_kw("ALIGN") {
                self.expect_kw("BY")?;
                if self.eat_kw("DEVICE") {
                    q.select.align_by_device = true;
                } else {
                    self.expect_kw("TIME")?;
                }
            } else {
                break;
            }
        }
        Ok(q)
    }

    /// A node of a SELECT INTO target: a name, or the placeholder `::`.
    fn target_node(&mut self) -> Result<String, Status> {
        if self.is_sym(":") && self.is_sym_at(1, ":") {
            self.bump();
            self.bump();
            return Ok("::".into());
        }
        match self.peek().clone() {
            Tok::Ident(s) | Tok::Quoted(s) | Tok::Int(s) => {
                self.bump();
                Ok(s)
            }
            _ => Err(self.expected("a node name or ::")),
        }
    }

    /// `[ALIGNED] device(measurement, ...)` of SELECT INTO.
    fn target_item(&mut self) -> Result<IntoItem, Status> {
        let aligned = self.eat_kw("ALIGNED");
        let mut device = vec![self.target_node()?];
        while self.eat_sym(".") {
            device.push(self.target_node()?);
        }
        self.expect_sym("(")?;
        let mut measurements = vec![self.target_node()?];
        while self.eat_sym(",") {
            measurements.push(self.target_node()?);
        }
        self.expect_sym(")")?;
        Ok(IntoItem { aligned, device, measurements })
    }

    /// `DESC` gives true; `ASC` or nothing gives false.
    fn asc_desc(&mut self) -> bool {
        if self.eat_kw("DESC") {
            return true;
        }
        self.eat_kw("ASC");
        false
    }

    /// After `GROUP BY`: `([s, e), interval[, step])`, `(interval[, step])`, `LEVEL = n[, m]`, or a
    /// time group followed by `, LEVEL = n`.
    /// `true` or `false` (any case), as an option's value.
    fn true_false(&mut self) -> Result<bool, Status> {
        match self.word()?.to_ascii_lowercase().as_str() {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(self.expected("true or false")),
        }
    }

    fn group_by(&mut self) -> Result<GroupBy, Status> {
        let mut g = GroupBy { time: None, levels: Vec::new(), tags: Vec::new(), events: None };
        if self.is_kw("SESSION") && self.is_sym_at(1, "(") {
            self.bump();
            self.bump();
            g.events = Some(EventGroup::Session(self.duration_word()?));
            self.expect_sym(")")?;
            return Ok(g);
        }
        if (self.is_kw("VARIATION") || self.is_kw("CONDITION")) && self.is_sym_at(1, "(") {
            let variation = self.is_kw("VARIATION");
            self.bump();
            self.bump();
            let expr = self.expr()?;
            let mut number: Option<f64> = None;
            let mut op = BinOp::Ge;
            let mut ignore_null = true;
            while self.eat_sym(",") {
                if (self.is_kw("ignoreNull") || self.is_kw("ignoringNull")) && self.is_sym_at(1, "=") {
                    self.bump();
                    self.bump();
                    ignore_null = self.true_false()?;
                    continue;
                }
                if !variation && self.eat_kw("KEEP") {
                    op = match self.peek() {
                        Tok::Sym(">") => BinOp::Gt,
                        Tok::Sym(">=") => BinOp::Ge,
                        Tok::Sym("=") | Tok::Sym("==") => BinOp::Eq,
                        Tok::Sym("<") => BinOp::Lt,
                        Tok::Sym("<=") => BinOp::Le,
                        _ => return Err(self.expected("a comparison after KEEP")),
                    };
                    self.bump();
                } else if !variation {
                    op = BinOp::Eq;
                }
                let neg = self.eat_sym("-");
                let v: f64 = match self.peek().clone() {
                    Tok::Int(s) | Tok::Float(s) => {
                        self.bump();
                        s.parse().map_err(|_| self.expected("a number"))?
                    }
                    _ => return Err(self.expected(if variation { "a delta or ignoreNull=..." } else { "KEEP op n or ignoreNull=..." })),
                };
                number = Some(if neg { -v } else { v });
            }
            self.expect_sym(")")?;
            g.events = Some(if variation {
                EventGroup::Variation { expr, delta: number.unwrap_or(0.0).abs(), ignore_null }
            } else {
                let keep = number.ok_or_else(|| self.expected("a KEEP condition (such as KEEP>=2)"))?;
                if keep < 0.0 || keep.fract() != 0.0 {
                    return Err(self.expected("a whole number of rows to KEEP"));
                }
                EventGroup::Condition { expr, op, keep: keep as usize, ignore_null }
            });
            return Ok(g);
        }
        if self.is_kw("COUNT") && self.is_sym_at(1, "(") {
            self.bump();
            self.bump();
            let path = self.nodes(false)?;
            self.expect_sym(",")?;
            let size = self.usize()?;
            if size == 0 {
                return Err(self.expected("a group size above 0"));
            }
            let mut ignore_null = true;
            if self.eat_sym(",") {
                let k = self.word()?;
                if !k.eq_ignore_ascii_case("ignoreNull") {
                    return Err(self.expected("ignoreNull=true|false"));
                }
                self.expect_sym("=")?;
                ignore_null = self.true_false()?;
            }
            self.expect_sym(")")?;
            g.events = Some(EventGroup::Count { path, size, ignore_null });
            return Ok(g);
        }
        if self.is_sym("(") {
            self.bump();
            g.time = Some(self.time_group()?);
            self.expect_sym(")")?;
            if !self.eat_sym(",") {
                return Ok(g);
            }
        }
        if self.eat_kw("TAGS") {
            self.expect_sym("(")?;
            g.tags.push(self.word()?);
            while self.eat_sym(",") {
                g.tags.push(self.word()?);
            }
            self.expect_sym(")")?;
            return Ok(g);
        }
        if !self.eat_kw("LEVEL") {
            return Err(self.expected(if g.time.is_some() { "LEVEL or TAGS" } else { "'(', LEVEL or TAGS" }));
        }
        self.expect_sym("=")?;
        g.levels.push(self.usize()?);
        while self.is_sym(",") && matches!(self.peek_at(1), Tok::Int(_)) {
            self.bump();
            g.levels.push(self.usize()?);
        }
        Ok(g)
    }

    fn time_group(&mut self) -> Result<TimeGroup, Status> {
        let mut range = None;
        let mut left_open = false;
        if self.is_sym("[") || self.is_sym("(") {
            let open_at = self.cur().start;
            left_open = self.is_sym("(");
            self.bump();
            let start = self.additive()?;
            self.expect_sym(",")?;
            let end = self.additive()?;
            let close_at = self.cur().start;
            let closed_right = if self.eat_sym("]") {
                true
            } else if self.eat_sym(")") {
                false
            } else {
                return Err(self.expected("')' or ']'"));
            };
            if closed_right != left_open {
                let at = if left_open { open_at } else { close_at };
                return Err(error_at(self.sql, at, "a GROUP BY time range must be [start, end) or (start, end]"));
            }
            range = Some((start, end));
            self.expect_sym(",")?;
        }
        let interval = self.duration_word()?;
        let step = if self.eat_sym(",") { Some(self.duration_word()?) } else { None };
        Ok(TimeGroup { range, left_open, interval, step })
    }

    /// A duration such as `10m` or `1mo`, or a bare number of time units.
    fn duration_word(&mut self) -> Result<String, Status> {
        match self.peek().clone() {
            Tok::Ident(s) if is_duration(&s) => {
                self.bump();
                Ok(s)
            }
            Tok::Int(s) => {
                self.bump();
                Ok(s)
            }
            _ => Err(self.expected("a duration such as 10m, 1h or 1mo")),
        }
    }

    fn fill(&mut self) -> Result<Fill, Status> {
        self.expect_sym("(")?;
        let f = if self.eat_kw("PREVIOUS") {
            Fill::Previous(if self.eat_sym(",") { Some(self.duration_word()?) } else { None })
        } else if self.eat_kw("LINEAR") {
            Fill::Linear
        } else {
            Fill::Value(self.literal_value()?)
        };
        self.expect_sym(")")?;
        Ok(f)
    }

    // ---- expressions ----

    /// Parses an expression (OR has the lowest precedence).
    fn expr(&mut self) -> Result<Expr, Status> {
        self.down()?;
        let mut l = self.and()?;
        while self.eat_kw("OR") || self.eat_sym("||") {
            let hl = self.height;
            let r = self.and()?;
            self.grew(&[hl, self.height])?;
            l = Expr::Binary(BinOp::Or, Box::new(l), Box::new(r));
        }
        self.up(1);
        Ok(l)
    }

    fn and(&mut self) -> Result<Expr, Status> {
        let mut l = self.not()?;
        while self.eat_kw("AND") || self.eat_sym("&&") {
            let hl = self.height;
            let r = self.not()?;
            self.grew(&[hl, self.height])?;
            l = Expr::Binary(BinOp::And, Box::new(l), Box::new(r));
        }
        Ok(l)
    }

    fn not(&mut self) -> Result<Expr, Status> {
        if self.eat_kw("NOT") || self.eat_sym("!") {
            self.down()?;
            let e = Expr::Not(Box::new(self.not()?));
            self.grew(&[self.height])?;
            self.up(1);
            return Ok(e);
        }
        self.comparison()
    }

    fn comparison(&mut self) -> Result<Expr, Status> {
        let l = self.additive()?;
        let hl = self.height;
        let op = match self.peek() {
            Tok::Sym("=") | Tok::Sym("==") => Some(BinOp::Eq),
            Tok::Sym("!=") | Tok::Sym("<>") => Some(BinOp::Ne),
            Tok::Sym("<") => Some(BinOp::Lt),
            Tok::Sym("<=") => Some(BinOp::Le),
            Tok::Sym(">") => Some(BinOp::Gt),
            Tok::Sym(">=") => Some(BinOp::Ge),
            _ => None,
        };
        if let Some(op) = op {
            self.bump();
            let r = self.additive()?;
            self.grew(&[hl, self.height])?;
            return Ok(Expr::Binary(op, Box::new(l), Box::new(r)));
        }
        let not = self.is_kw("NOT") && ["BETWEEN", "IN", crate::scalar::LIKE, crate::scalar::REGEXP].iter().any(|k| self.is_kw_at(1, k));
        if not {
            self.bump();
        }
        if self.eat_kw("BETWEEN") {
            let lo = self.additive()?;
            let hlo = self.height;
            self.expect_kw("AND")?;
            let hi = self.additive()?;
            self.grew(&[hl, hlo, self.height])?;
            return Ok(Expr::Between { expr: Box::new(l), lo: Box::new(lo), hi: Box::new(hi), not });
        }
        if self.eat_kw("IN") {
            self.expect_sym("(")?;
            let mut vals = vec![self.literal_value()?];
            while self.eat_sym(",") {
                vals.push(self.literal_value()?);
            }
            self.expect_sym(")")?;
            self.grew(&[hl])?;
            return Ok(Expr::In(Box::new(l), vals, not));
        }
        if self.eat_kw("IS") {
            let not = self.eat_kw("NOT");
            self.expect_kw("NULL")?;
            self.grew(&[hl])?;
            return Ok(Expr::IsNull(Box::new(l), not));
        }
        // `x [NOT] LIKE 'p'` and `x [NOT] REGEXP 'p'`: bound as the scalar functions of those names.
        if let Some(kw) = [crate::scalar::LIKE, crate::scalar::REGEXP].into_iter().find(|k| self.is_kw(k)) {
            self.bump();
            let Tok::Str(p) = self.peek().clone() else { return Err(self.expected("a quoted pattern")) };
            self.bump();
            self.grew(&[hl])?;
            let e = Expr::Call(kw.to_string(), vec![l, Expr::Lit(Literal::Str(p))]);
            return Ok(if not { Expr::Not(Box::new(e)) } else { e });
        }
        self.height = hl;
        Ok(l)
    }

    fn additive(&mut self) -> Result<Expr, Status> {
        let mut l = self.multiplicative()?;
        loop {
            let op = if self.eat_sym("+") {
                BinOp::Add
            } else if self.eat_sym("-") {
                BinOp::Sub
            } else {
                return Ok(l);
            };
            let hl = self.height;
            let r = self.multiplicative()?;
            self.grew(&[hl, self.height])?;
            l = Expr::Binary(op, Box::new(l), Box::new(r));
        }
    }

    fn multiplicative(&mut self) -> Result<Expr, Status> {
        let mut l = self.unary()?;
        loop {
            let op = if self.eat_sym("*") {
                BinOp::Mul
            } else if self.eat_sym("/") {
                BinOp::Div
            } else if self.eat_sym("%") {
                BinOp::Mod
            } else {
                return Ok(l);
            };
            let hl = self.height;
            let r = self.unary()?;
            self.grew(&[hl, self.height])?;
            l = Expr::Binary(op, Box::new(l), Box::new(r));
        }
    }

    fn unary(&mut self) -> Result<Expr, Status> {
        let neg = if self.eat_sym("-") {
            true
        } else if self.eat_sym("+") {
            false
        } else {
            return self.primary();
        };
        self.down()?;
        let e = self.unary()?;
        self.up(1);
        if !neg {
            return Ok(e);
        }
        Ok(match e {
            Expr::Lit(Literal::Int(v)) => Expr::Lit(Literal::Int(-v)),
            Expr::Lit(Literal::Float(v)) => Expr::Lit(Literal::Float(-v)),
            e => {
                self.grew(&[self.height])?;
                Expr::Neg(Box::new(e))
            }
        })
    }

    fn primary(&mut self) -> Result<Expr, Status> {
        // A leaf unless a branch below says otherwise.
        self.height = 1;
        match self.peek().clone() {
            Tok::Sym("(") => {
                self.bump();
                let e = self.expr()?;
                self.expect_sym(")")?;
                Ok(e)
            }
            Tok::Int(_) | Tok::Float(_) | Tok::Str(_) | Tok::DateTime(_) => Ok(Expr::Lit(self.literal_value()?)),
            Tok::Sym("*") | Tok::Sym("**") | Tok::Quoted(_) => Ok(Expr::Path(self.nodes(false)?)),
            Tok::Ident(s) => {
                let up = s.to_ascii_uppercase();
                if (up == "TIME" || up == "TIMESTAMP") && !self.is_sym_at(1, ".") {
                    self.bump();
                    return Ok(Expr::Time);
                }
                if matches!(up.as_str(), "TRUE" | "FALSE" | "NULL" | "NAN") || is_duration(&s) {
                    return Ok(Expr::Lit(self.literal_value()?));
                }
                if (up == "X") && matches!(self.peek_at(1), Tok::Str(_)) {
                    return Ok(Expr::Lit(self.literal_value()?));
                }
                if up == "CAST" && self.is_sym_at(1, "(") {
                    // CAST(x AS type): the type goes along as a second argument.
                    self.bump();
                    self.bump();
                    let e = self.expr()?;
                    let h = self.height;
                    self.expect_kw("AS")?;
                    let t = self.word()?;
                    self.expect_sym(")")?;
                    self.grew(&[h])?;
                    return Ok(Expr::Call(s, vec![e, Expr::Lit(Literal::Str(t))]));
                }
                if self.is_sym_at(1, "(") {
                    self.bump();
                    self.bump();
                    let mut args = Vec::new();
                    let mut tallest = 0;
                    if !self.eat_sym(")") {
                        loop {
                            args.push(self.expr()?);
                            tallest = tallest.max(self.height);
                            if self.eat_sym(")") {
                                break;
                            }
                            self.expect_sym(",")?;
                        }
                    }
                    self.grew(&[tallest])?;
                    return Ok(Expr::Call(s, args));
                }
                if RESERVED_AFTER_PATH.contains(&up.as_str()) {
                    return Err(self.expected("an expression"));
                }
                Ok(Expr::Path(self.nodes(false)?))
            }
            _ => Err(self.expected("an expression")),
        }
    }
}

/// Whether a word is a duration literal such as `1d`, `30m`, `1h30m`, `100ms`.
pub fn is_duration(s: &str) -> bool {
    duration_parts(s).is_some()
}

/// Splits a duration literal into (amount, unit) parts.
pub fn duration_parts(s: &str) -> Option<Vec<(i64, String)>> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut parts = Vec::new();
    while i < b.len() {
        let st = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if st == i {
            return None;
        }
        let n: i64 = s[st..i].parse().ok()?;
        let us = i;
        while i < b.len() && b[i].is_ascii_alphabetic() {
            i += 1;
        }
        let unit = s[us..i].to_ascii_lowercase();
        if !matches!(unit.as_str(), "y" | "mo" | "w" | "d" | "h" | "m" | "s" | "ms" | "us" | "ns") {
            return None;
        }
        parts.push((n, unit));
    }
    if parts.is_empty() {
        None
    } else {
        Some(parts)
    }
}

/// Maps a status produced outside the parser to the SQL error code when it came from a path.
pub fn path_error(e: Status) -> Status {
    if e.code == StatusCode::IllegalPath {
        Status::new(StatusCode::SqlParseError, e.message)
    } else {
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_everyday_statements() {
        assert!(matches!(parse("create database root.db").unwrap(), Statement::CreateDatabase(_)));
        let Statement::CreateTimeseries(s) =
            parse("CREATE TIMESERIES root.db.d.s(temp) WITH DATATYPE=FLOAT, ENCODING=RLE, COMPRESSOR=SNAPPY TAGS(unit=c) ATTRIBUTES(owner='x')").unwrap()
        else {
            panic!()
        };
        assert_eq!((s.dtype, s.encoding, s.alias.as_deref()), (DataType::Float, Encoding::Rle, Some("temp")));
        assert_eq!(s.tags, vec![("unit".into(), "c".into())]);
        let Statement::CreateAlignedTimeseries(v) = parse("create aligned timeseries root.db.g(lat FLOAT encoding=PLAIN compressor=SNAPPY, lon DOUBLE)").unwrap() else {
            panic!()
        };
        assert_eq!(v.len(), 2);
        let Statement::CreateAlignedTimeseries(v) = parse("create aligned timeseries root.db.g(lat FLOAT, lon FLOAT, alt INT32)").unwrap() else { panic!() };
        assert_eq!(v.len(), 3);
        assert_eq!(v[1].path.to_string(), "root.db.g.lon");
        let Statement::Insert { rows, measurements, .. } = parse("insert into root.db.d(timestamp, a, b) values (1, 1.5, 'x'), (2017-11-01T00:00:00, -2, null)").unwrap()
        else {
            panic!()
        };
        assert_eq!(measurements, vec!["a", "b"]);
        assert_eq!(rows[1].1, vec![Literal::Int(-2), Literal::Null]);
        let Statement::Query(q) = parse("select s1, d*.s2 from root.db.** where time >= 10 and s1 > 2 order by time desc limit 5 offset 2").unwrap() else {
            panic!()
        };
        assert!(q.select.desc && q.select.limit == Some(5) && q.select.offset == 2);
        assert!(matches!(parse("DELETE FROM root.db.d.s WHERE time < 5").unwrap(), Statement::Delete { .. }));
        assert!(matches!(parse("show cluster details").unwrap(), Statement::ShowCluster(true)));
        assert!(matches!(parse("SHOW DATANODES").unwrap(), Statement::ShowNodes(true)));
        assert!(matches!(parse("show confignodes").unwrap(), Statement::ShowNodes(false)));
    }

    #[test]
    fn errors_name_the_position() {
        let e = parse("select s1 frm root.db").unwrap_err();
        assert_eq!(e.code, StatusCode::SqlParseError);
        assert!(e.message.starts_with("line 1:10"), "{}", e.message);
        let e = parse("create timeseries root.db.d.s with datatype=FLOAT,\n encoding=NOPE").unwrap_err();
        assert!(e.message.starts_with("line 2:10"), "{}", e.message);
        assert!(parse("insert into root.d(timestamp, a) values (1, 2, 3)").is_err());
    }

    #[test]
    fn expressions_too_deep_for_the_stack_are_refused() {
        let nested = |n: usize| format!("select s from root.d where {}s > 1{}", "(".repeat(n), ")".repeat(n));
        assert!(matches!(parse(&nested(150)), Ok(Statement::Query(_))));
        // Long flat chains are fine: a condition of 1,500 ORs.
        assert!(matches!(parse(&format!("select s from root.d where {}", vec!["s = 1"; 1500].join(" or "))), Ok(Statement::Query(_))));
        for sql in [
            nested(100_000),
            format!("select s from root.d where {}s > 1", "not ".repeat(100_000)),
            format!("select {}1 from root.d", "- ".repeat(100_000)),
            format!("select s{} from root.d", " + s".repeat(100_000)),
            format!("select s from root.d where {}", vec!["s > 1"; 100_000].join(" or ")),
            // Chains of chains: the parser recurses only a hundred levels, the tree is 10,000 high.
            format!("select {} from root.d", (0..100).fold("s".to_string(), |e, _| format!("({e}{})", " + s".repeat(99)))),
        ] {
            let e = parse(&sql).unwrap_err();
            assert_eq!(e.code, StatusCode::SqlParseError);
            assert!(e.message.contains("too deeply"), "{}", &e.message[..e.message.len().min(200)]);
        }
    }

    #[test]
    fn pipe_statements_and_the_seed_typo() {
        let ok = "create pipe AB\nwith source (\n'source.mode.double-living' ='true'\n)\nwith sink (\n'sink'='iotdb-thrift-sink',\n'sink.ip'='iotdb-2',\n'sink.port'='6667',\n)";
        let Statement::CreatePipe(p) = parse(ok).unwrap() else { panic!() };
        assert_eq!(p.name, "AB");
        assert_eq!(p.source, vec![("source.mode.double-living".into(), "true".into())]);
        assert_eq!(p.sink.len(), 3);
        // The deployment guide's first statement lacks the ')' closing the source.
        let seed = "create pipe AB\nwith source (\n'source.mode.double-living' ='true'\nwith sink (\n'sink'='iotdb-thrift-sink',\n'sink.ip'='iotdb-2',\n'sink.port'='6667'\n)";
        let e = parse(seed).unwrap_err();
        assert!(e.message.starts_with("line 4:0 mismatched input 'with' expecting ',' or ')'"), "{}", e.message);
        assert!(!is_incomplete(seed), "the CLI sends it instead of waiting for more lines");
        assert!(is_incomplete("create pipe AB\nwith source ("));
        assert!(matches!(parse("create pipe if not exists p with connector('connector'='do-nothing-sink')").unwrap(), Statement::CreatePipe(PipeSpec { if_not_exists: true, .. })));
        assert!(parse("create pipe p with source('a'='b')").is_err());
        assert_eq!(parse("drop pipe if exists p").unwrap(), Statement::DropPipe { name: "p".into(), if_exists: true });
        assert_eq!(parse("show pipes").unwrap(), Statement::ShowPipes(PipeFilter::All));
        assert_eq!(parse("SHOW PIPES WHERE SINK USED BY ab").unwrap(), Statement::ShowPipes(PipeFilter::SinkUsedBy("ab".into())));
        assert_eq!(parse("show pipes where connector used by ab").unwrap(), Statement::ShowPipes(PipeFilter::SinkUsedBy("ab".into())));
        assert!(parse("show pipes where source used by ab").unwrap_err().message.contains("SINK"));
        // A database, a device or the devices below a path (IoTDB 1.3.3's rules), INF included.
        for (sql, target, ttl) in [("set ttl to root.ln.** 1000", "root.ln.**", 1000), ("set ttl to root.ln 1000", "root.ln", 1000), ("SET TTL TO root.** INF", "root.**", i64::MAX)] {
            assert!(matches!(parse(sql).unwrap(), Statement::SetTtl(p, t) if p.to_string() == target && t == ttl), "{sql}");
        }
        assert!(matches!(parse("unset ttl from root.ln.**").unwrap(), Statement::UnsetTtl(p) if p.to_string() == "root.ln.**"));
        for bad in ["set ttl to root.ln.*.wt01 1000", "set ttl to root 1000", "unset ttl to root.**.x"] {
            let e = parse(bad).unwrap_err();
            assert!(e.message.contains("root.db.**") && e.message.contains("line 1:"), "{bad}: {}", e.message);
        }
        assert!(parse("set ttl to root.ln 0").unwrap_err().message.contains("INF"));
        assert_eq!(parse("check pipe AB").unwrap(), Statement::CheckPipe { name: "AB".into(), repair: false });
        assert_eq!(parse("REPAIR PIPE AB").unwrap(), Statement::CheckPipe { name: "AB".into(), repair: true });
        assert_eq!(parse("merge").unwrap(), Statement::Merge);
        assert_eq!(parse("SHOW PIPE ab").unwrap(), Statement::ShowPipes(PipeFilter::Named("ab".into())));
        assert_eq!(parse("stop pipe AB").unwrap(), Statement::StopPipe("AB".into()));
        assert!(matches!(parse("alter pipe p modify sink('sink.port'='6668')").unwrap(), Statement::AlterPipe { sink: Some((false, _)), .. }));
    }

    #[test]
    fn knows_when_a_statement_is_unfinished() {
        assert!(is_incomplete("create timeseries"));
        assert!(is_incomplete("create timeseries root.db.d.s with datatype="));
        assert!(is_incomplete("insert into root.d(time, s) values (1, 'abc"));
        assert!(!is_incomplete("show databases"));
        assert!(!is_incomplete("selec x"));
        assert!(!is_incomplete(""));
    }

    fn query(sql: &str) -> Query {
        match parse(sql) {
            Ok(Statement::Query(q)) => *q,
            other => panic!("{sql}: {other:?}"),
        }
    }

    #[test]
    fn parses_group_by_fill_having_and_last() {
        let q = query("select count(s) from root.d group by ([0, 10), 2ms, 1ms) having count(s) > 1 fill(previous, 1m) order by time desc");
        let tg = q.group_by.as_ref().unwrap().time.clone().unwrap();
        assert!(!tg.left_open && tg.interval == "2ms" && tg.step.as_deref() == Some("1ms"));
        assert_eq!(tg.range, Some((Expr::Lit(Literal::Int(0)), Expr::Lit(Literal::Int(10)))));
        assert!(q.having.is_some() && q.select.desc);
        assert_eq!(q.fill, Some(Fill::Previous(Some("1m".into()))));
        let q = query("select count(s) from root.d group by ((2024-01-01T00:00:00+08:00, now() - 1d], 1mo), level = 1, 2");
        let g = q.group_by.unwrap();
        assert!(g.time.as_ref().unwrap().left_open);
        assert_eq!(g.levels, vec![1, 2]);
        let q = query("select avg(s) from root.** group by level = 3 fill(linear)");
        assert!(q.group_by.as_ref().unwrap().time.is_none() && q.fill == Some(Fill::Linear));
        assert!(query("select count(s) from root.d group by (10m)").group_by.unwrap().time.unwrap().range.is_none());
        assert_eq!(query("select s from root.d fill(-1.5)").fill, Some(Fill::Value(Literal::Float(-1.5))));
        // LAST is a keyword only where a last-point query can start.
        let q = query("select last s1, s2 from root.d where time >= 5 order by timeseries desc");
        assert!(q.last && q.select.items.len() == 2 && q.order_by_timeseries == Some(true));
        assert!(!query("select last from root.d").last);
        assert!(!query("select last_value(s) from root.d").last);
        // Function names are kept as written.
        assert!(matches!(&query("select COUNT(s) from root.d").select.items[0].expr, Expr::Call(f, _) if f == "COUNT"));
    }

    #[test]
    fn group_by_mistakes_name_the_position() {
        let e = parse("select count(s) from root.d group by ([0, 10], 2ms)").unwrap_err();
        assert!(e.message.starts_with("line 1:44 a GROUP BY time range must be"), "{}", e.message);
        let e = parse("select count(s) from root.d\ngroup by ([0, 10), 2parsecs)").unwrap_err();
        assert!(e.message.starts_with("line 2:19 mismatched input '2parsecs' expecting a duration"), "{}", e.message);
        let e = parse("select count(s) from root.d group by level 1").unwrap_err();
        assert!(e.message.starts_with("line 1:43 mismatched input '1' expecting '='"), "{}", e.message);
        let e = parse("select s from root.d fill(sideways)").unwrap_err();
        assert!(e.message.starts_with("line 1:26"), "{}", e.message);
        assert!(is_incomplete("select count(s) from root.d group by ([0, 10),"));
    }

    #[test]
    fn parses_the_show_family() {
        let Statement::ShowTimeseries { filter: Some(f), limit: Some(1), .. } = parse("show timeseries root.** where tags(unit) = 'c' and (loc contains n or datatype = int32) limit 1").unwrap() else {
            panic!()
        };
        assert!(matches!(f, SchemaFilter::And(a, b) if *a == SchemaFilter::TagEquals("unit".into(), "c".into()) && matches!(*b, SchemaFilter::Or(..))));
        assert!(matches!(parse("count timeseries root.** group by level = 2").unwrap(), Statement::CountTimeseries { level: Some(2), .. }));
        assert!(matches!(parse("show devices root.** with database").unwrap(), Statement::ShowDevices { with_database: true, .. }));
        assert!(matches!(parse("show child paths root.ln").unwrap(), Statement::ShowChildPaths(Some(_))));
        assert!(matches!(parse("show child nodes").unwrap(), Statement::ShowChildNodes(None)));
        assert!(matches!(parse("count nodes root.** level = 2").unwrap(), Statement::CountNodes { level: 2, .. }));
        let e = parse("show timeseries where attributes(a) contains 'x'").unwrap_err();
        assert!(e.message.starts_with("line 1:36"), "{}", e.message);
    }

    #[test]
    fn passwords_are_masked_for_logs() {
        assert_eq!(redact_secrets("alter user root set password 'n3w secret'"), "alter user root set password '******'");
        let pipe = "create pipe p with sink ('sink.ip'='h', 'sink.password' = 'pw', 'password'='x', 'sink.user'='root')";
        assert_eq!(redact_secrets(pipe), "create pipe p with sink ('sink.ip'='h', 'sink.password' = '******', 'password'='******', 'sink.user'='root')");
        assert_eq!(redact_secrets("select * from root.a"), "select * from root.a");
        assert_eq!(redact_secrets("alter user root set password 'unterminated"), "<a statement with a password, not shown>");
    }

    #[test]
    fn continuous_query_and_admin_statements() {
        let sql = "create continuous query `cq-1` resample every 30s boundary 2024-01-01T00:00:00 range 2m, 30s timeout policy discard \
                   begin select max_value(t) into root.agg.::(t_max) from root.db.* group by (30s) end";
        let Statement::CreateCq(cq) = parse(sql).unwrap() else { panic!() };
        assert_eq!((cq.id.as_str(), cq.every.as_deref(), cq.discard), ("cq-1", Some("30s"), true));
        assert_eq!(cq.range, Some(("2m".to_string(), Some("30s".to_string()))));
        assert!(matches!(cq.boundary, Some(Expr::Lit(Literal::DateTime(_)))));
        assert!(cq.query.into.is_some() && cq.query.group_by.as_ref().unwrap().time.as_ref().unwrap().range.is_none());
        assert_eq!(cq.text, sql);
        let Statement::CreateCq(cq) = parse("CREATE CQ c BEGIN SELECT count(s) INTO root.a.b(c) FROM root.x GROUP BY(1h) END;").unwrap() else { panic!() };
        assert_eq!((cq.every, cq.range, cq.discard), (None, None, false));
        assert!(parse("create cq c begin select count(s) into root.a.b(c) from root.x group by(1h)").is_err(), "END is needed");
        assert_eq!(parse("drop continuous query c").unwrap(), Statement::DropCq("c".into()));
        assert_eq!(parse("show cqs").unwrap(), Statement::ShowCqs);
        assert_eq!(parse("SHOW CONTINUOUS QUERIES").unwrap(), Statement::ShowCqs);
        assert_eq!(parse("kill query 20240301_123456_00000_1").unwrap(), Statement::KillQuery(Some("20240301_123456_00000_1".into())));
        assert_eq!(parse("kill all queries").unwrap(), Statement::KillQuery(None));
        assert_eq!(parse("alter user root set password 'x y'").unwrap(), Statement::AlterUserPassword { user: "root".into(), password: "x y".into() });
        assert_eq!(parse("list user").unwrap(), Statement::ListUser);
        assert_eq!(parse("grant read_data on root.** to user u").unwrap(), Statement::AuthUnsupported("GRANT".into()));
        assert_eq!(parse("create user u 'pw'").unwrap(), Statement::AuthUnsupported("CREATE USER".into()));
    }

    #[test]
    fn splits_scripts() {
        assert_eq!(split_statements("a; b ';' c;\n-- x;\n d"), vec!["a", "b ';' c", "d"]);
    }
}
