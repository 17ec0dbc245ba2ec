//! Who is calling: the `hibp-api-key` header checked against the key table, the
//! `user-agent` HIBP requires, and the caller's rate limit, as extractors that
//! handlers name in their signatures.
//!
//! [`Caller`] admits anonymous callers (the public catalog); [`KeyHolder`]
//! requires a valid key. A present but wrong key is refused everywhere, even
//! where no key is needed: a client with a typo should hear so.
//!
//! Refusals are audited like searches (and answered only once their row is
//! committed): every 401, with the presented key as a keyed hash (key id 0,
//! key name `(wrong key)` or `(no key)`); every 429 of a key; the first 429 of
//! a run for an anonymous client. Wrong and missing keys are rate limited per
//! client address group ([`Limits::failed_keys_per_minute`]): past the limit a
//! request with a key is refused before the key is even looked up.
//!
//! [`Limits::failed_keys_per_minute`]: crate::Limits::failed_keys_per_minute

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{ConnectInfo, FromRequestParts, MatchedPath};
use axum::http::header;
use axum::http::request::Parts;
use leakwatch_catalog::{hash_secret, now, ApiKey, AuditEntry, Role, Subject, SubjectKind};

use crate::client::ClientIp;
use crate::error::AppError;
use crate::limiter::{LimitKey, Refusal};
use crate::state::AppState;

/// The header HIBP clients send their key in.
pub const KEY_HEADER: &str = "hibp-api-key";

/// A caller of an endpoint that anonymous callers may use.
#[derive(Debug, Clone)]
pub struct Caller {
    pub key: Option<Arc<ApiKey>>,
}

impl Caller {
    /// Whether sensitive breaches may be shown: never to anonymous or domain callers.
    pub fn sees_sensitive(&self) -> bool {
        self.key.as_ref().is_some_and(|k| matches!(k.role, Role::Admin | Role::Analyst))
    }
}

/// A caller with a valid key.
#[derive(Debug, Clone)]
pub struct KeyHolder(pub Arc<ApiKey>);

impl KeyHolder {
    pub fn caller(&self) -> Caller {
        Caller { key: Some(self.0.clone()) }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        identify(parts, state, false).await.map(|key| Caller { key })
    }
}

impl FromRequestParts<AppState> for KeyHolder {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        identify(parts, state, true).await.map(|key| KeyHolder(key.expect("a key is required")))
    }
}

/// Checks, in HIBP's order: a user agent (403), the key (401), the rate limit (429).
async fn identify(
    parts: &Parts,
    state: &AppState,
    require_key: bool,
) -> Result<Option<Arc<ApiKey>>, AppError> {
    let has_agent =
        parts.headers.get(header::USER_AGENT).is_some_and(|v| !v.as_bytes().trim_ascii().is_empty());
    if !has_agent {
        return Err(AppError::NoUserAgent);
    }
    let presented =
        parts.headers.get(KEY_HEADER).map(|v| String::from_utf8_lossy(v.as_bytes()).trim().to_owned());
    let presented = presented.filter(|v| !v.is_empty());
    let client = client_ip(parts);
    let key = match presented {
        None if !require_key => None,
        attempt => {
            // Only well-formed header values can be keys.
            let well_formed = parts.headers.get(KEY_HEADER).is_none_or(|v| v.to_str().is_ok());
            let endpoint = endpoint(parts);
            Some(check_secret(state, client, &endpoint, attempt.as_deref(), well_formed).await?)
        }
    };
    charge(state, client, || endpoint(parts), key.as_deref()).await?;
    Ok(key)
}

