//! What the columns of a CSV header and the keys of NDJSON objects hold, and
//! the rules that turn the values found under them into a [`Record`].
//!
//! A column's role comes from `--columns` ([`ColumnOverrides`]), else from the
//! words of its name (`leakwatch_types::column_role`), else from the content of
//! the input's first rows ([`classify`]); [`plan`] decides once per input and
//! says so in a [`ColumnReport`]. Both formats then reduce a row to a [`Row`]
//! (the first value found for each role) and hand it to [`Row::into_record`],
//! so CSV and NDJSON cannot drift apart.

use std::fmt;

use leakwatch_types::{
    column_role, normalize_email, normalize_phone, normalize_username, Account, AccountKind, ColumnRole,
    DataClass, HashKind, NameMatch, PasswordHashes, PasswordMaterial, Record,
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
    /// An email address or a user name, whichever each value is (`@` or not).
    Account,
    Password,
    Hash,
    Phone,
    /// A column that only adds a data class to the breach.
    Class(DataClass),
}

impl Role {
    fn from_name(role: ColumnRole) -> Role {
        match role {
            ColumnRole::Email => Role::Email,
            ColumnRole::Username => Role::Username,
            ColumnRole::Password => Role::Password,
            ColumnRole::Hash => Role::Hash,
            ColumnRole::Phone => Role::Phone,
            ColumnRole::Class(class) => Role::Class(class),
        }
    }

    /// How the column report names the role.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Role::Email => "email",
            Role::Username => "username",
            Role::Account => "account",
            Role::Password => "password",
            Role::Hash => "hash",
            Role::Phone => "phone",
            Role::Class(class) => class.hibp_name(),
        }
    }

    /// Roles of which a row uses the first column only.
    fn is_single(self) -> bool {
        !matches!(self, Role::Class(_))
    }
}

/// Which role a column or key name plays, for format detection: names listed
/// whole, and names of several words (`signup_ip`), not a lone word, which a
/// combo's password can be (`password123`).
pub(crate) fn role_of(name: &[u8]) -> Option<Role> {
    column_role(name).filter(|(_, how)| *how != NameMatch::OneWord).map(|(role, _)| Role::from_name(role))
}

/// Which role a column or key name plays in a header or an object.
pub(crate) fn role_by_name(name: &[u8]) -> Option<Role> {
    column_role(name).map(|(role, _)| Role::from_name(role))
}

/// The values of one row that matter, by role: the first column (CSV) or the
/// first key in document order (NDJSON) of each role.
#[derive(Debug, Default)]
pub(crate) struct Row<'a> {
    pub(crate) email: Option<&'a [u8]>,
    pub(crate) account: Option<&'a [u8]>,
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
            Role::Account => {
                self.account.get_or_insert(value);
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
            let value = normalize_email(&identity_text(email, legacy)).map_err(Reason::email)?;
            return Ok(Account { kind: AccountKind::Email, value });
        }
        if let Some(account) = non_empty(self.account) {
            let text = identity_text(account, legacy);
            if text.contains('@') {
                let value = normalize_email(&text).map_err(Reason::email)?;
                return Ok(Account { kind: AccountKind::Email, value });
            }
            let value = normalize_username(&text).ok_or(Reason::InvalidUsername)?;
            return Ok(Account { kind: AccountKind::Username, value });
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
    let kind = detect_hash(&text, Some(&column)).unwrap_or(HashKind::Unknown);
    Some(PasswordMaterial::Hash { kind, value: normalize_hash_value(kind, &text) })
}

/// A role `--columns` can give a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OverrideRole {
    Email,
    Username,
    /// An email address or a user name, by each value.
    Account,
    Phone,
    /// A plaintext password.
    Password,
    Hash,
    Ip,
    Name,
    /// Not read at all, whatever its name or content.
    Skip,
}

