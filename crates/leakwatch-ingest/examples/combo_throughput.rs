//! Measures the combo hot loop: parses a generated email:password list held in
//! memory (3 million lines, about 115 MB, by default) and prints lines per
//! second for parsing, normalization and both password digests.
//!
//! ```text
//! cargo run --release -p leakwatch-ingest --example combo_throughput [LINES] [--csv] [--write PATH]
//! ```
//!
//! `--write PATH` also saves the list, to time `LC_ALL=C sort -u PATH` against.
//! `--csv` writes the same records as a CSV with a header (`email,password`), to
//! measure the CSV reader, whose record splitting runs on the reading thread.

use std::sync::atomic::AtomicU64;
use std::time::Instant;

const FIRST: &[&str] = &["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy"];
const LAST: &[&str] = &["smith", "jones", "brown", "taylor", "wilson", "davies", "evans", "thomas"];
const DOMAINS: &[&str] = &["gmail.com", "yahoo.com", "hotmail.com", "mail.ru", "example.org", "web.de"];

/// A small deterministic generator (SplitMix64), so runs are comparable.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }
}

fn generate(lines: usize, csv: bool) -> Vec<u8> {
    let mut rng = Rng(42);
    let mut out = Vec::with_capacity(lines * 40);
    if csv {
        out.extend_from_slice(b"email,password\n");
    }
    let separator = if csv { b',' } else { b':' };
    for _ in 0..lines {
        let n = rng.next() % 10_000;
        out.extend_from_slice(rng.pick(FIRST).as_bytes());
        out.push(b'.');
        out.extend_from_slice(rng.pick(LAST).as_bytes());
        out.extend_from_slice(n.to_string().as_bytes());
        out.push(b'@');
        out.extend_from_slice(rng.pick(DOMAINS).as_bytes());
        out.push(separator);
        let len = 6 + rng.next() % 7;
        for _ in 0..len {
            out.push(b"abcdefghijklmnopqrstuvwxyz0123456789!"[(rng.next() % 37) as usize]);
        }
        out.push(b'\n');
    }
    out
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let mut lines = 3_000_000;
    let mut write = None;
    let mut csv = false;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--write" => write = args.next(),
            "--csv" => csv = true,
            n => lines = n.parse()?,
        }
    }
    let data = generate(lines, csv);
    if let Some(path) = write {
        std::fs::write(&path, &data)?;
    }
    let bytes = data.len();
    println!("{lines} lines, {:.1} MB, {} threads", bytes as f64 / 1e6, rayon::current_num_threads());
    for round in 1..=3 {
        let input = leakwatch_ingest::Input::from_reader("generated", std::io::Cursor::new(data.clone()))?;
        let progress = AtomicU64::new(0);
        let mut records = 0u64;
        let start = Instant::now();
        let report = leakwatch_ingest::read(
            input,
            None,
            &progress,
            |batch| batch.len() as u64,
            |n| {
                records += n;
                Ok(())
            },
        )?;
        let secs = start.elapsed().as_secs_f64();
        assert_eq!(report.accepted, records);
        println!(
            "round {round}: {records} records in {secs:.3} s: {:.2} M lines/s, {:.0} MB/s",
            report.lines as f64 / secs / 1e6,
            bytes as f64 / secs / 1e6
        );
    }
    Ok(())
}
