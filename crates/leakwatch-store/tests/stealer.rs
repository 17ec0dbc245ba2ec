//! Stealer logs keep HIBP's meaning: which website domains each address's
//! credentials were captured for, searchable by address, by website and by the
//! address's domain; an address whose only site is its own mail domain is left out.

use leakwatch_ingest::{Format, Input};
use leakwatch_store::{ingest, BreachInfo, DataDir, IngestOptions, Store};
use leakwatch_types::Account;

#[test]
fn stealer_pairs_answer_all_three_lookups() {
    let tmp = tempfile::tempdir().unwrap();
    let ulp = tmp.path().join("ulp.txt");
    std::fs::write(
        &ulp,
        "https://www.netflix.com/login:Alice@Example-Corp.com:pw1\n\
         https://accounts.google.com:8443/signin:alice@example-corp.com:pw:2\n\
         https://www.netflix.com/login:alice@example-corp.com:pw1\n\
         example-corp.com:carol@example-corp.com:pw4\n\
         https://example-corp.com/owa:dave@example-corp.com:x\n\
         https://github.com/login:dave@example-corp.com:y\n\
         https://github.com/session:erin@gmail.com:z\n",
    )
    .unwrap();
    let data = DataDir::new(tmp.path().join("data"));
    // Its key beside it, in the temporary directory, not in ~/.config.
    data.init(Some(&tmp.path().join("data.key"))).unwrap();
    let options = IngestOptions {
        breach: BreachInfo { name: "Stealer1".into(), ..BreachInfo::default() },
        format: Some(Format::Stealer),
        memory_budget: 1 << 30,
    };
    let input = Input::open(ulp.to_str().unwrap()).unwrap();
    ingest(&data, &options, vec![input], &Default::default(), &mut |_| {}).unwrap();
    let store = Store::open(&data).unwrap();
    assert!(store.breaches()[0].is_stealer_log);

    let sites = |e: &str| store.stealer_websites_by_email(&Account::email(e).unwrap()).unwrap();
    let netflix = "www.netflix.com".to_owned();
    let google = "accounts.google.com".to_owned();
    assert_eq!(sites("alice@example-corp.com"), vec![google.clone(), netflix.clone()]);
    // Carol's only site is her own mail domain: left out.
    assert!(sites("carol@example-corp.com").is_empty());
    assert_eq!(sites("dave@example-corp.com"), vec!["example-corp.com".to_owned(), "github.com".to_owned()]);
    assert!(sites("nobody@example-corp.com").is_empty());

    assert_eq!(
        store.stealer_emails_by_website("github.com").unwrap(),
        vec!["dave@example-corp.com".to_owned(), "erin@gmail.com".to_owned()]
    );
    // Dave logged in to other sites too, so his own-domain entry stays; Carol's goes.
    assert_eq!(
        store.stealer_emails_by_website("example-corp.com").unwrap(),
        vec!["dave@example-corp.com".to_owned()]
    );

    let by_domain = store.stealer_websites_by_email_domain("example-corp.com").unwrap();
    let aliases: Vec<&str> = by_domain.keys().map(String::as_str).collect();
    assert_eq!(aliases, vec!["alice", "dave"]);
    assert_eq!(by_domain["alice"], vec![google, netflix]);
}

fn ingest_text(tmp: &std::path::Path, name: &str, text: &str, memory_budget: u64) -> Store {
    ingest_into(DataDir::new(tmp.join(name)), tmp, name, text, memory_budget)
}

fn ingest_into(data: DataDir, tmp: &std::path::Path, name: &str, text: &str, memory_budget: u64) -> Store {
    let file = tmp.join(format!("{name}.txt"));
    std::fs::write(&file, text).unwrap();
    data.init(Some(&tmp.join(format!("{name}.key")))).unwrap();
    let options = IngestOptions {
        breach: BreachInfo { name: "Stealer1".into(), ..BreachInfo::default() },
        format: None,
        memory_budget,
    };
    let input = Input::open(file.to_str().unwrap()).unwrap();
    ingest(&data, &options, vec![input], &Default::default(), &mut |_| {}).unwrap();
    Store::open(&data).unwrap()
}

