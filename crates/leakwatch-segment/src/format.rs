//! The byte layout of a segment: header fields, section order and the choice of
//! prefix width. `docs/format.md` is the prose version of this module.

/// Bytes 0..8 of every segment. The CR LF catches text-mode mangling, as PNG's does.
pub const MAGIC: [u8; 8] = *b"LKWSEG\r\n";
/// The newest format version this build writes and reads. Version 1 is the
/// fixed-width layout, which every kind but the Pwned Passwords counts still
/// uses; version 2 is the packed layout of those (see `packed.rs`).
pub const FORMAT_VERSION: u16 = 2;
/// The version of the packed layout.
pub const PACKED_VERSION: u16 = 2;
pub const HEADER_LEN: usize = 128;
/// Every chunk of this many bytes before the checksum table has its own CRC-32,
/// so that corruption is reported by offset, not just "somewhere in the file".
pub const CHECKSUM_CHUNK: usize = 64 * 1024;
/// The longest key any kind uses.
pub const MAX_KEY_LEN: usize = 32;
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
}

impl Kind {
    /// Every kind, in code order.
    pub const ALL: [Kind; 12] = [
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
        }
    }

    pub fn key_len(self) -> usize {
        match self {
            Kind::Sha1Counts | Kind::HibpSha1Counts => 20,
            Kind::NtlmCounts | Kind::HibpNtlmCounts => 16,
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
            | Kind::HibpNtlmCounts => 0,
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
        matches!(self, Kind::Sha1Counts | Kind::NtlmCounts | Kind::HibpSha1Counts | Kind::HibpNtlmCounts)
    }

    /// Whether segments of this kind are written in the packed layout (format
    /// version 2): the Pwned Passwords counts, the largest corpora by far. The
    /// organization's own counts keep the fixed layout, which the ingest and
    /// compaction paths write and read entry by entry.
    pub fn packed(self) -> bool {
        matches!(self, Kind::HibpSha1Counts | Kind::HibpNtlmCounts)
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
}

/// The widths that follow from a kind and a prefix width.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    pub kind: Kind,
    /// Bits of the key implied by the position in the prefix table.
    pub prefix_bits: u8,
    /// Whole key bytes not stored (implied by the prefix).
    pub skip: usize,
    /// Bits at the top of the first stored key byte that the prefix implies, reused
    /// for a small inline count; 0 when the count takes a byte of its own.
    pub small_bits: u8,
    /// Bytes of one entry.
    pub entry_len: usize,
}

impl Layout {
    pub fn new(kind: Kind, prefix_bits: u8) -> Layout {
        assert!(prefix_bits <= MAX_PREFIX_BITS, "prefix width {prefix_bits} out of range");
        let skip = usize::from(prefix_bits / 8);
        let free = prefix_bits % 8;
        let small_bits = if kind.has_count() && free >= 3 { free } else { 0 };
        let count_byte = usize::from(kind.has_count() && small_bits == 0);
        let entry_len = kind.key_len() - skip + count_byte + kind.value_len();
        Layout { kind, prefix_bits, skip, small_bits, entry_len }
    }

    /// Picks the prefix width that makes a segment of about `entries` entries
    /// smallest, among widths that keep buckets short enough (about 64 entries or
    /// fewer) for a point lookup to touch only a cache line or two.
    pub fn choose(kind: Kind, entries: u64) -> Layout {
        let log2 = 63 - entries.max(1).leading_zeros() as i64;
        let min_bits = (log2 - 6).clamp(0, i64::from(MAX_PREFIX_BITS)) as u8;
        (min_bits..=MAX_PREFIX_BITS)
            .map(|p| Layout::new(kind, p))
            .min_by_key(|l| (l.size_estimate(entries), std::cmp::Reverse(l.prefix_bits)))
            .expect("at least one width")
    }

    fn size_estimate(&self, entries: u64) -> u64 {
        entries * self.entry_len as u64 + 4 * ((1u64 << self.prefix_bits) + 1)
    }

    /// The largest count stored inline; this value and above live in the overflow table.
    pub fn inline_count_max(&self) -> u64 {
        if self.small_bits > 0 {
            (1u64 << self.small_bits) - 1
        } else {
            255
        }
    }

    /// Where the inline count sits within an entry, when it has a byte of its own.
    pub fn count_byte_offset(&self) -> usize {
        self.kind.key_len() - self.skip
    }

    /// Where the fixed value starts within an entry.
    pub fn value_offset(&self) -> usize {
        self.kind.key_len() - self.skip + usize::from(self.kind.has_count() && self.small_bits == 0)
    }

    /// The bucket (prefix table slot) of a key: its top `prefix_bits` bits.
    pub fn bucket_of(&self, key: &[u8]) -> usize {
        if self.prefix_bits == 0 {
            return 0;
        }
        let top = u32::from_be_bytes([key[0], key[1], key[2], 0]) >> 8;
        (top >> (24 - u32::from(self.prefix_bits))) as usize
    }
}

/// The fixed-size header at offset 0, every integer little-endian.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub version: u16,
    pub kind: Kind,
    pub prefix_bits: u8,
    /// Packed layout only (0 in version 1): high-part and count-field widths.
    pub upper_bits: u8,
    pub count_bits: u8,
    pub entry_count: u64,
    pub entries_offset: u64,
    pub table_offset: u64,
    pub overflow_offset: u64,
    pub overflow_count: u64,
    pub heap_offset: u64,
    pub heap_len: u64,
    pub checksums_offset: u64,
    pub file_len: u64,
}

