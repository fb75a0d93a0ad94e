//! A fulcrum node in the test process: a store in a temporary directory and a data plane that
//! follows it, listening on its own loopback address so that tests can run side by side.

#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use fulcrum_model::{
    HealthCheck, InstanceId, LbName, Listener, ModelError, PrivateKeyPem, Protocol,
    ServerCertificate, State,
};
use fulcrum_proxy::{DataPlane, DataPlaneConfig, HealthState};
use fulcrum_store::{MasterKey, Store};
use fulcrum_testkit::{eventually, Backend, TestCa};

/// Health checks run this many times faster than configured.
pub const TIME_SCALE: u32 = 20;

static NEXT_BLOCK: AtomicU8 = AtomicU8::new(0);

/// A distinct 127.x.y.0/24 block for each node in this process; the second octet comes from the
/// process id so that test binaries running at once stay apart too.
fn address_block() -> [u8; 3] {
    let block = NEXT_BLOCK.fetch_add(1, Ordering::Relaxed);
    let pid = std::process::id();
    [127, 10 + (pid % 240) as u8, block]
}

pub struct Node {
    pub store: Arc<Store>,
    pub dp: DataPlane,
    pub ca: TestCa,
    pub bind: IpAddr,
    block: [u8; 3],
    next_port: std::sync::atomic::AtomicU16,
    _dir: tempfile::TempDir,
}

impl Node {
    pub async fn start() -> Node {
        Node::start_with(|_| {}).await
    }

