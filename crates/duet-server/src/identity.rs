//! The persistent identity of an instance, and the parameters that may never change after the
//! first start.

use std::fs;
use std::io::Write;
use std::path::Path;

use duet_common::version::InstanceId;

use crate::config::{parse_properties, Config};

/// What an instance is, fixed at its first start.
#[derive(Clone, Debug, PartialEq)]
pub struct Identity {
    /// Unique id, the origin of every local write.
    pub instance: InstanceId,
    /// When the instance was created (ms since epoch).
    pub created_ms: i64,
}

const FILE: &str = "instance.properties";

fn immutable(cfg: &Config) -> Vec<(&'static str, String)> {
    vec![
        ("cluster_name", cfg.cluster_name.clone()),
        ("timestamp_precision", cfg.precision.name().to_string()),
        ("dn_internal_address", cfg.dn_internal_address.clone()),
        ("cn_internal_address", cfg.cn_internal_address.clone()),
    ]
}

fn random_u64() -> u64 {
    let mut b = [0u8; 8];
    if let Ok(mut f) = fs::File::open("/dev/urandom") {
        use std::io::Read;
        if f.read_exact(&mut b).is_ok() {
            let v = u64::from_le_bytes(b);
            if v != 0 {
                return v;
            }
        }
    }
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos() as u64;
    t ^ ((std::process::id() as u64) << 32) | 1
}

/// Loads the identity from `system_dir`, creating it on first start. Fails, naming the parameter
/// and both values, when an immutable parameter differs from the recorded one.
pub fn load_or_create(system_dir: &Path, cfg: &Config) -> Result<Identity, String> {
    fs::create_dir_all(system_dir).map_err(|e| format!("cannot create {}: {e}", system_dir.display()))?;
    let path = system_dir.join(FILE);
    if path.exists() {
        let text = fs::read_to_string(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let m = parse_properties(&text);
        for (k, now) in immutable(cfg) {
            if let Some(was) = m.get(k) {
                if *was != now {
                    return Err(format!(
                        "parameter {k} cannot change after the first start: it was '{was}' and is now '{now}' (recorded in {})",
                        path.display()
                    ));
                }
            }
        }
        let instance = m
            .get("instance_id")
            .and_then(|s| InstanceId::parse(s))
            .ok_or_else(|| format!("{} has no valid instance_id", path.display()))?;
        let created_ms = m.get("created_ms").and_then(|s| s.parse().ok()).unwrap_or(0);
        return Ok(Identity { instance, created_ms });
    }
    let id = Identity { instance: InstanceId(random_u64()), created_ms: duet_common::time::Precision::Ms.now() };
    let mut text = String::from("# Written at the first start. Do not edit: these values may never change.\n");
    text.push_str(&format!("instance_id={}\ncreated_ms={}\n", id.instance, id.created_ms));
    for (k, v) in immutable(cfg) {
        text.push_str(&format!("{k}={v}\n"));
    }
    let tmp = system_dir.join(format!("{FILE}.tmp"));
    let mut f = fs::File::create(&tmp).map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    f.write_all(text.as_bytes()).and_then(|_| f.sync_all()).map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    fs::rename(&tmp, &path).map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    fs::File::open(system_dir).and_then(|d| d.sync_all()).map_err(|e| format!("cannot sync {}: {e}", system_dir.display()))?;
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_persists_and_guards_immutables() {
        let d = tempfile::tempdir().unwrap();
        let cfg = Config::load(d.path(), None, &[]).unwrap();
        let a = load_or_create(d.path(), &cfg).unwrap();
        assert_eq!(load_or_create(d.path(), &cfg).unwrap(), a);
        let changed = Config::load(d.path(), None, &[("timestamp_precision".into(), "us".into())]).unwrap();
        let e = load_or_create(d.path(), &changed).unwrap_err();
        assert!(e.contains("timestamp_precision") && e.contains("'ms'") && e.contains("'us'"), "{e}");
    }
}
