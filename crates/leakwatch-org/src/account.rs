//! A directory account as the catalog keeps it (sealed, with the rest of the
//! directory, under a key from the key ring), the password check an import
//! makes of each entry, and opening a sealed directory again.

use std::borrow::Cow;
use std::collections::HashMap;

use leakwatch_catalog::{Catalog, DirectoryChange, DirectoryEntry, SealedDirectory, EMPTY_NT_HASH};
use leakwatch_store::{DirectoryKeys, Store};
use leakwatch_types::{encode_hex_upper, Account};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{OrgError, Result};

/// What the catalog keeps of a directory account, sealed with the rest of the
/// directory: the catalog file alone names nobody. Stored as JSON with
/// one-letter names (the directory is one blob).
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct SealedAccount {
    #[serde(rename = "e")]
    pub email: String,
    #[serde(rename = "u", default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(rename = "n", default, skip_serializing_if = "Option::is_none")]
    pub netbios_domain: Option<String>,
    #[serde(rename = "x", default, skip_serializing_if = "is_false")]
    pub disabled: bool,
    /// The entry's DN, for a directory read over LDAP (what `reset` changes).
    #[serde(rename = "d", default, skip_serializing_if = "Option::is_none")]
    pub dn: Option<String>,
    /// The keyed hash of the NT hash (hex), when the directory gave one.
    #[serde(rename = "m", default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    /// The import that first saw this password for the account.
    #[serde(rename = "s", default, skip_serializing_if = "Option::is_none")]
    pub password_seen_at: Option<String>,
    #[serde(rename = "z", default, skip_serializing_if = "is_false")]
    pub empty_password: bool,
    /// The current password's count in the organization's own dumps...
    #[serde(rename = "o", default)]
    pub own_count: u64,
    /// ...and in the imported Pwned Passwords.
    #[serde(rename = "h", default)]
    pub hibp_count: u64,
    /// Breach ids where this very password leaked for this very account.
    #[serde(rename = "l", default, skip_serializing_if = "Vec::is_empty")]
    pub own_leaked_in: Vec<u32>,
}

fn is_false(b: &bool) -> bool {
    !b
}

/// Each entry with what its current password reveals; the hash itself is
/// dropped, only its keyed hash kept.
fn check_passwords(
    store: &Store,
    keys: &DirectoryKeys,
    entries: Vec<DirectoryEntry>,
) -> Result<Vec<SealedAccount>> {
    // Each account's lookups are independent: on all cores.
    entries.into_par_iter().map(|e| check_password(store, keys, e)).collect()
}

fn check_password(store: &Store, keys: &DirectoryKeys, e: DirectoryEntry) -> Result<SealedAccount> {
    let mut sealed = SealedAccount {
        email: e.email,
        username: e.username,
        netbios_domain: e.netbios_domain,
        disabled: e.disabled,
        dn: e.dn,
        ..SealedAccount::default()
    };
    if let Some(nt) = &e.nt_hash {
        let counts = store.password_counts(true, nt)?;
        sealed.mac = Some(encode_hex_upper(&keys.password_mac(nt)));
        sealed.empty_password = *nt == EMPTY_NT_HASH;
        sealed.own_count = counts.own;
        sealed.hibp_count = counts.hibp;
        if counts.own > 0 {
            // A triple needs the hash in the own dumps: no count, no triple.
            if let Ok(account) = Account::email(&sealed.email) {
                sealed.own_leaked_in =
                    store.own_password_leaked_in(&account, nt)?.iter().map(|b| b.id).collect();
            }
        }
    }
    Ok(sealed)
}

/// What [`import`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Imported {
    pub change: DirectoryChange,
    pub disabled: u64,
    pub with_nt_hash: u64,
    /// The previous directory did not open with this key ring (a key ring
    /// replaced): nothing was compared with it.
    pub previous_unreadable: bool,
}

