//! `leakwatch org` and `leakwatch audit --org`: an organization's directory
//! (CSV, then pwdump re-imported over it) audited against generated breaches,
//! a stealer log and a Pwned Passwords import, with exact answers: the
//! per-account match of the current password, counts apart and summed, shared
//! and empty passwords, disabled accounts left aside, most urgent first. The
//! directory's NT hashes never reach the catalog, nor its addresses in clear.

use std::path::Path;

use serde_json::{json, Value};

mod support;

use support::Env;

fn nt(password: &str) -> String {
    leakwatch_types::encode_hex_upper(&leakwatch_types::ntlm(password.as_bytes()))
}

const EMPTY_NT: &str = "31d6cfe0d16ae931b73c59d7e0c089c0";

/// Alpha and Beta: combo dumps; Stealer1: a stealer log; and a Pwned
/// Passwords NTLM import in which hunter2 was seen 5,000 times.
fn corpus(env: &Env) {
    let alpha = env.file(
        "alpha.txt",
        "alice@corp.example:Summer2024\nbob@corp.example:Winter2023\nmallory@other.example:hunter2\n\
         dave@corp.example:oldpass1\n",
    );
    let beta = env.file("beta.txt", "alice@corp.example:Summer2024\nerin@corp.example:erinpw\n");
    let stealer = env.file("ulp.txt", "https://shop.example.net/login:carol@corp.example:shoppw1\n");
    let pwned = env.file("pwned.txt", &format!("{}:5000\n{}:7\n", nt("hunter2"), nt("zzz-not-ours")));
    env.run(&["ingest", "--breach", "Alpha", "--breach-date", "2019-05-01", &alpha]).ok("ingest Alpha");
    env.run(&["ingest", "--breach", "Beta", "--breach-date", "2021-03-02", &beta]).ok("ingest Beta");
    env.run(&[
        "ingest",
        "--breach",
        "Stealer1",
        "--breach-date",
        "2024-01-15",
        "--format",
        "stealer",
        &stealer,
    ])
    .ok("ingest Stealer1");
    env.run(&["import", "pwned-passwords", "--ntlm", &pwned]).ok("import pwned");
}

/// The exact `--json` object of an account, in the field order printed.
#[allow(clippy::too_many_arguments)]
fn expect(
    account: &str,
    disabled: bool,
    severity: &str,
    own: &[&str],
    stealer: &[&str],
    known: bool,
    (own_count, hibp_count): (u64, u64),
    empty: bool,
    shared: &[&str],
    breaches: &[(&str, &str)],
) -> Value {
    let mut dated = breaches.to_vec();
    dated.sort_by_key(|b| b.1);
    let mut names: Vec<&str> = breaches.iter().map(|b| b.0).collect();
    names.sort();
    json!({
        "account": account,
        "username": account.split('@').next().unwrap(),
        "disabled": disabled,
        "severity": severity,
        "own_password_leaked_in": own,
        "stealer_websites": stealer,
        "password_known": known,
        "password_count": own_count + hibp_count,
        "password_count_own": own_count,
        "password_count_hibp": hibp_count,
        "empty_password": empty,
        "shared_with": shared,
        "breaches": names,
        "breach_details": dated.iter().map(|(n, d)| json!({"name": n, "title": n, "date": d})).collect::<Vec<_>>(),
    })
}

const ALPHA: (&str, &str) = ("Alpha", "2019-05-01");
const BETA: (&str, &str) = ("Beta", "2021-03-02");
const STEALER: (&str, &str) = ("Stealer1", "2024-01-15");

