//! The column vocabulary shared by CSV headers and NDJSON keys, and the rules
//! that turn the values found under those names into a [`Record`].
//!
//! Both formats reduce a row to a [`Row`] (the first value found for each role)
//! and hand it to [`Row::into_record`], so CSV and NDJSON cannot drift apart.

use leakwatch_types::{
    normalize_email, normalize_phone, normalize_username, Account, AccountKind, DataClass, PasswordHashes,
    PasswordMaterial, Record,
};

use encoding_rs::Encoding;

use crate::encoding::identity_text;
use crate::hash_shape::{detect_hash, normalize_hash_value};
use crate::report::{Classes, Reason};

/// What a column holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Email,
    Username,
    Password,
    Hash,
    Phone,
    /// A column that only adds a data class to the breach.
    Class(DataClass),
}

/// Which role a column or key name plays: compared case-insensitively after
/// trimming.
pub(crate) fn role_of(name: &[u8]) -> Option<Role> {
    const NAMES: &[(&str, Role)] = &[
        ("email", Role::Email),
        ("e-mail", Role::Email),
        ("mail", Role::Email),
        ("email_address", Role::Email),
        ("emailaddress", Role::Email),
        ("user_email", Role::Email),
        ("username", Role::Username),
        ("user", Role::Username),
        ("login", Role::Username),
        ("user_login", Role::Username),
        ("user_name", Role::Username),
        ("nickname", Role::Username),
        ("password", Role::Password),
        ("pass", Role::Password),
        ("passwd", Role::Password),
        ("pwd", Role::Password),
        ("plaintext", Role::Password),
        ("password_plain", Role::Password),
        ("hash", Role::Hash),
        ("password_hash", Role::Hash),
        ("passhash", Role::Hash),
        ("pw_hash", Role::Hash),
        ("sha1", Role::Hash),
        ("md5", Role::Hash),
        ("ntlm", Role::Hash),
        ("phone", Role::Phone),
        ("phone_number", Role::Phone),
        ("mobile", Role::Phone),
        ("telephone", Role::Phone),
        ("name", Role::Class(DataClass::Names)),
        ("first_name", Role::Class(DataClass::Names)),
        ("last_name", Role::Class(DataClass::Names)),
        ("full_name", Role::Class(DataClass::Names)),
        ("ip", Role::Class(DataClass::IpAddresses)),
        ("ip_address", Role::Class(DataClass::IpAddresses)),
        ("last_ip", Role::Class(DataClass::IpAddresses)),
        ("reg_ip", Role::Class(DataClass::IpAddresses)),
        ("dob", Role::Class(DataClass::DatesOfBirth)),
        ("birthday", Role::Class(DataClass::DatesOfBirth)),
        ("date_of_birth", Role::Class(DataClass::DatesOfBirth)),
        ("address", Role::Class(DataClass::PhysicalAddresses)),
        ("street", Role::Class(DataClass::PhysicalAddresses)),
        ("city", Role::Class(DataClass::PhysicalAddresses)),
    ];
    let name = name.trim_ascii();
    NAMES.iter().find(|(n, _)| n.as_bytes().eq_ignore_ascii_case(name)).map(|&(_, r)| r)
}

/// The values of one row that matter, by role: the first column (CSV) or the
/// first key in document order (NDJSON) of each role.
#[derive(Debug, Default)]
pub(crate) struct Row<'a> {
    pub(crate) email: Option<&'a [u8]>,
    pub(crate) username: Option<&'a [u8]>,
    pub(crate) phone: Option<&'a [u8]>,
    pub(crate) password: Option<&'a [u8]>,
    /// The hash value and the name of its column, which disambiguates hex.
    pub(crate) hash: Option<(&'a [u8], &'a [u8])>,
    /// Extra data classes with a non-empty value in this row.
    pub(crate) classes: Classes,
}

impl<'a> Row<'a> {
    /// Offers a value for a role; the first one offered for each role is kept.
    pub(crate) fn offer(&mut self, role: Role, name: &'a [u8], value: &'a [u8]) {
        match role {
            Role::Email => {
                self.email.get_or_insert(value);
            }
            Role::Username => {
                self.username.get_or_insert(value);
            }
            Role::Phone => {
                self.phone.get_or_insert(value);
            }
            Role::Password => {
                self.password.get_or_insert(value);
            }
            Role::Hash => {
                self.hash.get_or_insert((value, name));
            }
            Role::Class(class) => {
                if !value.trim_ascii().is_empty() {
                    self.classes.add(class);
                }
            }
        }
    }

