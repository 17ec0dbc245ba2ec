//! `leakwatch demo`: the two-minute tour. Generates a realistic multi-breach leak
//! (synthetic people, every dump format, the noise real dumps carry), ingests it
//! into a fresh data directory, checks every answer against the generator's own
//! expected answers, and shows who at the organization is exposed.
//!
//! Everything it makes stays under its directory: the dumps, the data
//! directory, and the data key (`demo.key`, named in the data directory's
//! manifest so later commands find it), not a new key in the user's key ring
//! on every run.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use leakwatch_gen::{Expected, Scenario};
use leakwatch_ingest::Input;
use leakwatch_server::IngestLog;
use leakwatch_store::{BreachInfo, DataDir, IngestOptions, Progress, Store};
use leakwatch_types::{decode_hex, Account};

use crate::output::{stdout, thousands};
use crate::Outcome;

/// Marks a directory as the demo's own, so that a rerun may reset it and nothing
/// else is ever deleted.
const MARKER: &str = ".leakwatch-demo";
/// The demo data directory's key ring, beside it.
const KEY_FILE: &str = "demo.key";

pub fn run(dir: &Path, seed: u64) -> Result<Outcome> {
    prepare(dir)?;
    let dumps = dir.join("dumps");
    let data = DataDir::new(dir.join("data"));
    data.init(Some(&dir.join(KEY_FILE)))?;
    let mut out = stdout();

    let scenario = Scenario::demo(seed);
    let breaches =
        scenario.write_all(&dumps).with_context(|| format!("{}: cannot write dumps", dumps.display()))?;
    let files: usize = breaches.iter().map(|b| b.files.len()).sum();
    writeln!(
        out,
        "Generated {} breaches in {files} dump files under {} (synthetic data, seed {seed}).",
        breaches.len(),
        dumps.display()
    )?;
    writeln!(out)?;

    for b in &breaches {
        let inputs =
            b.files.iter().map(|f| Input::open(&f.to_string_lossy())).collect::<Result<Vec<_>, _>>()?;
        let options = IngestOptions {
            breach: BreachInfo {
                name: b.name.clone(),
                title: Some(b.title.clone()),
                domain: Some(b.domain.clone()),
                breach_date: Some(b.breach_date.clone()),
                description: None,
            },
            format: None,
            memory_budget: 256 << 20,
        };
        // Logged as `leakwatch ingest` logs its own, for the web interface's
        // ingest page.
        let listed: Vec<(String, Option<u64>)> =
            inputs.iter().map(|i| (i.name().to_owned(), i.raw_len())).collect();
        let progress = std::sync::Arc::new(Progress::default());
        let log = IngestLog::start(&data, &b.name, &super::breach::os_user(), &listed, progress.clone())?;
        let summary =
            match leakwatch_store::ingest(&data, &options, inputs, &progress, &mut |phase| log.phase(&phase))
            {
                Ok(summary) => summary,
                Err(e) => {
                    log.fail(&e.to_string())?;
                    return Err(e.into());
                }
            };
        log.finish(&summary)?;
        let lines: u64 = summary.files.iter().map(|(_, r)| r.lines).sum();
        let rejected: u64 =
            summary.files.iter().flat_map(|(_, r)| r.rejected.values()).map(|r| r.count).sum();
        let formats: Vec<&str> = summary.files.iter().map(|(_, r)| r.format.name()).collect();
        writeln!(
            out,
            "  ingested {:<18} {:>7} lines ({}), {:>6} rejected as noise -> {:>6} accounts",
            b.name,
            thousands(lines),
            formats.join("+"),
            thousands(rejected),
            thousands(summary.breach.pwn_count)
        )?;
    }

    let store = Store::open(&data)?;
    let checked = check(&store, &scenario.expected())?;
    writeln!(out)?;
    writeln!(
        out,
        "Checked {} answers against the generator's expected answers: all exact.",
        thousands(checked)
    )?;

    writeln!(out)?;
    writeln!(out, "Accounts per breach")?;
    let rows: Vec<(String, u64)> = store.breaches().iter().map(|b| (b.name.clone(), b.pwn_count)).collect();
    bar_chart(&mut out, &rows)?;

    let org = &scenario.config.org_domain;
    let exposed = store.domain(org)?;
    writeln!(out)?;
    writeln!(out, "Exposed addresses on {org}: {} (`search domain {org}` lists them all)", exposed.len())?;
    let mut by_count: BTreeMap<usize, Vec<(&String, &Vec<String>)>> = BTreeMap::new();
    for (alias, names) in &exposed {
        by_count.entry(names.len()).or_default().push((alias, names));
    }
    for (alias, names) in by_count.values().rev().flatten().take(8) {
        writeln!(out, "  {:<36} {}", format!("{alias}@{org}"), names.join(", "))?;
    }

    writeln!(out)?;
    writeln!(out, "How often well-known passwords appear (distinct breach/account records)")?;
    let mut rows = Vec::new();
    for password in COMMON_PASSWORDS {
        let count = store.sha1_count(&leakwatch_types::sha1(password.as_bytes()))?;
        if count > 0 {
            rows.push((password.to_string(), count));
        }
    }
    rows.sort_by_key(|r| std::cmp::Reverse(r.1));
    rows.truncate(6);
    bar_chart(&mut out, &rows)?;

    let data_arg = shell_word(&data.root().display().to_string());
    let bin = command_name();
    writeln!(out)?;
    writeln!(out, "Try:")?;
    writeln!(out, "  {bin} --data {data_arg} search domain {org}")?;
    if let Some((alias, _)) = exposed.iter().next() {
        writeln!(out, "  {bin} --data {data_arg} search email --json {alias}@{org}")?;
    }
    writeln!(out, "  {bin} --data {data_arg} search password --json password 123456")?;
    writeln!(out, "  {bin} --data {data_arg} breaches")?;
    writeln!(out, "  {bin} --data {data_arg} stats")?;
    out.flush()?;
    Ok(Outcome::Found)
}

