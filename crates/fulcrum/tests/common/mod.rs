//! A real `fulcrum` process for tests: spawned from the built binary with its own data dir, API
//! address and listener address, its stdout and stderr read line by line, and killed when the
//! handle is dropped, so that a failing test never leaves a node behind.

#![allow(dead_code)]

use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use fulcrum_testkit::{http_get, Backend, Reply, POLL_INTERVAL};
use tokio::sync::mpsc;
use tokio::time::{timeout_at, Instant};

/// Upper bound for a node to start and apply its state.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);
/// Upper bound for a node to exit once asked to.
pub const EXIT_TIMEOUT: Duration = Duration::from_secs(15);
/// Upper bound for an old process to drain and exit once the new one is ready.
pub const HANDOVER_EXIT: Duration = Duration::from_secs(30);
/// Health checks run this many times faster than configured (a 5 s interval becomes 500 ms).
pub const TIME_SCALE: u32 = 10;

static NEXT_HOST: AtomicU8 = AtomicU8::new(0);
static NEXT_INSTANCE: AtomicU8 = AtomicU8::new(0);

/// A loopback address of its own for each node of this test binary: `127.0.X.(50 + n)`, with X
/// taken from the process id so that two runs of the test binary at once stay apart as well.
/// (The demo's instances use 127.0.0.2 and 127.0.0.3, which this never returns.)
pub fn bind_address() -> IpAddr {
    let n = NEXT_HOST.fetch_add(1, Ordering::Relaxed);
    assert!(n < 200, "out of test addresses");
    let block = 20 + (std::process::id() % 200) as u8;
    IpAddr::V4(Ipv4Addr::new(127, 0, block, 50 + n))
}

/// `n` instances on one port (ELB sends to every instance at the listener's `InstancePort`),
/// each on a loopback address of its own: `127.1.X.(1 + k)`, with X taken from the process id
/// as in [`bind_address`] (the second octet 1 keeps them apart from every node address).
pub async fn backends_on_one_port(n: usize) -> (Vec<Backend>, u16) {
    let block = (std::process::id() % 250) as u8;
    let mut all: Vec<Backend> = Vec::with_capacity(n);
    let mut port = 0;
    for i in 0..n {
        let k = NEXT_INSTANCE.fetch_add(1, Ordering::Relaxed);
        assert!(k < 250, "out of instance addresses");
        let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 1, block, 1 + k)), port);
        let backend = Backend::start_on(&format!("i-{i}"), addr)
            .await
            .unwrap_or_else(|e| panic!("start instance i-{i} on {addr}: {e}"));
        port = backend.addr().port();
        all.push(backend);
    }
    (all, port)
}

/// One more instance address of the same block as [`backends_on_one_port`] (`127.1.X.(1 + k)`),
/// for instances that are not testkit backends (raw TCP and TLS servers): bind it at port 0 for
/// the first, then at that port for the others, as ELB sends to every instance at one port.
pub fn instance_ip() -> IpAddr {
    let block = (std::process::id() % 250) as u8;
    let k = NEXT_INSTANCE.fetch_add(1, Ordering::Relaxed);
    assert!(k < 250, "out of instance addresses");
    IpAddr::V4(Ipv4Addr::new(127, 1, block, 1 + k))
}

/// Lines of one output stream of the child, read by a thread and handed over through a channel.
pub struct Lines {
    rx: mpsc::UnboundedReceiver<String>,
    /// Every line received so far, in order.
    pub seen: Vec<String>,
    closed: bool,
}

impl Lines {
    fn spawn(stream: impl Read + Send + 'static) -> Lines {
        let (tx, rx) = mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Lines {
            rx,
            seen: Vec::new(),
            closed: false,
        }
    }

    /// The next line, or `None` at end of stream or at `deadline`.
    async fn next(&mut self, deadline: Instant) -> Option<String> {
        if self.closed {
            return None;
        }
        match timeout_at(deadline, self.rx.recv()).await {
            Ok(Some(line)) => {
                self.seen.push(line.clone());
                Some(line)
            }
            Ok(None) => {
                self.closed = true;
                None
            }
            Err(_) => None,
        }
    }

    /// Takes in what has arrived without waiting.
    fn take_ready(&mut self) {
        while let Ok(line) = self.rx.try_recv() {
            self.seen.push(line);
        }
    }

