//! The backend's routes: JSON report, /health, /delay, /status, /echo, /bytes, /drip, /close, /set-cookie, /upgrade.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Request, Response, StatusCode};
use http_body::Frame;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::{json, Map, Value};
use tokio::sync::watch;

use super::{ConnInfo, Stats};
use crate::body::{GuardedBody, RepeatBody};
use crate::BoxError;

/// Response body of every route.
pub(super) type RespBody = GuardedBody<InFlight>;

/// Counts a request as in flight while alive.
pub(super) struct InFlight(Arc<Stats>);

impl InFlight {
    fn enter(stats: &Arc<Stats>) -> InFlight {
        stats.in_flight.fetch_add(1, Ordering::SeqCst);
        InFlight(stats.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Answers one request.
pub(super) async fn handle(
    req: Request<Incoming>,
    info: Arc<ConnInfo>,
    stats: Arc<Stats>,
    shutdown: watch::Receiver<()>,
) -> Result<Response<RespBody>, BoxError> {
    if req.uri().path() == "/health" {
        let healthy = stats.healthy.load(Ordering::SeqCst);
        let (status, text) = if healthy {
            (StatusCode::OK, "ok")
        } else {
            (StatusCode::SERVICE_UNAVAILABLE, "unhealthy")
        };
        return Ok(respond(&stats, status, "text/plain", full(text), None));
    }
    stats.requests.fetch_add(1, Ordering::SeqCst);
    let guard = InFlight::enter(&stats);
    let path = req.uri().path().to_string();
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match segments.as_slice() {
        ["echo"] => {
            let content_type = req
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("application/octet-stream")
                .to_string();
            let body = req.into_body().map_err(BoxError::from).boxed();
            Ok(respond(
                &stats,
                StatusCode::OK,
                &content_type,
                body,
                Some(guard),
            ))
        }
        ["bytes", n] => {
            let Ok(n) = n.parse::<u64>() else {
                return Ok(bad_request(&stats, "bad byte count"));
            };
            let body = RepeatBody::new(n).boxed();
            Ok(respond(
                &stats,
                StatusCode::OK,
                "application/octet-stream",
                body,
                Some(guard),
            ))
        }
        // `chunks` chunks of 16 bytes, one every `ms` milliseconds: a slow but moving body.
        ["drip", chunks, ms] => {
            let (Ok(chunks), Ok(ms)) = (chunks.parse::<u32>(), ms.parse::<u64>()) else {
                return Ok(bad_request(&stats, "bad drip"));
            };
            let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, BoxError>>(1);
            tokio::spawn(async move {
                for _ in 0..chunks {
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                    let chunk = Frame::data(Bytes::from_static(b"drip drip drip\r\n"));
                    if tx.send(Ok(chunk)).await.is_err() {
                        return;
                    }
                }
            });
            let body = StreamBody::new(ReceiverStream(rx)).boxed();
            Ok(respond(
                &stats,
                StatusCode::OK,
                "text/plain",
                body,
                Some(guard),
            ))
        }
        ["close"] => Err("/close: dropping the connection without an answer".into()),
        ["upgrade"] => Ok(upgrade(req, &stats, shutdown)),
        ["delay", ms] => {
            let Ok(ms) = ms.parse::<u64>() else {
                return Ok(bad_request(&stats, "bad delay"));
            };
            let report = report(req, &info, &stats).await?;
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Ok(json_response(&stats, StatusCode::OK, &report))
        }
        ["status", code] => {
            let Some(status) = code
                .parse::<u16>()
                .ok()
                .and_then(|c| StatusCode::from_u16(c).ok())
            else {
                return Ok(bad_request(&stats, "bad status"));
            };
            let report = report(req, &info, &stats).await?;
            if status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED {
                let body = http_body_util::Empty::new().map_err(BoxError::from).boxed();
                return Ok(respond(&stats, status, "application/json", body, None));
            }
            Ok(json_response(&stats, status, &report))
        }
        ["set-cookie", name, value] => {
            let cookie = format!("{name}={value}; Path=/");
            let report = report(req, &info, &stats).await?;
            let mut resp = json_response(&stats, StatusCode::OK, &report);
            if let Ok(cookie) = HeaderValue::from_str(&cookie) {
                resp.headers_mut().append(header::SET_COOKIE, cookie);
            }
            Ok(resp)
        }
        _ => {
            let report = report(req, &info, &stats).await?;
            Ok(json_response(&stats, StatusCode::OK, &report))
        }
    }
}

/// Reads the whole request body and describes the request as JSON.
async fn report(req: Request<Incoming>, info: &ConnInfo, stats: &Stats) -> Result<Value, BoxError> {
    let (parts, body) = req.into_parts();
    let body = body.collect().await?.to_bytes();
    Ok(json!({
        "instance": stats.name,
        "method": parts.method.as_str(),
        "path": parts.uri.path(),
        "query": parts.uri.query(),
        "authority": parts.uri.authority().map(|a| a.as_str()),
        "version": format!("{:?}", parts.version),
        "headers": headers_json(&parts.headers),
        "body_len": body.len(),
        "peer": info.peer.to_string(),
        "tls": info.tls,
        "sni": info.sni,
        "alpn": info.alpn,
        "client_cert": info.client_cert,
    }))
}

/// Lowercased header names to values, repeated headers joined with ", ".
fn headers_json(headers: &HeaderMap) -> Value {
    let mut map = Map::new();
    for name in headers.keys() {
        let joined = headers
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect::<Vec<_>>()
            .join(", ");
        map.insert(name.as_str().to_string(), Value::String(joined));
    }
    Value::Object(map)
}

/// 101 Switching Protocols, then echoes raw bytes on the upgraded connection.
fn upgrade(
    mut req: Request<Incoming>,
    stats: &Arc<Stats>,
    mut shutdown: watch::Receiver<()>,
) -> Response<RespBody> {
    let Some(protocol) = req.headers().get(header::UPGRADE).cloned() else {
        return bad_request(stats, "missing Upgrade header");
    };
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let echo = async move {
            let Ok(upgraded) = on_upgrade.await else {
                return;
            };
            let (mut reader, mut writer) = tokio::io::split(TokioIo::new(upgraded));
            let _ = tokio::io::copy(&mut reader, &mut writer).await;
        };
        tokio::select! {
            _ = echo => {}
            _ = shutdown.changed() => {}
        }
    });
    let empty = http_body_util::Empty::new().map_err(BoxError::from).boxed();
    let mut resp = respond(stats, StatusCode::SWITCHING_PROTOCOLS, "", empty, None);
    let headers = resp.headers_mut();
    headers.remove(header::CONTENT_TYPE);
    headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(header::UPGRADE, protocol);
    resp
}

fn full(data: impl Into<Bytes>) -> http_body_util::combinators::BoxBody<Bytes, BoxError> {
    Full::new(data.into()).map_err(BoxError::from).boxed()
}

fn json_response(stats: &Stats, status: StatusCode, value: &Value) -> Response<RespBody> {
    let body = full(value.to_string());
    respond(stats, status, "application/json", body, None)
}

fn bad_request(stats: &Stats, why: &'static str) -> Response<RespBody> {
    respond(
        stats,
        StatusCode::BAD_REQUEST,
        "text/plain",
        full(why),
        None,
    )
}

fn respond(
    stats: &Stats,
    status: StatusCode,
    content_type: &str,
    body: http_body_util::combinators::BoxBody<Bytes, BoxError>,
    guard: Option<InFlight>,
) -> Response<RespBody> {
    let mut resp = Response::new(GuardedBody::new(body, guard));
    *resp.status_mut() = status;
    let headers = resp.headers_mut();
    if let Ok(value) = HeaderValue::from_str(content_type) {
        headers.insert(header::CONTENT_TYPE, value);
    }
    if let Ok(value) = HeaderValue::from_str(&stats.name) {
        headers.insert("x-instance", value);
    }
    resp
}

/// The frames of a channel as a stream, for `StreamBody`.
struct ReceiverStream(tokio::sync::mpsc::Receiver<Result<Frame<Bytes>, BoxError>>);

impl futures_util::Stream for ReceiverStream {
    type Item = Result<Frame<Bytes>, BoxError>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        self.0.poll_recv(cx)
    }
}
