//! Web sessions: a signed-in browser holds a random 32-byte id in an HttpOnly,
//! SameSite=Strict cookie; the server maps it to the key it signed in with and
//! to the session's CSRF token, and forgets it after [`IDLE`] without a
//! request, [`LIFETIME`] after sign-in, at sign-out, or when the key is revoked (the key is looked up
//! again by its hash on every request, so a revoked key's sessions stop
//! working at the next key-table reload).
//!
//! The map lives in memory only: a restart signs everyone out, and no session
//! id ever reaches disk.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use leakwatch_catalog::KeyHash;
use rand::TryRngCore;

/// A session unused this long is gone.
pub const IDLE: Duration = Duration::from_secs(8 * 3600);
/// A session this old is gone however busy it is: a stolen cookie is good for
/// a working day at most.
pub const LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// Sessions held at most; past it the least recently used is dropped, so
/// that sign-ins cannot grow the map without bound.
const MAX_SESSIONS: usize = 10_000;

/// The session cookie's name.
pub const COOKIE: &str = "lw_session";
/// The cookie carrying the sign-in form's CSRF token (double submit: no
/// server state before sign-in).
pub const SIGNIN_COOKIE: &str = "lw_signin";

/// What a session id stands for.
#[derive(Debug, Clone)]
pub struct Session {
    pub key_hash: KeyHash,
    pub csrf: String,
    created: Instant,
    last_seen: Instant,
}

/// Every live session, by id.
#[derive(Debug)]
pub struct Sessions {
    map: Mutex<HashMap<String, Session>>,
    idle: Duration,
    lifetime: Duration,
}

impl Default for Sessions {
    fn default() -> Self {
        Sessions::with_limits(IDLE, LIFETIME)
    }
}

impl Sessions {
    pub fn with_limits(idle: Duration, lifetime: Duration) -> Sessions {
        Sessions { map: Mutex::new(HashMap::new()), idle, lifetime }
    }

    fn expired(&self, session: &Session, now: Instant) -> bool {
        now.duration_since(session.last_seen) >= self.idle
            || now.duration_since(session.created) >= self.lifetime
    }

    /// Opens a session for the key whose hash is `key_hash`; returns its id.
    pub fn create(&self, key_hash: KeyHash) -> std::io::Result<String> {
        let id = random_token()?;
        let csrf = random_token()?;
        let now = Instant::now();
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|_, s| !self.expired(s, now));
        if map.len() >= MAX_SESSIONS {
            if let Some(oldest) = map.iter().min_by_key(|(_, s)| s.last_seen).map(|(id, _)| id.clone()) {
                map.remove(&oldest);
            }
        }
        map.insert(id.clone(), Session { key_hash, csrf, created: now, last_seen: now });
        Ok(id)
    }

    /// The live session `id`, its idle time restarted; an expired one is removed.
    pub fn get(&self, id: &str) -> Option<Session> {
        let now = Instant::now();
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let session = map.get_mut(id)?;
        if self.expired(session, now) {
            map.remove(id);
            return None;
        }
        session.last_seen = now;
        Some(session.clone())
    }

    pub fn remove(&self, id: &str) {
        self.map.lock().unwrap_or_else(|e| e.into_inner()).remove(id);
    }
}

/// 32 bytes from the operating system's generator, in hex.
pub fn random_token() -> std::io::Result<String> {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.try_fill_bytes(&mut bytes).map_err(std::io::Error::other)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Whether two tokens are equal, in time that depends on their lengths only.
pub fn tokens_match(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && !a.is_empty()
        && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The value of cookie `name` in a `Cookie` header.
pub fn cookie<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').find_map(|pair| {
        let (k, v) = pair.trim().split_once('=')?;
        (k == name).then_some(v)
    })
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Strict, on `path`; Secure when the
/// page was served over TLS; `max_age` 0 deletes it.
pub fn set_cookie(name: &str, value: &str, path: &str, secure: bool, max_age: Option<u64>) -> String {
    let mut c = format!("{name}={value}; Path={path}; HttpOnly; SameSite=Strict");
    if secure {
        c.push_str("; Secure");
    }
    if let Some(age) = max_age {
        c.push_str(&format!("; Max-Age={age}"));
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_expire_when_idle_and_end_at_sign_out() {
        let sessions = Sessions::with_limits(Duration::from_millis(50), LIFETIME);
        let id = sessions.create([1; 32]).unwrap();
        assert_eq!(id.len(), 64);
        let s = sessions.get(&id).unwrap();
        assert_eq!(s.key_hash, [1; 32]);
        assert_eq!(s.csrf.len(), 64);
        assert_ne!(s.csrf, id);
        std::thread::sleep(Duration::from_millis(80));
        assert!(sessions.get(&id).is_none(), "an idle session expires");

        // Used all the time, a session still ends at its lifetime.
        let sessions = Sessions::with_limits(IDLE, Duration::from_millis(120));
        let id = sessions.create([3; 32]).unwrap();
        for _ in 0..4 {
            std::thread::sleep(Duration::from_millis(20));
            assert!(sessions.get(&id).is_some());
        }
        std::thread::sleep(Duration::from_millis(80));
        assert!(sessions.get(&id).is_none(), "a session ends at its lifetime");

        let sessions = Sessions::default();
        let id = sessions.create([2; 32]).unwrap();
        assert!(sessions.get("0".repeat(64).as_str()).is_none());
        sessions.remove(&id);
        assert!(sessions.get(&id).is_none());
    }

    #[test]
    fn cookies_and_tokens() {
        assert_eq!(cookie("a=1; lw_session=abc; b=2", "lw_session"), Some("abc"));
        assert_eq!(cookie("xlw_session=abc", "lw_session"), None);
        assert!(tokens_match("abc", "abc"));
        assert!(!tokens_match("abc", "abd") && !tokens_match("abc", "ab") && !tokens_match("", ""));
        assert_eq!(
            set_cookie("n", "v", "/", true, Some(0)),
            "n=v; Path=/; HttpOnly; SameSite=Strict; Secure; Max-Age=0"
        );
    }
}
