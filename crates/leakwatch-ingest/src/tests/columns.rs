//! Columns found by their words, by their content and by `--columns`, in CSV,
//! NDJSON and SQL, and the report of which column became what.

use std::sync::atomic::AtomicU64;

use leakwatch_types::{AccountKind, DataClass, HashKind, Record};

use super::{e, hashed, u, CHUNK_SIZES};
use crate::columns::ColumnOverrides;
use crate::input::RawInput;
use crate::reader::read_with_columns;
use crate::{Format, IngestError, Report};

fn read_once(
    input: &[u8],
    format: Option<Format>,
    columns: Option<&str>,
    chunk_size: usize,
) -> Result<(Report, Vec<Record>), IngestError> {
    let overrides: Option<ColumnOverrides> = columns.map(|c| c.parse().expect("a valid --columns"));
    let raw = RawInput::from_reader("dump".into(), None, Box::new(std::io::Cursor::new(input.to_vec())))
        .expect("in memory");
    let mut records = Vec::new();
    let report = read_with_columns(
        raw,
        format,
        overrides.as_ref(),
        &AtomicU64::new(0),
        chunk_size,
        |batch| batch.to_vec(),
        |batch| {
            records.extend(batch);
            Ok(())
        },
    )?;
    Ok((report, records))
}

/// Reads with every chunk size, which must agree.
fn read(input: &str, format: Option<Format>, columns: Option<&str>) -> (Report, Vec<Record>) {
    let whole = read_once(input.as_bytes(), format, columns, CHUNK_SIZES[0]).expect("reads");
    for size in &CHUNK_SIZES[1..] {
        let chunked = read_once(input.as_bytes(), format, columns, *size).expect("reads");
        assert_eq!(chunked, whole, "chunk size {size} changes the result for {input:?}");
    }
    whole
}

fn error(input: &str, format: Option<Format>, columns: &str) -> String {
    match read_once(input.as_bytes(), format, Some(columns), CHUNK_SIZES[0]) {
        Err(e @ IngestError::Columns { .. }) => e.to_string(),
        other => panic!("{columns}: expected a --columns error, got {other:?}"),
    }
}

fn texts(report: &Report) -> Vec<String> {
    report.columns.iter().map(ToString::to_string).collect()
}

const MD5: &str = "5f4dcc3b5aa765d61d8327deb882cf99";
const SHA1: &str = "5baa61e4c9b93f3f0682250b6cf8331b7ee68fd8";

#[test]
fn csv_columns_named_every_way_are_read_and_reported() {
    let input = format!(
        "id,user_email,pass_hash,signup_ip\n1,a@b.co,{MD5},1.2.3.4\n2,c@d.co,{},\n",
        MD5.to_uppercase()
    );
    let (report, records) = read(&input, None, None);
    assert_eq!(report.format, Format::Csv);
    let md5 = MD5.to_uppercase();
    assert_eq!(
        records,
        vec![hashed(e("a@b.co", None), HashKind::Md5, &md5), hashed(e("c@d.co", None), HashKind::Md5, &md5)]
    );
    assert_eq!(
        report.data_classes.iter().copied().collect::<Vec<_>>(),
        vec![DataClass::EmailAddresses, DataClass::Passwords, DataClass::IpAddresses]
    );
    assert_eq!(
        texts(&report),
        ["user_email -> email, pass_hash -> hash (md5), signup_ip -> IP addresses; left out: id"]
    );

    // Names that only look like a password, address or IP column are left out.
    let input = "email,password_changed_at,pass_reset_token,password_hint,hash_salt,email_verified,user_id,\
                 login_count,ip_country\n\
                 a@b.co,2020-01-01,abc,my dog,xyz,1,7,3,DE\n";
    let (report, records) = read(input, None, None);
    assert_eq!(records, vec![e("a@b.co", None)]);
    assert_eq!(
        report.data_classes.iter().copied().collect::<Vec<_>>(),
        vec![DataClass::EmailAddresses, DataClass::PasswordHints]
    );
    assert_eq!(
        texts(&report),
        ["email -> email, password_hint -> Password hints; left out: password_changed_at, pass_reset_token, \
          hash_salt, email_verified, user_id, login_count, ip_country"]
    );
}

