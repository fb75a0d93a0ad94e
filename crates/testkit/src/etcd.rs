//! A real etcd (Debian's `etcd-server`) for tests: one member on loopback, on ports picked free,
//! with its data in a temporary directory; stopped (and started again on the same data and
//! ports) by its process id.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long etcd gets to answer its health endpoint after a start.
const START_LIMIT: Duration = Duration::from_secs(30);

pub struct Etcd {
    child: Option<Child>,
    dir: tempfile::TempDir,
    client: SocketAddr,
    peer: SocketAddr,
    extra: Vec<String>,
    /// This member's name and the whole cluster (`name=peer-url,...`).
    name: String,
    initial_cluster: String,
    /// Where `/health` is asked when the client port speaks TLS (etcd's plain metrics port).
    metrics: Option<SocketAddr>,
}

/// Several members of one etcd cluster, for leader changes.
pub struct EtcdCluster {
    pub members: Vec<Etcd>,
}

impl EtcdCluster {
    /// Starts `n` members on loopback and waits until every one answers.
    pub fn start(n: usize) -> EtcdCluster {
        let lo = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let mut members: Vec<Etcd> = (0..n)
            .map(|i| Etcd {
                child: None,
                dir: tempfile::tempdir().expect("a temporary directory for etcd"),
                client: free_port(lo),
                peer: free_port(lo),
                extra: Vec::new(),
                name: format!("m{i}"),
                initial_cluster: String::new(),
                metrics: None,
            })
            .collect();
        let cluster = members
            .iter()
            .map(|m| format!("{}=http://{}", m.name, m.peer))
            .collect::<Vec<_>>()
            .join(",");
        // All first, then the wait: no member is healthy before a quorum is up.
        for m in &mut members {
            m.initial_cluster = cluster.clone();
            m.spawn();
        }
        for m in &mut members {
            m.wait_healthy();
        }
        EtcdCluster { members }
    }

    /// `etcd://a,b,c`.
    pub fn url(&self) -> String {
        let endpoints: Vec<String> = self.members.iter().map(Etcd::endpoint).collect();
        format!("etcd://{}", endpoints.join(","))
    }
}

/// Where etcd is: `ETCD_BIN`, else `etcd` on the PATH.
fn etcd_bin() -> PathBuf {
    std::env::var_os("ETCD_BIN").map_or_else(|| PathBuf::from("etcd"), PathBuf::from)
}

fn free_port(ip: IpAddr) -> SocketAddr {
    // Bound and released: etcd cannot be told to pick a port and say which.
    TcpListener::bind(SocketAddr::new(ip, 0))
        .and_then(|l| l.local_addr())
        .expect("a free port")
}

impl Etcd {
    /// Starts a fresh member and waits until it answers.
    pub fn start() -> Etcd {
        Etcd::start_with(&[])
    }

    /// Starts a fresh member with extra command-line flags (`--auth-token-ttl=2`, ...).
    pub fn start_with(extra: &[&str]) -> Etcd {
        Etcd::start_on(IpAddr::V4(Ipv4Addr::LOCALHOST), extra)
    }

