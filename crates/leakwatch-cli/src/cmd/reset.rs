//! `leakwatch reset --org NAME [--apply]`: forcing a password change at next
//! logon for an organization's exposed accounts.
//!
//! Which accounts: the findings `audit --org` reports (the last import's
//! password findings, stealer-log sightings looked up now), each enabled
//! account whose current password leaked for that very account, whose
//! address is in a stealer log, or (`--include-common`) whose current password
//! is in the corpus at all. Without `--apply` nothing is changed or written.
//!
//! How: on the LDAP server the directory was imported from (its kind recorded
//! at import), OpenLDAP's ppolicy `pwdReset: TRUE` or Active Directory's
//! `pwdLastSet: 0` on each entry's DN; else a reset list (CSV or JSON) for
//! whatever identity provider holds the accounts. Each reset done is one row
//! of the audit log, naming the OS user, the account (keyed hash) and how.

use std::io::Write;

use anyhow::{bail, Context, Result};
use leakwatch_catalog::{AuditEntry, SubjectKind};
use leakwatch_store::{DataDir, Store};
use serde::Serialize;

use leakwatch_org::{reports, reset_reasons, Report, SealedAccount};

use super::org::{audit_rows, open_catalog, organization, require_directory};
use super::org_audit::note_newer_breaches;
use super::org_ldap::{Directory, ServerKind};
use crate::cli::{ResetArgs, ResetListFormatArg};
use crate::output::{line, plural, stdout, table};
use crate::Outcome;

/// One account to reset: the `--json` object and a reset list's row.
#[derive(Debug, Serialize)]
struct Reset<'a> {
    account: &'a str,
    username: Option<&'a str>,
    dn: Option<&'a str>,
    /// `pwdReset: TRUE`, `pwdLastSet: 0` or `reset list`.
    action: &'static str,
    /// Why, in words.
    reasons: Vec<String>,
    own_password_leaked_in: Vec<&'a str>,
    stealer_websites: &'a [String],
    password_count: u64,
    applied: bool,
}

/// Where the resets go.
enum Target<'a> {
    Ldap(ServerKind),
    List(Option<&'a str>),
}

pub fn run(dir: &DataDir, args: ResetArgs) -> Result<Outcome> {
    let store = Store::open(dir)?;
    let keys = dir.ensure_keys()?;
    let mut catalog = open_catalog(dir)?;
    let org = organization(&catalog, &args.org)?;
    require_directory(&org)?;
    let import = org.directory.as_ref().expect("checked above");
    note_newer_breaches(&store, &org.name, import);
    let sealed = catalog.directory(&org.name)?.context("the organization's directory is gone")?;
    let directory = leakwatch_org::open_accounts(&keys.directory_keys(), &org.name, &sealed)?;
    drop(sealed);
    let target = match (&args.reset_list, ServerKind::from_source(&import.source)) {
        (Some(list), _) => Target::List(Some(list.as_str())),
        (None, Some(kind)) => Target::Ldap(kind),
        (None, None) => Target::List(None),
    };
    let action = match target {
        Target::Ldap(ServerKind::OpenLdap) => "pwdReset: TRUE",
        Target::Ldap(ServerKind::ActiveDirectory) => "pwdLastSet: 0",
        Target::List(_) => "reset list",
    };
    let found = reports(&store, &directory)?;
    let mut resets: Vec<Reset> = directory
        .iter()
        .zip(&found)
        .filter(|(a, _)| !a.disabled)
        .filter_map(|(a, r)| to_reset(a, r, args.include_common, action))
        .collect();
    resets.sort_by(|x, y| x.account.cmp(y.account));

    let list_to_stdout = args.apply && matches!(target, Target::List(Some("-")));
    if args.apply && !resets.is_empty() {
        let done = match target {
            Target::Ldap(kind) => apply_ldap(&args, &org.name, &import.source, kind, &mut resets)?,
            Target::List(Some(path)) => {
                write_list(path, args.format, &resets)?;
                resets.iter_mut().for_each(|r| r.applied = true);
                resets.len()
            }
            Target::List(None) => bail!(
                "the directory of {} came from a file ({}): --apply needs --reset-list FILE (CSV or JSON) to \
                 hand to the identity provider that holds the accounts",
                org.name,
                import.source
            ),
        };
        let failed = resets.len() - done;
        let how = match target {
            Target::Ldap(_) => action.to_owned(),
            Target::List(path) => format!("reset list {}", path.unwrap_or("-")),
        };
        audit_resets(dir, &mut catalog, &org.name, &how, &resets)?;
        report(&args, list_to_stdout, &resets, &how)?;
        if failed > 0 {
            bail!(
                "{failed} of {} resets failed (each named above); the {done} done are audited",
                resets.len()
            );
        }
    } else {
        // A dry run reads the directory as `audit --org` does: audited alike.
        audit_rows(dir, &mut catalog, "reset", &org, resets.len() as u64)?;
        let how = match target {
            Target::List(Some(path)) => format!("reset list {path}"),
            _ => action.to_owned(),
        };
        report(&args, false, &resets, &how)?;
    }
    Ok(if resets.is_empty() { Outcome::NotFound } else { Outcome::Found })
}

