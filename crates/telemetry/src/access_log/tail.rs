//! The live tail (`fulcrum lb logs [--follow]`): the last lines of each load balancer in a small
//! ring, and the followers that get new lines as the writer takes them off the queue.
//!
//! The writer hands over what it took in one drain as one batch (one lock, one message per
//! follower and load balancer); a follower that does not keep up loses batches, counted, and
//! never slows the writer down.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;

use super::record::Lines;
use super::Following;

/// Lines kept per load balancer for `fulcrum lb logs` without `--follow`.
pub const RECENT_LINES: usize = 100;
/// Batches that may wait for one follower before further ones are dropped for it.
const FOLLOWER_BACKLOG: usize = 256;
/// A drain's buffer up to this size is taken into a ring whole; a larger one (a burst) is
/// copied from, so that a quiet load balancer's ring does not hold it.
const KEPT_BUFFER: usize = 1024 * 1024;

/// The recent lines and followers of every load balancer. Shared by the writer and the API.
#[derive(Debug)]
pub struct Tails {
    capacity: usize,
    by_lb: Mutex<HashMap<Arc<str>, LbTail>>,
}

#[derive(Debug, Default)]
struct LbTail {
    /// At least the last `capacity` lines (when there were as many), and maybe more before
    /// them.
    recent: Lines,
    followers: Vec<mpsc::Sender<String>>,
}

/// Text the writer made: UTF-8 by construction; checked all the same (the faster check first).
fn text(bytes: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(text) => Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(bytes),
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
            .map(|t| t.recent_text(max, self.capacity))
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
            recent: tail.recent_text(max, self.capacity),
            lines: rx,
            _following: following,
        }
    }

    /// Keeps the last lines of a drain and sends them all to the followers of their load
    /// balancer: `drained` has, per load balancer, the lines the drain took of it. A drain of
    /// at least as many lines as the ring keeps is taken whole: its buffer and the ring's are
    /// swapped (the writer gets the old one back to write into), so that a busy node's drains
    /// copy and allocate nothing here; fewer lines are copied behind those kept. Lines are
    /// checked as UTF-8 only when they are read, or sent to followers.
    pub fn publish<'a>(&self, drained: impl IntoIterator<Item = (&'a Arc<str>, &'a mut Lines)>) {
        let mut drained = drained
            .into_iter()
            .filter(|(_, lines)| !lines.is_empty())
            .peekable();
        if drained.peek().is_none() {
            return;
        }
        let mut by_lb = self.lock();
        for (lb, lines) in drained {
            let tail = match by_lb.get_mut(lb) {
                Some(tail) => tail,
                None => by_lb.entry(Arc::clone(lb)).or_default(),
            };
            if !tail.followers.is_empty() {
                let text = text(lines.as_bytes());
                // A follower gone (its client hung up) is forgotten; one behind loses this batch.
                tail.followers
                    .retain(|f| match f.try_send(text.clone().into_owned()) {
                        Ok(()) => true,
                        Err(mpsc::error::TrySendError::Full(_)) => {
                            tracing::debug!(load_balancer = %lb, "a live tail is behind: lines skipped");
                            true
                        }
                        Err(mpsc::error::TrySendError::Closed(_)) => false,
                    });
            }
            tail.keep(lines, self.capacity);
        }
    }

    /// Forgets load balancers that were deleted: their rings go and their followers' streams
    /// end.
    pub fn forget_except(&self, existing: &HashSet<&str>) {
        self.lock().retain(|lb, _| existing.contains(&**lb));
    }
}

impl LbTail {
    /// Keeps the last `capacity` lines of `lines` after those kept; `lines` is left with
    /// whatever the writer may clear and reuse.
    fn keep(&mut self, lines: &mut Lines, capacity: usize) {
        if lines.count() >= capacity && lines.capacity() <= KEPT_BUFFER {
            std::mem::swap(&mut self.recent, lines);
            return;
        }
        self.recent.append_last(lines, capacity);
        // Up to twice as many kept, so that lines move to the front once per `capacity`.
        if self.recent.count() >= 2 * capacity.max(1) {
            self.recent.keep_last(capacity);
        }
    }

    fn recent_text(&self, max: usize, capacity: usize) -> String {
        text(self.recent.last(max.min(capacity))).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access_log::LogTarget;

    /// What one drain took: the lines of each load balancer in order, each in its buffer.
    fn publish(tails: &Tails, lines: &[(&str, &str)]) {
        let mut drained: Vec<(Arc<str>, Lines)> = Vec::new();
        for (lb, line) in lines {
            let i = match drained.iter().position(|(l, _)| &**l == *lb) {
                Some(i) => i,
                None => {
                    drained.push((Arc::from(*lb), Lines::new()));
                    drained.len() - 1
                }
            };
            drained[i].1.push_text(line);
        }
        tails.publish(drained.iter_mut().map(|(lb, lines)| (&*lb, lines)));
    }

    #[test]
    fn the_ring_keeps_the_last_lines() {
        let tails = Tails::with_capacity(2);
        publish(&tails, &[("a", "0\n")]);
        publish(
            &tails,
            &[("a", "1\n"), ("b", "x\n"), ("a", "2\n"), ("a", "3\n")],
        );
        assert_eq!(tails.recent("a", 10), "2\n3\n");
        assert_eq!(tails.recent("a", 1), "3\n");
        assert_eq!(tails.recent("b", 10), "x\n");
        assert_eq!(tails.recent("c", 10), "");
    }

    /// Drains of fewer lines than the ring keeps and of more, in every order.
    #[test]
    fn small_and_large_drains_keep_the_last_lines() {
        let tails = Tails::with_capacity(3);
        let mut all: Vec<String> = Vec::new();
        for (n, batch) in [1, 2, 5, 1, 1, 3, 7, 1, 1, 1, 1, 1, 2, 2, 4]
            .into_iter()
            .enumerate()
        {
            let lines: Vec<String> = (0..batch).map(|i| format!("{n}.{i}\n")).collect();
            let drained: Vec<_> = lines.iter().map(|l| ("a", l.as_str())).collect();
            publish(&tails, &drained);
            all.extend(lines);
            let last = |k: usize| all[all.len().saturating_sub(k)..].concat();
            assert_eq!(tails.recent("a", 10), last(3), "after {n}");
            assert_eq!(tails.recent("a", 2), last(2), "after {n}");
        }
    }

    #[test]
    fn followers_get_what_comes_after_the_recent_lines() {
        let tails = Tails::with_capacity(10);
        let target = LogTarget::new("a", false, None, None, None);
        publish(&tails, &[("a", "old\n")]);
        let mut tail = tails.follow("a", 10, target.follow());
        assert!(target.wanted(), "a follower makes records wanted");
        assert_eq!(tail.recent, "old\n");
        publish(
            &tails,
            &[("a", "new 1\n"), ("b", "other\n"), ("a", "new 2\n")],
        );
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
        publish(&tails, &[("a", "1\n")]);
        assert!(tails.lock()["a"].followers.is_empty());
    }
}
