//! The organization dashboard over a real socket: an organization with a
//! domain, a directory imported with NT hashes (through `leakwatch-org`, the
//! library `org import` uses), a breach, a stealer log and a sensitive breach
//! exposing some of its accounts, an alert outbox with batches in every
//! state. Checked: the exact accounts each section shows, the roles (a domain
//! key sees only the organizations it owns, and no sensitive breach), CSRF
//! and role refusals on the actions, the reset preview then apply with its
//! audit rows, and the audit rows of every view. The browser test drives the
//! same fixture in headless Chromium.
//!
//! The socket and browser helpers are the web tests' own (`tests/support/web.rs`).

mod support;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

use leakwatch_catalog::{
    parse_directory, AuditEntry, AuditFilter, Catalog, DirectoryFormat, NewDelivery, NewKey, Role, Scan,
};
use leakwatch_server::{serve, AppState, AuditWriter, Limits, ServeOptions};
use leakwatch_store::{ingest, BreachInfo, DataDir, IngestOptions, Manifest, Progress, Store};
use reqwest::header::HeaderMap;
use support::web::{
    client, csrf_of, field_of, get, post, run_browser_script, set_cookie, urlencode, Session,
};

fn ingest_lines(data: &DataDir, name: &str, format: Option<leakwatch_ingest::Format>, lines: &[&str]) {
    let tmp = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(tmp.path(), lines.join("\n") + "\n").unwrap();
    let options = IngestOptions {
        breach: BreachInfo {
            name: name.into(),
            title: Some(format!("{name} title")),
            ..BreachInfo::default()
        },
        format,
        memory_budget: 64 << 20,
    };
    let input = leakwatch_ingest::Input::open(tmp.path().to_str().unwrap()).unwrap();
    ingest(data, &options, vec![input], &Progress::default(), &mut |_| {}).unwrap();
}

fn nt(password: &str) -> String {
    leakwatch_types::encode_hex_upper(&leakwatch_types::ntlm(password.as_bytes()))
}

struct Server {
    _tmp: tempfile::TempDir,
    data: DataDir,
    base: String,
    admin: String,
    analyst: String,
    owner: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    done: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    _writer: AuditWriter,
}

