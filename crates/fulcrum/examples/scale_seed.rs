//! The configuration-scale benchmark's helper (`bench/scale/run` drives it; see `bench/SCALE.md`).
//!
//! `seed`: writes a large state straight into a data dir with the store library — N load balancers,
//! each with one HTTPS listener on its own port and 2 certificates (ECDSA P-256, one name each, so
//! SNI knows 2 N names), and 10 registered instances — in a few `Store::update` batches, as the API
//! would commit them but without 13,000 round trips. `fulcrum serve` then opens that data dir.
//!
//! `change`: times one API change end to end. It starts the given command (the fulcrum CLI or the
//! aws CLI), and meanwhile polls `GET /healthz` (the data plane's applied revision) and, for a
//! certificate rotation, new TLS handshakes to the listener until the expected certificate is
//! served. It prints one JSON line: how long the API call took, when the data plane had applied
//! the new revision, and when a new handshake presented the new certificate.
//!
//! `seed --store etcd://HOST:PORT` writes the same state into a fleet's etcd instead (the data
//! dir then only gets the node's local copy), in batches small enough for etcd's limits on one
//! transaction (`bench/fleet` uses it).
//!
//! `fleet` (`bench/fleet`, results in `bench/FLEET.md`): makes changes through one node's API and
//! times, for each, how long after the API's answer every node serves it, as seen through each
//! node's listeners: alternately a listener added to a load balancer (served once a GET on the
//! new port through that node answers 200) and the same listener deleted (served once a connection
//! to it through that node is refused). One JSON line per change.
//!
//! ```sh
//! cargo run --example scale_seed -p fulcrum -- seed --data-dir D --pki P --lbs 1000
//! cargo run --example scale_seed -p fulcrum -- change --api 127.0.0.30:9800 -- fulcrum lb register ...
//! cargo run --example scale_seed -p fulcrum -- fleet --api A --credentials DIR/credentials \
//!     --nodes 127.0.0.41,127.0.0.42,127.0.0.43 --first-port 30000 --changes 100
//! ```

use std::fs;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use fulcrum_control::{prepare_certificate, CertificateUpload};
use fulcrum_model::{HealthCheck, HealthTarget, InstanceId, Listener, PrivateKeyPem, Protocol};
use fulcrum_store::Store;
use fulcrum_testkit::{certs_from_pem, client_tls_config, TestCa};
use rustls::pki_types::ServerName;

#[derive(Parser)]
#[command(about = "configuration-scale benchmark helper")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Write a state of many load balancers, certificates and instances into a data dir.
    Seed(SeedArgs),
    /// Time one API change until the data plane serves it.
    Change(ChangeArgs),
    /// Time changes made through one node of a fleet until every node serves them.
    Fleet(FleetArgs),
}

#[derive(clap::Args)]
struct SeedArgs {
    /// The data dir `fulcrum serve` will open (created; must not hold a state yet).
    #[arg(long)]
    data_dir: PathBuf,
    /// Where the test CA, and certificates for later rotations, are written.
    #[arg(long)]
    pki: PathBuf,
    /// Load balancers `lb-0000` ..; lb-0000 is the one traffic is measured through.
    #[arg(long)]
    lbs: usize,
    /// Certificates on each listener (the first is the default; each has its own name).
    #[arg(long, default_value_t = 2)]
    certs_per_lb: usize,
    /// One certificate shared by every listener instead (separates the cost of certificates).
    #[arg(long)]
    shared_cert: bool,
    #[arg(long, default_value_t = 10)]
    instances_per_lb: usize,
    /// Load balancer i listens on first_port + i.
    #[arg(long, default_value_t = 20_000)]
    first_port: u16,
    #[arg(long, default_value_t = 9000)]
    instance_port: u16,
    /// A real backend: the first instance of lb-0000 (the others need not exist).
    #[arg(long, default_value = "127.0.0.31")]
    backend: IpAddr,
    /// Certificates to write to --pki for rotations (rot-K.crt/.key, named as lb-ROTATE's default).
    #[arg(long, default_value_t = 0)]
    rotations: usize,
    /// The load balancer whose default certificate the rotation certificates renew.
    #[arg(long, default_value_t = 7)]
    rotate_lb: usize,
    /// Load balancers (with their instances) per `Store::update`; certificates go 4x as many.
    /// With etcd, keep 4 x batch under etcd's --max-txn-ops (128 by default): every new
    /// certificate's sealed key is one operation of the commit's transaction.
    #[arg(long, default_value_t = 250)]
    batch: usize,
    /// A fleet's etcd (`etcd://HOST:PORT`) instead of SQLite in --data-dir; the master key comes
    /// from FULCRUM_MASTER_KEY, as the nodes' does.
    #[arg(long)]
    store: Option<String>,
    /// The etcd key prefix, as `serve --etcd-prefix`.
    #[arg(long, default_value = fulcrum_store::DEFAULT_PREFIX)]
    etcd_prefix: String,
}

