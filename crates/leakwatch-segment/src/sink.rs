//! Where a segment's bytes go on their way to disk: straight to the device
//! (`O_DIRECT`) where the filesystem allows it, through the page cache
//! otherwise.
//!
//! A segment is written once, synced, and read later through an mmap, often
//! by another process: nothing reads it back while it is written. Through the
//! page cache every byte is copied into a freshly allocated page and written
//! out from there at the sync; straight to the device it is written from the
//! writer's own buffer. On a virtual machine whose freed memory goes back to
//! the host, fresh page-cache pages are the dearest memory there is: the 340 MB
//! of segments of `bench/ingest.sh`'s 3-million-line ingest cost about a fifth
//! of its CPU time written that way (perf), and about an eighth of that written
//! directly, the copy into the stage included.
//!
//! Direct writes must start at aligned file offsets, from aligned memory, in
//! whole blocks: the bytes are staged in an aligned buffer and only whole
//! blocks go out directly. The last partial block, and anything written after
//! the body (checksums, the header over its placeholder), go through the
//! ordinary handle, which the kernel keeps coherent with the direct one.

use std::fs::{File, OpenOptions};
use std::io::{self, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::mpsc;
use std::thread::JoinHandle;

/// The alignment of direct writes: file offsets, lengths and memory. 4096
/// covers the 512- and 4096-byte logical blocks of the devices in use.
const ALIGN: usize = 4096;
/// Blocks staged before they are written: large writes keep the device's
/// per-request cost small.
const STAGE_BLOCKS: usize = 256;

#[derive(Clone, Copy)]
#[repr(C, align(4096))]
struct Block([u8; ALIGN]);

/// A segment file being written, from its first byte.
pub(crate) struct Sink {
    /// The ordinary handle: every write when there is no direct one, and the
    /// last bytes of the file when there is.
    file: File,
    direct: Option<Direct>,
    /// Bytes written through `file` since writeback was last started.
    unflushed: usize,
}

/// Direct writing: the bytes staged, and a thread that writes staged blocks
/// out while the next ones fill (a direct write returns when the device has
/// the bytes; the writer does not wait for that).
struct Direct {
    stage: Box<[Block]>,
    len: usize,
    /// Where the stage's first byte belongs in the file.
    at: u64,
    /// To the thread; `None` once it is told to stop.
    to_disk: Option<mpsc::Sender<Staged>>,
    /// Stages the thread is done with.
    spare: mpsc::Receiver<Box<[Block]>>,
    /// `None` once joined.
    thread: Option<JoinHandle<io::Result<()>>>,
}

/// Blocks for the writing thread: the first `len` bytes of a stage, for
/// offset `at`.
struct Staged {
    stage: Box<[Block]>,
    len: usize,
    at: u64,
}

/// Bytes after which a buffered sink has the kernel start writing them to
/// disk: the sync before a segment is published then finds little left to do,
/// and the disk works while the CPU goes on instead of after it.
const WRITEBACK_STEP: usize = 8 << 20;

impl Sink {
    /// Creates (or truncates) the file at `path`; `direct` asks for direct
    /// writes, which fall back to buffered ones where the filesystem refuses
    /// them (tmpfs, some network filesystems).
    pub(crate) fn create(path: &Path, direct: bool) -> io::Result<Sink> {
        let file = File::create(path)?;
        let direct = match direct.then(|| open_direct(path)).flatten() {
            Some(direct_file) => Some(Direct::start(direct_file, file.try_clone()?)?),
            None => None,
        };
        Ok(Sink { file, direct, unflushed: 0 })
    }

    /// Whether bytes go to the device directly.
    #[cfg(test)]
    pub(crate) fn is_direct(&self) -> bool {
        self.direct.is_some()
    }

    /// Appends `bytes` to the file.
    pub(crate) fn write_all(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        if self.direct.is_none() {
            self.file.write_all(bytes)?;
            self.unflushed += bytes.len();
            if self.unflushed >= WRITEBACK_STEP {
                self.unflushed = 0;
                start_writeback(&self.file);
            }
            return Ok(());
        }
        let direct = self.direct.as_mut().expect("a direct sink");
        while !bytes.is_empty() {
            let len = direct.len;
            let take = bytes.len().min(STAGE_BLOCKS * ALIGN - len);
            copy_streaming(&mut bytes_mut(&mut direct.stage)[len..len + take], &bytes[..take]);
            direct.len += take;
            bytes = &bytes[take..];
            if direct.len == STAGE_BLOCKS * ALIGN {
                direct.hand_over()?;
            }
        }
        Ok(())
    }

    /// Writes out everything appended and returns the ordinary handle,
    /// positioned at the end of the file, for what follows the body.
    pub(crate) fn finish(mut self) -> io::Result<File> {
        if let Some(direct) = self.direct.take() {
            let (rest, at) = direct.finish()?;
            self.file.seek(SeekFrom::Start(at))?;
            self.file.write_all(&rest)?;
        }
        Ok(self.file)
    }
}

impl Direct {
    /// Starts the writing thread. `ordinary` is a handle on the same file for
    /// a filesystem that opens files for direct writes and then refuses them.
    fn start(direct: File, ordinary: File) -> io::Result<Direct> {
        let new_stage = || vec![Block([0; ALIGN]); STAGE_BLOCKS].into_boxed_slice();
        let (to_disk, staged) = mpsc::channel::<Staged>();
        let (give_back, spare) = mpsc::channel();
        // Two stages: one filling, one being written.
        give_back.send(new_stage()).expect("the receiver is here");
        let thread = std::thread::Builder::new().name("segment-write".into()).spawn(move || {
            let mut direct = Some(direct);
            for Staged { stage, len, at } in staged {
                let blocks = &bytes(&stage)[..len];
                match direct.as_ref().map(|file| write_all_at(file, blocks, at)) {
                    Some(Ok(())) => {}
                    Some(Err(e)) if e.raw_os_error() == Some(libc::EINVAL) => {
                        // Refused (alignment rules stricter than ours): these
                        // bytes and the rest go through the page cache.
                        direct = None;
                        write_all_at(&ordinary, blocks, at)?;
                    }
                    Some(Err(e)) => return Err(e),
                    None => write_all_at(&ordinary, blocks, at)?,
                }
                // The writer may be finishing and gone: the stage is not needed then.
                let _ = give_back.send(stage);
            }
            Ok(())
        })?;
        Ok(Direct { stage: new_stage(), len: 0, at: 0, to_disk: Some(to_disk), spare, thread: Some(thread) })
    }

    /// Hands the full stage to the thread and takes a free one.
    fn hand_over(&mut self) -> io::Result<()> {
        streamed_fence();
        let Ok(next) = self.spare.recv() else { return Err(self.stop()) };
        let stage = std::mem::replace(&mut self.stage, next);
        let len = std::mem::take(&mut self.len);
        self.send(Staged { stage, len, at: self.at })?;
        self.at += len as u64;
        Ok(())
    }

    fn send(&mut self, staged: Staged) -> io::Result<()> {
        match self.to_disk.as_ref().map(|to_disk| to_disk.send(staged)) {
            Some(Ok(())) => Ok(()),
            _ => Err(self.stop()),
        }
    }

    /// Tells the thread to stop once it has written what it was sent, waits
    /// for it, and returns its error (or one saying that it stopped early).
    fn stop(&mut self) -> io::Error {
        self.to_disk = None;
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(Err(e))) => e,
            Some(Err(_)) => io::Error::other("the segment writing thread panicked"),
            Some(Ok(Ok(()))) | None => io::Error::other("the segment writing thread stopped early"),
        }
    }

    /// Writes the staged whole blocks, waits for the thread, and returns the
    /// bytes of the last partial block with their offset.
    fn finish(mut self) -> io::Result<(Vec<u8>, u64)> {
        streamed_fence();
        let whole = self.len / ALIGN * ALIGN;
        let rest = bytes(&self.stage)[whole..self.len].to_vec();
        let rest_at = self.at + whole as u64;
        if whole > 0 {
            let stage = std::mem::replace(&mut self.stage, Box::new([]));
            self.send(Staged { stage, len: whole, at: self.at })?;
        }
        self.to_disk = None;
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(result)) => result?,
            Some(Err(_)) => return Err(io::Error::other("the segment writing thread panicked")),
            None => return Err(io::Error::other("the segment writing thread stopped early")),
        }
        Ok((rest, rest_at))
    }
}

