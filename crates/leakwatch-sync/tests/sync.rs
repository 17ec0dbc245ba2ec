//! Sync as it runs for real: from a `leakwatch serve` upstream on a loopback
//! port into a second data directory, then again incrementally, and from a
//! faulty upstream (5xx, 429, corrupt bodies, wrong `Content-MD5`) to show that
//! retries recover what they can, that a failed run publishes nothing, and
//! that the next run resumes where it stopped.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use leakwatch_server::{serve, AppState, AuditWriter, Limits, ServeOptions};
use leakwatch_store::{ingest, BreachInfo, DataDir, IngestOptions, Store};
use leakwatch_sync::{sync, Progress, SyncError, SyncOptions, SyncSummary};
use leakwatch_types::{encode_hex_upper, sha1};

/// Passwords whose SHA-1 falls in the first `2^bits` prefixes, so that a sync
/// limited to those prefixes has something to carry.
fn passwords(tag: &str, bits: u32, n: usize) -> Vec<String> {
    (0u64..)
        .map(|i| format!("{tag}-{i}"))
        .filter(|pw| {
            let h = sha1(pw.as_bytes());
            (u32::from(h[0]) << 12 | u32::from(h[1]) << 4 | u32::from(h[2]) >> 4) < 1 << bits
        })
        .take(n)
        .collect()
}

fn ingest_passwords(data: &DataDir, breach: &str, passwords: &[String]) {
    let tmp = tempfile::NamedTempFile::new().unwrap();
    let lines: Vec<String> =
        passwords.iter().enumerate().map(|(i, pw)| format!("user{i}@{breach}.example:{pw}")).collect();
    std::fs::write(tmp.path(), lines.join("\n") + "\n").unwrap();
    let options = IngestOptions {
        breach: BreachInfo { name: breach.into(), ..BreachInfo::default() },
        format: None,
        memory_budget: 64 << 20,
    };
    let input = leakwatch_ingest::Input::open(tmp.path().to_str().unwrap()).unwrap();
    ingest(data, &options, vec![input], &leakwatch_store::Progress::default(), &mut |_| {}).unwrap();
}

/// A `leakwatch serve` on an ephemeral loopback port, on its own runtime.
struct Upstream {
    base: String,
    state: AppState,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    _audit: AuditWriter,
}

impl Upstream {
    fn start(data: &DataDir) -> Upstream {
        let (state, audit) = AppState::open(data.clone(), Limits::default()).unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (tx, rx) = std::sync::mpsc::channel();
        let served = state.clone();
        let thread = std::thread::spawn(move || {
            let runtime =
                tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                tx.send(listener.local_addr().unwrap()).unwrap();
                serve(listener, served, ServeOptions::default(), async {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
            });
        });
        let addr: SocketAddr = rx.recv().unwrap();
        Upstream {
            base: format!("http://{addr}"),
            state,
            stop: Some(stop),
            thread: Some(thread),
            _audit: audit,
        }
    }

    /// Serves the data directory's newest generation from now on.
    fn reload(&self) {
        self.state.reload_store().unwrap();
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.thread.take().unwrap().join().unwrap();
    }
}

fn options(bits: u32) -> SyncOptions {
    SyncOptions { prefix_bits: bits, backoff: Duration::from_millis(5), ..SyncOptions::default() }
}

fn run(data: &DataDir, base: &str, bits: u32) -> Result<SyncSummary, SyncError> {
    sync(data, base, false, &options(bits), &Arc::new(Progress::default()))
}

/// Every range of the first `2^bits` prefixes, as a store answers it.
fn ranges(data: &DataDir, bits: u32) -> Vec<Vec<([u8; 32], u64)>> {
    let store = Store::open(data).unwrap();
    (0..1u32 << bits).map(|p| store.range(false, p).unwrap()).collect()
}

