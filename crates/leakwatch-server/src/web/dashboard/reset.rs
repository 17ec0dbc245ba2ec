//! Forced resets from the dashboard, dry run first, as `leakwatch reset --org`:
//!
//! 1. **Preview** (`POST /ui/org/{name}/reset`, admin or analyst keys): the
//!    accounts a reset takes and why, computed as the CLI computes them;
//!    nothing changes. The preview is kept in memory under a random
//!    confirmation token, bound to the session, for [`PREVIEW_TTL`].
//! 2. **Apply** (`POST .../reset/apply`, admin keys only, with the token): the
//!    previewed accounts, exactly those, are reset through a reset list (what
//!    `reset --apply --reset-list FILE` writes, for whatever identity provider
//!    holds the accounts): one audit row per account, naming the key
//!    (`ui reset --apply --org NAME (reset list)`), written before anything is
//!    shown. A token applies once.
//! 3. **Reset list** (`POST .../reset/list`, the same token): the list as CSV,
//!    a download, never a file on the server.
//!
//! Setting `pwdReset`/`pwdLastSet` on an LDAP server needs that server's write
//! credentials, which the server does not hold: for a directory imported over
//! LDAP the page names the CLI command that does it.

use std::collections::HashMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use leakwatch_catalog::{ApiKey, Role, SubjectKind};
use leakwatch_org::{csv_cell, reports, reset_reasons};

use super::super::html::{esc, path_segment};
use super::super::pages::{csrf_ok, error_page, page, BAD_TOKEN};
use super::super::session::{random_token, tokens_match};
use super::super::{form_fields, see_other, Visitor};
use super::{directory, open_catalog, org_rows, visible_org};
use crate::api::audit_entry;
use crate::auth::charge;
use crate::error::AppError;
use crate::state::AppState;

/// How long a preview may be applied.
pub const PREVIEW_TTL: Duration = Duration::from_secs(15 * 60);
/// Previews held at most; past it the oldest is dropped.
const MAX_PREVIEWS: usize = 1_000;

/// One account a reset takes.
#[derive(Debug, Clone)]
struct PlannedReset {
    account: String,
    username: Option<String>,
    dn: Option<String>,
    reasons: Vec<String>,
}

#[derive(Debug)]
struct Preview {
    session: String,
    org: String,
    domains: Vec<String>,
    resets: Vec<PlannedReset>,
    created: Instant,
    applied: bool,
}

/// The previews waiting to be applied, by confirmation token. In memory only:
/// a restart forgets them (preview again), and no list of accounts reaches
/// disk.
#[derive(Debug)]
pub struct Previews {
    map: Mutex<HashMap<String, Preview>>,
    ttl: Duration,
}

impl Default for Previews {
    fn default() -> Self {
        Previews::with_ttl(PREVIEW_TTL)
    }
}

impl Previews {
    pub fn with_ttl(ttl: Duration) -> Previews {
        Previews { map: Mutex::new(HashMap::new()), ttl }
    }

    fn insert(&self, preview: Preview) -> std::io::Result<String> {
        let token = random_token()?;
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|_, p| p.created.elapsed() < self.ttl);
        if map.len() >= MAX_PREVIEWS {
            if let Some(oldest) = map.iter().min_by_key(|(_, p)| p.created).map(|(t, _)| t.clone()) {
                map.remove(&oldest);
            }
        }
        map.insert(token.clone(), preview);
        Ok(token)
    }

    /// Runs `f` on the live preview `token` of `session` for `org`.
    fn with<T>(&self, token: &str, session: &str, org: &str, f: impl FnOnce(&mut Preview) -> T) -> Option<T> {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|_, p| p.created.elapsed() < self.ttl);
        let preview = map.get_mut(token)?;
        (tokens_match(&preview.session, session) && preview.org == org).then(|| f(preview))
    }
}

const STALE: AppError = AppError::Forbidden(
    "This preview has expired, was applied already, or is another session's: preview again.",
);

fn endpoint(command: &str, org: &str) -> String {
    format!("{command} --org {org}")
}

