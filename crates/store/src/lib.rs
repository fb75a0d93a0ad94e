//! fulcrum's state store: the whole configuration as one revisioned snapshot with a watch, so
//! the data plane sees every change. It lives in SQLite under the data dir (one node), or in etcd
//! (a fleet: every node watches the same keys and applies the same revisions).
//!
//! Private keys, access-key secrets and node secrets are sealed with AES-256-GCM under a master
//! key before they leave the process; the state itself is JSON without them.

#![forbid(unsafe_code)]

mod access_keys;
mod codec;
mod error;
mod etcd;
mod fleet;
mod master_key;
mod node_secrets;
mod seal;
mod sqlite;

use std::fmt;
use std::fs::{self, DirBuilder};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;
use std::sync::{Arc, Mutex};

use fulcrum_model::{ModelError, Snapshot, State};
use tokio::sync::watch;

pub use access_keys::{AccessKeyInfo, KeyScope, Revocation};
pub use error::StoreError;
pub use etcd::{Campaign, EtcdConfig, Leadership, CACHE_FILE, DEFAULT_PREFIX};
pub use fleet::{InstanceView, NodeRecord, NodeView};
pub use master_key::{MasterKey, MASTER_KEY_ENV, MASTER_KEY_FILE};
pub use node_secrets::{API_CA_KEY, STICKINESS_KEY, STICKINESS_KEY_LEN};
pub use sqlite::DB_FILE;

use seal::Sealer;

/// How many times a change that lost the compare-and-swap to another writer is run again on
/// the winner's state before the caller is told of the conflict.
const CONFLICT_RETRIES: usize = 16;

/// The configuration store of one node.
///
/// Methods block (an SQLite commit waits for an fsync, an etcd commit for the cluster's quorum);
/// async callers should run `update` and the access-key methods in `spawn_blocking`. `snapshot`
/// and `watch` never block.
pub struct Store {
    shared: Arc<Shared>,
    backend: Backend,
    /// Changes made through this handle run one at a time: no change of this node loses a
    /// compare-and-swap to another change of this node.
    updates: Mutex<()>,
}

/// What the store and its backends' background tasks share.
pub(crate) struct Shared {
    tx: watch::Sender<Arc<Snapshot>>,
    sealer: Sealer,
}

impl Shared {
    /// Publishes `snapshot` unless the watch already has this revision or a later one, so that
    /// the watch's revisions only move forward whoever publishes (a commit, etcd's watch).
    pub(crate) fn publish(&self, snapshot: Snapshot) -> bool {
        let mut snapshot = Some(snapshot);
        self.tx.send_if_modified(|current| {
            let newer = snapshot
                .as_ref()
                .is_some_and(|s| s.revision > current.revision);
            if newer {
                *current = Arc::new(snapshot.take().expect("checked above"));
            }
            newer
        })
    }

    pub(crate) fn sealer(&self) -> &Sealer {
        &self.sealer
    }

    pub(crate) fn snapshot(&self) -> Arc<Snapshot> {
        self.tx.borrow().clone()
    }
}

pub(crate) enum Backend {
    Sqlite(sqlite::Sqlite),
    Etcd(etcd::Etcd),
}

/// Whether the store can take changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreHealth {
    Ok,
    /// The store cannot be reached: the node serves its last snapshot and refuses changes.
    Degraded {
        /// What went wrong, in words.
        reason: String,
        /// Seconds since the Unix epoch.
        since: u64,
    },
}

impl Store {
    /// Opens (creating if needed, mode 0700) `data_dir/fulcrum.db` with the master key from
    /// `FULCRUM_MASTER_KEY` if set (64 hex digits), otherwise from `data_dir/master.key`, which
    /// is created on first open (mode 0600) and refused if others may read it or it is malformed.
    pub fn open(data_dir: &Path) -> Result<Store, StoreError> {
        create_data_dir(data_dir)?;
        let key = master_key::resolve(data_dir, std::env::var_os(MASTER_KEY_ENV))?;
        Store::open_with_key(data_dir, key)
    }

    /// Opens `data_dir/fulcrum.db` with an explicit master key.
    pub fn open_with_key(data_dir: &Path, key: MasterKey) -> Result<Store, StoreError> {
        create_data_dir(data_dir)?;
        let sealer = Sealer::new(&key)?;
        drop(key);
        let (db, snapshot) = sqlite::open(&data_dir.join(DB_FILE), &sealer)?;
        Store::assemble(sealer, snapshot, |_| Ok(Backend::Sqlite(db)))
    }

