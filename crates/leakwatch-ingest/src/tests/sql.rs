//! SQL dumps, one behaviour per case, each read whole and in tiny chunks
//! (`read_all_ways`): mysqldump and MariaDB dialects, pg_dump `COPY`, the
//! forum schemas with their hash schemes, joins, truncation and limits.

use super::*;
use leakwatch_types::HashKind::*;

fn sql(cases: Vec<Case<'_>>) {
    check(None, Format::Sql, cases);
}

const MD5: &str = "5f4dcc3b5aa765d61d8327deb882cf99";
const SHA1: &str = "5baa61e4c9b93f3f0682250b6cf8331b7ee68fd8";
const BCRYPT: &str = "$2y$10$abcdefghijklmnopqrstuuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ01";

#[test]
fn mysqldump_extended_inserts() {
    let dump = format!(
        "-- MySQL dump 10.13  Distrib 8.0.36, for Linux (x86_64)\n\
         /*!40101 SET NAMES utf8mb4 */;\n\
         DROP TABLE IF EXISTS `wp_users`;\n\
         CREATE TABLE `wp_users` (\n  `ID` bigint unsigned NOT NULL AUTO_INCREMENT,\n  `user_login` varchar(60) NOT NULL DEFAULT '',\n  `user_pass` varchar(255) NOT NULL DEFAULT '',\n  `user_email` varchar(100) NOT NULL DEFAULT '',\n  `user_registered` datetime NOT NULL DEFAULT '0000-00-00 00:00:00',\n  PRIMARY KEY (`ID`),\n  KEY `user_login_key` (`user_login`)\n) ENGINE=InnoDB;\n\
         LOCK TABLES `wp_users` WRITE;\n\
         INSERT INTO `wp_users` VALUES (1,'admin','$P$Babc;def','Admin@Example.com','2020-01-01 00:00:00'),(2,'o\\'neil','{BCRYPT}','o.neil@example.com','2021-02-03 04:05:06'),(3,'nomail','hunter2','','2021-02-03 04:05:06');\n\
         UNLOCK TABLES;\n"
    );
    sql(vec![Case {
        input: dump.as_bytes(),
        records: vec![
            hashed(e("admin@example.com", None), Phpass, "$P$Babc;def"),
            hashed(e("o.neil@example.com", None), Bcrypt, BCRYPT),
            u("nomail", Some(b"hunter2")),
        ],
        rejected: &[],
    }]);
}

#[test]
fn strings_comments_and_statements_never_split_rows() {
    // `;`, newlines, quotes and comment markers inside strings; comments
    // holding quotes and `;` between statements; phpMyAdmin's one tuple per line.
    let dump = "-- phpMyAdmin SQL Dump\n\
        # a comment with a ' quote;\n\
        /* block; with 'quote */\n\
        CREATE TABLE members (id int, email varchar(99), pass text);\n\
        INSERT INTO members (id, email, pass) VALUES\n\
        (1, 'a@b.co', 'x;y\\n-- not a comment'),\n\
        (2, 'c@d.co', 'it''s /* no */ # no'),\n\
        (3, \"e@f.co\", \"dq\\\"q\");\n\
        INSERT INTO `members` (`id`,`email`,`pass`) VALUES (4,_binary 'g@h.co',X'70617373'),(5,'i@j.co',NULL);\n";
    sql(vec![Case {
        input: dump.as_bytes(),
        records: vec![
            e("a@b.co", Some(b"x;y\n-- not a comment")),
            e("c@d.co", Some(b"it's /* no */ # no")),
            e("e@f.co", Some(b"dq\"q")),
            e("g@h.co", Some(b"pass")),
            e("i@j.co", None),
        ],
        rejected: &[],
    }]);
}

