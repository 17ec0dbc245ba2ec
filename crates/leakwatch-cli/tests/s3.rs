//! `--data s3://BUCKET/PREFIX` end to end, against a three-node Garage cluster
//! the test starts (replication factor 3) and stops after: generated dumps
//! ingested into the bucket answer every search and every `/range` byte for
//! byte as a local data directory of the same input does; with one node
//! stopped, every query is still answered and ingest still works.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;

use leakwatch_gen::{BreachFiles, Scenario};
use leakwatch_objstore::garage::{Cluster, BUCKET};

mod support;

use support::{run, Target};

const SEED: u64 = 20261207;

impl Target {
    fn ingest(&self, breach: &BreachFiles) {
        let mut args: Vec<String> = vec!["ingest".into(), "--breach".into(), breach.name.clone()];
        args.extend([
            "--title".into(),
            breach.title.clone(),
            "--breach-date".into(),
            breach.breach_date.clone(),
        ]);
        if !breach.domain.is_empty() {
            args.extend(["--domain".into(), breach.domain.clone()]);
        }
        args.extend(breach.files.iter().map(|f| f.display().to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.run(&args, None).ok(&format!("ingest {} into {}", breach.name, self.data));
    }
}

/// The body of `GET path` (status 200 required).
fn get(addr: SocketAddr, path: &str) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: x\r\nUser-Agent: t\r\nConnection: close\r\n\r\n").unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let split = response.windows(4).position(|w| w == b"\r\n\r\n").expect("a response head") + 4;
    let head = String::from_utf8_lossy(&response[..split]).into_owned();
    assert!(head.starts_with("HTTP/1.1 200"), "GET {path}: {head}");
    let body = response[split..].to_vec();
    if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        return dechunk(&body);
    }
    body
}

fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = body.windows(2).position(|w| w == b"\r\n").unwrap();
        let size = usize::from_str_radix(std::str::from_utf8(&body[..line_end]).unwrap().trim(), 16).unwrap();
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&body[line_end + 2..line_end + 2 + size]);
        body = &body[line_end + 4 + size..];
    }
}

/// What the CLI answers for the scenario's addresses, domains and passwords,
/// as printed.
fn searches(target: &Target, emails: &str, hashes: &str, domains: &[String]) -> Vec<String> {
    let mut out = vec![
        target.run(&["search", "email", "--json", "-"], Some(emails.as_bytes())).stdout,
        target.run(&["search", "password", "--hash", "sha1", "--json", "-"], Some(hashes.as_bytes())).stdout,
        // Names and counts: `breaches --json` also dates each ingest.
        target.run(&["breaches"], None).ok("breaches").stdout,
    ];
    for domain in domains {
        out.push(target.run(&["search", "domain", "--json", domain], None).stdout);
    }
    out
}

/// `/range` bodies of 64 prefixes spread over the space, SHA-1 and NTLM.
fn ranges(addr: SocketAddr) -> Vec<Vec<u8>> {
    (0..64u32)
        .flat_map(|i| {
            let prefix = format!("{:05X}", i.wrapping_mul(0x3_F0F1) & 0xF_FFFF);
            [get(addr, &format!("/range/{prefix}")), get(addr, &format!("/range/{prefix}?mode=ntlm"))]
        })
        .collect()
}