#[test]
fn csv_columns_are_found_by_content_when_names_say_nothing() {
    let mut input = String::from("uid;contact;secret;origin;notes\n");
    for i in 0..20 {
        input.push_str(&format!("{i};user{i}@example.com;{SHA1};10.0.0.{i};n{i}\n"));
    }
    // One junk value in ten does not hide a column of addresses.
    input.push_str(&format!("20;unknown;{SHA1};::1;x\n"));
    let (report, records) = read(&input, Some(Format::Csv), None);
    assert_eq!(records.len(), 20);
    assert_eq!(report.rejected["invalid email: no @"].count, 1);
    assert_eq!(
        records[0],
        hashed(e("user0@example.com", None), HashKind::Sha1, &SHA1.to_uppercase()),
        "the hash column counts in the SHA-1 corpus"
    );
    assert!(report.data_classes.contains(&DataClass::IpAddresses));
    assert_eq!(
        texts(&report),
        ["contact -> email (by content), secret -> hash (sha1, by content), origin -> IP addresses (by \
          content); left out: uid, notes"]
    );

    // A password column holding hashes of one shape is a hash column; a login
    // column holding addresses (and no address column) is read by its values.
    let input = format!("login,pwd\nBob@Example.com,{MD5}\ncarl@example.com,{MD5}\n");
    let (report, records) = read(&input, None, None);
    let md5 = MD5.to_uppercase();
    assert_eq!(
        records,
        vec![
            hashed(e("bob@example.com", None), HashKind::Md5, &md5),
            hashed(e("carl@example.com", None), HashKind::Md5, &md5)
        ]
    );
    assert_eq!(texts(&report), ["login -> account, pwd -> hash (md5)"]);
    // ... but not when a single value is a plaintext.
    let (_, records) = read(&format!("email,pwd\na@b.co,{MD5}\nc@d.co,hunter2\n"), None, None);
    assert_eq!(records[1], e("c@d.co", Some(b"hunter2")));
    assert_eq!(records[0], e("a@b.co", Some(MD5.as_bytes())));
}

#[test]
fn csv_overrides_win_over_names_and_content() {
    let input = "id,handle,secret,pw_changed,ip\n1,bob,hunter2,x,1.2.3.4\n2,amy@b.co,pw2,y,\n";
    let (report, records) = read(input, None, Some("account=handle,password=secret,skip=ip"));
    assert_eq!(records, vec![u("bob", Some(b"hunter2")), e("amy@b.co", Some(b"pw2"))]);
    assert!(!report.data_classes.contains(&DataClass::IpAddresses));
    assert_eq!(
        texts(&report),
        ["handle -> account (by --columns), secret -> password (by --columns); left out: id, pw_changed, ip"]
    );

    // A CSV without a header: columns by number, every line a row.
    let input = format!("1,bob@x.com,{SHA1},555 010 4477\n2,,{SHA1},+1 555 010 4478\n");
    let (report, records) = read(&input, Some(Format::Csv), Some("email=2,hash=3,phone=4"));
    let sha1 = SHA1.to_uppercase();
    assert_eq!(report.lines, 2);
    assert_eq!(records[0], hashed(e("bob@x.com", None), HashKind::Sha1, &sha1));
    assert_eq!(records[1].account.kind, AccountKind::Phone);
    assert_eq!(
        texts(&report),
        ["column 2 -> email (by --columns), column 3 -> hash (sha1, by --columns), column 4 -> phone (by \
          --columns); left out: column 1"]
    );

    // An internationalized address in the input's legacy encoding (Latin-1).
    let latin1 = b"email,password\nFran\xe7ois@Acme-Corp.com,x\nj\xf6rg@example.de,y\n";
    let (report, records) = crate::fuzzing::read_bytes(latin1, None, CHUNK_SIZES[0]).expect("reads");
    assert_eq!(report.format, Format::Csv);
    assert_eq!(
        records,
        vec![e("fran\u{e7}ois@acme-corp.com", Some(b"x")), e("j\u{f6}rg@example.de", Some(b"y"))]
    );

    // Columns that are not there, and overrides on a format without columns.
    assert_eq!(
        error("email,pw\na@b.co,1\n", None, "hash=pass_hash"),
        "dump: --columns hash=pass_hash: no such column"
    );
    assert_eq!(
        error("a,b\n1,2\n", Some(Format::Csv), "email=3"),
        "dump: --columns email=column 3: no such column"
    );
    assert!(error("a@b.co:pw\n", None, "email=1").contains("combo list"));
}

