//! What every segment shares, whatever its layout: the constants, the kinds,
//! and the header's frame (magic, version, kind, CRC), which says which layout
//! the rest of the header and the file follow. Each layout describes its own
//! fields ([`FixedHeader`], [`PackedHeader`]); `docs/format.md` is the prose
//! version of these modules.

use crate::fixed::FixedHeader;
use crate::packed::PackedHeader;

/// Bytes 0..8 of every segment. The CR LF catches text-mode mangling, as PNG's does.
pub const MAGIC: [u8; 8] = *b"LKWSEG\r\n";
/// The newest format version this build writes and reads. Each version is one
/// layout: version 1 the fixed-width layout (`fixed.rs`), which every kind but
/// the Pwned Passwords counts uses; version 2 the packed layout of those
/// (`packed.rs`).
pub const FORMAT_VERSION: u16 = 2;
pub const HEADER_LEN: usize = 128;
/// Every chunk of this many bytes before the checksum table has its own CRC-32,
/// so that corruption is reported by offset, not just "somewhere in the file".
pub const CHECKSUM_CHUNK: usize = 64 * 1024;
/// The longest key any kind uses.
pub const MAX_KEY_LEN: usize = 32;
/// The most entries a segment holds: entry indices, the prefix tables' starts
/// and the header's entry count are u32s. A writer with more to write rolls
/// over to a new segment (the store's `RollingWriter`).
pub const MAX_ENTRIES: u64 = u32::MAX as u64;
/// The most payload bytes a segment's heap holds such that every payload
/// starts at a u32 heap offset, whatever its length.
pub const MAX_HEAP_BYTES: u64 = u32::MAX as u64;
/// The widest prefix table: 20 bits, one Pwned Passwords range (5 hex digits) a slot.
pub const MAX_PREFIX_BITS: u8 = 20;

/// What a segment holds. The kind fixes the key and value widths.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// SHA-1 of a password -> number of (breach, account, password) triples.
    Sha1Counts,
    /// NTLM of a password -> the same count.
    NtlmCounts,
    /// Keyed hash of an account -> breach id (one entry per breach).
    Accounts,
    /// Keyed hash of a domain -> breach id and the alias, in the heap.
    Domains,
    /// Password SHA-1 and a keyed (account, breach) hash: the set of triples
    /// already counted in the SHA-1 corpus, which makes ingest idempotent.
    Credentials,
    /// Password NTLM and the same pair hash: the set of triples already counted
    /// in the NTLM corpus (a triple may be known by one digest only).
    NtlmCredentials,
    /// SHA-1 -> count, as imported from Have I Been Pwned's Pwned Passwords: kept
    /// apart from the organization's own counts and replaced by a newer import.
    HibpSha1Counts,
    /// NTLM -> count from Pwned Passwords' NTLM download.
    HibpNtlmCounts,
    /// Stealer-log pairs, in three key spaces of keyed hashes: email -> website,
    /// website -> email, email domain -> "alias\nwebsite"; payloads in the heap.
    Stealer,
    /// [`Kind::Credentials`] in 16-byte keys: the set of triples counted in
    /// the SHA-1 corpus, as ingest writes it now (the older kind is still read).
    CredentialKeys,
    /// [`Kind::NtlmCredentials`] in 16-byte keys.
    NtlmCredentialKeys,
    /// Stealer-log pairs by email, as ingest writes them now: keyed hash of
    /// the address -> breach id and an encrypted reference to the website's
    /// keyed hash (its name is a [`Kind::Stealer`] entry, one per website).
    /// The older `Stealer` entry per pair, a sealed name each, is still read.
    StealerEmails,
    /// SHA-1 -> the sum of every [`Kind::Sha1Counts`] and
    /// [`Kind::HibpSha1Counts`] segment it was built from: derived, so that a
    /// range of the whole corpus reads one segment instead of one per breach
    /// (the per-breach segments stay, for `breach remove`).
    Sha1Totals,
    /// NTLM -> the same sum over the NTLM counts.
    NtlmTotals,
}

impl Kind {
    /// Every kind, in code order.
    pub const ALL: [Kind; 14] = [
        Kind::Sha1Counts,
        Kind::NtlmCounts,
        Kind::Accounts,
        Kind::Domains,
        Kind::Credentials,
        Kind::NtlmCredentials,
        Kind::HibpSha1Counts,
        Kind::HibpNtlmCounts,
        Kind::Stealer,
        Kind::CredentialKeys,
        Kind::NtlmCredentialKeys,
        Kind::StealerEmails,
        Kind::Sha1Totals,
        Kind::NtlmTotals,
    ];

