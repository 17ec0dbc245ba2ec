//! SQL dumps of the forum and site packages (`docs/ingest-rules.md`, "SQL
//! dumps"), written the way their dumpers write them, with the records each
//! one must give.
//!
//! Each dump has the package's real account table(s) with its real column
//! names and hash formats, a content table around it (posts with quotes,
//! `;`, newlines and comment markers in their text) that must give nothing,
//! and noise rows whose rejections are stated with their lines. Hash values
//! have the right shapes but are drawn at random: ingest types hashes, it never
//! checks them.

use std::collections::BTreeMap;
use std::io::{self, Write};

use leakwatch_types::{AccountKind, HashKind};

use crate::expected::AccountKey;
use crate::names::{FIRST_NAMES, LAST_NAMES};
use crate::rng::Rng;

/// The packages whose dumps can be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schema {
    WordPress,
    PhpBb,
    MyBb,
    VBulletin,
    Smf,
    Ipb,
    XenForo,
    Joomla,
    Discourse,
    /// A site of no package: columns named as in-house schemas name them
    /// (`login_name`, `mail_address`, `passwd_md5`, `signup_ip`), found by
    /// their words; `password_changed_at` is no password.
    Custom,
}

impl Schema {
    pub const ALL: [Schema; 10] = [
        Schema::WordPress,
        Schema::PhpBb,
        Schema::MyBb,
        Schema::VBulletin,
        Schema::Smf,
        Schema::Ipb,
        Schema::XenForo,
        Schema::Joomla,
        Schema::Discourse,
        Schema::Custom,
    ];
}

/// A record the dump must give, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlRecord {
    pub account: AccountKey,
    /// The hash as ingest keeps it; `None` for an account-only record.
    pub password: Option<(HashKind, String)>,
}

/// A written dump and its expected answers.
#[derive(Debug, Clone)]
pub struct SqlDump {
    pub text: Vec<u8>,
    pub records: Vec<SqlRecord>,
    /// Rejection reason -> every line it happens on, ascending.
    pub rejected: BTreeMap<&'static str, Vec<u64>>,
    /// Physical lines.
    pub lines: u64,
}

/// Writes text while counting lines, so rows know where they start.
struct Out {
    text: Vec<u8>,
    line: u64,
}

impl Out {
    fn put(&mut self, s: &str) {
        self.line += s.bytes().filter(|&b| b == b'\n').count() as u64;
        self.text.extend_from_slice(s.as_bytes());
    }
}

const ITOA64: &[u8] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const HEX: &[u8] = b"0123456789abcdef";

fn draw(rng: &mut Rng, alphabet: &[u8], n: usize) -> String {
    (0..n).map(|_| alphabet[rng.below(alphabet.len())] as char).collect()
}

/// A MySQL string literal as mysqldump writes it.
fn my_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\'' => out.push_str("\\'"),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\0' => out.push_str("\\0"),
            '"' => out.push_str("\\\""),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// A user of the generated site.
struct User {
    name: String,
    email: String,
}

fn user(rng: &mut Rng, i: usize) -> User {
    let first = FIRST_NAMES[rng.below(FIRST_NAMES.len())];
    let last = LAST_NAMES[rng.below(LAST_NAMES.len())];
    let mut name = format!("{first}_{last}{i}");
    if rng.below(3) == 0 {
        // Display case: the account key is lower-case.
        name[..1].make_ascii_uppercase();
    }
    let domain = ["gmail.com", "yahoo.com", "mail.ru", "web.de", "example-forum.org"][rng.below(5)];
    let mut email = format!("{first}.{last}{i}@{domain}");
    if rng.below(4) == 0 {
        email = email.to_ascii_uppercase();
    }
    User { name, email }
}

fn email_key(u: &User) -> AccountKey {
    (AccountKind::Email, u.email.to_ascii_lowercase())
}

/// Forum post bodies: everything that must not end a statement or a row.
const BODIES: &[&str] = &[
    "Hi all; it's my first post -- be nice",
    "/* not a comment */ and # not one either",
    "line one\nline two\r\nC:\\path\\to\\file",
    "He said \"hello\"; then ('left'),(right)",
    "contact me: someone@example.com",
];

