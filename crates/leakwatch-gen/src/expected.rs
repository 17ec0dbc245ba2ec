//! Expected answers, computed from the records the writers put into each file
//! (never by parsing the files back): who is in which breach, what each password
//! hash counts, each breach's PwnCount and data classes, and each file's report.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use leakwatch_types::{encode_hex_upper, AccountKind, DataClass};
use serde::{Deserialize, Serialize};

use crate::rules::Format;

/// A normalized account as the store keys it.
pub type AccountKey = (AccountKind, String);

/// What a dump line reveals about a password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Material {
    /// No password: the account alone is exposed.
    None,
    /// The plaintext: gives both SHA-1 and NTLM.
    Plain,
    /// A bare SHA-1 of it: counts in the SHA-1 corpus only.
    Sha1,
    /// An NTLM hash of it: counts in the NTLM corpus only.
    Ntlm,
    /// A hash of another kind (MD5, bcrypt): counts nowhere, but is a password.
    Other,
}

/// One record a written line must produce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpRecord {
    pub account: AccountKey,
    /// The plaintext the generator started from (known even when only a hash was written).
    pub password: Vec<u8>,
    pub material: Material,
}

/// Rejections of one reason in one file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpRejections {
    pub count: u64,
    /// The smallest line numbers, at most [`SAMPLE_LINES`].
    pub sample_lines: Vec<u64>,
}

/// How many line numbers a rejection keeps (as the ingest report does).
pub const SAMPLE_LINES: usize = 5;

/// The report one file must produce.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpFile {
    /// Relative to the scenario directory, with `/` separators.
    pub path: String,
    pub format: Format,
    pub compression: String,
    /// Physical lines of the decompressed input.
    pub lines: u64,
    pub accepted: u64,
    pub rejected: BTreeMap<String, ExpRejections>,
}

/// Expected facts about one breach.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpBreach {
    pub name: String,
    pub title: String,
    pub domain: String,
    pub breach_date: String,
    /// Distinct accounts (emails, usernames and phones).
    pub pwn_count: u64,
    /// HIBP names, sorted.
    pub data_classes: Vec<String>,
    pub files: Vec<ExpFile>,
}

/// Every answer a store loaded with a whole scenario must give.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Expected {
    pub seed: u64,
    pub breaches: Vec<ExpBreach>,
    /// Normalized email -> sorted breach names.
    pub emails: BTreeMap<String, Vec<String>>,
    /// Normalized addresses that are in no breach (people never exposed, unseen plus-tags).
    pub absent_emails: Vec<String>,
    /// Domain (A-label) -> alias (local part) -> sorted breach names.
    pub domains: BTreeMap<String, BTreeMap<String, Vec<String>>>,
    /// Upper-hex SHA-1 -> number of distinct (breach, account, password) carrying it.
    pub sha1: BTreeMap<String, u64>,
    /// Upper-hex NTLM -> the same count.
    pub ntlm: BTreeMap<String, u64>,
}

impl Expected {
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("plain data serializes")
    }

    pub fn from_json(text: &str) -> serde_json::Result<Expected> {
        serde_json::from_str(text)
    }
}

/// Accumulates one breach's records.
#[derive(Default)]
pub(crate) struct BreachTally {
    accounts: BTreeSet<AccountKey>,
    sha1: BTreeSet<(AccountKey, [u8; 20])>,
    ntlm: BTreeSet<(AccountKey, [u8; 16])>,
    /// (account, NTLM) -> plaintext, to prove no two distinct passwords of one
    /// account share an NTLM hash (e.g. `café` in UTF-8 and in Latin-1): there the
    /// rules' "distinct (breach, account, password)" and a store keyed by hash would
    /// disagree, so the generator must never produce it.
    ntlm_source: HashMap<(AccountKey, [u8; 16]), Vec<u8>>,
    pub classes: BTreeSet<DataClass>,
}

impl BreachTally {
    pub fn add(&mut self, record: &ExpRecord) {
        self.accounts.insert(record.account.clone());
        self.classes.insert(match record.account.0 {
            AccountKind::Email => DataClass::EmailAddresses,
            AccountKind::Username => DataClass::Usernames,
            AccountKind::Phone => DataClass::PhoneNumbers,
        });
        if record.material != Material::None {
            self.classes.insert(DataClass::Passwords);
        }
        if matches!(record.material, Material::Plain | Material::Sha1) {
            let digest = leakwatch_types::sha1(&record.password);
            self.sha1.insert((record.account.clone(), digest));
        }
        if matches!(record.material, Material::Plain | Material::Ntlm) {
            let digest = leakwatch_types::ntlm(&record.password);
            let key = (record.account.clone(), digest);
            let source = self.ntlm_source.entry(key.clone()).or_insert_with(|| record.password.clone());
            assert_eq!(*source, record.password, "generator bug: NTLM collision within one account");
            self.ntlm.insert(key);
        }
    }

    pub fn pwn_count(&self) -> u64 {
        self.accounts.len() as u64
    }
}

/// Accumulates the cross-breach answers.
#[derive(Default)]
pub(crate) struct Totals {
    emails: BTreeMap<String, BTreeSet<String>>,
    sha1: BTreeMap<[u8; 20], u64>,
    ntlm: BTreeMap<[u8; 16], u64>,
}

impl Totals {
    pub fn add_breach(&mut self, name: &str, tally: &BreachTally) {
        for (kind, value) in &tally.accounts {
            if *kind == AccountKind::Email {
                self.emails.entry(value.clone()).or_default().insert(name.to_string());
            }
        }
        for (_, digest) in &tally.sha1 {
            *self.sha1.entry(*digest).or_default() += 1;
        }
        for (_, digest) in &tally.ntlm {
            *self.ntlm.entry(*digest).or_default() += 1;
        }
    }

    pub fn has_email(&self, email: &str) -> bool {
        self.emails.contains_key(email)
    }

    pub fn finish(self, seed: u64, breaches: Vec<ExpBreach>, absent_emails: Vec<String>) -> Expected {
        let mut domains: BTreeMap<String, BTreeMap<String, Vec<String>>> = BTreeMap::new();
        let emails: BTreeMap<String, Vec<String>> =
            self.emails.into_iter().map(|(email, names)| (email, names.into_iter().collect())).collect();
        for (email, names) in &emails {
            let (alias, domain) = email.rsplit_once('@').expect("normalized addresses have an @");
            domains.entry(domain.to_string()).or_default().insert(alias.to_string(), names.clone());
        }
        Expected {
            seed,
            breaches,
            emails,
            absent_emails,
            domains,
            sha1: self.sha1.into_iter().map(|(d, n)| (encode_hex_upper(&d), n)).collect(),
            ntlm: self.ntlm.into_iter().map(|(d, n)| (encode_hex_upper(&d), n)).collect(),
        }
    }
}
