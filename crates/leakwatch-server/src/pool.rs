//! A small bounded pool of catalog connections for what reads the catalog
//! on demand (the dashboard's views, the ingest pages), instead of a new
//! connection per view: opening one costs a connection and the schema
//! checks (tens of milliseconds on PostgreSQL), and a burst of views must
//! not open as many connections as it has requests.
//!
//! A connection is opened when one is asked for and none is idle, up to the
//! pool's size; past it, callers wait for one to come back. A connection
//! comes back when its guard is dropped: a write transaction on it has ended
//! by then (committed, or rolled back by its own drop), and a PostgreSQL
//! connection that broke connects again at its next statement (db.rs). The
//! pool is blocking: use it off the async threads.

use std::sync::{Condvar, Mutex};

use leakwatch_catalog::{Catalog, CatalogError, CatalogLocation};

/// The default size: two connections per core, at least two and at most
/// eight (views are short; more would only queue in the database).
pub fn default_size() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (cores * 2).clamp(2, 8)
}

#[derive(Debug)]
struct Slots {
    idle: Vec<Catalog>,
    /// Connections open, idle or in use.
    open: usize,
}

/// The pool ([`CatalogPool::get`]).
#[derive(Debug)]
pub struct CatalogPool {
    location: CatalogLocation,
    size: usize,
    slots: Mutex<Slots>,
    returned: Condvar,
}

impl CatalogPool {
    /// A pool of at most `size` connections (at least one) to `location`;
    /// none is opened yet.
    pub fn new(location: CatalogLocation, size: usize) -> CatalogPool {
        CatalogPool {
            location,
            size: size.max(1),
            slots: Mutex::new(Slots { idle: Vec::new(), open: 0 }),
            returned: Condvar::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Slots> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A connection: an idle one, a new one if fewer than the size are
    /// open, or the next one returned. Blocking.
    pub fn get(&self) -> Result<Pooled<'_>, CatalogError> {
        let mut slots = self.lock();
        loop {
            if let Some(catalog) = slots.idle.pop() {
                return Ok(Pooled { pool: self, catalog: Some(catalog) });
            }
            if slots.open < self.size {
                slots.open += 1;
                drop(slots);
                return match Catalog::open_at(&self.location) {
                    Ok(catalog) => Ok(Pooled { pool: self, catalog: Some(catalog) }),
                    Err(e) => {
                        self.lock().open -= 1;
                        self.returned.notify_one();
                        Err(e)
                    }
                };
            }
            slots = self.returned.wait(slots).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Connections open now (idle or in use).
    #[cfg(test)]
    fn open(&self) -> usize {
        self.lock().open
    }
}

/// A connection of the pool; it goes back when dropped.
#[derive(Debug)]
pub struct Pooled<'a> {
    pool: &'a CatalogPool,
    catalog: Option<Catalog>,
}

impl std::ops::Deref for Pooled<'_> {
    type Target = Catalog;
    fn deref(&self) -> &Catalog {
        self.catalog.as_ref().expect("held until dropped")
    }
}

impl std::ops::DerefMut for Pooled<'_> {
    fn deref_mut(&mut self) -> &mut Catalog {
        self.catalog.as_mut().expect("held until dropped")
    }
}

impl Drop for Pooled<'_> {
    fn drop(&mut self) {
        if let Some(catalog) = self.catalog.take() {
            self.pool.lock().idle.push(catalog);
            self.pool.returned.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    #[test]
    fn connections_are_reused_and_never_more_than_the_size_are_open() {
        leakwatch_catalog::testing::each_backend(|location| {
            let pool = CatalogPool::new(location.clone(), 2);
            drop(pool.get().unwrap());
            drop(pool.get().unwrap());
            assert_eq!(pool.open(), 1, "an idle connection is reused");
            // Six callers at once, each holding a connection for a while:
            // never more than two open, and each caller is served.
            let busiest = AtomicUsize::new(0);
            let holding = AtomicUsize::new(0);
            std::thread::scope(|scope| {
                for _ in 0..6 {
                    scope.spawn(|| {
                        let catalog = pool.get().unwrap();
                        let now = holding.fetch_add(1, Ordering::SeqCst) + 1;
                        busiest.fetch_max(now, Ordering::SeqCst);
                        assert_eq!(catalog.keys_version().unwrap(), 0);
                        std::thread::sleep(Duration::from_millis(50));
                        holding.fetch_sub(1, Ordering::SeqCst);
                    });
                }
            });
            assert_eq!(busiest.load(Ordering::SeqCst), 2);
            assert_eq!(pool.open(), 2);
        });
    }

    #[test]
    fn a_connection_that_cannot_be_opened_frees_its_slot() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let pool =
            CatalogPool::new(CatalogLocation::Postgres(format!("postgres://lw@127.0.0.1:{port}/x")), 1);
        assert!(pool.get().is_err());
        assert!(pool.get().is_err(), "the failed open gave its slot back");
        assert_eq!(pool.open(), 0);
    }
}
