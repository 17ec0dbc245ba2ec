//! Per-caller rate limits: a token bucket per API key, and per client address for
//! anonymous callers.
//!
//! A limit of N requests a minute is a bucket of N tokens refilled at N/60 a
//! second: a caller may spend a minute's allowance at once, then one request per
//! refill. An empty bucket answers how many whole seconds until the next token,
//! which becomes HIBP's `retry-after`.
//!
//! **Across replicas** (servers sharing a PostgreSQL catalog) a key's limit is
//! the key's, not each server's. Every server still answers from its own
//! buckets, with no database call on the request path; every sync interval it
//! reports what each key spent here and learns what the key spent at the other
//! replicas ([`ClusterSync`], one statement), and takes that from its own
//! bucket. Between two syncs a replica may spend only its *share* of the
//! tokens it saw: the tokens divided by the live replicas, so that replicas
//! that see the same bucket at the same time cannot together spend more than
//! it holds. What a replica cannot see is what the others spent since their
//! last report; what that lets it overspend is paid back (its bucket goes
//! below zero) before it admits again. docs/postgresql.md states the bound.
//! Anonymous callers' buckets (per client address group) are shared the same
//! way, under an id of their own: a keyed hash of the group, negative so that
//! it is never a key's id, so that the catalog holds no address. Wrong keys'
//! buckets stay per server.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use leakwatch_catalog::{RateUsage, HEARTBEAT_KEY};

/// Whose bucket a request draws from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LimitKey {
    Key(i64),
    Ip(IpAddr),
    /// An anonymous address group's bucket shared with other replicas, by
    /// its id ([`Limiter::clustered`] turns `Ip` into it).
    Group(i64),
    /// Wrong API keys presented from this client address group.
    FailedKeys(IpAddr),
}

/// A refused request: when to try again, and whether it is the first refusal
/// since the bucket last admitted one (the one worth an audit row when the
/// caller is anonymous: the rest of the run adds nothing but volume).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    pub retry_after: u64,
    pub first: bool,
}

#[derive(Debug)]
struct Bucket {
    /// May be below zero across replicas: what the others overspent is paid
    /// back before this replica admits again.
    tokens: f64,
    last: Instant,
    /// 0 for a bucket made by a sync before this replica served the key: its
    /// limit is learnt with its first request.
    per_minute: u32,
    refused: bool,
    /// Requests admitted here since the last report to the other replicas.
    unreported: u64,
    /// Tokens this replica may still spend before the next sync (infinite
    /// when the bucket is not shared).
    share: f64,
    /// Replicas the share was divided between.
    sharers: f64,
}

#[derive(Debug)]
struct Buckets {
    map: HashMap<LimitKey, Bucket>,
    /// Whether keys' buckets are shared with other replicas.
    clustered: bool,
    /// Replicas alive at the last sync, this one included.
    live: usize,
}

impl Default for Buckets {
    fn default() -> Self {
        Buckets { map: HashMap::new(), clustered: false, live: 1 }
    }
}

/// Buckets for every caller seen recently.
#[derive(Debug, Default)]
pub struct Limiter {
    buckets: Mutex<Buckets>,
    /// When clustered: the key of the ids of address groups' shared buckets.
    group_key: Option<[u8; 32]>,
}

/// The id of a bucket shared through the catalog: keys' ids are positive,
/// address groups' negative.
fn shared_key(id: i64) -> LimitKey {
    if id > 0 {
        LimitKey::Key(id)
    } else {
        LimitKey::Group(id)
    }
}

fn is_shared(key: &LimitKey) -> bool {
    matches!(key, LimitKey::Key(_) | LimitKey::Group(_))
}

/// More buckets than this and idle (full) ones are dropped; anonymous addresses
/// are unbounded in number, and a full bucket is the same as no bucket.
const MAX_BUCKETS: usize = 100_000;

impl Limiter {
    /// A limiter whose keys' and anonymous address groups' buckets are
    /// shared with other replicas through [`ClusterSync`]. Replicas name a
    /// group alike when they have the same `group_key`.
    pub fn clustered(group_key: [u8; 32]) -> Limiter {
        Limiter {
            buckets: Mutex::new(Buckets { clustered: true, ..Buckets::default() }),
            group_key: Some(group_key),
        }
    }