/// A full sync mirrors every range; a rerun costs only 304s; after the upstream
/// changes, only the changed ranges are rewritten and the mirror follows.
#[test]
fn sync_mirrors_a_leakwatch_upstream_then_follows_its_changes() {
    const BITS: u32 = 12;
    let tmp = tempfile::tempdir().unwrap();
    let (up, down) = (DataDir::new(tmp.path().join("up")), DataDir::new(tmp.path().join("down")));
    // Their keys beside them, in the temporary directory, not in ~/.config.
    up.init(Some(&tmp.path().join("up.key"))).unwrap();
    down.init(Some(&tmp.path().join("down.key"))).unwrap();
    ingest_passwords(&up, "First", &passwords("a", BITS, 2000));
    let upstream = Upstream::start(&up);

    let first = run(&down, &upstream.base, BITS).unwrap();
    assert_eq!(first.ranges, 4096);
    assert_eq!(first.fetched, 4096, "{first:?}");
    assert_eq!((first.not_modified, first.resumed), (0, 0));
    let import = first.import.as_ref().expect("published");
    assert_eq!(import.hashes, 2000);
    assert_eq!(ranges(&down, BITS), ranges(&up, BITS));

    let again = run(&down, &upstream.base, BITS).unwrap();
    assert_eq!(again.not_modified, 4096, "{again:?}");
    assert_eq!((again.fetched, again.bytes), (0, 0));
    assert!(again.import.is_none(), "nothing changed, nothing republished");

    let before = ranges(&up, BITS);
    ingest_passwords(&up, "Second", &passwords("b", BITS, 40));
    upstream.reload();
    let after = ranges(&up, BITS);
    let changed = before.iter().zip(&after).filter(|(a, b)| a != b).count() as u64;
    assert!(changed > 0 && changed <= 40);
    let third = run(&down, &upstream.base, BITS).unwrap();
    assert_eq!(third.fetched, changed, "{third:?}");
    assert_eq!(third.fetched + third.same + third.not_modified, 4096);
    assert_eq!(third.import.as_ref().expect("published").hashes, 2040);
    assert_eq!(ranges(&down, BITS), after);
}

/// What the faulty upstream does to one prefix.
#[derive(Clone, Copy, Debug)]
enum Fault {
    /// Answers 500 this many times, then correctly.
    Fail(u32),
    /// Answers 429 with `retry-after: 0` this many times, then correctly.
    RateLimit(u32),
    /// Always swaps two lines.
    Unsorted,
    /// Always sends a `Content-MD5` of another body.
    WrongMd5,
    /// Sends a body far larger than any range.
    Huge,
}

#[derive(Default)]
struct Faulty {
    bodies: HashMap<u32, String>,
    faults: Mutex<HashMap<u32, Fault>>,
    requests: AtomicU32,
}

async fn faulty_range(State(up): State<Arc<Faulty>>, Path(prefix): Path<String>) -> Response {
    up.requests.fetch_add(1, Ordering::Relaxed);
    let prefix = u32::from_str_radix(&prefix, 16).unwrap();
    let body = up.bodies.get(&prefix).cloned().unwrap_or_default();
    let md5 = |b: &str| {
        use base64::Engine;
        use md5::Digest;
        base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(b.as_bytes()))
    };
    let fault = up.faults.lock().unwrap().get(&prefix).copied();
    let mut headers = HeaderMap::new();
    headers.insert("etag", format!("\"{prefix}\"").parse().unwrap());
    match fault {
        Some(Fault::Fail(n)) | Some(Fault::RateLimit(n)) if n > 0 => {
            let next = match fault {
                Some(Fault::Fail(_)) => Fault::Fail(n - 1),
                _ => Fault::RateLimit(n - 1),
            };
            up.faults.lock().unwrap().insert(prefix, next);
            if matches!(next, Fault::Fail(_)) {
                return StatusCode::INTERNAL_SERVER_ERROR.into_response();
            }
            return (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "0")]).into_response();
        }
        Some(Fault::Unsorted) => {
            let mut lines: Vec<&str> = body.split("\r\n").collect();
            lines.swap(0, 1);
            return (headers, lines.join("\r\n")).into_response();
        }
        Some(Fault::Huge) => {
            let line = format!("{}:1\r\n", "A".repeat(35));
            return (headers, line.repeat((5 << 20) / line.len())).into_response();
        }
        Some(Fault::WrongMd5) => {
            headers.insert("content-md5", md5("something else").parse().unwrap());
        }
        _ => {
            headers.insert("content-md5", md5(&body).parse().unwrap());
        }
    }
    (headers, body).into_response()
}

/// Starts the faulty upstream; returns its base URL.
fn start_faulty(up: Arc<Faulty>) -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            let app =
                axum::Router::new().route("/range/{prefix}", axum::routing::get(faulty_range)).with_state(up);
            axum::serve(listener, app).await.unwrap();
        });
    });
    format!("http://{}", rx.recv().unwrap())
}

/// Range bodies of the first 256 prefixes holding the given passwords.
fn bodies(passwords: &[String]) -> HashMap<u32, String> {
    let mut by_prefix: HashMap<u32, Vec<String>> = HashMap::new();
    for pw in passwords {
        let hex = encode_hex_upper(&sha1(pw.as_bytes()));
        by_prefix
            .entry(u32::from_str_radix(&hex[..5], 16).unwrap())
            .or_default()
            .push(format!("{}:3", &hex[5..]));
    }
    by_prefix
        .into_iter()
        .map(|(p, mut lines)| {
            lines.sort();
            (p, lines.join("\r\n"))
        })
        .collect()
}

