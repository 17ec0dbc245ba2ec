//! `org import --ldap` and `reset` against a real OpenLDAP: Debian's slapd,
//! started by the test on a free loopback port with its own configuration,
//! an mdb database in a temporary directory, the ppolicy overlay, a minimal
//! samba schema (sambaNTPassword) and a TLS certificate from a test CA, for
//! StartTLS and LDAPS. It fails, never skips, when slapd is not installed
//! (`.ci/run` installs it).
//!
//! The OpenLDAP directory is read by an account with a size limit of two
//! entries, so the import only gets everyone through paged results. A second
//! slapd answers as Active Directory does (AD's capability in its rootDSE,
//! AD's user attributes under AD's OIDs, a page limit of 1,000 with 1,203
//! people), for the AD side: `userAccountControl`, `sAMAccountName`, and a
//! reset that sets `pwdLastSet: 0`.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

mod support;

use support::{run, Env, Run};

const SUFFIX: &str = "dc=corp,dc=example";
const PEOPLE: &str = "ou=people,dc=corp,dc=example";
const ADMIN: &str = "cn=admin,dc=corp,dc=example";
const ADMIN_PW: &str = "admin-secret";
const READER: &str = "cn=reader,dc=corp,dc=example";
const READER_PW: &str = "reader-secret";

/// A minimal part of samba's schema, under samba's OIDs: the NT hash
/// attribute and an auxiliary class to carry it.
const SAMBA_SCHEMA: &str = r#"
attributetype ( 1.3.6.1.4.1.7165.2.1.25 NAME 'sambaNTPassword'
    DESC 'MD4 hash of the unicode password'
    EQUALITY caseIgnoreIA5Match
    SYNTAX 1.3.6.1.4.1.1466.115.121.1.26{32} SINGLE-VALUE )
objectclass ( 1.3.6.1.4.1.7165.2.2.6 NAME 'sambaSamAccount' SUP top AUXILIARY
    DESC 'Samba 3.0 Auxilary SAM Account (the test subset)'
    MAY ( sambaNTPassword ) )
"#;

