//! Listening socket, connection threads and orderly shutdown.

use std::fs::File;
use std::net::{TcpListener, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use duet_protocol::frame::serve_connection;
use duet_protocol::rpc::ClientServiceSyncProcessor;
use duet_storage::{Engine, EngineConfig};

use crate::config::Config;
use crate::identity;
use crate::info::Info;
use crate::service::{Connection, Shared};

/// A running server.
pub struct Server {
    listener: TcpListener,
    shared: Arc<Shared>,
    max_frame: usize,
    connection_timeout: Duration,
    max_clients: usize,
    _lock: File,
}

impl Server {
    /// Opens storage (replaying the WAL) and binds the client port.
    pub fn start(cfg: Config) -> Result<Server, String> {
        std::fs::create_dir_all(&cfg.system_dir).map_err(|e| format!("cannot create {}: {e}", cfg.system_dir.display()))?;
        // One server per data directory: a second one would corrupt the WAL.
        let lock_path = cfg.system_dir.join("LOCK");
        let lock = File::create(&lock_path).map_err(|e| format!("cannot create {}: {e}", lock_path.display()))?;
        lock.try_lock().map_err(|_| format!("{} is locked: another DuetDB server is using this data directory", lock_path.display()))?;
        let id = identity::load_or_create(&cfg.system_dir, &cfg)?;
        tracing::info!(instance = %id.instance, cluster = %cfg.cluster_name, precision = cfg.precision.name(), "instance identity");
        let engine = Engine::open(EngineConfig {
            wal_dir: cfg.wal_dir.clone(),
            wal_mode: cfg.wal_mode,
            wal_segment_bytes: cfg.wal_segment_bytes,
            instance: id.instance,
            precision: cfg.precision,
            auto_create_schema: cfg.auto_create_schema,
            default_database_level: cfg.default_database_level,
            data_dir: cfg.data_dir.clone(),
            memtable_bytes: cfg.memtable_bytes,
            compaction_file_count: cfg.compaction_files,
            wal_retention_bytes: cfg.wal_retention_bytes,
            summary_cache_bytes: cfg.summary_cache_bytes,
        })
        .map_err(|e| e.message)?;
        let addr = (cfg.rpc_address.as_str(), cfg.rpc_port)
            .to_socket_addrs()
            .map_err(|e| format!("cannot resolve dn_rpc_address '{}': {e}", cfg.rpc_address))?
            .next()
            .ok_or_else(|| format!("dn_rpc_address '{}' has no address", cfg.rpc_address))?;
        let listener = TcpListener::bind(addr).map_err(|e| format!("cannot listen on {addr} (dn_rpc_address:dn_rpc_port): {e}"))?;
        tracing::info!(%addr, "DuetDB is ready for clients");
        let users = Arc::new(crate::users::Users::load(&cfg.system_dir)?);
        let info = Info { config: cfg.clone(), instance: id.instance.to_string(), users };
        let engine = Arc::new(engine);
        // Pipes register the WAL they still need before any flush may release it.
        let pipes = duet_pipe::PipeManager::open(engine.clone(), &cfg.system_dir, cfg.rpc_port).map_err(|e| e.message)?;
        engine.start_background();
        let checker = info.clone();
        let receiver = duet_pipe::Receiver::new(engine.clone(), cfg.precision, Box::new(move |u, p| checker.check_password(u, p)));
        let queries = duet_query::running::Registry::new(1);
        let cqs = crate::cq::Cqs::open(engine.clone(), info.clone(), queries.clone())?;
        let shared = Arc::new(Shared { engine, pipes, receiver, info, next_session: AtomicI64::new(1), held_results: Default::default(), queries, cqs });
        if let Some(port) = cfg.metrics_port {
            crate::metrics::serve(cfg.rpc_address.clone(), port, shared.clone())?;
        }
        Ok(Server {
            listener,
            shared,
            max_frame: cfg.max_frame,
            connection_timeout: cfg.connection_timeout,
            max_clients: cfg.max_clients,
            _lock: lock,
        })
    }

    /// The engine (for shutdown and tests).
    pub fn engine(&self) -> &Arc<Engine> {
        &self.shared.engine
    }

    /// Accepts connections until `stop` is set, then syncs and closes storage.
    pub fn run(self, stop: Arc<AtomicBool>) -> Result<(), String> {
        self.listener.set_nonblocking(true).map_err(|e| e.to_string())?;
        let cq_thread = self.shared.cqs.start()?;
        let active = Arc::new(AtomicUsize::new(0));
        while !stop.load(Ordering::Acquire) {
            match self.listener.accept() {
                Ok((mut stream, peer)) => {
                    if active.load(Ordering::Acquire) >= self.max_clients {
                        tracing::warn!(%peer, limit = self.max_clients, "refusing connection: dn_rpc_max_concurrent_client_num reached");
                        continue;
                    }
                    stream.set_nonblocking(false).ok();
                    stream.set_nodelay(true).ok();
                    let shared = self.shared.clone();
                    let (max_frame, frame_timeout) = (self.max_frame, self.connection_timeout);
                    let active = active.clone();
                    active.fetch_add(1, Ordering::AcqRel);
                    // Gives the slot back however the connection ends, a panic included.
                    struct Slot(Arc<AtomicUsize>);
                    impl Drop for Slot {
                        fn drop(&mut self) {
                            self.0.fetch_sub(1, Ordering::AcqRel);
                        }
                    }
                    let slot = Slot(active);
                    let spawned = std::thread::Builder::new().name(format!("client-{peer}")).spawn(move || {
                        let _slot = slot;
                        let processor = ClientServiceSyncProcessor::new(Connection::new(shared));
                        // One write may block this long; a reply's writes stop at its deadline.
                        stream.set_write_timeout(Some(frame_timeout)).ok();
                        let control = stream.try_clone().ok();
                        let read_limit = |t| {
                            if let Some(c) = &control {
                                c.set_read_timeout(t).ok();
                            }
                        };
                        if let Err(e) = serve_connection(&mut stream, &processor, max_frame, Some(frame_timeout), &read_limit) {
                            tracing::debug!(%peer, "connection ended: {e}");
                        }
                    });
                    // (A thread that could not start dropped its closure, and the slot with it.)
                    if let Err(e) = spawned {
                        tracing::error!("cannot start a connection thread: {e}");
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::thread::sleep(Duration::from_millis(20)),
                Err(e) => {
                    tracing::warn!("accept failed: {e}");
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        }
        tracing::info!("shutting down: stopping continuous queries and pipes");
        self.shared.cqs.shutdown();
        // (It finishes the window it is running: its writes go to the WAL before it is closed.)
        if cq_thread.join().is_err() {
            tracing::error!("the continuous query thread panicked");
        }
        self.shared.pipes.shutdown();
        tracing::info!("shutting down: syncing the write-ahead log");
        self.shared.engine.close().map_err(|e| e.message)?;
        tracing::info!("shutdown complete");
        Ok(())
    }
}