impl OverrideRole {
    const NAMES: [(&'static str, OverrideRole); 9] = [
        ("email", OverrideRole::Email),
        ("username", OverrideRole::Username),
        ("account", OverrideRole::Account),
        ("phone", OverrideRole::Phone),
        ("password", OverrideRole::Password),
        ("hash", OverrideRole::Hash),
        ("ip", OverrideRole::Ip),
        ("name", OverrideRole::Name),
        ("skip", OverrideRole::Skip),
    ];

    pub(crate) fn role(self) -> Option<Role> {
        Some(match self {
            OverrideRole::Email => Role::Email,
            OverrideRole::Username => Role::Username,
            OverrideRole::Account => Role::Account,
            OverrideRole::Phone => Role::Phone,
            OverrideRole::Password => Role::Password,
            OverrideRole::Hash => Role::Hash,
            OverrideRole::Ip => Role::Class(DataClass::IpAddresses),
            OverrideRole::Name => Role::Class(DataClass::Names),
            OverrideRole::Skip => return None,
        })
    }
}

/// A column named by `--columns`: by name (ASCII case-insensitively), or by
/// 1-based position in a CSV without a header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ColumnRef {
    Name(String),
    Index(usize),
}

impl fmt::Display for ColumnRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ColumnRef::Name(name) => f.write_str(name),
            ColumnRef::Index(i) => write!(f, "column {i}"),
        }
    }
}

/// `--columns email=COL,hash=COL,...`: roles given to columns by the user, over
/// what their names and contents say.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ColumnOverrides {
    pub entries: Vec<(OverrideRole, ColumnRef)>,
}

impl std::str::FromStr for ColumnOverrides {
    type Err = String;

    /// `ROLE=COL` pairs separated by `,`; COL is a name, or a 1-based index.
    fn from_str(spec: &str) -> Result<ColumnOverrides, String> {
        let mut entries = Vec::new();
        for pair in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (role, col) =
                pair.split_once('=').ok_or_else(|| format!("{pair:?}: expected ROLE=COLUMN"))?;
            let (role, col) = (role.trim(), col.trim());
            let role = OverrideRole::NAMES
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(role))
                .map(|&(_, r)| r)
                .ok_or_else(|| {
                    let known: Vec<_> = OverrideRole::NAMES.iter().map(|(n, _)| *n).collect();
                    format!("unknown column role {role:?} (roles: {})", known.join(", "))
                })?;
            if col.is_empty() {
                return Err(format!("{pair:?}: no column"));
            }
            let col = match col.parse::<usize>() {
                Ok(0) => return Err(format!("{pair:?}: columns are numbered from 1")),
                Ok(i) => ColumnRef::Index(i),
                Err(_) => ColumnRef::Name(col.to_owned()),
            };
            if entries.iter().any(|(_, c)| *c == col) {
                return Err(format!("{col} is given two roles"));
            }
            entries.push((role, col));
        }
        if entries.is_empty() {
            return Err("no ROLE=COLUMN pair".into());
        }
        let by_index = entries.iter().filter(|(_, c)| matches!(c, ColumnRef::Index(_))).count();
        if by_index != 0 && by_index != entries.len() {
            return Err("columns are named either all by name or all by number".into());
        }
        Ok(ColumnOverrides { entries })
    }
}

impl ColumnOverrides {
    /// Columns are numbered: the CSV has no header.
    pub(crate) fn by_index(&self) -> bool {
        matches!(self.entries.first(), Some((_, ColumnRef::Index(_))))
    }

    /// The override for the column named `name` (or numbered `index`, 0-based).
    pub(crate) fn find(&self, name: &[u8], index: Option<usize>) -> Option<OverrideRole> {
        self.entries
            .iter()
            .find(|(_, c)| match c {
                ColumnRef::Name(n) => n.as_bytes().eq_ignore_ascii_case(name.trim_ascii()),
                ColumnRef::Index(i) => Some(*i) == index.map(|x| x + 1),
            })
            .map(|(r, _)| *r)
    }

    /// The first column among `names` that is not there, as an error message.
    pub(crate) fn missing(&self, mut present: impl FnMut(&ColumnRef) -> bool) -> Option<String> {
        self.entries.iter().find(|(_, c)| !present(c)).map(|(role, c)| {
            let role = OverrideRole::NAMES.iter().find(|(_, r)| r == role).map_or("?", |(n, _)| n);
            format!("--columns {role}={c}: no such column")
        })
    }
}

