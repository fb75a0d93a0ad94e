//! The live tail (`fulcrum lb logs [--follow]`): the last lines of each load balancer in a small
//! ring, and the followers that get new lines as the writer takes them off the queue.
//!
//! The writer hands over what it took in one drain as one batch (one lock, one message per
//! follower and load balancer); a follower that does not keep up loses batches, counted, and
//! never slows the writer down.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;

use super::Following;

/// Lines kept per load balancer for `fulcrum lb logs` without `--follow`.
pub const RECENT_LINES: usize = 100;
/// Batches that may wait for one follower before further ones are dropped for it.
const FOLLOWER_BACKLOG: usize = 256;

/// The recent lines and followers of every load balancer. Shared by the writer and the API.
#[derive(Debug)]
pub struct Tails {
    capacity: usize,
    by_lb: Mutex<HashMap<Arc<str>, LbTail>>,
}

#[derive(Debug, Default)]
struct LbTail {
    /// Each with its newline.
    recent: VecDeque<Arc<str>>,
    followers: Vec<mpsc::Sender<String>>,
}

/// What one drain of the queue brought, per load balancer: its lines in order, appended to
/// one string (no allocation per line; a busy node drains thousands at a time).
#[derive(Debug, Default)]
pub struct Batch {
    by_lb: HashMap<Arc<str>, Lines>,
}

#[derive(Debug, Default)]
struct Lines {
    text: String,
    /// Where each line starts in `text`.
    starts: Vec<usize>,
}

impl Batch {
    /// One line (with its newline) of `load_balancer`.
    pub fn push(&mut self, load_balancer: &Arc<str>, line: &str) {
        let lines = match self.by_lb.get_mut(load_balancer) {
            Some(lines) => lines,
            None => self.by_lb.entry(Arc::clone(load_balancer)).or_default(),
        };
        lines.starts.push(lines.text.len());
        lines.text.push_str(line);
    }

    pub fn is_empty(&self) -> bool {
        self.by_lb.is_empty()
    }
}

impl Lines {
    /// The last `n` lines, oldest first.
    fn last(&self, n: usize) -> impl Iterator<Item = &str> {
        let from = self.starts.len().saturating_sub(n);
        let ends = self.starts[from..]
            .iter()
            .skip(1)
            .copied()
            .chain(std::iter::once(self.text.len()));
        self.starts[from..]
            .iter()
            .zip(ends)
            .map(|(&start, end)| &self.text[start..end])
    }
}

/// A follower's end: the recent lines when it started, then each batch as it comes, until the
/// load balancer is deleted (the channel ends) or this is dropped (the load balancer stops
/// making records for it, through `Following`).
#[derive(Debug)]
pub struct Tail {
    /// The last lines before following started, oldest first.
    pub recent: String,
    pub lines: mpsc::Receiver<String>,
    _following: Following,
}

impl Tails {
    pub fn new() -> Arc<Tails> {
        Tails::with_capacity(RECENT_LINES)
    }

    /// Keeping `capacity` recent lines per load balancer.
    pub fn with_capacity(capacity: usize) -> Arc<Tails> {
        Arc::new(Tails {
            capacity,
            by_lb: Mutex::new(HashMap::new()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Arc<str>, LbTail>> {
        self.by_lb.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The last `max` lines of `load_balancer`, oldest first.
    pub fn recent(&self, load_balancer: &str, max: usize) -> String {
        self.lock()
            .get(load_balancer)
            .map(|t| t.recent_text(max))
            .unwrap_or_default()
    }

    /// Follows `load_balancer` from now on, with its last `max` lines: registered and read under
    /// one lock, so that no line is missed or shown twice. `following` keeps the load balancer
    /// making records while the tail lives.
    pub fn follow(&self, load_balancer: &str, max: usize, following: Following) -> Tail {
        let (tx, rx) = mpsc::channel(FOLLOWER_BACKLOG);
        let mut by_lb = self.lock();
        let tail = by_lb.entry(Arc::from(load_balancer)).or_default();
        tail.followers.push(tx);
        Tail {
            recent: tail.recent_text(max),
            lines: rx,
            _following: following,
        }
    }

    /// Keeps the last lines of a drain and sends them all to the followers of their load
    /// balancer.
    pub fn publish(&self, batch: Batch) {
        if batch.is_empty() {
            return;
        }
        let mut by_lb = self.lock();
        for (lb, lines) in batch.by_lb {
            let tail = by_lb.entry(Arc::clone(&lb)).or_default();
            for line in lines.last(self.capacity) {
                if tail.recent.len() == self.capacity {
                    tail.recent.pop_front();
                }
                tail.recent.push_back(line.into());
            }
            if tail.followers.is_empty() {
                continue;
            }
            // A follower gone (its client hung up) is forgotten; one behind loses this batch.
            tail.followers.retain(|f| match f.try_send(lines.text.clone()) {
                Ok(()) => true,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    tracing::debug!(load_balancer = %lb, "a live tail is behind: lines skipped");
                    true
                }
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            });
        }
    }

    /// Forgets load balancers that were deleted: their rings go and their followers' streams
    /// end.
    pub fn forget_except(&self, existing: &HashSet<&str>) {
        self.lock().retain(|lb, _| existing.contains(&**lb));
    }
}

impl LbTail {
    fn recent_text(&self, max: usize) -> String {
        let skip = self.recent.len().saturating_sub(max);
        self.recent.iter().skip(skip).map(|l| &**l).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access_log::LogTarget;

    fn batch(lines: &[(&str, &str)]) -> Batch {
        let mut b = Batch::default();
        for (lb, line) in lines {
            b.push(&Arc::from(*lb), line);
        }
        b
    }

    #[test]
    fn the_ring_keeps_the_last_lines() {
        let tails = Tails::with_capacity(2);
        tails.publish(batch(&[("a", "0\n")]));
        tails.publish(batch(&[
            ("a", "1\n"),
            ("b", "x\n"),
            ("a", "2\n"),
            ("a", "3\n"),
        ]));
        assert_eq!(tails.recent("a", 10), "2\n3\n");
        assert_eq!(tails.recent("a", 1), "3\n");
        assert_eq!(tails.recent("b", 10), "x\n");
        assert_eq!(tails.recent("c", 10), "");
    }

    #[test]
    fn followers_get_what_comes_after_the_recent_lines() {
        let tails = Tails::with_capacity(10);
        let target = LogTarget::new("a", false, None, None, None);
        tails.publish(batch(&[("a", "old\n")]));
        let mut tail = tails.follow("a", 10, target.follow());
        assert!(target.wanted(), "a follower makes records wanted");
        assert_eq!(tail.recent, "old\n");
        tails.publish(batch(&[
            ("a", "new 1\n"),
            ("b", "other\n"),
            ("a", "new 2\n"),
        ]));
        assert_eq!(tail.lines.try_recv().unwrap(), "new 1\nnew 2\n");
        assert!(tail.lines.try_recv().is_err());

        tails.forget_except(&HashSet::from(["b"]));
        assert!(matches!(
            tail.lines.try_recv(),
            Err(mpsc::error::TryRecvError::Disconnected)
        ));
        drop(tail);
        assert!(!target.wanted(), "the follower is gone");
    }

    #[test]
    fn a_follower_that_hung_up_is_forgotten() {
        let tails = Tails::with_capacity(10);
        let target = LogTarget::new("a", false, None, None, None);
        let tail = tails.follow("a", 0, target.follow());
        drop(tail);
        tails.publish(batch(&[("a", "1\n")]));
        assert!(tails.lock()["a"].followers.is_empty());
    }
}
