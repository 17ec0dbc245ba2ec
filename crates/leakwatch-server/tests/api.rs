//! The HTTP API's contract, driven as a client sees it: every endpoint, role and
//! status code of DESIGN.md §4 and issue 6. Most cases go through the router
//! without a socket (`oneshot`); the `socket` module runs a real server on an
//! ephemeral loopback port with a real HTTP client, including an ingest
//! published while requests are in flight.

use std::sync::OnceLock;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use leakwatch_catalog::{AuditEntry, AuditFilter, Catalog, NewKey, Role, SubjectKind};
use leakwatch_server::{app, AppState, AuditWriter, Limits};
use leakwatch_store::{ingest, BreachInfo, DataDir, IngestOptions, Manifest, Progress};
use leakwatch_types::{encode_hex_upper, ntlm, sha1};
use serde_json::{json, Value};
use tower::ServiceExt;

/// Ingests `lines` (`identity:password`) into breach `name` of `data`.
fn ingest_lines(data: &DataDir, name: &str, domain: &str, lines: &[&str]) {
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
    let input = leakwatch_ingest::Input::open(tmp.path().to_str().unwrap()).unwrap();
    ingest(data, &options, vec![input], &Progress::default(), &mut |_| {}).unwrap();
}

/// Sets catalog flags the way a curator would, and publishes them as a new
/// generation through the store's own manifest API.
fn flag(data: &DataDir, name: &str, edit: impl Fn(&mut leakwatch_store::Breach)) {
    let mut manifest = Manifest::load(data.root()).unwrap().unwrap();
    let breach = manifest.breaches.iter_mut().find(|b| b.name == name).unwrap();
    edit(breach);
    manifest.generation += 1;
    manifest.store(data.root()).unwrap();
}

/// Secrets of the keys every test uses.
struct Keys {
    admin: String,
    analyst: String,
    domain: String,
    limited: String,
}

struct Fixture {
    _tmp: tempfile::TempDir,
    data: DataDir,
    state: AppState,
    router: Router,
    keys: Keys,
    _writer: AuditWriter,
}

/// Five breaches over a small population:
/// - `Adobe` (adobe.com): alice and bob at example-corp.com, carol at gmail.com,
///   the user name `DarkLord99` and the phone number +61412345678;
/// - `Secret` (sensitive), `Gone` (retired), `Rumour` (unverified): alice;
/// - `Spammy` (a spam list, its title sorting first): bob.
fn fixture_with(limits: Limits) -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let data = DataDir::new(tmp.path().join("data"));
    // Its key beside it, in the temporary directory, not in ~/.config.
    data.init(Some(&tmp.path().join("data.key"))).unwrap();
    ingest_lines(
        &data,
        "Adobe",
        "adobe.com",
        &["alice@example-corp.com:password", "bob@example-corp.com:hunter2", "carol@gmail.com:password"],
    );
    // A combo file is read as emails or as user names, by its majority: the
    // user name and the phone number come in a file of their own.
    ingest_lines(&data, "Adobe", "adobe.com", &["DarkLord99:letmein", "+61412345678:qwerty"]);
    ingest_lines(&data, "Secret", "secret.example", &["alice@example-corp.com:password"]);
    ingest_lines(&data, "Gone", "gone.example", &["alice@example-corp.com:password1"]);
    ingest_lines(&data, "Rumour", "rumour.example", &["alice@example-corp.com:password2"]);
    ingest_lines(&data, "Spammy", "spam.example", &["bob@example-corp.com:password3"]);
    flag(&data, "Secret", |b| b.is_sensitive = true);
    flag(&data, "Gone", |b| b.is_retired = true);
    flag(&data, "Rumour", |b| b.is_verified = false);
    flag(&data, "Spammy", |b| {
        b.is_spam_list = true;
        b.title = "AAA spam list".into();
    });

    let mut catalog = Catalog::open_in(data.root()).unwrap();
    let mut create = |name: &str, role: Role, domains: &[&str], limit: Option<u32>| {
        let key = NewKey {
            name: name.into(),
            role,
            domains: domains.iter().map(|d| d.to_string()).collect(),
            rate_limit_per_minute: limit,
        };
        catalog.create_key(&key).unwrap().secret
    };
    let keys = Keys {
        admin: create("admin", Role::Admin, &[], Some(0)),
        analyst: create("analyst", Role::Analyst, &[], Some(0)),
        domain: create("corp", Role::Domain, &["example-corp.com"], Some(0)),
        limited: create("limited", Role::Analyst, &[], Some(2)),
    };
    let (state, writer) = AppState::open(data.clone(), limits).unwrap();
    let router = app(state.clone(), Duration::from_secs(10));
    Fixture { _tmp: tmp, data, state, router, keys, _writer: writer }
}

fn fixture() -> Fixture {
    fixture_with(Limits { key_per_minute: 0, anonymous_per_minute: 0, ..Limits::default() })
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }

    fn header(&self, name: &str) -> &str {
        self.headers.get(name).map_or("", |v| v.to_str().unwrap())
    }
}

async fn send(router: &Router, method: &str, uri: &str, headers: &[(&str, &str)]) -> Answer {
    let mut request = Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = router.clone().oneshot(request.body(Body::empty()).unwrap()).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Answer { status, headers, body: String::from_utf8(body.to_vec()).unwrap() }
}

/// A GET as an HIBP client sends it: with a user agent, and a key if given.
async fn get(router: &Router, uri: &str, key: Option<&str>) -> Answer {
    match key {
        Some(key) => {
            send(router, "GET", uri, &[("user-agent", "leakwatch-tests"), ("hibp-api-key", key)]).await
        }
        None => send(router, "GET", uri, &[("user-agent", "leakwatch-tests")]).await,
    }
}

fn prefix_of(hash: &[u8]) -> String {
    encode_hex_upper(hash)[..5].to_owned()
}

fn names(value: &Value) -> Vec<&str> {
    value.as_array().unwrap().iter().map(|b| b["Name"].as_str().unwrap()).collect()
}

mod range {
    use super::*;

    #[tokio::test]
    async fn a_range_is_hibp_text_with_cache_headers() {
        let f = fixture();
        let hash = sha1(b"password");
        let a = get(&f.router, &format!("/range/{}", prefix_of(&hash)), None).await;
        assert_eq!(a.status, 200);
        assert_eq!(a.header("content-type"), "text/plain");
        assert_eq!(a.header("cache-control"), "public, max-age=2678400");
        assert_eq!(a.header("access-control-allow-origin"), "*");
        assert!(a.header("etag").starts_with('"'), "{}", a.header("etag"));
        assert!(httpdate::parse_http_date(a.header("last-modified")).is_ok());
        // "password" is in Adobe twice (alice, carol) and in Secret once.
        let line = format!("{}:3", &encode_hex_upper(&hash)[5..]);
        let lines: Vec<&str> = a.body.split("\r\n").collect();
        assert!(lines.contains(&line.as_str()), "{:?}", a.body);
        assert!(!a.body.ends_with("\r\n") && !a.body.contains("\n\n"));
        assert!(lines.windows(2).all(|w| w[0] < w[1]));
        assert!(lines.iter().all(|l| l.len() > 36 && l.as_bytes()[35] == b':'));
        assert_eq!(a.body, a.body.to_uppercase());

        let lower = get(&f.router, &format!("/range/{}", prefix_of(&hash).to_lowercase()), None).await;
        assert_eq!((lower.status, &lower.body), (StatusCode::OK, &a.body));
        assert_eq!(lower.header("etag"), a.header("etag"));
        let sha1_mode = get(&f.router, &format!("/range/{}?mode=SHA1", prefix_of(&hash)), None).await;
        assert_eq!(sha1_mode.body, a.body);
        let trailing = get(&f.router, &format!("/range/{}?", prefix_of(&hash)), None).await;
        assert_eq!(trailing.body, a.body);
    }

    #[tokio::test]
    async fn ntlm_mode_reads_the_ntlm_corpus() {
        let f = fixture();
        let hash = ntlm(b"letmein");
        let a = get(&f.router, &format!("/range/{}?Mode=ntlm", prefix_of(&hash)), None).await;
        assert_eq!(a.status, 200);
        let line = format!("{}:1", &encode_hex_upper(&hash)[5..]);
        assert!(a.body.split("\r\n").any(|l| l == line), "{:?}", a.body);
        assert!(a.body.split("\r\n").all(|l| l.len() > 28 && l.as_bytes()[27] == b':'));
        let sha1 = get(&f.router, &format!("/range/{}", prefix_of(&hash)), None).await;
        assert_ne!(sha1.header("etag"), a.header("etag"));
    }

    #[tokio::test]
    async fn every_valid_prefix_answers_and_bad_ones_are_400_in_plain_text() {
        let f = fixture();
        // An empty range is never an empty body: clients split it on CRLF and
        // parse each piece. It is padding only, the same on every request.
        let empty = get(&f.router, "/range/00000", None).await;
        assert_eq!(empty.status, StatusCode::OK);
        let lines: Vec<&str> = empty.body.split("\r\n").collect();
        assert!((10..=209).contains(&lines.len()), "{} lines", lines.len());
        assert!(lines.iter().all(|l| l.len() == 37 && l.ends_with(":0")), "{:?}", empty.body);
        let again = get(&f.router, "/range/00000", None).await;
        assert_eq!((&again.body, again.header("etag")), (&empty.body, empty.header("etag")));
        for bad in ["/range/5BAA", "/range/5BAA61", "/range/XYZ12", "/range/%20BAA6"] {
            let a = get(&f.router, bad, None).await;
            assert_eq!(a.status, 400, "{bad}");
            assert_eq!(a.body, "The hash prefix was not in a valid format", "{bad}");
            assert!(a.header("content-type").starts_with("text/plain"));
        }
        assert_eq!(get(&f.router, "/range/5BAA6?mode=md5", None).await.status, 400);
    }

