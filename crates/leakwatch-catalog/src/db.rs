//! The catalog's connection: SQLite (a file beside the index, the default) or
//! PostgreSQL (`postgres://...`, shared by any number of processes and
//! machines), behind one small interface, so that every query is written once.
//!
//! The dialect layer is explicit and thin:
//! - SQL is written with SQLite's numbered placeholders (`?1`); PostgreSQL gets
//!   them as `$1` ([`pg_placeholders`]).
//! - Parameters are [`Value`]s, sent to PostgreSQL with their type named
//!   (`query_typed`), so that `?1 IS NULL` or a NULL blob needs no cast; a NULL
//!   carries the type of what it stands for.
//! - Results come back as [`Value`]s: an integer may be read as a `bool` and a
//!   `bool` as an integer, which is all that differs between the two for the
//!   expressions the catalog selects (`EXISTS`, `x IS NOT NULL`).
//! - Only the schemas (tables, triggers) and a few statements about the
//!   database itself (`sqlite_sequence`, `sqlite_master`, `pg_trigger`) have
//!   two versions; they sit side by side where they are used.
//!
//! **Writers.** SQLite has one writer at a time (`BEGIN IMMEDIATE`), and the
//! catalog's read-then-write transactions rely on it. On PostgreSQL a write
//! transaction takes a transaction-scoped advisory lock first
//! ([`Lock`]), then reads at READ COMMITTED: each statement after the lock sees
//! every commit made before it, so the same code is as serial there as on
//! SQLite, across processes and machines, without SERIALIZABLE's retries. The
//! audit log has a lock of its own: only its appends (one per batch of
//! searches, from every replica) queue behind each other; key, organization and
//! outbox changes do not wait for them.
//!
//! **Threads.** The synchronous `postgres` client drives its connection with a
//! Tokio runtime of its own and panics when called on a thread that is
//! already inside one; the alert service calls the catalog from its async loop
//! (a blocking call, as SQLite's are). So the client lives on a thread of its
//! own and each call is handed to it ([`PgWorker`]): the caller blocks as it
//! does on SQLite, from any thread.

use std::path::{Path, PathBuf};
use std::sync::mpsc;

use crate::error::{CatalogError, Result};

/// Where a catalog is: a SQLite file, or a PostgreSQL database.
#[derive(Clone, PartialEq, Eq)]
pub enum CatalogLocation {
    File(PathBuf),
    /// A `postgres://` (or `postgresql://`) URL.
    Postgres(String),
}

impl CatalogLocation {
    /// `postgres://...` and `postgresql://...` name a PostgreSQL database;
    /// anything else is a file path.
    pub fn parse(text: &str) -> CatalogLocation {
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            CatalogLocation::Postgres(text.to_owned())
        } else {
            CatalogLocation::File(PathBuf::from(text))
        }
    }

    /// The default: `catalog.sqlite` in the data directory `root`.
    pub fn in_data_dir(root: &Path) -> CatalogLocation {
        CatalogLocation::File(root.join(crate::CATALOG_FILE))
    }

    /// Whether other machines can share it.
    pub fn is_shared(&self) -> bool {
        matches!(self, CatalogLocation::Postgres(_))
    }

    /// The location as messages show it: a URL loses its password.
    pub fn display_name(&self) -> String {
        match self {
            CatalogLocation::File(path) => path.display().to_string(),
            CatalogLocation::Postgres(url) => redact(url),
        }
    }
}

impl std::fmt::Display for CatalogLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.display_name())
    }
}

impl std::fmt::Debug for CatalogLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CatalogLocation({})", self.display_name())
    }
}

