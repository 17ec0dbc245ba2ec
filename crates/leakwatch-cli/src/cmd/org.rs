//! `leakwatch org add|list|show|remove|import`: organizations in the catalog,
//! and the import of their directory of accounts (`org alert` is in
//! `org_alert.rs`).
//!
//! An import reads the file (or the LDAP server, through `org_ldap`), checks each account's current NT hash against the
//! store (its counts, and the breaches where it leaked for that very account),
//! and hands the catalog the directory sealed (addresses, user names, keyed
//! hashes of the NT hashes, findings); the NT hashes themselves go no further
//! than this process's memory.

use std::io::{Read, Write};

use anyhow::{bail, Context, Result};
use leakwatch_catalog::{parse_directory, AuditEntry, Catalog, DirectoryFormat, Organization, SubjectKind};
use leakwatch_store::{DataDir, Store};
use leakwatch_types::normalize_domain;
use serde_json::json;

use super::org_ldap::Directory;
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
        OrgCommand::Alert(args) => super::org_alert::run(dir, args),
    }
}

pub(crate) fn open_catalog(dir: &DataDir) -> Result<Catalog> {
    Catalog::open(&dir.catalog_file())
        .with_context(|| format!("opening the catalog of {}", dir.root().display()))
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
            writeln!(
                out,
                "alert         #{} {} {} ({} delivered, {} pending, {} given up)",
                a.id, a.kind, a.target, a.delivered, a.pending, a.given_up
            )?;
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
    let (parsed, source, unit) = match &args.file {
        Some(file) => {
            let bytes = read_input(file)?;
            let format = match args.format {
                Some(DirectoryFormatArg::Csv) => DirectoryFormat::Csv,
                Some(DirectoryFormatArg::Pwdump) => DirectoryFormat::Pwdump,
                None => DirectoryFormat::detect(&bytes),
            };
            (parse_directory(&bytes, format, &org.domains[0]), format.as_str(), ("line", "lines"))
        }
        None => {
            let base = args.base.as_deref().context("--ldap needs --base DN")?;
            let mut server = Directory::connect(&args.ldap)?;
            let parsed = server.read(base, args.filter.as_deref(), &org.domains[0])?;
            (parsed, server.kind.source(), ("entry", "entries"))
        }
    };
    let imported = leakwatch_org::import(
        &mut catalog,
        &store,
        &keys.directory_keys(),
        &org.name,
        parsed.entries,
        source,
    )?;
    if imported.previous_unreadable {
        eprintln!("leakwatch: note: the previous directory does not open with this key ring: not compared");
    }
    let (change, disabled, with_hash) = (imported.change, imported.disabled, imported.with_nt_hash);
    audit_rows(dir, &mut catalog, "org import", &org, change.accounts)?;

    let left_out: u64 = parsed.left_out.values().map(|l| l.count).sum();
    let mut out = stdout();
    if args.json {
        let value = json!({
            "organization": org.name,
            "format": source,
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
            source,
            crate::output::thousands(disabled),
            crate::output::thousands(with_hash),
            crate::output::thousands(change.added),
            crate::output::thousands(change.removed),
            crate::output::thousands(change.password_changed),
        )?;
        if left_out > 0 {
            writeln!(out, "left out {}:", plural(left_out, unit.0, unit.1))?;
            for (reason, l) in &parsed.left_out {
                let lines: Vec<String> = l.lines.iter().map(u64::to_string).collect();
                writeln!(
                    out,
                    "  {:>8}  {reason} ({} {})",
                    unit.1,
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

/// One audit-log row per domain of the organization: the command searched
/// that domain's accounts (`results` of them).
pub(crate) fn audit_rows(
    dir: &DataDir,
    catalog: &mut Catalog,
    command: &str,
    org: &Organization,
    results: u64,
) -> Result<()> {
    let keys = leakwatch_server::audit_keys(dir)?;
    let hasher = keys.current().hasher();
    let user = super::breach::os_user();
    let command = format!("{command} --org {}", org.name);
    let entries: Vec<AuditEntry> = org
        .domains
        .iter()
        .map(|d| AuditEntry::cli(&user, &command, hasher.subject(SubjectKind::Domain, d), results))
        .collect();
    catalog
        .append_audit(&entries, &keys)
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