/// The role `overrides` give the column or key `name`: `Some(None)` to skip it.
pub(crate) fn override_role(overrides: &ColumnOverrides, name: &[u8]) -> Option<Option<Role>> {
    overrides.find(name, None).map(OverrideRole::role)
}

/// How a column came to its role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChosenBy {
    Name,
    Content,
    Override,
}

/// One column that is read, and what for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnUse {
    pub column: String,
    /// `email`, `username`, `account`, `password`, `hash`, `phone`, or a data
    /// class's name (`IP addresses`).
    pub role: &'static str,
    /// For a hash column: the shape its first values share (`md5`, `bcrypt`).
    pub detail: Option<String>,
    pub by: ChosenBy,
}

/// Which columns of an input (or of one SQL table) became what, and which were
/// left out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ColumnReport {
    /// The table, for a SQL dump.
    pub table: Option<String>,
    pub used: Vec<ColumnUse>,
    pub left_out: Vec<String>,
}

impl fmt::Display for ColumnReport {
    /// `user_email -> email, pass_hash -> hash (md5), signup_ip -> IP addresses
    /// (by content); left out: id`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(table) = &self.table {
            write!(f, "{table}: ")?;
        }
        for (i, used) in self.used.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{} -> {}", used.column, used.role)?;
            let by = match used.by {
                ChosenBy::Name => None,
                ChosenBy::Content => Some("by content"),
                ChosenBy::Override => Some("by --columns"),
            };
            match (&used.detail, by) {
                (Some(d), Some(by)) => write!(f, " ({d}, {by})")?,
                (Some(d), None) => write!(f, " ({d})")?,
                (None, Some(by)) => write!(f, " ({by})")?,
                (None, None) => {}
            }
        }
        if self.used.is_empty() {
            f.write_str("none")?;
        }
        if !self.left_out.is_empty() {
            write!(f, "; left out: {}", self.left_out.join(", "))?;
        }
        Ok(())
    }
}

/// What the first values of a column are, all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Content {
    Emails,
    Hashes(HashKind),
    Ips,
}

/// How many rows (or lines) after the header are sampled for [`classify`].
pub(crate) const SAMPLE_ROWS: usize = 100;

/// What the non-empty values in `values` (trimmed) are: all addresses, all
/// hashes of one known shape, or all IP addresses; or, with `unanimous` false,
/// at least nine in ten of them (a dump's first rows hold junk too). `None`
/// when there is no value or no kind has that share.
pub(crate) fn classify<'v>(
    values: impl IntoIterator<Item = &'v [u8]>,
    column: &str,
) -> Option<(Content, bool)> {
    let mut counts: Vec<(Content, usize)> = Vec::new();
    let mut total = 0;
    for value in values {
        let value = value.trim_ascii();
        if value.is_empty() {
            continue;
        }
        total += 1;
        let Ok(text) = std::str::from_utf8(value) else { continue };
        let kind = if text.contains('@') && normalize_email(text).is_ok() {
            Content::Emails
        } else if text.parse::<std::net::IpAddr>().is_ok() {
            Content::Ips
        } else {
            match detect_hash(text, Some(column)) {
                Some(kind) if kind != HashKind::Unknown => Content::Hashes(kind),
                _ => continue,
            }
        };
        match counts.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, n)) => *n += 1,
            None => counts.push((kind, 1)),
        }
    }
    let &(kind, n) = counts.iter().max_by_key(|(_, n)| *n)?;
    (n * 10 >= total * 9).then_some((kind, n == total))
}

/// The short name of a hash kind in the column report.
pub(crate) fn kind_name(kind: HashKind) -> String {
    format!("{kind:?}").to_ascii_lowercase()
}

