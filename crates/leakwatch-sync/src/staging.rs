//! The staging directory of one corpus: the range bodies as received, the ETags
//! they were received with, and the journal of the run in progress.
//!
//! ```text
//! DATA/sync/sha1/            (or ntlm/)
//!   LOCK       held (flock) by the one sync of this corpus running
//!   ranges/    PREFIX.txt: each range body as received and verified
//!   etags      the ETag of every file in ranges/ as of the last published run
//!   journal    while a run is in progress: one `PREFIX ETAG` line per range done
//! ```
//!
//! Both `etags` and `journal` open with a header naming the source (upstream URL
//! and prefix space), and are ignored when it differs: an ETag only means
//! something to the server that issued it.
//!
//! A range's file is renamed into place before its journal line is written, so
//! a run killed at any point leaves at worst a range fetched again, never a
//! range marked done whose body is missing. The journal is removed only once
//! the run is published, so a failed publication is retried by the next run
//! without fetching anything.

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use leakwatch_store::DataDir;

use crate::error::{Result, SyncError};

const HEADER: &str = "leakwatch-sync 1";
/// Journal lines buffered before they are written out; a killed run fetches at
/// most this many ranges again.
const JOURNAL_BATCH: usize = 256;

pub struct Staging {
    root: PathBuf,
    ranges: PathBuf,
    source: String,
    _lock: File,
}

/// What a run starts from.
pub struct Start {
    /// The ETag held for each prefix whose body is staged.
    pub etags: Vec<Option<Box<str>>>,
    /// Prefixes already done earlier in this run (an interrupted one).
    pub done: Vec<bool>,
    /// Whether a previous run was published from this staging directory.
    pub published_before: bool,
}

impl Staging {
    /// Opens (creating) the staging directory of the SHA-1 or NTLM corpus and
    /// takes its lock. `source` identifies the upstream and prefix space.
    pub fn open(dir: &DataDir, ntlm: bool, source: String) -> Result<Staging> {
        let root = dir.root().join("sync").join(if ntlm { "ntlm" } else { "sha1" });
        let ranges = root.join("ranges");
        fs::create_dir_all(&ranges).map_err(|e| SyncError::io(&ranges, e))?;
        let lock_path = root.join("LOCK");
        let lock = File::create(&lock_path).map_err(|e| SyncError::io(&lock_path, e))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => return Err(SyncError::Locked { path: root }),
            Err(fs::TryLockError::Error(e)) => return Err(SyncError::io(lock_path, e)),
        }
        Ok(Staging { root, ranges, source, _lock: lock })
    }

    pub fn ranges(&self) -> &Path {
        &self.ranges
    }

    fn header(&self) -> String {
        format!("{HEADER} {}", self.source)
    }

    /// Reads the published ETags and the journal of an interrupted run, keeping
    /// only ETags whose body is actually staged.
    pub fn start(&self, space: u32) -> Result<Start> {
        let mut present = vec![false; space as usize];
        for entry in fs::read_dir(&self.ranges).map_err(|e| SyncError::io(&self.ranges, e))? {
            let entry = entry.map_err(|e| SyncError::io(&self.ranges, e))?;
            let name = entry.file_name();
            if let Some(prefix) = name.to_str().and_then(|n| n.strip_suffix(".txt")).and_then(parse_prefix) {
                if let Some(slot) = present.get_mut(prefix as usize) {
                    *slot = true;
                }
            }
        }
        let mut etags: Vec<Option<Box<str>>> = vec![None; space as usize];
        let published_before = self.read_lines(&self.root.join("etags"), &mut |prefix, etag| {
            if let Some(slot) = etags.get_mut(prefix as usize) {
                *slot = etag.map(Into::into);
            }
        })?;
        let mut done = vec![false; space as usize];
        self.read_lines(&self.root.join("journal"), &mut |prefix, etag| {
            if let Some(slot) = done.get_mut(prefix as usize) {
                *slot = true;
                etags[prefix as usize] = etag.map(Into::into);
            }
        })?;
        for (prefix, here) in present.iter().enumerate() {
            if !here {
                etags[prefix] = None;
                done[prefix] = false;
            }
        }
        Ok(Start { etags, done, published_before })
    }

    /// Calls `each` with every `PREFIX ETAG` line of `path` (`-` for no ETag).
    /// Returns false, reading nothing, when the file is missing or its header
    /// names another source. A torn last line (a killed run) is skipped.
    fn read_lines(&self, path: &Path, each: &mut dyn FnMut(u32, Option<&str>)) -> Result<bool> {
        let file = match File::open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(SyncError::io(path, e)),
        };
        let mut lines = BufReader::new(file).lines();
        match lines.next() {
            Some(Ok(header)) if header == self.header() => {}
            Some(Err(e)) => return Err(SyncError::io(path, e)),
            _ => return Ok(false),
        }
        for line in lines {
            let line = line.map_err(|e| SyncError::io(path, e))?;
            let Some((prefix, etag)) = line.split_once(' ') else { continue };
            let Some(prefix) = parse_prefix(prefix) else { continue };
            each(prefix, (etag != "-").then_some(etag));
        }
        Ok(true)
    }

    /// Starts or continues the journal of the current run.
    pub fn journal(&self, resuming: bool) -> Result<Journal> {
        let path = self.root.join("journal");
        let mut options = OpenOptions::new();
        if resuming {
            options.append(true);
        } else {
            options.write(true).create(true).truncate(true);
        }
        let file = options.open(&path).map_err(|e| SyncError::io(&path, e))?;
        let mut journal = Journal { out: BufWriter::new(file), path, pending: 0 };
        // A resumed journal may end in a line torn by the kill: start afresh on
        // a line of its own (an empty line reads as nothing).
        let first = if resuming { String::new() } else { self.header() };
        writeln!(journal.out, "{first}").map_err(|e| SyncError::io(&journal.path, e))?;
        journal.flush()?;
        Ok(journal)
    }

    /// Whether the staged body of `prefix` is exactly `body`.
    pub fn same_body(&self, prefix: u32, body: &[u8]) -> bool {
        let path = self.ranges.join(file_name(prefix));
        fs::metadata(&path).is_ok_and(|m| m.len() == body.len() as u64)
            && fs::read(&path).is_ok_and(|old| old == body)
    }

    /// Writes the body of `prefix` in place of the staged one (tmp + rename, so
    /// a reader or a killed run never sees half a body).
    pub fn commit(&self, prefix: u32, body: &[u8]) -> Result<()> {
        let path = self.ranges.join(file_name(prefix));
        let tmp = self.ranges.join(format!(".{prefix:05X}.tmp"));
        fs::write(&tmp, body).map_err(|e| SyncError::io(&tmp, e))?;
        fs::rename(&tmp, &path).map_err(|e| SyncError::io(&path, e))
    }

    /// Records the ETags of a published run (tmp + fsync + rename), then ends
    /// the run by removing its journal.
    pub fn finish(&self, etags: &[Option<Box<str>>]) -> Result<()> {
        let path = self.root.join("etags");
        let tmp = self.root.join("etags.tmp");
        let write = || -> std::io::Result<()> {
            let mut out = BufWriter::new(File::create(&tmp)?);
            writeln!(out, "{}", self.header())?;
            for (prefix, etag) in etags.iter().enumerate() {
                if let Some(etag) = etag {
                    writeln!(out, "{prefix:05X} {etag}")?;
                }
            }
            out.into_inner().map_err(|e| e.into_error())?.sync_all()
        };
        write().map_err(|e| SyncError::io(&tmp, e))?;
        fs::rename(&tmp, &path).map_err(|e| SyncError::io(&path, e))?;
        let journal = self.root.join("journal");
        match fs::remove_file(&journal) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(SyncError::io(journal, e)),
            _ => Ok(()),
        }
    }
}

