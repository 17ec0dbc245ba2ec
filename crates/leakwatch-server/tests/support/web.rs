//! What the web interface's socket and browser tests share: a server over a
//! store with a few breaches and keys, a cookie-keeping HTTP client, and
//! Chromium with the npm `playwright-core` package.

#![allow(dead_code)] // Each test binary uses its own part of this.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use leakwatch_catalog::{AuditEntry, AuditFilter, Catalog, NewKey, Role};
use leakwatch_server::{serve, AppState, AuditWriter, Limits, ServeOptions};
use leakwatch_store::{ingest, BreachInfo, DataDir, IngestOptions, Manifest, Progress};
use reqwest::header::HeaderMap;

pub fn ingest_lines(data: &DataDir, name: &str, domain: &str, lines: &[&str]) {
    let tmp = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(tmp.path(), lines.join("\n") + "\n").unwrap();
    let options = IngestOptions {
        breach: BreachInfo {
            name: name.into(),
            title: Some(format!("{name} title")),
            domain: Some(domain.into()),
            ..BreachInfo::default()
        },
        format: None,
        memory_budget: 64 << 20,
    };
    ingest_unlocked(tmp.path().to_str().unwrap(), |input| {
        ingest(data, &options, vec![input], &Progress::default(), &mut |_| {})
    });
}

/// Runs `ingest` on the file at `path`, again while the store's writer lock is
/// taken: a test beside this one that starts a process (node, for the browser
/// tests) lends the child, between its fork and its exec, every descriptor
/// open at that moment, a finished ingest's lock file among them.
pub fn ingest_unlocked<T>(
    path: &str,
    mut ingest: impl FnMut(leakwatch_ingest::Input) -> leakwatch_store::Result<T>,
) -> T {
    for _ in 0..100 {
        let input = leakwatch_ingest::Input::open(path).unwrap();
        match ingest(input) {
            Err(leakwatch_store::StoreError::Locked { .. }) => std::thread::sleep(Duration::from_millis(20)),
            result => return result.unwrap(),
        }
    }
    panic!("the store stayed locked for 2 s");
}

pub struct Server {
    pub _tmp: tempfile::TempDir,
    pub data: DataDir,
    pub base: String,
    pub analyst: String,
    pub domain: String,
    pub stop: Option<tokio::sync::oneshot::Sender<()>>,
    pub done: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    pub _writer: AuditWriter,
}

/// `Adobe` (adobe.com): alice at example-corp.com and carol at gmail.com;
/// `Secret` (sensitive): alice; `Bigger` (more accounts, an older date): dave
/// and erin at example-corp.com, its description with markup in it.
pub async fn start(limits: Limits) -> Server {
    let tmp = tempfile::tempdir().unwrap();
    let data = DataDir::new(tmp.path().join("data"));
    data.init(Some(&tmp.path().join("data.key"))).unwrap();
    ingest_lines(
        &data,
        "Adobe",
        "adobe.com",
        &["alice@example-corp.com:password", "carol@gmail.com:password"],
    );
    ingest_lines(&data, "Secret", "secret.example", &["alice@example-corp.com:password"]);
    ingest_lines(
        &data,
        "Bigger",
        "bigger.example",
        &["dave@example-corp.com:x1", "erin@example-corp.com:x2", "frank@example-corp.com:x3"],
    );
    let mut manifest = Manifest::load(data.root()).unwrap().unwrap();
    for b in &mut manifest.breaches {
        match b.name.as_str() {
            "Secret" => b.is_sensitive = true,
            "Bigger" => {
                b.breach_date = "2001-01-01".into();
                b.description = "<script>alert(1)</script> & more".into();
            }
            _ => b.breach_date = "2020-06-01".into(),
        }
    }
    manifest.generation += 1;
    manifest.store(data.root()).unwrap();

    let mut catalog = Catalog::open_in(data.root()).unwrap();
    let mut create = |name: &str, role: Role, domains: &[&str]| {
        let key = NewKey {
            name: name.into(),
            role,
            domains: domains.iter().map(|d| d.to_string()).collect(),
            rate_limit_per_minute: Some(0),
        };
        catalog.create_key(&key).unwrap().secret
    };
    let analyst = create("analyst", Role::Analyst, &[]);
    let domain = create("corp", Role::Domain, &["example-corp.com"]);
    let (state, writer) = AppState::open(data.clone(), limits).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let done = tokio::spawn(serve(listener, state, ServeOptions::default(), async {
        let _ = stopped.await;
    }));
    Server {
        _tmp: tmp,
        data,
        base: format!("http://{addr}"),
        analyst,
        domain,
        stop: Some(stop),
        done: Some(done),
        _writer: writer,
    }
}

pub fn limits() -> Limits {
    Limits { key_per_minute: 0, anonymous_per_minute: 0, ..Limits::default() }
}

impl Server {
    pub async fn stop(mut self) {
        self.stop.take().unwrap().send(()).unwrap();
        let done = self.done.take().unwrap();
        tokio::time::timeout(Duration::from_secs(10), done).await.unwrap().unwrap().unwrap();
    }

    pub fn audit_rows(&self) -> Vec<AuditEntry> {
        let catalog = Catalog::open_in(self.data.root()).unwrap();
        catalog.audit_entries(&AuditFilter::default()).unwrap().into_iter().map(|r| r.entry).collect()
    }

