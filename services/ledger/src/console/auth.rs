//! The console's login: the token, checked in constant time; failed tries limited per client
//! address; sessions that expire.
//!
//! A login (`POST /login`, or a `Bearer` token on the API) with a wrong token counts as a failure
//! of the client's address; after [`LoginPolicy::max_failures`] failures within
//! [`LoginPolicy::window`], every try from that address is answered 429 (with `Retry-After`),
//! the right token included, until the oldest failure leaves the window. The address is the TCP
//! peer's: behind a proxy every client shares the proxy's address (`X-Forwarded-For` is not
//! trusted). A successful login draws a random session id; the cookie carries it, the console
//! keeps only its digest, and it ends after [`LoginPolicy::session_ttl`] or at logout.

use sha2::{Digest, Sha256};
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How many failed logins an address may make, and how long a session lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginPolicy {
    /// Failed logins allowed per client address within `window`; the next try is refused.
    pub max_failures: usize,
    /// The sliding window over which failures are counted.
    pub window: Duration,
    /// A session's lifetime from its login.
    pub session_ttl: Duration,
}

impl Default for LoginPolicy {
    /// 5 failures per minute; sessions of 8 hours (a shift).
    fn default() -> Self {
        Self {
            max_failures: 5,
            window: Duration::from_secs(60),
            session_ttl: Duration::from_secs(8 * 3600),
        }
    }
}

/// Addresses tracked at most; while this many have failed within the window, an address not
/// among them is refused too (fail closed).
const MAX_ADDRESSES: usize = 10_000;
/// Sessions held at most; the oldest go first.
const MAX_SESSIONS: usize = 10_000;

/// The outcome of a token presented by a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    Accepted,
    Refused,
    /// Too many failures from this address: retry after this many seconds.
    Limited(u64),
}

fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// Equal-length byte strings compared in time independent of where they differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The token's digest, the failures per address and the live sessions.
pub(super) struct Gate {
    token_digest: [u8; 32],
    policy: LoginPolicy,
    failures: Mutex<HashMap<IpAddr, VecDeque<Instant>>>,
    /// Digest of the session id → when the session ends.
    sessions: Mutex<HashMap<[u8; 32], Instant>>,
}

impl Gate {
    pub(super) fn new(token: &str, policy: LoginPolicy) -> Self {
        Self {
            token_digest: sha256(&[token.as_bytes()]),
            policy,
            failures: Mutex::new(HashMap::new()),
            sessions: Mutex::new(HashMap::new()),
        }
    }

    /// Check `given` from `client` at `now`: refused while the address is limited, else
    /// compared with the token, a wrong one counted against the address.
    pub(super) fn attempt(&self, client: IpAddr, given: &str, now: Instant) -> Attempt {
        let window = self.policy.window;
        let mut failures = lock(&self.failures);
        let expired = |t: &Instant| now.saturating_duration_since(*t) >= window;
        if let Some(times) = failures.get_mut(&client) {
            while times.front().is_some_and(expired) {
                times.pop_front();
            }
        }
        if !failures.contains_key(&client) && failures.len() >= MAX_ADDRESSES {
            failures.retain(|_, times| times.back().is_some_and(|t| !expired(t)));
            if failures.len() >= MAX_ADDRESSES {
                return Attempt::Limited(window.as_secs().max(1));
            }
        }
        let times = failures.entry(client).or_default();
        if times.len() >= self.policy.max_failures {
            let retry = times
                .front()
                .map(|first| window.saturating_sub(now.saturating_duration_since(*first)))
                .unwrap_or(window);
            return Attempt::Limited(retry.as_secs_f64().ceil().max(1.0) as u64);
        }
        if same(&sha256(&[given.as_bytes()]), &self.token_digest) {
            failures.remove(&client);
            Attempt::Accepted
        } else {
            times.push_back(now);
            Attempt::Refused
        }
    }

    /// A new session from `now`: its id, for the cookie.
    pub(super) fn open_session(&self, now: Instant) -> String {
        let id = [uuid::Uuid::new_v4(), uuid::Uuid::new_v4()]
            .map(|u| u.simple().to_string())
            .concat();
        let mut sessions = lock(&self.sessions);
        sessions.retain(|_, ends| *ends > now);
        if sessions.len() >= MAX_SESSIONS {
            if let Some(oldest) = sessions
                .iter()
                .min_by_key(|(_, ends)| **ends)
                .map(|(k, _)| *k)
            {
                sessions.remove(&oldest);
            }
        }
        sessions.insert(sha256(&[id.as_bytes()]), now + self.policy.session_ttl);
        id
    }

    /// Whether session `id` is live at `now` (an ended one is forgotten).
    pub(super) fn session_live(&self, id: &str, now: Instant) -> bool {
        let key = sha256(&[id.as_bytes()]);
        let mut sessions = lock(&self.sessions);
        match sessions.get(&key) {
            Some(ends) if *ends > now => true,
            Some(_) => {
                sessions.remove(&key);
                false
            }
            None => false,
        }
    }

    /// End session `id`.
    pub(super) fn close_session(&self, id: &str) {
        lock(&self.sessions).remove(&sha256(&[id.as_bytes()]));
    }

    /// The session cookie's lifetime, seconds.
    pub(super) fn session_secs(&self) -> u64 {
        self.policy.session_ttl.as_secs()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate() -> Gate {
        Gate::new(
            "secret",
            LoginPolicy {
                max_failures: 3,
                window: Duration::from_secs(60),
                session_ttl: Duration::from_secs(10),
            },
        )
    }

    #[test]
    fn failures_limit_their_address_only_and_leave_the_window_in_time() {
        let g = gate();
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let t0 = Instant::now();
        for i in 0..3 {
            assert_eq!(
                g.attempt(a, "guess", t0 + Duration::from_secs(i)),
                Attempt::Refused
            );
        }
        let t = t0 + Duration::from_secs(10);
        assert_eq!(g.attempt(a, "secret", t), Attempt::Limited(50));
        assert_eq!(g.attempt(b, "secret", t), Attempt::Accepted);
        // The first failure leaves the window at t0 + 60 s: one more try, then limited again.
        let t = t0 + Duration::from_secs(60);
        assert_eq!(g.attempt(a, "guess", t), Attempt::Refused);
        assert_eq!(g.attempt(a, "secret", t), Attempt::Limited(1));
        let t = t0 + Duration::from_secs(62);
        assert_eq!(g.attempt(a, "secret", t), Attempt::Accepted);
        assert_eq!(
            g.attempt(a, "guess", t),
            Attempt::Refused,
            "a success clears the address's failures"
        );
    }

    #[test]
    fn sessions_end_at_their_time_or_at_logout() {
        let g = gate();
        let t0 = Instant::now();
        let s = g.open_session(t0);
        assert_eq!(s.len(), 64);
        assert!(g.session_live(&s, t0 + Duration::from_secs(9)));
        assert!(!g.session_live(&s, t0 + Duration::from_secs(10)));
        assert!(
            !g.session_live(&s, t0),
            "an ended session is forgotten, not revived"
        );
        let s2 = g.open_session(t0);
        assert_ne!(s, s2);
        g.close_session(&s2);
        assert!(!g.session_live(&s2, t0));
        assert!(!g.session_live("forged", t0));
    }
}
