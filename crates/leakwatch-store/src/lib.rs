//! The leakwatch store: a data directory of immutable segments published by an
//! atomically replaced manifest, the ingest pipeline that writes them within a
//! memory budget, and the read-side lookups the surfaces call.
//!
//! **Architecture Invariant:** nothing outside this crate opens a segment file or
//! the manifest; the CLI and the server go through [`Store`] and [`ingest()`].

// A data directory is kept from other users by Unix file modes and the key
// ring's owner check; without them leakwatch would hold toxic data unprotected.
#[cfg(not(unix))]
compile_error!(
    "leakwatch runs on Unix systems only: its data directory is protected by Unix file modes and ownership"
);

mod breach;
mod clock;
mod compact;
mod crypt;
mod dir;
mod domains;
mod error;
mod exposure;
mod health;
mod hibp;
mod import;
mod ingest;
pub mod keyring;
mod manifest;
mod merge;
mod polyval_clmul;
mod range;
mod range_cache;
mod reader;
mod rekey;
mod runs;
mod stealer;
pub mod storage;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
mod totals;
mod txn;

pub use breach::{remove_breach, update_breach, BreachEdit, Removal};
pub use crypt::Keys;
pub use dir::DataDir;
pub use error::{Result, StoreError};
pub use exposure::DirectoryKeys;
pub use health::{repair, RepairSummary};
pub use hibp::HibpBreach;
pub use import::{import_pwned_passwords, ImportSummary, LineRejections};
pub use ingest::{
    ingest, run_job, BreachInfo, DistributedIngest, IngestOptions, IngestSummary, JobOutput, JobSpec,
    Partition, Phase, Progress, StagedInput,
};
pub use manifest::{Breach, Manifest, PwnedImport, SegmentRef, SetAside};
pub use range::{FileSpan, RangeBody, RangeIndex, RangeKind, RangeSource, DEFAULT_RANGE_CACHE};
pub use reader::{Damage, KindStats, PasswordCounts, Stats, Store};
pub use rekey::{rekey, rotate_audit_key, AuditRekey, RekeySummary};

#[cfg(test)]
mod tidy {
    use std::collections::{BTreeMap, BTreeSet};

    /// The store's modules and the modules each names (`crate::x`), test
    /// modules left out.
    fn imports() -> BTreeMap<String, BTreeSet<String>> {
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = Vec::new();
        for entry in std::fs::read_dir(&src).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                files.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
            } else {
                files.push(path);
            }
        }
        let mut graph = BTreeMap::new();
        for path in files {
            let relative = path.strip_prefix(&src).unwrap().with_extension("");
            let module = relative.to_string_lossy().replace('/', "::");
            let module = module.strip_suffix("::mod").unwrap_or(&module).to_owned();
            if module == "lib" || module.ends_with("tests") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let code = text.split("#[cfg(test)]").next().unwrap();
            let mut names = BTreeSet::new();
            for line in code.lines().filter(|l| !l.trim_start().starts_with("//")) {
                for part in line.split("crate::").skip(1) {
                    let name: String =
                        part.chars().take_while(|c| c.is_ascii_lowercase() || *c == '_').collect();
                    if !name.is_empty() && name != module.split("::").next().unwrap() {
                        names.insert(name);
                    }
                }
            }
            graph.insert(module, names);
        }
        graph
    }

    /// No two of the store's modules import each other, directly or through
    /// others: the layers of ARCHITECTURE.md (`storage` and `clock` at the
    /// bottom, then `dir` and `manifest`, `txn`, the writers) stay layers.
    #[test]
    fn the_store_modules_import_each_other_without_a_cycle() {
        let graph = imports();
        assert!(graph.contains_key("txn") && graph.contains_key("ingest::batch"), "{:?}", graph.keys());
        let tops: BTreeMap<&str, BTreeSet<&str>> =
            graph.iter().fold(BTreeMap::new(), |mut tops, (m, names)| {
                let top = m.split("::").next().unwrap();
                tops.entry(top).or_default().extend(names.iter().map(String::as_str).filter(|n| *n != top));
                tops
            });
        // Depth-first: a module met again while still on the path is a cycle.
        fn visit<'a>(
            m: &'a str,
            tops: &BTreeMap<&'a str, BTreeSet<&'a str>>,
            path: &mut Vec<&'a str>,
            done: &mut BTreeSet<&'a str>,
        ) {
            if let Some(at) = path.iter().position(|p| *p == m) {
                panic!("import cycle: {} -> {m}", path[at..].join(" -> "));
            }
            if !done.insert(m) {
                return;
            }
            path.push(m);
            for next in tops.get(m).into_iter().flatten() {
                visit(next, tops, path, done);
            }
            path.pop();
        }
        let mut done = BTreeSet::new();
        for m in tops.keys() {
            visit(m, &tops, &mut Vec::new(), &mut done);
        }
    }
}