    pub fn code(self) -> u16 {
        match self {
            Kind::Sha1Counts => 1,
            Kind::NtlmCounts => 2,
            Kind::Accounts => 3,
            Kind::Domains => 4,
            Kind::Credentials => 5,
            Kind::NtlmCredentials => 6,
            Kind::HibpSha1Counts => 7,
            Kind::HibpNtlmCounts => 8,
            Kind::Stealer => 9,
            Kind::CredentialKeys => 10,
            Kind::NtlmCredentialKeys => 11,
            Kind::StealerEmails => 12,
            Kind::Sha1Totals => 13,
            Kind::NtlmTotals => 14,
        }
    }

    pub fn from_code(code: u16) -> Option<Kind> {
        Some(match code {
            1 => Kind::Sha1Counts,
            2 => Kind::NtlmCounts,
            3 => Kind::Accounts,
            4 => Kind::Domains,
            5 => Kind::Credentials,
            6 => Kind::NtlmCredentials,
            7 => Kind::HibpSha1Counts,
            8 => Kind::HibpNtlmCounts,
            9 => Kind::Stealer,
            10 => Kind::CredentialKeys,
            11 => Kind::NtlmCredentialKeys,
            12 => Kind::StealerEmails,
            13 => Kind::Sha1Totals,
            14 => Kind::NtlmTotals,
            _ => return None,
        })
    }

    /// A short name, used in file names and messages.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Sha1Counts => "sha1",
            Kind::NtlmCounts => "ntlm",
            Kind::Accounts => "accounts",
            Kind::Domains => "domains",
            Kind::Credentials => "credentials",
            Kind::NtlmCredentials => "ntlm-credentials",
            Kind::HibpSha1Counts => "hibp-sha1",
            Kind::HibpNtlmCounts => "hibp-ntlm",
            Kind::Stealer => "stealer",
            Kind::CredentialKeys => "credential-keys",
            Kind::NtlmCredentialKeys => "ntlm-credential-keys",
            Kind::StealerEmails => "stealer-emails",
            Kind::Sha1Totals => "sha1-totals",
            Kind::NtlmTotals => "ntlm-totals",
        }
    }

    pub fn key_len(self) -> usize {
        match self {
            Kind::Sha1Counts | Kind::HibpSha1Counts | Kind::Sha1Totals => 20,
            Kind::NtlmCounts | Kind::HibpNtlmCounts | Kind::NtlmTotals => 16,
            Kind::Accounts | Kind::Domains | Kind::Stealer | Kind::StealerEmails => 16,
            Kind::CredentialKeys | Kind::NtlmCredentialKeys => 16,
            Kind::Credentials => 28,
            Kind::NtlmCredentials => 24,
        }
    }

    /// Fixed value bytes per entry, besides an inline count.
    pub fn value_len(self) -> usize {
        match self {
            Kind::Sha1Counts
            | Kind::NtlmCounts
            | Kind::Credentials
            | Kind::NtlmCredentials
            | Kind::CredentialKeys
            | Kind::NtlmCredentialKeys
            | Kind::HibpSha1Counts
            | Kind::HibpNtlmCounts
            | Kind::Sha1Totals
            | Kind::NtlmTotals => 0,
            // Breach id.
            Kind::Accounts => 4,
            // Breach id, the website reference.
            Kind::StealerEmails => 20,
            // Breach id, heap offset (u32), payload length (u8).
            Kind::Domains | Kind::Stealer => 9,
        }
    }

    /// Whether entries carry a count (inline, with an overflow table).
    pub fn has_count(self) -> bool {
        matches!(
            self,
            Kind::Sha1Counts
                | Kind::NtlmCounts
                | Kind::HibpSha1Counts
                | Kind::HibpNtlmCounts
                | Kind::Sha1Totals
                | Kind::NtlmTotals
        )
    }

    /// Whether segments of this kind are written in the packed layout (format
    /// version 2): the Pwned Passwords counts and the totals that include
    /// them, the largest corpora by far. The
    /// organization's own counts keep the fixed layout, which the ingest and
    /// compaction paths write and read entry by entry.
    pub fn packed(self) -> bool {
        matches!(self, Kind::HibpSha1Counts | Kind::HibpNtlmCounts | Kind::Sha1Totals | Kind::NtlmTotals)
    }

    /// Whether entries point into a heap of payloads.
    pub fn has_payload(self) -> bool {
        matches!(self, Kind::Domains | Kind::Stealer)
    }

    /// The counted kinds of one corpus (SHA-1 or NTLM): the organization's own
    /// counts and Pwned Passwords', summed at query time.
    pub fn password_counts(ntlm: bool) -> [Kind; 2] {
        if ntlm {
            [Kind::NtlmCounts, Kind::HibpNtlmCounts]
        } else {
            [Kind::Sha1Counts, Kind::HibpSha1Counts]
        }
    }

    /// The kind of the derived totals of one corpus (SHA-1 or NTLM).
    pub fn password_totals(ntlm: bool) -> Kind {
        if ntlm {
            Kind::NtlmTotals
        } else {
            Kind::Sha1Totals
        }
    }
}

