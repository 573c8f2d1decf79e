//! One backend address: its in-flight count (what `drain` waits on) and its pool of idle
//! keep-alive connections.

use std::cell::Cell;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::net::TcpStream;
use tokio::sync::Notify;

use crate::upstream::Conn;

thread_local! {
    /// Which of a backend's pools this thread uses: 0 on the caller's runtime, `n` on the
    /// proxy's own worker thread `n`. A connection's task runs on the runtime that opened it, so
    /// handing it only to requests on the same thread keeps every request on one core.
    static POOL_SLOT: Cell<usize> = const { Cell::new(0) };
}

/// The pool slot of this thread.
pub(crate) fn pool_slot() -> usize {
    POOL_SLOT.with(Cell::get)
}

/// Makes this thread use pool slot `slot` (the proxy's worker threads call this once).
pub(crate) fn set_pool_slot(slot: usize) {
    POOL_SLOT.with(|s| s.set(slot));
}

/// Why no connection to a backend could be opened. Nothing of the request was sent, so another
/// backend may be tried.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConnectError {
    #[error("connecting to {0} timed out")]
    Timeout(SocketAddr),
    #[error("connecting to {0}: {1}")]
    Io(SocketAddr, #[source] std::io::Error),
}

pub(crate) struct Backend {
    pub(crate) addr: SocketAddr,
    /// Per pool slot (see `POOL_SLOT`): its idle connections and its part of the in-flight count,
    /// so worker threads never write to the same cache line for a request.
    slots: Box<[Slot]>,
    /// Woken when a slot's in-flight count drops to zero.
    idle_notify: Notify,
}

// Two cache lines, so that neighbouring slots never share one.
#[repr(align(128))]
struct Slot {
    /// Idle connections, most recently used at the back.
    pool: Mutex<VecDeque<IdleConn>>,
    in_flight: AtomicUsize,
}

struct IdleConn {
    conn: Conn,
    since: Instant,
}

/// Settings of the connection pool, copied from `ProxyConfig`.
#[derive(Clone, Copy)]
pub(crate) struct PoolSettings {
    pub(crate) connect_timeout: Duration,
    pub(crate) idle_timeout: Duration,
    pub(crate) max_idle: usize,
}

impl Backend {
    pub(crate) fn new(addr: SocketAddr, pool_slots: usize) -> Self {
        Backend {
            addr,
            slots: (0..pool_slots.max(1))
                .map(|_| Slot {
                    pool: Mutex::new(VecDeque::new()),
                    in_flight: AtomicUsize::new(0),
                })
                .collect(),
            idle_notify: Notify::new(),
        }
    }

    pub(crate) fn in_flight(&self) -> usize {
        self.slots
            .iter()
            .map(|slot| slot.in_flight.load(Ordering::Acquire))
            .sum()
    }

    fn slot_index(&self) -> usize {
        pool_slot() % self.slots.len()
    }

    /// Waits until nothing is in flight to this backend, or `deadline`. Returns whether drained.
    pub(crate) async fn wait_idle(&self, deadline: tokio::time::Instant) -> bool {
        loop {
            let notified = self.idle_notify.notified();
            tokio::pin!(notified);
            // Register before checking, so a decrement between the check and the wait is seen.
            notified.as_mut().enable();
            if self.in_flight() == 0 {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.in_flight() == 0;
            }
        }
    }

    /// This thread's pool.
    fn pool(&self) -> MutexGuard<'_, VecDeque<IdleConn>> {
        lock(&self.slots[self.slot_index()].pool)
    }

    /// An idle pooled connection ready for a request, if there is a fresh one. Connections the
    /// backend has closed meanwhile are dropped here, before anything is sent on them.
    /// `now` is the caller's recent reading of the clock.
    pub(crate) fn checkout(&self, now: Instant, settings: &PoolSettings) -> Option<Conn> {
        let mut pool = self.pool();
        while let Some(idle) = pool.pop_back() {
            if now.saturating_duration_since(idle.since) > settings.idle_timeout {
                // Everything before it is older still.
                pool.clear();
                return None;
            }
            if idle.conn.is_open() {
                return Some(idle.conn);
            }
        }
        None
    }

    /// Gives back a connection whose last exchange is complete (at `now`).
    pub(crate) fn put(&self, conn: Conn, now: Instant, settings: &PoolSettings) {
        let mut pool = self.pool();
        while pool
            .front()
            .is_some_and(|idle| now.duration_since(idle.since) > settings.idle_timeout)
        {
            pool.pop_front();
        }
        if pool.len() >= settings.max_idle {
            pool.pop_front();
        }
        pool.push_back(IdleConn { conn, since: now });
    }

    /// Closes idle connections older than the idle timeout (or all of them).
    pub(crate) fn close_idle(&self, older_than: Option<Duration>) {
        for slot in &self.slots {
            let mut pool = lock(&slot.pool);
            match older_than {
                None => pool.clear(),
                Some(age) => pool.retain(|idle| idle.since.elapsed() <= age),
            }
        }
    }

    /// Opens a new connection.
    pub(crate) async fn connect(&self, settings: &PoolSettings) -> Result<Conn, ConnectError> {
        let stream = tokio::time::timeout(settings.connect_timeout, TcpStream::connect(self.addr))
            .await
            .map_err(|_| ConnectError::Timeout(self.addr))?
            .map_err(|e| ConnectError::Io(self.addr, e))?;
        // Small requests and answers must leave at once, not wait for Nagle.
        let _ = stream.set_nodelay(true);
        Ok(Conn::new(stream))
    }
}

fn lock(pool: &Mutex<VecDeque<IdleConn>>) -> MutexGuard<'_, VecDeque<IdleConn>> {
    // A panic while holding this lock leaves a plain queue behind, still usable.
    pool.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A backend as one thread's copy of a backend set holds it: requests clone the handle, whose
/// reference count only that thread touches, rather than the backend's.
pub(crate) struct Handle(pub(crate) Arc<Backend>);

impl std::ops::Deref for Handle {
    type Target = Backend;
    fn deref(&self) -> &Backend {
        &self.0
    }
}

impl Handle {
    /// Counts a request as in flight to this backend until the returned guard is dropped.
    pub(crate) fn enter(self: &Arc<Self>) -> InFlight {
        let slot = self.0.slot_index();
        self.0.slots[slot].in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight {
            handle: Arc::clone(self),
            slot,
        }
    }
}

/// A request counted in its backend's in-flight number; dropping it ends the count.
pub(crate) struct InFlight {
    handle: Arc<Handle>,
    slot: usize,
}

impl InFlight {
    pub(crate) fn backend(&self) -> &Arc<Backend> {
        &self.handle.0
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let backend = &self.handle.0;
        if backend.slots[self.slot]
            .in_flight
            .fetch_sub(1, Ordering::AcqRel)
            == 1
        {
            // This slot is idle; `wait_idle` adds up the others.
            backend.idle_notify.notify_waiters();
        }
    }
}
