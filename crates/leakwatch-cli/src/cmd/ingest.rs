//! `leakwatch ingest`: read dumps into a breach, then say what was accepted,
//! what was rejected and why (with sample line numbers to go and look at); the
//! same is logged in the catalog, with the progress while it runs.

use std::io::Write;
use std::sync::Arc;

use anyhow::{Context, Result};
use leakwatch_ingest::{ColumnReport, Format, Input, Report};
use leakwatch_server::IngestLog;
use leakwatch_store::{BreachInfo, DataDir, HibpBreach, IngestOptions, IngestSummary, Phase, Progress};
use serde_json::json;

use crate::cli::{FormatArg, IngestArgs};
use crate::output::{plural, stdout, thousands};
use crate::progress::Bar;
use crate::Outcome;

pub fn run(dir: &DataDir, args: IngestArgs) -> Result<Outcome> {
    let format = match args.format {
        FormatArg::Auto => None,
        FormatArg::Combo => Some(Format::Combo),
        FormatArg::Csv => Some(Format::Csv),
        FormatArg::Ndjson => Some(Format::Ndjson),
        FormatArg::Sql => Some(Format::Sql),
        FormatArg::Stealer => Some(Format::Stealer),
    };
    if args.files.iter().filter(|f| *f == "-").count() > 1 {
        anyhow::bail!("stdin (`-`) can be read only once");
    }
    let options = IngestOptions {
        breach: BreachInfo {
            name: args.breach.clone(),
            title: args.title.clone(),
            domain: args.domain.clone(),
            breach_date: args.breach_date.clone(),
            description: args.description.clone(),
        },
        format,
        memory_budget: args.memory_budget,
    };
    if args.distributed {
        if args.files.iter().any(|f| f == "-") {
            anyhow::bail!("--distributed reads files the workers can be given: not stdin (`-`)");
        }
        if args.columns.is_some() {
            anyhow::bail!("--columns is not available with --distributed");
        }
        dir.create().with_context(|| format!("ingest into breach {:?}", args.breach))?;
        let summary = super::distributed::ingest(dir, &args, &options)?;
        return print_report(&args, &summary);
    }
    // A directory or an archive stands for the dumps inside it, each reported
    // on its own (`logs.zip!US[1A2B]/Passwords.txt`); a plain file is itself;
    // an `s3://` object is read as it is fetched when plain, else saved first
    // (beside the store, made for it), and reported by its URL.
    if args.files.iter().any(|f| is_object_url(f)) {
        dir.create().with_context(|| format!("ingest into breach {:?}", args.breach))?;
    }
    let fetched = Fetched::new(dir);
    let config = leakwatch_objstore::S3Config::from_env();
    // Objects are opened a few at a time: each waits a round trip for its
    // first bytes (to tell plain from compressed), a hundred of them one
    // after another took a second and a half on Garage.
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(OPENING)
        .build()
        .context("starting the threads that open the inputs")?;
    let open = |(n, file): (usize, &String)| -> Result<Vec<Input>> {
        if !is_object_url(file) {
            return Ok(Input::expand(file)?);
        }
        // A plain object is read as it is fetched; a compressed one or an
        // archive is saved whole first, as its reader needs a file.
        let object =
            leakwatch_objstore::open_object(file, &config).with_context(|| format!("{file}: fetching it"))?;
        let (plain, stream) =
            leakwatch_ingest::sniff_plain(object).with_context(|| format!("{file}: fetching it"))?;
        if plain {
            return Ok(vec![Input::from_reader(file.clone(), stream)?]);
        }
        let local = fetched.save(n, file, stream)?;
        Ok(Input::expand(&local)?.into_iter().map(|i| i.shown_as(&local, file)).collect())
    };
    // In the files' order, as rayon collects.
    let opened: Vec<Result<Vec<Input>>> = pool.install(|| {
        use rayon::prelude::*;
        args.files.par_iter().enumerate().map(open).collect()
    });
    let mut inputs = Vec::new();
    for input in opened {
        inputs.extend(input?);
    }
    if let Some(columns) = args.columns.clone() {
        let columns = Arc::new(columns);
        inputs = inputs.into_iter().map(|input| input.with_columns(columns.clone())).collect();
    }
    let progress = Arc::new(Progress::default());
    // Logged in the catalog while it runs and once it ends, for the web
    // interface's ingest status page; the store is made first, so that a
    // mistyped --data is refused before a catalog appears in it.
    dir.create().with_context(|| format!("ingest into breach {:?}", args.breach))?;
    let listed: Vec<(String, Option<u64>)> =
        inputs.iter().map(|i| (i.name().to_owned(), i.raw_len())).collect();
    let summary = logged(dir, &args.breach, &listed, progress.clone(), |log| {
        let bar = Bar::start(progress.clone());
        leakwatch_store::ingest(dir, &options, inputs, &progress, &mut |phase| {
            log.phase(&phase);
            match phase {
                Phase::Reading { name, raw_len } => bar.reading(name, raw_len),
                Phase::Writing => bar.writing(),
            }
        })
        .with_context(|| format!("ingest into breach {:?}", args.breach))
    })?;
    print_report(&args, &summary)
}

