//! NDJSON dumps: one JSON object per line, fields found by key anywhere in the
//! object's nesting.
//!
//! The object is walked as it is parsed (a serde visitor) instead of being
//! built as a `serde_json::Value`: that keeps the document order of keys, which
//! decides "first match wins", without a map per line, and stops nothing from
//! being validated, since the whole line must still parse.

use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::chunk::{lines, MAX_LINE};
use crate::columns::{role_of, Role, Row};
use crate::report::{Classes, Reason, Tallies};
use leakwatch_types::Record;

/// The first string value found for each role.
#[derive(Debug, Default)]
struct Found {
    email: Option<String>,
    username: Option<String>,
    phone: Option<String>,
    password: Option<String>,
    /// The value and the key it was found under.
    hash: Option<(String, String)>,
    classes: Classes,
}

impl Found {
    fn offer(&mut self, role: Role, key: &str, value: &str) {
        let slot = match role {
            Role::Email => &mut self.email,
            Role::Username => &mut self.username,
            Role::Phone => &mut self.phone,
            Role::Password => &mut self.password,
            Role::Hash => {
                if self.hash.is_none() {
                    self.hash = Some((value.to_owned(), key.to_owned()));
                }
                return;
            }
            Role::Class(class) => {
                if !value.trim_ascii().is_empty() {
                    self.classes.add(class);
                }
                return;
            }
        };
        if slot.is_none() {
            *slot = Some(value.to_owned());
        }
    }

    fn into_record(self) -> Result<(Record, Classes), Reason> {
        fn bytes(v: &Option<String>) -> Option<&[u8]> {
            v.as_deref().map(str::as_bytes)
        }
        let row = Row {
            email: bytes(&self.email),
            username: bytes(&self.username),
            phone: bytes(&self.phone),
            password: bytes(&self.password),
            hash: self.hash.as_ref().map(|(v, k)| (v.as_bytes(), k.as_bytes())),
            classes: self.classes,
        };
        // JSON text is UTF-8: no identity needs the legacy encoding.
        row.into_record(encoding_rs::UTF_8).map(|r| (r, self.classes))
    }
}

/// Walks a JSON object depth-first in document order.
struct Object<'f>(&'f mut Found);

impl<'de> DeserializeSeed<'de> for Object<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Object<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key_seed(Key)? {
            map.next_value_seed(Member { key, found: self.0 })?;
        }
        Ok(())
    }
}

/// A key, reduced to its role and, when it has one, its name.
struct Key;

impl<'de> DeserializeSeed<'de> for Key {
    type Value = Option<(Role, String)>;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key {
    type Value = Option<(Role, String)>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(role_of(v.as_bytes()).map(|role| (role, v.to_owned())))
    }
}

/// The value of an object member: taken when it is a string under a known key,
/// walked when it is an object, skipped otherwise.
struct Member<'f> {
    key: Option<(Role, String)>,
    found: &'f mut Found,
}

impl<'de> DeserializeSeed<'de> for Member<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Member<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        if let Some((role, key)) = &self.key {
            self.found.offer(*role, key, v);
        }
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        Object(self.found).visit_map(map)
    }

    // Arrays are not searched: their elements have no key of their own.
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(())
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
}

/// Parses the lines of a chunk.
pub(crate) fn parse_chunk(bytes: &[u8], first_line: u64, out: &mut Vec<Record>, tallies: &mut Tallies) {
    let mut line_no = first_line;
    for line in lines(bytes) {
        match parse_line(line) {
            Ok(None) => tallies.blank += 1,
            Ok(Some((record, classes))) => {
                tallies.accept(&record);
                tallies.classes.union(classes);
                out.push(record);
            }
            Err(reason) => tallies.reject(reason, line_no),
        }
        line_no += 1;
    }
    tallies.lines += line_no - first_line;
}

/// One line: `None` when blank; the record and the extra classes its keys show.
fn parse_line(line: &[u8]) -> Result<Option<(Record, Classes)>, Reason> {
    // `line` has lost its line ending already (see `chunk::lines`).
    if line.len() > MAX_LINE {
        return Err(Reason::LineTooLong);
    }
    let line = line.trim_ascii();
    if line.is_empty() {
        return Ok(None);
    }
    let mut found = Found::default();
    let mut de = serde_json::Deserializer::from_slice(line);
    Object(&mut found).deserialize(&mut de).map_err(|_| Reason::InvalidJson)?;
    de.end().map_err(|_| Reason::InvalidJson)?;
    found.into_record().map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use leakwatch_types::{AccountKind, DataClass, HashKind, PasswordHashes, PasswordMaterial};

    fn parse(line: &str) -> Result<Option<(Record, Classes)>, Reason> {
        parse_line(line.as_bytes())
    }

    #[test]
    fn keys_are_found_depth_first_in_document_order() {
        let (rec, _) = parse(r#"{"profile": {"Email": "A@B.co"}, "email": "c@d.co", "password": "pw"}"#)
            .expect("valid")
            .expect("not blank");
        assert_eq!(rec.account.value, "a@b.co");
        assert_eq!(rec.password, Some(PasswordMaterial::Plain(PasswordHashes::of(b"pw"))));

        let (rec, _) = parse(r#"{"email": 5, "user": {"email": "x@y.co"}}"#).expect("valid").expect("record");
        assert_eq!(rec.account.value, "x@y.co", "non-string values are skipped, objects walked");

        let (rec, classes) = parse(
            r#"{"login": "Bob", "ntlm": "8846F7EAEE8FB117AD06BDD830B7586C", "ip": "1.2.3.4", "city": ""}"#,
        )
        .expect("valid")
        .expect("record");
        assert_eq!(rec.account.kind, AccountKind::Username);
        assert!(matches!(rec.password, Some(PasswordMaterial::Hash { kind: HashKind::Ntlm, .. })));
        let mut want = Classes::default();
        want.add(DataClass::IpAddresses);
        assert_eq!(classes, want);

        let (rec, _) = parse(r#"{"list": [{"email": "no@t.co"}], "email": "yes@t.co"}"#)
            .expect("valid")
            .expect("record");
        assert_eq!(rec.account.value, "yes@t.co", "arrays are not searched");
    }

    #[test]
    fn bad_json_and_non_objects_are_rejected() {
        for bad in ["{", "[1]", "\"s\"", "{\"email\": \"a@b.co\"} x", "{\"a\":1}{}", "nul", "{\"\\ud800\":1}"]
        {
            assert_eq!(parse(bad).err(), Some(Reason::InvalidJson), "{bad}");
        }
        assert_eq!(parse("  ").ok(), Some(None));
        assert_eq!(parse("{}").err(), Some(Reason::NoAccount));
        assert_eq!(parse_line(b"{\"email\": \"\xff@b.co\"}").err(), Some(Reason::InvalidJson));
        let deep = "{\"a\":".repeat(200) + &"}".repeat(200);
        assert_eq!(parse(&deep).err(), Some(Reason::InvalidJson), "nesting is bounded");
    }
}