    #[tokio::test]
    async fn padding_mixes_zero_count_lines_into_sorted_order() {
        let f = fixture();
        let hash = sha1(b"password");
        let uri = format!("/range/{}", prefix_of(&hash));
        let plain = get(&f.router, &uri, None).await;
        let a = send(&f.router, "GET", &uri, &[("Add-Padding", "TRUE")]).await;
        assert_eq!(a.status, 200);
        let lines: Vec<&str> = a.body.split("\r\n").collect();
        assert!((810..=1009).contains(&lines.len()), "{} lines", lines.len());
        assert!(lines.windows(2).all(|w| w[0] < w[1]), "sorted");
        for real in plain.body.split("\r\n") {
            assert!(lines.contains(&real));
        }
        let padding = lines.iter().filter(|l| l.ends_with(":0")).count();
        assert_eq!(padding + plain.body.split("\r\n").count(), lines.len());
        assert!(lines.iter().all(|l| l.len() > 36 && l.as_bytes()[35] == b':'));
        assert_eq!(a.header("etag"), format!("W/{}", plain.header("etag")));
        let again = send(&f.router, "GET", &uri, &[("add-padding", "true")]).await;
        assert_ne!(again.body, a.body, "padding is random");
    }

    #[tokio::test]
    async fn answers_and_tags_do_not_depend_on_the_range_cache() {
        let cached = fixture();
        let uncached = fixture_with(Limits { range_cache_bytes: 0, ..Limits::default() });
        for prefix in ["5BAA6", "00000", "5baa6", "FFFFF"] {
            for _ in 0..2 {
                let a = get(&cached.router, &format!("/range/{prefix}"), None).await;
                let b = get(&uncached.router, &format!("/range/{prefix}"), None).await;
                assert_eq!((a.status, &a.body, a.header("etag")), (b.status, &b.body, b.header("etag")));
            }
        }
    }

    #[tokio::test]
    async fn if_none_match_revalidates_without_a_body() {
        let f = fixture();
        let first = get(&f.router, "/range/5BAA6", None).await;
        let tag = first.header("etag").to_owned();
        let a = send(&f.router, "GET", "/range/5BAA6", &[("if-none-match", &tag)]).await;
        assert_eq!(a.status, 304);
        assert_eq!(a.body, "");
        assert_eq!(a.header("etag"), tag);
        assert_eq!(a.header("cache-control"), "public, max-age=2678400");
        let stale = send(&f.router, "GET", "/range/5BAA6", &[("if-none-match", "\"s0\"")]).await;
        assert_eq!(stale.status, 200);
    }

    #[tokio::test]
    async fn head_and_the_cors_preflight() {
        let f = fixture();
        let head = send(&f.router, "HEAD", "/range/5BAA6", &[]).await;
        assert_eq!((head.status, head.body.as_str()), (StatusCode::OK, ""));
        assert_eq!(head.header("content-type"), "text/plain");
        let pre =
            send(&f.router, "OPTIONS", "/range/5BAA6", &[("access-control-request-headers", "add-padding")])
                .await;
        assert_eq!(pre.status, 204);
        assert_eq!(pre.header("access-control-allow-origin"), "*");
        // `hibp-api-key` too: under `--range-own-dumps key` a page's script
        // sends the key the user gave it to see the own dumps' counts.
        let allowed: Vec<String> = pre
            .header("access-control-allow-headers")
            .split(',')
            .map(|h| h.trim().to_ascii_lowercase())
            .collect();
        assert_eq!(allowed, ["add-padding", "hibp-api-key"]);
    }

    #[tokio::test]
    async fn ranges_need_no_key_and_no_user_agent_and_are_not_rate_limited() {
        let f = fixture_with(Limits { key_per_minute: 1, anonymous_per_minute: 1, ..Limits::default() });
        for _ in 0..5 {
            assert_eq!(send(&f.router, "GET", "/range/5BAA6", &[]).await.status, 200);
        }
    }
}

mod catalog {
    use super::*;

    #[tokio::test]
    async fn breaches_are_sorted_by_title_without_sensitive_ones_for_anonymous_callers() {
        let f = fixture();
        let a = get(&f.router, "/api/v3/breaches", None).await;
        assert_eq!(a.status, 200);
        assert_eq!(a.header("content-type"), "application/json; charset=utf-8");
        assert_eq!(a.header("access-control-allow-origin"), "*");
        assert_eq!(names(&a.json()), ["Spammy", "Adobe", "Gone", "Rumour"]);
        let admin = get(&f.router, "/api/v3/breaches", Some(&f.keys.admin)).await;
        assert_eq!(names(&admin.json()), ["Spammy", "Adobe", "Gone", "Rumour", "Secret"]);
        let domain_key = get(&f.router, "/api/v3/breaches", Some(&f.keys.domain)).await;
        assert_eq!(names(&domain_key.json()), ["Spammy", "Adobe", "Gone", "Rumour"]);
    }

    #[tokio::test]
    async fn a_breach_object_has_every_hibp_field_with_its_type() {
        let f = fixture();
        let a = get(&f.router, "/api/v3/breach/adobe", None).await;
        assert_eq!(a.status, 200);
        let b = a.json();
        assert_eq!(b["Name"], "Adobe");
        assert_eq!(b["Title"], "Adobe title");
        assert_eq!(b["Domain"], "adobe.com");
        assert_eq!(b["PwnCount"], 5);
        assert_eq!(b["DataClasses"], json!(["Email addresses", "Passwords", "Phone numbers", "Usernames"]));
        assert!(b["Attribution"].is_null());
        assert_eq!(b["BreachDate"].as_str().unwrap().len(), 10);
        for date in ["AddedDate", "ModifiedDate"] {
            let d = b[date].as_str().unwrap();
            assert!(d.len() == 20 && d.ends_with('Z') && &d[10..11] == "T", "{date}: {d}");
        }
        for field in [
            "IsVerified",
            "IsFabricated",
            "IsSensitive",
            "IsRetired",
            "IsSpamList",
            "IsMalware",
            "IsSubscriptionFree",
            "IsStealerLog",
        ] {
            assert!(b[field].is_boolean(), "{field}");
        }
        for field in ["Description", "LogoPath"] {
            assert!(b[field].is_string(), "{field}");
        }
    }

    #[tokio::test]
    async fn filters_match_parameter_names_in_any_case() {
        let f = fixture();
        let a = get(&f.router, "/api/v3/breaches?Domain=ADOBE.com", None).await;
        assert_eq!(names(&a.json()), ["Adobe"]);
        let spam = get(&f.router, "/api/v3/breaches?isSpamList=true", None).await;
        assert_eq!(names(&spam.json()), ["Spammy"]);
        let not_spam = get(&f.router, "/api/v3/breaches?ISSPAMLIST=False", None).await;
        assert_eq!(names(&not_spam.json()), ["Adobe", "Gone", "Rumour"]);
        let none = get(&f.router, "/api/v3/breaches?domain=nowhere.example", None).await;
        assert_eq!((none.status, none.json()), (StatusCode::OK, json!([])));
        assert_eq!(get(&f.router, "/api/v3/breaches?isSpamList=perhaps", None).await.status, 400);
    }

    #[tokio::test]
    async fn sensitive_breaches_are_hidden_from_anonymous_and_domain_callers() {
        let f = fixture();
        let anonymous = get(&f.router, "/api/v3/breach/Secret", None).await;
        assert_eq!((anonymous.status, anonymous.body.as_str()), (StatusCode::NOT_FOUND, ""));
        assert_eq!(get(&f.router, "/api/v3/breach/Secret", Some(&f.keys.domain)).await.status, 404);
        let analyst = get(&f.router, "/api/v3/breach/secret", Some(&f.keys.analyst)).await;
        assert_eq!(analyst.status, 200);
        assert_eq!(analyst.json()["IsSensitive"], true);
        assert_eq!(get(&f.router, "/api/v3/breach/NoSuchBreach", None).await.status, 404);
    }

    #[tokio::test]
    async fn the_latest_breach_and_the_data_classes() {
        let f = fixture();
        // Every breach was added within the same second or so; the latest by
        // AddedDate is one of those the caller may see.
        let latest = get(&f.router, "/api/v3/latestbreach", None).await;
        assert_eq!(latest.status, 200);
        assert_ne!(latest.json()["Name"], "Secret");
        let classes = get(&f.router, "/api/v3/dataclasses", None).await;
        assert_eq!(classes.json(), json!(["Email addresses", "Passwords", "Phone numbers", "Usernames"]));
    }

    #[tokio::test]
    async fn the_catalog_wants_a_user_agent_and_refuses_a_wrong_key() {
        let f = fixture();
        let a = send(&f.router, "GET", "/api/v3/breaches", &[]).await;
        assert_eq!(a.status, 403);
        let wrong = get(&f.router, "/api/v3/breaches", Some("lw_0000")).await;
        assert_eq!(wrong.status, 401);
        assert_eq!(wrong.body, "Access denied due to invalid hibp-api-key.");
    }
}

mod account {
    use super::*;

    #[tokio::test]
    async fn a_key_is_required() {
        let f = fixture();
        let missing = get(&f.router, "/api/v3/breachedaccount/alice@example-corp.com", None).await;
        assert_eq!(missing.status, 401);
        assert_eq!(missing.body, "Access denied due to missing hibp-api-key.");
        assert!(missing.header("content-type").starts_with("text/plain"));
        let wrong = get(&f.router, "/api/v3/breachedaccount/alice@example-corp.com", Some("lw_nope")).await;
        assert_eq!(wrong.status, 401);
        assert_eq!(wrong.body, "Access denied due to invalid hibp-api-key.");
        let no_agent = send(
            &f.router,
            "GET",
            "/api/v3/breachedaccount/alice@example-corp.com",
            &[("hibp-api-key", &f.keys.analyst)],
        )
        .await;
        assert_eq!(no_agent.status, 403);
    }

    #[tokio::test]
    async fn truncated_by_default_without_sensitive_or_retired_breaches() {
        let f = fixture();
        let a = get(&f.router, "/api/v3/breachedaccount/alice@example-corp.com", Some(&f.keys.admin)).await;
        assert_eq!(a.status, 200);
        assert_eq!(a.header("content-type"), "application/json; charset=utf-8");
        assert_eq!(a.json(), json!([{"Name": "Adobe"}, {"Name": "Rumour"}]));
        let full = get(
            &f.router,
            "/api/v3/breachedaccount/alice@example-corp.com?truncateResponse=false",
            Some(&f.keys.analyst),
        )
        .await;
        assert_eq!(names(&full.json()), ["Adobe", "Rumour"]);
        assert_eq!(full.json()[0]["Domain"], "adobe.com");
    }

