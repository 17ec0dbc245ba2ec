//! `leakwatch org add|list|show|remove|import`: organizations in the catalog,
//! and the import of their directory of accounts.
//!
//! An import reads the file, checks each account's current NT hash against the
//! store (its counts, and the breaches where it leaked for that very account),
//! and hands the catalog each account sealed (address, user name, findings)
//! beside keyed hashes of its address and NT hash; the NT hashes themselves go
//! no further than this process's memory.

use std::io::{Read, Write};

use anyhow::{bail, Context, Result};
use leakwatch_catalog::{
    parse_directory, AuditEntry, AuditHasher, Catalog, DirectoryEntry, DirectoryFormat, DirectoryRow,
    Organization, SubjectKind, EMPTY_NT_HASH,
};
use leakwatch_store::{DataDir, DirectoryKeys, Keys, Store};
use leakwatch_types::{normalize_domain, Account};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::cli::{DirectoryFormatArg, OrgCommand, OrgImportArgs};
use crate::output::{line, plural, stdout, table};
use crate::Outcome;

pub fn run(dir: &DataDir, command: OrgCommand) -> Result<Outcome> {
    match command {
        OrgCommand::Add { name, domains } => add(dir, &name, &domains),
        OrgCommand::List { json } => list(dir, json),
        OrgCommand::Show { name, json } => show(dir, &name, json),
        OrgCommand::Remove { name } => remove(dir, &name),
        OrgCommand::Import(args) => import(dir, args),
    }
}

pub(crate) fn open_catalog(dir: &DataDir) -> Result<Catalog> {
    Catalog::open_in(dir.root()).with_context(|| format!("opening the catalog of {}", dir.root().display()))
}

/// The organization named `name`, or an error saying how to see the others.
pub(crate) fn organization(catalog: &Catalog, name: &str) -> Result<Organization> {
    catalog.organization(name)?.with_context(|| {
        format!("no organization {name:?}: `leakwatch org list` shows them, `org add` adds one")
    })
}

fn add(dir: &DataDir, name: &str, domains: &[String]) -> Result<Outcome> {
    let mut normalized = Vec::with_capacity(domains.len());
    for d in domains {
        let n = normalize_domain(d).with_context(|| format!("{d:?} is not a domain name"))?;
        if !normalized.contains(&n) {
            normalized.push(n);
        }
    }
    let org = open_catalog(dir)?.add_organization(name, &normalized)?;
    let mut out = stdout();
    writeln!(out, "added organization {} ({})", org.name, org.domains.join(", "))?;
    out.flush()?;
    Ok(Outcome::Found)
}

fn list(dir: &DataDir, json: bool) -> Result<Outcome> {
    let orgs = open_catalog(dir)?.organizations()?;
    let mut out = stdout();
    if json {
        for org in &orgs {
            line(&mut out, &serde_json::to_string(org)?)?;
        }
    } else if orgs.is_empty() {
        line(&mut out, "no organizations (add one with `leakwatch org add NAME --domain D`)")?;
    } else {
        let rows: Vec<Vec<String>> = orgs
            .iter()
            .map(|o| {
                vec![
                    o.name.clone(),
                    o.domains.join(", "),
                    crate::output::thousands(o.accounts),
                    o.directory
                        .as_ref()
                        .map_or("never".to_owned(), |d| format!("{} ({})", d.imported_at, d.source)),
                ]
            })
            .collect();
        table(&mut out, &["NAME", "DOMAINS", "ACCOUNTS", "DIRECTORY IMPORTED"], &rows, &[2])?;
    }
    out.flush()?;
    Ok(Outcome::Found)
}

