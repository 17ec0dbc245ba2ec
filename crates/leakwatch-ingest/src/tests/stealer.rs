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
        input: b"URL: https://a.example.com\nUsername: \nPassword: x\n==========\nURL: chrome://settings\nUsername: m@n.co\nPassword: y\n==========\nURL: https://b.example.com\nUsername: not an@email\nPassword: z\n==========\nURL: https://c.example.com\nUsername: o@p.co\nPassword: a\x01b\n==========\nURL: https://d.example.com\nUsername: q@r.co\nPassword: ok\n==========\n",
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
    let input = b"*****************\nURL: https://a.example.com\nUsername: s@t.co\nPassword: 1\n\nhttps://b.example.com/login:u@v.co:2:3\nCookie: ignored line\n";
    let (report, records) = read_all_ways(input, Some(Format::Stealer));
    assert_eq!(
        records,
        vec![ew("s@t.co", Some(b"1"), "a.example.com"), ew("u@v.co", Some(b"2:3"), "b.example.com")]
    );
    assert_eq!(report.lines, 7);
    assert_eq!(report.rejected["invalid website"].sample_lines, vec![7]);
    assert!(report.data_classes.contains(&DataClass::Urls));
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
            |b| b,
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
            // `Passwords.txt` is recognized by its name (a RedLine banner line
            // hides its first label); a ULP file by its first line.
            let forced = file.path.ends_with("Passwords.txt").then_some(Format::Stealer);
            let (report, records) = read_all_ways(&file.text, forced);
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
        }
    }
}
