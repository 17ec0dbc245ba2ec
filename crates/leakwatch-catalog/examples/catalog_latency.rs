//! Latency of the catalog calls a server makes, SQLite beside PostgreSQL on
//! this machine: the key-table poll (every 250 ms per server), the key table
//! load (after a change), an audit batch (1 and 32 searches), a key creation,
//! and opening a connection. Runs interleave the backends and report medians.
//!
//! An API key check itself never reaches the catalog: a server checks keys
//! against the table it loaded, in memory, whichever backend holds it.
//!
//! PostgreSQL runs on loopback with its production settings (fsync on); it
//! is measured with `synchronous_commit` on (a commit waits for its WAL
//! flush) and off (as SQLite's WAL with `synchronous = NORMAL`: a power cut
//! may lose the last commits, never consistency).
//!
//! `bench/catalog.sh` runs it: `cargo run --release -p leakwatch-catalog
//! --features testing --example catalog_latency [ROUNDS]`.

use std::time::{Duration, Instant};

use leakwatch_catalog::testing::TestPostgres;
use leakwatch_catalog::{
    AuditEntry, AuditKey, AuditKeys, Catalog, CatalogLocation, ChainPrefix, NewKey, Role, SubjectKind,
};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn time(f: impl FnOnce()) -> Duration {
    let start = Instant::now();
    f();
    start.elapsed()
}

fn main() {
    let rounds: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(200);
    let server = TestPostgres::start_durable();
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let pg = |options: &str| {
        let url = format!("{}{options}", server.url("postgres", &server.fresh_database()));
        CatalogLocation::Postgres(url)
    };
    let backends = [
        ("SQLite (WAL, synchronous=NORMAL)", CatalogLocation::in_data_dir(tmp.path())),
        ("PostgreSQL (synchronous_commit=on)", pg("")),
        ("PostgreSQL (synchronous_commit=off)", pg("?options=-csynchronous_commit%3Doff")),
    ];
    let keys = AuditKeys::new(vec![AuditKey::from_root(&[7; 32])], ChainPrefix::None);
    let hasher = keys.current().hasher();
    let mut catalogs: Vec<Catalog> =
        backends.iter().map(|(_, l)| Catalog::open_at(l).expect("open")).collect();
    for c in &mut catalogs {
        for i in 0..20 {
            let new = NewKey {
                name: format!("seed{i}"),
                role: Role::Analyst,
                domains: vec![],
                rate_limit_per_minute: None,
            };
            c.create_key(&new).expect("key");
        }
    }
    let ops = [
        "keys_version (poll)",
        "active_keys (20 keys)",
        "append_audit (1)",
        "append_audit (32)",
        "create_key",
        "open",
    ];
    let mut samples = vec![vec![Vec::with_capacity(rounds); backends.len()]; ops.len()];
    for round in 0..rounds {
        for (b, catalog) in catalogs.iter_mut().enumerate() {
            let entry = |i: usize| {
                let subject = hasher.subject(SubjectKind::Account, &format!("u{round}-{i}@example.com"));
                AuditEntry::cli("bench", "search", subject, 1)
            };
            let one = vec![entry(0)];
            let batch: Vec<_> = (0..32).map(entry).collect();
            samples[0][b].push(time(|| {
                catalog.keys_version().expect("poll");
            }));
            samples[1][b].push(time(|| drop(catalog.active_keys().expect("keys"))));
            samples[2][b].push(time(|| catalog.append_audit(&one, &keys).expect("append")));
            samples[3][b].push(time(|| catalog.append_audit(&batch, &keys).expect("append")));
            let new = NewKey {
                name: format!("k{round}"),
                role: Role::Analyst,
                domains: vec![],
                rate_limit_per_minute: None,
            };
            samples[4][b].push(time(|| drop(catalog.create_key(&new).expect("key"))));
            if round % 10 == 0 {
                samples[5][b].push(time(|| drop(Catalog::open_at(&backends[b].1).expect("open"))));
            }
        }
    }
    println!("median latency over {rounds} interleaved rounds (open: every 10th round), microseconds");
    print!("{:<24}", "operation");
    for (name, _) in &backends {
        print!(" {name:>37}");
    }
    println!();
    for (o, op) in ops.iter().enumerate() {
        let medians: Vec<Duration> = samples[o].iter().map(|s| median(s.clone())).collect();
        print!("{op:<24}");
        for m in &medians {
            let ratio = m.as_secs_f64() / medians[0].as_secs_f64();
            print!(" {:>27} ({ratio:>5.1}x)", m.as_micros());
        }
        println!();
    }
    for c in &catalogs {
        let check = c.verify_audit(&keys).expect("verify");
        assert!(check.intact(), "{check:?}");
    }
}
