//! Splits SQL text into tokens that remember where they start (for error messages).

use duet_common::status::{Status, StatusCode};

/// What a token is.
#[derive(Clone, Debug, PartialEq)]
pub enum Tok {
    /// An unquoted identifier or keyword.
    Ident(String),
    /// A backquoted identifier.
    Quoted(String),
    /// A single- or double-quoted string.
    Str(String),
    /// An integer literal (digits only; the sign is a separate token).
    Int(String),
    /// A decimal or exponent literal.
    Float(String),
    /// A date or date-time literal such as `2024-01-01T00:00:00+08:00`.
    DateTime(String),
    /// A punctuation or operator symbol.
    Sym(&'static str),
    /// End of input.
    Eof,
}

/// A token with its byte offsets in the statement.
#[derive(Clone, Debug, PartialEq)]
pub struct Token {
    /// The token.
    pub tok: Tok,
    /// Byte offset of its first character.
    pub start: usize,
    /// Byte offset just past it.
    pub end: usize,
}

impl Tok {
    /// How the token looks in an error message.
    pub fn describe(&self) -> String {
        match self {
            Tok::Ident(s) | Tok::Int(s) | Tok::Float(s) | Tok::DateTime(s) => s.clone(),
            Tok::Quoted(s) => format!("`{s}`"),
            Tok::Str(s) => format!("'{s}'"),
            Tok::Sym(s) => s.to_string(),
            Tok::Eof => "<EOF>".into(),
        }
    }
}

/// Line and column (1-based) of a byte offset, as IoTDB reports them.
pub fn line_col(sql: &str, offset: usize) -> (usize, usize) {
    let before = &sql[..offset.min(sql.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count());
    (line, col)
}

/// A parse error at a byte offset.
pub fn error_at(sql: &str, offset: usize, msg: impl AsRef<str>) -> Status {
    let (l, c) = line_col(sql, offset);
    Status::new(StatusCode::SqlParseError, format!("line {l}:{c} {}", msg.as_ref()))
}

const SYMS: &[&str] = &["**", "!=", "<>", "<=", ">=", "==", "&&", "||", "(", ")", ",", ".", ";", "=", "<", ">", "+", "-", "*", "/", "%", "!", "[", "]", ":"];

fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '$' || c == '#' || c == '@' || c == '{' || c == '}'
}

/// Tokenises a statement.
pub fn lex(sql: &str) -> Result<Vec<Token>, Status> {
    let b = sql.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = sql[i..].chars().next().unwrap();
        if c.is_whitespace() {
            i += c.len_utf8();
            continue;
        }
        if sql[i..].starts_with("--") || sql[i..].starts_with("//") {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        if sql[i..].starts_with("/*") {
            match sql[i + 2..].find("*/") {
                Some(p) => i += p + 4,
                None => return Err(error_at(sql, i, "unterminated comment")),
            }
            continue;
        }
        let start = i;
        if c == '\'' || c == '"' || c == '`' {
            let q = c;
            let mut s = String::new();
            i += 1;
            loop {
                let Some(ch) = sql[i..].chars().next() else {
                    return Err(error_at(sql, start, format!("unterminated {} starting here", if q == '`' { "quoted identifier" } else { "string" })));
                };
                i += ch.len_utf8();
                if ch == q {
                    if sql[i..].starts_with(q) {
                        s.push(q);
                        i += 1;
                        continue;
                    }
                    break;
                }
                if ch == '\\' && q != '`' {
                    if let Some(n) = sql[i..].chars().next() {
                        i += n.len_utf8();
                        s.push(match n {
                            'n' => '\n',
                            't' => '\t',
                            'r' => '\r',
                            other => other,
                        });
                        continue;
                    }
                }
                s.push(ch);
            }
            out.push(Token { tok: if q == '`' { Tok::Quoted(s) } else { Tok::Str(s) }, start, end: i });
            continue;
        }
        if c.is_ascii_digit() {
            // A date literal: yyyy-MM-dd or yyyy/MM/dd, optionally with a time and a zone.
            if b.len() >= i + 10
                && b[i..i + 4].iter().all(u8::is_ascii_digit)
                && (b[i + 4] == b'-' || b[i + 4] == b'/')
                && b[i + 5..i + 7].iter().all(u8::is_ascii_digit)
                && b[i + 7] == b[i + 4]
                && b[i + 8..i + 10].iter().all(u8::is_ascii_digit)
            {
                let mut j = i + 10;
                if j + 6 <= b.len() && (b[j] == b'T' || b[j] == b' ') && b[j + 1..j + 3].iter().all(u8::is_ascii_digit) && b[j + 3] == b':' {
                    j += 1;
                    while j < b.len() && (b[j].is_ascii_digit() || b[j] == b':' || b[j] == b'.') {
                        j += 1;
                    }
                    // Zone: Z, or +hh:mm / -hh:mm right after the time.
                    if j < b.len() && b[j] == b'Z' {
                        j += 1;
                    } else if j + 3 <= b.len() && (b[j] == b'+' || b[j] == b'-') && b[j + 1..j + 3].iter().all(u8::is_ascii_digit) {
                        j += 3;
                        while j < b.len() && (b[j].is_ascii_digit() || b[j] == b':') {
                            j += 1;
                        }
                    }
                }
                out.push(Token { tok: Tok::DateTime(sql[i..j].to_string()), start, end: j });
                i = j;
                continue;
            }
            let mut j = i;
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            let mut float = false;
            if j + 1 < b.len() && b[j] == b'.' && b[j + 1].is_ascii_digit() {
                float = true;
                j += 1;
                while j < b.len() && b[j].is_ascii_digit() {
                    j += 1;
                }
            }
            if j < b.len() && (b[j] == b'e' || b[j] == b'E') {
                let mut k = j + 1;
                if k < b.len() && (b[k] == b'+' || b[k] == b'-') {
                    k += 1;
                }
                if k < b.len() && b[k].is_ascii_digit() {
                    float = true;
                    j = k;
                    while j < b.len() && b[j].is_ascii_digit() {
                        j += 1;
                    }
                }
            }
            // Digits glued to letters (e.g. `1d`, `10ms`, `s1`-like nodes starting with digits) form one identifier-ish token.
            if j < b.len() && !float && (b[j].is_ascii_alphabetic() || b[j] == b'_') {
                let mut k = j;
                while k < b.len() && (b[k].is_ascii_alphanumeric() || b[k] == b'_') {
                    k += 1;
                }
                out.push(Token { tok: Tok::Ident(sql[i..k].to_string()), start, end: k });
                i = k;
                continue;
            }
            let text = sql[i..j].to_string();
            out.push(Token { tok: if float { Tok::Float(text) } else { Tok::Int(text) }, start, end: j });
            i = j;
            continue;
        }
        if c == '.' && i + 1 < b.len() && b[i + 1].is_ascii_digit() && !matches!(out.last().map(|t: &Token| &t.tok), Some(Tok::Ident(_) | Tok::Quoted(_) | Tok::Sym("*") | Tok::Sym("**") | Tok::Int(_))) {
            let mut j = i + 1;
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            out.push(Token { tok: Tok::Float(sql[i..j].to_string()), start, end: j });
            i = j;
            continue;
        }
        if is_ident_char(c) {
            let mut j = i;
            while let Some(ch) = sql[j..].chars().next() {
                if !is_ident_char(ch) {
                    break;
                }
                j += ch.len_utf8();
            }
            out.push(Token { tok: Tok::Ident(sql[i..j].to_string()), start, end: j });
            i = j;
            continue;
        }
        match SYMS.iter().find(|s| sql[i..].starts_with(**s)) {
            Some(s) => {
                out.push(Token { tok: Tok::Sym(s), start, end: i + s.len() });
                i += s.len();
            }
            None => return Err(error_at(sql, i, format!("unexpected character '{c}'"))),
        }
    }
    out.push(Token { tok: Tok::Eof, start: sql.len(), end: sql.len() });
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens() {
        let t: Vec<Tok> = lex("select s1 from root.sg.`a.b` where time >= 2024-01-01T00:00:00+08:00 and s1 > -1.5e3 -- c").unwrap().into_iter().map(|t| t.tok).collect();
        assert_eq!(t[0], Tok::Ident("select".into()));
        assert_eq!(t[7], Tok::Quoted("a.b".into()));
        assert_eq!(t[11], Tok::DateTime("2024-01-01T00:00:00+08:00".into()));
        assert_eq!(t[16], Tok::Float("1.5e3".into()));
        assert_eq!(*t.last().unwrap(), Tok::Eof);
        let d: Vec<Tok> = lex("'it''s' \"x\" 2017-11-01 00:00:00 1d").unwrap().into_iter().map(|t| t.tok).collect();
        assert_eq!(d, vec![Tok::Str("it's".into()), Tok::Str("x".into()), Tok::DateTime("2017-11-01 00:00:00".into()), Tok::Ident("1d".into()), Tok::Eof]);
        let e = lex("select 'abc").unwrap_err();
        assert!(e.message.starts_with("line 1:7"), "{}", e.message);
    }
}
