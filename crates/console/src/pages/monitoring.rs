//! Monitoring of one load balancer: charts from the one-minute series (requests, latency p50
//! and p99, 4xx and 5xx from the balancer and from the instances, healthy hosts) over the last
//! hour or day, and a live tail of its access log (streamed as lines are written).

use std::fmt::Write as _;

use bytes::Bytes;
use fulcrum_telemetry::series::{Metric, Query, Stats};
use http::{Response, StatusCode};
use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};
use maud::{html, Markup};

use std::convert::Infallible;
use std::sync::Arc;

use fulcrum_telemetry::access_log::RECENT_LINES;

use super::not_found;
use crate::layout::{page, trusted, Section};
use crate::reply::{self, Reply};
use crate::{Body, Console, Ctx, Req};

/// How far back a chart looks, and its period.
#[derive(Clone, Copy)]
struct Range {
    label: &'static str,
    seconds: i64,
    period: i64,
}

const HOUR: Range = Range {
    label: "hour",
    seconds: 3600,
    period: 60,
};
const DAY: Range = Range {
    label: "day",
    seconds: 86_400,
    period: 600,
};

/// One line of a chart: its name and (period start, value) points.
struct Line {
    name: &'static str,
    points: Vec<(i64, f64)>,
}

fn series(ctx: &Ctx<'_>, lb: &str, metric: Metric, range: Range, now: i64) -> Vec<(i64, Stats)> {
    ctx.control
        .series
        .statistics(&Query {
            metric,
            load_balancer: Some(lb),
            start: now - range.seconds,
            end: now + 60,
            period: range.period,
        })
        .unwrap_or_default()
}

pub(crate) fn show(ctx: &Ctx<'_>, name: &str) -> Reply {
    let snapshot = ctx.control.snapshot();
    let Some(lb) = fulcrum_model::LbName::parse(name)
        .ok()
        .and_then(|n| snapshot.state.load_balancers.get(&n))
    else {
        return not_found(ctx, &format!("There is no load balancer named {name}."));
    };
    let range = if ctx.req.query.get("range") == "day" {
        DAY
    } else {
        HOUR
    };
    let now = fulcrum_telemetry::series::now();
    let name = lb.name.as_str();
    let sums = |metric, label| Line {
        name: label,
        points: series(ctx, name, metric, range, now)
            .into_iter()
            .map(|(t, s)| (t, s.sum))
            .collect(),
    };
    let latency = series(ctx, name, Metric::Latency, range, now);
    let percentile = |p: f64, label| Line {
        name: label,
        points: latency
            .iter()
            .filter_map(|(t, s)| s.percentile(p).map(|v| (*t, v * 1000.0)))
            .collect(),
    };
    let averages = |metric, label| Line {
        name: label,
        points: series(ctx, name, metric, range, now)
            .into_iter()
            .map(|(t, s)| (t, s.average()))
            .collect(),
    };
    let start = now - range.seconds;
    let charts = [
        (
            "Requests",
            "per period",
            vec![sums(Metric::RequestCount, "requests")],
        ),
        (
            "Latency",
            "ms",
            vec![percentile(50.0, "p50"), percentile(99.0, "p99")],
        ),
        (
            "Errors",
            "per period",
            vec![
                sums(Metric::HttpCodeElb4xx, "ELB 4xx"),
                sums(Metric::HttpCodeElb5xx, "ELB 5xx"),
                sums(Metric::HttpCodeBackend4xx, "instance 4xx"),
                sums(Metric::HttpCodeBackend5xx, "instance 5xx"),
            ],
        ),
        (
            "Hosts",
            "average",
            vec![
                averages(Metric::HealthyHostCount, "healthy"),
                averages(Metric::UnHealthyHostCount, "unhealthy"),
            ],
        ),
    ];
    let base = format!("/console/load-balancers/{name}");
    let body = html! {
        div.title-row {
            h1 { (name) ": monitoring" }
            a.button href=(base) { "Back to " (name) }
        }
        nav.ranges aria-label="Time range" {
            a href={ (base) "/monitoring?range=hour" } aria-current=[(range.label == "hour").then_some("page")] { "Last hour" }
            " "
            a href={ (base) "/monitoring?range=day" } aria-current=[(range.label == "day").then_some("page")] { "Last day" }
        }
        div.charts {
            @for (title, unit, lines) in &charts {
                (chart(title, unit, lines, start, now, range.period))
            }
        }
        section aria-labelledby="tail-h" {
            h2 id="tail-h" { "Access log, live" }
            p.hint { "Lines in Classic ELB's format, as they are written; the last ones first appear when the page opens." }
            pre #tail data-tail={ (base) "/log" } aria-live="off" tabindex="0" {}
        }
    };
    Reply::ok(page(
        &format!("{name}: monitoring"),
        Some(ctx.session),
        Some(Section::LoadBalancers),
        body,
    ))
}