/// Decides the role of every column of an input: the override, else the name,
/// else the content of its first values; and says so in a [`ColumnReport`]
/// (where, with `first_only`, a later column of a role a row takes once is
/// left out).
///
/// `columns` are the names (a header's fields, or keys) with the sampled
/// values of each. Content gives a column without a role by name: `Email` when
/// no column is an address by name, `Hash` when none is a password or a hash,
/// and the IP addresses class. A password column whose values are all hashes
/// of one shape is a hash column; a user-name column whose values are all
/// addresses, with no address column, is an account column.
pub(crate) fn plan(
    columns: &[(Vec<u8>, Vec<&[u8]>)],
    overrides: Option<&ColumnOverrides>,
    first_only: bool,
) -> (Vec<Option<Role>>, ColumnReport) {
    let mut roles: Vec<Option<(Role, ChosenBy)>> = columns
        .iter()
        .enumerate()
        .map(|(i, (name, _))| match overrides.and_then(|o| o.find(name, Some(i))) {
            Some(o) => o.role().map(|r| (r, ChosenBy::Override)),
            None => role_by_name(name).map(|r| (r, ChosenBy::Name)),
        })
        .collect();
    let overridden: Vec<bool> = columns
        .iter()
        .enumerate()
        .map(|(i, (n, _))| overrides.and_then(|o| o.find(n, Some(i))).is_some())
        .collect();
    let content: Vec<Option<(Content, bool)>> = columns
        .iter()
        .map(|(name, values)| classify(values.iter().copied(), &String::from_utf8_lossy(name)))
        .collect();
    let has = |roles: &[Option<(Role, ChosenBy)>], want: &[Role]| {
        roles.iter().flatten().any(|(r, _)| want.contains(r))
    };
    for i in 0..columns.len() {
        match (roles[i], content[i]) {
            // Named columns change role only when every value says so.
            (Some((Role::Password, ChosenBy::Name)), Some((Content::Hashes(_), true))) => {
                roles[i] = Some((Role::Hash, ChosenBy::Name));
            }
            (Some((Role::Username, ChosenBy::Name)), Some((Content::Emails, true)))
                if !has(&roles, &[Role::Email, Role::Account]) =>
            {
                roles[i] = Some((Role::Account, ChosenBy::Name));
            }
            (None, Some((Content::Emails, _)))
                if !overridden[i] && !has(&roles, &[Role::Email, Role::Account]) =>
            {
                roles[i] = Some((Role::Email, ChosenBy::Content));
            }
            (None, Some((Content::Hashes(_), _)))
                if !overridden[i] && !has(&roles, &[Role::Password, Role::Hash]) =>
            {
                roles[i] = Some((Role::Hash, ChosenBy::Content));
            }
            (None, Some((Content::Ips, _))) if !overridden[i] => {
                roles[i] = Some((Role::Class(DataClass::IpAddresses), ChosenBy::Content));
            }
            _ => {}
        }
    }
    let mut report = ColumnReport::default();
    let mut taken: Vec<Role> = Vec::new();
    for (i, (name, _)) in columns.iter().enumerate() {
        let name_text = String::from_utf8_lossy(name.trim_ascii()).into_owned();
        match roles[i] {
            // A CSV row reads the first column of an account or password role
            // only; an NDJSON line the first key of the role it has, which may
            // be any of them.
            Some((role, by)) if !(first_only && role.is_single() && taken.contains(&role)) => {
                taken.push(role);
                let detail = match (role, content[i]) {
                    (Role::Hash, Some((Content::Hashes(kind), _))) => Some(kind_name(kind)),
                    _ => None,
                };
                report.used.push(ColumnUse { column: name_text, role: role.label(), detail, by });
            }
            _ => report.left_out.push(name_text),
        }
    }
    let out = roles.into_iter().map(|r| r.map(|(role, _)| role)).collect();
    (out, report)
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
        // Words: in a header always, for detection only with several of them.
        assert_eq!(role_of(b"pass_hash"), Some(Role::Hash));
        assert_eq!(role_of(b"signupIP"), Some(Role::Class(DataClass::IpAddresses)));
        assert_eq!(role_of(b"regip"), None);
        assert_eq!(role_by_name(b"regip"), Some(Role::Class(DataClass::IpAddresses)));
        assert_eq!(role_of(b"password123"), None);
    }

    fn row<'a>(pairs: &[(&'a str, &'a str)]) -> Result<Record, Reason> {
        let mut row = Row::default();
        for (name, value) in pairs {
            if let Some(role) = role_by_name(name.as_bytes()) {
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

        assert_eq!(row(&[("email", "nope")]), Err(Reason::EmailNoAt));
        assert_eq!(row(&[("email", "a@10.0.0.1")]), Err(Reason::EmailIpLiteral));
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
