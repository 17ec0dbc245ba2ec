//! The pieces of `docs/ingest-rules.md` the generator needs to state expected
//! answers: the stable rejection reasons, the column vocabulary, and format
//! detection, which the writers use only as a guard (a combo whose first line
//! would be detected as CSV is rearranged, never mislabelled).

/// Rejection reasons, spelled exactly as the rules spell them.
pub mod reason {
    pub const LINE_TOO_LONG: &str = "line too long";
    pub const CONTROL_CHARACTERS: &str = "control characters";
    pub const NO_SEPARATOR: &str = "no separator";
    pub const EMAIL_NO_AT: &str = "invalid email: no @";
    pub const EMAIL_LOCAL_PART: &str = "invalid email: local part";
    pub const EMAIL_DOMAIN: &str = "invalid email: domain";
    pub const EMAIL_IP_LITERAL: &str = "invalid email: IP literal domain";
    pub const NOT_AN_EMAIL: &str = "not an email address";
    pub const INVALID_USERNAME: &str = "invalid username";
    pub const NO_ACCOUNT: &str = "no account";
    pub const WRONG_FIELD_COUNT: &str = "wrong field count";
    pub const INVALID_JSON: &str = "invalid JSON";
}

/// Whether a header field is a column name for format detection: a name listed
/// whole, or one of several words that play a role (`signup_ip`), never a lone
/// word (a combo's password can be `password123`).
pub fn is_known_column(field: &str) -> bool {
    leakwatch_types::column_role(field.as_bytes())
        .is_some_and(|(_, how)| how != leakwatch_types::NameMatch::OneWord)
}

/// The format names reports use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Combo,
    Csv,
    Ndjson,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Combo => "combo",
            Format::Csv => "csv",
            Format::Ndjson => "ndjson",
        }
    }
}

/// Detection as `--format auto` does it, from the first line that is neither
/// blank nor too long.
pub fn detect(first_line: &[u8]) -> Format {
    let line = first_line.trim_ascii();
    if line.first() == Some(&b'{') {
        return Format::Ndjson;
    }
    let delims = [b',', b';', b'\t', b'|'];
    let counts = delims.map(|d| line.iter().filter(|&&b| b == d).count());
    // The most frequent delimiter; a tie goes to the one listed first.
    let (best, n) =
        counts.iter().enumerate().fold((0, 0), |acc, (i, &n)| if n > acc.1 { (i, n) } else { acc });
    if n == 0 {
        return Format::Combo;
    }
    let known = line.split(|&b| b == delims[best]).any(|field| {
        let field = field.trim_ascii();
        let field = field.strip_prefix(b"\"").and_then(|f| f.strip_suffix(b"\"")).unwrap_or(field);
        std::str::from_utf8(field).map(is_known_column).unwrap_or(false)
    });
    if known {
        Format::Csv
    } else {
        Format::Combo
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detection_follows_the_rules() {
        assert_eq!(detect(b"{\"email\":1}"), Format::Ndjson);
        assert_eq!(detect(b"id,Email,password"), Format::Csv);
        assert_eq!(detect(b"\"uid\";\"E-Mail\""), Format::Csv);
        assert_eq!(detect(b"user\tpass"), Format::Csv);
        assert_eq!(detect(b"bob@example.com:secret"), Format::Combo);
        assert_eq!(detect(b"bob@example.com;hunter2"), Format::Combo);
        // The hazard the writers guard against: a combo whose password is a column name.
        assert_eq!(detect(b"bob@example.com;password"), Format::Csv);
        assert_eq!(detect(b"member_no,mail_address,passwd_md5"), Format::Csv);
        assert_eq!(detect(b"bob@example.com;password123"), Format::Combo);
    }
}
