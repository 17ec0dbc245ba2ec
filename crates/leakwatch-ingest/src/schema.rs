//! Which tables of a database dump hold accounts, which of their columns
//! matter, and how a row of such a table becomes a [`Record`].
//!
//! The forum and site packages (XenForo, vBulletin, MyBB, phpBB, Invision,
//! SMF, WordPress, Joomla, Discourse; `DESIGN.md` §9) are recognized by their
//! column names, which survive the table prefixes admins change: `passwd` next
//! to `member_name` is SMF whatever the table is called. The package decides
//! how a password column is typed (32 hex digits and a salt are vBulletin's
//! `md5(md5(p).salt)` in one and MyBB's in another). Tables of no known
//! package still work: columns are recognized by name (`*mail*`, `*pass*`,
//! `*salt*`), and, when no name tells, by the shape of the first row's values.
//!
//! Two packages keep the account and the password hash in different tables
//! (XenForo: `xf_user` and `xf_user_authenticate`; Discourse: `user_emails`
//! and `users`). Dumps write tables in alphabetical order, which puts the
//! table with the account first in both, so the reader remembers each user id's
//! account (see [`Join`]) and looks it up when the hashes come.

use std::collections::HashMap;

use leakwatch_types::{
    column_role, normalize_email, normalize_phone, normalize_username, Account, AccountKind, ColumnRole,
    DataClass, HashKind, PasswordHashes, PasswordMaterial, Record,
};

use encoding_rs::WINDOWS_1252;

use crate::columns::{ChosenBy, ColumnOverrides, ColumnReport, ColumnUse, OverrideRole};
use crate::encoding::identity_text;
use crate::hash_shape::{detect_hash, normalize_hash_value};
use crate::report::{Classes, Reason};
use crate::sql_value::Value;

/// What a column holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Col {
    Email,
    Username,
    /// An address or a user name, whichever each value is (`--columns account=`).
    Account,
    /// A phone number (`--columns phone=`).
    Phone,
    /// Always a hash, typed by shape (`--columns hash=`).
    Hash,
    /// Always a plaintext (`--columns password=`).
    Plain,
    /// A password column: a hash when its value has a hash's shape, else plaintext.
    Password,
    Salt,
    /// vBulletin 5's `token`: `"<md5> <salt>"` (legacy scheme) or a crypt string.
    Token,
    /// XenForo's `xf_user_authenticate.data`, a PHP-serialized array.
    XfData,
    /// The user id that joins two tables.
    Key,
    /// Discourse's `user_emails.primary`.
    Primary,
    /// Only adds a data class.
    Class(DataClass),
    Ignore,
}

/// How a package hashes passwords, for values whose shape is ambiguous.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scheme {
    /// By shape alone (phpBB, WordPress, Joomla, IPS 4 and unknown tables).
    Shape,
    VBulletin,
    /// MyBB and IPB 3.
    MyBb,
    Smf,
    Discourse,
    XenForo,
}

/// A table's part in a two-table account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Join {
    None,
    /// Rows give a user id's account (XenForo's `xf_user`, Discourse's `user_emails`).
    Provide {
        emits: bool,
    },
    /// Rows take their account from the user id when their own columns have none.
    Lookup,
}

/// User id -> account, from a [`Join::Provide`] table.
pub(crate) type JoinMap = HashMap<Vec<u8>, Account>;

/// At most this many user ids are remembered for a join; later users of a
/// bigger table keep their own columns' account or are rejected as `no account`.
pub(crate) const MAX_JOIN: usize = 4_000_000;

/// How the rows of one table (under one `INSERT` head or `COPY`) are read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TablePlan {
    pub(crate) table: String,
    pub(crate) cols: Vec<Col>,
    pub(crate) scheme: Scheme,
    pub(crate) join: Join,
    /// Whether `\` escapes in the rows' strings.
    pub(crate) escapes: bool,
    /// Rows are `COPY` text lines rather than `INSERT` tuples.
    pub(crate) copy: bool,
}

fn any_is(cols: &[String], names: &[&str]) -> bool {
    cols.iter().any(|c| names.contains(&c.as_str()))
}

