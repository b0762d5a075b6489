//! Where statements end: `;` outside quotes, or the end of a line once brackets balance.

/// Whether the text so far can be executed: it ends with `;`, or quotes are closed and parentheses
/// balance (so a multi-line `CREATE PIPE ... WITH SINK(...)` is read to its closing bracket).
pub fn complete(text: &str) -> bool {
    let (depth, in_quote) = scan(text);
    if in_quote.is_some() {
        return false;
    }
    text.trim_end().ends_with(';') || depth <= 0
}

fn scan(text: &str) -> (i32, Option<char>) {
    let mut depth = 0i32;
    let mut quote = None;
    for c in text.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None => match c {
                '\'' | '"' | '`' => quote = Some(c),
                '(' => depth += 1,
                ')' => depth -= 1,
                _ => {}
            },
        }
    }
    (depth, quote)
}

/// Splits text into statements at `;` outside quotes.
pub fn split(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote = None;
    for c in text.chars() {
        match quote {
            Some(q) => {
                cur.push(c);
                if c == q {
                    quote = None;
                }
            }
            None if c == ';' => {
                if !cur.trim().is_empty() {
                    out.push(cur.trim().to_string());
                }
                cur.clear();
            }
            None => {
                if matches!(c, '\'' | '"' | '`') {
                    quote = Some(c);
                }
                cur.push(c);
            }
        }
    }
    if !cur.trim().is_empty() {
        out.push(cur.trim().to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statement_boundaries() {
        assert!(complete("show databases"));
        assert!(!complete("create pipe AB\nwith source ("));
        assert!(complete("create pipe AB\nwith source (\n'a'='b'\n)"));
        assert!(!complete("insert into root.d(time,s) values (1, 'a;"));
        assert!(complete("create pipe x with source ( 'a'='b' with sink ( 'c'='d' );"));
        assert_eq!(split("a; 'b;c' ;; d"), vec!["a", "'b;c'", "d"]);
    }
}