/// `postgres://user:secret@host/db` -> `postgres://user:***@host/db`; a
/// `password=` query parameter is masked too.
fn redact(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let (authority, tail) = match rest.find(['/', '?']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let authority = match authority.rsplit_once('@') {
        Some((user, host)) => match user.split_once(':') {
            Some((name, _)) => format!("{name}:***@{host}"),
            None => authority.to_owned(),
        },
        None => authority.to_owned(),
    };
    let tail: String = match tail.split_once('?') {
        Some((path, query)) => {
            let query: Vec<String> = query
                .split('&')
                .map(|kv| match kv.split_once('=') {
                    Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                    _ => kv.to_owned(),
                })
                .collect();
            format!("{path}?{}", query.join("&"))
        }
        None => tail.to_owned(),
    };
    format!("{scheme}://{authority}{tail}")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    Sqlite,
    Postgres,
}

/// The type a NULL parameter stands for (PostgreSQL wants one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ty {
    Int,
    Text,
    Blob,
    Bool,
}

/// A parameter or a selected value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Null(Ty),
    Int(i64),
    Text(String),
    Blob(Vec<u8>),
    Bool(bool),
}

/// A Rust type with a SQL counterpart, for typed NULLs.
pub(crate) trait Typed {
    const TY: Ty;
}

macro_rules! value_from {
    ($($t:ty => $ty:ident, |$v:ident| $e:expr;)*) => {$(
        impl From<$t> for Value {
            fn from($v: $t) -> Value {
                $e
            }
        }
        impl Typed for $t {
            const TY: Ty = Ty::$ty;
        }
    )*};
}

value_from! {
    i64 => Int, |v| Value::Int(v);
    u32 => Int, |v| Value::Int(i64::from(v));
    u16 => Int, |v| Value::Int(i64::from(v));
    bool => Bool, |v| Value::Bool(v);
    String => Text, |v| Value::Text(v);
    &String => Text, |v| Value::Text(v.clone());
    &str => Text, |v| Value::Text(v.to_owned());
    Vec<u8> => Blob, |v| Value::Blob(v);
    &Vec<u8> => Blob, |v| Value::Blob(v.clone());
    &[u8] => Blob, |v| Value::Blob(v.to_vec());
}

impl<T: Into<Value> + Typed> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Value {
        v.map_or(Value::Null(T::TY), Into::into)
    }
}

/// `args![a, b]`: the parameters of a statement, as [`Value`]s.
macro_rules! args {
    ($($x:expr),* $(,)?) => {
        &[$($crate::db::Value::from($x)),*][..]
    };
}
pub(crate) use args;

/// Reads a selected [`Value`] as a Rust type.
pub(crate) trait FromValue: Sized {
    fn from_value(v: Value) -> std::result::Result<Self, String>;
}

impl FromValue for Value {
    fn from_value(v: Value) -> std::result::Result<Self, String> {
        Ok(v)
    }
}

impl FromValue for i64 {
    fn from_value(v: Value) -> std::result::Result<Self, String> {
        match v {
            Value::Int(n) => Ok(n),
            Value::Bool(b) => Ok(i64::from(b)),
            other => Err(format!("expected an integer, found {other:?}")),
        }
    }
}

impl FromValue for u32 {
    fn from_value(v: Value) -> std::result::Result<Self, String> {
        let n = i64::from_value(v)?;
        u32::try_from(n).map_err(|_| format!("{n} is out of range"))
    }
}

impl FromValue for u16 {
    fn from_value(v: Value) -> std::result::Result<Self, String> {
        let n = i64::from_value(v)?;
        u16::try_from(n).map_err(|_| format!("{n} is out of range"))
    }
}

impl FromValue for bool {
    fn from_value(v: Value) -> std::result::Result<Self, String> {
        match v {
            Value::Bool(b) => Ok(b),
            Value::Int(n) => Ok(n != 0),
            other => Err(format!("expected a boolean, found {other:?}")),
        }
    }
}

impl FromValue for String {
    fn from_value(v: Value) -> std::result::Result<Self, String> {
        match v {
            Value::Text(s) => Ok(s),
            other => Err(format!("expected text, found {other:?}")),
        }
    }
}