fn show(dir: &DataDir, name: &str, json: bool) -> Result<Outcome> {
    let org = organization(&open_catalog(dir)?, name)?;
    let mut out = stdout();
    if json {
        line(&mut out, &serde_json::to_string(&org)?)?;
    } else {
        writeln!(out, "organization  {}", org.name)?;
        writeln!(out, "domains       {}", org.domains.join(", "))?;
        writeln!(out, "created       {}", org.created_at)?;
        writeln!(
            out,
            "directory     {} ({} disabled)",
            plural(org.accounts, "account", "accounts"),
            crate::output::thousands(org.disabled_accounts)
        )?;
        match &org.directory {
            Some(d) => writeln!(
                out,
                "imported      {} from {} (checked against store generation {})",
                d.imported_at, d.source, d.checked_generation
            )?,
            None => writeln!(out, "imported      never (`leakwatch org import {} FILE`)", org.name)?,
        }
        if org.alerts.is_empty() {
            writeln!(out, "alerts        none")?;
        }
        for a in &org.alerts {
            writeln!(out, "alert         {} {}", a.kind, a.target)?;
        }
    }
    out.flush()?;
    Ok(Outcome::Found)
}

fn remove(dir: &DataDir, name: &str) -> Result<Outcome> {
    let mut catalog = open_catalog(dir)?;
    let org = organization(&catalog, name)?;
    catalog.remove_organization(name)?;
    let mut out = stdout();
    writeln!(
        out,
        "removed organization {} with its directory of {}",
        org.name,
        plural(org.accounts, "account", "accounts")
    )?;
    out.flush()?;
    Ok(Outcome::Found)
}

fn import(dir: &DataDir, args: OrgImportArgs) -> Result<Outcome> {
    let store = Store::open(dir)?;
    let keys = dir.ensure_keys()?;
    let mut catalog = open_catalog(dir)?;
    let org = organization(&catalog, &args.name)?;
    let bytes = read_input(&args.file)?;
    let format = match args.format {
        Some(DirectoryFormatArg::Csv) => DirectoryFormat::Csv,
        Some(DirectoryFormatArg::Pwdump) => DirectoryFormat::Pwdump,
        None => DirectoryFormat::detect(&bytes),
    };
    let parsed = parse_directory(&bytes, format, &org.domains[0]);
    drop(bytes);
    let accounts = check_passwords(&store, &keys, &parsed.entries)?;
    drop(parsed.entries);
    let max_breach = store.breaches().iter().map(|b| b.id).max().unwrap_or(0);
    let change =
        catalog.replace_directory(&org.name, &accounts, format.as_str(), store.generation(), max_breach)?;
    audit_rows(&keys, &mut catalog, "org import", &org, change.accounts)?;

    let with_hash = accounts.iter().filter(|a| a.password_mac.is_some()).count() as u64;
    let disabled = accounts.iter().filter(|a| a.disabled).count() as u64;
    let left_out: u64 = parsed.left_out.values().map(|l| l.count).sum();
    let mut out = stdout();
    if args.json {
        let value = json!({
            "organization": org.name,
            "format": format.as_str(),
            "accounts": change.accounts,
            "disabled": disabled,
            "with_nt_hash": with_hash,
            "added": change.added,
            "removed": change.removed,
            "password_changed": change.password_changed,
            "left_out": parsed.left_out,
        });
        line(&mut out, &value.to_string())?;
    } else {
        writeln!(
            out,
            "imported {} into {} ({}): {} disabled, {} with an NT hash; {} added, {} removed, {} changed password",
            plural(change.accounts, "account", "accounts"),
            org.name,
            format.as_str(),
            crate::output::thousands(disabled),
            crate::output::thousands(with_hash),
            crate::output::thousands(change.added),
            crate::output::thousands(change.removed),
            crate::output::thousands(change.password_changed),
        )?;
        if left_out > 0 {
            writeln!(out, "left out {}:", plural(left_out, "line", "lines"))?;
            for (reason, l) in &parsed.left_out {
                let lines: Vec<String> = l.lines.iter().map(u64::to_string).collect();
                writeln!(
                    out,
                    "  {:>8}  {reason} (lines {})",
                    crate::output::thousands(l.count),
                    lines.join(", ")
                )?;
            }
        }
    }
    out.flush()?;
    Ok(Outcome::Found)
}

fn read_input(file: &str) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    if file == "-" {
        std::io::stdin().lock().read_to_end(&mut bytes).context("<stdin>")?;
    } else {
        bytes = std::fs::read(file).with_context(|| file.to_owned())?;
    }
    Ok(bytes)
}

