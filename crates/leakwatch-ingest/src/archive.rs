//! Expanding a directory or an archive (zip, tar, tar.gz, 7z) into the dumps it
//! holds, each an [`Input`] named `archive.zip!path/in/archive.txt`.
//!
//! Stealer logs and combo collections are traded as archives of folders, often
//! archives of archives. Members are decompressed once into an anonymous
//! temporary file (the spool) and read back from there as slices, so every
//! member is an independent stream (zip and 7z members cannot be read side by
//! side otherwise), nested archives can be opened in place, and memory stays
//! bounded whatever the archive claims.
//!
//! Archives are hostile input: every byte decompressed, whether written to the
//! spool or read through to skip a member that is not a dump, is counted
//! against [`Limits`] (total bytes, ratio to the compressed size, entries,
//! nesting), and crossing one is an [`IngestError::Archive`] naming the archive
//! and the member, raised before the bytes are written.
//!
//! Members hold plaintext passwords, which never reach the disk: the spool is
//! encrypted (AES-256-CTR) under a key drawn for this expansion that lives only
//! in memory, so the file's bytes are noise to anyone who reads the disk, during
//! the ingest or after a crash.
//!
//! A folder walk never leaves the folder it was given: a symbolic link whose
//! target lies outside it (a link to the key ring, to `/etc`) is not followed.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

use aes::cipher::{KeyIvInit, StreamCipher, StreamCipherSeek};

use crate::input::RawInput;
use crate::{IngestError, Input};

/// AES-256 in counter mode with a 64-bit big-endian block counter: any byte
/// of the spool can be deciphered on its own, as members are read back at any
/// position.
type SpoolCtr = ctr::Ctr64BE<aes::Aes256>;

/// The spool's throwaway key: drawn when the spool is made, never stored.
struct SpoolKey {
    key: [u8; 32],
    nonce: [u8; 16],
}

impl SpoolKey {
    fn new() -> SpoolKey {
        use rand::Rng;
        let mut key = SpoolKey { key: [0; 32], nonce: [0; 16] };
        rand::rng().fill(&mut key.key);
        // The low half is the block counter.
        rand::rng().fill(&mut key.nonce[..8]);
        key
    }

    /// Enciphers or deciphers (the same operation) `buf`, which lies at byte
    /// `offset` of the spool.
    fn apply(&self, offset: u64, buf: &mut [u8]) {
        let mut ctr = SpoolCtr::new(&self.key.into(), &self.nonce.into());
        ctr.seek(offset);
        ctr.apply_keystream(buf);
    }
}

impl Drop for SpoolKey {
    fn drop(&mut self) {
        // Not a guarantee (copies may linger), but the key does not outlive its
        // spool in this memory.
        self.key.fill(0);
        std::hint::black_box(&self.key);
    }
}

/// The anonymous temporary file members are decompressed into, enciphered.
struct Spool {
    file: File,
    key: SpoolKey,
}

/// Bounds against archive bombs, for one top-level path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Decompressed bytes of all members together.
    pub max_total: u64,
    /// Decompressed bytes per compressed byte, for a member (zip) or a whole
    /// compressed stream (tar.gz, 7z); only checked past `ratio_floor` bytes.
    pub max_ratio: u64,
    /// Bytes a member may reach before its ratio is looked at: small files
    /// compress very well without being bombs.
    pub ratio_floor: u64,
    /// Entries (files and directories) of all archives together.
    pub max_entries: u64,
    /// Archives inside archives: 1 reads a top-level archive's members only.
    pub max_depth: u32,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_total: 64 << 30,
            max_ratio: 1_000,
            ratio_floor: 16 << 20,
            max_entries: 1_000_000,
            max_depth: 3,
        }
    }
}

