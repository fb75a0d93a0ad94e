//! The SQLite layout: one row holds the state as JSON with its revision; sealed private keys and
//! access keys live in their own tables, so secrets never pass through the JSON.

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use fulcrum_model::{Snapshot, State};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use crate::access_keys::{AccessKeyInfo, KeyScope, Revocation, StoredAccessKey};
use crate::codec::{self, Encoded, KEY_CHECK_NAME};
use crate::error::StoreError;
use crate::seal::Sealer;

/// The database file in the data dir.
pub const DB_FILE: &str = "fulcrum.db";

/// Bumped with each incompatible change of the tables below; `PRAGMA user_version` holds it.
const SCHEMA_VERSION: i64 = 2;

/// Long enough to ride out another connection's checkpoint or a CLI reading the file, short
/// enough that a wedged writer turns into an error instead of a hung API call.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

const SCHEMA: &str = "
    CREATE TABLE meta (
        name  TEXT PRIMARY KEY,
        value BLOB NOT NULL
    );
    CREATE TABLE state (
        id       INTEGER PRIMARY KEY CHECK (id = 1),
        revision INTEGER NOT NULL,
        json     TEXT NOT NULL
    );
    CREATE TABLE private_keys (
        certificate_id TEXT PRIMARY KEY,
        sealed         BLOB NOT NULL
    );
    CREATE TABLE access_keys (
        id            TEXT PRIMARY KEY,
        description   TEXT NOT NULL,
        created       INTEGER NOT NULL,
        active        INTEGER NOT NULL,
        sealed_secret BLOB,
        scope         TEXT NOT NULL DEFAULT 'admin'
    );
";

fn ctx(what: &str, path: &Path) -> String {
    format!("{what} ({})", path.display())
}

/// The store in `DIR/fulcrum.db`.
pub(crate) struct Sqlite {
    conn: Mutex<Connection>,
    path: PathBuf,
}

/// Opens (creating if needed) the database at `path`, checks that `sealer` holds the master key
/// it was created with, and loads the current snapshot with every private key unsealed.
pub(crate) fn open(path: &Path, sealer: &Sealer) -> Result<(Sqlite, Snapshot), StoreError> {
    // Everything secret in the file is sealed, but certificate names, backends and access-key ids
    // are nobody else's business either: the file is created 0600 (never with the umask's mode
    // for a moment), an existing one is made so, and SQLite gives -wal and -shm the db's mode.
    {
        use std::os::unix::fs::OpenOptionsExt;
        fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)
            .map_err(StoreError::io(path))?;
    }
    fs::set_permissions(path, fs::Permissions::from_mode(0o600)).map_err(StoreError::io(path))?;
    let mut conn =
        Connection::open(path).map_err(StoreError::sqlite(ctx("opening the database", path)))?;
    configure(&conn, path)?;
    init_schema(&mut conn, path, sealer)?;
    check_master_key(&conn, path, sealer)?;
    let db = Sqlite {
        conn: Mutex::new(conn),
        path: path.to_owned(),
    };
    let snapshot = db.load(sealer)?;
    Ok((db, snapshot))
}

fn configure(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(StoreError::sqlite(ctx("setting the busy timeout", path)))?;
    // WAL: readers (a CLI, a backup) never block the writer and vice versa.
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
        .map_err(StoreError::sqlite(ctx("enabling WAL", path)))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Corrupt(format!(
            "{} refused WAL journaling (journal_mode is {mode}); is it on a network filesystem?",
            path.display()
        )));
    }
    // FULL, not NORMAL: under WAL, NORMAL can lose the last commits on power failure, and each
    // commit here is an API call that already told the operator "done" (an uploaded certificate,
    // a created load balancer). Writes are rare, so the extra fsync per commit costs nothing
    // that matters.
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(StoreError::sqlite(ctx("setting synchronous=FULL", path)))?;
    Ok(())
}