/// The role of a column by its (lower-case) name, in a table of `scheme`.
fn role(name: &str, table: &str, scheme: Scheme) -> Col {
    match name {
        "email" | "user_email" | "email_address" | "emailaddress" | "mail" | "e_mail" | "e-mail"
        | "useremail" => Col::Email,
        "username" | "user_login" | "member_name" | "login" | "user_name" | "nickname" | "nick" | "uname"
        | "screen_name" | "user" => Col::Username,
        // IPB and IPS keep the login name in `name`; elsewhere it is a person's name.
        "name" if table.ends_with("members") => Col::Username,
        "password" | "user_password" | "user_pass" | "passwd" | "pass" | "pwd" | "members_pass_hash"
        | "password_hash" | "passhash" | "pw_hash" | "hash" | "plaintext" | "password_plain" => Col::Password,
        "salt" | "members_pass_salt" | "password_salt" | "user_salt" => Col::Salt,
        "token" if scheme == Scheme::VBulletin => Col::Token,
        "data" if scheme == Scheme::XenForo => Col::XfData,
        "user_id" if matches!(scheme, Scheme::XenForo | Scheme::Discourse) => Col::Key,
        "id" if scheme == Scheme::Discourse && table.ends_with("users") => Col::Key,
        "primary" if scheme == Scheme::Discourse => Col::Primary,
        "ip"
        | "ip_address"
        | "ipaddress"
        | "user_ip"
        | "member_ip"
        | "member_ip2"
        | "regip"
        | "lastip"
        | "last_ip"
        | "reg_ip"
        | "registration_ip_address"
        | "ip_addr"
        | "last_ip_address"
        | "lastvisitip" => Col::Class(DataClass::IpAddresses),
        "birthday" | "dob" | "date_of_birth" | "birthdate" | "user_birthday" | "bday" | "bday_day" => {
            Col::Class(DataClass::DatesOfBirth)
        }
        "name" | "first_name" | "last_name" | "full_name" | "realname" | "real_name" | "firstname"
        | "lastname" => Col::Class(DataClass::Names),
        "password_hint" | "passwordhint" | "pw_hint" | "hint" => Col::Class(DataClass::PasswordHints),
        _ if name.ends_with("salt") => Col::Salt,
        // The words of the name (`pass_hash`, `signup_ip`, `mail_address`).
        _ => match role_by_words(name) {
            Some(ColumnRole::Email) => Col::Email,
            Some(ColumnRole::Username) => Col::Username,
            Some(ColumnRole::Password | ColumnRole::Hash) => Col::Password,
            Some(ColumnRole::Class(class)) => Col::Class(class),
            Some(ColumnRole::Phone) | None => Col::Ignore,
        },
    }
}

/// [`column_role`] of a name, remembered: a dump written one `INSERT` per row
/// asks for every column of every table once a row, and splitting a name into
/// words costs a few allocations.
fn role_by_words(name: &str) -> Option<ColumnRole> {
    thread_local! {
        static ROLES: std::cell::RefCell<HashMap<String, Option<ColumnRole>>> = Default::default();
    }
    ROLES.with_borrow_mut(|roles| {
        if let Some(role) = roles.get(name) {
            return *role;
        }
        let role = column_role(name.as_bytes()).map(|(role, _)| role);
        // Names are few in a dump; a bound keeps a hostile one from growing this.
        if roles.len() < 4096 {
            roles.insert(name.to_owned(), role);
        }
        role
    })
}

/// The column a `--columns` role makes of a SQL column.
fn override_col(role: OverrideRole) -> Col {
    match role {
        OverrideRole::Email => Col::Email,
        OverrideRole::Username => Col::Username,
        OverrideRole::Account => Col::Account,
        OverrideRole::Phone => Col::Phone,
        OverrideRole::Password => Col::Plain,
        OverrideRole::Hash => Col::Hash,
        OverrideRole::Ip => Col::Class(DataClass::IpAddresses),
        OverrideRole::Name => Col::Class(DataClass::Names),
        OverrideRole::Skip => Col::Ignore,
    }
}

