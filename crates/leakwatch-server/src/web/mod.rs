//! The web interface, served by `leakwatch serve` beside the API: `/` and
//! everything under `/ui/`. Server-rendered HTML ([`html`]), assets compiled
//! into the binary, no external fonts or scripts.
//!
//! - [`session`]: sign-in with an API key into a cookie session, CSRF tokens.
//! - [`pages`]: sign-in and sign-out, the account search and the password
//!   check, the breach catalog and a page per breach.
//! - [`domain`]: the domain search (breaches and stealer logs by address).
//! - [`dashboard`]: the organizations a key may see, and each one's dashboard:
//!   exposures, the directory audit, the alert outbox, resets, and the CLI's
//!   actions (a reset previewed, then applied; a test alert).
//! - [`charts`]: the catalog's charts, SVG drawn by the server.
//! - [`ingests`]: the ingest status page, from the catalog's ingest log.
//!
//! **Architecture Invariant:** the web pages decide nothing the API does not:
//! a sign-in is checked by the API's own key check (rate limit of failed keys,
//! the 401's audit row), and a search goes through the API's lookups, role
//! checks and audit log, answered only once its rows are committed.

pub(crate) mod charts;
pub(crate) mod dashboard;
pub(crate) mod domain;
pub(crate) mod html;
pub(crate) mod ingests;
pub(crate) mod pages;
pub(crate) mod session;

use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use leakwatch_catalog::ApiKey;

use crate::error::AppError;
use crate::state::AppState;
use session::Session;

/// The Content-Security-Policy of every page: only this origin's own
/// stylesheet and script, no inline code, no framing, forms only to here.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; \
                       connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; \
                       object-src 'none'";

/// The routes of the web interface, with their security headers.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(pages::home))
        .route("/ui/signin", get(pages::signin_form).post(pages::signin))
        .route("/ui/signout", post(pages::signout))
        .route("/ui/search", get(pages::search_form).post(pages::search))
        .route("/ui/domain", get(domain::form).post(domain::search))
        .route("/ui/breaches", get(pages::breaches))
        .route("/ui/breach/{name}", get(pages::breach))
        .route("/ui/orgs", get(dashboard::orgs))
        .route("/ui/org/{name}", get(dashboard::dashboard))
        .route("/ui/org/{name}/reset", post(dashboard::reset_preview))
        .route("/ui/org/{name}/reset/apply", post(dashboard::reset_apply))
        .route("/ui/org/{name}/reset/list", post(dashboard::reset_list))
        .route("/ui/org/{name}/alert/test", post(dashboard::alert_test))
        .route("/ui/ingests", get(ingests::ingests))
        .route("/ui/assets/app.css", get(pages::stylesheet))
        .route("/ui/assets/pwcheck.js", get(pages::script))
        .route("/ui/assets/refresh.js", get(ingests::script))
        .route("/ui/assets/icon.svg", get(pages::icon))
        .layer(middleware::from_fn(security_headers))
}

async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    // Pages show search results and tokens: no cache keeps them. Assets say
    // otherwise themselves.
    headers.entry(header::CACHE_CONTROL).or_insert(HeaderValue::from_static("no-store"));
    response
}

/// Who is asking: the client's address group, whether the page came over
/// TLS, and the session with its key when signed in.
pub struct Visitor {
    pub client: IpAddr,
    pub secure: bool,
    pub session_id: Option<String>,
    pub signed_in: Option<(Session, Arc<ApiKey>)>,
    cookies: String,
}

impl Visitor {
    /// The value of a request cookie.
    pub fn cookie(&self, name: &str) -> Option<&str> {
        session::cookie(&self.cookies, name)
    }
}

impl FromRequestParts<AppState> for Visitor {
    /// An error page: the session could not be read (the catalog's database
    /// is down), and the visitor is neither signed in nor taken for signed out.
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let cookies = parts
            .headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect::<Vec<_>>()
            .join("; ");
        let session_id = session::cookie(&cookies, session::COOKIE).map(str::to_owned);
        // The key is found again by its hash every time: a revoked key's
        // sessions end with it.
        let mut visitor = Visitor {
            client: crate::auth::client_ip(parts),
            secure: served_over_tls(&parts.headers),
            session_id: session_id.clone(),
            signed_in: None,
            cookies,
        };
        let session = match session_id {
            Some(id) => match session::with_sessions(state, move |sessions| sessions.get(&id)).await {
                Some(Ok(session)) => session,
                Some(Err(e)) => return Err(pages::error_page(&visitor, e)),
                None => {
                    return Err(pages::error_page(&visitor, AppError::internal("the session task failed")))
                }
            },
            None => None,
        };
        visitor.signed_in = session.and_then(|s| {
            let key = state.keys().find(&s.key_hash).cloned()?;
            Some((s, key))
        });
        Ok(visitor)
    }
}

/// The server speaks plain HTTP; behind a TLS-terminating proxy the proxy
/// says so. Believing a forged header only makes the cookie stricter.
fn served_over_tls(headers: &HeaderMap) -> bool {
    let forwarded_proto = headers.get("x-forwarded-proto").and_then(|v| v.to_str().ok());
    let forwarded = headers.get(header::FORWARDED).and_then(|v| v.to_str().ok());
    forwarded_proto.is_some_and(|p| p.trim().eq_ignore_ascii_case("https"))
        || forwarded.is_some_and(|f| f.to_ascii_lowercase().contains("proto=https"))
}

/// An HTML answer.
pub fn html(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"))], body)
        .into_response()
}

/// A 303 to `to` (after a POST, so that reloading does not post again).
pub fn see_other(to: &'static str) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, HeaderValue::from_static(to))]).into_response()
}

/// A signed-in visitor's POST, let through: its key and form fields, once the
/// session's CSRF token is checked and the request is charged to the key's
/// rate limit as `endpoint`. Otherwise the answer to give: the sign-in, a
/// refusal (403) before anything is looked up, or a 429.
pub(crate) async fn signed_post(
    state: &AppState,
    visitor: &Visitor,
    body: &[u8],
    endpoint: &str,
) -> Result<(Arc<ApiKey>, std::collections::HashMap<String, String>), Response> {
    let Some((_, key)) = visitor.signed_in.clone() else { return Err(see_other("/ui/signin")) };
    let fields = form_fields(body);
    if !pages::csrf_ok(visitor, &fields) {
        return Err(pages::error_page(visitor, pages::BAD_TOKEN));
    }
    if let Err(e) = crate::auth::charge(state, visitor.client, || endpoint.into(), Some(&key)).await {
        return Err(pages::error_page(visitor, e));
    }
    Ok((key, fields))
}

/// The fields of a form body; a field given twice keeps its first value.
pub fn form_fields(body: &[u8]) -> std::collections::HashMap<String, String> {
    let mut fields = std::collections::HashMap::new();
    for (k, v) in form_urlencoded::parse(body) {
        fields.entry(k.into_owned()).or_insert_with(|| v.into_owned());
    }
    fields
}
