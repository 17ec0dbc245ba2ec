//! An ingest killed at any moment leaves the store as it was: same manifest,
//! same answers, every checksum good; the next ingest cleans up and succeeds.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn leakwatch(data: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_leakwatch"));
    cmd.arg("--data").arg(data).stdin(Stdio::null());
    // The data key beside the data directory, not in the user's config directory.
    cmd.env("LEAKWATCH_KEY_FILE", data.with_extension("key"));
    cmd
}

fn combo(path: &Path, lines: usize, salt: u64) {
    let mut text = String::with_capacity(lines * 40);
    let mut x = 0x2545_F491_4F6C_DD1Du64 ^ salt;
    for i in 0..lines {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        text.push_str(&format!("person{}.{}@example-corp.com:pw{}\n", i, salt, x % 100_000));
    }
    std::fs::write(path, text).unwrap();
}

fn answers(data: &Path) -> (String, String) {
    let out = leakwatch(data).args(["search", "domain", "--json", "example-corp.com"]).output().unwrap();
    let domain = String::from_utf8(out.stdout).unwrap();
    let out = leakwatch(data).args(["breaches", "--json"]).output().unwrap();
    (domain, String::from_utf8(out.stdout).unwrap())
}

#[test]
fn killed_ingest_leaves_the_store_as_it_was() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let base = tmp.path().join("base.txt");
    let big = tmp.path().join("big.txt");
    combo(&base, 2_000, 1);
    combo(&big, 150_000, 2);
    let ok = leakwatch(&data).args(["ingest", "--breach", "Base"]).arg(&base).output().unwrap();
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    let manifest_before = std::fs::read(data.join("MANIFEST")).unwrap();
    let answers_before = answers(&data);

    // Time one full run, then kill runs at fractions of that time.
    let started = Instant::now();
    let full = tmp.path().join("full");
    let out = leakwatch(&full)
        .args(["ingest", "--breach", "Big", "--memory-budget", "1MiB"])
        .arg(&big)
        .output()
        .unwrap();
    assert!(out.status.success());
    let full_time = started.elapsed();

    let mut killed = 0;
    for step in 1..=6u32 {
        let delay = full_time.mul_f64(f64::from(step) / 7.0);
        let mut child = leakwatch(&data)
            .args(["ingest", "--breach", "Big", "--memory-budget", "1MiB"])
            .arg(&big)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay.max(Duration::from_millis(5)));
        let finished = child.try_wait().unwrap().is_some();
        child.kill().ok();
        child.wait().unwrap();
        let manifest_now = std::fs::read(data.join("MANIFEST")).unwrap();
        if finished || manifest_now != manifest_before {
            // The kill came after the new generation was published: it must be whole.
            let breaches: serde_json::Value = serde_json::from_slice(
                &leakwatch(&data).args(["breaches", "--json"]).output().unwrap().stdout,
            )
            .unwrap();
            let big_breach = breaches.as_array().unwrap().iter().find(|b| b["Name"] == "Big");
            assert_eq!(big_breach.map(|b| b["PwnCount"].as_u64().unwrap()), Some(150_000));
            break;
        }
        killed += 1;
        assert_eq!(answers(&data), answers_before, "answers changed after a kill at {delay:?}");
        let verify = leakwatch(&data).arg("verify").output().unwrap();
        assert!(verify.status.success(), "{}", String::from_utf8_lossy(&verify.stderr));
    }
    assert!(killed > 0, "no run was killed before it finished");

    let out = leakwatch(&data).args(["ingest", "--breach", "Big"]).arg(&big).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let after = answers(&data);
    assert_ne!(after.1, answers_before.1);
    let leftovers: Vec<_> = std::fs::read_dir(data.join("segments"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.ends_with(".seg"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
