//! # DuetDB pipes
//!
//! Real-time replication between two instances, with IoTDB's pipe SQL. A pipe tails this instance's
//! write-ahead log, keeps the mutations its source selects (for a double-living pipe: only those whose
//! origin is this instance), and ships them, versions and origin intact, to the peer's client port
//! through the `pipeTransfer` RPC. The receiver applies them through the storage engine, which keeps
//! the highest applied sequence per origin in its own WAL: re-sent mutations are skipped, and a
//! handshake tells the sender where to resume.
//!
//! # Layout
//! - [`params`]: parsing and validation of SOURCE / PROCESSOR / SINK parameters.
//! - [`meta`]: durable pipe definitions, states and progress (files under the system directory).
//! - [`transfer`]: the pipeTransfer body formats (handshake, compressed and checksummed batches).
//! - [`source`]: what a pipe ships: origin, inclusion, path and time filtering of WAL mutations.
//! - [`sink`]: the sending side of one connection: endpoints with fail-over, handshake, rate limit.
//! - [`task`]: one running pipe: the tail-ship-confirm loop, retries with capped backoff, statistics.
//! - [`manager`]: all pipes of the instance; implements the SQL statements and SHOW PIPES.
//! - [`repair`]: how REPAIR PIPE sizes its requests for the peer's points.
//! - [`receiver`]: the receiving side of pipeTransfer: authentication, validation, application.

pub mod manager;
pub mod meta;
pub mod params;
pub mod receiver;
pub mod repair;
pub mod sink;
pub mod source;
pub mod task;
pub mod transfer;

pub use manager::PipeManager;
pub use receiver::{PeerSession, Receiver};
