//! Password vocabularies and a sampler with a realistic shape: a Zipf head of the
//! most common passwords, then name+year, word+digits, keyboard walks and random
//! strings, plus the rare awkward ones real dumps hold (legacy-encoded bytes,
//! separators inside the password, non-ASCII text).

use crate::rng::Rng;

/// The most common passwords of public password studies, most frequent first.
pub const TOP_PASSWORDS: &[&str] = &[
    "123456",
    "password",
    "123456789",
    "12345678",
    "12345",
    "qwerty",
    "1234567",
    "111111",
    "1234567890",
    "123123",
    "abc123",
    "1234",
    "password1",
    "iloveyou",
    "1q2w3e4r",
    "000000",
    "qwerty123",
    "zaq12wsx",
    "dragon",
    "sunshine",
    "princess",
    "letmein",
    "654321",
    "monkey",
    "27653",
    "1qaz2wsx",
    "123321",
    "qwertyuiop",
    "superman",
    "asdfghjkl",
    "football",
    "baseball",
    "welcome",
    "master",
    "shadow",
    "michael",
    "jordan23",
    "trustno1",
    "hello",
    "freedom",
    "whatever",
    "qazwsx",
    "ninja",
    "mustang",
    "access",
    "696969",
    "batman",
    "starwars",
    "solo",
    "loveme",
    "passw0rd",
    "charlie",
    "donald",
    "flower",
    "hottie",
    "lovely",
    "bailey",
    "888888",
    "aa123456",
    "123qwe",
    "1q2w3e",
    "121212",
    "7777777",
    "987654321",
    "666666",
    "michelle",
    "jennifer",
    "hunter",
    "ranger",
    "buster",
    "soccer",
    "harley",
    "andrew",
    "tigger",
    "joshua",
    "pepper",
    "ginger",
    "summer",
    "ashley",
    "thomas",
    "computer",
    "killer",
    "daniel",
    "nicole",
    "jessica",
    "amanda",
    "hockey",
    "cookie",
    "secret",
    "maggie",
    "matrix",
    "zxcvbnm",
    "asdfgh",
    "112233",
    "159753",
    "147258369",
    "qwe123",
    "1qazxsw2",
    "naruto",
    "pokemon",
    "lol123",
    "samsung",
    "chocolate",
    "liverpool",
    "chelsea",
    "arsenal",
    "barcelona",
    "q1w2e3r4",
    "a123456",
    "123abc",
    "love123",
    "qwerty1",
    "password123",
    "admin",
    "admin123",
    "root",
    "test",
    "test123",
    "guest",
    "changeme",
    "default",
    "11111111",
    "00000000",
    "1111",
    "1212",
    "123",
    "qwer1234",
    "asd123",
    "iloveyou1",
    "princess1",
    "monkey1",
    "abcd1234",
    "1234qwer",
    "azerty",
    "marseille",
    "doudou",
    "soleil",
    "loulou",
    "chouchou",
    "motdepasse",
    "hallo",
    "hallo123",
    "schatz",
    "passwort",
    "fussball",
    "ficken",
    "schalke04",
    "123456a",
    "a1b2c3",
    "qwertyu",
    "asdf1234",
    "pass1234",
    "woaini",
    "woaini1314",
    "5201314",
    "aaaaaa",
    "zxcvbn",
    "qazwsxedc",
    "1q2w3e4r5t",
    "q1w2e3",
    "11223344",
    "55555",
    "999999",
    "1qaz@WSX",
    "P@ssw0rd",
    "Password1",
    "Password123",
    "Passw0rd!",
    "Qwerty123!",
    "Welcome1",
    "Summer2020",
    "Spring2021",
    "Winter2022",
    "Autumn2019",
    "letmein1",
    "superman1",
    "batman1",
    "starwars1",
    "charlie1",
    "dragon1",
    "sunshine1",
    "shadow1",
    "master1",
    "killer1",
    "football1",
    "baseball1",
    "soccer1",
    "hello123",
    "welcome1",
    "freedom1",
    "whatever1",
    "computer1",
    "internet",
    "samantha",
    "jordan",
    "michael1",
    "jennifer1",
    "anthony",
    "matthew",
    "william",
    "daniel1",
    "ferrari",
    "mercedes",
    "porsche",
    "yamaha",
    "gandalf",
];

