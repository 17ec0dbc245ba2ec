//! One module per command; `run` dispatches and resolves the data directory.
//!
//! A command that reads the index needs a directory that holds a store: any
//! other (missing, empty, someone else's files) is an error that names it,
//! never an empty index whose every answer is "not found". A command that
//! writes may make a store, but not among other files.

mod apikey;
mod audit;
mod breach;
mod catalog;
mod demo;
mod distributed;
mod import;
mod ingest;
mod keys;
mod monitor;
mod org;
mod org_alert;
mod org_audit;
mod org_ldap;
mod repair;
mod reset;
mod search;
mod serve;
mod sync;
mod worker;

use std::path::PathBuf;
use std::sync::OnceLock;

use std::sync::Arc;

use anyhow::{Context, Result};
use leakwatch_catalog::{Catalog, CatalogLocation};
use leakwatch_objstore::{LeaseSettings, ObjectStorage, Options, S3Config, S3Url};
use leakwatch_store::{DataDir, StoreError};

use crate::cli::{BreachCommand, CatalogCommand, Cli, Command, ImportCommand, SearchCommand, SyncCommand};
use crate::Outcome;

pub fn run(cli: Cli) -> Result<Outcome> {
    // Set once, before any command runs; read by `catalog_location`.
    CATALOG.get_or_init(|| cli.catalog.as_deref().filter(|c| !c.is_empty()).map(CatalogLocation::parse));
    let location = Location {
        data: cli.data.clone(),
        cache_dir: cli.cache_dir.clone(),
        cache_size: cli.cache_size,
        catalog: cli.catalog.clone(),
        needs_catalog: !matches!(
            cli.command,
            Command::Search(_)
                | Command::Breaches { .. }
                | Command::Stats { .. }
                | Command::Verify
                | Command::Repair { .. }
                | Command::Init { .. }
        ),
        key_file_given: matches!(cli.command, Command::Init { key_file: Some(_) }),
    };
    let searching = matches!(cli.command, Command::Search(_));
    // A store to read, or a directory a store may be made in.
    let store = || open_store(&location, searching);
    let writable = || writable(&location);
    match cli.command {
        Command::Ingest(args) => {
            let dir = writable()?;
            monitor::after(&dir, ingest::run(&dir, args))
        }
        Command::Search(SearchCommand::Email { json, addresses }) => {
            search::email(&store()?, json, &addresses)
        }
        Command::Search(SearchCommand::Account { json, names }) => search::account(&store()?, json, &names),
        Command::Search(SearchCommand::Domain { json, domain }) => search::domain(&store()?, json, &domain),
        Command::Search(SearchCommand::Password { hash, json, sources, values }) => {
            search::password(&store()?, hash, json, sources, &values)
        }
        Command::Breach(BreachCommand::Remove { name }) => {
            let dir = store()?;
            monitor::after(&dir, breach::remove(&dir, &name))
        }
        Command::Breach(BreachCommand::Set(args)) => {
            let dir = store()?;
            monitor::after(&dir, breach::set(&dir, args))
        }
        Command::Breaches { json } => catalog::breaches(&store()?, json),
        Command::Stats { json } => catalog::stats(&store()?, json),
        Command::Verify => catalog::verify(&store()?),
        Command::Repair { json } => repair::run(&store()?, json),
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
            let dir = writable()?;
            monitor::after(&dir, import::pwned_passwords(&dir, &a.path, a.ntlm, a.memory_budget, a.json))
        }
        Command::Sync(SyncCommand::PwnedPasswords(args)) => {
            let dir = writable()?;
            monitor::after(&dir, sync::pwned_passwords(&dir, args))
        }
        Command::Serve(args) => serve::run(&store()?, args),
        Command::Catalog(CatalogCommand::Migrate { from, to }) => migrate_catalog(&store()?, &from, &to),
        // Keys and the audit log belong to a store's server: a catalog made in
        // a mistyped directory would hold keys no server ever reads.
        Command::Apikey(command) => apikey::run(&store()?, command),
        Command::AuditLog(args) => audit::run(&store()?, args),
        Command::Org(command) => org::run(&store()?, command),
        Command::Audit(args) => org_audit::run(&store()?, args),
        Command::Reset(args) => reset::run(&store()?, args),
        Command::Init { key_file } => keys::init(&writable()?, key_file.as_deref()),
        // A worker may start before the first ingest makes the store.
        Command::Worker(args) => worker::run(&data_dir(&location)?, args),
        Command::Rekey { json, audit } => keys::rekey(&store()?, json, audit),
    }
}

/// `--catalog` / `LEAKWATCH_CATALOG`, as given.
static CATALOG: OnceLock<Option<CatalogLocation>> = OnceLock::new();

/// Where the catalog of `dir` is: `--catalog` (or `LEAKWATCH_CATALOG`) when
/// given, else `catalog.sqlite` in the data directory. Every command that
/// opens the catalog asks here, and only here is it decided.
pub(crate) fn catalog_location(dir: &DataDir) -> CatalogLocation {
    match CATALOG.get().and_then(Option::as_ref) {
        Some(location) => location.clone(),
        None => CatalogLocation::in_data_dir(dir.root()),
    }
}

/// Opens the catalog of `dir` ([`catalog_location`]).
pub(crate) fn open_catalog(dir: &DataDir) -> Result<Catalog> {
    let location = catalog_location(dir);
    Catalog::open_at(&location).with_context(|| format!("opening the catalog {location}"))
}