#[test]
fn only_tables_with_accounts_become_records() {
    // Named columns decide: `sessions.data` holding an address does not make
    // sessions an account table (value shapes are only for unnamed columns).
    let dump = "CREATE TABLE posts (id int, username varchar(9), body text);\n\
        INSERT INTO posts VALUES (1,'bob','mail me at x@y.co');\n\
        CREATE TABLE sessions (id int, data text);\n\
        INSERT INTO sessions VALUES (1,'a@b.co');\n\
        CREATE TABLE users (id int, username varchar(9), password varchar(99));\n\
        INSERT INTO users VALUES (1,'bob','pw');\n";
    sql(vec![Case { input: dump.as_bytes(), records: vec![u("bob", Some(b"pw"))], rejected: &[] }]);
}

#[test]
fn tables_without_names_are_read_by_value_shape() {
    // No CREATE TABLE: the first row's values say which column is which.
    let dump = format!("INSERT INTO `t` VALUES (1,'Bob@Example.com','{SHA1}'),(2,'c@d.co','{MD5}');\n");
    sql(vec![Case {
        input: dump.as_bytes(),
        records: vec![
            hashed(e("bob@example.com", None), Sha1, &SHA1.to_uppercase()),
            hashed(e("c@d.co", None), Md5, &MD5.to_uppercase()),
        ],
        rejected: &[],
    }]);
}

#[test]
fn truncated_dumps_keep_every_complete_row() {
    let dump = "CREATE TABLE users (email varchar(9), password text);\n\
        INSERT INTO users VALUES ('a@b.co','1'),('c@d.co','2'),\n('e@f.co','3";
    sql(vec![Case {
        input: dump.as_bytes(),
        records: vec![e("a@b.co", Some(b"1")), e("c@d.co", Some(b"2"))],
        rejected: &[("truncated row", &[3])],
    }]);
}

#[test]
fn bad_rows_are_counted_with_their_line() {
    let big = "x".repeat(crate::sql_lex::MAX_RECORD + 10);
    let dump = format!(
        "CREATE TABLE users (email varchar(9), password text);\n\
         INSERT INTO users VALUES ('a@b.co','1'),('nope','2'),\n('c@d.co','{big}'),('e@f.co');\n\
         INSERT INTO users VALUES ('g@h.co' 'x'),('i@j.co','3'\n;\n\
         INSERT INTO users VALUES ('',''),('k@l.co','4');\n"
    );
    sql(vec![Case {
        input: dump.as_bytes(),
        records: vec![e("a@b.co", Some(b"1")), e("k@l.co", Some(b"4"))],
        rejected: &[
            ("invalid email: no @", &[2]),
            ("record too long", &[3]),
            ("wrong field count", &[3]),
            ("malformed row", &[4, 4]),
            ("no account", &[6]),
        ],
    }]);
}

#[test]
fn escapes_follow_the_dialect() {
    // NO_BACKSLASH_ESCAPES (set outside a versioned comment here) and
    // PostgreSQL's standard strings make `\` literal; E'' strings escape.
    let dump = "SET sql_mode = 'NO_BACKSLASH_ESCAPES';\n\
        CREATE TABLE users (email text, password text);\n\
        INSERT INTO users VALUES ('a@b.co','c:\\dir'),('c@d.co',E'q\\'r');\n\
        SET sql_mode = '';\n\
        INSERT INTO users VALUES ('e@f.co','c:\\\\dir\\'');\n";
    sql(vec![Case {
        input: dump.as_bytes(),
        records: vec![
            e("a@b.co", Some(b"c:\\dir")),
            e("c@d.co", Some(b"q'r")),
            e("e@f.co", Some(b"c:\\dir'")),
        ],
        rejected: &[],
    }]);
}