/// Dictionary words people build passwords from.
pub const WORDS: &[&str] = &[
    "summer", "winter", "spring", "autumn", "love", "angel", "baby", "honey", "sunny", "happy", "lucky",
    "money", "power", "magic", "music", "dance", "rocky", "tiger", "lion", "eagle", "falcon", "phoenix",
    "dragon", "pirate", "ninja", "coffee", "pizza", "banana", "orange", "cherry", "apple", "lemon", "ocean",
    "river", "forest", "mountain", "rainbow", "thunder", "silver", "golden", "diamond", "crystal", "star",
    "galaxy", "rocket", "soccer", "hockey", "tennis", "guitar", "piano", "family", "mother", "father",
    "sister", "brother", "friend", "school", "london", "paris", "berlin", "moscow", "madrid", "roma",
    "tokyo", "boston", "chicago", "dallas", "texas", "florida", "jesus", "church", "heaven", "kitty",
    "puppy", "doggy", "bunny", "teddy", "mickey", "snoopy", "spider", "batman", "matrix", "hacker", "gamer",
    "player", "legend",
];

/// Keyboard walks (QWERTY, AZERTY, QWERTZ, number pads).
pub const KEYBOARD_WALKS: &[&str] = &[
    "qazwsx",
    "qwertyuiop",
    "asdfghjkl",
    "zxcvbnm",
    "1qaz2wsx",
    "2wsx3edc",
    "qweasd",
    "qweasdzxc",
    "poiuytrewq",
    "mnbvcxz",
    "asdfasdf",
    "qwerqwer",
    "1q2w3e4r5t6y",
    "zaq1xsw2",
    "!QAZ2wsx",
    "1qaz!QAZ",
    "azertyuiop",
    "qwertzuiop",
    "ytrewq",
    "741852963",
    "147852369",
    "159357",
    "963852741",
    "qaz123",
    "wsxedc",
    "1z2x3c4v",
];

/// Passwords that are not UTF-8: Latin-1 / Windows-1252 bytes as legacy sites
/// stored them. None of them is the legacy spelling of a UTF-8 entry below, so no
/// two distinct passwords of one account can share an NTLM hash.
pub const LEGACY_PASSWORDS: &[&[u8]] = &[
    b"caf\xe9",
    b"m\xfcnchen1",
    b"se\xf1or123",
    b"\xa3money99",
    b"gar\xe7on",
    b"fr\xe4ulein",
    b"na\xefve2010",
    b"\xe9t\xe92019",
    b"k\xf6nig!",
    b"jalape\xf1o",
];

/// UTF-8 passwords beyond ASCII.
pub const UNICODE_PASSWORDS: &[&str] = &[
    "пароль",
    "пароль123",
    "qwerty123йцукен",
    "密码123",
    "我爱你1314",
    "contraseña1",
    "Straße42",
    "mañana2020",
    "παράθυρο",
    "şifre123",
    "パスワード",
    "사랑해1004",
];

/// Passwords with the characters combo separators use: a parser must take every
/// byte after the first separator.
pub const SEPARATOR_PASSWORDS: &[&str] =
    &["pa:ss:wd", "a;b;c;1", "x|y|z99", "http://x", "12:34:56", "p@ss|w0rd;:", "key=val;1", "ab\tcd"];

/// Draws passwords. Holds the Zipf table of [`TOP_PASSWORDS`].
pub struct PasswordSampler {
    zipf_cdf: Vec<f64>,
}

impl Default for PasswordSampler {
    fn default() -> Self {
        Self::new()
    }
}

