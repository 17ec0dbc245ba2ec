//! A read-only view of one manifest generation: the catalog plus every live
//! segment, mmapped. Lookups fan out over the segments of a kind and combine.
//!
//! A segment that does not open, or whose file is not what the manifest
//! records, does not stop the others: it is kept as damaged, and only lookups
//! over its kind fail, naming the breaches whose data it held. Damage found
//! while reading (a block checksum, a table out of order) fails the lookup the
//! same way: an answer is whole or it is an error.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;

use leakwatch_segment::{Kind, Segment, SegmentError, MAX_KEY_LEN};
use leakwatch_types::Account;

use crate::crypt::Keys;
use crate::dir::DataDir;
use crate::error::{Result, StoreError};
use crate::manifest::{Breach, Manifest, SegmentRef};

/// One generation of a data directory, open for lookups.
pub struct Store {
    manifest: Manifest,
    keys: Option<Keys>,
    segments: HashMap<Kind, Vec<Segment>>,
    /// The manifest's entry of each open segment, by its path.
    refs: HashMap<PathBuf, usize>,
    damaged: Vec<Damage>,
    breach_by_id: HashMap<u32, usize>,
}

/// A segment of the generation that is missing, does not open, or is not the
/// file the manifest records.
#[derive(Debug, Clone)]
pub struct Damage {
    /// The manifest's entry: kind, file, entries, bytes, breaches.
    pub segment: SegmentRef,
    pub path: PathBuf,
    /// What is wrong, without the path.
    pub problem: String,
}

impl Store {
    /// Opens the current generation. A directory without a manifest holds no
    /// store: that is an error ([`StoreError::NoStore`]), never an empty
    /// answer. A damaged segment does not fail the open (see the module).
    pub fn open(dir: &DataDir) -> Result<Store> {
        // A compaction may delete a file between our reading the manifest and
        // opening it; the manifest that replaced ours names its successor. One
        // still missing after that is damage.
        let mut attempts = 0;
        loop {
            match Store::open_once(dir, attempts >= 5) {
                Err(StoreError::Segment(leakwatch_segment::SegmentError::Io { source, .. }))
                    if source.kind() == std::io::ErrorKind::NotFound && attempts < 5 =>
                {
                    attempts += 1;
                }
                // A rekey may retire the key of the manifest we read just before
                // we read the key ring; the new manifest names the new key.
                Err(StoreError::Key(_)) if attempts < 2 && Store::key_changed(dir) => {
                    attempts += 1;
                }
                other => return other,
            }
        }
    }

