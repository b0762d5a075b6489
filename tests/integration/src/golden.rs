//! Golden SQL files: `name.sql` holds statements (one per `;`), `name.result` what they return.
//!
//! The rendering is plain and stable: each statement is echoed after `> `, followed by `OK`, an
//! `ERROR <code>` line, or a header and one tab-separated line per row (`null` for nulls).

use duet_common::types::DataType;
use duet_protocol::client::{ClientError, Session};

/// Runs every statement of `script` and renders the outcome.
pub fn run(session: &mut Session, script: &str) -> String {
    let mut out = String::new();
    for stmt in split(script) {
        out.push_str(&format!("> {stmt}\n"));
        match session.execute(&stmt) {
            Ok(r) if !r.has_result => out.push_str("OK\n"),
            Ok(r) => {
                let mut header: Vec<String> = Vec::new();
                if !r.ignore_time {
                    header.push("Time".into());
                }
                header.extend(r.columns.iter().cloned());
                out.push_str(&header.join("\t"));
                out.push('\n');
                for (i, row) in r.rows.iter().enumerate() {
                    let mut cells: Vec<String> = Vec::new();
                    if !r.ignore_time {
                        cells.push(r.times[i].to_string());
                    }
                    for (c, v) in row.iter().enumerate() {
                        cells.push(v.as_ref().map_or("null".into(), |v| v.render(*r.types.get(c).unwrap_or(&DataType::Text))));
                    }
                    out.push_str(&cells.join("\t"));
                    out.push('\n');
                }
            }
            Err(ClientError::Status { code, .. }) => out.push_str(&format!("ERROR {code}\n")),
            Err(e) => out.push_str(&format!("TRANSPORT ERROR {e}\n")),
        }
        out.push('\n');
    }
    out
}

fn split(script: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote = None;
    for line in script.lines() {
        let t = line.trim();
        if quote.is_none() && (t.starts_with("--") || t.is_empty()) {
            continue;
        }
        for c in line.chars() {
            match quote {
                Some(q) => {
                    cur.push(c);
                    if c == q {
                        quote = None;
                    }
                }
                None if c == ';' => {
                    if !cur.trim().is_empty() {
                        out.push(cur.split_whitespace().collect::<Vec<_>>().join(" "));
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
        cur.push(' ');
    }
    if !cur.trim().is_empty() {
        out.push(cur.split_whitespace().collect::<Vec<_>>().join(" "));
    }
    out
}
