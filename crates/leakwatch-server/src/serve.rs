//! Running the router on a socket: the accept loop, per-connection limits, the
//! poller that follows the data directory, and graceful shutdown.
//!
//! The loop is hyper's own rather than `axum::serve` because hardening needs its
//! knobs: a bound on how long a client may take to send its headers (slow
//! clients holding connections), on how large they may be, and on how many
//! connections are open at once.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::http::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt;

use crate::state::AppState;

/// Limits and intervals of a running server.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// From a request's head to its answer.
    pub request_timeout: Duration,
    /// For a client to send a request's head once it has started.
    pub header_timeout: Duration,
    /// Open connections at once; more are closed on arrival.
    pub max_connections: usize,
    /// How often the manifest and the key table are checked for changes.
    pub reload_interval: Duration,
    /// How long shutdown waits for requests in flight.
    pub shutdown_grace: Duration,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            request_timeout: Duration::from_secs(10),
            header_timeout: Duration::from_secs(10),
            max_connections: 4096,
            reload_interval: Duration::from_millis(250),
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// Bytes of a request head: the request line and headers. HIBP requests are a
/// few hundred bytes; 431 beyond this.
const MAX_HEAD: usize = 32 * 1024;
/// Bytes hyper buffers per connection, in and out.
const MAX_BUF: usize = 64 * 1024;

/// Serves until `shutdown` completes, then stops accepting, lets requests in
/// flight finish (up to the grace period) and flushes the audit log.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    options: ServeOptions,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let poller = tokio::spawn(follow_changes(state.clone(), options.reload_interval));
    let router = crate::app(state.clone(), options.request_timeout);
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(options.max_connections));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(options.header_timeout)
        .max_header_size(MAX_HEAD)
        .max_buf_size(MAX_BUF);

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
        let _ = stream.set_nodelay(true);
        let service = router.clone().map_request(move |mut request: Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
            request
        });
        let connection = http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
            drop(slot);
        });
    }

    drop(listener);
    tracing::info!("shutting down: finishing requests in flight");
    if tokio::time::timeout(options.shutdown_grace, graceful.shutdown()).await.is_err() {
        tracing::warn!("shutdown grace period over; closing the remaining connections");
    }
    poller.abort();
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