    #[tokio::test]
    async fn filters_by_domain_and_verification() {
        let f = fixture();
        let key = Some(f.keys.analyst.as_str());
        let verified =
            get(&f.router, "/api/v3/breachedaccount/alice@example-corp.com?IncludeUnverified=false", key)
                .await;
        assert_eq!(verified.json(), json!([{"Name": "Adobe"}]));
        let domain =
            get(&f.router, "/api/v3/breachedaccount/alice@example-corp.com?domain=rumour.example", key).await;
        assert_eq!(domain.json(), json!([{"Name": "Rumour"}]));
        let none =
            get(&f.router, "/api/v3/breachedaccount/alice@example-corp.com?domain=nowhere.example", key)
                .await;
        assert_eq!((none.status, none.body.as_str()), (StatusCode::NOT_FOUND, ""));
    }

    #[tokio::test]
    async fn the_path_is_decoded_trimmed_and_case_insensitive() {
        let f = fixture();
        let key = Some(f.keys.analyst.as_str());
        for path in ["%20Alice%40Example-Corp.COM%20", "ALICE@EXAMPLE-CORP.COM", "alice%40example-corp.com?"]
        {
            let a = get(&f.router, &format!("/api/v3/breachedaccount/{path}"), key).await;
            assert_eq!(a.json(), json!([{"Name": "Adobe"}, {"Name": "Rumour"}]), "{path}");
        }
        let user = get(&f.router, "/api/v3/breachedaccount/darklord99", key).await;
        assert_eq!(user.json(), json!([{"Name": "Adobe"}]));
        for phone in ["61412345678", "%2B61412345678"] {
            let a = get(&f.router, &format!("/api/v3/breachedaccount/{phone}"), key).await;
            assert_eq!(a.json(), json!([{"Name": "Adobe"}]), "{phone}");
        }
    }

    #[tokio::test]
    async fn not_found_is_an_empty_404_and_bad_input_a_json_400() {
        let f = fixture();
        let key = Some(f.keys.analyst.as_str());
        let a = get(&f.router, "/api/v3/breachedaccount/nobody@example-corp.com", key).await;
        assert_eq!((a.status, a.body.as_str()), (StatusCode::NOT_FOUND, ""));
        let bad = get(&f.router, "/api/v3/breachedaccount/a..b@example.com", key).await;
        assert_eq!(bad.status, 400);
        assert_eq!(bad.json()["statusCode"], 400);
        assert!(!bad.body.contains("a..b"), "input is not echoed: {}", bad.body);
        assert_eq!(
            get(&f.router, "/api/v3/breachedaccount/alice@example-corp.com?truncateResponse=x", key)
                .await
                .status,
            400
        );
    }

    #[tokio::test]
    async fn a_domain_key_searches_only_addresses_on_its_domains() {
        let f = fixture();
        let key = Some(f.keys.domain.as_str());
        let own = get(&f.router, "/api/v3/breachedaccount/bob@example-corp.com", key).await;
        assert_eq!(own.json(), json!([{"Name": "Adobe"}, {"Name": "Spammy"}]));
        let other = get(&f.router, "/api/v3/breachedaccount/carol@gmail.com", key).await;
        assert_eq!(other.status, 403);
        assert_eq!(other.json()["statusCode"], 403);
        assert_eq!(get(&f.router, "/api/v3/breachedaccount/darklord99", key).await.status, 403);
    }
}

mod domain {
    use super::*;

    #[tokio::test]
    async fn aliases_and_their_breaches_sensitive_ones_for_analysts_only() {
        let f = fixture();
        let corp = get(&f.router, "/api/v3/breacheddomain/example-corp.com", Some(&f.keys.domain)).await;
        assert_eq!(corp.status, 200);
        assert_eq!(corp.json(), json!({"alice": ["Adobe", "Rumour"], "bob": ["Adobe", "Spammy"]}));
        let analyst = get(&f.router, "/api/v3/breacheddomain/EXAMPLE-CORP.COM", Some(&f.keys.analyst)).await;
        assert_eq!(
            analyst.json(),
            json!({"alice": ["Adobe", "Rumour", "Secret"], "bob": ["Adobe", "Spammy"]})
        );
    }

    #[tokio::test]
    async fn status_codes() {
        let f = fixture();
        assert_eq!(get(&f.router, "/api/v3/breacheddomain/example-corp.com", None).await.status, 401);
        assert_eq!(
            get(&f.router, "/api/v3/breacheddomain/gmail.com", Some(&f.keys.domain)).await.status,
            403
        );
        assert_eq!(
            get(&f.router, "/api/v3/breacheddomain/not_a_domain", Some(&f.keys.admin)).await.status,
            400
        );
        let none = get(&f.router, "/api/v3/breacheddomain/nowhere.example", Some(&f.keys.admin)).await;
        assert_eq!((none.status, none.body.as_str()), (StatusCode::NOT_FOUND, ""));
        assert_eq!(
            get(&f.router, "/api/v3/breacheddomain/gmail.com", Some(&f.keys.admin)).await.json(),
            json!({"carol": ["Adobe"]})
        );
    }
}

mod subscription {
    use super::*;

    #[tokio::test]
    async fn subscribed_domains_count_breached_addresses() {
        let f = fixture();
        let a = get(&f.router, "/api/v3/subscribeddomains", Some(&f.keys.domain)).await;
        assert_eq!(a.status, 200);
        assert_eq!(
            a.json(),
            json!([{
                "DomainName": "example-corp.com",
                "PwnCount": 2,
                "PwnCountExcludingSpamLists": 2,
                "PwnCountExcludingSpamListsAtLastSubscriptionRenewal": null,
                "NextSubscriptionRenewal": null
            }])
        );
        assert_eq!(
            get(&f.router, "/api/v3/subscribeddomains", Some(&f.keys.analyst)).await.json(),
            json!([])
        );
        assert_eq!(get(&f.router, "/api/v3/subscribeddomains", None).await.status, 401);
    }

    #[tokio::test]
    async fn status_describes_the_key() {
        let f = fixture();
        let a = get(&f.router, "/api/v3/subscription/status", Some(&f.keys.limited)).await;
        assert_eq!(a.status, 200);
        let s = a.json();
        assert_eq!(s["SubscriptionName"], "leakwatch analyst");
        assert_eq!(s["Rpm"], 2);
        assert_eq!(s["IncludesStealerLogs"], true);
        assert!(s["SubscribedUntil"].is_null());
        let unlimited = get(&f.router, "/api/v3/subscription/status", Some(&f.keys.admin)).await;
        assert!(unlimited.json()["Rpm"].is_null());
        assert_eq!(get(&f.router, "/api/v3/subscription/status", None).await.status, 401);
    }
}

mod stealer {
    use super::*;

    #[tokio::test]
    async fn without_stealer_log_data_every_search_is_not_found() {
        let f = fixture();
        for path in [
            "stealerlogsbyemail/alice@example-corp.com",
            "stealerlogsbywebsitedomain/example-corp.com",
            "stealerlogsbyemaildomain/example-corp.com",
        ] {
            for key in [&f.keys.analyst, &f.keys.domain] {
                let a = get(&f.router, &format!("/api/v3/{path}"), Some(key)).await;
                assert_eq!((a.status, a.body.as_str()), (StatusCode::NOT_FOUND, ""), "{path}");
            }
            assert_eq!(get(&f.router, &format!("/api/v3/{path}"), None).await.status, 401, "{path}");
        }
    }

    #[tokio::test]
    async fn bad_input_and_foreign_domains() {
        let f = fixture();
        let key = Some(f.keys.domain.as_str());
        for path in [
            "stealerlogsbyemail/not-an-address",
            "stealerlogsbywebsitedomain/-x-",
            "stealerlogsbyemaildomain/x",
        ] {
            assert_eq!(get(&f.router, &format!("/api/v3/{path}"), key).await.status, 400, "{path}");
        }
        for path in [
            "stealerlogsbyemail/carol@gmail.com",
            "stealerlogsbywebsitedomain/netflix.com",
            "stealerlogsbyemaildomain/gmail.com",
        ] {
            assert_eq!(get(&f.router, &format!("/api/v3/{path}"), key).await.status, 403, "{path}");
        }
    }
}

mod limits {
    use super::*;

    #[tokio::test]
    async fn a_key_over_its_limit_gets_429_with_retry_after() {
        let f = fixture();
        let key = Some(f.keys.limited.as_str());
        for _ in 0..2 {
            assert_eq!(get(&f.router, "/api/v3/breachedaccount/bob@example-corp.com", key).await.status, 200);
        }
        let a = get(&f.router, "/api/v3/breachedaccount/bob@example-corp.com", key).await;
        assert_eq!(a.status, 429);
        assert_eq!(a.header("retry-after"), "30");
        assert_eq!(
            a.json(),
            json!({"statusCode": 429, "message": "Rate limit is exceeded. Try again in 30 seconds."})
        );
        // Other keys have their own buckets.
        assert_eq!(
            get(&f.router, "/api/v3/breachedaccount/bob@example-corp.com", Some(&f.keys.admin)).await.status,
            200
        );
    }

    #[tokio::test]
    async fn the_server_default_applies_to_keys_without_their_own_and_to_anonymous_callers() {
        let f = fixture_with(Limits { key_per_minute: 1, anonymous_per_minute: 2, ..Limits::default() });
        let mut catalog = Catalog::open_in(f.data.root()).unwrap();
        let key = NewKey {
            name: "plain".into(),
            role: Role::Analyst,
            domains: vec![],
            rate_limit_per_minute: None,
        };
        let secret = catalog.create_key(&key).unwrap().secret;
        assert!(f.state.reload_keys().unwrap());
        assert_eq!(get(&f.router, "/api/v3/dataclasses", Some(&secret)).await.status, 200);
        assert_eq!(get(&f.router, "/api/v3/dataclasses", Some(&secret)).await.status, 429);
        assert_eq!(get(&f.router, "/api/v3/dataclasses", None).await.status, 200);
        assert_eq!(get(&f.router, "/api/v3/dataclasses", None).await.status, 200);
        let a = get(&f.router, "/api/v3/dataclasses", None).await;
        assert_eq!((a.status, a.header("retry-after")), (StatusCode::TOO_MANY_REQUESTS, "30"));
    }
}

