//! The fleet's store in etcd. Every key lives under one prefix (so two fleets can share an
//! etcd): `state` (the configuration's JSON, without keys; its revision is etcd's mod_revision
//! of this key), `keys/ID` (each certificate's private key, sealed), `access-keys/ID` (sealed
//! secrets), `secrets/NAME` (node secrets, sealed), `key-check` (the master key's check value),
//! `nodes/ID` and `health/ID` (each live node's record, and its view of the instances, written
//! only when it changes; under the node's lease) and `roles/NAME` (the holder of a role such as
//! the floating address, under the holder's lease).
//!
//! Reads never go to etcd: a watch keeps a copy of the prefix in the node (`mirror.rs`), resumed
//! from the last revision it saw after etcd comes back and read again in full when that
//! revision was compacted. Writes are etcd transactions that compare the revision they were
//! made from. The client runs on a small runtime of its own, so the store's methods can be
//! called from any thread, as the SQLite store's are.

mod access_keys;
mod cache;
mod config;
mod election;
mod follow;
mod mirror;

pub use config::EtcdConfig;
pub use election::{Campaign, Leadership};

use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use etcd_client::{Client, Compare, CompareOp, GetOptions, Txn, TxnOp, TxnOpResponse};
use tokio::runtime::Runtime;
use tokio::sync::watch;

use crate::access_keys::{AccessKeyInfo, KeyScope, Revocation, StoredAccessKey};
use crate::codec::{self, Encoded};
use crate::error::StoreError;
use crate::fleet::{NodeRecord, NodeView};
use crate::{Shared, StoreHealth};

use access_keys::AccessKeyValue;
use mirror::{Change, Entry, Mirror, Touched, ACCESS_KEYS, KEYS, KEY_CHECK, NODES, SECRETS, STATE};

/// The prefix when none is given.
pub const DEFAULT_PREFIX: &str = "/fulcrum/";
/// The node's last copy of the fleet's keys, in its data dir.
pub const CACHE_FILE: &str = "etcd-cache.json";

/// How long one request to etcd may take before the node calls etcd unreachable.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);
/// How long opening waits for etcd before starting from the local copy.
const OPEN_TIMEOUT: Duration = Duration::from_secs(4);
/// How long a write waits for the watch to bring it back before reading it directly.
const SEEN_TIMEOUT: Duration = Duration::from_secs(1);
/// The largest answer read from etcd: a full read of a large fleet is one answer (gRPC's own
/// default, 4 MiB, stopped a fleet of a few thousand load balancers from starting).
pub(crate) const MAX_ANSWER: usize = 256 << 20;

/// What the store's methods and its background tasks share.
pub(crate) struct Ctx {
    config: EtcdConfig,
    shared: Arc<Shared>,
    client: Mutex<Option<Client>>,
    mirror: Mutex<Mirror>,
    /// The revision the mirror is complete up to, for writers waiting to see their write.
    seen: watch::Sender<i64>,
    status: Mutex<StoreHealth>,
    cache_path: PathBuf,
    /// The record this node keeps under its lease (`None`: not registered).
    node: watch::Sender<Option<NodeRecord>>,
    /// Counts the batches of changes to the nodes' records, so that a node whose record went
    /// (another process of the same node revoked the lease it was last written under: an
    /// upgrade) writes it again at once.
    nodes_seen: watch::Sender<u64>,
    lease: Mutex<Option<i64>>,
}