/// A decoded header: the description of one layout, each field with one
/// meaning. The frame (magic, version, kind, key length, CRC) is common; the
/// version picks the description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Header {
    Fixed(FixedHeader),
    Packed(PackedHeader),
}

impl Header {
    /// The header's bytes: the frame around the layout's own fields.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        let (version, kind) = match self {
            Header::Fixed(h) => {
                h.encode(&mut b);
                (FixedHeader::VERSION, h.layout.kind)
            }
            Header::Packed(h) => {
                h.encode(&mut b);
                (PackedHeader::VERSION, h.kind)
            }
        };
        b[0..8].copy_from_slice(&MAGIC);
        b[8..10].copy_from_slice(&version.to_le_bytes());
        b[10..12].copy_from_slice(&kind.code().to_le_bytes());
        b[12] = kind.key_len() as u8;
        let crc = crc32fast::hash(&b[..HEADER_LEN - 4]);
        b[HEADER_LEN - 4..].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Decodes and checks the header at the start of `file`, and that the
    /// layout's sections tile the body; the error says what is wrong.
    pub fn decode(file: &[u8]) -> Result<Header, HeaderError> {
        let b = file.get(..HEADER_LEN).ok_or_else(|| corrupt("file shorter than a segment header"))?;
        let b: &[u8; HEADER_LEN] = b.try_into().expect("header length");
        if b[0..8] != MAGIC {
            return Err(corrupt("not a leakwatch segment (bad magic)"));
        }
        let version = u16::from_le_bytes([b[8], b[9]]);
        if version != FixedHeader::VERSION && version != PackedHeader::VERSION {
            return Err(HeaderError::Version(version));
        }
        let crc = u32::from_le_bytes(b[HEADER_LEN - 4..].try_into().expect("4 bytes"));
        if crc != crc32fast::hash(&b[..HEADER_LEN - 4]) {
            return Err(corrupt("header checksum mismatch"));
        }
        let kind = Kind::from_code(u16::from_le_bytes([b[10], b[11]]))
            .ok_or_else(|| corrupt("unknown segment kind"))?;
        if usize::from(b[12]) != kind.key_len() {
            return Err(corrupt("key length does not match the segment kind"));
        }
        if b[14] > MAX_PREFIX_BITS {
            return Err(corrupt(format!("prefix width {} out of range", b[14])));
        }
        let header = if version == PackedHeader::VERSION {
            Header::Packed(PackedHeader::decode(kind, b)?)
        } else {
            Header::Fixed(FixedHeader::decode(kind, b)?)
        };
        if header.entry_count() > MAX_ENTRIES {
            return Err(corrupt("entry count beyond 2^32 - 1"));
        }
        Ok(header)
    }

    pub fn entry_count(&self) -> u64 {
        match self {
            Header::Fixed(h) => h.entry_count,
            Header::Packed(h) => h.entry_count,
        }
    }
}

/// The u64 field `i` of the header's common run of them (bytes 16..88): each
/// layout gives them its own names.
pub(crate) fn header_field(b: &[u8; HEADER_LEN], i: usize) -> u64 {
    u64::from_le_bytes(b[16 + 8 * i..24 + 8 * i].try_into().expect("8 bytes"))
}

/// Writes the header's u64 fields from byte 16 on.
pub(crate) fn put_header_fields(b: &mut [u8; HEADER_LEN], fields: &[u64]) {
    for (i, v) in fields.iter().enumerate() {
        b[16 + 8 * i..24 + 8 * i].copy_from_slice(&v.to_le_bytes());
    }
}

/// Checks that the sections of a layout tile the file in order: each
/// (section, offset found, offset the layout implies).
pub(crate) fn check_tiling(expected: &[(&str, u64, u64)]) -> Result<(), HeaderError> {
    for &(what, found, want) in expected {
        if found != want {
            return Err(corrupt(format!("{what} at {found}, expected {want}")));
        }
    }
    Ok(())
}

fn corrupt(detail: impl Into<String>) -> HeaderError {
    HeaderError::Corrupt(detail.into())
}

#[derive(Debug)]
pub(crate) enum HeaderError {
    Corrupt(String),
    Version(u16),
}
