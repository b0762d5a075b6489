//! Configuration: `conf/iotdb-system.properties` with IoTDB's key names, embedded defaults, and
//! command-line overrides.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use duet_common::time::Precision;
use duet_storage::SyncMode;

/// The defaults, in the same format as the file (so the embedded file documents them).
pub const DEFAULT_PROPERTIES: &str = include_str!("../../../conf/iotdb-system.properties");

/// Every key the server understands; anything else in the file is reported and ignored.
const KNOWN_KEYS: &[&str] = &[
    "cluster_name",
    "dn_rpc_address",
    "dn_rpc_port",
    "dn_internal_address",
    "dn_internal_port",
    "cn_internal_address",
    "cn_internal_port",
    "dn_data_dirs",
    "dn_wal_dirs",
    "dn_system_dir",
    "timestamp_precision",
    "enable_auto_create_schema",
    "default_storage_group_level",
    "wal_mode",
    "wal_async_mode_fsync_delay_in_ms",
    "wal_file_size_threshold_in_byte",
    "thrift_max_frame_size",
    "dn_rpc_max_concurrent_client_num",
    "dn_connection_timeout_ms",
    "memtable_size_threshold",
    "inner_compaction_candidate_file_num",
    "pipe_wal_retention_bytes",
    "query_summary_cache_size_in_byte",
    "query_memory_limit_in_byte",
    "query_timeout_threshold",
    "dn_metric_reporter_list",
    "dn_metric_prometheus_reporter_port",
];

/// The effective configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// Base directory for relative paths.
    pub home: PathBuf,
    /// `cluster_name`.
    pub cluster_name: String,
    /// `dn_rpc_address`: where clients connect.
    pub rpc_address: String,
    /// `dn_rpc_port`.
    pub rpc_port: u16,
    /// `dn_internal_address`.
    pub dn_internal_address: String,
    /// `dn_internal_port`.
    pub dn_internal_port: u16,
    /// `cn_internal_address`.
    pub cn_internal_address: String,
    /// `cn_internal_port`.
    pub cn_internal_port: u16,
    /// First of `dn_data_dirs`.
    pub data_dir: PathBuf,
    /// First of `dn_wal_dirs`.
    pub wal_dir: PathBuf,
    /// `dn_system_dir`.
    pub system_dir: PathBuf,
    /// `timestamp_precision`.
    pub precision: Precision,
    /// `enable_auto_create_schema`.
    pub auto_create_schema: bool,
    /// `default_storage_group_level`.
    pub default_database_level: usize,
    /// `wal_mode` and `wal_async_mode_fsync_delay_in_ms`.
    pub wal_mode: SyncMode,
    /// `wal_file_size_threshold_in_byte`.
    pub wal_segment_bytes: u64,
    /// `thrift_max_frame_size`.
    pub max_frame: usize,
    /// `dn_rpc_max_concurrent_client_num`.
    pub max_clients: usize,
    /// `dn_connection_timeout_ms`: longest wait for the rest of a request once it has begun, and
    /// for a client to take a reply (an idle session waits for its next request without limit).
    pub connection_timeout: Duration,
    /// `memtable_size_threshold`: bytes after which a memtable is flushed.
    pub memtable_bytes: usize,
    /// `inner_compaction_candidate_file_num`: data files that trigger a compaction.
    pub compaction_files: usize,
    /// `pipe_wal_retention_bytes`: WAL kept for lagging pipes before they must resynchronise.
    pub wal_retention_bytes: u64,
    /// `query_summary_cache_size_in_byte`: budget of the page bucket-summary cache.
    pub summary_cache_bytes: usize,
    /// `query_memory_limit_in_byte`: most bytes one query may hold for its result (see
    /// `duet_query::result::memory_exceeded`); raw queries stream in pages within it.
    pub query_memory_bytes: usize,
    /// `query_timeout_threshold` (ms, 0 = none): longest one call of a query may compute.
    pub query_timeout: Option<Duration>,
    /// Port of the Prometheus endpoint when `dn_metric_reporter_list` contains PROMETHEUS.
    pub metrics_port: Option<u16>,
}

/// Parses Java-properties-style text (`key=value`, `#` comments) into a map.
pub fn parse_properties(text: &str) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
            continue;
        }
        if let Some((k, v)) = line.split_once('=').or_else(|| line.split_once(':')) {
            m.insert(k.trim().to_string(), v.trim().to_string());
        }
    }
    m
}

fn get<'a>(m: &'a BTreeMap<String, String>, k: &str) -> &'a str {
    m.get(k).map(|s| s.as_str()).unwrap_or("")
}

fn num<T: std::str::FromStr>(m: &BTreeMap<String, String>, k: &str) -> Result<T, String> {
    get(m, k).parse().map_err(|_| format!("configuration {k}='{}' is not a valid number", get(m, k)))
}

fn bool_of(m: &BTreeMap<String, String>, k: &str) -> Result<bool, String> {
    match get(m, k).to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        v => Err(format!("configuration {k}='{v}' must be true or false")),
    }
}

