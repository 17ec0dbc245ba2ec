//! `leakwatch serve`: the HIBP-compatible HTTP API over the data directory, until
//! SIGTERM or Ctrl-C, then a graceful stop (requests in flight finish, the audit
//! log is flushed). Beside it, the alert service delivers the outbox
//! (`leakwatch-alert`).

use std::io::IsTerminal;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use anyhow::{Context, Result};
use leakwatch_alert::{AlertService, RetryPolicy, ServiceOptions};
use leakwatch_server::{serve_threads, AppState, Limits, RangeOwnDumps, ServeOptions};
use leakwatch_store::DataDir;
use tracing_subscriber::EnvFilter;

use crate::cli::{RangeOwnDumpsArg, ServeArgs};
use crate::Outcome;

pub fn run(dir: &DataDir, args: ServeArgs) -> Result<Outcome> {
    // Logs go to stderr; RUST_LOG refines them (e.g. RUST_LOG=leakwatch_server=debug).
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();

    let limits = Limits {
        key_per_minute: args.rate_limit_per_minute,
        anonymous_per_minute: args.anonymous_rate_limit_per_minute,
        range_cache_bytes: usize::try_from(args.range_cache).unwrap_or(usize::MAX),
        range_own_dumps: match args.range_own_dumps {
            RangeOwnDumpsArg::Anonymous => RangeOwnDumps::Anonymous,
            RangeOwnDumpsArg::Key => RangeOwnDumps::Key,
            RangeOwnDumpsArg::Off => RangeOwnDumps::Off,
        },
        ..Limits::default()
    };
    let options = ServeOptions {
        request_timeout: Duration::from_secs(args.request_timeout),
        write_timeout: Duration::from_secs(args.write_timeout),
        max_connections: args.max_connections,
        max_connections_per_client: args.max_connections_per_client,
        trusted_proxy: args.trusted_proxy,
        ..ServeOptions::default()
    };
    let addr = resolve(&args.listen)?;
    let threads = args.threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let catalog = super::catalog_location(dir);
    let (state, audit_writer) = AppState::open_with_catalog(dir.clone(), catalog.clone(), limits)
        .with_context(|| format!("opening {} with the catalog {catalog}", dir.location()))?;
    let generation = state.snapshot().generation();
    let alert_options = ServiceOptions {
        retry: RetryPolicy {
            base: args.alert_retry_base,
            cap: args.alert_retry_cap,
            give_up_after: args.alert_retry_for,
        },
        lease: args.alert_lease,
        lease_renew: args.alert_lease_renew,
        ..ServiceOptions::default()
    };
    let alerts =
        AlertService::start_with_catalog(dir.clone(), catalog.clone(), state.generations(), alert_options)
            .context("starting the alert delivery")?;
    serve_threads(
        addr,
        threads,
        state,
        options,
        |addr| {
            if !addr.ip().is_loopback() {
                tracing::warn!(%addr, "listening beyond this machine: put a TLS proxy in front");
            }
            tracing::info!(generation, threads, data = %dir.location(), %catalog, "listening on http://{addr}");
        },
        shutdown_signal(),
    )
    .with_context(|| format!("serving on {}", args.listen))?;
    alerts.stop();
    // Every server thread has ended and dropped its state, which closes the
    // audit channel; the writer finishes what is queued and ends.
    audit_writer.join();
    tracing::info!("stopped");
    Ok(Outcome::Found)
}

/// The one address `--listen` names (a host name must resolve to one).
fn resolve(listen: &str) -> Result<SocketAddr> {
    listen
        .to_socket_addrs()
        .with_context(|| format!("{listen:?} is not an address to listen on"))?
        .next()
        .with_context(|| format!("{listen:?} resolves to no address"))
}

/// Completes on SIGTERM (service managers, `kill`) or SIGINT (Ctrl-C).
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "no SIGTERM handler; stop with Ctrl-C");
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
