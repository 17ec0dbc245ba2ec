//! Recognizing a password hash by its shape, and the column it came from.
//!
//! Bare hex is ambiguous (32 hex digits are MD5 in a web database and NTLM in a
//! Windows dump), so the name of the column or key the value came from breaks
//! the tie. Salted forum schemes that need a second column are left to the
//! table-aware readers; this module only looks at one value.

use leakwatch_types::HashKind;

/// The kind of hash `value` looks like, or `None` when it does not look like a
/// password hash at all. `column_hint` is the name of the column or key the
/// value was found under, compared case-insensitively.
pub fn detect_hash(value: &str, column_hint: Option<&str>) -> Option<HashKind> {
    let value = value.trim();
    let hint = column_hint.map(str::trim).unwrap_or("");
    if value.is_empty() || value.bytes().any(|b| b.is_ascii_whitespace() || b.is_ascii_control()) {
        return None;
    }
    if is_hex(value) {
        return match value.len() {
            32 if hint.eq_ignore_ascii_case("ntlm") => Some(HashKind::Ntlm),
            32 => Some(HashKind::Md5),
            40 => Some(HashKind::Sha1),
            64 => Some(HashKind::Sha256),
            128 => Some(HashKind::Sha512),
            _ => None,
        };
    }
    if let Some(hex) = value.strip_prefix('*') {
        if hex.len() == 40 && is_hex(hex) {
            return Some(HashKind::MySql41);
        }
    }
    if let Some((hex, salt)) = value.split_once(':') {
        if hex.len() == 32 && is_hex(hex) && !salt.is_empty() {
            return Some(HashKind::SaltedMd5);
        }
    }
    // Modular crypt formats and friends, by prefix. Each prefix must be followed
    // by something, so a bare `$1$` is not taken for a hash.
    const PREFIXES: &[(&str, HashKind)] = &[
        ("$2a$", HashKind::Bcrypt),
        ("$2b$", HashKind::Bcrypt),
        ("$2x$", HashKind::Bcrypt),
        ("$2y$", HashKind::Bcrypt),
        ("$P$", HashKind::Phpass),
        ("$H$", HashKind::Phpass),
        ("$1$", HashKind::Md5Crypt),
        ("$5$", HashKind::Sha256Crypt),
        ("$6$", HashKind::Sha512Crypt),
        ("$argon2id$", HashKind::Argon2),
        ("$argon2i$", HashKind::Argon2),
        ("$argon2d$", HashKind::Argon2),
        ("pbkdf2_sha256$", HashKind::DjangoPbkdf2),
        ("$S$", HashKind::Drupal7),
        ("{SSHA}", HashKind::LdapSsha),
        ("SCRAM-SHA-256$", HashKind::ScramSha256),
        ("$wp$", HashKind::WordPressBcrypt),
        // Recognizably a hash, of a scheme HashKind does not name.
        ("{SHA}", HashKind::Unknown),
    ];
    PREFIXES
        .iter()
        .find(|(prefix, _)| value.len() > prefix.len() && value.starts_with(prefix))
        .map(|&(_, kind)| kind)
}

/// The form a hash value is kept in: bare hex (and MySQL's `*` + hex) in upper
/// case, as HIBP prints digests; anything else exactly as found, since salts
/// and base64 are case-sensitive.
pub fn normalize_hash_value(kind: HashKind, value: &str) -> Box<str> {
    let value = value.trim();
    match kind {
        HashKind::Md5
        | HashKind::Sha1
        | HashKind::Ntlm
        | HashKind::Sha256
        | HashKind::Sha512
        | HashKind::MySql41 => value.to_ascii_uppercase().into_boxed_str(),
        _ => value.into(),
    }
}

fn is_hex(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_are_recognized() {
        let md5 = "5f4dcc3b5aa765d61d8327deb882cf99";
        let sha1 = "5baa61e4c9b93f3f0682250b6cf8331b7ee68fd8";
        let cases: &[(&str, Option<&str>, Option<HashKind>)] = &[
            (md5, None, Some(HashKind::Md5)),
            (md5, Some("md5"), Some(HashKind::Md5)),
            (md5, Some("hash"), Some(HashKind::Md5)),
            (md5, Some(" NTLM "), Some(HashKind::Ntlm)),
            (&md5.to_uppercase(), Some("ntlm"), Some(HashKind::Ntlm)),
            (sha1, None, Some(HashKind::Sha1)),
            (&format!("*{}", sha1.to_uppercase()), None, Some(HashKind::MySql41)),
            (&"a".repeat(64), None, Some(HashKind::Sha256)),
            (&"a".repeat(128), None, Some(HashKind::Sha512)),
            (&"a".repeat(31), None, None),
            (&"a".repeat(33), None, None),
            ("$2y$10$abcdefghijklmnopqrstuuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ01", None, Some(HashKind::Bcrypt)),
            ("$2a$08$x", None, Some(HashKind::Bcrypt)),
            ("$P$BxyzAbc", None, Some(HashKind::Phpass)),
            ("$H$9abc", None, Some(HashKind::Phpass)),
            ("$1$salt$hash", None, Some(HashKind::Md5Crypt)),
            ("$5$salt$hash", None, Some(HashKind::Sha256Crypt)),
            ("$6$salt$hash", None, Some(HashKind::Sha512Crypt)),
            ("$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA", None, Some(HashKind::Argon2)),
            ("pbkdf2_sha256$600000$salt$hash=", None, Some(HashKind::DjangoPbkdf2)),
            (&format!("{md5}:sa1t"), None, Some(HashKind::SaltedMd5)),
            (&format!("{md5}:"), None, None),
            ("$S$Dabc", None, Some(HashKind::Drupal7)),
            ("{SSHA}abc==", None, Some(HashKind::LdapSsha)),
            ("$wp$2y$10$abc", None, Some(HashKind::WordPressBcrypt)),
            ("SCRAM-SHA-256$4096:c2FsdA==$a:b", None, Some(HashKind::ScramSha256)),
            ("{SHA}abc=", None, Some(HashKind::Unknown)),
            ("$1$", None, None),
            ("hunter2", None, None),
            ("", None, None),
            ("$2y$10$ with space", None, None),
        ];
        for (value, hint, want) in cases {
            assert_eq!(detect_hash(value, *hint), *want, "value {value:?} hint {hint:?}");
        }
    }

    #[test]
    fn hex_values_are_kept_upper_case_and_others_as_found() {
        assert_eq!(&*normalize_hash_value(HashKind::Sha1, " abcdef "), "ABCDEF");
        assert_eq!(&*normalize_hash_value(HashKind::Bcrypt, "$2y$10$aBc"), "$2y$10$aBc");
    }
}
