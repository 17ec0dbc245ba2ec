//! The one error type of the HTTP API and its answers, exactly as HIBP gives them.
//!
//! Every failure a handler can meet becomes an [`AppError`]; its response never
//! carries internal text (paths, SQL, store errors), which goes to the log only.
//! The shapes follow HIBP: a 404 is the not-found convention (empty body, clients
//! return null), a 401 is plain text, a 429 is the JSON clients parse for its
//! message, and bad input is a JSON error on the v3 API but plain text on
//! `/range`, as Pwned Passwords answers it.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Not found: HIBP's convention, an empty 404.
    #[error("not found")]
    NotFound,
    /// Bad input on the v3 API; the message is ours, never the input echoed.
    #[error("bad request: {0}")]
    BadRequest(&'static str),
    /// A bad `/range` prefix or mode, answered in plain text as Pwned Passwords does.
    #[error("bad range request: {0}")]
    BadRange(&'static str),
    #[error("missing hibp-api-key")]
    MissingKey,
    #[error("invalid hibp-api-key")]
    InvalidKey,
    /// No `user-agent` header: HIBP refuses such requests.
    #[error("no user agent")]
    NoUserAgent,
    /// The key may not search this (a domain key outside its domains).
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    #[error("rate limited for {retry_after} s")]
    RateLimited { retry_after: u64 },
    /// A request that took longer than the server's time limit.
    #[error("timed out")]
    Timeout,
    /// The service cannot answer safely now (the audit log cannot be written).
    #[error("unavailable: {0}")]
    Unavailable(&'static str),
    /// The catalog's database cannot be reached (down, restarting, cut off):
    /// the request is not answered (nor, if it is audited, recorded) until it
    /// is back.
    #[error("the catalog's database is unreachable")]
    CatalogDown,
    /// Anything unexpected: logged in full, answered without detail.
    #[error("internal error: {0}")]
    Internal(String),
}

impl AppError {
    pub fn status(&self) -> StatusCode {
        match self {
            AppError::NotFound => StatusCode::NOT_FOUND,
            AppError::BadRequest(_) | AppError::BadRange(_) => StatusCode::BAD_REQUEST,
            AppError::MissingKey | AppError::InvalidKey => StatusCode::UNAUTHORIZED,
            AppError::NoUserAgent | AppError::Forbidden(_) => StatusCode::FORBIDDEN,
            AppError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            AppError::Timeout | AppError::Unavailable(_) | AppError::CatalogDown => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The seconds a client is told to wait (`retry-after`) before it asks again.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            AppError::RateLimited { retry_after } => Some(*retry_after),
            AppError::CatalogDown => Some(CATALOG_RETRY_AFTER),
            _ => None,
        }
    }

    /// A catalog failure: a database that cannot be reached is a 503 the
    /// client may retry; anything else is an internal error. Both are logged.
    pub fn catalog(err: leakwatch_catalog::CatalogError) -> AppError {
        if err.is_unavailable() {
            tracing::warn!(error = %err, "the catalog's database is unreachable");
            return AppError::CatalogDown;
        }
        AppError::internal(err)
    }

    /// An internal error, logged here with its detail so that callers can `?` it.
    pub fn internal(err: impl std::fmt::Display) -> AppError {
        let detail = err.to_string();
        tracing::error!(error = %detail, "request failed");
        AppError::Internal(detail)
    }
}

impl From<leakwatch_store::StoreError> for AppError {
    fn from(err: leakwatch_store::StoreError) -> Self {
        if let leakwatch_store::StoreError::Damaged { .. } = err {
            // The operator's to repair (the log names the breaches); a client
            // gets no partial answer, and may try again later.
            tracing::error!(error = %err, "a request needs damaged data");
            return AppError::Unavailable("Part of the index is damaged; try again once it is repaired.");
        }
        AppError::internal(err)
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status();
        let retry_after = self.retry_after();
        let mut response = match self {
            AppError::NotFound => status.into_response(),
            AppError::MissingKey => plain(status, "Access denied due to missing hibp-api-key."),
            AppError::InvalidKey => plain(status, "Access denied due to invalid hibp-api-key."),
            AppError::NoUserAgent => {
                plain(status, "Forbidden - no user agent has been specified in the request.")
            }
            AppError::BadRange(message) => plain(status, message),
            AppError::Forbidden(message) => json(status, message),
            AppError::BadRequest(message) => json(status, message),
            AppError::RateLimited { retry_after } => {
                json(status, &format!("Rate limit is exceeded. Try again in {retry_after} seconds."))
            }
            AppError::Timeout => json(status, "The request took too long."),
            AppError::Unavailable(message) => json(status, message),
            AppError::CatalogDown => json(status, CATALOG_DOWN),
            AppError::Internal(_) => json(status, "Internal server error."),
        };
        if let Some(seconds) = retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// What a client is told while the catalog's database is unreachable.
pub(crate) const CATALOG_DOWN: &str = "The service's database is unreachable; try again shortly.";

/// The `retry-after` of a [`AppError::CatalogDown`]: a restart or failover
/// takes seconds, and each catalog call has tried to connect again for
/// about 3.5 s before it fails.
const CATALOG_RETRY_AFTER: u64 = 5;

fn plain(status: StatusCode, message: &'static str) -> Response {
    (status, [(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"))], message)
        .into_response()
}

/// HIBP's JSON error shape: `{"statusCode":N,"message":"..."}`.
fn json(status: StatusCode, message: &str) -> Response {
    #[derive(serde::Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Body<'a> {
        status_code: u16,
        message: &'a str,
    }
    let body = serde_json::to_string(&Body { status_code: status.as_u16(), message }).expect("serializes");
    (status, [(header::CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"))], body)
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    async fn body(response: Response) -> String {
        String::from_utf8(response.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap()
    }

    #[tokio::test]
    async fn answers_have_hibp_shapes_and_no_internal_detail() {
        let r = AppError::RateLimited { retry_after: 7 }.into_response();
        assert_eq!(r.status(), 429);
        assert_eq!(r.headers()["retry-after"], "7");
        assert_eq!(
            body(r).await,
            r#"{"statusCode":429,"message":"Rate limit is exceeded. Try again in 7 seconds."}"#
        );

        let r = AppError::CatalogDown.into_response();
        assert_eq!(r.status(), 503);
        assert_eq!(r.headers()["retry-after"], "5");
        assert_eq!(
            body(r).await,
            r#"{"statusCode":503,"message":"The service's database is unreachable; try again shortly."}"#
        );

        let r = AppError::InvalidKey.into_response();
        assert_eq!(r.status(), 401);
        assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
        assert_eq!(body(r).await, "Access denied due to invalid hibp-api-key.");

        let r = AppError::NotFound.into_response();
        assert_eq!(r.status(), 404);
        assert_eq!(body(r).await, "");

        let r = AppError::Internal("/secret/path: disk on fire".into()).into_response();
        assert_eq!(r.status(), 500);
        let text = body(r).await;
        assert!(!text.contains("secret") && !text.contains("fire"), "{text}");
    }
}
