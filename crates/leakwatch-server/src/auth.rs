//! Who is calling: the `hibp-api-key` header checked against the key table, the
//! `user-agent` HIBP requires, and the caller's rate limit, as extractors that
//! handlers name in their signatures.
//!
//! [`Caller`] admits anonymous callers (the public catalog); [`KeyHolder`]
//! requires a valid key. A present but wrong key is refused everywhere, even
//! where no key is needed: a client with a typo should hear so.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header;
use axum::http::request::Parts;
use leakwatch_catalog::{hash_secret, ApiKey, Role};

use crate::client::ClientIp;
use crate::error::AppError;
use crate::limiter::LimitKey;
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
    let presented = parts
        .headers
        .get(KEY_HEADER)
        .map(|v| v.to_str().map(str::trim).map_err(|_| AppError::InvalidKey))
        .transpose()?
        .filter(|v| !v.is_empty());
    let key = match presented {
        Some(secret) => Some(state.keys().find(&hash_secret(secret)).cloned().ok_or(AppError::InvalidKey)?),
        None if require_key => return Err(AppError::MissingKey),
        None => None,
    };
    let limits = state.shared().limits;
    let (bucket, per_minute) = match &key {
        Some(k) => (LimitKey::Key(k.id), k.rate_limit_per_minute.unwrap_or(limits.key_per_minute)),
        None => (LimitKey::Ip(client_ip(parts)), limits.anonymous_per_minute),
    };
    state
        .shared()
        .limiter
        .check(bucket, per_minute, Instant::now())
        .map_err(|retry_after| AppError::RateLimited { retry_after })?;
    Ok(key)
}

/// The client's address group (see [`crate::client`]): the address the server
/// resolved for the request (the peer's, or the trusted proxy's client), else
/// the peer's; requests built in tests have neither and share one bucket.
fn client_ip(parts: &Parts) -> IpAddr {
    let ip = match (parts.extensions.get::<ClientIp>(), parts.extensions.get::<ConnectInfo<SocketAddr>>()) {
        (Some(ClientIp(ip)), _) => *ip,
        (None, Some(ConnectInfo(addr))) => addr.ip(),
        (None, None) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
    };
    crate::client::group(ip)
}
