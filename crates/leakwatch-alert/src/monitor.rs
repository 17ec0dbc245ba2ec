//! The monitor: after a generation is published, what is new for each
//! organization with an alert destination goes to the outbox.
//!
//! "New" is against what the organization already recorded (keyed hashes of
//! (account, breach) pairs), not against the previous generation: a scan that
//! never ran (a crash after publishing, a command run with the monitor off) is
//! made up by the next one, which finds the same pairs still unrecorded. Each
//! organization's scan is recorded in one transaction, its batches with it, and
//! only once per generation, whoever (the CLI, `serve`) gets there first.

use std::collections::{BTreeMap, HashSet};

use leakwatch_catalog::{AlertRoute, Catalog, NewDelivery, Organization, Scan, SeenMac};
use leakwatch_store::{Keys, Store};

use crate::error::{AlertError, Result};
use crate::exposure::{exposures, DirectoryAccount, Exposure, Payload};
use crate::keys::AlertKeys;

/// What one pass of the monitor did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ScanReport {
    /// Organizations compared with this generation.
    pub organizations: usize,
    /// Batches written to the outbox (one per organization and destination).
    pub batches: usize,
    /// New exposures found, over all organizations.
    pub exposures: u64,
    /// Organizations that could not be scanned, with why; the others were.
    pub errors: Vec<String>,
}

/// Compares `store`'s generation with what every organization with an alert
/// destination recorded, and writes what is new to the outbox.
pub fn scan(catalog: &mut Catalog, store: &Store, keys: &Keys) -> Result<ScanReport> {
    let alert_keys = AlertKeys::new(keys);
    let mut by_org: BTreeMap<i64, Vec<AlertRoute>> = BTreeMap::new();
    for route in catalog.alert_routes()? {
        by_org.entry(route.org_id).or_default().push(route);
    }
    let mut report = ScanReport::default();
    for (org_id, routes) in by_org {
        let name = routes[0].org.clone();
        match scan_org(catalog, store, keys, &alert_keys, org_id, &routes) {
            Ok(Some(found)) => {
                report.organizations += 1;
                if found > 0 {
                    report.batches += routes.len();
                    report.exposures += found;
                }
            }
            Ok(None) => {}
            Err(e) => report.errors.push(format!("organization {name}: {e}")),
        }
    }
    Ok(report)
}

/// Scans one organization; `None` when this generation was scanned already,
/// else how many exposures were new.
fn scan_org(
    catalog: &mut Catalog,
    store: &Store,
    keys: &Keys,
    alert_keys: &AlertKeys,
    org_id: i64,
    routes: &[AlertRoute],
) -> Result<Option<u64>> {
    let generation = store.generation();
    let (done, seen) = catalog.alert_seen(org_id)?;
    if done.is_some_and(|g| g >= generation) {
        return Ok(None);
    }
    let Some(org) = catalog.organization(&routes[0].org)? else { return Ok(None) };
    let found = current(catalog, store, keys, &org)?;
    let mut macs: Vec<SeenMac> = Vec::new();
    let mut fresh: Vec<Exposure> = Vec::new();
    let mut batch_seen = HashSet::new();
    for e in found.into_values() {
        let mac = alert_keys.seen(&e.account, &e.breach);
        if !seen.contains(&mac) && batch_seen.insert(mac) {
            macs.push(mac);
            fresh.push(e);
        }
    }
    let count = fresh.len() as u64;
    // Without a baseline (none recorded when alerts were turned on), this scan
    // is the baseline: recorded, not sent.
    let batches = if done.is_none() || fresh.is_empty() {
        Vec::new()
    } else {
        let created_at = leakwatch_catalog::now();
        routes
            .iter()
            .map(|route| {
                let payload = Payload {
                    delivery_id: new_delivery_id(),
                    organization: org.name.clone(),
                    generation,
                    created_at: created_at.clone(),
                    exposures: fresh.clone(),
                };
                let body = serde_json::to_vec(&payload).expect("a payload serializes");
                NewDelivery {
                    alert_id: route.id,
                    delivery_id: payload.delivery_id,
                    exposures: count,
                    sealed: alert_keys.seal(&body),
                }
            })
            .collect()
    };
    let recorded = catalog.record_scan(org_id, &Scan { generation, macs }, &batches)?;
    Ok(Some(if recorded && done.is_some() { count } else { 0 }))
}

/// What is recorded as seen when an organization's alerts are turned on: every
/// exposure it has now, so that only what is published later is sent.
pub fn baseline(catalog: &Catalog, store: &Store, keys: &Keys, org: &Organization) -> Result<Scan> {
    let alert_keys = AlertKeys::new(keys);
    let found = current(catalog, store, keys, org)?;
    let macs = found.values().map(|e| alert_keys.seen(&e.account, &e.breach)).collect();
    Ok(Scan { generation: store.generation(), macs })
}

