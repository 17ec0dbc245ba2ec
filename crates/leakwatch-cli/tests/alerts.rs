//! `leakwatch org alert` end to end, against receivers the tests start
//! themselves: a local HTTP receiver that checks each delivery's signature and
//! records it, and a real SMTP server (Python's aiosmtpd). The new exposures
//! of an ingest arrive once, signed, with a delivery id that stays the same
//! across retries, a receiver that was down, a `serve` killed mid-delivery, and
//! an ingest whose own monitor step never ran; two servers on one PostgreSQL
//! catalog deliver each batch once, and the survivor takes over from a killed
//! one.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use leakwatch_catalog::testing::TestPostgres;
use serde_json::Value;

mod support;

use support::{run, Env, Run};

const SECRET: &str = "whsec-0123456789abcdef";

impl Env {
    /// A store with one breach holding alice@corp.example (the baseline), and
    /// organization acme for corp.example.
    fn with_org(&self) {
        let old = self.file("old.txt", "alice@corp.example:Summer2024\nmallory@other.example:pw\n");
        self.run(&["ingest", "--breach", "Old", "--breach-date", "2019-05-01", &old]).ok("ingest Old");
        self.run(&["org", "add", "acme", "--domain", "corp.example"]).ok("org add");
    }

    fn webhook(&self, port: u16) {
        let url = format!("http://127.0.0.1:{port}/hook");
        let out = self.run(&["org", "alert", "acme", "--webhook", &url, "--secret", SECRET]).ok("org alert");
        assert!(
            out.stdout.contains("1 exposure it is exposed by now recorded as the baseline"),
            "{}",
            out.stdout
        );
        assert!(!out.stdout.contains(SECRET) && !out.stderr.contains(SECRET));
    }

    /// A dump of new exposures for acme: alice in a new breach, carol, and
    /// someone of another domain.
    fn ingest_new(&self, env: &[(&str, &str)]) -> Run {
        let new = self.file(
            "new.txt",
            "alice@corp.example:Autumn2025\ncarol@corp.example:carolpw\nzed@other.example:zedpw\n",
        );
        let mut cmd = self.command();
        cmd.args(["ingest", "--breach", "New", "--breach-date", "2025-10-01", &new]);
        for (k, v) in env {
            cmd.env(k, v);
        }
        run(cmd, None).ok("ingest New")
    }

    /// `serve` with fast retries; its log is kept.
    fn serve(&self) -> Serve {
        self.serve_with(&[])
    }

