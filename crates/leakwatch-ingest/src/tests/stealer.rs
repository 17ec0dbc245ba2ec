//! Stealer logs: `Passwords.txt` blocks of each family and ULP lines, one
//! behaviour per case, each read whole and in tiny chunks (`read_all_ways`),
//! detected by content and by file name.

use super::*;

/// An email record captured for `site`.
fn ew(value: &str, password: Option<&[u8]>, site: &str) -> Record {
    Record { website: Some(site.into()), ..e(value, password) }
}

fn stealer(cases: Vec<Case<'_>>) {
    for case in &cases {
        // A forced format reads the same as the detected one.
        assert_eq!(read_all_ways(case.input, Some(Format::Stealer)), read_all_ways(case.input, None));
    }
    check(None, Format::Stealer, cases);
}

#[test]
fn family_block_layouts() {
    stealer(vec![
        // RedLine / META: URL, Username, Password, Application, 15 `=`.
        Case {
            input: b"URL: https://accounts.example.com/signin?x=1\r\nUsername: Ann@Mail.co\r\nPassword: pa: ss:x \r\nApplication: Google_[Chrome]_Default\r\n===============\r\nURL: https://forum.site.org:8443/\r\nUsername: bob_99\r\nPassword: hunter2\r\nApplication: Opera\r\n===============\r\n",
            records: vec![ew("ann@mail.co", Some(b"pa: ss:x "), "accounts.example.com"), u("bob_99", Some(b"hunter2"))],
            rejected: &[],
        },
        // Raccoon: upper-case labels, blocks split by blank lines.
        Case {
            input: b"URL: https://shop.example.com/\nUSER: c@d.co\nPASS: 1:2\n\nURL: android://aGFzaA==@com.whatsapp/\nUSER: e@f.co\nPASS: pw\n",
            records: vec![ew("c@d.co", Some(b"1:2"), "shop.example.com"), ew("e@f.co", Some(b"pw"), "com.whatsapp")],
            rejected: &[],
        },
        // Older families: Soft and Host before the login; no separators at all,
        // so a repeated role starts the next block.
        Case {
            input: b"Soft: Chrome\nHost: https://mail.example.net\nLogin: g@h.co\nPassword: x\nSoft: Firefox\nHost: site.com/login\nLogin: i@j.co\nPassword: \n",
            records: vec![ew("g@h.co", Some(b"x"), "mail.example.net"), ew("i@j.co", None, "site.com")],
            rejected: &[],
        },
        // Obfuscated labels, any case.
        Case {
            input: b"url: https://x.example.com\nu53rn4m3: k@l.co\np455w0rd: s3cr3t\n",
            records: vec![ew("k@l.co", Some(b"s3cr3t"), "x.example.com")],
            rejected: &[],
        },
    ]);
}

#[test]
fn block_rejections_count_at_the_block_start() {
    stealer(vec![Case {
        input: b"URL: https://a.example.com\nUsername: \nPassword: x\n==========\nURL: https://\nUsername: m@n.co\nPassword: y\n==========\nURL: https://b.example.com\nUsername: not an@email\nPassword: z\n==========\nURL: https://c.example.com\nUsername: o@p.co\nPassword: a\x01b\n==========\nURL: https://d.example.com\nUsername: q@r.co\nPassword: ok\n==========\n",
        records: vec![ew("q@r.co", Some(b"ok"), "d.example.com")],
        rejected: &[
            ("no account", &[1]),
            ("invalid website", &[5]),
            ("invalid email", &[9]),
            ("control characters", &[13]),
        ],
    }]);
}