/// `POST /ui/org/{name}/reset`: the dry run.
pub async fn reset_preview(
    State(state): State<AppState>,
    visitor: Visitor,
    Path(name): Path<String>,
    body: Bytes,
) -> Response {
    let (key, fields) = match crate::web::signed_post(&state, &visitor, &body, "ui reset").await {
        Ok(allowed) => allowed,
        Err(answer) => return answer,
    };
    let Some(session) = visitor.session_id.clone() else { return see_other("/ui/signin") };
    let include_common = fields.get("include_common").is_some_and(|v| v == "1");
    let (reader, asker) = (state.clone(), key.clone());
    let planned = crate::api::domain_wide(move || {
        let catalog = open_catalog(&reader)?;
        let org = visible_org(&catalog, &asker, name.trim())?;
        if asker.role == Role::Domain {
            return Err(AppError::Forbidden("Reset previews need an admin or analyst key."));
        }
        let Some(import) = &org.directory else {
            return Err(AppError::BadRequest("This organization has no directory to reset yet."));
        };
        let source = import.source.clone();
        let accounts = directory(&reader, &catalog, &org)?;
        let snapshot = reader.snapshot();
        let found = reports(&snapshot.store, &accounts).map_err(AppError::internal)?;
        let mut resets: Vec<PlannedReset> = accounts
            .iter()
            .zip(&found)
            .filter_map(|(a, r)| {
                let reasons = reset_reasons(r, include_common);
                (!reasons.is_empty()).then(|| PlannedReset {
                    account: a.email.clone(),
                    username: a.username.clone(),
                    dn: a.dn.clone(),
                    reasons,
                })
            })
            .collect();
        resets.sort_by(|x, y| x.account.cmp(&y.account));
        Ok((org, source, resets))
    })
    .await;
    let command = |org: &str| endpoint("ui reset", org);
    let rows = match &planned {
        Ok((org, _, resets)) => {
            org_rows(&state, &key, &command(&org.name), Some(org), 200, resets.len() as u64)
        }
        Err(e) => org_rows(&state, &key, "ui reset", None, e.status().as_u16(), 0),
    };
    if let Err(e) = state.shared().audit.record_all(rows).await {
        return error_page(&visitor, e);
    }
    let (org, source, resets) = match planned {
        Ok(p) => p,
        Err(e) => return error_page(&visitor, e),
    };
    let link = path_segment(&org.name);
    let mut body = format!(
        "<h1>Forced resets: {name}</h1>\n<p class=\"notice\" role=\"status\">Dry run: {n} account{s} would be reset{common}; \
         nothing was changed.</p>\n",
        name = esc(&org.name),
        n = resets.len(),
        s = if resets.len() == 1 { "" } else { "s" },
        common = if include_common { " (passwords in the corpus included)" } else { "" },
    );
    body.push_str(&reset_table(&resets, false));
    if resets.is_empty() {
        let _ = write!(body, "<p><a href=\"/ui/org/{link}\">Back to the dashboard</a></p>");
        return page(&visitor, StatusCode::OK, "Forced resets", &body);
    }
    if source.starts_with("ldap/") {
        let _ = writeln!(
            body,
            "<p>This directory was read over LDAP ({}). To set the reset flag on the server itself, run \
             <code>leakwatch reset --org {} --apply --ldap URL --bind-dn DN --password-file F</code> (the server \
             holds no directory credentials); applying here hands you a reset list instead.</p>",
            esc(&source),
            esc(&org.name)
        );
    }
    let preview = Preview {
        session,
        org: org.name.clone(),
        domains: org.domains.clone(),
        resets,
        created: Instant::now(),
        applied: false,
    };
    let n = preview.resets.len();
    let token = match state.shared().previews.insert(preview) {
        Ok(t) => t,
        Err(e) => return error_page(&visitor, AppError::internal(e)),
    };
    let csrf = visitor.signed_in.as_ref().map_or("", |(s, _)| s.csrf.as_str());
    if key.role == Role::Admin {
        let _ = writeln!(
            body,
            "<form class=\"stack\" method=\"post\" action=\"/ui/org/{link}/reset/apply\">\n\
             <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\n<input type=\"hidden\" name=\"confirm\" value=\"{token}\">\n\
             <p>Applying resets exactly these {n} accounts through a reset list, recorded in the audit log under this \
             key's name. The preview can be applied for {minutes} minutes.</p>\n\
             <button type=\"submit\" class=\"danger\">Apply: reset {n} account{s}</button>\n</form>",
            csrf = esc(csrf),
            token = esc(&token),
            minutes = PREVIEW_TTL.as_secs() / 60,
            s = if n == 1 { "" } else { "s" },
        );
    } else {
        body.push_str("<p class=\"notice\">Applying a reset needs an admin key.</p>\n");
    }
    let _ = write!(body, "<p><a href=\"/ui/org/{link}\">Back to the dashboard</a></p>");
    page(&visitor, StatusCode::OK, "Forced resets", &body)
}

