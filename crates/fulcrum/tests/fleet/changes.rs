//! Changes to the fleet itself under traffic: every node upgraded in turn in place (a second
//! `serve` on the same data dir takes over the sockets), a node added and one drained. Clients
//! keep going through every node all along, on kept-alive connections and on a new connection
//! per request: no request fails, no kept-alive connection to a node that is not being changed
//! is closed, and the fleet's view follows (a drained node leaves it at once).

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fulcrum_testkit::{eventually, http_get, Conn};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::common::{self, backends_on_one_port, wait_in_service, Fulcrum, EXIT_TIMEOUT};
use super::{free_port, http_lb, node, Fleet};

/// Far below the 6 s lease of a node's record: a node that leaves is gone from the view within
/// this, or it waited for its lease to expire.
const LEFT_AT_ONCE: Duration = Duration::from_secs(1);

// ---------------------------------------------------------------------------------------------
// Traffic: per node, one client with a new connection per request and one with a kept-alive
// connection, counting what they get.

#[derive(Default)]
struct Tally {
    ok: AtomicU64,
    /// Kept-alive connections the node closed between requests (after an answer that said
    /// `Connection: close`), opened again as any client does.
    reconnects: AtomicU64,
    failures: Mutex<Vec<String>>,
}

impl Tally {
    fn ok(&self) -> u64 {
        self.ok.load(Ordering::SeqCst)
    }

    fn reconnects(&self) -> u64 {
        self.reconnects.load(Ordering::SeqCst)
    }

    fn fail(&self, what: String) {
        self.failures.lock().unwrap().push(what);
    }

    fn failures(&self) -> Vec<String> {
        self.failures.lock().unwrap().clone()
    }
}

/// The two clients of one node.
struct NodeLoad {
    addr: SocketAddr,
    running: Arc<AtomicBool>,
    new_conn: Arc<Tally>,
    kept: Arc<Tally>,
    tasks: Vec<JoinHandle<()>>,
}

impl NodeLoad {
    fn start(addr: SocketAddr) -> NodeLoad {
        let running = Arc::new(AtomicBool::new(true));
        let (new_conn, kept) = (Arc::new(Tally::default()), Arc::new(Tally::default()));
        let tasks = vec![
            tokio::spawn(new_connections(addr, running.clone(), new_conn.clone())),
            tokio::spawn(kept_alive(addr, running.clone(), kept.clone())),
        ];
        NodeLoad {
            addr,
            running,
            new_conn,
            kept,
            tasks,
        }
    }

    fn oks(&self) -> [u64; 2] {
        [self.new_conn.ok(), self.kept.ok()]
    }

    fn failures(&self) -> Vec<String> {
        let mut all = self.new_conn.failures();
        all.extend(self.kept.failures());
        all
    }

