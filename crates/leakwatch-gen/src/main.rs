//! `leakwatch-gen`: writes synthetic leaks for tests, demos and benchmarks.
//!
//! - `combo --lines N --seed S [--out FILE]`: a realistic `email:password` combo.
//! - `ulp --lines N --seed S [--out FILE]`: the same accounts and passwords as the
//!   combo of that seed, as a stealer log's `URL:email:password` lines.
//! - `sql --rows N --seed S [--out FILE]`: a WordPress mysqldump (benchmarks).
//! - `scenario --seed S --out DIR`: a multi-breach scenario and its `expected.json`.
//! - `emails --count N --seed S --lines L`: addresses to look up against the combo
//!   of the same seed and line count; the even-numbered ones (0, 2, ...) are in it.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use leakwatch_gen::{bench, Noise, Scenario, ScenarioConfig};

#[derive(Parser)]
#[command(name = "leakwatch-gen", about = "Synthetic leaks with exact expected answers")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write a realistic email:password combo (about 37 bytes a line).
    Combo {
        #[arg(long)]
        lines: u64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Output file; standard output when absent.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Write a stealer log's ULP lines (`URL:email:password`) holding the accounts
    /// and passwords of the combo of the same --lines and --seed.
    Ulp {
        #[arg(long)]
        lines: u64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Output file; standard output when absent.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Write a WordPress-style mysqldump of N users (extended INSERTs).
    Sql {
        #[arg(long)]
        rows: u64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Output file; standard output when absent.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Write a multi-breach scenario: one directory per breach, and expected.json.
    Scenario {
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long)]
        out: PathBuf,
        /// People in the population.
        #[arg(long, default_value_t = 3000)]
        people: usize,
        /// The organization domain some breaches expose.
        #[arg(long, default_value = "example-corp.com")]
        org_domain: String,
        /// Write clean files, without any noise.
        #[arg(long)]
        clean: bool,
    },
    /// Write a Pwned Passwords-shaped file: sorted random upper-case SHA-1 (or
    /// NTLM) hashes with heavy-tailed counts, `HASH:COUNT` CRLF lines.
    Pwned {
        #[arg(long)]
        lines: u64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long)]
        ntlm: bool,
        /// Instead of the file, print this many hashes to look up (even-numbered
        /// ones are in the file of the same --lines and --seed, odd ones are not).
        #[arg(long)]
        lookups: Option<u64>,
        /// Output file; standard output when absent.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Print addresses for a lookup benchmark: even-numbered lines (0, 2, ...) are
    /// in the combo written with the same --seed and --lines, odd ones are not.
    Emails {
        #[arg(long)]
        count: u64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Lines of the combo the addresses refer to.
        #[arg(long)]
        lines: u64,
        /// Follow each address with a TAB and `present` or `absent`.
        #[arg(long)]
        annotate: bool,
    },
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        // A closed pipe (`| head`) is the reader's choice, not an error.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("leakwatch-gen: {e}");
            ExitCode::from(2)
        }
    }
}

fn output(path: Option<&PathBuf>) -> io::Result<Box<dyn Write>> {
    Ok(match path {
        Some(p) => Box::new(BufWriter::new(
            File::create(p).map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", p.display())))?,
        )),
        None => Box::new(io::stdout().lock()),
    })
}

fn run(cli: Cli) -> io::Result<()> {
    match cli.command {
        Command::Combo { lines, seed, out } => bench::write_combo(output(out.as_ref())?, lines, seed),
        Command::Ulp { lines, seed, out } => bench::write_ulp(output(out.as_ref())?, lines, seed),
        Command::Sql { rows, seed, out } => {
            leakwatch_gen::sqldump::write_mysqldump(output(out.as_ref())?, rows, seed)
        }
        Command::Scenario { seed, out, people, org_domain, clean } => {
            let noise = if clean { Noise::none() } else { Noise::all() };
            let config = ScenarioConfig { people, org_domain, noise, ..ScenarioConfig::default() };
            let scenario = Scenario::new(config, seed);
            let written = scenario.write_all(&out)?;
            let expected = scenario.expected();
            std::fs::write(out.join("expected.json"), expected.to_json())?;
            let mut stdout = io::stdout().lock();
            for (breach, exp) in written.iter().zip(&expected.breaches) {
                writeln!(
                    stdout,
                    "{}: {} accounts, {} files",
                    breach.name,
                    exp.pwn_count,
                    breach.files.len()
                )?;
            }
            writeln!(stdout, "expected answers: {}", out.join("expected.json").display())
        }
        Command::Pwned { lines, seed, ntlm, lookups: None, out } => {
            leakwatch_gen::pwned::write_pwned(output(out.as_ref())?, lines, seed, ntlm)
        }
        Command::Pwned { lines, seed, ntlm, lookups: Some(count), out } => {
            let mut w = output(out.as_ref())?;
            for (hash, _) in leakwatch_gen::pwned::lookup_hashes(lines, seed, ntlm, count) {
                writeln!(w, "{hash}")?;
            }
            w.flush()
        }
        Command::Emails { count, seed, lines, annotate } => {
            let mut out = BufWriter::new(io::stdout().lock());
            for (address, present) in bench::lookup_addresses(seed, lines, count) {
                if annotate {
                    writeln!(out, "{address}\t{}", if present { "present" } else { "absent" })?;
                } else {
                    writeln!(out, "{address}")?;
                }
            }
            out.flush()
        }
    }
}
