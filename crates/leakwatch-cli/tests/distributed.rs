//! `leakwatch ingest --distributed` and `leakwatch worker` end to end, against
//! a three-node Garage cluster and a PostgreSQL catalog the test starts:
//! generated dumps (every kind of noise, and a combo list that repeats half
//! its lines) split into three partitions for three workers answer every
//! search, `stats` and `/range` byte for byte as a local ingest of the same
//! inputs (`stats` but for how many segments and bytes hold the entries);
//! the reports match; a worker killed mid-job has its job taken over and
//! nothing is lost; an ingest killed while its jobs wait leaves the store
//! answering as before, and the next writer removes what it left.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, ChildStderr, Stdio};
use std::time::{Duration, Instant};

use leakwatch_catalog::testing::TestPostgres;
use leakwatch_gen::{BreachFiles, Scenario};
use leakwatch_objstore::garage::{Cluster, BUCKET};
use leakwatch_objstore::{ObjectStorage, Options, S3Url};

mod support;

use support::{run, Target};

const SEED: u64 = 20261208;

impl Target {
    /// `ingest` of `breach` with `extra` arguments; the report as JSON.
    fn ingest(&self, breach: &BreachFiles, extra: &[&str]) -> serde_json::Value {
        let run = self
            .run(&ingest_args(breach, extra), None)
            .ok(&format!("ingest {} into {}", breach.name, self.data));
        serde_json::from_str(&run.stdout).unwrap()
    }

    /// A `leakwatch worker` in the background, its stderr piped.
    fn worker(&self, extra: &[&str]) -> Child {
        let mut args = vec!["worker", "--poll", "100ms"];
        args.extend_from_slice(extra);
        let mut cmd = self.command(&args);
        cmd.stdout(Stdio::null()).stderr(Stdio::piped());
        cmd.spawn().expect("a worker starts")
    }
}

fn ingest_args<'a>(breach: &'a BreachFiles, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["ingest", "--json", "--breach", &breach.name, "--title", &breach.title];
    args.extend(["--breach-date", &breach.breach_date]);
    if !breach.domain.is_empty() {
        args.extend(["--domain", &breach.domain]);
    }
    args.extend_from_slice(extra);
    args.extend(breach.files.iter().map(|f| f.to_str().unwrap()));
    args
}

/// Lines of a worker's stderr, read on a thread of their own.
fn lines_of(stderr: ChildStderr) -> std::sync::mpsc::Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

/// Stops a background process the test started.
fn kill(mut child: Child) {
    let _ = child.kill();
    let _ = child.wait();
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
    assert!(!head.to_ascii_lowercase().contains("transfer-encoding: chunked"), "{head}");
    response[split..].to_vec()
}

/// What the CLI answers for the scenario's addresses, domains, passwords and
/// stealer-log websites, and `stats` and `breaches`, as printed.
fn answers(target: &Target, emails: &str, hashes: &str, domains: &[String]) -> Vec<String> {
    let mut out = vec![
        target.run(&["search", "email", "--json", "-"], Some(emails.as_bytes())).stdout,
        target.run(&["search", "password", "--hash", "sha1", "--json", "-"], Some(hashes.as_bytes())).stdout,
        target.run(&["breaches"], None).ok("breaches").stdout,
        stats(target),
    ];
    for domain in domains {
        out.push(target.run(&["search", "domain", "--json", domain], None).stdout);
    }
    out
}

/// `stats --json` without what depends on how the entries are cut into
/// segments: their number and bytes, the stealer-log website entries, which
/// pack the addresses each batch of records holds (readers take each address
/// once, however packed), and the generation (merging more segments
/// publishes more generations).
fn stats(target: &Target) -> String {
    let out = target.run(&["stats", "--json"], None).ok("stats").stdout;
    let mut stats: serde_json::Value = serde_json::from_str(&out).unwrap();
    let top = stats.as_object_mut().unwrap();
    top.remove("corpus_bytes");
    top.remove("generation");
    top.remove("bytes_per_sha1");
    for (kind, counts) in top["kinds"].as_object_mut().unwrap() {
        let counts = counts.as_object_mut().unwrap();
        counts.remove("segments");
        counts.remove("bytes");
        if kind == "stealer" {
            counts.remove("entries");
        }
    }
    serde_json::to_string_pretty(&stats).unwrap()
}