    /// Opens the fleet's store in etcd, with the master key as [`Store::open`] finds it (every
    /// node of a fleet must be given the same one). `data_dir` keeps a sealed copy of what was
    /// last read (`etcd-cache.json`), from which the node starts when etcd is unreachable.
    pub fn open_etcd(data_dir: &Path, config: EtcdConfig) -> Result<Store, StoreError> {
        create_data_dir(data_dir)?;
        let key = master_key::resolve(data_dir, std::env::var_os(MASTER_KEY_ENV))?;
        Store::open_etcd_with_key(data_dir, config, key)
    }

    /// [`Store::open_etcd`] with an explicit master key.
    pub fn open_etcd_with_key(
        data_dir: &Path,
        config: EtcdConfig,
        key: MasterKey,
    ) -> Result<Store, StoreError> {
        create_data_dir(data_dir)?;
        let sealer = Sealer::new(&key)?;
        drop(key);
        // Empty until the backend has read etcd (or its local copy) and published that.
        let empty = Snapshot {
            revision: 0,
            state: State::default(),
        };
        Store::assemble(sealer, empty, |shared| {
            Ok(Backend::Etcd(etcd::Etcd::open(data_dir, config, shared)?))
        })
    }

    /// The store around a backend that `backend` opens with the shared parts (the watch starts
    /// at `snapshot`), and the one line that says what was opened.
    fn assemble(
        sealer: Sealer,
        snapshot: Snapshot,
        backend: impl FnOnce(Arc<Shared>) -> Result<Backend, StoreError>,
    ) -> Result<Store, StoreError> {
        let (tx, _) = watch::channel(Arc::new(snapshot));
        let shared = Arc::new(Shared { tx, sealer });
        let store = Store {
            backend: backend(Arc::clone(&shared))?,
            shared,
            updates: Mutex::new(()),
        };
        let snapshot = store.snapshot();
        tracing::info!(
            store = %store.describe(),
            revision = snapshot.revision,
            load_balancers = snapshot.state.load_balancers.len(),
            certificates = snapshot.state.certificates.len(),
            "opened the store"
        );
        Ok(store)
    }

