//! What a column of a dump holds, by its name: the vocabulary shared by the
//! CSV, NDJSON and SQL readers and by the generator that states their expected
//! answers (`docs/ingest-rules.md`, "Column names").
//!
//! Real dumps name columns every way (`pass_hash`, `passwd_md5`, `signup_ip`,
//! `mail_address`, `login_name`, `phone_no`), so a name is split into words
//! (on `_`, `-`, spaces and camelCase) and judged by them: a name plays a role
//! when one of its words is a key word of that role and every other word is
//! one the role allows beside it. Words that change the meaning (`changed`,
//! `reset`, `token`, `salt`, `verified`, `id`, `count`, `country`...) are in no
//! role's list, which is what keeps `password_changed_at`, `pass_reset_token`,
//! `email_verified`, `user_id`, `login_count` and `ip_country` out.

use crate::DataClass;

/// What a column holds, as far as its name tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ColumnRole {
    Email,
    Username,
    /// A plaintext password (or, when every sampled value has a hash's shape, a hash).
    Password,
    /// A password hash.
    Hash,
    Phone,
    /// A column that only adds a data class to the breach.
    Class(DataClass),
}

/// How a name was matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameMatch {
    /// One of the names listed whole (`email`, `password`, `ip_address`...).
    Exact,
    /// By its words, of which it has one.
    OneWord,
    /// By its words, of which it has several.
    Words,
}

/// Names matched whole, before any splitting (ASCII case-insensitively).
const EXACT: &[(&str, ColumnRole)] = &[
    ("email", ColumnRole::Email),
    ("e-mail", ColumnRole::Email),
    ("mail", ColumnRole::Email),
    ("email_address", ColumnRole::Email),
    ("emailaddress", ColumnRole::Email),
    ("user_email", ColumnRole::Email),
    ("username", ColumnRole::Username),
    ("user", ColumnRole::Username),
    ("login", ColumnRole::Username),
    ("user_login", ColumnRole::Username),
    ("user_name", ColumnRole::Username),
    ("nickname", ColumnRole::Username),
    ("password", ColumnRole::Password),
    ("pass", ColumnRole::Password),
    ("passwd", ColumnRole::Password),
    ("pwd", ColumnRole::Password),
    ("plaintext", ColumnRole::Password),
    ("password_plain", ColumnRole::Password),
    ("hash", ColumnRole::Hash),
    ("password_hash", ColumnRole::Hash),
    ("passhash", ColumnRole::Hash),
    ("pw_hash", ColumnRole::Hash),
    ("sha1", ColumnRole::Hash),
    ("md5", ColumnRole::Hash),
    ("ntlm", ColumnRole::Hash),
    ("phone", ColumnRole::Phone),
    ("phone_number", ColumnRole::Phone),
    ("mobile", ColumnRole::Phone),
    ("telephone", ColumnRole::Phone),
    ("name", ColumnRole::Class(DataClass::Names)),
    ("first_name", ColumnRole::Class(DataClass::Names)),
    ("last_name", ColumnRole::Class(DataClass::Names)),
    ("full_name", ColumnRole::Class(DataClass::Names)),
    ("ip", ColumnRole::Class(DataClass::IpAddresses)),
    ("ip_address", ColumnRole::Class(DataClass::IpAddresses)),
    ("last_ip", ColumnRole::Class(DataClass::IpAddresses)),
    ("reg_ip", ColumnRole::Class(DataClass::IpAddresses)),
    ("dob", ColumnRole::Class(DataClass::DatesOfBirth)),
    ("birthday", ColumnRole::Class(DataClass::DatesOfBirth)),
    ("date_of_birth", ColumnRole::Class(DataClass::DatesOfBirth)),
    ("address", ColumnRole::Class(DataClass::PhysicalAddresses)),
    ("street", ColumnRole::Class(DataClass::PhysicalAddresses)),
    ("city", ColumnRole::Class(DataClass::PhysicalAddresses)),
];

/// Words any role but the user name and the person's name allows beside its
/// key word: who the value belongs to, when it was taken, how it is written.
const AROUND: &[&str] = &[
    "user",
    "users",
    "member",
    "account",
    "acct",
    "customer",
    "client",
    "contact",
    "reg",
    "registration",
    "register",
    "registered",
    "signup",
    "login",
    "last",
    "current",
    "cur",
    "primary",
    "main",
    "new",
    "old",
    "orig",
    "original",
    "real",
    "raw",
    "plain",
    "plaintext",
    "clear",
    "cleartext",
    "value",
    "val",
    "text",
    "string",
    "str",
    "data",
    "field",
    "address",
    "addr",
    "u",
    "m",
    "personal",
    "home",
    "work",
    "remote",
];

struct Rule {
    role: ColumnRole,
    keys: &'static [&'static str],
    /// Words allowed beside a key word, besides the keys themselves.
    with: &'static [&'static str],
    /// Whether [`AROUND`] is allowed too.
    around: bool,
}