impl FromValue for Vec<u8> {
    fn from_value(v: Value) -> std::result::Result<Self, String> {
        match v {
            Value::Blob(b) => Ok(b),
            other => Err(format!("expected bytes, found {other:?}")),
        }
    }
}

impl<T: FromValue> FromValue for Option<T> {
    fn from_value(v: Value) -> std::result::Result<Self, String> {
        match v {
            Value::Null(_) => Ok(None),
            v => T::from_value(v).map(Some),
        }
    }
}

/// One selected row.
#[derive(Debug)]
pub(crate) struct Row {
    values: Vec<Value>,
    location: std::sync::Arc<Path>,
}

impl Row {
    /// Column `i` as a `T`; a value of another type is data corruption.
    pub(crate) fn get<T: FromValue>(&self, i: usize) -> Result<T> {
        let value = self.values.get(i).cloned().ok_or_else(|| format!("no column {i}"));
        value.and_then(T::from_value).map_err(|detail| CatalogError::DataCorruption {
            path: self.location.to_path_buf(),
            detail: format!("column {i}: {detail}"),
        })
    }
}

/// Which writers a write transaction excludes (on PostgreSQL; SQLite has one
/// writer at a time anyway).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lock {
    /// Keys, organizations, directories, the outbox, the ingest log, and
    /// schema migrations.
    Catalog,
    /// The audit log's chain.
    Audit,
    /// Leases: renewals must not queue behind a long catalog write, or a
    /// holder would lose its lease while waiting.
    Lease,
    /// None: the transaction's statements lock the rows they read
    /// (`FOR UPDATE SKIP LOCKED`), as the job queue's do.
    Rows,
}

impl Lock {
    /// The advisory lock's key: fixed numbers, chosen once (the ASCII of
    /// "lwcat", "lwaud" and "lwlea").
    pub(crate) fn key(self) -> Option<i64> {
        match self {
            Lock::Catalog => Some(0x006c_7763_6174),
            Lock::Audit => Some(0x006c_7761_7564),
            Lock::Lease => Some(0x006c_776c_6561),
            Lock::Rows => None,
        }
    }
}

enum Backend {
    Sqlite(rusqlite::Connection),
    Postgres(PgWorker),
}

/// An open connection to either kind of catalog.
pub(crate) struct Db {
    backend: Backend,
    location: std::sync::Arc<Path>,
}

impl Db {
    pub(crate) fn sqlite(conn: rusqlite::Connection, path: &Path) -> Db {
        Db { backend: Backend::Sqlite(conn), location: path.into() }
    }

    pub(crate) fn postgres(url: &str, name: &str) -> Result<Db> {
        let location: std::sync::Arc<Path> = Path::new(name).into();
        let worker = PgWorker::connect(url).map_err(|failure| pg_error(&location, failure))?;
        Ok(Db { backend: Backend::Postgres(worker), location })
    }

    pub(crate) fn dialect(&self) -> Dialect {
        match self.backend {
            Backend::Sqlite(_) => Dialect::Sqlite,
            Backend::Postgres(_) => Dialect::Postgres,
        }
    }

    pub(crate) fn location(&self) -> &Path {
        &self.location
    }

    /// The SQLite connection itself, for what only SQLite has (pragmas,
    /// checkpoints); `None` on PostgreSQL.
    pub(crate) fn sqlite_conn(&self) -> Option<&rusqlite::Connection> {
        match &self.backend {
            Backend::Sqlite(c) => Some(c),
            Backend::Postgres(_) => None,
        }
    }

    fn sqlite_err(&self, source: rusqlite::Error) -> CatalogError {
        CatalogError::Sql { path: self.location.to_path_buf(), source }
    }

    fn pg_err(&self, failure: PgFailure) -> CatalogError {
        pg_error(&self.location, failure)
    }

    /// Runs statements without parameters (schema changes).
    pub(crate) fn batch(&self, sql: &str) -> Result<()> {
        self.batch_step(Step::Statement, sql)
    }