#[test]
fn ndjson_keys_by_words_content_and_overrides() {
    let line = |i: u32| {
        format!(
            "{{\"id\": {i}, \"profile\": {{\"contact\": \"u{i}@example.com\", \"passwd_md5\": \"{MD5}\"}}, \
             \"regIP\": \"10.0.0.{i}\", \"nick\": \"Nick{i}\"}}\n"
        )
    };
    let input: String = (1..=3).map(line).collect();
    let (report, records) = read(&input, None, None);
    let md5 = MD5.to_uppercase();
    assert_eq!(records[0], hashed(e("u1@example.com", None), HashKind::Md5, &md5));
    assert!(report.data_classes.contains(&DataClass::IpAddresses));
    assert_eq!(
        texts(&report),
        ["contact -> email (by content), passwd_md5 -> hash (md5), regIP -> IP addresses, nick -> username"]
    );

    // Lines that spell a key differently (`email`, `Email`, `mail`) each keep
    // theirs: every key of a role is read where it is the line's first.
    let input = "{\"email\": \"a@b.co\"}\n{\"Email\": \"c@d.co\"}\n{\"mail\": \"e@f.co\"}\n";
    let (report, records) = read(input, None, None);
    assert_eq!(records, vec![e("a@b.co", None), e("c@d.co", None), e("e@f.co", None)]);
    assert_eq!(texts(&report), ["email -> email, Email -> email, mail -> email"]);

    let input: String = (1..=3).map(line).collect();
    let (report, records) = read(&input, None, Some("username=nick,skip=contact,skip=regip"));
    assert_eq!(records[0], hashed(u("nick1", None), HashKind::Md5, &md5));
    assert!(!report.data_classes.contains(&DataClass::IpAddresses));
    assert_eq!(
        error(&input, None, "email=mail"),
        "dump: --columns email=mail: no such column in the first 100 lines"
    );
}

#[test]
fn sql_columns_by_words_and_overrides() {
    let dump = format!(
        "CREATE TABLE `accounts` (`id` int, `login_name` varchar(32), `passwd_md5` char(32), `signup_ip` \
         varchar(40), `password_changed_at` datetime, `contact` varchar(99));\n\
         INSERT INTO `accounts` VALUES (1,'Bob','{MD5}','1.2.3.4','2020-01-01','bob@x.com');\n"
    );
    let (report, records) = read(&dump, None, None);
    assert_eq!(records, vec![hashed(u("bob", None), HashKind::Md5, &MD5.to_uppercase())]);
    assert!(report.data_classes.contains(&DataClass::IpAddresses));
    assert_eq!(
        texts(&report),
        ["accounts: login_name -> username, passwd_md5 -> password, signup_ip -> IP addresses; left out: id, \
          password_changed_at, contact"]
    );
    let (report, records) = read(&dump, None, Some("email=contact,password=passwd_md5"));
    assert_eq!(records, vec![e("bob@x.com", Some(MD5.as_bytes()))]);
    assert_eq!(
        texts(&report),
        ["accounts: login_name -> username, passwd_md5 -> password (by --columns), signup_ip -> IP addresses, \
          contact -> email (by --columns); left out: id, password_changed_at"]
    );
    assert_eq!(error(&dump, None, "email=mail"), "dump: --columns email=mail: no such column in any table");
    // Addresses that are not UTF-8 are read as Windows-1252, not refused.
    let latin1 = b"INSERT INTO users (email, password) VALUES ('Fran\xe7ois@acme-corp.com','x');\n";
    let (_, records) = crate::fuzzing::read_bytes(latin1, None, CHUNK_SIZES[0]).expect("reads");
    assert_eq!(records, vec![e("fran\u{e7}ois@acme-corp.com", Some(b"x"))]);
}

#[test]
fn overrides_parse_roles_and_columns() {
    let parse = |s: &str| s.parse::<ColumnOverrides>();
    assert!(parse("email=mail, hash = pw ,skip=id").is_ok());
    assert_eq!(
        parse("e-mail=x").unwrap_err(),
        "unknown column role \"e-mail\" (roles: email, username, account, phone, password, hash, ip, name, skip)"
    );
    assert!(parse("email").is_err());
    assert!(parse("email=").is_err());
    assert!(parse("email=0").is_err());
    assert!(parse("email=a,hash=a").is_err());
    assert!(parse("email=1,hash=pw").is_err());
    assert!(parse("").is_err());
}