/// A dump of `schema` with `users` users (some of them noise), ending in a
/// cut-off row when `truncate`.
pub fn sql_dump(schema: Schema, seed: u64, users: usize, truncate: bool) -> SqlDump {
    let mut rng = Rng::new(seed ^ 0x5e1_d0e);
    let mut out = Out { text: Vec::new(), line: 1 };
    let mut records = Vec::new();
    let mut rejected: BTreeMap<&'static str, Vec<u64>> = BTreeMap::new();
    let people: Vec<User> = (0..users).map(|i| user(&mut rng, i)).collect();
    if schema == Schema::Discourse {
        discourse(&mut rng, &mut out, &people, &mut records);
    } else {
        out.put("-- MySQL dump 10.13  Distrib 8.0.36, for Linux (x86_64)\n--\n-- Host: localhost    Database: forum\n");
        out.put("/*!40101 SET @OLD_CHARACTER_SET_CLIENT=@@CHARACTER_SET_CLIENT */;\n/*!40101 SET NAMES utf8mb4 */;\n\n");
        out.put(
            "DROP TABLE IF EXISTS `posts`;\nCREATE TABLE `posts` (\n  `post_id` int NOT NULL,\n  `username` varchar(50),\n  `message` mediumtext,\n  PRIMARY KEY (`post_id`)\n) ENGINE=InnoDB;\n",
        );
        out.put("LOCK TABLES `posts` WRITE;\nINSERT INTO `posts` VALUES ");
        for (i, body) in BODIES.iter().enumerate() {
            let sep = if i == 0 { "" } else { "," };
            out.put(&format!("{sep}({i},{},{})", my_str(&people[i % users.max(1)].name), my_str(body)));
        }
        out.put(";\nUNLOCK TABLES;\n\n");
        mysql_users(schema, &mut rng, &mut out, &people, &mut records, &mut rejected, truncate);
    }
    let lines = out.line - u64::from(out.text.last() == Some(&b'\n'));
    SqlDump { text: out.text, records, rejected, lines }
}

struct Table {
    name: &'static str,
    create: &'static str,
}

fn table(schema: Schema) -> Table {
    match schema {
        Schema::WordPress => Table {
            name: "wp_users",
            create: "  `ID` bigint unsigned NOT NULL AUTO_INCREMENT,\n  `user_login` varchar(60) NOT NULL DEFAULT '',\n  `user_pass` varchar(255) NOT NULL DEFAULT '',\n  `user_nicename` varchar(50) NOT NULL DEFAULT '',\n  `user_email` varchar(100) NOT NULL DEFAULT '',\n  `user_url` varchar(100) NOT NULL DEFAULT '',\n  `user_registered` datetime NOT NULL DEFAULT '0000-00-00 00:00:00',\n  `display_name` varchar(250) NOT NULL DEFAULT '',\n  PRIMARY KEY (`ID`),\n  KEY `user_login_key` (`user_login`)",
        },
        Schema::PhpBb => Table {
            name: "phpbb_users",
            create: "  `user_id` int unsigned NOT NULL,\n  `username` varchar(255) NOT NULL,\n  `username_clean` varchar(255) NOT NULL,\n  `user_password` varchar(255) NOT NULL,\n  `user_email` varchar(100) NOT NULL,\n  `user_ip` varchar(40) NOT NULL,\n  `user_regdate` int NOT NULL,\n  `user_birthday` varchar(10) NOT NULL,\n  PRIMARY KEY (`user_id`)",
        },
        Schema::MyBb => Table {
            name: "mybb_users",
            create: "  `uid` int unsigned NOT NULL,\n  `username` varchar(120) NOT NULL,\n  `password` varchar(120) NOT NULL,\n  `salt` varchar(10) NOT NULL,\n  `loginkey` varchar(50) NOT NULL,\n  `email` varchar(220) NOT NULL,\n  `regdate` int NOT NULL,\n  `regip` varbinary(16) NOT NULL,\n  `lastip` varbinary(16) NOT NULL,\n  PRIMARY KEY (`uid`)",
        },
        Schema::VBulletin => Table {
            name: "user",
            create: "  `userid` int unsigned NOT NULL,\n  `usergroupid` smallint NOT NULL,\n  `username` varchar(100) NOT NULL,\n  `password` char(32) NOT NULL,\n  `passworddate` date NOT NULL,\n  `email` char(100) NOT NULL,\n  `ipaddress` char(15) NOT NULL,\n  `joindate` int NOT NULL,\n  `salt` char(30) NOT NULL,\n  PRIMARY KEY (`userid`)",
        },
        Schema::Smf => Table {
            name: "smf_members",
            create: "  `id_member` mediumint unsigned NOT NULL,\n  `member_name` varchar(80) NOT NULL,\n  `date_registered` int NOT NULL,\n  `real_name` varchar(255) NOT NULL,\n  `passwd` varchar(64) NOT NULL,\n  `email_address` varchar(255) NOT NULL,\n  `member_ip` varbinary(16),\n  PRIMARY KEY (`id_member`)",
        },
        Schema::Ipb => Table {
            name: "ibf_members",
            create: "  `member_id` mediumint NOT NULL,\n  `name` varchar(255) NOT NULL,\n  `email` varchar(150) NOT NULL,\n  `joined` int NOT NULL,\n  `ip_address` varchar(46) NOT NULL,\n  `members_pass_hash` varchar(32) NOT NULL,\n  `members_pass_salt` varchar(5) NOT NULL,\n  PRIMARY KEY (`member_id`)",
        },
        Schema::XenForo => Table {
            name: "xf_user",
            create: "  `user_id` int unsigned NOT NULL,\n  `username` varchar(50) NOT NULL,\n  `email` varchar(120) NOT NULL,\n  `register_date` int unsigned NOT NULL,\n  PRIMARY KEY (`user_id`)",
        },
        Schema::Joomla => Table {
            name: "jos_users",
            create: "  `id` int NOT NULL,\n  `name` varchar(400) NOT NULL,\n  `username` varchar(150) NOT NULL,\n  `email` varchar(100) NOT NULL,\n  `password` varchar(100) NOT NULL,\n  `registerDate` datetime NOT NULL,\n  PRIMARY KEY (`id`)",
        },
        Schema::Discourse => Table { name: "users", create: "" },
        Schema::Custom => Table {
            name: "site_accounts",
            create: "  `member_no` int NOT NULL,\n  `login_name` varchar(64) NOT NULL,\n  `password_changed_at` datetime NOT NULL,\n  `passwd_md5` char(32) NOT NULL,\n  `mail_address` varchar(190) NOT NULL,\n  `signup_ip` varchar(45) NOT NULL,\n  PRIMARY KEY (`member_no`)",
        },
    }
}

