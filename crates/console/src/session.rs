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
/// Sign-in attempts that may fail per client address within [`FAILURE_WINDOW`]. (No cap over
/// every address together: anyone could then lock the operators out. The secrets are 40
/// random characters; the brake is against a script, not the only defence.)
const MAX_FAILURES: u32 = 5;
const FAILURE_WINDOW: Duration = Duration::from_secs(60);
/// Sessions kept at most, and per access key (so that one key cannot push the others' out);
/// the oldest goes first.
const MAX_SESSIONS: usize = 1024;
const MAX_SESSIONS_PER_KEY: usize = 16;

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
    /// Attempts that failed, or are under way, by client: since when and how many.
    by_client: HashMap<IpAddr, (Instant, u32)>,
}

/// 32 random bytes, hex.
fn token() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

impl Sessions {
    /// Opens a session; returns its token (the cookie's value).
    pub fn open(&self, access_key_id: String, scope: KeyScope) -> String {
        let id = token();
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        open.retain(|_, s| s.expires > now);
        let of_key = open
            .values()
            .filter(|s| s.access_key_id == access_key_id)
            .count();
        if of_key >= MAX_SESSIONS_PER_KEY || open.len() >= MAX_SESSIONS {
            let oldest = open
                .iter()
                .filter(|(_, s)| of_key < MAX_SESSIONS_PER_KEY || s.access_key_id == access_key_id)
                .min_by_key(|(_, s)| s.expires)
                .map(|(k, _)| k.clone());
            if let Some(oldest) = oldest {
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

    /// Counts a sign-in attempt from `client` before it is checked, under one lock, so that
    /// attempts sent at once cannot all pass: `Err(seconds to wait)` when `client` has used up
    /// its attempts lately. A successful attempt is given back with [`Sessions::succeeded`].
    pub fn attempt(&self, client: IpAddr) -> Result<(), u64> {
        let mut f = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        f.by_client
            .retain(|_, (since, _)| now.duration_since(*since) < FAILURE_WINDOW);
        let entry = f.by_client.entry(client).or_insert((now, 0));
        if entry.1 >= MAX_FAILURES {
            let wait = FAILURE_WINDOW.saturating_sub(now.duration_since(entry.0));
            return Err(wait.as_secs().max(1));
        }
        entry.1 += 1;
        Ok(())
    }

    pub fn succeeded(&self, client: IpAddr) {
        let mut f = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(entry) = f.by_client.get_mut(&client) {
            entry.1 = entry.1.saturating_sub(1);
        }
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
            assert!(s.attempt(a).is_ok());
        }
        let wait = s.attempt(a).unwrap_err();
        assert!((1..=60).contains(&wait), "{wait}");
        assert!(s.attempt(b).is_ok(), "another client is not held back");
        s.succeeded(b);
        for _ in 0..MAX_FAILURES - 1 {
            assert!(s.attempt(b).is_ok(), "a success gives its attempt back");
        }
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
    fn one_key_cannot_push_out_the_others_sessions() {
        let s = Sessions::default();
        let admin = s.open("AKIAADMIN".into(), KeyScope::Admin);
        for _ in 0..100 {
            s.open("AKIAOTHER".into(), KeyScope::ReadOnly);
        }
        assert!(s.get(&admin).is_some());
    }
}