pub(crate) struct Etcd {
    runtime: Option<Runtime>,
    ctx: Arc<Ctx>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// An etcd error as the store reports it: anything that looks like a lost connection is
/// `Unavailable` (the API answers ServiceUnavailable, which clients retry).
fn classify(context: &str, e: etcd_client::Error) -> StoreError {
    use etcd_client::Error as E;
    let unavailable = match &e {
        E::TransportError(_) | E::IoError(_) => true,
        E::GRpcStatus(status) => matches!(
            status.code(),
            tonic::Code::Unavailable
                | tonic::Code::DeadlineExceeded
                | tonic::Code::Cancelled
                | tonic::Code::Unknown
                | tonic::Code::Aborted
        ),
        _ => false,
    };
    if unavailable {
        StoreError::Unavailable(format!("etcd did not answer while {context}: {e}"))
    } else {
        StoreError::Etcd {
            context: context.to_owned(),
            cause: e.to_string(),
        }
    }
}

/// Bounds a request to etcd.
async fn bounded<T>(
    context: &str,
    fut: impl Future<Output = Result<T, etcd_client::Error>>,
) -> Result<T, StoreError> {
    match tokio::time::timeout(REQUEST_TIMEOUT, fut).await {
        Ok(result) => result.map_err(|e| classify(context, e)),
        Err(_) => Err(StoreError::Unavailable(format!(
            "etcd did not answer within {}s while {context}",
            REQUEST_TIMEOUT.as_secs()
        ))),
    }
}

impl Ctx {
    fn key(&self, name: &str) -> Vec<u8> {
        format!("{}{name}", self.config.prefix).into_bytes()
    }

    fn describe(&self) -> String {
        format!(
            "etcd at {} (prefix {})",
            self.config.endpoints.join(","),
            self.config.prefix
        )
    }

    /// The client, connecting first if there is none yet (etcd with authentication refuses a
    /// connection while it is down, so this is retried until it works).
    async fn client(&self) -> Result<Client, StoreError> {
        if let Some(client) = lock(&self.client).clone() {
            return Ok(client);
        }
        let options = self.config.options()?;
        let client = bounded(
            "connecting",
            Client::connect(self.config.uris(), Some(options)),
        )
        .await?;
        *lock(&self.client) = Some(client.clone());
        Ok(client)
    }

    fn set_ok(&self) {
        let mut status = lock(&self.status);
        if *status != StoreHealth::Ok {
            tracing::info!(event = "store_reachable", store = %self.describe(), revision = lock(&self.mirror).revision, "etcd is reachable again; changes are accepted");
            *status = StoreHealth::Ok;
        }
    }

    fn set_degraded(&self, reason: &str) {
        let mut status = lock(&self.status);
        if *status == StoreHealth::Ok {
            tracing::warn!(event = "store_unreachable", store = %self.describe(), reason, "lost etcd; serving the last snapshot and refusing changes until it is back");
            *status = StoreHealth::Degraded {
                reason: reason.to_owned(),
                since: now(),
            };
        }
    }

    fn health(&self) -> StoreHealth {
        lock(&self.status).clone()
    }

    fn ensure_reachable(&self) -> Result<(), StoreError> {
        match self.health() {
            StoreHealth::Ok => Ok(()),
            StoreHealth::Degraded { reason, since } => Err(StoreError::Unavailable(format!(
                "etcd has been unreachable for {}s ({reason}); this node serves its last \
                 snapshot and takes changes again once etcd is back",
                now().saturating_sub(since)
            ))),
        }
    }

    /// Reads every key under the prefix at one revision and makes it the mirror.
    async fn full_read(&self) -> Result<(), StoreError> {
        let mut kv = self
            .client()
            .await?
            .kv_client()
            .max_decoding_message_size(MAX_ANSWER);
        let mut resp = bounded(
            "reading the fleet's keys",
            kv.get(self.key(""), Some(GetOptions::new().with_prefix())),
        )
        .await?;
        let revision = resp.header().map_or(0, |h| h.revision());
        let prefix_len = self.config.prefix.len();
        let mut entries = BTreeMap::new();
        for kv in resp.take_kvs() {
            let mod_revision = kv.mod_revision();
            let (key, value) = kv.into_key_value();
            if let Ok(name) = String::from_utf8(key[prefix_len..].to_vec()) {
                entries.insert(
                    name,
                    Entry {
                        value,
                        mod_revision,
                    },
                );
            }
        }
        let touched = lock(&self.mirror).replace(revision, entries);
        self.after_change(touched);
        Ok(())
    }

