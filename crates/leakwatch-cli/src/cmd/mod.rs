//! One module per command; `run` dispatches and resolves the data directory.

mod apikey;
mod audit;
mod breach;
mod catalog;
mod demo;
mod import;
mod ingest;
mod keys;
mod search;
mod serve;
mod sync;

use std::path::PathBuf;

use anyhow::Result;
use leakwatch_store::DataDir;

use crate::cli::{BreachCommand, Cli, Command, ImportCommand, SearchCommand, SyncCommand};
use crate::Outcome;

pub fn run(cli: Cli) -> Result<Outcome> {
    let data = || data_dir(cli.data.clone());
    match cli.command {
        Command::Ingest(args) => ingest::run(&data()?, args),
        Command::Search(SearchCommand::Email { json, addresses }) => {
            search::email(&data()?, json, &addresses)
        }
        Command::Search(SearchCommand::Account { json, names }) => search::account(&data()?, json, &names),
        Command::Search(SearchCommand::Domain { json, domain }) => search::domain(&data()?, json, &domain),
        Command::Search(SearchCommand::Password { hash, json, sources, values }) => {
            search::password(&data()?, hash, json, sources, &values)
        }
        Command::Breach(BreachCommand::Remove { name }) => breach::remove(&data()?, &name),
        Command::Breach(BreachCommand::Set(args)) => breach::set(&data()?, args),
        Command::Breaches { json } => catalog::breaches(&data()?, json),
        Command::Stats { json } => catalog::stats(&data()?, json),
        Command::Verify => catalog::verify(&data()?),
        Command::Demo { dir, seed } => {
            if cli.data_on_command_line {
                anyhow::bail!(
                    "demo writes its own data directory under --dir ({}); --data does not apply to it",
                    dir.join("data").display()
                );
            }
            demo::run(&dir, seed)
        }
        Command::Import(ImportCommand::PwnedPasswords(a)) => {
            import::pwned_passwords(&data()?, &a.path, a.ntlm, a.memory_budget, a.json)
        }
        Command::Sync(SyncCommand::PwnedPasswords(args)) => sync::pwned_passwords(&data()?, args),
        Command::Serve(args) => serve::run(&data()?, args),
        Command::Apikey(command) => apikey::run(&data()?, command),
        Command::AuditLog(args) => audit::run(&data()?, args),
        Command::Init { key_file } => keys::init(&data()?, key_file.as_deref()),
        Command::Rekey { json } => keys::rekey(&data()?, json),
    }
}

fn data_dir(explicit: Option<PathBuf>) -> Result<DataDir> {
    if let Some(dir) = explicit {
        return Ok(DataDir::new(dir));
    }
    let base = std::env::var_os("XDG_DATA_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .ok_or_else(|| anyhow::anyhow!("no data directory: pass --data DIR or set LEAKWATCH_DATA"))?;
    Ok(DataDir::new(base.join("leakwatch")))
}
