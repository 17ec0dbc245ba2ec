//! `subscribeddomains` and `subscription/status`: what a key is, in HIBP's shapes.
//!
//! leakwatch has no subscriptions: a key's role stands in for the plan, its
//! `--domain` list for the verified domains, and its rate limit for the plan's
//! requests per minute. Fields HIBP fills from billing (renewal dates) are null.

use std::collections::HashMap;

use axum::extract::State;
use axum::response::Response;
use leakwatch_catalog::{now, AuditEntry, Role, SubjectKind};
use leakwatch_store::Breach;
use serde::Serialize;

use super::json;
use crate::auth::KeyHolder;
use crate::error::AppError;
use crate::state::AppState;

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct SubscribedDomain {
    domain_name: String,
    pwn_count: u64,
    pwn_count_excluding_spam_lists: u64,
    pwn_count_excluding_spam_lists_at_last_subscription_renewal: Option<u64>,
    next_subscription_renewal: Option<String>,
}

/// `GET /api/v3/subscribeddomains`: the key's domains with how many of their
/// addresses are breached. It searches each of them, so each is audited (one
/// row per domain, or one of subject `none` for a key without domains), and
/// the answer waits for the rows' commit.
pub async fn domains(State(state): State<AppState>, KeyHolder(key): KeyHolder) -> Result<Response, AppError> {
    let outcome = subscribed(&state, &key);
    let audit = &state.shared().audit;
    let row = |kind, value: &str, results, status| AuditEntry {
        at: now(),
        key_id: key.id,
        key_name: key.name.clone(),
        endpoint: "subscribeddomains".into(),
        subject: audit.subject(kind, value),
        results,
        status,
    };
    let entries: Vec<AuditEntry> = match &outcome {
        Ok(found) if found.is_empty() => vec![row(SubjectKind::Nothing, "", 0, 200)],
        Ok(found) => {
            found.iter().map(|d| row(SubjectKind::Domain, &d.domain_name, d.pwn_count, 200)).collect()
        }
        Err(e) if key.domains.is_empty() => vec![row(SubjectKind::Nothing, "", 0, e.status().as_u16())],
        Err(e) => key.domains.iter().map(|d| row(SubjectKind::Domain, d, 0, e.status().as_u16())).collect(),
    };
    audit.record_all(entries).await?;
    outcome.map(|out| json(&out))
}

fn subscribed(
    state: &AppState,
    key: &std::sync::Arc<leakwatch_catalog::ApiKey>,
) -> Result<Vec<SubscribedDomain>, AppError> {
    let snapshot = state.snapshot();
    let caller = KeyHolder(key.clone()).caller();
    let shown: HashMap<&str, &Breach> = snapshot
        .store
        .breaches()
        .into_iter()
        .filter(|b| !b.is_retired && (caller.sees_sensitive() || !b.is_sensitive))
        .map(|b| (b.name.as_str(), b))
        .collect();
    let mut out = Vec::with_capacity(key.domains.len());
    for domain in &key.domains {
        let aliases = snapshot.store.domain(domain)?;
        let mut pwn = 0;
        let mut not_spam = 0;
        for names in aliases.values() {
            let breaches: Vec<_> = names.iter().filter_map(|n| shown.get(n.as_str())).collect();
            pwn += u64::from(!breaches.is_empty());
            not_spam += u64::from(breaches.iter().any(|b| !b.is_spam_list));
        }
        out.push(SubscribedDomain {
            domain_name: domain.clone(),
            pwn_count: pwn,
            pwn_count_excluding_spam_lists: not_spam,
            pwn_count_excluding_spam_lists_at_last_subscription_renewal: None,
            next_subscription_renewal: None,
        });
    }
    Ok(out)
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Status {
    subscription_name: String,
    description: &'static str,
    subscribed_until: Option<String>,
    /// Requests per minute; null when the key has no limit.
    rpm: Option<u32>,
    domain_search_max_breached_accounts: Option<u64>,
    max_breached_domains: Option<u64>,
    includes_stealer_logs: bool,
    includes_bulk_domain_add: bool,
    includes_auto_subdomain_verification: bool,
    includes_customer_domains: bool,
    includes_k_anon: bool,
}

/// `GET /api/v3/subscription/status`.
pub async fn status(State(state): State<AppState>, KeyHolder(key): KeyHolder) -> Result<Response, AppError> {
    let rpm = key.rate_limit_per_minute.unwrap_or(state.shared().limits.key_per_minute);
    let description = match key.role {
        Role::Admin => "leakwatch admin key: every search, sensitive breaches included.",
        Role::Analyst => "leakwatch analyst key: every search, sensitive breaches included.",
        Role::Domain => "leakwatch domain key: searches of its own verified domains only.",
    };
    Ok(json(&Status {
        subscription_name: format!("leakwatch {}", key.role),
        description,
        subscribed_until: None,
        rpm: (rpm > 0).then_some(rpm),
        domain_search_max_breached_accounts: None,
        max_breached_domains: None,
        includes_stealer_logs: true,
        includes_bulk_domain_add: false,
        includes_auto_subdomain_verification: false,
        includes_customer_domains: false,
        includes_k_anon: false,
    }))
}
