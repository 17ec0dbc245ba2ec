//! A distributed ingest's local inputs, staged in the shared area in parts
//! that the jobs read while the rest is still being staged.
//!
//! An input staged whole keeps every worker idle until its upload ends: a
//! second for a 73 MB combo list over Garage on loopback, minutes for a
//! dump of many gigabytes. Staged in parts, the jobs are queued first and
//! each part is fetched as soon as it is put, so the upload and the jobs'
//! reading overlap.
//!
//! **One bundle per ingest.** Every local input goes into one stream, in
//! frames: an 8-byte head (the input's number, then the frame's length, both
//! u32 little-endian) and that many bytes; a frame of length 0 ends its
//! input. So a hundred small files are one or two objects, not a hundred
//! PUTs, GETs and DELETEs (on Garage, tens of milliseconds each).
//!
//! **Parts.** The bundle is cut into objects `ID/inputs/00000000`,
//! `ID/inputs/00000001`, ... of [`PART_SIZE`] bytes, the last one named with
//! `.last` (`ID/inputs/00000002.last`), shorter or empty: the last part's
//! name ends the bundle, with no marker of its own. Parts go up [`UPLOADS`]
//! at a time; one may land before the one below it, and a reader waits for
//! each in turn.

use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::sync_channel;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::error::{Result, StoreError};
use crate::storage::blobs::Blobs;

/// Bytes of the bundle in one part: small enough that the first one is up
/// soon after staging begins, large enough that a request's overhead stays
/// small beside its bytes (a 10 GB input compressed to half is 600 parts).
pub const PART_SIZE: usize = 8 << 20;

/// Parts put at once.
pub const UPLOADS: usize = 4;

/// The most bytes of an input in one frame.
const FRAME: usize = 1 << 20;

/// The longest a reader waits between two looks for a part still on its way.
const MAX_WAIT: Duration = Duration::from_millis(200);

fn part_name(folder: &str, part: u64, last: bool) -> String {
    format!("{folder}/{part:08}{}", if last { ".last" } else { "" })
}

/// An input to stage: its number among the ingest's inputs, its name for
/// errors, and its bytes (compressed as they are read, say).
pub struct ToStage<'a> {
    pub number: u32,
    pub name: String,
    pub from: Box<dyn Read + Send + 'a>,
}

/// Stages every input `inputs` yields, one after another, as the bundle
/// under `folder`; [`UPLOADS`] parts are put at once while the next ones are
/// read. Returns the input bytes staged. An input is opened only when the
/// one before it is read, so that many inputs do not hold as many files
/// open.
pub(super) fn put_bundle<'a>(
    blobs: &dyn Blobs,
    folder: &str,
    inputs: impl Iterator<Item = Result<ToStage<'a>>>,
) -> Result<u64> {
    let (tx, rx) = sync_channel::<(String, Vec<u8>)>(UPLOADS);
    let rx = Mutex::new(rx);
    let failed: Mutex<Option<StoreError>> = Mutex::new(None);
    let mut bundle = Framed { inputs, current: None, frame: Vec::new(), at: 0, staged: 0, error: None };
    let cut = std::thread::scope(|scope| {
        for _ in 0..UPLOADS {
            scope.spawn(|| loop {
                let next = rx.lock().expect("not poisoned").recv();
                let Ok((name, bytes)) = next else { return };
                if let Err(e) = blobs.put(&name, bytes) {
                    failed.lock().expect("not poisoned").get_or_insert(e);
                    return;
                }
            });
        }
        let cut = cut_parts(&mut bundle, folder, &tx, &failed);
        // The uploaders finish the parts queued, then stop.
        drop(tx);
        cut
    });
    // An input that failed, or a part that failed to go up, says more than
    // the bundle cut short.
    match (bundle.error, failed.into_inner().expect("not poisoned")) {
        (Some(e), _) | (None, Some(e)) => Err(e),
        (None, None) => cut.map(|()| bundle.staged),
    }
}

