//! A chunk's records in one arena: every account, website and dump hash as a
//! span of one string, beside a vector of fixed-size entries.
//!
//! Parsing a chunk yields tens of thousands of records that all die together,
//! after the store has keyed them. Owned one heap string each, they were
//! allocated one by one on a parser thread and freed in bulk, which overflows
//! malloc's per-thread caches and sends every free to the shared bins. Here a
//! chunk costs two growing buffers, whatever its number of records, and a
//! parser's temporary strings are freed the moment they are copied in.

use crate::{Account, AccountKind, HashKind, PasswordHashes, PasswordMaterial, Record};

/// A span of [`Records`]' text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Span {
    start: u32,
    len: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Material {
    Plain(PasswordHashes),
    Hash { kind: HashKind, value: Span },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    kind: AccountKind,
    account: Span,
    password: Option<Material>,
    website: Option<Span>,
}

/// Records in the order they were pushed, their text in one buffer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Records {
    text: String,
    entries: Vec<Entry>,
}

/// What a dump revealed of an account's password, borrowed from [`Records`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordRef<'a> {
    /// A plaintext, hashed on the spot.
    Plain(&'a PasswordHashes),
    /// A hash as found in the dump, with its detected type.
    Hash { kind: HashKind, value: &'a str },
}

impl PasswordRef<'_> {
    /// The unsalted SHA-1 this material contributes to the Pwned Passwords corpus.
    pub fn sha1(&self) -> Option<[u8; 20]> {
        match *self {
            PasswordRef::Plain(h) => Some(h.sha1),
            PasswordRef::Hash { kind: HashKind::Sha1, value } => crate::decode_hex::<20>(value.as_bytes()),
            PasswordRef::Hash { .. } => None,
        }
    }

    /// The NTLM hash this material contributes to the NTLM corpus.
    pub fn ntlm(&self) -> Option<[u8; 16]> {
        match *self {
            PasswordRef::Plain(h) => Some(h.ntlm),
            PasswordRef::Hash { kind: HashKind::Ntlm, value } => crate::decode_hex::<16>(value.as_bytes()),
            PasswordRef::Hash { .. } => None,
        }
    }

    pub fn to_owned(&self) -> PasswordMaterial {
        match *self {
            PasswordRef::Plain(h) => PasswordMaterial::Plain(*h),
            PasswordRef::Hash { kind, value } => PasswordMaterial::Hash { kind, value: value.into() },
        }
    }
}

/// One record of [`Records`], borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordRef<'a> {
    pub kind: AccountKind,
    /// The normalized account.
    pub account: &'a str,
    pub password: Option<PasswordRef<'a>>,
    /// For a stealer log: the normalized domain of the website the login was
    /// captured for.
    pub website: Option<&'a str>,
}

impl<'a> RecordRef<'a> {
    /// For an email account: `(alias, domain)`, split at the last `@`.
    #[inline]
    pub fn email_parts(&self) -> Option<(&'a str, &'a str)> {
        match self.kind {
            AccountKind::Email => {
                let account = self.account;
                let at = account.bytes().rposition(|b| b == b'@')?;
                Some((&account[..at], &account[at + 1..]))
            }
            _ => None,
        }
    }

    pub fn to_owned(&self) -> Record {
        Record {
            account: Account { kind: self.kind, value: self.account.to_owned() },
            password: self.password.map(|p| p.to_owned()),
            website: self.website.map(str::to_owned),
        }
    }
}

impl Records {
    /// Room for `records` records of `text` bytes in all.
    pub fn with_capacity(records: usize, text: usize) -> Records {
        Records { text: String::with_capacity(text), entries: Vec::with_capacity(records) }
    }

    /// Removes every record, keeping the buffers: an arena is refilled chunk
    /// after chunk, and memory it keeps is memory the next chunk does not
    /// have to fault in again.
    pub fn clear(&mut self) {
        self.text.clear();
        self.entries.clear();
    }