#[derive(clap::Args)]
struct FleetArgs {
    /// The API of the node the changes are made through.
    #[arg(long)]
    api: SocketAddr,
    /// The credentials file that node wrote (`DIR/credentials`, profile `[fulcrum]`).
    #[arg(long)]
    credentials: PathBuf,
    /// Every node's listener address (`--bind`), comma-separated.
    #[arg(long, value_delimiter = ',', required = true)]
    nodes: Vec<IpAddr>,
    /// The load balancer the listener is added to and deleted from; its instances on
    /// --instance-port must be InService.
    #[arg(long, default_value = "lb-0000")]
    lb: String,
    /// Change k uses port first_port + k / 2 (free on every node).
    #[arg(long)]
    first_port: u16,
    #[arg(long, default_value_t = 9000)]
    instance_port: u16,
    /// How many changes (half additions, half deletions).
    #[arg(long, default_value_t = 100)]
    changes: usize,
    /// Give up on a change after this many seconds.
    #[arg(long, default_value_t = 10.0)]
    timeout: f64,
}

#[derive(clap::Args)]
struct ChangeArgs {
    /// fulcrum's API address (`GET /healthz` answers `ok revision N`).
    #[arg(long)]
    api: SocketAddr,
    /// With --expect: the listener to handshake with.
    #[arg(long)]
    connect: Option<SocketAddr>,
    #[arg(long)]
    sni: Option<String>,
    /// The CA that issued the listener's certificates.
    #[arg(long)]
    ca: Option<PathBuf>,
    /// Wait until a new handshake presents this certificate (PEM).
    #[arg(long)]
    expect: Option<PathBuf>,
    /// A read-only call: no new revision to wait for, only the command.
    #[arg(long)]
    read_only: bool,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 10.0)]
    timeout: f64,
    /// The command that makes the change.
    #[arg(last = true, required = true)]
    command: Vec<String>,
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Cmd::Seed(a) => seed(a),
        Cmd::Change(a) => change(a),
        Cmd::Fleet(a) => fleet(a),
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn unix_micros() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros())
        .unwrap_or(0)
}

fn lb_name(i: usize) -> String {
    format!("lb-{i:04}")
}

/// The DNS name of certificate `c` of load balancer `i`: `lb-0007-a.scale.test`, `-b`, ...
fn cert_dns(i: usize, c: usize) -> String {
    let letter = char::from(b'a' + u8::try_from(c % 26).unwrap_or(0));
    format!("{}-{letter}.scale.test", lb_name(i))
}

/// A distinct loopback address per instance: 127.1.x.y, never the backend.
fn instance_addr(global: usize) -> IpAddr {
    let x = u8::try_from(global / 250).unwrap_or(255);
    let y = u8::try_from(global % 250 + 1).unwrap_or(255);
    IpAddr::V4(Ipv4Addr::new(127, 1, x, y))
}

fn write_private(path: &Path, contents: &str) -> anyhow::Result<()> {
    fs::write(path, contents).with_context(|| format!("writing {}", path.display()))
}