/// Copies `src` into `dst` (of the same length) past the cache where the CPU
/// can: staged bytes are read next by the device, not by the CPU. An ordinary
/// copy first reads each line of a stage the device has just read into the
/// cache, at a cost that swings with the device's timing (up to ten times
/// the streamed copy's in `bench/ingest.sh`, under perf); streaming stores
/// read nothing and cost the same every run.
fn copy_streaming(dst: &mut [u8], src: &[u8]) {
    debug_assert_eq!(dst.len(), src.len());
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{__m128i, _mm_loadu_si128, _mm_stream_si128};
        let head = dst.as_ptr().align_offset(16).min(dst.len());
        dst[..head].copy_from_slice(&src[..head]);
        let body = (dst.len() - head) / 16;
        // SAFETY: `body` 16-byte units from `head` lie within both slices
        // (equal lengths), `dst`'s from an address aligned to 16 as the
        // streaming store requires; SSE2 is part of x86_64.
        unsafe {
            let d = dst.as_mut_ptr().add(head).cast::<__m128i>();
            let s = src.as_ptr().add(head).cast::<__m128i>();
            for i in 0..body {
                _mm_stream_si128(d.add(i), _mm_loadu_si128(s.add(i)));
            }
        }
        let done = head + body * 16;
        dst[done..].copy_from_slice(&src[done..]);
    }
    #[cfg(not(target_arch = "x86_64"))]
    dst.copy_from_slice(src);
}

