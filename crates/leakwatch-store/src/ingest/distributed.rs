//! Distributed ingest: an ingest split into jobs that other processes
//! (`leakwatch worker`, on any machine) run, each writing final segments of
//! its own, and one commit that publishes them all as one generation.
//!
//! A job is a [`Partition`] of the records: it reads every input, exactly as
//! a local ingest reads it ([`super::read_inputs`]: the same keys, breach id
//! and stored accounts), keeps the records whose sorted key falls in its
//! range, and writes them as a local ingest writes its own
//! ([`super::write_segments`]), checked against what the breach holds. What
//! a local ingest merges or counts together shares the key that decides the
//! partition, so the jobs' segments hold exactly the local ingest's entries,
//! cut into disjoint key ranges: every answer after a distributed ingest is
//! the one a local ingest of the same inputs gives (counts of distinct
//! triples, the breach's accounts, aliases, stealer data, the report).
//!
//! Nothing moves twice: the inputs are staged once in the store's shared
//! area ([`Blobs`]), as one bundle the jobs read while the rest is staged
//! ([`super::staged`]), and the segments are put once, by the jobs, under
//! their content names; the commit writes only the manifest. The price is that
//! every job parses every input (a fifth of a local ingest's work on a combo
//! list; the keying, sealing, sorting and writing are shared out).
//!
//! The commit holds the store's writer lock from [`DistributedIngest::begin`]
//! to its end, as a local ingest does: no other writer changes the store (or
//! removes orphans) meanwhile, so the jobs read the generation the commit
//! builds on, and a job checks that it does. A killed distributed ingest
//! publishes nothing; its lock runs out, and the next writer's orphan removal
//! takes the segments its jobs put and the inputs it staged.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use leakwatch_ingest::{Format, Input, Report};
use serde::{Deserialize, Serialize};

use super::staged::{Bundle, ToStage};
use super::{
    publish, read_inputs, stored_of, tempdir_in, write_segments, BatchOf, IndexRuns, IngestOptions,
    IngestSummary, NewSegments, Partition, Phase, Progress, ReadContext, Written,
};
use crate::dir::DataDir;
use crate::error::{Result, StoreError};
use crate::manifest::{Breach, SegmentRef};
use crate::storage::blobs::Blobs;
use crate::txn::Txn;

/// An input of the jobs: staged in the shared area, or an object of the
/// store's object storage named by its `s3://` URL.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct StagedInput {
    /// Its name in the shared area, or its URL.
    pub staged: String,
    /// Its name as the reports show it (the path or URL given to `ingest`).
    pub name: String,
    /// Whether `staged` is an `s3://` URL, read where it is.
    #[serde(default)]
    pub url: bool,
    /// Whether the input is known plain (neither an archive nor compressed
    /// before it was staged): a job reads it as it is fetched.
    #[serde(default)]
    pub plain: bool,
    /// Whether the input is staged in the ingest's bundle, the folder
    /// `staged` ([`super::staged`]), which the jobs read while it is staged;
    /// else `staged` is one object, staged before the jobs were queued (by
    /// an ingest of an earlier version, which a worker still reads).
    #[serde(default)]
    pub bundled: bool,
}

/// What one job reads and keeps, and what it needs to make records as a
/// local ingest would.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct JobSpec {
    /// The distributed ingest: its folder in the shared area.
    pub ingest: String,
    /// The job's number: its partition's index.
    pub job: u32,
    /// Every input of the ingest, in order.
    pub inputs: Vec<StagedInput>,
    /// The records this job keeps.
    pub partition: Partition,
    /// The format, when the user forced one.
    pub format: Option<String>,
    pub breach_id: u32,
    /// Whether the breach is stored already (its accounts get no new aliases,
    /// its triples are not counted again).
    pub existing: bool,
    /// The generation the commit builds on: the job refuses any other.
    pub generation: u64,
    pub dir_id: String,
    pub key_id: Option<String>,
    pub key_file: Option<PathBuf>,
    pub memory_budget: u64,
}

/// What a job reports back: its inputs' reports and its segments.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct JobOutput {
    /// Each input read ([`Report::to_json`]); an archive gives one per
    /// member. Every job reads every input: the reports are the same in all.
    pub files: Vec<(String, serde_json::Value)>,
    /// The segments the job put in the store, persisted, named by no manifest
    /// yet.
    pub segments: Vec<SegmentRef>,
    /// Accounts new to the breach, of the job's partition.
    pub new_accounts: u64,
    /// Triples new to the breach, of the job's partition.
    pub new_credentials: u64,
    /// Records of the job's partition accepted.
    pub records: u64,
    /// Seconds spent fetching the inputs saved whole (archives), reading
    /// the inputs (plain ones fetched as they are read), and writing and
    /// putting the segments: for the worker's log.
    #[serde(default)]
    pub seconds: [f64; 3],
}