fn current(
    catalog: &Catalog,
    store: &Store,
    keys: &Keys,
    org: &Organization,
) -> Result<BTreeMap<(String, String), Exposure>> {
    let directory: Vec<DirectoryAccount> = match catalog.directory(&org.name)? {
        Some(sealed) => {
            let plain = keys
                .directory_keys()
                .open(&sealed.sealed)
                .ok_or_else(|| AlertError::Sealed { what: format!("the directory of {}", org.name) })?;
            serde_json::from_slice(&plain).map_err(|source| AlertError::Json {
                what: format!("the directory of {}", org.name),
                source,
            })?
        }
        None => Vec::new(),
    };
    exposures(store, org, &directory)
}

/// 128 random bits, hex: unique without coordination between processes.
fn new_delivery_id() -> String {
    let bytes: [u8; 16] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use leakwatch_catalog::NewAlert;
    use leakwatch_store::{BreachInfo, DataDir, IngestOptions};

    use super::*;

    fn ingest(data: &DataDir, breach: &str, lines: &str) {
        let file = data.root().with_extension(format!("{breach}.txt"));
        std::fs::write(&file, lines).unwrap();
        let options = IngestOptions {
            breach: BreachInfo { name: breach.into(), ..Default::default() },
            format: None,
            memory_budget: 1 << 28,
        };
        let input = leakwatch_ingest::Input::open(file.to_str().unwrap()).unwrap();
        leakwatch_store::ingest(data, &options, vec![input], &Default::default(), &mut |_| {}).unwrap();
    }

    /// The pairs of every pending batch, opened.
    fn pending(catalog: &Catalog, keys: &Keys) -> Vec<(u64, Vec<(String, String)>)> {
        let alert_keys = AlertKeys::new(keys);
        catalog
            .due_deliveries(i64::MAX, 100)
            .unwrap()
            .iter()
            .map(|d| {
                let payload: Payload = serde_json::from_slice(&alert_keys.open(&d.sealed).unwrap()).unwrap();
                assert_eq!(payload.delivery_id, d.delivery_id);
                let pairs = payload.exposures.into_iter().map(|e| (e.account, e.breach)).collect();
                (payload.generation, pairs)
            })
            .collect()
    }

    fn pair(account: &str, breach: &str) -> (String, String) {
        (account.to_owned(), breach.to_owned())
    }

    #[test]
    fn only_exposures_never_recorded_are_batched_even_across_missed_generations() {
        let tmp = tempfile::tempdir().unwrap();
        let data = DataDir::new(tmp.path().join("data"));
        data.init(Some(&tmp.path().join("data.key"))).unwrap();
        ingest(&data, "Old", "alice@corp.example:pw1\nzed@other.example:pw2\n");
        let keys = data.ensure_keys().unwrap();
        let mut catalog = Catalog::open_in(data.root()).unwrap();
        let org = catalog.add_organization("acme", &["corp.example".to_owned()]).unwrap();
        let store = Store::open(&data).unwrap();
        let scan_now = |catalog: &mut Catalog| scan(catalog, &Store::open(&data).unwrap(), &keys).unwrap();
        // Without a destination nothing is compared.
        assert_eq!(scan_now(&mut catalog), ScanReport::default());
        let base = baseline(&catalog, &store, &keys, &org).unwrap();
        assert_eq!(base.macs.len(), 1);
        let alert =
            NewAlert { kind: "webhook", target: "http://127.0.0.1:9/", settings: "{}", sealed_secret: None };
        catalog.add_alert("acme", &alert, &base).unwrap();
        // The baseline's generation: already compared.
        assert_eq!(scan_now(&mut catalog).organizations, 0);

        ingest(&data, "New", "alice@corp.example:pw3\ncarol@corp.example:pw4\nyan@other.example:pw5\n");
        let report = scan_now(&mut catalog);
        assert_eq!((report.organizations, report.batches, report.exposures), (1, 1, 2));
        let new_generation = Store::open(&data).unwrap().generation();
        assert_eq!(
            pending(&catalog, &keys),
            [(new_generation, vec![pair("alice@corp.example", "New"), pair("carol@corp.example", "New")])]
        );
        // The same generation again: recorded once.
        assert_eq!(scan_now(&mut catalog).organizations, 0);

        // Two generations published with no scan in between (a crash): the
        // next scan finds dave all the same, once.
        ingest(&data, "Later", "dave@corp.example:pw6\ncarol@corp.example:pw4\n");
        ingest(&data, "Unrelated", "xavier@other.example:pw7\n");
        let report = scan_now(&mut catalog);
        assert_eq!((report.batches, report.exposures), (1, 2));
        let batches = pending(&catalog, &keys);
        assert_eq!(batches.len(), 2);
        assert_eq!(batches[1].1, [pair("carol@corp.example", "Later"), pair("dave@corp.example", "Later")],);
        ingest(&data, "Unrelated2", "wes@other.example:pw8\n");
        let report = scan_now(&mut catalog);
        assert_eq!((report.organizations, report.batches, report.exposures), (1, 0, 0));
    }
}