/// A router's or an intranet portal's login: the account is in the breach and
/// its password counted, but there is no website to pair it with.
#[test]
fn hosts_that_are_no_domain_expose_the_account_and_password_without_a_pair() {
    let tmp = tempfile::tempdir().unwrap();
    let store = ingest_text(
        tmp.path(),
        "data",
        "https://[::1]:8443/x:ann@example-corp.com:Router-Pw-1\n\
         http://192.168.1.1:8080/login:bob@example-corp.com:Router-Pw-1\n\
         https://intranet/:bob@example-corp.com:Intranet-Pw\n\
         https://github.com/session:carol@example-corp.com:Gh-Pw\n",
        1 << 30,
    );
    assert!(store.breaches()[0].is_stealer_log);
    for email in ["ann@example-corp.com", "bob@example-corp.com", "carol@example-corp.com"] {
        let breaches = store.account_breaches(&Account::email(email).unwrap()).unwrap();
        assert_eq!(breaches.iter().map(|b| b.name.as_str()).collect::<Vec<_>>(), vec!["Stealer1"], "{email}");
    }
    let sha1 = |p: &str| leakwatch_types::PasswordHashes::of(p.as_bytes()).sha1;
    assert_eq!(store.sha1_count(&sha1("Router-Pw-1")).unwrap(), 2);
    assert_eq!(store.sha1_count(&sha1("Intranet-Pw")).unwrap(), 1);
    let sites = |e: &str| store.stealer_websites_by_email(&Account::email(e).unwrap()).unwrap();
    assert!(sites("ann@example-corp.com").is_empty());
    assert!(sites("bob@example-corp.com").is_empty());
    assert_eq!(sites("carol@example-corp.com"), vec!["github.com".to_owned()]);
    let by_domain = store.stealer_websites_by_email_domain("example-corp.com").unwrap();
    assert_eq!(by_domain.keys().map(String::as_str).collect::<Vec<_>>(), vec!["carol"]);
}

/// Stealer entries count against the memory budget: spilled to runs and merged
/// back (long and middling payloads beside short ones), they answer as when
/// held in memory.
#[test]
fn stealer_entries_spilled_under_a_small_budget_answer_the_same() {
    let tmp = tempfile::tempdir().unwrap();
    let long_site = format!("{}.example.com", "a".repeat(60));
    let mut text = String::new();
    for i in 0..12_000 {
        let site = match i % 7 {
            0 => long_site.clone(),
            1 => format!("a-rather-longer-shop-name-{}.example.com", i % 300),
            _ => format!("shop{}.example.com", i % 300),
        };
        text.push_str(&format!("https://{site}/login:user{i}@mail{}.example.org:pw{i}\n", i % 50));
    }
    let large = ingest_text(tmp.path(), "large", &text, 1 << 30);
    // Spilled, and spilled into segments that roll over at 1,000 entries
    // and 16 kB of payloads.
    let small = ingest_text(tmp.path(), "small", &text, 1 << 20);
    let rolled_dir = DataDir::new(tmp.path().join("rolled")).with_segment_limits(1000, 16 << 10, 8 << 20);
    let rolled = ingest_into(rolled_dir, tmp.path(), "rolled", &text, 1 << 20);
    let stats = rolled.stats().unwrap();
    for kind in ["stealer", "stealer-emails"] {
        assert!(stats.kinds[kind].segments > 2, "{kind}: {:?}", stats.kinds[kind]);
    }
    for store in [&small, &rolled] {
        for i in (0..12_000).step_by(997) {
            let email = Account::email(&format!("user{i}@mail{}.example.org", i % 50)).unwrap();
            let got = store.stealer_websites_by_email(&email).unwrap();
            assert_eq!(got, large.stealer_websites_by_email(&email).unwrap());
            assert_eq!(got.len(), 1);
        }
        let emails = store.stealer_emails_by_website(&long_site).unwrap();
        assert_eq!(emails.len(), 12_000_usize.div_ceil(7));
        assert_eq!(emails, large.stealer_emails_by_website(&long_site).unwrap());
        assert_eq!(
            store.stealer_websites_by_email_domain("mail7.example.org").unwrap(),
            large.stealer_websites_by_email_domain("mail7.example.org").unwrap()
        );
    }
}

