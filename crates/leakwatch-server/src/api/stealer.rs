//! Stealer-log searches: `stealerlogsbyemail/{email}` (website domains, sorted),
//! `stealerlogsbywebsitedomain/{domain}` (email addresses, sorted) and
//! `stealerlogsbyemaildomain/{domain}` (`{"alias": ["site", ...]}`).
//!
//! They answer from whatever stealer-log data the store holds, through the
//! store's `stealer_*` lookups; with none, every search is HIBP's not-found.
//! A domain key may search addresses on its domains, its email domains and
//! website domains it owns.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::response::Response;
use leakwatch_catalog::{ApiKey, SubjectKind};
use leakwatch_types::{normalize_domain, Account};

use super::{audited, json};
use crate::auth::KeyHolder;
use crate::error::AppError;
use crate::state::{AppState, Snapshot};

const NOT_YOURS: &str = "This key may only search its own verified domains.";

/// `GET /api/v3/stealerlogsbyemail/{email}`.
pub async fn by_email(
    State(state): State<AppState>,
    KeyHolder(key): KeyHolder,
    Path(raw): Path<String>,
) -> Result<Response, AppError> {
    let email = Account::email(&raw)
        .map_err(|_| AppError::BadRequest("The email address is not in a valid format."))?;
    let subject = state.shared().audit.subject(SubjectKind::Account, &email.value);
    let outcome = email_websites(&state.snapshot(), &key, &email).map(|sites| {
        let n = sites.len() as u64;
        (json(&sites), n)
    });
    audited(&state, &key, "stealerlogsbyemail", subject, outcome).await
}

/// The websites stealer logs saw `email` sign in to, sorted: what
/// `stealerlogsbyemail` answers, and the web search too. Not found when none;
/// refused outside a domain key's domains.
pub(crate) fn email_websites(
    snapshot: &Snapshot,
    key: &ApiKey,
    email: &Account,
) -> Result<Vec<String>, AppError> {
    let (_, domain) = email.email_parts().expect("an email account has a domain");
    if !key.allows_domain(domain) {
        return Err(AppError::Forbidden(NOT_YOURS));
    }
    let sites = snapshot.store.stealer_websites_by_email(email)?;
    if sites.is_empty() {
        return Err(AppError::NotFound);
    }
    Ok(sites)
}

/// `GET /api/v3/stealerlogsbywebsitedomain/{domain}`.
pub async fn by_website_domain(
    State(state): State<AppState>,
    KeyHolder(key): KeyHolder,
    Path(raw): Path<String>,
) -> Result<Response, AppError> {
    let domain = normalize_domain(&raw).ok_or(AppError::BadRequest("The domain is not valid."))?;
    let subject = state.shared().audit.subject(SubjectKind::WebsiteDomain, &domain);
    let (searcher, searched) = (state.clone(), key.clone());
    let outcome = super::domain_wide(move || {
        if !searched.allows_domain(&domain) {
            return Err(AppError::Forbidden(NOT_YOURS));
        }
        let emails = searcher.snapshot().store.stealer_emails_by_website(&domain)?;
        if emails.is_empty() {
            return Err(AppError::NotFound);
        }
        Ok((json(&emails), emails.len() as u64))
    })
    .await;
    audited(&state, &key, "stealerlogsbywebsitedomain", subject, outcome).await
}

/// `GET /api/v3/stealerlogsbyemaildomain/{domain}`.
pub async fn by_email_domain(
    State(state): State<AppState>,
    KeyHolder(key): KeyHolder,
    Path(raw): Path<String>,
) -> Result<Response, AppError> {
    let domain = normalize_domain(&raw).ok_or(AppError::BadRequest("The domain is not valid."))?;
    let subject = state.shared().audit.subject(SubjectKind::Domain, &domain);
    let (searcher, searched) = (state.clone(), key.clone());
    let outcome = super::domain_wide(move || {
        let aliases = email_domain_websites(&searcher, &searched, &domain)?;
        if aliases.is_empty() {
            return Err(AppError::NotFound);
        }
        Ok((json(&aliases), aliases.len() as u64))
    })
    .await;
    audited(&state, &key, "stealerlogsbyemaildomain", subject, outcome).await
}

/// The stealer-log websites of every alias on the email domain `domain`, as
/// `key` may search them; empty when none. A domain-wide search.
pub(crate) fn email_domain_websites(
    state: &AppState,
    key: &ApiKey,
    domain: &str,
) -> Result<BTreeMap<String, Vec<String>>, AppError> {
    if !key.allows_domain(domain) {
        return Err(AppError::Forbidden(NOT_YOURS));
    }
    Ok(state.snapshot().store.stealer_websites_by_email_domain(domain)?)
}
