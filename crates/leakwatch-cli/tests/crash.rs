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

/// The largest file under `dir`, in bytes.
fn largest_file(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .map(|e| match e.file_type().unwrap().is_dir() {
            true => largest_file(&e.path()),
            false => e.metadata().unwrap().len(),
        })
        .max()
        .unwrap_or(0)
}

/// How many segments of `kind` the manifest names.
fn segments_of(data: &Path, kind: &str) -> usize {
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(data.join("MANIFEST")).unwrap()).unwrap();
    manifest["segments"].as_array().unwrap().iter().filter(|s| s["kind"] == kind).count()
}

/// A compaction that fails after the ingest's generation is published is a
/// warning and exit 0: the data was published. Made to fail for real: the
/// process may write no file larger than any one ingest's, and the merged
/// segments of nine breaches are larger.
#[test]
fn a_compaction_that_fails_after_the_publish_is_a_warning() {
    use std::os::unix::process::CommandExt;

    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    for i in 1..=8u64 {
        let file = tmp.path().join(format!("b{i}.txt"));
        combo(&file, 2_000, i);
        let out =
            leakwatch(&data).args(["ingest", "--breach", &format!("B{i}")]).arg(&file).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    assert_eq!(segments_of(&data, "accounts"), 8);
    let limit = 2 * largest_file(&data);
    let limited = |args: &[&str], file: &Path| {
        let mut cmd = leakwatch(&data);
        cmd.args(args).arg(file);
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                // Past the limit a write fails (EFBIG) instead of killing the process.
                libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
                let rlimit = libc::rlimit { rlim_cur: limit, rlim_max: limit };
                if libc::setrlimit(libc::RLIMIT_FSIZE, &rlimit) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        cmd.output().unwrap()
    };

    let ninth = tmp.path().join("b9.txt");
    combo(&ninth, 2_000, 9);
    let out = limited(&["ingest", "--breach", "B9"], &ninth);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "exit {:?}: {stderr}", out.status.code());
    assert!(
        stderr
            .contains("leakwatch: warning: the ingest is published, but merging segments afterwards failed"),
        "{stderr}"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("breach B9 (new): 2,000 new accounts"));
    // Published, not merged.
    assert_eq!(segments_of(&data, "accounts"), 9);
    let breaches = leakwatch(&data).args(["breaches", "--json"]).output().unwrap();
    let breaches: serde_json::Value = serde_json::from_slice(&breaches.stdout).unwrap();
    assert!(breaches.as_array().unwrap().iter().any(|b| b["Name"] == "B9" && b["PwnCount"] == 2_000));
    let found = leakwatch(&data).args(["search", "email", "person7.9@example-corp.com"]).output().unwrap();
    assert!(String::from_utf8_lossy(&found.stdout).contains("B9"));
    let verify = leakwatch(&data).arg("verify").output().unwrap();
    assert!(verify.status.success(), "{}", String::from_utf8_lossy(&verify.stderr));

    // In --json, the warning is a field of the summary.
    let tenth = tmp.path().join("b10.txt");
    combo(&tenth, 2_000, 10);
    let out = limited(&["ingest", "--json", "--breach", "B10"], &tenth);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let warning = summary["compaction_warning"].as_str().unwrap_or_else(|| panic!("{summary}"));
    assert!(warning.starts_with("the ingest is published"), "{warning}");

    // The next writer without the limit cleans up and merges.
    let eleventh = tmp.path().join("b11.txt");
    combo(&eleventh, 100, 11);
    let out = leakwatch(&data).args(["ingest", "--json", "--breach", "B11"]).arg(&eleventh).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(summary["compaction_warning"].is_null(), "{summary}");
    assert!(segments_of(&data, "accounts") <= 8);
    let leftovers: Vec<_> = std::fs::read_dir(data.join("segments"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.ends_with(".seg"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
