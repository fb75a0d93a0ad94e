//! The fleet on a network the test builds itself: network namespaces on one bridge (three
//! nodes, a client, and this process's namespace for etcd and the instance), joined by veth
//! pairs. The floating address moves when its holder dies (its process killed and its link cut,
//! as a machine that goes away) and when it is drained (SIGTERM); the client's neighbour cache
//! follows through the new holder's announcement; a holder cut off from etcd drops it before
//! another node takes it. And a node that cannot reach an instance the others reach does not
//! take it out of service for the fleet. Needs root (CI runs as root); skipped with a message
//! otherwise.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fulcrum_store::{MasterKey, Store};
use fulcrum_testkit::{http_get, Backend, Etcd};

use super::MASTER_KEY;

/// Runs `ip ARGS`, panicking with its error output.
fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn ip_output(args: &[&str]) -> String {
    let out = Command::new("ip").args(args).output().expect("run ip");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The test network: every namespace and the root side of the link, removed on drop.
struct Net {
    tag: String,
    subnet: u8,
    namespaces: Vec<String>,
}

impl Net {
    /// `None` when this process may not make namespaces (not root).
    fn build(nodes: usize) -> Option<Net> {
        // Apart from any other test's network, in this process (a counter) and in another
        // run at once (the process id); interface names stay within 15 characters.
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tag = format!("{}{n}", std::process::id() % 10_000);
        let probe = format!("fl-probe-{tag}");
        let can = Command::new("ip")
            .args(["netns", "add", &probe])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !can {
            return None;
        }
        ip(&["netns", "del", &probe]);
        let mut net = Net {
            subnet: 20 + ((std::process::id() + 97 * n) % 200) as u8,
            tag,
            namespaces: Vec::new(),
        };
        let lan = net.ns("lan");
        ip(&["netns", "add", &lan]);
        net.namespaces.push(lan.clone());
        ip(&["-n", &lan, "link", "add", "br0", "type", "bridge"]);
        ip(&["-n", &lan, "link", "set", "br0", "up"]);
        // This process's side: etcd and the instance listen here.
        let root = format!("flr{}", net.tag);
        ip(&[
            "link",
            "add",
            &root,
            "type",
            "veth",
            "peer",
            "name",
            &format!("{root}b"),
        ]);
        ip(&["link", "set", &format!("{root}b"), "netns", &lan]);
        ip(&[
            "-n",
            &lan,
            "link",
            "set",
            &format!("{root}b"),
            "master",
            "br0",
            "up",
        ]);
        ip(&["addr", "add", &format!("{}/24", net.host(1)), "dev", &root]);
        ip(&["link", "set", &root, "up"]);
        for i in 0..nodes {
            net.host_ns(&format!("n{i}"), 10 + i as u8);
        }
        net.host_ns("client", 100);
        Some(net)
    }

    fn ns(&self, name: &str) -> String {
        format!("fl-{name}-{}", self.tag)
    }

    fn host(&self, n: u8) -> Ipv4Addr {
        Ipv4Addr::new(10, 200, self.subnet, n)
    }

    fn vip(&self) -> Ipv4Addr {
        self.host(200)
    }

    /// A namespace `name` with `eth0` on the bridge at `.n`.
    fn host_ns(&mut self, name: &str, n: u8) {
        let ns = self.ns(name);
        let lan = self.ns("lan");
        ip(&["netns", "add", &ns]);
        self.namespaces.push(ns.clone());
        let link = format!("fl{name}{}", self.tag);
        ip(&[
            "link",
            "add",
            &link,
            "type",
            "veth",
            "peer",
            "name",
            &format!("{link}b"),
        ]);
        ip(&["link", "set", &link, "netns", &ns]);
        ip(&["-n", &ns, "link", "set", &link, "name", "eth0"]);
        ip(&["link", "set", &format!("{link}b"), "netns", &lan]);
        ip(&[
            "-n",
            &lan,
            "link",
            "set",
            &format!("{link}b"),
            "master",
            "br0",
            "up",
        ]);
        ip(&[
            "-n",
            &ns,
            "addr",
            "add",
            &format!("{}/24", self.host(n)),
            "dev",
            "eth0",
        ]);
        ip(&["-n", &ns, "link", "set", "eth0", "up"]);
        ip(&["-n", &ns, "link", "set", "lo", "up"]);
    }

    fn holds_vip(&self, node: usize) -> bool {
        ip_output(&[
            "-n",
            &self.ns(&format!("n{node}")),
            "addr",
            "show",
            "dev",
            "eth0",
        ])
        .contains(&format!("{}/", self.vip()))
    }

    fn mac(&self, name: &str) -> String {
        let out = ip_output(&["-n", &self.ns(name), "link", "show", "dev", "eth0"]);
        out.split_whitespace()
            .skip_while(|w| *w != "link/ether")
            .nth(1)
            .expect("a MAC address")
            .to_owned()
    }

    /// The client's neighbour entry for the floating address.
    fn client_neighbour(&self) -> String {
        ip_output(&[
            "-n",
            &self.ns("client"),
            "neigh",
            "show",
            &self.vip().to_string(),
        ])
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for ns in self.namespaces.iter().rev() {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
        let _ = Command::new("ip")
            .args(["link", "del", &format!("flr{}", self.tag)])
            .stderr(Stdio::null())
            .status();
    }
}

/// Runs `f` on a thread of its own inside network namespace `ns` (sockets made there belong to
/// it), on a runtime of its own.
fn within<T: Send + 'static, F>(ns: &str, f: impl FnOnce() -> F + Send + 'static) -> T
where
    F: std::future::Future<Output = T>,
{
    let path = PathBuf::from("/var/run/netns").join(ns);
    std::thread::spawn(move || {
        let file = std::fs::File::open(&path).expect("the namespace's file");
        use std::os::fd::AsRawFd;
        // setns(2) on this thread only: no safe wrapper in the crates this test has.
        #[allow(unsafe_code)]
        let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(f())
    })
    .join()
    .expect("the thread in the namespace")
}

/// GET / through `addr` from the client's namespace, with a short bound: true on a 200.
fn client_gets(net: &Net, addr: SocketAddr) -> bool {
    within(&net.ns("client"), move || async move {
        // Short: an attempt that went to a dead holder must not hide the moment it moved.
        tokio::time::timeout(Duration::from_millis(250), http_get(addr, "/", &[]))
            .await
            .is_ok_and(|r| r.is_ok_and(|r| r.status == 200))
    })
}

/// A node running in its namespace; killed on drop.
struct NodeProc {
    child: Option<Child>,
}

impl NodeProc {
    fn spawn(net: &Net, i: usize, etcd: &Etcd, dir: &Path) -> NodeProc {
        let log = std::fs::File::create(dir.join("serve.log")).unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", &net.ns(&format!("n{i}"))])
            .arg(env!("CARGO_BIN_EXE_fulcrum"))
            .args(["serve", "--data-dir"])
            .arg(dir)
            .args([
                "--api",
                "127.0.0.1:9900",
                "--bind",
                "0.0.0.0",
                "--health-check-time-scale",
                "10",
                "--workers",
                "2",
                "--store",
                &etcd.url(),
                "--vip",
                &format!("{}/24", net.vip()),
                "--vip-interface",
                "eth0",
                "--log-level",
                "info",
            ])
            .env("FULCRUM_MASTER_KEY", MASTER_KEY)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn a node in its namespace");
        NodeProc { child: Some(child) }
    }

    fn signal(&self, signal: i32) {
        let pid = self.child.as_ref().expect("running").id();
        #[allow(unsafe_code)]
        // SAFETY: kill(2) on a child this test started and has not reaped.
        unsafe {
            libc::kill(pid as i32, signal);
        }
    }

    fn wait(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.wait();
        }
    }
}

