//! The rules of `docs/ingest-rules.md`, one table per section, each case run
//! through the whole reader: once with the real chunk size and again with
//! chunks of a few bytes, which must change nothing.

use std::collections::BTreeMap;
use std::io::Write;

use leakwatch_types::{Account, AccountKind, DataClass, HashKind, PasswordHashes, PasswordMaterial, Record};

use crate::chunk::MAX_LINE;
use crate::input::RawInput;
use crate::reader::{read_chunked, CHUNK_SIZE};
use crate::{Format, Report};

mod archive;
mod columns;
mod sql;
mod stealer;

/// Chunk sizes every case is run with: the real one, then ones small enough
/// that chunks end inside most lines and quoted fields.
const CHUNK_SIZES: [usize; 6] = [CHUNK_SIZE, 1, 2, 3, 7, 64];

/// Reads `input` with one chunk size, collecting records in delivery order.
fn read_with(input: &[u8], format: Option<Format>, chunk_size: usize) -> (Report, Vec<Record>) {
    crate::fuzzing::read_bytes(input, format, chunk_size).expect("in-memory read")
}

/// Reads `input` with every chunk size and checks they agree.
fn read_all_ways(input: &[u8], format: Option<Format>) -> (Report, Vec<Record>) {
    let whole = read_with(input, format, CHUNK_SIZE);
    for size in &CHUNK_SIZES[1..] {
        let chunked = read_with(input, format, *size);
        assert_eq!(chunked, whole, "chunk size {size} changes the result for {:?}", show(input));
    }
    whole
}

fn show(input: &[u8]) -> String {
    if input.len() > 200 {
        format!("{}... ({} bytes)", String::from_utf8_lossy(&input[..200]), input.len())
    } else {
        String::from_utf8_lossy(input).into_owned()
    }
}

fn account(kind: AccountKind, value: &str) -> Account {
    Account { kind, value: value.into() }
}

/// An email record with a plaintext password (`None`: account only).
fn e(value: &str, password: Option<&[u8]>) -> Record {
    Record {
        account: account(AccountKind::Email, value),
        password: password.map(|p| PasswordMaterial::Plain(PasswordHashes::of(p))),
        website: None,
    }
}

fn u(value: &str, password: Option<&[u8]>) -> Record {
    Record { account: account(AccountKind::Username, value), ..e("", password) }
}

fn ph(value: &str, password: Option<&[u8]>) -> Record {
    Record { account: account(AccountKind::Phone, value), ..e("", password) }
}

fn hashed(mut record: Record, kind: HashKind, value: &str) -> Record {
    record.password = Some(PasswordMaterial::Hash { kind, value: value.into() });
    record
}

/// A case: input, expected records, expected rejections `(reason, lines)`.
struct Case<'a> {
    input: &'a [u8],
    records: Vec<Record>,
    rejected: &'a [(&'a str, &'a [u64])],
}

#[track_caller]
fn check(format: Option<Format>, want_format: Format, cases: Vec<Case<'_>>) {
    for case in cases {
        let (report, records) = read_all_ways(case.input, format);
        let input = show(case.input);
        assert_eq!(report.format, want_format, "format of {input:?}");
        assert_eq!(records, case.records, "records of {input:?}");
        let rejected: BTreeMap<&str, Vec<u64>> =
            report.rejected.iter().map(|(r, rej)| (*r, rej.sample_lines.clone())).collect();
        let want: BTreeMap<&str, Vec<u64>> = case.rejected.iter().map(|(r, l)| (*r, l.to_vec())).collect();
        assert_eq!(rejected, want, "rejections of {input:?}");
        for (reason, rej) in &report.rejected {
            if rej.count <= crate::SAMPLE_LINES as u64 {
                assert_eq!(rej.count as usize, rej.sample_lines.len(), "{reason} count of {input:?}");
            }
        }
        assert_eq!(report.accepted, records.len() as u64);
    }
}

fn long_line(prefix: &[u8], content_len: usize) -> Vec<u8> {
    let mut line = prefix.to_vec();
    line.resize(content_len, b'x');
    line
}