    pub async fn start_with(tune: impl FnOnce(&mut DataPlaneConfig)) -> Node {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open_with_key(dir.path(), MasterKey::generate()).unwrap());
        let block = address_block();
        let bind = IpAddr::V4(Ipv4Addr::new(block[0], block[1], block[2], 1));
        let mut config = DataPlaneConfig {
            bind: vec![bind],
            health_check_time_scale: TIME_SCALE,
            ..DataPlaneConfig::default()
        };
        tune(&mut config);
        let dp = DataPlane::new(config).unwrap();
        dp.follow(store.watch());
        // Started once its first (empty) state is applied: what is registered from then on is
        // registered on a running node, with ELB's thresholds.
        let ready = dp.clone();
        eventually("the node to start", Duration::from_secs(5), move || {
            let dp = ready.clone();
            async move { dp.is_ready() }
        })
        .await;
        Node {
            store,
            dp,
            ca: TestCa::new("fulcrum test CA"),
            bind,
            block,
            next_port: std::sync::atomic::AtomicU16::new(20000),
            _dir: dir,
        }
    }

    /// A port for a listener on this node's address (the address is the node's own).
    pub fn port(&self) -> u16 {
        self.next_port.fetch_add(1, Ordering::Relaxed)
    }

    pub fn addr(&self, port: u16) -> SocketAddr {
        SocketAddr::new(self.bind, port)
    }

    /// Applies a change and waits until the data plane runs it.
    pub async fn change<T>(&self, f: impl FnOnce(&mut State) -> Result<T, ModelError>) -> T {
        // Run once: this store has no other writer, so no change is retried after a conflict.
        let mut f = Some(f);
        let out = self
            .store
            .update(|s| f.take().expect("a change of the only writer runs once")(s))
            .unwrap();
        let revision = self.store.snapshot().revision;
        let dp = self.dp.clone();
        eventually(
            "the change to be applied",
            Duration::from_secs(5),
            move || {
                let dp = dp.clone();
                async move { dp.applied_revision() >= revision }
            },
        )
        .await;
        out
    }

    /// Uploads a certificate for `names` signed by the node's CA; returns its id.
    pub async fn certificate(&self, name: &str, names: &[&str]) -> String {
        let (body, key) = self.ca.issue(names);
        self.upload(name, body, key).await
    }

    pub async fn upload(&self, name: &str, body: String, key: String) -> String {
        let imported = fulcrum_tls::import_certificate(&body, &key, None).unwrap();
        let cert = ServerCertificate {
            id: format!("ASCA{}", name.to_uppercase().replace(['-', '.'], "")),
            name: name.into(),
            path: "/".into(),
            upload_date: 0,
            expiration: imported.not_after,
            body_pem: body,
            chain_pem: None,
            private_key: PrivateKeyPem::new(key),
            tags: vec![],
        };
        let id = cert.id.clone();
        self.change(|s| s.add_certificate(cert)).await;
        id
    }

    /// `n` instances on one port, each on its own address of this node's block.
    pub async fn backends(&self, n: usize) -> (Vec<Backend>, u16) {
        let ip = |i: usize| self.instance_ip(i);
        let first = Backend::start_on("i-0", SocketAddr::new(ip(0), 0))
            .await
            .unwrap();
        let port = first.addr().port();
        let mut all = vec![first];
        for i in 1..n {
            all.push(
                Backend::start_on(&format!("i-{i}"), SocketAddr::new(ip(i), port))
                    .await
                    .unwrap(),
            );
        }
        (all, port)
    }

    /// The address of the node's `i`-th instance (instances share a port, as in ELB).
    pub fn instance_ip(&self, i: usize) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(
            self.block[0],
            self.block[1],
            self.block[2],
            100 + i as u8,
        ))
    }

    /// A load balancer with these listeners and instances, an HTTP health check on `/health`,
    /// and every instance in service when it returns.
    pub async fn load_balancer(&self, name: &str, listeners: Vec<Listener>, instances: &[Backend]) {
        let health_port = listeners[0].instance_port;
        let ids = ids(instances);
        self.change(|s| {
            s.create_load_balancer(name, listeners, 0)?;
            s.configure_health_check(name, fast_check(&format!("HTTP:{health_port}/health")))?;
            s.register_instances(name, &ids)
        })
        .await;
        for id in &ids {
            self.wait_state(name, id, HealthState::InService).await;
        }
    }

    pub async fn wait_state(&self, lb: &str, id: &InstanceId, want: HealthState) {
        let lb = LbName::parse(lb).unwrap();
        let dp = self.dp.clone();
        let id2 = id.clone();
        eventually(
            &format!("{id} to be {want:?}"),
            Duration::from_secs(10),
            move || {
                let (dp, lb, id) = (dp.clone(), lb.clone(), id2.clone());
                async move {
                    dp.instance_health(&lb, &id)
                        .is_some_and(|h| h.state == want)
                }
            },
        )
        .await;
    }

    pub fn health(&self, lb: &str, id: &InstanceId) -> Option<fulcrum_proxy::HealthStatus> {
        self.dp.instance_health(&LbName::parse(lb).unwrap(), id)
    }

    pub fn tls_client(&self, alpn: &[&[u8]]) -> Arc<rustls::ClientConfig> {
        fulcrum_testkit::client_tls_config(&self.ca.cert_pem(), alpn)
    }
}

/// The instance ids of backends: their literal addresses.
pub fn ids(backends: &[Backend]) -> Vec<InstanceId> {
    backends
        .iter()
        .map(|b| InstanceId::parse(&b.addr().ip().to_string()).unwrap())
        .collect()
}

/// ELB's fastest health check: every 5 s (here divided by TIME_SCALE), 2 to come in or go out.
pub fn fast_check(target: &str) -> HealthCheck {
    HealthCheck {
        target: target.parse().unwrap(),
        interval_secs: 5,
        timeout_secs: 2,
        healthy_threshold: 2,
        unhealthy_threshold: 2,
    }
}

pub fn http(port: u16, instance_port: u16) -> Listener {
    Listener::new(Protocol::Http, port, Protocol::Http, instance_port)
}

pub fn https(port: u16, instance_port: u16, certs: &[&str]) -> Listener {
    let mut l = Listener::new(Protocol::Https, port, Protocol::Http, instance_port);
    l.certificates = certs.iter().map(|c| c.to_string()).collect();
    l
}
