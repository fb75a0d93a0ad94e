//! What only the SQLite store has: files in the data dir, a master key file, other processes on
//! the same database.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use fulcrum_store::{MasterKey, Store, StoreError, DB_FILE, MASTER_KEY_ENV, MASTER_KEY_FILE};

use super::{fake_pem, key, populate};

#[test]
fn a_failed_commit_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_with_key(dir.path(), key()).unwrap();
    populate(&store);
    let before = store.snapshot();
    let rx = store.watch();

    // The disk refuses the write (a trigger stands in for a full disk or an I/O error).
    let other = rusqlite::Connection::open(dir.path().join(DB_FILE)).unwrap();
    other
        .execute_batch(
            "CREATE TRIGGER refuse BEFORE UPDATE ON state BEGIN SELECT RAISE(ABORT, 'injected'); END;",
        )
        .unwrap();
    let err = store.update(|s| s.delete_load_balancer("web")).unwrap_err();
    assert!(matches!(err, StoreError::Sqlite { .. }), "{err}");
    assert!(err.to_string().contains(DB_FILE), "{err}");
    assert_eq!(store.snapshot().revision, before.revision);
    assert_eq!(store.snapshot().state, before.state);
    assert!(!rx.has_changed().unwrap());
    other.execute_batch("DROP TRIGGER refuse;").unwrap();
    let (rev, lbs): (i64, String) = other
        .query_row("SELECT revision, json FROM state", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!(rev, 2);
    assert!(
        lbs.contains("\"web\""),
        "the transaction must have rolled back"
    );

    // Another writer moved the database on behind this store's back: the change is made on
    // top of what it wrote rather than over it.
    other.execute("UPDATE state SET revision = 7", []).unwrap();
    store.update(|s| s.delete_load_balancer("web")).unwrap();
    assert_eq!(store.snapshot().revision, 8);
}

#[test]
fn a_missing_or_altered_private_key_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    populate(&Store::open_with_key(dir.path(), key()).unwrap());
    let db = rusqlite::Connection::open(dir.path().join(DB_FILE)).unwrap();

    // A key moved onto another certificate's row fails its AAD check.
    db.execute(
        "UPDATE private_keys SET sealed = (SELECT sealed FROM private_keys WHERE certificate_id = 'ASCA1') \
         WHERE certificate_id = 'ASCA2'",
        [],
    )
    .unwrap();
    let err = Store::open_with_key(dir.path(), key()).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt(_)), "{err}");
    assert!(
        err.to_string().contains("ASCA2") && err.to_string().contains("cannot be decrypted"),
        "{err}"
    );

    db.execute(
        "DELETE FROM private_keys WHERE certificate_id = 'ASCA2'",
        [],
    )
    .unwrap();
    let err = Store::open_with_key(dir.path(), key()).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt(_)), "{err}");
    assert!(
        err.to_string().contains("ASCA2") && err.to_string().contains("no private key"),
        "{err}"
    );
}

/// `Store::open` reads FULCRUM_MASTER_KEY; these tests only make sense when it is unset, and
/// never set it themselves (tests run in parallel threads of one process).
fn env_key_is_set() -> bool {
    std::env::var_os(MASTER_KEY_ENV).is_some()
}

#[test]
fn master_key_file_is_created_private_and_checked() {
    if env_key_is_set() {
        eprintln!("skipped: {MASTER_KEY_ENV} is set");
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("data");
    let store = Store::open(&dir).unwrap();
    populate(&store);
    drop(store);
    let key_file = dir.join(MASTER_KEY_FILE);
    assert_eq!(
        fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
        0o700
    );
    assert_eq!(
        fs::metadata(&key_file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(
        fs::metadata(dir.join(DB_FILE))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    let hex = fs::read_to_string(&key_file).unwrap();
    assert_eq!(hex.trim().len(), 64);

    // The same key opens it again, from the file or given explicitly (as FULCRUM_MASTER_KEY would).
    assert_eq!(Store::open(&dir).unwrap().snapshot().revision, 2);
    assert_eq!(
        Store::open_with_key(&dir, MasterKey::from_hex(&hex).unwrap())
            .unwrap()
            .snapshot()
            .revision,
        2
    );

    fs::set_permissions(&key_file, fs::Permissions::from_mode(0o644)).unwrap();
    let err = Store::open(&dir).unwrap_err();
    assert!(matches!(err, StoreError::MasterKey(_)), "{err}");
    assert!(
        err.to_string().contains("0644") && err.to_string().contains(MASTER_KEY_FILE),
        "{err}"
    );
    assert!(!err.to_string().contains(hex.trim()), "{err}");

    fs::set_permissions(&key_file, fs::Permissions::from_mode(0o600)).unwrap();
    fs::write(&key_file, "not a key\n").unwrap();
    let err = Store::open(&dir).unwrap_err();
    assert!(matches!(err, StoreError::MasterKey(_)), "{err}");
    assert!(err.to_string().contains("malformed"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_sees_what_another_process_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let node = Store::open_with_key(dir.path(), key()).unwrap();
    let mut rx = node.watch();
    assert!(!node.reload().unwrap(), "nothing changed on disk yet");
    assert!(!rx.has_changed().unwrap());

    // Another process (an offline tool, a node that took over) writes the same database.
    let other = Store::open_with_key(dir.path(), key()).unwrap();
    populate(&other);
    assert_eq!(node.snapshot().revision, 0, "the node has not looked yet");

    assert!(node.reload().unwrap());
    assert!(rx.has_changed().unwrap(), "the watch is told");
    let seen = rx.borrow_and_update().clone();
    assert_eq!(seen.revision, 2);
    assert_eq!(seen.state, other.snapshot().state);
    assert_eq!(
        seen.state.certificates["ASCA1"].private_key.expose(),
        fake_pem("one"),
        "private keys are unsealed on reload too"
    );

    // The node writes on top of it instead of failing with a conflict, and reloading again
    // finds its own revision.
    node.update(|s| s.delete_load_balancer("web")).unwrap();
    assert_eq!(node.snapshot().revision, 3);
    assert!(!node.reload().unwrap());
}
