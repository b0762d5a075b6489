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
    /// The nodes of the pattern.
    pub fn nodes(&self) -> &[String] {
        &self.nodes
    }
    /// Whether the pattern contains a wildcard.
    pub fn has_wildcard(&self) -> bool {
        self.nodes.iter().any(|n| n.contains('*'))
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
fn match_nodes(pat: &[String], path: &[String], prefix_ok: bool) -> bool {
    if path.is_empty() {
        return pat.is_empty() || prefix_ok;
    }
    let Some((p, prest)) = pat.split_first() else { return false };
    if p == "**" {
        // `**` takes one node, then either stops or keeps going.
        let (_, rest) = path.split_first().unwrap();
        return match_nodes(prest, rest, prefix_ok) || match_nodes(pat, rest, prefix_ok);
    }
    glob(p, &path[0]) && match_nodes(prest, &path[1..], prefix_ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, s: &str) -> bool {
        PathPattern::parse(p).unwrap().matches(&Path::parse(s).unwrap())
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
