//! The catalog: leakwatch's small mutable state, in one embedded SQLite file
//! beside the immutable index (`DATA/catalog.sqlite`, the default), or in a
//! PostgreSQL database shared by any number of servers (`--catalog
//! postgres://...`; the dialect layer is `db.rs`, the setup docs/postgresql.md).
//!
//! It holds API keys (as hashes, never the keys themselves), their roles, domains
//! and rate limits, the audit log of authenticated searches, organizations
//! with their domains, directories of accounts and alert destinations, and the
//! log of ingests (their progress and rejections by reason). The index
//! segments stay immutable and memory-mapped; everything that changes by the
//! minute lives here, behind SQL transactions, so that the CLI can add or revoke a
//! key while a server is running and the server sees it within a poll interval.
//!
//! **Architecture Invariant:** the audit log is append-only. This crate has no
//! update or delete path for it, and the schema refuses both with triggers, so a
//! bug elsewhere cannot rewrite history through this connection either.
//!
//! **Architecture Invariant:** a searched address never enters the catalog in
//! clear; the audit log holds a keyed hash of it ([`AuditHasher`]).

mod alerts;
mod audit;
mod copy;
mod db;
mod directory;
mod error;
mod ingests;
mod jobs;
mod keys;
mod leases;
mod orgs;
mod rate_usage;
mod schema;
mod sessions;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
mod tls;

use std::path::Path;
use std::time::Duration;

use rusqlite::Connection;

pub use alerts::{now_ms, AlertRoute, Delivery, NewAlert, NewDelivery, Scan, SeenMac};
pub use audit::{
    AuditEntry, AuditFilter, AuditHasher, AuditKey, AuditKeys, AuditRecord, AuditVerification, ChainPrefix,
    Subject, SubjectKind,
};
pub use db::CatalogLocation;
pub use directory::{
    parse_directory, DirectoryEntry, DirectoryFormat, DirectoryRecord, LeftOut, ParsedDirectory,
    RecordReader, EMPTY_NT_HASH,
};
pub use error::{CatalogError, Result};
pub use ingests::{
    IngestInput, IngestOutcome, IngestProgress, IngestRecord, IngestStatus, NewIngest, Rejection,
};
pub use jobs::{ingest_lease_name, ClaimedJob, JobRow, MAX_ATTEMPTS};
pub use keys::{hash_secret, ApiKey, CreatedKey, KeyHash, NewKey, Role};
pub use leases::{lease_holder_name, Lease};
pub use orgs::{AlertDestination, DirectoryChange, DirectoryImport, Organization, SealedDirectory};
pub use rate_usage::{RateUsage, HEARTBEAT_KEY};
pub use schema::POSTGRES_GRANTS;
pub use sessions::StoredSession;

use db::{args, Db, Dialect, Lock};

/// The catalog's file name inside a data directory.
pub const CATALOG_FILE: &str = "catalog.sqlite";

/// An open catalog: one connection, to a SQLite file or a PostgreSQL
/// database. Open one per thread that needs it; SQLite's WAL mode (and
/// PostgreSQL itself) lets readers and writers proceed together.
pub struct Catalog {
    db: Db,
    location: CatalogLocation,
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalog").field("location", &self.location).finish()
    }
}

impl Catalog {
    /// Opens the catalog of the data directory `root`, creating it (and the
    /// directory) on first use.
    pub fn open_in(root: &Path) -> Result<Catalog> {
        Catalog::open_at(&CatalogLocation::in_data_dir(root))
    }

    /// Opens (or creates) the catalog file at `path` and brings its schema up to
    /// date.
    pub fn open(path: &Path) -> Result<Catalog> {
        Catalog::open_at(&CatalogLocation::File(path.to_owned()))
    }

