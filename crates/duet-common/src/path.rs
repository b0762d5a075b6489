//! Series paths (`root.db.device.sensor`) and patterns with `*` (one level) and `**` (one or more).

use crate::status::{Status, StatusCode};
use std::fmt;

/// A concrete path: `root` followed by one or more nodes.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Path {
    nodes: Vec<String>,
}

fn node_needs_quotes(n: &str) -> bool {
    n.is_empty()
        || n.chars().all(|c| c.is_ascii_digit())
        || !n.chars().all(|c| c.is_alphanumeric() || c == '_' || c == ':' || c == '@' || c == '#' || c == '$' || c == '{' || c == '}')
}

/// Splits a dotted path into nodes, honouring backquoted nodes (`` root.sg.`a.b` ``).
pub fn split_nodes(text: &str) -> Result<Vec<String>, Status> {
    let mut nodes = Vec::new();
    let mut cur = String::new();
    let mut chars = text.trim().chars().peekable();
    let mut quoted_node = false;
    while let Some(c) = chars.next() {
        match c {
            '`' => {
                quoted_node = true;
                loop {
                    match chars.next() {
                        Some('`') if chars.peek() == Some(&'`') => {
                            chars.next();
                            cur.push('`');
                        }
                        Some('`') => break,
                        Some(x) => cur.push(x),
                        None => {
                            return Err(Status::new(StatusCode::IllegalPath, format!("unterminated backquote in path '{text}'")))
                        }
                    }
                }
            }
            '.' => {
                if cur.is_empty() && !quoted_node {
                    return Err(Status::new(StatusCode::IllegalPath, format!("empty node in path '{text}'")));
                }
                nodes.push(std::mem::take(&mut cur));
                quoted_node = false;
            }
            c if c.is_whitespace() => {
                return Err(Status::new(StatusCode::IllegalPath, format!("whitespace in path '{text}'; quote the node with backquotes")))
            }
            c => cur.push(c),
        }
    }
    if cur.is_empty() && !quoted_node {
        return Err(Status::new(StatusCode::IllegalPath, format!("empty node in path '{text}'")));
    }
    nodes.push(cur);
    Ok(nodes)
}

impl Path {
    /// Parses `root.a.b`; the first node must be `root` and no node may be a wildcard.
    pub fn parse(text: &str) -> Result<Path, Status> {
        let nodes = split_nodes(text)?;
        Path::from_nodes(nodes).map_err(|m| Status::new(StatusCode::IllegalPath, format!("{m} in path '{text}'")))
    }
    /// Builds a path from nodes, checking that it starts at `root` and has no wildcard.
    pub fn from_nodes(nodes: Vec<String>) -> Result<Path, String> {
        if nodes.first().map(|s| s.as_str()) != Some("root") {
            return Err("a path must start with 'root'".into());
        }
        if nodes.len() < 2 {
            return Err("a path needs at least one node after 'root'".into());
        }
        if nodes.iter().any(|n| n.contains('*')) {
            return Err("wildcards are not allowed here".into());
        }
        Ok(Path { nodes })
    }
    /// The nodes, `root` first.
    pub fn nodes(&self) -> &[String] {
        &self.nodes
    }
    /// The last node (a measurement name for a series path).
    pub fn last(&self) -> &str {
        self.nodes.last().map(|s| s.as_str()).unwrap_or("root")
    }
    /// The path without its last node.
    pub fn parent(&self) -> Option<Path> {
        if self.nodes.len() <= 2 {
            return None;
        }
        Some(Path { nodes: self.nodes[..self.nodes.len() - 1].to_vec() })
    }
    /// This path extended by one node.
    pub fn child(&self, name: &str) -> Path {
        let mut nodes = self.nodes.clone();
        nodes.push(name.to_string());
        Path { nodes }
    }
    /// Whether `self` equals `prefix` or lies below it.
    pub fn starts_with(&self, prefix: &Path) -> bool {
        self.nodes.len() >= prefix.nodes.len() && self.nodes[..prefix.nodes.len()] == prefix.nodes[..]
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, n) in self.nodes.iter().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            if i > 0 && node_needs_quotes(n) {
                write!(f, "`{}`", n.replace('`', "``"))?;
            } else {
                f.write_str(n)?;
            }
        }
        Ok(())
    }
}

/// A path pattern: nodes that may be `*`, `**` or contain `*` as a glob.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PathPattern {
    nodes: Vec<String>,
}