/// Cuts the bundle into parts and queues them for the uploaders, until an
/// uploader fails.
fn cut_parts(
    bundle: &mut impl Read,
    folder: &str,
    tx: &std::sync::mpsc::SyncSender<(String, Vec<u8>)>,
    failed: &Mutex<Option<StoreError>>,
) -> Result<()> {
    let mut buf = Vec::with_capacity(PART_SIZE + 1);
    for part in 0.. {
        // One byte beyond the part tells whether it is the last.
        let want = (PART_SIZE + 1 - buf.len()) as u64;
        bundle.by_ref().take(want).read_to_end(&mut buf).map_err(|e| StoreError::io(folder, e))?;
        let last = buf.len() <= PART_SIZE;
        let next = if last { Vec::with_capacity(0) } else { buf.split_off(PART_SIZE) };
        let sent = tx.send((part_name(folder, part, last), std::mem::replace(&mut buf, next)));
        // An uploader failed: its error is the one returned.
        if last || sent.is_err() || failed.lock().expect("not poisoned").is_some() {
            break;
        }
        buf.reserve(PART_SIZE + 1 - buf.len());
    }
    Ok(())
}

/// The bundle's bytes: each input in frames, as it is read.
struct Framed<'a, I> {
    inputs: I,
    current: Option<ToStage<'a>>,
    /// The frame being handed out, from `at`.
    frame: Vec<u8>,
    at: usize,
    /// Input bytes framed so far.
    staged: u64,
    /// Why the bundle stopped short (an input failed to open or read): the
    /// staging's error, with the input's name.
    error: Option<StoreError>,
}

impl<'a, I: Iterator<Item = Result<ToStage<'a>>>> Framed<'a, I> {
    /// Makes the next frame; false at the end of the bundle.
    fn next_frame(&mut self) -> Result<bool> {
        if self.current.is_none() {
            match self.inputs.next() {
                None => return Ok(false),
                Some(input) => self.current = Some(input?),
            }
        }
        let input = self.current.as_mut().expect("just set");
        self.frame.clear();
        self.frame.extend_from_slice(&[0; 8]);
        let n = input.from.by_ref().take(FRAME as u64).read_to_end(&mut self.frame);
        let n = n.map_err(|e| StoreError::io(&input.name, e))?;
        self.frame[..4].copy_from_slice(&input.number.to_le_bytes());
        self.frame[4..8].copy_from_slice(&(n as u32).to_le_bytes());
        self.staged += n as u64;
        self.at = 0;
        if n == 0 {
            self.current = None;
        }
        Ok(true)
    }
}

