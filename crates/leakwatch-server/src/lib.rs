//! The leakwatch HTTP API: Have I Been Pwned API v3 and Pwned Passwords,
//! answered from a leakwatch data directory, so that existing HIBP clients only
//! change their base URL.
//!
//! - [`app`] builds the router from an [`AppState`]; tests drive it without a
//!   socket.
//! - [`serve`] runs it on a listener: HTTP/1.1 with header-size and header-time
//!   limits, connection caps (in total and per client), a request time limit, a
//!   write deadline, the index and the keys followed on disk while running, and
//!   a graceful shutdown.
//! - [`ingest_log`] logs an ingest's progress and outcome in the catalog, for
//!   the web interface's ingest status page.
//!
//! **Architecture Invariant:** the server never opens a segment or the manifest
//! itself; it reads through `leakwatch-store` ([`leakwatch_store::Store`],
//! [`leakwatch_store::RangeIndex`]) and keeps mutable state in
//! `leakwatch-catalog`.
//!
//! **Architecture Invariant:** a response never carries internal error text;
//! every failure goes through [`AppError`], which logs details and answers in
//! HIBP's shapes.

pub mod api;
mod audit;
mod auth;
mod client;
mod error;
mod fast_range;
pub mod ingest_log;
mod limiter;
pub mod pool;
mod query;
mod range;
mod serve;
mod state;
mod web;

use std::time::Duration;

use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;

pub use api::{parse_account, SearchedAccount};
pub use audit::{audit_keys, AuditWriter};
pub use auth::KEY_HEADER;
pub use error::AppError;
pub use ingest_log::IngestLog;
pub use serve::{serve, serve_threads, ServeOptions};
pub use state::{AppState, Limits, RangeOwnDumps, Snapshot, StartError};

/// Requests carry no body worth having (every endpoint is a GET); anything
/// larger than this is refused before it is read.
const MAX_BODY: usize = 16 * 1024;

/// The router, with its limits and its panic guard. `request_timeout` bounds the
/// time from a request's head being read to its answer on the v3 API.
pub fn app(state: AppState, request_timeout: Duration) -> Router {
    let v3 = Router::new()
        .route("/breachedaccount/{account}", get(api::search::breached_account))
        .route("/breacheddomain/{domain}", get(api::search::breached_domain))
        .route("/breaches", get(api::catalog::breaches))
        .route("/breach/{name}", get(api::catalog::breach))
        .route("/latestbreach", get(api::catalog::latest))
        .route("/dataclasses", get(api::catalog::data_classes))
        .route("/subscribeddomains", get(api::subscription::domains))
        .route("/subscription/status", get(api::subscription::status))
        .route("/stealerlogsbyemail/{email}", get(api::stealer::by_email))
        .route("/stealerlogsbywebsitedomain/{domain}", get(api::stealer::by_website_domain))
        .route("/stealerlogsbyemaildomain/{domain}", get(api::stealer::by_email_domain));
    // Only these handlers ever wait (for the audit log); `/range` formats its
    // answer without yielding, so a timer there would cost and never fire.
    let v3 = with_time_limit(v3, request_timeout);
    Router::new()
        .route("/range/{prefix}", get(range::range).options(range::preflight))
        .nest("/api/v3", v3)
        .merge(with_time_limit(web::router(), request_timeout))
        .fallback(|| async { AppError::NotFound })
        .with_state(state)
        .layer(RequestBodyLimitLayer::new(MAX_BODY))
        .layer(CatchPanicLayer::custom(|panic: Box<dyn std::any::Any + Send>| {
            let detail = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic without a message".into());
            AppError::internal(format!("handler panicked: {detail}")).into_response()
        }))
}

/// Answers 503 for a request that takes longer than `limit`.
fn with_time_limit<S: Clone + Send + Sync + 'static>(router: Router<S>, limit: Duration) -> Router<S> {
    router.layer(middleware::from_fn(move |request: Request, next: Next| async move {
        tokio::time::timeout(limit, next.run(request))
            .await
            .unwrap_or_else(|_| AppError::Timeout.into_response())
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn slow_requests_are_answered_503() {
        use tower::ServiceExt;
        let slow = Router::new().route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                "late"
            }),
        );
        let router = with_time_limit(slow, Duration::from_millis(50));
        let request = axum::http::Request::builder().uri("/slow").body(axum::body::Body::empty()).unwrap();
        let response = router.oneshot(request).await.unwrap();
        assert_eq!(response.status(), 503);
    }
}