#[test]
fn blocks_and_ulp_lines_mix_and_banners_are_skipped() {
    let input = b"*****************\nURL: https://a.example.com\nUsername: s@t.co\nPassword: 1\n\nhttps://b.example.com/login:u@v.co:2:3\nCookie: ignored line\nhttps://:w@x.co:4\n";
    let (report, records) = read_all_ways(input, Some(Format::Stealer));
    assert_eq!(
        records,
        vec![ew("s@t.co", Some(b"1"), "a.example.com"), ew("u@v.co", Some(b"2:3"), "b.example.com")]
    );
    assert_eq!(report.lines, 8);
    // The line that opens with no URL is a banner's; a URL with no host is not.
    assert_eq!(report.rejected.keys().copied().collect::<Vec<_>>(), vec!["invalid website"]);
    assert_eq!(report.rejected["invalid website"].sample_lines, vec![8]);
    assert!(report.data_classes.contains(&DataClass::Urls));
}

/// A router's, a NAS box's, an intranet portal's login: the account and its
/// password are exposed all the same; only the website pairing is left out.
#[test]
fn hosts_that_are_no_domain_keep_the_account_and_are_noted() {
    let input = b"URL: http://192.168.1.1:8080/login\r\nUsername: Admin@Home.net\r\nPassword: r0uter\r\n===============\r\n\
        Host: https://[::1]:8443/x\nLogin: nas_admin\nPassword: n4s\n\n\
        https://10.0.0.1:8080/cgi:a@b.co:p1\n\
        http://localhost:3000/:c@d.co:p2\n\
        https://intranet/:e@f.co:p3\n\
        http://[fe80::1]/:g@h.co:p4\n\
        https://[::1]:8443/path:i@j.co:p:5\n\
        https://site.example.com/:k@l.co:p6\n";
    let none = |value: &str, password: &[u8]| e(value, Some(password));
    stealer(vec![Case {
        input,
        records: vec![
            none("admin@home.net", b"r0uter"),
            u("nas_admin", Some(b"n4s")),
            none("a@b.co", b"p1"),
            none("c@d.co", b"p2"),
            none("e@f.co", b"p3"),
            none("g@h.co", b"p4"),
            none("i@j.co", b"p:5"),
            ew("k@l.co", Some(b"p6"), "site.example.com"),
        ],
        rejected: &[],
    }]);
    let (report, _) = read_all_ways(input, None);
    assert_eq!(report.notes, BTreeMap::from([(crate::WEBSITE_NOT_DOMAIN, 7)]));
    let (report, _) = read_all_ways(b"https://site.example.com/:k@l.co:p6\n", None);
    assert!(report.notes.is_empty());
}

/// A `Passwords.txt` renamed (or concatenated, or exported) opens with its
/// family's banner: its blocks still make it a stealer log, and its
/// `Username:` lines never become accounts of a combo list.
#[test]
fn renamed_password_lists_are_recognized_by_their_blocks() {
    let mut input = b"*******************************************************\r\n\
        *  ____          _ _     _                                *\r\n\
        * |  _ \\ ___  __| | |   (_)_ __   ___                   *\r\n\
        * | |_) / _ \\/ _` | |   | | '_ \\ / _ \\                  *\r\n\
        *******************************************************\r\n\
        Telegram: @redline_market\r\n\
        Build ID: 7f3a-22\r\n\r\n"
        .to_vec();
    // Far enough down that only a look past the first line finds the block.
    for _ in 0..200 {
        input.extend_from_slice(b"=====================================================\r\n");
    }
    input.extend_from_slice(
        b"URL: https://a.example.com/login\r\nUsername: ann@mail.co\r\nPassword: pw\r\nApplication: Opera\r\n===============\r\n\
          URL: http://192.168.0.1/\r\nUsername: admin\r\nPassword: admin\r\n===============\r\n",
    );
    let (report, records) = read_all_ways(&input, None);
    assert_eq!(report.format, Format::Stealer);
    assert_eq!(records, vec![ew("ann@mail.co", Some(b"pw"), "a.example.com"), u("admin", Some(b"admin"))]);
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    assert_eq!(report.lines, 217);

    // Beyond the first 64 KiB, the same block is not looked for.
    let mut far = b"ann@mail.co:pw\n".repeat(crate::detect::DETECT_WINDOW / 15 + 1);
    far.extend_from_slice(b"URL: https://a.example.com\nUsername: bob\nPassword: x\n");
    assert_eq!(read_all_ways(&far, None).0.format, Format::Combo);
}

