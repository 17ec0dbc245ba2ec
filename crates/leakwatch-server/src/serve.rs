//! Running the router on a socket: the accept loop, per-connection limits, the
//! poller that follows the data directory, and graceful shutdown.
//!
//! The loop is hyper's own rather than `axum::serve` because hardening needs its
//! knobs: a bound on how long a client may take to send its headers (slow
//! clients holding connections), on how large they may be, on how long it may
//! take to read an answer (a client that stops reading would otherwise hold its
//! connection, and the answer's memory, for ever), and on how many connections
//! are open at once.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::http::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::Semaphore;
use tower::ServiceExt;

use crate::client::{self, ClientIp, Connections};
use crate::fast_range::{self, Outcome, Prefixed};
use crate::state::AppState;

/// Limits and intervals of a running server.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// From a request's head to its answer.
    pub request_timeout: Duration,
    /// For a client to send a request's head once it has started.
    pub header_timeout: Duration,
    /// For a client to take an answer: on the range fast path, each answer
    /// must be written whole within it; through hyper, once a write has to
    /// wait for the client, everything queued must be written within it. A
    /// client that stops reading loses its connection.
    pub write_timeout: Duration,
    /// Open connections at once; more are closed on arrival.
    pub max_connections: usize,
    /// How often the manifest and the key table are checked for changes.
    pub reload_interval: Duration,
    /// How long shutdown waits for requests in flight.
    pub shutdown_grace: Duration,
    /// How often the keys' rate-limit usage is exchanged with the other
    /// replicas of a shared catalog.
    pub rate_sync_interval: Duration,
    /// Open connections at once from one client (an IPv4 address, an IPv6
    /// /64); more are closed on arrival. The trusted proxy is not capped.
    pub max_connections_per_client: usize,
    /// A reverse proxy whose `X-Forwarded-For` names the client: only on its
    /// connections is the header believed.
    pub trusted_proxy: Option<IpAddr>,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            request_timeout: Duration::from_secs(10),
            header_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(30),
            max_connections: 4096,
            reload_interval: Duration::from_millis(250),
            shutdown_grace: Duration::from_secs(10),
            rate_sync_interval: Duration::from_millis(250),
            max_connections_per_client: 256,
            trusted_proxy: None,
        }
    }
}

/// Bytes of a request head: the request line and headers. HIBP requests are a
/// few hundred bytes; 431 beyond this.
const MAX_HEAD: usize = 32 * 1024;
/// Bytes hyper buffers per connection, in and out.
const MAX_BUF: usize = 64 * 1024;

/// Serves on one runtime until `shutdown` completes, following the data
/// directory meanwhile; then stops accepting, lets requests in flight finish (up
/// to the grace period) and flushes the audit log.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    options: ServeOptions,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let poller = tokio::spawn(follow_changes(state.clone(), options.reload_interval));
    let sharer = tokio::spawn(share_rate_limits(state.clone(), options.rate_sync_interval));
    let shutdown = async {
        shutdown.await;
        tracing::info!("shutting down: finishing requests in flight");
    };
    let clients = Arc::new(Connections::default());
    let served = accept_loop(listener, state, &options, &clients, shutdown).await;
    poller.abort();
    sharer.abort();
    served
}

/// Serves on `threads` threads, each with its own single-threaded runtime, all
/// accepting from one listening socket: a request never leaves the thread that
/// accepted its connection, so the hot path has no work stealing and no
/// cross-thread wake-ups (nginx's model; measured faster than one shared
/// multi-threaded runtime, and far steadier when the cores are contended). A
/// shared socket rather than one per thread (`SO_REUSEPORT`) lets whichever
/// thread is idle take the next connection, instead of a hash of its address.
/// The calling thread follows the data directory and waits for `shutdown`;
/// `listening` is told the bound address first.
pub fn serve_threads(
    addr: SocketAddr,
    threads: usize,
    state: AppState,
    options: ServeOptions,
    listening: impl FnOnce(SocketAddr),
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let threads = threads.max(1);
    let control = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let (bound, sockets) = control.block_on(async {
        let socket = if addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
        socket.set_reuseaddr(true)?;
        socket.bind(addr)?;
        let listener = socket.listen(1024)?.into_std()?;
        let bound = listener.local_addr()?;
        let mut sockets = Vec::with_capacity(threads);
        for _ in 1..threads {
            sockets.push(listener.try_clone()?);
        }
        sockets.push(listener);
        std::io::Result::Ok((bound, sockets))
    })?;
    listening(bound);

    let options = ServeOptions { max_connections: options.max_connections.div_ceil(threads), ..options };
    let (stop, stopped) = tokio::sync::watch::channel(false);
    // One table for all threads: a client's connections land on any of them.
    let clients = Arc::new(Connections::default());
    let mut workers = Vec::with_capacity(threads);
    for (i, socket) in sockets.into_iter().enumerate() {
        let (state, options, mut stopped) = (state.clone(), options.clone(), stopped.clone());
        let clients = clients.clone();
        let spawned = std::thread::Builder::new().name(format!("leakwatch-http-{i}")).spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime.block_on(async {
                let listener = TcpListener::from_std(socket)?;
                let shutdown = async move {
                    let _ = stopped.wait_for(|stop| *stop).await;
                };
                accept_loop(listener, state, &options, &clients, shutdown).await
            })
        });
        match spawned {
            Ok(worker) => workers.push(worker),
            Err(e) => {
                // Stop the threads already serving before giving up.
                let _ = stop.send(true);
                workers.into_iter().for_each(|w| drop(w.join()));
                return Err(e);
            }
        }
    }
    control.block_on(async {
        let sharer = tokio::spawn(share_rate_limits(state.clone(), options.rate_sync_interval));
        let poller = tokio::spawn(follow_changes(state, options.reload_interval));
        shutdown.await;
        poller.abort();
        sharer.abort();
    });
    tracing::info!("shutting down: finishing requests in flight");
    let _ = stop.send(true);
    let mut result = Ok(());
    for worker in workers {
        match worker.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => result = Err(e),
            Err(_) => result = Err(std::io::Error::other("a server thread panicked")),
        }
    }
    result
}

