//! The breach catalog's charts, the page per breach and the ingest status page
//! of the web interface, over a real socket and in headless Chromium: what
//! the charts say (to a screen reader too), who may read the ingest log, and
//! that it shows running ingests' progress and past ones' rejections by reason
//! as the ingest logged them.

mod support;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use leakwatch_server::IngestLog;
use leakwatch_store::{ingest, BreachInfo, DataDir, IngestOptions, Progress};
use support::web::*;

/// Ingests `text` (as a file named `file_name`) into `breach` as `leakwatch
/// ingest` does, logging it; the input's path.
fn logged_ingest(data: &DataDir, dir: &std::path::Path, breach: &str, file_name: &str, text: &str) -> String {
    let path = dir.join(file_name);
    std::fs::write(&path, text).unwrap();
    let path = path.to_str().unwrap().to_owned();
    let progress = Arc::new(Progress::default());
    let size = Some(text.len() as u64);
    let log = IngestLog::start(data, breach, "tester", &[(path.clone(), size)], progress.clone()).unwrap();
    let options = IngestOptions {
        breach: BreachInfo { name: breach.into(), ..BreachInfo::default() },
        format: None,
        memory_budget: 64 << 20,
    };
    let summary = ingest_unlocked(&path, |input| {
        ingest(data, &options, vec![input], &progress, &mut |phase| log.phase(&phase))
    });
    log.finish(&summary).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_catalog_draws_its_charts_with_text_alternatives() {
    let s = start(limits()).await;
    let url = |query: &str| format!("{}/ui/breaches{query}", s.base);
    let (status, _, body) = get(&url(""), None).await;
    assert_eq!(status, 200);
    // Adobe (2020-06, 2 accounts) and Bigger (2001-01, 3 accounts); Secret is
    // sensitive, not shown to a visitor who is not signed in.
    assert_eq!(body.matches("<svg ").count(), 3, "{body}");
    assert!(body.contains("role=\"img\" aria-labelledby=\"chart-breaches-t chart-breaches-d\""), "{body}");
    assert!(body.contains("<title id=\"chart-breaches-t\">Breaches per year</title>"));
    assert!(body.contains("2 breaches from 2001 to 2020, per year; the most in 2001 (1 breach)."), "{body}");
    assert!(
        body.contains("5 accounts from 2001 to 2020, per year; the most in 2001 (3 accounts)."),
        "{body}"
    );
    assert!(
        body.contains("<title>2001: 1 breach</title>") && body.contains("<title>2020: 2 accounts</title>")
    );
    assert!(!body.contains("<title>2010:"), "an empty year draws no bar");
    assert!(body.contains("<title>Email addresses: 2 breaches, 5 accounts</title>"), "{body}");
    assert!(body.contains("<th scope=\"row\">2001</th><td class=\"num\">1</td><td class=\"num\">3</td>"));
    assert!(!body.contains("style="), "the CSP forbids style attributes");
    assert!(body.find("id=\"charts\"").unwrap() < body.find("id=\"list\"").unwrap());
    // Sorting and filtering keep the charts as they are.
    let (_, _, body) = get(&url("?per=month&classes=accounts"), None).await;
    assert!(
        body.contains(
            "href=\"/ui/breaches?sort=count&amp;order=asc&amp;q=&amp;per=month&amp;classes=accounts\""
        ),
        "{body}"
    );
    assert!(body.contains("<input type=\"hidden\" name=\"per\" value=\"month\">"), "{body}");

    let analyst = s.sign_in(&s.analyst).await;
    let (_, _, body) = get(&url(""), Some(&analyst)).await;
    // Secret is dated the day it was ingested.
    assert!(body.contains("3 breaches from 2001 to "), "the sensitive breach counts for an analyst: {body}");
    assert!(body.contains("<title>Email addresses: 3 breaches, 6 accounts</title>"), "{body}");

    let (_, _, body) = get(&url("?per=month&sort=count&order=desc"), None).await;
    assert!(
        body.contains("Breaches per month") && body.contains("<title>2020-06: 1 breach</title>"),
        "{body}"
    );
    assert!(body.contains("2 breaches from 2001-01 to 2020-06, per month"), "{body}");
    assert!(body.contains("href=\"/ui/breaches?sort=count&amp;order=desc&amp;q=&amp;per=year&amp;classes=breaches#chart-time\""), "{body}");
    let (_, _, body) = get(&url("?q=bigger&classes=accounts"), None).await;
    assert!(
        body.contains("1 breach from 2001 to 2001, per year"),
        "the charts draw what the filter keeps: {body}"
    );
    assert!(body.contains("Data classes by accounts exposed"), "{body}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_breach_page_has_every_field_and_its_ingests_for_analysts() {
    let s = start(limits()).await;
    let (status, _, body) = get(&format!("{}/ui/breach/Adobe", s.base), None).await;
    assert_eq!(status, 200);
    for fact in [
        "<h1>Adobe title</h1>",
        "<dt>Site</dt><dd>adobe.com</dd>",
        "<dt>Breach date</dt><dd>2020-06-01</dd>",
        "<dt>Accounts</dt><dd>2 (40.0% of the accounts shown in the catalog)</dd>",
        "<dt>Verified</dt><dd>yes</dd>",
        "<dt>Fabricated</dt><dd>no</dd>",
        "<dt>Sensitive</dt><dd>no</dd>",
        "<dt>Malware</dt><dd>no</dd>",
        "<dt>Stealer log</dt><dd>no</dd>",
        "<li><a href=\"/ui/breaches?q=passwords\">Passwords</a></li>",
    ] {
        assert!(body.contains(fact), "{fact}: {body}");
    }
    assert!(body.contains("<dt>Added</dt><dd>20") && body.contains("<dt>Modified</dt><dd>20"));
    assert!(!body.contains("<h2>Ingests</h2>"), "the ingest log is for admin and analyst keys");

    let tmp = tempfile::tempdir().unwrap();
    logged_ingest(&s.data, tmp.path(), "Adobe", "more.txt", "zed@example.com:pw\nbroken line\n");
    let analyst = s.sign_in(&s.analyst).await;
    let (_, _, body) = get(&format!("{}/ui/breach/Adobe", s.base), Some(&analyst)).await;
    assert!(
        body.contains("<h2>Ingests</h2>") && body.contains("by tester: 1 accepted, 1 rejected"),
        "{body}"
    );
    assert!(body.contains("href=\"/ui/ingests?breach=Adobe#ingest-1\""), "{body}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ingest_page_shows_progress_and_rejections_by_reason_to_analysts_only() {
    let s = start(limits()).await;
    let url = format!("{}/ui/ingests", s.base);
    let (status, headers, _) = get(&url, None).await;
    assert_eq!((status, headers["location"].to_str().unwrap()), (303, "/ui/signin"));
    let domain = s.sign_in(&s.domain).await;
    let (status, _, body) = get(&url, Some(&domain)).await;
    assert_eq!(status, 403, "{body}");
    let analyst = s.sign_in(&s.analyst).await;
    let (status, _, body) = get(&url, Some(&analyst)).await;
    assert_eq!(status, 200);
    assert!(body.contains("No ingest is running.") && body.contains("None yet."), "{body}");

    let tmp = tempfile::tempdir().unwrap();
    let dump =
        "a1@example.com:pw\nno separator here\na2@example.com:pw\n@x:pw\nand another\na3@example.com:pw\n";
    let path = logged_ingest(&s.data, tmp.path(), "Logged", "dump<b>.txt", dump);
    // One that failed, one running, and one whose process died mid-way.
    let names = ["big.txt".to_owned()];
    let failed =
        IngestLog::start(&s.data, "Failing", "tester", &[(names[0].clone(), None)], Default::default())
            .unwrap();
    failed.fail("the store is locked by another writer").unwrap();
    let progress = Arc::new(Progress::default());
    progress.bytes.store(250_000, Ordering::Relaxed);
    progress.records.store(1234, Ordering::Relaxed);
    let running =
        IngestLog::start(&s.data, "Running", "tester", &[(names[0].clone(), Some(1_000_000))], progress)
            .unwrap();
    running.phase(&leakwatch_store::Phase::Reading { name: "big.txt", raw_len: Some(1_000_000) });
    let dead =
        IngestLog::start(&s.data, "Dead", "tester", &[(names[0].clone(), None)], Default::default()).unwrap();
    let dead_id = dead.id();
    drop(dead);
    let db = rusqlite::Connection::open(s.data.root().join("catalog.sqlite")).unwrap();
    db.execute("UPDATE ingests SET updated_at = '2020-01-01T00:00:00.000Z' WHERE id = ?1", [dead_id])
        .unwrap();
    // The running ingest's first progress report.
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let (status, _, body) = get(&url, Some(&analyst)).await;
    assert_eq!(status, 200);
    let running_section =
        &body[body.find("id=\"running\"").unwrap()..body.find("<h2>Past ingests</h2>").unwrap()];
    assert!(running_section.contains("data-refresh"), "{running_section}");
    assert!(running_section.contains(
        "<a href=\"/ui/breach/Running\">Running</a> <span class=\"status running\">running</span>"
    ));
    assert!(running_section.contains("<progress max=\"1000000\" value=\"250000\""), "{running_section}");
    assert!(running_section.contains("25% of 1.0 MB read") && running_section.contains("reading big.txt"));
    assert!(running_section.contains("1,234 records so far"), "{running_section}");
    let past = &body[body.find("<h2>Past ingests</h2>").unwrap()..];
    assert!(!past.contains("Running</a>"), "{past}");
    assert!(past.contains("Dead</a> <span class=\"status bad\">stopped</span>"), "{past}");
    assert!(past.contains("Failing</a> <span class=\"status bad\">failed</span>"), "{past}");
    assert!(past.contains("Nothing was published: the store is locked by another writer"), "{past}");
    let logged = &past[past.find("Logged</a>").unwrap()..];
    assert!(logged.contains("<span class=\"status good\">done</span>"), "{logged}");
    assert!(
        logged.contains("<dt>Lines read</dt><dd>6</dd>") && logged.contains("<dt>Accepted</dt><dd>3</dd>")
    );
    assert!(logged.contains("<dt>Rejected</dt><dd>3</dd>"), "{logged}");
    assert!(logged.contains("<dt>New accounts</dt><dd>3 (a new breach)</dd>"), "{logged}");
    assert!(
        logged.contains("<tr><td>no separator</td><td class=\"num\">2</td></tr>"),
        "rejections by reason: {logged}"
    );
    assert!(logged.contains("2 no separator (e.g. lines 2, 5)"), "{logged}");
    let escaped = path.replace('<', "&lt;").replace('>', "&gt;");
    assert!(logged.contains(&escaped) && !body.contains("dump<b>"), "input names are text: {logged}");
    assert!(body.contains("<script src=\"/ui/assets/refresh.js\"></script>"));

    // One breach's ingests.
    let (_, _, body) = get(&format!("{url}?breach=logged"), Some(&analyst)).await;
    assert!(body.contains("Logged</a>") && !body.contains("Failing</a>"), "{body}");
    // Once the running one ends, nothing refreshes any more.
    drop(running);
    let (status, headers, js) = get(&format!("{}/ui/assets/refresh.js", s.base), None).await;
    assert_eq!((status, headers["content-type"].to_str().unwrap()), (200, "text/javascript; charset=utf-8"));
    assert!(js.contains("data-refresh"), "{js}");
    s.stop().await;
}

/// The catalog's charts and the ingest page in headless Chromium, at phone
/// width, reached by keyboard from the navigation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_shows_the_charts_and_the_ingest_log() {
    const SCRIPT: &str = include_str!("browser/catalog.mjs");
    // Installed before the running ingest starts, which waits a bounded time
    // for the browser.
    chromium();
    let dir = playwright();
    let s = start(limits()).await;
    let tmp = tempfile::tempdir().unwrap();
    // Into a breach there is, so that the charts stay as they were.
    logged_ingest(&s.data, tmp.path(), "Adobe", "dump.txt", "a1@example.com:pw\nno separator here\n");
    // Running until the page has shown it so.
    let running =
        IngestLog::start(&s.data, "Bigger", "tester", &[("big.txt".into(), None)], Default::default())
            .unwrap();
    let marker = dir.join("seen-running");
    let _ = std::fs::remove_file(&marker);
    let ender = std::thread::spawn(move || {
        for _ in 0..600 {
            if marker.exists() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        running.fail("ended by the test").unwrap();
    });
    let seen = run_browser_script("catalog.mjs", SCRIPT, &[&s.base, &s.analyst]).await;
    assert_eq!(seen["errors"], serde_json::json!([]), "no script errors and no CSP violations");
    assert_eq!(
        seen["charts"],
        serde_json::json!(["Breaches per year", "Accounts per year", "Data classes by breaches"]),
        "{seen}"
    );
    assert!(seen["chartWidths"].as_array().unwrap().iter().all(|w| w.as_f64().unwrap() > 100.0), "{seen}");
    // 2001, 2020 and the year Secret was ingested in (its breach date), in two charts.
    assert_eq!(seen["bars"], 6, "{seen}");
    assert_eq!(seen["tableOpened"], true, "{seen}");
    assert_eq!(seen["monthly"], "Breaches per month", "{seen}");
    assert_eq!(seen["overflows"], serde_json::json!([false, false, false]), "readable at 360 px: {seen}");
    assert_eq!(seen["ingestsUrl"].as_str().unwrap(), format!("{}/ui/ingests", s.base));
    assert_eq!(seen["running"], "Bigger running", "{seen}");
    assert_eq!(seen["urlAfterRefresh"], seen["ingestsUrl"], "the page refreshed itself, not by navigating");
    assert_eq!(seen["ingestHeadings"], serde_json::json!(["Bigger failed", "Adobe done"]), "{seen}");
    assert_eq!(seen["reasons"], serde_json::json!([["no separator", "1"]]), "{seen}");
    ender.join().unwrap();
    s.stop().await;
}