/// Organization `acme` (acme.example) and `mixed` (acme.example and
/// other.example). Breaches: `Corp` (2019): alice (with her current
/// password), bob, stranger (not in the directory) at acme.example, eve
/// elsewhere with `hunter2`; `Stealer1` (a stealer log, 2024): carol, for
/// shop.example.net; `Hidden` (sensitive, 2021): dave. Directory of acme:
/// alice, bob, carol, zed (`hunter2`, seen once in the corpus) and a disabled
/// frank. Keys: admin, analyst, and `owner`, a domain key for acme.example.
/// The alert outbox of acme holds a delivered, a failing and a pending batch.
async fn start(receiver: Option<u16>) -> Server {
    let tmp = tempfile::tempdir().unwrap();
    let data = DataDir::new(tmp.path().join("data"));
    data.init(Some(&tmp.path().join("data.key"))).unwrap();
    ingest_lines(
        &data,
        "Corp",
        None,
        &[
            "alice@acme.example:Summer2024",
            "bob@acme.example:Bob-Old-2015",
            "stranger@acme.example:whatever1",
            "eve@other.example:hunter2",
        ],
    );
    ingest_lines(
        &data,
        "Stealer1",
        Some(leakwatch_ingest::Format::Stealer),
        &["https://shop.example.net/login:carol@acme.example:shoppw1"],
    );
    ingest_lines(&data, "Hidden", None, &["dave@acme.example:dave-pw-1"]);
    let mut manifest = Manifest::load(data.root()).unwrap().unwrap();
    for b in &mut manifest.breaches {
        b.breach_date = match b.name.as_str() {
            "Corp" => "2019-05-01",
            "Stealer1" => "2024-02-01",
            _ => "2021-03-01",
        }
        .into();
        b.is_sensitive = b.name == "Hidden";
    }
    manifest.generation += 1;
    manifest.store(data.root()).unwrap();

    let store = Store::open(&data).unwrap();
    let keys = data.ensure_keys().unwrap();
    let mut catalog = Catalog::open_in(data.root()).unwrap();
    catalog.add_organization("acme", &["acme.example".into()]).unwrap();
    catalog.add_organization("mixed", &["acme.example".into(), "other.example".into()]).unwrap();
    let csv = format!(
        "email,nt_hash,disabled\nalice@acme.example,{},false\nbob@acme.example,{},false\ncarol@acme.example,{},false\n\
         zed@acme.example,{},false\nfrank@acme.example,{},true\n",
        nt("Summer2024"),
        nt("Bob-New-2027!"),
        nt("Carol-Fine-88"),
        nt("hunter2"),
        nt("Summer2024"),
    );
    let parsed = parse_directory(csv.as_bytes(), DirectoryFormat::Csv, "acme.example");
    leakwatch_org::import(&mut catalog, &store, &keys.directory_keys(), "acme", parsed.entries, "csv")
        .unwrap();

    // The outbox: three batches of one destination, then their fates.
    let alert_keys = leakwatch_alert::AlertKeys::new(&keys);
    let url = match receiver {
        Some(port) => format!("http://127.0.0.1:{port}/hook"),
        None => "https://hooks.acme.example/leakwatch".to_owned(),
    };
    let destination = leakwatch_alert::Destination::webhook(
        &url,
        zeroize::Zeroizing::new(b"0123456789abcdef0123".to_vec()),
        false,
    )
    .unwrap();
    let baseline = Scan { generation: 1, macs: Vec::new() };
    let alert_id = destination.add_to(&mut catalog, "acme", &alert_keys, &baseline).unwrap();
    let org_id = catalog.alert_routes().unwrap()[0].org_id;
    for (generation, id) in [(2, "d-delivered"), (3, "d-failing"), (4, "d-pending")] {
        let batch = NewDelivery {
            alert_id,
            delivery_id: id.into(),
            exposures: generation,
            sealed: alert_keys.seal(b"{}"),
        };
        assert!(catalog.record_scan(org_id, &Scan { generation, macs: Vec::new() }, &[batch]).unwrap());
    }
    let outbox = catalog.alert_deliveries(alert_id, 10).unwrap();
    let id_of = |d: &str| outbox.iter().find(|b| b.delivery_id == d).unwrap().id;
    catalog.begin_attempt(id_of("d-delivered"), 0).unwrap();
    catalog.delivered(id_of("d-delivered")).unwrap();
    for _ in 0..3 {
        catalog.begin_attempt(id_of("d-failing"), i64::MAX / 2).unwrap();
    }
    catalog.attempt_failed(id_of("d-failing"), "connection refused <by> the receiver", false).unwrap();

    let mut create = |name: &str, role: Role, domains: &[&str]| {
        let key = NewKey {
            name: name.into(),
            role,
            domains: domains.iter().map(|d| d.to_string()).collect(),
            rate_limit_per_minute: Some(0),
        };
        catalog.create_key(&key).unwrap().secret
    };
    let admin = create("admin", Role::Admin, &[]);
    let analyst = create("analyst", Role::Analyst, &[]);
    let owner = create("owner", Role::Domain, &["acme.example"]);
    drop(catalog);

    let limits = Limits { key_per_minute: 0, anonymous_per_minute: 0, ..Limits::default() };
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
        admin,
        analyst,
        owner,
        stop: Some(stop),
        done: Some(done),
        _writer: writer,
    }
}

impl Server {
    async fn stop(mut self) {
        self.stop.take().unwrap().send(()).unwrap();
        let done = self.done.take().unwrap();
        tokio::time::timeout(Duration::from_secs(10), done).await.unwrap().unwrap().unwrap();
    }

    fn audit_rows(&self) -> Vec<AuditEntry> {
        let catalog = Catalog::open_in(self.data.root()).unwrap();
        catalog.audit_entries(&AuditFilter::default()).unwrap().into_iter().map(|r| r.entry).collect()
    }