/// The shared area of `dir`'s storage.
fn blobs_of(dir: &DataDir) -> Result<Arc<dyn Blobs>> {
    let blobs = dir.storage().blobs().ok_or_else(|| {
        StoreError::Invalid(format!("{} has no area shared with other machines", dir.location()))
    })?;
    Ok(Arc::from(blobs))
}

/// Runs one job: reads every input from the shared area, keeps its
/// partition's records, and puts their segments in the store. `attempt`
/// tells this run of the job from an earlier one taken over (their local
/// files apart; the segments are named by their content). `scratch` is local
/// space for the inputs and runs while they are made. `stop` is set when the
/// job is given up (its lease, or its ingest's, ran out): a job waiting for
/// an input still being staged then fails instead of waiting on.
pub fn run_job(
    dir: &DataDir,
    spec: &JobSpec,
    attempt: u32,
    scratch: &Path,
    progress: &Progress,
    stop: &Arc<AtomicBool>,
) -> Result<JobOutput> {
    let blobs = blobs_of(dir)?;
    let manifest = dir.manifest()?.unwrap_or_default();
    if manifest.generation != spec.generation {
        return Err(StoreError::Invalid(format!(
            "{} is at generation {}, but the ingest builds on {}: the store changed under it",
            dir.location(),
            manifest.generation,
            spec.generation
        )));
    }
    let mut header = crate::manifest::Manifest::new();
    header.dir_id = spec.dir_id.clone();
    header.key_id = spec.key_id.clone();
    header.key_file = spec.key_file.clone();
    let keys = dir.keys(&header)?.ok_or_else(|| StoreError::Key("the store's data key is missing".into()))?;
    let stored = stored_of(dir, &manifest, spec.existing)?;
    let format = match &spec.format {
        Some(name) => Some(
            Format::from_name(name).ok_or_else(|| StoreError::Invalid(format!("unknown format {name:?}")))?,
        ),
        None => None,
    };

    let work = scratch.join(format!("job-{}-{}-{attempt}", spec.ingest, spec.job));
    let _ = std::fs::remove_dir_all(&work);
    let bundle = std::sync::OnceLock::new();
    let job = JobRun { dir, spec, work: &work, keys: &keys, stored: stored.as_ref(), blobs, stop, bundle };
    let written = job.read_and_write(format, progress);
    let _ = std::fs::remove_dir_all(&work);
    written
}

/// What a run of a job works with: its store, description, work folder
/// (`work`), keys, the breach's stored accounts and the shared area.
struct JobRun<'a> {
    dir: &'a DataDir,
    spec: &'a JobSpec,
    work: &'a Path,
    keys: &'a crate::crypt::Keys,
    stored: Option<&'a super::Stored>,
    blobs: Arc<dyn Blobs>,
    stop: &'a Arc<AtomicBool>,
    /// The ingest's bundle of staged inputs, once one is read.
    bundle: std::sync::OnceLock<Bundle>,
}

