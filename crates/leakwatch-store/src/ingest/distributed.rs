//! Distributed ingest: the reading side of an ingest split into jobs that
//! other processes (`leakwatch worker`, on any machine) run, and one commit
//! that writes and publishes the result as a local ingest would.
//!
//! A job reads one input, or one byte range of a large plain file cut at line
//! ends, exactly as a local ingest reads it ([`super::read_inputs`]: the same
//! keys, breach id and stored accounts), and hands over its sorted runs (not
//! segments) through the store's shared area ([`Blobs`]). The commit adopts
//! every job's runs as if it had spilled them itself and writes them with the
//! local ingest's own chains ([`super::write_and_publish`]): the runs' merge
//! drops a triple, an account or an alias met in two jobs, and the stored
//! ones are checked at the commit as in a local ingest. So every answer after
//! a distributed ingest is the one a local ingest of the same inputs gives:
//! counts of distinct triples, the breach's accounts, aliases, stealer data.
//!
//! The commit holds the store's writer lock from [`DistributedIngest::begin`]
//! to its end, as a local ingest does: no other writer changes the store (or
//! removes orphans) meanwhile, so the jobs read the generation the commit
//! builds on, and a job checks that it does. A killed distributed ingest
//! publishes nothing; its lock runs out, and the next writer's orphan removal
//! empties the shared area it left.

use std::ops::Range;
use std::path::{Path, PathBuf};

use leakwatch_ingest::{Format, Input, Report};
use leakwatch_segment::Kind;
use serde::{Deserialize, Serialize};

use super::{
    read_inputs, stored_of, tempdir_in, write_and_publish, IndexRuns, IngestOptions, IngestSummary, Phase,
    Progress, ReadContext, Written,
};
use crate::crypt::Keys;
use crate::dir::DataDir;
use crate::error::{Result, StoreError};
use crate::manifest::{Breach, Manifest};
use crate::storage::blobs::Blobs;
use crate::txn::Txn;

/// What one job reads, and what it needs to make records as the commit's
/// local ingest would.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct JobSpec {
    /// The distributed ingest: its folder in the shared area.
    pub ingest: String,
    /// The job's number, in input order.
    pub job: u32,
    /// The staged input, in the shared area.
    pub input: String,
    /// The input's name as the reports show it (the path given to `ingest`).
    pub name: String,
    /// The bytes of the input this job reads (a part of a large plain file,
    /// from a line's start to a line's start); all of it when `None`.
    pub range: Option<(u64, u64)>,
    /// For a part after the first: the end of the input's head, the bytes
    /// read before the part so that the reader decides what it decides at
    /// the start of the whole input (format, sampled mode, encodings); the
    /// head's own records come again from the first part and merge away, its
    /// lines are taken out of the report.
    pub head: Option<u64>,
    /// The format: forced by the user, or, for a part, detected on the whole.
    pub format: Option<String>,
    pub breach_id: u32,
    /// Whether the breach is stored already (its accounts get no new aliases).
    pub existing: bool,
    /// The generation the commit builds on: the job refuses any other.
    pub generation: u64,
    pub dir_id: String,
    pub key_id: Option<String>,
    pub key_file: Option<PathBuf>,
    pub memory_budget: u64,
}

/// A sorted run a job wrote to the shared area.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RunRef {
    /// The kind of run (`accounts`, `credentials`, ...).
    pub kind: String,
    pub name: String,
    pub bytes: u64,
}

/// What a job reports back: its inputs' reports and its runs.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct JobOutput {
    /// Each input read ([`Report::to_json`]); an archive gives one per member.
    pub files: Vec<(String, serde_json::Value)>,
    pub runs: Vec<RunRef>,
    /// Bytes of sealed aliases in the domain runs.
    pub domain_payload: u64,
    /// Records pushed, duplicates included, by kind of run (the head's left
    /// out): what the commit sizes segments by, as a local ingest does.
    pub pushed: std::collections::BTreeMap<String, u64>,
    /// Records accepted.
    pub records: u64,
}

/// The shared area of `dir`'s storage.
fn blobs_of(dir: &DataDir) -> Result<Box<dyn Blobs>> {
    dir.storage().blobs().ok_or_else(|| {
        StoreError::Invalid(format!("{} has no area shared with other machines", dir.location()))
    })
}

