//! `leakwatch serve`, `apikey` and `audit-log` through the binary: the key is
//! printed alone on the last line, a running server follows ingests and
//! revocations made by other processes, SIGTERM stops it cleanly, and the audit
//! log shows what was searched without the address.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

mod support;
use support::{leakwatch, serve};

fn run(data: &Path, args: &[&str]) -> String {
    let out = leakwatch(data).args(args).output().unwrap();
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn ingest(data: &Path, breach: &str, lines: &str) {
    let file = data.with_extension(format!("{breach}.txt"));
    std::fs::write(&file, lines).unwrap();
    run(data, &["ingest", "--breach", breach, file.to_str().unwrap()]);
}

/// A GET over a fresh connection; returns the status and the body.
fn get(addr: SocketAddr, path: &str, key: Option<&str>) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let key = key.map(|k| format!("hibp-api-key: {k}\r\n")).unwrap_or_default();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: test\r\nUser-Agent: cli-tests\r\n{key}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response[9..12].parse().unwrap();
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (status, body)
}

fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check() {
        assert!(Instant::now() < deadline, "{what} did not happen");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn keys_ingests_revocation_and_sigterm_against_a_running_server() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    ingest(&data, "First", "alice@example.com:password\n");

    let created = run(&data, &["apikey", "create", "--name", "ci", "--role", "analyst"]);
    let secret = created.lines().last().unwrap().to_owned();
    assert!(secret.len() == 67 && secret.starts_with("lw_"), "{created}");
    assert!(secret[3..].bytes().all(|b| b.is_ascii_hexdigit()));
    let listed = run(&data, &["apikey", "list", "--json"]);
    assert!(listed.contains("\"name\":\"ci\"") && !listed.contains(&secret[3..]), "{listed}");

    let (mut server, addr) = serve(&data);
    assert_eq!(
        get(addr, "/api/v3/breachedaccount/alice@example.com", Some(&secret)),
        (200, r#"[{"Name":"First"}]"#.into())
    );
    assert_eq!(get(addr, "/api/v3/breachedaccount/bob@example.com", Some(&secret)).0, 404);
    assert_eq!(get(addr, "/range/5BAA6", None).0, 200);

    // Another process ingests; the running server serves it without a restart.
    ingest(&data, "Second", "bob@example.com:hunter2\n");
    eventually("the new breach being served", || {
        get(addr, "/api/v3/breachedaccount/bob@example.com", Some(&secret)).0 == 200
    });

    run(&data, &["apikey", "revoke", "ci"]);
    eventually("the revoked key being refused", || {
        get(addr, "/api/v3/breachedaccount/bob@example.com", Some(&secret)).0 == 401
    });

    let pid = server.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = server.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "serve did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status}");

    let log = run(&data, &["audit-log", "--json"]);
    let rows: Vec<serde_json::Value> = log.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(rows.len() >= 3, "{log}");
    // The searches, then the revoked key's refusals (401s are audited too).
    let (searches, refused): (Vec<_>, Vec<_>) = rows.iter().partition(|r| r["status"] != 401);
    assert!(searches.iter().all(|r| r["key_name"] == "ci" && r["endpoint"] == "breachedaccount"));
    assert!(!refused.is_empty() && refused.iter().all(|r| r["key_name"] == "(wrong key)"), "{log}");
    assert!(!log.contains("alice@") && !log.contains("bob@") && !log.contains(&secret[3..]), "{log}");
    assert_eq!(rows[0]["status"], 200);
    let alice = run(&data, &["audit-log", "--json", "--account", "Alice@Example.com"]);
    assert_eq!(alice.lines().count(), 1, "{alice}");

    // The audit key rotates on its own; the chain records the switch, every
    // row still checks, and searches hashed under the old key are still found.
    let ring = std::fs::read_to_string(data.with_extension("key")).unwrap();
    run(&data, &["audit-log", "verify"]);
    let rotated: serde_json::Value =
        serde_json::from_str(&run(&data, &["rekey", "--audit", "--json"])).unwrap();
    assert_ne!(rotated["old_audit_key"], rotated["new_audit_key"]);
    let after: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(data.with_extension("key")).unwrap()).unwrap();
    let before: serde_json::Value = serde_json::from_str(&ring).unwrap();
    assert_eq!((&after["keys"], &after["index"]), (&before["keys"], &before["index"]), "only the audit key");
    let verified: serde_json::Value =
        serde_json::from_str(&run(&data, &["audit-log", "verify", "--json"])).unwrap();
    assert_eq!(verified["key_switches"], 1, "{verified}");
    assert_eq!(verified["rows"], rows.len() + 1);
    let switch = run(&data, &["audit-log", "--json", "--last", "1"]);
    assert!(
        switch.contains("\"endpoint\":\"cli rekey --audit\"") && switch.contains("audit-key"),
        "{switch}"
    );
    let alice = run(&data, &["audit-log", "--json", "--account", "Alice@Example.com"]);
    assert_eq!(alice.lines().count(), 1, "{alice}");

    // Someone with the catalog file and no key slips in an unchained row.
    let plain = rusqlite::Connection::open(data.join("catalog.sqlite")).unwrap();
    plain
        .execute_batch(
            "DROP TRIGGER audit_log_chained_insert;
             INSERT INTO audit_log (id, at, key_id, key_name, endpoint, subject_kind, subject, subject_hash,
                 results, status, chain)
             VALUES (-1, '2020-01-01T00:00:00.000Z', 1, 'ci', 'breachedaccount', 'account', NULL,
                 'éé', 0, 404, NULL)",
        )
        .unwrap();
    let out = leakwatch(&data).args(["audit-log", "verify"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("row -1") && stderr.lines().count() == 1, "{stderr}");
    // Listing such a row still works (no panic on a hash that is no hash).
    assert!(run(&data, &["audit-log"]).contains("account #éé"));
}