/// One chart as inline SVG, drawn here (no script library), with a table of the same numbers
/// for screen readers.
fn chart(title: &str, unit: &str, lines: &[Line], start: i64, end: i64, period: i64) -> Markup {
    const W: f64 = 560.0;
    const H: f64 = 160.0;
    const PAD: f64 = 30.0;
    let max = lines
        .iter()
        .flat_map(|l| l.points.iter().map(|(_, v)| *v))
        .fold(0.0_f64, f64::max);
    let top = if max > 0.0 { max * 1.1 } else { 1.0 };
    let x = |t: i64| PAD + (t - start) as f64 / (end - start).max(1) as f64 * (W - PAD - 10.0);
    let y = |v: f64| H - PAD - v / top * (H - PAD - 10.0);
    let mut svg = format!(
        r#"<svg viewBox="0 0 {W} {H}" role="img" aria-label="{title}, {unit}, the last {span}" class="chart">"#,
        span = if end - start > 3600 { "day" } else { "hour" }
    );
    let _ = write!(
        svg,
        r#"<line x1="{PAD}" y1="{b}" x2="{r}" y2="{b}" class="axis"/><text x="2" y="18" class="label">{top:.1}</text><text x="2" y="{b}" class="label">0</text>"#,
        b = H - PAD,
        r = W - 10.0,
        top = top
    );
    for (i, line) in lines.iter().enumerate() {
        let points: Vec<String> = line
            .points
            .iter()
            .map(|(t, v)| format!("{:.1},{:.1}", x(*t + period / 2), y(*v)))
            .collect();
        if points.len() == 1 {
            let _ = write!(
                svg,
                r#"<circle cx="{}" class="s{i}" r="3" cy="{}"/>"#,
                points[0].split(',').next().unwrap_or("0"),
                points[0].split(',').nth(1).unwrap_or("0")
            );
        } else if !points.is_empty() {
            let _ = write!(
                svg,
                r#"<polyline class="s{i}" points="{}"/>"#,
                points.join(" ")
            );
        }
    }
    svg.push_str("</svg>");
    html! {
        figure.chart-box {
            figcaption { strong { (title) } " (" (unit) ")"
                @for (i, line) in lines.iter().enumerate() { " " span class={ "key s" (i) } { (line.name) } }
            }
            (trusted(svg))
            @let total: usize = lines.iter().map(|l| l.points.len()).sum();
            @if total == 0 { p.hint { "No data in this range yet." } }
            details.sr-table {
                summary { "Numbers" }
                table {
                    thead { tr { th scope="col" { "Period" } @for l in lines { th scope="col" { (l.name) } } } }
                    tbody {
                        @for t in lines.iter().flat_map(|l| l.points.iter().map(|(t, _)| *t)).collect::<std::collections::BTreeSet<_>>() {
                            tr {
                                th scope="row" { (crate::layout::date(u64::try_from(t).unwrap_or(0))) }
                                @for l in lines {
                                    td { (l.points.iter().find(|(p, _)| *p == t).map(|(_, v)| format!("{v:.3}")).unwrap_or_default()) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The live tail: the recent lines, then each line as it is written, for as long as the
/// client follows and its session stays open (checked every few seconds).
pub(crate) fn stream_log(console: &Arc<Console>, name: &str, req: &Req) -> Response<Body> {
    let mut tail = match console.control.follow_log(name, RECENT_LINES) {
        Ok(tail) => tail,
        Err(e) => return Reply::text(StatusCode::NOT_FOUND, e.message).into_response(false),
    };
    let recent = std::mem::take(&mut tail.recent);
    let first =
        futures_util::stream::iter(Some(Ok::<_, Infallible>(Frame::data(Bytes::from(recent)))));
    let session = req.session_id.clone().unwrap_or_default();
    let console = Arc::clone(console);
    let rest = futures_util::stream::unfold(tail, move |mut tail| {
        let console = Arc::clone(&console);
        let session = session.clone();
        async move {
            loop {
                match tokio::time::timeout(SESSION_CHECK, tail.lines.recv()).await {
                    Ok(lines) => return Some((Ok(Frame::data(Bytes::from(lines?))), tail)),
                    Err(_) if console.still_open(&session) => continue,
                    Err(_) => return None,
                }
            }
        }
    });
    let body = StreamBody::new(futures_util::StreamExt::chain(first, rest)).boxed();
    reply::streamed(body)
}

/// How often a streamed tail checks that its session is still open.
const SESSION_CHECK: std::time::Duration = std::time::Duration::from_secs(5);
