//! What only the etcd store has: losing etcd and finding it again, starting from the local copy,
//! a watch that resumes (or reads everything again after a compaction), etcd's authentication,
//! a leader change.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fulcrum_store::{EtcdConfig, KeyScope, Store, StoreError, StoreHealth};
use fulcrum_testkit::{Etcd, EtcdCluster};

use super::{block_on, etcd_config, fake_pem, http_lb_named, key, node_dir, populate};

/// Polls `f` until it holds, for at most `limit`.
fn wait_until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn degraded(store: &Store) -> bool {
    matches!(store.health(), StoreHealth::Degraded { .. })
}

#[test]
fn losing_etcd_keeps_the_snapshot_refuses_changes_and_catches_up() {
    let mut etcd = Etcd::start();
    let dirs = tempfile::tempdir().unwrap();
    let a = Store::open_etcd_with_key(&node_dir(dirs.path()), etcd_config(&etcd), key()).unwrap();
    let b = Store::open_etcd_with_key(&node_dir(dirs.path()), etcd_config(&etcd), key()).unwrap();
    populate(&a);
    let (id, secret) = a.create_access_key("admin", KeyScope::Admin).unwrap();
    let before = a.snapshot();
    wait_until("b sees a's writes", Duration::from_secs(5), || {
        b.snapshot().revision == before.revision
    });

    etcd.stop();
    let lost = Instant::now();
    wait_until("a notices", Duration::from_secs(10), || degraded(&a));
    eprintln!("the store noticed etcd was gone after {:?}", lost.elapsed());
    let err = a.update(|s| http_lb_named(s, "later", 81)).unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err}");
    assert!(err.to_string().contains("unreachable"), "{err}");
    // Still serving what it had, signed reads included.
    assert_eq!(a.snapshot().state, before.state);
    assert_eq!(
        a.access_key(&id).unwrap(),
        Some((secret.clone(), KeyScope::Admin))
    );

    etcd.resume();
    wait_until("a is back", Duration::from_secs(15), || !degraded(&a));
    a.update(|s| http_lb_named(s, "later", 81)).unwrap();
    wait_until("b catches up", Duration::from_secs(15), || {
        b.snapshot().state.load_balancer("later").is_ok()
    });
    assert!(!degraded(&b));
}

#[test]
fn a_node_starts_from_its_local_copy_while_etcd_is_down() {
    let mut etcd = Etcd::start();
    let dirs = tempfile::tempdir().unwrap();
    let dir = node_dir(dirs.path());
    let before = {
        let store = Store::open_etcd_with_key(&dir, etcd_config(&etcd), key()).unwrap();
        populate(&store);
        store.snapshot()
    };
    etcd.stop();

    let store = Store::open_etcd_with_key(&dir, etcd_config(&etcd), key()).unwrap();
    assert!(degraded(&store));
    assert_eq!(store.snapshot().state, before.state);
    assert_eq!(
        store.snapshot().state.certificates["ASCA1"]
            .private_key
            .expose(),
        fake_pem("one")
    );
    // The copy is no use with another master key, and a node with no copy cannot start.
    let err = Store::open_etcd_with_key(
        &dir,
        etcd_config(&etcd),
        fulcrum_store::MasterKey::generate(),
    )
    .unwrap_err();
    assert!(matches!(err, StoreError::MasterKey(_)), "{err}");
    let err =
        Store::open_etcd_with_key(&node_dir(dirs.path()), etcd_config(&etcd), key()).unwrap_err();
    assert!(
        matches!(err, StoreError::Unavailable(_)) && err.to_string().contains("no local copy"),
        "{err}"
    );

    etcd.resume();
    wait_until("the node reaches etcd", Duration::from_secs(15), || {
        !degraded(&store)
    });
    store.update(|s| http_lb_named(s, "after", 82)).unwrap();
}

/// A loopback TCP relay to etcd that the test can cut (every connection closed, new ones
/// refused) and restore: a node cut off from etcd while the rest of the fleet goes on.
struct Relay {
    addr: std::net::SocketAddr,
    cut: Arc<AtomicBool>,
    _runtime: tokio::runtime::Runtime,
}