/// Accepts connections until `shutdown`, then drains them and flushes the
/// audit log.
async fn accept_loop(
    listener: TcpListener,
    state: AppState,
    options: &ServeOptions,
    clients: &Arc<Connections>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let router = crate::app(state.clone(), options.request_timeout);
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(options.max_connections));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(options.header_timeout)
        .max_header_size(MAX_HEAD)
        .max_buf_size(MAX_BUF);

    // Tells connections on the range fast path to close between requests.
    let (stopping, stop) = tokio::sync::watch::channel(false);

    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors or a connection reset before
                    // accept: wait a moment rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "connection refused: too many open connections");
            continue;
        };
        let client_slot = if client::is_trusted_proxy(peer, options.trusted_proxy) {
            None
        } else {
            let Some(slot) = clients.admit(peer.ip(), options.max_connections_per_client) else {
                tracing::warn!(%peer, "connection refused: too many open connections from this client");
                continue;
            };
            Some(slot)
        };
        let _ = stream.set_nodelay(true);
        let trusted_proxy = options.trusted_proxy;
        let service = router.clone().map_request(move |mut request: Request<Incoming>| {
            let ip = client::request_ip(peer, trusted_proxy, request.headers());
            request.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
            request.extensions_mut().insert(ClientIp(ip));
            request
        });
        // Held for the connection's life, so that shutdown waits for it.
        let watcher = graceful.watcher();
        let (http, state, mut stop) = (http.clone(), state.clone(), stop.clone());
        let (header_timeout, write_timeout) = (options.header_timeout, options.write_timeout);
        tokio::spawn(async move {
            let timeouts = fast_range::Timeouts { header: header_timeout, write: write_timeout };
            let outcome = fast_range::serve(&stream, &state, timeouts, MAX_HEAD, &mut stop).await;
            if let Outcome::Handoff(read) = outcome {
                let io = TokioIo::new(Prefixed::new(read, stream, write_timeout));
                let connection = http.serve_connection(io, TowerToHyperService::new(service));
                if let Err(e) = watcher.watch(connection).await {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
            }
            drop(client_slot);
            drop(slot);
        });
    }

    drop(listener);
    let _ = stopping.send(true);
    tracing::debug!("stopped accepting; finishing requests in flight");
    if tokio::time::timeout(options.shutdown_grace, graceful.shutdown()).await.is_err() {
        tracing::warn!("shutdown grace period over; closing the remaining connections");
    }
    if !state.flush_audit().await {
        tracing::error!("the audit log could not be flushed");
    }
    Ok(())
}

/// Polls the manifest and the key table and swaps in what changed. Runs the
/// blocking checks off the async workers; a failure keeps the previous
/// generation (or keys) serving and is logged once until it changes.
async fn follow_changes(state: AppState, interval: Duration) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_error = String::new();
    loop {
        tick.tick().await;
        let s = state.clone();
        let checked = tokio::task::spawn_blocking(move || {
            let mut errors = Vec::new();
            if let Err(e) = s.reload_store() {
                errors.push(format!("reloading the index: {e}"));
            }
            if let Err(e) = s.reload_keys() {
                errors.push(format!("reloading the API keys: {e}"));
            }
            errors.join("; ")
        })
        .await;
        let error = checked.unwrap_or_else(|e| format!("the reload check failed: {e}"));
        if !error.is_empty() && error != last_error {
            tracing::error!(error = %error, "still serving what was loaded before");
        }
        last_error = error;
    }
}

/// Exchanges the keys' rate-limit usage with the other replicas every
/// `interval`, off the async workers, when the catalog is shared (and does
/// nothing otherwise). A failed exchange is logged once until it changes; the
/// replica goes on from its own buckets meanwhile.
async fn share_rate_limits(state: AppState, interval: Duration) {
    if !state.shares_rate_limits() {
        return;
    }
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_error = String::new();
    loop {
        tick.tick().await;
        let s = state.clone();
        let shared = tokio::task::spawn_blocking(move || s.share_rate_limits(interval)).await;
        let error = match shared {
            Ok(Ok(())) => String::new(),
            Ok(Err(e)) => e.to_string(),
            Err(e) => format!("the rate-limit exchange failed: {e}"),
        };
        if !error.is_empty() && error != last_error {
            tracing::error!(error = %error, "rate limits are counted on this server alone until the catalog answers");
        }
        last_error = error;
    }
}
