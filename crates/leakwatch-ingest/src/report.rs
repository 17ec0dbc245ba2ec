//! Counting what a chunk produced (lines, records, rejections, data classes) and
//! folding chunk tallies into the [`Report`](crate::Report) in input order.
//!
//! Tallies are small fixed-size structures so the parsers can update them in the
//! hot loop without allocating; reasons become their stable strings only when
//! the report is built.

use std::collections::{BTreeMap, BTreeSet};

use leakwatch_types::{AccountKind, DataClass, EmailError, Record};

use crate::{Format, Rejections, Report, SAMPLE_LINES};

/// Why a line or row was rejected. The strings are stable: they are counted in
/// reports, compared by the generator's expected answers, and shown to users.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Reason {
    LineTooLong,
    ControlCharacters,
    NoSeparator,
    /// A refused login of a stealer log; other formats give the specific
    /// `invalid email: ...` reasons below ([`Reason::email`]).
    InvalidEmail,
    NotAnEmailAddress,
    InvalidUsername,
    InvalidPhone,
    NoAccount,
    WrongFieldCount,
    InvalidJson,
    RecordTooLong,
    MalformedRow,
    TruncatedRow,
    InvalidWebsite,
    EmailNoAt,
    EmailLocalPart,
    EmailDomain,
    EmailIpLiteral,
    EmailTooLong,
}

impl Reason {
    pub(crate) const ALL: [Reason; 19] = [
        Reason::LineTooLong,
        Reason::ControlCharacters,
        Reason::NoSeparator,
        Reason::InvalidEmail,
        Reason::NotAnEmailAddress,
        Reason::InvalidUsername,
        Reason::InvalidPhone,
        Reason::NoAccount,
        Reason::WrongFieldCount,
        Reason::InvalidJson,
        Reason::RecordTooLong,
        Reason::MalformedRow,
        Reason::TruncatedRow,
        Reason::InvalidWebsite,
        Reason::EmailNoAt,
        Reason::EmailLocalPart,
        Reason::EmailDomain,
        Reason::EmailIpLiteral,
        Reason::EmailTooLong,
    ];

    /// The specific reason an address was refused.
    pub(crate) fn email(error: EmailError) -> Reason {
        match error {
            EmailError::NoAt => Reason::EmailNoAt,
            EmailError::BadLocalPart => Reason::EmailLocalPart,
            EmailError::BadDomain => Reason::EmailDomain,
            EmailError::IpLiteral => Reason::EmailIpLiteral,
            EmailError::TooLong => Reason::EmailTooLong,
        }
    }

    /// The stable string of the rules (`docs/ingest-rules.md`).
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            Reason::LineTooLong => "line too long",
            Reason::ControlCharacters => "control characters",
            Reason::NoSeparator => "no separator",
            Reason::InvalidEmail => "invalid email",
            Reason::NotAnEmailAddress => "not an email address",
            Reason::InvalidUsername => "invalid username",
            Reason::InvalidPhone => "invalid phone",
            Reason::NoAccount => "no account",
            Reason::WrongFieldCount => "wrong field count",
            Reason::InvalidJson => "invalid JSON",
            Reason::RecordTooLong => "record too long",
            Reason::MalformedRow => "malformed row",
            Reason::TruncatedRow => "truncated row",
            Reason::InvalidWebsite => "invalid website",
            Reason::EmailNoAt => "invalid email: no @",
            Reason::EmailLocalPart => "invalid email: local part",
            Reason::EmailDomain => "invalid email: domain",
            Reason::EmailIpLiteral => "invalid email: IP literal domain",
            Reason::EmailTooLong => "invalid email: too long",
        }
    }
}

/// The note of accepted stealer-log records whose URL's host is no domain.
pub const WEBSITE_NOT_DOMAIN: &str = "website not a domain";

/// Data classes as a bit set, cheap to update per record.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Classes(u16);

pub(crate) const CLASS_BITS: [DataClass; 10] = [
    DataClass::EmailAddresses,
    DataClass::Usernames,
    DataClass::PhoneNumbers,
    DataClass::Passwords,
    DataClass::Names,
    DataClass::IpAddresses,
    DataClass::DatesOfBirth,
    DataClass::PhysicalAddresses,
    DataClass::Urls,
    DataClass::PasswordHints,
];

impl Classes {
    pub(crate) fn add(&mut self, class: DataClass) {
        if let Some(bit) = CLASS_BITS.iter().position(|&c| c == class) {
            self.0 |= 1 << bit;
        }
    }

    pub(crate) fn union(&mut self, other: Classes) {
        self.0 |= other.0;
    }