impl Drop for NodeProc {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Polls `f` every 20 ms for at most `limit`; the time it took.
fn until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !f() {
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    start.elapsed()
}

fn holders(net: &Net, alive: &[usize]) -> Vec<usize> {
    alive
        .iter()
        .copied()
        .filter(|&i| net.holds_vip(i))
        .collect()
}

/// etcd and an instance in this process's namespace, a load balancer `web` on port 80 written
/// into etcd before the nodes start, and the three nodes in theirs.
struct Testbed {
    etcd: Etcd,
    _runtime: tokio::runtime::Runtime,
    backend: Backend,
    _seed: tempfile::TempDir,
    dirs: Vec<tempfile::TempDir>,
    nodes: Vec<NodeProc>,
}

impl Testbed {
    /// The instance listens on `.backend` of the test network.
    fn start(net: &Net, backend: u8) -> Testbed {
        let etcd = Etcd::start_on(IpAddr::V4(net.host(1)), &[]);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let backend = runtime
            .block_on(Backend::start_on(
                "i-0",
                SocketAddr::new(IpAddr::V4(net.host(backend)), 0),
            ))
            .unwrap();
        let seed = tempfile::tempdir().unwrap();
        let config = fulcrum_store::EtcdConfig::from_url(&etcd.url()).unwrap();
        let store = Store::open_etcd_with_key(
            seed.path(),
            config,
            MasterKey::from_hex(MASTER_KEY).unwrap(),
        )
        .unwrap();
        store
            .update(|s| super::common::add_http_lb(s, "web", 80, backend.addr()))
            .unwrap();
        drop(store);
        let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
        let nodes = (0..3)
            .map(|i| NodeProc::spawn(net, i, &etcd, dirs[i].path()))
            .collect();
        Testbed {
            etcd,
            _runtime: runtime,
            backend,
            _seed: seed,
            dirs,
            nodes,
        }
    }
}

#[test]
fn the_floating_address_moves_when_its_holder_dies_and_when_it_drains() {
    let Some(net) = Net::build(3) else {
        eprintln!(
            "skipped: making network namespaces needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN); \
             CI runs this as root"
        );
        return;
    };
    let Testbed {
        etcd,
        _runtime,
        backend,
        dirs,
        mut nodes,
        _seed,
    } = Testbed::start(&net, 1);
    let logs = |dirs: &[tempfile::TempDir]| -> String {
        dirs.iter()
            .map(|d| std::fs::read_to_string(d.path().join("serve.log")).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n----\n")
    };
    let vip = SocketAddr::new(IpAddr::V4(net.vip()), 80);

    let waited = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        until(
            "the floating address to serve",
            Duration::from_secs(60),
            || client_gets(&net, vip),
        )
    }));
    if waited.is_err() {
        panic!(
            "the floating address never served; node logs:\n{}",
            logs(&dirs)
        );
    }
    // FULCRUM_VIP_ROUNDS=N (bench/vip) repeats the kill and the drain N times and prints each.
    let rounds: usize = std::env::var("FULCRUM_VIP_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(1);
    let (mut kills, mut drains) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        let all = [0, 1, 2];
        let first = holders(&net, &all);
        assert_eq!(first.len(), 1, "one holder, not {first:?}");
        let first = first[0];
        assert!(
            net.client_neighbour()
                .contains(&net.mac(&format!("n{first}"))),
            "{}",
            net.client_neighbour()
        );

        // The holder dies: its process killed, its link cut (a machine that went away).
        nodes[first].signal(libc::SIGKILL);
        nodes[first].wait();
        let first_ns = net.ns(&format!("n{first}"));
        ip(&["-n", &first_ns, "link", "set", "eth0", "down"]);
        let moved = until(
            "the address to move after a kill",
            Duration::from_secs(15),
            || client_gets(&net, vip),
        );
        let alive: Vec<usize> = all.iter().copied().filter(|&i| i != first).collect();
        let second = holders(&net, &alive);
        assert_eq!(second.len(), 1, "one holder, not {second:?}");
        let second = second[0];
        // The client reached the new holder through its announcement, not a cache timeout.
        assert!(
            net.client_neighbour()
                .contains(&net.mac(&format!("n{second}"))),
            "the client's cache still points elsewhere: {}",
            net.client_neighbour()
        );
        eprintln!("round {round}: after a kill, the floating address served again in {moved:?}");
        kills.push(moved);
        // The dead machine comes back with the address still on its interface: the node drops
        // it as it starts, before it runs for it.
        ip(&["-n", &first_ns, "link", "set", "eth0", "up"]);
        nodes[first] = NodeProc::spawn(&net, first, &etcd, dirs[first].path());
        until(
            "the restarted node to drop the stale address",
            Duration::from_secs(15),
            || !net.holds_vip(first),
        );

        // The holder is drained (SIGTERM): the address moves at once.
        nodes[second].signal(libc::SIGTERM);
        let drained = until(
            "the address to move after a drain",
            Duration::from_secs(15),
            || !net.holds_vip(second) && client_gets(&net, vip),
        );
        let third = holders(&net, &[0, 1, 2]);
        assert_eq!(third.len(), 1, "one holder, not {third:?}");
        assert_ne!(third[0], second);
        assert!(net
            .client_neighbour()
            .contains(&net.mac(&format!("n{}", third[0]))));
        eprintln!("round {round}: after a drain, the floating address served again in {drained:?}");
        drains.push(drained);
        nodes[second].wait();
        assert!(!net.holds_vip(second), "a drained node keeps no address");
        nodes[second] = NodeProc::spawn(&net, second, &etcd, dirs[second].path());
    }
    // The holder is cut off from etcd but not from the clients: it must drop the address before
    // etcd lets another node take it. Never two holders, sampled all along.
    let cut = holders(&net, &[0, 1, 2]);
    assert_eq!(cut.len(), 1, "one holder, not {cut:?}");
    let cut = cut[0];
    let cut_ns = net.ns(&format!("n{cut}"));
    let etcd_route = format!("{}/32", net.host(1));
    ip(&["-n", &cut_ns, "route", "add", "blackhole", &etcd_route]);
    until(
        "another node to hold the address",
        Duration::from_secs(15),
        || {
            let now = holders(&net, &[0, 1, 2]);
            assert!(now.len() <= 1, "two holders at once: {now:?}");
            now.len() == 1 && now[0] != cut
        },
    );
    ip(&["-n", &cut_ns, "route", "del", "blackhole", &etcd_route]);
    until(
        "the address to serve from its new holder",
        Duration::from_secs(15),
        || client_gets(&net, vip),
    );

    kills.sort();
    drains.sort();
    eprintln!(
        "floating address over {rounds} rounds: kill median {:?} (max {:?}), drain median {:?} (max {:?})",
        kills[rounds / 2],
        kills[rounds - 1],
        drains[rounds / 2],
        drains[rounds - 1]
    );
    drop(nodes);
    drop(backend);
}