    /// Signs in with `key`; the session cookie and the session's CSRF token.
    async fn sign_in(&self, key: &str) -> Session {
        let form = client().get(format!("{}/ui/signin", self.base)).send().await.unwrap();
        let pre = set_cookie(form.headers(), "lw_signin").expect("a sign-in cookie");
        let pre = pre.split(';').next().unwrap().to_owned();
        let token = csrf_of(&form.text().await.unwrap());
        let r = client()
            .post(format!("{}/ui/signin", self.base))
            .header("cookie", pre)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("csrf={token}&key={}", urlencode(key)))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303);
        let cookie = set_cookie(r.headers(), "lw_session").expect("a session cookie");
        let session = Session { cookie: cookie.split(';').next().unwrap().to_owned(), csrf: String::new() };
        let (status, _, body) = get(&format!("{}/ui/search", self.base), Some(&session)).await;
        assert_eq!(status, 200);
        Session { csrf: csrf_of(&body), ..session }
    }

    async fn page(&self, session: &Session, path: &str) -> (u16, String) {
        let (status, _, body) = get(&format!("{}{path}", self.base), Some(session)).await;
        (status, body)
    }

    async fn post(&self, session: &Session, path: &str, body: &str) -> (u16, HeaderMap, String) {
        post(&format!("{}{path}", self.base), session, body).await
    }
}

/// The cells of each body row of the table with id `id`, as text.
fn table(body: &str, id: &str) -> Vec<Vec<String>> {
    let start = body.find(&format!("id=\"{id}\"")).unwrap_or_else(|| panic!("no table {id}: {body}"));
    let rest = &body[start..];
    let tbody = &rest[rest.find("<tbody>").unwrap()..rest.find("</tbody>").unwrap()];
    tbody
        .split("<tr")
        .skip(1)
        .map(|row| {
            row.split("<td")
                .skip(1)
                .map(|cell| {
                    let inner = &cell[cell.find('>').unwrap() + 1..cell.find("</td>").unwrap()];
                    text(inner)
                })
                .collect()
        })
        .collect()
}

/// Markup stripped, entities left as they are.
fn text(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}