mod audit {
    use super::*;

    #[tokio::test]
    async fn every_keyed_search_is_recorded_with_addresses_hashed() {
        let f = fixture();
        get(&f.router, "/api/v3/breachedaccount/Alice@Example-Corp.com", Some(&f.keys.analyst)).await;
        get(&f.router, "/api/v3/breachedaccount/nobody@example-corp.com", Some(&f.keys.analyst)).await;
        get(&f.router, "/api/v3/breachedaccount/carol@gmail.com", Some(&f.keys.domain)).await;
        get(&f.router, "/api/v3/breacheddomain/example-corp.com", Some(&f.keys.domain)).await;
        get(&f.router, "/api/v3/stealerlogsbyemaildomain/example-corp.com", Some(&f.keys.domain)).await;
        // Not searches: the catalog and ranges. A wrong key is recorded (401).
        get(&f.router, "/api/v3/breaches", Some(&f.keys.analyst)).await;
        get(&f.router, "/range/5BAA6", None).await;
        get(&f.router, "/api/v3/breachedaccount/alice@example-corp.com", Some("lw_wrong")).await;
        // Every row is committed before its answer: nothing to flush.

        let catalog = Catalog::open_in(f.data.root()).unwrap();
        let rows = catalog.audit_entries(&AuditFilter::default()).unwrap();
        let summary: Vec<(&str, &str, Option<&str>, u64, u16)> = rows
            .iter()
            .map(|r| {
                let e = &r.entry;
                (e.key_name.as_str(), e.endpoint.as_str(), e.subject.clear.as_deref(), e.results, e.status)
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("analyst", "breachedaccount", None, 2, 200),
                ("analyst", "breachedaccount", None, 0, 404),
                ("corp", "breachedaccount", None, 0, 403),
                ("corp", "breacheddomain", Some("example-corp.com"), 2, 200),
                ("corp", "stealerlogsbyemaildomain", Some("example-corp.com"), 0, 404),
                ("(wrong key)", "breachedaccount", None, 0, 401),
            ]
        );
        assert_eq!((rows[5].entry.key_id, rows[5].entry.subject.kind), (0, SubjectKind::ApiKey));
        // Hashed under the key ring's audit subject key, not a key in the catalog.
        let keys = leakwatch_server::audit_keys(&f.data).unwrap();
        let hasher = keys.current().hasher();
        assert_eq!(rows[0].entry.subject, hasher.subject(SubjectKind::Account, "alice@example-corp.com"));
        for file in ["catalog.sqlite", "catalog.sqlite-wal"] {
            let bytes = std::fs::read(f.data.root().join(file)).unwrap_or_default();
            for address in ["alice@example-corp.com", "carol@gmail.com", "nobody@example-corp.com"] {
                assert!(
                    !bytes.windows(address.len()).any(|w| w == address.as_bytes()),
                    "{address} in {file}"
                );
            }
        }
        let chain = catalog.verify_audit(&keys).unwrap();
        assert_eq!((chain.chained, chain.broken), (chain.rows, None), "the log's hash chain checks");
        assert!(chain.intact(), "{chain:?}");
    }

    fn audit_rows(f: &Fixture) -> Vec<AuditEntry> {
        let catalog = Catalog::open_in(f.data.root()).unwrap();
        catalog.audit_entries(&AuditFilter::default()).unwrap().into_iter().map(|r| r.entry).collect()
    }

    #[tokio::test]
    async fn a_search_is_answered_only_once_its_row_is_committed() {
        let f = fixture();
        // The row is in the catalog when the answer arrives, without a flush.
        let a = get(&f.router, "/api/v3/breachedaccount/alice@example-corp.com", Some(&f.keys.analyst)).await;
        assert_eq!(a.status, 200);
        assert_eq!(audit_rows(&f).len(), 1, "answered before its audit row was committed");
        // A catalog that refuses rows: the search is not answered.
        let plain = rusqlite::Connection::open(f.data.root().join("catalog.sqlite")).unwrap();
        plain
            .execute_batch(
                "CREATE TRIGGER refuse BEFORE INSERT ON audit_log BEGIN SELECT RAISE(ABORT, 'disk full'); END",
            )
            .unwrap();
        let a = get(&f.router, "/api/v3/breachedaccount/alice@example-corp.com", Some(&f.keys.analyst)).await;
        assert_eq!(a.status, 503);
        assert!(!a.body.contains("Adobe"), "{}", a.body);
        let a = get(&f.router, "/api/v3/subscribeddomains", Some(&f.keys.domain)).await;
        assert_eq!(a.status, 503);
        plain.execute_batch("DROP TRIGGER refuse").unwrap();
        let a = get(&f.router, "/api/v3/breachedaccount/alice@example-corp.com", Some(&f.keys.analyst)).await;
        assert_eq!(a.status, 200, "answers again once the log can be written");
    }

    #[tokio::test]
    async fn refusals_and_subscribed_domains_are_audited() {
        let f = fixture_with(Limits { key_per_minute: 0, anonymous_per_minute: 1, ..Limits::default() });
        get(&f.router, "/api/v3/breachedaccount/alice@example-corp.com", None).await;
        get(&f.router, "/api/v3/subscribeddomains", Some(&f.keys.domain)).await;
        get(&f.router, "/api/v3/subscribeddomains", Some(&f.keys.analyst)).await;
        // A key's 429s: every one.
        for _ in 0..3 {
            get(&f.router, "/api/v3/breachedaccount/bob@example-corp.com", Some(&f.keys.limited)).await;
        }
        // An anonymous client's: the first of a run.
        for _ in 0..3 {
            get(&f.router, "/api/v3/dataclasses", None).await;
        }
        let summary: Vec<(String, String, SubjectKind, Option<String>, u64, u16)> = audit_rows(&f)
            .into_iter()
            .map(|e| (e.key_name, e.endpoint, e.subject.kind, e.subject.clear, e.results, e.status))
            .collect();
        let row = |k: &str, e: &str, kind, clear: Option<&str>, n, s| {
            (k.to_owned(), e.to_owned(), kind, clear.map(str::to_owned), n, s)
        };
        assert_eq!(
            summary,
            [
                row("(no key)", "breachedaccount", SubjectKind::Nothing, None, 0, 401),
                row("corp", "subscribeddomains", SubjectKind::Domain, Some("example-corp.com"), 2, 200),
                row("analyst", "subscribeddomains", SubjectKind::Nothing, None, 0, 200),
                row("limited", "breachedaccount", SubjectKind::Account, None, 2, 200),
                row("limited", "breachedaccount", SubjectKind::Account, None, 2, 200),
                row("limited", "breachedaccount", SubjectKind::Nothing, None, 0, 429),
                row("(no key)", "dataclasses", SubjectKind::Nothing, None, 0, 429),
            ]
        );
    }

    #[tokio::test]
    async fn wrong_keys_are_rate_limited_per_client_and_audited() {
        let f = fixture_with(Limits { failed_keys_per_minute: 3, ..Limits::default() });
        for i in 0..3 {
            let a = get(
                &f.router,
                "/api/v3/breachedaccount/alice@example-corp.com",
                Some(&format!("lw_guess{i}")),
            )
            .await;
            assert_eq!(a.status, 401);
        }
        // Past the limit even the right key is not looked at: a guess that
        // happened to be right would be refused all the same.
        for secret in ["lw_guess9", f.keys.analyst.as_str()] {
            let a = get(&f.router, "/api/v3/breachedaccount/alice@example-corp.com", Some(secret)).await;
            assert_eq!(a.status, 429, "{secret}");
            assert_eq!(a.json()["statusCode"], 429);
        }
        let rows = audit_rows(&f);
        let statuses: Vec<(u16, &str)> = rows.iter().map(|e| (e.status, e.key_name.as_str())).collect();
        assert_eq!(
            statuses,
            [(401, "(wrong key)"), (401, "(wrong key)"), (401, "(wrong key)"), (429, "(wrong key)")],
            "each wrong key, and the first refusal of the run"
        );
        // Each guess is a keyed hash, never the guess itself.
        assert_ne!(rows[0].subject.hash, rows[1].subject.hash);
        let bytes = std::fs::read(f.data.root().join("catalog.sqlite-wal")).unwrap_or_default();
        assert!(!bytes.windows(9).any(|w| w == b"lw_guess0"));
    }

    #[tokio::test]
    async fn a_rotated_audit_key_is_followed_while_serving() {
        let f = fixture();
        get(&f.router, "/api/v3/breachedaccount/alice@example-corp.com", Some(&f.keys.analyst)).await;
        // `leakwatch rekey --audit` beside the running server.
        let rotated = leakwatch_store::rotate_audit_key(&f.data).unwrap();
        let keys = leakwatch_server::audit_keys(&f.data).unwrap();
        let switch = AuditEntry::cli(
            "ops",
            "rekey --audit",
            keys.current().hasher().subject(SubjectKind::AuditKey, &rotated.new_key),
            1,
        );
        Catalog::open_in(f.data.root()).unwrap().append_audit(&[switch], &keys).unwrap();
        for _ in 0..2 {
            let a =
                get(&f.router, "/api/v3/breachedaccount/alice@example-corp.com", Some(&f.keys.analyst)).await;
            assert_eq!(a.status, 200);
        }
        let catalog = Catalog::open_in(f.data.root()).unwrap();
        let check = catalog.verify_audit(&keys).unwrap();
        assert!(check.intact(), "{check:?}");
        assert_eq!((check.rows, check.key_switches), (4, 1));
        let rows = audit_rows(&f);
        let new = keys.current().hasher().subject(SubjectKind::Account, "alice@example-corp.com");
        assert_eq!(rows[3].subject, new, "hashed under the new key once the server has it");
    }
}

