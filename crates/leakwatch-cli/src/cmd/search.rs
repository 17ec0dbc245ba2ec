//! `leakwatch search`: email addresses, user names and phone numbers, a domain,
//! passwords. Values come from the arguments or, with `-`, one per stdin line;
//! output is one line per value. A value that cannot be searched (a blank line,
//! a malformed address) gets its own line saying why, in every search alike.

use std::io::{BufRead, Write};

use anyhow::{Context, Result};
use leakwatch_store::{DataDir, Store};
use leakwatch_types::{decode_hex, encode_hex_upper, normalize_domain, Account, PasswordHashes};
use serde_json::json;

use crate::cli::HashArg;
use crate::output::{line, plural, stdout, thousands};
use crate::Outcome;

/// Calls `each(value, where)` for every value: the arguments, or stdin lines for `-`.
/// `where` names the value's origin for messages ("argument 2", "<stdin>: line 7").
fn for_each_value(
    values: &[String],
    mut each: impl FnMut(&[u8], &dyn Fn() -> String) -> Result<()>,
) -> Result<()> {
    for (i, value) in values.iter().enumerate() {
        if value != "-" {
            each(value.as_bytes(), &|| format!("argument {}", i + 1))?;
            continue;
        }
        let mut stdin = std::io::stdin().lock();
        let mut buf = Vec::with_capacity(256);
        let mut number = 0u64;
        loop {
            buf.clear();
            if stdin.read_until(b'\n', &mut buf).context("<stdin>")? == 0 {
                break;
            }
            number += 1;
            let mut v = buf.as_slice();
            v = v.strip_suffix(b"\n").unwrap_or(v);
            v = v.strip_suffix(b"\r").unwrap_or(v);
            each(v, &|| format!("<stdin>: line {number}"))?;
        }
    }
    Ok(())
}

pub fn email(dir: &DataDir, json: bool, addresses: &[String]) -> Result<Outcome> {
    let store = Store::open(dir)?;
    let mut out = stdout();
    let mut any = false;
    let mut text = String::with_capacity(256);
    for_each_value(addresses, |raw, _| {
        let raw = String::from_utf8_lossy(raw);
        text.clear();
        match Account::email(&raw) {
            Ok(account) => {
                let breaches = store.account_breaches(&account)?;
                any |= !breaches.is_empty();
                // Normalized addresses and breach names need no JSON escaping:
                // both are plain ASCII without quotes or backslashes.
                if json {
                    text.push_str("{\"account\":\"");
                    text.push_str(&account.value);
                    text.push_str("\",\"breaches\":[");
                    for (i, b) in breaches.iter().enumerate() {
                        if i > 0 {
                            text.push(',');
                        }
                        text.push('"');
                        text.push_str(&b.name);
                        text.push('"');
                    }
                    text.push_str("]}");
                } else if breaches.is_empty() {
                    text.push_str(&account.value);
                    text.push_str("  not found");
                } else {
                    let names: Vec<&str> = breaches.iter().map(|b| b.name.as_str()).collect();
                    text.push_str(&account.value);
                    text.push_str("  ");
                    text.push_str(&names.join(", "));
                }
            }
            Err(e) => {
                let shown = raw.trim();
                let reason = if shown.is_empty() { "blank line".to_owned() } else { e.to_string() };
                if json {
                    let reason = if shown.is_empty() { "blank line" } else { e.reason() };
                    text.push_str(&json!({"account": shown, "breaches": [], "error": reason}).to_string());
                } else {
                    text.push_str(&format!("{shown}  not an email address ({reason})"));
                }
            }
        }
        line(&mut out, &text)?;
        Ok(())
    })?;
    out.flush()?;
    Ok(if any { Outcome::Found } else { Outcome::NotFound })
}