impl PathPattern {
    /// Parses a pattern such as `root.db.*.s1` or `root.**`.
    pub fn parse(text: &str) -> Result<PathPattern, Status> {
        let nodes = split_nodes(text)?;
        if nodes.first().map(|s| s.as_str()) != Some("root") {
            return Err(Status::new(StatusCode::IllegalPath, format!("a path must start with 'root': '{text}'")));
        }
        Ok(PathPattern { nodes })
    }
    /// A pattern from already split nodes.
    pub fn from_nodes(nodes: Vec<String>) -> PathPattern {
        PathPattern { nodes }
    }
    /// The pattern matching exactly `path`.
    pub fn exact(path: &Path) -> PathPattern {
        PathPattern { nodes: path.nodes.clone() }
    }
    /// The pattern matching every path below `path` (`root.db` gives `root.db.**`).
    pub fn below(path: &Path) -> PathPattern {
        let mut nodes = path.nodes.clone();
        nodes.push("**".to_string());
        PathPattern { nodes }
    }
    /// The nodes of the pattern.
    pub fn nodes(&self) -> &[String] {
        &self.nodes
    }
    /// Whether the pattern contains a wildcard.
    pub fn has_wildcard(&self) -> bool {
        self.nodes.iter().any(|n| n.contains('*'))
    }
    /// The nodes before the first one with a wildcard: every path the pattern matches starts
    /// with them (in path order, such paths are neighbours: lookups scan only their range).
    pub fn literal_prefix(&self) -> &[String] {
        let n = self.nodes.iter().position(|n| n.contains('*')).unwrap_or(self.nodes.len());
        &self.nodes[..n]
    }
    /// The pattern as a concrete path if it has no wildcard.
    pub fn as_path(&self) -> Option<Path> {
        Path::from_nodes(self.nodes.clone()).ok()
    }
    /// This pattern with `suffix` nodes appended (used for `SELECT s FROM root.d`).
    pub fn join(&self, suffix: &[String]) -> PathPattern {
        let mut nodes = self.nodes.clone();
        nodes.extend_from_slice(suffix);
        PathPattern { nodes }
    }
    /// Whether `path` matches the whole pattern.
    pub fn matches(&self, path: &Path) -> bool {
        match_nodes(&self.nodes, &path.nodes, false)
    }
    /// Whether `path` matches the pattern or some path below `path` could (used to prune a tree walk).
    pub fn may_match_below(&self, path: &Path) -> bool {
        match_nodes(&self.nodes, &path.nodes, true)
    }
    /// Whether `path` matches the pattern or lies below a path that matches (`root.db` covers `root.db.d.s`).
    pub fn covers(&self, path: &Path) -> bool {
        (1..=path.nodes.len()).any(|n| match_nodes(&self.nodes, &path.nodes[..n], false))
    }

    /// Whether every path `inner` matches, this pattern matches too (`root.**` contains
    /// `root.a.*`). Conservative where globs inside nodes meet: false unless certain.
    pub fn contains(&self, inner: &PathPattern) -> bool {
        let (o, i) = (&self.nodes, &inner.nodes);
        // c[a][b]: o[a..] contains i[b..]; filled from the ends.
        let mut c = vec![vec![false; i.len() + 1]; o.len() + 1];
        c[o.len()][i.len()] = true;
        for a in (0..o.len()).rev() {
            for b in (0..i.len()).rev() {
                c[a][b] = if o[a] == "**" {
                    // `**` takes inner's node (whatever it is, `**` included), then ends or goes on.
                    c[a + 1][b + 1] || c[a][b + 1]
                } else if i[b] == "**" {
                    false
                } else {
                    let node = o[a] == "*" || if i[b].contains('*') { o[a] == i[b] } else { glob(&o[a], &i[b]) };
                    node && c[a + 1][b + 1]
                };
            }
        }
        c[0][0]
    }

    /// The paths both this pattern and `within` match, as patterns, when `within` is a plain
    /// prefix followed by `**` (`root.sg.**`, the usual form of a pipe's path) or neither has `**`:
    /// None when it cannot say. An empty list means they share no path.
    pub fn intersect(&self, within: &PathPattern) -> Option<Vec<PathPattern>> {
        let (d, w) = (&self.nodes, &within.nodes);
        if !d.iter().any(|n| n == "**") && !w.iter().any(|n| n == "**") {
            if d.len() != w.len() {
                return Some(Vec::new());
            }
            let mut out = Vec::with_capacity(d.len());
            for (x, y) in d.iter().zip(w) {
                let node = match (x.contains('*'), y.contains('*')) {
                    (false, false) if x == y => x.clone(),
                    (false, false) => return Some(Vec::new()),
                    (true, false) if glob(x, y) => y.clone(),
                    (false, true) if glob(y, x) => x.clone(),
                    (true, false) | (false, true) => return Some(Vec::new()),
                    (true, true) if x == "*" => y.clone(),
                    (true, true) if y == "*" || x == y => x.clone(),
                    (true, true) => return None,
                };
                out.push(node);
            }
            return Some(vec![PathPattern { nodes: out }]);
        }
        let prefix = w.split_last().filter(|(last, rest)| *last == "**" && !rest.iter().any(|n| n.contains('*')))?.1;
        // Positions of `d` reachable after the prefix (as in match_nodes: `**` takes a node, then
        // ends or goes on); what is left of `d` from each must match the rest, at least one node.
        let mut at = vec![0usize];
        for node in prefix {
            let mut next = Vec::new();
            for &k in &at {
                if k == d.len() {
                    continue;
                }
                if d[k] == "**" {
                    next.extend([k, k + 1]);
                } else if glob(&d[k], node) {
                    next.push(k + 1);
                }
            }
            next.sort_unstable();
            next.dedup();
            at = next;
        }
        Some(at.into_iter().filter(|&k| k < d.len()).map(|k| PathPattern { nodes: prefix.iter().cloned().chain(d[k..].iter().cloned()).collect() }).collect())
    }
}

