//! Who is signed in: sessions opened with an access key and its secret, kept in memory (a
//! restart signs everyone out), each with its CSRF token; and the brake on guessing secrets.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use fulcrum_control::access::KeyScope;

/// How long a session lasts from sign-in.
pub const SESSION_LIFETIME: Duration = Duration::from_secs(8 * 3600);
/// The session cookie's name.
pub const COOKIE: &str = "fulcrum_console";
/// Failed sign-ins allowed per client address within [`FAILURE_WINDOW`]...
const MAX_FAILURES: u32 = 5;
const FAILURE_WINDOW: Duration = Duration::from_secs(60);
/// ...and from every address together, so that many addresses do not multiply the guesses.
const MAX_FAILURES_ALL: u32 = 50;
/// Sessions kept at most; the oldest goes first.
const MAX_SESSIONS: usize = 1024;

#[derive(Debug, Clone)]
pub struct Session {
    pub access_key_id: String,
    pub scope: KeyScope,
    /// Sent back in every form; a change without it is refused.
    pub csrf: String,
    pub expires: Instant,
}

#[derive(Default)]
pub struct Sessions {
    open: Mutex<HashMap<String, Session>>,
    failures: Mutex<Failures>,
}

#[derive(Default)]
struct Failures {
    by_client: HashMap<IpAddr, (Instant, u32)>,
    all: (Option<Instant>, u32),
}

/// 32 random bytes, hex.
fn token() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

/// Compares two secrets in time that does not depend on where they differ.
pub fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Sessions {
    /// Opens a session; returns its token (the cookie's value).
    pub fn open(&self, access_key_id: String, scope: KeyScope) -> String {
        let id = token();
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        open.retain(|_, s| s.expires > now);
        if open.len() >= MAX_SESSIONS {
            if let Some(oldest) = open
                .iter()
                .min_by_key(|(_, s)| s.expires)
                .map(|(k, _)| k.clone())
            {
                open.remove(&oldest);
            }
        }
        open.insert(
            id.clone(),
            Session {
                access_key_id,
                scope,
                csrf: token(),
                expires: now + SESSION_LIFETIME,
            },
        );
        id
    }

    /// The live session a cookie names.
    pub fn get(&self, id: &str) -> Option<Session> {
        let open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.get(id).filter(|s| s.expires > Instant::now()).cloned()
    }

    pub fn close(&self, id: &str) {
        self.open
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
    }

    /// Ends every session of an access key that no longer signs in (revoked).
    pub fn close_key(&self, access_key_id: &str) {
        self.open
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|_, s| s.access_key_id != access_key_id);
    }

    /// `Err(seconds to wait)` when `client` (or everyone together) failed too often lately.
    pub fn may_try(&self, client: IpAddr) -> Result<(), u64> {
        let mut f = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let wait = |since: Instant| {
            FAILURE_WINDOW
                .saturating_sub(now.duration_since(since))
                .as_secs()
                .max(1)
        };
        if let (Some(since), n) = f.all {
            if now.duration_since(since) < FAILURE_WINDOW && n >= MAX_FAILURES_ALL {
                return Err(wait(since));
            }
        }
        f.by_client
            .retain(|_, (since, _)| now.duration_since(*since) < FAILURE_WINDOW);
        match f.by_client.get(&client) {
            Some((since, n)) if *n >= MAX_FAILURES => Err(wait(*since)),
            _ => Ok(()),
        }
    }

    pub fn failed(&self, client: IpAddr) {
        let mut f = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let entry = f.by_client.entry(client).or_insert((now, 0));
        entry.1 += 1;
        f.all = match f.all {
            (Some(since), n) if now.duration_since(since) < FAILURE_WINDOW => (Some(since), n + 1),
            _ => (Some(now), 1),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_that_fails_too_often_waits() {
        let s = Sessions::default();
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "127.0.0.2".parse().unwrap();
        for _ in 0..MAX_FAILURES {
            assert!(s.may_try(a).is_ok());
            s.failed(a);
        }
        let wait = s.may_try(a).unwrap_err();
        assert!((1..=60).contains(&wait), "{wait}");
        assert!(s.may_try(b).is_ok(), "another client is not held back");
    }

    #[test]
    fn sessions_open_and_close() {
        let s = Sessions::default();
        let id = s.open("AKIA1".into(), KeyScope::Admin);
        let session = s.get(&id).unwrap();
        assert_eq!(session.access_key_id, "AKIA1");
        assert_eq!(session.csrf.len(), 64);
        assert!(s.get("forged").is_none());
        s.close(&id);
        assert!(s.get(&id).is_none());
    }

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret(b"abc", b"abc"));
        assert!(!same_secret(b"abc", b"abd"));
        assert!(!same_secret(b"abc", b"abcd"));
    }
}