    /// The shared bucket of an anonymous address group: a keyed hash of the
    /// address, in the negative ids.
    fn group(key: &[u8; 32], ip: IpAddr) -> LimitKey {
        let bytes = match ip {
            IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
            IpAddr::V6(v6) => v6.octets(),
        };
        let hash = blake3::keyed_hash(key, &bytes);
        let n = u64::from_le_bytes(hash.as_bytes()[..8].try_into().expect("8 bytes")) >> 1;
        LimitKey::Group(-(n as i64) - 1)
    }

    /// Takes a token for `key` under a limit of `per_minute` (0: no limit).
    /// `Err(seconds)` when the bucket is empty: when to try again.
    #[cfg(test)]
    pub fn check(&self, key: LimitKey, per_minute: u32, now: Instant) -> Result<(), u64> {
        self.take(key, per_minute, now, true).map_err(|r| r.retry_after)
    }

    /// [`Limiter::check`], saying whether the refusal is the first of a run.
    pub fn refuse(&self, key: LimitKey, per_minute: u32, now: Instant) -> Result<(), Refusal> {
        self.take(key, per_minute, now, true)
    }

    /// Whether `key` has a token left, without taking it.
    pub fn peek(&self, key: LimitKey, per_minute: u32, now: Instant) -> Result<(), Refusal> {
        self.take(key, per_minute, now, false)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Buckets> {
        self.buckets.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn take(&self, key: LimitKey, per_minute: u32, now: Instant, spend: bool) -> Result<(), Refusal> {
        if per_minute == 0 {
            return Ok(());
        }
        let key = match (key, &self.group_key) {
            (LimitKey::Ip(ip), Some(group_key)) => Limiter::group(group_key, ip),
            (key, _) => key,
        };
        let capacity = f64::from(per_minute);
        let rate = capacity / 60.0;
        let mut guard = self.lock();
        let Buckets { map: buckets, clustered, live } = &mut *guard;
        let shared = *clustered && is_shared(&key);
        if buckets.len() >= MAX_BUCKETS && !buckets.contains_key(&key) {
            buckets.retain(|_, b| {
                let rate = f64::from(b.per_minute) / 60.0;
                b.unreported > 0
                    || b.tokens + now.saturating_duration_since(b.last).as_secs_f64() * rate
                        < f64::from(b.per_minute)
            });
            if buckets.len() >= MAX_BUCKETS / 2 {
                // Still crowded: so many addresses are active at once that keeping
                // their buckets would make every new one pay for a full scan. Forget
                // the anonymous ones (they may only read the public catalog); keys
                // keep theirs.
                buckets.retain(|k, _| matches!(k, LimitKey::Key(_)));
            }
        }
        if !spend && !buckets.contains_key(&key) {
            return Ok(());
        }
        let live = *live as f64;
        let bucket = buckets.entry(key).or_insert_with(|| Bucket {
            tokens: capacity,
            last: now,
            per_minute,
            refused: false,
            unreported: 0,
            share: if shared { capacity / live } else { f64::INFINITY },
            sharers: live,
        });
        if bucket.per_minute != per_minute {
            if bucket.per_minute == 0 {
                // Made by a sync, holding what the other replicas spent.
                bucket.tokens += capacity;
                bucket.share = (bucket.tokens / bucket.sharers).max(0.0);
            }
            // The key's limit changed (a new key table): keep what was spent.
            bucket.per_minute = per_minute;
            bucket.tokens = bucket.tokens.min(capacity);
        }
        let elapsed = now.saturating_duration_since(bucket.last).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(capacity);
        bucket.last = now;
        if bucket.tokens >= 1.0 && bucket.share >= 1.0 {
            if spend {
                bucket.tokens -= 1.0;
                bucket.share -= 1.0;
                if shared {
                    bucket.unreported += 1;
                }
                bucket.refused = false;
            }
            Ok(())
        } else {
            let first = !bucket.refused;
            bucket.refused = true;
            // Out of its share, a replica waits for a share of at least one
            // token: the bucket holding one per replica serving the key.
            let missing =
                if bucket.tokens >= 1.0 { bucket.sharers - bucket.tokens } else { 1.0 - bucket.tokens };
            Err(Refusal { retry_after: (missing / rate).ceil().max(1.0) as u64, first })
        }
    }

    /// What keys and address groups spent here since the last call: (id,
    /// requests).
    pub fn take_usage(&self) -> Vec<(i64, u64)> {
        let mut guard = self.lock();
        guard
            .map
            .iter_mut()
            .filter_map(|(key, b)| match key {
                LimitKey::Key(id) | LimitKey::Group(id) if b.unreported > 0 => {
                    Some((*id, std::mem::take(&mut b.unreported)))
                }
                _ => None,
            })
            .collect()
    }

    /// Gives back usage that [`Limiter::take_usage`] returned but that could
    /// not be reported: it goes with the next report.
    pub fn return_usage(&self, usage: &[(i64, u64)]) {
        let mut guard = self.lock();
        for (id, n) in usage {
            if let Some(b) = guard.map.get_mut(&shared_key(*id)) {
                b.unreported += n;
            }
        }
    }

    /// Takes what the other replicas spent from the shared buckets and deals
    /// out the shares until the next sync.
    fn merge(&self, view: &ClusterView, now: Instant) {
        let mut guard = self.lock();
        guard.live = view.live.max(1);
        let live = guard.live as f64;
        for (&id, &spent) in &view.spent_elsewhere {
            guard.map.entry(shared_key(id)).or_insert_with(|| Bucket {
                tokens: 0.0,
                last: now,
                per_minute: 0,
                refused: false,
                unreported: 0,
                share: 0.0,
                sharers: live,
            });
            let bucket = guard.map.get_mut(&shared_key(id)).expect("just inserted");
            bucket.tokens -= spent as f64;
        }
        for (key, bucket) in guard.map.iter_mut() {
            if !is_shared(key) {
                continue;
            }
            bucket.sharers = live;
            if bucket.per_minute == 0 {
                continue;
            }
            let capacity = f64::from(bucket.per_minute);
            let rate = capacity / 60.0;
            let elapsed = now.saturating_duration_since(bucket.last).as_secs_f64();
            bucket.tokens = (bucket.tokens + elapsed * rate).clamp(-capacity, capacity);
            bucket.last = now;
            bucket.share = (bucket.tokens / bucket.sharers).max(0.0);
        }
    }
}

/// What one exchange told about the other replicas.
#[derive(Debug, Default)]
struct ClusterView {
    /// Replicas alive, this one included.
    live: usize,
    /// Requests the other replicas admitted per key since the last exchange.
    spent_elsewhere: HashMap<i64, u64>,
}

/// A replica's side of the exchange: the counters it saw last, to turn the
/// others' totals into what they spent since.
#[derive(Debug)]
pub struct ClusterSync {
    /// This replica's name in the catalog.
    pub replica: String,
    /// (replica, key) -> (born_ms, spent) as last read, and when it last grew.
    seen: HashMap<(String, i64), (i64, i64, Option<Instant>)>,
    started: bool,
}

/// How long a counter that stopped growing is remembered: as long as the
/// catalog keeps its row.
const REMEMBER: Duration = Duration::from_secs(600);

impl ClusterSync {
    pub fn new(replica: String) -> ClusterSync {
        ClusterSync { replica, seen: HashMap::new(), started: false }
    }

    /// Applies the rows one exchange returned (the other replicas' counters
    /// updated recently) to `limiter`.
    pub fn apply(&mut self, limiter: &Limiter, rows: &[RateUsage], now: Instant) {
        let mut view = ClusterView { live: 1, ..ClusterView::default() };
        for row in rows {
            if row.key_id == HEARTBEAT_KEY {
                view.live += 1;
                continue;
            }
            let entry = self.seen.entry((row.replica.clone(), row.key_id));
            let spent = match entry {
                std::collections::hash_map::Entry::Occupied(mut seen) => {
                    let (born, before, _) = *seen.get();
                    let spent =
                        if born == row.born_ms { row.spent.saturating_sub(before) } else { row.spent };
                    let grew = if spent > 0 { Some(now) } else { seen.get().2 };
                    seen.insert((row.born_ms, row.spent, grew));
                    spent
                }
                std::collections::hash_map::Entry::Vacant(vacant) => {
                    // Counted before this replica started: its buckets start
                    // full, as a single server's do.
                    let spent = if self.started { row.spent } else { 0 };
                    vacant.insert((row.born_ms, row.spent, (row.spent > 0).then_some(now)));
                    spent
                }
            };
            if spent > 0 {
                *view.spent_elsewhere.entry(row.key_id).or_default() += spent as u64;
            }
        }
        self.started = true;
        // A row pruned and born again is counted whole.
        self.seen.retain(|_, (_, _, grew)| grew.is_some_and(|g| now.saturating_duration_since(g) < REMEMBER));
        limiter.merge(&view, now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minute_of_allowance_then_one_request_per_refill() {
        let limiter = Limiter::default();
        let t0 = Instant::now();
        let key = LimitKey::Key(1);
        for _ in 0..3 {
            limiter.check(key, 3, t0).unwrap();
        }
        assert_eq!(limiter.check(key, 3, t0), Err(20));
        assert_eq!(limiter.check(key, 3, t0 + Duration::from_secs(15)), Err(5));
        limiter.check(key, 3, t0 + Duration::from_secs(20)).unwrap();
        assert_eq!(limiter.check(key, 3, t0 + Duration::from_secs(20)), Err(20));
        // Other callers have their own buckets; 0 means no limit.
        limiter.check(LimitKey::Key(2), 3, t0).unwrap();
        limiter.check(LimitKey::Ip([127, 0, 0, 1].into()), 3, t0).unwrap();
        for _ in 0..1000 {
            limiter.check(LimitKey::Key(3), 0, t0).unwrap();
        }
    }

    #[test]
    fn idle_buckets_are_dropped_when_there_are_too_many() {
        let limiter = Limiter::default();
        let t0 = Instant::now();
        for i in 0..MAX_BUCKETS as i64 {
            limiter.check(LimitKey::Key(i), 60, t0).unwrap();
        }
        limiter.check(LimitKey::Key(-1), 60, t0 + Duration::from_secs(2)).unwrap();
        assert_eq!(limiter.buckets.lock().unwrap().map.len(), 1);
    }

    /// Two replicas exchanging through rows as the catalog returns them.
    struct Replica {
        limiter: Limiter,
        sync: ClusterSync,
        spent: HashMap<i64, i64>,
    }

    impl Replica {
        fn new(name: &str) -> Replica {
            Replica {
                limiter: Limiter::clustered([7; 32]),
                sync: ClusterSync::new(name.into()),
                spent: HashMap::new(),
            }
        }

        /// Reports its usage: its rows, as the other replica reads them.
        fn report(&mut self, key: i64) -> Vec<RateUsage> {
            for (id, n) in self.limiter.take_usage() {
                *self.spent.entry(id).or_default() += n as i64;
            }
            let row =
                |key_id, spent| RateUsage { replica: self.sync.replica.clone(), key_id, born_ms: 1, spent };
            vec![row(HEARTBEAT_KEY, 0), row(key, self.spent.get(&key).copied().unwrap_or(0))]
        }

        fn admitted(&self, key: i64, per_minute: u32, now: Instant, tries: usize) -> usize {
            (0..tries).filter(|_| self.limiter.check(LimitKey::Key(key), per_minute, now).is_ok()).count()
        }
    }

    fn exchange(a: &mut Replica, b: &mut Replica, key: i64, now: Instant) {
        let (from_a, from_b) = (a.report(key), b.report(key));
        a.sync.apply(&a.limiter, &from_b, now);
        b.sync.apply(&b.limiter, &from_a, now);
    }

    #[test]
    fn replicas_share_a_keys_bucket_through_their_exchanges() {
        let t0 = Instant::now();
        let (mut a, mut b) = (Replica::new("a"), Replica::new("b"));
        // First exchange: each learns the other is alive.
        exchange(&mut a, &mut b, 1, t0);
        // Between two exchanges each may spend half of a full bucket of 10.
        assert_eq!(a.admitted(1, 10, t0, 20), 5);
        assert_eq!(b.admitted(1, 10, t0, 20), 5);
        let refused = a.limiter.check(LimitKey::Key(1), 10, t0).unwrap_err();
        assert!(refused >= 1);
        // After the exchange both know the bucket is empty: nothing more until
        // it refills (6 s a token), and then one replica at a time.
        exchange(&mut a, &mut b, 1, t0);
        assert_eq!(a.admitted(1, 10, t0, 20) + b.admitted(1, 10, t0, 20), 0);
        let later = t0 + Duration::from_secs(12);
        exchange(&mut a, &mut b, 1, later);
        assert_eq!(a.admitted(1, 10, later, 20) + b.admitted(1, 10, later, 20), 2);
        // A key served by one replica only: half of what is left each
        // interval.
        let t1 = later + Duration::from_secs(60);
        assert_eq!(a.admitted(2, 10, t1, 20), 5);
        exchange(&mut a, &mut b, 2, t1);
        assert_eq!(a.admitted(2, 10, t1, 20), 2);
        exchange(&mut a, &mut b, 2, t1);
        assert_eq!(a.admitted(2, 10, t1, 20), 1);
    }

    #[test]
    fn replicas_share_an_address_groups_bucket_under_an_id_that_is_no_address() {
        let t0 = Instant::now();
        let (mut a, mut b) = (Replica::new("a"), Replica::new("b"));
        let ip: IpAddr = [192, 0, 2, 7].into();
        let LimitKey::Group(id) = Limiter::group(&[7; 32], ip) else { panic!("a group") };
        assert!(id < 0, "never a key's id");
        assert_ne!(Limiter::group(&[8; 32], ip), LimitKey::Group(id), "keyed");
        let admitted =
            |r: &Replica| (0..20).filter(|_| r.limiter.check(LimitKey::Ip(ip), 10, t0).is_ok()).count();
        exchange(&mut a, &mut b, id, t0);
        assert_eq!((admitted(&a), admitted(&b)), (5, 5));
        assert_eq!(a.limiter.take_usage(), vec![(id, 5)]);
        a.limiter.return_usage(&[(id, 5)]);
        exchange(&mut a, &mut b, id, t0);
        assert_eq!(admitted(&a) + admitted(&b), 0, "the bucket of 10 is spent across both");
        // Wrong keys' buckets stay per server.
        assert!(Limiter::clustered([7; 32]).take(LimitKey::FailedKeys(ip), 10, t0, true).is_ok());
    }

    #[test]
    fn what_the_other_replica_spent_is_paid_back_before_admitting_again() {
        let t0 = Instant::now();
        let (mut a, mut b) = (Replica::new("a"), Replica::new("b"));
        exchange(&mut a, &mut b, 1, t0);
        assert_eq!(b.admitted(1, 60, t0, 100), 30);
        // a has not served key 1: its bucket is made by the exchange and
        // learns its limit with the first request.
        exchange(&mut a, &mut b, 1, t0);
        assert_eq!(a.admitted(1, 60, t0, 100), 15);
        // Usage that could not be reported goes with the next report.
        let usage = a.limiter.take_usage();
        assert_eq!(usage, vec![(1, 15)]);
        a.limiter.return_usage(&usage);
        // 45 of 60 spent: each may spend half of the rest, and no more.
        exchange(&mut a, &mut b, 1, t0);
        assert_eq!((a.admitted(1, 60, t0, 100), b.admitted(1, 60, t0, 100)), (7, 7));
        exchange(&mut a, &mut b, 1, t0);
        assert_eq!(a.admitted(1, 60, t0, 100) + b.admitted(1, 60, t0, 100), 0);
    }
}