/// Asserts that two sets of answers are the same, naming the first line
/// that differs.
#[track_caller]
fn assert_same(got: &[String], want: &[String], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        if g != w {
            let line = g.lines().zip(w.lines()).find(|(a, b)| a != b);
            panic!(
                "{what}: answer {i} differs: {line:?} ({} lines against {})",
                g.lines().count(),
                w.lines().count()
            );
        }
    }
}

/// `/range` bodies of 64 prefixes spread over the space, SHA-1 and NTLM.
fn ranges(target: &Target) -> Vec<Vec<u8>> {
    let (server, addr) = support::serve_command(target.command(&[]));
    let bodies = (0..64u32)
        .flat_map(|i| {
            let prefix = format!("{:05X}", i.wrapping_mul(0x3_F0F1) & 0xF_FFFF);
            [get(addr, &format!("/range/{prefix}")), get(addr, &format!("/range/{prefix}?mode=ntlm"))]
        })
        .collect();
    kill(server);
    bodies
}

/// The reports of an ingest, without what depends on when it ran.
fn report_files(report: &serde_json::Value) -> serde_json::Value {
    serde_json::json!({
        "files": report["files"],
        "new_accounts": report["new_accounts"],
        "new_credentials": report["new_credentials"],
        "pwn_count": report["breach"]["PwnCount"],
        "data_classes": report["breach"]["DataClasses"],
    })
}

/// The names in the bucket's shared area (`PREFIX/ingest/`).
fn shared_area(cluster: &Cluster, prefix: &str, cache: &Path) -> Vec<String> {
    let url = S3Url::parse(&format!("s3://{BUCKET}/{prefix}")).unwrap().unwrap();
    let options = Options { cache_dir: cache.to_owned(), cache_size: 1 << 30, lease: Default::default() };
    let storage = ObjectStorage::open(&url, &cluster.config(0), options).unwrap();
    use leakwatch_store::storage::Storage;
    storage.blobs().unwrap().list("").unwrap()
}

/// A combo list of the scenario's plain combo lines (ASCII, emails), its
/// first half again at its end: duplicates far apart in the input.
fn split_combo(breaches: &[BreachFiles], dir: &Path) -> BreachFiles {
    let mut lines = Vec::new();
    for file in breaches.iter().flat_map(|b| &b.files) {
        let name = file.file_name().unwrap().to_string_lossy();
        if name == "combo_part1.txt" || name == "combo_part3.txt" {
            let text = std::fs::read(file).unwrap();
            lines.extend(
                text.split(|&b| b == b'\n')
                    .filter(|l| !l.is_empty() && l.is_ascii())
                    .map(|l| String::from_utf8(l.to_vec()).unwrap()),
            );
        }
    }
    assert!(lines.len() > 200, "{} combo lines", lines.len());
    let half = lines.len() / 2;
    let again: Vec<String> = lines[..half].to_vec();
    lines.extend(again);
    let path = dir.join("split.txt");
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    BreachFiles {
        name: "SplitCombo".into(),
        title: "Split combo".into(),
        domain: String::new(),
        breach_date: "2026-01-02".into(),
        files: vec![path],
    }
}

