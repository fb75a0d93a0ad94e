//! Waiting for a condition that has no readiness signal.

use std::future::Future;
use std::time::Duration;

use tokio::time::{timeout_at, Instant};

/// Polling interval of [`eventually`].
pub const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// Waits until `f` returns true, polling every 20 ms, up to `limit`; panics with `what` on timeout.
pub async fn eventually<F, Fut>(what: &str, limit: Duration, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Ok(true) = timeout_at(deadline, f()).await {
            return;
        }
        let now = Instant::now();
        if now >= deadline {
            panic!("timed out after {limit:?} waiting for: {what}");
        }
        // Last round: check once more exactly at the deadline.
        tokio::time::sleep_until((now + POLL_INTERVAL).min(deadline)).await;
    }
}