/// The journal of the run in progress.
pub struct Journal {
    out: BufWriter<File>,
    path: PathBuf,
    pending: usize,
}

impl Journal {
    /// Marks `prefix` done with its ETag (called after its body is in place).
    pub fn record(&mut self, prefix: u32, etag: Option<&str>) -> Result<()> {
        writeln!(self.out, "{prefix:05X} {}", etag.unwrap_or("-"))
            .map_err(|e| SyncError::io(&self.path, e))?;
        self.pending += 1;
        if self.pending >= JOURNAL_BATCH {
            self.flush()?;
        }
        Ok(())
    }

    pub fn flush(&mut self) -> Result<()> {
        self.pending = 0;
        self.out.flush().map_err(|e| SyncError::io(&self.path, e))
    }
}

pub fn file_name(prefix: u32) -> String {
    format!("{prefix:05X}.txt")
}

fn parse_prefix(text: &str) -> Option<u32> {
    (text.len() == 5 && text.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| u32::from_str_radix(text, 16).ok())
        .flatten()
}

/// Whether an ETag can be stored on one journal line and sent back verbatim.
pub fn storable_etag(etag: &str) -> bool {
    !etag.is_empty() && etag != "-" && etag.bytes().all(|b| b.is_ascii_graphic())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn staging(root: &Path, source: &str) -> Staging {
        Staging::open(&DataDir::new(root), false, source.to_owned()).unwrap()
    }

    #[test]
    fn a_torn_journal_line_is_harmless() {
        let tmp = tempfile::tempdir().unwrap();
        let s = staging(tmp.path(), "http://up 4");
        let mut journal = s.journal(false).unwrap();
        for prefix in 0..4 {
            s.commit(prefix, b"").unwrap();
        }
        journal.record(0, Some("\"a\"")).unwrap();
        journal.record(1, None).unwrap();
        journal.flush().unwrap();
        drop(journal);
        // A run killed while writing the line of range 2.
        let path = tmp.path().join("sync/sha1/journal");
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(b"00002 \"b").unwrap();

        let start = s.start(16).unwrap();
        assert_eq!(&start.done[..4], [true, true, true, false]);
        assert_eq!(start.etags[0].as_deref(), Some("\"a\""));
        assert!(!start.published_before);
        let mut journal = s.journal(true).unwrap();
        journal.record(3, Some("\"d\"")).unwrap();
        journal.flush().unwrap();
        let start = s.start(16).unwrap();
        assert_eq!(&start.done[..5], [true, true, true, true, false]);
        assert_eq!(start.etags[3].as_deref(), Some("\"d\""));

        // Published: the journal goes, the ETags stay, for this source only.
        s.finish(&start.etags).unwrap();
        assert!(!path.exists());
        let start = s.start(16).unwrap();
        assert!(start.published_before && !start.done[0]);
        assert_eq!(start.etags[3].as_deref(), Some("\"d\""));
        drop(s);
        let other = staging(tmp.path(), "http://elsewhere 4");
        let start = other.start(16).unwrap();
        assert!(!start.published_before && start.etags.iter().all(Option::is_none));
    }

    #[test]
    fn a_second_sync_of_the_same_corpus_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let _first = staging(tmp.path(), "http://up 20");
        let second = Staging::open(&DataDir::new(tmp.path()), false, "http://up 20".into());
        assert!(matches!(second, Err(SyncError::Locked { .. })));
    }
}