/// The email domain's view is read from the domain index: an alias that only
/// a combo list (no stealer log) holds is no stealer-log exposure, an alias in
/// both shows the stealer log's sites, and removing the stealer log's breach
/// takes its aliases out of the view.
#[test]
fn the_email_domain_view_holds_only_stealer_log_aliases() {
    let tmp = tempfile::tempdir().unwrap();
    let data = DataDir::new(tmp.path().join("data"));
    data.init(Some(&tmp.path().join("data.key"))).unwrap();
    let add = |name: &str, text: &str| {
        let file = tmp.path().join(format!("{name}.txt"));
        std::fs::write(&file, text).unwrap();
        let options = IngestOptions {
            breach: BreachInfo { name: name.into(), ..BreachInfo::default() },
            format: None,
            memory_budget: 1 << 30,
        };
        let input = Input::open(file.to_str().unwrap()).unwrap();
        ingest(&data, &options, vec![input], &Default::default(), &mut |_| {}).unwrap();
    };
    add("Combo", "frank@example-corp.com:pw1\nalice@example-corp.com:pw2\n");
    add("Stealer1", "https://www.netflix.com/login:alice@example-corp.com:pw1\n");
    let store = Store::open(&data).unwrap();
    let by_domain = store.stealer_websites_by_email_domain("example-corp.com").unwrap();
    assert_eq!(by_domain.len(), 1, "{by_domain:?}");
    assert_eq!(by_domain["alice"], vec!["www.netflix.com".to_owned()]);
    assert!(store.stealer_websites_by_email_domain("gmail.com").unwrap().is_empty());

    leakwatch_store::remove_breach(&data, "Stealer1").unwrap();
    let store = Store::open(&data).unwrap();
    assert!(store.stealer_websites_by_email_domain("example-corp.com").unwrap().is_empty());
    assert_eq!(store.domain("example-corp.com").unwrap().len(), 2, "the combo's aliases stay");
}

/// The pairs by email live through what rewrites segments: compaction of
/// many stealer breaches into one segment, a data-key rotation, and the
/// removal of one breach, each answering as the pairs ingested say.
#[test]
fn pairs_by_email_survive_compaction_rekey_and_breach_removal() {
    let tmp = tempfile::tempdir().unwrap();
    let data = DataDir::new(tmp.path().join("data"));
    data.init(Some(&tmp.path().join("data.key"))).unwrap();
    let sites = ["github.com", "www.netflix.com", "vk.com", "login.live.com"];
    // Breach i: user j's credentials for site (i + j) % 4, for j < 3 + i % 3.
    let pairs = |i: usize| (0..3 + i % 3).map(move |j| (format!("user{j}@corp.example"), sites[(i + j) % 4]));
    for i in 0..10 {
        let text: String =
            pairs(i).map(|(email, site)| format!("https://{site}/login:{email}:pw{i}\n")).collect();
        let file = tmp.path().join(format!("s{i}.txt"));
        std::fs::write(&file, text).unwrap();
        let options = IngestOptions {
            breach: BreachInfo { name: format!("Stealer{i}"), ..BreachInfo::default() },
            format: Some(Format::Stealer),
            memory_budget: 1 << 30,
        };
        let input = Input::open(file.to_str().unwrap()).unwrap();
        ingest(&data, &options, vec![input], &Default::default(), &mut |_| {}).unwrap();
    }
    let want = |skip: Option<usize>| -> Vec<Vec<String>> {
        (0..5)
            .map(|j| {
                let user = format!("user{j}@corp.example");
                let mut s: Vec<String> = (0..10)
                    .filter(|&i| Some(i) != skip)
                    .flat_map(pairs)
                    .filter(|(email, _)| *email == user)
                    .map(|(_, site)| site.to_owned())
                    .collect();
                s.sort();
                s.dedup();
                s
            })
            .collect()
    };
    let got = |store: &Store| -> Vec<Vec<String>> {
        (0..5)
            .map(|j| {
                let email = Account::email(&format!("user{j}@corp.example")).unwrap();
                store.stealer_websites_by_email(&email).unwrap()
            })
            .collect()
    };
    let store = Store::open(&data).unwrap();
    let stealer_emails = store.manifest().segments.iter().filter(|s| s.kind == "stealer-emails").count();
    assert!(stealer_emails < 10, "ten ingests compacted: {stealer_emails} segments");
    assert_eq!(got(&store), want(None), "after compaction");
    assert_eq!(store.stealer_emails_by_website("vk.com").unwrap().len(), 5);

    leakwatch_store::rekey(&data).unwrap();
    assert_eq!(got(&Store::open(&data).unwrap()), want(None), "after rekey");

    // Only Stealer5 paired user4 with www.netflix.com.
    assert_ne!(want(Some(5)), want(None));
    leakwatch_store::remove_breach(&data, "Stealer5").unwrap();
    assert_eq!(got(&Store::open(&data).unwrap()), want(Some(5)), "after removing Stealer5");
}
