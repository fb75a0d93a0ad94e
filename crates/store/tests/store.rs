//! The store against real files in a temporary data dir.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use fulcrum_model::{InstanceId, Listener, ModelError, PrivateKeyPem, Protocol, ServerCertificate};
use fulcrum_store::{
    KeyScope, MasterKey, Revocation, Store, StoreError, DB_FILE, MASTER_KEY_ENV, MASTER_KEY_FILE,
};

/// Looks like a PEM key to anything scanning for one; it is not a real key.
const KEY_BODY: &str =
    "TUlJRXZRSUJBREFOQmdrcWhraUc5dzBCQVFFRkFBU0NCS2N3Z2dTakFnRUFBb0lCQVFEZmFrZWtleQ";

fn fake_pem(tag: &str) -> String {
    format!("-----BEGIN PRIVATE KEY-----\n{KEY_BODY}{tag}\n-----END PRIVATE KEY-----\n")
}

fn cert(id: &str, name: &str, key: &str) -> ServerCertificate {
    ServerCertificate {
        id: id.into(),
        name: name.into(),
        path: "/".into(),
        upload_date: 1_700_000_000,
        expiration: 1_800_000_000,
        body_pem: format!("-----BEGIN CERTIFICATE-----\nBODY{id}\n-----END CERTIFICATE-----\n"),
        chain_pem: None,
        private_key: PrivateKeyPem::new(key.into()),
        tags: vec![],
    }
}

fn https(port: u16, cert: &str) -> Listener {
    let mut l = Listener::new(Protocol::Https, port, Protocol::Http, 8080);
    l.certificates.push(cert.into());
    l
}

fn key() -> MasterKey {
    MasterKey::from_hex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f").unwrap()
}

/// Two certificates and a load balancer using one of them.
fn populate(store: &Store) {
    store
        .update(|s| {
            s.add_certificate(cert("ASCA1", "one", &fake_pem("one")))?;
            s.add_certificate(cert("ASCA2", "two", &fake_pem("two")))
        })
        .unwrap();
    store
        .update(|s| {
            s.create_load_balancer("web", vec![https(443, "ASCA1")], 1_700_000_000)?;
            s.register_instances("web", &[InstanceId::parse("10.0.0.1").unwrap()])
        })
        .unwrap();
}

#[test]
fn state_and_keys_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let before = {
        let store = Store::open_with_key(dir.path(), key()).unwrap();
        assert_eq!(store.snapshot().revision, 0);
        populate(&store);
        store.snapshot()
    };
    assert_eq!(before.revision, 2);
    let store = Store::open_with_key(dir.path(), key()).unwrap();
    let after = store.snapshot();
    assert_eq!(after.revision, 2);
    assert_eq!(after.state, before.state);
    assert_eq!(
        after.state.certificates["ASCA2"].private_key.expose(),
        fake_pem("two")
    );

    // Deleting a certificate and replacing a key are persisted too.
    store
        .update(|s| {
            s.delete_certificate("two")?;
            s.certificates.get_mut("ASCA1").unwrap().private_key =
                PrivateKeyPem::new(fake_pem("rotated"));
            Ok(())
        })
        .unwrap();
    drop(store);
    let store = Store::open_with_key(dir.path(), key()).unwrap();
    let snap = store.snapshot();
    assert_eq!(snap.revision, 3);
    assert!(!snap.state.certificates.contains_key("ASCA2"));
    assert_eq!(
        snap.state.certificates["ASCA1"].private_key.expose(),
        fake_pem("rotated")
    );
    let rows: i64 = rusqlite::Connection::open(dir.path().join(DB_FILE))
        .unwrap()
        .query_row("SELECT count(*) FROM private_keys", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        rows, 1,
        "the deleted certificate's key must be gone from disk"
    );
}

#[test]
fn a_refused_change_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_with_key(dir.path(), key()).unwrap();
    populate(&store);
    let before = store.snapshot();
    let rx = store.watch();

    let err = store
        .update(|s| {
            s.delete_load_balancer("web")?; // applied to the copy, then the closure fails
            s.delete_certificate("nope")
        })
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Model(ModelError::CertificateNotFound(_))),
        "{err}"
    );
    assert_eq!(store.snapshot().revision, before.revision);
    assert_eq!(store.snapshot().state, before.state);
    assert!(!rx.has_changed().unwrap());

    // The store's own check: a certificate without a key is never persisted.
    let err = store
        .update(|s| {
            s.certificates.get_mut("ASCA2").unwrap().private_key = PrivateKeyPem::default();
            Ok(())
        })
        .unwrap_err();
    assert!(matches!(err, StoreError::Model(_)), "{err}");
    assert_eq!(store.snapshot().state, before.state);
    assert!(!rx.has_changed().unwrap());

    // A no-op change is accepted without a new revision.
    store.update(|s| s.delete_load_balancer("absent")).unwrap();
    assert_eq!(store.snapshot().revision, before.revision);
    assert!(!rx.has_changed().unwrap());
    drop(store);
    let store = Store::open_with_key(dir.path(), key()).unwrap();
    assert_eq!(store.snapshot().revision, before.revision);
    assert_eq!(store.snapshot().state, before.state);
}

