//! A catalog in PostgreSQL through the binary (`--catalog postgres://...` and
//! `LEAKWATCH_CATALOG`): keys made by the CLI authenticate at two servers
//! sharing the catalog, a revocation reaches both, their searches land in one
//! audit log whose chain verifies, a browser signed in at one is signed in at
//! the other, and the data directory holds no catalog file. The test starts its own PostgreSQL (leakwatch_catalog::testing) and
//! fails without it.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use leakwatch_catalog::testing::TestPostgres;

mod support;
use support::{http, leakwatch, sign_in};

/// The binary with the catalog named by the environment, as a service unit
/// would set it.
fn with_catalog(data: &Path, url: &str) -> Command {
    let mut cmd = leakwatch(data);
    cmd.env("LEAKWATCH_CATALOG", url);
    cmd
}

fn run(mut cmd: Command, args: &[&str]) -> String {
    let out = cmd.args(args).output().unwrap();
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn serve(data: &Path, url: &str) -> (Child, SocketAddr) {
    support::serve_command(with_catalog(data, url))
}

fn get(addr: SocketAddr, path: &str, key: &str) -> u16 {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: test\r\nUser-Agent: cli-tests\r\nhibp-api-key: {key}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response[9..12].parse().unwrap()
}

/// The status of the web search page for a browser holding `cookie`: 200
/// signed in, 303 (to the sign-in) otherwise.
fn search_page(addr: SocketAddr, cookie: &str) -> u16 {
    http(
        addr,
        &format!("GET /ui/search HTTP/1.1\r\nHost: test\r\nUser-Agent: cli-tests\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n"),
    )
    .0
}

fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check() {
        assert!(Instant::now() < deadline, "{what} did not happen");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn stop(mut server: Child) {
    let pid = server.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = server.try_wait().unwrap() {
            assert!(status.success(), "{status}");
            return;
        }
        assert!(Instant::now() < deadline, "serve did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn keys_in_postgres_authenticate_at_two_servers_and_their_searches_chain_in_one_audit_log() {
    let pg = TestPostgres::shared();
    let database = pg.fresh_database();
    let url = pg.url("postgres", &database);
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let dump = tmp.path().join("first.txt");
    std::fs::write(&dump, "alice@example.com:password\nbob@example.com:hunter2\n").unwrap();
    run(with_catalog(&data, &url), &["ingest", "--breach", "First", dump.to_str().unwrap()]);

    // The flag, this time: it names the same catalog as the environment.
    let created =
        run(leakwatch(&data), &["--catalog", &url, "apikey", "create", "--name", "ci", "--role", "analyst"]);
    let secret = created.lines().last().unwrap().to_owned();
    assert!(secret.starts_with("lw_"), "{created}");

    let (a, addr_a) = serve(&data, &url);
    let (b, addr_b) = serve(&data, &url);
    for addr in [addr_a, addr_b] {
        assert_eq!(get(addr, "/api/v3/breachedaccount/alice@example.com", &secret), 200);
        assert_eq!(get(addr, "/api/v3/breachedaccount/carol@example.com", &secret), 404);
    }
    // A browser signed in at one server is signed in at the other.
    let (status, session) = sign_in(addr_a, &secret);
    assert_eq!(status, 303, "sign-in refused");
    let session = session.expect("a session cookie");
    assert_eq!(search_page(addr_a, &session), 200);
    assert_eq!(search_page(addr_b, &session), 200, "the other server does not know the session");
    assert_eq!(search_page(addr_b, "lw_session=00"), 303);
    let stored = pg.psql(&database, "SELECT count(*) FROM web_sessions");
    assert_eq!(stored.trim(), "1");

    run(with_catalog(&data, &url), &["apikey", "revoke", "ci"]);
    for addr in [addr_a, addr_b] {
        eventually("the revoked key being refused", || {
            get(addr, "/api/v3/breachedaccount/bob@example.com", &secret) == 401
        });
    }
    assert_eq!(search_page(addr_b, &session), 303, "a revoked key's sessions end with it");
    stop(a);
    stop(b);

    let log = run(with_catalog(&data, &url), &["audit-log", "--json"]);
    let rows: Vec<serde_json::Value> = log.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let searches: Vec<_> =
        rows.iter().filter(|r| r["key_name"] == "ci" && r["endpoint"] == "breachedaccount").collect();
    // Two searches at each server, and those made before the revocation
    // reached it.
    assert!(searches.len() >= 4, "{log}");
    assert!(!log.contains("alice@") && !log.contains(&secret[3..]), "{log}");
    let alice = run(with_catalog(&data, &url), &["audit-log", "--json", "--account", "alice@example.com"]);
    assert_eq!(alice.lines().count(), 2, "{alice}");
    let verified: serde_json::Value =
        serde_json::from_str(&run(with_catalog(&data, &url), &["audit-log", "verify", "--json"])).unwrap();
    assert_eq!(verified["rows"], rows.len(), "{verified}");
    assert_eq!(verified["broken"], serde_json::Value::Null, "{verified}");

    // Everything went to PostgreSQL: the tables hold it, the directory does not.
    assert_eq!(pg.psql(&database, "SELECT count(*) FROM audit_log").trim(), rows.len().to_string());
    assert_eq!(pg.psql(&database, "SELECT breach || ' ' || status FROM ingests").trim(), "First done");
    assert!(!data.join("catalog.sqlite").exists(), "a catalog file was made beside the index");

    // The same commands without the catalog see the directory's own (empty) one.
    let own = run(leakwatch(&data), &["apikey", "list", "--json"]);
    assert!(!own.contains("\"ci\""), "{own}");
}

#[test]
fn an_unreachable_catalog_is_an_error_that_does_not_show_the_password() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let dump = tmp.path().join("d.txt");
    std::fs::write(&dump, "alice@example.com:password\n").unwrap();
    run(leakwatch(&data), &["ingest", "--breach", "First", dump.to_str().unwrap()]);
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("postgres://lw:sekrit@127.0.0.1:{port}/leakwatch");
    let out = leakwatch(&data).args(["--catalog", &url, "apikey", "list"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("postgres://lw:***@127.0.0.1") && !stderr.contains("sekrit"), "{stderr}");
}
