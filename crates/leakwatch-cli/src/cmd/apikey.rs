//! `leakwatch apikey create|list|revoke`: API keys for the HTTP API. A new key
//! is printed once, alone on the last line of stdout, so scripts can capture it
//! with `tail -n 1`; the catalog keeps only its hash.

use std::io::Write;

use anyhow::{Context, Result};
use leakwatch_catalog::{ApiKey, Catalog, NewKey, Role};
use leakwatch_store::DataDir;

use crate::cli::{ApikeyCommand, RoleArg};
use crate::output::{stdout, table};
use crate::Outcome;

pub fn run(dir: &DataDir, command: ApikeyCommand) -> Result<Outcome> {
    let mut catalog = Catalog::open(&dir.catalog_file())
        .with_context(|| format!("opening the catalog of {}", dir.root().display()))?;
    let mut out = stdout();
    match command {
        ApikeyCommand::Create { name, role, domains, rate_limit } => {
            let role = match role {
                RoleArg::Admin => Role::Admin,
                RoleArg::Analyst => Role::Analyst,
                RoleArg::Domain => Role::Domain,
            };
            let created =
                catalog.create_key(&NewKey { name, role, domains, rate_limit_per_minute: rate_limit })?;
            let key = &created.key;
            writeln!(out, "created API key {:?}: role {}, rate limit {}", key.name, key.role, rate(key))?;
            if !key.domains.is_empty() {
                writeln!(out, "verified domains: {}", key.domains.join(", "))?;
            }
            writeln!(out, "send it in the hibp-api-key header; it is shown only this once:")?;
            writeln!(out, "{}", created.secret)?;
        }
        ApikeyCommand::List { json } => {
            let keys = catalog.list_keys()?;
            if json {
                for key in &keys {
                    writeln!(out, "{}", serde_json::to_string(key)?)?;
                }
            } else if keys.is_empty() {
                writeln!(
                    out,
                    "no API keys yet: `leakwatch apikey create --name NAME --role analyst` adds one"
                )?;
            } else {
                let rows: Vec<Vec<String>> = keys
                    .iter()
                    .map(|key| {
                        vec![
                            key.name.clone(),
                            key.role.to_string(),
                            format!("{}...", key.prefix),
                            rate(key),
                            key.created_at.clone(),
                            key.revoked_at.clone().unwrap_or_else(|| "-".into()),
                            key.domains.join(","),
                        ]
                    })
                    .collect();
                let headers = ["NAME", "ROLE", "KEY", "RATE LIMIT", "CREATED", "REVOKED", "DOMAINS"];
                table(&mut out, &headers, &rows, &[])?;
            }
        }
        ApikeyCommand::Revoke { name } => {
            let key = catalog.revoke_key(&name)?;
            writeln!(
                out,
                "revoked API key {:?} (a running server stops accepting it within a second)",
                key.name
            )?;
        }
    }
    out.flush()?;
    Ok(Outcome::Found)
}

fn rate(key: &ApiKey) -> String {
    match key.rate_limit_per_minute {
        None => "server default".into(),
        Some(0) => "none".into(),
        Some(n) => format!("{n}/min"),
    }
}