    fn batch_step(&self, step: Step, sql: &str) -> Result<()> {
        match &self.backend {
            Backend::Sqlite(c) => c.execute_batch(sql).map_err(|e| self.sqlite_err(e)),
            Backend::Postgres(w) => {
                let sql = sql.to_owned();
                // A BEGIN changes nothing: it may be sent again.
                w.run(step, step == Step::Begin, move |c| c.batch_execute(&sql)).map_err(|e| self.pg_err(e))
            }
        }
    }

    /// Runs one statement that returns no rows; the rows it changed.
    pub(crate) fn execute(&self, sql: &str, params: &[Value]) -> Result<u64> {
        match &self.backend {
            Backend::Sqlite(c) => c
                .prepare_cached(sql)
                .and_then(|mut s| s.execute(rusqlite::params_from_iter(params.iter())))
                .map(|n| n as u64)
                .map_err(|e| self.sqlite_err(e)),
            Backend::Postgres(w) => {
                let (sql, params) = (pg_placeholders(sql), params.to_vec());
                w.run(Step::Statement, false, move |c| {
                    use postgres::fallible_iterator::FallibleIterator;
                    let mut rows = c.query_typed_raw(&sql, pg_params(&params))?;
                    while rows.next()?.is_some() {}
                    Ok(rows.rows_affected().unwrap_or(0))
                })
                .map_err(|e| self.pg_err(e))
            }
        }
    }

    /// Runs one query; every row it returns.
    pub(crate) fn query(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>> {
        let values = match &self.backend {
            Backend::Sqlite(c) => sqlite_query(c, sql, params).map_err(|e| self.sqlite_err(e))?,
            Backend::Postgres(w) => {
                // A plain SELECT changes nothing: it may be sent again.
                let read = sql.trim_start().get(..7).is_some_and(|s| s.eq_ignore_ascii_case("SELECT "));
                let (sql, params) = (pg_placeholders(sql), params.to_vec());
                let rows = w
                    .run(Step::Statement, read, move |c| {
                        use postgres::fallible_iterator::FallibleIterator;
                        c.query_typed_raw(&sql, pg_params(&params))?.collect::<Vec<_>>()
                    })
                    .map_err(|e| self.pg_err(e))?;
                rows.iter().map(|r| pg_row(r, &self.location)).collect::<Result<Vec<_>>>()?
            }
        };
        Ok(values.into_iter().map(|values| Row { values, location: self.location.clone() }).collect())
    }

    /// The first row of a query, if any.
    pub(crate) fn query_opt(&self, sql: &str, params: &[Value]) -> Result<Option<Row>> {
        Ok(self.query(sql, params)?.into_iter().next())
    }

    /// The first row of a query that always returns one.
    pub(crate) fn query_one(&self, sql: &str, params: &[Value]) -> Result<Row> {
        self.query_opt(sql, params)?.ok_or_else(|| CatalogError::DataCorruption {
            path: self.location.to_path_buf(),
            detail: format!("no row from {sql:?}"),
        })
    }

    /// Begins a write transaction: other writers holding `lock` wait until it
    /// ends. It rolls back unless committed.
    pub(crate) fn write(&self, lock: Lock) -> Result<Tx<'_>> {
        let begun = match self.dialect() {
            Dialect::Sqlite => self.batch("BEGIN IMMEDIATE"),
            Dialect::Postgres => match lock.key() {
                Some(key) => {
                    self.batch_step(Step::Begin, &format!("BEGIN; SELECT pg_advisory_xact_lock({key})"))
                }
                None => self.batch_step(Step::Begin, "BEGIN"),
            },
        };
        // A lock not granted in time leaves PostgreSQL's transaction open
        // (and failed): end it, or every later statement on this connection
        // fails too.
        let tx = Tx { db: self, open: true };
        begun?;
        Ok(tx)
    }
}

