//! The README's first command: `leakwatch demo` runs on a bare machine, checks
//! its own answers, can be rerun, and never deletes a directory it did not make.

use std::process::Command;

/// `leakwatch` with its default key location (`$XDG_CONFIG_HOME/leakwatch/keys`)
/// in the test's own directory: as on a bare machine, but not in the user's home.
fn leakwatch(dir: &std::path::Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_leakwatch"));
    cmd.env("XDG_CONFIG_HOME", dir.with_extension("config")).env_remove("LEAKWATCH_KEY_FILE");
    cmd
}

fn demo(dir: &std::path::Path) -> std::process::Output {
    leakwatch(dir).args(["demo", "--dir"]).arg(dir).output().unwrap()
}

#[test]
fn demo_runs_checks_itself_and_reruns() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("demo");
    for _ in 0..2 {
        let out = demo(&dir);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert!(stdout.contains("answers against the generator's expected answers: all exact"), "{stdout}");
        assert!(stdout.contains("Exposed addresses on example-corp.com"), "{stdout}");
    }
    let search = leakwatch(&dir)
        .arg("--data")
        .arg(dir.join("data"))
        .args(["search", "domain", "--json", "example-corp.com"])
        .output()
        .unwrap();
    assert!(search.status.success());
    let aliases: serde_json::Value = serde_json::from_slice(&search.stdout).unwrap();
    assert!(aliases.as_object().unwrap().len() > 10);
    // Its ingests are in the ingest log (the rerun starts a fresh directory).
    let breaches =
        leakwatch(&dir).arg("--data").arg(dir.join("data")).args(["breaches", "--json"]).output().unwrap();
    let breaches: serde_json::Value = serde_json::from_slice(&breaches.stdout).unwrap();
    let catalog = rusqlite::Connection::open(dir.join("data/catalog.sqlite")).unwrap();
    let (done, rejected): (i64, i64) = catalog
        .query_row(
            "SELECT count(*), (SELECT sum(count) FROM ingest_rejections) FROM ingests WHERE status = 'done'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(done as usize, breaches.as_array().unwrap().len());
    assert!(rejected > 0, "the demo's dumps carry noise");
}

#[test]
fn demo_refuses_a_directory_it_did_not_make() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("precious.txt"), b"keep me").unwrap();
    let out = demo(tmp.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not made by `leakwatch demo`"));
    assert!(tmp.path().join("precious.txt").exists());
}

/// The suggested commands run exactly as printed, from another directory too,
/// and find the demo's key beside its data: the demo adds no key to the user's
/// key ring, however often it runs.
#[test]
fn demo_suggestions_run_as_printed_with_the_key_beside_the_data() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("demo");
    let mut printed = String::new();
    for _ in 0..2 {
        let out = demo(&dir);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        printed = String::from_utf8(out.stdout).unwrap();
    }
    assert!(dir.join("demo.key").is_file());
    let ring = dir.with_extension("config").join("leakwatch");
    assert!(!ring.exists(), "the demo put a key in the user's key ring: {}", ring.display());
    let tries: Vec<&str> = printed
        .lines()
        .skip_while(|l| *l != "Try:")
        .skip(1)
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(tries.len(), 5, "{printed}");
    for line in tries {
        let words: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(words[0], env!("CARGO_BIN_EXE_leakwatch"), "the binary's path, not on PATH: {line}");
        let out = Command::new(words[0])
            .args(&words[1..])
            .current_dir(tmp.path())
            .env("XDG_CONFIG_HOME", dir.with_extension("config"))
            .env_remove("LEAKWATCH_KEY_FILE")
            .env_remove("LEAKWATCH_DATA")
            .output()
            .unwrap();
        assert!(out.status.success(), "{line}: {}", String::from_utf8_lossy(&out.stderr));
    }
    assert!(!ring.exists());
}

#[test]
fn demo_refuses_a_data_flag_it_would_ignore() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("demo");
    let out = leakwatch(&dir)
        .args(["demo", "--data"])
        .arg(tmp.path().join("elsewhere"))
        .arg("--dir")
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "leakwatch: error: demo writes its own data directory under --dir ({}); --data does not apply to it\n",
            dir.join("data").display()
        )
    );
    assert!(!dir.exists() && !tmp.path().join("elsewhere").exists());
    // LEAKWATCH_DATA set for every other command does not stop the demo.
    let out = leakwatch(&dir)
        .env("LEAKWATCH_DATA", tmp.path().join("elsewhere"))
        .args(["demo", "--dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}