const PASSWORD_KEYS: &[&str] = &[
    "pass",
    "password",
    "passwd",
    "passwort",
    "pwd",
    "pw",
    "pword",
    "passw",
    "pswd",
    "userpass",
    "userpassword",
    "senha",
    "contrasena",
    "parola",
    "wachtwoord",
    "haslo",
    "motdepasse",
    "mdp",
];
const HASH_KEYS: &[&str] = &[
    "hash",
    "hashed",
    "md5",
    "sha1",
    "sha256",
    "sha512",
    "sha",
    "bcrypt",
    "ntlm",
    "nthash",
    "crypt",
    "crypted",
    "encrypted",
    "digest",
    "phpass",
    "argon2",
    "passhash",
    "pwhash",
    "pwdhash",
    "passwordhash",
];

/// The rules in the order they are tried: the first that matches wins.
const RULES: &[Rule] = &[
    Rule {
        role: ColumnRole::Class(DataClass::PasswordHints),
        keys: &["hint", "hints", "passwordhint", "pwhint"],
        with: &["password", "pass", "passwd", "pwd", "pw", "security", "user", "member", "account"],
        around: false,
    },
    // A password column with a hash's word is a hash column; tried first.
    Rule { role: ColumnRole::Hash, keys: HASH_KEYS, with: PASSWORD_KEYS, around: true },
    Rule { role: ColumnRole::Password, keys: PASSWORD_KEYS, with: &[], around: true },
    Rule {
        role: ColumnRole::Class(DataClass::IpAddresses),
        keys: &[
            "ip",
            "ipaddress",
            "ipaddr",
            "regip",
            "lastip",
            "ipv4",
            "ipv6",
            "ip4",
            "ip6",
            "loginip",
            "userip",
            "signupip",
            "remoteip",
            "clientip",
        ],
        with: &["first", "creation", "created", "source", "origin", "visit", "lastvisit"],
        around: true,
    },
    Rule {
        role: ColumnRole::Email,
        keys: &[
            "email",
            "mail",
            "emailaddress",
            "emailaddr",
            "useremail",
            "mailaddress",
            "courriel",
            "correo",
        ],
        with: &["e"],
        around: true,
    },
    Rule {
        role: ColumnRole::Phone,
        keys: &[
            "phone",
            "mobile",
            "tel",
            "telephone",
            "cell",
            "cellphone",
            "msisdn",
            "phonenumber",
            "mobilephone",
        ],
        with: &["number", "no", "nr", "num", "cell"],
        around: true,
    },
    Rule {
        role: ColumnRole::Username,
        keys: &[
            "username",
            "user",
            "login",
            "nick",
            "nickname",
            "uname",
            "screenname",
            "loginname",
            "membername",
        ],
        with: &["name", "screen", "member", "account", "forum", "site"],
        around: false,
    },
    Rule {
        role: ColumnRole::Class(DataClass::Names),
        keys: &[
            "name",
            "firstname",
            "lastname",
            "fullname",
            "realname",
            "surname",
            "forename",
            "givenname",
            "fname",
            "lname",
        ],
        with: &[
            "first", "last", "full", "real", "given", "family", "middle", "sur", "display", "person", "legal",
        ],
        around: false,
    },
    Rule {
        role: ColumnRole::Class(DataClass::DatesOfBirth),
        keys: &["dob", "birthday", "birthdate", "bday", "birth", "dateofbirth"],
        with: &["date", "of", "day", "year", "user", "member"],
        around: false,
    },
    Rule {
        role: ColumnRole::Class(DataClass::PhysicalAddresses),
        keys: &["address", "street", "city", "streetaddress"],
        with: &[
            "line",
            "home",
            "billing",
            "shipping",
            "mailing",
            "postal",
            "physical",
            "residential",
            "user",
            "1",
            "2",
        ],
        around: false,
    },
];

/// The role a column or key name plays, and how it was matched; `None` when the
/// name tells nothing (or tells something else: `password_changed_at`).
///
/// Names are compared ASCII-case-insensitively after trimming ASCII whitespace.
/// Beyond the names listed whole, a name must be at most 64 bytes of ASCII
/// letters, digits, `_`, `-` and spaces: a field of a combo line (`bob@x.com`,
/// `hunter2!`) is never taken for a column name.
pub fn column_role(name: &[u8]) -> Option<(ColumnRole, NameMatch)> {
    let name = name.trim_ascii();
    if let Some(&(_, role)) = EXACT.iter().find(|(n, _)| n.as_bytes().eq_ignore_ascii_case(name)) {
        return Some((role, NameMatch::Exact));
    }
    if name.is_empty()
        || name.len() > 64
        || !name.iter().all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b' '))
    {
        return None;
    }
    let words = words(name);
    let how = if words.len() == 1 { NameMatch::OneWord } else { NameMatch::Words };
    RULES.iter().find(|rule| matches_rule(rule, &words)).map(|rule| (rule.role, how))
}

