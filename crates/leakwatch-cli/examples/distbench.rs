//! `bench/distributed.sh`: one generated combo list ingested into a store in
//! Garage by a plain `leakwatch ingest` and by `ingest --distributed` with one
//! and with two `leakwatch worker` processes, side by side on this machine;
//! and the same input read from the bucket (`s3://`) by a plain ingest and
//! by two workers.
//!
//! Starts a three-node Garage cluster and a PostgreSQL catalog, then runs the
//! five ways in interleaved rounds (the order turning each round), each into
//! a fresh prefix of the bucket, and prints the median wall times, the ratios
//! against the local ingest of the same input (target: two workers no slower
//! than one local ingest), the CPU time of the leakwatch processes and of the
//! Garage nodes, when the jobs were done, and the records a second each
//! worker ingests.
//!
//! Usage: distbench LEAKWATCH_BINARY [LINES [ROUNDS [SHAPE]]] (default 4,000,000
//! lines, 3 rounds, shape `one`). SHAPE is how the lines come: `one` plain
//! combo list; `files`, the same lines cut into 100 files; `gz`, one
//! gzip-compressed list (which a job fetches whole before it reads it).

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use leakwatch_catalog::testing::TestPostgres;
use leakwatch_objstore::garage::{Cluster, BUCKET};

/// CPU seconds spent so far by the processes named `name` (the Garage nodes).
fn cpu_of(name: &str) -> f64 {
    let tick = 100.0; // USER_HZ on Linux
    let mut total = 0.0;
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
        let Some((comm, rest)) = stat.split_once(") ") else { continue };
        if comm.rsplit('(').next() != Some(name) {
            continue;
        }
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks: f64 = fields[11].parse::<f64>().unwrap_or(0.0) + fields[12].parse::<f64>().unwrap_or(0.0);
        total += ticks / tick;
    }
    total
}

