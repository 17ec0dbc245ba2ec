//! NDJSON dumps: one JSON object per line, fields found by key anywhere in the
//! object's nesting.
//!
//! The object is walked as it is parsed (a serde visitor) instead of being
//! built as a `serde_json::Value`: that keeps the document order of keys, which
//! decides "first match wins", without a map per line, and stops nothing from
//! being validated, since the whole line must still parse.

use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

use std::collections::HashMap;
use std::io::{self, Read};

use crate::chunk::{lines, Source, MAX_LINE};
use crate::columns::{self, role_by_name, ColumnOverrides, ColumnRef, ColumnReport, Role, Row, SAMPLE_ROWS};
use crate::report::{Classes, Reason, Tallies};
use leakwatch_types::{Record, Records};

/// The role of each key: decided once per input from the names, `--columns`
/// and the string values of the keys in its first lines.
#[derive(Debug, Default)]
pub(crate) struct Vocabulary {
    /// The keys seen in the sampled lines, exactly as written.
    sampled: HashMap<String, Option<Role>>,
    overrides: Option<ColumnOverrides>,
    pub(crate) report: ColumnReport,
}

impl Vocabulary {
    /// Samples the first [`SAMPLE_ROWS`] lines ahead (without consuming them).
    /// The inner error: a key `--columns` names is in none of them.
    pub(crate) fn sample<R: Read>(
        source: &mut Source<R>,
        overrides: Option<&ColumnOverrides>,
    ) -> io::Result<Result<Vocabulary, String>> {
        if overrides.is_some_and(ColumnOverrides::by_index) {
            return Ok(Err("NDJSON keys are named, not numbered".into()));
        }
        let (bytes, at_eof) = crate::reader::read_ahead(source)?;
        let whole = if at_eof { bytes } else { &bytes[..memchr::memrchr(b'\n', bytes).map_or(0, |i| i + 1)] };
        let mut keys: Vec<(Vec<u8>, Vec<Vec<u8>>)> = Vec::new();
        for line in lines(whole).map(<[u8]>::trim_ascii).filter(|l| !l.is_empty()).take(SAMPLE_ROWS) {
            let mut pairs = Vec::new();
            let mut de = serde_json::Deserializer::from_slice(line);
            if Pairs(&mut pairs).deserialize(&mut de).is_ok() && de.end().is_ok() {
                for (key, value) in pairs {
                    match keys.iter_mut().find(|(k, _)| *k == key) {
                        Some((_, values)) => values.push(value),
                        None => keys.push((key, vec![value])),
                    }
                }
            }
        }
        if let Some(missing) = overrides.and_then(|o| {
            o.missing(|c| match c {
                ColumnRef::Name(n) => keys.iter().any(|(k, _)| k.eq_ignore_ascii_case(n.as_bytes())),
                ColumnRef::Index(_) => false,
            })
        }) {
            return Ok(Err(format!("{missing} in the first {SAMPLE_ROWS} lines")));
        }
        let columns: Vec<(Vec<u8>, Vec<&[u8]>)> =
            keys.iter().map(|(k, values)| (k.clone(), values.iter().map(Vec::as_slice).collect())).collect();
        let (roles, report) = columns::plan(&columns, overrides, false);
        let sampled = keys
            .into_iter()
            .zip(roles)
            .map(|((k, _), role)| (String::from_utf8_lossy(&k).into_owned(), role))
            .collect();
        Ok(Ok(Vocabulary { sampled, overrides: overrides.cloned(), report }))
    }

    /// The role of `key`: as sampled, else by `--columns`, else by its name.
    fn role(&self, key: &str) -> Option<Role> {
        if let Some(role) = self.sampled.get(key) {
            return *role;
        }
        match &self.overrides {
            Some(o) => {
                columns::override_role(o, key.as_bytes()).unwrap_or_else(|| role_by_name(key.as_bytes()))
            }
            None => role_by_name(key.as_bytes()),
        }
    }
}

/// Collects the string members of an object and its nested objects, in
/// document order, as (key, value).
struct Pairs<'p>(&'p mut Vec<(Vec<u8>, Vec<u8>)>);

impl<'de> DeserializeSeed<'de> for Pairs<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Pairs<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            map.next_value_seed(PairValue { key, out: &mut *self.0 })?;
        }
        Ok(())
    }
}

/// A member's value for [`Pairs`]: kept when a string, walked when an object.
struct PairValue<'p> {
    key: String,
    out: &'p mut Vec<(Vec<u8>, Vec<u8>)>,
}

impl<'de> DeserializeSeed<'de> for PairValue<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

/// The scalar visits of a visitor that reads objects only: numbers, booleans
/// and nulls carry no column, so they are accepted and ignored.
macro_rules! skip_scalars {
    () => {
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
    };
}

impl<'de> Visitor<'de> for PairValue<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        self.out.push((self.key.into_bytes(), v.as_bytes().to_vec()));
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        Pairs(self.out).visit_map(map)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(())
    }

    skip_scalars!();
}

/// The first string value found for each role.
#[derive(Debug, Default)]
struct Found {
    email: Option<String>,
    account: Option<String>,
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
            Role::Account => &mut self.account,
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
            account: bytes(&self.account),
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
struct Object<'f>(&'f mut Found, &'f Vocabulary);

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
        while let Some(key) = map.next_key_seed(Key(self.1))? {
            map.next_value_seed(Member { key, found: self.0, vocabulary: self.1 })?;
        }
        Ok(())
    }
}

/// A key, reduced to its role and, when it has one, its name.
struct Key<'v>(&'v Vocabulary);

impl<'de> DeserializeSeed<'de> for Key<'_> {
    type Value = Option<(Role, String)>;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key<'_> {
    type Value = Option<(Role, String)>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(self.0.role(v).map(|role| (role, v.to_owned())))
    }
}

/// The value of an object member: taken when it is a string under a known key,
/// walked when it is an object, skipped otherwise.
struct Member<'f> {
    key: Option<(Role, String)>,
    found: &'f mut Found,
    vocabulary: &'f Vocabulary,
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
        Object(self.found, self.vocabulary).visit_map(map)
    }

    // Arrays are not searched: their elements have no key of their own.
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(())
    }

    skip_scalars!();
}

/// Parses the lines of a chunk.
pub(crate) fn parse_chunk(
    bytes: &[u8],
    vocabulary: &Vocabulary,
    first_line: u64,
    out: &mut Records,
    tallies: &mut Tallies,
) {
    let mut line_no = first_line;
    for line in lines(bytes) {
        match parse_line(line, vocabulary) {
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
fn parse_line(line: &[u8], vocabulary: &Vocabulary) -> Result<Option<(Record, Classes)>, Reason> {
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
    Object(&mut found, vocabulary).deserialize(&mut de).map_err(|_| Reason::InvalidJson)?;
    de.end().map_err(|_| Reason::InvalidJson)?;
    found.into_record().map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use leakwatch_types::{AccountKind, DataClass, HashKind, PasswordHashes, PasswordMaterial};

    fn parse(line: &str) -> Result<Option<(Record, Classes)>, Reason> {
        parse_line(line.as_bytes(), &Vocabulary::default())
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
        assert_eq!(
            parse_line(b"{\"email\": \"\xff@b.co\"}", &Vocabulary::default()).err(),
            Some(Reason::InvalidJson)
        );
        let deep = "{\"a\":".repeat(200) + &"}".repeat(200);
        assert_eq!(parse(&deep).err(), Some(Reason::InvalidJson), "nesting is bounded");
    }
}
