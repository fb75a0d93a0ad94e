//! `serve --demo`: two demo instances on loopback, a self-signed certificate, and a load balancer
//! `demo` with HTTP 8080 and HTTPS 8443 in front of them, set up through the store like any
//! other change.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use bytes::Bytes;
use fulcrum_control::{prepare_certificate, CertificateUpload};
use fulcrum_model::{HealthCheck, InstanceId, LbName, Listener, PrivateKeyPem, Protocol};
use fulcrum_proxy::{DataPlane, HealthState};
use fulcrum_store::Store;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

const LB: &str = "demo";
const CERT: &str = "fulcrum-demo";
const HTTP_PORT: u16 = 8080;
const HTTPS_PORT: u16 = 8443;
const INSTANCES: [(&str, Ipv4Addr); 2] = [
    ("demo-1", Ipv4Addr::new(127, 0, 0, 2)),
    ("demo-2", Ipv4Addr::new(127, 0, 0, 3)),
];

/// The demo's instances; they stop when this is dropped.
pub struct Demo {
    instances: Vec<JoinHandle<()>>,
}

impl Drop for Demo {
    fn drop(&mut self) {
        for task in &self.instances {
            task.abort();
        }
    }
}

pub async fn start(
    store: &Store,
    data_plane: &DataPlane,
    args: &crate::serve::ServeArgs,
) -> anyhow::Result<Demo> {
    // Both instances listen on one port, as EC2 instances behind an ELB do, each on its own
    // loopback address.
    let first = TcpListener::bind((INSTANCES[0].1, 0))
        .await
        .context("cannot start the demo instances")?;
    let port = first.local_addr()?.port();
    let second = TcpListener::bind((INSTANCES[1].1, port))
        .await
        .context("cannot start the demo instances")?;
    let instances = vec![
        tokio::spawn(run_instance(INSTANCES[0].0, first)),
        tokio::spawn(run_instance(INSTANCES[1].0, second)),
    ];
    let demo = Demo { instances };

    let (cert_pem, key_pem) = fulcrum_tls::self_signed(&["localhost".to_owned()])?;
    let cert_path = args.data_dir.join("demo-cert.pem");
    std::fs::write(&cert_path, &cert_pem)
        .with_context(|| format!("cannot write {}", cert_path.display()))?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let cert = prepare_certificate(
        CertificateUpload {
            name: CERT.into(),
            path: None,
            body_pem: cert_pem,
            private_key_pem: PrivateKeyPem::new(key_pem),
            chain_pem: None,
            tags: vec![],
        },
        now,
    )?;
    let cert_id = cert.id.clone();

    // One change: whatever an earlier demo left is replaced.
    store
        .update(|state| {
            state.delete_load_balancer(LB)?;
            if state.certificate_by_name(CERT).is_some() {
                state.delete_certificate(CERT)?;
            }
            state.add_certificate(cert.clone())?;
            let mut ids = Vec::new();
            for (name, ip) in INSTANCES {
                let id = InstanceId::parse(name)?;
                state.put_inventory(id.clone(), IpAddr::V4(ip))?;
                ids.push(id);
            }
            let mut https = Listener::new(Protocol::Https, HTTPS_PORT, Protocol::Http, port);
            https.certificates.push(cert_id.clone());
            let http = Listener::new(Protocol::Http, HTTP_PORT, Protocol::Http, port);
            state.create_load_balancer(LB, vec![http, https], now)?;
            state.configure_health_check(
                LB,
                HealthCheck {
                    target: format!("HTTP:{port}/health").parse()?,
                    interval_secs: 5,
                    timeout_secs: 2,
                    healthy_threshold: 2,
                    unhealthy_threshold: 2,
                },
            )?;
            state.register_instances(LB, &ids)
        })
        .context("cannot create the demo load balancer")?;

    wait_in_service(data_plane).await;
    let host = match args
        .bind
        .first()
        .copied()
        .unwrap_or(IpAddr::from([0, 0, 0, 0]))
    {
        IpAddr::V4(a) if a.is_unspecified() => String::new(),
        IpAddr::V6(a) if a.is_unspecified() => String::new(),
        other => format!(" --resolve localhost:{HTTPS_PORT}:{other}"),
    };
    println!(
        "Demo load balancer '{LB}' is up: instances demo-1 and demo-2 behind HTTP :{HTTP_PORT} and HTTPS :{HTTPS_PORT}.\n\
         Try it (TLS ends at fulcrum; the instances take turns and show the X-Forwarded-* headers they receive):\n  \
         curl --cacert {}{host} https://localhost:{HTTPS_PORT}/",
        cert_path.display()
    );
    Ok(demo)
}

/// Waits (up to a minute) for both demo instances to pass their health checks.
async fn wait_in_service(data_plane: &DataPlane) {
    let lb = LbName::parse(LB).expect("a valid name");
    let ids: Vec<InstanceId> = INSTANCES
        .iter()
        .map(|(name, _)| InstanceId::parse(name).expect("a valid id"))
        .collect();
    for _ in 0..600 {
        let all_in = ids.iter().all(|id| {
            data_plane
                .instance_health(&lb, id)
                .is_some_and(|h| h.state == HealthState::InService)
        });
        if all_in {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tracing::warn!("the demo instances are not in service yet");
}

async fn run_instance(name: &'static str, listener: TcpListener) {
    loop {
        let Ok((stream, peer)) = listener.accept().await else {
            continue;
        };
        tokio::spawn(async move {
            let service = service_fn(move |req| answer(name, peer, req));
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// `GET /health` answers 200; everything else answers JSON naming the instance and the request
/// it received, headers included.
async fn answer(
    name: &str,
    peer: SocketAddr,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if req.uri().path() == "/health" {
        return Ok(Response::new(Full::new(Bytes::from_static(b"ok\n"))));
    }
    let mut headers: BTreeMap<String, String> = BTreeMap::new();
    for (k, v) in req.headers() {
        let v = String::from_utf8_lossy(v.as_bytes()).into_owned();
        headers
            .entry(k.as_str().to_owned())
            .and_modify(|e| {
                e.push_str(", ");
                e.push_str(&v);
            })
            .or_insert(v);
    }
    let body = serde_json::json!({
        "instance": name,
        "method": req.method().as_str(),
        "path": req.uri().to_string(),
        "connection_from": peer.to_string(),
        "headers": headers,
    });
    let mut text = serde_json::to_string_pretty(&body).unwrap_or_default();
    text.push('\n');
    let mut resp = Response::new(Full::new(Bytes::from(text)));
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    Ok(resp)
}
