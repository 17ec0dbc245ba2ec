//! `leakwatch audit-log`: the authenticated searches the HTTP API answered. An
//! address is stored only as a keyed hash; `--account` hashes the one given the
//! same way to find the searches for it. `verify` walks the log's hash chain.

use std::io::Write;

use anyhow::{bail, Context, Result};
use leakwatch_catalog::{AuditFilter, Catalog, SubjectKind};
use leakwatch_store::DataDir;

use crate::cli::{AuditLogArgs, AuditLogCommand};
use crate::output::{plural, stdout};
use crate::Outcome;

pub fn run(dir: &DataDir, args: AuditLogArgs) -> Result<Outcome> {
    if let Some(AuditLogCommand::Verify { json }) = args.command {
        return verify(dir, json);
    }
    let catalog = Catalog::open(&dir.catalog_file())
        .with_context(|| format!("opening the catalog of {}", dir.root().display()))?;
    let mut filter = AuditFilter { key_name: args.key, last: args.last, ..AuditFilter::default() };
    if let Some(raw) = &args.account {
        let Some(account) = leakwatch_server::parse_account(raw) else {
            bail!("{raw:?} is not an account the API would search");
        };
        // Rows written under each audit key hashed the address under it.
        let keys = leakwatch_server::audit_keys(dir)?;
        filter.subject_hashes = Some(
            keys.all()
                .iter()
                .map(|k| k.hasher().subject(SubjectKind::Account, &account.audit_value).hash)
                .collect(),
        );
    }
    if let Some(raw) = &args.domain {
        let Some(domain) = leakwatch_types::normalize_domain(raw) else {
            bail!("{raw:?} is not a domain name")
        };
        filter.subject = Some(domain);
    }
    let rows = catalog.audit_entries(&filter)?;
    let mut out = stdout();
    if args.json {
        for row in &rows {
            writeln!(out, "{}", serde_json::to_string(row)?)?;
        }
    } else if rows.is_empty() {
        writeln!(out, "no audited searches match")?;
    } else {
        writeln!(
            out,
            "{:<24} {:<20} {:<27} {:<40} {:>7} {:>6}",
            "AT", "KEY", "ENDPOINT", "SUBJECT", "RESULTS", "STATUS"
        )?;
        for row in &rows {
            let e = &row.entry;
            let subject = match &e.subject.clear {
                Some(clear) => clear.clone(),
                None if e.subject.kind == SubjectKind::Nothing => "-".to_owned(),
                // (Char-wise: a hand-edited row must not make the listing panic.)
                None => format!(
                    "{} #{}",
                    e.subject.kind.as_str(),
                    e.subject.hash.chars().take(16).collect::<String>()
                ),
            };
            writeln!(
                out,
                "{:<24} {:<20} {:<27} {:<40} {:>7} {:>6}",
                e.at, e.key_name, e.endpoint, subject, e.results, e.status
            )?;
        }
    }
    out.flush()?;
    Ok(Outcome::Found)
}

/// `audit-log verify`: exit 0 when every row checks, 2 at the first that does
/// not, or when the append-only triggers were removed or changed.
fn verify(dir: &DataDir, json: bool) -> Result<Outcome> {
    let keys = leakwatch_server::audit_keys(dir)?;
    let catalog = Catalog::open(&dir.catalog_file())
        .with_context(|| format!("opening the catalog of {}", dir.root().display()))?;
    let check = catalog.verify_audit(&keys)?;
    if keys.prefix() == leakwatch_catalog::ChainPrefix::Open && check.unchained > 0 {
        eprintln!(
            "leakwatch: note: rows from before the chain are accepted as they are, since this key ring's \
             audit key is still its index key; `leakwatch rekey --audit` ends that (docs/security.md)"
        );
    }
    let mut out = stdout();
    if json {
        writeln!(out, "{}", serde_json::to_string(&check)?)?;
    } else {
        writeln!(
            out,
            "{}, {} chained, {} from before the chain",
            plural(check.rows, "row", "rows"),
            check.chained,
            check.unchained
        )?;
    }
    out.flush()?;
    match (check.broken, &check.problem) {
        (None, None) => Ok(Outcome::Found),
        (Some(id), None) => bail!(
            "the audit log was changed: row {id} does not match the chain (changed, inserted, or a row \
             before it removed)"
        ),
        (_, Some(problem)) => bail!("the audit log was changed: {problem}"),
    }
}