/// One row's SQL values and the record it must give.
fn mysql_row(schema: Schema, rng: &mut Rng, i: usize, u: &User) -> (String, Option<(HashKind, String)>) {
    let md5 = draw(rng, HEX, 32);
    let ip = format!("10.{}.{}.{}", rng.below(256), rng.below(256), rng.below(256));
    let n = my_str(&u.name);
    let e = my_str(&u.email);
    match schema {
        Schema::WordPress => {
            let (kind, hash) = if rng.below(4) == 0 {
                (HashKind::WordPressBcrypt, format!("$wp$2y$10${}", draw(rng, ITOA64, 53)))
            } else {
                (HashKind::Phpass, format!("$P$B{}", draw(rng, ITOA64, 30)))
            };
            let row = format!("{i},{n},{},{n},{e},'','2019-05-01 10:00:00',{n}", my_str(&hash));
            (row, Some((kind, hash)))
        }
        Schema::PhpBb => {
            let (kind, hash) = match rng.below(3) {
                0 => (HashKind::Bcrypt, format!("$2y$10${}", draw(rng, ITOA64, 53))),
                1 => (
                    HashKind::Argon2,
                    format!(
                        "$argon2id$v=19$m=65536,t=4,p=2${}${}",
                        draw(rng, ITOA64, 22),
                        draw(rng, ITOA64, 43)
                    ),
                ),
                _ => (HashKind::Phpass, format!("$H$9{}", draw(rng, ITOA64, 30))),
            };
            let row = format!(
                "{i},{n},{},{},{e},'{ip}',1500000000,'{:2}-{:2}-19{}'",
                my_str(&u.name.to_lowercase()),
                my_str(&hash),
                rng.below(28) + 1,
                rng.below(12) + 1,
                rng.below(90) + 10
            );
            (row, Some((kind, hash)))
        }
        Schema::MyBb => {
            let salt = draw(rng, ITOA64, 8);
            let row = format!(
                "{i},{n},'{md5}','{salt}','{}',{e},1500000000,0x0a{:06x},0x0a{:06x}",
                draw(rng, ITOA64, 50),
                rng.below(1 << 24),
                rng.below(1 << 24)
            );
            (row, Some((HashKind::MyBb, format!("{md5}:{salt}"))))
        }
        Schema::VBulletin => {
            // vBulletin salts are 30 printable characters, quotes and backslashes included.
            let salt = draw(rng, b"abcXYZ019'\\:;\"!~", 30);
            let row = format!("{i},2,{n},'{md5}','2019-01-01',{e},'{ip}',1500000000,{}", my_str(&salt));
            (row, Some((HashKind::VBulletin, format!("{md5}:{salt}"))))
        }
        Schema::Smf => {
            let sha = draw(rng, HEX, 40);
            let row = format!("{i},{n},1500000000,{n},'{sha}',{e},_binary '{}'", "\u{7f}\u{1}\u{1}\u{1}");
            (row, Some((HashKind::SmfSha1, format!("{sha}:{}", u.name.to_lowercase()))))
        }
        Schema::Ipb => {
            let salt = draw(rng, b"abc{}[]:;<>'", 5);
            let row = format!("{i},{n},{e},1500000000,'{ip}','{md5}',{}", my_str(&salt));
            (row, Some((HashKind::MyBb, format!("{md5}:{salt}"))))
        }
        Schema::XenForo => (format!("{i},{n},{e},1500000000"), None),
        Schema::Joomla => {
            let (kind, hash) = if rng.below(2) == 0 {
                (HashKind::Bcrypt, format!("$2y$10${}", draw(rng, ITOA64, 53)))
            } else {
                (HashKind::SaltedMd5, format!("{md5}:{}", draw(rng, ITOA64, 32)))
            };
            let row = format!("{i},'{} {}',{n},{e},{},'2012-03-04 05:06:07'", u.name, i, my_str(&hash));
            (row, Some((kind, hash)))
        }
        Schema::Discourse => (String::new(), None),
        Schema::Custom => {
            let row = format!("{i},{n},'2021-06-01 12:00:00','{md5}',{e},'{ip}'");
            (row, Some((HashKind::Md5, md5.to_uppercase())))
        }
    }
}