fn matches_rule(rule: &Rule, words: &[String]) -> bool {
    let is_key = |w: &str| rule.keys.contains(&w);
    let allowed = |w: &str| is_key(w) || rule.with.contains(&w) || (rule.around && AROUND.contains(&w));
    // `screen_name` and `ip_address` are also read as the one word they spell.
    (words.iter().any(|w| is_key(w)) && words.iter().all(|w| allowed(w))) || is_key(&words.concat())
}

/// The words of a name, lower-case: split on `_`, `-` and spaces, and where
/// camelCase starts a word (`regIP` -> reg, ip; `IPAddress` -> ip, address).
/// A word's trailing digits are dropped unless the word is known with them
/// (`email2` -> email; `sha1` and `ipv4` stay).
pub fn words(name: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    for part in name.split(|&b| matches!(b, b'_' | b'-' | b' ')).filter(|p| !p.is_empty()) {
        let mut start = 0;
        for i in 1..part.len() {
            let (prev, cur) = (part[i - 1], part[i]);
            let next_lower = part.get(i + 1).is_some_and(u8::is_ascii_lowercase);
            let boundary = cur.is_ascii_uppercase()
                && (prev.is_ascii_lowercase()
                    || prev.is_ascii_digit()
                    || (prev.is_ascii_uppercase() && next_lower));
            if boundary {
                out.push(&part[start..i]);
                start = i;
            }
        }
        out.push(&part[start..]);
    }
    out.into_iter()
        .map(|w| {
            let w = String::from_utf8_lossy(w).to_ascii_lowercase();
            let known = |w: &str| {
                RULES.iter().any(|r| r.keys.contains(&w) || r.with.contains(&w)) || AROUND.contains(&w)
            };
            let stripped = w.trim_end_matches(|c: char| c.is_ascii_digit());
            if known(&w) || stripped.is_empty() {
                w
            } else {
                stripped.to_owned()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role(name: &str) -> Option<ColumnRole> {
        column_role(name.as_bytes()).map(|(r, _)| r)
    }

    #[test]
    fn names_split_into_words() {
        assert_eq!(words(b"pass_hash"), ["pass", "hash"]);
        assert_eq!(words(b"regIP"), ["reg", "ip"]);
        assert_eq!(words(b"IPAddress"), ["ip", "address"]);
        assert_eq!(words(b"userPassMD5"), ["user", "pass", "md5"]);
        assert_eq!(words(b"email2"), ["email"]);
        assert_eq!(words(b"sha256"), ["sha256"]);
        assert_eq!(words(b"E-Mail Address"), ["e", "mail", "address"]);
    }

    #[test]
    fn real_dumps_names_find_their_roles() {
        use ColumnRole::*;
        let ip = Class(DataClass::IpAddresses);
        let cases: &[(&str, ColumnRole)] = &[
            ("pass_hash", Hash),
            ("pwd", Password),
            ("passwd_md5", Hash),
            ("hash", Hash),
            ("user_pass", Password),
            ("signup_ip", ip),
            ("last_ip", ip),
            ("regip", ip),
            ("ip_addr", ip),
            ("lastLoginIP", ip),
            ("password_sha1", Hash),
            ("pw", Password),
            ("userpass", Password),
            ("email_addr", Email),
            ("mail_address", Email),
            ("contactEmail", Email),
            ("email2", Email),
            ("login_name", Username),
            ("screen_name", Username),
            ("phone_no", Phone),
            ("mobile", Phone),
            ("mobile_number", Phone),
            ("dob", Class(DataClass::DatesOfBirth)),
            ("birthdate", Class(DataClass::DatesOfBirth)),
            ("birth_date", Class(DataClass::DatesOfBirth)),
            ("password_hint", Class(DataClass::PasswordHints)),
            ("firstName", Class(DataClass::Names)),
            ("display_name", Class(DataClass::Names)),
            ("mailing_address", Class(DataClass::PhysicalAddresses)),
        ];
        for (name, want) in cases {
            assert_eq!(role(name), Some(*want), "{name}");
        }
    }

    #[test]
    fn names_that_only_look_alike_play_no_role() {
        for name in [
            "password_changed_at",
            "pass_reset_token",
            "hash_salt",
            "salt",
            "email_verified",
            "user_id",
            "login_count",
            "ip_country",
            "last_login",
            "email_hash",
            "passport_no",
            "user_agent",
            "phone_code",
            "company_name",
            "bob@example.com",
            "hunter2!",
            "id",
            "",
        ] {
            assert_eq!(role(name), None, "{name}");
        }
    }

    #[test]
    fn one_word_and_several_words_are_told_apart() {
        assert_eq!(column_role(b" E-Mail "), Some((ColumnRole::Email, NameMatch::Exact)));
        assert_eq!(column_role(b"regip").map(|m| m.1), Some(NameMatch::OneWord));
        assert_eq!(column_role(b"signup_ip").map(|m| m.1), Some(NameMatch::Words));
        // A password that is a column name and digits is one word, not a header.
        assert_eq!(column_role(b"password123"), Some((ColumnRole::Password, NameMatch::OneWord)));
    }
}
