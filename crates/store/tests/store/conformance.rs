//! One suite, two backends: every test here runs once on SQLite and once on a real etcd.

use std::sync::{Arc, Barrier};

use fulcrum_model::{ModelError, PrivateKeyPem};
use fulcrum_store::{KeyScope, MasterKey, Revocation, StoreError};

use super::{contains, fake_pem, http_lb_named, populate, Fixture, KEY_BODY};

/// `conformance!(name)` runs `fn name(f: Fixture)` as `name::sqlite` and `name::etcd`.
macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[test]
                fn sqlite() {
                    super::$name(super::Fixture::sqlite());
                }
                #[test]
                fn etcd() {
                    super::$name(super::Fixture::etcd());
                }
            }
        )*
    };
}

conformance!(
    state_and_keys_survive_reopen,
    a_refused_change_changes_nothing,
    the_watch_sees_every_revision,
    racing_writers_lose_nothing,
    no_secret_is_stored_in_plain_text,
    the_wrong_master_key_is_refused,
    access_keys_lifecycle,
    the_stickiness_key_is_drawn_once,
    two_racing_revocations_of_the_last_two_admin_keys_leave_one,
);

fn state_and_keys_survive_reopen(f: Fixture) {
    let before = {
        let store = f.open();
        assert_eq!(store.snapshot().revision, 0);
        populate(&store);
        store.snapshot()
    };
    assert!(before.revision > 0);
    let store = f.open();
    let after = store.snapshot();
    assert_eq!(after.revision, before.revision);
    assert_eq!(after.state, before.state);
    assert_eq!(
        after.state.certificates["ASCA2"].private_key.expose(),
        fake_pem("two")
    );
    store
        .update(|s| {
            s.delete_certificate("two")?;
            s.certificates.get_mut("ASCA1").unwrap().private_key =
                PrivateKeyPem::new(fake_pem("rotated"));
            Ok(())
        })
        .unwrap();
    let changed = store.snapshot();
    drop(store);
    let snap = f.open().snapshot();
    assert_eq!(snap.revision, changed.revision);
    assert!(snap.revision > before.revision);
    assert!(!snap.state.certificates.contains_key("ASCA2"));
    assert_eq!(
        snap.state.certificates["ASCA1"].private_key.expose(),
        fake_pem("rotated")
    );
    // The deleted certificate's key is gone from what is stored.
    assert_eq!(f.sealed_keys(), 1, "one certificate, one sealed key");
}

fn a_refused_change_changes_nothing(f: Fixture) {
    let store = f.open();
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

    // The store's own check: a certificate without a key is never stored.
    let err = store
        .update(|s| {
            s.certificates.get_mut("ASCA2").unwrap().private_key = PrivateKeyPem::default();
            Ok(())
        })
        .unwrap_err();
    assert!(matches!(err, StoreError::Model(_)), "{err}");
    assert_eq!(store.snapshot().state, before.state);

    // A no-op change is accepted without a new revision.
    store.update(|s| s.delete_load_balancer("absent")).unwrap();
    assert_eq!(store.snapshot().revision, before.revision);
    assert!(!rx.has_changed().unwrap());
    drop(store);
    let store = f.open();
    assert_eq!(store.snapshot().revision, before.revision);
    assert_eq!(store.snapshot().state, before.state);
}

fn the_watch_sees_every_revision(f: Fixture) {
    let store = Arc::new(f.open());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut rx = store.watch();
    assert_eq!(rx.borrow().revision, 0);
    // The watch keeps only the latest value, so the writer waits for each revision to be seen
    // before making the next; what is tested is that every commit wakes the watcher.
    let (ack_tx, ack_rx) = std::sync::mpsc::channel::<()>();
    let writer = {
        let store = store.clone();
        std::thread::spawn(move || {
            for i in 1..=3u16 {
                store
                    .update(|s| http_lb_named(s, &format!("lb{i}"), i))
                    .unwrap();
                ack_rx.recv().unwrap();
            }
        })
    };
    let seen = runtime.block_on(async move {
        let mut seen = Vec::new();
        while seen.len() < 3 {
            rx.changed().await.unwrap();
            let snap = rx.borrow_and_update().clone();
            assert_eq!(snap.state.load_balancers.len(), seen.len() + 1);
            seen.push(snap.revision);
            ack_tx.send(()).unwrap();
        }
        seen
    });
    writer.join().unwrap();
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "{seen:?}");
    assert_eq!(store.snapshot().revision, seen[2]);
}