    /// Applies one batch of watch events.
    fn apply_events(&self, revision: i64, events: &[etcd_client::Event]) {
        let prefix_len = self.config.prefix.len();
        let changes = events
            .iter()
            .filter_map(|ev| {
                let kv = ev.kv()?;
                let name = String::from_utf8(kv.key().get(prefix_len..)?.to_vec()).ok()?;
                Some(match ev.event_type() {
                    etcd_client::EventType::Put => Change::Put {
                        name,
                        entry: Entry {
                            value: kv.value().to_vec(),
                            mod_revision: kv.mod_revision(),
                        },
                    },
                    etcd_client::EventType::Delete => Change::Delete {
                        name,
                        revision: kv.mod_revision(),
                    },
                })
            })
            .collect();
        let touched = lock(&self.mirror).apply(revision, changes);
        self.after_change(touched);
    }

    /// Notes progress without events (etcd's progress notifications).
    fn progress(&self, revision: i64) {
        let mut mirror = lock(&self.mirror);
        mirror.revision = mirror.revision.max(revision);
        let revision = mirror.revision;
        drop(mirror);
        self.seen.send_replace(revision);
    }

    /// After the mirror changed: a new snapshot for the data plane and a new local copy when the
    /// configuration moved, and the writers waiting for their revision told.
    fn after_change(&self, touched: Touched) {
        let mirror = lock(&self.mirror);
        let revision = mirror.revision;
        if touched.config {
            match mirror.snapshot(self.shared.sealer(), &self.describe()) {
                Ok(snapshot) => {
                    self.shared.publish(snapshot);
                }
                // Keep serving the last good snapshot; say why loudly.
                Err(e) => {
                    tracing::error!(error = %e, "the state in etcd cannot be read; keeping the last good one")
                }
            }
            if let Err(e) = cache::save(&self.cache_path, &self.config.prefix, &mirror) {
                tracing::warn!(error = %e, "cannot write the local copy of etcd's keys");
            }
        }
        drop(mirror);
        self.seen.send_replace(revision);
        if touched.nodes {
            self.nodes_seen.send_modify(|n| *n += 1);
        }
    }

    /// Waits until the mirror has seen `revision` (the watch brings a write back within
    /// milliseconds); reads everything when the watch is slow or broken.
    async fn wait_seen(&self, revision: i64) -> Result<(), StoreError> {
        let mut rx = self.seen.subscribe();
        let seen = tokio::time::timeout(SEEN_TIMEOUT, rx.wait_for(|r| *r >= revision))
            .await
            .is_ok_and(|r| r.is_ok());
        if !seen {
            self.full_read().await?;
        }
        Ok(())
    }

    /// Checks the master key against the fleet's check value, storing one first on a new fleet.
    async fn check_master_key(&self) -> Result<(), StoreError> {
        let existing = lock(&self.mirror).entries.get(KEY_CHECK).cloned();
        let sealed = match existing {
            Some(e) => e.value,
            None => {
                let fresh = codec::seal_key_check(self.shared.sealer())?;
                self.put_if_absent(KEY_CHECK, fresh).await?
            }
        };
        codec::check_master_key(self.shared.sealer(), &sealed, &self.describe())
    }

    /// Puts `value` at `name` unless something is there; returns what is there after.
    async fn put_if_absent(&self, name: &str, value: Vec<u8>) -> Result<Vec<u8>, StoreError> {
        let mut client = self.client().await?;
        let key = self.key(name);
        let txn = Txn::new()
            .when([Compare::create_revision(key.clone(), CompareOp::Equal, 0)])
            .and_then([TxnOp::put(key.clone(), value.clone(), None)])
            .or_else([TxnOp::get(key, None)]);
        let resp = bounded(&format!("storing {name}"), client.txn(txn)).await?;
        let revision = resp.header().map_or(0, |h| h.revision());
        let stored = if resp.succeeded() {
            value
        } else {
            first_get_value(&resp.op_responses()).ok_or_else(|| {
                StoreError::Corrupt(format!("{name} vanished from {}", self.describe()))
            })?
        };
        self.wait_seen(revision).await?;
        Ok(stored)
    }