    /// Makes room for `records` more records of `text` more bytes in all.
    pub fn reserve(&mut self, records: usize, text: usize) {
        self.text.reserve(text);
        self.entries.reserve(records);
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Bytes of text held (accounts, websites, dump hashes).
    pub fn text_len(&self) -> usize {
        self.text.len()
    }

    #[inline]
    fn span(&mut self, s: &str) -> Span {
        let start = self.text.len();
        self.text.push_str(s);
        Span { start: to_u32(start), len: to_u32(s.len()) }
    }

    #[inline]
    fn str(&self, span: Span) -> &str {
        &self.text[span.start as usize..(span.start + span.len) as usize]
    }

    /// Appends a record; its strings are copied in (and the caller's freed).
    #[inline]
    pub fn push(&mut self, record: Record) {
        self.push_parts(
            record.account.kind,
            &record.account.value,
            record.password,
            record.website.as_deref(),
        );
    }

    /// Appends a record from its parts.
    #[inline]
    pub fn push_parts(
        &mut self,
        kind: AccountKind,
        account: &str,
        password: Option<PasswordMaterial>,
        website: Option<&str>,
    ) {
        let account = self.span(account);
        let password = password.map(|p| match p {
            PasswordMaterial::Plain(hashes) => Material::Plain(hashes),
            PasswordMaterial::Hash { kind, value } => Material::Hash { kind, value: self.span(&value) },
        });
        let website = website.map(|w| self.span(w));
        self.entries.push(Entry { kind, account, password, website });
    }

    #[inline]
    pub fn get(&self, i: usize) -> RecordRef<'_> {
        let e = &self.entries[i];
        RecordRef {
            kind: e.kind,
            account: self.str(e.account),
            password: e.password.as_ref().map(|m| match m {
                Material::Plain(hashes) => PasswordRef::Plain(hashes),
                Material::Hash { kind, value } => PasswordRef::Hash { kind: *kind, value: self.str(*value) },
            }),
            website: e.website.map(|w| self.str(w)),
        }
    }

    pub fn iter(&self) -> impl ExactSizeIterator<Item = RecordRef<'_>> + '_ {
        (0..self.entries.len()).map(|i| self.get(i))
    }

    /// The digests of record `i`'s plaintext password, for a parser that
    /// fills them in after the record was pushed (hashed in lanes).
    ///
    /// # Panics
    /// When record `i` has no plaintext password.
    #[inline]
    pub fn plain_mut(&mut self, i: usize) -> &mut PasswordHashes {
        match &mut self.entries[i].password {
            Some(Material::Plain(hashes)) => hashes,
            _ => panic!("record {i} has no plaintext password"),
        }
    }

    /// Sets record `i`'s password.
    pub fn set_password(&mut self, i: usize, password: PasswordMaterial) {
        let material = match password {
            PasswordMaterial::Plain(hashes) => Material::Plain(hashes),
            PasswordMaterial::Hash { kind, value } => Material::Hash { kind, value: self.span(&value) },
        };
        self.entries[i].password = Some(material);
    }

    /// Owned copies of every record (tests, and callers that keep a few).
    pub fn to_vec(&self) -> Vec<Record> {
        self.iter().map(|r| r.to_owned()).collect()
    }

    /// Moves every record of `other` to the end of `self`.
    pub fn append(&mut self, other: &Records) {
        for r in other.iter() {
            self.push_parts(r.kind, r.account, r.password.map(|p| p.to_owned()), r.website);
        }
    }
}

impl FromIterator<Record> for Records {
    fn from_iter<I: IntoIterator<Item = Record>>(records: I) -> Records {
        let mut out = Records::default();
        for r in records {
            out.push(r);
        }
        out
    }
}

/// A chunk's text is far below 4 GiB (chunks are megabytes): offsets fit.
fn to_u32(n: usize) -> u32 {
    u32::try_from(n).expect("a chunk's records hold less than 4 GiB of text")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_through_the_arena() {
        let owned = vec![
            Record {
                account: Account { kind: AccountKind::Email, value: "alice@example.com".into() },
                password: Some(PasswordMaterial::Plain(PasswordHashes::of(b"hunter2"))),
                website: Some("shop.example".into()),
            },
            Record {
                account: Account { kind: AccountKind::Username, value: "bob".into() },
                password: None,
                website: None,
            },
            Record {
                account: Account { kind: AccountKind::Phone, value: "+15551234567".into() },
                password: Some(PasswordMaterial::Hash {
                    kind: HashKind::Md5,
                    value: "5f4dcc3b5aa765d61d8327deb882cf99".into(),
                }),
                website: None,
            },
        ];
        let mut records: Records = owned.iter().cloned().collect();
        assert_eq!(records.len(), 3);
        assert_eq!(records.to_vec(), owned);
        assert_eq!(records.get(0).email_parts(), Some(("alice", "example.com")));
        assert_eq!(records.get(1).email_parts(), None);
        assert_eq!(records.get(0).password.unwrap().sha1(), Some(crate::sha1(b"hunter2")));
        assert_eq!(records.get(2).password.unwrap().sha1(), None);

        records.plain_mut(0).ntlm = [7; 16];
        assert_eq!(records.get(0).password.unwrap().ntlm(), Some([7; 16]));
        records
            .set_password(1, PasswordMaterial::Hash { kind: HashKind::Sha1, value: "AB".repeat(20).into() });
        assert_eq!(records.get(1).password.unwrap().sha1(), Some([0xAB; 20]));
        // Earlier spans are untouched by later text.
        assert_eq!(records.get(0).account, "alice@example.com");
        assert_eq!(records.get(2).account, "+15551234567");

        // Cleared, the arena holds the next chunk alone.
        records.clear();
        assert!(records.is_empty());
        assert_eq!(records.text_len(), 0);
        records.push(owned[1].clone());
        assert_eq!(records.to_vec(), [owned[1].clone()]);
    }
}