impl PasswordSampler {
    pub fn new() -> Self {
        // Exponent ~1 matches the head of published password frequency lists.
        let mut acc = 0.0;
        let zipf_cdf = (1..=TOP_PASSWORDS.len())
            .map(|rank| {
                acc += 1.0 / (rank as f64).powf(1.0);
                acc
            })
            .collect::<Vec<_>>();
        let total = acc;
        PasswordSampler { zipf_cdf: zipf_cdf.into_iter().map(|c| c / total).collect() }
    }

    /// One of the common passwords, by Zipf rank.
    pub fn top(&self, rng: &mut Rng) -> &'static str {
        let u = rng.unit();
        let i = self.zipf_cdf.partition_point(|&c| c < u).min(TOP_PASSWORDS.len() - 1);
        TOP_PASSWORDS[i]
    }

    /// A password a person with this name and birth year might choose.
    pub fn sample(&self, rng: &mut Rng, first: &str, birth_year: u16) -> Vec<u8> {
        let roll = rng.below(1000);
        let text = match roll {
            0..=379 => self.top(rng).to_string(),
            380..=519 => {
                let year =
                    if rng.chance(0.5) { birth_year.to_string() } else { format!("{:02}", birth_year % 100) };
                let name = if rng.chance(0.4) { capitalize(first) } else { first.to_string() };
                let tail = if rng.chance(0.15) { "!" } else { "" };
                format!("{name}{year}{tail}")
            }
            520..=719 => {
                let word = rng.pick(WORDS);
                let word = if rng.chance(0.3) { capitalize(word) } else { word.to_string() };
                let digits = match rng.below(4) {
                    0 => rng.range(0, 9).to_string(),
                    1 => format!("{:02}", rng.range(0, 99)),
                    2 => rng.range(100, 999).to_string(),
                    _ => rng.range(1960, 2024).to_string(),
                };
                format!("{word}{digits}")
            }
            720..=799 => rng.pick(KEYBOARD_WALKS).to_string(),
            800..=949 => {
                let len = 8 + rng.below(9);
                random_string(rng, len)
            }
            950..=969 => return rng.pick(LEGACY_PASSWORDS).to_vec(),
            970..=984 => rng.pick(UNICODE_PASSWORDS).to_string(),
            _ => rng.pick(SEPARATOR_PASSWORDS).to_string(),
        };
        text.into_bytes()
    }

    /// A variation of an old password, as people "change" theirs.
    pub fn vary(&self, rng: &mut Rng, old: &[u8]) -> Vec<u8> {
        let mut new = old.to_vec();
        match rng.below(3) {
            0 => new.push(b'1'),
            1 => new.push(b'!'),
            _ => new.extend_from_slice(rng.range(10, 99).to_string().as_bytes()),
        }
        new
    }
}

/// A password-manager style string: letters, digits and some symbols (including
/// the combo separators `:` `;` `|`), never starting or ending with whitespace.
pub fn random_string(rng: &mut Rng, len: usize) -> String {
    const ALPHABET: &[u8] =
        b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcdefghijkmnpqrstuvwxyz23456789!#$%&*+-=?@^_:;|.,";
    (0..len).map(|_| *rng.pick(ALPHABET) as char).collect()
}

pub fn capitalize(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vocabularies_have_no_edge_whitespace() {
        // Combo lines are trimmed, so a password ending in whitespace would change.
        let all = TOP_PASSWORDS.iter().chain(WORDS).chain(KEYBOARD_WALKS).chain(UNICODE_PASSWORDS);
        for p in all.chain(SEPARATOR_PASSWORDS) {
            assert_eq!(p.trim(), *p);
            assert!(!p.is_empty());
        }
        assert!(TOP_PASSWORDS.len() >= 200);
        for p in LEGACY_PASSWORDS {
            assert!(std::str::from_utf8(p).is_err());
        }
    }

    #[test]
    fn the_head_dominates() {
        let sampler = PasswordSampler::new();
        let mut rng = Rng::new(1);
        let n = 20_000;
        let hits = (0..n).filter(|_| sampler.top(&mut rng) == "123456").count();
        // Rank 1 of a Zipf(1) over 200 items has about 17% of the mass.
        assert!((n / 10..n / 4).contains(&hits), "{hits}");
    }
}