fn pg_error(location: &Path, failure: PgFailure) -> CatalogError {
    let location = location.to_path_buf();
    match failure {
        PgFailure::Db(error) => CatalogError::Postgres { location, error },
        PgFailure::Lost(detail) => CatalogError::PostgresLost { location, detail },
        PgFailure::Config(detail) => CatalogError::Invalid(format!("{}: {detail}", location.display())),
    }
}

/// A write transaction ([`Db::write`]).
pub(crate) struct Tx<'a> {
    db: &'a Db,
    open: bool,
}

impl Tx<'_> {
    pub(crate) fn commit(mut self) -> Result<()> {
        self.open = false;
        self.db.batch_step(Step::Commit, "COMMIT")
    }
}

impl std::ops::Deref for Tx<'_> {
    type Target = Db;
    fn deref(&self) -> &Db {
        self.db
    }
}

impl Drop for Tx<'_> {
    fn drop(&mut self) {
        if self.open {
            // The error that ended the transaction is what the caller reports.
            let _ = self.db.batch_step(Step::Rollback, "ROLLBACK");
        }
    }
}

impl rusqlite::ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(match self {
            Value::Null(_) => ToSqlOutput::Borrowed(ValueRef::Null),
            Value::Int(n) => ToSqlOutput::Borrowed(ValueRef::Integer(*n)),
            Value::Bool(b) => ToSqlOutput::Borrowed(ValueRef::Integer(i64::from(*b))),
            Value::Text(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
            Value::Blob(b) => ToSqlOutput::Borrowed(ValueRef::Blob(b)),
        })
    }
}

fn sqlite_query(c: &rusqlite::Connection, sql: &str, params: &[Value]) -> rusqlite::Result<Vec<Vec<Value>>> {
    use rusqlite::types::ValueRef;
    let mut stmt = c.prepare_cached(sql)?;
    let columns = stmt.column_count();
    let mut rows = stmt.query(rusqlite::params_from_iter(params.iter()))?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let mut values = Vec::with_capacity(columns);
        for i in 0..columns {
            values.push(match r.get_ref(i)? {
                ValueRef::Null => Value::Null(Ty::Int),
                ValueRef::Integer(n) => Value::Int(n),
                // The catalog stores no real numbers.
                ValueRef::Real(x) => Value::Int(x as i64),
                ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
                ValueRef::Blob(b) => Value::Blob(b.to_vec()),
            });
        }
        out.push(values);
    }
    Ok(out)
}

/// `?1` -> `$1`, outside quoted text.
pub(crate) fn pg_placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut quoted = false;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\'' {
            quoted = !quoted;
        }
        if c == '?' && !quoted && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push('$');
        } else {
            out.push(c);
        }
    }
    out
}

type PgParam = (Box<dyn postgres::types::ToSql + Sync + Send>, postgres::types::Type);

fn pg_params(params: &[Value]) -> Vec<PgParam> {
    use postgres::types::Type;
    params
        .iter()
        .map(|v| -> PgParam {
            match v {
                Value::Int(n) => (Box::new(*n), Type::INT8),
                Value::Bool(b) => (Box::new(*b), Type::BOOL),
                Value::Text(s) => (Box::new(s.clone()), Type::TEXT),
                Value::Blob(b) => (Box::new(b.clone()), Type::BYTEA),
                Value::Null(Ty::Int) => (Box::new(None::<i64>), Type::INT8),
                Value::Null(Ty::Bool) => (Box::new(None::<bool>), Type::BOOL),
                Value::Null(Ty::Text) => (Box::new(None::<String>), Type::TEXT),
                Value::Null(Ty::Blob) => (Box::new(None::<Vec<u8>>), Type::BYTEA),
            }
        })
        .collect()
}

