//! `duet-cli`: an interactive SQL shell for DuetDB (and IoTDB), with IoTDB's CLI options:
//! `-h HOST -p PORT -u USER -pw PASSWORD [-e "SQL"] [-disableISO8601] [-maxPRC N]`.

mod render;
mod script;

use std::process::ExitCode;
use std::time::Instant;

use duet_protocol::client::{ClientError, Session};

struct Opts {
    host: String,
    port: u16,
    user: String,
    password: String,
    execute: Option<String>,
    iso8601: bool,
    max_rows: usize,
    zone: String,
}

const USAGE: &str = "usage: start-cli.sh [-h HOST] [-p PORT] [-u USER] [-pw PASSWORD] [-e \"SQL; SQL\"] [-disableISO8601] [-maxPRC ROWS] [-tz ZONE]";

fn parse_args() -> Result<Opts, String> {
    let mut o = Opts {
        host: "127.0.0.1".into(),
        port: 6667,
        user: "root".into(),
        password: "root".into(),
        execute: None,
        iso8601: true,
        max_rows: 1000,
        zone: std::env::var("TZ").ok().filter(|z| duet_common::time::parse_zone_offset(z).is_some()).unwrap_or_else(|| "+00:00".into()),
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = |name: &str| args.next().ok_or_else(|| format!("option {name} needs a value\n{USAGE}"));
        match a.as_str() {
            "-h" | "--host" => o.host = val(&a)?,
            "-p" | "--port" => {
                let v = val(&a)?;
                o.port = v.parse().map_err(|_| format!("-p expects a port number, got '{v}'"))?;
            }
            "-u" | "--user" => o.user = val(&a)?,
            "-pw" | "--password" => o.password = val(&a)?,
            "-e" | "--execute" => o.execute = Some(val(&a)?),
            "-disableISO8601" => o.iso8601 = false,
            "-maxPRC" => {
                let v = val(&a)?;
                o.max_rows = v.parse().map_err(|_| format!("-maxPRC expects a number, got '{v}'"))?;
            }
            "-tz" => o.zone = val(&a)?,
            "--help" | "-help" => return Err(USAGE.into()),
            other => return Err(format!("unknown option '{other}'\n{USAGE}")),
        }
    }
    Ok(o)
}

fn run_one(session: &mut Session, sql: &str, o: &Opts) -> Result<(), ClientError> {
    let started = Instant::now();
    let res = session.execute(sql)?;
    let secs = started.elapsed().as_secs_f64();
    let zone = duet_common::time::parse_zone_offset(&o.zone).unwrap_or(0);
    if res.has_result {
        print!("{}", render::table(&res, &session.precision, zone, o.iso8601, o.max_rows));
        println!("Total line number = {}", res.rows.len());
    } else {
        println!("Msg: The statement is executed successfully.");
    }
    println!("It costs {secs:.3}s");
    Ok(())
}

fn main() -> ExitCode {
    let o = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let mut session = match Session::open(&o.host, o.port, &o.user, &o.password, &o.zone) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("Cannot connect to {}:{}: {e}", o.host, o.port);
            return ExitCode::from(1);
        }
    };
    // A statement may take minutes (REPAIR PIPE of a large difference, a big aggregation): the
    // CLI waits for it, as IoTDB's does, rather than report a transport error while the server
    // goes on (Ctrl-C stops waiting).
    if let Err(e) = session.set_reply_timeout(None) {
        eprintln!("Cannot set up the connection to {}:{}: {e}", o.host, o.port);
        return ExitCode::from(1);
    }
    if let Some(sql) = &o.execute {
        let mut failed = false;
        for stmt in script::split(sql) {
            if let Err(e) = run_one(&mut session, &stmt, &o) {
                eprintln!("Msg: {}", render::error(&e));
                failed = true;
                if matches!(e, ClientError::Transport(_)) {
                    break;
                }
            }
        }
        session.close();
        return if failed { ExitCode::from(1) } else { ExitCode::SUCCESS };
    }
    repl(session, &o)
}

fn repl(mut session: Session, o: &Opts) -> ExitCode {
    let interactive = std::io::IsTerminal::is_terminal(&std::io::stdin());
    if interactive {
        println!(" ____              _   ____  ____\n|  _ \\ _   _  ___| |_|  _ \\| __ )\n| | | | | | |/ _ \\ __| | | |  _ \\\n| |_| | |_| |  __/ |_| |_| | |_) |\n|____/ \\__,_|\\___|\\__|____/|____/  version {}", env!("CARGO_PKG_VERSION"));
        println!("Successfully logged in at {}:{}", o.host, o.port);
    }
    let mut rl = match rustyline::DefaultEditor::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot start the line editor: {e}");
            return ExitCode::from(1);
        }
    };
    let history = std::env::var("HOME").ok().map(|h| std::path::PathBuf::from(h).join(".duetdb_cli_history"));
    if let Some(h) = &history {
        let _ = rl.load_history(h);
    }
    let mut buf = String::new();
    let mut failed = false;
    loop {
        let prompt = if buf.is_empty() { "IoTDB> " } else { "     > " };
        let line = match rl.readline(prompt) {
            Ok(l) => l,
            Err(rustyline::error::ReadlineError::Interrupted) => {
                buf.clear();
                continue;
            }
            Err(_) => break,
        };
        if buf.is_empty() && matches!(line.trim().to_ascii_lowercase().trim_end_matches(';'), "exit" | "quit") {
            break;
        }
        if line.trim().is_empty() && buf.trim().is_empty() {
            continue;
        }
        if !buf.is_empty() {
            buf.push('\n');
        }
        buf.push_str(&line);
        if !script::complete(&buf) && !line.trim().is_empty() {
            continue;
        }
        let text = std::mem::take(&mut buf);
        let _ = rl.add_history_entry(text.trim());
        for stmt in script::split(&text) {
            if let Err(e) = run_one(&mut session, &stmt, o) {
                println!("Msg: {}", render::error(&e));
                failed = true;
                if matches!(e, ClientError::Transport(_)) {
                    eprintln!("The connection to the server was lost.");
                    return ExitCode::from(1);
                }
            }
        }
    }
    if !buf.trim().is_empty() {
        for stmt in script::split(&buf) {
            if let Err(e) = run_one(&mut session, &stmt, o) {
                println!("Msg: {}", render::error(&e));
                failed = true;
            }
        }
    }
    if let Some(h) = &history {
        let _ = rl.save_history(h);
    }
    session.close();
    if failed && !interactive {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
