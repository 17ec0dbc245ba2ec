//! `Store::own_password_leaked_in`: an account's current NTLM hash is matched
//! against the triple stored for that account in each breach, not against the
//! password corpus: a password leaked for someone else is no match, and a
//! compaction that merges breaches changes nothing.

use leakwatch_ingest::Input;
use leakwatch_store::{ingest, BreachInfo, DataDir, IngestOptions, Store};
use leakwatch_types::{ntlm, Account};

fn ingest_into(data: &DataDir, tmp: &std::path::Path, breach: &str, text: &str) {
    let file = tmp.join(format!("{breach}.txt"));
    std::fs::write(&file, text).unwrap();
    let options = IngestOptions {
        breach: BreachInfo { name: breach.into(), ..BreachInfo::default() },
        format: None,
        memory_budget: 1 << 30,
    };
    let input = Input::open(file.to_str().unwrap()).unwrap();
    ingest(data, &options, vec![input], &Default::default(), &mut |_| {}).unwrap();
}

#[test]
fn only_the_password_leaked_for_the_account_itself_matches() {
    let tmp = tempfile::tempdir().unwrap();
    let data = DataDir::new(tmp.path().join("data"));
    data.init(Some(&tmp.path().join("data.key"))).unwrap();
    ingest_into(&data, tmp.path(), "Alpha", "alice@corp.example:Summer2024\nbob@corp.example:hunter2\n");
    ingest_into(&data, tmp.path(), "Beta", "alice@corp.example:Summer2024\nbob@corp.example:other9\n");
    let store = Store::open(&data).unwrap();
    let names = |email: &str, password: &str| -> Vec<String> {
        let account = Account::email(email).unwrap();
        let found = store.own_password_leaked_in(&account, &ntlm(password.as_bytes())).unwrap();
        found.iter().map(|b| b.name.clone()).collect()
    };
    assert_eq!(names("alice@corp.example", "Summer2024"), ["Alpha", "Beta"]);
    assert_eq!(names("bob@corp.example", "hunter2"), ["Alpha"]);
    assert_eq!(names("bob@corp.example", "other9"), ["Beta"]);
    // Leaked, but for Alice: counted in the corpus, not Bob's own.
    assert!(names("bob@corp.example", "Summer2024").is_empty());
    assert!(store.ntlm_count(&ntlm(b"Summer2024")).unwrap() > 0);
    assert!(names("carol@corp.example", "Summer2024").is_empty());
    assert!(names("alice@corp.example", "changed!").is_empty());
    // The directory's keyed hashes are fixed for the store; sealed rows open
    // only as they were sealed.
    let keys = data.ensure_keys().unwrap().directory_keys();
    let again = data.ensure_keys().unwrap().directory_keys();
    let h = ntlm(b"Summer2024");
    assert_eq!(keys.password_mac(&h), again.password_mac(&h));
    assert_ne!(keys.password_mac(&h)[..], h[..]);
    let sealed = keys.seal(b"alice@corp.example");
    assert!(!sealed.windows(5).any(|w| w == b"alice"));
    assert_eq!(again.open(&sealed).as_deref(), Some(&b"alice@corp.example"[..]));
    let mut changed = sealed.clone();
    changed[20] ^= 1;
    assert_eq!(keys.open(&changed), None);
}