    /// [`Env::serve`] with more arguments.
    fn serve_with(&self, args: &[&str]) -> Serve {
        let mut child = self
            .command()
            .args(["serve", "--listen", "127.0.0.1:0", "--threads", "1"])
            .args(["--alert-retry-base", "100ms", "--alert-retry-cap", "400ms"])
            .args(args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        loop {
            let line = lines.next().expect("serve logs its address").unwrap();
            log.lock().unwrap().push_str(&line);
            if line.contains("listening on http://") {
                break;
            }
        }
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        Serve { child, log }
    }

    fn outbox(&self) -> Vec<Value> {
        let out = self.run(&["org", "alert", "acme", "--list", "--json"]).ok("org alert --list");
        out.json_lines()[0]["recent"].as_array().unwrap().clone()
    }
}

struct Serve {
    child: Child,
    log: Arc<Mutex<String>>,
}

impl Serve {
    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// SIGKILL: no chance to finish anything.
    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM, and the exit awaited: a graceful stop.
    fn stop(mut self) {
        Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status().unwrap();
        assert!(self.child.wait().unwrap().success(), "serve stopped with an error\n{}", self.log());
    }
}

impl Drop for Serve {
    /// A failed test leaves no server running.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A request the receiver got.
#[derive(Debug, Clone)]
struct Received {
    delivery: String,
    signature_ok: bool,
    body: Value,
}

/// What the receiver answers the `n`th request (from 0).
#[derive(Clone, Copy)]
enum Answer {
    Status(u16),
    /// Never answers (until the test ends).
    Hang,
}

/// An HTTP receiver on loopback that checks signatures and records requests.
struct Receiver {
    got: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    fn start(listener: TcpListener, answer: impl Fn(usize) -> Answer + Send + Sync + 'static) -> Receiver {
        let got: Arc<Mutex<Vec<Received>>> = Arc::default();
        let (sink, answer) = (got.clone(), Arc::new(answer));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let (sink, answer) = (sink.clone(), answer.clone());
                std::thread::spawn(move || handle(stream, &sink, &*answer));
            }
        });
        Receiver { got }
    }

    fn received(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    #[track_caller]
    fn wait_for(&self, n: usize, within: Duration) -> Vec<Received> {
        let start = Instant::now();
        while start.elapsed() < within {
            let got = self.received();
            if got.len() >= n {
                return got;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("{n} deliveries expected within {within:?}, got {:?}", self.received());
    }
}

fn handle(
    mut stream: TcpStream,
    sink: &Mutex<Vec<Received>>,
    answer: &(dyn Fn(usize) -> Answer + Send + Sync),
) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let line = line.trim_end().to_owned();
        if line.is_empty() {
            break;
        }
        headers.push(line);
    }
    let header = |name: &str| {
        headers.iter().find_map(|h| {
            let (k, v) = h.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
        })
    };
    assert!(headers[0].starts_with("POST /hook "), "{headers:?}");
    let len: usize = header("content-length").expect("a content length").parse().unwrap();
    let mut body = vec![0; len];
    reader.read_exact(&mut body).unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let signature = header("x-leakwatch-signature").unwrap_or_default();
    let received = Received {
        delivery: header("x-leakwatch-delivery").unwrap_or_default(),
        signature_ok: verify(&signature, &body, now),
        body: serde_json::from_slice(&body).expect("a JSON body"),
    };
    let n = {
        let mut got = sink.lock().unwrap();
        got.push(received);
        got.len() - 1
    };
    match answer(n) {
        Answer::Status(status) => {
            let _ = write!(stream, "HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        }
        Answer::Hang => std::thread::sleep(Duration::from_secs(600)),
    }
}

/// The check docs/alerts.md describes, written out here apart from the
/// crate's own: `t=T,v1=HEX`, HEX = HMAC-SHA256(secret, "T." + body), T recent.
fn verify(header: &str, body: &[u8], now: u64) -> bool {
    let Some((t, v1)) = header.split_once(',') else { return false };
    let (Some(t), Some(v1)) = (t.strip_prefix("t="), v1.strip_prefix("v1=")) else { return false };
    let Ok(time) = t.parse::<u64>() else { return false };
    let mut signed = format!("{time}.").into_bytes();
    signed.extend_from_slice(body);
    time.abs_diff(now) < 300 && hmac_sha256_hex(SECRET.as_bytes(), &signed) == v1
}

/// HMAC-SHA256 by openssl, as the docs' shell example does it.
fn hmac_sha256_hex(key: &[u8], message: &[u8]) -> String {
    let mut child = Command::new("openssl")
        .args(["dgst", "-sha256", "-hmac"])
        .arg(std::str::from_utf8(key).unwrap())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("openssl runs");
    child.stdin.take().unwrap().write_all(message).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().rsplit(' ').next().unwrap().to_owned()
}

/// A loopback port nobody listens on (bound, then released).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn listener() -> (TcpListener, u16) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    (l, port)
}

/// (account, breach) of each exposure, sorted.
fn pairs(body: &Value) -> Vec<(String, String)> {
    let mut p: Vec<(String, String)> = body["exposures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["account"].as_str().unwrap().to_owned(), e["breach"].as_str().unwrap().to_owned()))
        .collect();
    p.sort();
    p
}

fn expected_new() -> Vec<(String, String)> {
    vec![("alice@corp.example".into(), "New".into()), ("carol@corp.example".into(), "New".into())]
}

#[test]
fn new_exposures_arrive_once_signed_and_nothing_new_sends_nothing() {
    let env = Env::new();
    env.with_org();
    let (listener, port) = listener();
    let receiver = Receiver::start(listener, |_| Answer::Status(200));
    env.webhook(port);
    // A directory account outside the organization's domains is watched too.
    let directory = env.file("dir.csv", "email,username\ndan@partner.example,dan\n");
    env.run(&["org", "import", "acme", &directory]).ok("org import");
    let serve = env.serve();

    let partner = env.file("partner.txt", "dan@partner.example:danpw\n");
    env.ingest_new(&[]);
    env.run(&["ingest", "--breach", "Partner", "--breach-date", "2025-11-01", &partner]).ok("ingest Partner");
    let got = receiver.wait_for(2, Duration::from_secs(20));
    assert!(got.iter().all(|r| r.signature_ok), "{got:?}");
    // Due batches are delivered side by side: the two may arrive in either order.
    let (new, partner_batch) = match pairs(&got[0].body).first() {
        Some((_, breach)) if breach == "Partner" => (&got[1], &got[0]),
        _ => (&got[0], &got[1]),
    };
    let first = &new.body;
    assert_eq!(pairs(first), expected_new());
    assert_eq!(first["organization"], "acme");
    assert_eq!(first["delivery_id"], new.delivery.as_str());
    assert!(first["generation"].as_u64().unwrap() > 0);
    let carol = &first["exposures"][1];
    assert_eq!(carol["breach_date"], "2025-10-01");
    assert_eq!(carol["stealer_log"], false);
    assert!(carol["data_classes"].as_array().unwrap().iter().any(|c| c == "Passwords"), "{carol}");
    assert_eq!(pairs(&partner_batch.body), vec![("dan@partner.example".to_owned(), "Partner".to_owned())]);
    assert_eq!(partner_batch.body["exposures"][0]["in_directory"], true);
    assert_ne!(new.delivery, partner_batch.delivery);

    // The same records again, and a dump of other domains: nothing new.
    env.ingest_new(&[]);
    let other = env.file("other.txt", "yan@other.example:yanpw\n");
    env.run(&["ingest", "--breach", "Other", &other]).ok("ingest Other");
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(receiver.received().len(), 2, "{:?}", receiver.received());
    let outbox = env.outbox();
    assert!(outbox.iter().all(|b| b["state"] == "delivered" && b["attempts"] == 1), "{outbox:?}");
    let show = env.run(&["org", "show", "acme"]).ok("org show");
    assert!(show.stdout.contains("(2 delivered, 0 pending, 0 given up)"), "{}", show.stdout);
    // The catalog keeps no address and no secret in clear.
    let catalog = std::fs::read(env.data().join("catalog.sqlite")).unwrap();
    for needle in ["carol@corp.example", "dan@partner.example", SECRET] {
        assert!(!catalog.windows(needle.len()).any(|w| w == needle.as_bytes()), "{needle} in the catalog");
    }
    serve.stop();
}

#[test]
fn a_receiver_down_then_up_gets_the_batch_with_the_same_delivery_id() {
    let env = Env::new();
    env.with_org();
    let port = free_port();
    env.webhook(port);
    let serve = env.serve();
    env.ingest_new(&[]);
    // Nobody listens: attempts fail and are counted.
    let start = Instant::now();
    loop {
        let outbox = env.outbox();
        if outbox.len() == 1 && outbox[0]["attempts"].as_u64().unwrap() >= 2 {
            assert_eq!(outbox[0]["state"], "pending");
            assert!(outbox[0]["last_error"].as_str().unwrap().contains("error"), "{outbox:?}");
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "no failed attempts: {outbox:?}\n{}", serve.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    // Up, but failing once: the retry carries the same id and body.
    let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
    let receiver = Receiver::start(listener, |n| Answer::Status(if n == 0 { 503 } else { 200 }));
    let got = receiver.wait_for(2, Duration::from_secs(20));
    assert_eq!(got[0].delivery, got[1].delivery);
    assert_eq!(got[0].body, got[1].body);
    assert!(got.iter().all(|r| r.signature_ok));
    assert_eq!(pairs(&got[1].body), expected_new());
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(receiver.received().len(), 2);
    assert_eq!(env.outbox()[0]["state"], "delivered");
    serve.stop();
}

#[test]
fn a_serve_killed_mid_delivery_sends_it_again_with_the_same_id() {
    let env = Env::new();
    env.with_org();
    let (listener, port) = listener();
    // The first request is never answered; the next ones are.
    let receiver = Receiver::start(listener, |n| if n == 0 { Answer::Hang } else { Answer::Status(200) });
    env.webhook(port);
    // The killed server keeps the delivery lease until it runs out: a short
    // one, so that its successor takes over within the wait below.
    let lease = ["--alert-lease", "2s", "--alert-lease-renew", "300ms"];
    let serve = env.serve_with(&lease);
    env.ingest_new(&[]);
    let first = receiver.wait_for(1, Duration::from_secs(20));
    serve.kill();
    assert_eq!(env.outbox()[0]["state"], "pending");

    let serve = env.serve_with(&lease);
    let got = receiver.wait_for(2, Duration::from_secs(20));
    assert_eq!(got[1].delivery, first[0].delivery);
    assert_eq!(pairs(&got[1].body), expected_new());
    let start = Instant::now();
    while env.outbox()[0]["state"] != "delivered" {
        assert!(start.elapsed() < Duration::from_secs(10), "{}", serve.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(receiver.received().len(), 2);
    serve.stop();
}

#[test]
fn an_ingest_whose_monitor_never_ran_is_caught_up_by_the_next_serve() {
    let env = Env::new();
    env.with_org();
    let (listener, port) = listener();
    let receiver = Receiver::start(listener, |_| Answer::Status(200));
    env.webhook(port);
    // Published, then "crashed" before the outbox was written.
    env.ingest_new(&[("LEAKWATCH_NO_MONITOR", "1")]);
    assert!(env.outbox().is_empty());
    let serve = env.serve();
    let got = receiver.wait_for(1, Duration::from_secs(20));
    assert!(got[0].signature_ok);
    assert_eq!(pairs(&got[0].body), expected_new());
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(receiver.received().len(), 1);
    serve.stop();
}

#[test]
fn servers_sharing_a_postgres_catalog_deliver_each_batch_once_and_one_takes_over_from_a_killed_one() {
    let pg = TestPostgres::shared();
    let env = Env::with_catalog(&pg.url("postgres", &pg.fresh_database()));
    env.with_org();
    let (listener, port) = listener();
    let receiver = Receiver::start(listener, |_| Answer::Status(200));
    env.webhook(port);
    let lease = Duration::from_secs(2);
    let lease_args = ["--alert-lease", "2s", "--alert-lease-renew", "300ms"];
    let servers = [env.serve_with(&lease_args), env.serve_with(&lease_args)];

    // Both watch the outbox; one delivers, once.
    env.ingest_new(&[]);
    let got = receiver.wait_for(1, Duration::from_secs(20));
    assert!(got[0].signature_ok);
    assert_eq!(pairs(&got[0].body), expected_new());
    // Long enough for several renewals and polls by both.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(receiver.received().len(), 1, "{:?}", receiver.received());
    let holds = |s: &Serve| s.log().contains("this server now delivers alerts");
    assert_eq!(servers.iter().filter(|s| holds(s)).count(), 1, "exactly one server took the lease");
    let [a, b] = servers;
    let (holder, survivor) = if holds(&a) { (a, b) } else { (b, a) };

    // The holder dies without releasing the lease: the other server takes it
    // once it expires, not before, and delivers what was queued meanwhile.
    holder.kill();
    let killed = Instant::now();
    let third = env.file("third.txt", "erin@corp.example:erinpw\n");
    let took_over = std::thread::scope(|scope| {
        scope.spawn(|| {
            env.run(&["ingest", "--breach", "Third", "--breach-date", "2025-12-01", &third])
                .ok("ingest Third")
        });
        while !holds(&survivor) {
            assert!(killed.elapsed() < Duration::from_secs(20), "no takeover\n{}", survivor.log());
            std::thread::sleep(Duration::from_millis(20));
        }
        killed.elapsed()
    });
    // The dead holder renewed about one renewal interval (300 ms, later on a
    // busy machine) before it was killed; the survivor tries every renewal
    // interval, so it takes over soon after expiry, and not at once.
    assert!(took_over >= lease / 2, "taken before expiry: {took_over:?}");
    assert!(took_over < lease + Duration::from_millis(1500), "taken over after {took_over:?}");
    let got = receiver.wait_for(2, Duration::from_secs(20));
    assert_eq!(pairs(&got[1].body), vec![("erin@corp.example".to_owned(), "Third".to_owned())]);
    assert_ne!(got[1].delivery, got[0].delivery);
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(receiver.received().len(), 2, "{:?}", receiver.received());
    survivor.stop();
}

#[test]
fn a_stealer_log_sighting_is_flagged_with_its_websites() {
    let env = Env::new();
    env.with_org();
    let (listener, port) = listener();
    let receiver = Receiver::start(listener, |_| Answer::Status(200));
    env.webhook(port);
    let ulp = env.file("ulp.txt", "https://shop.example.net/login:carol@corp.example:shoppw1\n");
    let ingest =
        env.run(&["ingest", "--breach", "Stealer1", "--format", "stealer", &ulp]).ok("ingest stealer");
    assert!(ingest.stderr.contains("1 new exposure queued for alerting"), "{}", ingest.stderr);
    let serve = env.serve();
    let got = receiver.wait_for(1, Duration::from_secs(20));
    let e = &got[0].body["exposures"][0];
    assert_eq!((e["account"].as_str(), e["stealer_log"].as_bool()), (Some("carol@corp.example"), Some(true)));
    assert_eq!(e["websites"], serde_json::json!(["shop.example.net"]));
    serve.stop();
}

#[test]
fn org_alert_refuses_insecure_destinations_and_lists_and_removes() {
    let env = Env::new();
    env.with_org();
    let bad = env.run(&["org", "alert", "acme", "--webhook", "http://hooks.example/x", "--secret", SECRET]);
    assert_eq!(bad.code, 2);
    assert!(bad.stderr.contains("https"), "{}", bad.stderr);
    let short = env.run(&["org", "alert", "acme", "--webhook", "https://hooks.example/x", "--secret", "x"]);
    assert_eq!(short.code, 2);
    let nosecret = env.run(&["org", "alert", "acme", "--webhook", "https://hooks.example/x"]);
    assert_eq!(nosecret.code, 2);
    let secret_file = env.file("secret", &format!("{SECRET}\n"));
    env.run(&["org", "alert", "acme", "--webhook", "https://hooks.example/x", "--secret-file", &secret_file])
        .ok("--secret-file");
    let relay = "smtp://alerts:relaypass123@mail.corp.example";
    env.run(&["org", "alert", "acme", "--email", "soc@corp.example", "--smtp", relay]).ok("--email");
    let list = env.run(&["org", "alert", "acme", "--list"]).ok("--list");
    assert!(
        list.stdout.contains(
            "mail to soc@corp.example from leakwatch@corp.example via smtp://alerts@mail.corp.example:587"
        ),
        "{}",
        list.stdout
    );
    let show = env.run(&["org", "show", "acme", "--json"]).ok("show");
    for out in [&list.stdout, &show.stdout] {
        assert!(!out.contains("relaypass123") && !out.contains(SECRET), "{out}");
    }
    let ids: Vec<i64> = show.json_lines()[0]["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids.len(), 2);
    env.run(&["org", "alert", "acme", "--remove", &ids[0].to_string()]).ok("--remove");
    assert_eq!(env.run(&["org", "alert", "acme", "--remove", &ids[0].to_string()]).code, 2);
    assert_eq!(
        env.run(&["org", "show", "acme", "--json"]).json_lines()[0]["alerts"].as_array().unwrap().len(),
        1
    );
}

#[test]
fn org_alert_test_sends_a_signed_made_up_batch_now() {
    let env = Env::new();
    env.with_org();
    let (listener, port) = listener();
    let receiver = Receiver::start(listener, |_| Answer::Status(200));
    env.webhook(port);
    let out = env.run(&["org", "alert", "acme", "--test"]).ok("--test");
    assert!(out.stdout.contains("delivered (test-"), "{}", out.stdout);
    let got = receiver.received();
    assert_eq!(got.len(), 1);
    assert!(got[0].signature_ok && got[0].delivery.starts_with("test-"));
    assert_eq!(got[0].body["exposures"][0]["account"], "leakwatch-test@corp.example");
}

/// A Python with aiosmtpd: `python3` first, then Debian's own (which
/// python3-aiosmtpd installs into when another python3 comes first on PATH).
fn python_with_aiosmtpd() -> String {
    for python in ["python3", "/usr/bin/python3"] {
        let ok = Command::new(python)
            .args(["-c", "import aiosmtpd"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return python.to_owned();
        }
    }
    panic!("this test needs Python's aiosmtpd: apt-get install python3-aiosmtpd (.ci/run does)");
}

struct Smtpd(Child);

impl Drop for Smtpd {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_smtpd(maildir: &Path) -> (Smtpd, u16) {
    let port = free_port();
    let child = Command::new(python_with_aiosmtpd())
        .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}"), "-c", "aiosmtpd.handlers.Mailbox"])
        .arg(maildir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("aiosmtpd starts");
    let smtpd = Smtpd(child);
    let start = Instant::now();
    while TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], port))).is_err() {
        assert!(start.elapsed() < Duration::from_secs(20), "aiosmtpd did not listen");
        std::thread::sleep(Duration::from_millis(50));
    }
    (smtpd, port)
}

#[test]
fn mail_alerts_reach_a_real_smtp_server() {
    let env = Env::new();
    env.with_org();
    let maildir = env.root.join("maildir");
    let (_smtpd, port) = start_smtpd(&maildir);
    let relay = format!("smtp://127.0.0.1:{port}");
    env.run(&["org", "alert", "acme", "--email", "soc@corp.example", "--smtp", &relay]).ok("--email");
    let serve = env.serve();
    env.ingest_new(&[]);
    let start = Instant::now();
    let mail = loop {
        let mut found = Vec::new();
        if let Ok(entries) = std::fs::read_dir(maildir.join("new")) {
            for e in entries {
                found.push(std::fs::read_to_string(e.unwrap().path()).unwrap());
            }
        }
        if let Some(mail) = found.pop() {
            assert!(found.is_empty(), "one mail expected");
            break mail;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "no mail arrived\n{}", serve.log());
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(mail.contains("Subject: leakwatch: 2 new exposures for acme"), "{mail}");
    assert!(mail.contains("To: soc@corp.example"), "{mail}");
    assert!(mail.contains("- carol@corp.example: New"), "{mail}");
    assert!(mail.contains("- alice@corp.example: New"), "{mail}");
    assert!(!mail.contains("alice@corp.example: Old"), "{mail}");
    let outbox = env.outbox();
    let id = outbox[0]["delivery_id"].as_str().unwrap();
    assert!(mail.contains(&format!("X-Leakwatch-Delivery: {id}")), "{mail}");
    let start = Instant::now();
    while env.outbox()[0]["state"] != "delivered" {
        assert!(start.elapsed() < Duration::from_secs(10), "{}", serve.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    serve.stop();
}

/// An SMTP server that takes mail only after STARTTLS and AUTH (user
/// `alerts`, password `relay-pw-123`), writing each message to `out`.
const STARTTLS_SMTPD: &str = r#"
import os, ssl, sys, time
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
port, cert, key, out = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
class Handler:
    async def handle_DATA(self, server, session, envelope):
        tls = b"yes" if session.ssl else b"no"
        with open(os.path.join(out, "%d.eml" % time.time_ns()), "wb") as f:
            f.write(b"X-Test-Tls: " + tls + b"\r\nX-Test-Authenticated: " + str(session.authenticated).encode() + b"\r\n")
            f.write(envelope.original_content)
        return "250 OK"
def authenticator(server, session, envelope, mechanism, auth_data):
    ok = isinstance(auth_data, LoginPassword) and auth_data.login == b"alerts" and auth_data.password == b"relay-pw-123"
    return AuthResult(success=ok)
context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
context.load_cert_chain(cert, key)
Controller(Handler(), hostname="127.0.0.1", port=port, tls_context=context, require_starttls=True,
           authenticator=authenticator, auth_required=True, auth_require_tls=True).start()
print("ready", flush=True)
sys.stdin.read()
"#;

/// A CA and a certificate for `localhost` signed by it: (CA PEM, cert PEM, key PEM).
fn relay_certificate() -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, "leakwatch test relay CA");
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_owned()]).unwrap().signed_by(&key, &ca).unwrap();
    (ca.pem(), leaf.pem(), key.serialize_pem())
}

#[test]
fn mail_goes_through_starttls_and_auth_with_the_password_from_a_file() {
    let env = Env::new();
    env.with_org();
    let (ca, cert, key) = relay_certificate();
    let (ca, cert, key) = (env.file("ca.pem", &ca), env.file("cert.pem", &cert), env.file("key.pem", &key));
    let script = env.file("smtpd.py", STARTTLS_SMTPD);
    let out = env.root.join("mail");
    std::fs::create_dir(&out).unwrap();
    let port = free_port();
    let mut child = Command::new(python_with_aiosmtpd())
        .arg(&script)
        .args([port.to_string(), cert, key])
        .arg(&out)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the SMTP server starts");
    let mut ready = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut ready).unwrap();
    assert_eq!(ready.trim(), "ready");
    let _smtpd = Smtpd(child);

    // Without the CA the relay's certificate is refused: nothing is sent in clear.
    let password = env.file("relay.pw", "relay-pw-123\n");
    let relay = format!("smtp://alerts@localhost:{port}");
    env.run(&[
        "org",
        "alert",
        "acme",
        "--email",
        "soc@corp.example",
        "--smtp",
        &relay,
        "--smtp-password-file",
        &password,
    ])
    .ok("--email without the CA");
    let refused = env.run(&["org", "alert", "acme", "--test"]);
    assert_eq!(refused.code, 2, "{}", refused.stdout);
    assert!(refused.stdout.contains("FAILED"), "{}", refused.stdout);
    assert!(std::fs::read_dir(&out).unwrap().next().is_none());

    // The same destination again with the relay's CA: replaced, not added.
    env.run(&[
        "org",
        "alert",
        "acme",
        "--email",
        "soc@corp.example",
        "--smtp",
        &relay,
        "--smtp-password-file",
        &password,
        "--smtp-ca-file",
        &ca,
    ])
    .ok("--email with the CA");
    let serve = env.serve();
    env.ingest_new(&[]);
    let start = Instant::now();
    let mail = loop {
        if let Some(entry) = std::fs::read_dir(&out).unwrap().next() {
            break std::fs::read_to_string(entry.unwrap().path()).unwrap();
        }
        assert!(start.elapsed() < Duration::from_secs(20), "no mail arrived\n{}", serve.log());
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(mail.starts_with("X-Test-Tls: yes\r\nX-Test-Authenticated: True"), "{mail}");
    assert!(mail.contains("- carol@corp.example: New"), "{mail}");
    assert!(!serve.log().contains("relay-pw-123"));
    serve.stop();
}