#[test]
fn reading_rules() {
    let exact = [long_line(b"a@b.co:", MAX_LINE), b"\n".to_vec()].concat();
    let exact_crlf = [long_line(b"a@b.co:", MAX_LINE), b"\r\n".to_vec()].concat();
    let over = [long_line(b"a@b.co:", MAX_LINE + 1), b"\nc@d.co:2\n".to_vec()].concat();
    let huge = [b"c@d.co:1\n".to_vec(), long_line(b"a@b.co:", 1 << 20), b"\nc@d.co:2".to_vec()].concat();
    let huge_last = [b"c@d.co:1\n".to_vec(), long_line(b"a@b.co:", 3 * MAX_LINE)].concat();
    let big_pw = long_line(b"", MAX_LINE - 7);
    // Only one CR belongs to the line ending; a second one is content.
    let two_crs =
        [b"c@d.co:1\n".to_vec(), long_line(b"a@b.co:", MAX_LINE), b"\r\r\nc@d.co:2\n".to_vec()].concat();
    let two_crs_first = two_crs[9..].to_vec();
    check(
        None,
        Format::Combo,
        vec![
            // A BOM at the very start is skipped; elsewhere it is data.
            Case {
                input: b"\xef\xbb\xbfa@b.co:pw\n",
                records: vec![e("a@b.co", Some(b"pw"))],
                rejected: &[],
            },
            Case {
                input: b"a@b.co:pw\n\xef\xbb\xbfc@d.co:pw\n",
                records: vec![e("a@b.co", Some(b"pw"))],
                rejected: &[("invalid email: local part", &[2])],
            },
            // LF and CRLF end lines; only one CR is dropped; a lone CR ends nothing.
            Case {
                input: b"a@b.co:1\r\nc@d.co:2\n\ne@f.co:3",
                records: vec![e("a@b.co", Some(b"1")), e("c@d.co", Some(b"2")), e("e@f.co", Some(b"3"))],
                rejected: &[],
            },
            Case {
                input: b"a@b.co:1\rc@d.co:2\n",
                records: vec![],
                rejected: &[("control characters", &[1])],
            },
            // Blank lines count as lines but are neither accepted nor rejected.
            Case {
                input: b"\n  \n\t\r\n\na@b.co:1\n \nx\n",
                records: vec![e("a@b.co", Some(b"1"))],
                rejected: &[("no separator", &[7])],
            },
            // 64 KiB of content is fine, one byte more is not, the line ending aside.
            Case { input: &exact, records: vec![e("a@b.co", Some(&exact[7..MAX_LINE]))], rejected: &[] },
            Case { input: &exact_crlf, records: vec![e("a@b.co", Some(&exact[7..MAX_LINE]))], rejected: &[] },
            Case {
                input: &over,
                records: vec![e("c@d.co", Some(b"2"))],
                rejected: &[("line too long", &[1])],
            },
            Case {
                input: &huge,
                records: vec![e("c@d.co", Some(b"1")), e("c@d.co", Some(b"2"))],
                rejected: &[("line too long", &[2])],
            },
            Case {
                input: &huge_last,
                records: vec![e("c@d.co", Some(b"1"))],
                rejected: &[("line too long", &[2])],
            },
            Case {
                input: &two_crs,
                records: vec![e("c@d.co", Some(b"1")), e("c@d.co", Some(b"2"))],
                rejected: &[("line too long", &[2])],
            },
            Case {
                input: &two_crs_first,
                records: vec![e("c@d.co", Some(b"2"))],
                rejected: &[("line too long", &[1])],
            },
            Case {
                input: &[b"a@b.co:".as_slice(), &big_pw].concat(),
                records: vec![e("a@b.co", Some(&big_pw))],
                rejected: &[],
            },
        ],
    );
    let (report, _) = read_all_ways(&huge, None);
    assert_eq!(report.lines, 3);
}