#[test]
fn transient_faults_are_retried_and_persistent_ones_publish_nothing_until_a_rerun_resumes() {
    const BITS: u32 = 8;
    let tmp = tempfile::tempdir().unwrap();
    let down = DataDir::new(tmp.path().join("down"));
    down.init(Some(&tmp.path().join("down.key"))).unwrap();
    let pws = passwords("f", BITS, 600);
    let up = Arc::new(Faulty { bodies: bodies(&pws), ..Faulty::default() });
    // Two lines at least in the prefixes whose bodies get reordered.
    let multi: Vec<u32> = (0..256).filter(|p| up.bodies.get(p).is_some_and(|b| b.contains("\r\n"))).collect();
    let base = start_faulty(up.clone());

    // A first, clean corpus to protect.
    ingest_passwords(&down, "Own", &passwords("own", BITS, 5));
    up.faults.lock().unwrap().extend([(3, Fault::Fail(2)), (7, Fault::RateLimit(3))]);
    let clean = run(&down, &base, BITS).unwrap();
    assert_eq!(clean.fetched, 256);
    assert_eq!(clean.retries, 5);
    assert_eq!(clean.import.as_ref().unwrap().hashes, 600);
    let published = ranges(&down, BITS);

    // The upstream changes, and two ranges come back broken on every attempt.
    let mut changed = up.bodies.clone();
    for pw in &passwords("g", BITS, 30) {
        let hex = encode_hex_upper(&sha1(pw.as_bytes()));
        let prefix = u32::from_str_radix(&hex[..5], 16).unwrap();
        let mut lines: Vec<String> =
            changed.get(&prefix).map(|b| b.split("\r\n").map(str::to_owned).collect()).unwrap_or_default();
        lines.push(format!("{}:1", &hex[5..]));
        lines.sort();
        changed.insert(prefix, lines.join("\r\n"));
    }
    let up2 = Arc::new(Faulty { bodies: changed, ..Faulty::default() });
    let base2 = start_faulty(up2.clone());
    up2.faults.lock().unwrap().insert(multi[multi.len() / 2], Fault::Unsorted);
    let err = run(&down, &base2, BITS).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains(&format!("range {:05X} failed after 6 attempts", multi[multi.len() / 2])),
        "{text}"
    );
    assert!(text.contains("out of order"), "{text}");
    assert_eq!(ranges(&down, BITS), published, "a failed run publishes nothing");

    up2.faults.lock().unwrap().insert(multi[multi.len() / 2], Fault::WrongMd5);
    let err = run(&down, &base2, BITS).unwrap_err().to_string();
    assert!(err.contains("Content-MD5"), "{err}");
    assert_eq!(ranges(&down, BITS), published);

    // Fixed: the rerun resumes, fetching only what the failed runs had not.
    up2.faults.lock().unwrap().clear();
    let before = up2.requests.load(Ordering::Relaxed);
    let resumed = run(&down, &base2, BITS).unwrap();
    let requests = up2.requests.load(Ordering::Relaxed) - before;
    assert!(resumed.resumed > 0, "{resumed:?}");
    assert_eq!(u64::from(requests), 256 - resumed.resumed);
    assert_eq!(resumed.import.as_ref().unwrap().hashes, 630);
    let own = Store::open(&down).unwrap();
    let synced: u64 = (0..256).map(|p| own.range(false, p).unwrap().len() as u64).sum();
    assert_eq!(synced, 635, "the synced corpus and the organization's own passwords");
}

/// All 2^20 prefixes, as a real sync runs: slow in a debug build, so run it
/// with `cargo test --release -p leakwatch-sync -- --ignored`.
#[test]
#[ignore = "all 1,048,576 ranges: run in release mode"]
fn full_prefix_space() {
    let tmp = tempfile::tempdir().unwrap();
    let (up, down) = (DataDir::new(tmp.path().join("up")), DataDir::new(tmp.path().join("down")));
    up.init(Some(&tmp.path().join("up.key"))).unwrap();
    down.init(Some(&tmp.path().join("down.key"))).unwrap();
    ingest_passwords(&up, "Full", &passwords("full", 20, 20_000));
    let upstream = Upstream::start(&up);
    let started = Instant::now();
    let full = run(&down, &upstream.base, 20).unwrap();
    eprintln!("full sync: {:?}, {full:?}", started.elapsed());
    assert_eq!(full.fetched, 1 << 20);
    assert_eq!(ranges(&down, 20), ranges(&up, 20));
    let started = Instant::now();
    let again = run(&down, &upstream.base, 20).unwrap();
    eprintln!("revalidation: {:?}", started.elapsed());
    assert_eq!(again.not_modified, 1 << 20);
}