    /// Everything up to the end of the stream (the child has exited), bounded by `limit`.
    pub async fn read_to_end(&mut self, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        while self.next(deadline).await.is_some() {}
        assert!(
            self.closed,
            "the stream did not end within {limit:?}; so far:\n{}",
            self.text()
        );
        self.text()
    }

    /// What has been seen so far, one line each.
    pub fn text(&self) -> String {
        let mut text = self.seen.join("\n");
        text.push('\n');
        text
    }
}

/// How to start `fulcrum serve`.
#[derive(Clone)]
pub struct Serve {
    pub data_dir: PathBuf,
    pub api: SocketAddr,
    pub bind: IpAddr,
    demo: bool,
    time_scale: u32,
    extra: Vec<String>,
    env: Vec<(String, String)>,
}

impl Serve {
    /// `serve --data-dir DIR --api 127.0.0.1:<free> --bind BIND --health-check-time-scale 10
    /// --workers 2`.
    pub fn new(data_dir: &Path, bind: IpAddr) -> Serve {
        Serve {
            data_dir: data_dir.to_owned(),
            api: fulcrum_testkit::closed_port(),
            bind,
            demo: false,
            time_scale: TIME_SCALE,
            extra: Vec::new(),
            env: Vec::new(),
        }
    }

    /// Adds `--demo`.
    pub fn demo(mut self) -> Serve {
        self.demo = true;
        self
    }

    /// Health checks `scale` times faster than configured (1: the real pace).
    pub fn time_scale(mut self, scale: u32) -> Serve {
        self.time_scale = scale;
        self
    }

    /// Adds more arguments.
    pub fn args(mut self, args: &[&str]) -> Serve {
        self.extra.extend(args.iter().map(|a| (*a).to_owned()));
        self
    }

    /// Sets an environment variable for the node.
    pub fn env(mut self, name: &str, value: &str) -> Serve {
        self.env.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Spawns the node and waits for `/healthz` to answer 200. The API port comes from
    /// [`fulcrum_testkit::closed_port`], which another process may take before the node binds
    /// it: when the node exits because it cannot listen there, it is started again (up to
    /// three times) on another port.
    pub async fn spawn_healthy(mut self) -> Fulcrum {
        let mut attempts = 0;
        loop {
            attempts += 1;
            let mut node = self.clone().spawn();
            match node.wait_started().await {
                Ok(_) => return node,
                Err(stderr)
                    if attempts < 3 && stderr.contains("cannot listen on the API address") =>
                {
                    eprintln!("API port {} was taken; starting again", self.api);
                    self.api = fulcrum_testkit::closed_port();
                }
                Err(stderr) => panic!("fulcrum exited while starting; stderr:\n{stderr}"),
            }
        }
    }

    pub fn spawn(self) -> Fulcrum {
        let mut args: Vec<OsString> = vec![
            "serve".into(),
            "--data-dir".into(),
            self.data_dir.clone().into(),
            "--api".into(),
            self.api.to_string().into(),
            "--bind".into(),
            self.bind.to_string().into(),
            "--health-check-time-scale".into(),
            self.time_scale.to_string().into(),
            "--workers".into(),
            "2".into(),
        ];
        if self.demo {
            args.push("--demo".into());
        }
        args.extend(self.extra.into_iter().map(OsString::from));
        let mut node = Fulcrum::spawn_with_env(&args, &self.env);
        node.api = Some(self.api);
        node.bind = Some(self.bind);
        node.data_dir = Some(self.data_dir);
        node
    }
}

/// A running `fulcrum` child process. Dropping it kills the process (and, if the test is
/// failing, prints what it wrote).
pub struct Fulcrum {
    child: Child,
    status: Option<ExitStatus>,
    pub stdout: Lines,
    pub stderr: Lines,
    pub api: Option<SocketAddr>,
    pub bind: Option<IpAddr>,
    pub data_dir: Option<PathBuf>,
}

impl Fulcrum {
    /// Runs the binary with `args`, with a clean environment as far as fulcrum is concerned.
    pub fn spawn<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Fulcrum {
        Fulcrum::spawn_with_env(args, &[])
    }

