//! Copying a SQLite catalog into an empty PostgreSQL one (`leakwatch catalog
//! migrate`): keys, organizations with their directories and alert
//! destinations, the outbox, the ingest log and the audit log, row for row,
//! with their ids, so that the audit chain verifies in its new home.
//!
//! The tables are read by the PostgreSQL table's columns (the two schemas hold
//! the same columns; a SQLite value is converted to the PostgreSQL column's
//! type). Web sessions, leases and rate counters are a running server's and
//! are not copied. Everything is written in one transaction: a copy that
//! fails leaves the target as it was.

use crate::db::{Dialect, Lock, Ty, Value};
use crate::error::{CatalogError, Result};
use crate::Catalog;

/// The tables copied, parents before children.
const TABLES: &[&str] = &[
    "api_keys",
    "api_key_domains",
    "organizations",
    "organization_domains",
    "directories",
    "organization_alerts",
    "alert_outbox",
    "alert_seen",
    "ingests",
    "ingest_inputs",
    "ingest_rejections",
    "audit_log",
];

/// The rows of `meta` that are data, not schema versions.
const META: &[&str] = &["keys_version", "audit_seq", "audit_chain_key"];

impl Catalog {
    /// Copies every row of this (SQLite) catalog's tables into `target`, an
    /// empty PostgreSQL catalog; the rows copied per table.
    pub fn copy_into(&self, target: &Catalog) -> Result<Vec<(&'static str, u64)>> {
        let invalid = |what: String| CatalogError::Invalid(what);
        if self.dialect() != Dialect::Sqlite || target.dialect() != Dialect::Postgres {
            return Err(invalid("a catalog is copied from a SQLite file into a PostgreSQL database".into()));
        }
        let tx = target.db.write(Lock::Catalog)?;
        // The audit chain's writers wait too.
        tx.batch(&format!(
            "SELECT pg_advisory_xact_lock({})",
            Lock::Audit.key().expect("the audit chain has its lock")
        ))?;
        for table in ["api_keys", "organizations", "audit_log", "ingests"] {
            let rows: i64 = tx.query_one(&format!("SELECT count(*) FROM {table}"), &[])?.get(0)?;
            if rows > 0 {
                return Err(invalid(format!(
                    "{}: its table {table} is not empty: copy into a new database",
                    target.path().display()
                )));
            }
        }
        let mut copied = Vec::new();
        for &table in TABLES {
            let columns: Vec<(String, String)> = tx
                .query(
                    "SELECT column_name::text, data_type::text FROM information_schema.columns \
                     WHERE table_schema = current_schema() AND table_name = ?1 ORDER BY ordinal_position",
                    crate::db::args![table],
                )?
                .iter()
                .map(|r| Ok((r.get(0)?, r.get(1)?)))
                .collect::<Result<_>>()?;
            let names: Vec<&str> = columns.iter().map(|(n, _)| n.as_str()).collect();
            let list = names.join(", ");
            let placeholders: Vec<String> = (1..=names.len()).map(|i| format!("?{i}")).collect();
            let insert = format!("INSERT INTO {table} ({list}) VALUES ({})", placeholders.join(", "));
            let rows = self.db.query(&format!("SELECT {list} FROM {table}"), &[])?;
            for row in &rows {
                let values = columns
                    .iter()
                    .enumerate()
                    .map(|(i, (name, ty))| convert(row.get::<Value>(i)?, ty, table, name))
                    .collect::<Result<Vec<_>>>()?;
                tx.execute(&insert, &values)?;
            }
            if names.contains(&"id") {
                // Identity columns go on after the ids copied.
                tx.query(
                    &format!(
                        "SELECT setval(pg_get_serial_sequence('{table}', 'id'), max(id)) FROM {table} \
                         WHERE pg_get_serial_sequence('{table}', 'id') IS NOT NULL HAVING count(*) > 0"
                    ),
                    &[],
                )?;
            }
            copied.push((table, rows.len() as u64));
        }
        for name in META {
            if let Some(row) =
                self.db.query_opt("SELECT value FROM meta WHERE name = ?1", crate::db::args![*name])?
            {
                let value = match row.get::<Value>(0)? {
                    Value::Int(n) => n.to_string(),
                    Value::Text(t) => t,
                    other => return Err(invalid(format!("meta {name}: unexpected value {other:?}"))),
                };
                tx.execute(
                    "INSERT INTO meta (name, value) VALUES (?1, ?2) \
                     ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                    crate::db::args![*name, value],
                )?;
            }
        }
        tx.commit()?;
        Ok(copied)
    }
}

/// A SQLite value as the PostgreSQL column of type `ty` takes it.
fn convert(value: Value, ty: &str, table: &str, column: &str) -> Result<Value> {
    let target = match ty {
        "bigint" | "integer" | "smallint" => Ty::Int,
        "boolean" => Ty::Bool,
        "text" | "character varying" => Ty::Text,
        "bytea" => Ty::Blob,
        other => {
            return Err(CatalogError::Invalid(format!("{table}.{column}: column type {other} is not copied")))
        }
    };
    Ok(match (value, target) {
        (Value::Null(_), ty) => Value::Null(ty),
        (Value::Int(n), Ty::Bool) => Value::Bool(n != 0),
        (Value::Int(n), Ty::Text) => Value::Text(n.to_string()),
        (v @ Value::Int(_), Ty::Int) | (v @ Value::Text(_), Ty::Text) | (v @ Value::Blob(_), Ty::Blob) => v,
        (Value::Text(t), Ty::Blob) => Value::Blob(t.into_bytes()),
        (other, _) => {
            return Err(CatalogError::Invalid(format!(
                "{table}.{column}: {other:?} does not fit a {ty} column"
            )))
        }
    })
}