#[test]
fn combo_rules() {
    check(
        None,
        Format::Combo,
        vec![
            // Separators `:` `;` `|` TAB; the first one ends the identity and the
            // password keeps every byte after it.
            Case {
                input: b"Alice@Example.COM:hunter2\nb@c.co;p:w\nd@e.co|x;y\nf@g.co\tp w\nh@i.co:a:b:c\n",
                records: vec![
                    e("alice@example.com", Some(b"hunter2")),
                    e("b@c.co", Some(b"p:w")),
                    e("d@e.co", Some(b"x;y")),
                    e("f@g.co", Some(b"p w")),
                    e("h@i.co", Some(b"a:b:c")),
                ],
                rejected: &[],
            },
            // Space and comma are not separators.
            Case {
                input: b"a@b.co pw\na@b.co,pw\n",
                records: vec![],
                rejected: &[("no separator", &[1, 2])],
            },
            // Surrounding whitespace goes, of the line and of the identity.
            Case { input: b"  a@b.co : pw  \r\n", records: vec![e("a@b.co", Some(b" pw"))], rejected: &[] },
            // Control characters other than TAB reject the line.
            Case {
                input: b"a@b.co:p\0w\na@b.co:p\x1bw\na@b.co:p\tw\na@b.co:p\x7fw\n",
                records: vec![e("a@b.co", Some(b"p\tw")), e("a@b.co", Some(b"p\x7fw"))],
                rejected: &[("control characters", &[1, 2])],
            },
            // Emails are normalized; bad ones rejected.
            Case {
                input: b"<Bob@Example.org>:1\na..b@example.com:2\nc@localhost:3\n@x.co:4\n",
                records: vec![e("bob@example.org", Some(b"1"))],
                rejected: &[("invalid email: domain", &[3]), ("invalid email: local part", &[2, 4])],
            },
            // In an email combo an identity without `@` is a mistake.
            Case {
                input: b"a@b.co:1\nc@d.co:2\nbob:3\n+15550104477:4\n",
                records: vec![e("a@b.co", Some(b"1")), e("c@d.co", Some(b"2"))],
                rejected: &[("not an email address", &[3, 4])],
            },
            // Identities that are not UTF-8 are read in the input's legacy
            // encoding (Windows-1252 here), then follow the same rules: an
            // internationalized local part is kept, lower-cased.
            Case {
                input: b"a@b.co:1\nJo@M\xfcller.de:2\nb\xe9b:3\nJos\xe9@b.co:4\nJ\xf6rg..x@b.co:5\n",
                records: vec![
                    e("a@b.co", Some(b"1")),
                    e("jo@xn--mller-kva.de", Some(b"2")),
                    e("jos\u{e9}@b.co", Some(b"4")),
                ],
                rejected: &[("not an email address", &[3]), ("invalid email: local part", &[5])],
            },
            // UTF-8 addresses beyond ASCII, composed or not, are one account.
            Case {
                input: "fran\u{e7}ois@acme-corp.com:1\nFRANC\u{327}OIS@acme-corp.com:2\nj\u{f6}rg@example.de:3\nx@[1.2.3.4]:4\n"
                    .as_bytes(),
                records: vec![
                    e("fran\u{e7}ois@acme-corp.com", Some(b"1")),
                    e("fran\u{e7}ois@acme-corp.com", Some(b"2")),
                    e("j\u{f6}rg@example.de", Some(b"3")),
                ],
                rejected: &[("invalid email: IP literal domain", &[4])],
            },
            // Passwords are raw bytes; `$HEX[...]` is decoded, a malformed one kept.
            Case {
                input: b"a@b.co:caf\xe9\na@b.co:$HEX[6869]\na@b.co:$HEX[zz]\na@b.co:$HEX[]\n",
                records: vec![
                    e("a@b.co", Some(b"caf\xe9")),
                    e("a@b.co", Some(b"hi")),
                    e("a@b.co", Some(b"$HEX[zz]")),
                    e("a@b.co", Some(b"$HEX[]")),
                ],
                rejected: &[],
            },
            // An empty password still exposes the account.
            Case {
                input: b"a@b.co:\na@b.co:   \n",
                records: vec![e("a@b.co", None), e("a@b.co", None)],
                rejected: &[],
            },
            // Only the smallest five line numbers are kept as samples.
            Case {
                input: b"x\nx\nx\nx\nx\nx\nx\n",
                records: vec![],
                rejected: &[("no separator", &[1, 2, 3, 4, 5])],
            },
        ],
    );
}

#[test]
fn combo_password_digests_are_each_passwords_own_whatever_the_shape() {
    // SHA-1 of passwords of up to 55 bytes is computed sixteen at a time, NTLM
    // of short ASCII ones eight at a time, after their records are made; every
    // other shape at once. Shapes interleaved, with rejected, blank and
    // password-less lines between, so both kinds of group fill and flush
    // across all of them, out of step, and end part-filled.
    let shapes: [fn(usize) -> Vec<u8>; 11] = [
        |i| format!("pw{i}").into_bytes(),
        |i| vec![b'a' + (i % 26) as u8; 1 + i % 27],
        |i| vec![b'!' + (i % 90) as u8; 27 + i % 3],
        |i| format!("{i}-a-password-much-longer-than-one-block-of-md4-can-hold").into_bytes(),
        |i| format!("pässwörd{i}").into_bytes(),
        |i| format!("caf\u{e9}{i}").into_bytes(),
        |i| [b"caf\xe9".as_slice(), i.to_string().as_bytes()].concat(),
        |i| vec![b'~'; 1 + i % 40],
        |i| [b"x".as_slice(), &vec![b'\t'; i % 3], b"y"].concat(),
        // Either side of SHA-1's one-block limit, 55 bytes.
        |i| vec![b'#' + (i % 80) as u8; 53 + i % 5],
        // Any bytes at all, control characters and NUL included (written as
        // `$HEX[...]`, the only way such a password reaches a record).
        |i| (0..1 + i % 60).map(|j| (j * 97 + i * 13) as u8).collect(),
    ];
    let hex = |p: &[u8]| format!("$HEX[{}]", leakwatch_types::encode_hex_upper(p)).into_bytes();
    let mut input = Vec::new();
    let mut want = Vec::new();
    for i in 0..400 {
        let account = format!("user{i}@example.com");
        let password = shapes[i % shapes.len()](i);
        let any_bytes = i % shapes.len() == shapes.len() - 1;
        let written = if i % 4 == 3 || any_bytes { hex(&password) } else { password.clone() };
        input.extend_from_slice(account.as_bytes());
        input.push(b':');
        input.extend_from_slice(&written);
        input.push(b'\n');
        want.push(e(&account, Some(&password)));
        match i % 7 {
            0 => input.extend_from_slice(b"no separator here\n"),
            1 => input.extend_from_slice(b"\n"),
            2 => {
                input.extend_from_slice(format!("bare{i}@example.com:\n").as_bytes());
                want.push(e(&format!("bare{i}@example.com"), None));
            }
            _ => {}
        }
    }
    let (report, records) = read_all_ways(&input, Some(Format::Combo));
    assert_eq!(report.accepted, want.len() as u64);
    for (got, want) in records.iter().zip(&want) {
        assert_eq!(got, want, "record of {}", want.account.value);
    }
    assert_eq!(records.len(), want.len());
}

