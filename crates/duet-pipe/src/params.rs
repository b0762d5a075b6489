//! SOURCE / PROCESSOR / SINK parameters: IoTDB's names (prefixes optional), defaults, validation.

use std::collections::BTreeMap;
use std::time::Duration;

use duet_common::path::PathPattern;
use duet_common::status::{Status, StatusCode};
use duet_common::time::{parse_datetime, Precision};

fn bad(msg: impl Into<String>) -> Status {
    Status::new(StatusCode::IllegalParameter, msg)
}

/// Kinds of change a pipe can carry (`inclusion` selects among them).
pub const CATEGORIES: &[&str] = &[
    "data.insert",
    "data.delete",
    "schema.database.create",
    "schema.database.drop",
    "schema.timeseries.ordinary.create",
    "schema.timeseries.ordinary.alter",
    "schema.timeseries.ordinary.drop",
    "schema.ttl",
];

/// Which categories are included.
#[derive(Clone, Debug, PartialEq)]
pub struct Inclusion {
    set: Vec<&'static str>,
}

impl Inclusion {
    fn parse(inc: &str, exc: &str) -> Result<Inclusion, Status> {
        let items = |s: &str| -> Result<Vec<String>, Status> {
            let v: Vec<String> = s.split(',').map(|x| x.trim().to_ascii_lowercase()).filter(|x| !x.is_empty()).collect();
            for x in &v {
                let known = x == "all" || x.starts_with("auth") || CATEGORIES.iter().any(|c| *c == x || c.starts_with(&format!("{x}.")));
                if !known {
                    return Err(bad(format!("inclusion: unknown category '{x}' (known: all, data, data.insert, data.delete, schema, schema.database, schema.timeseries, schema.ttl)")));
                }
            }
            Ok(v)
        };
        let inc = items(inc)?;
        let exc = items(exc)?;
        let covers = |list: &[String], c: &str| list.iter().any(|x| x == "all" || x == c || c.starts_with(&format!("{x}.")));
        let set: Vec<&'static str> = CATEGORIES.iter().copied().filter(|c| covers(&inc, c) && !covers(&exc, c)).collect();
        Ok(Inclusion { set })
    }
    /// Whether a category is included.
    pub fn has(&self, c: &str) -> bool {
        self.set.contains(&c)
    }
}

/// What the source captures.
#[derive(Clone, Debug, PartialEq)]
pub struct SourceParams {
    /// Ship only writes whose origin is this instance (`mode.double-living`).
    pub double_living: bool,
    /// Also ship writes that arrived through pipes (`forwarding-pipe-requests`).
    pub forwarding: bool,
    /// Series patterns (`path`, or `pattern` as a prefix).
    pub patterns: Vec<PathPattern>,
    /// Ship data that existed before the pipe (`history.enable`).
    pub history: bool,
    /// Ship new writes (`realtime.enable`).
    pub realtime: bool,
    /// Only points with time >= this (`start-time`).
    pub start_time: i64,
    /// Only points with time <= this (`end-time`).
    pub end_time: i64,
    /// Included categories.
    pub inclusion: Inclusion,
}

impl SourceParams {
    /// Whether everything this source selects, `old` selected too (an ALTER PIPE that only narrows
    /// a pipe leaves nothing unshipped behind it).
    pub fn within(&self, old: &SourceParams) -> bool {
        // Only this instance's writes, or also those that came through pipes.
        let own_only = |s: &SourceParams| s.double_living || !s.forwarding;
        let origins = own_only(self) || !own_only(old);
        origins
            && (!self.history || old.history)
            && self.patterns.iter().all(|n| old.patterns.iter().any(|o| o.contains(n)))
            && self.start_time >= old.start_time
            && self.end_time <= old.end_time
            && CATEGORIES.iter().all(|c| !self.inclusion.has(c) || old.inclusion.has(c))
    }
}

/// Which compressor a sink uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    /// None.
    None,
    /// LZ4 (fast).
    Lz4,
    /// Zstandard (smaller).
    Zstd,
}

