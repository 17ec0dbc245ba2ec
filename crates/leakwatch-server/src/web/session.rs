//! Web sessions: a signed-in browser holds a random 32-byte id in an HttpOnly,
//! SameSite=Strict cookie; the server maps it to the key it signed in with and
//! to the session's CSRF token, and forgets it after [`IDLE`] without a
//! request, [`LIFETIME`] after sign-in, at sign-out, or when the key is revoked (the key is looked up
//! again by its hash on every request, so a revoked key's sessions stop
//! working at the next key-table reload).
//!
//! With a catalog of its own (SQLite) a server keeps the map in memory only: a
//! restart signs everyone out, and no session id ever reaches disk. Servers
//! sharing a PostgreSQL catalog keep sessions there ([`Sessions::shared`]), so
//! that a browser signed in at one is signed in at all; the catalog holds a
//! hash of each id (never the id) and the CSRF token is derived from the id,
//! so a copy of the table signs nobody in. Such sessions are read and written
//! off the async threads ([`with_sessions`]).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use leakwatch_catalog::{now_ms, Catalog, KeyHash};
use rand::TryRngCore;

use crate::error::AppError;

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
    store: Store,
    idle: Duration,
    lifetime: Duration,
}

#[derive(Debug)]
enum Store {
    Memory(Mutex<HashMap<String, Session>>),
    /// A catalog connection of its own, shared with the other servers.
    Catalog(Mutex<Catalog>),
}

/// A shared session's last use is written at most this often: each request
/// need not be a write.
const TOUCH_EVERY_MS: i64 = 60_000;

/// What the catalog stores in place of a session id.
fn id_hash(id: &str) -> [u8; 32] {
    blake3::derive_key("leakwatch 2026 web session id", id.as_bytes())
}

