//! `duetdb`: the DuetDB server binary.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use clap::Parser;
use duet_server::config::Config;
use duet_server::server::Server;

/// DuetDB: an IoTDB-compatible time-series database built for dual-active pairs.
#[derive(Parser, Debug)]
#[command(name = "duetdb", version)]
struct Args {
    /// Home directory: relative data, WAL and system paths are resolved against it.
    #[arg(long, default_value = ".")]
    home: PathBuf,
    /// Configuration file (default: <home>/conf/iotdb-system.properties if it exists).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Override dn_rpc_address.
    #[arg(long)]
    rpc_address: Option<String>,
    /// Override dn_rpc_port.
    #[arg(long)]
    rpc_port: Option<u16>,
    /// Override any configuration key: -c key=value (repeatable).
    #[arg(short = 'c', long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("DUETDB_LOG").unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    let args = Args::parse();
    if let Err(e) = run(args) {
        tracing::error!("{e}");
        eprintln!("duetdb: {e}");
        std::process::exit(1);
    }
}

fn run(args: Args) -> Result<(), String> {
    let mut overrides = Vec::new();
    for s in &args.set {
        let (k, v) = s.split_once('=').ok_or_else(|| format!("-c expects key=value, got '{s}'"))?;
        overrides.push((k.trim().to_string(), v.trim().to_string()));
    }
    if let Some(a) = &args.rpc_address {
        overrides.push(("dn_rpc_address".into(), a.clone()));
    }
    if let Some(p) = args.rpc_port {
        overrides.push(("dn_rpc_port".into(), p.to_string()));
    }
    let file = args.config.clone().or_else(|| {
        let f = args.home.join("conf/iotdb-system.properties");
        f.exists().then_some(f)
    });
    let cfg = Config::load(&args.home, file.as_deref(), &overrides)?;
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, stop.clone()).map_err(|e| format!("cannot install signal handler: {e}"))?;
    }
    let server = Server::start(cfg)?;
    server.run(stop)
}