mod following_the_data_directory {
    use super::*;

    #[tokio::test]
    async fn a_new_ingest_is_served_after_a_reload_while_old_snapshots_keep_answering() {
        let f = fixture();
        let before = f.state.snapshot();
        let key = Some(f.keys.analyst.as_str());
        assert_eq!(get(&f.router, "/api/v3/breachedaccount/dave@example-corp.com", key).await.status, 404);
        ingest_lines(&f.data, "Newcomer", "new.example", &["dave@example-corp.com:password"]);
        assert!(f.state.reload_store().unwrap());
        assert!(!f.state.reload_store().unwrap(), "nothing changed since");
        let a = get(&f.router, "/api/v3/breachedaccount/dave@example-corp.com", key).await;
        assert_eq!(a.json(), json!([{"Name": "Newcomer"}]));
        assert!(f.state.snapshot().generation() > before.generation());
        // A request that began on the old snapshot still answers from it.
        let dave = leakwatch_types::Account::email("dave@example-corp.com").unwrap();
        assert!(before.store.account_breaches(&dave).unwrap().is_empty());
    }

    #[tokio::test]
    async fn revoked_and_new_keys_take_effect_after_a_reload() {
        let f = fixture();
        assert_eq!(get(&f.router, "/api/v3/subscription/status", Some(&f.keys.analyst)).await.status, 200);
        Catalog::open_in(f.data.root()).unwrap().revoke_key("analyst").unwrap();
        assert!(f.state.reload_keys().unwrap());
        assert_eq!(get(&f.router, "/api/v3/subscription/status", Some(&f.keys.analyst)).await.status, 401);
        assert_eq!(get(&f.router, "/api/v3/subscription/status", Some(&f.keys.admin)).await.status, 200);
    }
}

mod routing {
    use super::*;

    #[tokio::test]
    async fn unknown_paths_are_empty_404s_and_wrong_methods_405s() {
        let f = fixture();
        for path in ["/api/v2/breaches", "/api/v3/nothing", "/range", "/ui/nothing"] {
            let a = get(&f.router, path, None).await;
            assert_eq!((a.status, a.body.as_str()), (StatusCode::NOT_FOUND, ""), "{path}");
        }
        // `/` is the web interface's (issue 18): a visitor is sent to sign in.
        let a = get(&f.router, "/", None).await;
        assert_eq!((a.status, a.header("location")), (StatusCode::SEE_OTHER, "/ui/signin"));
        assert_eq!(send(&f.router, "POST", "/range/5BAA6", &[]).await.status, 405);
        assert_eq!(send(&f.router, "DELETE", "/api/v3/breaches", &[("user-agent", "t")]).await.status, 405);
    }

    #[tokio::test]
    async fn bodies_beyond_the_limit_are_refused() {
        let f = fixture();
        let request = Request::builder()
            .method("GET")
            .uri("/range/5BAA6")
            .header("content-length", "1000000")
            .body(Body::from(vec![b'x'; 1_000_000]))
            .unwrap();
        let response = f.router.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), 413);
    }
}

/// Tests through a real socket and a real HTTP client.
/// `serve --range-own-dumps`: whose counts `/range` holds, for whom.
mod range_own_dumps {
    use leakwatch_server::RangeOwnDumps;

    use super::*;

    /// The fixture under `mode`, with a Pwned Passwords import holding
    /// "password" 100 times and "pwned-only" 7 times.
    fn fixture_in(mode: RangeOwnDumps) -> Fixture {
        let f = fixture_with(Limits {
            key_per_minute: 0,
            anonymous_per_minute: 0,
            range_own_dumps: mode,
            ..Limits::default()
        });
        let download = f._tmp.path().join("pwned.txt");
        let lines = [("password", 100), ("pwned-only", 7)]
            .map(|(pw, n)| format!("{}:{n}", encode_hex_upper(&sha1(pw.as_bytes()))));
        std::fs::write(&download, lines.join("\r\n")).unwrap();
        let progress = Default::default();
        leakwatch_store::import_pwned_passwords(
            &f.data,
            download.to_str().unwrap(),
            false,
            1 << 30,
            &progress,
        )
        .unwrap();
        assert!(f.state.reload_store().unwrap());
        f
    }

    /// The count `body` gives the SHA-1 of `password`, if it has a line.
    fn count(body: &str, password: &str) -> Option<u64> {
        let suffix = &encode_hex_upper(&sha1(password.as_bytes()))[5..];
        body.split("\r\n").find_map(|l| l.strip_prefix(suffix)?.strip_prefix(':')?.parse().ok())
    }

    fn uri(password: &str) -> String {
        format!("/range/{}", prefix_of(&sha1(password.as_bytes())))
    }

    /// Only padding: what an empty range is answered with.
    fn assert_padding_only(a: &Answer) {
        assert_eq!(a.status, 200);
        let lines: Vec<&str> = a.body.split("\r\n").collect();
        assert!((10..=209).contains(&lines.len()), "{} lines", lines.len());
        assert!(lines.iter().all(|l| l.len() == 37 && l.ends_with(":0")), "{:?}", a.body);
    }

    #[tokio::test]
    async fn anonymous_serves_the_own_dumps_to_everyone() {
        let f = fixture_in(RangeOwnDumps::Anonymous);
        let a = send(&f.router, "GET", &uri("password"), &[]).await;
        assert_eq!(count(&a.body, "password"), Some(103));
        assert_eq!(a.header("cache-control"), "public, max-age=2678400");
        assert_eq!(a.header("vary"), "");
        assert_eq!(count(&send(&f.router, "GET", &uri("hunter2"), &[]).await.body, "hunter2"), Some(1));
        assert_eq!(count(&send(&f.router, "GET", &uri("pwned-only"), &[]).await.body, "pwned-only"), Some(7));
    }

    #[tokio::test]
    async fn off_serves_the_pwned_passwords_alone_to_everyone() {
        let f = fixture_in(RangeOwnDumps::Off);
        for key in [None, Some(f.keys.admin.as_str())] {
            let headers: Vec<(&str, &str)> = key.map(|k| ("hibp-api-key", k)).into_iter().collect();
            let a = send(&f.router, "GET", &uri("password"), &headers).await;
            assert_eq!((a.status, count(&a.body, "password")), (StatusCode::OK, Some(100)));
            assert_eq!(a.header("cache-control"), "public, max-age=2678400");
            assert_eq!(
                count(&send(&f.router, "GET", &uri("pwned-only"), &headers).await.body, "pwned-only"),
                Some(7)
            );
            // A range only the own dumps fill is an empty one: padding.
            let own = send(&f.router, "GET", &uri("hunter2"), &headers).await;
            assert_padding_only(&own);
            assert_eq!(count(&own.body, "hunter2"), None);
            let padded = send(&f.router, "GET", &uri("hunter2"), &[("add-padding", "true")]).await;
            assert!(padded.body.split("\r\n").count() >= 800);
            assert!(padded.body.split("\r\n").all(|l| l.ends_with(":0")));
        }
        // Its ntlm corpus holds no import: every range is padding.
        let ntlm_uri = format!("/range/{}?mode=ntlm", prefix_of(&ntlm(b"letmein")));
        assert_eq!(count(&send(&f.router, "GET", &ntlm_uri, &[]).await.body, "letmein"), None);
    }

    #[tokio::test]
    async fn key_serves_the_own_dumps_to_keyed_callers_only() {
        let f = fixture_in(RangeOwnDumps::Key);
        let anonymous = send(&f.router, "GET", &uri("password"), &[]).await;
        assert_eq!((anonymous.status, count(&anonymous.body, "password")), (StatusCode::OK, Some(100)));
        assert_eq!(anonymous.header("cache-control"), "public, max-age=2678400");
        assert_eq!(anonymous.header("vary"), "hibp-api-key");
        assert_padding_only(&send(&f.router, "GET", &uri("hunter2"), &[]).await);

        // Any valid key, of any role; no user agent needed, as for /range.
        for key in [&f.keys.admin, &f.keys.domain] {
            let keyed = send(&f.router, "GET", &uri("password"), &[("hibp-api-key", key)]).await;
            assert_eq!((keyed.status, count(&keyed.body, "password")), (StatusCode::OK, Some(103)));
            assert_eq!(keyed.header("cache-control"), "private, max-age=2678400");
            assert_eq!(keyed.header("vary"), "hibp-api-key");
            assert_ne!(keyed.header("etag"), anonymous.header("etag"));
            let own = send(&f.router, "GET", &uri("hunter2"), &[("hibp-api-key", key)]).await;
            assert_eq!(count(&own.body, "hunter2"), Some(1));
            // The anonymous answer's tag does not revalidate the keyed one.
            let tag = anonymous.header("etag");
            let again =
                send(&f.router, "GET", &uri("password"), &[("hibp-api-key", key), ("if-none-match", tag)])
                    .await;
            assert_eq!(again.status, 200);
        }
        // A wrong key is refused, as everywhere; an empty one is no key.
        let wrong = send(&f.router, "GET", &uri("password"), &[("hibp-api-key", "not-a-key")]).await;
        assert_eq!(wrong.status, 401);
        let empty = send(&f.router, "GET", &uri("password"), &[("hibp-api-key", " ")]).await;
        assert_eq!(count(&empty.body, "password"), Some(100));
    }