/// Whether a member, by its name alone, is not a dump: media, binaries,
/// browser databases, and the parts of a stealer log that hold no credentials
/// (cookies, autofills, system information).
pub(crate) fn skipped_by_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    let mut parts = lower.split(['/', '\\']);
    let base = parts.next_back().unwrap_or_default();
    if lower
        .split(['/', '\\'])
        .any(|p| matches!(p, "cookies" | "autofills" | "autofill" | "screenshots" | "__macosx"))
    {
        return true;
    }
    let ext = base.rsplit_once('.').map_or("", |(_, e)| e);
    matches!(
        ext,
        "png"
            | "jpg"
            | "jpeg"
            | "gif"
            | "bmp"
            | "ico"
            | "webp"
            | "exe"
            | "dll"
            | "db"
            | "sqlite"
            | "sqlite3"
            | "ldb"
            | "pdf"
            | "lnk"
            | "url"
            | "ini"
    ) || base.contains("cookie")
        || matches!(base, "userinformation.txt" | "information.txt" | "desktop.ini" | "installedsoftware.txt")
        || (base.starts_with("system") && base.ends_with(".txt"))
}

/// Whether a member's first bytes show it is not text: images, SQLite
/// databases, executables.
pub(crate) fn skipped_by_content(head: &[u8]) -> bool {
    const MAGICS: &[&[u8]] =
        &[b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"SQLite format 3\0", b"MZ", b"\x7fELF", b"%PDF", b"BM"];
    MAGICS.iter().any(|m| head.starts_with(m))
}

/// What the first bytes of a file show it to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Zip,
    SevenZ,
    Tar,
    TarGz,
    Other,
}

fn sniff(head: &[u8], gz_head: impl FnOnce() -> Vec<u8>) -> Kind {
    if head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") {
        Kind::Zip
    } else if head.starts_with(b"7z\xbc\xaf\x27\x1c") {
        Kind::SevenZ
    } else if is_tar(head) {
        Kind::Tar
    } else if head.starts_with(&[0x1f, 0x8b]) && is_tar(&gz_head()) {
        Kind::TarGz
    } else {
        Kind::Other
    }
}

/// Whether `head` (a file's first bytes, 512 or all it has) begins an
/// archive: zip, 7z or tar (a gzipped tar is a gzip stream to this test).
pub(crate) fn is_archive(head: &[u8]) -> bool {
    sniff(head, Vec::new) != Kind::Other
}

fn is_tar(head: &[u8]) -> bool {
    head.get(257..262) == Some(b"ustar")
}

/// Where a [`Slice`] reads from: a file as it is, or the spool, deciphered.
enum Source {
    Plain(Arc<File>),
    Spool(Arc<Spool>),
}

/// A stretch of a file read with positioned reads, so that any number of them
/// can read the same file independently.
struct Slice {
    source: Source,
    start: u64,
    len: u64,
    pos: u64,
}

impl Read for Slice {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.len - self.pos;
        let want = (buf.len() as u64).min(left) as usize;
        if want == 0 {
            return Ok(0);
        }
        let at = self.start + self.pos;
        let n = match &self.source {
            Source::Plain(file) => file.read_at(&mut buf[..want], at)?,
            Source::Spool(spool) => {
                let n = spool.file.read_at(&mut buf[..want], at)?;
                spool.key.apply(at, &mut buf[..n]);
                n
            }
        };
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for Slice {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let pos = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos =
            pos.filter(|&p| p <= self.len).ok_or_else(|| io::Error::other("seek out of the member"))?;
        Ok(self.pos)
    }
}

/// The state of one expansion: the spool, the budget spent, the inputs found.
struct Expander {
    limits: Limits,
    spool: Option<Arc<Spool>>,
    /// Bytes written to the spool: where the next member starts.
    spooled: u64,
    /// Bytes decompressed in all, spooled or read through to skip a member:
    /// what the limits count.
    expanded: u64,
    entries: u64,
    inputs: Vec<Input>,
    /// The folder given, resolved: a walk follows no link out of it.
    root: Option<std::path::PathBuf>,
    /// Folders walked, resolved: a link back to one is not walked again.
    walked: std::collections::HashSet<std::path::PathBuf>,
}

impl Expander {
    fn new(limits: Limits) -> Expander {
        Expander {
            limits,
            spool: None,
            spooled: 0,
            expanded: 0,
            entries: 0,
            inputs: Vec::new(),
            root: None,
            walked: Default::default(),
        }
    }

    fn error(archive: &str, member: &str, detail: impl Into<String>) -> IngestError {
        IngestError::Archive { archive: archive.to_owned(), member: member.to_owned(), detail: detail.into() }
    }