/// Replaces the directory of `org` with `entries` (read from `source`:
/// `csv`, `pwdump`, `ldap/...`): each password checked against `store`, the
/// changes since the previous directory counted, the whole sealed.
pub fn import(
    catalog: &mut Catalog,
    store: &Store,
    keys: &DirectoryKeys,
    org: &str,
    entries: Vec<DirectoryEntry>,
    source: &str,
) -> Result<Imported> {
    // The previous directory, for change detection: only what `compare` reads.
    let mut previous_unreadable = false;
    let previous_plain = match catalog.directory(org)? {
        Some(d) => keys.open(&d.sealed).unwrap_or_else(|| {
            previous_unreadable = true;
            b"[]".to_vec()
        }),
        None => b"[]".to_vec(),
    };
    let previous: Vec<Previous> = serde_json::from_slice(&previous_plain)
        .map_err(|source| OrgError::Json { org: org.to_owned(), source })?;
    let mut accounts = check_passwords(store, keys, entries)?;
    let change = compare(&previous, &mut accounts);
    drop(previous);
    drop(previous_plain);
    let with_nt_hash = accounts.iter().filter(|a| a.mac.is_some()).count() as u64;
    let disabled = accounts.iter().filter(|a| a.disabled).count() as u64;
    let plain =
        serde_json::to_vec(&accounts).map_err(|source| OrgError::Json { org: org.to_owned(), source })?;
    let directory = SealedDirectory { accounts: change.accounts, disabled, sealed: keys.seal(&plain) };
    let max_breach = store.breaches().iter().map(|b| b.id).max().unwrap_or(0);
    catalog.replace_directory(org, &directory, source, store.generation(), max_breach)?;
    Ok(Imported { change, disabled, with_nt_hash, previous_unreadable })
}

/// What change detection reads of the previous directory's accounts,
/// borrowed from its JSON where it can be.
#[derive(Deserialize)]
struct Previous<'a> {
    #[serde(rename = "e", borrow)]
    email: Cow<'a, str>,
    #[serde(rename = "m", borrow, default)]
    mac: Option<Cow<'a, str>>,
    #[serde(rename = "s", borrow, default)]
    password_seen_at: Option<Cow<'a, str>>,
}

/// What changed since the `previous` directory; sets when each account's
/// password was first seen (kept from before when it is unchanged).
fn compare(previous: &[Previous], accounts: &mut [SealedAccount]) -> DirectoryChange {
    let now = leakwatch_catalog::now();
    let mut before: HashMap<&str, &Previous> = previous.iter().map(|a| (a.email.as_ref(), a)).collect();
    let mut change = DirectoryChange { accounts: accounts.len() as u64, ..DirectoryChange::default() };
    for a in accounts.iter_mut() {
        let old = before.remove(a.email.as_str());
        if old.is_none() {
            change.added += 1;
        }
        let old_mac = old.and_then(|o| o.mac.as_deref());
        if a.mac.is_some() && old_mac.is_some() && a.mac.as_deref() != old_mac {
            change.password_changed += 1;
        }
        a.password_seen_at = match (&a.mac, old) {
            (None, _) => None,
            (Some(mac), Some(o)) if o.mac.as_deref() == Some(mac.as_str()) => {
                Some(o.password_seen_at.as_deref().unwrap_or(&now).to_owned())
            }
            (Some(_), _) => Some(now.clone()),
        };
    }
    change.removed = before.len() as u64;
    change
}

/// Opens the directory of `org` the catalog keeps.
pub fn open_accounts(
    keys: &DirectoryKeys,
    org: &str,
    directory: &SealedDirectory,
) -> Result<Vec<SealedAccount>> {
    let plain = keys.open(&directory.sealed).ok_or_else(|| OrgError::Sealed { org: org.to_owned() })?;
    serde_json::from_slice(&plain).map_err(|source| OrgError::Json { org: org.to_owned(), source })
}

/// The directory of `org`, opened; `None` when it has none.
pub fn load_directory(
    catalog: &Catalog,
    keys: &DirectoryKeys,
    org: &str,
) -> Result<Option<Vec<SealedAccount>>> {
    match catalog.directory(org)? {
        Some(sealed) => open_accounts(keys, org, &sealed).map(Some),
        None => Ok(None),
    }
}