/// Orders the streaming stores before the stage is handed on.
fn streamed_fence() {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: SSE is part of x86_64.
    unsafe {
        std::arch::x86_64::_mm_sfence();
    }
}

/// The staged blocks as bytes.
fn bytes(stage: &[Block]) -> &[u8] {
    // SAFETY: `Block` is `repr(C)` around a byte array with no padding (its
    // size equals its alignment), so the blocks are one contiguous run of
    // initialized bytes, borrowed for as long as `stage` is.
    unsafe { std::slice::from_raw_parts(stage.as_ptr().cast::<u8>(), std::mem::size_of_val(stage)) }
}

fn bytes_mut(stage: &mut [Block]) -> &mut [u8] {
    // SAFETY: as in `bytes`, borrowed mutably; every byte pattern is a valid `Block`.
    unsafe { std::slice::from_raw_parts_mut(stage.as_mut_ptr().cast::<u8>(), std::mem::size_of_val(stage)) }
}

#[cfg(target_os = "linux")]
fn open_direct(path: &Path) -> Option<File> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new().write(true).custom_flags(libc::O_DIRECT).open(path).ok()
}

#[cfg(not(target_os = "linux"))]
fn open_direct(_path: &Path) -> Option<File> {
    None
}

#[cfg(unix)]
fn write_all_at(file: &File, bytes: &[u8], at: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(file, bytes, at)
}

#[cfg(not(unix))]
fn write_all_at(_file: &File, _bytes: &[u8], _at: u64) -> io::Result<()> {
    unreachable!("direct writes are opened on Linux only")
}

/// Starts writing the file's dirty pages to disk without waiting for them (a
/// hint: durability still comes from the sync before publishing).
#[cfg(target_os = "linux")]
fn start_writeback(file: &File) {
    use std::os::fd::AsRawFd;
    // SAFETY: a plain syscall on a descriptor `file` keeps open; offset 0 and
    // length 0 mean the whole file.
    unsafe {
        libc::sync_file_range(file.as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WRITE);
    }
}

#[cfg(not(target_os = "linux"))]
fn start_writeback(_file: &File) {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + i / 4093) as u8).collect()
    }

    /// Writes `pieces` of `data`, then a tail after `finish`, and reads the file back.
    fn round_trip(direct: bool, data: &[u8], piece: usize) -> (bool, Vec<u8>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seg");
        let mut sink = Sink::create(&path, direct).unwrap();
        let was_direct = sink.is_direct();
        for chunk in data.chunks(piece) {
            sink.write_all(chunk).unwrap();
        }
        let mut file = sink.finish().unwrap();
        file.write_all(b"tail").unwrap();
        file.seek(SeekFrom::Start(0)).unwrap();
        file.write_all(b"HEAD").unwrap();
        drop(file);
        let mut back = Vec::new();
        File::open(&path).unwrap().read_to_end(&mut back).unwrap();
        (was_direct, back)
    }

    #[test]
    fn direct_and_buffered_sinks_write_the_same_bytes() {
        for len in [0, 5, ALIGN - 1, ALIGN, ALIGN + 1, STAGE_BLOCKS * ALIGN, 3 * STAGE_BLOCKS * ALIGN + 777] {
            let data = pattern(len);
            let mut want = data.clone();
            want.extend_from_slice(b"tail");
            want[..4].copy_from_slice(b"HEAD");
            for piece in [1, 100, 65536, 1 << 22] {
                if len > 100_000 && piece == 1 {
                    continue;
                }
                for direct in [false, true] {
                    let (_, back) = round_trip(direct, &data, piece);
                    assert_eq!(back.len(), want.len(), "len {len}, piece {piece}, direct {direct}");
                    assert!(back == want, "len {len}, piece {piece}, direct {direct}");
                }
            }
        }
    }

    #[test]
    fn a_streaming_copy_copies_at_any_offset_and_length() {
        let src: Vec<u8> = (0..300u32).map(|i| (i * 7 + 3) as u8).collect();
        for at in 0..20 {
            for len in [0, 1, 15, 16, 17, 33, 64, 200, 280] {
                let mut dst = vec![0xAAu8; 300];
                copy_streaming(&mut dst[at..at + len], &src[at..at + len]);
                streamed_fence();
                assert_eq!(&dst[at..at + len], &src[at..at + len], "at {at}, len {len}");
                assert!(dst[..at].iter().chain(&dst[at + len..]).all(|&b| b == 0xAA), "at {at}, len {len}");
            }
        }
    }
}