    fn spool(&mut self) -> io::Result<Arc<Spool>> {
        if let Some(spool) = &self.spool {
            return Ok(spool.clone());
        }
        let spool = Arc::new(Spool { file: tempfile::tempfile()?, key: SpoolKey::new() });
        self.spool = Some(spool.clone());
        Ok(spool)
    }

    /// Counts `n` more decompressed bytes of `member` against the total and,
    /// for a member or stream whose compressed size `packed` is known (its
    /// decompressed bytes so far: `so_far`), against the ratio.
    fn count_bytes(
        &mut self,
        archive: &str,
        member: &str,
        n: u64,
        so_far: u64,
        packed: Option<u64>,
    ) -> Result<(), IngestError> {
        if self.expanded + n > self.limits.max_total {
            return Err(Self::error(
                archive,
                member,
                format!("archives expand to more than {} bytes in all", self.limits.max_total),
            ));
        }
        self.expanded += n;
        if let Some(packed) = packed {
            self.check_stream_ratio(archive, member, so_far, packed)?;
        }
        Ok(())
    }

    /// Reads a member that is not a dump through to its end without keeping
    /// it, counting its bytes like any other: a bomb hidden in a skipped member
    /// is still a bomb to decompress.
    fn skip(
        &mut self,
        archive: &str,
        member: &str,
        mut from: impl Read,
        stream: Option<(u64, u64)>,
    ) -> Result<(), IngestError> {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match from.read(&mut buf) {
                Ok(0) => return Ok(()),
                Ok(n) => n as u64,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Self::error(archive, member, e.to_string())),
            };
            let ratio = stream.map(|(start, packed)| (self.expanded + n - start, packed));
            self.count_bytes(archive, member, n, ratio.map_or(0, |r| r.0), ratio.map(|r| r.1))?;
        }
    }

    /// Counts an entry of `archive` against the entry limit.
    fn count_entry(&mut self, archive: &str, member: &str) -> Result<(), IngestError> {
        self.entries += 1;
        if self.entries > self.limits.max_entries {
            return Err(Self::error(
                archive,
                member,
                format!("more than {} entries", self.limits.max_entries),
            ));
        }
        Ok(())
    }

    /// Copies a member into the spool within the limits; `packed` is its
    /// compressed size when the archive says it. Returns where it lies.
    fn copy_in(
        &mut self,
        archive: &str,
        member: &str,
        mut from: impl Read,
        packed: Option<u64>,
    ) -> Result<(u64, u64), IngestError> {
        let spool = self.spool().map_err(|e| Self::error(archive, member, format!("temporary file: {e}")))?;
        let start = self.spooled;
        let mut buf = vec![0u8; 256 * 1024];
        let mut len = 0u64;
        loop {
            let n = match from.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n as u64,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Self::error(archive, member, e.to_string())),
            };
            len += n;
            self.count_bytes(archive, member, n, len, packed)?;
            let chunk = &mut buf[..n as usize];
            spool.key.apply(self.spooled, chunk);
            (&spool.file)
                .write_all(chunk)
                .map_err(|e| Self::error(archive, member, format!("temporary file: {e}")))?;
            self.spooled += n;
        }
        Ok((start, len))
    }

    /// Adds a member that was spooled at `start..start + len`: another archive
    /// to open (one level deeper), a dump to read, or something to skip.
    fn member(
        &mut self,
        name: &str,
        archive: &str,
        start: u64,
        len: u64,
        depth: u32,
    ) -> Result<(), IngestError> {
        let Some(spool) = self.spool.clone() else { return Ok(()) };
        let slice = |pos| Slice { source: Source::Spool(spool.clone()), start, len, pos };
        let mut head = vec![0u8; 512.min(len) as usize];
        slice(0).read_exact(&mut head).map_err(|e| Self::error(archive, name, e.to_string()))?;
        let kind = sniff(&head, || gz_head(slice(0)));
        if kind != Kind::Other {
            return self.archive(name, kind, slice(0), Some(len), depth + 1);
        }
        if skipped_by_content(&head) {
            return Ok(());
        }
        let raw = RawInput::from_reader(name.to_owned(), Some(len), Box::new(slice(0)))
            .map_err(|e| Self::error(archive, name, e.to_string()))?;
        self.inputs.push(Input { raw, columns: None });
        Ok(())
    }

    /// Reads the members of the archive `name` (at nesting `depth`, 1 for an
    /// archive given by path) into the spool.
    fn archive<R: Read + Seek>(
        &mut self,
        name: &str,
        kind: Kind,
        mut reader: R,
        packed: Option<u64>,
        depth: u32,
    ) -> Result<(), IngestError> {
        if depth > self.limits.max_depth {
            return Err(Self::error(
                name,
                "",
                format!("archives nested more than {} deep", self.limits.max_depth),
            ));
        }
        let bad = |e: &dyn std::fmt::Display| Self::error(name, "", e.to_string());
        // Members to read, in archive order: name and spooled location.
        let mut members: Vec<(String, u64, u64)> = Vec::new();
        match kind {
            Kind::Zip => {
                let mut zip = zip::ZipArchive::new(reader).map_err(|e| bad(&e))?;
                for i in 0..zip.len() {
                    let mut file = zip.by_index(i).map_err(|e| bad(&e))?;
                    let member = file.name().to_owned();
                    self.count_entry(name, &member)?;
                    if file.is_dir() || skipped_by_name(&member) {
                        continue;
                    }
                    let packed = file.compressed_size();
                    let (start, len) = self.copy_in(name, &member, &mut file, Some(packed))?;
                    members.push((member, start, len));
                }
            }
            Kind::Tar | Kind::TarGz => {
                reader.seek(SeekFrom::Start(0)).map_err(|e| bad(&e))?;
                let stream: Box<dyn Read> = if kind == Kind::TarGz {
                    Box::new(flate2::read::MultiGzDecoder::new(reader))
                } else {
                    Box::new(reader)
                };
                // The ratio of a compressed stream is the whole archive's.
                let start_total = self.expanded;
                let stream_packed = packed.filter(|_| kind == Kind::TarGz);
                let mut tar = tar::Archive::new(stream);
                for entry in tar.entries().map_err(|e| bad(&e))? {
                    let mut entry = entry.map_err(|e| bad(&e))?;
                    let member = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
                    self.count_entry(name, &member)?;
                    if !entry.header().entry_type().is_file() || skipped_by_name(&member) {
                        let stream = stream_packed.map(|p| (start_total, p));
                        self.skip(name, &member, &mut entry, stream)?;
                        continue;
                    }
                    let (start, len) = self.copy_in(name, &member, &mut entry, None)?;
                    if let Some(packed) = stream_packed {
                        self.check_stream_ratio(name, &member, self.expanded - start_total, packed)?;
                    }
                    members.push((member, start, len));
                }
            }
            Kind::SevenZ => {
                let mut seven = sevenz_rust2::ArchiveReader::new(reader, sevenz_rust2::Password::empty())
                    .map_err(|e| bad(&e))?;
                let start_total = self.expanded;
                let mut failure = None;
                let result = seven.for_each_entries(|entry, data| {
                    let member = entry.name().to_owned();
                    let step = (|| {
                        self.count_entry(name, &member)?;
                        if entry.is_directory() || skipped_by_name(&member) {
                            // Solid blocks are decoded through skipped members too:
                            // they count against the limits like any other bytes.
                            return self.skip(name, &member, data, packed.map(|p| (start_total, p)));
                        }
                        let (start, len) = self.copy_in(name, &member, data, None)?;
                        if let Some(packed) = packed {
                            self.check_stream_ratio(name, &member, self.expanded - start_total, packed)?;
                        }
                        members.push((member.clone(), start, len));
                        Ok(())
                    })();
                    match step {
                        Ok(()) => Ok(true),
                        Err(e) => {
                            failure = Some(e);
                            Ok(false)
                        }
                    }
                });
                if let Some(e) = failure {
                    return Err(e);
                }
                result.map_err(|e| bad(&e))?;
            }
            Kind::Other => {}
        }
        for (member, start, len) in members {
            self.member(&format!("{name}!{member}"), name, start, len, depth)?;
        }
        Ok(())
    }

    fn check_stream_ratio(
        &self,
        archive: &str,
        member: &str,
        out: u64,
        packed: u64,
    ) -> Result<(), IngestError> {
        if out > self.limits.ratio_floor && out > packed.saturating_mul(self.limits.max_ratio) {
            return Err(Self::error(
                archive,
                member,
                format!("expands more than {}x ({packed} bytes compressed)", self.limits.max_ratio),
            ));
        }
        Ok(())
    }

    /// Expands a path: a directory's files in name order, an archive's members,
    /// or the file itself.
    fn path(&mut self, path: &Path, dir_depth: u32) -> Result<(), IngestError> {
        let shown = path.display().to_string();
        let open_err = |source| IngestError::Open { path: shown.clone(), source };
        if dir_depth > 0 && std::fs::symlink_metadata(path).map_err(open_err)?.is_symlink() {
            let target = std::fs::canonicalize(path).map_err(open_err)?;
            if !self.root.as_ref().is_some_and(|root| target.starts_with(root)) {
                return Ok(());
            }
        }
        let meta = std::fs::metadata(path).map_err(open_err)?;
        if meta.is_dir() {
            let resolved = std::fs::canonicalize(path).map_err(open_err)?;
            if dir_depth == 0 {
                self.root = Some(resolved.clone());
            }
            if !self.walked.insert(resolved) {
                return Ok(());
            }
            if dir_depth > 16 {
                return Err(open_err(io::Error::other("directories nested more than 16 deep")));
            }
            let mut entries: Vec<_> = std::fs::read_dir(path)
                .map_err(open_err)?
                .map(|e| e.map(|e| e.path()))
                .collect::<Result<_, _>>()
                .map_err(open_err)?;
            entries.sort();
            for entry in entries {
                // Only the entry's own name: the folders above it were chosen
                // by the user.
                if skipped_by_name(&entry.file_name().unwrap_or_default().to_string_lossy()) {
                    continue;
                }
                self.path(&entry, dir_depth + 1)?;
            }
            return Ok(());
        }
        let file = File::open(path).map_err(open_err)?;
        let mut head = Vec::with_capacity(512);
        (&file).take(512).read_to_end(&mut head).map_err(open_err)?;
        let file = Arc::new(file);
        let whole = |pos| Slice { source: Source::Plain(file.clone()), start: 0, len: meta.len(), pos };
        let kind = sniff(&head, || gz_head(whole(0)));
        if kind != Kind::Other {
            return self.archive(&shown, kind, whole(0), Some(meta.len()), 1);
        }
        if dir_depth > 0 && skipped_by_content(&head) {
            return Ok(());
        }
        self.inputs.push(Input::open(&shown)?);
        Ok(())
    }
}

