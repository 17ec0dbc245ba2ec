//! UTF-16 inputs: a decompressed stream that starts with a UTF-16 BOM is
//! transcoded to UTF-8 on the fly, before anything looks at its lines.
//!
//! Windows tools (Notepad, PowerShell's `>`, many stealer builds) write UTF-16LE
//! with a BOM; read as bytes, every other byte is NUL and every line would be
//! rejected. Transcoding in front of the chunker keeps every later rule (lines,
//! limits, formats) the same as for UTF-8. Unpaired surrogates become U+FFFD,
//! as `encoding_rs` decodes them.

use std::io::{self, Read};

use std::borrow::Cow;

use encoding_rs::{CoderResult, Decoder, Encoding, UTF_16BE, UTF_16LE, WINDOWS_1251, WINDOWS_1252};

/// Wraps `reader` in a transcoder when its first bytes are a UTF-16 BOM
/// (`FF FE` little-endian, `FE FF` big-endian); otherwise returns it as is,
/// with the bytes looked at put back.
pub(crate) fn utf16_to_utf8<'a>(mut reader: Box<dyn Read + 'a>) -> io::Result<Box<dyn Read + 'a>> {
    let mut head = [0u8; 2];
    let filled = crate::input::read_head(&mut reader, &mut head)?;
    let encoding = match &head[..filled] {
        [0xff, 0xfe] => UTF_16LE,
        [0xfe, 0xff] => UTF_16BE,
        _ => return Ok(Box::new(io::Cursor::new(head[..filled].to_vec()).chain(reader))),
    };
    // The BOM is consumed here: the decoder starts right after it.
    Ok(Box::new(Transcoder {
        inner: reader,
        decoder: encoding.new_decoder_without_bom_handling(),
        input: vec![0; 64 * 1024],
        in_start: 0,
        in_end: 0,
        output: Vec::new(),
        out_pos: 0,
        eof: false,
    }))
}

/// An identity as text: as is when it is UTF-8, else decoded with the input's
/// legacy encoding (whose every byte decodes, so this never fails).
pub(crate) fn identity_text<'a>(bytes: &'a [u8], legacy: &'static Encoding) -> Cow<'a, str> {
    match std::str::from_utf8(bytes) {
        Ok(text) => Cow::Borrowed(text),
        Err(_) => legacy.decode_without_bom_handling(bytes).0,
    }
}

/// The legacy encoding of an input, from its lines that are not UTF-8 in
/// `sample` (whole lines): `chardetng`'s guess (no TLD hint, UTF-8 excluded),
/// narrowed to the two families dumps actually mix: Cyrillic guesses
/// (windows-1251, KOI8-R, KOI8-U, IBM866, ISO-8859-5, x-mac-cyrillic) read as
/// windows-1251, anything else (and no such line) as windows-1252, the superset
/// of latin-1. Both decode every byte.
pub(crate) fn detect_legacy(sample: &[u8]) -> &'static Encoding {
    let mut detector = chardetng::EncodingDetector::new(chardetng::Iso2022JpDetection::Deny);
    let mut fed = false;
    for line in sample.split(|&b| b == b'\n') {
        if std::str::from_utf8(line).is_err() {
            detector.feed(line, false);
            detector.feed(b"\n", false);
            fed = true;
        }
    }
    if !fed {
        return WINDOWS_1252;
    }
    detector.feed(b"", true);
    let guess = detector.guess(None, chardetng::Utf8Detection::Deny);
    let cyrillic = ["windows-1251", "KOI8-R", "KOI8-U", "IBM866", "ISO-8859-5", "x-mac-cyrillic"];
    if cyrillic.contains(&guess.name()) {
        WINDOWS_1251
    } else {
        WINDOWS_1252
    }
}

/// UTF-16 bytes in, UTF-8 bytes out.
struct Transcoder<R> {
    inner: R,
    decoder: Decoder,
    input: Vec<u8>,
    in_start: usize,
    in_end: usize,
    output: Vec<u8>,
    out_pos: usize,
    eof: bool,
}