    /// The classes a record shows by itself: its account kind, and passwords.
    pub(crate) fn add_record(&mut self, record: &Record) {
        self.add(match record.account.kind {
            AccountKind::Email => DataClass::EmailAddresses,
            AccountKind::Username => DataClass::Usernames,
            AccountKind::Phone => DataClass::PhoneNumbers,
        });
        if record.password.is_some() {
            self.add(DataClass::Passwords);
        }
    }

    fn to_set(self) -> BTreeSet<DataClass> {
        CLASS_BITS.iter().enumerate().filter(|(bit, _)| self.0 & (1 << bit) != 0).map(|(_, &c)| c).collect()
    }
}

/// Rejections of one reason within a chunk or a whole input.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Tally {
    count: u64,
    samples: [u64; SAMPLE_LINES],
}

impl Tally {
    fn sampled(&self) -> &[u64] {
        &self.samples[..(self.count as usize).min(SAMPLE_LINES)]
    }
}

/// Everything counted about a stretch of input, besides its records.
///
/// Line numbers in samples are absolute. Tallies are merged strictly in input
/// order, so the first samples kept are the smallest line numbers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Tallies {
    pub(crate) lines: u64,
    pub(crate) accepted: u64,
    pub(crate) blank: u64,
    pub(crate) classes: Classes,
    /// Stealer-log records kept without a website: their URL's host was no
    /// domain (a note, not a rejection).
    pub(crate) website_not_domain: u64,
    rejected: [Tally; Reason::ALL.len()],
}

impl Tallies {
    pub(crate) fn reject(&mut self, reason: Reason, line: u64) {
        let tally = &mut self.rejected[reason as usize];
        if (tally.count as usize) < SAMPLE_LINES {
            tally.samples[tally.count as usize] = line;
        }
        tally.count += 1;
    }

    pub(crate) fn accept(&mut self, record: &Record) {
        self.accepted += 1;
        self.classes.add_record(record);
    }

    /// Appends the tallies of the stretch of input that follows this one, whose
    /// line numbers were counted from 1 and are shifted by `line_offset`.
    pub(crate) fn extend(&mut self, later: &Tallies, line_offset: u64) {
        self.lines += later.lines;
        self.accepted += later.accepted;
        self.blank += later.blank;
        self.classes.union(later.classes);
        self.website_not_domain += later.website_not_domain;
        for (mine, theirs) in self.rejected.iter_mut().zip(&later.rejected) {
            for &line in theirs.sampled() {
                if (mine.count as usize) < SAMPLE_LINES {
                    mine.samples[mine.count as usize] = line + line_offset;
                }
                mine.count += 1;
            }
            // Rejections beyond the sampled ones only add to the count.
            mine.count += theirs.count - theirs.sampled().len() as u64;
        }
    }

    pub(crate) fn into_report(self, format: Format) -> Report {
        let rejected: BTreeMap<&'static str, Rejections> = Reason::ALL
            .iter()
            .zip(&self.rejected)
            .filter(|(_, t)| t.count > 0)
            .map(|(r, t)| (r.as_str(), Rejections { count: t.count, sample_lines: t.sampled().to_vec() }))
            .collect();
        let notes =
            [(WEBSITE_NOT_DOMAIN, self.website_not_domain)].into_iter().filter(|&(_, n)| n > 0).collect();
        Report {
            format,
            lines: self.lines,
            accepted: self.accepted,
            rejected,
            notes,
            data_classes: self.classes.to_set(),
            columns: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_distinct_and_indexed_in_order() {
        for (i, r) in Reason::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i);
        }
        let names: BTreeSet<_> = Reason::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(names.len(), Reason::ALL.len());
    }

    #[test]
    fn address_reasons_are_the_types_crate_spelling() {
        use EmailError::*;
        for error in [NoAt, BadLocalPart, BadDomain, IpLiteral, TooLong] {
            assert_eq!(Reason::email(error).as_str(), error.rejection());
        }
    }

    #[test]
    fn merging_keeps_the_first_samples_and_all_counts() {
        let mut a = Tallies::default();
        for line in [3, 9, 12] {
            a.reject(Reason::NoSeparator, line);
        }
        let mut b = Tallies::default();
        for line in [1, 2, 3, 4, 5, 6] {
            b.reject(Reason::NoSeparator, line);
        }
        b.reject(Reason::InvalidEmail, 11);
        a.extend(&b, 19);
        let report = a.into_report(Format::Combo);
        assert_eq!(
            report.rejected["no separator"],
            Rejections { count: 9, sample_lines: vec![3, 9, 12, 20, 21] }
        );
        assert_eq!(report.rejected["invalid email"], Rejections { count: 1, sample_lines: vec![30] });
    }
}
