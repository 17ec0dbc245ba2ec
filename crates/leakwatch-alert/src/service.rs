//! `serve`'s alert service: on its own thread and runtime, it runs the monitor
//! at start and whenever the server swaps in a new generation, and delivers
//! the outbox, retrying with backoff.
//!
//! Each attempt is counted, and its retry time set, in the catalog before it
//! is made: a server killed during a delivery leaves a batch that the next
//! start sends again, with the same delivery id. A batch is marked delivered
//! only once the receiver said so. The outbox is also polled, so that batches
//! the CLI's monitor wrote reach the receiver within a poll interval.
//!
//! Several servers may share one catalog (PostgreSQL): each runs this
//! service, but only the one holding the catalog's `alert-delivery` lease
//! delivers. It renews the lease every [`ServiceOptions::lease_renew`] and
//! stops delivering as soon as a renewal fails or is refused, and at the
//! latest when the lease time, counted on its own monotonic clock from before
//! its last successful renewal, runs out: by then the database (whose clock
//! decides expiry) may hand it to another server, which takes it over within
//! one renewal interval of its expiry. Every server runs the monitor; it
//! records each generation once, whoever runs it first.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use leakwatch_catalog::{lease_holder_name, now_ms, AlertRoute, Catalog, CatalogLocation, Delivery};
use leakwatch_store::{DataDir, Keys, Store};
use tokio::sync::{mpsc, watch};

use crate::destination::Destination;
use crate::error::{AlertError, Result};
use crate::exposure::Payload;
use crate::keys::AlertKeys;
use crate::retry::RetryPolicy;
use crate::webhook::WebhookClient;

/// How the service retries and how often it looks at the outbox.
#[derive(Debug, Clone, Copy)]
pub struct ServiceOptions {
    pub retry: RetryPolicy,
    /// How often the outbox is read for batches written by other processes.
    pub poll: Duration,
    /// How long the `alert-delivery` lease lasts when not renewed: how long
    /// deliveries stop when the server holding it dies.
    pub lease: Duration,
    /// How often the holder renews the lease (and others try to take it);
    /// well under `lease`, so that a slow renewal does not lose it.
    pub lease_renew: Duration,
}

impl Default for ServiceOptions {
    fn default() -> Self {
        ServiceOptions {
            retry: RetryPolicy::default(),
            poll: Duration::from_millis(100),
            lease: Duration::from_secs(30),
            lease_renew: Duration::from_secs(10),
        }
    }
}

/// The lease that makes one server at a time deliver the outbox.
pub const DELIVERY_LEASE: &str = "alert-delivery";

/// Batches started at once.
const BATCH: usize = 32;

/// The running service; [`AlertService::stop`] ends it.
pub struct AlertService {
    stop: watch::Sender<bool>,
    thread: JoinHandle<()>,
}

impl AlertService {
    /// Starts the service on `dir` and its own catalog; `generations` is the
    /// server's current generation, which it watches.
    pub fn start(
        dir: DataDir,
        generations: watch::Receiver<u64>,
        options: ServiceOptions,
    ) -> Result<AlertService> {
        let catalog = CatalogLocation::in_data_dir(dir.root());
        AlertService::start_with_catalog(dir, catalog, generations, options)
    }

    /// As [`AlertService::start`], with the catalog at `catalog_location`.
    pub fn start_with_catalog(
        dir: DataDir,
        catalog_location: CatalogLocation,
        generations: watch::Receiver<u64>,
        options: ServiceOptions,
    ) -> Result<AlertService> {
        if options.lease_renew >= options.lease {
            return Err(AlertError::Invalid(format!(
                "the alert lease ({:?}) must be longer than its renewal interval ({:?})",
                options.lease, options.lease_renew
            )));
        }
        let keys = dir.ensure_keys()?;
        let catalog = Catalog::open_at(&catalog_location)?;
        let webhooks = WebhookClient::new().map_err(AlertError::Invalid)?;
        let (stop, stopped) = watch::channel(false);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|source| AlertError::Io { what: "starting the alert runtime".into(), source })?;
        let thread = std::thread::Builder::new()
            .name("leakwatch-alerts".into())
            .spawn(move || {
                let service = Service {
                    dir,
                    catalog_location,
                    keys: Arc::new(keys),
                    catalog,
                    webhooks: Arc::new(webhooks),
                    options,
                    in_flight: HashSet::new(),
                    lease: LeaseState::new(),
                };
                runtime.block_on(service.run(generations, stopped));
            })
            .map_err(|source| AlertError::Io { what: "starting the alert thread".into(), source })?;
        Ok(AlertService { stop, thread })
    }

    /// Stops the service. Deliveries in flight are abandoned; they were
    /// counted, and are sent again by the next start.
    pub fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.thread.join();
    }
}