    /// The current snapshot.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.shared.snapshot()
    }

    /// A receiver that sees every snapshot committed from now on (the current one counts as seen).
    pub fn watch(&self) -> watch::Receiver<Arc<Snapshot>> {
        self.shared.tx.subscribe()
    }

    /// The one way to change the state. Runs `change` on a copy of the current state; if it
    /// fails, nothing changes. Otherwise the copy is committed as the next revision (one SQLite
    /// transaction, or one etcd transaction that compares the revision it started from) and
    /// published on the watch, and the closure's value is returned. If the commit fails, memory
    /// and the watch stay at the old revision.
    ///
    /// A change that loses the compare-and-swap to another writer (another node of the fleet,
    /// another process on the data dir) is run again on the winner's state: it lands if it
    /// still applies, and otherwise fails with the model's error (the name is taken now, the
    /// certificate is gone), so `change` may run more than once.
    ///
    /// A change that leaves the state equal to what it was (ELB's idempotent calls: re-creating
    /// an identical load balancer, registering an instance twice) succeeds without a new
    /// revision, so the data plane is not woken for nothing.
    ///
    /// `change` runs under the store's lock and must not call back into the store.
    pub fn update<T>(
        &self,
        mut change: impl FnMut(&mut State) -> Result<T, ModelError>,
    ) -> Result<T, StoreError> {
        let _serial = self
            .updates
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut retries = CONFLICT_RETRIES;
        loop {
            let current = self.snapshot();
            let mut next = current.state.clone();
            let value = change(&mut next)?;
            if next == current.state {
                return Ok(value);
            }
            let encoded = codec::encode(&self.shared.sealer, &current.state, &next)?;
            let committed = match &self.backend {
                Backend::Sqlite(db) => db.commit(current.revision, &encoded),
                Backend::Etcd(etcd) => etcd.commit(current.revision, &encoded),
            };
            match committed {
                Ok(revision) => {
                    self.shared.publish(Snapshot {
                        revision,
                        state: next,
                    });
                    tracing::debug!(revision, "committed a new revision");
                    return Ok(value);
                }
                Err(StoreError::Conflict { found, .. }) if retries > 0 => {
                    retries -= 1;
                    tracing::debug!(
                        expected = current.revision,
                        found,
                        "another node changed the state first; running the change again"
                    );
                    self.reload()?;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Reads the state from the backend again and, if its revision is not the one in memory
    /// (another process wrote the database: an offline tool, a node that took over and went
    /// away; or etcd moved on while its watch was behind), makes it the current snapshot and
    /// publishes it on the watch. Returns whether it did.
    pub fn reload(&self) -> Result<bool, StoreError> {
        match &self.backend {
            Backend::Sqlite(db) => {
                let current = self.snapshot();
                let on_disk = db.load(&self.shared.sealer)?;
                if on_disk.revision == current.revision {
                    return Ok(false);
                }
                tracing::info!(
                    path = %db.path().display(),
                    from = current.revision,
                    to = on_disk.revision,
                    "re-read the store"
                );
                // Not through `publish`: a database restored from a backup may go back.
                self.shared.tx.send_replace(Arc::new(on_disk));
                Ok(true)
            }
            Backend::Etcd(etcd) => {
                let before = self.snapshot().revision;
                etcd.resync()?;
                Ok(self.snapshot().revision != before)
            }
        }
    }

    /// Where the store is, for messages and diagnostics.
    pub fn describe(&self) -> String {
        match &self.backend {
            Backend::Sqlite(db) => format!("the SQLite database {}", db.path().display()),
            Backend::Etcd(etcd) => etcd.describe(),
        }
    }

    /// Whether changes can be made now.
    pub fn health(&self) -> StoreHealth {
        match &self.backend {
            Backend::Sqlite(_) => StoreHealth::Ok,
            Backend::Etcd(etcd) => etcd.health(),
        }
    }

    /// Whether this store is shared by a fleet (etcd).
    pub fn is_shared(&self) -> bool {
        matches!(self.backend, Backend::Etcd(_))
    }

    /// The live nodes of the fleet, as this node last saw their records (empty on SQLite).
    pub fn fleet(&self) -> Vec<NodeRecord> {
        match &self.backend {
            Backend::Sqlite(_) => Vec::new(),
            Backend::Etcd(etcd) => etcd.fleet(),
        }
    }

    /// Keeps `record` as this node's entry in the fleet, under a lease renewed in the
    /// background (its `heartbeat` and `view` are filled in there). Nothing on SQLite.
    pub fn register_node(&self, record: NodeRecord) {
        if let Backend::Etcd(etcd) = &self.backend {
            etcd.register(record);
        }
    }

    /// Runs for `role` (the floating address, say) as `holder` through etcd leases: at most one
    /// node of the fleet holds a role at a time. `None` on SQLite: one node has no one to elect.
    pub fn campaign(&self, role: &str, holder: &str) -> Option<Campaign> {
        match &self.backend {
            Backend::Sqlite(_) => None,
            Backend::Etcd(etcd) => Some(etcd.campaign(role, holder)),
        }
    }

    /// Stops keeping this node's entry without taking it out: another process of the same node
    /// (an upgrade) keeps it from now on, and the lease this one wrote it under runs out.
    pub fn stop_registering(&self) {
        if let Backend::Etcd(etcd) = &self.backend {
            etcd.stop_registering();
        }
    }

    /// Takes this node's entry out of the fleet now (a planned stop), rather than when its
    /// lease would expire.
    pub fn leave_fleet(&self) {
        if let Backend::Etcd(etcd) = &self.backend {
            etcd.leave();
        }
    }
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("at", &self.describe())
            .field("revision", &self.shared.tx.borrow().revision)
            .finish_non_exhaustive()
    }
}

/// Creates the data dir readable by its owner only; an existing one with looser permissions is
/// used as is (the operator may have reasons), but said out loud.
fn create_data_dir(dir: &Path) -> Result<(), StoreError> {
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(StoreError::io(dir))?;
    let mode = fs::metadata(dir)
        .map_err(StoreError::io(dir))?
        .permissions()
        .mode()
        & 0o777;
    if mode & 0o077 != 0 {
        tracing::warn!(path = %dir.display(), mode = format!("{mode:04o}"), "the data dir is accessible to other users");
    }
    Ok(())
}