    fn open_once(dir: &DataDir, missing_is_damage: bool) -> Result<Store> {
        dir.check_store()?;
        let manifest = dir.manifest()?.ok_or_else(|| dir.no_store())?;
        let keys = dir.keys(&manifest)?;
        let blinded = [Kind::Accounts, Kind::Domains, Kind::Stealer, Kind::StealerEmails].map(Kind::name);
        if keys.is_none() && manifest.segments.iter().any(|s| blinded.contains(&s.kind.as_str())) {
            return Err(StoreError::Invalid(format!(
                "{}: the index key is missing; without it the index cannot be read",
                dir.root().join("index.key").display()
            )));
        }
        let mut segments: HashMap<Kind, Vec<Segment>> = HashMap::new();
        let mut refs = HashMap::new();
        let mut damaged = Vec::new();
        for (n, s) in manifest.segments.iter().enumerate() {
            let kind = segment_kind(dir, s)?;
            match open_segment(dir, s, kind) {
                Ok(seg) => {
                    refs.insert(seg.path().to_owned(), n);
                    segments.entry(kind).or_default().push(seg);
                }
                Err(SegmentError::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::NotFound && !missing_is_damage =>
                {
                    return Err(StoreError::Segment(SegmentError::Io {
                        path: dir.storage().object_path(&s.file),
                        source,
                    }));
                }
                Err(e) => damaged.push(Damage {
                    segment: s.clone(),
                    path: dir.storage().object_path(&s.file),
                    problem: problem(&e),
                }),
            }
        }
        let breach_by_id = manifest.breaches.iter().enumerate().map(|(i, b)| (b.id, i)).collect();
        Ok(Store { manifest, keys, segments, refs, damaged, breach_by_id })
    }

    /// The segments of this generation that are damaged.
    pub fn damaged(&self) -> &[Damage] {
        &self.damaged
    }

    /// The manifest this generation was opened from.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The error of a lookup that needs the damaged segments of `kind`.
    fn damaged_kind(&self, kind: Kind, damage: &[&Damage]) -> StoreError {
        let breaches: Vec<u32> = damage.iter().flat_map(|d| d.segment.breaches.iter().copied()).collect();
        let mut detail = damage[0].problem.clone();
        if damage.len() > 1 {
            detail.push_str(&format!(", and {} more damaged {} segments", damage.len() - 1, kind.name()));
        }
        StoreError::Damaged {
            kind: kind.name().to_owned(),
            held: self.manifest.describe_held(kind.name(), &breaches),
            path: damage[0].path.clone(),
            detail,
        }
    }

    /// `r` of a read of `seg`, with damage found while reading named by what
    /// the segment held.
    pub(crate) fn read<T>(&self, seg: &Segment, r: Result<T, SegmentError>) -> Result<T> {
        r.map_err(|e| match e {
            SegmentError::DataCorruption { .. } => self.damaged_segment(seg, problem(&e)),
            other => StoreError::Segment(other),
        })
    }

    fn damaged_segment(&self, seg: &Segment, problem: String) -> StoreError {
        let breaches = match self.refs.get(seg.path()) {
            Some(&n) => self.manifest.segments[n].breaches.as_slice(),
            None => &[],
        };
        StoreError::Damaged {
            kind: seg.kind().name().to_owned(),
            held: self.manifest.describe_held(seg.kind().name(), breaches),
            path: seg.path().to_owned(),
            detail: problem,
        }
    }

    /// Whether the directory's manifest names another key than the one that
    /// failed: a reader racing a rekey tries again, a wrong key does not.
    fn key_changed(dir: &DataDir) -> bool {
        let before = dir.manifest().ok().flatten().and_then(|m| m.key_id);
        std::thread::sleep(std::time::Duration::from_millis(20));
        let now = dir.manifest().ok().flatten();
        now.as_ref().and_then(|m| m.key_id.clone()) != before || now.is_some_and(|m| dir.keys(&m).is_ok())
    }

    pub fn generation(&self) -> u64 {
        self.manifest.generation
    }

    /// The catalog, sorted by name.
    pub fn breaches(&self) -> Vec<&Breach> {
        let mut all: Vec<&Breach> = self.manifest.breaches.iter().collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }

    pub(crate) fn keys(&self) -> Option<&Keys> {
        self.keys.as_ref()
    }

    /// Opens a sealed payload of `seg`'s entry `i`; an entry that does not
    /// authenticate is an error, never a garbage answer.
    pub(crate) fn open_payload(&self, seg: &Segment, i: usize, out: &mut Vec<u8>) -> Result<u32> {
        let keys = self.keys.as_ref().expect("payload kinds need keys to be open");
        let (breach, stored) = self.read(seg, seg.payload(i))?;
        if !keys.open(&seg.key(i)[..16], breach, stored, out) {
            let problem = format!("entry {i} does not open with data key {}", keys.id().unwrap_or("-"));
            return Err(self.damaged_segment(seg, problem));
        }
        Ok(breach)
    }

    /// The segments of `kind`; an error naming the breaches whose data is
    /// damaged when any segment of the kind is.
    pub(crate) fn kind(&self, kind: Kind) -> Result<&[Segment]> {
        let damage: Vec<&Damage> = self.damaged.iter().filter(|d| d.segment.kind == kind.name()).collect();
        if !damage.is_empty() {
            return Err(self.damaged_kind(kind, &damage));
        }
        Ok(self.segments.get(&kind).map_or(&[], Vec::as_slice))
    }

    fn breach(&self, id: u32) -> Option<&Breach> {
        self.breach_by_id.get(&id).map(|&i| &self.manifest.breaches[i])
    }

    /// The breaches an account appears in, sorted by name.
    pub fn account_breaches(&self, account: &Account) -> Result<Vec<&Breach>> {
        let Some(keys) = &self.keys else { return Ok(Vec::new()) };
        let key = keys.account(account);
        let mut ids = BTreeSet::new();
        for seg in self.kind(Kind::Accounts)? {
            for i in self.read(seg, seg.find(&key))? {
                ids.insert(u32::from_le_bytes(seg.value(i).try_into().expect("4-byte breach id")));
            }
        }
        let mut found: Vec<&Breach> = ids.into_iter().filter_map(|id| self.breach(id)).collect();
        found.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(found)
    }

    /// Every alias of `domain` (normalized) with the names of its breaches, sorted:
    /// HIBP's breacheddomain shape.
    pub fn domain(&self, domain: &str) -> Result<BTreeMap<String, Vec<String>>> {
        let mut out: BTreeMap<String, BTreeSet<&str>> = BTreeMap::new();
        self.each_alias(domain, |alias, id| {
            if let Some(b) = self.breach(id) {
                out.entry(String::from_utf8_lossy(alias).into_owned()).or_default().insert(&b.name);
            }
        })?;
        Ok(out.into_iter().map(|(a, names)| (a, names.into_iter().map(str::to_owned).collect())).collect())
    }

    /// The aliases of `domain` (normalized) held for the breaches `wanted`
    /// accepts, sorted.
    pub(crate) fn domain_aliases(
        &self,
        domain: &str,
        wanted: impl Fn(u32) -> bool,
    ) -> Result<BTreeSet<String>> {
        let mut out = BTreeSet::new();
        self.each_alias(domain, |alias, id| {
            if wanted(id) {
                out.insert(String::from_utf8_lossy(alias).into_owned());
            }
        })?;
        Ok(out)
    }

    /// Calls `f` with every (alias, breach id) entry of `domain`'s.
    fn each_alias(&self, domain: &str, mut f: impl FnMut(&[u8], u32)) -> Result<()> {
        let Some(keys) = &self.keys else { return Ok(()) };
        let key = keys.domain(domain);
        let mut alias = Vec::with_capacity(80);
        for seg in self.kind(Kind::Domains)? {
            for i in self.read(seg, seg.find(&key))? {
                let id = self.open_payload(seg, i, &mut alias)?;
                f(&alias, id);
            }
        }
        Ok(())
    }

    /// How many (breach, account, password) triples of the organization's own
    /// dumps carry this SHA-1.
    pub fn sha1_count(&self, hash: &[u8; 20]) -> Result<u64> {
        self.count(Kind::Sha1Counts, hash)
    }

    /// How many (breach, account, password) triples carry this NTLM hash.
    pub fn ntlm_count(&self, hash: &[u8; 16]) -> Result<u64> {
        self.count(Kind::NtlmCounts, hash)
    }

    /// A password hash's counts in both corpora: the organization's own dumps and
    /// the imported Pwned Passwords. `hash` is a SHA-1, or with `ntlm` an NTLM hash.
    pub fn password_counts(&self, ntlm: bool, hash: &[u8]) -> Result<PasswordCounts> {
        let [own, hibp] = Kind::password_counts(ntlm);
        Ok(PasswordCounts { own: self.count(own, hash)?, hibp: self.count(hibp, hash)? })
    }

    /// What the manifest records of the current Pwned Passwords imports.
    pub fn pwned_passwords(&self) -> &std::collections::BTreeMap<String, crate::manifest::PwnedImport> {
        &self.manifest.pwned_passwords
    }

    fn count(&self, kind: Kind, key: &[u8]) -> Result<u64> {
        let mut total = 0;
        for seg in self.kind(kind)? {
            total += self.read(seg, seg.count_of(key))?;
        }
        Ok(total)
    }

    /// Every hash with the 20-bit `prefix` and its count, sorted and combined
    /// across segments: one Pwned Passwords range.
    pub fn range(&self, ntlm: bool, prefix: u32) -> Result<Vec<([u8; MAX_KEY_LEN], u64)>> {
        let mut all: BTreeMap<[u8; MAX_KEY_LEN], u64> = BTreeMap::new();
        let [own, hibp] = Kind::password_counts(ntlm);
        for seg in self.kind(own)?.iter().chain(self.kind(hibp)?) {
            for entry in self.read(seg, seg.range20_entries(prefix))? {
                let (key, count) = self.read(seg, entry)?;
                *all.entry(key).or_default() += count;
            }
        }
        Ok(all.into_iter().collect())
    }

    /// Counts and sizes, for `leakwatch stats`.
    pub fn stats(&self) -> Result<Stats> {
        let mut kinds = BTreeMap::new();
        for kind in Kind::ALL {
            let segs = self.kind(kind)?;
            kinds.insert(
                kind.name(),
                KindStats {
                    segments: segs.len(),
                    entries: segs.iter().map(Segment::len).sum(),
                    bytes: segs.iter().map(Segment::file_len).sum(),
                    distinct_keys: distinct_keys(self, segs)?,
                },
            );
        }
        Ok(Stats {
            generation: self.manifest.generation,
            breaches: self.manifest.breaches.len(),
            records: kinds["accounts"].entries,
            credentials: kinds["credentials"].entries + kinds["credential-keys"].entries,
            unique_accounts: kinds["accounts"].distinct_keys,
            unique_sha1: kinds["sha1"].distinct_keys,
            unique_ntlm: kinds["ntlm"].distinct_keys,
            kinds,
        })
    }

    /// Checks every block checksum of every open segment. Returns the number
    /// of segments checked and every damaged one: those that fail here, beside
    /// those found damaged on opening, by file name.
    pub fn verify(&self) -> (usize, Vec<Damage>) {
        let mut damage = self.damaged.clone();
        let mut checked = damage.len();
        for seg in self.segments.values().flatten() {
            checked += 1;
            if let Err(e) = seg.verify() {
                let n = self.refs[seg.path()];
                let segment = self.manifest.segments[n].clone();
                damage.push(Damage { segment, path: seg.path().to_owned(), problem: problem(&e) });
            }
        }
        damage.sort_by(|a, b| a.segment.file.cmp(&b.segment.file));
        (checked, damage)
    }
}

/// The kind a manifest entry names.
pub(crate) fn segment_kind(dir: &DataDir, s: &SegmentRef) -> Result<Kind> {
    Kind::ALL.into_iter().find(|k| k.name() == s.kind).ok_or_else(|| StoreError::DataCorruption {
        path: dir.storage().manifest_path(),
        detail: format!("unknown segment kind {:?}", s.kind),
    })
}

/// Opens the segment a manifest entry names and checks it is what the entry
/// records: its kind, its length and its entry count.
pub(crate) fn open_segment(dir: &DataDir, s: &SegmentRef, kind: Kind) -> Result<Segment, SegmentError> {
    let path = dir.storage().object_path(&s.file);
    let seg = dir.storage().open_segment(&s.file)?;
    let differs =
        |what: String| Err(SegmentError::DataCorruption { path: path.clone(), offset: 0, detail: what });
    if seg.kind() != kind {
        return differs(format!("holds {} entries, the manifest says {}", seg.kind().name(), kind.name()));
    }
    if seg.file_len() != s.bytes {
        return differs(format!("{} bytes long, the manifest records {}", seg.file_len(), s.bytes));
    }
    if seg.len() != s.entries {
        return differs(format!("holds {} entries, the manifest records {}", seg.len(), s.entries));
    }
    Ok(seg)
}

/// A segment error without the path (which the damage names on its own).
pub(crate) fn problem(e: &SegmentError) -> String {
    match e {
        SegmentError::DataCorruption { offset, detail, .. } => {
            format!("data corruption at offset {offset}: {detail}")
        }
        SegmentError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
            "the file is missing".into()
        }
        SegmentError::Io { source, .. } => source.to_string(),
        SegmentError::UnsupportedVersion { found, supported, .. } => {
            format!("unsupported segment format version {found} (this build reads {supported})")
        }
        other => other.to_string(),
    }
}

