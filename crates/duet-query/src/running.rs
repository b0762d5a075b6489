//! Statements in flight, for SHOW QUERIES and KILL QUERY.
//!
//! The server registers each statement it runs ([`Registry::start`]) and keeps the handle until
//! the statement's result is read to its end or closed, so a query whose rows a client is still
//! paging through is listed (and can be killed) as in IoTDB; the rows it holds for the client are
//! kept in the entry ([`Running::hold`]), so that a kill frees them at once, whatever the
//! client does. A kill marks the entry and takes it off the list: the query's loops call
//! [`checkpoint`] between series, pages and devices and stop there with 715 (QUERY_WAS_KILLED),
//! and so does the client's next fetch, or with 720 (QUERY_TIMEOUT) once the call doing its work has run
//! longer than the statement's timeout (each call, the first and every later fetch, gets the
//! whole timeout: a client that reads a large result slowly is not cut off). The entry is found through a thread-local that the server sets around
//! every call doing work for the statement ([`Running::enter`]); worker threads a query spawns
//! carry it over with [`current`] and [`within`].

use std::any::Any;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use duet_common::time::civil_from_days;
use duet_common::{Status, StatusCode};

/// IoTDB's message for a statement killed by KILL QUERY.
pub const KILLED_MESSAGE: &str = "Query was killed by others";
/// IoTDB's message for a statement that ran past its timeout.
pub const TIMEOUT_MESSAGE: &str = "Query execution is time out";

/// One statement in flight.
#[derive(Debug)]
pub struct Entry {
    /// IoTDB-style id: `yyyyMMdd_HHmmss_<sequence>_<DataNodeId>` (UTC start time).
    pub id: String,
    /// The statement as the client sent it.
    pub statement: String,
    /// Wall-clock start, milliseconds since the epoch.
    pub started_ms: i64,
    started: Instant,
    killed: AtomicBool,
    /// Longest a call working for the statement may run.
    timeout: Option<Duration>,
    /// End of the current call's time, in nanoseconds after `started` (0: none).
    deadline: AtomicU64,
    /// What the statement holds for its client between fetches (a kill drops it).
    held: Mutex<Option<Box<dyn Any + Send>>>,
}

impl Entry {
    /// Seconds since the statement started.
    pub fn elapsed_secs(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// Whether KILL QUERY marked it.
    pub fn is_killed(&self) -> bool {
        self.killed.load(Ordering::Relaxed)
    }
}

/// The statements in flight on this instance.
#[derive(Debug)]
pub struct Registry {
    node_id: i32,
    seq: AtomicU64,
    map: Mutex<BTreeMap<String, Arc<Entry>>>,
}

/// A registered statement; dropping it takes the statement off the list.
#[derive(Debug)]
pub struct Running {
    entry: Arc<Entry>,
    registry: Arc<Registry>,
}

impl Registry {
    /// An empty registry for the DataNode `node_id` (the id in query ids and SHOW QUERIES).
    pub fn new(node_id: i32) -> Arc<Registry> {
        Arc::new(Registry { node_id, seq: AtomicU64::new(0), map: Mutex::new(BTreeMap::new()) })
    }

    /// The DataNode id of this instance.
    pub fn node_id(&self) -> i32 {
        self.node_id
    }

    /// Registers a statement starting now (`now_ms`: wall clock, milliseconds since the epoch)
    /// whose calls may each run up to `timeout`.
    pub fn start(self: &Arc<Self>, statement: &str, now_ms: i64, timeout: Option<Duration>) -> Running {
        let n = self.seq.fetch_add(1, Ordering::Relaxed) % 100_000;
        let secs = now_ms.div_euclid(1000);
        let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
        let s = secs.rem_euclid(86_400);
        let id = format!("{y:04}{mo:02}{d:02}_{:02}{:02}{:02}_{n:05}_{}", s / 3600, s / 60 % 60, s % 60, self.node_id);
        let entry = Arc::new(Entry {
            id: id.clone(),
            statement: statement.trim().to_string(),
            started_ms: now_ms,
            started: Instant::now(),
            killed: AtomicBool::new(false),
            timeout,
            deadline: AtomicU64::new(0),
            held: Mutex::new(None),
        });
        self.map.lock().unwrap_or_else(|p| p.into_inner()).insert(id, entry.clone());
        Running { entry, registry: self.clone() }
    }

