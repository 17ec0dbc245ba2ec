//! `leakwatch sync pwned-passwords` through the binary: from a minimal range API
//! on a loopback port (plain std, no HTTP stack of its own) into a data
//! directory; a rerun revalidates with ETags; a bad URL and an
//! unreachable upstream exit 2 with one line on stderr.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output};

/// SHA-1 of `pw5859`, in range 0006E: within the first 2^8 prefixes.
const PASSWORD_SHA1: &str = "0006E617D8938BB0C16FBCB10E90D80DF95651A9";

/// Serves `/range/PREFIX`: the SHA-1 of `pw5859` (count 42) in its range,
/// empty elsewhere, with an ETag per prefix honoured by `If-None-Match`.
fn start_upstream() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request = String::new();
            let mut if_none_match = None;
            let mut line = String::new();
            while reader.read_line(&mut line).unwrap_or(0) > 0 && line != "\r\n" {
                if request.is_empty() {
                    request = line.clone();
                } else if let Some(v) = line.to_ascii_lowercase().strip_prefix("if-none-match:") {
                    if_none_match = Some(v.trim().to_owned());
                }
                line.clear();
            }
            let prefix =
                request.split(' ').nth(1).and_then(|p| p.strip_prefix("/range/")).unwrap_or("").to_owned();
            let etag = format!("\"{}\"", prefix.to_ascii_lowercase());
            let body = if prefix == PASSWORD_SHA1[..5] {
                format!("{}:42", &PASSWORD_SHA1[5..])
            } else {
                String::new()
            };
            let response = if if_none_match.as_deref() == Some(etag.as_str()) {
                format!("HTTP/1.1 304 Not Modified\r\nETag: {etag}\r\nConnection: close\r\n\r\n")
            } else {
                format!(
                    "HTTP/1.1 200 OK\r\nETag: {etag}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                )
            };
            let _ = stream.write_all(response.as_bytes());
        }
    });
    format!("http://{addr}")
}

fn leakwatch(data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_leakwatch"))
        .arg("--data")
        .arg(data)
        .args(args)
        // The data key beside the data directory, not in the user's config directory.
        .env("LEAKWATCH_KEY_FILE", data.with_extension("key"))
        .output()
        .unwrap()
}

#[test]
fn sync_publishes_the_corpus_and_revalidates_on_rerun() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let base = start_upstream();
    // The hidden testing option keeps this to the first 256 prefixes.
    let sync = ["sync", "pwned-passwords", "--from", &base, "--prefix-bits", "8", "--json"];
    let first = leakwatch(&data, &sync);
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    let summary: serde_json::Value = serde_json::from_slice(&first.stdout).unwrap();
    assert_eq!(summary["ranges"], 256);
    assert_eq!(summary["fetched"], 256);
    assert_eq!(summary["published"], true);
    assert_eq!(summary["hashes"], 1);

    // The body as received is staged for the next, incremental run.
    let staged =
        std::fs::read_to_string(data.join("sync/sha1/ranges").join(format!("{}.txt", &PASSWORD_SHA1[..5])));
    assert_eq!(staged.unwrap(), format!("{}:42", &PASSWORD_SHA1[5..]));

    let again = leakwatch(&data, &sync);
    assert!(again.status.success(), "{}", String::from_utf8_lossy(&again.stderr));
    let summary: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(summary["not_modified"], 256);
    assert_eq!(summary["bytes"], 0);
    assert_eq!(summary["published"], false);
}

#[test]
fn a_bad_url_exits_2_with_one_line() {
    let tmp = tempfile::tempdir().unwrap();
    let out = leakwatch(tmp.path(), &["sync", "pwned-passwords", "--from", "ftp://example"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("ftp://example"), "{stderr}");
}