    async fn commit(&self, old_revision: u64, new: Encoded) -> Result<u64, StoreError> {
        let mut client = self.client().await?;
        let state_key = self.key(STATE);
        let expected = i64::try_from(old_revision)
            .map_err(|_| StoreError::Corrupt(format!("revision {old_revision} is out of range")))?;
        let mut ops = vec![TxnOp::put(state_key.clone(), new.json.into_bytes(), None)];
        for (id, sealed) in new.put_keys {
            ops.push(TxnOp::put(self.key(&format!("{KEYS}{id}")), sealed, None));
        }
        for id in new.delete_keys {
            ops.push(TxnOp::delete(self.key(&format!("{KEYS}{id}")), None));
        }
        let txn = Txn::new()
            .when([Compare::mod_revision(
                state_key.clone(),
                CompareOp::Equal,
                expected,
            )])
            .and_then(ops)
            .or_else([TxnOp::get(state_key, None)]);
        let resp = bounded("committing a change", client.txn(txn)).await?;
        let revision = resp.header().map_or(0, |h| h.revision());
        if !resp.succeeded() {
            let found = resp
                .op_responses()
                .into_iter()
                .find_map(|r| match r {
                    TxnOpResponse::Get(g) => g.kvs().first().map(|kv| kv.mod_revision()),
                    _ => None,
                })
                .unwrap_or(0);
            return Err(StoreError::Conflict {
                place: self.describe(),
                expected: old_revision,
                found: u64::try_from(found).unwrap_or(0),
            });
        }
        self.wait_seen(revision).await?;
        u64::try_from(revision)
            .map_err(|_| StoreError::Corrupt(format!("etcd answered revision {revision}")))
    }
}

fn first_get_value(responses: &[TxnOpResponse]) -> Option<Vec<u8>> {
    responses.iter().find_map(|r| match r {
        TxnOpResponse::Get(g) => g.kvs().first().map(|kv| kv.value().to_vec()),
        _ => None,
    })
}

impl Etcd {
    pub(crate) fn open(
        data_dir: &Path,
        config: EtcdConfig,
        shared: Arc<Shared>,
    ) -> Result<Etcd, StoreError> {
        if config.endpoints.is_empty() {
            return Err(StoreError::Etcd {
                context: "opening the store".into(),
                cause: "no etcd endpoint given".into(),
            });
        }
        let mut config = config;
        if !config.prefix.ends_with('/') {
            config.prefix.push('/');
        }
        // Two threads: the client's I/O never waits behind a caller blocked on it.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("fulcrum-etcd")
            .enable_all()
            .build()
            .map_err(StoreError::io(data_dir))?;
        let (seen, _) = watch::channel(0);
        let (node, _) = watch::channel(None);
        let (nodes_seen, _) = watch::channel(0);
        let ctx = Arc::new(Ctx {
            config,
            shared,
            client: Mutex::new(None),
            mirror: Mutex::new(Mirror::default()),
            seen,
            status: Mutex::new(StoreHealth::Ok),
            cache_path: data_dir.join(CACHE_FILE),
            node,
            nodes_seen,
            lease: Mutex::new(None),
        });
        let etcd = Etcd {
            runtime: Some(runtime),
            ctx: ctx.clone(),
        };
        let first = etcd.run({
            let ctx = ctx.clone();
            async move {
                match tokio::time::timeout(OPEN_TIMEOUT, ctx.full_read()).await {
                    Ok(result) => result,
                    Err(_) => Err(StoreError::Unavailable(format!(
                        "etcd did not answer within {}s",
                        OPEN_TIMEOUT.as_secs()
                    ))),
                }?;
                ctx.check_master_key().await
            }
        })?;
        match first {
            Ok(()) => {}
            Err(StoreError::Unavailable(reason)) => etcd.start_from_cache(&reason)?,
            Err(e) => return Err(e),
        }
        let handle = etcd.handle();
        handle.spawn(follow::follow(ctx.clone()));
        handle.spawn(follow::register(ctx));
        Ok(etcd)
    }