fn slapd_binary() -> PathBuf {
    for dir in std::env::var("PATH").unwrap_or_default().split(':').chain(["/usr/sbin", "/usr/local/sbin"]) {
        let p = Path::new(dir).join("slapd");
        if p.is_file() {
            return p;
        }
    }
    panic!(
        "slapd is not installed: this test needs Debian's slapd and ldap-utils \
         (apt-get install slapd ldap-utils; .ci/run does it)"
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn nt(password: &str) -> String {
    leakwatch_types::encode_hex_upper(&leakwatch_types::ntlm(password.as_bytes()))
}

/// A running slapd; killed with the test.
struct Slapd {
    child: Child,
    root: PathBuf,
    ldap: String,
    ldaps: String,
}

impl Drop for Slapd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What makes one test server: OpenLDAP with ppolicy, or a server that
/// answers as Active Directory does.
struct Flavor {
    /// Schema text, included after the system's core schemas.
    schema: &'static str,
    /// Lines before the database (e.g. `rootDSE FILE`, FILE under the root).
    global: String,
    /// Extra files to write under the root, by name.
    files: Vec<(&'static str, String)>,
    /// The reading account's size limit.
    reader_size_limit: u32,
    /// Lines at the end of the database (overlays).
    database_tail: &'static str,
    ldif: String,
}

impl Flavor {
    fn openldap() -> Flavor {
        Flavor {
            schema: SAMBA_SCHEMA,
            global: "moduleload ppolicy".to_owned(),
            files: Vec::new(),
            reader_size_limit: 2,
            database_tail: "overlay ppolicy",
            ldif: directory_ldif(),
        }
    }
}

impl Slapd {
    fn start(root: &Path, flavor: Flavor) -> Slapd {
        let slapd = slapd_binary();
        let root = root.join("slapd");
        std::fs::create_dir_all(root.join("db")).unwrap();
        let ca_pem = test_certificates(&root);
        std::fs::write(root.join("ca.pem"), ca_pem).unwrap();
        std::fs::write(root.join("extra.schema"), flavor.schema).unwrap();
        for (name, text) in &flavor.files {
            std::fs::write(root.join(name), text).unwrap();
        }
        let conf = format!(
            r#"include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
include {root}/extra.schema
modulepath /usr/lib/ldap
moduleload back_mdb
{global}
pidfile {root}/slapd.pid
TLSCACertificateFile {root}/ca.pem
TLSCertificateFile {root}/server.pem
TLSCertificateKeyFile {root}/server.key

database mdb
maxsize 104857600
suffix "{SUFFIX}"
rootdn "{ADMIN}"
rootpw {ADMIN_PW}
directory {root}/db
limits dn.exact="{READER}" size.soft={limit} size.hard={limit} size.pr=unlimited size.prtotal=unlimited
access to attrs=userPassword by self write by anonymous auth by * none
access to * by dn.exact="{READER}" read by * none
{tail}
"#,
            root = root.display(),
            global = flavor.global.replace("{root}", &root.display().to_string()),
            limit = flavor.reader_size_limit,
            tail = flavor.database_tail,
        );
        let conf_path = root.join("slapd.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let ldif = root.join("data.ldif");
        std::fs::write(&ldif, &flavor.ldif).unwrap();
        let added = Command::new(slapd.with_file_name("slapadd"))
            .arg("-f")
            .arg(&conf_path)
            .arg("-l")
            .arg(&ldif)
            .output()
            .expect("slapadd runs");
        assert!(added.status.success(), "slapadd: {}", String::from_utf8_lossy(&added.stderr));

        let (port, tls_port) = (free_port(), free_port());
        let ldap = format!("ldap://127.0.0.1:{port}");
        let ldaps = format!("ldaps://127.0.0.1:{tls_port}");
        let child = Command::new(&slapd)
            .arg("-f")
            .arg(&conf_path)
            .arg("-h")
            .arg(format!("{ldap}/ {ldaps}/"))
            .args(["-d", "0"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(root.join("slapd.log")).unwrap())
            .spawn()
            .expect("slapd starts");
        let mut server = Slapd { child, root, ldap, ldaps };
        let deadline = Instant::now() + Duration::from_secs(20);
        for p in [port, tls_port] {
            while TcpStream::connect(("127.0.0.1", p)).is_err() {
                let exited = server.child.try_wait().unwrap();
                if exited.is_some() || Instant::now() > deadline {
                    let log = std::fs::read_to_string(server.root.join("slapd.log")).unwrap_or_default();
                    panic!("slapd did not listen on port {p} ({exited:?}): {log}");
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        server
    }

    fn ca(&self) -> String {
        self.root.join("ca.pem").display().to_string()
    }

    /// `ldapsearch` as the administrator: the value of `attr` on `dn`.
    fn attribute(&self, dn: &str, attr: &str) -> Option<String> {
        let out = Command::new("ldapsearch")
            .args([
                "-x",
                "-LLL",
                "-o",
                "ldif-wrap=no",
                "-H",
                &self.ldap,
                "-D",
                ADMIN,
                "-w",
                ADMIN_PW,
                "-b",
                dn,
            ])
            .args(["-s", "base", "(objectClass=*)", attr])
            .output()
            .expect("ldapsearch runs");
        assert!(out.status.success(), "ldapsearch: {}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8(out.stdout).unwrap();
        let prefix = format!("{attr}: ");
        text.lines().find_map(|l| l.strip_prefix(&prefix)).map(str::to_owned)
    }

    fn delete(&self, dn: &str) {
        let out = Command::new("ldapdelete")
            .args(["-x", "-H", &self.ldap, "-D", ADMIN, "-w", ADMIN_PW, dn])
            .output()
            .expect("ldapdelete runs");
        assert!(out.status.success(), "ldapdelete: {}", String::from_utf8_lossy(&out.stderr));
    }
}

/// A test CA and a certificate it signed for 127.0.0.1 and localhost
/// (server.pem, server.key under `root`); returns the CA's PEM.
fn test_certificates(root: &Path) -> String {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, "leakwatch test CA");
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    std::fs::write(root.join("server.pem"), leaf.pem()).unwrap();
    std::fs::write(root.join("server.key"), key.serialize_pem()).unwrap();
    ca.pem()
}

/// The suffix, the people's OU and the reading account.
fn base_ldif() -> String {
    format!(
        "dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\ndc: corp\no: Corp\n\n\
         dn: {PEOPLE}\nobjectClass: organizationalUnit\nou: people\n\n\
         dn: {READER}\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\ncn: reader\n\
         userPassword: {READER_PW}\n\n"
    )
}

/// The parts of Active Directory's schema the import and reset use (AD's
/// OIDs), as user attributes: slapd lets no configuration define operational
/// ones. `objectCategory` is a plain string here (a DN in AD, which AD matches
/// against `person` by its own rule).
const AD_SCHEMA: &str = r#"
attributetype ( 1.2.840.113556.1.4.1791 NAME 'supportedCapabilities'
    EQUALITY objectIdentifierMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.38 )
attributetype ( 1.2.840.113556.1.4.221 NAME 'sAMAccountName'
    EQUALITY caseIgnoreMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
attributetype ( 1.2.840.113556.1.4.8 NAME 'userAccountControl'
    EQUALITY integerMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE )
attributetype ( 1.2.840.113556.1.4.96 NAME 'pwdLastSet'
    EQUALITY integerMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE )
attributetype ( 1.2.840.113556.1.4.782 NAME 'objectCategory'
    EQUALITY caseIgnoreMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
objectclass ( 1.2.840.113556.1.5.9 NAME 'user' SUP top AUXILIARY
    MAY ( sAMAccountName $ userAccountControl $ pwdLastSet $ objectCategory ) )
"#;

/// A password set on some day of 2022, in AD's 100 ns ticks since 1601.
const PWD_LAST_SET: &str = "133000000000000000";

/// A server that answers as Active Directory: its rootDSE advertises AD's
/// capability, and its 1,203 people (more than AD's page limit of 1,000, the
/// reading account's size limit here) are `user`s with `sAMAccountName` and
/// `userAccountControl`: alice, carol (in a stealer log), grace (disabled,
/// 514), 1,200 others; and a computer, which the default filter leaves out.
fn active_directory() -> Flavor {
    let user = |name: &str, uac: u32, category: &str| {
        format!(
            "dn: cn={name},{PEOPLE}\nobjectClass: inetOrgPerson\nobjectClass: user\ncn: {name}\nsn: {name}\n\
             sAMAccountName: {name}\nmail: {name}@corp.example\nuserAccountControl: {uac}\n\
             objectCategory: {category}\npwdLastSet: {PWD_LAST_SET}\n\n"
        )
    };
    let mut ldif = base_ldif();
    for (name, uac) in [("alice", 512), ("carol", 512), ("grace", 514)] {
        ldif.push_str(&user(name, uac, "person"));
    }
    for i in 0..1200 {
        ldif.push_str(&user(&format!("staff{i:04}"), 512, "person"));
    }
    ldif.push_str(&user("WKS01$", 4096, "computer"));
    Flavor {
        schema: AD_SCHEMA,
        global: "rootDSE {root}/rootdse.ldif".to_owned(),
        files: vec![(
            "rootdse.ldif",
            "dn:\nsupportedCapabilities: 1.2.840.113556.1.4.800\nsupportedCapabilities: 1.2.840.113556.1.4.1670\n"
                .to_owned(),
        )],
        reader_size_limit: 1000,
        database_tail: "",
        ldif,
    }
}

/// The people: alice (her current password leaked for her), bob (a common
/// password), carol (in a stealer log), dave (clean), grace (leaked, but
/// locked by an administrator), heidi (leaked, shadowExpire passed), ivan (no
/// address: ivan@corp.example) and a machine account.
fn directory_ldif() -> String {
    let person = |uid: &str, mail: Option<&str>, password: Option<&str>, extra: &str| {
        let mut e = format!(
            "dn: uid={uid},{PEOPLE}\nobjectClass: inetOrgPerson\nobjectClass: sambaSamAccount\n\
             objectClass: shadowAccount\nuid: {uid}\ncn: {uid}\nsn: {uid}\n"
        );
        if let Some(m) = mail {
            e.push_str(&format!("mail: {m}\n"));
        }
        if let Some(p) = password {
            e.push_str(&format!("sambaNTPassword: {}\n", nt(p)));
        }
        e.push_str(extra);
        e.push('\n');
        e
    };
    let mut ldif = base_ldif();
    ldif.push_str(&person("alice", Some("Alice@Corp.Example"), Some("Summer2024"), ""));
    ldif.push_str(&person("bob", Some("bob@corp.example"), Some("hunter2"), ""));
    ldif.push_str(&person("carol", Some("carol@corp.example"), Some("Carol!Clean9"), ""));
    ldif.push_str(&person("dave", Some("dave@corp.example"), Some("Fresh#2026"), ""));
    ldif.push_str(&person(
        "grace",
        Some("grace@corp.example"),
        Some("Gr4ce!"),
        "pwdAccountLockedTime: 000001010000Z\n",
    ));
    ldif.push_str(&person("heidi", Some("heidi@corp.example"), Some("He1di!"), "shadowExpire: 1\n"));
    ldif.push_str(&person("ivan", None, None, ""));
    ldif.push_str(&person("wks01$", None, None, ""));
    ldif
}

impl Env {
    /// The binary with `args`, and no LDAP password from this environment.
    fn ldap(&self, args: &[&str]) -> Command {
        let mut cmd = self.command();
        cmd.args(args).env_remove("LEAKWATCH_LDAP_PASSWORD");
        cmd
    }

    fn run_ldap(&self, args: &[&str]) -> Run {
        run(self.ldap(args), None)
    }

    /// Alpha and Beta (combo dumps), Stealer1 (a stealer log) and a Pwned
    /// Passwords NTLM import in which hunter2 was seen 5,000 times.
    fn corpus(&self) {
        let alpha = self.file(
            "alpha.txt",
            "alice@corp.example:Summer2024\nbob@corp.example:Winter2023\nmallory@other.example:hunter2\n\
             grace@corp.example:Gr4ce!\nheidi@corp.example:He1di!\n",
        );
        let beta = self.file("beta.txt", "alice@corp.example:Summer2024\n");
        let stealer = self.file("ulp.txt", "https://shop.example.net/login:carol@corp.example:shoppw1\n");
        let pwned = self.file("pwned.txt", &format!("{}:5000\n", nt("hunter2")));
        self.run_ldap(&["ingest", "--breach", "Alpha", "--breach-date", "2019-05-01", &alpha])
            .ok("ingest Alpha");
        self.run_ldap(&["ingest", "--breach", "Beta", "--breach-date", "2021-03-02", &beta])
            .ok("ingest Beta");
        self.run_ldap(&["ingest", "--breach", "Stealer1", "--format", "stealer", &stealer])
            .ok("ingest Stealer1");
        self.run_ldap(&["import", "pwned-passwords", "--ntlm", &pwned]).ok("import pwned");
        self.run_ldap(&["org", "add", "acme", "--domain", "corp.example"]).ok("org add");
    }
}

fn accounts(run: &Run) -> Vec<String> {
    run.json_lines().iter().map(|r| r["account"].as_str().unwrap().to_owned()).collect()
}

#[test]
fn a_live_openldap_is_imported_over_starttls_and_ldaps_and_its_exposed_accounts_reset() {
    let env = Env::new();
    env.corpus();
    let slapd = Slapd::start(&env.root, Flavor::openldap());
    let reader_pw = env.file("reader.pw", &format!("{READER_PW}\n"));
    let ca = slapd.ca();

    // ldap:// is upgraded with StartTLS: the test CA must be trusted...
    let untrusted = env.run_ldap(&[
        "org",
        "import",
        "acme",
        "--ldap",
        &slapd.ldap,
        "--base",
        PEOPLE,
        "--bind-dn",
        READER,
        "--password-file",
        &reader_pw,
    ]);
    assert_eq!(untrusted.code, 2, "{}", untrusted.stderr);
    assert!(
        untrusted.stderr.contains("StartTLS") && untrusted.stderr.contains("--ca-file"),
        "{}",
        untrusted.stderr
    );
    assert_eq!(untrusted.stderr.trim().lines().count(), 1, "{}", untrusted.stderr);

    // ...a wrong password is a clear error...
    let wrong = env.file("wrong.pw", "not-the-password\n");
    let bad = env.run_ldap(&[
        "org",
        "import",
        "acme",
        "--ldap",
        &slapd.ldap,
        "--base",
        PEOPLE,
        "--bind-dn",
        READER,
        "--password-file",
        &wrong,
        "--ca-file",
        &ca,
    ]);
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    assert!(bad.stderr.contains("binding to") && bad.stderr.contains("invalidCredentials"), "{}", bad.stderr);
    assert!(!bad.stderr.contains("not-the-password"), "{}", bad.stderr);

    // ...and the password comes from a file or the environment only.
    let no_pw = env.run_ldap(&[
        "org",
        "import",
        "acme",
        "--ldap",
        &slapd.ldap,
        "--base",
        PEOPLE,
        "--bind-dn",
        READER,
    ]);
    assert_eq!(no_pw.code, 2, "{}", no_pw.stderr);
    assert!(no_pw.stderr.contains("--password-file"), "{}", no_pw.stderr);
    assert_eq!(env.run_ldap(&["org", "import", "acme", "--ldap", &slapd.ldap, "--password", "x"]).code, 2);

    // The reader may see two entries per search: everyone comes through pages.
    let import = env
        .run(&[
            "org",
            "import",
            "acme",
            "--ldap",
            &slapd.ldap,
            "--base",
            PEOPLE,
            "--bind-dn",
            READER,
            "--password-file",
            &reader_pw,
            "--ca-file",
            &ca,
            "--json",
        ])
        .ok("import over StartTLS");
    assert_eq!(
        import.json_lines(),
        vec![json!({
            "organization": "acme", "format": "ldap/openldap", "accounts": 7, "disabled": 2, "with_nt_hash": 6,
            "added": 7, "removed": 0, "password_changed": 0,
            "left_out": {"machine account": {"count": 1, "lines": [8]}},
        })]
    );
    let audit = env.run_ldap(&["audit", "--org", "acme", "--json"]).ok("audit");
    let by_account: Vec<(String, bool, Value)> = audit
        .json_lines()
        .iter()
        .map(|r| {
            (
                r["account"].as_str().unwrap().to_owned(),
                r["disabled"].as_bool().unwrap(),
                r["own_password_leaked_in"].clone(),
            )
        })
        .collect();
    assert_eq!(by_account[0], ("alice@corp.example".to_owned(), false, json!(["Alpha", "Beta"])));
    let disabled: Vec<&str> = by_account.iter().filter(|a| a.1).map(|a| a.0.as_str()).collect();
    assert_eq!(disabled, ["grace@corp.example", "heidi@corp.example"]);
    assert!(by_account.iter().any(|a| a.0 == "ivan@corp.example"), "{by_account:?}");

    // A dry run says what it would do and why, and changes nothing.
    let dry = env.run_ldap(&["reset", "--org", "acme"]).ok("reset dry run");
    assert!(
        dry.stdout.contains("alice@corp.example") && dry.stdout.contains("Alpha, Beta"),
        "{}",
        dry.stdout
    );
    assert!(
        dry.stdout.contains("carol@corp.example") && dry.stdout.contains("stealer log"),
        "{}",
        dry.stdout
    );
    assert!(dry.stdout.contains("would set pwdReset: TRUE"), "{}", dry.stdout);
    assert!(dry.stdout.contains("dry run: 2 accounts would be reset"), "{}", dry.stdout);
    for absent in ["bob@", "grace@", "heidi@", "dave@"] {
        assert!(!dry.stdout.contains(absent), "{}", dry.stdout);
    }
    assert_eq!(slapd.attribute(&format!("uid=alice,{PEOPLE}"), "pwdReset"), None);
    let common =
        env.run_ldap(&["reset", "--org", "acme", "--include-common", "--json"]).ok("reset --include-common");
    assert_eq!(accounts(&common), ["alice@corp.example", "bob@corp.example", "carol@corp.example"]);
    let bob = &common.json_lines()[1];
    assert_eq!(bob["reasons"], json!(["current password seen 5,001 times in the corpus"]));
    assert_eq!(
        (bob["applied"].clone(), bob["dn"].clone()),
        (json!(false), json!(format!("uid=bob,{PEOPLE}")))
    );

    // --apply needs the server (with a bind allowed to write) or a list.
    let no_server = env.run_ldap(&["reset", "--org", "acme", "--apply"]);
    assert_eq!(no_server.code, 2, "{}", no_server.stderr);
    assert!(no_server.stderr.contains("--ldap URL"), "{}", no_server.stderr);
    let read_only = env.run_ldap(&[
        "reset",
        "--org",
        "acme",
        "--apply",
        "--ldap",
        &slapd.ldap,
        "--bind-dn",
        READER,
        "--password-file",
        &reader_pw,
        "--ca-file",
        &ca,
    ]);
    assert_eq!(read_only.code, 2, "{}", read_only.stderr);
    assert!(read_only.stderr.contains("2 of 2 resets failed"), "{}", read_only.stderr);
    let alice_failed = format!("reset of alice@corp.example (uid=alice,{PEOPLE}) failed: ");
    assert!(read_only.stderr.contains(&alice_failed), "{}", read_only.stderr);
    assert_eq!(read_only.stderr.matches("insufficientAccessRights").count(), 2, "{}", read_only.stderr);
    assert_eq!(slapd.attribute(&format!("uid=alice,{PEOPLE}"), "pwdReset"), None);

    let applied = run(
        {
            let mut cmd = env.ldap(&[
                "reset",
                "--org",
                "acme",
                "--apply",
                "--ldap",
                &slapd.ldap,
                "--bind-dn",
                ADMIN,
                "--ca-file",
                &ca,
                "--json",
            ]);
            cmd.env("LEAKWATCH_LDAP_PASSWORD", ADMIN_PW);
            cmd
        },
        None,
    )
    .ok("reset --apply");
    assert_eq!(accounts(&applied), ["alice@corp.example", "carol@corp.example"]);
    assert!(applied.json_lines().iter().all(|r| r["applied"] == json!(true)), "{}", applied.stdout);
    for (uid, reset) in [("alice", Some("TRUE")), ("carol", Some("TRUE")), ("bob", None), ("grace", None)] {
        let got = slapd.attribute(&format!("uid={uid},{PEOPLE}"), "pwdReset");
        assert_eq!(got.as_deref(), reset, "{uid}");
    }

    // Each reset is a row of the audit log, with the OS user.
    let log = env.run_ldap(&["audit-log", "--json"]).ok("audit-log");
    let rows: Vec<Value> =
        log.json_lines().into_iter().map(|r| r.get("entry").cloned().unwrap_or(r)).collect();
    let resets =
        rows.iter().filter(|r| r["endpoint"] == json!("cli reset --apply --org acme (pwdReset: TRUE)"));
    assert_eq!(resets.clone().count(), 2, "{}", log.stdout);
    assert!(resets.clone().all(|r| r["key_name"].as_str().is_some_and(|u| !u.is_empty())), "{}", log.stdout);
    assert!(resets.clone().all(|r| r["subject"]["kind"] == json!("account")), "{}", log.stdout);

    // Re-import over LDAPS replaces the directory: dave is gone.
    slapd.delete(&format!("uid=dave,{PEOPLE}"));
    let again = env
        .run(&[
            "org",
            "import",
            "acme",
            "--ldap",
            &slapd.ldaps,
            "--base",
            PEOPLE,
            "--bind-dn",
            READER,
            "--password-file",
            &reader_pw,
            "--ca-file",
            &ca,
            "--json",
        ])
        .ok("import over LDAPS");
    let again = &again.json_lines()[0];
    assert_eq!(
        (again["accounts"].clone(), again["removed"].clone(), again["added"].clone()),
        (json!(6), json!(1), json!(0))
    );
    let audit = env.run_ldap(&["audit", "--org", "acme", "--json"]).ok("audit after re-import");
    assert!(!accounts(&audit).contains(&"dave@corp.example".to_owned()), "{}", audit.stdout);
    let show = env.run_ldap(&["org", "show", "acme", "--json"]).ok("org show");
    assert_eq!(show.json_lines()[0]["directory"]["source"], json!("ldap/openldap"));

    // The sambaNTPassword values, the addresses and the DNs are nowhere in clear.
    let mut needles: Vec<Vec<u8>> = Vec::new();
    for p in ["Summer2024", "hunter2", "Carol!Clean9", "Gr4ce!"] {
        needles.push(nt(p).into_bytes());
        needles.push(nt(p).to_lowercase().into_bytes());
        needles.push(leakwatch_types::ntlm(p.as_bytes()).to_vec());
    }
    needles.push(b"alice@corp.example".to_vec());
    needles.push(b"uid=alice".to_vec());
    for entry in std::fs::read_dir(env.root.join("data")).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            let bytes = std::fs::read(&path).unwrap();
            for n in &needles {
                let shown = String::from_utf8_lossy(n);
                assert!(!bytes.windows(n.len()).any(|w| w == &n[..]), "{} holds {shown}", path.display());
            }
        }
    }
}

#[test]
fn an_active_directory_is_recognized_read_past_its_page_limit_and_reset_with_pwdlastset() {
    let env = Env::new();
    env.corpus();
    // grace's device too is in a stealer log, but her account is disabled.
    let stealer = env.file("ulp2.txt", "https://vpn.example.net/login:grace@corp.example:vpnpw\n");
    env.run_ldap(&["ingest", "--breach", "Stealer2", "--format", "stealer", &stealer]).ok("ingest Stealer2");
    let slapd = Slapd::start(&env.root, active_directory());
    let ca = slapd.ca();
    let import = run(
        {
            let mut cmd = env.ldap(&[
                "org",
                "import",
                "acme",
                "--ldap",
                &slapd.ldaps,
                "--base",
                PEOPLE,
                "--bind-dn",
                READER,
                "--ca-file",
                &ca,
                "--json",
            ]);
            cmd.env("LEAKWATCH_LDAP_PASSWORD", READER_PW);
            cmd
        },
        None,
    )
    .ok("import from AD");
    assert_eq!(
        import.json_lines(),
        vec![json!({
            "organization": "acme", "format": "ldap/active-directory", "accounts": 1203, "disabled": 1,
            "with_nt_hash": 0, "added": 1203, "removed": 0, "password_changed": 0, "left_out": {},
        })]
    );

    let dry = env.run_ldap(&["reset", "--org", "acme", "--json"]).ok("dry run");
    assert_eq!(accounts(&dry), ["carol@corp.example"]);
    assert_eq!(dry.json_lines()[0]["action"], json!("pwdLastSet: 0"));
    assert_eq!(dry.json_lines()[0]["dn"], json!(format!("cn=carol,{PEOPLE}")));

    let applied = run(
        {
            let mut cmd = env.ldap(&[
                "reset",
                "--org",
                "acme",
                "--apply",
                "--ldap",
                &slapd.ldap,
                "--bind-dn",
                ADMIN,
                "--ca-file",
                &ca,
            ]);
            cmd.env("LEAKWATCH_LDAP_PASSWORD", ADMIN_PW);
            cmd
        },
        None,
    )
    .ok("reset --apply on AD");
    assert!(applied.stdout.contains("1 account reset (pwdLastSet: 0)"), "{}", applied.stdout);
    assert_eq!(slapd.attribute(&format!("cn=carol,{PEOPLE}"), "pwdLastSet").as_deref(), Some("0"));
    assert_eq!(slapd.attribute(&format!("cn=alice,{PEOPLE}"), "pwdLastSet").as_deref(), Some(PWD_LAST_SET));
    assert_eq!(slapd.attribute(&format!("cn=grace,{PEOPLE}"), "pwdLastSet").as_deref(), Some(PWD_LAST_SET));
}
