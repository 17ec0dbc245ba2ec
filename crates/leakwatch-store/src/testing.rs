//! Power-loss tests for any storage (feature `testing`): a writer's sequence
//! of storage steps cut at one step after another, in every way a step can go
//! wrong ([`Fault`]), then the writer's death ([`Cut::crash`]). The store must
//! reopen whole and answer exactly as before the write or as after it, never
//! anything else; the next writer must find nothing of the cut write but
//! orphans it removes, and running the write again must end where the uncut
//! one did.
//!
//! One loop for every storage: memory (`tests/crash.rs`, every step of every
//! writer) and an object store (`leakwatch-objstore`'s Garage tests, a sample
//! of the steps that still takes each kind).

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::dir::DataDir;
use crate::error::Result;
pub use crate::storage::Fault;
use crate::storage::Storage;

/// Every way a step can go wrong.
pub const FAULTS: [Fault; 3] = [Fault::Torn, Fault::Lost, Fault::Unsynced];

/// A storage whose steps (put, persist, delete, publish) a test can count and
/// make go wrong.
pub trait Cut: Storage {
    /// Makes step `step` (counted from the next one taken, 0) go wrong as
    /// `fault` says, and every operation after it fail.
    fn fail_at(&self, step: u64, fault: Fault);
    /// Whether the armed fault struck.
    fn failed(&self) -> bool;
    /// The kinds of the steps taken so far, in order (`"put"`, `"persist"`,
    /// `"delete"`, `"publish"`).
    fn step_kinds(&self) -> Vec<&'static str>;
    /// The writer died at the fault: what the storage keeps of its writes is
    /// what a reader and the next writer find, the fault is disarmed.
    fn crash(&self);
}

impl Cut for crate::storage::MemoryStorage {
    fn fail_at(&self, step: u64, fault: Fault) {
        crate::storage::MemoryStorage::fail_at(self, step, fault)
    }

    fn failed(&self) -> bool {
        crate::storage::MemoryStorage::failed(self)
    }

    fn step_kinds(&self) -> Vec<&'static str> {
        crate::storage::MemoryStorage::step_kinds(self)
    }

    /// A power loss: see [`MemoryStorage::crash`](crate::storage::MemoryStorage::crash).
    fn crash(&self) {
        crate::storage::MemoryStorage::crash(self)
    }
}

/// Where the cuts run: fresh copies of one store, and what lives outside it.
pub struct Cuts<'a> {
    /// A fresh copy of the store each call: its data directory and its
    /// storage.
    pub fork: &'a dyn Fn() -> (DataDir, Arc<dyn Cut>),
    /// The key file, put back as it was before each run.
    pub key_file: &'a Path,
    /// Cut at every `every`-th step (1: at every step), and at the first and
    /// last step of each kind whatever `every` is.
    pub every: u64,
    /// Whether each step picked is cut in every way; if not, in one, the
    /// ways taking turns from one step picked to the next.
    pub every_fault: bool,
    /// How long the storage's listing may lag behind its deletes.
    pub listing_lag: Duration,
}

impl Cuts<'_> {
    /// Cuts `write` at the steps [`Cuts::every`] picks, in every way, as the
    /// module says; `answers` is everything a reader sees, as text.
    pub fn cut(
        &self,
        what: &str,
        answers: impl Fn(&DataDir) -> String,
        write: impl Fn(&DataDir) -> Result<()>,
    ) {
        let key = std::fs::read(self.key_file).expect("the key file");
        let restore = || std::fs::write(self.key_file, &key).expect("the key file written");
        let (data, _) = (self.fork)();
        let before = answers(&data);
        let (data, storage) = (self.fork)();
        write(&data).unwrap_or_else(|e| panic!("{what}, uncut: {e}"));
        let after = answers(&data);
        let kinds = storage.step_kinds();
        assert!(!kinds.is_empty(), "{what} takes no step");
        let steps = pick(&kinds, self.every);
        // Shown with `--nocapture`: how much of the write a run cut.
        eprintln!("{what}: {} steps, cut at {}", kinds.len(), steps.len());
        let mut as_before = 0;
        for (n, &step) in steps.iter().enumerate() {
            let faults = if self.every_fault { &FAULTS[..] } else { &FAULTS[n % FAULTS.len()..][..1] };
            for &fault in faults {
                restore();
                let (data, storage) = (self.fork)();
                storage.fail_at(step, fault);
                let result = write(&data);
                let at = format!(
                    "{what}, cut at step {step} of {} ({}, {fault:?})",
                    kinds.len(),
                    kinds[step as usize]
                );
                assert!(storage.failed(), "{at}: the step was not taken ({result:?})");
                storage.crash();
                let got = answers(&data);
                let is_before = got == before;
                assert!(
                    is_before || got == after,
                    "{at}: answers neither as before nor as after\n\
                     before:\n{before}\nafter:\n{after}\ngot:\n{got}"
                );
                as_before += usize::from(is_before);
                self.check_clean(&data, &at);
                if is_before {
                    write(&data).unwrap_or_else(|e| panic!("{at}, then again: {e}"));
                    assert_eq!(answers(&data), after, "{at}, then again");
                    self.check_clean(&data, &format!("{at}, then again"));
                }
            }
        }
        if before != after {
            // The publish is one of the steps, and a cut there answers as before.
            assert!(as_before > 0, "{what}: no cut answers as before");
        }
        restore();
    }

    /// After a crash, the next writer removes what the cut write left, and
    /// then the manifest names exactly the objects there are.
    fn check_clean(&self, data: &DataDir, when: &str) {
        let lock = data.lock().expect("the writer lock after a crash");
        let manifest = data.manifest().expect("the manifest").expect("a store");
        let listed = data.storage().list().expect("the listing");
        data.remove_orphans(&manifest, &lock).expect("orphans removed");
        let named: BTreeSet<String> = manifest.segments.iter().map(|s| s.file.clone()).collect();
        let deadline = Instant::now() + self.listing_lag;
        loop {
            let there: BTreeSet<String> = data.storage().list().expect("the listing").into_iter().collect();
            if named == there {
                return;
            }
            if Instant::now() >= deadline {
                panic!(
                    "{when}: the manifest names {} objects, the storage holds {}: extra {:?}, missing {:?}; \
                     listed before removal: {listed:?}",
                    named.len(),
                    there.len(),
                    there.difference(&named).collect::<Vec<_>>(),
                    named.difference(&there).collect::<Vec<_>>(),
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// The steps to cut among those of `kinds`: every `every`-th, and the first
/// and last of each kind.
fn pick(kinds: &[&str], every: u64) -> Vec<u64> {
    let mut steps: BTreeSet<u64> = (0..kinds.len() as u64).step_by(every.max(1) as usize).collect();
    for kind in kinds.iter().collect::<BTreeSet<_>>() {
        let first = kinds.iter().position(|k| k == kind).expect("a kind taken");
        let last = kinds.iter().rposition(|k| k == kind).expect("a kind taken");
        steps.extend([first as u64, last as u64]);
    }
    steps.into_iter().collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_sample_of_steps_takes_every_kind() {
        let kinds = ["put", "put", "put", "put", "persist", "publish", "delete", "delete", "put", "persist"];
        assert_eq!(super::pick(&kinds, 1), (0..10).collect::<Vec<_>>());
        assert_eq!(super::pick(&kinds, 4), vec![0, 4, 5, 6, 7, 8, 9]);
    }
}
