//! `leakwatch org alert NAME`: an organization's alert destinations. Adding
//! one checks it (https, a real secret, a relay with TLS) and seals its secret
//! with a key from the key ring; adding the first records what the
//! organization is exposed by now as its baseline, so that only exposures
//! published later are sent (the audit reports the rest). Secrets are never
//! printed.

use std::io::Write;
use std::path::Path;

use anyhow::{bail, Context, Result};
use leakwatch_alert::{AlertKeys, Destination};
use leakwatch_catalog::{Catalog, Organization, Scan};
use leakwatch_store::{DataDir, Store};
use serde_json::json;
use zeroize::Zeroizing;

use super::org::{open_catalog, organization};
use crate::cli::OrgAlertArgs;
use crate::output::{line, plural, stdout, table};
use crate::Outcome;

pub fn run(dir: &DataDir, args: OrgAlertArgs) -> Result<Outcome> {
    let mut catalog = open_catalog(dir)?;
    let org = organization(&catalog, &args.name)?;
    if let Some(url) = &args.webhook {
        let secret = match (&args.secret, &args.secret_file) {
            (Some(s), None) => Zeroizing::new(s.as_bytes().to_vec()),
            (None, Some(path)) => Zeroizing::new(read_secret(path)?.as_bytes().to_vec()),
            _ => bail!(
                "--webhook needs --secret S or --secret-file FILE (the key its deliveries are signed with)"
            ),
        };
        let destination = Destination::webhook(url, secret, args.insecure)?;
        return add(dir, &mut catalog, &org, &destination, args.json);
    }
    if let (Some(to), Some(smtp)) = (&args.email, &args.smtp) {
        let password = match &args.smtp_password_file {
            Some(path) => Some(Zeroizing::new(read_secret(path)?)),
            None => None,
        };
        let mut destination = Destination::mail(to, smtp, args.from.as_deref(), password, args.insecure)?;
        if let Some(path) = &args.smtp_ca_file {
            let pem = std::fs::read_to_string(path).with_context(|| path.display().to_string())?;
            destination = destination.with_relay_ca(pem)?;
        }
        return add(dir, &mut catalog, &org, &destination, args.json);
    }
    if let Some(id) = args.remove {
        if !catalog.remove_alert(&org.name, id)? {
            bail!("organization {} has no alert #{id} (`leakwatch org alert {} --list`)", org.name, org.name);
        }
        let mut out = stdout();
        writeln!(out, "removed alert #{id} of {}", org.name)?;
        out.flush()?;
        return Ok(Outcome::Found);
    }
    if args.test {
        return test(dir, &catalog, &org, args.json);
    }
    list(dir, &catalog, &org, args.json)
}

/// The first line of `path`, without its line ending.
fn read_secret(path: &Path) -> Result<String> {
    let text = Zeroizing::new(std::fs::read_to_string(path).with_context(|| path.display().to_string())?);
    let first = text.lines().next().unwrap_or("").trim_end_matches('\r').to_owned();
    if first.is_empty() {
        bail!("{}: empty (the secret is its first line)", path.display());
    }
    Ok(first)
}

fn add(
    dir: &DataDir,
    catalog: &mut Catalog,
    org: &Organization,
    destination: &Destination,
    json: bool,
) -> Result<Outcome> {
    let keys = dir.ensure_keys()?;
    let alert_keys = AlertKeys::new(&keys);
    // The baseline matters only for the first destination (the catalog
    // ignores it otherwise): skip the lookups when there is one.
    let baseline = if org.alerts.is_empty() {
        let store = Store::open(dir)?;
        leakwatch_alert::baseline(catalog, &store, &keys, org)?
    } else {
        Scan::default()
    };
    let id = destination.add_to(catalog, &org.name, &alert_keys, &baseline)?;
    let mut out = stdout();
    if json {
        let value = json!({
            "organization": org.name,
            "id": id,
            "kind": destination.kind(),
            "target": destination.target(),
            "baseline": if org.alerts.is_empty() { Some(baseline.macs.len()) } else { None },
        });
        line(&mut out, &value.to_string())?;
    } else {
        writeln!(out, "alert #{id} of {}: {}", org.name, destination.describe())?;
        if org.alerts.is_empty() {
            writeln!(
                out,
                "{} it is exposed by now recorded as the baseline: only exposures published from now on are sent \
                 (`leakwatch audit --org {}` reports the rest)",
                plural(baseline.macs.len() as u64, "exposure", "exposures"),
                org.name
            )?;
        }
    }
    out.flush()?;
    Ok(Outcome::Found)
}