    /// Waits until both clients have had `n` more answers than `since`.
    async fn wait_more(&self, since: [u64; 2], n: u64, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self
            .oks()
            .iter()
            .zip(since)
            .any(|(now, then)| *now < then + n)
        {
            assert!(
                Instant::now() < deadline,
                "{what}: the clients of {} did not get {n} more answers: {since:?} -> {:?}; \
                 failures: {:?}",
                self.addr,
                self.oks(),
                self.failures()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn stop(mut self) -> (u64, u64, Vec<String>) {
        self.running.store(false, Ordering::SeqCst);
        for t in std::mem::take(&mut self.tasks) {
            t.await.expect("a client loop");
        }
        (
            self.new_conn.ok() + self.kept.ok(),
            self.kept.reconnects(),
            self.failures(),
        )
    }
}

/// A request every few milliseconds, each on a new connection: a refused or reset connection
/// counts as a failure.
async fn new_connections(addr: SocketAddr, running: Arc<AtomicBool>, tally: Arc<Tally>) {
    while running.load(Ordering::SeqCst) {
        let started = Instant::now();
        match http_get(addr, "/", &[]).await {
            Ok(r) if r.status == 200 => {
                tally.ok.fetch_add(1, Ordering::SeqCst);
            }
            Ok(r) => tally.fail(format!("{:?} in: {}", started.elapsed(), r.describe())),
            Err(e) => tally.fail(format!("{:?} in: {e}", started.elapsed())),
        }
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
}

/// A request every few milliseconds on one kept-alive connection. The node may close it only
/// after an answer that says so (a drain); a connection that fails or closes otherwise is a
/// failure.
async fn kept_alive(addr: SocketAddr, running: Arc<AtomicBool>, tally: Arc<Tally>) {
    let mut conn: Option<Conn> = None;
    while running.load(Ordering::SeqCst) {
        if conn.as_ref().is_some_and(Conn::is_closed) {
            tally.fail("the kept-alive connection closed without saying so".into());
            conn = None;
        }
        if conn.is_none() {
            match Conn::http(addr).await {
                Ok(c) => conn = Some(c),
                Err(e) => {
                    tally.fail(format!("connect: {e}"));
                    tokio::time::sleep(Duration::from_millis(3)).await;
                    continue;
                }
            }
        }
        let started = Instant::now();
        let result = conn.as_mut().expect("a connection").get("/", &[]).await;
        match result {
            Ok(r) if r.status == 200 => {
                tally.ok.fetch_add(1, Ordering::SeqCst);
                if r.response_header("connection") == Some("close") {
                    tally.reconnects.fetch_add(1, Ordering::SeqCst);
                    conn = None;
                }
            }
            Ok(r) => {
                tally.fail(format!("{:?} in: {}", started.elapsed(), r.describe()));
                conn = None;
            }
            Err(e) => {
                tally.fail(format!("{:?} in: {e:?}", started.elapsed()));
                conn = None;
            }
        }
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
}

/// Stops every load and asserts that each got answers, nothing failed, and no kept-alive
/// connection was closed beyond `allowed_reconnects[i]`.
async fn assert_no_failure(loads: Vec<NodeLoad>, allowed_reconnects: &[u64]) {
    let mut report = String::new();
    let mut bad = false;
    for (i, load) in loads.into_iter().enumerate() {
        let addr = load.addr;
        let (ok, reconnects, failures) = load.stop().await;
        report.push_str(&format!(
            "node {i} ({addr}): {ok} answered, {reconnects} reconnects, {} failed\n",
            failures.len()
        ));
        for f in failures.iter().take(10) {
            report.push_str(&format!("    {f}\n"));
        }
        bad |= ok == 0 || !failures.is_empty() || reconnects > allowed_reconnects[i];
    }
    eprintln!("{report}");
    assert!(
        !bad,
        "requests failed or connections were dropped:\n{report}"
    );
}

// ---------------------------------------------------------------------------------------------
// The fleet's view.

/// The node ids `DescribeFleet` on `api` lists, or `None` when it does not answer 200 (a node
/// handing over pauses its API).
async fn fleet_ids(f_key: &(String, String), api: SocketAddr) -> Option<BTreeSet<String>> {
    let key = (f_key.0.as_str(), f_key.1.as_str());
    let form = [("Action", "DescribeFleet"), ("Version", "2012-06-01")];
    let reply = tokio::time::timeout(
        Duration::from_secs(5),
        super::common::signed_call(api, key, "elasticloadbalancing", &form),
    )
    .await
    .ok()?;
    if reply.status != 200 {
        return None;
    }
    let xml = reply.text();
    Some(
        xml.split("<NodeId>")
            .skip(1)
            .filter_map(|s| s.split_once("</NodeId>").map(|(id, _)| id.to_owned()))
            .collect(),
    )
}

/// The id a node keeps in its data dir.
fn node_id(node: &Fulcrum) -> String {
    let dir = node.data_dir.as_ref().expect("a node started with Serve");
    std::fs::read_to_string(dir.join("node-id"))
        .expect("DIR/node-id")
        .trim()
        .to_owned()
}

/// Asks every API in `apis` for the fleet's view, over and over until stopped, and keeps every
/// answer that is not `expected`.
struct ViewWatch {
    running: Arc<AtomicBool>,
    task: JoinHandle<(u64, Vec<String>)>,
}

impl ViewWatch {
    fn start(key: (String, String), apis: Vec<SocketAddr>, expected: BTreeSet<String>) -> Self {
        let running = Arc::new(AtomicBool::new(true));
        let go = running.clone();
        let task = tokio::spawn(async move {
            let (mut answers, mut wrong) = (0, Vec::new());
            while go.load(Ordering::SeqCst) {
                for api in &apis {
                    if let Some(ids) = fleet_ids(&key, *api).await {
                        answers += 1;
                        if ids != expected {
                            wrong.push(format!("{api}: {ids:?}"));
                        }
                    }
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            (answers, wrong)
        });
        ViewWatch { running, task }
    }

    async fn stop(self) -> (u64, Vec<String>) {
        self.running.store(false, Ordering::SeqCst);
        self.task.await.expect("the view watch")
    }
}

// ---------------------------------------------------------------------------------------------

/// Replaces node `i` in place: a second `serve` on its data dir with the same flags takes over
/// its sockets; the old one drains and exits 0.
async fn upgrade(f: &mut Fleet, i: usize) {
    let old = &mut f.nodes[i];
    let mut how = node(&f.etcd, f.dirs[i].path());
    how.bind = old.bind.expect("a bind address");
    how.api = old.api.expect("an API address");
    f.nodes[i] = common::upgrade(&how, old).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rolling_upgrade_of_every_node_fails_no_request_and_keeps_the_fleet() {
    let mut f = Fleet::start(3).await;
    let (backends, _) = backends_on_one_port(2).await;
    let port = free_port();
    http_lb(&f, 0, "web", port, &backends).await;
    for i in 0..3 {
        wait_in_service(f.listener(i, port)).await;
    }
    f.wait_converged(0, 3).await;
    let ids: BTreeSet<String> = f.nodes.iter().map(node_id).collect();
    assert_eq!(ids.len(), 3);

    let loads: Vec<NodeLoad> = (0..3)
        .map(|i| NodeLoad::start(f.listener(i, port)))
        .collect();
    for load in &loads {
        load.wait_more([0, 0], 20, "before the upgrades").await;
    }

    for i in 0..3 {
        let before: Vec<u64> = loads.iter().map(|l| l.kept.reconnects()).collect();
        let during: Vec<[u64; 2]> = loads.iter().map(NodeLoad::oks).collect();
        upgrade(&mut f, i).await;
        for (j, load) in loads.iter().enumerate() {
            // Every client of every node, the upgraded one included, is answered after it.
            load.wait_more(during[j], 10, &format!("after node {i}'s upgrade"))
                .await;
            if j != i {
                assert_eq!(
                    load.kept.reconnects(),
                    before[j],
                    "node {i}'s upgrade closed a kept-alive connection to node {j}"
                );
            }
        }
        // The new process follows etcd: a change made on another node serves through it, and
        // one made through it serves on the others.
        let other = (i + 1) % 3;
        let (a, b) = (free_port(), free_port());
        http_lb(&f, other, &format!("to{i}"), a, &backends).await;
        http_lb(&f, i, &format!("from{i}"), b, &backends).await;
        wait_in_service(f.listener(i, a)).await;
        wait_in_service(f.listener(other, b)).await;
        f.wait_converged(i, 3).await;
    }

    // Nobody is left behind: one record per node (an upgraded node keeps its id), the same view
    // on every node.
    for i in 0..3 {
        let now = fleet_ids(&f.key, f.api(i)).await.expect("DescribeFleet");
        assert_eq!(now, ids, "node {i}'s view after the upgrades");
    }
    // A kept-alive connection to a node being upgraded is closed by its old process after an
    // answer that says so (then opened again on the new one): once per upgrade at most.
    assert_no_failure(loads, &[1, 1, 1]).await;
    for n in &mut f.nodes {
        n.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_added_and_one_drained_fail_no_request_on_the_others() {
    let mut f = Fleet::start(3).await;
    let (backends, _) = backends_on_one_port(2).await;
    let port = free_port();
    http_lb(&f, 0, "web", port, &backends).await;
    // A load balancer of its own for the request under way through the drain.
    let (slow, _) = backends_on_one_port(1).await;
    let slow_port = free_port();
    http_lb(&f, 0, "slow", slow_port, &slow).await;
    for i in 0..3 {
        wait_in_service(f.listener(i, port)).await;
        wait_in_service(f.listener(i, slow_port)).await;
    }
    f.wait_converged(0, 3).await;

    let mut loads: Vec<NodeLoad> = (0..3)
        .map(|i| NodeLoad::start(f.listener(i, port)))
        .collect();
    for load in &loads {
        load.wait_more([0, 0], 20, "before the changes").await;
    }

    // A fourth node joins: it serves the state from its first /healthz 200, and the others
    // notice it without a hiccup.
    let dir = tempfile::tempdir().unwrap();
    let added = node(&f.etcd, dir.path()).spawn_healthy().await;
    f.nodes.push(added);
    f.dirs.push(dir);
    wait_in_service(f.listener(3, port)).await;
    f.wait_converged(0, 4).await;
    loads.push(NodeLoad::start(f.listener(3, port)));
    loads[3]
        .wait_more([0, 0], 20, "through the added node")
        .await;

    // Node 1 leaves with SIGTERM. Its clients stop first (its address goes out of the DNS or
    // the floating address first, as an operator would do), but a request under way on a
    // kept-alive connection is answered.
    let leaving = loads.remove(1);
    let (ok, _, failures) = leaving.stop().await;
    assert!(ok > 0 && failures.is_empty(), "node 1: {failures:?}");
    let mut conn = Conn::http(f.listener(1, slow_port)).await.unwrap();
    let under_way = tokio::spawn(async move { conn.get("/delay/1500", &[]).await });
    eventually(
        "the slow request at its instance",
        Duration::from_secs(5),
        || {
            let busy = slow[0].in_flight() > 0;
            async move { busy }
        },
    )
    .await;
    let gone = node_id(&f.nodes[1]);
    let during: Vec<[u64; 2]> = loads.iter().map(NodeLoad::oks).collect();
    let mut drained = f.nodes.remove(1);
    let _dir = f.dirs.remove(1);
    drained.sigterm();
    // It leaves the fleet's view as it begins to drain, not when its lease would run out.
    let asked = Instant::now();
    let remaining: Vec<SocketAddr> = (0..3).map(|i| f.api(i)).collect();
    let key = f.key.clone();
    let (gone_id, remaining_ref, key_ref) = (&gone, &remaining, &key);
    eventually(
        "the drained node out of every node's view",
        LEFT_AT_ONCE,
        || async move {
            for api in remaining_ref {
                match fleet_ids(key_ref, *api).await {
                    Some(ids) if !ids.contains(gone_id) && ids.len() == 3 => {}
                    _ => return false,
                }
            }
            true
        },
    )
    .await;
    eprintln!(
        "the drained node left the view {:?} after SIGTERM",
        asked.elapsed()
    );
    let reply = under_way
        .await
        .unwrap()
        .expect("the request under way through the drain");
    assert_eq!(reply.status, 200, "{}", reply.describe());
    let status = drained.wait_exit(EXIT_TIMEOUT).await;
    assert!(status.success(), "{}", drained.stderr_now());
    for i in 0..3 {
        f.wait_converged(i, 3).await;
    }

    // The others carried on: answers on every client, nothing failed, no connection closed.
    for (j, load) in loads.iter().enumerate() {
        load.wait_more(during[j], 10, "after the drain").await;
    }
    assert_no_failure(loads, &[0, 0, 0]).await;
    for n in &mut f.nodes {
        n.stop().await;
    }
}

/// The fleet's view never loses a node that is being upgraded: its record passes from the old
/// process to the new one (the old one stops writing it and lets its own lease run out, rather
/// than revoking a lease the record may last have been written under).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_upgraded_node_never_leaves_the_fleet_view() {
    let mut f = Fleet::start(3).await;
    let (backends, _) = backends_on_one_port(2).await;
    http_lb(&f, 0, "web", free_port(), &backends).await;
    f.wait_converged(0, 3).await;
    let ids: BTreeSet<String> = f.nodes.iter().map(node_id).collect();
    // Asked of the nodes that are not upgraded (node 0's API pauses while it hands over).
    let view = ViewWatch::start(f.key.clone(), vec![f.api(1), f.api(2)], ids.clone());
    for _ in 0..12 {
        upgrade(&mut f, 0).await;
    }
    let (answers, wrong) = view.stop().await;
    assert!(answers > 10, "the fleet's view was asked {answers} times");
    assert!(
        wrong.is_empty(),
        "the fleet's view lost the upgraded node ({} of {answers} answers):\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}