#[test]
fn a_failed_commit_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_with_key(dir.path(), key()).unwrap();
    populate(&store);
    let before = store.snapshot();
    let rx = store.watch();

    // Another writer moves the database on behind this store's back.
    let other = rusqlite::Connection::open(dir.path().join(DB_FILE)).unwrap();
    other.execute("UPDATE state SET revision = 7", []).unwrap();

    let err = store.update(|s| s.delete_load_balancer("web")).unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Conflict {
                expected: 2,
                found: 7,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains(DB_FILE), "{err}");
    assert_eq!(store.snapshot().revision, before.revision);
    assert_eq!(store.snapshot().state, before.state);
    assert!(!rx.has_changed().unwrap());
    let (rev, lbs): (i64, String) = other
        .query_row("SELECT revision, json FROM state", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!(rev, 7);
    assert!(
        lbs.contains("\"web\""),
        "the transaction must have rolled back"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watch_sees_every_revision() {
    let dir = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(Store::open_with_key(dir.path(), key()).unwrap());
    let mut rx = store.watch();
    assert_eq!(rx.borrow().revision, 0);

    // The watch keeps only the latest value, so the writer waits for each revision to be seen
    // before making the next; what is tested is that every commit wakes the watcher.
    let (ack_tx, ack_rx) = std::sync::mpsc::channel::<()>();
    let writer = {
        let store = store.clone();
        tokio::task::spawn_blocking(move || {
            for i in 1..=3u16 {
                store
                    .update(|s| {
                        s.create_load_balancer(
                            &format!("lb{i}"),
                            vec![Listener::new(Protocol::Http, i, Protocol::Http, 80)],
                            0,
                        )
                    })
                    .unwrap();
                ack_rx.recv().unwrap();
            }
        })
    };
    let mut seen = Vec::new();
    while seen.len() < 3 {
        rx.changed().await.unwrap();
        let snap = rx.borrow_and_update().clone();
        assert_eq!(snap.state.load_balancers.len() as u64, snap.revision);
        seen.push(snap.revision);
        ack_tx.send(()).unwrap();
    }
    writer.await.unwrap();
    assert_eq!(seen, vec![1, 2, 3]);
    assert_eq!(store.snapshot().revision, 3);
}

/// Every file of the data dir except master.key, as raw bytes.
fn data_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap() != MASTER_KEY_FILE)
        .map(|p| (p.display().to_string(), fs::read(&p).unwrap()))
        .collect()
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[test]
fn no_secret_reaches_the_disk_in_plain_text() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_with_key(dir.path(), key()).unwrap();
    populate(&store);
    let (_, secret) = store.create_access_key("admin", KeyScope::Admin).unwrap();
    let revoked = store.create_access_key("old", KeyScope::Admin).unwrap();
    store.revoke_access_key(&revoked.0).unwrap();
    let needles = [
        fake_pem("one"),
        fake_pem("two"),
        KEY_BODY.to_owned(),
        secret.clone(),
        revoked.1.clone(),
    ];

    let check = |when: &str| {
        let files = data_files(dir.path());
        assert!(files.iter().any(|(name, _)| name.ends_with(DB_FILE)));
        for (name, bytes) in &files {
            // Sanity: the files do hold the state, so the search is not vacuous.
            for needle in &needles {
                assert!(
                    !contains(bytes, needle),
                    "{when}: {name} contains a secret in plain text"
                );
            }
        }
        assert!(
            files.iter().any(|(_, b)| contains(b, "BODYASCA1")),
            "{when}: the state is not on disk?"
        );
    };
    check("while open (WAL)");
    assert!(!format!("{store:?}").contains(KEY_BODY));
    assert!(!format!("{:?}", store.snapshot()).contains(KEY_BODY));
    drop(store);
    check("after close");
}

#[test]
fn the_wrong_master_key_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    populate(&Store::open_with_key(dir.path(), key()).unwrap());
    let err = Store::open_with_key(dir.path(), MasterKey::generate()).unwrap_err();
    assert!(matches!(err, StoreError::MasterKey(_)), "{err}");
    assert!(err.to_string().contains("not the master key"), "{err}");
    // Even an empty store knows its key.
    let empty = tempfile::tempdir().unwrap();
    drop(Store::open_with_key(empty.path(), key()).unwrap());
    assert!(matches!(
        Store::open_with_key(empty.path(), MasterKey::generate()),
        Err(StoreError::MasterKey(_))
    ));
    // The right key still works.
    assert_eq!(
        Store::open_with_key(dir.path(), key())
            .unwrap()
            .snapshot()
            .revision,
        2
    );
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