    /// The fast path answers anonymous callers exactly as the router does, and
    /// hands keyed requests to it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_fast_path_follows_the_mode() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        for mode in [RangeOwnDumps::Anonymous, RangeOwnDumps::Key, RangeOwnDumps::Off] {
            let f = fixture_in(mode);
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            let options = leakwatch_server::ServeOptions::default();
            let done = tokio::spawn(leakwatch_server::serve(listener, f.state.clone(), options, async {
                let _ = stopped.await;
            }));
            for (password, key) in [
                ("password", None),
                ("hunter2", None),
                ("password", Some(&f.keys.analyst)),
                ("hunter2", Some(&f.keys.analyst)),
            ] {
                let key_header = key.map(|k| format!("hibp-api-key: {k}\r\n")).unwrap_or_default();
                let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
                let request = format!(
                    "GET {} HTTP/1.1\r\nHost: x\r\n{key_header}Connection: close\r\n\r\n",
                    uri(password)
                );
                // Kept alive, the first request is the fast path's; with
                // `Connection: close` it is the router's.
                conn.write_all(request.replace("Connection: close\r\n", "").as_bytes()).await.unwrap();
                conn.write_all(request.as_bytes()).await.unwrap();
                let mut text = String::new();
                conn.read_to_string(&mut text).await.unwrap();
                let answers: Vec<&str> = text.split("HTTP/1.1 ").skip(1).collect();
                assert_eq!(answers.len(), 2, "{text}");
                let strip = |a: &str| -> String {
                    a.split("\r\n")
                        .filter(|l| !l.starts_with("date:") && !l.starts_with("connection:"))
                        .collect::<Vec<_>>()
                        .join("\r\n")
                };
                assert_eq!(strip(answers[0]), strip(answers[1]), "{mode:?} {password} {key:?}");
                let body = answers[0].split_once("\r\n\r\n").unwrap().1;
                let own = mode == RangeOwnDumps::Anonymous || (mode == RangeOwnDumps::Key && key.is_some());
                let want = match (password, own) {
                    ("password", true) => Some(103),
                    ("password", false) => Some(100),
                    (_, true) => Some(1),
                    (_, false) => None,
                };
                assert_eq!(count(body, password), want, "{mode:?} {password} {key:?}");
            }
            stop.send(()).unwrap();
            done.await.unwrap().unwrap();
        }
    }
}

mod socket {
    use std::net::SocketAddr;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::Arc;

    use leakwatch_server::{serve, ServeOptions};
    use std::time::Instant;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    struct Running {
        addr: SocketAddr,
        stop: Option<tokio::sync::oneshot::Sender<()>>,
        done: tokio::task::JoinHandle<std::io::Result<()>>,
    }

    async fn start(f: &Fixture, options: ServeOptions) -> Running {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let done = tokio::spawn(serve(listener, f.state.clone(), options, async {
            let _ = stopped.await;
        }));
        Running { addr, stop: Some(stop), done }
    }

    impl Running {
        async fn stop(mut self) {
            self.stop.take().unwrap().send(()).unwrap();
            tokio::time::timeout(Duration::from_secs(10), self.done).await.unwrap().unwrap().unwrap();
        }
    }