fn column(rows: &[Vec<String>], i: usize) -> Vec<&str> {
    rows.iter().map(|r| r[i].as_str()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_exactly_the_exposed_accounts_most_urgent_first() {
    let s = start(None).await;
    let analyst = s.sign_in(&s.analyst).await;
    let (status, body) = s.page(&analyst, "/ui/org/acme").await;
    assert_eq!(status, 200, "{body}");

    // Stealer-log infections come first on the page.
    let stealer_at = body.find("id=\"stealer\"").unwrap();
    assert!(
        stealer_at < body.find("id=\"exposure\"").unwrap() && stealer_at < body.find("id=\"audit\"").unwrap()
    );
    assert_eq!(table(&body, "stealer-table"), [["carol@acme.example", "Stealer1", "shop.example.net"]]);

    // Exposed accounts per breach: the domain's addresses and the directory's.
    let breaches = table(&body, "breach-table");
    assert_eq!(
        breaches,
        [
            ["Stealer1 title stealer log", "2024-02-01", "1"],
            ["Corp title", "2019-05-01", "3"],
            ["Hidden title", "2021-03-01", "1"],
        ]
    );
    assert_eq!(body.matches("<svg class=\"chart\"").count(), 2, "two charts");
    assert!(body.contains("2019: 3 accounts exposed (0 by stealer logs), 3 in total to date"), "{body}");
    assert!(body.contains("2024: 1 accounts exposed (1 by stealer logs), 5 in total to date"), "{body}");

    // The directory audit, as `audit --org` orders it; frank is disabled, and
    // no NT hash (nor any keyed hash of one) is on the page.
    let audit = table(&body, "audit-table");
    assert_eq!(
        column(&audit, 1),
        ["alice@acme.example", "carol@acme.example", "zed@acme.example", "bob@acme.example"]
    );
    assert_eq!(column(&audit, 0), ["critical", "high", "high", "low"]);
    assert_eq!(audit[0][2], "Corp", "alice's own current password leaked in Corp");
    assert_eq!(audit[1][3], "shop.example.net");
    assert!(audit[2][4].starts_with("1 ("), "zed's password is seen once: {:?}", audit[2]);
    assert_eq!(audit[3][5], "Corp");
    for password in ["Summer2024", "hunter2", "Carol-Fine-88", "Bob-New-2027!"] {
        assert!(!body.to_uppercase().contains(&nt(password)), "an NT hash on the page");
    }
    assert!(body.contains("<b>6</b> exposed accounts"), "alice bob carol dave stranger zed");

    // The outbox with each batch's state, attempts and last error (escaped).
    let outbox = table(&body, "outbox-1");
    let states: Vec<(&str, &str, &str)> =
        outbox.iter().map(|r| (r[1].split(' ').next().unwrap(), r[3].as_str(), r[4].as_str())).collect();
    assert_eq!(
        states,
        [("d-pending", "0", "pending"), ("d-failing", "3", "failing"), ("d-delivered", "1", "delivered")]
    );
    assert_eq!(outbox[1][5], "connection refused &lt;by&gt; the receiver");
    assert!(body.contains("No forced reset was applied"));

    // Every view is audited, per domain, with the exposed accounts as results.
    let rows = s.audit_rows();
    let viewed: Vec<&AuditEntry> = rows.iter().filter(|r| r.endpoint == "ui org").collect();
    assert_eq!(viewed.len(), 1);
    assert_eq!(
        (
            viewed[0].key_name.as_str(),
            viewed[0].subject.clear.as_deref(),
            viewed[0].results,
            viewed[0].status
        ),
        ("analyst", Some("acme.example"), 6, 200)
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_domain_key_sees_only_the_organizations_it_owns_and_no_sensitive_breach() {
    let s = start(None).await;
    let owner = s.sign_in(&s.owner).await;
    let (status, list) = s.page(&owner, "/ui/orgs").await;
    assert_eq!(status, 200);
    assert!(list.contains("/ui/org/acme\"") && !list.contains("/ui/org/mixed"), "{list}");

    let (status, body) = s.page(&owner, "/ui/org/mixed").await;
    assert_eq!(status, 404, "other.example is not the key's: {body}");
    assert!(!body.contains("other.example"));
    let (status, _) = s.page(&owner, "/ui/org/nosuch").await;
    assert_eq!(status, 404);

    let (status, body) = s.page(&owner, "/ui/org/acme").await;
    assert_eq!(status, 200);
    assert!(!body.contains("Hidden"), "a sensitive breach is never named to a domain key");
    assert_eq!(column(&table(&body, "breach-table"), 0), ["Stealer1 title stealer log", "Corp title"]);
    assert!(body.contains("<b>5</b> exposed accounts"));
    assert!(!body.contains("/reset/apply") && !body.contains("Send a test alert"));

    // A domain key previews no reset; the refusal is audited too.
    let (status, _, _) = s.post(&owner, "/ui/org/acme/reset", &format!("csrf={}", owner.csrf)).await;
    assert_eq!(status, 403);

    let analyst = s.sign_in(&s.analyst).await;
    let (_, list) = s.page(&analyst, "/ui/orgs").await;
    assert!(list.contains("/ui/org/acme\"") && list.contains("/ui/org/mixed\""));
    // An organization without a directory shows its domains' exposures alone.
    let (status, mixed) = s.page(&analyst, "/ui/org/mixed").await;
    assert_eq!(status, 200);
    assert!(mixed.contains("No directory imported yet") && !mixed.contains("id=\"audit-table\""));
    assert_eq!(
        column(&table(&mixed, "breach-table"), 2),
        ["1", "4", "1"],
        "Stealer1: carol; Corp: alice bob stranger eve; Hidden: dave"
    );
    let (status, _, _) = s.post(&analyst, "/ui/org/mixed/reset", &format!("csrf={}", analyst.csrf)).await;
    assert_eq!(status, 400, "no directory to reset");

    let rows = s.audit_rows();
    let refused: Vec<(u16, Option<&str>)> = rows
        .iter()
        .filter(|r| r.endpoint == "ui org" && r.key_name == "owner")
        .map(|r| (r.status, r.subject.clear.as_deref()))
        .collect();
    assert_eq!(refused, [(404, None), (404, None), (200, Some("acme.example"))]);
    assert!(rows.iter().any(|r| r.endpoint == "ui reset" && r.key_name == "owner" && r.status == 403));
    assert!(rows.iter().any(|r| r.endpoint == "ui orgs" && r.key_name == "owner" && r.results == 1));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_is_previewed_then_applied_once_by_an_admin_and_audited_with_its_key() {
    let s = start(None).await;
    let admin = s.sign_in(&s.admin).await;
    let analyst = s.sign_in(&s.analyst).await;

    // Without the session's CSRF token, nothing is previewed or applied.
    let (status, _, _) = s.post(&admin, "/ui/org/acme/reset", "").await;
    assert_eq!(status, 403);
    let (status, _, _) = s.post(&admin, "/ui/org/acme/reset", &format!("csrf={}", analyst.csrf)).await;
    assert_eq!(status, 403, "another session's token");

    let (status, _, preview) = s.post(&admin, "/ui/org/acme/reset", &format!("csrf={}", admin.csrf)).await;
    assert_eq!(status, 200, "{preview}");
    assert!(preview.contains("Dry run: 2 accounts would be reset"), "{preview}");
    let plan = table(&preview, "reset-plan");
    assert_eq!(column(&plan, 0), ["alice@acme.example", "carol@acme.example"]);
    assert_eq!(plan[0][3], "own current password leaked in Corp");
    assert_eq!(column(&plan, 2), ["would be listed", "would be listed"]);
    let confirm = field_of(&preview, "confirm");
    let common = format!("csrf={}&include_common=1", admin.csrf);
    let (_, _, wider) = s.post(&admin, "/ui/org/acme/reset", &common).await;
    assert_eq!(
        column(&table(&wider, "reset-plan"), 0),
        ["alice@acme.example", "carol@acme.example", "zed@acme.example"]
    );

    // An analyst may preview but not apply, even with a token of its own.
    let (status, _, analyst_preview) =
        s.post(&analyst, "/ui/org/acme/reset", &format!("csrf={}", analyst.csrf)).await;
    assert_eq!(status, 200);
    assert!(!analyst_preview.contains("name=\"confirm\""));
    let apply = |session: &Session, token: &str| format!("csrf={}&confirm={token}", session.csrf);
    let (status, _, _) = s.post(&analyst, "/ui/org/acme/reset/apply", &apply(&analyst, &confirm)).await;
    assert_eq!(status, 403);
    // Nor without the CSRF token, nor with a made-up confirmation, nor for another organization.
    let (status, _, _) = s.post(&admin, "/ui/org/acme/reset/apply", &format!("confirm={confirm}")).await;
    assert_eq!(status, 403);
    let (status, _, _) = s.post(&admin, "/ui/org/acme/reset/apply", &apply(&admin, &"0".repeat(64))).await;
    assert_eq!(status, 403);
    let (status, _, _) = s.post(&admin, "/ui/org/mixed/reset/apply", &apply(&admin, &confirm)).await;
    assert_eq!(status, 403);
    assert!(
        !s.audit_rows().iter().any(|r| r.endpoint.starts_with("ui reset --apply")),
        "nothing applied yet"
    );

    let (status, _, applied) = s.post(&admin, "/ui/org/acme/reset/apply", &apply(&admin, &confirm)).await;
    assert_eq!(status, 200, "{applied}");
    assert!(applied.contains("2 accounts reset through a reset list, recorded in the audit log under admin"));
    let (status, _, _) = s.post(&admin, "/ui/org/acme/reset/apply", &apply(&admin, &confirm)).await;
    assert_eq!(status, 403, "a preview applies once");

    let rows = s.audit_rows();
    let resets: Vec<&AuditEntry> =
        rows.iter().filter(|r| r.endpoint == "ui reset --apply --org acme (reset list)").collect();
    assert_eq!(resets.len(), 2);
    assert!(resets.iter().all(|r| r.key_name == "admin" && r.status == 200 && r.subject.clear.is_none()));
    let previews: Vec<(&str, u64)> = rows
        .iter()
        .filter(|r| r.endpoint == "ui reset --org acme")
        .map(|r| (r.key_name.as_str(), r.results))
        .collect();
    assert_eq!(previews, [("admin", 2), ("admin", 3), ("analyst", 2)]);

    // The reset list, then the dashboard's record of the run.
    let (status, headers, csv) = s.post(&admin, "/ui/org/acme/reset/list", &apply(&admin, &confirm)).await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "text/csv; charset=utf-8");
    assert!(headers["content-disposition"].to_str().unwrap().contains("reset-acme.csv"));
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "email,username,dn,reasons");
    assert_eq!(lines[1], "alice@acme.example,,,own current password leaked in Corp");
    assert!(lines[2].starts_with("carol@acme.example,,,device in a stealer log"));
    let (_, dashboard) = s.page(&admin, "/ui/org/acme").await;
    let runs = table(&dashboard, "reset-table");
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0][1], "admin (web)");
    assert_eq!(runs[0][2], "reset list");
    assert_eq!(runs[0][3], "2: alice@acme.example, carol@acme.example");

    // A directory read over LDAP: the preview names the command that sets the
    // flag on the server, which holds the write credentials `serve` does not.
    let store = Store::open(&s.data).unwrap();
    let keys = s.data.ensure_keys().unwrap();
    let mut catalog = Catalog::open_in(s.data.root()).unwrap();
    let csv = format!("email,nt_hash\nalice@acme.example,{}\n", nt("Summer2024"));
    let parsed = parse_directory(csv.as_bytes(), DirectoryFormat::Csv, "acme.example");
    leakwatch_org::import(
        &mut catalog,
        &store,
        &keys.directory_keys(),
        "acme",
        parsed.entries,
        "ldap/openldap",
    )
    .unwrap();
    let (_, _, ldap) = s.post(&admin, "/ui/org/acme/reset", &format!("csrf={}", admin.csrf)).await;
    assert!(ldap.contains("read over LDAP (ldap/openldap)"), "{ldap}");
    assert!(ldap.contains("leakwatch reset --org acme --apply --ldap URL"));
    assert_eq!(column(&table(&ldap, "reset-plan"), 0), ["alice@acme.example"]);
    s.stop().await;
}

/// A receiver for one webhook POST: answers 200 and hands back the request.
fn receiver() -> (u16, std::thread::JoinHandle<String>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut request = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = stream.read(&mut buf).unwrap();
            request.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&request);
            if let Some(end) = text.find("\r\n\r\n") {
                let length = text[..end]
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse::<usize>().unwrap())
                    })
                    .unwrap_or(0);
                if request.len() >= end + 4 + length {
                    break;
                }
            }
            if n == 0 {
                break;
            }
        }
        stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").unwrap();
        String::from_utf8_lossy(&request).into_owned()
    });
    (port, handle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_test_alert_goes_to_the_destination_from_an_admin_only() {
    let (port, got) = receiver();
    let s = start(Some(port)).await;
    let analyst = s.sign_in(&s.analyst).await;
    let (status, _, _) = s.post(&analyst, "/ui/org/acme/alert/test", &format!("csrf={}", analyst.csrf)).await;
    assert_eq!(status, 403);
    let admin = s.sign_in(&s.admin).await;
    let (status, _, _) = s.post(&admin, "/ui/org/acme/alert/test", "").await;
    assert_eq!(status, 403, "no CSRF token");
    let (status, _, body) = s.post(&admin, "/ui/org/acme/alert/test", &format!("csrf={}", admin.csrf)).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("delivered"), "{body}");
    let request = got.join().unwrap();
    assert!(request.starts_with("POST /hook "), "{request}");
    assert!(request.contains("LeakwatchTest") && request.contains("leakwatch-test@acme.example"));
    assert!(request.to_ascii_lowercase().contains("x-leakwatch-signature: t="));
    let rows = s.audit_rows();
    let sent: Vec<(&str, u16, u64)> = rows
        .iter()
        .filter(|r| r.endpoint == "ui org alert --test")
        .map(|r| (r.key_name.as_str(), r.status, r.results))
        .collect();
    assert_eq!(sent, [("analyst", 403, 0), ("admin", 200, 1)]);
    s.stop().await;
}