/// The account table (mysqldump style, extended INSERTs of a few rows per line),
/// its noise rows, and for XenForo the authenticate table.
fn mysql_users(
    schema: Schema,
    rng: &mut Rng,
    out: &mut Out,
    people: &[User],
    records: &mut Vec<SqlRecord>,
    rejected: &mut BTreeMap<&'static str, Vec<u64>>,
    truncate: bool,
) {
    let t = table(schema);
    out.put(&format!(
        "DROP TABLE IF EXISTS `{0}`;\nCREATE TABLE `{0}` (\n{1}\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;\n",
        t.name, t.create
    ));
    out.put(&format!(
        "LOCK TABLES `{}` WRITE;\n/*!40000 ALTER TABLE `{}` DISABLE KEYS */;\n",
        t.name, t.name
    ));
    let mut ids = Vec::new();
    for (i, u) in people.iter().enumerate() {
        if i % 4 == 0 {
            if i > 0 {
                out.put(";\n");
            }
            out.put(&format!("INSERT INTO `{}` VALUES ", t.name));
        } else {
            out.put(",");
        }
        // Every 7th user has a broken address: rejected, whatever the scheme.
        let bad = i % 7 == 6;
        let u = if bad {
            User { name: u.name.clone(), email: format!("{}.at.nowhere", u.name) }
        } else {
            User { name: u.name.clone(), email: u.email.clone() }
        };
        let (row, password) = mysql_row(schema, rng, i + 1, &u);
        out.put(&format!("({row})"));
        if bad {
            rejected.entry(crate::rules::reason::EMAIL_NO_AT).or_default().push(out.line);
        } else {
            records.push(SqlRecord { account: email_key(&u), password });
            ids.push(i + 1);
        }
    }
    if truncate {
        // The leak was cut in the middle of a row.
        out.put(&format!(",({},'cut_off','a@b.c", people.len() + 1));
        rejected.entry("truncated row").or_default().push(out.line);
        return;
    }
    out.put(&format!(";\n/*!40000 ALTER TABLE `{}` ENABLE KEYS */;\nUNLOCK TABLES;\n", t.name));
    if schema == Schema::XenForo {
        out.put("CREATE TABLE `xf_user_authenticate` (\n  `user_id` int unsigned NOT NULL,\n  `scheme_class` varchar(100) NOT NULL,\n  `data` mediumblob NOT NULL,\n  PRIMARY KEY (`user_id`)\n);\nINSERT INTO `xf_user_authenticate` VALUES ");
        let accounts: Vec<AccountKey> = records.iter().map(|r| r.account.clone()).collect();
        for (k, (id, account)) in ids.iter().zip(accounts).enumerate() {
            let hash = format!("$2y$10${}", draw(rng, ITOA64, 53));
            let blob = format!("a:1:{{s:4:\"hash\";s:{}:\"{hash}\";}}", hash.len());
            let sep = if k == 0 { "" } else { "," };
            out.put(&format!("{sep}\n({id},'XF:Core12',_binary {})", my_str(&blob)));
            records.push(SqlRecord { account, password: Some((HashKind::Bcrypt, hash)) });
        }
        out.put(";\n");
    }
    out.put("-- Dump completed on 2024-01-01 12:00:00\n");
}

