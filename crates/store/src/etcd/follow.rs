//! The two background tasks of the etcd store: following etcd's changes into the mirror (and
//! noticing when etcd is lost and found again), and keeping this node's record under its lease.
//! etcd-client's watches and lease keep-alives do not survive a lost connection: both tasks
//! start over after a pause, the watch from the revision it had reached.

use std::sync::Arc;
use std::time::Duration;

use etcd_client::{PutOptions, WatchOptions};

use super::mirror::HEALTH;
use super::{bounded, lock, now, view_of, Ctx, NODES};

/// Pauses between attempts to reach etcd again: short first (a leader election is over in about
/// a second), then no more than this.
const RETRY_MIN: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(2);

/// A node's lease: its record outlives a crash by at most this long.
pub(crate) const LEASE_TTL_SECS: i64 = 6;
/// How often the lease is renewed and the record's heartbeat written.
const HEARTBEAT: Duration = Duration::from_secs(2);

pub(crate) async fn follow(ctx: Arc<Ctx>) {
    let mut read_all = false;
    let mut pause = RETRY_MIN;
    loop {
        let reason = follow_once(&ctx, &mut read_all, &mut pause).await;
        ctx.set_degraded(&reason);
        // A fresh client next time: the old one's channel may have given up on its endpoints
        // (a connection that broke mid-stream is not always retried).
        *lock(&ctx.client) = None;
        tracing::debug!(reason, "the etcd watch stopped; starting over");
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(RETRY_MAX);
    }
}

/// One watch, from connecting to its end; returns why it ended.
async fn follow_once(ctx: &Ctx, read_all: &mut bool, pause: &mut Duration) -> String {
    let client = match ctx.client().await {
        Ok(c) => c,
        Err(e) => return e.to_string(),
    };
    if *read_all {
        if let Err(e) = ctx.full_read().await {
            return e.to_string();
        }
        *read_all = false;
    }
    let start = lock(&ctx.mirror).revision + 1;
    let options = WatchOptions::new()
        .with_prefix()
        .with_start_revision(start)
        .with_progress_notify();
    let mut watcher = client
        .watch_client()
        .max_decoding_message_size(super::MAX_ANSWER);
    let mut stream = match bounded("watching", watcher.watch(ctx.key(""), Some(options))).await {
        Ok(s) => s,
        Err(e) => return e.to_string(),
    };
    let mut created = false;
    loop {
        let message = match stream.message().await {
            Ok(Some(m)) => m,
            Ok(None) => return "etcd ended the watch".into(),
            Err(e) => return format!("the watch broke: {e}"),
        };
        if message.canceled() {
            if message.compact_revision() > 0 {
                // What happened since `start` is gone from etcd's history: read it all again.
                *read_all = true;
                return format!(
                    "etcd compacted its history past revision {start} while this node was away; \
                     reading everything again"
                );
            }
            return format!("etcd cancelled the watch: {}", message.cancel_reason());
        }
        if !created {
            created = true;
            *pause = RETRY_MIN;
            ctx.set_ok();
        }
        let revision = message.header().map_or(0, |h| h.revision());
        if message.created() {
            // The header of the answer to the creation is etcd's revision now, not how far
            // events were sent: events from `start` on are still to come.
            continue;
        }
        if message.events().is_empty() {
            ctx.progress(revision);
        } else {
            ctx.apply_events(revision, message.events());
        }
    }
}

/// Keeps this node's record in etcd while one is set.
pub(crate) async fn register(ctx: Arc<Ctx>) {
    let mut wanted = ctx.node.subscribe();
    loop {
        if wanted.borrow_and_update().is_none() {
            if wanted.changed().await.is_err() {
                return;
            }
            continue;
        }
        if let Err(reason) = keep_registered(&ctx).await {
            tracing::debug!(reason, "the node's lease was lost; registering again");
            *lock(&ctx.lease) = None;
            tokio::time::sleep(RETRY_MAX / 2).await;
        }
    }
}

/// Grants a lease, writes the record under it, then renews it and rewrites the record every
/// heartbeat and whenever it changes. Returns when the lease is lost (or the node leaves).
async fn keep_registered(ctx: &Ctx) -> Result<(), String> {
    let mut client = ctx.client().await.map_err(|e| e.to_string())?;
    let lease = bounded(
        "granting the node's lease",
        client.lease_grant(LEASE_TTL_SECS, None),
    )
    .await
    .map_err(|e| e.to_string())?
    .id();
    *lock(&ctx.lease) = Some(lease);
    let (mut keeper, mut renewals) =
        bounded("renewing the node's lease", client.lease_keep_alive(lease))
            .await
            .map_err(|e| e.to_string())?;
    let mut wanted = ctx.node.subscribe();
    let mut nodes = ctx.nodes_seen.subscribe();
    let mut health_written: Option<Vec<u8>> = None;
    let mut beat = tokio::time::interval(HEARTBEAT);
    loop {
        tokio::select! {
            changed = nodes.changed() => {
                if changed.is_err() {
                    return Ok(());
                }
                // Only a record that is gone is written again: while two processes of one
                // node overlap (an upgrade), each rewriting what the other wrote would never end.
                let gone = wanted.borrow().as_ref().is_some_and(|r| {
                    let mirror = lock(&ctx.mirror);
                    !mirror.entries.contains_key(&format!("{NODES}{}", r.id))
                        || !mirror.entries.contains_key(&format!("{HEALTH}{}", r.id))
                });
                if gone {
                    health_written = None;
                }
                if !gone {
                    continue;
                }
            }
            _ = beat.tick() => {
                keeper.keep_alive().await.map_err(|e| e.to_string())?;
                match tokio::time::timeout(HEARTBEAT, renewals.message()).await {
                    Ok(Ok(Some(r))) if r.ttl() > 0 => {}
                    _ => return Err("the lease was not renewed".into()),
                }
            }
            changed = wanted.changed() => {
                if changed.is_err() {
                    return Ok(());
                }
            }
        }
        let Some(mut record) = wanted.borrow_and_update().clone() else {
            return Ok(());
        };
        if *lock(&ctx.lease) != Some(lease) {
            // `leave` revoked it.
            return Ok(());
        }
        record.heartbeat = now();
        record.view = view_of(&ctx.health());
        // The instances' health (about 240 bytes an instance) is written only when it changed;
        // the record itself, a few hundred bytes, every heartbeat.
        let health =
            serde_json::to_vec(&std::mem::take(&mut record.health)).map_err(|e| e.to_string())?;
        if health_written.as_ref() != Some(&health) {
            bounded(
                "writing the node's view of the instances",
                client.put(
                    ctx.key(&format!("{HEALTH}{}", record.id)),
                    health.clone(),
                    Some(PutOptions::new().with_lease(lease)),
                ),
            )
            .await
            .map_err(|e| e.to_string())?;
            health_written = Some(health);
        }
        let value = serde_json::to_vec(&record).map_err(|e| e.to_string())?;
        bounded(
            "writing the node's record",
            client.put(
                ctx.key(&format!("{NODES}{}", record.id)),
                value,
                Some(PutOptions::new().with_lease(lease)),
            ),
        )
        .await
        .map_err(|e| e.to_string())?;
    }
}