    /// Starts from `DIR/etcd-cache.json` because etcd cannot be reached.
    fn start_from_cache(&self, reason: &str) -> Result<(), StoreError> {
        let ctx = &self.ctx;
        let Some(copy) = cache::load(&ctx.cache_path, &ctx.config.prefix)? else {
            return Err(StoreError::Unavailable(format!(
                "cannot reach {} ({reason}) and there is no local copy in {} to start from",
                ctx.describe(),
                ctx.cache_path.display()
            )));
        };
        let sealed_check = copy.entries.get(KEY_CHECK).map(|e| e.value.clone());
        let sealed_check = sealed_check.ok_or_else(|| {
            StoreError::Corrupt(format!(
                "{} has no master key check value",
                ctx.cache_path.display()
            ))
        })?;
        codec::check_master_key(
            ctx.shared.sealer(),
            &sealed_check,
            &ctx.cache_path.display().to_string(),
        )?;
        *lock(&ctx.mirror) = Mirror::default();
        let touched = lock(&ctx.mirror).replace(copy.revision, copy.entries);
        ctx.set_degraded(reason);
        ctx.after_change(touched);
        tracing::warn!(
            store = %ctx.describe(),
            cache = %ctx.cache_path.display(),
            revision = copy.revision,
            "etcd is unreachable; serving the local copy of revision {} until it is back",
            copy.revision
        );
        Ok(())
    }

    fn handle(&self) -> &tokio::runtime::Handle {
        self.runtime
            .as_ref()
            .expect("the runtime lives as long as the store")
            .handle()
    }

    /// Runs `fut` on the client's runtime and waits for it, from any thread.
    fn run<T: Send + 'static>(
        &self,
        fut: impl Future<Output = T> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.handle().spawn(async move {
            let _ = tx.send(fut.await);
        });
        rx.recv()
            .map_err(|_| StoreError::Unavailable("the etcd client stopped".into()))
    }

    pub(crate) fn describe(&self) -> String {
        self.ctx.describe()
    }

    pub(crate) fn health(&self) -> StoreHealth {
        self.ctx.health()
    }

    pub(crate) fn commit(&self, old_revision: u64, new: &Encoded) -> Result<u64, StoreError> {
        self.ctx.ensure_reachable()?;
        let (ctx, new) = (self.ctx.clone(), new.clone());
        self.run(async move { ctx.commit(old_revision, new).await })?
    }

    pub(crate) fn resync(&self) -> Result<(), StoreError> {
        let ctx = self.ctx.clone();
        self.run(async move { ctx.full_read().await })?
    }

    pub(crate) fn insert_access_key(&self, key: &StoredAccessKey) -> Result<(), StoreError> {
        self.ctx.ensure_reachable()?;
        let ctx = self.ctx.clone();
        let key = key.clone();
        let name = ctx.key(&format!("{ACCESS_KEYS}{}", key.info.id));
        let created = self.run(async move {
            ctx.put_access_key(
                key,
                vec![Compare::create_revision(name, CompareOp::Equal, 0)],
            )
            .await
        })??;
        if created {
            Ok(())
        } else {
            Err(StoreError::Corrupt(
                "an access key with this id exists already".into(),
            ))
        }
    }