#[test]
fn mariadb_sandbox_versioned_comments_and_delimiter_blocks() {
    let dump = "/*M!999999\\- enable the sandbox mode */ \n\
        -- MariaDB dump 10.19\n\
        /*!40101 SET @OLD_CHARACTER_SET_CLIENT=@@CHARACTER_SET_CLIENT */;\n\
        CREATE TABLE `users` (`email` varchar(9), `password` text);\n\
        /*!40000 ALTER TABLE `users` DISABLE KEYS */;\n\
        INSERT INTO `users` VALUES\n('a@b.co','1'),\n('c@d.co','2');\n\
        DELIMITER ;;\n\
        CREATE TRIGGER t AFTER INSERT ON users FOR EACH ROW BEGIN INSERT INTO users VALUES ('x@y.co','9'); END ;;\n\
        DELIMITER ;\n\
        INSERT INTO users VALUES ('e@f.co','3');\n";
    sql(vec![Case {
        input: dump.as_bytes(),
        records: vec![e("a@b.co", Some(b"1")), e("c@d.co", Some(b"2")), e("e@f.co", Some(b"3"))],
        rejected: &[],
    }]);
}

#[test]
fn alter_table_adds_columns() {
    let dump = "CREATE TABLE accounts (id int);\nALTER TABLE accounts ADD COLUMN email text, ADD pwd text;\n\
        INSERT INTO accounts VALUES (1,'a@b.co','pw');\n";
    sql(vec![Case { input: dump.as_bytes(), records: vec![e("a@b.co", Some(b"pw"))], rejected: &[] }]);
}

#[test]
fn pg_dump_copy_blocks() {
    let dump = "\\restrict abcDEF\n--\n-- PostgreSQL database dump\n--\n\
        SET standard_conforming_strings = on;\n\
        CREATE TABLE public.customers (\n    id integer NOT NULL,\n    email text,\n    password text\n);\n\
        COPY public.customers (id, email, password) FROM stdin;\n\
        1\ta@b.co\tp\\tw\n\
        2\t\\N\t\\N\n\
        3\tc@d.co\tback\\\\slash\n\
        \\.\n\
        INSERT INTO public.customers VALUES (4, 'e@f.co', 'a\\b');\n\
        \\unrestrict abcDEF\n";
    sql(vec![Case {
        input: dump.as_bytes(),
        records: vec![
            e("a@b.co", Some(b"p\tw")),
            e("c@d.co", Some(b"back\\slash")),
            e("e@f.co", Some(b"a\\b")),
        ],
        rejected: &[("no account", &[13])],
    }]);
}

