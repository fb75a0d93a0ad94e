//! The HTTP server on the API address: `GET /healthz`, and the Query API on `/`.

use std::convert::Infallible;
use std::sync::Arc;

use crate::Api;
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;

/// Serves the API on `listener` until the task is dropped.
pub async fn serve_api(listener: TcpListener, ctx: Arc<Api>) {
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!(error = %e, "API accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let ctx = Arc::clone(&ctx);
        tokio::spawn(async move {
            let service = service_fn(move |req| handle(Arc::clone(&ctx), req));
            let builder = auto::Builder::new(TokioExecutor::new());
            if let Err(e) = builder
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(error = %e, "API connection ended");
            }
        });
    }
}

async fn handle(
    ctx: Arc<Api>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(match (req.method(), req.uri().path()) {
        (&Method::GET, "/healthz") => healthz(&ctx),
        _ => ctx.handle(req).await,
    })
}

/// 200 once the state is applied and every listener is open; 503 with the reason otherwise.
fn healthz(ctx: &Api) -> Response<Full<Bytes>> {
    if !ctx.data_plane.is_ready() {
        return text(
            StatusCode::SERVICE_UNAVAILABLE,
            "starting: state not applied yet\n".into(),
        );
    }
    let failed = ctx.data_plane.failed_listeners();
    if !failed.is_empty() {
        let lines: String = failed
            .iter()
            .map(|(port, why)| format!("listener {port}: {why}\n"))
            .collect();
        return text(StatusCode::SERVICE_UNAVAILABLE, lines);
    }
    let revision = ctx.data_plane.applied_revision();
    text(StatusCode::OK, format!("ok revision {revision}\n"))
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}