/// The access key a node wrote to `DIR/credentials` on its first start.
fn credentials(dir: &Path) -> (String, String) {
    let text = std::fs::read_to_string(dir.join("credentials")).unwrap_or_default();
    let value = |key: &str| {
        text.lines()
            .filter_map(|l| l.split_once('='))
            .find(|(k, _)| k.trim() == key)
            .map(|(_, v)| v.trim().to_owned())
            .unwrap_or_default()
    };
    (value("aws_access_key_id"), value("aws_secret_access_key"))
}

/// `DescribeInstanceHealth` of node `i` (its API listens on its namespace's loopback).
fn instance_states(net: &Net, i: usize, key: &(String, String)) -> String {
    let key = key.clone();
    within(&net.ns(&format!("n{i}")), move || async move {
        let reply = super::common::signed_call(
            "127.0.0.1:9900".parse().unwrap(),
            (&key.0, &key.1),
            "elasticloadbalancing",
            &[
                ("Action", "DescribeInstanceHealth"),
                ("Version", "2012-06-01"),
                ("LoadBalancerName", "web"),
            ],
        )
        .await;
        reply.text()
    })
}

/// One node cannot reach an instance the others reach (a route to it blackholed in that node's
/// namespace): every node, that one included, answers DescribeInstanceHealth for the fleet
/// (InService: two of three see it so), while the node's own view says what it sees.
#[test]
fn instance_health_is_answered_for_the_fleet() {
    let Some(net) = Net::build(3) else {
        eprintln!("skipped: making network namespaces needs root; CI runs this as root");
        return;
    };
    // The instance on an address of its own, so that cutting a node off it spares etcd.
    ip(&[
        "addr",
        "add",
        &format!("{}/32", net.host(2)),
        "dev",
        &format!("flr{}", net.tag),
    ]);
    // Bound whole: what the test does not name must live as long as it does.
    let testbed = Testbed::start(&net, 2);
    let dirs = &testbed.dirs;
    let key = {
        let mut key = (String::new(), String::new());
        until("a node's credentials", Duration::from_secs(30), || {
            key = dirs
                .iter()
                .map(|d| credentials(d.path()))
                .find(|k| !k.0.is_empty())
                .unwrap_or_default();
            !key.0.is_empty()
        });
        key
    };
    for i in 0..3 {
        until(&format!("node {i}'s API"), Duration::from_secs(30), || {
            within(&net.ns(&format!("n{i}")), || async {
                http_get("127.0.0.1:9900".parse().unwrap(), "/healthz", &[])
                    .await
                    .is_ok()
            })
        });
        until(
            &format!("node {i} to see the instance in service"),
            Duration::from_secs(30),
            || instance_states(&net, i, &key).contains("<State>InService</State>"),
        );
    }
    // Node 2 loses its way to the instance.
    let route = format!("{}/32", net.host(2));
    ip(&["-n", &net.ns("n2"), "route", "add", "blackhole", &route]);
    let fleet_view = |i: usize| {
        within(&net.ns(&format!("n{i}")), {
            let key = key.clone();
            move || async move {
                super::common::signed_call(
                    "127.0.0.1:9900".parse().unwrap(),
                    (&key.0, &key.1),
                    "elasticloadbalancing",
                    &[("Action", "DescribeFleet"), ("Version", "2012-06-01")],
                )
                .await
                .text()
            }
        })
    };
    until(
        "node 2's own checks to fail",
        Duration::from_secs(30),
        || fleet_view(0).contains("<State>OutOfService</State>"),
    );
    for i in 0..3 {
        let states = instance_states(&net, i, &key);
        assert!(
            states.contains("<State>InService</State>"),
            "node {i} answers for the fleet: {states}"
        );
    }
    // A second node cut off: now the majority sees it failing, on every node.
    ip(&["-n", &net.ns("n1"), "route", "add", "blackhole", &route]);
    for i in 0..3 {
        until(
            &format!("node {i} to answer OutOfService"),
            Duration::from_secs(30),
            || instance_states(&net, i, &key).contains("<State>OutOfService</State>"),
        );
    }
    drop(testbed);
}
