//! Who holds a role of the fleet (the floating address): the node whose key, under a short
//! lease of its own, was created first. The others watch the key and take it the moment it goes
//! (its holder resigned, or died and its lease expired).
//!
//! A holder is told how long it may act as one: until a moment safely before its lease could
//! have expired in etcd, counted from when it *sent* its last renewal (etcd counts from when it
//! got it, later). A holder cut off from etcd therefore stops acting before etcd can give the
//! role to another node: never two holders.

use std::sync::Arc;
use std::time::Duration;

use etcd_client::{Compare, CompareOp, EventType, PutOptions, Txn, TxnOp, WatchOptions};
use tokio::sync::watch;
use tokio::time::Instant;

use super::{bounded, lock, Ctx};

/// The role's lease. etcd expires leases within about half a second of their TTL, so a dead
/// holder's role is free about 2.5 s after its last renewal.
pub(crate) const ROLE_TTL: Duration = Duration::from_secs(2);
/// How often a holder renews.
const RENEW_EVERY: Duration = Duration::from_millis(400);
/// A holder stops acting this long before its lease could expire: room for its clock and a
/// slow system call that adds or removes an address.
const SAFETY: Duration = Duration::from_millis(600);

/// Whether this node holds the role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leadership {
    /// Held; act as the holder until `until` unless told again before.
    Held {
        until: Instant,
    },
    NotHeld,
}

/// A node's candidacy for one role, run in the background until it resigns.
pub struct Campaign {
    leadership: watch::Receiver<Leadership>,
    resign: watch::Sender<bool>,
    done: std::sync::Mutex<Option<std::sync::mpsc::Receiver<()>>>,
}

impl Campaign {
    /// Tells every change of this node's leadership.
    pub fn leadership(&self) -> watch::Receiver<Leadership> {
        self.leadership.clone()
    }

    /// Gives the role up (its key goes at once, for another node to take) and stops running
    /// for it. Blocks for at most about a second.
    pub fn resign(&self) {
        self.resign.send_replace(true);
        if let Some(done) = lock(&self.done).take() {
            let _ = done.recv_timeout(Duration::from_secs(2));
        }
    }
}

pub(crate) fn start(
    ctx: Arc<Ctx>,
    handle: &tokio::runtime::Handle,
    role: &str,
    holder: &str,
) -> Campaign {
    let (leadership_tx, leadership) = watch::channel(Leadership::NotHeld);
    let (resign, resign_rx) = watch::channel(false);
    let (done_tx, done) = std::sync::mpsc::channel();
    let (role, holder) = (role.to_owned(), holder.to_owned());
    handle.spawn(async move {
        run(&ctx, &role, &holder, &leadership_tx, resign_rx).await;
        leadership_tx.send_replace(Leadership::NotHeld);
        let _ = done_tx.send(());
    });
    Campaign {
        leadership,
        resign,
        done: std::sync::Mutex::new(Some(done)),
    }
}

async fn run(
    ctx: &Ctx,
    role: &str,
    holder: &str,
    tx: &watch::Sender<Leadership>,
    mut resign: watch::Receiver<bool>,
) {
    while !*resign.borrow() {
        let result = run_once(ctx, role, holder, tx, &mut resign).await;
        tx.send_replace(Leadership::NotHeld);
        match result {
            Ok(()) => return,
            Err(reason) => {
                tracing::debug!(role, reason, "campaign interrupted; running again");
            }
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(300)) => {}
            _ = resign.changed() => {}
        }
    }
}

/// One lease's worth of candidacy: returns `Ok` when the node resigned, `Err` when the lease
/// or etcd was lost (the caller starts over with a new lease).
async fn run_once(
    ctx: &Ctx,
    role: &str,
    holder: &str,
    tx: &watch::Sender<Leadership>,
    resign: &mut watch::Receiver<bool>,
) -> Result<(), String> {
    let mut client = ctx.client().await.map_err(|e| e.to_string())?;
    let ttl = i64::try_from(ROLE_TTL.as_secs()).unwrap_or(2);
    let lease = bounded("granting a role's lease", client.lease_grant(ttl, None))
        .await
        .map_err(|e| e.to_string())?
        .id();
    let (mut keeper, mut acks) = bounded("renewing a role's lease", client.lease_keep_alive(lease))
        .await
        .map_err(|e| e.to_string())?;
    let key = ctx.key(role);
    let outcome = async {
        loop {
            let txn = Txn::new()
                .when([Compare::create_revision(key.clone(), CompareOp::Equal, 0)])
                .and_then([TxnOp::put(
                    key.clone(),
                    holder.as_bytes().to_vec(),
                    Some(PutOptions::new().with_lease(lease)),
                )])
                .or_else([TxnOp::get(key.clone(), None)]);
            let sent = Instant::now();
            let resp = bounded("running for a role", client.txn(txn))
                .await
                .map_err(|e| e.to_string())?;
            if resp.succeeded() {
                tracing::info!(event = "role_taken", role, holder, "this node holds {role}");
                tx.send_replace(Leadership::Held {
                    until: sent + ROLE_TTL - SAFETY,
                });
                // Hold: renew until the lease is lost or the node resigns.
                loop {
                    tokio::select! {
                        () = tokio::time::sleep(RENEW_EVERY) => {}
                        _ = resign.changed() => return Ok(()),
                    }
                    let sent = Instant::now();
                    keeper.keep_alive().await.map_err(|e| e.to_string())?;
                    match tokio::time::timeout(RENEW_EVERY, acks.message()).await {
                        Ok(Ok(Some(ack))) if ack.ttl() > 0 => {
                            tx.send_replace(Leadership::Held {
                                until: sent + ROLE_TTL - SAFETY,
                            });
                        }
                        _ => return Err(format!("the lease of {role} was not renewed")),
                    }
                }
            }
            // Held by another: wait for its key to go, keeping this node's lease alive.
            let revision = resp.header().map_or(0, |h| h.revision());
            let mut watch = bounded(
                "watching a role",
                client.watch(
                    key.clone(),
                    Some(WatchOptions::new().with_start_revision(revision + 1)),
                ),
            )
            .await
            .map_err(|e| e.to_string())?;
            'waiting: loop {
                tokio::select! {
                    message = watch.message() => {
                        let message = message.map_err(|e| e.to_string())?
                            .ok_or("etcd ended the watch of a role")?;
                        if message.canceled() {
                            return Err("etcd cancelled the watch of a role".into());
                        }
                        if message.events().iter().any(|e| e.event_type() == EventType::Delete) {
                            break 'waiting;
                        }
                    }
                    () = tokio::time::sleep(RENEW_EVERY) => {
                        keeper.keep_alive().await.map_err(|e| e.to_string())?;
                        match tokio::time::timeout(RENEW_EVERY, acks.message()).await {
                            Ok(Ok(Some(ack))) if ack.ttl() > 0 => {}
                            _ => return Err("a candidate's lease was not renewed".into()),
                        }
                    }
                    _ = resign.changed() => return Ok(()),
                }
            }
        }
    }
    .await;
    // Resigned or lost: the lease goes now, and with it the key if this node held it.
    let _ = bounded("resigning a role", client.lease_revoke(lease)).await;
    outcome
}
