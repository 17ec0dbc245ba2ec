//! `leakwatch breach remove|set`: taking a breach back out of the index, and
//! editing what the catalog shows of it. The store publishes each as a new
//! generation; each leaves a row in the audit log naming the breach, the
//! command and the OS user who ran it.

use std::io::Write;

use anyhow::{bail, Context, Result};
use leakwatch_catalog::{AuditEntry, SubjectKind};
use leakwatch_store::{BreachEdit, DataDir};

use crate::cli::BreachSetArgs;
use crate::output::{plural, stdout};
use crate::Outcome;

pub fn remove(dir: &DataDir, name: &str) -> Result<Outcome> {
    let removal = leakwatch_store::remove_breach(dir, name)?;
    let b = &removal.breach;
    audit(dir, "breach remove", &b.name, b.pwn_count)?;
    let mut out = stdout();
    let rewritten = match removal.segments_rewritten {
        0 => String::new(),
        n => format!(", {n} rewritten without its {}", plural(removal.entries_removed, "entry", "entries")),
    };
    writeln!(
        out,
        "removed {}: {}, {} dropped{rewritten}; now generation {}",
        b.name,
        plural(b.pwn_count, "account", "accounts"),
        plural(removal.segments_dropped as u64, "segment", "segments"),
        removal.generation
    )?;
    if let Some(warning) = &removal.warning {
        writeln!(out, "warning: {warning}")?;
    }
    out.flush()?;
    Ok(Outcome::Found)
}

pub fn set(dir: &DataDir, args: BreachSetArgs) -> Result<Outcome> {
    let edit = BreachEdit {
        title: args.title,
        domain: args.domain,
        breach_date: args.breach_date,
        description: args.description,
        is_verified: args.verified,
        is_fabricated: args.fabricated,
        is_sensitive: args.sensitive,
        is_retired: args.retired,
        is_spam_list: args.spam_list,
        is_malware: args.malware,
        is_stealer_log: args.stealer_log,
    };
    if edit.is_empty() {
        bail!("nothing to change: give at least one field, e.g. --title T or --sensitive (see --help)");
    }
    let breach = leakwatch_store::update_breach(dir, &args.name, &edit)?;
    audit(dir, "breach set", &breach.name, 1)?;
    let mut out = stdout();
    writeln!(out, "updated {} (modified {})", breach.name, breach.modified_date)?;
    out.flush()?;
    Ok(Outcome::Found)
}

/// Appends the audit row of a catalog change made from the command line.
fn audit(dir: &DataDir, command: &str, breach: &str, results: u64) -> Result<()> {
    let keys = leakwatch_server::audit_keys(dir)?;
    let mut catalog = super::open_catalog(dir)?;
    let subject = keys.current().hasher().subject(SubjectKind::Breach, breach);
    let entry = AuditEntry::cli(&os_user(), command, subject, results);
    catalog
        .append_audit(&[entry], &keys)
        .with_context(|| format!("{command} {breach} was done, but its audit row was not written"))?;
    Ok(())
}

/// The name of the OS user running this process: from the password database,
/// else `$USER`, else the numeric uid.
pub(crate) fn os_user() -> String {
    // SAFETY: getuid cannot fail; getpwuid_r writes only into the buffers we
    // give it, and the name it points to lives in `buf`, read before it is freed.
    let uid = unsafe { libc::getuid() };
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut buf = vec![0 as libc::c_char; 4096];
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    let rc = unsafe { libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut result) };
    if rc == 0 && !result.is_null() && !pwd.pw_name.is_null() {
        let name = unsafe { std::ffi::CStr::from_ptr(pwd.pw_name) };
        if let Ok(name) = name.to_str() {
            if !name.is_empty() {
                return name.to_owned();
            }
        }
    }
    std::env::var("USER").ok().filter(|u| !u.is_empty()).unwrap_or_else(|| format!("uid {uid}"))
}