impl Relay {
    fn to(target: String) -> Relay {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let cut = Arc::new(AtomicBool::new(false));
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let flag = cut.clone();
        runtime.spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    return;
                };
                if flag.load(Ordering::SeqCst) {
                    continue; // dropped: refused
                }
                let target = target.clone();
                let flag = flag.clone();
                tokio::spawn(async move {
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await else {
                        return;
                    };
                    let copy = tokio::io::copy_bidirectional(&mut inbound, &mut outbound);
                    let watch_cut = async {
                        while !flag.load(Ordering::SeqCst) {
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                    };
                    tokio::select! {
                        _ = copy => {}
                        _ = watch_cut => {}
                    }
                });
            }
        });
        Relay {
            addr,
            cut,
            _runtime: runtime,
        }
    }

    fn set_cut(&self, cut: bool) {
        self.cut.store(cut, Ordering::SeqCst);
    }
}

#[test]
fn a_watch_resumes_where_it_was_and_reads_everything_after_a_compaction() {
    let etcd = Etcd::start();
    let relay = Relay::to(etcd.endpoint());
    let dirs = tempfile::tempdir().unwrap();
    let far = Store::open_etcd_with_key(
        &node_dir(dirs.path()),
        EtcdConfig::from_url(&format!("etcd://{}", relay.addr)).unwrap(),
        key(),
    )
    .unwrap();
    let near =
        Store::open_etcd_with_key(&node_dir(dirs.path()), etcd_config(&etcd), key()).unwrap();
    populate(&near);
    wait_until("far sees it", Duration::from_secs(5), || {
        far.snapshot().revision == near.snapshot().revision
    });

    // Cut off, the far node misses a change, then catches up from where its watch was.
    relay.set_cut(true);
    wait_until("far notices", Duration::from_secs(15), || degraded(&far));
    near.update(|s| http_lb_named(s, "missed", 90)).unwrap();
    relay.set_cut(false);
    wait_until("far catches up", Duration::from_secs(15), || {
        far.snapshot().state.load_balancer("missed").is_ok()
    });

    // Cut off again; this time etcd compacts the history it missed.
    relay.set_cut(true);
    wait_until("far notices again", Duration::from_secs(15), || {
        degraded(&far)
    });
    near.update(|s| s.delete_load_balancer("missed")).unwrap();
    near.update(|s| http_lb_named(s, "compacted", 91)).unwrap();
    let revision = i64::try_from(near.snapshot().revision).unwrap();
    compact(&etcd, revision);
    relay.set_cut(false);
    wait_until(
        "far reads everything again",
        Duration::from_secs(15),
        || {
            let lbs = &far.snapshot().state.load_balancers;
            lbs.iter().any(|(n, _)| n.as_str() == "compacted")
                && !lbs.iter().any(|(n, _)| n.as_str() == "missed")
        },
    );
    assert_eq!(far.snapshot().state, near.snapshot().state);
}

fn compact(etcd: &Etcd, revision: i64) {
    block_on(async {
        etcd.client()
            .await
            .compact(
                revision,
                Some(etcd_client::CompactionOptions::new().with_physical()),
            )
            .await
            .unwrap();
    });
}

/// etcd with authentication and tokens that expire after 2 s: the store logs in again by
/// itself, for writes and for its watch.
#[test]
fn expired_auth_tokens_are_renewed() {
    let etcd = Etcd::start_with(&["--auth-token=simple", "--auth-token-ttl=2"]);
    block_on(async {
        let mut client = etcd.client().await;
        client.user_add("root", "rootpw", None).await.unwrap();
        client.user_grant_role("root", "root").await.unwrap();
        client.auth_enable().await.unwrap();
    });
    let dirs = tempfile::tempdir().unwrap();
    let config = |etcd: &Etcd| {
        let mut c = etcd_config(etcd);
        c.user = Some("root".into());
        c.password = Some(zeroize::Zeroizing::new("rootpw".into()));
        c
    };
    let a = Store::open_etcd_with_key(&node_dir(dirs.path()), config(&etcd), key()).unwrap();
    let b = Store::open_etcd_with_key(&node_dir(dirs.path()), config(&etcd), key()).unwrap();
    populate(&a);
    // Past the tokens' lifetime: nothing here can signal that a token expired.
    std::thread::sleep(Duration::from_secs(4));
    a.update(|s| http_lb_named(s, "after-expiry", 83)).unwrap();
    wait_until("b's watch still delivers", Duration::from_secs(10), || {
        b.snapshot().state.load_balancer("after-expiry").is_ok()
    });
    b.update(|s| http_lb_named(s, "from-b", 84)).unwrap();
    // A wrong password is an error that says so, not a hang.
    let mut wrong = config(&etcd);
    wrong.password = Some(zeroize::Zeroizing::new("nope".into()));
    let started = Instant::now();
    let err = Store::open_etcd_with_key(&node_dir(dirs.path()), wrong, key()).unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(err.to_string().contains("etcd"), "{err}");
}