impl JobRun<'_> {
    /// Input `input`, number `n`, as it is fetched.
    fn open(&self, n: u32, input: &StagedInput) -> Result<Box<dyn std::io::Read + Send>> {
        Ok(match (input.bundled, input.url) {
            (true, _) => {
                let bundle = self.bundle.get_or_init(|| {
                    Bundle::open(self.blobs.clone(), input.staged.clone(), self.stop.clone())
                });
                Box::new(bundle.input(n))
            }
            (false, true) => self.blobs.open_url(&input.staged)?,
            (false, false) => self.blobs.open(&input.staged)?,
        })
    }

    /// Input `n` ready to read: a plain one as it is fetched; an archive (or
    /// what may hold one) saved whole first in the work folder, as its
    /// reader needs a file, and expanded. Each local copy keeps its input's
    /// file name (in a folder of its own): an archive's members are named
    /// after it, and recognised by it; `(local, given)` is noted in
    /// `local_names`.
    fn open_input(
        &self,
        n: usize,
        input: &StagedInput,
        local_names: &mut Vec<(String, String)>,
    ) -> Result<Vec<Input>> {
        let at = Path::new(&input.staged);
        let stream = self.open(n as u32, input)?;
        let (plain, mut stream) = match input.plain {
            true => (true, stream),
            false => leakwatch_ingest::sniff_plain(stream).map_err(|e| StoreError::io(at, e))?,
        };
        if plain {
            return Ok(vec![Input::from_reader(input.name.clone(), stream)?]);
        }
        let folder = self.work.join(format!("input-{n}"));
        std::fs::create_dir_all(&folder).map_err(|e| StoreError::io(&folder, e))?;
        let file_name = Path::new(&input.name).file_name().map_or("input".into(), |n| n.to_owned());
        let local = folder.join(file_name);
        let mut file = std::fs::File::create(&local).map_err(|e| StoreError::io(&local, e))?;
        std::io::copy(&mut stream, &mut file).map_err(|e| StoreError::io(&local, e))?;
        let local_name = local.to_string_lossy().into_owned();
        let expanded = Input::expand(&local_name)?;
        local_names.push((local_name, input.name.clone()));
        Ok(expanded)
    }

    /// The body of [`run_job`]: the job's output.
    fn read_and_write(&self, format: Option<Format>, progress: &Progress) -> Result<JobOutput> {
        let JobRun { dir, spec, work, keys, stored, .. } = *self;
        let started = std::time::Instant::now();
        let mut local_names = Vec::new();
        // Opened one after another as the reading gets to them, not all
        // first: a job waits for no input staged after the one it reads, and
        // holds one input's fetch at a time. The time spent opening them (in
        // full for the inputs saved whole) is the job's fetching.
        let mut fetched = 0.0;
        let inputs = spec.inputs.iter().enumerate().flat_map(|(n, input)| {
            let opening = std::time::Instant::now();
            let opened = self.open_input(n, input, &mut local_names);
            fetched += opening.elapsed().as_secs_f64();
            match opened {
                Ok(inputs) => inputs.into_iter().map(Ok).collect(),
                Err(e) => vec![Err(e)],
            }
        });
        let budget = spec.memory_budget.max(1 << 20) as usize;
        let batch = BatchOf {
            keys,
            breach: spec.breach_id,
            stored_accounts: stored.map(|s| s.accounts.as_slice()),
            partition: Some(spec.partition),
        };
        let context = ReadContext { batch, format, budget };
        let runs_dir = work.join("runs");
        std::fs::create_dir_all(&runs_dir).map_err(|e| StoreError::io(&runs_dir, e))?;
        let mut runs = IndexRuns::new(&runs_dir);
        let files = read_inputs(&context, inputs, &mut runs, progress, &mut |_| {})?;
        let read = started.elapsed().as_secs_f64() - fetched;
        let files = files
            .into_iter()
            .map(|(name, report)| {
                // The reports name the inputs as the user gave them.
                let shown = local_names
                    .iter()
                    .find(|(local, _)| name.starts_with(local.as_str()))
                    .map_or(name.clone(), |(local, given)| name.replacen(local.as_str(), given, 1));
                (shown, report.to_json())
            })
            .collect();
        let written = Written { keys, breach_id: spec.breach_id, stored, runs, scratch: &runs_dir, budget };
        let NewSegments { segments, new_accounts, new_credentials } = write_segments(dir, written)?;
        let wrote = started.elapsed().as_secs_f64() - fetched - read;
        let records = progress.records.load(std::sync::atomic::Ordering::Relaxed);
        Ok(JobOutput {
            files,
            segments,
            new_accounts,
            new_credentials,
            records,
            seconds: [fetched, read, wrote],
        })
    }
}

/// A distributed ingest under way: it holds the store's writer lock, stages
/// inputs, describes jobs, and commits their outputs.
pub struct DistributedIngest {
    dir: DataDir,
    txn: Txn,
    existing: Option<Breach>,
    breach: String,
    breach_id: u32,
    id: String,
    blobs: Arc<dyn Blobs>,
}