    fn client() -> &'static reqwest::Client {
        static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
        CLIENT.get_or_init(|| new_client("leakwatch-tests"))
    }

    /// A plain-HTTP client. The workspace builds reqwest with rustls and no
    /// default crypto provider (the sync configures its own), so one is
    /// installed for the process first.
    fn new_client(user_agent: &str) -> reqwest::Client {
        #[allow(deprecated)]
        let _ = rustls::crypto::ring::default_provider().install_default();
        reqwest::Client::builder().user_agent(user_agent).build().unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_real_client_gets_ranges_and_searches() {
        let f = fixture();
        let server = start(&f, ServeOptions::default()).await;
        let base = format!("http://{}", server.addr);
        let r = client().get(format!("{base}/range/5baa6")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["content-type"], "text/plain");
        assert_eq!(r.headers()["access-control-allow-origin"], "*");
        let body = r.text().await.unwrap();
        assert!(body.contains("1E4C9B93F3F0682250B6CF8331B7EE68FD8:3"), "{body}");

        let r = client()
            .get(format!("{base}/api/v3/breachedaccount/alice%40example-corp.com?truncateResponse=false"))
            .header("hibp-api-key", &f.keys.analyst)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let breaches: Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
        assert_eq!(names(&breaches), ["Adobe", "Rumour"]);

        let r = client()
            .get(format!("{base}/api/v3/breachedaccount/alice%40example-corp.com"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        server.stop().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_ingest_is_picked_up_with_no_failed_or_torn_request() {
        let f = fixture();
        let options = ServeOptions { reload_interval: Duration::from_millis(20), ..ServeOptions::default() };
        let server = start(&f, options).await;
        let hash = sha1(b"password");
        let url = format!("http://{}/range/{}", server.addr, prefix_of(&hash));
        let line_start = format!("{}:", &encode_hex_upper(&hash)[5..]);
        let first_generation = f.state.snapshot().generation();

        // Clients hammer the range while an ingest adds one more "password";
        // each answer must be whole and agree with its ETag (a digest of the body).
        let stop = Arc::new(AtomicBool::new(false));
        let served = Arc::new(AtomicU64::new(0));
        let mut clients = Vec::new();
        for _ in 0..4 {
            let (url, line_start, stop, served) =
                (url.clone(), line_start.clone(), stop.clone(), served.clone());
            clients.push(tokio::spawn(async move {
                let mut seen = std::collections::BTreeMap::new();
                while !stop.load(Ordering::Relaxed) {
                    let r = client().get(&url).send().await.expect("no failed request");
                    assert_eq!(r.status(), 200);
                    let tag = r.headers()["etag"].to_str().unwrap().to_owned();
                    let body = r.text().await.unwrap();
                    let count: u64 = body
                        .split("\r\n")
                        .find_map(|l| l.strip_prefix(line_start.as_str()))
                        .expect("the line is there")
                        .parse()
                        .unwrap();
                    assert_eq!(*seen.entry(tag).or_insert(count), count, "one tag, one answer");
                    served.fetch_add(1, Ordering::Relaxed);
                }
                seen
            }));
        }
        let data = f.data.clone();
        tokio::task::spawn_blocking(move || {
            std::thread::sleep(Duration::from_millis(100));
            ingest_lines(&data, "Later", "later.example", &["erin@example-corp.com:password"]);
        })
        .await
        .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while f.state.snapshot().generation() == first_generation {
            assert!(std::time::Instant::now() < deadline, "the new generation was never served");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        stop.store(true, Ordering::Relaxed);
        let mut counts = std::collections::BTreeMap::new();
        for c in clients {
            counts.extend(c.await.unwrap());
        }
        let answers: std::collections::BTreeSet<u64> = counts.values().copied().collect();
        assert_eq!(answers, [3, 4].into(), "the old answer, then the new one: {counts:?}");
        assert!(served.load(Ordering::Relaxed) > 20);
        server.stop().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn slow_headers_are_cut_off_and_shutdown_is_graceful() {
        let f = fixture();
        let options = ServeOptions { header_timeout: Duration::from_millis(200), ..ServeOptions::default() };
        let server = start(&f, options).await;
        let mut slow = tokio::net::TcpStream::connect(server.addr).await.unwrap();
        slow.write_all(b"GET /range/5BAA6 HTTP/1.1\r\nHost: x\r\n").await.unwrap();
        let mut buf = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(5), slow.read_to_end(&mut buf)).await;
        assert!(read.is_ok(), "the server closed the slow connection");

        // A keep-alive connection that is idle does not hold shutdown up.
        let addr = server.addr;
        let idle = client().get(format!("http://{addr}/range/5BAA6")).send().await.unwrap();
        assert_eq!(idle.status(), 200);
        server.stop().await;
        assert!(tokio::net::TcpStream::connect(addr).await.is_err(), "the listener is closed");
    }

    /// `serve_threads` with `threads` threads on a thread of its own: its
    /// address, the sender that stops it, and the thread to join.
    fn start_threads(
        state: AppState,
        threads: usize,
    ) -> (SocketAddr, tokio::sync::oneshot::Sender<()>, std::thread::JoinHandle<std::io::Result<()>>) {
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = std::thread::spawn(move || {
            let shutdown = async {
                let _ = stopped.await;
            };
            let listening = move |addr| addr_tx.send(addr).unwrap();
            let addr = SocketAddr::from(([127, 0, 0, 1], 0));
            leakwatch_server::serve_threads(
                addr,
                threads,
                state,
                ServeOptions::default(),
                listening,
                shutdown,
            )
        });
        (addr_rx.recv_timeout(Duration::from_secs(10)).unwrap(), stop, server)
    }

    #[test]
    fn several_threads_share_the_port_and_stop_together() {
        let f = fixture();
        let (addr, stop, server) = start_threads(f.state.clone(), 3);
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            // Separate connections, so that more than one thread answers.
            for _ in 0..12 {
                let c = new_client("t");
                let r = c.get(format!("http://{addr}/api/v3/dataclasses")).send().await.unwrap();
                assert_eq!(r.status(), 200);
            }
        });
        stop.send(()).unwrap();
        server.join().unwrap().unwrap();
        assert!(std::net::TcpStream::connect(addr).is_err(), "the listener is closed");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn oversized_headers_are_refused() {
        let f = fixture();
        let server = start(&f, ServeOptions::default()).await;
        let r = client()
            .get(format!("http://{}/range/5BAA6", server.addr))
            .header("x-filler", "a".repeat(100 * 1024))
            .send()
            .await;
        match r {
            Ok(r) => assert_eq!(r.status(), 431),
            Err(e) => assert!(e.is_request() || e.is_connect() || e.is_body(), "{e}"),
        }
        server.stop().await;
    }

    /// One raw HTTP/1.1 exchange on `conn`: the status line, the headers
    /// (lower-case names, `date` and `connection` left out: they differ by the
    /// second and by the request) and the body.
    async fn exchange(
        conn: &mut tokio::net::TcpStream,
        request: &str,
    ) -> (String, Vec<(String, String)>, Vec<u8>) {
        conn.write_all(request.as_bytes()).await.unwrap();
        read_answer(conn).await
    }

    async fn read_answer(conn: &mut tokio::net::TcpStream) -> (String, Vec<(String, String)>, Vec<u8>) {
        // Byte by byte up to the end of the head, so that nothing of a
        // pipelined answer after it is taken.
        let mut buf = Vec::new();
        while !buf.ends_with(b"\r\n\r\n") {
            let byte = conn.read_u8().await.unwrap_or_else(|e| panic!("{e} mid-head: {buf:?}"));
            buf.push(byte);
        }
        let head = String::from_utf8(buf[..buf.len() - 4].to_vec()).unwrap();
        let mut lines = head.split("\r\n");
        let status = lines.next().unwrap().to_owned();
        let headers: Vec<(String, String)> = lines
            .map(|l| l.split_once(": ").unwrap())
            .map(|(n, v)| (n.to_ascii_lowercase(), v.to_owned()))
            .collect();
        let len: usize =
            headers.iter().find(|(n, _)| n == "content-length").map_or(0, |(_, v)| v.parse().unwrap());
        let mut body = vec![0u8; len];
        conn.read_exact(&mut body).await.unwrap();
        let headers = headers.into_iter().filter(|(n, _)| n != "date" && n != "connection").collect();
        (status, headers, body)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_range_fast_path_answers_as_the_router_does() {
        let f = fixture();
        let server = start(&f, ServeOptions::default()).await;
        let sha1_prefix = prefix_of(&sha1(b"password"));
        let ntlm_prefix = prefix_of(&ntlm(b"password"));
        let mut fast = tokio::net::TcpStream::connect(server.addr).await.unwrap();
        let (_, tag_headers, _) =
            exchange(&mut fast, &format!("GET /range/{sha1_prefix} HTTP/1.1\r\nHost: x\r\n\r\n")).await;
        let tag = tag_headers.iter().find(|(n, _)| n == "etag").unwrap().1.clone();
        let cases = [
            format!("/range/{sha1_prefix}"),
            format!("/range/{}", sha1_prefix.to_lowercase()),
            format!("/range/{sha1_prefix}?mode=SHA1"),
            format!("/range/{ntlm_prefix}?Mode=ntlm"),
            "/range/00000".to_owned(),
        ];
        for path in &cases {
            for extra in ["", &format!("If-None-Match: {tag}\r\n"), "If-None-Match: \"s0\"\r\n"] {
                // The fast path, on one kept-alive connection; the router, on a
                // connection the fast path hands over (`Connection: close`).
                let request = |more: &str| format!("GET {path} HTTP/1.1\r\nHost: x\r\n{extra}{more}\r\n");
                let answer = exchange(&mut fast, &request("")).await;
                let mut routed = tokio::net::TcpStream::connect(server.addr).await.unwrap();
                let want = exchange(&mut routed, &request("Connection: close\r\n")).await;
                assert_eq!(answer, want, "{path} {extra}");
                assert!(answer.0 == "HTTP/1.1 200 OK" || answer.0 == "HTTP/1.1 304 Not Modified");
            }
        }

        // Padding: a weak tag and at least 800 lines, the real ones among them.
        let (status, headers, body) = exchange(
            &mut fast,
            &format!("GET /range/{sha1_prefix} HTTP/1.1\r\nHost: x\r\nAdd-Padding: TRUE\r\n\r\n"),
        )
        .await;
        assert_eq!(status, "HTTP/1.1 200 OK");
        assert!(headers.contains(&("etag".into(), format!("W/{tag}"))));
        let body = String::from_utf8(body).unwrap();
        assert!(body.split("\r\n").count() >= 800);
        assert!(body.contains("1E4C9B93F3F0682250B6CF8331B7EE68FD8:3"));
        server.stop().await;
    }

    /// A head held back for a body that never follows waits for the kernel's
    /// cork timer (200 ms): every answer on a kept-alive connection, short,
    /// empty or not modified, must leave at once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_range_answer_leaves_at_once_on_a_kept_alive_connection() {
        let f = fixture();
        let server = start(&f, ServeOptions::default()).await;
        let mut conn = tokio::net::TcpStream::connect(server.addr).await.unwrap();
        let full = prefix_of(&sha1(b"password"));
        let (_, headers, _) = exchange(&mut conn, "GET /range/00000 HTTP/1.1\r\nHost: x\r\n\r\n").await;
        let tag = headers.iter().find(|(n, _)| n == "etag").unwrap().1.clone();
        let requests = [
            "GET /range/00000 HTTP/1.1\r\nHost: x\r\n\r\n".to_owned(),
            "GET /range/FFFFF?mode=ntlm HTTP/1.1\r\nHost: x\r\n\r\n".to_owned(),
            format!("GET /range/{full} HTTP/1.1\r\nHost: x\r\n\r\n"),
            format!("GET /range/00000 HTTP/1.1\r\nHost: x\r\nIf-None-Match: {tag}\r\n\r\n"),
        ];
        for round in 0..5 {
            for request in &requests {
                let started = std::time::Instant::now();
                let (status, _, _) = exchange(&mut conn, request).await;
                let took = started.elapsed();
                assert!(status.starts_with("HTTP/1.1 200") || status.starts_with("HTTP/1.1 304"));
                assert!(took < Duration::from_millis(100), "round {round}: {took:?} for {request:?}");
            }
        }
        server.stop().await;
    }

    /// Searches over a whole domain run off the serving threads: with several of
    /// a huge domain in flight on a one-thread server, `/range` still answers at
    /// once.
    #[test]
    fn domain_wide_searches_never_stall_range_requests() {
        let f = fixture();
        let lines: Vec<String> = (0..60_000).map(|i| format!("user{i}@big-corp.example:pw{i}")).collect();
        ingest_lines(&f.data, "Huge", "huge.example", &lines.iter().map(String::as_str).collect::<Vec<_>>());
        f.state.reload_store().unwrap();
        let (addr, stop, server) = start_threads(f.state.clone(), 1);
        let runtime =
            tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        runtime.block_on(async {
            let client = new_client("t");
            let search = {
                let (client, key) = (client.clone(), f.keys.admin.clone());
                move || {
                    client
                        .get(format!("http://{addr}/api/v3/breacheddomain/big-corp.example"))
                        .header("hibp-api-key", key.clone())
                        .send()
                }
            };
            let started = Instant::now();
            assert_eq!(search().await.unwrap().status(), 200);
            let one_search = started.elapsed();

            let in_flight: Vec<_> = (0..6).map(|_| tokio::spawn(search())).collect();
            // Let the searches reach the server first.
            tokio::time::sleep(one_search / 4).await;
            let started = Instant::now();
            let range = client.get(format!("http://{addr}/range/00000")).send().await.unwrap();
            assert_eq!(range.status(), 200);
            let range_took = started.elapsed();
            for search in in_flight {
                assert_eq!(search.await.unwrap().unwrap().status(), 200);
            }
            assert!(
                range_took < one_search / 2,
                "/range took {range_took:?} behind domain searches of {one_search:?} each"
            );
        });
        stop.send(()).unwrap();
        server.join().unwrap().unwrap();
    }

    /// One client cannot hold every connection: past its cap, its new
    /// connections are closed on arrival, and a closed one frees a place.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn connections_are_capped_per_client() {
        let f = fixture();
        let options = ServeOptions { max_connections_per_client: 2, ..ServeOptions::default() };
        let server = start(&f, options).await;
        let request = "GET /range/00000 HTTP/1.1\r\nHost: x\r\n\r\n";
        let mut first = tokio::net::TcpStream::connect(server.addr).await.unwrap();
        let mut second = tokio::net::TcpStream::connect(server.addr).await.unwrap();
        assert_eq!(exchange(&mut first, request).await.0, "HTTP/1.1 200 OK");
        assert_eq!(exchange(&mut second, request).await.0, "HTTP/1.1 200 OK");
        let mut third = tokio::net::TcpStream::connect(server.addr).await.unwrap();
        let _ = third.write_all(request.as_bytes()).await;
        let mut byte = [0u8; 1];
        let read = tokio::time::timeout(Duration::from_secs(5), third.read(&mut byte)).await.unwrap();
        assert!(matches!(read, Ok(0) | Err(_)), "the third connection must be closed: {read:?}");
        drop(first);
        // The server notices the close when it next reads the connection.
        let mut again = None;
        for _ in 0..50 {
            tokio::time::sleep(Duration::from_millis(20)).await;
            let mut conn = tokio::net::TcpStream::connect(server.addr).await.unwrap();
            let _ = conn.write_all(request.as_bytes()).await;
            if tokio::time::timeout(Duration::from_secs(2), conn.read(&mut byte))
                .await
                .is_ok_and(|r| r.is_ok_and(|n| n > 0))
            {
                again = Some(conn);
                break;
            }
        }
        assert!(again.is_some(), "a closed connection gives its place back");
        drop(second);
        server.stop().await;
    }

    /// Behind a trusted proxy, anonymous rate limits apply to each client the
    /// proxy names, not to the proxy; a proxy that is not trusted names nobody.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_trusted_proxy_names_the_client_for_rate_limits() {
        let f = fixture_with(Limits { key_per_minute: 0, anonymous_per_minute: 1, ..Limits::default() });
        let ask = |addr: SocketAddr, forwarded: &'static str| async move {
            let request = client().get(format!("http://{addr}/api/v3/breaches"));
            let request =
                if forwarded.is_empty() { request } else { request.header("x-forwarded-for", forwarded) };
            request.send().await.unwrap().status().as_u16()
        };
        let trusted =
            ServeOptions { trusted_proxy: Some("127.0.0.1".parse().unwrap()), ..ServeOptions::default() };
        let server = start(&f, trusted).await;
        assert_eq!(ask(server.addr, "198.51.100.7").await, 200);
        assert_eq!(ask(server.addr, "spoofed, 198.51.100.8").await, 200);
        assert_eq!(ask(server.addr, "198.51.100.7").await, 429);
        // One subscriber's /64 is one client.
        assert_eq!(ask(server.addr, "2001:db8:5:6::1").await, 200);
        assert_eq!(ask(server.addr, "2001:db8:5:6:ffff::2").await, 429);
        server.stop().await;

        let untrusted = start(&f, ServeOptions::default()).await;
        assert_eq!(ask(untrusted.addr, "203.0.113.1").await, 200);
        assert_eq!(ask(untrusted.addr, "203.0.113.2").await, 429, "the header is not believed");
        untrusted.stop().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_connection_mixes_fast_and_routed_requests() {
        let f = fixture();
        let server = start(&f, ServeOptions::default()).await;
        let prefix = prefix_of(&sha1(b"password"));
        let range = format!("GET /range/{prefix} HTTP/1.1\r\nHost: x\r\n\r\n");
        let mut conn = tokio::net::TcpStream::connect(server.addr).await.unwrap();

        // A head in pieces, then two requests in one write (pipelined).
        conn.write_all(&range.as_bytes()[..9]).await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        let (status, _, first) = exchange(&mut conn, &range[9..]).await;
        assert_eq!(status, "HTTP/1.1 200 OK");
        conn.write_all(format!("{range}{range}").as_bytes()).await.unwrap();
        for _ in 0..2 {
            assert_eq!(read_answer(&mut conn).await.2, first);
        }

        // A bad prefix is the router's: 400 in plain text, and the connection
        // goes on there, for ranges and the API alike.
        let (status, _, body) = exchange(&mut conn, "GET /range/5BAG6 HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert_eq!(status, "HTTP/1.1 400 Bad Request");
        assert_eq!(body, b"The hash prefix was not in a valid format");
        let (status, _, body) =
            exchange(&mut conn, "GET /api/v3/dataclasses HTTP/1.1\r\nHost: x\r\nUser-Agent: t\r\n\r\n").await;
        assert_eq!(status, "HTTP/1.1 200 OK");
        assert!(String::from_utf8(body).unwrap().contains("Passwords"));
        assert_eq!(exchange(&mut conn, &range).await.2, first);

        // Other methods and versions are the router's from the first request.
        let mut head = tokio::net::TcpStream::connect(server.addr).await.unwrap();
        head.write_all(format!("HEAD /range/{prefix} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes()).await.unwrap();
        let mut buf = vec![0u8; 4096];
        let n = head.read(&mut buf).await.unwrap();
        let text = String::from_utf8_lossy(&buf[..n]);
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n") && text.ends_with("\r\n\r\n"), "{text}");
        let mut old = tokio::net::TcpStream::connect(server.addr).await.unwrap();
        old.write_all(format!("GET /range/{prefix} HTTP/1.0\r\n\r\n").as_bytes()).await.unwrap();
        let mut all = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), old.read_to_end(&mut all)).await.unwrap().unwrap();
        assert!(all.starts_with(b"HTTP/1.0 200 OK\r\n") && all.ends_with(&first), "closed after one answer");
        server.stop().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_head_that_trickles_in_is_cut_off_at_the_header_timeout() {
        let f = fixture();
        let options = ServeOptions { header_timeout: Duration::from_millis(300), ..ServeOptions::default() };
        let server = start(&f, options).await;
        let mut conn = tokio::net::TcpStream::connect(server.addr).await.unwrap();
        let started = std::time::Instant::now();
        // A byte every 50 ms: each read is prompt, the head as a whole is not.
        for byte in b"GET /range/5BAA6 HTTP/1.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" {
            if conn.write_all(&[*byte]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let mut rest = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), conn.read_to_end(&mut rest)).await;
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "closed at the deadline, not at the end of the head"
        );
        server.stop().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn garbage_on_the_wire_never_brings_the_server_down() {
        let f = fixture();
        let options = ServeOptions { header_timeout: Duration::from_millis(200), ..ServeOptions::default() };
        let server = start(&f, options).await;
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let starts: [&[u8]; 5] =
            [b"", b"GET /range/", b"GET /range/5BAA6 HTTP/1.1\r\n", b"GET /range/5BAA6?mode=", b"\r\n\r\n"];
        for i in 0..200 {
            let mut bytes = starts[i % starts.len()].to_vec();
            let len = (next() % 300) as usize;
            // Mostly header-like text, some raw bytes.
            let alphabet: &[u8] = b"GET /range5BAa6:?=&\r\n HTTP/1.1 Content-Length: 0 Add-Padding true";
            for _ in 0..len {
                let r = next();
                bytes.push(if r % 4 == 0 { r as u8 } else { alphabet[(r >> 8) as usize % alphabet.len()] });
            }
            let mut conn = tokio::net::TcpStream::connect(server.addr).await.unwrap();
            let _ = conn.write_all(&bytes).await;
            let mut sink = Vec::new();
            let _ = tokio::time::timeout(Duration::from_secs(2), conn.read_to_end(&mut sink)).await;
        }
        let r = client().get(format!("http://{}/range/5BAA6", server.addr)).send().await.unwrap();
        assert_eq!(r.status(), 200);
        server.stop().await;
    }

    /// A client that pipelines requests for big answers and never reads loses
    /// its connection once an answer waits past the write timeout, on the fast
    /// path and through hyper alike, while other clients are served meanwhile.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_client_that_stops_reading_loses_its_connection() {
        let f = fixture();
        let write_timeout = Duration::from_millis(500);
        let server = start(&f, ServeOptions { write_timeout, ..ServeOptions::default() }).await;
        let prefix = prefix_of(&sha1(b"password"));
        // Padded answers are at least 800 lines (some 30 KB): 2,000 of them are
        // far more than the socket buffers on both sides hold.
        let range = format!("GET /range/{prefix} HTTP/1.1\r\nHost: x\r\nAdd-Padding: true\r\n\r\n");
        const REQUESTS: usize = 2_000;
        const MIN_ANSWER: usize = 800 * 37;
        for routed in [false, true] {
            let socket = tokio::net::TcpSocket::new_v4().unwrap();
            socket.set_recv_buffer_size(4096).unwrap();
            let conn = socket.connect(server.addr).await.unwrap();
            let (mut reader, mut writer) = conn.into_split();
            // Through hyper: a first request the fast path hands over takes the
            // whole connection there.
            let first = if routed {
                "GET /api/v3/dataclasses HTTP/1.1\r\nHost: x\r\nUser-Agent: t\r\n\r\n"
            } else {
                ""
            };
            let requests = first.to_owned() + &range.repeat(REQUESTS);
            let sending = tokio::spawn(async move {
                // The server stops reading once its answers back up, then closes.
                let _ = writer.write_all(requests.as_bytes()).await;
                writer
            });

            // Meanwhile other clients are served.
            tokio::time::sleep(write_timeout / 2).await;
            let r = client().get(format!("http://{}/range/{prefix}", server.addr)).send().await.unwrap();
            assert_eq!(r.status(), 200);

            // Well past the deadline, the connection must be gone: reading
            // ends (end of stream or reset) long before every answer is read.
            tokio::time::sleep(write_timeout * 4).await;
            let mut read = 0usize;
            let mut buf = vec![0u8; 1 << 16];
            let ended = tokio::time::timeout(Duration::from_secs(20), async {
                loop {
                    match reader.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => read += n,
                    }
                }
            })
            .await;
            assert!(ended.is_ok(), "routed {routed}: the connection stayed open ({read} bytes read)");
            assert!(
                read < REQUESTS * MIN_ANSWER / 2,
                "routed {routed}: {read} bytes read: the server kept answering a client that did not read"
            );
            drop(tokio::time::timeout(Duration::from_secs(5), sending).await);
        }
        let r = client().get(format!("http://{}/range/{prefix}", server.addr)).send().await.unwrap();
        assert_eq!(r.status(), 200);
        server.stop().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_idle_fast_path_connection_does_not_hold_up_shutdown() {
        let f = fixture();
        let server = start(&f, ServeOptions::default()).await;
        let mut conn = tokio::net::TcpStream::connect(server.addr).await.unwrap();
        let (status, _, _) = exchange(&mut conn, "GET /range/5BAA6 HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert_eq!(status, "HTTP/1.1 200 OK");
        let started = std::time::Instant::now();
        server.stop().await;
        assert!(started.elapsed() < Duration::from_secs(5), "shutdown waited for an idle connection");
        let mut rest = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(5), conn.read_to_end(&mut rest)).await;
        assert!(matches!(read, Ok(Ok(0))), "the server closed the connection");
    }
}

mod damaged_data {
    use super::*;

    /// Damaged SHA-1 segments: SHA-1 ranges answer 503, never a partial body;
    /// NTLM ranges and account searches, which never read them, answer as before.
    #[tokio::test]
    async fn a_damaged_segment_is_503_for_what_needs_it_and_nothing_else() {
        let f = fixture();
        let alice = "/api/v3/breachedaccount/alice@example-corp.com";
        let before = get(&f.router, alice, Some(&f.keys.analyst)).await.body;
        let ntlm_range = format!("/range/{}?mode=ntlm", prefix_of(&ntlm(b"password")));
        let ntlm_before = get(&f.router, &ntlm_range, None).await.body;
        let manifest = Manifest::load(f.data.root()).unwrap().unwrap();
        // The breaches' SHA-1 counts and the totals summed from them.
        for s in manifest.segments.iter().filter(|s| s.kind == "sha1" || s.kind == "sha1-totals") {
            let path = f.data.segments().join(&s.file);
            let mut bytes = std::fs::read(&path).unwrap();
            bytes[140] ^= 0xFF;
            std::fs::write(&path, bytes).unwrap();
        }
        let (state, _writer) = AppState::open(f.data.clone(), Limits::default()).unwrap();
        let router = app(state, Duration::from_secs(10));
        let range = get(&router, &format!("/range/{}", prefix_of(&sha1(b"password"))), None).await;
        assert_eq!(range.status, StatusCode::SERVICE_UNAVAILABLE, "{}", range.body);
        assert!(!range.body.contains("sha1-") && !range.body.contains("Adobe"), "{}", range.body);
        let ntlm_now = get(&router, &ntlm_range, None).await;
        assert_eq!((ntlm_now.status, ntlm_now.body), (StatusCode::OK, ntlm_before));
        let now = get(&router, alice, Some(&f.keys.analyst)).await;
        assert_eq!((now.status, now.body), (StatusCode::OK, before));
    }

    #[test]
    fn a_server_does_not_start_on_a_directory_without_a_store() {
        let tmp = tempfile::tempdir().unwrap();
        let data = DataDir::new(tmp.path().join("nothing"));
        match AppState::open(data.clone(), Limits::default()) {
            Err(leakwatch_server::StartError::Store(leakwatch_store::StoreError::NoStore { .. })) => {}
            Err(e) => panic!("{e}"),
            Ok(_) => panic!("a server started on no store"),
        }
        assert!(!data.root().exists(), "opening made the directory");
    }
}