/// A test CA: its certificate in PEM, and a TLS server configuration for
/// `localhost` and 127.0.0.1 whose certificate it signed.
fn test_ca(name: &str) -> (String, Arc<tokio_rustls::rustls::ServerConfig>) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, name);
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    #[allow(deprecated)]
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = tokio_rustls::rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone()],
            tokio_rustls::rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap(),
        )
        .unwrap();
    (ca.pem(), Arc::new(config))
}

/// TLS in front of a plain upstream: every connection to the returned address
/// is decrypted with `config` and relayed to `plain`. Stops with the test.
fn tls_front(plain: &str, config: Arc<tokio_rustls::rustls::ServerConfig>) -> SocketAddr {
    let plain: SocketAddr = plain.trim_start_matches("http://").parse().unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let acceptor = tokio_rustls::TlsAcceptor::from(config);
            loop {
                let Ok((socket, _)) = listener.accept().await else { return };
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    // A handshake the client refuses ends here, as it should.
                    let Ok(mut tls) = acceptor.accept(socket).await else { return };
                    let Ok(mut upstream) = tokio::net::TcpStream::connect(plain).await else { return };
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut upstream).await;
                });
            }
        });
    });
    addr
}

/// Over https with the upstream's CA named, a sync mirrors every range; a CA
/// that did not sign the upstream's certificate (or the system's roots, which
/// know nothing of it) is refused at once, not after retries, and publishes
/// nothing.
#[test]
fn sync_over_tls_checks_the_upstream_certificate() {
    const BITS: u32 = 8;
    let tmp = tempfile::tempdir().unwrap();
    let (up, down) = (DataDir::new(tmp.path().join("up")), DataDir::new(tmp.path().join("down")));
    up.init(Some(&tmp.path().join("up.key"))).unwrap();
    down.init(Some(&tmp.path().join("down.key"))).unwrap();
    ingest_passwords(&up, "First", &passwords("tls", BITS, 300));
    let upstream = Upstream::start(&up);
    let (ca, config) = test_ca("leakwatch test CA");
    let (other_ca, _) = test_ca("someone else's CA");
    std::fs::write(tmp.path().join("ca.pem"), ca).unwrap();
    std::fs::write(tmp.path().join("other.pem"), other_ca).unwrap();
    let front = tls_front(&upstream.base, config);
    let https = format!("https://localhost:{}", front.port());

    let with_ca = |file: Option<&str>| SyncOptions {
        tls: leakwatch_sync::TlsOptions { ca_file: file.map(|f| tmp.path().join(f)), insecure: false },
        ..options(BITS)
    };
    for refused in [Some("other.pem"), None] {
        let started = Instant::now();
        let err = sync(&down, &https, false, &with_ca(refused), &Arc::new(Progress::default())).unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, SyncError::Refused { .. }), "{refused:?}: {text}");
        assert!(text.to_lowercase().contains("certificate"), "{text}");
        assert!(started.elapsed() < Duration::from_secs(5), "refused after {:?}", started.elapsed());
        assert!(Store::open(&down).unwrap().range(false, 0).unwrap().is_empty(), "nothing published");
    }

    let done = sync(&down, &https, false, &with_ca(Some("ca.pem")), &Arc::new(Progress::default())).unwrap();
    assert_eq!(done.fetched, 1 << BITS, "{done:?}");
    assert_eq!(ranges(&down, BITS), ranges(&up, BITS));
}

/// Plain http to a host that is not a loopback address is refused before any
/// request, unless `--insecure` says otherwise.
#[test]
fn plain_http_is_refused_off_loopback() {
    let tmp = tempfile::tempdir().unwrap();
    let down = DataDir::new(tmp.path().join("down"));
    let started = Instant::now();
    let err = sync(&down, "http://mirror.invalid:8080", false, &options(4), &Arc::new(Progress::default()))
        .unwrap_err();
    assert!(matches!(err, SyncError::Insecure(_)), "{err}");
    assert!(err.to_string().contains("https://"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(1));
}

/// A body larger than any range is not read, whatever the upstream says: the
/// range is refused at once and nothing is published.
#[test]
fn an_oversized_body_is_refused_without_reading_it_all() {
    const BITS: u32 = 4;
    let tmp = tempfile::tempdir().unwrap();
    let down = DataDir::new(tmp.path().join("down"));
    down.init(Some(&tmp.path().join("down.key"))).unwrap();
    let up = Arc::new(Faulty { bodies: bodies(&passwords("h", BITS, 50)), ..Faulty::default() });
    up.faults.lock().unwrap().insert(2, Fault::Huge);
    let base = start_faulty(up.clone());
    let err = run(&down, &base, BITS).unwrap_err();
    assert!(matches!(&err, SyncError::Refused { prefix, .. } if prefix == "00002"), "{err}");
    assert!(err.to_string().contains("over"), "{err}");
    assert!(Store::open(&down).unwrap().range(false, 2).unwrap().is_empty());
}
