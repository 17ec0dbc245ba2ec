//! A real Pwned Passwords client against `leakwatch serve`: the npm `hibp`
//! package (what many sign-up forms and password managers' helpers use), with
//! its base URL pointed at a local server on a store of own dumps. It checks
//! passwords that are there (SHA-1 and NTLM, with and without `Add-Padding`)
//! and one whose range is empty, which the server must answer with padding the
//! client reads as "not seen".
//!
//! Needs `node` and `npm` (`.ci/run` installs them: `apt-get install -y nodejs
//! npm`); the package comes from the npm registry once per target directory.
//! Without them the test fails, saying so: it is not skipped.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use leakwatch_types::{encode_hex_upper, ntlm, sha1};

mod support;
use support::{leakwatch, serve};

/// The version of the `hibp` package the test runs.
const HIBP: &str = "hibp@15.2.1";

/// Fails, saying what to install, when `tool` does not run.
fn require(tool: &str) {
    let ran = Command::new(tool).arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status();
    assert!(
        ran.is_ok_and(|s| s.success()),
        "`{tool}` is needed to run a real Pwned Passwords client against the server: \
         install Node.js and npm (Debian: apt-get install -y nodejs npm; .ci/run does)"
    );
}

/// A directory holding `node_modules/hibp`, installed on first use.
fn hibp_package() -> PathBuf {
    require("node");
    require("npm");
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("npm-hibp");
    let version = HIBP.rsplit('@').next().unwrap();
    let installed = std::fs::read_to_string(dir.join("node_modules/hibp/package.json"))
        .is_ok_and(|p| p.contains(&format!("\"version\": \"{version}\"")));
    if !installed {
        std::fs::create_dir_all(&dir).unwrap();
        // An empty package.json makes npm install here, not in a parent folder.
        std::fs::write(dir.join("package.json"), "{\"private\": true}\n").unwrap();
        let out = Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--loglevel=error", HIBP])
            .current_dir(&dir)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(out.status.success(), "npm install {HIBP} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    dir
}

/// What the script asks the client, one JSON object per check.
const SCRIPT: &str = r#"
import { pwnedPassword, pwnedPasswordRange } from 'hibp';
const [baseUrl, checks] = [process.argv[2], JSON.parse(process.argv[3])];
const out = [];
for (const c of checks) {
  const options = { baseUrl, addPadding: c.padded, userAgent: 'leakwatch-real-client-test' };
  if (c.mode === 'ntlm' || c.mode === 'sha1') {
    const range = await pwnedPasswordRange(c.prefix, { ...options, mode: c.mode });
    const counts = Object.values(range);
    out.push({ ...c, count: range[c.suffix] || 0, lines: counts.length, max: Math.max(...counts) });
  } else {
    out.push({ ...c, count: await pwnedPassword(c.password, options) });
  }
}
console.log(JSON.stringify(out));
"#;

#[test]
fn the_npm_hibp_client_checks_passwords_against_a_local_server() {
    let package = hibp_package();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let dump = tmp.path().join("dump.txt");
    std::fs::write(
        &dump,
        "alice@example-corp.com:password\nbob@example-corp.com:password\ncarol@example-corp.com:hunter2\n\
         dave@example-corp.com:correct horse battery staple\n",
    )
    .unwrap();
    let out = leakwatch(&data).args(["ingest", "--breach", "Corp"]).arg(&dump).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // A password whose SHA-1 range holds none of the store's hashes.
    let stored = ["password", "hunter2", "correct horse battery staple"];
    let prefix = |hash: &[u8]| encode_hex_upper(hash)[..5].to_owned();
    let empty = (0..)
        .map(|i| format!("never-leaked-{i}"))
        .find(|p| stored.iter().all(|s| prefix(&sha1(s.as_bytes())) != prefix(&sha1(p.as_bytes()))))
        .unwrap();

    let mut checks = Vec::new();
    for (password, count) in
        [("password", 2), ("hunter2", 1), ("correct horse battery staple", 1), (&empty, 0)]
    {
        for padded in [false, true] {
            checks.push(serde_json::json!({"password": password, "padded": padded, "want": count}));
        }
    }
    let hash = encode_hex_upper(&ntlm(b"password"));
    checks.push(serde_json::json!({
        "password": "password", "mode": "ntlm", "prefix": &hash[..5], "suffix": &hash[5..], "padded": false, "want": 2
    }));

    // The empty range itself, as the client parses it: padding lines only,
    // every one a count of 0.
    let hash = encode_hex_upper(&sha1(empty.as_bytes()));
    checks.push(serde_json::json!({
        "password": &empty, "mode": "sha1", "prefix": &hash[..5], "suffix": &hash[5..], "padded": false, "want": 0
    }));

    let script = package.join("check.mjs");
    std::fs::write(&script, SCRIPT).unwrap();
    let (mut server, addr) = serve(&data);
    let out = Command::new("node")
        .arg(&script)
        .arg(format!("http://{addr}"))
        .arg(serde_json::Value::Array(checks.clone()).to_string())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    server.kill().unwrap();
    server.wait().unwrap();
    assert!(out.status.success(), "the hibp client failed: {}", String::from_utf8_lossy(&out.stderr));
    let answers: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    let answers = answers.as_array().unwrap();
    assert_eq!(answers.len(), checks.len());
    for a in answers {
        assert_eq!(a["count"], a["want"], "{a}");
    }
    let ntlm_answer = answers.iter().find(|a| a["mode"] == "ntlm").unwrap();
    assert!(ntlm_answer["lines"].as_u64().unwrap() >= 1, "{ntlm_answer}");
    let empty_range = answers.iter().find(|a| a["mode"] == "sha1").unwrap();
    assert!((10..=209).contains(&empty_range["lines"].as_u64().unwrap()), "{empty_range}");
    assert_eq!(empty_range["max"], 0, "{empty_range}");
}