/// Checks a presented secret (`None`: none presented where one is needed)
/// against the key table, as every keyed request does: a client past its
/// failed-key limit is refused (429) before the secret is looked at, and a
/// wrong or missing key is counted against that limit and audited as a 401
/// under `endpoint`. The web sign-in uses it as it is.
pub(crate) async fn check_secret(
    state: &AppState,
    client: IpAddr,
    endpoint: &str,
    attempt: Option<&str>,
    well_formed: bool,
) -> Result<Arc<ApiKey>, AppError> {
    let limits = state.shared().limits;
    let limiter = &state.shared().limiter;
    let audit = &state.shared().audit;
    let failed = LimitKey::FailedKeys(client);
    let subject = match attempt {
        Some(secret) => audit.subject(SubjectKind::ApiKey, secret),
        None => audit.subject(SubjectKind::Nothing, ""),
    };
    // A client that keeps presenting wrong keys (or none where one is
    // needed) is refused before its next key is looked at.
    if let Err(Refusal { retry_after, first }) =
        limiter.peek(failed, limits.failed_keys_per_minute, Instant::now())
    {
        if first {
            refusal(state, endpoint, None, subject, 429).await?;
        }
        return Err(AppError::RateLimited { retry_after });
    }
    let found =
        attempt.filter(|_| well_formed).and_then(|secret| state.keys().find(&hash_secret(secret)).cloned());
    match found {
        Some(key) => Ok(key),
        None => {
            let _ = limiter.refuse(failed, limits.failed_keys_per_minute, Instant::now());
            refusal(state, endpoint, None, subject, 401).await?;
            Err(if attempt.is_some() { AppError::InvalidKey } else { AppError::MissingKey })
        }
    }
}

/// Counts a request against its rate limit: the key's own, or for an
/// anonymous caller its address group's. A refusal is audited (a key's every
/// one, an anonymous client's first of a run) and answered 429.
pub(crate) async fn charge(
    state: &AppState,
    client: IpAddr,
    endpoint: impl FnOnce() -> String,
    key: Option<&ApiKey>,
) -> Result<(), AppError> {
    let limits = state.shared().limits;
    let (bucket, per_minute) = match key {
        Some(k) => (LimitKey::Key(k.id), k.rate_limit_per_minute.unwrap_or(limits.key_per_minute)),
        None => (LimitKey::Ip(client), limits.anonymous_per_minute),
    };
    if let Err(Refusal { retry_after, first }) =
        state.shared().limiter.refuse(bucket, per_minute, Instant::now())
    {
        // A key's every refusal is its own (and bounded by its limit); an
        // anonymous client's run of refusals is recorded once.
        if key.is_some() || first {
            let subject = state.shared().audit.subject(SubjectKind::Nothing, "");
            refusal(state, &endpoint(), key, subject, 429).await?;
        }
        return Err(AppError::RateLimited { retry_after });
    }
    Ok(())
}

/// Records a refused request in the audit log and waits for its commit.
async fn refusal(
    state: &AppState,
    endpoint: &str,
    key: Option<&ApiKey>,
    subject: Subject,
    status: u16,
) -> Result<(), AppError> {
    let (key_id, key_name) = match key {
        Some(k) => (k.id, k.name.clone()),
        None if subject.kind == SubjectKind::ApiKey => (0, "(wrong key)".to_owned()),
        None => (0, "(no key)".to_owned()),
    };
    let entry = AuditEntry {
        at: now(),
        key_id,
        key_name,
        endpoint: endpoint.to_owned(),
        subject,
        results: 0,
        status,
    };
    state.shared().audit.record(entry).await
}

/// The endpoint a request was routed to, as the audit log names it:
/// `breachedaccount`, `subscription/status`, ...
fn endpoint(parts: &Parts) -> String {
    let Some(matched) = parts.extensions.get::<MatchedPath>() else { return "-".into() };
    let path = matched.as_str();
    let path = path.strip_prefix("/api/v3/").unwrap_or(path);
    path.split('/').filter(|s| !s.starts_with('{')).collect::<Vec<_>>().join("/")
}

/// The client's address group (see [`crate::client`]): the address the server
/// resolved for the request (the peer's, or the trusted proxy's client), else
/// the peer's; requests built in tests have neither and share one bucket.
pub(crate) fn client_ip(parts: &Parts) -> IpAddr {
    let ip = match (parts.extensions.get::<ClientIp>(), parts.extensions.get::<ConnectInfo<SocketAddr>>()) {
        (Some(ClientIp(ip)), _) => *ip,
        (None, Some(ConnectInfo(addr))) => addr.ip(),
        (None, None) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
    };
    crate::client::group(ip)
}