impl TablePlan {
    /// The plan for `table` with `columns` (lower-case), or `None` when the
    /// table does not hold accounts by its column names. `columns` may be empty
    /// (an `INSERT` without column list into a table the dump never created):
    /// then only [`TablePlan::from_values`] can tell.
    pub(crate) fn new(
        table: &str,
        columns: &[String],
        escapes: bool,
        copy: bool,
        overrides: Option<&ColumnOverrides>,
    ) -> TablePlan {
        let table = table.to_ascii_lowercase();
        let scheme = if table.ends_with("user_authenticate")
            || (any_is(columns, &["user_id"])
                && any_is(columns, &["register_date"])
                && table.ends_with("user"))
        {
            Scheme::XenForo
        } else if table.ends_with("user_emails") && any_is(columns, &["primary"])
            || table.ends_with("users") && any_is(columns, &["password_hash"]) && any_is(columns, &["salt"])
        {
            Scheme::Discourse
        } else if any_is(columns, &["userid"]) && any_is(columns, &["joindate"]) {
            Scheme::VBulletin
        } else if any_is(columns, &["loginkey"]) || any_is(columns, &["members_pass_salt"]) {
            Scheme::MyBb
        } else if any_is(columns, &["member_name"]) && any_is(columns, &["passwd"]) {
            Scheme::Smf
        } else {
            Scheme::Shape
        };
        let cols: Vec<Col> = columns
            .iter()
            .map(|c| match overrides.and_then(|o| o.find(c.as_bytes(), None)) {
                Some(o) => override_col(o),
                None => role(c, &table, scheme),
            })
            .collect();
        let join = match scheme {
            Scheme::XenForo if table.ends_with("user_authenticate") => Join::Lookup,
            Scheme::XenForo => Join::Provide { emits: true },
            Scheme::Discourse if table.ends_with("user_emails") => Join::Provide { emits: false },
            Scheme::Discourse => Join::Lookup,
            _ => Join::None,
        };
        TablePlan { table, cols, scheme, join, escapes, copy }
    }

    /// Whether rows of this table become records (or feed a join).
    pub(crate) fn holds_accounts(&self) -> bool {
        let has = |c: Col| self.cols.contains(&c);
        self.join != Join::None
            || has(Col::Email)
            || has(Col::Account)
            || has(Col::Phone)
            || has(Col::Username)
                && (has(Col::Password)
                    || has(Col::Token)
                    || has(Col::XfData)
                    || has(Col::Hash)
                    || has(Col::Plain))
    }

    /// Which column of `columns` (the table's names) became what.
    pub(crate) fn report(&self, columns: &[String], overrides: Option<&ColumnOverrides>) -> ColumnReport {
        let mut report = ColumnReport { table: Some(self.table.clone()), ..ColumnReport::default() };
        for (name, col) in columns.iter().zip(&self.cols) {
            let role = match col {
                Col::Email => "email",
                Col::Username => "username",
                Col::Account => "account",
                Col::Phone => "phone",
                Col::Password => "password",
                Col::Hash => "hash",
                Col::Plain => "password",
                Col::Salt => "salt",
                Col::Token => "password",
                Col::XfData => "password",
                Col::Key => "user id",
                Col::Primary => "primary",
                Col::Class(class) => class.hibp_name(),
                Col::Ignore => {
                    report.left_out.push(name.clone());
                    continue;
                }
            };
            let by = match overrides.and_then(|o| o.find(name.as_bytes(), None)) {
                Some(_) => ChosenBy::Override,
                None => ChosenBy::Name,
            };
            report.used.push(ColumnUse { column: name.clone(), role, detail: None, by });
        }
        report
    }

