//! The manifest: the one mutable object of a store. It names the segments
//! of the current generation and holds the breach catalog, so that a breach and
//! the records it added appear together or not at all.
//!
//! It is replaced, never edited: published whole by [`Storage::publish_manifest`]
//! (in a directory: written to `MANIFEST.tmp`, synced, renamed over `MANIFEST`,
//! and the directory synced).

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Result, StoreError};
use crate::storage::{LocalDisk, Storage, Version};

/// Format 2: keys from a key ring outside the directory, payloads sealed and
/// password material keyed (`docs/security.md`). Format 1 (the index key in
/// `index.key`, payloads in clear) is still read, and migrated by the next writer.
pub const MANIFEST_FORMAT: u32 = 2;

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Manifest {
    pub format: u32,
    pub generation: u64,
    pub next_breach_id: u32,
    pub breaches: Vec<Breach>,
    pub segments: Vec<SegmentRef>,
    /// The current Pwned Passwords import of each corpus (`sha1`, `ntlm`).
    #[serde(default)]
    pub pwned_passwords: std::collections::BTreeMap<String, PwnedImport>,
    /// A random id naming this data directory (and its default key file).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub dir_id: String,
    /// The id of the data key the keyed segments are written with; none for a
    /// directory not keyed yet (or written before key rings).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    /// The key file given to `leakwatch init --key-file`, when not the default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_file: Option<std::path::PathBuf>,
    /// Damaged segments `leakwatch repair` took out of the index (into
    /// `damaged/`): what they held, so the breaches can be re-ingested.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub set_aside: Vec<SetAside>,
}

/// What the manifest records of the current Pwned Passwords import of a corpus.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PwnedImport {
    pub imported_at: String,
    pub source: String,
    pub hashes: u64,
    pub lines: u64,
}

/// A segment file of the current generation.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SegmentRef {
    pub kind: String,
    pub file: String,
    pub entries: u64,
    pub bytes: u64,
    /// The ids of the breaches whose entries the segment holds, sorted; empty for
    /// a Pwned Passwords import and for segments written before segments were
    /// attributed. What lets `breach remove` take a breach's share of counts and
    /// triples away exactly (`breach remove`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub breaches: Vec<u32>,
    /// For a corpus's totals (`sha1-totals`, `ntlm-totals`): the files of the
    /// count segments summed into it, one name per segment. The totals stand
    /// for them only while the manifest still names every one (`crate::totals`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub covers: Vec<String>,
}

/// A damaged segment `leakwatch repair` set aside.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SetAside {
    /// The segment as the manifest named it.
    pub segment: SegmentRef,
    /// Where it went, relative to the data directory (`damaged/FILE`); none
    /// when the file was missing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moved_to: Option<String>,
    pub problem: String,
    /// RFC 3339, seconds, `Z`.
    pub at: String,
}

/// A breach in the catalog, with HIBP's fields (serialized by the surfaces).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Breach {
    pub id: u32,
    pub name: String,
    pub title: String,
    pub domain: String,
    /// `YYYY-MM-DD`.
    pub breach_date: String,
    /// RFC 3339, seconds, `Z`.
    pub added_date: String,
    pub modified_date: String,
    pub pwn_count: u64,
    pub description: String,
    /// HIBP data-class names, sorted.
    pub data_classes: Vec<String>,
    pub is_verified: bool,
    pub is_fabricated: bool,
    pub is_sensitive: bool,
    pub is_retired: bool,
    pub is_spam_list: bool,
    pub is_malware: bool,
    pub is_stealer_log: bool,
}

impl Manifest {
    pub fn new() -> Manifest {
        Manifest { format: MANIFEST_FORMAT, generation: 0, next_breach_id: 1, ..Manifest::default() }
    }

    /// The manifest of the directory `dir`, or `None` when it holds none.
    pub fn load(dir: &Path) -> Result<Option<Manifest>> {
        Ok(Manifest::load_from(&LocalDisk::new(dir))?.map(|(m, _)| m))
    }

    /// The manifest of `storage` and its version, or `None` when it holds none.
    pub(crate) fn load_from(storage: &dyn Storage) -> Result<Option<(Manifest, Version)>> {
        let Some((bytes, version)) = storage.load_manifest()? else { return Ok(None) };
        let path = storage.manifest_path();
        let manifest: Manifest = serde_json::from_slice(&bytes)
            .map_err(|e| StoreError::DataCorruption { path: path.clone(), detail: e.to_string() })?;
        if manifest.format != MANIFEST_FORMAT && manifest.format != 1 {
            return Err(StoreError::DataCorruption {
                path,
                detail: format!(
                    "manifest format {} is not 1 or {MANIFEST_FORMAT}, which this build reads",
                    manifest.format
                ),
            });
        }
        Ok(Some((manifest, version)))
    }

    /// Publishes this manifest in the directory `dir` atomically, whatever
    /// it held: after this returns, every reader that opens the directory
    /// sees it; before, none does. Writers publish through [`crate::txn`],
    /// conditionally on the version they loaded.
    pub fn store(&self, dir: &Path) -> Result<()> {
        LocalDisk::new(dir).publish_manifest(&self.to_bytes(), None).map(drop)
    }

    /// The bytes a manifest is stored as.
    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).expect("manifest serializes")
    }

    pub fn breach(&self, name: &str) -> Option<&Breach> {
        self.breaches.iter().find(|b| b.name.eq_ignore_ascii_case(name))
    }

    /// What a segment of `kind` recording `breaches` held, for messages: the
    /// breaches by name, the Pwned Passwords import, or unknown breaches.
    pub fn describe_held(&self, kind: &str, breaches: &[u32]) -> String {
        if kind.starts_with("hibp-") {
            return "the Pwned Passwords import".into();
        }
        if breaches.is_empty() {
            return "unknown breaches (the segment was written before manifests recorded them)".into();
        }
        let names = self.breach_names(breaches);
        format!("breach{} {}", if names.len() == 1 { "" } else { "es" }, names.join(", "))
    }

    /// The names of breach ids (`#ID` for one no longer in the catalog), sorted.
    pub fn breach_names(&self, ids: &[u32]) -> Vec<String> {
        let mut names: Vec<String> = ids
            .iter()
            .map(|id| match self.breaches.iter().find(|b| b.id == *id) {
                Some(b) => b.name.clone(),
                None => format!("#{id}"),
            })
            .collect();
        names.sort();
        names.dedup();
        names
    }

    /// The breaches whose data `repair` set aside, by name: to re-ingest.
    pub fn needing_reingest(&self) -> Vec<String> {
        let ids: Vec<u32> = self.set_aside.iter().flat_map(|s| s.segment.breaches.iter().copied()).collect();
        let mut names = self.breach_names(&ids);
        if self.set_aside.iter().any(|s| s.segment.kind.starts_with("hibp-")) {
            names.push("the Pwned Passwords import".into());
        }
        if self
            .set_aside
            .iter()
            .any(|s| s.segment.breaches.is_empty() && !s.segment.kind.starts_with("hibp-"))
        {
            names.push("unknown breaches".into());
        }
        names
    }
}
