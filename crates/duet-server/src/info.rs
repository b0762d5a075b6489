//! Facts about this server that statements report: version, build, SHOW CLUSTER rows, users.

use duet_common::types::{DataType, Value};
use duet_query::{ResultSet, ServerInfo};

use crate::config::Config;

/// The product version reported by SHOW VERSION and SHOW CLUSTER.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Static facts about the running server.
#[derive(Clone, Debug)]
pub struct Info {
    /// Effective configuration.
    pub config: Config,
    /// This instance's id, shown as the build info suffix.
    pub instance: String,
    /// The root user's password.
    pub users: std::sync::Arc<crate::users::Users>,
}

impl Info {
    /// Whether the user/password pair may log in (clients, and peers' pipes).
    pub fn check_password(&self, user: &str, password: &str) -> bool {
        self.users.check(user, password)
    }
}

fn text(s: impl Into<String>) -> Option<Value> {
    Some(Value::Bytes(s.into().into_bytes()))
}

impl ServerInfo for Info {
    fn version(&self) -> String {
        VERSION.to_string()
    }

    fn users(&self) -> Vec<String> {
        self.users.list()
    }

    fn set_password(&self, user: &str, password: &str) -> Result<(), duet_common::Status> {
        self.users.set_password(user, password)
    }

    fn build_info(&self) -> String {
        format!("DuetDB {}", self.instance)
    }

    fn cluster(&self, details: bool) -> ResultSet {
        let c = &self.config;
        let mut columns = vec!["NodeID", "NodeType", "Status", "InternalAddress", "InternalPort"];
        if details {
            columns.extend(["ConfigConsensusPort", "RpcAddress", "RpcPort", "MppPort", "SchemaConsensusPort", "DataConsensusPort"]);
        }
        columns.extend(["Version", "BuildInfo"]);
        let types: Vec<DataType> = columns
            .iter()
            .map(|c| if c.ends_with("Port") || *c == "NodeID" { DataType::Int32 } else { DataType::Text })
            .collect();
        let mut rs = ResultSet { columns: columns.iter().map(|s| s.to_string()).collect(), types, ignore_time: true, times: vec![0, 0], cols: vec![vec![]; columns.len()] };
        let rows: [(i32, &str, &str, u16); 2] = [(0, "ConfigNode", &c.cn_internal_address, c.cn_internal_port), (1, "DataNode", &c.dn_internal_address, c.dn_internal_port)];
        for (id, kind, addr, port) in rows {
            let mut vals = vec![Some(Value::I32(id)), text(kind), text("Running"), text(addr), Some(Value::I32(port as i32))];
            if details {
                let cn = kind == "ConfigNode";
                let dn_or_none = |v: Option<Value>| if cn { None } else { v };
                vals.push(if cn { Some(Value::I32(c.cn_internal_port as i32 + 10)) } else { None });
                vals.push(dn_or_none(text(c.rpc_address.clone())));
                vals.push(dn_or_none(Some(Value::I32(c.rpc_port as i32))));
                vals.push(dn_or_none(Some(Value::I32(c.dn_internal_port as i32 + 10))));
                vals.push(dn_or_none(Some(Value::I32(c.dn_internal_port as i32 + 20))));
                vals.push(dn_or_none(Some(Value::I32(c.dn_internal_port as i32 + 30))));
            }
            vals.push(text(VERSION));
            vals.push(text(self.build_info()));
            for (i, v) in vals.into_iter().enumerate() {
                rs.cols[i].push(v);
            }
        }
        rs
    }

    fn nodes(&self, data: bool, databases: usize) -> ResultSet {
        let c = &self.config;
        // IoTDB's columns; the ConfigNode of one instance leads itself.
        let (columns, types, row): (&[&str], Vec<DataType>, Vec<Option<Value>>) = if data {
            (
                &["NodeID", "Status", "RpcAddress", "RpcPort", "DataRegionNum", "SchemaRegionNum"],
                vec![DataType::Int32, DataType::Text, DataType::Text, DataType::Int32, DataType::Int32, DataType::Int32],
                vec![Some(Value::I32(1)), text("Running"), text(c.rpc_address.clone()), Some(Value::I32(c.rpc_port as i32)), Some(Value::I32(databases as i32)), Some(Value::I32(databases as i32))],
            )
        } else {
            (
                &["NodeID", "Status", "InternalAddress", "InternalPort", "Role"],
                vec![DataType::Int32, DataType::Text, DataType::Text, DataType::Int32, DataType::Text],
                vec![Some(Value::I32(0)), text("Running"), text(c.cn_internal_address.clone()), Some(Value::I32(c.cn_internal_port as i32)), text("Leader")],
            )
        };
        ResultSet { columns: columns.iter().map(|s| s.to_string()).collect(), types, ignore_time: true, times: vec![0], cols: row.into_iter().map(|v| vec![v]).collect() }
    }

    fn variables(&self) -> Vec<(String, String)> {
        let c = &self.config;
        let wal = match c.wal_mode {
            duet_storage::SyncMode::Sync => "SYNC".to_string(),
            duet_storage::SyncMode::Async(d) => format!("ASYNC (fsync every {} ms)", d.as_millis()),
        };
        // IoTDB's names where the setting is the same; one instance holds one copy of everything
        // (the second copy is the dual-active peer, through the pipes).
        [
            ("ClusterName", c.cluster_name.clone()),
            ("DataReplicationFactor", "1".into()),
            ("SchemaReplicationFactor", "1".into()),
            ("TimestampPrecision", c.precision.name().to_string()),
            ("DefaultTTL(ms)", "9223372036854775807".into()),
            ("DefaultStorageGroupLevel", c.default_database_level.to_string()),
            ("EnableAutoCreateSchema", c.auto_create_schema.to_string()),
            ("WalMode", wal),
            ("MemtableSizeThreshold", c.memtable_bytes.to_string()),
            ("QueryMemoryLimitInByte", c.query_memory_bytes.to_string()),
            ("PipeWalRetentionBytes", c.wal_retention_bytes.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }
}