    pub(crate) fn active_access_key(&self, id: &str) -> Option<(Vec<u8>, KeyScope)> {
        let mirror = lock(&self.ctx.mirror);
        let entry = mirror.entries.get(&format!("{ACCESS_KEYS}{id}"))?;
        let key = AccessKeyValue::parse(id, &entry.value)?;
        if !key.info.active {
            return None;
        }
        Some((key.sealed_secret?, key.info.scope))
    }

    pub(crate) fn list_access_keys(&self) -> Vec<AccessKeyInfo> {
        let mirror = lock(&self.ctx.mirror);
        let mut keys: Vec<AccessKeyInfo> = mirror
            .under(ACCESS_KEYS)
            .filter_map(|(id, e)| AccessKeyValue::parse(id, &e.value))
            .map(|k| k.info)
            .collect();
        keys.sort_by(|a, b| (a.created, &a.id).cmp(&(b.created, &b.id)));
        keys
    }

    pub(crate) fn revoke_access_key(&self, id: &str) -> Result<Revocation, StoreError> {
        self.ctx.ensure_reachable()?;
        let ctx = self.ctx.clone();
        let id = id.to_owned();
        self.run(async move { ctx.revoke(&id).await })?
    }

    pub(crate) fn node_secret(&self, name: &str) -> Option<Vec<u8>> {
        lock(&self.ctx.mirror)
            .entries
            .get(&format!("{SECRETS}{name}"))
            .map(|e| e.value.clone())
    }

    pub(crate) fn insert_node_secret(
        &self,
        name: &str,
        sealed: &[u8],
    ) -> Result<Vec<u8>, StoreError> {
        self.ctx.ensure_reachable()?;
        let ctx = self.ctx.clone();
        let name = format!("{SECRETS}{name}");
        let sealed = sealed.to_vec();
        self.run(async move { ctx.put_if_absent(&name, sealed).await })?
    }

    /// The live nodes' records, as this node last saw them, each with its view of the
    /// instances.
    pub(crate) fn fleet(&self) -> Vec<NodeRecord> {
        let mirror = lock(&self.ctx.mirror);
        mirror
            .under(NODES)
            .filter_map(|(id, e)| {
                let mut record: NodeRecord = serde_json::from_slice(&e.value).ok()?;
                if let Some(health) = mirror.entries.get(&format!("{}{id}", mirror::HEALTH)) {
                    record.health = serde_json::from_slice(&health.value).unwrap_or_default();
                }
                Some(record)
            })
            .collect()
    }

    /// Keeps `record` in etcd under this node's lease (replacing what it kept before).
    pub(crate) fn register(&self, record: NodeRecord) {
        self.ctx.node.send_replace(Some(record));
    }

    /// Runs for `role` (kept under `roles/`) as `holder`, in the background.
    pub(crate) fn campaign(&self, role: &str, holder: &str) -> Campaign {
        election::start(
            self.ctx.clone(),
            self.handle(),
            &format!("{}{role}", mirror::ROLES),
            holder,
        )
    }

    /// Stops renewing the node's lease and writing its record; both run out.
    pub(crate) fn stop_registering(&self) {
        self.ctx.node.send_replace(None);
        lock(&self.ctx.lease).take();
    }

    /// Leaves the fleet: the node's record goes at once (its lease is revoked), rather than
    /// when the lease would expire.
    pub(crate) fn leave(&self) {
        self.ctx.node.send_replace(None);
        let Some(lease) = lock(&self.ctx.lease).take() else {
            return;
        };
        let ctx = self.ctx.clone();
        let _ = self.run(async move {
            if let Ok(mut client) = ctx.client().await {
                let _ = bounded("leaving the fleet", client.lease_revoke(lease)).await;
            }
        });
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        // Not a blocking shutdown: the store may be dropped inside another runtime.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Whether the node's view is healthy, for its record.
pub(crate) fn view_of(health: &StoreHealth) -> NodeView {
    match health {
        StoreHealth::Ok => NodeView::Ok,
        StoreHealth::Degraded { reason, .. } => NodeView::Degraded {
            reason: reason.clone(),
        },
    }
}