    /// Opens the catalog at `location`, a file (created with its directory on
    /// first use) or a PostgreSQL database (whose tables are created on first
    /// use, by a role allowed to: docs/postgresql.md), and brings its schema up
    /// to date.
    pub fn open_at(location: &CatalogLocation) -> Result<Catalog> {
        // Processes opening a new SQLite catalog at once: one switching it to
        // WAL, or creating its tables, can make another's step fail busy at
        // once, without SQLite's busy wait (a lock upgrade it refuses rather
        // than deadlock). Opening is idempotent (every migration is
        // versioned and in a transaction), so it is tried again.
        let mut attempt = 0;
        loop {
            match Catalog::open_once(location) {
                Err(CatalogError::Sql { source: rusqlite::Error::SqliteFailure(e, _), .. })
                    if e.code == rusqlite::ErrorCode::DatabaseBusy && attempt < 50 =>
                {
                    attempt += 1;
                    std::thread::sleep(Duration::from_millis(10 * attempt));
                }
                other => return other,
            }
        }
    }

    fn open_once(location: &CatalogLocation) -> Result<Catalog> {
        let db = match location {
            CatalogLocation::File(path) => open_sqlite(path)?,
            CatalogLocation::Postgres(url) => {
                let db = Db::postgres(url, &location.display_name())?;
                schema::bootstrap_postgres(&db)?;
                db
            }
        };
        let mut catalog = Catalog { db, location: location.clone() };
        schema::migrate(&mut catalog)?;
        orgs::migrate(&mut catalog)?;
        ingests::migrate(&mut catalog)?;
        sessions::migrate(&mut catalog)?;
        leases::migrate(&mut catalog)?;
        rate_usage::migrate(&mut catalog)?;
        jobs::migrate(&mut catalog)?;
        Ok(catalog)
    }

    /// The catalog file, or the database's URL without its password.
    pub fn path(&self) -> &Path {
        self.db.location()
    }

    pub fn location(&self) -> &CatalogLocation {
        &self.location
    }

    /// Turns off SQLite's automatic checkpoints on this connection: the
    /// checkpoint (and its fsyncs) then runs only when [`Catalog::checkpoint`]
    /// is called, from wherever it delays nobody. PostgreSQL checkpoints on its
    /// own: nothing to do there.
    pub fn manual_checkpoints(&self) -> Result<()> {
        match self.db.sqlite_conn() {
            Some(_) => self.db.batch("PRAGMA wal_autocheckpoint = 0"),
            None => Ok(()),
        }
    }

    /// Copies the write-ahead log into the database as far as it can without
    /// waiting for anyone (`PASSIVE`); returns the frames left in the log and
    /// how many of them are now copied (none and none on PostgreSQL).
    pub fn checkpoint(&self) -> Result<(i64, i64)> {
        match self.db.sqlite_conn() {
            Some(_) => {
                let row = self.db.query_one("PRAGMA wal_checkpoint(PASSIVE)", &[])?;
                Ok((row.get(1)?, row.get(2)?))
            }
            None => Ok((0, 0)),
        }
    }

    pub(crate) fn dialect(&self) -> Dialect {
        self.db.dialect()
    }
}

fn open_sqlite(path: &Path) -> Result<Db> {
    // Created readable by its owner only, like the data directory it is in.
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| CatalogError::Io { path: dir.to_owned(), source: e })?;
    }
    create_private(path)?;
    let sql = |e| CatalogError::Sql { path: path.to_owned(), source: e };
    let conn = Connection::open(path).map_err(sql)?;
    // Another process (the CLI beside a running server) may hold the write
    // lock for a moment; waiting briefly beats failing a key creation.
    conn.busy_timeout(Duration::from_secs(10)).map_err(sql)?;
    conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;")
        .map_err(sql)?;
    Ok(Db::sqlite(conn, path))
}

/// Creates the catalog file readable by its owner only, before SQLite opens it:
/// it holds key hashes and the audit log. SQLite gives its `-wal` and `-shm`
/// files the same permissions as the database.
fn create_private(path: &Path) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(CatalogError::Io { path: path.to_owned(), source: e }),
    }
}

