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