impl<'a, I: Iterator<Item = Result<ToStage<'a>>>> Read for Framed<'a, I> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.at == self.frame.len() {
            match self.next_frame() {
                Ok(true) => {}
                Ok(false) => return Ok(0),
                Err(e) => {
                    let message = e.to_string();
                    self.error = Some(e);
                    return Err(std::io::Error::other(message));
                }
            }
        }
        let n = buf.len().min(self.frame.len() - self.at);
        buf[..n].copy_from_slice(&self.frame[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// A job's reader of the bundle under a folder: its inputs in order, each
/// opened with [`Bundle::input`] once the one before it is read.
#[derive(Clone)]
pub(super) struct Bundle(Arc<Mutex<Unframed>>);

impl Bundle {
    /// The bundle under `folder`, read as it is staged, until `stop` is set
    /// (the job was given up: its ingest is over).
    pub(super) fn open(blobs: Arc<dyn Blobs>, folder: String, stop: Arc<AtomicBool>) -> Bundle {
        let parts = PartsReader { blobs, folder, stop, next: Some(0), part: None };
        Bundle(Arc::new(Mutex::new(Unframed { parts, input: None, left: 0, ended: false })))
    }

    /// Input `number`'s bytes. The inputs must be read in their order: an
    /// input read after a later one reads as missing.
    pub(super) fn input(&self, number: u32) -> BundledInput {
        BundledInput { bundle: self.clone(), number }
    }
}

/// Where a reader is in the bundle's frames.
struct Unframed {
    parts: PartsReader,
    /// The input of the frame last begun.
    input: Option<u32>,
    /// Its bytes not read yet.
    left: usize,
    /// Whether that input's last frame was read.
    ended: bool,
}

impl Unframed {
    fn read(&mut self, number: u32, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            if self.input == Some(number) && self.left > 0 {
                let want = buf.len().min(self.left);
                let n = self.parts.read(&mut buf[..want])?;
                if n == 0 && want > 0 {
                    return Err(self.damaged("ends inside a frame"));
                }
                self.left -= n;
                return Ok(n);
            }
            if self.input == Some(number) && self.ended {
                return Ok(0);
            }
            if self.input.is_some_and(|at| at > number) {
                return Err(self.damaged(&format!("input {number} was read after a later one")));
            }
            // The rest of an earlier input's frame (which its reader left,
            // its format read to an end of its own) is skipped.
            let left = self.left as u64;
            let skipped = std::io::copy(&mut self.parts.by_ref().take(left), &mut std::io::sink())?;
            if skipped < left {
                return Err(self.damaged("ends inside a frame"));
            }
            let mut head = [0u8; 8];
            match self.parts.read_exact(&mut head) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                    return Err(self.damaged(&format!("ends before input {number}")));
                }
                Err(e) => return Err(e),
            }
            let input = u32::from_le_bytes(head[..4].try_into().expect("4 bytes"));
            let len = u32::from_le_bytes(head[4..].try_into().expect("4 bytes")) as usize;
            if self.input.is_some_and(|at| input < at) || len > FRAME {
                return Err(self.damaged("holds a frame out of order"));
            }
            (self.input, self.left, self.ended) = (Some(input), len, len == 0);
            if input > number {
                return Err(self.damaged(&format!("holds no input {number}")));
            }
        }
    }

    fn damaged(&self, what: &str) -> std::io::Error {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "the inputs staged at {} are damaged: the bundle {what}",
                self.parts.blobs.location(&self.parts.folder)
            ),
        )
    }
}

/// One input of a [`Bundle`].
pub(super) struct BundledInput {
    bundle: Bundle,
    number: u32,
}

impl Read for BundledInput {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.bundle.0.lock().expect("not poisoned").read(self.number, buf)
    }
}

/// The bundle's bytes, part after part as they are put. A part still on its
/// way is waited for until the part named last is read, or until `stop` is
/// set. One part is fetched at a time, as it is read.
struct PartsReader {
    blobs: Arc<dyn Blobs>,
    folder: String,
    stop: Arc<AtomicBool>,
    /// The next part to open; `None` once the last one is open.
    next: Option<u64>,
    /// The part being read.
    part: Option<Box<dyn Read + Send>>,
}

impl PartsReader {
    /// The next part as it is fetched, waiting for it as long as staging
    /// goes on; `None` after the last.
    fn next_part(&mut self) -> std::io::Result<Option<Box<dyn Read + Send>>> {
        let Some(next) = self.next else { return Ok(None) };
        let mut wait = Duration::from_millis(5);
        loop {
            for last in [false, true] {
                let name = part_name(&self.folder, next, last);
                if let Some(part) = self.blobs.open_if_exists(&name).map_err(std::io::Error::other)? {
                    self.next = (!last).then_some(next + 1);
                    return Ok(Some(part));
                }
            }
            if self.stop.load(Ordering::Relaxed) {
                return Err(std::io::Error::other(format!(
                    "{}: the ingest staging it is over (its lease ran out): the job is given up",
                    self.blobs.location(&part_name(&self.folder, next, false))
                )));
            }
            std::thread::sleep(wait);
            wait = (wait * 2).min(MAX_WAIT);
        }
    }
}