fn init_schema(conn: &mut Connection, path: &Path, sealer: &Sealer) -> Result<(), StoreError> {
    let err = || StoreError::sqlite(ctx("creating the schema", path));
    // IMMEDIATE so two processes starting on a fresh dir cannot both create the tables.
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(err())?;
    let version: i64 = tx
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(err())?;
    match version {
        0 => {
            tx.execute_batch(SCHEMA).map_err(err())?;
            let json = serde_json::to_string(&State::default()).map_err(|e| {
                StoreError::Corrupt(format!("cannot serialize the empty state: {e}"))
            })?;
            tx.execute(
                "INSERT INTO state (id, revision, json) VALUES (1, 0, ?1)",
                params![json],
            )
            .map_err(err())?;
            let check = codec::seal_key_check(sealer)?;
            tx.execute(
                "INSERT INTO meta (name, value) VALUES (?1, ?2)",
                params![KEY_CHECK_NAME, check],
            )
            .map_err(err())?;
            tx.pragma_update(None, "user_version", SCHEMA_VERSION)
                .map_err(err())?;
            tx.commit().map_err(err())?;
            tracing::info!(path = %path.display(), "created a new store");
            Ok(())
        }
        // Version 1 had no access-key scopes: every key was an administrator, and stays one.
        1 => {
            tx.execute_batch(
                "ALTER TABLE access_keys ADD COLUMN scope TEXT NOT NULL DEFAULT 'admin';",
            )
            .map_err(err())?;
            tx.pragma_update(None, "user_version", SCHEMA_VERSION)
                .map_err(err())?;
            tx.commit().map_err(err())?;
            tracing::info!(path = %path.display(), "store upgraded to schema version {SCHEMA_VERSION}");
            Ok(())
        }
        SCHEMA_VERSION => Ok(()),
        other => Err(StoreError::Corrupt(format!(
            "{} has schema version {other}; this fulcrum understands version {SCHEMA_VERSION} \
             (was it written by a newer release?)",
            path.display()
        ))),
    }
}

fn check_master_key(conn: &Connection, path: &Path, sealer: &Sealer) -> Result<(), StoreError> {
    let sealed: Option<Vec<u8>> = conn
        .query_row(
            "SELECT value FROM meta WHERE name = ?1",
            params![KEY_CHECK_NAME],
            |r| r.get(0),
        )
        .optional()
        .map_err(StoreError::sqlite(ctx(
            "reading the master key check",
            path,
        )))?;
    let sealed = sealed.ok_or_else(|| {
        StoreError::Corrupt(format!("{} has no master key check value", path.display()))
    })?;
    codec::check_master_key(sealer, &sealed, &path.display().to_string())
}

impl Sqlite {
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while the lock was held (in an update's closure, say) leaves the connection
        // consistent: a dropped transaction rolls back.
        self.conn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn context(&self, what: &str) -> String {
        ctx(what, &self.path)
    }

    /// The snapshot on disk, every private key unsealed.
    pub(crate) fn load(&self, sealer: &Sealer) -> Result<Snapshot, StoreError> {
        let conn = self.lock();
        let path = &self.path;
        let (revision, json): (i64, String) = conn
            .query_row("SELECT revision, json FROM state WHERE id = 1", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()
            .map_err(StoreError::sqlite(ctx("reading the state", path)))?
            .ok_or_else(|| StoreError::Corrupt(format!("{} has no state row", path.display())))?;
        let revision = u64::try_from(revision).map_err(|_| {
            StoreError::Corrupt(format!(
                "{} has a negative revision {revision}",
                path.display()
            ))
        })?;
        let sealed = load_sealed_keys(&conn, path)?;
        drop(conn);
        codec::decode(sealer, revision, &json, sealed, &path.display().to_string())
    }

    /// Writes `new` as revision `old_revision + 1` in one transaction: the state row, the keys
    /// that changed, the removal of keys of deleted certificates. Fails with `Conflict` if the
    /// database is no longer at `old_revision`.
    pub(crate) fn commit(&self, old_revision: u64, new: &Encoded) -> Result<u64, StoreError> {
        let mut conn = self.lock();
        let path = &self.path;
        let revision = old_revision + 1;
        let err = || StoreError::sqlite(ctx(&format!("writing revision {revision}"), path));
        let sql_rev = |r: u64| {
            i64::try_from(r)
                .map_err(|_| StoreError::Corrupt(format!("revision {r} is out of range")))
        };
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err())?;
        let updated = tx
            .execute(
                "UPDATE state SET revision = ?1, json = ?2 WHERE id = 1 AND revision = ?3",
                params![sql_rev(revision)?, new.json, sql_rev(old_revision)?],
            )
            .map_err(err())?;
        if updated != 1 {
            let found: i64 = tx
                .query_row("SELECT revision FROM state WHERE id = 1", [], |r| r.get(0))
                .map_err(err())?;
            return Err(StoreError::Conflict {
                place: path.display().to_string(),
                expected: old_revision,
                found: u64::try_from(found).unwrap_or(0),
            });
        }
        for (id, sealed) in &new.put_keys {
            tx.execute(
                "INSERT OR REPLACE INTO private_keys (certificate_id, sealed) VALUES (?1, ?2)",
                params![id, sealed],
            )
            .map_err(err())?;
        }
        for id in &new.delete_keys {
            tx.execute(
                "DELETE FROM private_keys WHERE certificate_id = ?1",
                params![id],
            )
            .map_err(err())?;
        }
        tx.commit().map_err(err())?;
        Ok(revision)
    }

    pub(crate) fn insert_access_key(&self, key: &StoredAccessKey) -> Result<(), StoreError> {
        let info = &key.info;
        self.lock()
            .execute(
                "INSERT INTO access_keys (id, description, created, active, sealed_secret, scope) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    info.id,
                    info.description,
                    i64::try_from(info.created).unwrap_or(i64::MAX),
                    info.active,
                    key.sealed_secret,
                    info.scope.as_str()
                ],
            )
            .map_err(StoreError::sqlite(
                self.context(&format!("creating access key {}", info.id)),
            ))?;
        Ok(())
    }