fn pg_row(r: &postgres::Row, location: &Path) -> Result<Vec<Value>> {
    use postgres::types::Type;
    let corrupt = |detail: String| CatalogError::DataCorruption { path: location.to_owned(), detail };
    let mut values = Vec::with_capacity(r.len());
    for (i, column) in r.columns().iter().enumerate() {
        let ty = column.type_();
        let value = if *ty == Type::INT8 {
            r.try_get::<_, Option<i64>>(i).map(|v| v.map_or(Value::Null(Ty::Int), Value::Int))
        } else if *ty == Type::INT4 {
            r.try_get::<_, Option<i32>>(i).map(|v| v.map_or(Value::Null(Ty::Int), |n| Value::Int(n.into())))
        } else if *ty == Type::INT2 {
            r.try_get::<_, Option<i16>>(i).map(|v| v.map_or(Value::Null(Ty::Int), |n| Value::Int(n.into())))
        } else if *ty == Type::BOOL {
            r.try_get::<_, Option<bool>>(i).map(|v| v.map_or(Value::Null(Ty::Bool), Value::Bool))
        } else if *ty == Type::BYTEA {
            r.try_get::<_, Option<Vec<u8>>>(i).map(|v| v.map_or(Value::Null(Ty::Blob), Value::Blob))
        } else if [Type::TEXT, Type::VARCHAR, Type::BPCHAR, Type::NAME].contains(ty) {
            r.try_get::<_, Option<String>>(i).map(|v| v.map_or(Value::Null(Ty::Text), Value::Text))
        } else {
            return Err(corrupt(format!(
                "column {:?} has type {ty}, which the catalog does not read",
                column.name()
            )));
        };
        values.push(value.map_err(|e| corrupt(format!("column {:?}: {e}", column.name())))?);
    }
    Ok(values)
}

/// What a job on the client thread is to the connection's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// A statement on its own, or inside the open transaction.
    Statement,
    /// Begins a transaction.
    Begin,
    /// `COMMIT`.
    Commit,
    /// `ROLLBACK`.
    Rollback,
}

/// Why a call on the client thread failed.
enum PgFailure {
    /// The database answered with an error, or could not be reached.
    Db(postgres::Error),
    /// The URL's TLS settings cannot be used (a bad `sslmode`, an
    /// unreadable `sslrootcert`).
    Config(String),
    /// The connection broke; what became of the work, in words.
    Lost(String),
}

type PgJob = Box<dyn FnOnce(&mut PgConn) + Send>;

/// Attempts to connect again after the connection broke, and the pauses
/// before them: about 3.5 s in all, long enough for a database restart's
/// shutdown and start, short enough that a caller is not held for long
/// when the database is down. The next call tries again.
const RECONNECT_PAUSES: [std::time::Duration; 5] = [
    std::time::Duration::ZERO,
    std::time::Duration::from_millis(100),
    std::time::Duration::from_millis(300),
    std::time::Duration::from_secs(1),
    std::time::Duration::from_secs(2),
];

/// The client thread's connection: connected again when it broke, except
/// inside a transaction, whose statements must not go on a connection that
/// never saw its `BEGIN`.
struct PgConn {
    config: postgres::Config,
    tls: tokio_postgres_rustls::MakeRustlsConnect,
    client: Option<postgres::Client>,
    /// A transaction is open (on the connection, or on one that broke).
    in_tx: bool,
    last_used: std::time::Instant,
}

/// A connection unused for this long is checked for a close by the server
/// before its next statement.
const IDLE_PROBE: std::time::Duration = std::time::Duration::from_millis(100);

/// Opens a connection as the catalog uses it.
fn pg_connect(
    config: &postgres::Config,
    tls: &tokio_postgres_rustls::MakeRustlsConnect,
) -> std::result::Result<postgres::Client, postgres::Error> {
    let mut client = config.connect(tls.clone())?;
    // As SQLite's busy timeout: another writer may hold the lock for a
    // moment; waiting briefly beats failing.
    client.batch_execute("SET lock_timeout = '10s'; SET TIME ZONE 'UTC'")?;
    Ok(client)
}