/// Inputs opened at once.
const OPENING: usize = 8;

/// Whether an input is an object storage URL (`s3://BUCKET/KEY`) rather than
/// a local path.
pub(super) fn is_object_url(file: &str) -> bool {
    file.starts_with("s3://")
}

/// Local copies of inputs fetched from object storage (with the `AWS_*`
/// variables of `--data s3://`), removed when the ingest is done.
struct Fetched {
    folder: std::path::PathBuf,
}

impl Fetched {
    fn new(dir: &DataDir) -> Fetched {
        // Beside the store's `tmp`, which a writer empties when it begins.
        Fetched { folder: dir.root().join(format!("tmp-fetched-{}", std::process::id())) }
    }

    /// Saves input `n`, the object at `url` that `object` reads; its local
    /// path, which keeps the object's file name (an archive's members are
    /// named after it).
    fn save(&self, n: usize, url: &str, mut object: Box<dyn std::io::Read + Send>) -> Result<String> {
        let folder = self.folder.join(n.to_string());
        std::fs::create_dir_all(&folder).with_context(|| format!("{}", folder.display()))?;
        let name = url.rsplit('/').next().filter(|n| !n.is_empty()).unwrap_or("input");
        let local = folder.join(name);
        let mut file = std::fs::File::create(&local).with_context(|| format!("{}", local.display()))?;
        std::io::copy(&mut object, &mut file).with_context(|| format!("{url}: fetching it"))?;
        Ok(local.to_string_lossy().into_owned())
    }
}

impl Drop for Fetched {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.folder);
    }
}

/// Runs `ingest` logged in the catalog's ingest log as an ingest of `listed`
/// into `breach`: its progress while it runs, its outcome or its failure.
pub(super) fn logged(
    dir: &DataDir,
    breach: &str,
    listed: &[(String, Option<u64>)],
    progress: Arc<Progress>,
    ingest: impl FnOnce(&IngestLog) -> Result<IngestSummary>,
) -> Result<IngestSummary> {
    let catalog = super::catalog_location(dir);
    let log = IngestLog::start_with_catalog(&catalog, breach, &super::breach::os_user(), listed, progress)
        .with_context(|| format!("logging the ingest in the catalog {catalog}"))?;
    match ingest(&log) {
        Ok(summary) => {
            if let Err(e) = log.finish(&summary) {
                // Published all the same: the log only misses its outcome.
                eprintln!("leakwatch: warning: the ingest was published, but not logged in the catalog: {e}");
            }
            Ok(summary)
        }
        Err(e) => {
            if let Err(log_error) = log.fail(&format!("{e:#}")) {
                tracing::debug!("the failed ingest was not logged: {log_error}");
            }
            Err(e)
        }
    }
}

