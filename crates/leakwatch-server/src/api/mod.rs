//! HIBP API v3 under `/api/v3/`: the breach catalog (open to anonymous callers),
//! account and domain searches, subscription details and stealer-log searches
//! (keys only). Shared here: JSON answers, how a searched account is read from
//! the path, and the audit record every keyed search leaves.

pub mod catalog;
pub mod search;
pub mod stealer;
pub mod subscription;

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use leakwatch_catalog::{now, ApiKey, AuditEntry, Subject};
use leakwatch_types::{normalize_phone, normalize_username, Account, AccountKind};
use serde::Serialize;

use crate::error::AppError;
use crate::state::AppState;

/// A 200 with a JSON body, as HIBP sends it.
pub(crate) fn json<T: Serialize>(value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => {
            ([(header::CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"))], body)
                .into_response()
        }
        Err(e) => AppError::internal(e).into_response(),
    }
}

/// Marks a response readable by any web origin: the public catalog, as at HIBP.
pub(crate) fn public(mut response: Response) -> Response {
    response.headers_mut().insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    response
}

/// An account as searched through the API: the path segment, percent-decoded by
/// the router, then trimmed and normalized.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchedAccount {
    /// The accounts looked up: one email address; or for anything else the user
    /// name, plus the phone number when it reads as one (HIBP takes numbers with
    /// or without the leading `+`).
    pub candidates: Vec<Account>,
    /// The normalized value the audit log hashes.
    pub audit_value: String,
    /// For an email address: its domain, which a domain key must own.
    pub email_domain: Option<String>,
}

/// Reads a searched account; `None` when it is no acceptable account.
pub fn parse_account(raw: &str) -> Option<SearchedAccount> {
    let raw = raw.trim();
    if raw.is_empty() {
        return None;
    }
    if raw.contains('@') {
        let account = Account::email(raw).ok()?;
        let email_domain = account.email_parts().map(|(_, d)| d.to_owned());
        return Some(SearchedAccount {
            audit_value: account.value.clone(),
            candidates: vec![account],
            email_domain,
        });
    }
    let mut candidates = Vec::new();
    // The same rules ingest applies to the left side of a combo line.
    if raw.len() <= 64 && !raw.chars().any(char::is_whitespace) {
        if let Some(value) = normalize_username(raw) {
            candidates.push(Account { kind: AccountKind::Username, value });
        }
    }
    let digits = raw.strip_prefix('+').unwrap_or(raw);
    if digits.bytes().all(|b| b.is_ascii_digit()) || raw.starts_with('+') {
        if let Some(value) = normalize_phone(raw) {
            candidates.push(Account { kind: AccountKind::Phone, value });
        }
    }
    let audit_value = candidates.first()?.value.clone();
    Some(SearchedAccount { candidates, audit_value, email_domain: None })
}

/// Runs a domain-wide search (every alias of a domain, every address seen on a
/// website) on the blocking pool, at most one per core at a time. Such a search
/// can take a large domain's whole index; run on the serving threads, a few of
/// them at once would stall `/range` and every other request on those threads.
pub(crate) async fn domain_wide<T: Send + 'static>(
    search: impl FnOnce() -> Result<T, AppError> + Send + 'static,
) -> Result<T, AppError> {
    static SLOTS: std::sync::LazyLock<tokio::sync::Semaphore> = std::sync::LazyLock::new(|| {
        tokio::sync::Semaphore::new(std::thread::available_parallelism().map_or(2, |n| n.get()))
    });
    let _slot = SLOTS.acquire().await.map_err(AppError::internal)?;
    tokio::task::spawn_blocking(search).await.map_err(AppError::internal)?
}

/// Records a keyed search in the audit log, then passes its answer on. A 200's
/// result count comes with it; any refusal or not-found records 0.
pub(crate) async fn audited(
    state: &AppState,
    key: &ApiKey,
    endpoint: &str,
    subject: Subject,
    outcome: Result<(Response, u64), AppError>,
) -> Result<Response, AppError> {
    let (status, results) = match &outcome {
        Ok((response, n)) => (response.status().as_u16(), *n),
        Err(e) => (e.status().as_u16(), 0),
    };
    state.shared().audit.record(audit_entry(key, endpoint, subject, status, results)).await?;
    outcome.map(|(response, _)| response)
}

/// The audit row of one keyed search.
pub(crate) fn audit_entry(
    key: &ApiKey,
    endpoint: &str,
    subject: Subject,
    status: u16,
    results: u64,
) -> AuditEntry {
    AuditEntry {
        at: now(),
        key_id: key.id,
        key_name: key.name.clone(),
        endpoint: endpoint.to_owned(),
        subject,
        results,
        status,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn searched_accounts_are_trimmed_normalized_and_typed() {
        let a = parse_account("  Bob.Smith@Example.COM ").unwrap();
        assert_eq!(
            a.candidates,
            [Account { kind: AccountKind::Email, value: "bob.smith@example.com".into() }]
        );
        assert_eq!(a.email_domain.as_deref(), Some("example.com"));
        assert_eq!(a.audit_value, "bob.smith@example.com");

        let u = parse_account("DarkLord99").unwrap();
        assert_eq!(u.candidates, [Account { kind: AccountKind::Username, value: "darklord99".into() }]);
        assert_eq!(u.email_domain, None);

        let p = parse_account("61412345678").unwrap();
        let kinds: Vec<AccountKind> = p.candidates.iter().map(|c| c.kind).collect();
        assert_eq!(kinds, [AccountKind::Username, AccountKind::Phone]);
        assert_eq!(p.candidates[1].value, "+61412345678");
        assert_eq!(parse_account("+61 412 345 678").unwrap().candidates[0].kind, AccountKind::Phone);

        assert_eq!(parse_account("   "), None);
        assert_eq!(parse_account("not an@address"), None);
        assert_eq!(parse_account("a..b@example.com"), None);
    }
}