/// The dashboard in headless Chromium (`/usr/bin/chromium` or `$CHROMIUM`),
/// driven by `tests/browser/dashboard.mjs` with npm's `playwright-core`, as
/// `tests/web.rs` drives the other pages. Without Chromium, Node.js or npm
/// the test fails, saying what to install (`.ci/run` installs them).
mod browser {
    use super::*;

    const SCRIPT: &str = include_str!("browser/dashboard.mjs");

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn chromium_opens_the_dashboard_and_applies_a_previewed_reset() {
        let s = start(None).await;
        let seen = run_browser_script("dashboard.mjs", SCRIPT, &[&s.base, &s.admin]).await;
        eprintln!("browser: dashboard opened in {:.0} ms", seen["dashboardMs"].as_f64().unwrap());

        assert_eq!(seen["errors"], serde_json::json!([]), "no script errors and no CSP violations");
        assert_eq!(seen["orgs"], serde_json::json!(["acme", "mixed"]));
        assert_eq!(seen["heading"], "acme");
        let sections: Vec<&str> =
            seen["sections"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
        assert_eq!(
            sections,
            [
                "Stealer-log infections: 1",
                "Exposure by breach and over time",
                "Directory audit: 4 exposed",
                "Alert outbox",
                "Resets",
                "Actions"
            ]
        );
        assert_eq!(seen["stealer"], serde_json::json!(["carol@acme.example"]));
        assert_eq!(
            seen["audit"],
            serde_json::json!([
                "alice@acme.example",
                "carol@acme.example",
                "zed@acme.example",
                "bob@acme.example"
            ])
        );
        assert_eq!(seen["severities"], serde_json::json!(["CRITICAL", "HIGH", "HIGH", "LOW"]));
        assert_eq!(
            seen["breaches"],
            serde_json::json!(["Stealer1 title stealer log", "Corp title", "Hidden title"])
        );
        // Both charts drawn, as wide as the phone's column allows, titled.
        let charts = seen["charts"].as_array().unwrap();
        assert_eq!(charts.len(), 2);
        for c in charts {
            let width = c["width"].as_f64().unwrap();
            assert!(width > 300.0 && width <= 360.0 && c["height"].as_f64().unwrap() > 50.0, "{c}");
        }
        assert_eq!(seen["chartTitles"].as_array().unwrap().len(), 2);
        assert_eq!(seen["overflows"], false, "readable at phone width without scrolling sideways");
        assert_eq!(seen["cardLabel"], "\"Severity\"");
        assert_eq!(seen["overlaps"], false, "a card's cells stack");

        assert_eq!(seen["preview"], "Dry run: 2 accounts would be reset; nothing was changed.");
        assert_eq!(seen["plan"], serde_json::json!(["alice@acme.example", "carol@acme.example"]));
        assert_eq!(seen["previewOverflows"], false);
        assert!(
            seen["applied"].as_str().unwrap().starts_with("2 accounts reset through a reset list"),
            "{}",
            seen["applied"]
        );
        let resets = seen["resets"].as_array().unwrap();
        assert_eq!(resets.len(), 1);
        let run = resets[0].as_str().unwrap();
        assert!(
            run.contains("admin (web)") && run.contains("alice@acme.example, carol@acme.example"),
            "{run}"
        );
        assert_eq!(seen["overflowsAfter"], false);
        assert!(s
            .audit_rows()
            .iter()
            .any(|r| r.endpoint == "ui reset --apply --org acme (reset list)" && r.key_name == "admin"));
        s.stop().await;
    }
}