fn reset_table(resets: &[PlannedReset], applied: bool) -> String {
    if resets.is_empty() {
        return "<p class=\"good\">No account needs a reset.</p>\n".to_owned();
    }
    let mut t = String::from(
        "<div class=\"table-wrap\"><table class=\"cards-narrow\" id=\"reset-plan\">\n<thead><tr><th scope=\"col\">Account</th>\
         <th scope=\"col\">Entry</th><th scope=\"col\">Action</th><th scope=\"col\">Why</th></tr></thead>\n<tbody>\n",
    );
    for r in resets {
        let _ = writeln!(
            t,
            "<tr><td data-label=\"Account\">{account}</td><td data-label=\"Entry\">{entry}</td><td data-label=\"Action\">{action}</td>\
             <td data-label=\"Why\">{why}</td></tr>",
            account = esc(&r.account),
            entry = esc(r.dn.as_deref().or(r.username.as_deref()).unwrap_or("–")),
            action = if applied { "listed for reset" } else { "would be listed" },
            why = esc(&r.reasons.join("; ")),
        );
    }
    t.push_str("</tbody>\n</table></div>\n");
    t
}

/// Why an apply or a list download is refused.
enum Refusal {
    SignIn,
    Error(AppError),
}

impl Refusal {
    fn page(self, visitor: &Visitor) -> Response {
        match self {
            Refusal::SignIn => see_other("/ui/signin"),
            Refusal::Error(e) => error_page(visitor, e),
        }
    }
}

/// The confirmed, admin-only parts of an apply or a list download: the key,
/// the session, the form's confirmation token.
fn confirmed<'a>(
    visitor: &'a Visitor,
    fields: &'a HashMap<String, String>,
) -> Result<(std::sync::Arc<ApiKey>, &'a str, &'a str), Refusal> {
    let (Some((_, key)), Some(session)) = (&visitor.signed_in, &visitor.session_id) else {
        return Err(Refusal::SignIn);
    };
    if !csrf_ok(visitor, fields) {
        return Err(Refusal::Error(BAD_TOKEN));
    }
    if key.role != Role::Admin {
        return Err(Refusal::Error(AppError::Forbidden("Applying a reset needs an admin key.")));
    }
    let token = fields.get("confirm").map_or("", String::as_str);
    Ok((key.clone(), session, token))
}

/// `POST /ui/org/{name}/reset/apply`.
pub async fn reset_apply(
    State(state): State<AppState>,
    visitor: Visitor,
    Path(name): Path<String>,
    body: Bytes,
) -> Response {
    let fields = form_fields(&body);
    let (key, session, token) = match confirmed(&visitor, &fields) {
        Ok(c) => c,
        Err(refused) => return refused.page(&visitor),
    };
    if let Err(e) = charge(&state, visitor.client, || "ui reset --apply".into(), Some(&key)).await {
        return error_page(&visitor, e);
    }
    let name = name.trim();
    // Marked applied before its rows are written, so that two clicks apply
    // once; unmarked if the rows cannot be written.
    let previews = &state.shared().previews;
    let claimed = previews.with(token, session, name, |p| {
        (!p.applied).then(|| {
            p.applied = true;
            p.resets.clone()
        })
    });
    let Some(Some(resets)) = claimed else {
        return error_page(&visitor, STALE);
    };
    let audit = &state.shared().audit;
    let command = format!("{} (reset list)", endpoint("ui reset --apply", name));
    let rows = resets
        .iter()
        .map(|r| audit_entry(&key, &command, audit.subject(SubjectKind::Account, &r.account), 200, 1))
        .collect();
    if let Err(e) = audit.record_all(rows).await {
        previews.with(token, session, name, |p| p.applied = false);
        return error_page(&visitor, e);
    }
    let link = path_segment(name);
    let csrf = visitor.signed_in.as_ref().map_or("", |(s, _)| s.csrf.as_str());
    let mut body = format!(
        "<h1>Forced resets: {org}</h1>\n<p class=\"notice\" role=\"status\">{n} account{s} reset through a reset list, \
         recorded in the audit log under {who}.</p>\n",
        org = esc(name),
        n = resets.len(),
        s = if resets.len() == 1 { "" } else { "s" },
        who = esc(&key.name),
    );
    body.push_str(&reset_table(&resets, true));
    let _ = writeln!(
        body,
        "<form class=\"stack\" method=\"post\" action=\"/ui/org/{link}/reset/list\">\n\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\n<input type=\"hidden\" name=\"confirm\" value=\"{token}\">\n\
         <p>Hand the reset list to the identity provider that holds the accounts.</p>\n\
         <button type=\"submit\">Download the reset list (CSV)</button>\n</form>\n\
         <p><a href=\"/ui/org/{link}\">Back to the dashboard</a></p>",
        csrf = esc(csrf),
        token = esc(token),
    );
    page(&visitor, StatusCode::OK, "Forced resets", &body)
}