/// A three-member etcd loses its leader: the store goes on with the other two (a write may
/// wait for the election, and is refused rather than lost meanwhile), and its watch still
/// delivers.
#[test]
fn a_leader_change_is_survived_without_a_restart() {
    let mut cluster = EtcdCluster::start(3);
    let dirs = tempfile::tempdir().unwrap();
    let config = || EtcdConfig::from_url(&cluster.url()).unwrap();
    let a = Store::open_etcd_with_key(&node_dir(dirs.path()), config(), key()).unwrap();
    let b = Store::open_etcd_with_key(&node_dir(dirs.path()), config(), key()).unwrap();
    populate(&a);
    let old = leader(&cluster, None);
    cluster.members[old].stop();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match a.update(|s| http_lb_named(s, "after-election", 85)) {
            Ok(()) => break,
            Err(StoreError::Unavailable(why)) => {
                assert!(Instant::now() < deadline, "still unavailable: {why}");
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => panic!("{e}"),
        }
    }
    wait_until(
        "b's watch delivers after the election",
        Duration::from_secs(30),
        || b.snapshot().state.load_balancer("after-election").is_ok(),
    );
    wait_until("both healthy", Duration::from_secs(30), || {
        !degraded(&a) && !degraded(&b)
    });
    assert_ne!(leader(&cluster, Some(old)), old);
}

/// The member etcd's leader is on, asked with etcd's own client of every member but `stopped`.
fn leader(cluster: &EtcdCluster, stopped: Option<usize>) -> usize {
    block_on(async {
        for (i, member) in cluster.members.iter().enumerate() {
            if Some(i) == stopped {
                continue;
            }
            let status = member.client().await.status().await.unwrap();
            if status.leader() == status.header().unwrap().member_id() {
                return i;
            }
        }
        panic!("no running member is the leader")
    })
}

/// etcd that speaks only TLS and asks for client certificates: with `ca`, `cert` and `key`
/// the store works; without a client certificate it is refused with an error, not a hang.
#[test]
fn etcd_over_tls_with_client_certificates() {
    let ca = fulcrum_testkit::TestCa::new("etcd test CA");
    let etcd = Etcd::start_tls(&ca);
    let dirs = tempfile::tempdir().unwrap();
    let (cert, key_pem) = ca.issue(&["fulcrum-node"]);
    let cert_file = dirs.path().join("client.pem");
    let key_file = dirs.path().join("client-key.pem");
    std::fs::write(&cert_file, cert).unwrap();
    std::fs::write(&key_file, key_pem).unwrap();
    let config = |with_cert: bool| {
        let mut c = etcd_config(&etcd);
        c.ca = Some(etcd.ca_file());
        if with_cert {
            c.cert = Some(cert_file.clone());
            c.key = Some(key_file.clone());
        }
        c
    };
    let a = Store::open_etcd_with_key(&node_dir(dirs.path()), config(true), key()).unwrap();
    let b = Store::open_etcd_with_key(&node_dir(dirs.path()), config(true), key()).unwrap();
    populate(&a);
    wait_until(
        "b sees a's change over TLS",
        Duration::from_secs(10),
        || b.snapshot().revision == a.snapshot().revision,
    );
    let started = Instant::now();
    let err = Store::open_etcd_with_key(&node_dir(dirs.path()), config(false), key()).unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(15));
    assert!(err.to_string().contains("etcd"), "{err}");
}
