//! The SQLite layout: one row holds the state as JSON with its revision; sealed private keys and
//! access keys live in their own tables, so secrets never pass through the JSON.

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use fulcrum_model::{ModelError, PrivateKeyPem, Snapshot, State};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use crate::error::StoreError;
use crate::seal::{Purpose, Sealer};

/// The database file in the data dir.
pub const DB_FILE: &str = "fulcrum.db";

/// Bumped with each incompatible change of the tables below; `PRAGMA user_version` holds it.
const SCHEMA_VERSION: i64 = 2;

/// Long enough to ride out another connection's checkpoint or a CLI reading the file, short
/// enough that a wedged writer turns into an error instead of a hung API call.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

const KEY_CHECK_NAME: &str = "key_check";
const KEY_CHECK_VALUE: &[u8] = b"fulcrum master key check v1";

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

/// Opens (creating if needed) the database at `path`, checks that `sealer` holds the master key
/// it was created with, and loads the current snapshot with every private key unsealed.
pub(crate) fn open(path: &Path, sealer: &Sealer) -> Result<(Connection, Snapshot), StoreError> {
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
    let snapshot = load(&conn, path, sealer)?;
    Ok((conn, snapshot))
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
            let check = sealer.seal(Purpose::KeyCheck, KEY_CHECK_NAME, KEY_CHECK_VALUE)?;
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
    match sealer.open(Purpose::KeyCheck, KEY_CHECK_NAME, &sealed) {
        Some(value) if value.as_slice() == KEY_CHECK_VALUE => Ok(()),
        _ => Err(StoreError::MasterKey(format!(
            "this is not the master key {} was created with; use the original master.key or \
             FULCRUM_MASTER_KEY",
            path.display()
        ))),
    }
}

/// The snapshot on disk, every private key unsealed.
pub(crate) fn load(
    conn: &Connection,
    path: &Path,
    sealer: &Sealer,
) -> Result<Snapshot, StoreError> {
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
    let mut state: State = serde_json::from_str(&json).map_err(|e| {
        StoreError::Corrupt(format!(
            "the state at revision {revision} in {} is not valid: {e}",
            path.display()
        ))
    })?;

    let mut sealed = load_sealed_keys(conn, path)?;
    for (id, cert) in &mut state.certificates {
        let blob = sealed.remove(id).ok_or_else(|| {
            StoreError::Corrupt(format!(
                "certificate {id} ('{}') has no private key in {}",
                cert.name,
                path.display()
            ))
        })?;
        let mut pem = sealer
            .open_string(Purpose::CertificateKey, id, &blob)
            .ok_or_else(|| {
                // The master key passed its check, so this row was altered or moved from another id.
                StoreError::Corrupt(format!(
                    "the private key of certificate {id} ('{}') in {} cannot be decrypted",
                    cert.name,
                    path.display()
                ))
            })?;
        cert.private_key = PrivateKeyPem::new(std::mem::take(&mut *pem));
    }
    if !sealed.is_empty() {
        tracing::warn!(
            path = %path.display(),
            count = sealed.len(),
            "private keys without a certificate in the state; they are ignored"
        );
    }
    Ok(Snapshot { revision, state })
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

/// Refuses states the store could not load back: a certificate filed under another id than its
/// own would be unsealed with the wrong AAD, and one without a key cannot serve TLS.
fn check_persistable(state: &State) -> Result<(), ModelError> {
    for (id, cert) in &state.certificates {
        if cert.id != *id {
            return Err(ModelError::InvalidConfiguration(format!(
                "certificate {} is filed under id {id}",
                cert.id
            )));
        }
        if cert.private_key.is_empty() {
            return Err(ModelError::Validation(format!(
                "certificate {} ('{}') has no private key",
                cert.id, cert.name
            )));
        }
    }
    Ok(())
}

/// Writes `new` as revision `old.revision + 1` in one transaction: the state row, the sealed keys
/// of certificates that are new or have a new key, and the removal of keys of deleted
/// certificates. Fails with `Conflict` if the database is no longer at `old.revision`.
pub(crate) fn persist(
    conn: &mut Connection,
    path: &Path,
    sealer: &Sealer,
    old: &Snapshot,
    new: &State,
) -> Result<u64, StoreError> {
    check_persistable(new)?;
    let revision = old.revision + 1;
    let json = serde_json::to_string(new)
        .map_err(|e| StoreError::Corrupt(format!("cannot serialize the state: {e}")))?;
    let err = || StoreError::sqlite(ctx(&format!("writing revision {revision}"), path));
    let sql_rev = |r: u64| {
        i64::try_from(r).map_err(|_| StoreError::Corrupt(format!("revision {r} is out of range")))
    };

    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(err())?;
    let updated = tx
        .execute(
            "UPDATE state SET revision = ?1, json = ?2 WHERE id = 1 AND revision = ?3",
            params![sql_rev(revision)?, json, sql_rev(old.revision)?],
        )
        .map_err(err())?;
    if updated != 1 {
        let found: i64 = tx
            .query_row("SELECT revision FROM state WHERE id = 1", [], |r| r.get(0))
            .map_err(err())?;
        return Err(StoreError::Conflict {
            path: path.to_owned(),
            expected: old.revision,
            found: u64::try_from(found).unwrap_or(0),
        });
    }
    for (id, cert) in &new.certificates {
        let unchanged =
            matches!(old.state.certificates.get(id), Some(o) if o.private_key == cert.private_key);
        if !unchanged {
            let sealed = sealer.seal(
                Purpose::CertificateKey,
                id,
                cert.private_key.expose().as_bytes(),
            )?;
            tx.execute(
                "INSERT OR REPLACE INTO private_keys (certificate_id, sealed) VALUES (?1, ?2)",
                params![id, sealed],
            )
            .map_err(err())?;
        }
    }
    for id in old.state.certificates.keys() {
        if !new.certificates.contains_key(id) {
            tx.execute(
                "DELETE FROM private_keys WHERE certificate_id = ?1",
                params![id],
            )
            .map_err(err())?;
        }
    }
    tx.commit().map_err(err())?;
    Ok(revision)
}