/// Runs one job: reads its input from the shared area, writes its runs there.
/// `attempt` tells this run of the job from an earlier one taken over, so that
/// the two never write the same names. `scratch` is local space for the input
/// and the runs while they are made.
pub fn run_job(
    dir: &DataDir,
    spec: &JobSpec,
    attempt: u32,
    scratch: &Path,
    progress: &Progress,
) -> Result<JobOutput> {
    let blobs = blobs_of(dir)?;
    let manifest = dir.manifest()?;
    let generation = manifest.as_ref().map_or(0, |m| m.generation);
    if generation != spec.generation {
        return Err(StoreError::Invalid(format!(
            "{} is at generation {generation}, but the ingest builds on {}: the store changed under it",
            dir.location(),
            spec.generation
        )));
    }
    let mut header = Manifest::new();
    header.dir_id = spec.dir_id.clone();
    header.key_id = spec.key_id.clone();
    header.key_file = spec.key_file.clone();
    let keys = dir.keys(&header)?.ok_or_else(|| StoreError::Key("the store's data key is missing".into()))?;
    let stored_accounts = match (&manifest, spec.existing) {
        (Some(m), true) => m
            .segments
            .iter()
            .filter(|s| s.kind == Kind::Accounts.name())
            .map(|s| Ok(dir.storage().open_segment(&s.file)?))
            .collect::<Result<Vec<_>>>()?,
        _ => Vec::new(),
    };
    let format = match &spec.format {
        Some(name) => Some(
            Format::from_name(name).ok_or_else(|| StoreError::Invalid(format!("unknown format {name:?}")))?,
        ),
        None => None,
    };

    let work = scratch.join(format!("job-{}-{}-{attempt}", spec.ingest, spec.job));
    let _ = std::fs::remove_dir_all(&work);
    let input_dir = work.join("input");
    std::fs::create_dir_all(&input_dir).map_err(|e| StoreError::io(&input_dir, e))?;
    // The local copy keeps the input's file name: an archive's members are
    // named after it, and recognised by it.
    let file_name = Path::new(&spec.name).file_name().map_or("input".into(), |n| n.to_owned());
    let local = input_dir.join(file_name);
    let range = spec.range.map(|(start, end)| start..end);
    blobs.get_file(&spec.input, range.clone(), &local)?;
    let local_name = local.to_string_lossy().into_owned();
    let open = |path: &Path| std::fs::File::open(path).map_err(|e| StoreError::io(path, e));
    let context = ReadContext {
        keys: &keys,
        breach_id: spec.breach_id,
        stored_accounts: spec.existing.then_some(stored_accounts.as_slice()),
        format,
        budget: spec.memory_budget.max(1 << 20) as usize,
    };
    // The head read alone: its report and its records, to be taken out of
    // the part's.
    let mut head_read = None;
    let inputs = match (range, spec.head) {
        (Some(_), Some(head_end)) => {
            let head = input_dir.join("head");
            blobs.get_file(&spec.input, Some(0..head_end), &head)?;
            let head_runs_dir = work.join("head-runs");
            std::fs::create_dir_all(&head_runs_dir).map_err(|e| StoreError::io(&head_runs_dir, e))?;
            let mut head_runs = IndexRuns::new(&head_runs_dir);
            let head_only = vec![Input::from_reader(spec.name.clone(), open(&head)?)?];
            let mut report =
                read_inputs(&context, head_only, &mut head_runs, &Progress::default(), &mut |_| {})?;
            head_read = Some((report.remove(0).1, head_runs.pushed()));
            let reader = std::io::Read::chain(open(&head)?, open(&local)?);
            vec![Input::from_reader(spec.name.clone(), reader)?]
        }
        (Some(_), None) => vec![Input::from_reader(spec.name.clone(), open(&local)?)?],
        (None, _) => Input::expand(&local_name)?,
    };

    let runs_dir = work.join("runs");
    std::fs::create_dir_all(&runs_dir).map_err(|e| StoreError::io(&runs_dir, e))?;
    let mut runs = IndexRuns::new(&runs_dir);
    let files = read_inputs(&context, inputs, &mut runs, progress, &mut |_| {})?;
    let mut pushed = runs.pushed();
    let files = files
        .into_iter()
        .map(|(name, mut report)| {
            if let Some((head, _)) = &head_read {
                report.take_out_head(head);
            }
            (name.replacen(&local_name, &spec.name, 1), report.to_json())
        })
        .collect();
    if let Some((_, head_pushed)) = &head_read {
        for (kind, n) in head_pushed {
            if let Some(mine) = pushed.get_mut(kind) {
                *mine -= (*n).min(*mine);
            }
        }
    }
    let (parts, domain_payload) = runs.into_parts()?;
    let mut out = Vec::new();
    for (i, part) in parts.into_iter().enumerate() {
        let name = format!("{}/runs/{}-{attempt}/{}-{i}.run", spec.ingest, spec.job, part.kind);
        blobs.put_file(&part.path, &name)?;
        out.push(RunRef { kind: part.kind.to_owned(), name, bytes: part.bytes });
    }
    let _ = std::fs::remove_dir_all(&work);
    let records = progress.records.load(std::sync::atomic::Ordering::Relaxed);
    Ok(JobOutput { files, runs: out, domain_payload, pushed, records })
}