/// What the catalog keeps of a directory account, sealed under a key from the
/// key ring: the catalog file alone names nobody. Stored as JSON with
/// one-letter names (a directory is written whole at each import).
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct SealedAccount {
    #[serde(rename = "e")]
    pub email: String,
    #[serde(rename = "u", default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(rename = "d", default, skip_serializing_if = "Option::is_none")]
    pub netbios_domain: Option<String>,
    /// Whether the directory gave the account's NT hash.
    #[serde(rename = "k", default)]
    pub password_known: bool,
    #[serde(rename = "z", default)]
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

/// Each entry with what its current password reveals, sealed; the hash itself
/// is dropped.
fn check_passwords(store: &Store, keys: &Keys, entries: &[DirectoryEntry]) -> Result<Vec<DirectoryRow>> {
    let keys = keys.directory_keys();
    // Each account's lookups are independent: on all cores.
    entries.par_iter().map(|e| check_password(store, &keys, e)).collect()
}

fn check_password(store: &Store, keys: &DirectoryKeys, e: &DirectoryEntry) -> Result<DirectoryRow> {
    let mut sealed = SealedAccount {
        email: e.email.clone(),
        username: e.username.clone(),
        netbios_domain: e.netbios_domain.clone(),
        ..SealedAccount::default()
    };
    let mut mac = None;
    if let Some(nt) = &e.nt_hash {
        let counts = store.password_counts(true, nt)?;
        mac = Some(keys.password_mac(nt));
        sealed.password_known = true;
        sealed.empty_password = *nt == EMPTY_NT_HASH;
        sealed.own_count = counts.own;
        sealed.hibp_count = counts.hibp;
        if counts.own > 0 {
            // A triple needs the hash in the own dumps: no count, no triple.
            if let Ok(account) = Account::email(&e.email) {
                sealed.own_leaked_in =
                    store.own_password_leaked_in(&account, nt)?.iter().map(|b| b.id).collect();
            }
        }
    }
    Ok(DirectoryRow {
        account_key: keys.account_key(&e.email),
        disabled: e.disabled,
        password_mac: mac,
        sealed: keys.seal(&serde_json::to_vec(&sealed)?),
        password_seen_at: None,
    })
}

/// Opens the catalog's rows of a directory.
pub(crate) fn open_directory(
    keys: &Keys,
    rows: Vec<DirectoryRow>,
) -> Result<Vec<(DirectoryRow, SealedAccount)>> {
    let keys = keys.directory_keys();
    rows.into_par_iter()
        .map(|row| {
            let plain = keys.open(&row.sealed).context(
                "a directory account does not open with this key ring (import the directory again)",
            )?;
            let account: SealedAccount = serde_json::from_slice(&plain).context("a directory account")?;
            Ok((row, account))
        })
        .collect()
}

/// One audit-log row per domain of the organization: the command searched
/// that domain's accounts (`results` of them).
pub(crate) fn audit_rows(
    keys: &Keys,
    catalog: &mut Catalog,
    command: &str,
    org: &Organization,
    results: u64,
) -> Result<()> {
    let hasher = AuditHasher::new(keys.audit_subject_key());
    let user = super::breach::os_user();
    let command = format!("{command} --org {}", org.name);
    let entries: Vec<AuditEntry> = org
        .domains
        .iter()
        .map(|d| AuditEntry::cli(&user, &command, hasher.subject(SubjectKind::Domain, d), results))
        .collect();
    catalog
        .append_audit(&entries, &keys.audit_key())
        .with_context(|| format!("{command} was done, but its audit rows were not written"))?;
    Ok(())
}

/// Fails unless `org` names an organization with an imported directory.
pub(crate) fn require_directory(org: &Organization) -> Result<()> {
    if org.directory.is_none() {
        bail!(
            "organization {} has no directory yet: `leakwatch org import {} FILE` first",
            org.name,
            org.name
        );
    }
    Ok(())
}