#[test]
fn username_combo_rules() {
    let long_name = [b"a".repeat(65), b":pw\n".to_vec()].concat();
    check(
        None,
        Format::Combo,
        vec![
            Case {
                input: b"Bob:1\ncarol:2\n+1 (555) 010-4477:3\n5550104477:4\nd@e.co:5\n",
                records: vec![
                    u("bob", Some(b"1")),
                    u("carol", Some(b"2")),
                    ph("+15550104477", Some(b"3")),
                    u("5550104477", Some(b"4")),
                    e("d@e.co", Some(b"5")),
                ],
                rejected: &[],
            },
            Case {
                input: b"bob:1\nbad name:2\n+12:3\nbad@:4\n:5\n",
                records: vec![u("bob", Some(b"1")), u("+12", Some(b"3"))],
                rejected: &[("invalid email: domain", &[4]), ("invalid username", &[2, 5])],
            },
            Case {
                input: &[b"bob:1\ncarol:2\n".to_vec(), long_name].concat(),
                records: vec![u("bob", Some(b"1")), u("carol", Some(b"2"))],
                rejected: &[("invalid username", &[3])],
            },
        ],
    );
}

#[test]
fn the_mode_sample_is_the_first_thousand_clean_lines() {
    // 1,000 user names, then addresses and names: the sample sees only names.
    let mut names_first = Vec::new();
    for i in 0..1000 {
        writeln!(names_first, "user{i}:pw").expect("vec");
    }
    names_first.extend(b"a@b.co:pw\nlater:pw\n");
    let (report, records) = read_all_ways(&names_first, None);
    assert_eq!(report.accepted, 1002);
    assert_eq!(records[1000], e("a@b.co", Some(b"pw")));
    assert_eq!(records[1001], u("later", Some(b"pw")));

    // 999 names and 1,001 addresses: the sample (first 1,000 clean lines) holds
    // 999 names and one address, so this is a username combo.
    let mut mixed = Vec::new();
    for i in 0..999 {
        writeln!(mixed, "user{i}:pw").expect("vec");
    }
    for i in 0..1001 {
        writeln!(mixed, "user{i}@example.com:pw").expect("vec");
    }
    assert_eq!(read_all_ways(&mixed, None).0.accepted, 2000);

    // Lines without a separator are in the sample but do not vote; lines with
    // control characters or blank are not in it.
    let mut votes = b"\n\nx\0:1\nnosep\nnosep\nbob:1\na@b.co:2\n".to_vec();
    votes.extend(b"carol:3\n");
    let (report, records) = read_all_ways(&votes, None);
    assert_eq!(records, vec![u("bob", Some(b"1")), e("a@b.co", Some(b"2")), u("carol", Some(b"3"))]);
    assert_eq!(report.rejected["control characters"].sample_lines, vec![3]);

    // A tie is an email combo.
    let (_, records) = read_all_ways(b"bob:1\na@b.co:2\n", None);
    assert_eq!(records, vec![e("a@b.co", Some(b"2"))]);
}

