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