#[test]
fn a_directory_is_audited_per_account_most_urgent_first() {
    let env = Env::new();
    corpus(&env);
    env.run(&["org", "add", "acme", "--domain", "Corp.Example", "corp.example.net"]).ok("org add");
    let dup = env.run(&["org", "add", "acme", "--domain", "corp.example"]);
    assert_eq!(dup.code, 2, "{}", dup.stderr);

    // BOM, CRLF, columns in another order, hashes in either case; a machine
    // account and a malformed hash left out with their reasons.
    let csv = format!(
        "\u{FEFF}disabled,nt_hash,username,email\r\n\
         false,{},alice,alice@corp.example\r\n\
         false,{},bob,bob@corp.example\r\n\
         false,{},carol,carol@corp.example\r\n\
         false,{},dave,dave@corp.example\r\n\
         false,{EMPTY_NT},erin,erin@corp.example\r\n\
         false,{},frank,frank@corp.example\r\n\
         true,{},grace,grace@corp.example\r\n\
         false,,heidi,heidi@corp.example\r\n\
         false,{},WKS01$,\r\n\
         false,nothex,ivan,ivan@corp.example\r\n",
        nt("Summer2024").to_lowercase(),
        nt("hunter2"),
        nt("Carol!Clean9"),
        nt("Fresh#2026"),
        nt("Fresh#2026").to_lowercase(),
        nt("Summer2024"),
        nt("whatever"),
    );
    let csv = env.file("directory.csv", &csv);
    let import = env.run(&["org", "import", "acme", &csv, "--json"]).ok("org import csv");
    assert_eq!(
        import.json_lines(),
        vec![json!({
            "organization": "acme", "format": "csv", "accounts": 8, "disabled": 1, "with_nt_hash": 7,
            "added": 8, "removed": 0, "password_changed": 0,
            "left_out": {"machine account": {"count": 1, "lines": [10]}, "malformed NT hash": {"count": 1, "lines": [11]}},
        })]
    );

    let audit = env.run(&["audit", "--org", "acme", "--json"]).ok("audit --json");
    let expected = vec![
        expect(
            "alice@corp.example",
            false,
            "critical",
            &["Alpha", "Beta"],
            &[],
            true,
            (2, 0),
            false,
            &[],
            &[ALPHA, BETA],
        ),
        expect(
            "carol@corp.example",
            false,
            "high",
            &[],
            &["shop.example.net"],
            true,
            (0, 0),
            false,
            &[],
            &[STEALER],
        ),
        expect("erin@corp.example", false, "high", &[], &[], true, (0, 0), true, &[], &[BETA]),
        expect("bob@corp.example", false, "high", &[], &[], true, (1, 5000), false, &[], &[ALPHA]),
        expect(
            "dave@corp.example",
            false,
            "medium",
            &[],
            &[],
            true,
            (0, 0),
            false,
            &["frank@corp.example"],
            &[ALPHA],
        ),
        expect(
            "frank@corp.example",
            false,
            "medium",
            &[],
            &[],
            true,
            (0, 0),
            false,
            &["dave@corp.example"],
            &[],
        ),
        expect("heidi@corp.example", false, "none", &[], &[], false, (0, 0), false, &[], &[]),
        // Disabled: left aside at the end. Its password leaked, but for Alice;
        // it shares it with her (she is not told of a disabled account).
        expect(
            "grace@corp.example",
            true,
            "high",
            &[],
            &[],
            true,
            (2, 0),
            false,
            &["alice@corp.example"],
            &[],
        ),
    ];
    let got = audit.json_lines();
    assert_eq!(got.len(), expected.len(), "{}", audit.stdout);
    for (g, e) in got.iter().zip(&expected) {
        assert_eq!(g, e);
    }

    // The terminal table lists the exposed accounts and a summary.
    let table = env.run(&["audit", "--org", "acme"]).ok("audit table");
    assert!(table.stdout.starts_with("SEVERITY"), "{}", table.stdout);
    assert!(table.stdout.contains("critical  alice@corp.example  Alpha, Beta"), "{}", table.stdout);
    assert!(!table.stdout.contains("heidi@"), "{}", table.stdout);
    assert!(
        table.stdout.contains("7 accounts audited (1 disabled left aside): 6 exposed"),
        "{}",
        table.stdout
    );

    let csv_out = env.run(&["audit", "--org", "acme", "--csv"]).ok("audit --csv");
    let lines: Vec<&str> = csv_out.stdout.lines().collect();
    assert_eq!(lines.len(), 9);
    assert!(lines[0].starts_with("account,username,disabled,severity,own_password_leaked_in"));
    assert!(lines[1].starts_with("alice@corp.example,alice,false,critical,Alpha;Beta,"), "{}", lines[1]);

    let html_path = env.root.join("report.html");
    let html = env.run(&["audit", "--org", "acme", "--html", html_path.to_str().unwrap()]).ok("audit --html");
    assert!(html.stdout.starts_with("wrote "), "{}", html.stdout);
    let page = std::fs::read_to_string(&html_path).unwrap();
    assert!(
        page.starts_with("<!DOCTYPE html>") && page.contains("<svg") && page.contains("alice@corp.example")
    );
    for external in ["src=", "<link", "href=", "url(", "@import"] {
        assert!(!page.contains(external), "external asset: {external}");
    }

    assert_no_nt_hash_in_catalog(&env.data(), &["Summer2024", "hunter2", "Carol!Clean9", "Fresh#2026"]);
    assert_no_address_in_catalog(&env.data(), &["alice@corp.example", "heidi@corp.example", "WKS01"]);

    // Re-import from secretsdump replaces the directory: Bob changed his
    // password; a machine account, a history line and junk are left out.
    let pwdump = format!(
        "[*] Dumping Domain Credentials (domain\\uid:rid:lmhash:nthash)\n\
         CORP\\alice:1104:aad3b435b51404eeaad3b435b51404ee:{}:::\n\
         CORP\\bob:1105:aad3b435b51404eeaad3b435b51404ee:{}::: (status=Enabled)\n\
         CORP\\WKS01$:1106:aad3b435b51404eeaad3b435b51404ee:{}:::\n\
         CORP\\alice_history0:1104:aad3b435b51404eeaad3b435b51404ee:{}:::\n\
         CORP\\grace:1107:aad3b435b51404eeaad3b435b51404ee:{}::: (status=Disabled)\n\
         this is not a hash line\n",
        nt("Summer2024"),
        nt("NewPass!77").to_lowercase(),
        nt("x"),
        nt("old"),
        nt("Summer2024"),
    );
    let pwdump = env.file("ntds.txt", &pwdump);
    let import = env.run(&["org", "import", "acme", &pwdump, "--format", "pwdump", "--json"]).ok("pwdump");
    assert_eq!(
        import.json_lines(),
        vec![json!({
            "organization": "acme", "format": "pwdump", "accounts": 3, "disabled": 1, "with_nt_hash": 3,
            "added": 0, "removed": 5, "password_changed": 1,
            "left_out": {
                "machine account": {"count": 1, "lines": [4]},
                "not a user:rid:lmhash:nthash::: line": {"count": 1, "lines": [7]},
                "password history": {"count": 1, "lines": [5]},
                "secretsdump banner line": {"count": 1, "lines": [1]},
            },
        })]
    );
    let audit = env.run(&["audit", "--org", "acme", "--json"]).ok("audit after pwdump");
    assert_eq!(
        audit.json_lines(),
        vec![
            expect(
                "alice@corp.example",
                false,
                "critical",
                &["Alpha", "Beta"],
                &[],
                true,
                (2, 0),
                false,
                &[],
                &[ALPHA, BETA]
            ),
            expect("bob@corp.example", false, "low", &[], &[], true, (0, 0), false, &[], &[ALPHA]),
            expect(
                "grace@corp.example",
                true,
                "high",
                &[],
                &[],
                true,
                (2, 0),
                false,
                &["alice@corp.example"],
                &[]
            ),
        ]
    );

    // Both commands are audited, per domain of the organization.
    let log = env.run(&["audit-log", "--json"]).ok("audit-log");
    let endpoints: Vec<(String, String)> = log
        .json_lines()
        .iter()
        .map(|r| {
            let e = r.get("entry").unwrap_or(r);
            (
                e["endpoint"].as_str().unwrap().to_owned(),
                e["subject"]["clear"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    for (endpoint, domain) in [
        ("cli org import --org acme", "corp.example"),
        ("cli org import --org acme", "corp.example.net"),
        ("cli audit --org acme", "corp.example"),
    ] {
        assert!(endpoints.contains(&(endpoint.to_owned(), domain.to_owned())), "{endpoints:?}");
    }

    let show = env.run(&["org", "show", "acme", "--json"]).ok("org show");
    let org = &show.json_lines()[0];
    assert_eq!(org["domains"], json!(["corp.example", "corp.example.net"]));
    assert_eq!(org["accounts"], json!(3));
    assert_eq!(org["directory"]["source"], json!("pwdump"));
    let list = env.run(&["org", "list"]).ok("org list");
    assert!(list.stdout.contains("acme"), "{}", list.stdout);
    env.run(&["org", "remove", "acme"]).ok("org remove");
    assert_eq!(env.run(&["org", "show", "acme"]).code, 2);
    assert_eq!(env.run(&["audit", "--org", "acme"]).code, 2);
}

/// A breach ingested after the import is named on stderr: its password
/// findings wait for the next import.
#[test]
fn breaches_newer_than_the_import_are_named() {
    let env = Env::new();
    let alpha = env.file("alpha.txt", "zed@corp.example:pw1\n");
    env.run(&["ingest", "--breach", "Alpha", &alpha]).ok("ingest");
    env.run(&["org", "add", "acme", "--domain", "corp.example"]).ok("org add");
    let none = env.run(&["audit", "--org", "acme"]);
    assert_eq!(none.code, 2, "no directory yet: {}", none.stderr);
    let csv = env.file("d.csv", &format!("email,nt_hash\nzed@corp.example,{}\n", nt("pw2")));
    env.run(&["org", "import", "acme", &csv]).ok("import");
    let gamma = env.file("gamma.txt", "zed@corp.example:pw2\n");
    env.run(&["ingest", "--breach", "Gamma", &gamma]).ok("ingest Gamma");
    let audit = env.run(&["audit", "--org", "acme", "--json"]).ok("audit");
    assert!(audit.stderr.contains("breaches ingested since (Gamma)"), "{}", audit.stderr);
    assert_eq!(audit.json_lines()[0]["own_password_leaked_in"], json!([]));
    env.run(&["org", "import", "acme", &csv]).ok("re-import");
    let audit = env.run(&["audit", "--org", "acme", "--json"]).ok("audit");
    assert!(audit.stderr.is_empty(), "{}", audit.stderr);
    assert_eq!(audit.json_lines()[0]["own_password_leaked_in"], json!(["Gamma"]));
    // A clean directory: exit 1, as a search that found nothing.
    let clean = env.file("clean.csv", "email\nnobody@corp.example\n");
    env.run(&["org", "import", "acme", &clean]).ok("import clean");
    assert_eq!(env.run(&["audit", "--org", "acme"]).code, 1);
}

/// `reset` on a directory from a file: a dry run lists who and why; --apply
/// needs a reset list, written as CSV or JSON, one audit row per account;
/// disabled accounts are left aside; nothing to reset exits 1.
#[test]
fn a_file_directory_is_reset_through_a_reset_list() {
    let env = Env::new();
    corpus(&env);
    assert_eq!(env.run(&["reset", "--org", "acme"]).code, 2, "no such organization");
    env.run(&["org", "add", "acme", "--domain", "corp.example"]).ok("org add");
    let no_directory = env.run(&["reset", "--org", "acme"]);
    assert_eq!(no_directory.code, 2, "{}", no_directory.stderr);
    assert!(no_directory.stderr.contains("has no directory yet"), "{}", no_directory.stderr);
    let csv = format!(
        "email,username,nt_hash,disabled\nalice@corp.example,alice,{},false\nbob@corp.example,=bob,{},false\n\
         carol@corp.example,carol,,false\ndave@corp.example,dave,{},true\nzoe@corp.example,zoe,{},false\n",
        nt("Summer2024"),
        nt("hunter2"),
        nt("oldpass1"),
        nt("Zoe-Clean-2026"),
    );
    let csv = env.file("d.csv", &csv);
    // A file or a server, not both.
    assert_eq!(env.run(&["org", "import", "acme", &csv, "--ldap", "ldap://127.0.0.1:1"]).code, 2);
    env.run(&["org", "import", "acme", &csv]).ok("import");

    let dry = env.run(&["reset", "--org", "acme", "--include-common", "--json"]).ok("dry run");
    let rows = dry.json_lines();
    let names: Vec<&str> = rows.iter().map(|r| r["account"].as_str().unwrap()).collect();
    assert_eq!(names, ["alice@corp.example", "bob@corp.example", "carol@corp.example"]);
    assert_eq!(
        rows[0]["reasons"],
        json!(["own current password leaked in Alpha, Beta", "current password seen 2 times in the corpus"])
    );
    assert_eq!(rows[1]["reasons"], json!(["current password seen 5,001 times in the corpus"]));
    assert_eq!(rows[2]["reasons"], json!(["device in a stealer log (credentials for shop.example.net)"]));
    assert!(rows.iter().all(|r| r["action"] == json!("reset list") && r["applied"] == json!(false)));

    let refused = env.run(&["reset", "--org", "acme", "--apply"]);
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(refused.stderr.contains("--reset-list FILE"), "{}", refused.stderr);

    let list = env.root.join("reset.csv");
    let list_arg = list.display().to_string();
    let dry = env.run(&["reset", "--org", "acme", "--reset-list", &list_arg]).ok("dry run with a list");
    assert!(dry.stdout.contains("dry run: 2 accounts would be reset"), "{}", dry.stdout);
    assert!(!list.exists(), "a dry run writes nothing");
    env.run(&["reset", "--org", "acme", "--apply", "--include-common", "--reset-list", &list_arg])
        .ok("reset list");
    assert_eq!(
        std::fs::read_to_string(&list).unwrap(),
        "email,username,dn,reasons\n\
         alice@corp.example,alice,,\"own current password leaked in Alpha, Beta; current password seen 2 times in the \
         corpus\"\n\
         bob@corp.example,'=bob,,\"current password seen 5,001 times in the corpus\"\n\
         carol@corp.example,carol,,device in a stealer log (credentials for shop.example.net)\n"
    );
    let json_list = env.root.join("reset.json");
    env.run(&["reset", "--org", "acme", "--apply", "--reset-list", &json_list.display().to_string()])
        .ok("JSON reset list");
    let listed: Value = serde_json::from_str(&std::fs::read_to_string(&json_list).unwrap()).unwrap();
    let listed: Vec<&str> =
        listed.as_array().unwrap().iter().map(|r| r["account"].as_str().unwrap()).collect();
    assert_eq!(listed, ["alice@corp.example", "carol@corp.example"]);
    let to_stdout = env
        .run(&["reset", "--org", "acme", "--apply", "--reset-list", "-", "--format", "json"])
        .ok("reset list on stdout");
    let listed: Value = serde_json::from_str(&to_stdout.stdout).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 2);

    let log = env.run(&["audit-log", "--json"]).ok("audit-log");
    let endpoints: Vec<String> = log
        .json_lines()
        .iter()
        .map(|r| r.get("entry").unwrap_or(r)["endpoint"].as_str().unwrap().to_owned())
        .collect();
    let csv_rows = endpoints
        .iter()
        .filter(|e| e.starts_with("cli reset --apply --org acme (reset list ") && e.ends_with("reset.csv)"))
        .count();
    assert_eq!(csv_rows, 3, "{endpoints:?}");
    assert!(endpoints.contains(&"cli reset --org acme".to_owned()), "{endpoints:?}");

    // Password findings are the import's: a breach ingested since is named.
    let gamma = env.file("gamma.txt", "zoe@corp.example:Zoe-Clean-2026\n");
    env.run(&["ingest", "--breach", "Gamma", &gamma]).ok("ingest Gamma");
    let stale = env.run(&["reset", "--org", "acme"]).ok("reset after a new breach");
    assert!(stale.stderr.contains("breaches ingested since (Gamma)"), "{}", stale.stderr);

    let clean = env.file("clean.csv", &format!("email,nt_hash\nzoe@corp.example,{}\n", nt("Zoe-New-2027")));
    env.run(&["org", "import", "acme", &clean]).ok("import clean");
    let nothing = env.run(&["reset", "--org", "acme", "--apply", "--reset-list", &list_arg]);
    assert_eq!(nothing.code, 1, "{}", nothing.stderr);
    assert!(nothing.stdout.contains("no account needs a reset"), "{}", nothing.stdout);
}

/// No file of the data directory holds a directory NT hash, in hex of either
/// case or as raw bytes.
fn assert_no_nt_hash_in_catalog(data: &Path, passwords: &[&str]) {
    for entry in std::fs::read_dir(data).unwrap() {
        let path = entry.unwrap().path();
        if !path.is_file() {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        for p in passwords {
            let raw = leakwatch_types::ntlm(p.as_bytes());
            let hex = nt(p);
            for needle in [&raw[..], hex.as_bytes(), hex.to_lowercase().as_bytes()] {
                assert!(
                    !bytes.windows(needle.len()).any(|w| w == needle),
                    "{} holds the NT hash of {p:?}",
                    path.display()
                );
            }
        }
    }
}

/// No file of the data directory names a directory account in clear.
fn assert_no_address_in_catalog(data: &Path, values: &[&str]) {
    for entry in std::fs::read_dir(data).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            let bytes = std::fs::read(&path).unwrap();
            for v in values {
                assert!(!bytes.windows(v.len()).any(|w| w == v.as_bytes()), "{} holds {v:?}", path.display());
            }
        }
    }
}