impl<R: Read> Read for Transcoder<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.out_pos < self.output.len() {
                let n = buf.len().min(self.output.len() - self.out_pos);
                buf[..n].copy_from_slice(&self.output[self.out_pos..self.out_pos + n]);
                self.out_pos += n;
                return Ok(n);
            }
            if self.eof && self.in_start == self.in_end {
                return Ok(0);
            }
            if !self.eof && self.in_start == self.in_end {
                self.in_start = 0;
                self.in_end = match self.inner.read(&mut self.input) {
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                };
                self.eof = self.in_end == 0;
            }
            let src = &self.input[self.in_start..self.in_end];
            // Two UTF-16 code units can become at most 4 UTF-8 bytes, plus a
            // possible U+FFFD for a unit held over from the previous read.
            let cap = src.len() * 2 + 16;
            self.output.clear();
            self.output.resize(cap, 0);
            self.out_pos = 0;
            let (result, read, written, _) = self.decoder.decode_to_utf8(src, &mut self.output, self.eof);
            debug_assert!(matches!(result, CoderResult::InputEmpty), "output sized for the worst case");
            self.in_start += read;
            self.output.truncate(written);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transcode(bytes: &[u8], read_size: usize) -> Vec<u8> {
        struct Trickle<'a>(&'a [u8], usize);
        impl Read for Trickle<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let n = buf.len().min(self.1).min(self.0.len());
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let mut out = Vec::new();
        utf16_to_utf8(Box::new(Trickle(bytes, read_size)))
            .expect("wrap")
            .read_to_end(&mut out)
            .expect("read");
        out
    }

    fn utf16(text: &str, bom: &[u8], le: bool) -> Vec<u8> {
        let mut out = bom.to_vec();
        for unit in text.encode_utf16() {
            out.extend(if le { unit.to_le_bytes() } else { unit.to_be_bytes() });
        }
        out
    }

    #[test]
    fn utf16_with_a_bom_becomes_utf8_at_any_read_size() {
        let text = "ann@mail.co:pässwörd\r\nпётр@mail.ru:🔑\n";
        for size in [1, 2, 3, 7, 4096] {
            assert_eq!(transcode(&utf16(text, &[0xff, 0xfe], true), size), text.as_bytes(), "LE {size}");
            assert_eq!(transcode(&utf16(text, &[0xfe, 0xff], false), size), text.as_bytes(), "BE {size}");
        }
        // Without a BOM nothing changes, short inputs included.
        for plain in [&b""[..], b"a", b"\xff", b"ab:cd\n", b"\xef\xbb\xbfa:b"] {
            assert_eq!(transcode(plain, 1), plain);
        }
        // An unpaired surrogate and an odd trailing byte become U+FFFD.
        assert_eq!(transcode(&[0xff, 0xfe, 0x00, 0xd8, b'a', 0, b'b'], 1), "\u{fffd}a\u{fffd}".as_bytes());
    }

    #[test]
    fn legacy_encoding_follows_the_lines_that_are_not_utf8() {
        let cyrillic = "\u{41f}\u{435}\u{442}\u{440}\u{43e}\u{432}\u{438}\u{447}@mail.ru:qwerty\n";
        let lines = cyrillic.repeat(3);
        let (cp1251, _, _) = WINDOWS_1251.encode(&lines);
        let sample = [b"ann@mail.co:x\n".as_slice(), &cp1251].concat();
        assert_eq!(detect_legacy(&sample), WINDOWS_1251);
        assert_eq!(
            identity_text(&cp1251[..8], WINDOWS_1251),
            "\u{41f}\u{435}\u{442}\u{440}\u{43e}\u{432}\u{438}\u{447}"
        );
        let latin = b"Jos\xe9.M\xfcller@mail.de:x\nFran\xe7oise@mail.fr:y\n";
        assert_eq!(detect_legacy(latin), WINDOWS_1252);
        // Only UTF-8 (or nothing): Windows-1252, which decodes every byte.
        assert_eq!(detect_legacy("j\u{f6}rg@mail.de:x\n".as_bytes()), WINDOWS_1252);
        assert_eq!(detect_legacy(b""), WINDOWS_1252);
        assert_eq!(identity_text(b"caf\xe9", WINDOWS_1252), "caf\u{e9}");
    }
}