#[test]
fn a_block_too_long_is_cut_at_its_last_whole_line() {
    let mut input = b"URL: https://a.example.com\nUsername: w@x.co\n".to_vec();
    input.extend(long_line(b"Password: ", MAX_LINE + 1));
    input.extend(b"\n");
    let (report, records) = read_all_ways(&input, None);
    assert_eq!(records, vec![ew("w@x.co", None, "a.example.com")]);
    assert_eq!(report.rejected["line too long"].sample_lines, vec![3]);
}

#[test]
fn password_lists_are_recognized_by_name() {
    // A ULP line with a bare host: only the name tells it from a combo.
    let input = b"a.example.com/login:y@z.co:pw\n";
    for (name, want) in [("log/Passwords.txt", Format::Stealer), ("combo.txt", Format::Combo)] {
        let raw = RawInput::from_reader(name.into(), None, Box::new(std::io::Cursor::new(input.to_vec())))
            .expect("open");
        let progress = std::sync::atomic::AtomicU64::new(0);
        let mut records = Vec::new();
        let report = read_chunked(
            raw,
            None,
            &progress,
            CHUNK_SIZE,
            |b| b.to_vec(),
            |b| {
                records.extend(b);
                Ok(())
            },
        )
        .expect("read");
        assert_eq!(report.format, want, "{name}");
        if want == Format::Stealer {
            assert_eq!(records, vec![ew("y@z.co", Some(b"pw"), "a.example.com")]);
        }
    }
}

#[test]
fn utf16_password_lists_read_like_utf8_ones() {
    let text =
        "URL: https://a.example.com/\r\nUsername: ann@mail.co\r\nPassword: pässwörd\r\n===============\r\n";
    let mut le = vec![0xff, 0xfe];
    le.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
    let mut be = vec![0xfe, 0xff];
    be.extend(text.encode_utf16().flat_map(u16::to_be_bytes));
    for input in [le, be] {
        let (report, records) = read_all_ways(&input, None);
        assert_eq!(report.format, Format::Stealer);
        assert_eq!(report.lines, 4);
        assert_eq!(records, vec![ew("ann@mail.co", Some("pässwörd".as_bytes()), "a.example.com")]);
    }
}

#[test]
fn generated_log_folders_and_ulp_files_give_exactly_their_records() {
    use leakwatch_gen::stealer::stealer_logs;
    for seed in [1, 2] {
        for file in stealer_logs(seed, 24) {
            // Every file is recognized as it comes: `Passwords.txt` by its
            // name, renamed and concatenated lists by their blocks behind the
            // banners, a ULP file by its first line.
            let (report, records) = read_all_ways(&file.text, None);
            assert_eq!(report.format, Format::Stealer, "{}", file.path);
            assert_eq!(report.lines, file.lines, "{}", file.path);
            let want: Vec<Record> = file
                .records
                .iter()
                .map(|r| Record {
                    account: account(r.account.0, &r.account.1),
                    password: r.password.as_deref().map(|p| PasswordMaterial::Plain(PasswordHashes::of(p))),
                    website: r.website.clone(),
                })
                .collect();
            assert_eq!(records, want, "{}", file.path);
            let rejected: BTreeMap<&str, (u64, Vec<u64>)> =
                report.rejected.iter().map(|(k, r)| (&k[..], (r.count, r.sample_lines.clone()))).collect();
            let expected: BTreeMap<&str, (u64, Vec<u64>)> = file
                .rejected
                .iter()
                .map(|(k, lines)| (*k, (lines.len() as u64, lines.iter().take(5).copied().collect())))
                .collect();
            assert_eq!(rejected, expected, "{}", file.path);
            let noted = report.notes.get(crate::WEBSITE_NOT_DOMAIN).copied().unwrap_or(0);
            assert_eq!(noted, file.not_domain, "{}", file.path);
        }
    }
}