fn list(dir: &DataDir, catalog: &Catalog, org: &Organization, json: bool) -> Result<Outcome> {
    let mut out = stdout();
    if org.alerts.is_empty() {
        if !json {
            line(
                &mut out,
                &format!(
                    "{} has no alert destination (`org alert {} --webhook URL --secret S`)",
                    org.name, org.name
                ),
            )?;
        }
        out.flush()?;
        return Ok(Outcome::NotFound);
    }
    let keys = dir.ensure_keys()?;
    let alert_keys = AlertKeys::new(&keys);
    let routes = catalog.alert_routes()?;
    for a in &org.alerts {
        let describe = routes
            .iter()
            .find(|r| r.id == a.id)
            .and_then(|r| Destination::from_route(r, &alert_keys).ok())
            .map_or_else(|| format!("{} {}", a.kind, a.target), |d| d.describe());
        let recent = catalog.alert_deliveries(a.id, 10)?;
        if json {
            let batches: Vec<_> = recent
                .iter()
                .map(|d| {
                    json!({
                        "delivery_id": d.delivery_id,
                        "generation": d.generation,
                        "exposures": d.exposures,
                        "attempts": d.attempts,
                        "state": state(d),
                        "last_error": d.last_error,
                    })
                })
                .collect();
            let value = json!({
                "organization": org.name,
                "id": a.id,
                "kind": a.kind,
                "target": a.target,
                "created_at": a.created_at,
                "pending": a.pending,
                "delivered": a.delivered,
                "given_up": a.given_up,
                "recent": batches,
            });
            line(&mut out, &value.to_string())?;
            continue;
        }
        writeln!(
            out,
            "#{} {} (added {}): {} delivered, {} pending, {} given up",
            a.id, describe, a.created_at, a.delivered, a.pending, a.given_up
        )?;
        if !recent.is_empty() {
            let rows: Vec<Vec<String>> = recent
                .iter()
                .map(|d| {
                    vec![
                        d.delivery_id.clone(),
                        d.generation.to_string(),
                        d.exposures.to_string(),
                        d.attempts.to_string(),
                        state(d).to_owned(),
                        d.last_error.clone().unwrap_or_default(),
                    ]
                })
                .collect();
            table(
                &mut out,
                &["  DELIVERY", "GENERATION", "EXPOSURES", "ATTEMPTS", "STATE", "LAST ERROR"],
                &rows,
                &[1, 2, 3],
            )?;
        }
    }
    out.flush()?;
    Ok(Outcome::Found)
}

fn state(d: &leakwatch_catalog::Delivery) -> &'static str {
    if d.delivered {
        "delivered"
    } else if d.given_up {
        "given up"
    } else {
        "pending"
    }
}

/// Sends a made-up batch to every destination now; fails when one did not
/// take it.
fn test(dir: &DataDir, catalog: &Catalog, org: &Organization, json: bool) -> Result<Outcome> {
    let keys = dir.ensure_keys()?;
    let sent = leakwatch_alert::send_tests(catalog, &keys, org)?;
    let mut out = stdout();
    let failed = sent.iter().filter(|t| t.result.is_err()).count();
    for t in &sent {
        if json {
            let value = json!({
                "id": t.id,
                "kind": t.kind,
                "target": t.target,
                "delivery_id": t.delivery_id,
                "ok": t.result.is_ok(),
                "error": t.result.as_ref().err(),
            });
            line(&mut out, &value.to_string())?;
        } else {
            match &t.result {
                Ok(()) => writeln!(out, "#{} {}: delivered ({})", t.id, t.describe, t.delivery_id)?,
                Err(e) => writeln!(out, "#{} {}: FAILED: {e}", t.id, t.describe)?,
            }
        }
    }
    out.flush()?;
    if failed > 0 {
        bail!("{failed} of {} destinations did not take the test alert", sent.len());
    }
    Ok(Outcome::Found)
}
