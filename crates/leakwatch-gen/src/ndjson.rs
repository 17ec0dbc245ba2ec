//! NDJSON exports: one object per line, flat or nested (the account and the
//! password may sit at different depths), sometimes a SHA-1 instead of the
//! plaintext, sometimes a numeric password (a non-string value the rules ignore).

use crate::expected::{ExpRecord, Material};
use crate::file::{Entry, Outcome};
use crate::noise::{self, Noise, NoiseKind, BANNERS, HTML, INVALID_EMAILS};
use crate::rng::Rng;
use crate::rules::reason;
use crate::scenario::Row;

fn js(s: &str) -> String {
    serde_json::to_string(s).expect("strings serialize")
}

/// One object for a row with `email` shown as is and `password` already rendered as JSON.
fn object(rng: &mut Rng, id: usize, email: &str, password: &str, shape: usize) -> String {
    let email = js(email);
    match shape {
        0 => format!(
            "{{\"id\":{id},\"email\":{email},\"password\":{password},\"created_at\":\"20{:02}-0{}-1{}T10:00:00Z\",\"country\":\"{}\"}}",
            rng.range(10, 21),
            rng.range(1, 9),
            rng.range(0, 9),
            ["US", "DE", "FR", "BR"][rng.below(4)]
        ),
        1 => format!("{{\"id\":{id},\"user\":{{\"Email\":{email},\"verified\":{}}},\"password\":{password}}}", rng.chance(0.7)),
        _ => format!(
            "{{\"record\":{{\"account\":{{\"mail_address\":{email}}},\"credentials\":{{\"user_pass\":{password}}}}},\"source\":\"export\",\"tags\":[\"a\",\"b\"]}}"
        ),
    }
}

/// Builds a whole NDJSON file's entries, noise included.
pub(crate) fn build(rng: &mut Rng, rows: &[Row], noise: Noise) -> Vec<Entry> {
    let mut entries = Vec::with_capacity(rows.len());
    for (id, row) in rows.iter().enumerate() {
        let password = row.password.clone().unwrap_or_default();
        let text = std::str::from_utf8(&password).expect("NDJSON passwords are UTF-8");
        let shape = rng.below(3);
        let (line, material) = if password.is_empty() {
            (object(rng, id, &row.display, "\"\"", shape), Material::None)
        } else if text.len() < 16
            && !text.starts_with('0')
            && text.bytes().all(|b| b.is_ascii_digit())
            && rng.chance(0.3)
        {
            // Numeric passwords exported as numbers: a non-string value, so no password.
            (object(rng, id, &row.display, text, shape), Material::None)
        } else if rng.chance(0.1) {
            let sha =
                leakwatch_types::encode_hex_upper(&leakwatch_types::sha1(&password)).to_ascii_lowercase();
            let line = format!(
                "{{\"id\":{id},\"email\":{},\"password\":null,\"passwd_sha1\":\"{sha}\"}}",
                js(&row.display)
            );
            (line, Material::Sha1)
        } else {
            (object(rng, id, &row.display, &js(text), shape), Material::Plain)
        };
        let record = ExpRecord { account: row.account.clone(), password, material };
        entries.push(Entry::new(line, Outcome::Accepted(record)));
    }
    let n = noise::amount(rows.len());
    let mut extra = Vec::new();
    let email = |rng: &mut Rng| rows[rng.below(rows.len())].display.clone();
    for kind in NoiseKind::ALL.into_iter().filter(|k| noise.has(*k)) {
        for i in 0..n {
            let entry = match kind {
                NoiseKind::BrokenJson => {
                    let e = js(&email(rng));
                    let text = match i % 5 {
                        0 => format!("{{\"email\":{e},\"password\":\"abc"),
                        1 => format!("{{\"email\":{e},\"password\":}}"),
                        2 => format!("[{{\"email\":{e}}}]"),
                        3 => "null".to_string(),
                        _ => format!("{{email: {e}}}"),
                    };
                    Entry::rejected(text, reason::INVALID_JSON)
                }
                NoiseKind::Html => Entry::rejected(HTML[i % HTML.len()].0, reason::INVALID_JSON),
                NoiseKind::Banners => Entry::rejected(BANNERS[i % BANNERS.len()].0, reason::INVALID_JSON),
                NoiseKind::InvalidEmails => {
                    let (address, why) = INVALID_EMAILS[i % INVALID_EMAILS.len()];
                    let text = format!("{{\"email\":{},\"password\":\"x1\"}}", js(address));
                    Entry::rejected(text, why)
                }
                NoiseKind::NoAccount => {
                    let text = if i % 2 == 0 {
                        "{\"id\":5,\"password\":\"orphan\"}".to_string()
                    } else {
                        "{\"email\":null,\"password\":\"orphan\"}".to_string()
                    };
                    Entry::rejected(text, reason::NO_ACCOUNT)
                }
                NoiseKind::LongLines if i == 0 => {
                    let text = format!(
                        "{{\"email\":{},\"password\":\"x\",\"bio\":\"{}\"}}",
                        js(&email(rng)),
                        "A".repeat(100 * 1000)
                    );
                    Entry::rejected(text, reason::LINE_TOO_LONG)
                }
                _ => continue,
            };
            extra.push(entry);
        }
    }
    noise::scatter(rng, &mut entries, extra);
    noise::structural(rng, noise, &mut entries, false);
    entries
}
