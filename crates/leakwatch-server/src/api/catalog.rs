//! The breach catalog: `breaches`, `breach/{name}`, `latestbreach` and
//! `dataclasses`. Open to anonymous callers, as at HIBP; sensitive breaches are
//! shown only to admin and analyst keys.

use std::collections::BTreeSet;

use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use leakwatch_store::{Breach, HibpBreach};

use super::{json, public};
use crate::auth::Caller;
use crate::error::AppError;
use crate::query::Params;
use crate::state::AppState;

/// The breaches this caller may see.
fn visible<'a>(caller: &Caller, breaches: Vec<&'a Breach>) -> impl Iterator<Item = &'a Breach> {
    let sensitive = caller.sees_sensitive();
    breaches.into_iter().filter(move |b| sensitive || !b.is_sensitive)
}

/// `GET /api/v3/breaches[?domain=D][&isSpamList=B]`: every breach, sorted by title.
pub async fn breaches(
    State(state): State<AppState>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> Result<Response, AppError> {
    let params = Params::parse(query.as_deref());
    let domain = params.get("domain").filter(|d| !d.is_empty());
    let spam = match params.get("isspamlist") {
        None | Some("") => None,
        Some(_) => Some(params.flag("isspamlist", false)?),
    };
    let snapshot = state.snapshot();
    let mut found: Vec<&Breach> = visible(&caller, snapshot.store.breaches())
        .filter(|b| domain.is_none_or(|d| b.domain.eq_ignore_ascii_case(d)))
        .filter(|b| spam.is_none_or(|s| b.is_spam_list == s))
        .collect();
    found.sort_by(|a, b| {
        a.title.to_lowercase().cmp(&b.title.to_lowercase()).then_with(|| a.name.cmp(&b.name))
    });
    let out: Vec<HibpBreach> = found.into_iter().map(HibpBreach::from).collect();
    Ok(public(json(&out)))
}

/// `GET /api/v3/breach/{name}`: one breach by name, in any case.
pub async fn breach(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Response, AppError> {
    let snapshot = state.snapshot();
    let name = name.trim();
    let found = visible(&caller, snapshot.store.breaches()).find(|b| b.name.eq_ignore_ascii_case(name));
    let breach = found.ok_or(AppError::NotFound)?;
    Ok(public(json(&HibpBreach::from(breach))))
}

/// `GET /api/v3/latestbreach`: the breach added most recently.
pub async fn latest(State(state): State<AppState>, caller: Caller) -> Result<Response, AppError> {
    let snapshot = state.snapshot();
    let latest = visible(&caller, snapshot.store.breaches())
        .max_by(|a, b| a.added_date.cmp(&b.added_date).then_with(|| b.name.cmp(&a.name)));
    let breach = latest.ok_or(AppError::NotFound)?;
    Ok(public(json(&HibpBreach::from(breach))))
}

/// `GET /api/v3/dataclasses`: every data class in use, sorted.
pub async fn data_classes(State(state): State<AppState>, caller: Caller) -> Result<Response, AppError> {
    let snapshot = state.snapshot();
    let classes: BTreeSet<&str> = visible(&caller, snapshot.store.breaches())
        .flat_map(|b| b.data_classes.iter().map(String::as_str))
        .collect();
    Ok(public(json(&classes)))
}