/// CPU seconds spent so far by this process's waited-for children (the
/// leakwatch processes).
fn children_cpu() -> f64 {
    // SAFETY: getrusage only writes the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

/// A job a worker reported done: when (seconds since the way began), and
/// the seconds it spent reading its inputs and writing its segments; or a
/// job taken (`read` and `wrote` NaN).
struct JobDone {
    at: f64,
    read: f64,
    wrote: f64,
    taken: bool,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

struct Bench<'a> {
    binary: &'a Path,
    root: &'a Path,
    catalog: String,
    env: Vec<(&'static str, String)>,
}

impl Bench<'_> {
    fn command(&self, prefix: &str, cache: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new(self.binary);
        cmd.arg("--data")
            .arg(format!("s3://{BUCKET}/{prefix}"))
            .arg("--catalog")
            .arg(&self.catalog)
            .arg("--cache-dir")
            .arg(self.root.join(cache))
            .args(args)
            .env("LEAKWATCH_KEY_FILE", self.root.join("bench.key"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (name, value) in &self.env {
            cmd.env(name, value);
        }
        cmd
    }

    /// Runs `args` on `prefix`; its wall time in seconds.
    fn time(&self, prefix: &str, cache: &str, args: &[&str]) -> f64 {
        let start = Instant::now();
        let mut child = self.command(prefix, cache, args).spawn().expect("leakwatch runs");
        let stderr = child.stderr.take().expect("piped");
        let mut lines = Vec::new();
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains(" staged in ") {
                eprintln!("  {:6.2}s {line}", start.elapsed().as_secs_f64());
            }
            lines.push(line);
        }
        let status = child.wait().expect("leakwatch runs");
        let secs = start.elapsed().as_secs_f64();
        assert!(status.success(), "{args:?}: {}", lines.join("\n"));
        secs
    }

    /// A worker, and a thread that notes each of its jobs as it is done.
    fn worker(
        &self,
        prefix: &str,
        n: usize,
        start: Instant,
    ) -> (Child, std::thread::JoinHandle<Vec<JobDone>>) {
        let mut cmd = self.command(prefix, &format!("worker-{n}"), &["worker", "--poll", "50ms"]);
        let mut child = cmd.spawn().expect("a worker starts");
        let stderr = child.stderr.take().expect("piped");
        let done = std::thread::spawn(move || {
            use std::io::BufRead;
            std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
                .filter_map(|l| {
                    if l.contains(" taken ")
                        || l.contains(" done in ")
                        || l.contains("failed")
                        || l.contains("panicked")
                    {
                        eprintln!("  {:6.2}s {l}", start.elapsed().as_secs_f64());
                    }
                    let secs_after = |what: &str| -> Option<f64> {
                        let rest = &l[l.find(what)? + what.len()..];
                        rest[..rest.find('s')?].parse().ok()
                    };
                    let taken = l.contains(" taken ");
                    (taken || l.contains(" done in ")).then(|| JobDone {
                        at: start.elapsed().as_secs_f64(),
                        read: secs_after(", read ").unwrap_or(f64::NAN),
                        wrote: secs_after("segments written and put ").unwrap_or(f64::NAN),
                        taken,
                    })
                })
                .collect()
        });
        (child, done)
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let binary =
        std::path::PathBuf::from(args.next().expect("usage: distbench LEAKWATCH_BINARY [LINES [ROUNDS]]"));
    let lines: u64 = args.next().map_or(4_000_000, |a| a.parse().expect("LINES is a number"));
    let rounds: usize = args.next().map_or(3, |a| a.parse().expect("ROUNDS is a number"));
    let shape = args.next().unwrap_or_else(|| "one".into());
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let root = tmp.path();
    let cluster = Cluster::start(&root.join("garage")).unwrap_or_else(|e| panic!("{e}"));
    let pg = TestPostgres::start();
    let database = pg.fresh_database();
    let files = write_inputs(root, lines, &shape);
    let size: u64 = files.iter().map(|f| std::fs::metadata(f).expect("an input").len()).sum();
    let bench = Bench { binary: &binary, root, catalog: pg.url("postgres", &database), env: cluster.env(0) };
    // The same inputs already in the bucket, for the ways that read them there.
    let in_bucket: Vec<String> = files
        .iter()
        .map(|f| {
            let url = format!("s3://{BUCKET}/inputs/{}", f.file_name().expect("named").to_string_lossy());
            leakwatch_objstore::put_object(f, &url, &cluster.config(0)).expect("the input uploaded");
            url
        })
        .collect();
    let files: Vec<String> = files.iter().map(|f| f.to_str().expect("a UTF-8 path").to_owned()).collect();
    // Each way ingests into a store that exists (as most ingests do), so
    // that what a store's first write waits for (its writer lease read back,
    // once) is timed in none.
    let first = root.join("first.txt");
    std::fs::write(&first, "first.user@example.org:correct horse battery staple\n").expect("written");
    let first = first.to_str().expect("a UTF-8 path");
    eprintln!(
        "{lines} lines in {} input(s) ({shape}), {:.1} MB; {rounds} rounds",
        files.len(),
        size as f64 / 1e6
    );

    // Ways 0-2 read the local file (the distributed ones stage it in the
    // bucket, compressed); ways 3-4 read the copy in the bucket.
    let ways = ["local", "1 worker", "2 workers", "local, s3:// input", "2 workers, s3:// input"];
    let workers_of = [0, 1, 2, 0, 2];
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); ways.len()];
    // For the distributed ways: when the last job was done, and so how long
    // the commit (the manifest, the catalog) took after it.
    let mut reading: Vec<Vec<f64>> = vec![Vec::new(); ways.len()];
    // Each job's seconds reading and writing, by way.
    let mut job_phases: Vec<Vec<(f64, f64)>> = vec![Vec::new(); ways.len()];
    // When the first job was taken, by way: how long the workers waited.
    let mut first_taken: Vec<Vec<f64>> = vec![Vec::new(); ways.len()];
    // CPU seconds of the leakwatch processes and of the Garage nodes, by way.
    let mut cpu: Vec<Vec<(f64, f64)>> = vec![Vec::new(); ways.len()];
    for round in 0..rounds {
        for i in 0..ways.len() {
            let way = (i + round) % ways.len();
            let prefix = format!("r{round}-w{way}");
            bench.time(&prefix, "ingest", &["ingest", "--breach", "First", first]);
            let (garage_before, ours_before) = (cpu_of("garage"), children_cpu());
            let inputs = if way < 3 { &files } else { &in_bucket };
            let inputs = inputs.iter().map(String::as_str);
            let secs = match workers_of[way] {
                0 => {
                    let args: Vec<&str> = ["ingest", "--breach", "Bench"].into_iter().chain(inputs).collect();
                    bench.time(&prefix, "ingest", &args)
                }
                workers => {
                    let start = Instant::now();
                    let running: Vec<_> = (0..workers).map(|n| bench.worker(&prefix, n, start)).collect();
                    let args: Vec<&str> =
                        ["ingest", "--distributed", "--partitions", "2", "--breach", "Bench"]
                            .into_iter()
                            .chain(inputs)
                            .collect();
                    let secs = bench.time(&prefix, "ingest", &args);
                    let (mut last_done, mut taken): (f64, f64) = (0.0, f64::INFINITY);
                    for (mut w, done) in running {
                        let _ = w.kill();
                        let _ = w.wait();
                        for job in done.join().expect("reader") {
                            if job.taken {
                                taken = taken.min(job.at);
                                continue;
                            }
                            last_done = last_done.max(job.at);
                            job_phases[way].push((job.read, job.wrote));
                        }
                    }
                    reading[way].push(last_done);
                    first_taken[way].push(taken);
                    secs
                }
            };
            let (garage, ours) = (cpu_of("garage") - garage_before, children_cpu() - ours_before);
            cpu[way].push((ours, garage));
            eprintln!(
                "round {round}: {}: {secs:.2} s (CPU: leakwatch {ours:.2} s, Garage {garage:.2} s)",
                ways[way]
            );
            times[way].push(secs);
        }
    }
    let medians: Vec<f64> = times.into_iter().map(median).collect();
    println!(
        "ingest of {lines} combo lines in {} input(s) ({shape}, {:.1} MB) into Garage, median of {rounds} \
         interleaved rounds:",
        files.len(),
        size as f64 / 1e6
    );
    for (way, secs) in ways.iter().zip(&medians) {
        let base = if way.contains("s3://") { medians[3] } else { medians[0] };
        println!("  {way:<24} {secs:>7.2} s  ({:.2}x local)", secs / base);
    }
    for (way, name) in ways.iter().enumerate() {
        let ours = median(cpu[way].iter().map(|c| c.0).collect());
        let garage = median(cpu[way].iter().map(|c| c.1).collect());
        println!("  {name:<24} CPU: leakwatch {ours:.2} s, Garage nodes {garage:.2} s");
    }
    for way in (1..ways.len()).filter(|&w| workers_of[w] > 0) {
        let staged_and_read = median(reading[way].clone());
        println!(
            "  {:<24} first job taken after {:.2} s, jobs done after {staged_and_read:.2} s (staging and \
             reading), commit {:.2} s",
            ways[way],
            median(first_taken[way].clone()),
            medians[way] - staged_and_read
        );
    }
    println!(
        "  2 workers against 1 local ingest: {:.2}x the time with a local file (staged), {:.2}x with \
         the input in the bucket (target: <= 1.00)",
        medians[2] / medians[0],
        medians[4] / medians[3]
    );
    println!(
        "  records a second per worker: {:.0} with 1 worker, {:.0} each with 2",
        lines as f64 / medians[1],
        lines as f64 / medians[2] / 2.0
    );
    // The phases apart, from the jobs one worker ran one after the other:
    // every job reads every input (a rate that does not grow with workers);
    // the writing is shared out (a rate per worker); the commit is one
    // process's.
    let read_one = median(reading[1].clone());
    let job_read = median(job_phases[1].iter().map(|p| p.0).collect());
    let job_write: f64 = median(job_phases[1].iter().map(|p| p.1).collect()) * 2.0;
    println!(
        "  phases with 1 worker, records a second: jobs (staging and reading) {:.0}, commit {:.0}",
        lines as f64 / read_one,
        lines as f64 / (medians[1] - read_one)
    );
    println!(
        "  a job's phases, records a second: reading every input {:.0} (each job), writing {:.0} per worker",
        lines as f64 / job_read,
        lines as f64 / job_write
    );
    drop(cluster);
}

/// The benchmark's inputs in `root`: `lines` generated combo lines in the
/// shape `shape` (see the usage).
fn write_inputs(root: &Path, lines: u64, shape: &str) -> Vec<std::path::PathBuf> {
    use std::io::Write;
    let combo = |path: &Path, lines: u64, seed: u64| {
        let file = std::io::BufWriter::new(std::fs::File::create(path).expect("an input created"));
        leakwatch_gen::bench::write_combo(file, lines, seed).expect("an input written");
    };
    match shape {
        "one" => {
            let path = root.join("combo.txt");
            combo(&path, lines, 1);
            vec![path]
        }
        "files" => {
            const FILES: u64 = 100;
            (0..FILES)
                .map(|n| {
                    let path = root.join(format!("combo-{n:03}.txt"));
                    combo(&path, lines / FILES + u64::from(n < lines % FILES), 1 + n);
                    path
                })
                .collect()
        }
        "gz" => {
            let plain = root.join("plain.txt");
            combo(&plain, lines, 1);
            let path = root.join("combo.txt.gz");
            let file = std::fs::File::create(&path).expect("an input created");
            let mut gz = flate2::write::GzEncoder::new(file, flate2::Compression::default());
            std::io::copy(&mut std::fs::File::open(&plain).expect("written"), &mut gz).expect("compressed");
            gz.finish().expect("compressed").flush().expect("written");
            std::fs::remove_file(&plain).expect("removed");
            vec![path]
        }
        other => panic!("unknown shape {other:?}: one, files or gz"),
    }
}
