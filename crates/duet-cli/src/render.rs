//! IoTDB-style result tables.

use duet_common::time::{format_datetime, Precision};
use duet_protocol::client::{ClientError, QueryResult};

fn line(widths: &[usize]) -> String {
    let mut s = String::from("+");
    for w in widths {
        s.push_str(&"-".repeat(*w));
        s.push('+');
    }
    s.push('\n');
    s
}

/// Renders a result as a boxed table, right-aligned like IoTDB's CLI, at most `max_rows` rows.
pub fn table(r: &QueryResult, precision: &str, zone: i32, iso: bool, max_rows: usize) -> String {
    let p = Precision::parse(precision).unwrap_or(Precision::Ms);
    let mut header: Vec<String> = Vec::new();
    if !r.ignore_time {
        header.push("Time".into());
    }
    header.extend(r.columns.iter().cloned());
    let shown = r.rows.len().min(max_rows);
    let mut cells: Vec<Vec<String>> = Vec::with_capacity(shown);
    for i in 0..shown {
        let mut row = Vec::with_capacity(header.len());
        if !r.ignore_time {
            row.push(if iso { format_datetime(r.times[i], p, zone) } else { r.times[i].to_string() });
        }
        for (c, v) in r.rows[i].iter().enumerate() {
            row.push(match v {
                None => "null".into(),
                Some(v) => v.render(r.types[c]),
            });
        }
        cells.push(row);
    }
    let widths: Vec<usize> = (0..header.len())
        .map(|c| cells.iter().map(|row| row[c].chars().count()).chain([header[c].chars().count()]).max().unwrap_or(0))
        .collect();
    let mut out = line(&widths);
    let fmt_row = |row: &[String]| {
        let mut s = String::from("|");
        for (c, cell) in row.iter().enumerate() {
            s.push_str(&format!("{:>w$}|", cell, w = widths[c]));
        }
        s.push('\n');
        s
    };
    out.push_str(&fmt_row(&header));
    out.push_str(&line(&widths));
    if cells.is_empty() {
        out.push_str("Empty set.\n");
    } else {
        for row in &cells {
            out.push_str(&fmt_row(row));
        }
        out.push_str(&line(&widths));
    }
    if r.rows.len() > shown {
        out.push_str(&format!("Showing the first {shown} of {} rows (-maxPRC to change)\n", r.rows.len()));
    }
    out
}

/// An error line as the CLI shows it.
pub fn error(e: &ClientError) -> String {
    match e {
        ClientError::Status { code, message } => format!("{code}: {message}"),
        ClientError::Transport(m) => format!("connection error: {m}"),
    }
}