    /// The record the rules make of this row (`docs/ingest-rules.md`, CSV).
    /// `legacy` decodes identities that are not UTF-8.
    pub(crate) fn into_record(self, legacy: &'static Encoding) -> Result<Record, Reason> {
        let account = self.account(legacy)?;
        let password = match (self.password, self.hash) {
            (Some(plain), _) if !plain.is_empty() => Some(PasswordMaterial::Plain(PasswordHashes::of(plain))),
            (_, Some((value, column))) => hash_material(value, column),
            _ => None,
        };
        Ok(Record { account, password, website: None })
    }

    fn account(&self, legacy: &'static Encoding) -> Result<Account, Reason> {
        if let Some(email) = non_empty(self.email) {
            let value = normalize_email(&identity_text(email, legacy)).map_err(|_| Reason::InvalidEmail)?;
            return Ok(Account { kind: AccountKind::Email, value });
        }
        if let Some(user) = non_empty(self.username) {
            let value = normalize_username(&identity_text(user, legacy)).ok_or(Reason::InvalidUsername)?;
            return Ok(Account { kind: AccountKind::Username, value });
        }
        if let Some(phone) = non_empty(self.phone) {
            let value = normalize_phone(&identity_text(phone, legacy)).ok_or(Reason::InvalidPhone)?;
            return Ok(Account { kind: AccountKind::Phone, value });
        }
        Err(Reason::NoAccount)
    }
}

/// A value that is there and not empty after trimming ASCII whitespace.
fn non_empty(value: Option<&[u8]>) -> Option<&[u8]> {
    value.filter(|v| !v.trim_ascii().is_empty())
}

/// Password material from a hash column: typed by shape, `Unknown` when it looks
/// like no known scheme; nothing when the value is empty.
fn hash_material(value: &[u8], column: &[u8]) -> Option<PasswordMaterial> {
    let value = value.trim_ascii();
    if value.is_empty() {
        return None;
    }
    // Hash columns are ASCII in practice; other bytes are kept readable rather
    // than dropped, since the value is only ever stored, never matched as text.
    let text = String::from_utf8_lossy(value);
    let column = String::from_utf8_lossy(column);
    let kind = detect_hash(&text, Some(&column)).unwrap_or(leakwatch_types::HashKind::Unknown);
    Some(PasswordMaterial::Hash { kind, value: normalize_hash_value(kind, &text) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use leakwatch_types::HashKind;

    #[test]
    fn names_match_case_insensitively_after_trimming() {
        assert_eq!(role_of(b" E-Mail "), Some(Role::Email));
        assert_eq!(role_of(b"USER_LOGIN"), Some(Role::Username));
        assert_eq!(role_of(b"NTLM"), Some(Role::Hash));
        assert_eq!(role_of(b"City"), Some(Role::Class(DataClass::PhysicalAddresses)));
        assert_eq!(role_of(b"emails"), None);
        assert_eq!(role_of(b""), None);
    }

    fn row<'a>(pairs: &[(&'a str, &'a str)]) -> Result<Record, Reason> {
        let mut row = Row::default();
        for (name, value) in pairs {
            if let Some(role) = role_of(name.as_bytes()) {
                row.offer(role, name.as_bytes(), value.as_bytes());
            }
        }
        row.into_record(encoding_rs::WINDOWS_1252)
    }

    #[test]
    fn account_priority_and_password_material() {
        let rec =
            row(&[("username", "Bob"), ("email", "Bob@Example.com"), ("password", "pw")]).expect("accepted");
        assert_eq!(rec.account, Account { kind: AccountKind::Email, value: "bob@example.com".into() });
        assert_eq!(rec.password, Some(PasswordMaterial::Plain(PasswordHashes::of(b"pw"))));

        let rec = row(&[("email", " "), ("user", "Bob"), ("ntlm", "8846f7eaee8fb117ad06bdd830b7586c")])
            .expect("accepted");
        assert_eq!(rec.account.kind, AccountKind::Username);
        assert_eq!(
            rec.password,
            Some(PasswordMaterial::Hash {
                kind: HashKind::Ntlm,
                value: "8846F7EAEE8FB117AD06BDD830B7586C".into()
            })
        );

        assert_eq!(row(&[("email", "nope")]), Err(Reason::InvalidEmail));
        assert_eq!(row(&[("email", "a@b.co"), ("password", ""), ("hash", "")]).map(|r| r.password), Ok(None));
        assert_eq!(row(&[("user", "a\u{1}b")]), Err(Reason::InvalidUsername));
        assert_eq!(row(&[("phone", "12")]), Err(Reason::InvalidPhone));
        assert_eq!(row(&[("phone", "555-010-4477")]).map(|r| r.account.value), Ok("+5550104477".into()));
        assert_eq!(row(&[("name", "Bob")]), Err(Reason::NoAccount));
        assert_eq!(
            row(&[("mail", "a@b.co"), ("hash", "whatever")]).map(|r| r.password),
            Ok(Some(PasswordMaterial::Hash { kind: HashKind::Unknown, value: "whatever".into() }))
        );
    }
}