struct Service {
    dir: DataDir,
    catalog_location: CatalogLocation,
    keys: Arc<Keys>,
    catalog: Catalog,
    webhooks: Arc<WebhookClient>,
    options: ServiceOptions,
    in_flight: HashSet<i64>,
    lease: LeaseState,
}

/// This server's view of the delivery lease.
struct LeaseState {
    holder: String,
    /// Until when this server may deliver, on its monotonic clock; `None`
    /// when it does not hold the lease.
    held_until: Option<Instant>,
    /// When to renew (or try to take) it next.
    next_try: Instant,
}

impl LeaseState {
    fn new() -> LeaseState {
        LeaseState { holder: lease_holder_name(), held_until: None, next_try: Instant::now() }
    }

    fn held(&self) -> bool {
        self.held_until.is_some_and(|until| Instant::now() < until)
    }
}

/// What a delivery task reports back.
struct Attempted {
    id: i64,
    delivery_id: String,
    org: String,
    created_at_ms: i64,
    attempts: u32,
    result: std::result::Result<(), String>,
}

impl Service {
    async fn run(mut self, mut generations: watch::Receiver<u64>, mut stop: watch::Receiver<bool>) {
        let (done, mut results) = mpsc::unbounded_channel::<Attempted>();
        self.monitor().await;
        loop {
            self.keep_lease();
            if self.lease.held() {
                if let Err(e) = self.start_due(&done) {
                    tracing::error!(error = %e, "reading the alert outbox failed");
                }
            }
            let wait = self.wait();
            tokio::select! {
                _ = stop.changed() => break,
                changed = generations.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    self.monitor().await;
                }
                Some(attempted) = results.recv() => self.finish(attempted),
                () = tokio::time::sleep(wait) => {}
            }
        }
        if self.lease.held_until.is_some() {
            // Another server may take over now rather than at expiry.
            if let Err(e) = self.catalog.release_lease(DELIVERY_LEASE, &self.lease.holder) {
                tracing::warn!(error = %e, "releasing the alert delivery lease failed; it expires");
            }
        }
    }

    /// Renews the delivery lease, or tries to take it, when that is due.
    fn keep_lease(&mut self) {
        let asked = Instant::now();
        if asked < self.lease.next_try {
            return;
        }
        self.lease.next_try = asked + self.options.lease_renew;
        let was_held = self.lease.held();
        match self.catalog.take_lease(DELIVERY_LEASE, &self.lease.holder, self.options.lease) {
            Ok(lease) if lease.held => {
                // Counted from before the request: the database counted from
                // later, so this server stops first.
                self.lease.held_until = Some(asked + self.options.lease);
                if !was_held {
                    tracing::info!(holder = %self.lease.holder, "this server now delivers alerts");
                }
            }
            Ok(lease) => {
                if self.lease.held_until.is_some() {
                    tracing::warn!(holder = %lease.holder, "the alert delivery lease went to another server");
                }
                self.lease.held_until = None;
            }
            Err(e) => {
                if self.lease.held_until.is_some() {
                    tracing::error!(error = %e, "renewing the alert delivery lease failed; delivery stops until it is renewed");
                } else {
                    tracing::warn!(error = %e, "taking the alert delivery lease failed");
                }
                self.lease.held_until = None;
            }
        }
    }

    /// Runs the monitor on the newest generation, off this thread.
    async fn monitor(&mut self) {
        let (dir, keys, location) = (self.dir.clone(), self.keys.clone(), self.catalog_location.clone());
        let scanned = tokio::task::spawn_blocking(move || -> Result<_> {
            let mut catalog = Catalog::open_at(&location)?;
            if catalog.alert_routes()?.is_empty() {
                // Nobody to alert: the store need not be opened.
                return Ok((0, crate::monitor::ScanReport::default()));
            }
            let store = Store::open(&dir)?;
            crate::monitor::scan(&mut catalog, &store, &keys).map(|r| (store.generation(), r))
        })
        .await;
        match scanned {
            Ok(Ok((generation, report))) => {
                for e in &report.errors {
                    tracing::error!(generation, error = %e, "alert monitor");
                }
                if report.batches > 0 {
                    tracing::info!(
                        generation,
                        batches = report.batches,
                        exposures = report.exposures,
                        "new exposures queued for delivery"
                    );
                }
            }
            Ok(Err(e)) => {
                tracing::error!(error = %e, "the alert monitor failed; it runs again at the next generation")
            }
            Err(e) => tracing::error!(error = %e, "the alert monitor panicked"),
        }
    }

    /// How long to sleep: until the next batch is due, at most a poll
    /// interval, and not past the next lease renewal.
    fn wait(&self) -> Duration {
        let poll = self.options.poll.min(self.lease.next_try.saturating_duration_since(Instant::now()));
        if !self.lease.held() {
            return poll;
        }
        match self.catalog.next_due_ms() {
            Ok(Some(due)) => Duration::from_millis((due - now_ms()).clamp(0, poll.as_millis() as i64) as u64),
            _ => poll,
        }
    }

    /// Starts every due batch not already in flight.
    fn start_due(&mut self, done: &mpsc::UnboundedSender<Attempted>) -> Result<()> {
        let due = self.catalog.due_deliveries(now_ms(), BATCH)?;
        let due: Vec<Delivery> = due.into_iter().filter(|d| !self.in_flight.contains(&d.id)).collect();
        if due.is_empty() {
            return Ok(());
        }
        let routes: HashMap<i64, AlertRoute> =
            self.catalog.alert_routes()?.into_iter().map(|r| (r.id, r)).collect();
        let alert_keys = AlertKeys::new(&self.keys);
        for d in due {
            let Some(route) = routes.get(&d.alert_id) else { continue };
            let next = now_ms() + self.options.retry.delay(d.attempts + 1).as_millis() as i64;
            let attempts = self.catalog.begin_attempt(d.id, next)?;
            let opened = alert_keys
                .open(&d.sealed)
                .ok_or_else(|| format!("batch {} does not open with this key ring", d.delivery_id))
                .and_then(|json| {
                    let payload: Payload =
                        serde_json::from_slice(&json).map_err(|e| format!("batch {}: {e}", d.delivery_id))?;
                    Ok((json.to_vec(), payload))
                });
            let destination = Destination::from_route(route, &alert_keys).map_err(|e| e.to_string());
            let (json, payload, destination) = match (opened, destination) {
                (Ok((json, payload)), Ok(destination)) => (json, payload, destination),
                (Err(e), _) | (_, Err(e)) => {
                    // No retry opens it with the same keys.
                    tracing::error!(delivery = %d.delivery_id, error = %e, "alert batch given up");
                    self.catalog.attempt_failed(d.id, &e, true)?;
                    continue;
                }
            };
            self.in_flight.insert(d.id);
            let webhooks = self.webhooks.clone();
            let done = done.clone();
            let org = route.org.clone();
            tokio::spawn(async move {
                let result = deliver(&webhooks, &destination, &payload, json).await;
                let _ = done.send(Attempted {
                    id: d.id,
                    delivery_id: d.delivery_id,
                    org,
                    created_at_ms: d.created_at_ms,
                    attempts,
                    result,
                });
            });
        }
        Ok(())
    }

    /// Records how an attempt went.
    fn finish(&mut self, a: Attempted) {
        self.in_flight.remove(&a.id);
        let recorded = match &a.result {
            Ok(()) => {
                tracing::info!(org = %a.org, delivery = %a.delivery_id, attempts = a.attempts, "alert delivered");
                self.catalog.delivered(a.id)
            }
            Err(e) => {
                let age = Duration::from_millis((now_ms() - a.created_at_ms).max(0) as u64);
                let give_up = age >= self.options.retry.give_up_after;
                if give_up {
                    tracing::error!(org = %a.org, delivery = %a.delivery_id, attempts = a.attempts, error = %e,
                        "alert delivery given up after the retry window");
                } else {
                    tracing::warn!(org = %a.org, delivery = %a.delivery_id, attempts = a.attempts, error = %e,
                        "alert delivery failed; it will be retried");
                }
                self.catalog.attempt_failed(a.id, e, give_up)
            }
        };
        if let Err(e) = recorded {
            tracing::error!(delivery = %a.delivery_id, error = %e, "recording an alert attempt failed");
        }
    }
}

async fn deliver(
    webhooks: &WebhookClient,
    destination: &Destination,
    payload: &Payload,
    json: Vec<u8>,
) -> std::result::Result<(), String> {
    match destination {
        Destination::Webhook(w) => webhooks.send(w, &payload.delivery_id, json).await,
        Destination::Mail(m) => crate::smtp::send(m, payload, &json).await,
    }
}

/// Sends `payload` to `destination` now, outside the outbox (`org alert
/// --test`); blocks until the receiver answered.
pub fn send_now(destination: &Destination, payload: &Payload) -> std::result::Result<(), String> {
    let json = serde_json::to_vec(payload).map_err(|e| e.to_string())?;
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    let webhooks = WebhookClient::new()?;
    runtime.block_on(deliver(&webhooks, destination, payload, json))
}