    /// Starts a fresh member that listens on `ip` (an address of a test network the test
    /// made itself; loopback otherwise).
    pub fn start_on(ip: IpAddr, extra: &[&str]) -> Etcd {
        let mut etcd = Etcd {
            child: None,
            dir: tempfile::tempdir().expect("a temporary directory for etcd"),
            client: free_port(ip),
            peer: free_port(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            extra: extra.iter().map(|s| s.to_string()).collect(),
            name: "test".into(),
            initial_cluster: String::new(),
            metrics: None,
        };
        etcd.initial_cluster = format!("test=http://{}", etcd.peer);
        etcd.resume();
        etcd
    }

    /// Starts a fresh member on loopback whose clients must speak TLS and present a certificate
    /// signed by `ca` (`--client-cert-auth`); its own certificate is signed by `ca` too, for
    /// 127.0.0.1. The CA's certificate is at [`Etcd::ca_file`].
    pub fn start_tls(ca: &crate::TestCa) -> Etcd {
        let lo = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let dir = tempfile::tempdir().expect("a temporary directory for etcd");
        let (cert, key) = ca.issue(&["127.0.0.1", "localhost"]);
        let write = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).expect("write a TLS file for etcd");
            path.display().to_string()
        };
        let extra = vec![
            format!("--cert-file={}", write("server.pem", &cert)),
            format!("--key-file={}", write("server-key.pem", &key)),
            format!("--trusted-ca-file={}", write("ca.pem", &ca.cert_pem())),
            "--client-cert-auth".to_owned(),
        ];
        let mut etcd = Etcd {
            child: None,
            dir,
            client: free_port(lo),
            peer: free_port(lo),
            extra,
            name: "test".into(),
            initial_cluster: String::new(),
            metrics: Some(free_port(lo)),
        };
        etcd.initial_cluster = format!("test=http://{}", etcd.peer);
        etcd.resume();
        etcd
    }

    /// The CA file of a member started with [`Etcd::start_tls`].
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// `host:port` of the client endpoint.
    pub fn endpoint(&self) -> String {
        self.client.to_string()
    }

    /// etcd's own client, connected to this member: for tests that look at or change etcd
    /// behind the store's back.
    pub async fn client(&self) -> etcd_client::Client {
        etcd_client::Client::connect([format!("http://{}", self.client)], None)
            .await
            .expect("connect to the test's etcd")
    }

    /// Every key in etcd with its value.
    pub async fn dump(&self) -> Vec<(String, Vec<u8>)> {
        let resp = self
            .client()
            .await
            .get("", Some(etcd_client::GetOptions::new().with_all_keys()))
            .await
            .expect("read every key");
        resp.kvs()
            .iter()
            .map(|kv| {
                (
                    String::from_utf8_lossy(kv.key()).into_owned(),
                    kv.value().to_vec(),
                )
            })
            .collect()
    }

    /// `etcd://host:port`, as `fulcrum serve --store` takes it.
    pub fn url(&self) -> String {
        format!("etcd://{}", self.client)
    }

    /// The member's data directory.
    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kills the member (SIGKILL, as a crash or a pulled plug would) and waits for it.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the member again on the same data and ports, and waits until it answers.
    pub fn resume(&mut self) {
        self.spawn();
        self.wait_healthy();
    }

    fn spawn(&mut self) {
        assert!(self.child.is_none(), "etcd is running already");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("etcd.log"))
            .expect("etcd's log file");
        let scheme = if self.metrics.is_some() {
            "https"
        } else {
            "http"
        };
        let client = format!("{scheme}://{}", self.client);
        let peer = format!("http://{}", self.peer);
        let child = Command::new(etcd_bin())
            .arg(format!("--name={}", self.name))
            .arg(format!(
                "--data-dir={}",
                self.dir.path().join("data").display()
            ))
            .arg(format!("--listen-client-urls={client}"))
            .arg(format!("--advertise-client-urls={client}"))
            .arg(format!("--listen-peer-urls={peer}"))
            .arg(format!("--initial-advertise-peer-urls={peer}"))
            .arg(format!("--initial-cluster={}", self.initial_cluster))
            .args(
                self.metrics
                    .map(|m| format!("--listen-metrics-urls=http://{m}")),
            )
            .args(&self.extra)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("etcd's log file"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start {} ({e}); install Debian's etcd-server (scripts/test does)",
                    etcd_bin().display()
                )
            });
        self.child = Some(child);
    }

    fn wait_healthy(&mut self) {
        let deadline = Instant::now() + START_LIMIT;
        while !self.healthy() {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("etcd exited at start ({status}): {}", self.log_tail());
            }
            assert!(
                Instant::now() < deadline,
                "etcd did not become healthy within {START_LIMIT:?}: {}",
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Whether `/health` answers true.
    pub fn healthy(&self) -> bool {
        let at = self.metrics.unwrap_or(self.client);
        let Ok(mut conn) = TcpStream::connect_timeout(&at, Duration::from_secs(1)) else {
            return false;
        };
        let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
        let request = format!("GET /health HTTP/1.0\r\nHost: {at}\r\n\r\n");
        if conn.write_all(request.as_bytes()).is_err() {
            return false;
        }
        let mut answer = String::new();
        let _ = conn.read_to_string(&mut answer);
        answer.contains("\"health\":\"true\"")
    }

    /// The last lines of etcd's log, for failure messages.
    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.path().join("etcd.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        self.stop();
    }
}