#[test]
fn a_store_in_garage_answers_as_a_local_one_and_survives_a_node_down() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let mut cluster = Cluster::start(&root.join("garage")).unwrap_or_else(|e| panic!("{e}"));
    let scenario = Scenario::small(SEED);
    let breaches = scenario.write_all(&root.join("dumps")).expect("dumps written");
    let exp = scenario.expected();

    let local = Target {
        data: root.join("local").display().to_string(),
        key: root.join("local.key"),
        catalog: root.join("local-catalog.sqlite").display().to_string(),
        cache: None,
        env: Vec::new(),
    };
    let nodes: Vec<_> = (0..3).map(|n| cluster.env(n)).collect();
    let remote = |cache: &str, node: usize| Target {
        data: format!("s3://{BUCKET}/e2e"),
        key: root.join("s3.key"),
        catalog: root.join("s3-catalog.sqlite").display().to_string(),
        cache: Some(root.join(cache)),
        env: nodes[node].clone(),
    };

    // The data key and the catalog must be named; the key never goes to the bucket.
    let mut bare = Command::new(env!("CARGO_BIN_EXE_leakwatch"));
    bare.args(["--data", &format!("s3://{BUCKET}/e2e"), "stats"]).env_remove("LEAKWATCH_KEY_FILE");
    for (name, value) in cluster.env(0) {
        bare.env(name, value);
    }
    let refused = run(bare, None);
    assert_eq!(refused.code, 2);
    assert!(refused.stderr.contains("LEAKWATCH_KEY_FILE"), "{}", refused.stderr);
    let mut bare = Command::new(env!("CARGO_BIN_EXE_leakwatch"));
    bare.args(["--data", &format!("s3://{BUCKET}/e2e"), "apikey", "list"])
        .env("LEAKWATCH_KEY_FILE", root.join("s3.key"))
        .env_remove("LEAKWATCH_CATALOG");
    for (name, value) in cluster.env(0) {
        bare.env(name, value);
    }
    let refused = run(bare, None);
    assert_eq!(refused.code, 2);
    assert!(refused.stderr.contains("--catalog PATH"), "{}", refused.stderr);
    // Before any ingest the bucket holds no store: an error, not an empty answer.
    let empty = remote("cache-a", 0).run(&["search", "email", "nobody@example.com"], None);
    assert_eq!(empty.code, 2, "{}", empty.stderr);
    assert!(empty.stderr.contains("s3://leakwatch/e2e holds no leakwatch store"), "{}", empty.stderr);

    for breach in &breaches {
        local.ingest(breach);
        remote("cache-a", 0).ingest(breach);
    }
    let objects: Vec<_> = std::fs::read_dir(root.join("cache-a").join("segments")).unwrap().collect();
    assert!(!objects.is_empty(), "the writer's segments are in its cache");

    let mut emails = String::new();
    for email in exp.emails.keys().chain(&exp.absent_emails) {
        emails.push_str(email);
        emails.push('\n');
    }
    let mut hashes: String = exp.sha1.keys().map(|h| format!("{h}\n")).collect();
    hashes.push_str("0000000000000000000000000000000000000000\n");
    let domains: Vec<String> = exp.domains.keys().cloned().collect();

    // Errors name the bucket, never the local cache where its scratch is.
    let cache_a = root.join("cache-a").display().to_string();
    for (args, says) in [
        (&["breach", "remove", "NoSuchBreach"][..], "no breach named \"NoSuchBreach\" in s3://leakwatch/e2e"),
        (&["breach", "set", "NoSuchBreach", "--title", "T"][..], "in s3://leakwatch/e2e"),
    ] {
        let failed = remote("cache-a", 0).run(args, None);
        assert_eq!(failed.code, 2, "{args:?}: {}", failed.stderr);
        assert!(failed.stderr.contains(says), "{args:?} names the bucket: {}", failed.stderr);
        assert!(!failed.stderr.contains(&cache_a), "{args:?} names no cache path: {}", failed.stderr);
    }

    let want = searches(&local, &emails, &hashes, &domains);
    // Another machine, its cache empty: every answer read from the bucket.
    assert_eq!(searches(&remote("cache-b", 0), &emails, &hashes, &domains), want, "searches, cold cache");
    assert_eq!(searches(&remote("cache-b", 0), &emails, &hashes, &domains), want, "searches, warm cache");

    let (mut local_server, local_addr) = local.serve();
    let want_ranges = ranges(local_addr);
    let (mut s3_server, s3_addr) = remote("cache-c", 0).serve();
    assert!(ranges(s3_addr) == want_ranges, "/range bodies differ from the local store's");
    let _ = s3_server.kill();
    let _ = s3_server.wait();

    // One node of three down: quorum reads and writes go on.
    cluster.stop_node(2);
    assert_eq!(searches(&remote("cache-d", 0), &emails, &hashes, &domains), want, "searches, a node down");
    let (mut s3_server, s3_addr) = remote("cache-e", 1).serve();
    assert!(ranges(s3_addr) == want_ranges, "/range bodies with a node down");
    let _ = s3_server.kill();
    let _ = s3_server.wait();
    // Ingest again into a breach from a machine whose cache is empty: the
    // stored segments it checks for what is new come from the two nodes up.
    let again = &breaches[0];
    let mut args = vec!["ingest", "--breach", again.name.as_str()];
    let files: Vec<String> = again.files.iter().map(|f| f.display().to_string()).collect();
    args.extend(files.iter().map(String::as_str));
    remote("cache-g", 1).run(&args, None).ok("ingest again with a node down");
    assert_eq!(searches(&remote("cache-g", 1), &emails, &hashes, &domains), want, "nothing new, a node down");
    let extra = root.join("extra.txt");
    std::fs::write(&extra, "late.comer@example-corp.com:correct horse\n").unwrap();
    remote("cache-a", 0)
        .run(&["ingest", "--breach", "LateBreach", extra.to_str().unwrap()], None)
        .ok("ingest with a node down");
    let found = remote("cache-f", 1).run(&["search", "email", "--json", "late.comer@example-corp.com"], None);
    assert!(found.ok("search after").stdout.contains("LateBreach"));
    let _ = local_server.kill();
    let _ = local_server.wait();
    drop(cluster);
}