/// Where and how the sink sends.
#[derive(Clone, Debug, PartialEq)]
pub struct SinkParams {
    /// `do-nothing-sink` discards everything (for testing sources).
    pub do_nothing: bool,
    /// Endpoints, tried in order with fail-over (`node-urls`, or `ip`/`host` + `port`).
    pub endpoints: Vec<(String, u16)>,
    /// Receiver user.
    pub user: String,
    /// Receiver password.
    pub password: String,
    /// Most bytes of mutations per request (`batch.size-bytes`).
    pub batch_bytes: usize,
    /// How long a sender may wait to fill a batch (`batch.max-delay-ms` / `-seconds`).
    pub batch_delay: Duration,
    /// Compression of batches.
    pub compression: Compression,
    /// Bytes per second cap, if any (`rate-limit-bytes-per-second`).
    pub rate_limit: Option<u64>,
}

/// A pipe's validated parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct PipeParams {
    /// Source side.
    pub source: SourceParams,
    /// Sink side.
    pub sink: SinkParams,
}

const SOURCE_KEYS: &[&str] = &[
    "source", "extractor", "inclusion", "inclusion.exclusion", "pattern", "path", "history.enable", "realtime.enable", "start-time", "end-time",
    "history.start-time", "history.end-time", "realtime.mode", "mode.streaming", "mode.strict", "mode.snapshot", "mode", "mode.double-living",
    "forwarding-pipe-requests", "mods.enable", "mods", "user", "username", "password", "skipif", "capture.tree", "capture.table",
];
const SINK_KEYS: &[&str] = &[
    "sink", "connector", "ip", "host", "port", "node-urls", "user", "username", "password", "batch.enable", "batch.max-delay-seconds",
    "batch.max-delay-ms", "batch.size-bytes", "compressor", "rate-limit-bytes-per-second", "load-balance-strategy", "format",
    "exception.conflict.resolve-strategy", "exception.conflict.retry-max-time-seconds", "exception.others.retry-max-time-seconds",
    "mark-as-pipe-request", "ssl.trust-store-path", "ssl.trust-store-pwd", "compressor.zstd.level",
];

/// Strips the optional prefixes and lower-cases keys; rejects unknown keys, naming them.
fn normalize(kind: &str, kvs: &[(String, String)], prefixes: &[&str], known: &[&str]) -> Result<BTreeMap<String, String>, Status> {
    let mut out = BTreeMap::new();
    for (k, v) in kvs {
        let lk = k.trim().to_ascii_lowercase();
        let mut key = lk.as_str();
        for p in prefixes {
            if let Some(rest) = key.strip_prefix(&format!("{p}.")) {
                key = rest;
                break;
            }
        }
        if !known.contains(&key) {
            return Err(bad(format!("unknown {kind} parameter '{k}'")));
        }
        if out.insert(key.to_string(), v.trim().to_string()).is_some() {
            return Err(bad(format!("{kind} parameter '{k}' is given more than once")));
        }
    }
    Ok(out)
}

fn bool_param(m: &BTreeMap<String, String>, k: &str, default: bool) -> Result<bool, Status> {
    match m.get(k).map(|s| s.to_ascii_lowercase()) {
        None => Ok(default),
        Some(v) if v == "true" => Ok(true),
        Some(v) if v == "false" => Ok(false),
        Some(v) => Err(bad(format!("parameter '{k}' must be true or false, not '{v}'"))),
    }
}

fn time_param(m: &BTreeMap<String, String>, keys: &[&str], default: i64, p: Precision) -> Result<i64, Status> {
    for k in keys {
        if let Some(v) = m.get(*k) {
            if v.eq_ignore_ascii_case("now") {
                return Ok(p.now());
            }
            if let Ok(n) = v.parse::<i64>() {
                return Ok(n);
            }
            return parse_datetime(v, p, 0).map_err(|e| bad(format!("parameter '{k}': {e}")));
        }
    }
    Ok(default)
}