/// Says what an ingest did: on stdout as text or JSON, and to --report-json.
fn print_report(args: &IngestArgs, summary: &IngestSummary) -> Result<Outcome> {
    if let Some(warning) = &summary.compaction_warning {
        // Published all the same: a warning, and exit 0.
        eprintln!("leakwatch: warning: {warning}");
    }
    let report = report_json(summary);
    if let Some(path) = &args.report_json {
        let text = serde_json::to_string_pretty(&report).expect("serializes");
        std::fs::write(path, text).with_context(|| format!("{}: cannot write the report", path.display()))?;
    }
    let mut out = stdout();
    if args.json {
        writeln!(out, "{report}")?;
    } else {
        print_summary(&mut out, summary)?;
    }
    out.flush()?;
    Ok(Outcome::Found)
}

fn report_json(summary: &IngestSummary) -> serde_json::Value {
    let files: Vec<_> = summary
        .files
        .iter()
        .map(|(path, r)| {
            let rejected: serde_json::Map<_, _> = r
                .rejected
                .iter()
                .map(|(reason, rej)| {
                    (reason.to_string(), json!({"count": rej.count, "sample_lines": rej.sample_lines}))
                })
                .collect();
            json!({
                "path": path,
                "format": r.format.name(),
                "lines": r.lines,
                "accepted": r.accepted,
                "rejected": rejected,
                "columns": r.columns.iter().map(columns_json).collect::<Vec<_>>(),
                "notes": r.notes,
            })
        })
        .collect();
    json!({
        "files": files,
        "breach": HibpBreach::from(&summary.breach),
        "new_breach": summary.new_breach,
        "new_accounts": summary.new_accounts,
        "new_credentials": summary.new_credentials,
        "segments_written": summary.segments_written,
        "compaction_warning": summary.compaction_warning,
    })
}

/// Which column became what: `{"table": null, "used": [{"column": "pass_hash",
/// "role": "hash", "detail": "md5", "by": "name"}], "left_out": ["id"], "text": "..."}`.
fn columns_json(c: &ColumnReport) -> serde_json::Value {
    let mut json = c.to_json();
    json["text"] = c.to_string().into();
    json
}

fn print_summary(out: &mut impl Write, s: &IngestSummary) -> std::io::Result<()> {
    for (path, r) in &s.files {
        print_file(out, path, r)?;
    }
    let b = &s.breach;
    writeln!(
        out,
        "breach {} ({}): {}, {}; now {} [{}]",
        b.name,
        if s.new_breach { "new" } else { "updated" },
        plural(s.new_accounts, "new account", "new accounts"),
        plural(s.new_credentials, "new credential", "new credentials"),
        plural(b.pwn_count, "account", "accounts"),
        b.data_classes.join(", "),
    )
}

fn print_file(out: &mut impl Write, path: &str, r: &Report) -> std::io::Result<()> {
    let rejected: u64 = r.rejected.values().map(|x| x.count).sum();
    writeln!(
        out,
        "{path}: {} ({}): {} accepted, {} rejected",
        r.format.name(),
        plural(r.lines, "line", "lines"),
        thousands(r.accepted),
        thousands(rejected)
    )?;
    for columns in &r.columns {
        writeln!(out, "  columns: {columns}")?;
    }
    let mut reasons: Vec<_> = r.rejected.iter().collect();
    reasons.sort_by(|a, b| b.1.count.cmp(&a.1.count).then(a.0.cmp(b.0)));
    for (reason, rej) in reasons {
        let lines: Vec<String> = rej.sample_lines.iter().map(u64::to_string).collect();
        let e_g = if lines.len() == 1 { "line" } else { "lines" };
        writeln!(out, "  {:>10}  {reason} (e.g. {e_g} {})", thousands(rej.count), lines.join(", "))?;
    }
    for (note, count) in &r.notes {
        writeln!(out, "  {:>10}  {note} (kept; a note, not a rejection)", thousands(*count))?;
    }
    Ok(())
}