#[test]
fn forum_schemes_type_their_hashes() {
    let vb = format!(
        "CREATE TABLE `user` (`userid` int, `username` varchar(100), `password` char(32), `email` char(100), `salt` char(30), `ipaddress` varchar(45), `joindate` int);\n\
         INSERT INTO `user` VALUES (1,'Bob','{MD5}','bob@vb.co','a\\'\\\\:','10.0.0.1',1500000000);\n"
    );
    let mybb = format!(
        "CREATE TABLE `mybb_users` (`uid` int, `username` varchar(120), `password` varchar(120), `salt` varchar(10), `loginkey` varchar(50), `email` varchar(220), `regip` varbinary(16));\n\
         INSERT INTO `mybb_users` VALUES (1,'Ann','{MD5}','s4lTs4lT','lk','ann@mybb.co',0x0a000001);\n"
    );
    let smf = format!(
        "CREATE TABLE smf_members (id_member int, member_name varchar(80), passwd varchar(64), email_address varchar(255));\n\
         INSERT INTO smf_members VALUES (1,'CarL','{SHA1}','carl@smf.co');\n"
    );
    let ipb = format!(
        "CREATE TABLE ibf_members (member_id int, name varchar(255), email varchar(150), members_pass_hash varchar(32), members_pass_salt varchar(5));\n\
         INSERT INTO ibf_members VALUES (1,'Dee','dee@ipb.co','{MD5}','x:y;z');\n"
    );
    let phpbb = "CREATE TABLE phpbb_users (user_id int, username varchar(255), user_password varchar(255), user_email varchar(100));\n\
         INSERT INTO phpbb_users VALUES (2,'Eve','$H$9abcdefgh','eve@phpbb.co'),(3,'Fay','$CP$abc','fay@phpbb.co');\n";
    let vb5 = format!(
        "CREATE TABLE user (userid int, username varchar(100), email varchar(100), token varchar(255), scheme varchar(100), joindate int);\n\
         INSERT INTO user VALUES (1,'Gus','gus@vb5.co','{MD5} s@lt','legacy',1),(2,'Hal','hal@vb5.co','{BCRYPT}','blowfish:10',2);\n"
    );
    let joomla = format!(
        "CREATE TABLE jos_users (id int, name varchar(255), username varchar(150), email varchar(100), password varchar(100), registerDate datetime);\n\
         INSERT INTO jos_users VALUES (1,'Ida I','ida','ida@joomla.co','{MD5}:AbCd','2010-01-01');\n"
    );
    sql(vec![
        Case {
            input: vb.as_bytes(),
            records: vec![hashed(e("bob@vb.co", None), VBulletin, &format!("{MD5}:a'\\:"))],
            rejected: &[],
        },
        Case {
            input: mybb.as_bytes(),
            records: vec![hashed(e("ann@mybb.co", None), MyBb, &format!("{MD5}:s4lTs4lT"))],
            rejected: &[],
        },
        Case {
            input: smf.as_bytes(),
            records: vec![hashed(e("carl@smf.co", None), SmfSha1, &format!("{SHA1}:carl"))],
            rejected: &[],
        },
        Case {
            input: ipb.as_bytes(),
            records: vec![hashed(e("dee@ipb.co", None), MyBb, &format!("{MD5}:x:y;z"))],
            rejected: &[],
        },
        Case {
            input: phpbb.as_bytes(),
            records: vec![
                hashed(e("eve@phpbb.co", None), Phpass, "$H$9abcdefgh"),
                hashed(e("fay@phpbb.co", None), Unknown, "$CP$abc"),
            ],
            rejected: &[],
        },
        Case {
            input: vb5.as_bytes(),
            records: vec![
                hashed(e("gus@vb5.co", None), VBulletin, &format!("{MD5}:s@lt")),
                hashed(e("hal@vb5.co", None), Bcrypt, BCRYPT),
            ],
            rejected: &[],
        },
        Case {
            input: joomla.as_bytes(),
            records: vec![hashed(e("ida@joomla.co", None), SaltedMd5, &format!("{MD5}:AbCd"))],
            rejected: &[],
        },
    ]);
}

#[test]
fn data_classes_of_forum_tables() {
    let dump = "CREATE TABLE `mybb_users` (`uid` int, `username` text, `password` text, `salt` text, `loginkey` text, `email` text, `regip` varbinary(16), `birthday` text);\n\
        INSERT INTO `mybb_users` VALUES (1,'Ann','x','s','lk','ann@mybb.co',0x0a000001,''),(2,'Bo','y','s','lk','bo@mybb.co','','1-2-1990');\n";
    let (report, _) = read_all_ways(dump.as_bytes(), None);
    let classes: Vec<_> = report.data_classes.iter().map(|c| c.hibp_name()).collect();
    assert_eq!(
        classes,
        ["Email addresses", "Passwords", "IP addresses", "Dates of birth"],
        "sorted as the enum orders them"
    );
}

#[test]
fn xenforo_joins_user_and_authenticate() {
    let blob = format!("a:1:{{s:4:\"hash\";s:{}:\"{BCRYPT}\";}}", BCRYPT.len());
    let old = "a:2:{s:4:\"hash\";s:64:\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\";s:4:\"salt\";s:8:\"12345678\";}";
    let dump = format!(
        "CREATE TABLE `xf_user` (`user_id` int, `username` varchar(50), `email` varchar(120), `register_date` int);\n\
         INSERT INTO `xf_user` VALUES (1,'Ann','ann@xf.co',1),(2,'Bob','',2);\n\
         CREATE TABLE `xf_user_authenticate` (`user_id` int, `scheme_class` varchar(100), `data` mediumblob);\n\
         INSERT INTO `xf_user_authenticate` VALUES (1,'XF:Core12',_binary '{}'),(2,'XF:Core',0x{}),(3,'XF:Core12','');\n",
        blob.replace('"', "\\\""),
        old.bytes().map(|b| format!("{b:02x}")).collect::<String>(),
    );
    sql(vec![Case {
        input: dump.as_bytes(),
        records: vec![
            e("ann@xf.co", None),
            u("bob", None),
            hashed(e("ann@xf.co", None), Bcrypt, BCRYPT),
            hashed(u("bob", None), XenForoSha256, &format!("{}:12345678", "a".repeat(64))),
        ],
        rejected: &[("no account", &[4])],
    }]);
}