impl PgConn {
    /// Runs one step, connecting again first if the connection broke (and
    /// no transaction was open on it). A step that fails because the
    /// connection broke under it fails, saying what became of it, unless it
    /// is `repeatable` (it changes nothing: a read, or a `BEGIN`) and no
    /// transaction was open: then it runs once more on a new connection.
    /// The client notices a closed connection only when it next uses it, so
    /// the first statement after a database restart is the one that finds
    /// out; a write is never sent twice.
    fn step<R>(
        &mut self,
        step: Step,
        repeatable: bool,
        f: impl Fn(&mut postgres::Client) -> std::result::Result<R, postgres::Error>,
    ) -> std::result::Result<R, PgFailure> {
        match self.step_once(step, &f) {
            Err(PgFailure::Lost(_)) if repeatable && !self.in_tx => self.step_once(step, &f),
            done => done,
        }
    }

    fn step_once<R>(
        &mut self,
        step: Step,
        f: &impl Fn(&mut postgres::Client) -> std::result::Result<R, postgres::Error>,
    ) -> std::result::Result<R, PgFailure> {
        if let Some(client) = &mut self.client {
            // The client reads its socket only while it is called, and a
            // quick look (`iter`) does not let its runtime see the socket
            // become readable: after a pause, wait for that (under a
            // millisecond; no round trip), so that a server that closed the
            // connection meanwhile (a restart) is noticed before a statement
            // is sent on it. Busy connections do not pay for it.
            if self.last_used.elapsed() >= IDLE_PROBE {
                use postgres::fallible_iterator::FallibleIterator;
                let closed = {
                    let mut pending = client.notifications();
                    let mut pending = pending.timeout_iter(std::time::Duration::from_micros(1));
                    loop {
                        match pending.next() {
                            Ok(Some(_)) => {}
                            Ok(None) => break false,
                            Err(_) => break true,
                        }
                    }
                };
                if closed {
                    self.client = None;
                }
            }
        }
        self.last_used = std::time::Instant::now();
        if self.client.as_ref().is_some_and(postgres::Client::is_closed) {
            self.client = None;
        }
        if self.in_tx && self.client.is_none() {
            return match step {
                Step::Rollback => {
                    self.in_tx = false;
                    Err(PgFailure::Lost("the transaction was rolled back with it".into()))
                }
                Step::Commit => {
                    self.in_tx = false;
                    Err(PgFailure::Lost(
                        "the transaction was not committed (it was rolled back with it)".into(),
                    ))
                }
                Step::Statement | Step::Begin => {
                    Err(PgFailure::Lost("inside a transaction, which was rolled back with it".into()))
                }
            };
        }
        if self.client.is_none() && step == Step::Rollback {
            // Nothing began on a connection that is gone (the caller drops
            // a transaction whose BEGIN failed with it).
            return Err(PgFailure::Lost("no transaction was open".into()));
        }
        if self.client.is_none() {
            let mut last = None;
            for pause in RECONNECT_PAUSES {
                std::thread::sleep(pause);
                match pg_connect(&self.config, &self.tls) {
                    Ok(client) => {
                        self.client = Some(client);
                        break;
                    }
                    Err(e) => last = Some(e),
                }
            }
            if let (None, Some(e)) = (&self.client, last) {
                return Err(PgFailure::Db(e));
            }
        }
        let client = self.client.as_mut().expect("connected above");
        let result = f(client);
        let lost = client.is_closed();
        if lost {
            self.client = None;
        }
        match step {
            // A failed BEGIN (a lock not granted in time) leaves a failed
            // transaction open: the caller's ROLLBACK ends it.
            Step::Begin => self.in_tx = !lost,
            Step::Commit | Step::Rollback => self.in_tx = false,
            Step::Statement => {}
        }
        match result {
            Ok(r) => Ok(r),
            Err(e) if lost => Err(PgFailure::Lost(match step {
                Step::Statement if self.in_tx => {
                    format!("inside a transaction, which was rolled back with it ({e})")
                }
                Step::Statement => format!("the statement may or may not have been applied ({e})"),
                Step::Begin => format!("the transaction did not begin ({e})"),
                Step::Commit => format!("the transaction may or may not have been committed ({e})"),
                Step::Rollback => format!("the transaction was rolled back with it ({e})"),
            })),
            Err(e) => Err(PgFailure::Db(e)),
        }
    }
}