fn num_param<T: std::str::FromStr>(m: &BTreeMap<String, String>, k: &str) -> Result<Option<T>, Status> {
    m.get(k).map(|v| v.parse::<T>().map_err(|_| bad(format!("parameter '{k}' must be a number, not '{v}'")))).transpose()
}

impl PipeParams {
    /// Validates parameters as written in CREATE PIPE.
    pub fn parse(source: &[(String, String)], processor: &[(String, String)], sink: &[(String, String)], precision: Precision) -> Result<PipeParams, Status> {
        let s = normalize("source", source, &["source", "extractor"], SOURCE_KEYS)?;
        let p = normalize("processor", processor, &["processor"], &["processor"])?;
        let k = normalize("sink", sink, &["sink", "connector"], SINK_KEYS)?;
        if let Some(name) = s.get("source").or_else(|| s.get("extractor")) {
            if !matches!(name.as_str(), "iotdb-source" | "iotdb-extractor") {
                return Err(bad(format!("unknown source '{name}' (supported: iotdb-source)")));
            }
        }
        if let Some(name) = p.get("processor") {
            if name != "do-nothing-processor" {
                return Err(bad(format!("unknown processor '{name}' (supported: do-nothing-processor)")));
            }
        }
        let double_living = bool_param(&s, "mode.double-living", false)?;
        let forwarding = match (double_living, s.get("forwarding-pipe-requests")) {
            (true, Some(v)) if v.eq_ignore_ascii_case("true") => {
                return Err(bad("'forwarding-pipe-requests'='true' contradicts 'mode.double-living'='true' (a double-living pipe never forwards)"))
            }
            (true, _) => false,
            (false, _) => bool_param(&s, "forwarding-pipe-requests", true)?,
        };
        let mut patterns = Vec::new();
        if let Some(pat) = s.get("path") {
            patterns.push(PathPattern::parse(pat).map_err(|e| bad(format!("parameter 'path': {}", e.message)))?);
        }
        if let Some(pat) = s.get("pattern") {
            if s.contains_key("path") {
                return Err(bad("give either 'path' or 'pattern', not both"));
            }
            // `pattern` is a prefix: root.db covers root.db and everything below it.
            let base = PathPattern::parse(pat).map_err(|e| bad(format!("parameter 'pattern': {}", e.message)))?;
            patterns.push(base.clone());
            patterns.push(base.join(&["**".to_string()]));
        }
        if patterns.is_empty() {
            patterns.push(PathPattern::parse("root.**").unwrap());
        }
        let start_time = time_param(&s, &["start-time", "history.start-time"], i64::MIN, precision)?;
        let end_time = time_param(&s, &["end-time", "history.end-time"], i64::MAX, precision)?;
        if start_time > end_time {
            return Err(bad("'start-time' is after 'end-time'"));
        }
        // DuetDB replicates data and schema by default: convergence of a dual-active pair needs deletes
        // and schema changes too. `inclusion`='data.insert' gives IoTDB's narrower default.
        let inclusion = Inclusion::parse(s.get("inclusion").map(|s| s.as_str()).unwrap_or("data, schema"), s.get("inclusion.exclusion").map(|s| s.as_str()).unwrap_or(""))?;
        let history = bool_param(&s, "history.enable", true)?;
        let realtime = bool_param(&s, "realtime.enable", true)?;
        if !history && !realtime {
            return Err(bad("'history.enable' and 'realtime.enable' are both false: the pipe would ship nothing"));
        }
        let source = SourceParams { double_living, forwarding, patterns, history, realtime, start_time, end_time, inclusion };

        let name = k.get("sink").or_else(|| k.get("connector")).cloned().unwrap_or_else(|| "iotdb-thrift-sink".into());
        let do_nothing = match name.as_str() {
            "iotdb-thrift-sink" | "iotdb-thrift-sync-sink" | "iotdb-thrift-async-sink" | "iotdb-thrift-connector" | "iotdb-thrift-sync-connector"
            | "iotdb-thrift-async-connector" => false,
            "do-nothing-sink" | "do-nothing-connector" => true,
            other => return Err(bad(format!("unknown sink '{other}' (supported: iotdb-thrift-sink, iotdb-thrift-sync-sink, iotdb-thrift-async-sink, do-nothing-sink)"))),
        };
        let mut endpoints = Vec::new();
        if !do_nothing {
            if let Some(urls) = k.get("node-urls") {
                for u in urls.split(',').map(|u| u.trim()).filter(|u| !u.is_empty()) {
                    let (h, p) = u.rsplit_once(':').ok_or_else(|| bad(format!("node-urls entry '{u}' must be host:port")))?;
                    let port = p.parse::<u16>().map_err(|_| bad(format!("node-urls entry '{u}' has a bad port")))?;
                    endpoints.push((h.trim_matches(|c| c == '[' || c == ']').to_string(), port));
                }
            }
            let host = match (k.get("ip"), k.get("host")) {
                (Some(a), Some(b)) if a != b => return Err(bad(format!("'ip'='{a}' and 'host'='{b}' disagree"))),
                (a, b) => a.or(b).cloned(),
            };
            match (host, k.get("port")) {
                (Some(h), Some(p)) => {
                    let port = p.parse::<u16>().map_err(|_| bad(format!("parameter 'port' must be a port number, not '{p}'")))?;
                    if !endpoints.contains(&(h.clone(), port)) {
                        endpoints.insert(0, (h, port));
                    }
                }
                (Some(_), None) => return Err(bad("parameter 'port' is missing (needed with 'ip'/'host')")),
                (None, Some(_)) => return Err(bad("parameter 'ip' (or 'host') is missing (needed with 'port')")),
                (None, None) => {}
            }
            if endpoints.is_empty() {
                return Err(bad("the sink needs 'ip' and 'port', or 'node-urls'"));
            }
        }
        let batch_enable = bool_param(&k, "batch.enable", true)?;
        let batch_bytes = if batch_enable { num_param::<usize>(&k, "batch.size-bytes")?.unwrap_or(1 << 20).clamp(1024, 64 << 20) } else { 1 };
        let batch_delay = match (num_param::<u64>(&k, "batch.max-delay-ms")?, num_param::<u64>(&k, "batch.max-delay-seconds")?) {
            (Some(ms), _) => Duration::from_millis(ms),
            (None, Some(s)) => Duration::from_secs(s),
            (None, None) => Duration::from_millis(20),
        };
        let compression = match k.get("compressor").map(|s| s.to_ascii_lowercase()) {
            None => Compression::None,
            Some(c) if c.is_empty() => Compression::None,
            Some(c) if c == "lz4" => Compression::Lz4,
            Some(c) if c == "zstd" => Compression::Zstd,
            Some(c) => return Err(bad(format!("compressor '{c}' is not supported (supported: lz4, zstd)"))),
        };
        let rate_limit = match num_param::<i64>(&k, "rate-limit-bytes-per-second")? {
            Some(r) if r > 0 => Some(r as u64),
            _ => None,
        };
        let user = k.get("user").or_else(|| k.get("username")).cloned().unwrap_or_else(|| "root".into());
        let password = k.get("password").cloned().unwrap_or_else(|| "root".into());
        Ok(PipeParams {
            source,
            sink: SinkParams { do_nothing, endpoints, user, password, batch_bytes, batch_delay, compression, rate_limit },
        })
    }
}

