//! What an organization is exposed by: each (account, breach) pair of its
//! domains' addresses and of its directory's enabled accounts, stealer logs
//! included (a stealer log is a breach flagged as one), and the payload a
//! batch of new ones is delivered as.

use std::collections::{BTreeMap, HashMap};

use leakwatch_catalog::Organization;
use leakwatch_store::{Breach, Store};
use leakwatch_types::{Account, AccountKind};
use serde::{Deserialize, Serialize};

use crate::error::Result;

/// One exposure, as the webhook body's `exposures` array and the mail list it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exposure {
    /// The address.
    pub account: String,
    /// The breach's name.
    pub breach: String,
    pub breach_title: String,
    /// `YYYY-MM-DD`.
    pub breach_date: String,
    /// HIBP's data-class names, sorted.
    pub data_classes: Vec<String>,
    /// Whether the breach is a stealer log: the account's device was infected.
    pub stealer_log: bool,
    /// For a stealer log: the websites whose credentials it captured for the
    /// account.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub websites: Vec<String>,
    /// Whether the account is in the organization's directory (else it was
    /// found through its domains).
    pub in_directory: bool,
}

/// A batch: the webhook's JSON body, and what a mail is written from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payload {
    /// The same on every attempt, and as the `X-Leakwatch-Delivery` header.
    pub delivery_id: String,
    pub organization: String,
    /// The store generation the exposures were found in.
    pub generation: u64,
    /// When the batch was created (RFC 3339).
    pub created_at: String,
    pub exposures: Vec<Exposure>,
}

/// A directory account as the monitor reads it from the sealed directory the
/// CLI's `org import` writes (its JSON names: `e` the address, `x` disabled).
#[derive(Deserialize)]
pub struct DirectoryAccount {
    #[serde(rename = "e")]
    pub email: String,
    #[serde(rename = "x", default)]
    pub disabled: bool,
}

/// Every exposure of `org` in `store`, by (account, breach).
pub fn exposures(
    store: &Store,
    org: &Organization,
    directory: &[DirectoryAccount],
) -> Result<BTreeMap<(String, String), Exposure>> {
    let breaches: HashMap<&str, &Breach> =
        store.breaches().into_iter().map(|b| (b.name.as_str(), b)).collect();
    let mut out: BTreeMap<(String, String), Exposure> = BTreeMap::new();
    let mut add = |account: String, breach: &Breach, in_directory: bool| {
        let e = out.entry((account.clone(), breach.name.clone())).or_insert_with(|| Exposure {
            account,
            breach: breach.name.clone(),
            breach_title: breach.title.clone(),
            breach_date: breach.breach_date.clone(),
            data_classes: breach.data_classes.clone(),
            stealer_log: breach.is_stealer_log,
            websites: Vec::new(),
            in_directory,
        });
        e.in_directory |= in_directory;
    };
    for domain in &org.domains {
        for (alias, names) in store.domain(domain)? {
            for name in names {
                if let Some(b) = breaches.get(name.as_str()) {
                    add(format!("{alias}@{domain}"), b, false);
                }
            }
        }
    }
    for a in directory.iter().filter(|a| !a.disabled) {
        // Stored normalized by the import.
        let account = Account { kind: AccountKind::Email, value: a.email.clone() };
        for b in store.account_breaches(&account)? {
            add(a.email.clone(), b, true);
        }
    }
    let mut websites: HashMap<String, Vec<String>> = HashMap::new();
    for e in out.values_mut().filter(|e| e.stealer_log) {
        if !websites.contains_key(&e.account) {
            let account = Account { kind: AccountKind::Email, value: e.account.clone() };
            websites.insert(e.account.clone(), store.stealer_websites_by_email(&account)?);
        }
        e.websites = websites[&e.account].clone();
    }
    Ok(out)
}
