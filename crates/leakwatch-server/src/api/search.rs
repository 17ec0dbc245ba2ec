//! Keyed searches: `breachedaccount/{account}` and `breacheddomain/{domain}`.
//! Each leaves an audit record, found or not, allowed or not.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use leakwatch_catalog::{ApiKey, Role, SubjectKind};
use leakwatch_store::{Breach, HibpBreach};
use serde::Serialize;

use super::{audited, json, parse_account, SearchedAccount};
use crate::auth::KeyHolder;
use crate::error::AppError;
use crate::query::Params;
use crate::state::{AppState, Snapshot};

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Truncated<'a> {
    name: &'a str,
}

/// `GET /api/v3/breachedaccount/{account}[?truncateResponse=B][&domain=D][&includeUnverified=B]`.
///
/// Sensitive and retired breaches never appear in an account search, whoever
/// asks (DESIGN.md §4): HIBP shows them only to a verified owner.
pub async fn breached_account(
    State(state): State<AppState>,
    KeyHolder(key): KeyHolder,
    Path(raw): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, AppError> {
    let params = Params::parse(query.as_deref());
    let truncate = params.flag("truncateresponse", true)?;
    let include_unverified = params.flag("includeunverified", true)?;
    let domain = params.get("domain").filter(|d| !d.is_empty());
    let account = parse_account(&raw)
        .ok_or(AppError::BadRequest("The account does not comply with an acceptable format."))?;
    let subject = state.shared().audit.subject(SubjectKind::Account, &account.audit_value);

    let outcome = (|| {
        let snapshot = state.snapshot();
        let found = account_breaches(&snapshot, &key, &account, include_unverified, domain)?;
        let response = if truncate {
            json(&found.iter().map(|b| Truncated { name: &b.name }).collect::<Vec<_>>())
        } else {
            json(&found.iter().map(|b| HibpBreach::from(*b)).collect::<Vec<_>>())
        };
        Ok((response, found.len() as u64))
    })();
    audited(&state, &key, "breachedaccount", subject, outcome).await
}

/// The breaches an account search shows `key`, sorted by name: what
/// `breachedaccount` answers, and the web search too. Sensitive and retired
/// breaches never appear; unverified ones only with `include_unverified`;
/// with `domain`, only breaches of that site. Not found (404) when none; a
/// domain key searching outside its domains is refused (403).
pub(crate) fn account_breaches<'a>(
    snapshot: &'a Snapshot,
    key: &ApiKey,
    account: &SearchedAccount,
    include_unverified: bool,
    domain: Option<&str>,
) -> Result<Vec<&'a Breach>, AppError> {
    // A domain key may search addresses on its domains, and nothing else (no
    // user names or phone numbers: they belong to no domain).
    let allowed = match key.role {
        Role::Domain => account.email_domain.as_deref().is_some_and(|d| key.allows_domain(d)),
        Role::Admin | Role::Analyst => true,
    };
    if !allowed {
        return Err(AppError::Forbidden("This key may only search addresses on its own verified domains."));
    }
    let mut found: BTreeMap<&str, &Breach> = BTreeMap::new();
    for candidate in &account.candidates {
        for b in snapshot.store.account_breaches(candidate)? {
            found.insert(&b.name, b);
        }
    }
    let found: Vec<&Breach> = found
        .into_values()
        .filter(|b| !b.is_sensitive && !b.is_retired)
        .filter(|b| include_unverified || b.is_verified)
        .filter(|b| domain.is_none_or(|d| b.domain.eq_ignore_ascii_case(d)))
        .collect();
    if found.is_empty() {
        return Err(AppError::NotFound);
    }
    Ok(found)
}

/// `GET /api/v3/breacheddomain/{domain}`: every breached alias on a domain and
/// the breaches it is in, `{"alias": ["Name", ...]}`. Sensitive breaches are
/// included for admin and analyst keys only; retired ones never.
pub async fn breached_domain(
    State(state): State<AppState>,
    KeyHolder(key): KeyHolder,
    Path(raw): Path<String>,
) -> Result<Response, AppError> {
    let domain =
        leakwatch_types::normalize_domain(&raw).ok_or(AppError::BadRequest("The domain is not valid."))?;
    let subject = state.shared().audit.subject(SubjectKind::Domain, &domain);
    let (searcher, searched) = (state.clone(), key.clone());
    let outcome = super::domain_wide(move || {
        let aliases = domain_aliases(&searcher, &searched, &domain)?;
        if aliases.is_empty() {
            return Err(AppError::NotFound);
        }
        Ok((json(&aliases), aliases.len() as u64))
    })
    .await;
    audited(&state, &key, "breacheddomain", subject, outcome).await
}

/// Every breached alias on `domain` (normalized) and the breaches it is in,
/// as `key` may see them: a domain key only on its own domains; sensitive
/// breaches for admin and analyst keys only; retired ones never. Empty when
/// none. A domain-wide search: callers run it through [`super::domain_wide`].
pub(crate) fn domain_aliases(
    state: &AppState,
    key: &Arc<ApiKey>,
    domain: &str,
) -> Result<BTreeMap<String, Vec<String>>, AppError> {
    if !key.allows_domain(domain) {
        return Err(AppError::Forbidden("This key may only search its own verified domains."));
    }
    let snapshot = state.snapshot();
    let caller = KeyHolder(key.clone()).caller();
    let shown: BTreeSet<&str> = snapshot
        .store
        .breaches()
        .into_iter()
        .filter(|b| !b.is_retired && (caller.sees_sensitive() || !b.is_sensitive))
        .map(|b| b.name.as_str())
        .collect();
    let mut aliases = snapshot.store.domain(domain)?;
    for names in aliases.values_mut() {
        names.retain(|n| shown.contains(n.as_str()));
    }
    aliases.retain(|_, names| !names.is_empty());
    Ok(aliases)
}