impl fmt::Display for PathPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, n) in self.nodes.iter().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            if i > 0 && !n.contains('*') && node_needs_quotes(n) {
                write!(f, "`{}`", n.replace('`', "``"))?;
            } else {
                f.write_str(n)?;
            }
        }
        Ok(())
    }
}

fn glob(pat: &str, s: &str) -> bool {
    if !pat.contains('*') {
        return pat == s;
    }
    let parts: Vec<&str> = pat.split('*').collect();
    let mut rest = s;
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            if !rest.starts_with(part) {
                return false;
            }
            rest = &rest[part.len()..];
        } else if i == parts.len() - 1 {
            return rest.len() >= part.len() && rest.ends_with(part);
        } else if let Some(pos) = rest.find(part) {
            rest = &rest[pos + part.len()..];
        } else {
            return false;
        }
    }
    true
}

/// Matches pattern nodes against path nodes; with `prefix_ok`, a path that runs out first matches.
///
/// Walks the path once, keeping the set of pattern positions reachable so far (`**` takes one
/// node, then either stops or keeps going): time is path length times pattern length, where
/// trying each way `**` could split the path was exponential in the number of `**`.
fn match_nodes(pat: &[String], path: &[String], prefix_ok: bool) -> bool {
    if !pat.iter().any(|p| p == "**") {
        // Node for node (the common case, checked for every point against tombstones).
        return (path.len() == pat.len() || prefix_ok && path.len() < pat.len()) && pat.iter().zip(path).all(|(p, n)| glob(p, n));
    }
    if pat.len() < 64 {
        // The reachable positions as bits: no allocation.
        let mut at = 1u64;
        for node in path {
            let mut next = 0u64;
            let mut live = at & ((1u64 << pat.len()) - 1);
            while live != 0 {
                let i = live.trailing_zeros() as usize;
                live &= live - 1;
                if pat[i] == "**" {
                    next |= 0b11 << i;
                } else if glob(&pat[i], node) {
                    next |= 1 << (i + 1);
                }
            }
            if next == 0 {
                return false;
            }
            at = next;
        }
        return at & (1 << pat.len()) != 0 || prefix_ok && at != 0;
    }
    let mut at = vec![false; pat.len() + 1];
    let mut next = vec![false; pat.len() + 1];
    at[0] = true;
    for node in path {
        next.iter_mut().for_each(|x| *x = false);
        let mut alive = false;
        for i in (0..pat.len()).filter(|&i| at[i]) {
            if pat[i] == "**" {
                next[i] = true;
                next[i + 1] = true;
                alive = true;
            } else if glob(&pat[i], node) {
                next[i + 1] = true;
                alive = true;
            }
        }
        if !alive {
            return false;
        }
        std::mem::swap(&mut at, &mut next);
    }
    at[pat.len()] || prefix_ok && at.iter().any(|&x| x)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, s: &str) -> bool {
        PathPattern::parse(p).unwrap().matches(&Path::parse(s).unwrap())
    }

    /// The matcher as first written: tries each way `**` could split the path.
    fn reference(pat: &[String], path: &[String], prefix_ok: bool) -> bool {
        if path.is_empty() {
            return pat.is_empty() || prefix_ok;
        }
        let Some((p, prest)) = pat.split_first() else { return false };
        if p == "**" {
            let rest = &path[1..];
            return reference(prest, rest, prefix_ok) || reference(pat, rest, prefix_ok);
        }
        glob(p, &path[0]) && reference(prest, &path[1..], prefix_ok)
    }

    /// Every sequence of up to `max` items of `alphabet`.
    fn sequences(alphabet: &[&str], max: usize) -> Vec<Vec<String>> {
        let mut all = vec![vec![]];
        let mut last = vec![vec![]];
        for _ in 0..max {
            last = last.iter().flat_map(|s: &Vec<String>| alphabet.iter().map(move |a| [s.clone(), vec![a.to_string()]].concat())).collect();
            all.extend(last.clone());
        }
        all
    }

    #[test]
    fn the_matcher_agrees_with_trying_every_split_and_stays_fast() {
        let pats = sequences(&["a", "b", "*", "**", "a*"], 4);
        let paths = sequences(&["a", "b", "ab"], 5);
        for p in &pats {
            for q in &paths {
                for prefix_ok in [false, true] {
                    assert_eq!(match_nodes(p, q, prefix_ok), reference(p, q, prefix_ok), "{p:?} against {q:?}, prefix_ok {prefix_ok}");
                }
            }
        }
        // Thirty `**` against sixty nodes: C(60, 30) ways to split for the reference.
        let pat: Vec<String> = ["root"].into_iter().chain(std::iter::repeat_n("**", 30)).chain(["zz"]).map(String::from).collect();
        let path: Vec<String> = std::iter::once("root".to_string()).chain((0..60).map(|i| format!("n{i}"))).collect();
        assert!(!match_nodes(&pat, &path, false));
        // Past 63 pattern nodes the positions are kept in a vector: the same answers.
        let path: Vec<String> = std::iter::once("root".to_string()).chain((0..99).map(|i| format!("n{i}"))).collect();
        let long: Vec<String> = std::iter::repeat_n("*", 40).chain(std::iter::repeat_n("**", 30)).chain(["n98"]).map(String::from).collect();
        assert!(match_nodes(&long, &path, false));
        assert!(!match_nodes(&long, &path[..99], false));
        assert!(match_nodes(&long, &path[..60], true) && !match_nodes(&long, &path[..60], false));
    }

    #[test]
    fn containment_and_intersection_agree_with_matching() {
        let pats = [
            "root.**", "root.a.**", "root.*.d.s", "root.a.d.s", "root.**.s", "root.a.*", "root.b.**", "root.*.*.*", "root.a.d*.s", "root.**.d.**",
        ];
        let paths = ["root.a", "root.a.d", "root.a.d.s", "root.a.dx.s", "root.b.d.s", "root.a.e.s", "root.a.d.s.t", "root.c.d.s", "root.a.b.d.x", "root.s"];
        let p = |t: &str| PathPattern::parse(t).unwrap();
        for o in pats {
            for i in pats {
                let truth = paths.iter().all(|x| !p(i).matches(&Path::parse(x).unwrap()) || p(o).matches(&Path::parse(x).unwrap()));
                if p(o).contains(&p(i)) {
                    assert!(truth, "{o} was said to contain {i}");
                }
                if let Some(parts) = p(i).intersect(&p(o)) {
                    for x in paths {
                        let x = Path::parse(x).unwrap();
                        let both = p(i).matches(&x) && p(o).matches(&x);
                        assert_eq!(parts.iter().any(|q| q.matches(&x)), both, "{i} within {o} at {x}: {parts:?}");
                    }
                }
            }
        }
        assert!(p("root.**").contains(&p("root.a.**")) && p("root.a.**").contains(&p("root.a.*.s")) && !p("root.a.*").contains(&p("root.a.**")));
        assert_eq!(p("root.**").intersect(&p("root.a.**")).unwrap(), vec![p("root.a.**")]);
        assert!(p("root.b.d.s").intersect(&p("root.a.**")).unwrap().is_empty());
    }

    #[test]
    fn wildcards() {
        assert!(m("root.db.d.s", "root.db.d.s"));
        assert!(m("root.db.*.s", "root.db.d.s"));
        assert!(!m("root.db.*.s", "root.db.x.d.s"));
        assert!(m("root.**", "root.db.d.s"));
        assert!(m("root.db.**.s", "root.db.a.b.s"));
        assert!(!m("root.db.**.s", "root.db.s"));
        assert!(m("root.db.d*.s", "root.db.d12.s"));
        assert!(!m("root.db.d*.s", "root.db.x12.s"));
    }

    #[test]
    fn quoting_round_trips() {
        let p = Path::parse("root.sg.`a.b`.s").unwrap();
        assert_eq!(p.nodes().len(), 4);
        assert_eq!(p.to_string(), "root.sg.`a.b`.s");
        assert_eq!(Path::parse(&p.to_string()).unwrap(), p);
        assert!(Path::parse("root..a").is_err());
        assert!(Path::parse("sg.a").is_err());
    }

    #[test]
    fn prefix_pruning() {
        let p = PathPattern::parse("root.db.*.s").unwrap();
        assert!(p.may_match_below(&Path::parse("root.db").unwrap()));
        assert!(!p.may_match_below(&Path::parse("root.other").unwrap()));
        assert!(PathPattern::parse("root.db").unwrap().covers(&Path::parse("root.db.d.s").unwrap()));
    }
}
