//! The web interface as a browser meets it, over a real socket: sign-in with
//! good and bad keys, the session cookie's flags, CSRF refusals, the account
//! search (its content, roles, audit rows written before the answer), the
//! catalog, the security headers and the embedded assets.

mod support;

use leakwatch_server::Limits;
use support::web::*;

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_with_good_and_bad_keys_and_the_cookie_flags() {
    let s = start(limits()).await;
    let (status, headers, body) = get(&format!("{}/", s.base), None).await;
    assert_eq!((status, headers["location"].to_str().unwrap()), (303, "/ui/signin"), "{body}");

    let (status, headers, body) = get(&format!("{}/ui/signin", s.base), None).await;
    assert_eq!(status, 200);
    assert!(headers["content-security-policy"].to_str().unwrap().starts_with(CSP));
    assert!(headers["content-security-policy"].to_str().unwrap().contains("frame-ancestors 'none'"));
    assert!(headers["content-security-policy"].to_str().unwrap().contains("form-action 'self'"));
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    assert!(body.contains("<label for=\"key\">") && body.contains("<form"), "{body}");
    assert!(!body.contains("<script>") && !body.contains("style="), "no inline code under the CSP");

    // A wrong key: refused, counted and audited like an API 401.
    let (status, headers, body) = s.sign_in_answer("lw_not-a-key", &[]).await;
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("That key was not accepted."));
    assert!(set_cookie(&headers, "lw_session").is_none());
    let rows = s.audit_rows();
    let last = rows.last().unwrap();
    assert_eq!(
        (last.endpoint.as_str(), last.key_name.as_str(), last.status),
        ("ui signin", "(wrong key)", 401)
    );

    // A good key: a session cookie, HttpOnly, SameSite=Strict, not Secure over plain HTTP.
    let (status, headers, _) = s.sign_in_answer(&s.analyst, &[]).await;
    assert_eq!((status, headers["location"].to_str().unwrap()), (303, "/ui/search"));
    let cookie = set_cookie(&headers, "lw_session").unwrap();
    let id = cookie.split(';').next().unwrap().strip_prefix("lw_session=").unwrap();
    assert_eq!(id.len(), 64);
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
    assert!(
        cookie.contains("; HttpOnly") && cookie.contains("; SameSite=Strict") && cookie.contains("; Path=/")
    );
    assert!(!cookie.contains("Secure"), "{cookie}");
    // Behind a TLS proxy the cookie is Secure.
    let (_, headers, _) = s.sign_in_answer(&s.analyst, &[("x-forwarded-proto", "https")]).await;
    assert!(set_cookie(&headers, "lw_session").unwrap().contains("; Secure"));

    // Signed in, `/` goes to the search, which names the key.
    let session = s.sign_in(&s.analyst).await;
    let (status, headers, _) = get(&format!("{}/", s.base), Some(&session)).await;
    assert_eq!((status, headers["location"].to_str().unwrap()), (303, "/ui/search"));
    let (_, _, body) = get(&format!("{}/ui/search", s.base), Some(&session)).await;
    assert!(body.contains("analyst") && body.contains("Sign out"));

    // A made-up session id is no session.
    let forged = Session { cookie: format!("lw_session={}", "ab".repeat(32)), csrf: String::new() };
    let (status, headers, _) = get(&format!("{}/ui/search", s.base), Some(&forged)).await;
    assert_eq!((status, headers["location"].to_str().unwrap()), (303, "/ui/signin"));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_keys_at_sign_in_count_against_the_failed_key_limit() {
    let s = start(Limits { failed_keys_per_minute: 2, ..limits() }).await;
    assert_eq!(s.sign_in_answer("wrong-1", &[]).await.0, 401);
    assert_eq!(s.sign_in_answer("wrong-2", &[]).await.0, 401);
    // Past the limit even the right key is not looked at.
    let (status, headers, body) = s.sign_in_answer(&s.analyst, &[]).await;
    assert_eq!(status, 429, "{body}");
    assert!(headers.contains_key("retry-after"));
    assert!(set_cookie(&headers, "lw_session").is_none());
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posts_without_the_csrf_token_are_refused() {
    let s = start(limits()).await;
    // Sign-in without the form's token (or with one not matching its cookie).
    let r = client()
        .post(format!("{}/ui/signin", s.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("key={}", urlencode(&s.analyst)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(set_cookie(r.headers(), "lw_session").is_none());
    let r = client()
        .post(format!("{}/ui/signin", s.base))
        .header("cookie", format!("lw_signin={}", "1".repeat(64)))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("csrf={}&key={}", "2".repeat(64), urlencode(&s.analyst)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(set_cookie(r.headers(), "lw_session").is_none());

    let session = s.sign_in(&s.analyst).await;
    let rows_before = s.audit_rows().len();
    let url = format!("{}/ui/search", s.base);
    for body in [
        "account=alice%40example-corp.com".to_owned(),
        format!("csrf={}&account=alice%40example-corp.com", "0".repeat(64)),
    ] {
        let (status, _, page) = post(&url, &session, &body).await;
        assert_eq!(status, 403);
        assert!(!page.contains("Adobe"), "{page}");
    }
    assert_eq!(s.audit_rows().len(), rows_before, "a refused form searches nothing");
    // Sign-out needs the token too; with it, the session is gone.
    let url = format!("{}/ui/signout", s.base);
    assert_eq!(post(&url, &session, "").await.0, 403);
    let (status, headers, _) = post(&url, &session, &format!("csrf={}", session.csrf)).await;
    assert_eq!(status, 303);
    assert!(set_cookie(&headers, "lw_session").unwrap().contains("Max-Age=0"));
    let (status, headers, _) = get(&format!("{}/ui/search", s.base), Some(&session)).await;
    assert_eq!((status, headers["location"].to_str().unwrap()), (303, "/ui/signin"));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_search_shows_breach_cards_after_its_audit_rows_are_committed() {
    let s = start(limits()).await;
    let session = s.sign_in(&s.analyst).await;
    let (status, body) = s.search(&session, "  Alice@Example-Corp.com ").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("alice@example-corp.com is in 1 breach"), "{body}");
    assert!(body.contains("<a href=\"/ui/breach/Adobe\">Adobe title</a>"), "{body}");
    assert!(body.contains("breached 2020-06-01"), "{body}");
    assert!(body.contains("<li>Email addresses</li>") && body.contains("<li>Passwords</li>"), "{body}");
    assert!(!body.contains("Secret"), "a sensitive breach never shows in an account search");
    assert!(body.contains("No stealer-log sightings."), "{body}");

    // The rows are there when the answer arrives: the key's name, no address.
    let rows = s.audit_rows();
    let ui: Vec<(&str, &str, u64, u16)> = rows
        .iter()
        .filter(|r| r.endpoint.starts_with("ui "))
        .map(|r| (r.endpoint.as_str(), r.key_name.as_str(), r.results, r.status))
        .collect();
    assert_eq!(ui, [("ui breachedaccount", "analyst", 1, 200), ("ui stealerlogsbyemail", "analyst", 0, 404)]);
    assert!(rows.iter().all(|r| !format!("{r:?}").contains("alice")), "the address is kept hashed");

    let (status, body) = s.search(&session, "nobody@example-corp.com").await;
    assert_eq!(status, 200);
    assert!(body.contains("No breach held here contains nobody@example-corp.com"), "{body}");

    // Whatever is typed comes back as text.
    let (status, body) = s.search(&session, "a b\"><script>alert(1)</script>").await;
    assert_eq!(status, 400);
    assert!(body.contains("That is not an email address"), "{body}");
    assert!(body.contains("&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"), "{body}");
    assert!(!body.contains("<script>alert"), "{body}");

    // A catalog that refuses rows: nothing is shown.
    let plain = rusqlite::Connection::open(s.data.root().join("catalog.sqlite")).unwrap();
    plain
        .execute_batch(
            "CREATE TRIGGER refuse BEFORE INSERT ON audit_log BEGIN SELECT RAISE(ABORT, 'disk full'); END",
        )
        .unwrap();
    let (status, body) = s.search(&session, "alice@example-corp.com").await;
    assert_eq!(status, 503);
    assert!(!body.contains("Adobe"), "{body}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_domain_key_sees_only_its_domains() {
    let s = start(limits()).await;
    let session = s.sign_in(&s.domain).await;
    let (status, body) = s.search(&session, "carol@gmail.com").await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("only search addresses on its own verified domains"), "{body}");
    assert!(!body.contains("Adobe"), "{body}");
    let (status, body) = s.search(&session, "alice@example-corp.com").await;
    assert_eq!(status, 200);
    assert!(body.contains("Adobe title"), "{body}");
    let rows = s.audit_rows();
    let statuses: Vec<(u16, &str)> = rows
        .iter()
        .filter(|r| r.endpoint == "ui breachedaccount")
        .map(|r| (r.status, r.key_name.as_str()))
        .collect();
    assert_eq!(statuses, [(403, "corp"), (200, "corp")]);

    // The catalog: no sensitive breach for a domain key, as in the API.
    let (_, _, body) = get(&format!("{}/ui/breaches", s.base), Some(&session)).await;
    assert!(body.contains("Adobe title") && !body.contains("Secret title"), "{body}");
    let (status, _, _) = get(&format!("{}/ui/breach/Secret", s.base), Some(&session)).await;
    assert_eq!(status, 404);
    let analyst = s.sign_in(&s.analyst).await;
    let (_, _, body) = get(&format!("{}/ui/breaches", s.base), Some(&analyst)).await;
    assert!(body.contains("Secret title"), "{body}");
    s.stop().await;
}

/// The rows of a domain search's table: address, then the breaches it is in.
fn domain_rows(body: &str) -> Vec<(String, String)> {
    let tbody = body.split("<tbody>").nth(1).unwrap_or("").split("</tbody>").next().unwrap_or("");
    tbody
        .split("<tr>")
        .skip(1)
        .map(|row| {
            let cells: Vec<String> = row
                .split("<td>")
                .skip(1)
                .map(|c| {
                    let text = c.split("</td>").next().unwrap();
                    // Link texts only, without the markup around them.
                    let mut out = String::new();
                    let mut inside = false;
                    for ch in text.chars() {
                        match ch {
                            '<' => inside = true,
                            '>' => inside = false,
                            _ if !inside => out.push(ch),
                            _ => {}
                        }
                    }
                    out
                })
                .collect();
            (cells[0].clone(), cells[1].clone())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_domain_search_lists_the_exposed_addresses_for_keys_that_may_see_the_domain() {
    let s = start(limits()).await;
    let analyst = s.sign_in(&s.analyst).await;
    let (status, _, body) = s.domain_search(&analyst, "Example-Corp.com").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("4 addresses on example-corp.com exposed"), "{body}");
    let all = [
        ("alice@example-corp.com", "Adobe, Secret"),
        ("dave@example-corp.com", "Bigger"),
        ("erin@example-corp.com", "Bigger"),
        ("frank@example-corp.com", "Bigger"),
    ];
    let expected: Vec<(String, String)> = all.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
    assert_eq!(domain_rows(&body), expected);

    // A domain key: its own domain, without the sensitive breach; no other.
    let corp = s.sign_in(&s.domain).await;
    let (_, _, form) = get(&format!("{}/ui/domain", s.base), Some(&corp)).await;
    assert!(form.contains("This key may search: example-corp.com."), "{form}");
    let (status, _, body) = s.domain_search(&corp, "example-corp.com").await;
    assert_eq!(status, 200);
    assert_eq!(domain_rows(&body)[0], ("alice@example-corp.com".to_owned(), "Adobe".to_owned()));
    let (status, _, body) = s.domain_search(&corp, "gmail.com").await;
    assert_eq!(status, 403);
    assert!(!body.contains("carol"), "{body}");
    let (status, _, body) = s.domain_search(&corp, "nobody.example").await;
    assert_eq!(status, 403, "{body}");
    let (status, _, body) = s.domain_search(&analyst, "nobody.example").await;
    assert_eq!(status, 200);
    assert!(body.contains("No breach held here contains an address on nobody.example"), "{body}");
    let (status, _, _) = s.domain_search(&analyst, "not a domain").await;
    assert_eq!(status, 400);
    // Without the session's token nothing is looked up, or audited.
    let before = s.audit_rows().len();
    let (status, _, _) = post(&format!("{}/ui/domain", s.base), &analyst, "domain=example-corp.com").await;
    assert_eq!(status, 403);
    assert_eq!(s.audit_rows().len(), before);

    // Every search audited under its key, both lookups, before the page.
    let rows: Vec<(String, String, u16, u64)> = s
        .audit_rows()
        .into_iter()
        .filter(|r| r.endpoint.starts_with("ui breacheddomain") || r.endpoint.starts_with("ui stealerlogs"))
        .map(|r| (r.endpoint, r.key_name, r.status, r.results))
        .collect();
    let row = |e: &str, k: &str, status: u16, n: u64| (e.to_owned(), k.to_owned(), status, n);
    assert_eq!(
        rows,
        [
            row("ui breacheddomain", "analyst", 200, 4),
            row("ui stealerlogsbyemaildomain", "analyst", 200, 0),
            row("ui breacheddomain", "corp", 200, 4),
            row("ui stealerlogsbyemaildomain", "corp", 200, 0),
            row("ui breacheddomain", "corp", 403, 0),
            row("ui stealerlogsbyemaildomain", "corp", 403, 0),
            row("ui breacheddomain", "corp", 403, 0),
            row("ui stealerlogsbyemaildomain", "corp", 403, 0),
            row("ui breacheddomain", "analyst", 200, 0),
            row("ui stealerlogsbyemaildomain", "analyst", 200, 0),
        ]
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_catalog_sorts_filters_and_escapes() {
    let s = start(limits()).await;
    let titles = |body: &str| -> Vec<String> {
        body.match_indices("<tr><td><a href=\"/ui/breach/")
            .map(|(at, _)| {
                let rest = &body[at..];
                let start = rest.find("\">").unwrap() + 2;
                rest[start..start + rest[start..].find('<').unwrap()].to_owned()
            })
            .collect()
    };
    let (status, headers, body) = get(&format!("{}/ui/breaches", s.base), None).await;
    assert_eq!(status, 200);
    assert!(headers["content-security-policy"].to_str().unwrap().starts_with(CSP));
    assert_eq!(titles(&body), ["Adobe title", "Bigger title"], "anonymous: by title, no sensitive breach");
    let (_, _, body) = get(&format!("{}/ui/breaches?sort=count&order=desc", s.base), None).await;
    assert_eq!(titles(&body), ["Bigger title", "Adobe title"]);
    assert!(body.contains("aria-sort=\"descending\""), "{body}");
    let (_, _, body) = get(&format!("{}/ui/breaches?sort=date", s.base), None).await;
    assert_eq!(titles(&body), ["Bigger title", "Adobe title"]);
    let (_, _, body) = get(&format!("{}/ui/breaches?q=ADOBE", s.base), None).await;
    assert_eq!(titles(&body), ["Adobe title"]);
    let (_, _, body) = get(&format!("{}/ui/breaches?q=%3Cb%3E", s.base), None).await;
    assert!(
        titles(&body).is_empty() && body.contains("value=\"&lt;b&gt;\"") && !body.contains("<b>"),
        "{body}"
    );

    let (status, _, body) = get(&format!("{}/ui/breach/bigger", s.base), None).await;
    assert_eq!(status, 200);
    assert!(body.contains("<h1>Bigger title</h1>") && body.contains("2001-01-01"), "{body}");
    assert!(
        body.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; more") && !body.contains("<script>alert")
    );
    let (status, _, _) = get(&format!("{}/ui/breach/Nothing", s.base), None).await;
    assert_eq!(status, 404);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assets_are_embedded_and_the_password_never_leaves_the_page() {
    let s = start(limits()).await;
    let (status, headers, js) = get(&format!("{}/ui/assets/pwcheck.js", s.base), None).await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "text/javascript; charset=utf-8");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert!(js.contains("crypto.subtle.digest('SHA-1'") && js.contains("'/range/' + prefix"), "{js}");
    let (status, headers, css) = get(&format!("{}/ui/assets/app.css", s.base), None).await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "text/css; charset=utf-8");
    assert!(css.contains("@media"));
    assert!(!css.contains("url(") && !css.contains("@import"), "no external fonts or images");

    // The password field has no name: the form cannot submit it, with or
    // without the script.
    let session = s.sign_in(&s.analyst).await;
    let (_, _, body) = get(&format!("{}/ui/search", s.base), Some(&session)).await;
    let field = &body[body.find("<input type=\"password\" id=\"pw\"").unwrap()..];
    let field = &field[..field.find('>').unwrap()];
    assert!(!field.contains("name="), "{field}");
    assert!(body.contains("<script src=\"/ui/assets/pwcheck.js\"></script>"));
    // The API is untouched beside it.
    let (status, _, _) = get(&format!("{}/api/v3/breaches", s.base), None).await;
    assert_eq!(status, 200);
    s.stop().await;
}

/// The interface in a real browser: headless Chromium (Debian's `chromium`,
/// or `$CHROMIUM`) driven by the npm `playwright-core` package, installed once
/// per target directory. Without Chromium, Node.js or npm the test fails,
/// saying what to install: it is not skipped (`.ci/run` installs them).
mod browser {

    use super::*;

    const SCRIPT: &str = include_str!("browser/e2e.mjs");

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn chromium_signs_in_searches_checks_a_password_and_opens_a_breach() {
        let s = start(limits()).await;
        let seen = run_browser_script("e2e.mjs", SCRIPT, &[&s.base, &s.analyst]).await;
        eprintln!(
            "browser: sign-in page {} bytes, interactive {} ms (load {:.0} ms); search answered in {:.0} ms",
            seen["signinLoad"]["transfer"],
            seen["signinLoad"]["interactive"],
            seen["signinMs"].as_f64().unwrap(),
            seen["searchMs"].as_f64().unwrap()
        );

        assert_eq!(seen["errors"], serde_json::json!([]), "no script errors and no CSP violations");
        assert!(seen["signinUrl"].as_str().unwrap().ends_with("/ui/signin"));
        assert!(seen["signinLoad"]["transfer"].as_u64().unwrap() < 100_000);
        let session = seen["cookies"].as_array().unwrap().iter().find(|c| c["name"] == "lw_session").unwrap();
        assert_eq!(
            (&session["httpOnly"], &session["sameSite"]),
            (&serde_json::json!(true), &serde_json::json!("Strict"))
        );
        assert_eq!(seen["heading"], "alice@example-corp.com is in 1 breach");
        assert_eq!(seen["cards"], serde_json::json!(["Adobe title"]));
        assert_eq!(seen["overflows"], false, "readable at phone width without scrolling sideways");
        let seen_text = seen["seen"].as_str().unwrap();
        assert!(seen_text.contains("seen 3 times"), "{seen_text}");
        assert!(seen["unseen"].as_str().unwrap().contains("not found"), "{}", seen["unseen"]);
        assert!(seen["url"].as_str().unwrap().ends_with("/ui/search"), "the password form never navigates");
        assert_eq!(seen["breach"], "Adobe title");
        // The analyst sees the sensitive breach too.
        assert_eq!(
            seen["sorted"],
            serde_json::json!(["Bigger title", "Adobe title", "Secret title"]),
            "by accounts, descending"
        );
        assert!(seen["afterSignOut"].as_str().unwrap().ends_with("/ui/signin"));

        // The password left the page as a five-character prefix, nothing more.
        let requests = seen["requests"].as_array().unwrap();
        let ranges: Vec<&str> =
            requests.iter().map(|r| r["url"].as_str().unwrap()).filter(|u| u.contains("/range/")).collect();
        assert_eq!(ranges.len(), 2, "{ranges:?}");
        assert!(ranges[0].ends_with("/range/5BAA6"), "{ranges:?}");
        let sha1_of_password = "5BAA61E4C9B93F3F0682250B6CF8331B7EE68FD8";
        for r in requests {
            let text = format!("{} {}", r["url"], r["body"]).to_ascii_uppercase();
            assert!(!text.contains("PASSWORD") && !text.contains(&sha1_of_password[5..]), "{r}");
            assert!(!text.contains("HORSE"), "{r}");
        }
        // The searches were audited under the key's name.
        assert!(s.audit_rows().iter().any(|r| r.endpoint == "ui breachedaccount" && r.key_name == "analyst"));
        s.stop().await;
    }
}