/// The data directory of a command that reads a store: an error naming the
/// directory, and how to make or choose one, when it holds none. A search is
/// told on stderr when `repair` set data aside: its answers lack that data.
fn open_store(location: &Location, searching: bool) -> Result<DataDir> {
    let dir = data_dir(location)?;
    match dir.check_store() {
        Ok(()) => {
            if searching {
                let reingest = dir.manifest()?.map(|m| m.needing_reingest()).unwrap_or_default();
                if !reingest.is_empty() {
                    eprintln!(
                        "leakwatch: note: `leakwatch repair` set damaged data of {} aside; answers lack it \
                         until it is ingested again",
                        reingest.join(", ")
                    );
                }
            }
            Ok(dir)
        }
        Err(e @ StoreError::NoStore { .. }) => {
            let shown = dir.location();
            anyhow::bail!(
                "{e}: ingest a dump into it with `leakwatch --data {shown} ingest --breach NAME FILE` (or \
                 create an empty store with `leakwatch --data {shown} init`), or choose the store with \
                 --data DIR / LEAKWATCH_DATA"
            )
        }
        Err(e) => Err(e.into()),
    }
}

/// The data directory of a command that may create the store.
fn writable(location: &Location) -> Result<DataDir> {
    let dir = data_dir(location)?;
    dir.check_creatable()?;
    Ok(dir)
}

/// Where a command's store and catalog are, as the global options say.
struct Location {
    data: Option<PathBuf>,
    cache_dir: Option<PathBuf>,
    cache_size: u64,
    /// `--catalog` as given (where the catalog is is decided by
    /// [`catalog_location`]; here only whether one was named).
    catalog: Option<String>,
    /// Whether the command reads or writes the catalog.
    needs_catalog: bool,
    /// Whether the command names the key file itself (`init --key-file`).
    key_file_given: bool,
}

fn data_dir(location: &Location) -> Result<DataDir> {
    if let Some(dir) = &location.data {
        if let Some(url) = dir.to_str().and_then(S3Url::parse) {
            return object_store_dir(url.map_err(|e| anyhow::anyhow!(e))?, location);
        }
        return Ok(DataDir::new(dir));
    }
    let base = std::env::var_os("XDG_DATA_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .ok_or_else(|| anyhow::anyhow!("no data directory: pass --data DIR or set LEAKWATCH_DATA"))?;
    let dir = base.join("leakwatch");
    // Said every time: an answer from a directory nobody chose must not pass
    // for an answer from the one they meant.
    eprintln!(
        "leakwatch: using the default data directory {} (set --data or LEAKWATCH_DATA to choose another)",
        dir.display()
    );
    Ok(DataDir::new(dir))
}

/// A store in an object store (`--data s3://BUCKET/PREFIX`). Its data key and
/// its catalog are kept apart from the bucket, so both must be named: a key
/// made on first use in this machine's default place would differ from every
/// other machine's, and the key must never be written to the bucket.
fn object_store_dir(url: S3Url, location: &Location) -> Result<DataDir> {
    use leakwatch_store::keyring::{ENV_KEY, ENV_KEY_COMMAND, ENV_KEY_FILE};
    let key_set = [ENV_KEY, ENV_KEY_COMMAND, ENV_KEY_FILE]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|v| !v.is_empty()));
    if !key_set && !location.key_file_given {
        anyhow::bail!(
            "{url}: a store in object storage needs its data key named: set {ENV_KEY_FILE} (or {ENV_KEY}, \
             {ENV_KEY_COMMAND}) to the key ring every machine of this store uses; the key is never written \
             to the bucket"
        );
    }
    if location.catalog.as_deref().is_none_or(str::is_empty) && location.needs_catalog {
        anyhow::bail!(
            "{url}: a store in object storage keeps its catalog (API keys, organizations, audit log) \
             apart: pass --catalog PATH|postgres://... (or set LEAKWATCH_CATALOG)"
        );
    }
    let cache_dir = match &location.cache_dir {
        Some(dir) => dir.clone(),
        None => std::env::var_os("XDG_CACHE_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
            .map(|base| base.join("leakwatch"))
            .ok_or_else(|| anyhow::anyhow!("{url}: no cache directory: pass --cache-dir DIR"))?,
    };
    let options = Options { cache_dir, cache_size: location.cache_size, lease: LeaseSettings::default() };
    let storage = ObjectStorage::open(&url, &S3Config::from_env(), options)
        .with_context(|| format!("opening {url}"))?;
    Ok(DataDir::with_storage(storage.local_root().to_owned(), Arc::new(storage)))
}

/// `catalog migrate`: copies the SQLite catalog `from` into the empty
/// PostgreSQL catalog `to`, then verifies the audit chain in its new home
/// with this directory's key ring.
fn migrate_catalog(dir: &DataDir, from: &std::path::Path, to: &str) -> Result<Outcome> {
    use std::io::Write;
    let target = CatalogLocation::parse(to);
    anyhow::ensure!(target.is_shared(), "--to must be a postgres:// URL, not {to}");
    anyhow::ensure!(from.is_file(), "{}: no such catalog file", from.display());
    let source = Catalog::open(from).with_context(|| format!("opening {}", from.display()))?;
    let copy = Catalog::open_at(&target).with_context(|| format!("opening {target}"))?;
    let copied = source.copy_into(&copy).with_context(|| format!("copying into {target}"))?;
    let keys = leakwatch_server::audit_keys(dir)?;
    let check = copy.verify_audit(&keys)?;
    if let Some(row) = check.broken {
        anyhow::bail!(
            "{target}: the audit log copied does not verify at row {row}: {}",
            check.problem.unwrap_or_default()
        );
    }
    let mut out = crate::output::stdout();
    for (table, rows) in copied {
        writeln!(out, "{table}: {rows}")?;
    }
    writeln!(out, "audit log: {} rows, chain verified", check.rows)?;
    Ok(Outcome::Found)
}