/// Now, as the catalog writes times: RFC 3339 UTC with milliseconds.
pub fn now() -> String {
    format_time(time::OffsetDateTime::now_utc())
}

fn format_time(t: time::OffsetDateTime) -> String {
    const FORMAT: &[time::format_description::BorrowedFormatItem<'static>] = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    t.to_offset(time::UtcOffset::UTC).format(FORMAT).expect("a UTC time always formats")
}

/// Brings one set of tables to its latest version: `migrations[v]` takes it
/// from version `v` to `v + 1`, each step in its own write transaction with
/// the version kept in `meta` under `version_row`, so that concurrent openers
/// apply each step once. A catalog newer than this build is refused.
///
/// `migrations` are the dialect's own: a PostgreSQL catalog starts from the
/// tables' present form, so its list is shorter and its versions count apart.
pub(crate) fn migrate_set(catalog: &mut Catalog, version_row: &str, migrations: &[&str]) -> Result<()> {
    let latest = migrations.len() as i64;
    // Most opens find the tables current: they need not queue for the lock.
    let current = catalog
        .db
        .query_opt("SELECT CAST(value AS BIGINT) FROM meta WHERE name = ?1", args![version_row])?
        .map(|r| r.get::<i64>(0))
        .transpose()?;
    if current == Some(latest) {
        return Ok(());
    }
    loop {
        let tx = catalog.db.write(Lock::Catalog)?;
        let version: i64 = tx
            .query_opt("SELECT CAST(value AS BIGINT) FROM meta WHERE name = ?1", args![version_row])?
            .map(|r| r.get(0))
            .transpose()?
            .unwrap_or(0);
        if version > latest {
            return Err(CatalogError::UnsupportedVersion {
                path: catalog.path().to_owned(),
                found: version,
                supported: latest,
            });
        }
        if version == latest {
            return Ok(());
        }
        tx.batch(migrations[version as usize])?;
        tx.execute(
            "INSERT INTO meta (name, value) VALUES (?1, ?2) \
             ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            args![version_row, version + 1],
        )?;
        tx.commit()?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339_utc_with_milliseconds() {
        let t = time::macros::datetime!(2026-03-04 05:06:07.891234 +02:00);
        assert_eq!(format_time(t), "2026-03-04T03:06:07.891Z");
        assert_eq!(now().len(), "2026-03-04T03:06:07.891Z".len());
    }

    #[test]
    fn the_catalog_file_is_private_and_reopens() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("data");
        drop(Catalog::open_in(&root).unwrap());
        let meta = std::fs::metadata(root.join(CATALOG_FILE)).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        Catalog::open_in(&root).unwrap();
    }

    #[test]
    fn a_postgres_catalog_answers_on_a_thread_inside_an_async_runtime() {
        // The alert service calls the catalog from its async loop: the
        // synchronous client would panic there if it ran on the caller's thread.
        let location = testing::TestPostgres::shared().fresh_catalog();
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        runtime.block_on(async {
            let catalog = Catalog::open_at(&location).unwrap();
            assert_eq!(catalog.keys_version().unwrap(), 0);
            assert_eq!(catalog.checkpoint().unwrap(), (0, 0));
        });
    }

    /// A CA and a certificate for `localhost` signed by it, with its key:
    /// (CA PEM, certificate PEM, key PEM).
    fn certificate_for_localhost() -> (String, String, String) {
        use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name.push(DnType::CommonName, "leakwatch test database CA");
        let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
        let key = KeyPair::generate().unwrap();
        let leaf =
            CertificateParams::new(vec!["localhost".to_owned()]).unwrap().signed_by(&key, &ca).unwrap();
        (ca.pem(), leaf.pem(), key.serialize_pem())
    }

    #[test]
    fn tls_to_postgres_checks_the_server_as_the_sslmode_says() {
        let (ca, cert, key) = certificate_for_localhost();
        let (other_ca, _, _) = certificate_for_localhost();
        let tmp = tempfile::tempdir().unwrap();
        let (ca_file, other_file) = (tmp.path().join("ca.pem"), tmp.path().join("other.pem"));
        std::fs::write(&ca_file, ca).unwrap();
        std::fs::write(&other_file, other_ca).unwrap();
        let server = testing::TestPostgres::start_tls(&cert, &key);
        let database = server.fresh_database();
        let port = server.port();
        // The certificate names localhost; the server listens on 127.0.0.1.
        let url = |host: &str, query: &str| {
            CatalogLocation::Postgres(format!(
                "postgres://postgres@{host}:{port}/{database}?hostaddr=127.0.0.1&{query}"
            ))
        };
        let root = |file: &Path| format!("sslrootcert={}", file.display());
        let opens =
            |location: &CatalogLocation| Catalog::open_at(location).map(drop).map_err(|e| e.to_string());

        opens(&url("localhost", &format!("sslmode=verify-full&{}", root(&ca_file)))).unwrap();
        let wrong =
            opens(&url("localhost", &format!("sslmode=verify-full&{}", root(&other_file)))).unwrap_err();
        assert!(wrong.contains("certificate"), "{wrong}");
        // verify-full compares the name; verify-ca (and require with a root)
        // check the chain alone.
        let name = opens(&url("127.0.0.1", &format!("sslmode=verify-full&{}", root(&ca_file)))).unwrap_err();
        assert!(name.contains("certificate"), "{name}");
        opens(&url("127.0.0.1", &format!("sslmode=verify-ca&{}", root(&ca_file)))).unwrap();
        let chain =
            opens(&url("127.0.0.1", &format!("sslmode=verify-ca&{}", root(&other_file)))).unwrap_err();
        assert!(chain.contains("certificate"), "{chain}");
        let chain = opens(&url("127.0.0.1", &format!("sslmode=require&{}", root(&other_file)))).unwrap_err();
        assert!(chain.contains("certificate"), "{chain}");
        // Without roots, require and prefer encrypt without checking, as libpq.
        opens(&url("127.0.0.1", "sslmode=require")).unwrap();
        let held = Catalog::open_at(&url("127.0.0.1", "sslmode=prefer")).unwrap();
        let encrypted = server.psql(
            &database,
            "SELECT count(*) FROM pg_stat_ssl JOIN pg_stat_activity USING (pid) \
             WHERE ssl AND application_name <> 'psql' AND backend_type = 'client backend'",
        );
        assert_eq!(encrypted.trim(), "1", "the catalog's connection is encrypted");
        drop(held);
        // A server that takes TLS only refuses a plaintext connection.
        let plain = opens(&url("127.0.0.1", "sslmode=disable")).unwrap_err();
        assert!(plain.contains("no encryption") || plain.contains("pg_hba.conf"), "{plain}");
        // A root file that cannot be read is an error that names it.
        let missing = tmp.path().join("missing.pem");
        let err = opens(&url("localhost", &format!("sslmode=verify-full&{}", root(&missing)))).unwrap_err();
        assert!(err.contains("missing.pem"), "{err}");
    }

    /// A certificate for the database user `user`, signed by a new CA, with
    /// its key: (CA PEM, certificate PEM, key PEM).
    fn client_certificate(user: &str) -> (String, String, String) {
        use rcgen::{
            BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
            KeyPair,
        };
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name.push(DnType::CommonName, "leakwatch test clients CA");
        let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, user);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let cert = params.signed_by(&key, &ca).unwrap();
        (ca.pem(), cert.pem(), key.serialize_pem())
    }

    #[test]
    fn a_server_that_asks_for_a_client_certificate_takes_sslcert_and_sslkey() {
        let (server_ca, server_cert, server_key) = certificate_for_localhost();
        let (client_ca, cert, key) = client_certificate("postgres");
        // The right name, signed by a CA the server does not trust.
        let (_, stranger_cert, stranger_key) = client_certificate("postgres");
        let tmp = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| {
            let path = tmp.path().join(name);
            std::fs::write(&path, text).unwrap();
            path
        };
        let root = write("server-ca.pem", &server_ca);
        let (cert, key) = (write("client.pem", &cert), write("client.key", &key));
        let (stranger_cert, stranger_key) =
            (write("stranger.pem", &stranger_cert), write("stranger.key", &stranger_key));
        let server =
            testing::TestPostgres::start_tls_with_client_certs(&server_cert, &server_key, &client_ca);
        let database = server.fresh_database();
        let url = |client: &str| {
            CatalogLocation::Postgres(format!(
                "postgres://postgres@localhost:{}/{database}?hostaddr=127.0.0.1&sslmode=verify-full&sslrootcert={}{client}",
                server.port(),
                root.display()
            ))
        };
        let opens =
            |location: &CatalogLocation| Catalog::open_at(location).map(drop).map_err(|e| e.to_string());
        let with = |c: &Path, k: &Path| format!("&sslcert={}&sslkey={}", c.display(), k.display());

        opens(&url(&with(&cert, &key))).unwrap();
        let held = Catalog::open_at(&url(&with(&cert, &key))).unwrap();
        let shown = server.psql(
            &database,
            "SELECT count(*) FROM pg_stat_ssl JOIN pg_stat_activity USING (pid) \
             WHERE client_dn = '/CN=postgres' AND backend_type = 'client backend'",
        );
        assert_eq!(shown.trim(), "1", "the catalog's connection shows its certificate");
        drop(held);
        // No certificate, or one the server's CA did not sign: refused.
        let none = opens(&url("")).unwrap_err();
        assert!(none.contains("certificate") || none.contains("pg_hba.conf"), "{none}");
        let stranger = opens(&url(&with(&stranger_cert, &stranger_key))).unwrap_err();
        assert!(!stranger.is_empty());
        // A key that is not the certificate's, or files that are not there:
        // errors that name them.
        let mismatched = opens(&url(&with(&cert, &stranger_key))).unwrap_err();
        assert!(mismatched.contains("sslcert") || mismatched.contains("certificate"), "{mismatched}");
        let missing = tmp.path().join("missing.key");
        let err = opens(&url(&with(&cert, &missing))).unwrap_err();
        assert!(err.contains("missing.key"), "{err}");
    }

    #[test]
    fn a_postgres_url_may_name_a_unix_socket_and_one_asking_for_tls_is_refused() {
        let server = testing::TestPostgres::shared();
        let database = server.fresh_database();
        let socket = server.socket_dir().display().to_string().replace('/', "%2F");
        let url = format!("postgres://postgres@{socket}:{}/{database}", server.port());
        Catalog::open_at(&CatalogLocation::Postgres(url)).unwrap();
        // A server without TLS: a URL that requires it fails rather than
        // connecting in clear.
        let tls = format!("{}?sslmode=require", server.url("postgres", &database));
        let err = Catalog::open_at(&CatalogLocation::Postgres(tls)).unwrap_err();
        assert!(err.to_string().contains("TLS") || err.to_string().contains("tls"), "{err}");
    }

    #[test]
    fn processes_opening_a_new_catalog_at_once_create_its_tables_once() {
        testing::each_backend(|location| {
            std::thread::scope(|scope| {
                let opened: Vec<_> =
                    (0..4).map(|_| scope.spawn(|| Catalog::open_at(location).map(drop))).collect();
                for o in opened {
                    o.join().unwrap().unwrap();
                }
            });
            let catalog = Catalog::open_at(location).unwrap();
            assert_eq!(catalog.keys_version().unwrap(), 0);
            assert_eq!(catalog.audit_len().unwrap(), 0);
        });
    }

    #[test]
    fn a_writer_that_waits_too_long_for_the_lock_fails_and_its_connection_goes_on() {
        let location = testing::TestPostgres::shared().fresh_catalog();
        let holder = Catalog::open_at(&location).unwrap();
        let waiter = Catalog::open_at(&location).unwrap();
        waiter.db.batch("SET lock_timeout = '100ms'").unwrap();
        let held = holder.db.write(Lock::Catalog).unwrap();
        let err = waiter.db.write(Lock::Catalog).err().expect("the lock is held");
        assert!(err.to_string().contains("lock timeout"), "{err}");
        drop(held);
        assert_eq!(waiter.keys_version().unwrap(), 0, "the failed transaction was ended");
        waiter.db.write(Lock::Catalog).unwrap().commit().unwrap();
    }

    #[test]
    fn a_database_that_is_down_is_told_apart_from_a_refused_call() {
        let server = testing::TestPostgres::start();
        let database = server.fresh_database();
        let location = CatalogLocation::Postgres(server.url("postgres", &database));
        let catalog = Catalog::open_at(&location).unwrap();
        let refused = catalog.db.execute("INSERT INTO nowhere VALUES (1)", &[]).unwrap_err();
        assert!(!refused.is_unavailable(), "{refused}");

        server.shut_down();
        // The connection the shutdown closed, then the new ones it refuses.
        for _ in 0..2 {
            let err = catalog.keys_version().unwrap_err();
            assert!(err.is_unavailable(), "{err}");
        }
        let err = Catalog::open_at(&location).unwrap_err();
        assert!(err.is_unavailable(), "{err}");
        server.start_again();
        assert_eq!(catalog.keys_version().unwrap(), 0);
    }

    #[test]
    fn a_postgres_catalog_connects_again_after_a_restart_and_never_half_applies_a_transaction() {
        let server = testing::TestPostgres::start();
        let database = server.fresh_database();
        let location = CatalogLocation::Postgres(server.url("postgres", &database));
        let catalog = Catalog::open_at(&location).unwrap();
        assert_eq!(catalog.keys_version().unwrap(), 0);
        server.restart(Duration::from_millis(500));
        // The connection the restart closed is opened again by the next call.
        assert_eq!(catalog.keys_version().unwrap(), 0);

        // A transaction that the restart cuts fails whole: its later
        // statements do not go to a new connection, and it is not committed.
        let tx = catalog.db.write(Lock::Catalog).unwrap();
        tx.execute("INSERT INTO meta (name, value) VALUES ('before', '1')", &[]).unwrap();
        server.restart(Duration::from_millis(100));
        let err = tx.execute("INSERT INTO meta (name, value) VALUES ('after', '1')", &[]).unwrap_err();
        assert!(matches!(err, CatalogError::PostgresLost { .. }), "{err}");
        assert!(err.to_string().contains("rolled back"), "{err}");
        let err = tx.commit().unwrap_err();
        assert!(err.to_string().contains("not committed"), "{err}");
        let rows = server.psql(&database, "SELECT count(*) FROM meta WHERE name IN ('before', 'after')");
        assert_eq!(rows.trim(), "0");
        // And the catalog goes on.
        catalog.db.write(Lock::Catalog).unwrap().commit().unwrap();
        assert_eq!(catalog.keys_version().unwrap(), 0);
    }

    #[test]
    fn manual_checkpoints_copy_the_whole_log_when_asked() {
        let tmp = tempfile::tempdir().unwrap();
        let mut writer = Catalog::open_in(tmp.path()).unwrap();
        writer.manual_checkpoints().unwrap();
        let keys = AuditKeys::new(vec![AuditKey::from_root(&[1; 32])], ChainPrefix::None);
        let hasher = keys.current().hasher();
        for i in 0..200 {
            let subject = hasher.subject(SubjectKind::Account, &format!("u{i}@example.com"));
            let entry = AuditEntry::cli("a", "test", subject, 0);
            writer.append_audit(&[entry], &keys).unwrap();
        }
        let checkpointer = Catalog::open_in(tmp.path()).unwrap();
        let (log, copied) = checkpointer.checkpoint().unwrap();
        assert!(log > 0 && copied == log, "{log} {copied}");
    }
}