/// A PostgreSQL client on a thread of its own; calls are handed to it and
/// their caller waits for the answer.
struct PgWorker {
    jobs: Option<mpsc::Sender<PgJob>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl PgWorker {
    fn connect(url: &str) -> std::result::Result<PgWorker, PgFailure> {
        let settings = crate::tls::TlsSettings::parse(url).map_err(PgFailure::Config)?;
        let tls = settings.connector().map_err(PgFailure::Config)?;
        let config: postgres::Config = settings.url.parse().map_err(PgFailure::Db)?;
        let (jobs, queue) = mpsc::channel::<PgJob>();
        let (ready, connected) = mpsc::sync_channel(1);
        let thread = std::thread::Builder::new()
            .name("leakwatch-catalog-pg".into())
            .spawn(move || {
                // The first connection is not retried: a wrong URL or a
                // database that is down is reported at once.
                let client = match pg_connect(&config, &tls) {
                    Ok(c) => {
                        let _ = ready.send(Ok(()));
                        c
                    }
                    Err(e) => {
                        let _ = ready.send(Err(e));
                        return;
                    }
                };
                let mut conn = PgConn {
                    config,
                    tls,
                    client: Some(client),
                    in_tx: false,
                    last_used: std::time::Instant::now(),
                };
                for job in queue {
                    job(&mut conn);
                }
            })
            .expect("spawning a thread");
        let worker = PgWorker { jobs: Some(jobs), thread: Some(thread) };
        match connected.recv() {
            Ok(Ok(())) => Ok(worker),
            Ok(Err(e)) => Err(PgFailure::Db(e)),
            Err(_) => unreachable!("the connecting thread always answers"),
        }
    }

    /// Runs `f` on the client thread ([`PgConn::step`]).
    fn run<R: Send + 'static>(
        &self,
        step: Step,
        repeatable: bool,
        f: impl Fn(&mut postgres::Client) -> std::result::Result<R, postgres::Error> + Send + 'static,
    ) -> std::result::Result<R, PgFailure> {
        let (answer, answered) = mpsc::sync_channel(1);
        let job: PgJob = Box::new(move |conn| {
            let _ = answer.send(conn.step(step, repeatable, f));
        });
        self.jobs
            .as_ref()
            .expect("open until dropped")
            .send(job)
            .expect("the client thread runs until dropped");
        answered.recv().expect("the client thread answers every job")
    }
}

impl Drop for PgWorker {
    fn drop(&mut self) {
        drop(self.jobs.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_for_postgres_outside_quotes() {
        assert_eq!(
            pg_placeholders("SELECT a FROM t WHERE b = ?1 AND c = '?2' AND d IN (?12, ?3)"),
            "SELECT a FROM t WHERE b = $1 AND c = '?2' AND d IN ($12, $3)"
        );
    }

    #[test]
    fn locations_are_told_apart_and_urls_lose_their_password() {
        assert!(CatalogLocation::parse("postgres://a@h/db").is_shared());
        assert!(CatalogLocation::parse("postgresql://a@h/db").is_shared());
        assert_eq!(
            CatalogLocation::parse("/var/lib/lw/catalog.sqlite"),
            CatalogLocation::File("/var/lib/lw/catalog.sqlite".into())
        );
        let url = CatalogLocation::parse(
            "postgres://lw:s3cret@db.example:5432/leakwatch?password=x&sslmode=disable",
        );
        assert_eq!(
            url.to_string(),
            "postgres://lw:***@db.example:5432/leakwatch?password=***&sslmode=disable"
        );
        assert!(!format!("{url:?}").contains("s3cret"));
        assert_eq!(redact("postgres://lw@h/db"), "postgres://lw@h/db");
    }
}