    /// Settles a table whose columns have no names (an `INSERT` without column
    /// list into a table the dump never created) from its first row: a column
    /// whose value is a valid address holds emails, one whose value is shaped
    /// like a hash holds passwords.
    pub(crate) fn settle_by_values(&mut self, values: &[Value<'_>]) {
        if self.cols.len() != values.len() {
            self.cols = vec![Col::Ignore; values.len()];
        }
        for (col, value) in self.cols.iter_mut().zip(values) {
            let Some(text) = value.as_deref().and_then(|v| std::str::from_utf8(v).ok()) else { continue };
            if *col == Col::Ignore && text.contains('@') && normalize_email(text).is_ok() {
                *col = Col::Email;
            } else if *col == Col::Ignore && detect_hash(text, None).is_some_and(|k| k != HashKind::Unknown) {
                *col = Col::Password;
            }
        }
    }

    /// The join key and account of a [`Join::Provide`] row, if it has both.
    pub(crate) fn provided(&self, values: &[Value<'_>]) -> Option<(Vec<u8>, Account)> {
        if values.len() != self.cols.len() {
            return None;
        }
        let (mut key, mut primary) = (None, true);
        for (col, value) in self.cols.iter().zip(values) {
            match col {
                Col::Key => key = value.as_deref(),
                Col::Primary => {
                    primary = matches!(value.as_deref(), Some(b"t" | b"true" | b"1" | b"TRUE"));
                }
                _ => {}
            }
        }
        if !primary {
            return None;
        }
        let account = self.own_account(values).ok()?;
        Some((key?.to_vec(), account))
    }

    /// The record a row of this table makes (`None`: a row that only feeds a
    /// join), with the data classes its other columns show.
    pub(crate) fn record(
        &self,
        values: &[Value<'_>],
        join: Option<&JoinMap>,
        classes: &mut Classes,
    ) -> Result<Option<Record>, Reason> {
        if values.len() != self.cols.len() {
            return Err(Reason::WrongFieldCount);
        }
        if self.join == (Join::Provide { emits: false }) {
            return Ok(None);
        }
        let joined = match (self.join, join) {
            (Join::Lookup, Some(map)) => self.field(values, Col::Key).and_then(|k| map.get(k)).cloned(),
            _ => None,
        };
        let account = match self.own_account(values) {
            // The joined table's address beats a user name in this one.
            Ok(own) if own.kind == AccountKind::Email => own,
            Ok(own) => joined.unwrap_or(own),
            Err(Reason::NoAccount) => joined.ok_or(Reason::NoAccount)?,
            Err(reason) => return Err(reason),
        };
        let password = self.password(values);
        let mut row_classes = Classes::default();
        for (col, value) in self.cols.iter().zip(values) {
            if let (Col::Class(class), Some(v)) = (col, value) {
                let v = v.trim_ascii();
                if !v.is_empty() && v != b"0" && v != b"0000-00-00" {
                    row_classes.add(*class);
                }
            }
        }
        classes.union(row_classes);
        Ok(Some(Record { account, password, website: None }))
    }

    fn field<'v>(&self, values: &'v [Value<'_>], want: Col) -> Option<&'v [u8]> {
        self.cols.iter().zip(values).find(|(c, _)| **c == want).and_then(|(_, v)| v.as_deref())
    }

    /// A non-empty value of the first column with role `want`.
    fn non_empty<'v>(&self, values: &'v [Value<'_>], want: Col) -> Option<&'v [u8]> {
        self.field(values, want).filter(|v| !v.trim_ascii().is_empty())
    }

    /// The account from this row's own columns: the address, else the user name.
    fn own_account(&self, values: &[Value<'_>]) -> Result<Account, Reason> {
        if let Some(email) = self.non_empty(values, Col::Email) {
            // Not UTF-8: read as Windows-1252, as user names are (`SET NAMES latin1`).
            let text = identity_text(email, WINDOWS_1252);
            let value = normalize_email(&text).map_err(Reason::email)?;
            return Ok(Account { kind: AccountKind::Email, value });
        }
        if let Some(account) = self.non_empty(values, Col::Account) {
            let text = identity_text(account, WINDOWS_1252);
            if text.contains('@') {
                let value = normalize_email(&text).map_err(Reason::email)?;
                return Ok(Account { kind: AccountKind::Email, value });
            }
            let value = normalize_username(&text).ok_or(Reason::InvalidUsername)?;
            return Ok(Account { kind: AccountKind::Username, value });
        }
        if let Some(user) = self.non_empty(values, Col::Username) {
            let text = identity_text(user, WINDOWS_1252);
            let value = normalize_username(&text).ok_or(Reason::InvalidUsername)?;
            return Ok(Account { kind: AccountKind::Username, value });
        }
        if let Some(phone) = self.non_empty(values, Col::Phone) {
            let value = normalize_phone(&identity_text(phone, WINDOWS_1252)).ok_or(Reason::InvalidPhone)?;
            return Ok(Account { kind: AccountKind::Phone, value });
        }
        Err(Reason::NoAccount)
    }

    /// The password material of a row, typed by the package's scheme.
    fn password(&self, values: &[Value<'_>]) -> Option<PasswordMaterial> {
        let salt = self.non_empty(values, Col::Salt).map(|s| String::from_utf8_lossy(s));
        if let Some(token) = self.non_empty(values, Col::Token) {
            let token = String::from_utf8_lossy(token);
            // vBulletin 5's legacy scheme keeps `"<md5> <salt>"` in one column.
            if let Some((hash, salt)) = token.trim().split_once(' ') {
                if is_hex(hash, 32) {
                    return Some(hash_of(HashKind::VBulletin, format!("{hash}:{salt}")));
                }
            }
            return Some(by_shape(&token, "token"));
        }
        if let Some(blob) = self.non_empty(values, Col::XfData) {
            return xenforo_blob(blob);
        }
        if let Some(plain) = self.field(values, Col::Plain).filter(|v| !v.is_empty()) {
            return Some(PasswordMaterial::Plain(PasswordHashes::of(plain)));
        }
        if let Some(hash) = self.non_empty(values, Col::Hash) {
            return Some(by_shape(&String::from_utf8_lossy(hash.trim_ascii()), ""));
        }
        let value = self
            .cols
            .iter()
            .zip(values)
            .find(|(c, v)| **c == Col::Password && v.as_deref().is_some_and(|v| !v.is_empty()))?
            .1
            .as_deref()?;
        let text = String::from_utf8_lossy(value.trim_ascii());
        match (self.scheme, salt) {
            (Scheme::VBulletin, Some(salt)) if is_hex(&text, 32) => {
                Some(hash_of(HashKind::VBulletin, format!("{text}:{salt}")))
            }
            (Scheme::MyBb, Some(salt)) if is_hex(&text, 32) => {
                Some(hash_of(HashKind::MyBb, format!("{text}:{salt}")))
            }
            (Scheme::Discourse, Some(salt)) if is_hex(&text, 64) => {
                Some(hash_of(HashKind::DiscoursePbkdf2, format!("{text}:{salt}")))
            }
            (Scheme::Smf, _) if is_hex(&text, 40) => {
                // SMF salts with the lower-cased member name.
                let name = self
                    .non_empty(values, Col::Username)
                    .map(|user| identity_text(user, WINDOWS_1252))
                    .unwrap_or_default();
                Some(hash_of(HashKind::SmfSha1, format!("{text}:{}", name.to_lowercase())))
            }
            (_, Some(salt)) if is_hex(&text, 32) => {
                Some(hash_of(HashKind::SaltedMd5, format!("{text}:{salt}")))
            }
            _ => {
                if detect_hash(&text, None).is_some() || looks_like_crypt(&text) {
                    Some(by_shape(&text, ""))
                } else {
                    // Not shaped like any hash: the site stored the plaintext.
                    Some(PasswordMaterial::Plain(PasswordHashes::of(value)))
                }
            }
        }
    }
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// `$id$...`: a modular crypt string of a scheme not listed by shape (phpBB's
/// converted `$CP$`, `$md5_mybb$`...): a hash, never a plaintext.
fn looks_like_crypt(s: &str) -> bool {
    let Some(rest) = s.strip_prefix('$') else { return false };
    match rest.find('$') {
        Some(n) => n > 0 && rest[..n].bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'),
        None => false,
    }
}

fn hash_of(kind: HashKind, value: String) -> PasswordMaterial {
    PasswordMaterial::Hash { kind, value: value.into_boxed_str() }
}

fn by_shape(text: &str, column: &str) -> PasswordMaterial {
    let kind = detect_hash(text, Some(column)).unwrap_or(HashKind::Unknown);
    PasswordMaterial::Hash { kind, value: normalize_hash_value(kind, text) }
}

/// The hash in XenForo's `data` blob: `a:1:{s:4:"hash";s:60:"$2y$...";}`, with
/// a `salt` entry for the old `XF:Core` scheme.
fn xenforo_blob(blob: &[u8]) -> Option<PasswordMaterial> {
    let text = String::from_utf8_lossy(blob);
    let entry = |key: &str| -> Option<String> {
        let at = text.find(&format!("\"{key}\";s:"))? + key.len() + 5;
        let rest = &text[at..];
        let colon = rest.find(':')?;
        let len: usize = rest[..colon].parse().ok()?;
        let value = rest[colon + 1..].strip_prefix('"')?;
        value.get(..len).map(str::to_owned)
    };
    let hash = entry("hash")?;
    match entry("salt") {
        Some(salt) if is_hex(&hash, 64) => Some(hash_of(HashKind::XenForoSha256, format!("{hash}:{salt}"))),
        _ => Some(by_shape(&hash, "")),
    }
}