#[test]
fn csv_rules() {
    let md5 = "5F4DCC3B5AA765D61D8327DEB882CF99";
    let sha1 = "5BAA61E4C9B93F3F0682250B6CF8331B7EE68FD8";
    let unterminated = [
        b"email,password\n\"a@b.co,pw\nc@d.co,2\n".to_vec(),
        vec![b'x'; MAX_LINE + 1],
        b"\ne@f.co,3\n".to_vec(),
    ]
    .concat();
    check(None, Format::Csv, vec![
        Case {
            input: b"Email,Password\nAlice@Example.com,hunter2\n",
            records: vec![e("alice@example.com", Some(b"hunter2"))],
            rejected: &[],
        },
        // The delimiter is the most frequent of `,` `;` TAB `|` in the header.
        Case {
            input: b"id;e-mail;pass;note\n1;a@b.co;p,w;x,y\n",
            records: vec![e("a@b.co", Some(b"p,w"))],
            rejected: &[],
        },
        Case { input: b"user\tpwd\nBob\tp w\n", records: vec![u("bob", Some(b"p w"))], rejected: &[] },
        Case { input: b"login|passwd\nBob|x\n", records: vec![u("bob", Some(b"x"))], rejected: &[] },
        // Quoted fields: delimiters, doubled quotes and newlines inside; rows
        // are numbered by the line they start on.
        Case {
            input: b"email,password,name\r\n\"a@b.co\",\"p,\"\"w\"\"\",\"Ann\r\nSmith\"\r\nnope,x,y\r\n",
            records: vec![e("a@b.co", Some(b"p,\"w\""))],
            rejected: &[("invalid email: no @", &[4])],
        },
        // Header names are trimmed and compared without case; the first column
        // of each role is the one used.
        Case {
            input: b" E-Mail ;MAIL;PASS\nb@c.co;x@y.co;1\n;x@y.co;2\n",
            records: vec![e("b@c.co", Some(b"1"))],
            rejected: &[("no account", &[3])],
        },
        // Account: email, else username, else phone; an invalid one is not
        // replaced by the next.
        Case {
            input: b"email,username,phone,password\n\
                a@b.co,bob,+1 555 010 4477,1\n\
                ,Bob,,2\n\
                ,,555.010.4477,3\n\
                nope,bob,,4\n\
                ,bad\x01name,,5\n\
                ,,12,6\n\
                ,,,7\n\
                \" \",,,8\n",
            records: vec![
                e("a@b.co", Some(b"1")),
                u("bob", Some(b"2")),
                ph("+5550104477", Some(b"3")),
            ],
            rejected: &[
                ("invalid email: no @", &[5]),
                ("invalid phone", &[7]),
                ("invalid username", &[6]),
                ("no account", &[8, 9]),
            ],
        },
        // CSV user names may hold spaces and be long: only normalize_username applies.
        Case {
            input: b"username,password\nJohn Smith,pw\n",
            records: vec![u("john smith", Some(b"pw"))],
            rejected: &[],
        },
        // Password material: plaintext first (as is), else the hash, by shape.
        Case {
            input: format!(
                "email,password,hash\na@b.co,pw,{md5}\na@b.co,,{}\na@b.co,, {sha1} \na@b.co,,$2y$10$abc\na@b.co,,\na@b.co, ,\n",
                md5.to_lowercase()
            )
            .as_bytes(),
            records: vec![
                e("a@b.co", Some(b"pw")),
                hashed(e("a@b.co", None), HashKind::Md5, md5),
                hashed(e("a@b.co", None), HashKind::Sha1, sha1),
                hashed(e("a@b.co", None), HashKind::Bcrypt, "$2y$10$abc"),
                e("a@b.co", None),
                e("a@b.co", Some(b" ")),
            ],
            rejected: &[],
        },
        Case {
            input: format!("email,ntlm\na@b.co,{md5}\n").as_bytes(),
            records: vec![hashed(e("a@b.co", None), HashKind::Ntlm, md5)],
            rejected: &[],
        },
        // Field counts must match the header.
        Case {
            input: b"email,password\na@b.co\na@b.co,1,2\nc@d.co,3\n",
            records: vec![e("c@d.co", Some(b"3"))],
            rejected: &[("wrong field count", &[2, 3])],
        },
        // Blank lines, before the header too, are skipped.
        Case {
            input: b"\n\nemail,password\n\n  \na@b.co,1\n\n",
            records: vec![e("a@b.co", Some(b"1"))],
            rejected: &[],
        },
        // A record that has not ended within 64 KiB (here an unclosed quote) is
        // rejected at its first line, and reading resumes on the next line.
        Case {
            input: &unterminated,
            records: vec![e("c@d.co", Some(b"2")), e("e@f.co", Some(b"3"))],
            rejected: &[("line too long", &[2, 4])],
        },
        // An unclosed quote at the end of the input runs to the end.
        Case {
            input: b"email,password\na@b.co,\"p\nw",
            records: vec![e("a@b.co", Some(b"p\nw"))],
            rejected: &[],
        },
    ]);
}

#[test]
fn csv_lines_are_counted_across_quoted_newlines() {
    let (report, _) = read_all_ways(b"email,password\na@b.co,\"1\n2\n3\"\nc@d.co,x\nbad\n", None);
    assert_eq!(report.lines, 6);
    assert_eq!(report.rejected["wrong field count"].sample_lines, vec![6]);
}