/// How to run this binary from the shell the demo was started in: `leakwatch`
/// when that name on `PATH` is this very binary, else its path (relative to
/// the current directory when it is below it, as `target/release/leakwatch`).
fn command_name() -> String {
    let Ok(exe) = std::env::current_exe().and_then(|e| e.canonicalize()) else {
        return "leakwatch".into();
    };
    let on_path = std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|d| d.join("leakwatch").canonicalize().is_ok_and(|p| p == exe))
    });
    if on_path {
        return "leakwatch".into();
    }
    let cwd = std::env::current_dir().and_then(|d| d.canonicalize()).ok();
    let shown = match cwd.as_deref().and_then(|cwd| exe.strip_prefix(cwd).ok()) {
        Some(rel) => rel.to_path_buf(),
        None => exe,
    };
    let shown = shown.display().to_string();
    // A bare name would be looked up on PATH: `./` makes it a path.
    let shown = if shown.contains('/') { shown } else { format!("./{shown}") };
    shell_word(&shown)
}

/// `s` quoted for a POSIX shell when it needs to be.
fn shell_word(s: &str) -> String {
    if s.bytes().all(|b| b.is_ascii_alphanumeric() || b"/._-+:@".contains(&b)) {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// Creates the demo directory, or resets one a previous demo made.
fn prepare(dir: &Path) -> Result<()> {
    if dir.exists() {
        let ours = dir.join(MARKER).exists();
        let empty = std::fs::read_dir(dir).with_context(|| dir.display().to_string())?.next().is_none();
        if !ours && !empty {
            anyhow::bail!(
                "{}: exists and was not made by `leakwatch demo`; pick another --dir",
                dir.display()
            );
        }
        if ours {
            for sub in ["dumps", "data"] {
                let path = dir.join(sub);
                if path.exists() {
                    std::fs::remove_dir_all(&path).with_context(|| path.display().to_string())?;
                }
            }
            let key = dir.join(KEY_FILE);
            if key.exists() {
                std::fs::remove_file(&key).with_context(|| key.display().to_string())?;
            }
        }
    }
    std::fs::create_dir_all(dir).with_context(|| dir.display().to_string())?;
    std::fs::write(dir.join(MARKER), b"made by `leakwatch demo`; safe to delete\n")
        .with_context(|| dir.display().to_string())?;
    Ok(())
}

/// Passwords everyone knows to be common, looked up to show the corpus at work.
const COMMON_PASSWORDS: &[&str] = &[
    "123456",
    "password",
    "123456789",
    "qwerty",
    "12345678",
    "111111",
    "abc123",
    "iloveyou",
    "dragon",
    "monkey",
];

/// Compares every address, domain and password count with the expected answers.
fn check(store: &Store, expected: &Expected) -> Result<u64> {
    let mut checked = 0u64;
    for (email, want) in &expected.emails {
        let got: Vec<String> =
            store.account_breaches(&Account::email(email)?)?.iter().map(|b| b.name.clone()).collect();
        anyhow::ensure!(&got == want, "demo self-check: {email} is in {got:?}, expected {want:?}");
        checked += 1;
    }
    for (domain, want) in &expected.domains {
        anyhow::ensure!(&store.domain(domain)? == want, "demo self-check: domain {domain} differs");
        checked += 1;
    }
    for (hex, want) in &expected.sha1 {
        let hash = decode_hex::<20>(hex.as_bytes()).context("expected SHA-1")?;
        anyhow::ensure!(store.sha1_count(&hash)? == *want, "demo self-check: SHA-1 {hex} count differs");
        checked += 1;
    }
    for (hex, want) in &expected.ntlm {
        let hash = decode_hex::<16>(hex.as_bytes()).context("expected NTLM")?;
        anyhow::ensure!(store.ntlm_count(&hash)? == *want, "demo self-check: NTLM {hex} count differs");
        checked += 1;
    }
    Ok(checked)
}

/// A horizontal bar chart: people compare lengths faster than numbers.
fn bar_chart(out: &mut impl Write, rows: &[(String, u64)]) -> std::io::Result<()> {
    let max = rows.iter().map(|r| r.1).max().unwrap_or(0).max(1);
    let label = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
    for (name, value) in rows {
        let width = (value * 40).div_ceil(max) as usize;
        writeln!(out, "  {name:<label$} {} {}", "█".repeat(width), thousands(*value))?;
    }
    Ok(())
}