#[test]
fn discourse_joins_primary_emails_to_users() {
    let hash = "b".repeat(64);
    let dump = format!(
        "--\n-- PostgreSQL database dump\n--\nSET standard_conforming_strings = on;\n\
         COPY public.user_emails (id, user_id, email, \"primary\", created_at) FROM stdin;\n\
         1\t1\tAnn@Disc.co\tt\t2020-01-01\n\
         2\t1\told@disc.co\tf\t2020-01-01\n\
         \\.\n\
         COPY public.users (id, username, created_at, password_hash, salt, registration_ip_address) FROM stdin;\n\
         1\tann\t2020-01-01\t{hash}\tc2FsdA\t10.0.0.1\n\
         2\tbob\t2020-01-01\t\\N\t\\N\t\\N\n\
         \\.\n"
    );
    let (report, records) = read_all_ways(dump.as_bytes(), None);
    assert_eq!(
        records,
        vec![hashed(e("ann@disc.co", None), DiscoursePbkdf2, &format!("{hash}:c2FsdA")), u("bob", None)]
    );
    assert!(report.data_classes.contains(&DataClass::IpAddresses));
    assert_eq!(report.lines, 12);
}

#[test]
fn lines_are_counted_like_other_formats() {
    for (input, lines) in
        [("INSERT INTO t VALUES (1);", 1), ("INSERT INTO t VALUES (1);\n", 1), ("\n\n-- x\n\n", 4)]
    {
        let (report, _) = read_all_ways(input.as_bytes(), Some(Format::Sql));
        assert_eq!(report.lines, lines, "{input:?}");
    }
}

/// Every package's generated dump gives exactly the records and rejections
/// the generator states, whole and in tiny chunks, and truncated.
#[test]
fn generated_dumps_of_every_schema() {
    use leakwatch_gen::sqldump::{sql_dump, Schema};
    for schema in Schema::ALL {
        for truncate in [false, true] {
            let dump = sql_dump(schema, 42, 40, truncate);
            let (report, records) = read_all_ways(&dump.text, None);
            assert_eq!(report.format, Format::Sql, "{schema:?}");
            assert_eq!(report.lines, dump.lines, "{schema:?}");
            let got: Vec<_> = records
                .iter()
                .map(|r| {
                    let password = r.password.as_ref().map(|p| match p {
                        PasswordMaterial::Hash { kind, value } => (*kind, value.to_string()),
                        PasswordMaterial::Plain(_) => panic!("{schema:?}: a plaintext"),
                    });
                    ((r.account.kind, r.account.value.clone()), password)
                })
                .collect();
            let want: Vec<_> = dump.records.iter().map(|r| (r.account.clone(), r.password.clone())).collect();
            assert_eq!(got, want, "{schema:?} truncate {truncate}");
            let rejected: BTreeMap<&str, (u64, Vec<u64>)> =
                report.rejected.iter().map(|(k, v)| (*k, (v.count, v.sample_lines.clone()))).collect();
            let want: BTreeMap<&str, (u64, Vec<u64>)> = dump
                .rejected
                .iter()
                .map(|(k, v)| (*k, (v.len() as u64, v.iter().take(crate::SAMPLE_LINES).copied().collect())))
                .collect();
            assert_eq!(rejected, want, "{schema:?} truncate {truncate}");
        }
    }
}
