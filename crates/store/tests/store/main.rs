//! The store against real backends: SQLite files in a temporary data dir, and a real etcd on
//! loopback. `conformance` runs the same tests on both; `sqlite` and `etcd` what only one has.

mod conformance;
mod etcd;
mod sqlite;

use std::path::{Path, PathBuf};

use fulcrum_model::{InstanceId, Listener, PrivateKeyPem, Protocol, ServerCertificate};
use fulcrum_store::{EtcdConfig, MasterKey, Store, StoreError};
use fulcrum_testkit::Etcd;

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

/// A plain HTTP load balancer `name` on `port`.
fn http_lb_named(
    s: &mut fulcrum_model::State,
    name: &str,
    port: u16,
) -> Result<(), fulcrum_model::ModelError> {
    s.create_load_balancer(
        name,
        vec![Listener::new(Protocol::Http, port, Protocol::Http, 80)],
        0,
    )
}

/// Where a conformance test keeps its store. Every `open` is another handle on the same
/// stored state: another process on one data dir, or another node of one fleet.
enum Fixture {
    Sqlite(tempfile::TempDir),
    Etcd {
        etcd: Box<Etcd>,
        /// One data dir per handle (each node has its own), for the local caches.
        dirs: tempfile::TempDir,
    },
}

impl Fixture {
    fn sqlite() -> Fixture {
        Fixture::Sqlite(tempfile::tempdir().unwrap())
    }

    fn etcd() -> Fixture {
        Fixture::Etcd {
            etcd: Box::new(Etcd::start()),
            dirs: tempfile::tempdir().unwrap(),
        }
    }

    fn open(&self) -> Store {
        self.open_with(key()).unwrap()
    }

    fn open_with(&self, key: MasterKey) -> Result<Store, StoreError> {
        match self {
            Fixture::Sqlite(dir) => Store::open_with_key(dir.path(), key),
            Fixture::Etcd { etcd, dirs } => {
                Store::open_etcd_with_key(&node_dir(dirs.path()), etcd_config(etcd), key)
            }
        }
    }

    /// Every byte the backend keeps: the data dir's files, or every value (and key) in etcd.
    fn stored_bytes(&self) -> Vec<(String, Vec<u8>)> {
        match self {
            Fixture::Sqlite(dir) => std::fs::read_dir(dir.path())
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| p.file_name().unwrap() != fulcrum_store::MASTER_KEY_FILE)
                .map(|p| (p.display().to_string(), std::fs::read(&p).unwrap()))
                .collect(),
            Fixture::Etcd { etcd, dirs } => {
                // Keys too: a name could carry a secret as well as a value.
                let mut all: Vec<(String, Vec<u8>)> = block_on(etcd.dump())
                    .into_iter()
                    .map(|(k, v)| (k.clone(), [k.into_bytes(), v].concat()))
                    .collect();
                // The local caches are part of what a node keeps.
                for node in std::fs::read_dir(dirs.path()).unwrap() {
                    let cache = node.unwrap().path().join(fulcrum_store::CACHE_FILE);
                    if let Ok(bytes) = std::fs::read(&cache) {
                        all.push((cache.display().to_string(), bytes));
                    }
                }
                all
            }
        }
    }
}

impl Fixture {
    /// How many sealed private keys the backend keeps.
    fn sealed_keys(&self) -> usize {
        match self {
            Fixture::Sqlite(dir) => {
                let n: i64 = rusqlite::Connection::open(dir.path().join(fulcrum_store::DB_FILE))
                    .unwrap()
                    .query_row("SELECT count(*) FROM private_keys", [], |r| r.get(0))
                    .unwrap();
                usize::try_from(n).unwrap()
            }
            Fixture::Etcd { etcd, .. } => block_on(etcd.dump())
                .iter()
                .filter(|(k, _)| k.starts_with(&format!("{}keys/", fulcrum_store::DEFAULT_PREFIX)))
                .count(),
        }
    }
}

/// A data dir of its own for each node.
fn node_dir(root: &Path) -> PathBuf {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    root.join(format!("node{n}"))
}

fn etcd_config(etcd: &Etcd) -> EtcdConfig {
    EtcdConfig::from_url(&etcd.url()).unwrap()
}

/// Runs `work` to its end on a runtime of its own (these tests are not async).
fn block_on<F: std::future::Future>(work: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(work)
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}