    /// [`Fulcrum::spawn`] with more environment variables.
    pub fn spawn_with_env<S: AsRef<std::ffi::OsStr>>(
        args: &[S],
        env: &[(String, String)],
    ) -> Fulcrum {
        let mut child = Command::new(env!("CARGO_BIN_EXE_fulcrum"))
            .args(args)
            .env_remove("FULCRUM_DATA_DIR")
            .env_remove("FULCRUM_MASTER_KEY")
            .env_remove("NOTIFY_SOCKET")
            .env("RUST_LOG", "info")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn the fulcrum binary");
        let stdout = Lines::spawn(child.stdout.take().expect("piped stdout"));
        let stderr = Lines::spawn(child.stderr.take().expect("piped stderr"));
        Fulcrum {
            child,
            status: None,
            stdout,
            stderr,
            api: None,
            bind: None,
            data_dir: None,
        }
    }

    pub fn pid(&self) -> i32 {
        i32::try_from(self.child.id()).expect("a pid fits in i32")
    }

    /// The exit status if the process has exited.
    pub fn try_status(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().expect("try_wait on the child");
        }
        self.status
    }

    /// Panics, showing stderr, if the process has exited.
    fn assert_running(&mut self, while_doing: &str) {
        if let Some(status) = self.try_status() {
            self.stderr.take_ready();
            panic!(
                "fulcrum exited ({status}) while {while_doing}; stderr:\n{}",
                self.stderr.text()
            );
        }
    }