#[test]
fn distributed_ingest_answers_as_a_local_one_and_survives_killed_workers_and_ingests() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let cluster = Cluster::start(&root.join("garage")).unwrap_or_else(|e| panic!("{e}"));
    let pg = TestPostgres::shared();
    let database = pg.fresh_database();
    let scenario = Scenario::small(SEED);
    let mut breaches = scenario.write_all(&root.join("dumps")).expect("dumps written");
    breaches.push(split_combo(&breaches, &root.join("dumps")));
    let exp = scenario.expected();

    let local = Target {
        data: root.join("local").display().to_string(),
        key: root.join("local.key"),
        catalog: root.join("local-catalog.sqlite").display().to_string(),
        cache: None,
        env: Vec::new(),
    };
    let remote = |prefix: &str, cache: &str, node: usize| Target {
        data: format!("s3://{BUCKET}/{prefix}"),
        key: root.join("s3.key"),
        catalog: pg.url("postgres", &database),
        cache: Some(root.join(cache)),
        env: cluster.env(node),
    };

    // Three workers on three "machines" (caches, nodes), one ingest, three
    // partitions.
    let workers: Vec<Child> = (0..3).map(|n| remote("d", &format!("worker-{n}"), n).worker(&[])).collect();
    let mut local_reports = Vec::new();
    let mut distributed_reports = Vec::new();
    // The last input is read from the bucket (an `s3://` URL), unstaged.
    let split = breaches.last().unwrap().files[0].clone();
    let split_url = format!("s3://{BUCKET}/dumps/split.txt");
    leakwatch_objstore::put_object(&split, &split_url, &cluster.config(1)).unwrap();
    for (n, breach) in breaches.iter().enumerate() {
        local_reports.push(report_files(&local.ingest(breach, &[])));
        let mut given = breach.clone();
        if n == breaches.len() - 1 {
            given.files = vec![split_url.clone().into()];
        }
        let report = remote("d", "ingest", 0).ingest(&given, &["--distributed", "--partitions", "3"]);
        let shown = report.to_string().replace(&split_url, split.to_str().unwrap());
        distributed_reports.push(report_files(&serde_json::from_str(&shown).unwrap()));
    }
    for w in workers {
        kill(w);
    }
    assert_eq!(distributed_reports, local_reports, "ingest reports");
    let split_report = distributed_reports.last().unwrap();
    assert!(
        split_report["files"][0]["rejected"].as_object().is_some_and(|r| !r.is_empty()),
        "{split_report}"
    );

    let mut emails = String::new();
    for email in exp.emails.keys().chain(&exp.absent_emails) {
        emails.push_str(email);
        emails.push('\n');
    }
    let mut hashes: String = exp.sha1.keys().map(|h| format!("{h}\n")).collect();
    hashes.push_str("0000000000000000000000000000000000000000\n");
    let domains: Vec<String> = exp.domains.keys().cloned().collect();
    let want = answers(&local, &emails, &hashes, &domains);
    assert_same(&answers(&remote("d", "reader", 1), &emails, &hashes, &domains), &want, "answers");
    assert!(
        ranges(&remote("d", "reader", 1)) == ranges(&local),
        "/range bodies differ from the local store's"
    );
    assert_eq!(
        shared_area(&cluster, "d", &root.join("probe")),
        Vec::<String>::new(),
        "staged inputs removed"
    );
    assert_eq!(pg.psql(&database, "SELECT count(*) FROM ingest_jobs").trim(), "0");

    // A worker killed mid-job: its job is taken over once its lease runs out.
    let first = &breaches[0];
    let mut doomed = remote("k", "doomed", 0).worker(&["--lease", "2s"]);
    let doomed_lines = lines_of(doomed.stderr.take().unwrap());
    let ingest = remote("k", "ingest-k", 0).command(&ingest_args(first, &["--distributed"]));
    let ingest = std::thread::spawn(move || run(ingest, None));
    let deadline = Instant::now() + Duration::from_secs(120);
    let taken = loop {
        let line = doomed_lines.recv_timeout(deadline - Instant::now()).expect("the worker takes a job");
        if line.contains(" taken ") {
            break line;
        }
    };
    doomed.kill().unwrap();
    doomed.wait().unwrap();
    let rows = pg.psql(&database, "SELECT state FROM ingest_jobs WHERE attempts = 1 AND state <> 'queued'");
    assert_eq!(rows.trim(), "running", "killed mid-job ({taken})");
    let mut rescuer = remote("k", "rescuer", 1).worker(&[]);
    let rescuer_lines = lines_of(rescuer.stderr.take().unwrap());
    let report = ingest.join().unwrap().ok("ingest with a worker killed");
    kill(rescuer);
    let rescued: Vec<String> = rescuer_lines.iter().collect();
    assert!(rescued.iter().any(|l| l.contains("(attempt 2)")), "taken over: {rescued:?}");
    let report: serde_json::Value = serde_json::from_str(&report.stdout).unwrap();
    assert_eq!(report_files(&report), local_reports[0], "nothing lost");
    // A local ingest of an input in the bucket: as of the file, reported by
    // its URL.
    let from_url = Target {
        data: root.join("local-url").display().to_string(),
        key: root.join("local.key"),
        catalog: root.join("local-url-catalog.sqlite").display().to_string(),
        cache: None,
        env: cluster.env(2),
    };
    let mut given = breaches.last().unwrap().clone();
    given.files = vec![split_url.clone().into()];
    let report = from_url.ingest(&given, &[]);
    assert_eq!(report["files"][0]["path"], split_url.as_str(), "{report}");
    let shown = report.to_string().replace(&split_url, split.to_str().unwrap());
    assert_eq!(report_files(&serde_json::from_str(&shown).unwrap()), *local_reports.last().unwrap());
    // A compressed object is fetched whole first (its reader needs a file),
    // then removed; a plain one is read as it comes.
    let packed = root.join("split.txt.zst");
    std::fs::write(&packed, zstd::encode_all(&std::fs::read(&split).unwrap()[..], 3).unwrap()).unwrap();
    let packed_url = format!("s3://{BUCKET}/dumps/split.txt.zst");
    leakwatch_objstore::put_object(&packed, &packed_url, &cluster.config(1)).unwrap();
    let from_packed = Target {
        data: root.join("local-url-zst").display().to_string(),
        key: root.join("local.key"),
        catalog: root.join("local-url-zst-catalog.sqlite").display().to_string(),
        cache: None,
        env: cluster.env(2),
    };
    given.files = vec![packed_url.clone().into()];
    let report = from_packed.ingest(&given, &[]);
    assert_eq!(report["files"][0]["path"], packed_url.as_str(), "{report}");
    let shown = report.to_string().replace(&packed_url, split.to_str().unwrap());
    assert_eq!(report_files(&serde_json::from_str(&shown).unwrap()), *local_reports.last().unwrap());
    for data in ["local-url", "local-url-zst"] {
        assert!(
            std::fs::read_dir(root.join(data))
                .unwrap()
                .flatten()
                .all(|e| !e.file_name().to_string_lossy().starts_with("tmp-fetched")),
            "the fetched copy is removed"
        );
    }
    let one = Target {
        data: root.join("local-one").display().to_string(),
        key: root.join("local.key"),
        catalog: root.join("local-one-catalog.sqlite").display().to_string(),
        cache: None,
        env: Vec::new(),
    };
    one.ingest(first, &[]);
    assert_same(
        &answers(&remote("k", "reader-k", 2), &emails, &hashes, &domains),
        &answers(&one, &emails, &hashes, &domains),
        "answers after a takeover",
    );

    // An ingest killed while its jobs wait (no worker runs): the store answers
    // as before; the next writer removes its staged inputs.
    let before = answers(&remote("k", "reader-k2", 1), &emails, &hashes, &domains);
    let mut doomed = remote("k", "ingest-k2", 0)
        .command(&ingest_args(&breaches[1], &["--distributed", "--ingest-lease", "3s"]));
    let mut doomed = doomed.stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    // Its jobs are queued first, then its inputs staged while workers could
    // read them: killed once both have begun.
    while pg.psql(&database, "SELECT count(*) FROM ingest_jobs").trim() == "0" {
        assert!(Instant::now() < deadline, "the ingest queues its jobs");
        std::thread::sleep(Duration::from_millis(50));
    }
    while shared_area(&cluster, "k", &root.join("probe")).is_empty() {
        assert!(Instant::now() < deadline, "the ingest stages its inputs");
        std::thread::sleep(Duration::from_millis(50));
    }
    doomed.kill().unwrap();
    doomed.wait().unwrap();
    assert_same(&answers(&remote("k", "reader-k3", 2), &emails, &hashes, &domains), &before, "as before");
    // Once the dead ingest's lease has run out, a worker starts none of its jobs.
    std::thread::sleep(Duration::from_secs(4));
    let idle = remote("k", "idle", 2).worker(&["--exit-when-idle", "1s"]);
    let idle = idle.wait_with_output().unwrap();
    assert!(
        !String::from_utf8_lossy(&idle.stderr).contains(" taken "),
        "{}",
        String::from_utf8_lossy(&idle.stderr)
    );
    // The next writer waits out the dead one's lease on the store, then removes
    // what it left.
    let extra = root.join("extra.txt");
    std::fs::write(&extra, "late.comer@example-corp.com:correct horse\n").unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let next =
            remote("k", "ingest-k3", 0).run(&["ingest", "--breach", "Late", extra.to_str().unwrap()], None);
        if next.code == 0 {
            break;
        }
        assert!(next.stderr.contains("another leakwatch process is writing"), "{}", next.stderr);
        assert!(Instant::now() < deadline, "the dead ingest's lease runs out");
        std::thread::sleep(Duration::from_secs(2));
    }
    assert_eq!(shared_area(&cluster, "k", &root.join("probe")), Vec::<String>::new(), "orphans removed");
    drop(cluster);
}