#[test]
fn access_keys_lifecycle() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_with_key(dir.path(), key()).unwrap();
    let (id, secret) = store.create_access_key("admin", KeyScope::Admin).unwrap();
    assert_eq!(id.len(), 20);
    assert!(id.starts_with("AKIA"));
    assert!(id
        .bytes()
        .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()));
    assert_eq!(secret.len(), 40);
    assert!(secret.bytes().all(|b| b.is_ascii_alphanumeric()));
    let (id2, secret2) = store.create_access_key("ci", KeyScope::Admin).unwrap();
    assert_ne!(id, id2);
    assert_ne!(secret, secret2);

    assert_eq!(
        store.access_key_secret(&id).unwrap().as_deref(),
        Some(secret.as_str())
    );
    assert_eq!(
        store.access_key_secret("AKIANOSUCHKEY0000000").unwrap(),
        None
    );
    let list = store.list_access_keys().unwrap();
    assert_eq!(list.len(), 2);
    let admin = list.iter().find(|k| k.id == id).unwrap();
    assert_eq!(admin.description, "admin");
    assert!(admin.active);
    assert!(admin.created > 1_700_000_000);

    assert_eq!(store.revoke_access_key(&id2).unwrap(), Revocation::Revoked);
    assert_eq!(
        store.revoke_access_key(&id2).unwrap(),
        Revocation::NoSuchKey
    );
    assert_eq!(
        store.revoke_access_key("AKIANOSUCHKEY0000000").unwrap(),
        Revocation::NoSuchKey
    );
    assert_eq!(store.access_key_secret(&id2).unwrap(), None);
    drop(store);

    let store = Store::open_with_key(dir.path(), key()).unwrap();
    assert_eq!(
        store.access_key_secret(&id).unwrap().as_deref(),
        Some(secret.as_str())
    );
    assert_eq!(store.access_key_secret(&id2).unwrap(), None);
    let list = store.list_access_keys().unwrap();
    assert_eq!(
        list.iter()
            .map(|k| (k.id.as_str(), k.active))
            .filter(|k| k.1)
            .count(),
        1
    );
    assert!(list
        .iter()
        .any(|k| k.id == id2 && !k.active && k.description == "ci"));
    // Access keys are not configuration: they never bump the revision.
    assert_eq!(store.snapshot().revision, 0);
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

#[test]
fn the_stickiness_key_is_drawn_once_kept_sealed_and_needs_the_master_key() {
    let dir = tempfile::tempdir().unwrap();
    let first = {
        let store = Store::open_with_key(dir.path(), key()).unwrap();
        let a = store.stickiness_key().unwrap();
        let b = store.stickiness_key().unwrap();
        assert_eq!(*a, *b, "drawn once");
        assert_eq!(a.len(), 32);
        assert_ne!(a[..], [0u8; 32]);
        a.to_vec()
    };
    // Another process on the same data dir (a restart, an upgrade) gets the same key.
    let store = Store::open_with_key(dir.path(), key()).unwrap();
    assert_eq!(*store.stickiness_key().unwrap(), first);
    drop(store);
    // Never in plain text on disk.
    let mut disk = Vec::new();
    for entry in fs::read_dir(dir.path()).unwrap() {
        disk.extend(fs::read(entry.unwrap().path()).unwrap());
    }
    assert!(
        !disk.windows(first.len()).any(|w| w == &first[..]),
        "the stickiness key is on disk in plain text"
    );
}

#[test]
fn two_racing_revocations_of_the_last_two_admin_keys_leave_one() {
    let dir = tempfile::tempdir().unwrap();
    for _ in 0..20 {
        let store = Store::open_with_key(dir.path(), key()).unwrap();
        for k in store.list_access_keys().unwrap() {
            if k.active {
                // Leave the database with exactly the two keys of this round.
                let _ = store.revoke_access_key(&k.id);
            }
        }
        let reader = store
            .create_access_key("reader", KeyScope::ReadOnly)
            .unwrap();
        let a = store.create_access_key("a", KeyScope::Admin).unwrap().0;
        let b = store.create_access_key("b", KeyScope::Admin).unwrap().0;
        for k in store.list_access_keys().unwrap() {
            if k.active && k.id != a && k.id != b && k.id != reader.0 {
                assert_eq!(store.revoke_access_key(&k.id).unwrap(), Revocation::Revoked);
            }
        }
        // Two handles on the database, as two API calls (or two processes) would be.
        let other = Store::open_with_key(dir.path(), key()).unwrap();
        let barrier = std::sync::Barrier::new(2);
        let (ra, rb) = std::thread::scope(|s| {
            let ta = s.spawn(|| {
                barrier.wait();
                store.revoke_access_key(&a).unwrap()
            });
            let tb = s.spawn(|| {
                barrier.wait();
                other.revoke_access_key(&b).unwrap()
            });
            (ta.join().unwrap(), tb.join().unwrap())
        });
        let mut outcomes = [ra, rb];
        outcomes.sort_by_key(|o| *o == Revocation::Revoked);
        assert_eq!(outcomes, [Revocation::LastAdmin, Revocation::Revoked]);
        let admins: Vec<_> = store
            .list_access_keys()
            .unwrap()
            .into_iter()
            .filter(|k| k.active && k.scope == KeyScope::Admin)
            .collect();
        assert_eq!(admins.len(), 1, "{admins:?}");
        // A read-only key can always go.
        assert_eq!(
            store.revoke_access_key(&reader.0).unwrap(),
            Revocation::Revoked
        );
    }
}
