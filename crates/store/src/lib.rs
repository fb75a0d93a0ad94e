//! fulcrum's state store: the whole configuration as one revisioned snapshot, persisted in SQLite
//! under the data dir, with a watch so the data plane sees every change.
//!
//! Private keys and access-key secrets are sealed with AES-256-GCM under a master key before they
//! touch the disk; the state itself is JSON without them.

#![forbid(unsafe_code)]

mod access_keys;
mod error;
mod master_key;
mod node_secrets;
mod seal;
mod sqlite;

use std::fmt;
use std::fs::{self, DirBuilder};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use fulcrum_model::{ModelError, Snapshot, State};
use rusqlite::Connection;
use tokio::sync::watch;

pub use access_keys::{AccessKeyInfo, KeyScope, Revocation};
pub use error::StoreError;
pub use master_key::{MasterKey, MASTER_KEY_ENV, MASTER_KEY_FILE};
pub use node_secrets::{API_CA_KEY, STICKINESS_KEY, STICKINESS_KEY_LEN};
pub use sqlite::DB_FILE;

use seal::Sealer;

/// The configuration store of one node.
///
/// Methods do blocking SQLite I/O (a commit waits for an fsync); async callers should run
/// `update` and the access-key methods in `spawn_blocking`. `snapshot` and `watch` never block
/// on the disk.
pub struct Store {
    conn: Mutex<Connection>,
    tx: watch::Sender<Arc<Snapshot>>,
    sealer: Sealer,
    db_path: PathBuf,
}

impl Store {
    /// Opens (creating if needed, mode 0700) `data_dir/fulcrum.db` with the master key from
    /// `FULCRUM_MASTER_KEY` if set (64 hex digits), otherwise from `data_dir/master.key`, which
    /// is created on first open (mode 0600) and refused if others may read it or it is malformed.
    pub fn open(data_dir: &Path) -> Result<Store, StoreError> {
        create_data_dir(data_dir)?;
        let key = master_key::resolve(data_dir, std::env::var_os(MASTER_KEY_ENV))?;
        Store::open_in(data_dir, key)
    }

    /// Opens `data_dir/fulcrum.db` with an explicit master key.
    pub fn open_with_key(data_dir: &Path, key: MasterKey) -> Result<Store, StoreError> {
        create_data_dir(data_dir)?;
        Store::open_in(data_dir, key)
    }

    fn open_in(data_dir: &Path, key: MasterKey) -> Result<Store, StoreError> {
        let sealer = Sealer::new(&key)?;
        drop(key);
        let db_path = data_dir.join(DB_FILE);
        let (conn, snapshot) = sqlite::open(&db_path, &sealer)?;
        tracing::info!(
            path = %db_path.display(),
            revision = snapshot.revision,
            load_balancers = snapshot.state.load_balancers.len(),
            certificates = snapshot.state.certificates.len(),
            "opened the store"
        );
        let (tx, _) = watch::channel(Arc::new(snapshot));
        Ok(Store {
            conn: Mutex::new(conn),
            tx,
            sealer,
            db_path,
        })
    }

    /// The current snapshot.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.tx.borrow().clone()
    }

    /// A receiver that sees every snapshot committed from now on (the current one counts as seen).
    pub fn watch(&self) -> watch::Receiver<Arc<Snapshot>> {
        self.tx.subscribe()
    }

    /// The one way to change the state. Runs `change` on a copy of the current state; if it
    /// fails, nothing changes. Otherwise the copy is committed in one SQLite transaction as the
    /// next revision and published on the watch, and the closure's value is returned. If the
    /// commit fails, memory and the watch stay at the old revision.
    ///
    /// A change that leaves the state equal to what it was (ELB's idempotent calls: re-creating
    /// an identical load balancer, registering an instance twice) succeeds without a new
    /// revision, so the data plane is not woken for nothing.
    ///
    /// Updates are serialized; `change` runs under the store's lock and must not call back into
    /// the store.
    pub fn update<T>(
        &self,
        change: impl FnOnce(&mut State) -> Result<T, ModelError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.lock();
        let current = self.snapshot();
        let mut next = current.state.clone();
        let value = change(&mut next)?;
        if next == current.state {
            return Ok(value);
        }
        let revision = sqlite::persist(&mut conn, &self.db_path, &self.sealer, &current, &next)?;
        // Published while still holding the lock, so watchers see revisions in order.
        self.tx.send_replace(Arc::new(Snapshot {
            revision,
            state: next,
        }));
        tracing::debug!(revision, "committed a new revision");
        Ok(value)
    }

    /// Reads the state on disk again and, if its revision is not the one in memory (another
    /// process wrote the database: an offline tool, or a node that took over and went away),
    /// makes it the current snapshot and publishes it on the watch. Returns whether it did.
    pub fn reload(&self) -> Result<bool, StoreError> {
        let conn = self.lock();
        let current = self.snapshot();
        let on_disk = sqlite::load(&conn, &self.db_path, &self.sealer)?;
        if on_disk.revision == current.revision {
            return Ok(false);
        }
        tracing::info!(
            path = %self.db_path.display(),
            from = current.revision,
            to = on_disk.revision,
            "re-read the store"
        );
        // Under the lock, as in `update`: watchers see revisions in the order they were read.
        self.tx.send_replace(Arc::new(on_disk));
        Ok(true)
    }

    /// The database file, for messages and diagnostics.
    pub fn db_path(&self) -> &Path {
        &self.db_path
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic inside an update's closure poisons the lock, but the connection is still
        // consistent: the closure ran before any transaction began, and a dropped transaction
        // rolls back.
        self.conn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn context(&self, what: &str) -> String {
        format!("{what} ({})", self.db_path.display())
    }
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("db_path", &self.db_path)
            .field("revision", &self.tx.borrow().revision)
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