/// A shared session's CSRF token: derived from its id, stored nowhere.
fn derived_csrf(id: &str) -> String {
    blake3::derive_key("leakwatch 2026 web session csrf", id.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Default for Sessions {
    fn default() -> Self {
        Sessions::with_limits(IDLE, LIFETIME)
    }
}

impl Sessions {
    pub fn with_limits(idle: Duration, lifetime: Duration) -> Sessions {
        Sessions { store: Store::Memory(Mutex::new(HashMap::new())), idle, lifetime }
    }

    /// Sessions kept in `catalog`, where every server using it finds them.
    pub fn shared(catalog: Catalog, idle: Duration, lifetime: Duration) -> Sessions {
        Sessions { store: Store::Catalog(Mutex::new(catalog)), idle, lifetime }
    }

    /// Whether they are kept in the catalog (and calls may wait on it).
    pub fn is_shared(&self) -> bool {
        matches!(self.store, Store::Catalog(_))
    }

    fn expired(&self, session: &Session, now: Instant) -> bool {
        now.duration_since(session.last_seen) >= self.idle
            || now.duration_since(session.created) >= self.lifetime
    }

    /// Opens a session for the key whose hash is `key_hash`; returns its id.
    pub fn create(&self, key_hash: KeyHash) -> Result<String, AppError> {
        let id = random_token().map_err(AppError::internal)?;
        let map = match &self.store {
            Store::Memory(map) => map,
            Store::Catalog(catalog) => {
                let now = now_ms();
                let limits = (
                    now - self.idle.as_millis() as i64,
                    now - self.lifetime.as_millis() as i64,
                    MAX_SESSIONS,
                );
                let mut catalog = catalog.lock().unwrap_or_else(|e| e.into_inner());
                catalog.create_session(&id_hash(&id), &key_hash, now, limits).map_err(AppError::catalog)?;
                return Ok(id);
            }
        };
        let csrf = random_token().map_err(AppError::internal)?;
        let now = Instant::now();
        let mut map = map.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|_, s| !self.expired(s, now));
        if map.len() >= MAX_SESSIONS {
            if let Some(oldest) = map.iter().min_by_key(|(_, s)| s.last_seen).map(|(id, _)| id.clone()) {
                map.remove(&oldest);
            }
        }
        map.insert(id.clone(), Session { key_hash, csrf, created: now, last_seen: now });
        Ok(id)
    }

    /// The live session `id`, its idle time restarted; an expired one is
    /// removed. Fails when the catalog cannot say (a visitor is not taken
    /// for signed out because the database is down).
    pub fn get(&self, id: &str) -> Result<Option<Session>, AppError> {
        let map = match &self.store {
            Store::Memory(map) => map,
            Store::Catalog(catalog) => return self.get_shared(catalog, id),
        };
        let now = Instant::now();
        let mut map = map.lock().unwrap_or_else(|e| e.into_inner());
        let Some(session) = map.get_mut(id) else { return Ok(None) };
        if self.expired(session, now) {
            map.remove(id);
            return Ok(None);
        }
        session.last_seen = now;
        Ok(Some(session.clone()))
    }

    fn get_shared(&self, catalog: &Mutex<Catalog>, id: &str) -> Result<Option<Session>, AppError> {
        let catalog = catalog.lock().unwrap_or_else(|e| e.into_inner());
        let hash = id_hash(id);
        let Some(stored) = catalog.session(&hash).map_err(AppError::catalog)? else { return Ok(None) };
        let now = now_ms();
        let expired = now - stored.last_seen_ms >= self.idle.as_millis() as i64
            || now - stored.created_at_ms >= self.lifetime.as_millis() as i64;
        let written = if expired {
            catalog.remove_session(&hash)
        } else if now - stored.last_seen_ms >= TOUCH_EVERY_MS {
            catalog.touch_session(&hash, now)
        } else {
            Ok(())
        };
        if let Err(e) = written {
            tracing::warn!(error = %e, "recording a web session's use failed");
        }
        if expired {
            return Ok(None);
        }
        let ago = |ms: i64| Duration::from_millis((now - ms).max(0) as u64);
        let at = Instant::now();
        Ok(Some(Session {
            key_hash: stored.key_hash,
            csrf: derived_csrf(id),
            created: at.checked_sub(ago(stored.created_at_ms)).unwrap_or(at),
            last_seen: at.checked_sub(ago(stored.last_seen_ms)).unwrap_or(at),
        }))
    }

    /// Ends session `id`; fails when the catalog could not remove it (the
    /// session would live on at every server).
    pub fn remove(&self, id: &str) -> Result<(), AppError> {
        match &self.store {
            Store::Memory(map) => {
                map.lock().unwrap_or_else(|e| e.into_inner()).remove(id);
                Ok(())
            }
            Store::Catalog(catalog) => {
                let catalog = catalog.lock().unwrap_or_else(|e| e.into_inner());
                catalog.remove_session(&id_hash(id)).map_err(AppError::catalog)
            }
        }
    }
}

/// Runs `f` on the server's sessions: on this thread when they are in memory,
/// off the async threads when a call may wait on the catalog.
pub async fn with_sessions<T: Send + 'static>(
    state: &crate::AppState,
    f: impl FnOnce(&Sessions) -> T + Send + 'static,
) -> Option<T> {
    if !state.shared().sessions.is_shared() {
        return Some(f(&state.shared().sessions));
    }
    let state = state.clone();
    tokio::task::spawn_blocking(move || f(&state.shared().sessions)).await.ok()
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
        let s = sessions.get(&id).unwrap().unwrap();
        assert_eq!(s.key_hash, [1; 32]);
        assert_eq!(s.csrf.len(), 64);
        assert_ne!(s.csrf, id);
        std::thread::sleep(Duration::from_millis(80));
        assert!(sessions.get(&id).unwrap().is_none(), "an idle session expires");

        // Used all the time, a session still ends at its lifetime.
        let sessions = Sessions::with_limits(IDLE, Duration::from_millis(120));
        let id = sessions.create([3; 32]).unwrap();
        for _ in 0..4 {
            std::thread::sleep(Duration::from_millis(20));
            assert!(sessions.get(&id).unwrap().is_some());
        }
        std::thread::sleep(Duration::from_millis(80));
        assert!(sessions.get(&id).unwrap().is_none(), "a session ends at its lifetime");

        let sessions = Sessions::default();
        let id = sessions.create([2; 32]).unwrap();
        assert!(sessions.get("0".repeat(64).as_str()).unwrap().is_none());
        sessions.remove(&id).unwrap();
        assert!(sessions.get(&id).unwrap().is_none());
    }

    #[test]
    fn servers_sharing_a_catalog_share_their_sessions_and_store_no_id() {
        let server = leakwatch_catalog::testing::TestPostgres::shared();
        let location = server.fresh_catalog();
        let open = || Catalog::open_at(&location).unwrap();
        let (a, b) = (Sessions::shared(open(), IDLE, LIFETIME), Sessions::shared(open(), IDLE, LIFETIME));
        assert!(a.is_shared() && !Sessions::default().is_shared());
        let id = a.create([4; 32]).unwrap();
        let at_a = a.get(&id).unwrap().unwrap();
        let at_b = b.get(&id).unwrap().expect("signed in at one server, signed in at the other");
        assert_eq!((at_b.key_hash, &at_b.csrf), (at_a.key_hash, &at_a.csrf));
        assert_eq!(at_b.csrf.len(), 64);
        assert_ne!(at_b.csrf, id);
        assert!(b.get(&random_token().unwrap()).unwrap().is_none());
        // The catalog holds neither the id nor the token.
        let url = match &location {
            leakwatch_catalog::CatalogLocation::Postgres(url) => url.rsplit('/').next().unwrap().to_owned(),
            other => panic!("{other}"),
        };
        let table =
            server.psql(&url, "SELECT encode(id_hash, 'hex') || encode(key_hash, 'hex') FROM web_sessions");
        assert!(!table.contains(&id) && !table.contains(&at_a.csrf), "{table}");
        b.remove(&id).unwrap();
        assert!(a.get(&id).unwrap().is_none(), "signed out at one server, signed out at all");

        // Expiry is the server's, as in memory.
        let short = Sessions::shared(open(), Duration::from_millis(50), LIFETIME);
        let id = short.create([5; 32]).unwrap();
        assert!(short.get(&id).unwrap().is_some());
        std::thread::sleep(Duration::from_millis(80));
        assert!(short.get(&id).unwrap().is_none(), "an idle session expires");
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