fn seed(a: SeedArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    fs::create_dir_all(&a.pki).with_context(|| format!("creating {}", a.pki.display()))?;
    let store = match &a.store {
        None => Store::open(&a.data_dir)
            .with_context(|| format!("opening the store in {}", a.data_dir.display()))?,
        Some(url) => {
            let mut config = fulcrum_store::EtcdConfig::from_url(url)
                .map_err(|e| anyhow::anyhow!("--store: {e}"))?;
            config.prefix = a.etcd_prefix.clone();
            Store::open_etcd(&a.data_dir, config)
                .with_context(|| format!("opening the store at {url}"))?
        }
    };
    if store.snapshot().revision != 0 {
        bail!("{} already holds a state", a.data_dir.display());
    }
    let ca = TestCa::new("fulcrum scale bench CA");
    write_private(&a.pki.join("ca.pem"), &ca.cert_pem())?;
    let now = unix_now();

    // Certificates: generated and checked as UploadServerCertificate would, then committed in batches.
    let per_lb = if a.shared_cert { 0 } else { a.certs_per_lb };
    let mut ids: Vec<Vec<String>> = vec![Vec::new(); a.lbs];
    let mut pending = Vec::new();
    let mut upload = |name: String, dns: &str| -> anyhow::Result<(String, String, String)> {
        let (body, key) = ca.issue(&[dns]);
        let cert = prepare_certificate(
            CertificateUpload {
                name,
                path: None,
                body_pem: body.clone(),
                private_key_pem: PrivateKeyPem::new(key.clone()),
                chain_pem: None,
                tags: vec![],
            },
            now,
        )
        .map_err(|e| anyhow::anyhow!("preparing a certificate: {e}"))?;
        let id = cert.id.clone();
        pending.push(cert);
        Ok((id, body, key))
    };
    let mut shared = None;
    if a.shared_cert && a.lbs > 0 {
        shared = Some(upload("shared".into(), "*.scale.test")?.0);
    }
    for (i, lb_ids) in ids.iter_mut().enumerate() {
        for c in 0..per_lb {
            let (id, body, key) = upload(format!("{}-{c}", lb_name(i)), &cert_dns(i, c))?;
            if i == 0 && c == 0 {
                // The measured listener's default certificate, for clients that want to verify.
                write_private(&a.pki.join("lb-0000.crt"), &body)?;
                write_private(&a.pki.join("lb-0000.key"), &key)?;
            }
            lb_ids.push(id);
        }
        if let Some(id) = &shared {
            lb_ids.push(id.clone());
        }
    }
    let certificates = pending.len();
    let cert_batch = a.batch.max(1) * 4;
    let mut commits = 0;
    while !pending.is_empty() {
        let batch: Vec<_> = pending.drain(..pending.len().min(cert_batch)).collect();
        store.update(|s| batch.iter().try_for_each(|c| s.add_certificate(c.clone())))?;
        commits += 1;
    }

    // Load balancers with their listener, health check and instances, in batches.
    let fast_check = HealthCheck {
        target: HealthTarget::Tcp {
            port: a.instance_port,
        },
        interval_secs: 5,
        timeout_secs: 2,
        healthy_threshold: 2,
        unhealthy_threshold: 2,
    };
    let mut instances = 0;
    for chunk in (0..a.lbs).collect::<Vec<_>>().chunks(a.batch.max(1)) {
        let lbs: Vec<(String, Listener, Vec<InstanceId>, Option<HealthCheck>)> = chunk
            .iter()
            .map(|&i| {
                let port = u16::try_from(i)
                    .ok()
                    .and_then(|i| a.first_port.checked_add(i))
                    .context("listener port out of range")?;
                let mut listener =
                    Listener::new(Protocol::Https, port, Protocol::Http, a.instance_port);
                listener.certificates = ids[i].clone();
                let members = (0..a.instances_per_lb)
                    .map(|k| {
                        let addr = if i == 0 && k == 0 {
                            a.backend
                        } else {
                            instance_addr(i * a.instances_per_lb + k)
                        };
                        InstanceId::parse(&addr.to_string())
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                // lb-0000 carries the measured traffic: checked often so its backend is
                // InService within seconds. The others keep ELB's default check (TCP, 30 s).
                let check = (i == 0).then(|| fast_check.clone());
                Ok((lb_name(i), listener, members, check))
            })
            .collect::<anyhow::Result<_>>()?;
        instances += lbs.iter().map(|l| l.2.len()).sum::<usize>();
        store.update(|s| {
            for (name, listener, members, check) in lbs.clone() {
                s.create_load_balancer(&name, vec![listener], now)?;
                if let Some(check) = check {
                    s.configure_health_check(&name, check)?;
                }
                s.register_instances(&name, &members)?;
            }
            Ok(())
        })?;
        commits += 1;
    }

    // Renewed certificates for rotation trials: same name as lb-ROTATE's default, new key.
    for k in 1..=a.rotations {
        let (body, key) = ca.issue(&[cert_dns(a.rotate_lb, 0).as_str()]);
        write_private(&a.pki.join(format!("rot-{k}.crt")), &body)?;
        write_private(&a.pki.join(format!("rot-{k}.key")), &key)?;
    }

    let snap = store.snapshot();
    println!(
        "{{\"load_balancers\":{},\"certificates\":{},\"instances\":{},\"commits\":{},\
         \"revision\":{},\"seconds\":{:.2}}}",
        snap.state.load_balancers.len(),
        certificates,
        instances,
        commits,
        snap.revision,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The data plane's applied revision, from `GET /healthz` ("ok revision N"); None while it does
/// not answer 200.
fn applied_revision(api: SocketAddr) -> Option<u64> {
    let mut s = TcpStream::connect_timeout(&api, Duration::from_secs(1)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: fulcrum\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut answer = String::new();
    s.read_to_string(&mut answer).ok()?;
    if !answer.starts_with("HTTP/1.1 200") {
        return None;
    }
    answer
        .split("ok revision ")
        .nth(1)?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// A new full handshake (no resumption: a resumed TLS 1.3 session shows no certificate) to
/// `addr` with SNI `sni`; the leaf certificate the listener presented.
fn presented_leaf(
    config: &Arc<rustls::ClientConfig>,
    addr: SocketAddr,
    sni: &str,
) -> anyhow::Result<Vec<u8>> {
    let name = ServerName::try_from(sni.to_owned())?;
    let mut conn = rustls::ClientConnection::new(Arc::clone(config), name)?;
    let mut sock = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    sock.set_read_timeout(Some(Duration::from_secs(2)))?;
    sock.set_write_timeout(Some(Duration::from_secs(2)))?;
    while conn.is_handshaking() {
        conn.complete_io(&mut sock)?;
    }
    let leaf = conn
        .peer_certificates()
        .and_then(|c| c.first())
        .context("no certificate presented")?
        .to_vec();
    conn.send_close_notify();
    let _ = conn.complete_io(&mut sock);
    Ok(leaf)
}

fn ms(d: Option<Duration>) -> String {
    d.map_or("null".into(), |d| format!("{:.1}", d.as_secs_f64() * 1e3))
}

fn change(a: ChangeArgs) -> anyhow::Result<()> {
    let tls = match (&a.expect, &a.connect, &a.sni, &a.ca) {
        (Some(expect), Some(connect), Some(sni), Some(ca)) => {
            let ca = fs::read_to_string(ca)?;
            let mut config = Arc::unwrap_or_clone(client_tls_config(&ca, &[b"http/1.1"]));
            config.resumption = rustls::client::Resumption::disabled();
            let want = certs_from_pem(&fs::read_to_string(expect)?)
                .into_iter()
                .next()
                .context("no certificate in --expect")?
                .to_vec();
            let config = Arc::new(config);
            if presented_leaf(&config, *connect, sni)? == want {
                bail!("the listener already presents the expected certificate");
            }
            Some((config, *connect, sni.clone(), want))
        }
        (None, ..) => None,
        _ => bail!("--expect needs --connect, --sni and --ca"),
    };
    let before = applied_revision(a.api).context("GET /healthz did not answer 200")?;
    let timeout = Duration::from_secs_f64(a.timeout);

    let t0_unix = unix_micros();
    let t0 = Instant::now();
    let mut child = Command::new(&a.command[0])
        .args(&a.command[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {}", a.command[0]))?;
    let (mut api, mut applied, mut served) = (None, None, None);
    let mut status = None;
    let mut after = before;
    let mut polls = 0u32;
    let mut errors = 0u32;
    while t0.elapsed() < timeout {
        if api.is_none() {
            if let Some(s) = child.try_wait()? {
                api = Some(t0.elapsed());
                status = Some(s);
            }
        }
        if applied.is_none() && !a.read_only {
            if let Some(r) = applied_revision(a.api) {
                if r > before {
                    applied = Some(t0.elapsed());
                    after = r;
                }
            }
        }
        if let (None, Some((config, addr, sni, want))) = (served, &tls) {
            polls += 1;
            match presented_leaf(config, *addr, sni) {
                Ok(leaf) if leaf == *want => served = Some(t0.elapsed()),
                Ok(_) => {}
                Err(_) => errors += 1,
            }
        }
        if api.is_some()
            && (a.read_only || applied.is_some())
            && (tls.is_none() || served.is_some())
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    if api.is_none() {
        let _ = child.kill();
        status = Some(child.wait()?);
    }
    let ok = status.is_some_and(|s| s.success());
    println!(
        "{{\"ok\":{ok},\"t0_unix_us\":{t0_unix},\"api_ms\":{},\"applied_ms\":{},\"served_ms\":{},\
         \"revision_before\":{before},\"revision_after\":{after},\"tls_polls\":{polls},\
         \"tls_poll_errors\":{errors}}}",
        ms(api),
        ms(applied),
        ms(served),
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// fleet: changes through one node, served by every node.

/// What `DIR/credentials` holds under `[fulcrum]`.
fn read_credentials(path: &Path) -> anyhow::Result<(String, String)> {
    let text = fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let value = |key: &str| {
        text.lines()
            .filter_map(|l| l.split_once('='))
            .find(|(k, _)| k.trim() == key)
            .map(|(_, v)| v.trim().to_owned())
            .with_context(|| format!("no {key} in {}", path.display()))
    };
    Ok((value("aws_access_key_id")?, value("aws_secret_access_key")?))
}

/// Whether `addr` serves the listener as wanted: present (a GET answers 200) or gone (a
/// connection is refused).
async fn served(addr: SocketAddr, present: bool) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let conn = tokio::time::timeout(Duration::from_secs(1), tokio::net::TcpStream::connect(addr));
    let mut stream = match conn.await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return !present && e.kind() == std::io::ErrorKind::ConnectionRefused,
        Err(_) => return false,
    };
    if !present {
        return false;
    }
    let request = format!("GET / HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).await.is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    let read = tokio::time::timeout(Duration::from_secs(2), stream.read_exact(&mut head)).await;
    // `HTTP/1.x`: fulcrum passes an HTTP/1.0 instance's version on (python3's http.server).
    matches!(read, Ok(Ok(_))) && head.starts_with(b"HTTP/1.") && head.ends_with(b" 200")
}

fn fleet(a: FleetArgs) -> anyhow::Result<()> {
    use aws_sdk_elasticloadbalancing as elb;
    let (id, secret) = read_credentials(&a.credentials)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let config = elb::Config::builder()
            .endpoint_url(format!("http://{}", a.api))
            .region(elb::config::Region::new("us-east-1"))
            .credentials_provider(aws_credential_types::Credentials::new(
                id, secret, None, None, "bench",
            ))
            .behavior_version(elb::config::BehaviorVersion::latest())
            .build();
        let client = elb::Client::from_conf(config);
        let timeout = Duration::from_secs_f64(a.timeout);
        for k in 0..a.changes {
            let port = u16::try_from(k / 2)
                .ok()
                .and_then(|k| a.first_port.checked_add(k))
                .context("port out of range")?;
            let present = k % 2 == 0;
            // Every node is watched from before the call: a node may serve the change before
            // the API's answer reaches the client.
            let sent = Instant::now();
            let watchers: Vec<_> = a
                .nodes
                .iter()
                .map(|&ip| {
                    let addr = SocketAddr::new(ip, port);
                    tokio::spawn(async move {
                        while sent.elapsed() < timeout {
                            if served(addr, present).await {
                                return Some(Instant::now());
                            }
                            tokio::time::sleep(Duration::from_millis(1)).await;
                        }
                        None
                    })
                })
                .collect();
            let call = if present {
                client
                    .create_load_balancer_listeners()
                    .load_balancer_name(&a.lb)
                    .listeners(
                        elb::types::Listener::builder()
                            .protocol("HTTP")
                            .load_balancer_port(i32::from(port))
                            .instance_protocol("HTTP")
                            .instance_port(i32::from(a.instance_port))
                            .build()?,
                    )
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| elb::error::DisplayErrorContext(&e).to_string())
            } else {
                client
                    .delete_load_balancer_listeners()
                    .load_balancer_name(&a.lb)
                    .load_balancer_ports(i32::from(port))
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| elb::error::DisplayErrorContext(&e).to_string())
            };
            let answered = Instant::now();
            call.map_err(|e| anyhow::anyhow!("change {k}: {e}"))?;
            let mut nodes_ms = Vec::new();
            for w in watchers {
                let at = w.await?;
                // From the answer; negative when the node served it before the answer came.
                nodes_ms.push(at.map(|at| {
                    if at >= answered {
                        (at - answered).as_secs_f64() * 1e3
                    } else {
                        -(answered - at).as_secs_f64() * 1e3
                    }
                }));
            }
            let all = nodes_ms
                .iter()
                .copied()
                .collect::<Option<Vec<f64>>>()
                .map(|v| v.into_iter().fold(f64::MIN, f64::max));
            let fmt = |v: Option<f64>| v.map_or("null".to_owned(), |v| format!("{v:.2}"));
            println!(
                "{{\"k\":{k},\"kind\":\"{}\",\"port\":{port},\"api_ms\":{:.2},\"nodes_ms\":[{}],\"all_ms\":{}}}",
                if present { "add" } else { "delete" },
                (answered - sent).as_secs_f64() * 1e3,
                nodes_ms.iter().map(|v| fmt(*v)).collect::<Vec<_>>().join(","),
                fmt(all),
            );
        }
        Ok(())
    })
}