impl Config {
    /// Builds the configuration: embedded defaults, then the file (if any), then overrides.
    pub fn load(home: &Path, file: Option<&Path>, overrides: &[(String, String)]) -> Result<Config, String> {
        let mut m = parse_properties(DEFAULT_PROPERTIES);
        if let Some(f) = file {
            let text = std::fs::read_to_string(f).map_err(|e| format!("cannot read configuration file {}: {e}", f.display()))?;
            for (k, v) in parse_properties(&text) {
                if !KNOWN_KEYS.contains(&k.as_str()) {
                    tracing::warn!("{}: unknown or unsupported key '{k}' ignored", f.display());
                    continue;
                }
                m.insert(k, v);
            }
        }
        for (k, v) in overrides {
            if !KNOWN_KEYS.contains(&k.as_str()) {
                return Err(format!("unknown configuration key '{k}' (known: {})", KNOWN_KEYS.join(", ")));
            }
            m.insert(k.clone(), v.clone());
        }
        let rel = |k: &str| -> PathBuf {
            let first = get(&m, k).split(',').next().unwrap_or("").trim().to_string();
            let p = PathBuf::from(first);
            if p.is_absolute() {
                p
            } else {
                home.join(p)
            }
        };
        let precision = Precision::parse(get(&m, "timestamp_precision"))
            .ok_or_else(|| format!("timestamp_precision='{}' must be ms, us or ns", get(&m, "timestamp_precision")))?;
        let wal_mode = match get(&m, "wal_mode").to_ascii_uppercase().as_str() {
            "SYNC" => SyncMode::Sync,
            "ASYNC" => SyncMode::Async(Duration::from_millis(num::<u64>(&m, "wal_async_mode_fsync_delay_in_ms")?.max(1))),
            v => return Err(format!("wal_mode='{v}' must be SYNC or ASYNC")),
        };
        let cfg = Config {
            home: home.to_path_buf(),
            cluster_name: get(&m, "cluster_name").to_string(),
            rpc_address: get(&m, "dn_rpc_address").to_string(),
            rpc_port: num(&m, "dn_rpc_port")?,
            dn_internal_address: get(&m, "dn_internal_address").to_string(),
            dn_internal_port: num(&m, "dn_internal_port")?,
            cn_internal_address: get(&m, "cn_internal_address").to_string(),
            cn_internal_port: num(&m, "cn_internal_port")?,
            data_dir: rel("dn_data_dirs"),
            wal_dir: rel("dn_wal_dirs"),
            system_dir: rel("dn_system_dir"),
            precision,
            auto_create_schema: bool_of(&m, "enable_auto_create_schema")?,
            default_database_level: num(&m, "default_storage_group_level")?,
            wal_mode,
            wal_segment_bytes: num(&m, "wal_file_size_threshold_in_byte")?,
            max_frame: num(&m, "thrift_max_frame_size")?,
            max_clients: num(&m, "dn_rpc_max_concurrent_client_num")?,
            connection_timeout: Duration::from_millis(num::<u64>(&m, "dn_connection_timeout_ms")?.max(1)),
            memtable_bytes: num(&m, "memtable_size_threshold")?,
            compaction_files: num(&m, "inner_compaction_candidate_file_num")?,
            wal_retention_bytes: num(&m, "pipe_wal_retention_bytes")?,
            summary_cache_bytes: num(&m, "query_summary_cache_size_in_byte")?,
            query_memory_bytes: num(&m, "query_memory_limit_in_byte")?,
            query_timeout: Some(num::<u64>(&m, "query_timeout_threshold")?).filter(|ms| *ms > 0).map(Duration::from_millis),
            metrics_port: if get(&m, "dn_metric_reporter_list").to_ascii_uppercase().contains("PROMETHEUS") {
                Some(num(&m, "dn_metric_prometheus_reporter_port")?)
            } else {
                None
            },
        };
        if cfg.cluster_name.is_empty() {
            return Err("cluster_name must not be empty".into());
        }
        if cfg.query_memory_bytes < 1 << 20 {
            return Err(format!("query_memory_limit_in_byte={} is too small: give at least 1048576 (1 MiB)", cfg.query_memory_bytes));
        }
        if cfg.default_database_level < 1 {
            return Err("default_storage_group_level must be at least 1".into());
        }
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_file_and_overrides() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("p.properties");
        std::fs::write(&f, "# c\ndn_rpc_port = 7777\ntimestamp_precision=ns\nmystery=1\n").unwrap();
        let c = Config::load(d.path(), Some(&f), &[("dn_rpc_address".into(), "127.0.0.2".into())]).unwrap();
        assert_eq!((c.rpc_port, c.precision, c.rpc_address.as_str()), (7777, Precision::Ns, "127.0.0.2"));
        assert_eq!(c.wal_mode, SyncMode::Sync);
        assert!(c.wal_dir.starts_with(d.path()));
        assert!(Config::load(d.path(), None, &[("nope".into(), "1".into())]).is_err());
        assert!(Config::load(d.path(), None, &[("timestamp_precision".into(), "s".into())]).unwrap_err().contains("timestamp_precision"));
    }
}