    /// Waits for a stdout line that satisfies `pred` and returns it.
    pub async fn wait_stdout(&mut self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            match self.stdout.next(deadline).await {
                Some(line) if pred(&line) => return line,
                Some(_) => {}
                None => {
                    self.stderr.take_ready();
                    panic!(
                        "no stdout line with {what} (stream ended or {START_TIMEOUT:?} passed); \
                         stdout:\n{}stderr:\n{}",
                        self.stdout.text(),
                        self.stderr.text()
                    );
                }
            }
        }
    }

    /// `GET /healthz` once; `None` while the API does not answer.
    pub async fn healthz(&self) -> Option<Reply> {
        let api = self.api.expect("a node started with Serve");
        http_get(api, "/healthz", &[]).await.ok()
    }

    /// Polls `GET /healthz` until `done` accepts an answer, failing at once if the process exits.
    pub async fn wait_healthz_until(&mut self, what: &str, done: impl Fn(&Reply) -> bool) -> Reply {
        let deadline = Instant::now() + START_TIMEOUT;
        let mut last = None;
        loop {
            self.assert_running(&format!("waiting for /healthz: {what}"));
            if let Ok(Some(reply)) = timeout_at(deadline, self.healthz()).await {
                if done(&reply) {
                    return reply;
                }
                last = Some(reply.describe());
            }
            if Instant::now() >= deadline {
                self.stderr.take_ready();
                panic!(
                    "timed out after {START_TIMEOUT:?} waiting for /healthz: {what}; last answer \
                     {last:?}; stderr:\n{}",
                    self.stderr.text()
                );
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// Waits for `/healthz` to answer 200 and returns its body (`ok revision N`), or, if the
    /// process exits first, everything it wrote to stderr.
    pub async fn wait_started(&mut self) -> Result<String, String> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if self.try_status().is_some() {
                return Err(self.stderr.read_to_end(EXIT_TIMEOUT).await);
            }
            if let Ok(Some(reply)) = timeout_at(deadline, self.healthz()).await {
                if reply.status == 200 {
                    return Ok(reply.text());
                }
            }
            if Instant::now() >= deadline {
                self.stderr.take_ready();
                panic!(
                    "timed out after {START_TIMEOUT:?} waiting for /healthz 200; stderr:\n{}",
                    self.stderr.text()
                );
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// Waits for `/healthz` to answer 200 and returns its body (`ok revision N`).
    pub async fn wait_healthy(&mut self) -> String {
        self.wait_healthz_until("200", |r| r.status == 200)
            .await
            .text()
    }

    /// The admin access key id and secret that `serve` wrote to `DIR/credentials` (profile
    /// `[fulcrum]`) on first start.
    pub fn credentials(&self) -> (String, String) {
        let dir = self.data_dir.as_ref().expect("a node started with Serve");
        let path = dir.join("credentials");
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        let value = |key: &str| {
            text.lines()
                .filter_map(|l| l.split_once('='))
                .find(|(k, _)| k.trim() == key)
                .map(|(_, v)| v.trim().to_owned())
                .unwrap_or_else(|| panic!("no {key} in {}:\n{text}", path.display()))
        };
        assert!(
            text.lines().next().is_some_and(|l| l.trim() == "[fulcrum]"),
            "{} does not start with the profile [fulcrum]:\n{text}",
            path.display()
        );
        (value("aws_access_key_id"), value("aws_secret_access_key"))
    }

    /// Sends SIGTERM.
    pub fn sigterm(&self) {
        self.signal(libc::SIGTERM);
    }

    /// Sends `signal` (a `libc::SIG*`).
    pub fn signal(&self, signal: i32) {
        #[allow(unsafe_code)]
        // SAFETY: kill(2) with a pid we spawned and still own (not yet reaped) and a valid signal.
        let rc = unsafe { libc::kill(self.pid(), signal) };
        assert_eq!(rc, 0, "kill({signal}): {}", std::io::Error::last_os_error());
    }

    /// Waits for a stderr (log) line that contains `text` and returns it; lines seen before
    /// this call count too.
    pub async fn wait_stderr(&mut self, text: &str) -> String {
        if let Some(line) = self.stderr.seen.iter().find(|l| l.contains(text)) {
            return line.clone();
        }
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            match self.stderr.next(deadline).await {
                Some(line) if line.contains(text) => return line,
                Some(_) => {}
                None => panic!(
                    "no log line with {text:?} (stream ended or {START_TIMEOUT:?} passed); \
                     stderr:\n{}",
                    self.stderr.text()
                ),
            }
        }
    }

    /// Takes in the log lines that have arrived and returns every line so far.
    pub fn stderr_now(&mut self) -> String {
        self.stderr.take_ready();
        self.stderr.text()
    }

    /// Waits for the process to exit, up to `limit`; panics (the process is killed on drop)
    /// otherwise.
    pub async fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.try_status() {
                return status;
            }
            if Instant::now() >= deadline {
                self.stderr.take_ready();
                panic!(
                    "fulcrum did not exit within {limit:?}; stderr:\n{}",
                    self.stderr.text()
                );
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// SIGTERM, then the exit status, which must be success.
    pub async fn stop(&mut self) {
        self.sigterm();
        let status = self.wait_exit(EXIT_TIMEOUT).await;
        self.stderr.take_ready();
        assert!(
            status.success(),
            "fulcrum exited with {status} after SIGTERM; stderr:\n{}",
            self.stderr.text()
        );
    }
}

impl Drop for Fulcrum {
    fn drop(&mut self) {
        if self.try_status().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if std::thread::panicking() {
            self.stdout.take_ready();
            self.stderr.take_ready();
            eprintln!(
                "--- fulcrum stdout ---\n{}--- fulcrum stderr ---\n{}",
                self.stdout.text(),
                self.stderr.text()
            );
        }
    }
}

/// Asserts that `result` is the API's refusal with `code`, with a message, and returns the
/// SDK's typed error and the HTTP status. (Every AWS SDK crate re-exports the same error types.)
#[track_caller]
pub fn refused<T: std::fmt::Debug, E>(
    what: &str,
    result: Result<
        T,
        aws_sdk_elasticloadbalancing::error::SdkError<
            E,
            aws_sdk_elasticloadbalancing::config::http::HttpResponse,
        >,
    >,
    code: &str,
) -> (E, u16)
where
    E: aws_sdk_elasticloadbalancing::error::ProvideErrorMetadata
        + std::error::Error
        + Send
        + Sync
        + 'static,
{
    use aws_sdk_elasticloadbalancing::error::{
        DisplayErrorContext, ProvideErrorMetadata, SdkError,
    };
    let err = match result {
        Ok(v) => panic!("{what}: expected the error {code}, got success: {v:?}"),
        Err(e) => e,
    };
    assert_eq!(
        err.code(),
        Some(code),
        "{what}: expected {code}; got {}",
        DisplayErrorContext(&err)
    );
    let status = err
        .raw_response()
        .map(|r| r.status().as_u16())
        .unwrap_or_else(|| panic!("{what}: no HTTP response: {}", DisplayErrorContext(&err)));
    assert!(
        err.message().is_some_and(|m| !m.is_empty()),
        "{what}: {code} comes without a message"
    );
    match err {
        SdkError::ServiceError(e) => (e.into_err(), status),
        other => panic!(
            "{what}: not a service error: {}",
            DisplayErrorContext(&other)
        ),
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters (form values, SigV4).
pub fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A Query call the SDKs have no operation for (fulcrum's own actions, or a raw IAM call),
/// signed by the SDK's own SigV4 signer for `service` ("elasticloadbalancing" or "iam") with
/// `key_id`/`secret`; returns the raw answer.
pub async fn signed_call(
    api: SocketAddr,
    (key_id, secret): (&str, &str),
    service: &str,
    form: &[(&str, &str)],
) -> Reply {
    use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
    let form = form
        .iter()
        .map(|(k, v)| format!("{}={}", url_encode(k), url_encode(v)))
        .collect::<Vec<_>>()
        .join("&");
    let host = api.to_string();
    let url = format!("http://{host}/");
    let content_type = "application/x-www-form-urlencoded; charset=utf-8";
    let identity =
        aws_credential_types::Credentials::new(key_id, secret, None, None, "fulcrum").into();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name(service)
        .time(std::time::SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .expect("signing params")
        .into();
    let headers = [("content-type", content_type), ("host", host.as_str())];
    let signable = SignableRequest::new(
        "POST",
        url.as_str(),
        headers.iter().copied(),
        SignableBody::Bytes(form.as_bytes()),
    )
    .expect("signable request");
    let (instructions, _) = sign(signable, &params).expect("sign").into_parts();
    let mut req = http::Request::builder()
        .method(http::Method::POST)
        .uri("/")
        .header("content-type", content_type)
        .header("host", &host)
        .body(http_body_util::Full::new(bytes::Bytes::from(form)))
        .expect("request");
    instructions.apply_to_request_http1x(&mut req);
    fulcrum_testkit::Conn::http(api)
        .await
        .expect("connect to the API")
        .request(req)
        .await
        .expect("a signed call")
}

/// Polls the balancer until `GET /` through `addr` reaches an instance (200).
pub async fn wait_in_service(addr: SocketAddr) {
    fulcrum_testkit::eventually(
        &format!("an instance in service behind {addr}"),
        Duration::from_secs(20),
        || async move {
            http_get(addr, "/", &[])
                .await
                .is_ok_and(|r| r.status == 200)
        },
    )
    .await;
}

/// The aws CLI the tests drive: `FULCRUM_AWS_CLI`, else the venv `scripts/test` installs in
/// `target/awscli-venv`, else `aws` on `PATH`.
pub fn aws_cli() -> PathBuf {
    if let Some(path) = std::env::var_os("FULCRUM_AWS_CLI") {
        return PathBuf::from(path);
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/awscli-venv/bin/aws");
    if venv.exists() {
        return venv;
    }
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|dir| dir.join("aws"))
        .find(|p| p.exists())
        .expect("the aws CLI: run scripts/test (it installs one in target/awscli-venv) or set FULCRUM_AWS_CLI")
}

/// Adds a load balancer `name` with an HTTP listener on `port` forwarding to `instance`
/// (registered by its literal IP address), health-checked on `HTTP:<instance port>/health`:
/// for tests that write the state into a store before a node starts.
pub fn add_http_lb(
    state: &mut fulcrum_model::State,
    name: &str,
    port: u16,
    instance: SocketAddr,
) -> Result<(), fulcrum_model::ModelError> {
    use fulcrum_model::{HealthCheck, InstanceId, Listener, Protocol};
    let listener = Listener::new(Protocol::Http, port, Protocol::Http, instance.port());
    state.create_load_balancer(name, vec![listener], 0)?;
    state.configure_health_check(
        name,
        HealthCheck {
            target: format!("HTTP:{}/health", instance.port()).parse()?,
            interval_secs: 5,
            timeout_secs: 2,
            healthy_threshold: 2,
            unhealthy_threshold: 2,
        },
    )?;
    state.register_instances(name, &[InstanceId::parse(&instance.ip().to_string())?])
}

/// Starts the next process of an upgrade on the same flags and waits for `old` to hand over and
/// exit 0; returns the new one, healthy.
pub async fn upgrade(how: &Serve, old: &mut Fulcrum) -> Fulcrum {
    let mut new = how.clone().spawn();
    let line = new.wait_stderr("taking over from pid").await;
    assert!(
        line.contains(&format!("taking over from pid {}", old.pid())),
        "{line}"
    );
    let status = old.wait_exit(HANDOVER_EXIT).await;
    let old_log = old.stderr.read_to_end(Duration::from_secs(5)).await;
    assert!(
        status.success(),
        "the old process exited with {status}; stderr:\n{old_log}"
    );
    assert!(
        old_log.contains("handed over to a new process"),
        "the old process should say it handed over; stderr:\n{old_log}"
    );
    new.wait_healthy().await;
    new
}