/// The account's reset, if its findings call for one.
fn to_reset<'a>(
    account: &'a SealedAccount,
    report: &'a Report<'a>,
    include_common: bool,
    action: &'static str,
) -> Option<Reset<'a>> {
    let reasons = reset_reasons(report, include_common);
    if reasons.is_empty() {
        return None;
    }
    Some(Reset {
        account: report.account,
        username: account.username.as_deref(),
        dn: account.dn.as_deref(),
        action,
        reasons,
        own_password_leaked_in: report.own_password_leaked_in.clone(),
        stealer_websites: &report.stealer_websites,
        password_count: report.password_count,
        applied: false,
    })
}

/// Resets each account on the server; returns how many were done. A failed
/// one is named on stderr and the others still tried.
fn apply_ldap(
    args: &ResetArgs,
    org: &str,
    source: &str,
    kind: ServerKind,
    resets: &mut [Reset],
) -> Result<usize> {
    if args.ldap.ldap.is_none() {
        bail!(
            "the directory of {org} was imported over LDAP ({source}): --apply needs --ldap URL (and --bind-dn DN \
             --password-file F of an account allowed to write), or --reset-list FILE"
        );
    }
    let mut server = Directory::connect(&args.ldap)?;
    if server.kind != kind {
        bail!(
            "{} is {}, but the directory of {org} was imported from {source}: not the same directory",
            server.url(),
            server.kind.source()
        );
    }
    let mut done = 0;
    for r in resets.iter_mut() {
        let Some(dn) = r.dn else {
            eprintln!(
                "leakwatch: {}: no DN in the imported directory (import it again with --ldap)",
                r.account
            );
            continue;
        };
        match server.force_reset(dn) {
            Ok(()) => {
                r.applied = true;
                done += 1;
            }
            Err(e) => eprintln!("leakwatch: reset of {} ({dn}) failed: {}", r.account, crate::one_line(&e)),
        }
    }
    Ok(done)
}

fn write_list(path: &str, format: Option<ResetListFormatArg>, resets: &[Reset]) -> Result<()> {
    let format = format.unwrap_or(if path.to_ascii_lowercase().ends_with(".json") {
        ResetListFormatArg::Json
    } else {
        ResetListFormatArg::Csv
    });
    let mut text = String::new();
    match format {
        ResetListFormatArg::Json => {
            text = serde_json::to_string_pretty(resets)?;
            text.push('\n');
        }
        ResetListFormatArg::Csv => {
            text.push_str("email,username,dn,reasons\n");
            for r in resets {
                let cells = [r.account, r.username.unwrap_or(""), r.dn.unwrap_or(""), &r.reasons.join("; ")];
                let cells: Vec<String> = cells.iter().map(|c| leakwatch_org::csv_cell(c)).collect();
                text.push_str(&cells.join(","));
                text.push('\n');
            }
        }
    }
    if path == "-" {
        let mut out = stdout();
        out.write_all(text.as_bytes())?;
        out.flush()?;
    } else {
        std::fs::write(path, text).with_context(|| format!("writing the reset list {path}"))?;
    }
    Ok(())
}

/// One audit row per account reset.
fn audit_resets(
    dir: &DataDir,
    catalog: &mut leakwatch_catalog::Catalog,
    org: &str,
    how: &str,
    resets: &[Reset],
) -> Result<()> {
    let keys = leakwatch_server::audit_keys(dir)?;
    let hasher = keys.current().hasher();
    let user = super::breach::os_user();
    let command = format!("reset --apply --org {org} ({how})");
    let entries: Vec<AuditEntry> = resets
        .iter()
        .filter(|r| r.applied)
        .map(|r| AuditEntry::cli(&user, &command, hasher.subject(SubjectKind::Account, r.account), 1))
        .collect();
    catalog
        .append_audit(&entries, &keys)
        .with_context(|| format!("{} done, but their audit rows were not written", entries.len()))?;
    Ok(())
}

fn report(args: &ResetArgs, list_on_stdout: bool, resets: &[Reset], how: &str) -> Result<()> {
    let applied = resets.iter().filter(|r| r.applied).count() as u64;
    let summary = if resets.is_empty() {
        "no account needs a reset".to_owned()
    } else if args.apply {
        format!("{} reset ({how})", plural(applied, "account", "accounts"))
    } else {
        format!(
            "dry run: {} would be reset ({how}); nothing was changed (--apply to do it)",
            plural(resets.len() as u64, "account", "accounts")
        )
    };
    if list_on_stdout {
        eprintln!("leakwatch: {summary}");
        return Ok(());
    }
    let mut out = stdout();
    if args.json {
        for r in resets {
            line(&mut out, &serde_json::to_string(r)?)?;
        }
    } else {
        if !resets.is_empty() {
            let rows: Vec<Vec<String>> = resets
                .iter()
                .map(|r| {
                    vec![
                        r.account.to_owned(),
                        r.dn.or(r.username).unwrap_or("-").to_owned(),
                        match (r.applied, r.action) {
                            (true, _) => "done".to_owned(),
                            (false, "reset list") => "would be listed".to_owned(),
                            (false, set) => format!("would set {set}"),
                        },
                        r.reasons.join("; "),
                    ]
                })
                .collect();
            table(&mut out, &["ACCOUNT", "ENTRY", "ACTION", "WHY"], &rows, &[])?;
        }
        line(&mut out, &summary)?;
    }
    out.flush()?;
    Ok(())
}