/// A distributed ingest under way: it holds the store's writer lock, stages
/// inputs, describes jobs, and commits their outputs.
pub struct DistributedIngest {
    dir: DataDir,
    txn: Txn,
    keys: Keys,
    existing: Option<Breach>,
    breach: String,
    breach_id: u32,
    id: String,
    blobs: Box<dyn Blobs>,
}

impl DistributedIngest {
    /// Takes the writer lock (removing what dead writers left, a dead
    /// distributed ingest's shared files included) for an ingest into `breach`.
    pub fn begin(dir: &DataDir, breach: &str) -> Result<DistributedIngest> {
        leakwatch_types::validate_breach_name(breach).map_err(StoreError::Invalid)?;
        let blobs = blobs_of(dir)?;
        dir.create()?;
        let mut txn = Txn::begin(dir)?;
        let keys = crate::rekey::writer_keys(&mut txn)?;
        let existing = txn.manifest.breach(breach).cloned();
        let breach_id = existing.as_ref().map_or(txn.manifest.next_breach_id, |b| b.id);
        let id = format!("{:016x}", rand::random::<u64>());
        Ok(DistributedIngest {
            dir: dir.clone(),
            txn,
            keys,
            existing,
            breach: breach.to_owned(),
            breach_id,
            id,
            blobs,
        })
    }

    /// The ingest's id: its folder in the shared area.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The shared area.
    pub fn blobs(&self) -> &dyn Blobs {
        &*self.blobs
    }

    /// Copies the local file `path` to the shared area as input `n`; returns
    /// its name there.
    pub fn stage_input(&self, n: usize, path: &Path) -> Result<String> {
        let name = format!("{}/inputs/{n}", self.id);
        self.blobs.put_file(path, &name)?;
        Ok(name)
    }

    /// The job that reads `range` of the staged `input` (all of it when
    /// `None`), shown as `name`.
    #[allow(clippy::too_many_arguments)]
    pub fn job(
        &self,
        job: u32,
        input: String,
        name: String,
        range: Option<Range<u64>>,
        head: Option<u64>,
        format: Option<Format>,
        memory_budget: u64,
    ) -> JobSpec {
        let m = &self.txn.manifest;
        JobSpec {
            ingest: self.id.clone(),
            job,
            input,
            name,
            range: range.map(|r| (r.start, r.end)),
            head,
            format: format.map(|f| f.name().to_owned()),
            breach_id: self.breach_id,
            existing: self.existing.is_some(),
            generation: m.generation,
            dir_id: m.dir_id.clone(),
            key_id: m.key_id.clone(),
            key_file: m.key_file.clone(),
            memory_budget,
        }
    }