/// `search account`: user names and phone numbers (and addresses), read as the
/// API reads a searched account, each looked up under every kind it may be.
pub fn account(dir: &DataDir, json: bool, names: &[String]) -> Result<Outcome> {
    let store = Store::open(dir)?;
    let mut out = stdout();
    let mut any = false;
    for_each_value(names, |raw, _| {
        let raw = String::from_utf8_lossy(raw);
        let text = match leakwatch_server::parse_account(&raw) {
            Some(account) => {
                let mut found = std::collections::BTreeSet::new();
                for candidate in &account.candidates {
                    found.extend(store.account_breaches(candidate)?.into_iter().map(|b| b.name.as_str()));
                }
                any |= !found.is_empty();
                let names: Vec<&str> = found.into_iter().collect();
                if json {
                    json!({"account": account.audit_value, "breaches": names}).to_string()
                } else if names.is_empty() {
                    format!("{}  not found", account.audit_value)
                } else {
                    format!("{}  {}", account.audit_value, names.join(", "))
                }
            }
            None => {
                let shown = raw.trim();
                let reason = if shown.is_empty() { "blank line" } else { "not a user name or phone number" };
                if json {
                    json!({"account": shown, "breaches": [], "error": reason}).to_string()
                } else {
                    format!("{shown}  not a user name or phone number ({reason})")
                }
            }
        };
        line(&mut out, &text)?;
        Ok(())
    })?;
    out.flush()?;
    Ok(if any { Outcome::Found } else { Outcome::NotFound })
}

pub fn domain(dir: &DataDir, json: bool, domain: &str) -> Result<Outcome> {
    let normalized = normalize_domain(domain).with_context(|| format!("{domain:?} is not a domain name"))?;
    let store = Store::open(dir)?;
    let aliases = store.domain(&normalized)?;
    let mut out = stdout();
    if json {
        writeln!(out, "{}", serde_json::to_string(&aliases)?)?;
    } else if aliases.is_empty() {
        writeln!(out, "{normalized}: no exposed addresses")?;
    } else {
        let width = aliases.keys().map(|a| a.len()).max().unwrap_or(0) + 1 + normalized.len();
        for (alias, breaches) in &aliases {
            writeln!(out, "{:<width$}  {}", format!("{alias}@{normalized}"), breaches.join(", "))?;
        }
        let count = plural(aliases.len() as u64, "exposed address", "exposed addresses");
        writeln!(out, "{count} on {normalized}")?;
    }
    out.flush()?;
    Ok(if aliases.is_empty() { Outcome::NotFound } else { Outcome::Found })
}

pub fn password(
    dir: &DataDir,
    hash: Option<HashArg>,
    json: bool,
    sources: bool,
    values: &[String],
) -> Result<Outcome> {
    let store = Store::open(dir)?;
    let mut out = stdout();
    let (mut any, mut failed) = (false, false);
    for_each_value(values, |value, origin| {
        if value.trim_ascii().is_empty() {
            // As `search email` reports a blank line: on its own output line,
            // not as an error that fails the run.
            let text = if json {
                "{\"hash\":\"\",\"count\":0,\"error\":\"blank line\"}".to_owned()
            } else {
                "  not a password or hash (blank line)".to_owned()
            };
            line(&mut out, &text)?;
            return Ok(());
        }
        let found = match hash {
            None => {
                let h = PasswordHashes::of(value);
                Some((encode_hex_upper(&h.sha1), store.password_counts(false, &h.sha1)?))
            }
            Some(HashArg::Sha1) => match decode_hex::<20>(value.trim_ascii()) {
                Some(h) => Some((encode_hex_upper(&h), store.password_counts(false, &h)?)),
                None => None,
            },
            Some(HashArg::Ntlm) => match decode_hex::<16>(value.trim_ascii()) {
                Some(h) => Some((encode_hex_upper(&h), store.password_counts(true, &h)?)),
                None => None,
            },
        };
        let Some((hex, counts)) = found else {
            failed = true;
            let want =
                if hash == Some(HashArg::Ntlm) { "a 32-digit hex NTLM hash" } else { "a 40-digit hex SHA-1" };
            eprintln!("leakwatch: error: {}: not {want}", origin());
            return Ok(());
        };
        let count = counts.total();
        any |= count > 0;
        let text = match (json, sources) {
            (true, false) => format!("{{\"hash\":\"{hex}\",\"count\":{count}}}"),
            (true, true) => format!(
                "{{\"hash\":\"{hex}\",\"count\":{count},\"own\":{},\"hibp\":{}}}",
                counts.own, counts.hibp
            ),
            (false, _) if count == 0 => format!("{hex}  not found"),
            (false, false) => format!("{hex}  seen {}", plural(count, "time", "times")),
            (false, true) => {
                format!(
                    "{hex}  seen {} ({} in your dumps, {} in Pwned Passwords)",
                    plural(count, "time", "times"),
                    thousands(counts.own),
                    thousands(counts.hibp)
                )
            }
        };
        line(&mut out, &text)?;
        Ok(())
    })?;
    out.flush()?;
    Ok(if failed {
        Outcome::Failed
    } else if any {
        Outcome::Found
    } else {
        Outcome::NotFound
    })
}