    /// The statements in flight, by id.
    pub fn list(&self) -> Vec<Arc<Entry>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner()).values().cloned().collect()
    }

    /// Kills the statement `id`: marks it, takes it off the list and drops what it holds for
    /// its client; false when no such statement is in flight.
    pub fn kill(&self, id: &str) -> bool {
        let entry = self.map.lock().unwrap_or_else(|p| p.into_inner()).remove(id);
        entry.map(|e| kill_entry(&e)).is_some()
    }

    /// Kills every statement in flight except `except` (the KILL statement itself); returns how
    /// many.
    pub fn kill_all(&self, except: Option<&str>) -> usize {
        let killed: Vec<Arc<Entry>> = {
            let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
            let ids: Vec<String> = map.keys().filter(|id| Some(id.as_str()) != except).cloned().collect();
            ids.iter().filter_map(|id| map.remove(id)).collect()
        };
        killed.iter().for_each(|e| kill_entry(e));
        killed.len()
    }
}

impl Running {
    /// The registered statement.
    pub fn entry(&self) -> &Arc<Entry> {
        &self.entry
    }

    /// Makes this statement the current one of this thread until the guard drops, for a call
    /// that may run up to the statement's timeout from now.
    pub fn enter(&self) -> Entered {
        if let Some(t) = self.entry.timeout {
            let end = self.entry.started.elapsed().saturating_add(t).as_nanos().min(u64::MAX as u128) as u64;
            self.entry.deadline.store(end.max(1), Ordering::Relaxed);
        }
        Entered { previous: CURRENT.with(|c| c.replace(Some(self.entry.clone()))) }
    }

    /// Keeps `what` (a result waiting for fetches) with the statement, for [`Running::with_held`].
    pub fn hold(&self, what: Box<dyn Any + Send>) {
        *self.entry.held.lock().unwrap_or_else(|p| p.into_inner()) = Some(what);
    }

    /// Runs `f` on what the statement holds (None once a kill dropped it).
    pub fn with_held<R>(&self, f: impl FnOnce(Option<&mut Box<dyn Any + Send>>) -> R) -> R {
        f(self.entry.held.lock().unwrap_or_else(|p| p.into_inner()).as_mut())
    }

    /// Runs `f` with this statement current on this thread.
    pub fn enter_with<R>(&self, f: impl FnOnce() -> R) -> R {
        let _current = self.enter();
        f()
    }

    /// 715 if the statement was killed.
    pub fn check(&self) -> Result<(), Status> {
        check_entry(&self.entry)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.registry.map.lock().unwrap_or_else(|p| p.into_inner()).remove(&self.entry.id);
    }
}

thread_local! {
    static CURRENT: RefCell<Option<Arc<Entry>>> = const { RefCell::new(None) };
}

/// Restores the thread's previous current statement when dropped.
#[must_use]
pub struct Entered {
    previous: Option<Arc<Entry>>,
}

impl Drop for Entered {
    fn drop(&mut self) {
        let previous = self.previous.take();
        CURRENT.with(|c| *c.borrow_mut() = previous);
    }
}

/// The statement this thread works for, to hand to worker threads.
pub fn current() -> Option<Arc<Entry>> {
    CURRENT.with(|c| c.borrow().clone())
}

/// Runs `f` on this (worker) thread as part of `entry`'s statement.
pub fn within<R>(entry: Option<Arc<Entry>>, f: impl FnOnce() -> R) -> R {
    let _g = Entered { previous: CURRENT.with(|c| c.replace(entry)) };
    f()
}