impl Header {
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let layout = Layout::new(self.kind, self.prefix_bits);
        let mut b = [0u8; HEADER_LEN];
        b[0..8].copy_from_slice(&MAGIC);
        b[8..10].copy_from_slice(&self.version.to_le_bytes());
        b[10..12].copy_from_slice(&self.kind.code().to_le_bytes());
        b[12] = self.kind.key_len() as u8;
        b[14] = self.prefix_bits;
        if self.version == PACKED_VERSION {
            b[15] = self.count_bits;
            b[88] = self.upper_bits;
        } else {
            b[13] = layout.entry_len as u8;
            b[15] = layout.small_bits;
        }
        let fields = [
            self.entry_count,
            self.entries_offset,
            self.table_offset,
            self.overflow_offset,
            self.overflow_count,
            self.heap_offset,
            self.heap_len,
            self.checksums_offset,
            self.file_len,
        ];
        for (i, v) in fields.iter().enumerate() {
            b[16 + 8 * i..24 + 8 * i].copy_from_slice(&v.to_le_bytes());
        }
        let crc = crc32fast::hash(&b[..HEADER_LEN - 4]);
        b[HEADER_LEN - 4..].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Decodes and checks a header; the error string says what is wrong.
    pub fn decode(b: &[u8]) -> Result<Header, HeaderError> {
        if b.len() < HEADER_LEN {
            return Err(HeaderError::Corrupt("file shorter than a segment header".into()));
        }
        if b[0..8] != MAGIC {
            return Err(HeaderError::Corrupt("not a leakwatch segment (bad magic)".into()));
        }
        let version = u16::from_le_bytes([b[8], b[9]]);
        if version != 1 && version != PACKED_VERSION {
            return Err(HeaderError::Version(version));
        }
        let crc = u32::from_le_bytes(b[HEADER_LEN - 4..HEADER_LEN].try_into().expect("4 bytes"));
        if crc != crc32fast::hash(&b[..HEADER_LEN - 4]) {
            return Err(HeaderError::Corrupt("header checksum mismatch".into()));
        }
        let kind = Kind::from_code(u16::from_le_bytes([b[10], b[11]]))
            .ok_or_else(|| HeaderError::Corrupt("unknown segment kind".into()))?;
        let prefix_bits = b[14];
        if prefix_bits > MAX_PREFIX_BITS {
            return Err(HeaderError::Corrupt(format!("prefix width {prefix_bits} out of range")));
        }
        let layout = Layout::new(kind, prefix_bits);
        let (upper_bits, count_bits) = if version == PACKED_VERSION {
            let params = crate::packed::Params {
                key_len: kind.key_len(),
                prefix_bits,
                upper_bits: b[88],
                count_bits: b[15],
            };
            if !kind.has_count() || usize::from(b[12]) != kind.key_len() || b[13] != 0 || !params.valid() {
                return Err(HeaderError::Corrupt("packed layout does not match the segment kind".into()));
            }
            (b[88], b[15])
        } else {
            if usize::from(b[12]) != kind.key_len()
                || usize::from(b[13]) != layout.entry_len
                || b[15] != layout.small_bits
            {
                return Err(HeaderError::Corrupt("entry layout does not match the segment kind".into()));
            }
            (0, 0)
        };
        let field = |i: usize| u64::from_le_bytes(b[16 + 8 * i..24 + 8 * i].try_into().expect("8 bytes"));
        Ok(Header {
            version,
            kind,
            prefix_bits,
            upper_bits,
            count_bits,
            entry_count: field(0),
            entries_offset: field(1),
            table_offset: field(2),
            overflow_offset: field(3),
            overflow_count: field(4),
            heap_offset: field(5),
            heap_len: field(6),
            checksums_offset: field(7),
            file_len: field(8),
        })
    }
}

#[derive(Debug)]
pub enum HeaderError {
    Corrupt(String),
    Version(u16),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha1_layout_is_compact_at_scale() {
        // At 3 million hashes the chosen layout stores 18 bytes an entry with the
        // count folded into implied prefix bits.
        let l = Layout::choose(Kind::Sha1Counts, 3_000_000);
        assert_eq!(l.entry_len, 18, "{l:?}");
        assert!(l.small_bits >= 3);
        let l = Layout::choose(Kind::Sha1Counts, 100_000_000);
        assert!(l.prefix_bits >= 19, "{l:?}");
        assert_eq!(l.entry_len, 18);
    }

    #[test]
    fn tiny_segments_have_tiny_tables() {
        let l = Layout::choose(Kind::Accounts, 10);
        assert!(l.prefix_bits <= 4, "{l:?}");
    }

    #[test]
    fn bucket_is_top_bits() {
        let l = Layout::new(Kind::Sha1Counts, 20);
        assert_eq!(l.bucket_of(&[0xAB, 0xCD, 0xEF, 0x12]), 0xABCDE);
        let l = Layout::new(Kind::Sha1Counts, 12);
        assert_eq!(l.bucket_of(&[0xAB, 0xCD, 0xEF, 0x12]), 0xABC);
        let l = Layout::new(Kind::Sha1Counts, 0);
        assert_eq!(l.bucket_of(&[0xAB, 0xCD, 0xEF, 0x12]), 0);
    }

    #[test]
    fn header_round_trips_and_detects_damage() {
        let h = Header {
            version: 1,
            kind: Kind::Domains,
            prefix_bits: 9,
            upper_bits: 0,
            count_bits: 0,
            entry_count: 7,
            entries_offset: 128,
            table_offset: 1000,
            overflow_offset: 2000,
            overflow_count: 0,
            heap_offset: 2000,
            heap_len: 5,
            checksums_offset: 2005,
            file_len: 2013,
        };
        let mut bytes = h.encode();
        assert_eq!(Header::decode(&bytes).unwrap(), h);
        bytes[20] ^= 1;
        assert!(matches!(Header::decode(&bytes), Err(HeaderError::Corrupt(_))));
    }
}
