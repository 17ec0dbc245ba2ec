//! The vocabulary shared by every leakwatch crate: what a leaked record is once it
//! has been parsed (an account plus optional password material), how accounts are
//! normalized, and how passwords and accounts become fixed-width keys.
//!
//! **Architecture Invariant:** nothing here knows about files, formats or storage.
//! A [`Record`] never holds a plaintext password: the parser hashes it while the
//! bytes are still in its buffer, and only digests cross into the store.

mod account;
mod blake3_lanes;
mod breach;
mod columns;
mod hash;
mod hex;
mod lanes;
mod md4_lanes;
mod records;
mod sha1_lanes;

pub use account::{
    normalize_domain, normalize_domain_bytes, normalize_email, normalize_phone, normalize_plain_email,
    normalize_plain_email_into, normalize_username, Account, AccountKind, EmailError,
};
pub use breach::{validate_breach_name, DataClass};
pub use columns::{column_role, ColumnRole, NameMatch};
pub use hash::{
    ntlm, ntlm_many, sha1, sha1_many, Blinder, HashKind, Key16, NtlmLanes, PasswordHashes, PasswordMaterial,
    Sha1Lanes,
};
pub use hex::{decode_decimal, decode_hex, decode_hex_into, encode_hex_upper};
pub use records::{PasswordRef, RecordRef, Records};

/// One leaked credential or account as it crosses from ingest to the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub account: Account,
    pub password: Option<PasswordMaterial>,
    /// For a stealer log: the normalized domain of the website whose login was
    /// captured together with this account. `None` for every other dump.
    pub website: Option<String>,
}