/// Discourse as pg_dump writes it: `user_emails` then `users`, in COPY blocks.
fn discourse(rng: &mut Rng, out: &mut Out, people: &[User], records: &mut Vec<SqlRecord>) {
    out.put("\\restrict Zx9Q\n--\n-- PostgreSQL database dump\n--\n\nSET statement_timeout = 0;\nSET standard_conforming_strings = on;\n\n");
    out.put("CREATE TABLE public.user_emails (\n    id integer NOT NULL,\n    user_id integer NOT NULL,\n    email character varying(513) NOT NULL,\n    \"primary\" boolean DEFAULT false NOT NULL\n);\n\n");
    out.put("COPY public.user_emails (id, user_id, email, \"primary\") FROM stdin;\n");
    for (i, u) in people.iter().enumerate() {
        out.put(&format!("{}\t{}\t{}\tt\n", 2 * i + 1, i + 1, u.email));
        // A secondary address: not the account.
        out.put(&format!("{}\t{}\told{}@example.net\tf\n", 2 * i + 2, i + 1, i));
    }
    out.put("\\.\n\n");
    out.put("COPY public.users (id, username, created_at, password_hash, salt, registration_ip_address) FROM stdin;\n");
    for (i, u) in people.iter().enumerate() {
        let hash = draw(rng, HEX, 64);
        let salt = draw(rng, HEX, 32);
        out.put(&format!("{}\t{}\t2020-01-01 00:00:00\t{hash}\t{salt}\t10.0.0.{}\n", i + 1, u.name, i % 250));
        records.push(SqlRecord {
            account: email_key(u),
            password: Some((HashKind::DiscoursePbkdf2, format!("{hash}:{salt}"))),
        });
    }
    out.put("\\.\n\n--\n-- PostgreSQL database dump complete\n--\n\n\\unrestrict Zx9Q\n");
}

/// Streams a WordPress-style mysqldump of `rows` users (extended INSERTs of
/// 1,000 tuples, mysqldump's long lines) for the benchmark; half the users
/// have a plaintext-looking password so both paths of the parser run.
pub fn write_mysqldump<W: Write>(mut out: W, rows: u64, seed: u64) -> io::Result<()> {
    let mut rng = Rng::new(seed ^ 0xb_e4c4);
    let t = table(Schema::WordPress);
    writeln!(out, "-- MySQL dump 10.13  Distrib 8.0.36, for Linux (x86_64)\n/*!40101 SET NAMES utf8mb4 */;")?;
    writeln!(out, "CREATE TABLE `{}` (\n{}\n) ENGINE=InnoDB;", t.name, t.create)?;
    for i in 0..rows {
        if i % 1000 == 0 {
            if i > 0 {
                out.write_all(b";\n")?;
            }
            write!(out, "INSERT INTO `{}` VALUES ", t.name)?;
        } else {
            out.write_all(b",")?;
        }
        let u = user(&mut rng, i as usize);
        let (row, _) = mysql_row(Schema::WordPress, &mut rng, i as usize + 1, &u);
        write!(out, "({row})")?;
    }
    out.write_all(b";\n")?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dumps_count_their_lines_and_are_deterministic() {
        for schema in Schema::ALL {
            let a = sql_dump(schema, 7, 30, false);
            let b = sql_dump(schema, 7, 30, false);
            assert_eq!(a.text, b.text, "{schema:?}");
            let lf = a.text.iter().filter(|&&c| c == b'\n').count() as u64;
            assert_eq!(a.lines, lf, "{schema:?} ends with a newline");
            assert!(a.records.len() >= 20, "{schema:?}");
        }
    }
}