/// Two handles (two processes on one data dir, two nodes of a fleet) change the state at the
/// same time: every change lands once, and of two changes that cannot both apply, one fails
/// with the model's error.
fn racing_writers_lose_nothing(f: Fixture) {
    let a = f.open();
    let b = f.open();
    let barrier = Barrier::new(2);
    std::thread::scope(|scope| {
        for (store, side) in [(&a, "a"), (&b, "b")] {
            let barrier = &barrier;
            scope.spawn(move || {
                barrier.wait();
                for i in 0..8u16 {
                    let port = if side == "a" { 1000 + i } else { 2000 + i };
                    store
                        .update(|s| http_lb_named(s, &format!("{side}{i}"), port))
                        .unwrap();
                }
            });
        }
    });
    // The same name with two different configurations: one wins, one is told.
    let outcomes = std::thread::scope(|scope| {
        let handles: Vec<_> = [(&a, 3000u16), (&b, 3001u16)]
            .into_iter()
            .map(|(store, port)| {
                let barrier = &barrier;
                scope.spawn(move || {
                    barrier.wait();
                    store.update(|s| http_lb_named(s, "contested", port))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .collect::<Vec<_>>()
    });
    let failures: Vec<_> = outcomes.iter().filter_map(|o| o.as_ref().err()).collect();
    assert_eq!(failures.len(), 1, "{outcomes:?}");
    assert!(
        matches!(
            failures[0],
            StoreError::Model(ModelError::DuplicateLoadBalancerName(_))
        ),
        "{:?}",
        failures[0]
    );
    for store in [&a, &b] {
        store.reload().unwrap();
        let state = &store.snapshot().state;
        assert_eq!(
            state.load_balancers.len(),
            17,
            "{:?}",
            state.load_balancers.keys()
        );
    }
    assert_eq!(a.snapshot().revision, b.snapshot().revision);
}

fn no_secret_is_stored_in_plain_text(f: Fixture) {
    let store = f.open();
    populate(&store);
    let (_, secret) = store.create_access_key("admin", KeyScope::Admin).unwrap();
    let revoked = store.create_access_key("old", KeyScope::Admin).unwrap();
    store.revoke_access_key(&revoked.0).unwrap();
    let stickiness = store.stickiness_key().unwrap().to_vec();
    let needles = [
        fake_pem("one"),
        fake_pem("two"),
        KEY_BODY.to_owned(),
        secret.clone(),
        revoked.1.clone(),
    ];
    let check = |when: &str| {
        let stored = f.stored_bytes();
        for (name, bytes) in &stored {
            for needle in &needles {
                assert!(
                    !contains(bytes, needle),
                    "{when}: {name} holds a secret in plain text"
                );
            }
            assert!(
                !bytes
                    .windows(stickiness.len())
                    .any(|w| w == &stickiness[..]),
                "{when}: {name} holds the stickiness key in plain text"
            );
        }
        // The search is not vacuous: the state is there.
        assert!(
            stored.iter().any(|(_, b)| contains(b, "BODYASCA1")),
            "{when}: the state is not stored?"
        );
    };
    check("while open");
    assert!(!format!("{store:?}").contains(KEY_BODY));
    assert!(!format!("{:?}", store.snapshot()).contains(KEY_BODY));
    drop(store);
    check("after close");
}

fn the_wrong_master_key_is_refused(f: Fixture) {
    // Even an empty store knows its key.
    drop(f.open());
    let err = f.open_with(MasterKey::generate()).unwrap_err();
    assert!(matches!(err, StoreError::MasterKey(_)), "{err}");
    assert!(err.to_string().contains("not the master key"), "{err}");
    populate(&f.open());
    assert!(matches!(
        f.open_with(MasterKey::generate()),
        Err(StoreError::MasterKey(_))
    ));
    assert!(f.open().snapshot().revision > 0);
}

fn access_keys_lifecycle(f: Fixture) {
    let store = f.open();
    let (id, secret) = store.create_access_key("admin", KeyScope::Admin).unwrap();
    assert_eq!(id.len(), 20);
    assert!(id.starts_with("AKIA"));
    assert!(id
        .bytes()
        .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()));
    assert_eq!(secret.len(), 40);
    assert!(secret.bytes().all(|b| b.is_ascii_alphanumeric()));
    let (id2, secret2) = store.create_access_key("ci", KeyScope::ReadOnly).unwrap();
    assert_ne!(id, id2);
    assert_ne!(secret, secret2);
    assert_eq!(
        store.access_key(&id).unwrap(),
        Some((secret.clone(), KeyScope::Admin))
    );
    assert_eq!(
        store.access_key(&id2).unwrap(),
        Some((secret2.clone(), KeyScope::ReadOnly))
    );
    assert_eq!(store.access_key("AKIANOSUCHKEY0000000").unwrap(), None);
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
    assert_eq!(store.revoke_access_key(&id).unwrap(), Revocation::LastAdmin);
    assert_eq!(store.access_key_secret(&id2).unwrap(), None);
    drop(store);

    // Another handle sees the same keys.
    let store = f.open();
    assert_eq!(
        store.access_key_secret(&id).unwrap().as_deref(),
        Some(secret.as_str())
    );
    assert_eq!(store.access_key_secret(&id2).unwrap(), None);
    let list = store.list_access_keys().unwrap();
    assert_eq!(list.iter().filter(|k| k.active).count(), 1);
    assert!(list
        .iter()
        .any(|k| k.id == id2 && !k.active && k.description == "ci"));
    // Access keys are not configuration: they never make a revision.
    assert_eq!(store.snapshot().revision, 0);
}

fn the_stickiness_key_is_drawn_once(f: Fixture) {
    let first = {
        let store = f.open();
        let a = store.stickiness_key().unwrap();
        let b = store.stickiness_key().unwrap();
        assert_eq!(*a, *b, "drawn once");
        assert_eq!(a.len(), 32);
        assert_ne!(a[..], [0u8; 32]);
        a.to_vec()
    };
    // Another handle (a restart, an upgrade, another node) gets the same key, and two handles
    // asking at once for a key nobody drew yet agree too.
    assert_eq!(*f.open().stickiness_key().unwrap(), first);
    let (a, b) = (f.open(), f.open());
    let barrier = Barrier::new(2);
    let (ka, kb) = std::thread::scope(|s| {
        let ta = s.spawn(|| {
            barrier.wait();
            a.node_secret("race", || Ok(zeroize::Zeroizing::new(vec![1u8; 8])))
                .unwrap()
        });
        let tb = s.spawn(|| {
            barrier.wait();
            b.node_secret("race", || Ok(zeroize::Zeroizing::new(vec![2u8; 8])))
                .unwrap()
        });
        (ta.join().unwrap(), tb.join().unwrap())
    });
    assert_eq!(*ka, *kb);
}

fn two_racing_revocations_of_the_last_two_admin_keys_leave_one(f: Fixture) {
    let store = f.open();
    let other = f.open();
    let reader = store
        .create_access_key("reader", KeyScope::ReadOnly)
        .unwrap();
    for _ in 0..5 {
        let a = store.create_access_key("a", KeyScope::Admin).unwrap().0;
        let b = store.create_access_key("b", KeyScope::Admin).unwrap().0;
        for k in store.list_access_keys().unwrap() {
            if k.active && k.scope == KeyScope::Admin && k.id != a && k.id != b {
                assert_eq!(store.revoke_access_key(&k.id).unwrap(), Revocation::Revoked);
            }
        }
        let barrier = Barrier::new(2);
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
        let admins = store
            .list_access_keys()
            .unwrap()
            .into_iter()
            .filter(|k| k.active && k.scope == KeyScope::Admin)
            .count();
        assert_eq!(admins, 1);
    }
    // A read-only key can always go.
    assert_eq!(
        store.revoke_access_key(&reader.0).unwrap(),
        Revocation::Revoked
    );
}
