//! `ingest` runs itself again with a larger malloc cache (glibc reads it from
//! `GLIBC_TUNABLES` at startup only): the second run must read the same
//! input, stdin included, and write the same segments as a run that keeps the
//! user's own settings.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

fn ingest_stdin(data: &Path, key: &Path, input: &[u8], tunables: Option<&str>) -> Vec<String> {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_leakwatch"));
    cmd.arg("--data").arg(data).args(["ingest", "--breach", "Acme", "-"]);
    cmd.env("LEAKWATCH_KEY_FILE", key).env_remove("GLIBC_TUNABLES");
    if let Some(t) = tunables {
        cmd.env("GLIBC_TUNABLES", t);
    }
    let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("20,000 accepted"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let mut names: Vec<String> = std::fs::read_dir(data.join("segments"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn ingest_run_again_with_a_larger_malloc_cache_writes_the_same_segments() {
    let tmp = tempfile::tempdir().unwrap();
    let input: String = (0..20_000).map(|i| format!("user{i}@example.org:pass{}\n", i % 777)).collect();
    let key = tmp.path().join("ring.key");
    let rerun = ingest_stdin(&tmp.path().join("a"), &key, input.as_bytes(), None);
    let kept = ingest_stdin(&tmp.path().join("b"), &key, input.as_bytes(), Some("glibc.malloc.check=0"));
    assert_eq!(rerun, kept);
    assert!(rerun.iter().any(|n| n.starts_with("credential-keys-")), "{rerun:?}");
}