    /// Writes and publishes the jobs' outputs, given in job order, as one
    /// generation; then empties the ingest's shared folder. The reports of
    /// consecutive parts of one input are summed into one, numbered as the
    /// whole input's lines.
    pub fn commit(
        mut self,
        options: &IngestOptions,
        outputs: &[(JobSpec, JobOutput)],
        on_phase: &mut dyn FnMut(Phase<'_>),
    ) -> Result<IngestSummary> {
        let committed = self.write(options, outputs, on_phase);
        // Published or not, the staged inputs and the runs have served; what
        // cannot be removed now the next writer's orphan removal takes.
        let _ = self.remove_shared();
        committed
    }

    fn write(
        &mut self,
        options: &IngestOptions,
        outputs: &[(JobSpec, JobOutput)],
        on_phase: &mut dyn FnMut(Phase<'_>),
    ) -> Result<IngestSummary> {
        if options.breach.name != self.breach {
            return Err(StoreError::Invalid(format!(
                "the ingest began for breach {:?}, not {:?}",
                self.breach, options.breach.name
            )));
        }
        let scratch = tempdir_in(&self.dir.tmp())?;
        let budget = options.memory_budget.max(1 << 20) as usize;
        let mut runs = IndexRuns::new(&scratch);
        // Runs that fit in half the budget, as a local ingest's would, are
        // held in memory and written as a local ingest that did not spill
        // writes them (the same segment layouts); larger ones are merged from
        // their files, as a local ingest that spilled merges its own.
        let total: u64 = outputs.iter().flat_map(|(_, o)| &o.runs).map(|r| r.bytes).sum();
        let in_memory = total <= (budget / 2) as u64;
        let mut pushed = std::collections::BTreeMap::<String, u64>::new();
        let mut files: Vec<(String, Report)> = Vec::new();
        let mut previous: Option<&JobSpec> = None;
        for (n, (spec, output)) in outputs.iter().enumerate() {
            for (i, run) in output.runs.iter().enumerate() {
                let local = scratch.join(format!("job-{n}-{i}.run"));
                self.blobs.get_file(&run.name, None, &local)?;
                if in_memory {
                    runs.load(&run.kind, &local)?;
                    std::fs::remove_file(&local).map_err(|e| StoreError::io(&local, e))?;
                } else {
                    runs.adopt(&run.kind, local, run.bytes)?;
                }
            }
            for (kind, n) in &output.pushed {
                *pushed.entry(kind.clone()).or_default() += n;
            }
            runs.adopt_domain_payload(output.domain_payload);
            // A part that follows the part before it in the same input adds to
            // that input's report; anything else is an input of its own.
            let continues = previous.is_some_and(|p| {
                p.input == spec.input
                    && matches!((p.range, spec.range), (Some((_, end)), Some((start, _))) if end == start)
            });
            for (j, (name, report)) in output.files.iter().enumerate() {
                let report = Report::from_json(report).map_err(|e| {
                    StoreError::Invalid(format!("job {} of ingest {}: {e}", spec.job, self.id))
                })?;
                match files.last_mut() {
                    Some(last) if continues && j == 0 => last.1.append(&report),
                    _ => files.push((name.clone(), report)),
                }
            }
            previous = Some(spec);
        }
        runs.set_pushed(&pushed);
        let stored = stored_of(&self.txn, self.existing.is_some())?;
        let written = Written {
            keys: &self.keys,
            existing: self.existing.take(),
            breach_id: self.breach_id,
            stored: stored.as_ref(),
            runs,
            files,
            scratch: &scratch,
            budget,
        };
        let summary = write_and_publish(&mut self.txn, options, written, on_phase);
        let _ = std::fs::remove_dir_all(&scratch);
        summary
    }

    /// Removes the ingest's shared folder: its staged inputs and runs.
    pub fn remove_shared(&self) -> Result<()> {
        for name in self.blobs.list(&self.id)? {
            self.blobs.delete(&name)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BreachInfo, Store};
    use leakwatch_types::Account;

    fn options() -> IngestOptions {
        IngestOptions {
            breach: BreachInfo { name: "Alpha".into(), ..BreachInfo::default() },
            format: None,
            memory_budget: 1 << 30,
        }
    }

    fn store(root: &Path) -> DataDir {
        let data = DataDir::new(root.join("data"));
        data.init(Some(&root.join("data.key"))).unwrap();
        data
    }

    fn ingest_local(data: &DataDir, path: &Path) -> IngestSummary {
        let input = Input::open(path.to_str().unwrap()).unwrap();
        crate::ingest(data, &options(), vec![input], &Progress::default(), &mut |_| {}).unwrap()
    }

    /// Every answer of `data`'s store for the test's passwords, accounts and
    /// domains, and its statistics.
    fn answers(data: &DataDir) -> Vec<String> {
        let store = Store::open(data).unwrap();
        let mut out = vec![format!("{:?}", store.stats().unwrap())];
        for pw in 0..500 {
            let password = format!("pw{pw}");
            out.push(format!(
                "{pw}: {} {}",
                store.sha1_count(&leakwatch_types::sha1(password.as_bytes())).unwrap(),
                store.ntlm_count(&leakwatch_types::ntlm(password.as_bytes())).unwrap()
            ));
        }
        for user in 0..320 {
            for domain in 0..7 {
                let account = Account::email(&format!("user{user}@ex{domain}.com")).unwrap();
                let found: Vec<&str> =
                    store.account_breaches(&account).unwrap().iter().map(|b| b.name.as_str()).collect();
                out.push(format!("user{user}@ex{domain}.com: {found:?}"));
            }
        }
        for domain in 0..7 {
            out.push(format!("{:?}", store.domain(&format!("ex{domain}.com")).unwrap()));
        }
        let b = store.breaches()[0].clone();
        out.push(format!("{} {} {:?}", b.name, b.pwn_count, b.data_classes));
        out
    }

    /// A combo list cut into parts at line ends, the parts after the first read
    /// after the head, by jobs run here, committed into a breach already
    /// holding part of it: the same answers and report as a local ingest,
    /// duplicates across parts and against the stored triples counted once.
    #[test]
    fn parts_committed_answer_as_a_local_ingest() {
        let tmp = tempfile::tempdir().unwrap();
        let lines: Vec<String> = (0..6000u32)
            .map(|i| match i % 97 {
                0 => format!("broken line {i}"),
                1 => format!("not-an-address{i}:pw{}", i % 500),
                _ => format!("user{}@ex{}.com:pw{}", i % 320, i % 7, (i * 7) % 500),
            })
            .collect();
        let first = tmp.path().join("first.txt");
        std::fs::write(&first, lines[..2000].join("\n") + "\n").unwrap();
        let whole = tmp.path().join("combo.txt");
        let text = lines.join("\n") + "\n";
        std::fs::write(&whole, &text).unwrap();

        let local = store(&tmp.path().join("local"));
        ingest_local(&local, &first);
        let want = ingest_local(&local, &whole);

        let dist = store(&tmp.path().join("dist"));
        ingest_local(&dist, &first);
        let ingest = DistributedIngest::begin(&dist, "Alpha").unwrap();
        let input = ingest.stage_input(0, &whole).unwrap();
        let cut_after = |at: usize| at + text[at..].find('\n').unwrap() + 1;
        let head = cut_after(1000) as u64;
        let cuts = [0, cut_after(30_000), cut_after(70_000), text.len()];
        let scratch = tmp.path().join("worker");
        let outputs: Vec<(JobSpec, JobOutput)> = cuts
            .windows(2)
            .enumerate()
            .map(|(job, w)| {
                let range = Some(w[0] as u64..w[1] as u64);
                let head = (w[0] > 0).then_some(head);
                let spec = ingest.job(
                    job as u32,
                    input.clone(),
                    "combo.txt".into(),
                    range,
                    head,
                    Some(Format::Combo),
                    1 << 30,
                );
                let output = run_job(&dist, &spec, 1, &scratch, &Progress::default()).unwrap();
                (spec, output)
            })
            .collect();
        assert!(!ingest.blobs().list(ingest.id()).unwrap().is_empty(), "inputs and runs are shared");
        let id = ingest.id().to_owned();
        let blobs = dist.storage().blobs().unwrap();
        let got = ingest.commit(&options(), &outputs, &mut |_| {}).unwrap();
        assert!(blobs.list(&id).unwrap().is_empty(), "the shared files are removed");

        assert_eq!(got.files.len(), 1);
        let (want_report, got_report) = (&want.files[0].1, &got.files[0].1);
        assert!(got_report.rejected.values().any(|r| r.count > 1), "{got_report:?}");
        assert_eq!(got_report, want_report);
        assert_eq!((got.new_accounts, got.new_credentials), (want.new_accounts, want.new_credentials));
        assert!(got.new_credentials > 0 && got.new_accounts > 0);
        assert_eq!(answers(&dist), answers(&local));
    }
}