impl Read for PartsReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            if let Some(part) = &mut self.part {
                let n = part.read(buf)?;
                if n > 0 || buf.is_empty() {
                    return Ok(n);
                }
            }
            match self.next_part()? {
                Some(part) => self.part = Some(part),
                None => return Ok(0),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::blobs::LocalBlobs;

    fn bytes(len: usize, seed: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + i / 251 + seed) as u8).collect()
    }

    fn to_stage<'a>(number: u32, from: impl Read + Send + 'a) -> Result<ToStage<'a>> {
        Ok(ToStage { number, name: format!("input {number}"), from: Box::new(from) })
    }

    fn local() -> (tempfile::TempDir, Arc<dyn Blobs>) {
        let tmp = tempfile::tempdir().unwrap();
        let blobs: Arc<dyn Blobs> = Arc::new(LocalBlobs::new(tmp.path()));
        (tmp, blobs)
    }

    fn go() -> Arc<AtomicBool> {
        Arc::new(AtomicBool::new(false))
    }

    fn read_input(bundle: &Bundle, number: u32) -> std::io::Result<Vec<u8>> {
        let mut out = Vec::new();
        bundle.input(number).read_to_end(&mut out)?;
        Ok(out)
    }

    /// Inputs of every length around a frame and a part read back byte for
    /// byte, in as many parts as the bundle needs (a hundred small inputs in
    /// one).
    #[test]
    fn inputs_read_back_as_staged_at_every_length() {
        let lengths = [0, 1, FRAME - 1, FRAME, FRAME + 1, PART_SIZE, 2 * PART_SIZE + 5, 3];
        let data: Vec<Vec<u8>> = lengths.iter().enumerate().map(|(n, &len)| bytes(len, n)).collect();
        let (_tmp, blobs) = local();
        let inputs = data.iter().enumerate().map(|(n, d)| to_stage(n as u32 * 2, &d[..]));
        let staged = put_bundle(&*blobs, "x/inputs", inputs).unwrap();
        assert_eq!(staged, lengths.iter().sum::<usize>() as u64);
        let parts = blobs.list("x/inputs").unwrap();
        let framed =
            staged as usize + 8 * (lengths.len() + lengths.iter().map(|l| l.div_ceil(FRAME)).sum::<usize>());
        assert_eq!(parts.len(), framed.div_ceil(PART_SIZE).max(1), "{parts:?}");
        assert!(parts.last().unwrap().ends_with(".last"));
        let bundle = Bundle::open(blobs.clone(), "x/inputs".into(), go());
        for (n, want) in data.iter().enumerate() {
            assert!(read_input(&bundle, n as u32 * 2).unwrap() == *want, "{} bytes", want.len());
        }

        let (_tmp, blobs) = local();
        let small: Vec<Vec<u8>> = (0..100).map(|n| bytes(700, n)).collect();
        put_bundle(&*blobs, "x/inputs", small.iter().enumerate().map(|(n, d)| to_stage(n as u32, &d[..])))
            .unwrap();
        assert_eq!(blobs.list("x/inputs").unwrap(), ["x/inputs/00000000.last"]);
        let bundle = Bundle::open(blobs.clone(), "x/inputs".into(), go());
        for (n, want) in small.iter().enumerate() {
            assert_eq!(read_input(&bundle, n as u32).unwrap(), *want);
        }
    }

    /// A reader that stops inside an input (a format read to an end of its
    /// own) leaves the rest to be skipped; an input skipped whole reads as
    /// nothing after; an input asked for after a later one is an error.
    #[test]
    fn inputs_left_early_are_skipped_and_order_is_kept() {
        let (_tmp, blobs) = local();
        let data: Vec<Vec<u8>> = (0..4).map(|n| bytes(FRAME + 10, n)).collect();
        put_bundle(&*blobs, "x/inputs", data.iter().enumerate().map(|(n, d)| to_stage(n as u32, &d[..])))
            .unwrap();
        let bundle = Bundle::open(blobs.clone(), "x/inputs".into(), go());
        let mut head = [0u8; 100];
        bundle.input(0).read_exact(&mut head).unwrap();
        assert_eq!(&head[..], &data[0][..100]);
        assert_eq!(read_input(&bundle, 2).unwrap(), data[2]);
        let err = read_input(&bundle, 1).unwrap_err().to_string();
        assert!(err.contains("input 1 was read after a later one"), "{err}");
        let err = read_input(&bundle, 9).unwrap_err().to_string();
        assert!(err.contains("ends before input 9"), "{err}");
    }

    /// A job reading while the parts are put gets every byte, in order, and
    /// ends exactly at the last part.
    #[test]
    fn a_reader_follows_the_staging() {
        let (_tmp, blobs) = local();
        let data = bytes(3 * PART_SIZE + 100, 1);
        let reader = {
            let bundle = Bundle::open(blobs.clone(), "x/inputs".into(), go());
            std::thread::spawn(move || (read_input(&bundle, 0), read_input(&bundle, 1)))
        };
        // Slowly, so that the reader waits for parts.
        let inputs = [to_stage(0, &b"small"[..]), to_stage(1, SlowReader { data: &data, at: 0 })];
        put_bundle(&*blobs, "x/inputs", inputs.into_iter()).unwrap();
        let (small, large) = reader.join().unwrap();
        assert_eq!(small.unwrap(), b"small");
        assert!(large.unwrap() == data);
    }

    struct SlowReader<'a> {
        data: &'a [u8],
        at: usize,
    }

    impl Read for SlowReader<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.at.is_multiple_of(PART_SIZE) {
                std::thread::sleep(Duration::from_millis(30));
            }
            let n = buf.len().min(self.data.len() - self.at).min(PART_SIZE - self.at % PART_SIZE);
            buf[..n].copy_from_slice(&self.data[self.at..self.at + n]);
            self.at += n;
            Ok(n)
        }
    }

    /// An input that cannot be read fails the staging, naming it.
    #[test]
    fn an_unreadable_input_fails_the_staging() {
        struct Broken;
        impl Read for Broken {
            fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
                Err(std::io::Error::other("disk gone"))
            }
        }
        let (_tmp, blobs) = local();
        let inputs = [to_stage(0, &b"fine"[..]), to_stage(1, Broken)];
        let err = put_bundle(&*blobs, "x/inputs", inputs.into_iter()).unwrap_err().to_string();
        assert!(err.contains("input 1") && err.contains("disk gone"), "{err}");
        let opening = [to_stage(0, &b"fine"[..]), Err(StoreError::Invalid("no such file".into()))];
        let err = put_bundle(&*blobs, "y/inputs", opening.into_iter()).unwrap_err().to_string();
        assert!(err.contains("no such file"), "{err}");
    }

    #[test]
    fn a_reader_gives_up_when_its_ingest_is_over() {
        let (_tmp, blobs) = local();
        let data = bytes(PART_SIZE + 1, 0);
        put_bundle(&*blobs, "x/inputs", [to_stage(0, &data[..])].into_iter()).unwrap();
        blobs.delete("x/inputs/00000001.last").unwrap();
        let stop = go();
        let reader = {
            let bundle = Bundle::open(blobs.clone(), "x/inputs".into(), stop.clone());
            std::thread::spawn(move || read_input(&bundle, 0))
        };
        std::thread::sleep(Duration::from_millis(100));
        assert!(!reader.is_finished(), "it waits for the next part");
        stop.store(true, Ordering::Relaxed);
        let err = reader.join().unwrap().unwrap_err().to_string();
        assert!(err.contains("00000001") && err.contains("the job is given up"), "{err}");
    }

    /// Damaged bundles are errors that say so, never a wait or a panic.
    #[test]
    fn a_damaged_bundle_is_an_error() {
        for (bytes, what) in [
            (&[1u8, 0, 0, 0, 5, 0, 0, 0, b'a'][..], "ends inside a frame"),
            (&[0u8, 0, 0, 0, 0, 0, 0xff, 0xff][..], "out of order"),
            (&[3u8, 0, 0, 0, 0, 0, 0, 0][..], "holds no input 1"),
            (&[1u8, 0][..], "ends before input 1"),
        ] {
            let (_tmp, blobs) = local();
            blobs.put("x/inputs/00000000.last", bytes.to_vec()).unwrap();
            let bundle = Bundle::open(blobs.clone(), "x/inputs".into(), go());
            let err = read_input(&bundle, 1).unwrap_err().to_string();
            assert!(err.contains("damaged") && err.contains(what), "{what}: {err}");
        }
    }
}
