//! Opening an input as it was traded: a file or stdin, plain or compressed.
//!
//! Compression is recognized by magic bytes, never by file name, because dumps are
//! renamed freely (`combo.txt` that is really gzip is common). The magic is read
//! into a small prefix that is put back in front of the stream, so stdin works the
//! same as a file. Progress is counted on the raw (compressed) bytes, the only
//! total that is known in advance.

use std::io::{self, Read};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::IngestError;

const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];

/// How the raw bytes of an input are compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    /// Recognizes a compression by the first bytes of a stream.
    pub(crate) fn sniff(prefix: &[u8]) -> Compression {
        if prefix.starts_with(ZSTD_MAGIC) {
            Compression::Zstd
        } else if prefix.starts_with(GZIP_MAGIC) {
            Compression::Gzip
        } else {
            Compression::None
        }
    }
}

/// Whether an input's first bytes (512 of them, or all it has) show it plain:
/// neither compressed nor an archive. A plain input can be read as a stream,
/// and made smaller by compressing it.
pub fn is_plain(head: &[u8]) -> bool {
    !head.starts_with(GZIP_MAGIC) && !head.starts_with(ZSTD_MAGIC) && !crate::archive::is_archive(head)
}

/// Whether `stream`'s first bytes show it plain ([`is_plain`]), and the
/// same stream from its start: a plain dump can be read as it comes, a
/// compressed one or an archive is saved to a file first (its reader needs
/// one), without reading its start twice.
pub fn sniff_plain(mut stream: Box<dyn Read + Send>) -> std::io::Result<(bool, Box<dyn Read + Send>)> {
    let mut head = Vec::with_capacity(512);
    (&mut stream).take(512).read_to_end(&mut head)?;
    Ok((is_plain(&head), Box::new(std::io::Cursor::new(head).chain(stream))))
}

/// The raw byte stream of an input with its magic prefix already read and put back.
pub(crate) struct RawInput {
    pub(crate) name: String,
    pub(crate) len: Option<u64>,
    pub(crate) compression: Compression,
    pub(crate) reader: Box<dyn Read + Send>,
}

impl RawInput {
    /// Opens `path` (`-` is stdin) and sniffs its compression.
    pub(crate) fn open(path: &str) -> Result<RawInput, IngestError> {
        let open_err = |source| IngestError::Open { path: display_name(path).to_owned(), source };
        let (reader, len): (Box<dyn Read + Send>, Option<u64>) = if path == "-" {
            (Box::new(io::stdin()), None)
        } else {
            let file = std::fs::File::open(path).map_err(open_err)?;
            let meta = file.metadata().map_err(open_err)?;
            if meta.is_dir() {
                return Err(open_err(io::Error::other("is a directory")));
            }
            (Box::new(file), Some(meta.len()))
        };
        RawInput::from_reader(display_name(path).to_owned(), len, reader).map_err(open_err)
    }

    /// Wraps an already open stream (used by `open` and by tests).
    pub(crate) fn from_reader(
        name: String,
        len: Option<u64>,
        mut reader: Box<dyn Read + Send>,
    ) -> io::Result<RawInput> {
        let mut prefix = [0u8; 4];
        let filled = read_head(&mut reader, &mut prefix)?;
        let compression = Compression::sniff(&prefix[..filled]);
        let reader = Box::new(io::Cursor::new(prefix[..filled].to_vec()).chain(reader));
        Ok(RawInput { name, len, compression, reader })
    }

    /// The decompressed stream, counting raw bytes into `progress` as they are read.
    pub(crate) fn decoded<'a>(self, progress: &'a AtomicU64) -> io::Result<Box<dyn Read + 'a>> {
        let counted = CountingReader { inner: self.reader, progress };
        Ok(match self.compression {
            Compression::None => Box::new(counted),
            // Multi-member gzip (`cat a.gz b.gz`) is a valid gzip file: read all members.
            Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(counted)),
            Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(counted)?),
        })
    }
}

/// The name of `path` in messages.
pub(crate) fn display_name(path: &str) -> &str {
    if path == "-" {
        "<stdin>"
    } else {
        path
    }
}

/// Adds the number of bytes read to a shared counter.
struct CountingReader<'a, R> {
    inner: R,
    progress: &'a AtomicU64,
}

impl<R: Read> Read for CountingReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Fills `head` from `reader` as far as the stream goes and returns how many
/// bytes it got: a pipe may deliver fewer bytes than asked for, so one `read`
/// is not enough to see a magic number or a BOM.
pub(crate) fn read_head(reader: &mut dyn Read, head: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < head.len() {
        match reader.read(&mut head[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn decode_all(bytes: Vec<u8>) -> (Compression, Vec<u8>, u64) {
        let raw_len = bytes.len() as u64;
        let raw =
            RawInput::from_reader("t".into(), Some(raw_len), Box::new(io::Cursor::new(bytes))).expect("open");
        let compression = raw.compression;
        let progress = AtomicU64::new(0);
        let mut out = Vec::new();
        raw.decoded(&progress).expect("decoder").read_to_end(&mut out).expect("read");
        assert_eq!(progress.load(Ordering::Relaxed), raw_len, "progress counts raw bytes");
        (compression, out, raw_len)
    }

    #[test]
    fn plain_gzip_and_zstd_are_recognized_by_magic() {
        let text = b"alice@example.com:hunter2\n".repeat(100);
        assert_eq!(decode_all(text.clone()).0, Compression::None);
        assert_eq!(decode_all(text.clone()).1, text);

        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&text).expect("gzip");
        let (c, out, _) = decode_all(gz.finish().expect("gzip"));
        assert_eq!((c, out), (Compression::Gzip, text.clone()));

        let zst = zstd::encode_all(&text[..], 3).expect("zstd");
        let (c, out, _) = decode_all(zst);
        assert_eq!((c, out), (Compression::Zstd, text));
    }

    #[test]
    fn concatenated_gzip_members_are_all_read() {
        let mut both = Vec::new();
        for part in [&b"a@b.co:1\n"[..], b"c@d.co:2\n"] {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gz.write_all(part).expect("gzip");
            both.extend(gz.finish().expect("gzip"));
        }
        assert_eq!(decode_all(both).1, b"a@b.co:1\nc@d.co:2\n");
    }

    #[test]
    fn only_inputs_neither_compressed_nor_archives_are_plain() {
        assert!(is_plain(b"user@example.com:hunter2\n"));
        assert!(is_plain(b""));
        assert!(!is_plain(b"\x1f\x8b\x08\x00"));
        assert!(!is_plain(b"\x28\xb5\x2f\xfd\x00"));
        assert!(!is_plain(b"PK\x03\x04rest"));
        assert!(!is_plain(b"7z\xbc\xaf\x27\x1crest"));
        let mut tar = vec![0u8; 512];
        tar[257..262].copy_from_slice(b"ustar");
        assert!(!is_plain(&tar));
    }

    #[test]
    fn short_inputs_shorter_than_the_magic_survive() {
        assert_eq!(decode_all(b"".to_vec()).1, b"");
        assert_eq!(decode_all(b"\x1f".to_vec()).1, b"\x1f");
        assert_eq!(decode_all(b"ab".to_vec()).1, b"ab");
    }

    #[test]
    fn missing_files_are_named_in_the_error() {
        let err = RawInput::open("/nonexistent/dump.txt").err().expect("must fail");
        assert!(err.to_string().starts_with("/nonexistent/dump.txt: "), "{err}");
    }
}