fn kill_entry(e: &Entry) {
    e.killed.store(true, Ordering::Relaxed);
    // (Waits for a fetch reading a page of it: the flag above cuts that short.)
    let held = e.held.lock().unwrap_or_else(|p| p.into_inner()).take();
    drop(held);
}

fn check_entry(e: &Entry) -> Result<(), Status> {
    if e.is_killed() {
        return Err(Status::new(StatusCode::QueryWasKilled, KILLED_MESSAGE));
    }
    let deadline = e.deadline.load(Ordering::Relaxed);
    if deadline != 0 && e.started.elapsed().as_nanos() > deadline as u128 {
        let ms = e.timeout.map_or(0, |t| t.as_millis());
        return Err(Status::new(
            StatusCode::QueryTimeout,
            format!("{TIMEOUT_MESSAGE}: it ran longer than {ms} ms (the request's timeout, or query_timeout_threshold)"),
        ));
    }
    Ok(())
}

/// Stops a statement that KILL QUERY marked (715); cheap enough to call per series or page.
pub fn checkpoint() -> Result<(), Status> {
    CURRENT.with(|c| match &*c.borrow() {
        Some(e) => check_entry(e),
        None => Ok(()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_list_kill_and_checkpoints() {
        let r = Registry::new(1);
        // 2024-03-01T12:34:56Z
        let a = r.start(" select * from root.db.d ", 1_709_296_496_000, None);
        let b = r.start("show queries", 1_709_296_496_500, None);
        assert_eq!(a.entry().id, "20240301_123456_00000_1");
        assert_eq!(b.entry().id, "20240301_123456_00001_1");
        assert_eq!(a.entry().statement, "select * from root.db.d");
        assert_eq!(r.list().len(), 2);
        assert!(checkpoint().is_ok(), "no statement on this thread");
        {
            let _g = a.enter();
            assert!(checkpoint().is_ok());
            assert!(r.kill(&a.entry().id));
            assert_eq!(checkpoint().unwrap_err().code, StatusCode::QueryWasKilled);
            // A worker thread started for it sees the kill too.
            let cur = current();
            let seen = std::thread::scope(|s| s.spawn(|| within(cur, checkpoint)).join().unwrap());
            assert_eq!(seen.unwrap_err().message, KILLED_MESSAGE);
        }
        assert!(checkpoint().is_ok(), "the guard restored the thread");
        assert!(!r.kill("20240301_123456_99999_1"));
        // Killed: off the list, and what it held for its client is gone.
        assert_eq!(r.list().iter().map(|e| e.id.clone()).collect::<Vec<_>>(), vec![b.entry().id.clone()]);
        b.hold(Box::new(vec![1u8; 10]));
        assert!(b.with_held(|h| h.is_some()));
        let c = r.start("select 2", 0, None);
        assert_eq!(r.kill_all(Some(&c.entry().id)), 1);
        assert!(b.check().is_err() && c.check().is_ok());
        assert!(b.with_held(|h| h.is_none()), "a kill drops the held result");
        drop(a);
        assert_eq!(r.list().iter().map(|e| e.id.clone()).collect::<Vec<_>>(), vec![c.entry().id.clone()]);
    }

    #[test]
    fn each_call_gets_the_whole_timeout() {
        let r = Registry::new(1);
        let q = r.start("select 1", 0, Some(Duration::from_millis(30)));
        assert!(q.check().is_ok(), "not entered yet: no call runs");
        {
            let _g = q.enter();
            assert!(checkpoint().is_ok());
            std::thread::sleep(Duration::from_millis(60));
            let e = checkpoint().unwrap_err();
            assert_eq!(e.code, StatusCode::QueryTimeout);
            assert!(e.message.starts_with(TIMEOUT_MESSAGE) && e.message.contains("30 ms"), "{}", e.message);
        }
        // The next call (a fetch) starts its own 30 ms.
        let _g = q.enter();
        assert!(checkpoint().is_ok());
    }
}