#[test]
fn legacy_encodings_are_detected_per_input_and_decoded() {
    // An Excel export of a Russian forum: Windows-1251 user names.
    let names = [
        "\u{41f}\u{435}\u{442}\u{440}\u{43e}\u{432}\u{438}\u{447}",
        "\u{41c}\u{430}\u{448}\u{430}_92",
        "\u{421}\u{435}\u{440}\u{433}\u{435}\u{439}",
    ];
    let mut cyrillic = b"username;password\r\n".to_vec();
    for name in names {
        cyrillic.extend_from_slice(&encoding_rs::WINDOWS_1251.encode(name).0);
        cyrillic.extend_from_slice(b";qwerty\r\n");
    }
    let (report, records) = read_all_ways(&cyrillic, None);
    assert_eq!(report.format, Format::Csv);
    let want: Vec<Record> = names.iter().map(|n| u(&n.to_lowercase(), Some(b"qwerty"))).collect();
    assert_eq!(records, want);

    // Latin-1 addresses on internationalized domains, in a CSV and in a combo.
    let latin = b"email,password\nhans@m\xfcller.de,x\nJo@Caf\xe9.fr,y\n";
    let (_, records) = read_all_ways(latin, None);
    assert_eq!(records, vec![e("hans@xn--mller-kva.de", Some(b"x")), e("jo@xn--caf-dma.fr", Some(b"y"))]);
    let (_, records) = read_all_ways(b"hans@m\xfcller.de:x\nJo@Caf\xe9.fr:y\n", None);
    assert_eq!(records, vec![e("hans@xn--mller-kva.de", Some(b"x")), e("jo@xn--caf-dma.fr", Some(b"y"))]);
}

#[test]
fn ndjson_rules() {
    check(None, Format::Ndjson, vec![
        Case {
            input: b"{\"email\": \"A@B.co\", \"password\": \"pw\"}\n{\"Login\": \"Bob\"}\n\n{\"phone\": \"+1 555 010 4477\"}\n",
            records: vec![e("a@b.co", Some(b"pw")), u("bob", None), ph("+15550104477", None)],
            rejected: &[],
        },
        // Depth first, in document order; non-string values are skipped.
        Case {
            input: b"{\"user\": {\"email\": \"x@y.co\", \"pass\": \"1\"}, \"email\": \"z@y.co\", \"password\": 5}\n",
            records: vec![e("x@y.co", Some(b"1"))],
            rejected: &[],
        },
        Case {
            input: b"{\"email\": \"a@b.co\", \"sha1\": \"5baa61e4c9b93f3f0682250b6cf8331b7ee68fd8\"}\n",
            records: vec![hashed(e("a@b.co", None), HashKind::Sha1, "5BAA61E4C9B93F3F0682250B6CF8331B7EE68FD8")],
            rejected: &[],
        },
        Case {
            input: b"{\"email\": \"a@b.co\"}\n{oops\n[1,2]\n{\"email\": \"bad\"}\n{}\n{\"email\": \"a@b.co\"} trailing\n",
            records: vec![e("a@b.co", None)],
            rejected: &[("invalid JSON", &[2, 3, 6]), ("invalid email: no @", &[4]), ("no account", &[5])],
        },
    ]);
}

#[test]
fn data_classes_come_from_records_and_columns() {
    let classes = |input: &[u8]| read_all_ways(input, None).0.data_classes.into_iter().collect::<Vec<_>>();
    assert_eq!(classes(b"a@b.co:\n"), vec![DataClass::EmailAddresses]);
    assert_eq!(classes(b"a@b.co:pw\n"), vec![DataClass::EmailAddresses, DataClass::Passwords]);
    assert_eq!(
        classes(b"bob:pw\n+15550104477:\n"),
        vec![DataClass::Usernames, DataClass::PhoneNumbers, DataClass::Passwords]
    );
    // Extra columns count only with a non-empty value in an accepted row.
    assert_eq!(
        classes(b"email,name,ip,dob,city\na@b.co,Ann,,1990-01-01,\nbad,,1.2.3.4,,Paris\n"),
        vec![DataClass::EmailAddresses, DataClass::Names, DataClass::DatesOfBirth]
    );
    assert_eq!(
        classes(b"{\"email\": \"a@b.co\", \"address\": {\"street\": \"1 Main St\"}, \"ip_address\": \"\"}\n"),
        vec![DataClass::EmailAddresses, DataClass::PhysicalAddresses]
    );
}

#[test]
fn detection_and_forced_formats() {
    let detect = |input: &[u8]| read_all_ways(input, None).0.format;
    assert_eq!(detect(b""), Format::Combo);
    assert_eq!(detect(b"\n\n"), Format::Combo);
    assert_eq!(detect(b"\n  {\"email\": \"a@b.co\"}\n"), Format::Ndjson);
    assert_eq!(detect(b"\xef\xbb\xbfemail;password\n"), Format::Csv);
    assert_eq!(detect(b"email:password\na@b.co:1\n"), Format::Combo);
    // A too-long first line is skipped by detection (and rejected).
    let mut input = vec![b'{'; MAX_LINE + 10];
    input.extend(b"\nemail,password\na@b.co,1\n");
    let (report, records) = read_all_ways(&input, None);
    assert_eq!((report.format, records.len()), (Format::Csv, 1));
    assert_eq!(report.rejected["line too long"].sample_lines, vec![1]);

    // Forcing a format skips detection: a CSV read as a combo list.
    let (report, records) = read_all_ways(b"email;password\na@b.co;1\n", Some(Format::Combo));
    assert_eq!(report.format, Format::Combo);
    assert_eq!(records, vec![e("a@b.co", Some(b"1"))]);
    assert_eq!(report.rejected["not an email address"].sample_lines, vec![1]);
    // A forced CSV whose header names nothing known has no accounts.
    let (report, _) = read_all_ways(b"a,b\n1,2\n", Some(Format::Csv));
    assert_eq!(report.rejected["no account"].count, 1);
}