/// Distinct keys across sorted segments, by a k-way walk of their iterators.
fn distinct_keys(store: &Store, segments: &[Segment]) -> Result<u64> {
    let mut iters: Vec<_> = segments.iter().map(|s| s.iter()).collect();
    let mut heads: Vec<Option<[u8; MAX_KEY_LEN]>> = Vec::with_capacity(iters.len());
    for (s, it) in iters.iter_mut().enumerate() {
        heads.push(store.read(&segments[s], it.next().transpose())?.map(|(k, _)| k));
    }
    let mut distinct = 0;
    let mut last: Option<[u8; MAX_KEY_LEN]> = None;
    while let Some((i, key)) =
        heads.iter().enumerate().filter_map(|(i, h)| h.map(|k| (i, k))).min_by_key(|(_, k)| *k)
    {
        if last != Some(key) {
            distinct += 1;
            last = Some(key);
        }
        heads[i] = store.read(&segments[i], iters[i].next().transpose())?.map(|(k, _)| k);
    }
    Ok(distinct)
}

/// A password's counts, by where they come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct PasswordCounts {
    /// Distinct (breach, account, password) triples in the organization's dumps.
    pub own: u64,
    /// Pwned Passwords' count, from the current import.
    pub hibp: u64,
}

impl PasswordCounts {
    /// What the range API answers: the sum.
    pub fn total(&self) -> u64 {
        self.own.saturating_add(self.hibp)
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct KindStats {
    pub segments: usize,
    pub entries: u64,
    pub bytes: u64,
    pub distinct_keys: u64,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Stats {
    pub generation: u64,
    pub breaches: usize,
    /// (breach, account) pairs.
    pub records: u64,
    /// (breach, account, password) triples.
    pub credentials: u64,
    pub unique_accounts: u64,
    pub unique_sha1: u64,
    pub unique_ntlm: u64,
    pub kinds: BTreeMap<&'static str, KindStats>,
}
