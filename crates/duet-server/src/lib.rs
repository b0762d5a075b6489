//! # DuetDB server
//!
//! The top of the stack: turns configuration into a running instance and serves the IoTDB client
//! protocol on one TCP port.
//!
//! # Layout
//! - [`config`]: `iotdb-system.properties` keys, embedded defaults, command-line overrides.
//! - [`cq`]: continuous queries: kept in the system directory, run by one thread as SELECT INTO
//!   over each window.
//! - [`identity`]: the instance id created at first start, and the parameters that may never change.
//! - [`info`]: version, build and SHOW CLUSTER facts, and login checks.
//! - [`users`]: the root user's password (default root, or a salted hash once changed).
//! - [`metrics`]: Prometheus text metrics (WAL, memtables, pipes) on the metrics port.
//! - [`service`]: the per-connection RPC handler (sessions, statements, inserts, paging).
//! - [`server`]: listening, accepting, connection threads, and graceful shutdown.

pub mod config;
pub mod cq;
pub mod identity;
pub mod info;
pub mod metrics;
pub mod server;
pub mod service;
pub mod users;
