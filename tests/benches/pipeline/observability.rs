//! What watching costs, end to end: the process CPU time per event delivered through ingest →
//! sku-map → signed webhook → a local sink, with metrics recording on against off, in one host.
//!
//! Events are sent one per request at a steady rate the host keeps up with (no backlog), so
//! what is measured is the live path. CPU per event is what bounds throughput on a saturated
//! two-core machine, and it stays measurable below saturation. On and off alternate round by round
//! on the same host (same log, same warm plugins), so the machine's drift is shared; each figure
//! is the median of its rounds. The load generator and the sink run in the same process and do
//! the same work in both modes.

use super::{Row, bench_config, chain_routes, events, paced};
use kaunter::server::Server;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A sink that reads each body, counts it and answers 204 (answering before the body is read
/// would cost the client its keep-alive connection).
async fn counting_sink() -> (String, Arc<AtomicU64>) {
    let count = Arc::new(AtomicU64::new(0));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let c = count.clone();
    let app = axum::Router::new().route(
        "/v1/events",
        axum::routing::post(move |_body: axum::body::Bytes| {
            let c = c.clone();
            async move {
                c.fetch_add(1, Ordering::Relaxed);
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), count)
}

/// User plus system CPU time of this process so far, in seconds (Linux `/proc/self/stat`, in
/// clock ticks of 10 ms).
fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields[i].parse::<f64>().unwrap();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name and state.
    (ticks(11) + ticks(12)) / 100.0
}

/// Sends `n` fresh events at `RATE` a second and waits until the sink has `expected` in all;
/// returns CPU µs per event.
async fn cpu_per_event(url: &str, seed: u64, n: usize, count: &AtomicU64, expected: u64) -> f64 {
    let (start, cpu) = (Instant::now(), cpu_secs());
    paced(url, events(n, seed), RATE).await;
    let deadline = start + Duration::from_secs(300);
    while count.load(Ordering::Relaxed) < expected {
        assert!(
            Instant::now() < deadline,
            "the sink got {} of {expected}",
            count.load(Ordering::Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    (cpu_secs() - cpu) * 1e6 / n as f64
}

/// The steady rate: well inside what the host sustains on two cores.
const RATE: u64 = 1_000;

/// CPU per delivered event with metrics on, against the same host with metrics off.
pub async fn metrics_cost(quick: bool) -> Vec<Row> {
    let (n, rounds) = if quick { (5_000, 3) } else { (15_000, 5) };
    let (sink_url, count) = counting_sink().await;
    let dir = tempfile::tempdir().unwrap();
    let routes = chain_routes(&sink_url);
    let server = Server::start(&bench_config(dir.path(), &routes)).await.unwrap();
    let metrics = kaunter::telemetry::prom::metrics();
    // One warm-up round, not counted: plugin instances, connections, the log's first pages.
    let mut expected = 2_000;
    cpu_per_event(&server.url(), 900, 2_000, &count, expected).await;
    let (mut on, mut off) = (Vec::new(), Vec::new());
    for round in 0..rounds * 2 {
        let metrics_on = round % 2 == 0;
        metrics.set_enabled(metrics_on);
        expected += n as u64;
        let cpu = cpu_per_event(&server.url(), 901 + round as u64, n, &count, expected).await;
        if metrics_on { on.push(cpu) } else { off.push(cpu) }
    }
    metrics.set_enabled(true);
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (on, off) = (median(on), median(off));
    vec![Row {
        what: format!("metrics always on: CPU µs per event at {RATE}/s, ingest → sku-map → signed webhook → sink"),
        kaunter: format!("{on:.0}"),
        baseline: format!("{off:.0} (metrics off, same host; median of {rounds} alternating rounds of {n})"),
        ratio: format!("{:.3}× (cost {:+.1}%)", on / off, (on / off - 1.0) * 100.0),
    }]
}

/// An OTLP/HTTP receiver that reads each export and answers 200 (a collector's work is not
/// kaunter's, so it decodes nothing); counts the bytes it took.
async fn otlp_receiver() -> (String, Arc<AtomicU64>) {
    let bytes = Arc::new(AtomicU64::new(0));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let b = bytes.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |body: axum::body::Bytes| {
            let b = b.clone();
            async move {
                b.fetch_add(body.len() as u64, Ordering::Relaxed);
                ([("content-type", "application/x-protobuf")], Vec::<u8>::new())
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/v1/traces"), bytes)
}

/// CPU per delivered event with every event traced (100 % sampling, exported over OTLP/HTTP to
/// a local receiver), against the same host with tracing off.
pub async fn tracing_cost(quick: bool) -> Vec<Row> {
    use kaunter::telemetry::trace;
    let (n, rounds) = if quick { (5_000, 3) } else { (15_000, 5) };
    let (sink_url, count) = counting_sink().await;
    let (collector, exported) = otlp_receiver().await;
    let dir = tempfile::tempdir().unwrap();
    let routes = chain_routes(&sink_url);
    let server = Server::start(&bench_config(dir.path(), &routes)).await.unwrap();
    let settings = trace::Settings {
        endpoint: collector,
        headers: Vec::new(),
        service_name: "kaunter-bench".into(),
        sampler: trace::Sampler {
            parent_based: true,
            ratio: 1.0,
        },
    };
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    let client = trace::HttpClient::new(tokio::runtime::Handle::current(), tls);
    let mut expected = 2_000;
    cpu_per_event(&server.url(), 950, 2_000, &count, expected).await;
    let (mut on, mut off) = (Vec::new(), Vec::new());
    for round in 0..rounds * 2 {
        let tracing_on = round % 2 == 0;
        if tracing_on {
            trace::install(&settings, client.clone()).unwrap();
        } else {
            trace::shutdown();
        }
        expected += n as u64;
        let cpu = cpu_per_event(&server.url(), 951 + round as u64, n, &count, expected).await;
        if tracing_on {
            // The export of the round's last spans belongs to the round.
            let before = cpu_secs();
            tokio::task::spawn_blocking(trace::flush).await.unwrap();
            on.push(cpu + (cpu_secs() - before) * 1e6 / n as f64);
        } else {
            off.push(cpu);
        }
    }
    trace::shutdown();
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (on, off) = (median(on), median(off));
    let per_event = exported.load(Ordering::Relaxed) as f64 / (rounds * n) as f64;
    vec![Row {
        what: format!(
            "tracing at 100 % sampling (OTLP/HTTP, {per_event:.0} B exported per event): CPU µs per event at {RATE}/s, same chain"
        ),
        kaunter: format!("{on:.0}"),
        baseline: format!("{off:.0} (tracing off, same host; median of {rounds} alternating rounds of {n})"),
        ratio: format!("{:.3}× (cost {:+.1}%)", on / off, (on / off - 1.0) * 100.0),
    }]
}