/// `POST /ui/org/{name}/reset/list`: the applied preview's reset list, as
/// `reset --apply --reset-list FILE.csv` writes it.
pub async fn reset_list(
    State(state): State<AppState>,
    visitor: Visitor,
    Path(name): Path<String>,
    body: Bytes,
) -> Response {
    let fields = form_fields(&body);
    let (key, session, token) = match confirmed(&visitor, &fields) {
        Ok(c) => c,
        Err(refused) => return refused.page(&visitor),
    };
    if let Err(e) = charge(&state, visitor.client, || "ui reset --list".into(), Some(&key)).await {
        return error_page(&visitor, e);
    }
    let name = name.trim();
    let applied = state
        .shared()
        .previews
        .with(token, session, name, |p| p.applied.then(|| (p.resets.clone(), p.domains.clone())));
    let Some(Some((resets, domains))) = applied else {
        return error_page(&visitor, STALE);
    };
    let audit = &state.shared().audit;
    let command = endpoint("ui reset --list", name);
    let rows = domains
        .iter()
        .map(|d| audit_entry(&key, &command, audit.subject(SubjectKind::Domain, d), 200, resets.len() as u64))
        .collect();
    if let Err(e) = audit.record_all(rows).await {
        return error_page(&visitor, e);
    }
    let mut csv = String::from("email,username,dn,reasons\n");
    for r in &resets {
        let cells = [
            r.account.as_str(),
            r.username.as_deref().unwrap_or(""),
            r.dn.as_deref().unwrap_or(""),
            &r.reasons.join("; "),
        ];
        csv.push_str(&cells.iter().map(|c| csv_cell(c)).collect::<Vec<_>>().join(","));
        csv.push('\n');
    }
    let file = name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .collect::<String>();
    let disposition = HeaderValue::try_from(format!("attachment; filename=\"reset-{file}.csv\""))
        .unwrap_or(HeaderValue::from_static("attachment"));
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("text/csv; charset=utf-8")),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        csv,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_preview_answers_only_its_own_session_and_organization() {
        let previews = Previews::with_ttl(Duration::from_millis(200));
        let preview = |session: &str| Preview {
            session: session.into(),
            org: "acme".into(),
            domains: vec!["acme.example".into()],
            resets: Vec::new(),
            created: Instant::now(),
            applied: false,
        };
        let token = previews.insert(preview("s1")).unwrap();
        assert_eq!(token.len(), 64);
        assert_eq!(previews.with(&token, "s2", "acme", |_| ()), None, "another session");
        assert_eq!(previews.with(&token, "s1", "other", |_| ()), None, "another organization");
        assert_eq!(previews.with(&"0".repeat(64), "s1", "acme", |_| ()), None);
        assert_eq!(
            previews.with(&token, "s1", "acme", |p| p.domains.clone()),
            Some(vec!["acme.example".into()])
        );
        std::thread::sleep(Duration::from_millis(250));
        assert_eq!(previews.with(&token, "s1", "acme", |_| ()), None, "expired");
    }
}