#[test]
fn many_rejections_keep_exact_counts_across_chunks() {
    let mut input = Vec::new();
    for i in 0..5000 {
        if i % 3 == 0 {
            writeln!(input, "broken line {i}").expect("vec");
        } else {
            writeln!(input, "user{i}@example.com:pw{i}").expect("vec");
        }
    }
    let (report, records) = read_all_ways(&input, None);
    assert_eq!(report.lines, 5000);
    assert_eq!(report.rejected["no separator"].count, 1667);
    assert_eq!(report.rejected["no separator"].sample_lines, vec![1, 4, 7, 10, 13]);
    assert_eq!(records.len(), 3333);
    assert_eq!(records[0], e("user1@example.com", Some(b"pw1")));
}

#[test]
fn gzip_and_zstd_inputs_read_like_plain_ones() {
    let plain = b"a@b.co:1\nbroken\nc@d.co:2\n".repeat(1000);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&plain).expect("gzip");
    let gz = gz.finish().expect("gzip");
    let zst = zstd::encode_all(&plain[..], 3).expect("zstd");
    let want = read_with(&plain, None, CHUNK_SIZE);
    for compressed in [gz, zst] {
        for size in [CHUNK_SIZE, 5] {
            assert_eq!(read_with(&compressed, None, size), want);
        }
    }
}

mod properties {
    use super::*;
    use proptest::prelude::*;
    use std::io::Read;

    /// Bytes biased toward what the parsers branch on: separators, quotes,
    /// braces, line ends, `@`, BOM bytes, control and non-UTF-8 bytes.
    fn dump_bytes() -> impl Strategy<Value = Vec<u8>> {
        let interesting = prop::sample::select(
            b":;|\t,\"{}[]@. \r\n\n\n\0\x01\xef\xbb\xbf\xff\xe9$HEX[]aZ09+-_=\\".to_vec(),
        );
        prop::collection::vec(prop_oneof![3 => interesting, 1 => any::<u8>()], 0..400)
    }

    /// Lines that mostly look like records of every format, so the deeper
    /// paths run, not only the rejections.
    fn dump_lines() -> impl Strategy<Value = Vec<u8>> {
        let line = prop_oneof![
            Just(b"email,password,name".to_vec()),
            Just(b"user;pass".to_vec()),
            Just(b"{\"email\": \"a@b.co\", \"p\": {\"password\": \"x\"}}".to_vec()),
            "[a-z]{1,8}@[a-z]{1,5}\\.(com|co)[:;|\t][ -~]{0,12}".prop_map(String::into_bytes),
            "[a-z]{1,8}[:;|][ -~]{0,12}".prop_map(String::into_bytes),
            "\"[a-z@.,\n]{0,10}\",[a-z\"]{0,5}".prop_map(String::into_bytes),
            Just(b"CREATE TABLE users (id int, email text, password text);".to_vec()),
            Just(b"COPY public.users (id, email, password) FROM stdin;".to_vec()),
            Just(b"\\.".to_vec()),
            "(URL|Host|USER|Username|Login|PASS|Password|P455W0RD|Soft): [ -~]{0,12}"
                .prop_map(String::into_bytes),
            Just(b"===============".to_vec()),
            "INSERT INTO users VALUES \\(1,'[a-z]{1,5}@b\\.co','[ -~]{0,8}'\\)[,;]?"
                .prop_map(String::into_bytes),
            "1\t[a-z]{1,5}@b\\.co\t[ -~]{0,8}".prop_map(String::into_bytes),
            "[-/*#'\"`();\\\\ \n]{1,12}".prop_map(String::into_bytes),
            dump_bytes(),
        ];
        prop::collection::vec(line, 0..30).prop_map(|lines| lines.join(&b"\n"[..]))
    }

    /// Lines as the rules count them, and how many of them are blank. A
    /// UTF-16 BOM makes the reader transcode first, so lines are counted on
    /// the UTF-8 it reads.
    fn physical_lines(input: &[u8]) -> (u64, u64) {
        let mut decoded = Vec::new();
        crate::encoding::utf16_to_utf8(Box::new(input))
            .and_then(|mut reader| reader.read_to_end(&mut decoded))
            .unwrap();
        let input = decoded.strip_prefix(b"\xef\xbb\xbf").unwrap_or(&decoded);
        if input.is_empty() {
            return (0, 0);
        }
        let body = input.strip_suffix(b"\n").unwrap_or(input);
        let mut lines = 0;
        let mut blank = 0;
        for line in body.split(|&b| b == b'\n') {
            lines += 1;
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            blank += u64::from(line.trim_ascii().is_empty());
        }
        (lines, blank)
    }

