//! Where statements end: `;` outside quotes, or the end of a line once brackets balance.

/// Whether the text so far can be executed: it ends with `;`, or it is a whole statement, or it
/// is wrong in a way more lines cannot fix (so the server reports the error where it is).
pub fn complete(text: &str) -> bool {
    let (_, in_quote) = scan(text);
    if in_quote.is_some() {
        return false;
    }
    if text.trim_end().ends_with(';') {
        return true;
    }
    !duet_query::parser::is_incomplete(text)
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

/// Splits text into statements at `;` outside quotes and comments (the parser's own rule).
pub fn split(text: &str) -> Vec<String> {
    duet_query::parser::split_statements(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statement_boundaries() {
        assert!(complete("show databases"));
        assert!(!complete("create timeseries\n root.a.b.c"));
        assert!(complete("create timeseries\n root.a.b.c INT32"));
        assert!(!complete("insert into root.d(time,s) values (1, 'a;"));
        assert!(complete("create pipe x with source ( 'a'='b' with sink ( 'c'='d' );"));
        assert_eq!(split("a; 'b;c' ;; d"), vec!["a", "'b;c'", "d"]);
    }
}