/// The first decompressed bytes of a gzip stream (fewer when it is short or broken).
fn gz_head(reader: impl Read) -> Vec<u8> {
    let mut head = Vec::with_capacity(512);
    let _ = flate2::read::GzDecoder::new(reader).take(512).read_to_end(&mut head);
    head
}

/// See [`Input::expand`].
pub(crate) fn expand(path: &str, limits: Limits) -> Result<Vec<Input>, IngestError> {
    if path == "-" {
        return Ok(vec![Input::open(path)?]);
    }
    let mut expander = Expander::new(limits);
    expander.path(Path::new(path), 0)?;
    Ok(expander.inputs)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the spool file holds on disk is ciphertext; what a member's slice
    /// reads back, at any position, is the plaintext.
    #[test]
    fn the_spool_holds_no_plaintext() {
        let mut expander = Expander::new(Limits::default());
        let plain = b"ann@mail.co:Hunter2-secret\n".repeat(10_000);
        let (_, pad) = expander.copy_in("a.zip", "x", &b"0123456789"[..], None).unwrap();
        let (start, len) = expander.copy_in("a.zip", "combo.txt", &plain[..], None).unwrap();
        assert_eq!((start, len), (pad, plain.len() as u64));
        let spool = expander.spool.clone().unwrap();
        let mut raw = Vec::new();
        (&spool.file).seek(SeekFrom::Start(0)).unwrap();
        (&spool.file).read_to_end(&mut raw).unwrap();
        assert_eq!(raw.len() as u64, start + len);
        assert!(!raw.windows(8).any(|w| w == b"Hunter2-"), "plaintext on disk");
        for at in [0, 1, 15, 16, 17, 4095, 100_003] {
            let mut slice = Slice { source: Source::Spool(spool.clone()), start, len, pos: at };
            let mut back = Vec::new();
            slice.read_to_end(&mut back).unwrap();
            assert_eq!(back, &plain[at as usize..], "from {at}");
        }
    }
}