/// Renders parameters as SHOW PIPES does (`{key=value, ...}`), masking passwords.
pub fn render(kvs: &[(String, String)]) -> String {
    let inner: Vec<String> = kvs
        .iter()
        .map(|(k, v)| if k.to_ascii_lowercase().contains("password") || k.to_ascii_lowercase().ends_with("pwd") { format!("{k}=******") } else { format!("{k}={v}") })
        .collect();
    format!("{{{}}}", inner.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
    }

    #[test]
    fn a_source_is_within_another_when_it_selects_no_more() {
        let src = |v: &[(&str, &str)]| PipeParams::parse(&kv(v), &[], &kv(&[("sink", "do-nothing-sink")]), Precision::Ms).unwrap().source;
        let old = src(&[("source.path", "root.a.**"), ("start-time", "10")]);
        for (narrower, v) in [
            (true, src(&[("source.path", "root.a.d.**"), ("start-time", "10")])),
            (true, src(&[("source.path", "root.a.**"), ("start-time", "20"), ("inclusion", "data")])),
            (false, src(&[("source.path", "root.**"), ("start-time", "10")])),
            (false, src(&[("source.path", "root.a.**")])),
        ] {
            assert_eq!(v.within(&old), narrower, "{v:?}");
        }
        let own = src(&[("source.mode.double-living", "true")]);
        assert!(!src(&[]).within(&own), "forwarding the peers' writes too");
        let no_history = src(&[("source.path", "root.a.**"), ("start-time", "10"), ("history.enable", "false")]);
        assert!(no_history.within(&old) && !old.within(&no_history), "history enabled again selects what lies before the pipe");
    }

    #[test]
    fn seed_pipe_parses_with_defaults() {
        let p = PipeParams::parse(
            &kv(&[("source.mode.double-living", "true")]),
            &[],
            &kv(&[("sink", "iotdb-thrift-sink"), ("sink.ip", "iotdb-2"), ("sink.port", "6667")]),
            Precision::Ms,
        )
        .unwrap();
        assert!(p.source.double_living && !p.source.forwarding && p.source.history && p.source.realtime);
        assert!(p.source.inclusion.has("data.delete") && p.source.inclusion.has("schema.timeseries.ordinary.create"));
        assert_eq!(p.sink.endpoints, vec![("iotdb-2".to_string(), 6667)]);
        assert_eq!((p.sink.user.as_str(), p.sink.password.as_str()), ("root", "root"));
    }

    #[test]
    fn bad_parameters_are_named() {
        let sink = kv(&[("sink.ip", "h"), ("sink.port", "1")]);
        let e = PipeParams::parse(&kv(&[("source.colour", "red")]), &[], &sink, Precision::Ms).unwrap_err();
        assert!(e.message.contains("source.colour"), "{}", e.message);
        let e = PipeParams::parse(&kv(&[("mode.double-living", "true"), ("forwarding-pipe-requests", "true")]), &[], &sink, Precision::Ms).unwrap_err();
        assert!(e.message.contains("forwarding-pipe-requests"), "{}", e.message);
        let e = PipeParams::parse(&[], &[], &kv(&[("sink.ip", "h")]), Precision::Ms).unwrap_err();
        assert!(e.message.contains("'port'"), "{}", e.message);
        let e = PipeParams::parse(&[], &[], &kv(&[("sink", "kafka-sink")]), Precision::Ms).unwrap_err();
        assert!(e.message.contains("kafka-sink"), "{}", e.message);
        let e = PipeParams::parse(&kv(&[("inclusion", "data.nope")]), &[], &sink, Precision::Ms).unwrap_err();
        assert!(e.message.contains("data.nope"), "{}", e.message);
        assert!(PipeParams::parse(&[], &[], &kv(&[("connector", "do-nothing-sink")]), Precision::Ms).unwrap().sink.do_nothing);
        let p = PipeParams::parse(&kv(&[("extractor.inclusion", "data"), ("extractor.inclusion.exclusion", "data.delete")]), &[], &kv(&[("connector.node-urls", "a:1, b:2"), ("connector.compressor", "zstd")]), Precision::Ms).unwrap();
        assert!(p.source.inclusion.has("data.insert") && !p.source.inclusion.has("data.delete") && !p.source.inclusion.has("schema.ttl"));
        assert_eq!(p.sink.endpoints.len(), 2);
        assert_eq!(p.sink.compression, Compression::Zstd);
    }

    #[test]
    fn passwords_are_masked() {
        assert_eq!(render(&kv(&[("sink.ip", "a"), ("sink.password", "secret")])), "{sink.ip=a, sink.password=******}");
    }
}