impl DistributedIngest {
    /// Takes the writer lock (removing what dead writers left, a dead
    /// distributed ingest's shared files and segments included) for an
    /// ingest into `breach`.
    pub fn begin(dir: &DataDir, breach: &str) -> Result<DistributedIngest> {
        leakwatch_types::validate_breach_name(breach).map_err(StoreError::Invalid)?;
        let blobs = blobs_of(dir)?;
        dir.create()?;
        let mut txn = Txn::begin(dir)?;
        // Made (or migrated) now, under the lock, for the jobs to read.
        crate::rekey::writer_keys(&mut txn)?;
        let existing = txn.manifest.breach(breach).cloned();
        let breach_id = existing.as_ref().map_or(txn.manifest.next_breach_id, |b| b.id);
        let id = format!("{:016x}", rand::random::<u64>());
        Ok(DistributedIngest {
            dir: dir.clone(),
            txn,
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

    /// Input `n`, shown in reports as `name`, to be staged in parts by
    /// [`DistributedIngest::stage`], which may run after its jobs are
    /// queued; `plain` says it was neither an archive nor compressed before
    /// it was staged (it may be compressed as it is read): a job reads it as
    /// it comes.
    pub fn input_staged(&self, name: &str, plain: bool) -> StagedInput {
        StagedInput { staged: self.bundle_folder(), name: name.to_owned(), url: false, plain, bundled: true }
    }

    /// Where the bundle of staged inputs is in the shared area.
    fn bundle_folder(&self) -> String {
        format!("{}/inputs", self.id)
    }

    /// Stages each of `inputs` made by [`Self::input_staged`] (the others
    /// are read where they are), in parts the jobs read as they come: what
    /// `open` reads for it, opened when the input before it is staged. The
    /// bytes staged.
    pub fn stage(
        &self,
        inputs: &[StagedInput],
        mut open: impl FnMut(&StagedInput) -> std::io::Result<Box<dyn std::io::Read + Send>>,
    ) -> Result<u64> {
        let to_stage = inputs.iter().enumerate().filter(|(_, input)| input.bundled).map(|(n, input)| {
            let from = open(input).map_err(|e| StoreError::io(&input.name, e))?;
            Ok(ToStage { number: n as u32, name: input.name.clone(), from })
        });
        super::staged::put_bundle(&*self.blobs, &self.bundle_folder(), to_stage)
    }

    /// An input already in object storage, at the `s3://` URL `url`: the
    /// jobs read it where it is, reached as the store is.
    pub fn input_at(&self, url: &str) -> StagedInput {
        StagedInput { staged: url.to_owned(), name: url.to_owned(), url: true, plain: false, bundled: false }
    }

    /// The job of `partition`, reading every one of `inputs`.
    pub fn job(
        &self,
        partition: Partition,
        inputs: &[StagedInput],
        format: Option<Format>,
        memory_budget: u64,
    ) -> JobSpec {
        let m = &self.txn.manifest;
        JobSpec {
            ingest: self.id.clone(),
            job: partition.index,
            inputs: inputs.to_vec(),
            partition,
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

    /// Publishes the jobs' segments, one job per partition, as one
    /// generation; then empties the ingest's shared folder. Published or
    /// not, nothing of the jobs is left: segments the manifest does not name
    /// are deleted.
    pub fn commit(
        mut self,
        options: &IngestOptions,
        outputs: &[(JobSpec, JobOutput)],
        on_phase: &mut dyn FnMut(Phase<'_>),
    ) -> Result<IngestSummary> {
        on_phase(Phase::Writing);
        let committed = self.publish(options, outputs);
        if committed.is_err() {
            let _ = self.discard(outputs);
        }
        // The staged inputs have served; what cannot be removed now the next
        // writer's orphan removal takes.
        let _ = self.remove_shared();
        committed
    }

    fn publish(
        &mut self,
        options: &IngestOptions,
        outputs: &[(JobSpec, JobOutput)],
    ) -> Result<IngestSummary> {
        if options.breach.name != self.breach {
            return Err(StoreError::Invalid(format!(
                "the ingest began for breach {:?}, not {:?}",
                self.breach, options.breach.name
            )));
        }
        let count = outputs.first().map_or(0, |(spec, _)| spec.partition.count);
        let mut seen: Vec<u32> = outputs.iter().map(|(spec, _)| spec.partition.index).collect();
        seen.sort_unstable();
        let whole = outputs.iter().all(|(spec, _)| spec.partition.count == count && spec.ingest == self.id);
        if !whole || seen != (0..count).collect::<Vec<_>>() {
            return Err(StoreError::Invalid(format!(
                "ingest {}: the jobs' partitions {seen:?} are not each of {count} once",
                self.id
            )));
        }
        let (_, first) = &outputs[0];
        if let Some((spec, _)) = outputs.iter().find(|(_, o)| o.files != first.files) {
            return Err(StoreError::Invalid(format!(
                "ingest {}: job {} read the inputs otherwise than job 0 (workers of different versions?)",
                self.id, spec.job
            )));
        }
        let files = first
            .files
            .iter()
            .map(|(name, report)| {
                let report = Report::from_json(report)
                    .map_err(|e| StoreError::Invalid(format!("ingest {}: {name}: {e}", self.id)))?;
                Ok((name.clone(), report))
            })
            .collect::<Result<Vec<_>>>()?;
        let new = NewSegments {
            segments: outputs.iter().flat_map(|(_, o)| o.segments.iter().cloned()).collect(),
            new_accounts: outputs.iter().map(|(_, o)| o.new_accounts).sum(),
            new_credentials: outputs.iter().map(|(_, o)| o.new_credentials).sum(),
        };
        // Every segment a job reported must be in the store before a manifest
        // names it (the job put it, durably, before it reported it done):
        // one listing, not a request per segment; one the listing does not
        // show yet is opened.
        let listed: std::collections::BTreeSet<String> = self.dir.storage().list()?.into_iter().collect();
        for s in new.segments.iter().filter(|s| !listed.contains(&s.file)) {
            self.dir.storage().open_segment(&s.file)?;
        }
        let scratch = tempdir_in(&self.dir.tmp())?;
        publish(&mut self.txn, options, self.existing.take(), files, new, &scratch)
    }

    /// Deletes the segments the jobs put that the manifest does not name.
    fn discard(&self, outputs: &[(JobSpec, JobOutput)]) -> Result<()> {
        let live: std::collections::BTreeSet<&str> =
            self.txn.manifest.segments.iter().map(|s| s.file.as_str()).collect();
        for s in outputs.iter().flat_map(|(_, o)| &o.segments) {
            if !live.contains(s.file.as_str()) {
                self.dir.storage().delete(&s.file)?;
            }
        }
        Ok(())
    }

    /// Removes the ingest's shared folder: its staged inputs.
    pub fn remove_shared(&self) -> Result<()> {
        self.blobs.delete_all(&self.blobs.list(&self.id)?)
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
    /// domains, and its statistics but for how many segments hold them.
    fn answers(data: &DataDir) -> Vec<String> {
        let store = Store::open(data).unwrap();
        let mut stats = store.stats().unwrap();
        for kind in stats.kinds.values_mut() {
            (kind.segments, kind.bytes) = (0, 0);
        }
        let mut out = vec![format!("{stats:?}")];
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

    /// A combo list read by three jobs, one per partition, run here and
    /// committed into a breach already holding part of it: the same answers
    /// and report as a local ingest, duplicates across the input and against
    /// the stored triples counted once, each partition's segments its own.
    #[test]
    fn partitions_committed_answer_as_a_local_ingest() {
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
        std::fs::write(&whole, lines.join("\n") + "\n").unwrap();

        let local = store(&tmp.path().join("local"));
        ingest_local(&local, &first);
        let want = ingest_local(&local, &whole);

        let dist = store(&tmp.path().join("dist"));
        ingest_local(&dist, &first);
        // Segments a job wrote, not the totals summed from them afterwards.
        let written = |data: &DataDir| {
            data.manifest().unwrap().unwrap().segments.iter().filter(|s| !s.kind.ends_with("-totals")).count()
        };
        let before = written(&dist);
        let ingest = DistributedIngest::begin(&dist, "Alpha").unwrap();
        let file = std::fs::File::open(&whole).unwrap();
        let inputs = vec![ingest.input_staged("combo.txt", true)];
        let mut file = Some(file);
        ingest.stage(&inputs, |_| Ok(Box::new(file.take().unwrap()))).unwrap();
        let scratch = tmp.path().join("worker");
        let outputs: Vec<(JobSpec, JobOutput)> = (0..3)
            .map(|index| {
                let partition = Partition::new(index, 3).unwrap();
                let spec = ingest.job(partition, &inputs, None, 1 << 30);
                let stop = Arc::new(AtomicBool::new(false));
                let output = run_job(&dist, &spec, 1, &scratch, &Progress::default(), &stop).unwrap();
                assert!(output.new_accounts > 0, "partition {index} has accounts of its own");
                (spec, output)
            })
            .collect();
        assert!(!ingest.blobs().list(ingest.id()).unwrap().is_empty(), "the inputs are shared");
        let id = ingest.id().to_owned();
        let blobs = dist.storage().blobs().unwrap();
        let got = ingest.commit(&options(), &outputs, &mut |_| {}).unwrap();
        assert!(blobs.list(&id).unwrap().is_empty(), "the shared files are removed");
        let after = written(&dist);
        assert_eq!(after - before, outputs.iter().map(|(_, o)| o.segments.len()).sum::<usize>());

        assert_eq!(got.files.len(), 1);
        assert_eq!(got.files[0].0, "combo.txt");
        let (want_report, got_report) = (&want.files[0].1, &got.files[0].1);
        assert!(got_report.rejected.values().any(|r| r.count > 1), "{got_report:?}");
        assert_eq!(got_report, want_report);
        assert_eq!((got.new_accounts, got.new_credentials), (want.new_accounts, want.new_credentials));
        assert!(got.new_credentials > 0 && got.new_accounts > 0);
        assert_eq!(answers(&dist), answers(&local));
    }
}