    /// Signs in with `key`; the session cookie and the session's CSRF token.
    pub async fn sign_in(&self, key: &str) -> Session {
        let (status, headers, _) = self.sign_in_answer(key, &[]).await;
        assert_eq!(status, 303);
        let cookie = set_cookie(&headers, "lw_session").expect("a session cookie");
        let id = cookie.split(';').next().unwrap().to_owned();
        let session = Session { cookie: id, csrf: String::new() };
        let (status, _, body) = get(&format!("{}/ui/search", self.base), Some(&session)).await;
        assert_eq!(status, 200);
        Session { csrf: csrf_of(&body), ..session }
    }

    /// Posts the sign-in form with `key` (after fetching the form for its token).
    pub async fn sign_in_answer(&self, key: &str, extra: &[(&str, &str)]) -> (u16, HeaderMap, String) {
        let form = client().get(format!("{}/ui/signin", self.base)).send().await.unwrap();
        let pre = set_cookie(form.headers(), "lw_signin").expect("a sign-in cookie");
        let pre = pre.split(';').next().unwrap().to_owned();
        let token = csrf_of(&form.text().await.unwrap());
        let mut request = client()
            .post(format!("{}/ui/signin", self.base))
            .header("cookie", pre)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("csrf={token}&key={}", urlencode(key)));
        for (name, value) in extra {
            request = request.header(*name, *value);
        }
        let r = request.send().await.unwrap();
        let (status, headers) = (r.status().as_u16(), r.headers().clone());
        (status, headers, r.text().await.unwrap())
    }

    pub async fn search(&self, session: &Session, account: &str) -> (u16, String) {
        let (status, _, body) = post(
            &format!("{}/ui/search", self.base),
            session,
            &format!("csrf={}&account={}", session.csrf, urlencode(account)),
        )
        .await;
        (status, body)
    }

    pub async fn domain_search(&self, session: &Session, domain: &str) -> (u16, HeaderMap, String) {
        let body = format!("csrf={}&domain={}", session.csrf, urlencode(domain));
        post(&format!("{}/ui/domain", self.base), session, &body).await
    }
}

pub struct Session {
    /// `lw_session=...`
    pub cookie: String,
    pub csrf: String,
}

pub fn client() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        #[allow(deprecated)]
        let _ = rustls::crypto::ring::default_provider().install_default();
        reqwest::Client::builder()
            .user_agent("leakwatch-web-tests")
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
    })
}

pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}

/// The `Set-Cookie` value that sets `name`.
pub fn set_cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|v| v.starts_with(&format!("{name}=")))
}

/// The value of the first field `name` of a page.
pub fn field_of(body: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let at = body.find(&marker).unwrap_or_else(|| panic!("no {name} field: {body}"));
    let rest = &body[at + marker.len()..];
    rest[..rest.find('"').unwrap()].to_owned()
}

/// The value of the first `csrf` field of a page.
pub fn csrf_of(body: &str) -> String {
    field_of(body, "csrf")
}

pub async fn get(url: &str, session: Option<&Session>) -> (u16, HeaderMap, String) {
    let mut request = client().get(url);
    if let Some(s) = session {
        request = request.header("cookie", &s.cookie);
    }
    let r = request.send().await.unwrap();
    let (status, headers) = (r.status().as_u16(), r.headers().clone());
    (status, headers, r.text().await.unwrap())
}

pub async fn post(url: &str, session: &Session, body: &str) -> (u16, HeaderMap, String) {
    let r = client()
        .post(url)
        .header("cookie", &session.cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    let (status, headers) = (r.status().as_u16(), r.headers().clone());
    (status, headers, r.text().await.unwrap())
}

pub const PLAYWRIGHT: &str = "playwright-core@1.57.0";

pub fn chromium() -> PathBuf {
    let path = std::env::var_os("CHROMIUM").map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
    let runs = Command::new(&path).arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status();
    assert!(
        runs.is_ok_and(|s| s.success()),
        "{} does not run: the browser tests need Chromium (Debian: apt-get install -y chromium; .ci/run does)",
        path.display()
    );
    path
}

pub fn playwright() -> PathBuf {
    for tool in ["node", "npm"] {
        let runs = Command::new(tool).arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status();
        assert!(
            runs.is_ok_and(|s| s.success()),
            "`{tool}` is needed (Debian: apt-get install -y nodejs npm)"
        );
    }
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("npm-playwright");
    let version = PLAYWRIGHT.rsplit('@').next().unwrap();
    let installed = std::fs::read_to_string(dir.join("node_modules/playwright-core/package.json"))
        .is_ok_and(|p| p.contains(&format!("\"version\": \"{version}\"")));
    if !installed {
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("package.json"), "{\"private\": true}\n").unwrap();
        let out = Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--loglevel=error", PLAYWRIGHT])
            .current_dir(&dir)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "npm install {PLAYWRIGHT} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    dir
}

/// Runs the browser script `name` (whose text is `script`) with node in the
/// playwright directory, against headless Chromium, with `args`; the one
/// JSON object it printed. `SCREENSHOT_DIR` is passed on when set. Fails,
/// saying what to install, without Chromium, Node.js or npm.
pub async fn run_browser_script(name: &str, script: &str, args: &[&str]) -> serde_json::Value {
    let browser = chromium();
    let dir = playwright();
    std::fs::write(dir.join(name), script).unwrap();
    let name = name.to_owned();
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(&name)
            .args(&args)
            .env("CHROMIUM", browser)
            .envs(std::env::var_os("SCREENSHOT_DIR").map(|d| ("SCREENSHOT_DIR", d)))
            .current_dir(&dir)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the browser script failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}