    fn every_format_agrees_across_chunk_sizes(input: &[u8]) {
        let formats = [
            None,
            Some(Format::Combo),
            Some(Format::Csv),
            Some(Format::Ndjson),
            Some(Format::Sql),
            Some(Format::Stealer),
        ];
        for format in formats {
            let (report, records) = match crate::fuzzing::read_bytes(input, format, CHUNK_SIZE) {
                Ok(read) => read,
                Err(e) => {
                    // Bytes that open like gzip or zstd and do not decompress:
                    // a read error naming the input, at every chunk size.
                    assert!(matches!(&e, crate::IngestError::Read { path, .. } if path == "fuzz"), "{e:?}");
                    for size in [1, 3, 13] {
                        assert!(crate::fuzzing::read_bytes(input, format, size).is_err(), "size {size}");
                    }
                    continue;
                }
            };
            for size in [1, 3, 13] {
                assert_eq!(read_with(input, format, size), (report.clone(), records.clone()), "size {size}");
            }
            let (lines, blank) = physical_lines(input);
            assert_eq!(report.lines, lines, "{format:?}");
            let rejected: u64 = report.rejected.values().map(|r| r.count).sum();
            if matches!(report.format, Format::Combo | Format::Ndjson) {
                assert_eq!(report.accepted + rejected + blank, lines, "{format:?}");
            } else if report.format != Format::Sql {
                // A SQL line may hold many rows; a stealer block or a CSV
                // record takes several lines, and separator lines are skipped.
                assert!(report.accepted + rejected + blank <= lines, "{format:?}");
            }
        }
    }

    /// The gzip magic alone (a case proptest found): no gzip to decode, so a
    /// read error, not a panic and not an empty success.
    #[test]
    fn a_bare_gzip_magic_is_a_read_error_in_every_format() {
        every_format_agrees_across_chunk_sizes(&[0x1f, 0x8b]);
        assert!(crate::fuzzing::read_bytes(&[0x1f, 0x8b], None, CHUNK_SIZE).is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

        #[test]
        fn arbitrary_bytes_never_panic_and_every_line_is_accounted_for(input in dump_bytes()) {
            every_format_agrees_across_chunk_sizes(&input);
        }

        #[test]
        fn record_like_lines_never_panic_and_every_line_is_accounted_for(input in dump_lines()) {
            every_format_agrees_across_chunk_sizes(&input);
        }
    }
}

/// Yields its bytes, then fails.
struct FailsAfter(std::io::Cursor<Vec<u8>>);

impl std::io::Read for FailsAfter {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self.0.read(buf)? {
            0 => Err(std::io::Error::other("disk on fire")),
            n => Ok(n),
        }
    }
}

#[test]
fn a_read_error_comes_after_every_whole_record_read_before_it() {
    for (input, format, records, line) in [
        (&b"a@b.co:1\nc@d.co:2\ne@f.co:3"[..], None, 2, 3),
        (b"email,password\na@b.co,1\nc@d.co,\"2\n", None, 1, 3),
        (b"{\"email\": \"a@b.co\"}\n", None, 1, 2),
    ] {
        for size in CHUNK_SIZES {
            let raw = RawInput::from_reader(
                "broken".into(),
                None,
                Box::new(FailsAfter(std::io::Cursor::new(input.to_vec()))),
            )
            .expect("open");
            let mut delivered = 0;
            let progress = std::sync::atomic::AtomicU64::new(0);
            let err = read_chunked(
                raw,
                format,
                &progress,
                size,
                |b| b.len(),
                |n| {
                    delivered += n;
                    Ok(())
                },
            )
            .expect_err("the reader fails");
            assert_eq!(delivered, records, "size {size}: {}", show(input));
            assert_eq!(err.to_string(), format!("broken: line {line}: disk on fire"), "size {size}");
        }
    }
}

/// Inputs the fuzz targets found; each must pass the fuzz check.
#[test]
fn fuzz_regressions() {
    // A zstd frame that fails mid-way: an error at every chunk size.
    let corrupt_zstd = [
        0x28, 0xb5, 0x2f, 0xfd, 0x0, 0x9, 0x0, 0x8, 0x0, 0x0, 0x9, 0x0, 0x8, 0x0, 0x0, 0x5b, 0x1d, 0x0, 0x0,
        0xa, 0x0, 0x0, 0x0, 0x0, 0x5b, 0x1d, 0x0, 0x0, 0xa, 0x0, 0x0, 0x0, 0x0, 0xa7,
    ];
    for format in [None, Some(Format::Csv)] {
        crate::fuzzing::check(&corrupt_zstd, format);
    }
}