    /// The sealed secret and the scope of an active key.
    pub(crate) fn active_access_key(
        &self,
        id: &str,
    ) -> Result<Option<(Vec<u8>, KeyScope)>, StoreError> {
        let row: Option<(Option<Vec<u8>>, String)> = self
            .lock()
            .query_row(
                "SELECT sealed_secret, scope FROM access_keys WHERE id = ?1 AND active = 1",
                params![id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(StoreError::sqlite(
                self.context(&format!("reading access key {id}")),
            ))?;
        Ok(match row {
            Some((Some(sealed), scope)) => Some((sealed, KeyScope::from_stored(&scope))),
            _ => None,
        })
    }

    pub(crate) fn list_access_keys(&self) -> Result<Vec<AccessKeyInfo>, StoreError> {
        let err = || StoreError::sqlite(self.context("listing access keys"));
        let conn = self.lock();
        let mut stmt = conn
            .prepare(
                "SELECT id, description, created, active, scope FROM access_keys \
                 ORDER BY created, id",
            )
            .map_err(err())?;
        let rows = stmt
            .query_map([], |r| {
                Ok(AccessKeyInfo {
                    id: r.get(0)?,
                    description: r.get(1)?,
                    created: u64::try_from(r.get::<_, i64>(2)?).unwrap_or(0),
                    active: r.get(3)?,
                    scope: KeyScope::from_stored(&r.get::<_, String>(4)?),
                })
            })
            .map_err(err())?;
        rows.collect::<Result<_, _>>().map_err(err())
    }

    /// The check and the revocation are one statement, so two revocations racing cannot both
    /// pass the check (in this process or another on the same database).
    pub(crate) fn revoke_access_key(&self, id: &str) -> Result<Revocation, StoreError> {
        let err = || StoreError::sqlite(self.context(&format!("revoking access key {id}")));
        let conn = self.lock();
        // The sealed secret goes too: a revoked key never comes back.
        let changed = conn
            .execute(
                "UPDATE access_keys SET active = 0, sealed_secret = NULL \
                 WHERE id = ?1 AND active = 1 AND (scope != 'admin' OR \
                   (SELECT COUNT(*) FROM access_keys WHERE active = 1 AND scope = 'admin') > 1)",
                params![id],
            )
            .map_err(err())?;
        if changed > 0 {
            return Ok(Revocation::Revoked);
        }
        let active: bool = conn
            .query_row(
                "SELECT COUNT(*) > 0 FROM access_keys WHERE id = ?1 AND active = 1",
                params![id],
                |r| r.get(0),
            )
            .map_err(err())?;
        Ok(if active {
            Revocation::LastAdmin
        } else {
            Revocation::NoSuchKey
        })
    }

    pub(crate) fn node_secret(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.lock()
            .query_row(
                "SELECT value FROM meta WHERE name = ?1",
                params![meta_name(name)],
                |r| r.get(0),
            )
            .optional()
            .map_err(StoreError::sqlite(self.context(&format!("reading {name}"))))
    }

    /// Stores `sealed` unless a value is there already; either way returns the stored one.
    pub(crate) fn insert_node_secret(
        &self,
        name: &str,
        sealed: &[u8],
    ) -> Result<Vec<u8>, StoreError> {
        self.lock()
            .execute(
                "INSERT OR IGNORE INTO meta (name, value) VALUES (?1, ?2)",
                params![meta_name(name), sealed],
            )
            .map_err(StoreError::sqlite(self.context(&format!("storing {name}"))))?;
        self.node_secret(name)?.ok_or_else(|| {
            StoreError::Corrupt(format!("{name} vanished from {}", self.path.display()))
        })
    }
}

/// Node secrets share the `meta` table with the master key check, under their own prefix.
fn meta_name(name: &str) -> String {
    format!("secret:{name}")
}

fn load_sealed_keys(
    conn: &Connection,
    path: &Path,
) -> Result<HashMap<String, Vec<u8>>, StoreError> {
    let err = || StoreError::sqlite(ctx("reading the private keys", path));
    let mut stmt = conn
        .prepare("SELECT certificate_id, sealed FROM private_keys")
        .map_err(err())?;
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .map_err(err())?;
    rows.collect::<Result<_, _>>().map_err(err())
}
