//! The domain search: every breached address on a domain and the breaches it
//! is in, with the stealer-log websites of each, for keys that may search the
//! domain (admin and analyst keys any domain, a domain key its own).
//!
//! It is the API's `breacheddomain` and `stealerlogsbyemaildomain` side by
//! side: the same lookups and role checks ([`domain_aliases`],
//! [`email_domain_websites`]), run on the blocking pool like them, and both
//! audited in one commit before the page is rendered. The domain travels in a
//! POST body, as a searched address does.

use std::collections::{BTreeMap, BTreeSet};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use leakwatch_catalog::{Role, SubjectKind};
use leakwatch_types::normalize_domain;

use super::html::{esc, path_segment};
use super::pages::{error_page, page};
use super::{see_other, Visitor};
use crate::api::search::domain_aliases;
use crate::api::stealer::email_domain_websites;
use crate::api::{audit_entry, domain_wide};
use crate::error::AppError;
use crate::state::AppState;

/// What a domain search found: breaches by alias, stealer-log websites by alias.
type Found = (BTreeMap<String, Vec<String>>, BTreeMap<String, Vec<String>>);

/// The form, with a domain key's own domains to pick from, then `results`.
fn domain_page(visitor: &Visitor, status: StatusCode, searched: &str, results: &str) -> Response {
    let Some((session, key)) = &visitor.signed_in else { return see_other("/ui/signin") };
    let own = if key.role == Role::Domain && !key.domains.is_empty() {
        let options: String = key.domains.iter().map(|d| format!("<option value=\"{0}\">", esc(d))).collect();
        format!(
            "<p>This key may search: {}.</p>\n<datalist id=\"own-domains\">{options}</datalist>\n",
            esc(&key.domains.join(", "))
        )
    } else {
        String::new()
    };
    let body = format!(
        r#"<h1>Domain search</h1>
{own}<form class="stack" method="post" action="/ui/domain">
<input type="hidden" name="csrf" value="{csrf}">
<label for="domain">Domain</label>
<input type="text" id="domain" name="domain" value="{searched}" list="own-domains" autocomplete="off" required>
<button type="submit">Search domain</button>
</form>
{results}"#,
        csrf = esc(&session.csrf),
        searched = esc(searched),
    );
    page(visitor, status, "Domain search", &body)
}

/// `GET /ui/domain`.
pub async fn form(visitor: Visitor) -> Response {
    domain_page(&visitor, StatusCode::OK, "", "")
}

/// `POST /ui/domain`.
pub async fn search(State(state): State<AppState>, visitor: Visitor, body: Bytes) -> Response {
    let (key, fields) = match super::signed_post(&state, &visitor, &body, "ui breacheddomain").await {
        Ok(allowed) => allowed,
        Err(answer) => return answer,
    };
    let raw = fields.get("domain").map_or("", |d| d.trim());
    let Some(domain) = normalize_domain(raw) else {
        let notice = "<p class=\"notice bad\" role=\"alert\">That is not a domain name.</p>";
        return domain_page(&visitor, StatusCode::BAD_REQUEST, raw, notice);
    };
    let (searcher, searched, looked_up) = (state.clone(), key.clone(), domain.clone());
    let found: Result<Found, AppError> = domain_wide(move || {
        let aliases = domain_aliases(&searcher, &searched, &looked_up)?;
        let stealer = email_domain_websites(&searcher, &searched, &looked_up)?;
        Ok((aliases, stealer))
    })
    .await;
    let audit = &state.shared().audit;
    let subject = audit.subject(SubjectKind::Domain, &domain);
    let (status, breached, infected) = match &found {
        Ok((aliases, stealer)) => (200, aliases.len() as u64, stealer.len() as u64),
        Err(e) => (e.status().as_u16(), 0, 0),
    };
    let rows = vec![
        audit_entry(&key, "ui breacheddomain", subject.clone(), status, breached),
        audit_entry(&key, "ui stealerlogsbyemaildomain", subject, status, infected),
    ];
    if let Err(e) = audit.record_all(rows).await {
        return error_page(&visitor, e);
    }
    match found {
        Ok((aliases, stealer)) => {
            domain_page(&visitor, StatusCode::OK, &domain, &results(&domain, &aliases, &stealer))
        }
        Err(e) => error_page(&visitor, e),
    }
}

/// The table of a domain's exposed addresses: those seen in stealer logs
/// first (their devices were infected), then by address.
fn results(
    domain: &str,
    aliases: &BTreeMap<String, Vec<String>>,
    stealer: &BTreeMap<String, Vec<String>>,
) -> String {
    let everyone: BTreeSet<&String> = aliases.keys().chain(stealer.keys()).collect();
    if everyone.is_empty() {
        return format!(
            "<h2 class=\"good\">No breach held here contains an address on {}</h2>\n",
            esc(domain)
        );
    }
    let mut order: Vec<&String> = everyone.into_iter().collect();
    order.sort_by_key(|alias| !stealer.contains_key(*alias));
    let n = order.len();
    let mut rows = String::new();
    for alias in order {
        let breaches: Vec<String> = aliases
            .get(alias)
            .map(|names| {
                names
                    .iter()
                    .map(|n| format!("<a href=\"/ui/breach/{}\">{}</a>", path_segment(n), esc(n)))
                    .collect()
            })
            .unwrap_or_default();
        let sites = stealer.get(alias).map(|s| esc(&s.join(", "))).unwrap_or_default();
        rows.push_str(&format!(
            "<tr><td>{address}</td><td>{breaches}</td><td>{sites}</td></tr>\n",
            address = esc(&format!("{alias}@{domain}")),
            breaches = breaches.join(", "),
        ));
    }
    format!(
        r#"<h2 class="bad">{n} address{plural} on {domain} exposed</h2>
<p>{infected} of them in stealer logs: credentials taken from an infected device, listed first.</p>
<div class="table-wrap"><table>
<thead><tr><th scope="col">Address</th><th scope="col">Breaches</th><th scope="col">Stealer-log websites</th></tr></thead>
<tbody>
{rows}</tbody>
</table></div>
"#,
        plural = if n == 1 { "" } else { "es" },
        domain = esc(domain),
        infected = stealer.len(),
    )
}
