//! `cargo bench -p kaunter-tests --bench pipeline [-- --quick]`
//!
//! Measures the numbers of DESIGN §8, each against a baseline run in the same process:
//! 1. transform cost: the SKU-mapping plugin as a warm Wasm component vs the same Rust code native;
//! 2. warm plugin call cost on a minimal event;
//! 3. durable ingest, batched and single-event, vs an HTTP endpoint that makes the same checks (API
//!    key, body limit, kaunter's decoder and validation, store scope, dedupe with content digests)
//!    but keeps the dedupe table in memory and writes no log;
//! 4. ingest → transform → delivered latency at 2,000 events/s vs posting the same events straight
//!    to the sink;
//! 5. the same latency while the connector is swapped between two versions twice a second, vs the
//!    same run without swaps;
//! 6. start-up of a host with 20 plugins from the compile cache (on a new data directory, and
//!    restarting on existing data) vs compiling them;
//! 7. CPU per delivered event with metrics recording on vs off, and with every event traced vs
//!    tracing off ([`observability`]).
//!
//! Baseline and measured runs alternate, the same number of each, and each figure is a median.
//! Results print as a Markdown table for `docs/benchmarks.md`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods,
    missing_docs
)]

use hdrhistogram::Histogram;
use kaunter::config::{Config, LimitsConfig, PluginKind};
use kaunter::egress::Egress;
use kaunter::engine::{LoadedPlugin, PluginContext, Runtime};
use kaunter::loadgen::LoadGen;
use kaunter::server::Server;
use kaunter::store::Store;
use kaunter::store::sqlite::SqliteStore;
use kaunter_model::{Defaults, Dialect, Event};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[path = "pipeline/observability.rs"]
mod observability;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Row {
    what: String,
    kaunter: String,
    baseline: String,
    ratio: String,
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    // `--only NAME`: one section (transform, store, ingest, latency, swap, startup, observability).
    let only = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1))
        .cloned();
    let run = |name: &str| only.as_deref().is_none_or(|o| o == name);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut rows = Vec::new();
    rt.block_on(async {
        if run("transform") {
            rows.extend(transform_cost(quick).await);
        }
        if run("store") {
            rows.extend(store_throughput(quick).await);
        }
        if run("ingest") {
            rows.extend(ingest_throughput(quick).await);
        }
        if run("latency") {
            rows.extend(end_to_end_latency(quick).await);
        }
        if run("swap") {
            rows.extend(swap_latency(quick).await);
        }
        if run("startup") {
            rows.extend(startup(quick).await);
        }
        if run("observability") {
            rows.extend(observability::metrics_cost(quick).await);
            rows.extend(observability::tracing_cost(quick).await);
        }
    });
    println!("\n| measurement | kaunter | baseline | ratio |\n|---|---|---|---|");
    for r in rows {
        println!("| {} | {} | {} | {} |", r.what, r.kaunter, r.baseline, r.ratio);
    }
}

fn sample_sale() -> Event {
    let mut generator = LoadGen::new(1, 10, 200);
    let defaults = Defaults {
        id: "x".into(),
        now: "2026-11-25T00:00:00Z".into(),
    };
    loop {
        let event = Event::from_json(generator.next_event(), Dialect::Canonical, &defaults).unwrap();
        if let kaunter_model::Payload::Sale(s) = &event.payload
            && s.lines.len() == 3
        {
            return event;
        }
    }
}

const SKU_CONFIG: &str = r#"{"prefix_strip": ["LEGACY-"], "table": {"4891234500017": "PANADOL-500-20", "4891234500024": "VITC-1000-60", "4891234500031": "MASK-KN95-10"}}"#;

async fn load(path: &str, dir: &std::path::Path) -> LoadedPlugin {
    let runtime = Runtime::new(dir.join("cache"), false).unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir, Duration::from_micros(500), 256).unwrap());
    let (component, digest) = runtime.load_component(std::path::Path::new(path)).unwrap();
    let version = kaunter::engine::version_of(&digest);
    let ctx = Arc::new(PluginContext {
        name: "sku-map".into(),
        version: version.clone(),
        config_json: SKU_CONFIG.into(),
        secrets: Default::default(),
        kv_quota: 1 << 20,
        store,
        clock_granted: false,
        egress: Arc::new(kaunter::egress::PluginEgress::new(
            "sku-map".into(),
            Vec::new().into(),
            kaunter::credentials::Credentials::none(),
            Vec::new().into(),
        )),
        kv_overlay: None,
        log_budget: Default::default(),
    });
    LoadedPlugin::new(
        runtime,
        component,
        PluginKind::Transform,
        ctx,
        Egress::new(
            Duration::from_secs(5),
            kaunter::egress::tls::client_config(&[], std::path::Path::new(".")).unwrap(),
        ),
        LimitsConfig::default(),
        version,
    )
    .unwrap()
}

async fn transform_cost(quick: bool) -> Vec<Row> {
    let dir = tempfile::tempdir().unwrap();
    let plugin = load(kaunter_tests::plugins::TRANSFORM_SKU_MAP, dir.path()).await;
    let event = sample_sale();
    let iterations = if quick { 20_000 } else { 100_000 };
    let runs = if quick { 3 } else { 5 };
    let config: transform_sku_map::SkuMapConfig = serde_json::from_str(SKU_CONFIG).unwrap();
    let defaults = Defaults {
        id: "x".into(),
        now: "2026-11-25T00:00:00Z".into(),
    };
    let tiny = Event::from_json(
        json!({"source": "/t/a/s/b", "type": "x.ping", "data": {}}),
        Dialect::Canonical,
        &defaults,
    )
    .unwrap();

    // Both sides do the same work per call: take an owned copy of the host's event, run the SKU
    // mapping, and hand back an event the host can use. Native: clone, map. Wasm: clone, convert
    // to the WIT type, call the component, convert its output back.
    let native = |input: &Event| {
        let start = Instant::now();
        for _ in 0..iterations {
            let mut e = std::hint::black_box(input.clone());
            config.map_event(&mut e);
            std::hint::black_box(e);
        }
        start.elapsed().as_nanos() as f64 / iterations as f64
    };
    let wasm = |input: Event| {
        let plugin = &plugin;
        async move {
            let start = Instant::now();
            for _ in 0..iterations {
                let out = plugin
                    .handle(&std::hint::black_box(input.clone()).into())
                    .await
                    .unwrap();
                std::hint::black_box(out.into_iter().map(Event::from).count());
            }
            start.elapsed().as_nanos() as f64 / iterations as f64
        }
    };
    for _ in 0..1000 {
        plugin.handle(&event.clone().into()).await.unwrap();
    }
    // Alternate the two, the same number of runs each; report medians.
    let (mut native_sale, mut wasm_sale, mut native_tiny, mut wasm_tiny) = (vec![], vec![], vec![], vec![]);
    for _ in 0..runs {
        native_sale.push(native(&event));
        wasm_sale.push(wasm(event.clone()).await);
        native_tiny.push(native(&tiny));
        wasm_tiny.push(wasm(tiny.clone()).await);
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (native, wasm) = (median(native_sale), median(wasm_sale));
    let (native_tiny, warm_call) = (median(native_tiny), median(wasm_tiny));
    vec![
        Row {
            what: "SKU-map transform on a 3-line sale (per event)".into(),
            kaunter: format!("{:.2} µs (Wasm, warm, with conversions)", wasm / 1000.0),
            baseline: format!(
                "{:.2} µs (same code, native; median of {runs} alternating runs)",
                native / 1000.0
            ),
            ratio: format!("{:.2}×", wasm / native),
        },
        Row {
            what: "warm plugin call, minimal event (clone, convert in and out, call)".into(),
            kaunter: format!("{:.2} µs", warm_call / 1000.0),
            baseline: format!("{:.3} µs (clone and map natively)", native_tiny / 1000.0),
            ratio: format!("{:.0}×", warm_call / native_tiny),
        },
    ]
}

/// The log alone: append parsed events in batches of 100, then mark them routed.
async fn store_throughput(quick: bool) -> Vec<Row> {
    use kaunter::store::{NewEvent, RouteCommit};
    let n = if quick { 20_000 } else { 100_000 };
    let defaults = Defaults {
        id: "x".into(),
        now: "2026-11-25T00:00:00Z".into(),
    };
    let parsed: Vec<Event> = events(n, 5)
        .into_iter()
        .map(|v| Event::from_json(v, Dialect::Canonical, &defaults).unwrap())
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path(), Duration::from_micros(1000), 2048).unwrap();
    let start = Instant::now();
    let mut seqs = Vec::with_capacity(n);
    for chunk in parsed.chunks(100) {
        let batch: Vec<NewEvent> = chunk.iter().map(|e| NewEvent::new(e.clone(), None, 1)).collect();
        seqs.extend(store.append(batch).await.unwrap().into_iter().map(|a| a.seq));
    }
    let append = n as f64 / start.elapsed().as_secs_f64();
    let start = Instant::now();
    for chunk in seqs.chunks(100) {
        let commits = chunk
            .iter()
            .map(|seq| RouteCommit {
                trace: None,
                event_seq: *seq,
                event_id: String::new(),
                received_at_us: 1,
                derived: vec![],
                deliveries: vec![],
                dead_letters: vec![],
                dropped_routes: vec![],
                redeliver: false,
            })
            .collect();
        store.commit_routes(std::sync::Arc::new(commits)).await.unwrap();
    }
    let routed = n as f64 / start.elapsed().as_secs_f64();
    vec![Row {
        what: "SQLite log alone: append in batches of 100, then mark routed (events/s)".into(),
        kaunter: format!("{append:.0} appended, {routed:.0} marked routed"),
        baseline: "—".into(),
        ratio: "—".into(),
    }]
}

/// An endpoint that does what ingest does minus the log: the API key (its SHA-256 digest compared,
/// as the host does), the body limit, kaunter's own decoder and validation, the store scope, and
/// dedupe on (source, id) with the encoded body's content digest — in memory instead of SQLite —
/// then the same answer. The ratio against it is the cost of durability alone.
async fn checks_only_server(max_body: usize) -> String {
    use axum::response::IntoResponse as _;
    use kaunter::ingress::error::ApiError;
    use sha2::Digest as _;
    let key_digest: [u8; 32] = sha2::Sha256::digest(b"bench-key-0001").into();
    let seen: Arc<Mutex<std::collections::HashMap<(String, String), String>>> = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().route(
        "/v1/events",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: axum::body::Body| {
            let seen = seen.clone();
            async move {
                let answer = async {
                    let presented = headers
                        .get(axum::http::header::AUTHORIZATION)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.strip_prefix("Bearer "))
                        .ok_or_else(|| ApiError::unauthorized("missing API key"))?;
                    let digest: [u8; 32] = sha2::Sha256::digest(presented.trim().as_bytes()).into();
                    if digest != key_digest {
                        return Err(ApiError::unauthorized("unknown API key"));
                    }
                    let bytes = kaunter::ingress::body::read_body(body, max_body, "the body limit").await?;
                    let mut decoded = kaunter::ingress::decode::decode(&headers, &bytes)?;
                    let received = kaunter::store::now_us();
                    let mut results = Vec::with_capacity(decoded.events.len());
                    let mut seen = seen.lock().unwrap();
                    for event in &mut decoded.events {
                        event.scope_partition_key();
                        if event.store().is_none() {
                            return Err(ApiError::forbidden("no store"));
                        }
                        let id = event.id.clone();
                        let key = (event.source.clone(), id.clone());
                        let body = kaunter::store::NewEvent::new(event.clone(), None, received).body;
                        let sha = kaunter::store::content_sha256(&body);
                        let duplicate = seen.insert(key, sha).is_some();
                        results.push(if duplicate {
                            json!({"id": id, "status": "accepted", "duplicate": true})
                        } else {
                            json!({"id": id, "status": "accepted"})
                        });
                    }
                    Ok::<_, ApiError>(results)
                }
                .await;
                match answer {
                    Ok(results) => (
                        axum::http::StatusCode::ACCEPTED,
                        axum::Json(json!({"status": "accepted", "results": results})),
                    )
                        .into_response(),
                    Err(e) => e.into_response(),
                }
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

/// Sends `bodies` with `concurrency` clients; returns events per second.
async fn blast(url: &str, bodies: Arc<Vec<String>>, per_body: usize, concurrency: usize) -> f64 {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()
        .unwrap();
    let next = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (client, next, bodies, url) = (client.clone(), next.clone(), bodies.clone(), format!("{url}/v1/events"));
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                let Some(body) = bodies.get(i) else { return };
                let response = client
                    .post(&url)
                    .bearer_auth("bench-key-0001")
                    .header("content-type", "application/json")
                    .body(body.clone())
                    .send()
                    .await
                    .unwrap();
                assert_eq!(
                    response.status().as_u16(),
                    202,
                    "{}",
                    response.text().await.unwrap_or_default()
                );
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    (bodies.len() * per_body) as f64 / start.elapsed().as_secs_f64()
}

fn bench_config(dir: &std::path::Path, routes: &str) -> Config {
    let text = format!(
        r#"
[server]
listen = "127.0.0.1:0"
data_dir = {data:?}
max_pending = 10000000
[[api_keys]]
name = "bench"
key = {{ value = "bench-key-0001" }}
stores = ["*"]
[secrets]
sig = {{ value = "whsec_YmVuY2gtc2VjcmV0LWJlbmNoLXNlY3JldC0xMjM0NTY3OA==" }}
[[plugins]]
name = "sku-map"
kind = "transform"
path = {sku:?}
[plugins.config]
prefix_strip = ["LEGACY-"]
[plugins.config.table]
"4891234500017" = "PANADOL-500-20"
{routes}
"#,
        data = dir.join("data").display().to_string(),
        sku = kaunter_tests::plugins::TRANSFORM_SKU_MAP,
    );
    Config::parse(&text, "bench", dir.to_path_buf()).unwrap()
}

/// `n` till events from the generator seeded with `seed`. Ids carry the seed: two sets sent to one
/// host must not reuse an id with other content (that is a 409 conflict, not a new sale).
fn events(n: usize, seed: u64) -> Vec<Value> {
    let mut generator = LoadGen::new(seed, 80, 400);
    (0..n)
        .map(|_| {
            let mut event = generator.next_event();
            if let Some(id) = event["id"].as_str() {
                event["id"] = Value::String(format!("s{seed}-{id}"));
            }
            event
        })
        .collect()
}

/// Request bodies for the ingest runs: `batches` of 100 events, and `singles` one-event bodies.
fn ingest_bodies(batches: usize, singles: usize, seed: u64) -> (Arc<Vec<String>>, Arc<Vec<String>>) {
    let batched = events(batches * 100, seed * 2)
        .chunks(100)
        .map(|c| Value::Array(c.to_vec()).to_string())
        .collect();
    let single = events(singles, seed * 2 + 1).iter().map(Value::to_string).collect();
    (Arc::new(batched), Arc::new(single))
}

async fn ingest_throughput(quick: bool) -> Vec<Row> {
    let (batches, singles) = if quick { (200, 4_000) } else { (1_000, 20_000) };
    // Baseline and kaunter alternate, the same number of runs each; each figure is the median.
    let runs = if quick { 3 } else { 5 };
    let baseline_url = checks_only_server(1024 * 1024).await;
    let (mut base_batched, mut base_single, mut durable_batched, mut durable_single) = (vec![], vec![], vec![], vec![]);
    for run in 0..runs {
        let dir = tempfile::tempdir().unwrap();
        let server = Server::start(&bench_config(dir.path(), "")).await.unwrap();
        // Fresh ids per run, so neither side answers duplicates.
        let (batched, single) = ingest_bodies(batches, singles, 10 + run as u64);
        base_batched.push(blast(&baseline_url, batched.clone(), 100, 8).await);
        durable_batched.push(blast(&server.url(), batched, 100, 8).await);
        base_single.push(blast(&baseline_url, single.clone(), 1, 64).await);
        durable_single.push(blast(&server.url(), single, 1, 64).await);
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (base_batched, base_single) = (median(base_batched), median(base_single));
    let (durable_batched, durable_single) = (median(durable_batched), median(durable_single));
    vec![
        Row {
            what: "durable ingest, batches of 100 (events/s)".into(),
            kaunter: format!("{durable_batched:.0}"),
            baseline: format!(
                "{base_batched:.0} (same checks and dedupe in memory, no log; median of {runs} alternating runs)"
            ),
            ratio: format!("{:.2}×", durable_batched / base_batched),
        },
        Row {
            what: "durable ingest, one event per request (events/s)".into(),
            kaunter: format!("{durable_single:.0}"),
            baseline: format!(
                "{base_single:.0} (same checks and dedupe in memory, no log; median of {runs} alternating runs)"
            ),
            ratio: format!("{:.2}×", durable_single / base_single),
        },
    ]
}

/// A sink that records `now − sent` for each event it receives.
async fn latency_sink() -> (String, Arc<Mutex<Histogram<u64>>>, Arc<AtomicU64>) {
    let histogram = Arc::new(Mutex::new(Histogram::<u64>::new(3).unwrap()));
    let count = Arc::new(AtomicU64::new(0));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (h, c) = (histogram.clone(), count.clone());
    let app = axum::Router::new().route(
        "/v1/events",
        axum::routing::post(move |body: axum::body::Bytes| {
            let (h, c) = (h.clone(), c.clone());
            async move {
                let value: Value = serde_json::from_slice(&body).unwrap();
                let sent: u64 = value["benchsentus"].as_str().unwrap().parse().unwrap();
                let now = kaunter::store::now_us() as u64;
                h.lock().unwrap().record(now.saturating_sub(sent).max(1)).unwrap();
                c.fetch_add(1, Ordering::Relaxed);
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), histogram, count)
}

/// Sends `events` one per request at `rate` per second (open loop), stamping each with its send time.
async fn paced(url: &str, events: Vec<Value>, rate: u64) {
    let client = reqwest::Client::builder().pool_max_idle_per_host(256).build().unwrap();
    let interval = Duration::from_nanos(1_000_000_000 / rate);
    let start = tokio::time::Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for (i, mut event) in events.into_iter().enumerate() {
        tokio::time::sleep_until(start + interval * i as u32).await;
        event["benchsentus"] = json!(kaunter::store::now_us().to_string());
        let request = client
            .post(format!("{url}/v1/events"))
            .bearer_auth("bench-key-0001")
            .json(&event);
        tasks.spawn(async move {
            let response = request.send().await.unwrap();
            assert!(response.status().is_success());
        });
    }
    while tasks.join_next().await.is_some() {}
}

/// The simple chain's plugins, sink and route for [`bench_config`]: every event through sku-map
/// to the signed webhook connector posting to `{sink_url}/v1/events`.
fn chain_routes(sink_url: &str) -> String {
    format!(
        r#"
[[plugins]]
name = "webhook"
kind = "connector"
path = {webhook:?}
secrets = ["sig"]
[plugins.config]
url = "{sink_url}/v1/events"
secret = "sig"
[plugins.grants]
http = ["POST {sink_url}/v1/events"]
clock = true
[[sinks]]
name = "local"
connector = "webhook"
concurrency = 64
[[routes]]
name = "all"
types = ["pos.*"]
transforms = ["sku-map"]
sinks = ["local"]
"#,
        webhook = kaunter_tests::plugins::CONNECTOR_WEBHOOK,
    )
}

/// One run: a fresh host delivering `n` paced events to a fresh sink; returns (p50, p99) in µs.
async fn one_latency_run(n: usize, rate: u64) -> (u64, u64) {
    let (p50, p99, _, _) = latency_run(n, rate, None).await;
    (p50, p99)
}

/// Like [`one_latency_run`]; with `swap_every`, the connector is redeployed alternately as
/// itself and as another build at that interval while events flow. Returns (p50, p99, max, swaps).
async fn latency_run(n: usize, rate: u64, swap_every: Option<Duration>) -> (u64, u64, u64, usize) {
    let (sink_url, hist, count) = latency_sink().await;
    let dir = tempfile::tempdir().unwrap();
    let routes = chain_routes(&sink_url);
    let server = Server::start(&bench_config(dir.path(), &routes)).await.unwrap();
    // The other build is uploaded (compiled, validated) before traffic starts: what is measured
    // is the swap itself.
    let swaps = Arc::new(AtomicU64::new(0));
    let mut swapper = None;
    if let Some(every) = swap_every {
        let first = kaunter_tests::version_of(std::path::Path::new(kaunter_tests::plugins::CONNECTOR_WEBHOOK));
        let other = kaunter_tests::variant(kaunter_tests::plugins::CONNECTOR_WEBHOOK, 2, dir.path());
        let uploaded = server
            .lifecycle
            .upload("webhook", std::fs::read(&other).unwrap(), None, "bench")
            .await
            .unwrap();
        let second = uploaded["version"].as_str().unwrap().to_owned();
        let (lifecycle, swaps) = (server.lifecycle.clone(), swaps.clone());
        swapper = Some(tokio::spawn(async move {
            let scope = kaunter::plugins::deploy::Scope::default();
            loop {
                tokio::time::sleep(every).await;
                let to = if swaps.load(Ordering::Relaxed) % 2 == 0 {
                    &second
                } else {
                    &first
                };
                lifecycle.deploy("webhook", to, &scope, "bench").await.unwrap();
                swaps.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    paced(&server.url(), events(n, 4), rate).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while count.load(Ordering::Relaxed) < n as u64 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    if let Some(task) = swapper {
        task.abort();
    }
    let swaps = swaps.load(Ordering::Relaxed) as usize;
    assert_eq!(count.load(Ordering::Relaxed), n as u64, "not every event was delivered");
    let h = hist.lock().unwrap();
    (h.value_at_quantile(0.5), h.value_at_quantile(0.99), h.max(), swaps)
}

async fn swap_latency(quick: bool) -> Vec<Row> {
    let rate = 2_000;
    let n = if quick { 4_000 } else { 20_000 };
    let runs = if quick { 1 } else { 3 };
    let (mut steady, mut swapped, mut swaps) = (Vec::new(), Vec::new(), 0);
    // Alternating, so drift on the machine affects both the same way.
    for _ in 0..runs {
        steady.push(latency_run(n, rate, None).await);
        let run = latency_run(n, rate, Some(Duration::from_millis(500))).await;
        swaps += run.3;
        swapped.push(run);
    }
    let median = |v: &mut Vec<(u64, u64, u64, usize)>| {
        v.sort_by_key(|r| r.1);
        v[v.len() / 2]
    };
    let (_, steady_p99, steady_max, _) = median(&mut steady);
    let (_, swap_p99, swap_max, _) = median(&mut swapped);
    let ms = |us: u64| format!("{:.2} ms", us as f64 / 1000.0);
    let of_runs = if runs > 1 {
        format!(", median of {runs} runs")
    } else {
        String::new()
    };
    vec![Row {
        what: format!(
            "p99 at {rate} events/s while the connector is swapped every 0.5 s ({swaps} swaps in all{of_runs})"
        ),
        kaunter: format!("{} (max {})", ms(swap_p99), ms(swap_max)),
        baseline: format!("{} (max {}) without swaps", ms(steady_p99), ms(steady_max)),
        ratio: format!("bump {:+.2} ms", (swap_p99 as f64 - steady_p99 as f64) / 1000.0),
    }]
}

/// A configuration with `count` transform plugins, each a distinct build (its own version), its
/// data in `dir/data` and compiled code cached in `cache`.
fn many_plugins_config(dir: &std::path::Path, count: u32, cache: &std::path::Path, data: &str) -> Config {
    let mut text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = {:?}\ncache_dir = {:?}\nwatch_plugins = false\n",
        dir.join(data).display().to_string(),
        cache.display().to_string()
    );
    for i in 1..=count {
        let build = kaunter_tests::variant(kaunter_tests::plugins::TRANSFORM_SKU_MAP, i, dir);
        text.push_str(&format!(
            "[[plugins]]\nname = \"sku-{i}\"\nkind = \"transform\"\npath = {:?}\n",
            build.display().to_string()
        ));
    }
    Config::parse(&text, "bench", dir.to_path_buf()).unwrap()
}

async fn startup(quick: bool) -> Vec<Row> {
    let count = 20;
    let runs = if quick { 1 } else { 3 };
    let (mut cold, mut cache_only, mut existing) = (vec![], vec![], vec![]);
    let timed = |config: Config| async move {
        let started = Instant::now();
        let server = Server::start(&config).await.unwrap();
        let took = started.elapsed();
        drop(server);
        took
    };
    for _ in 0..runs {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("cache");
        // Cold: nothing compiled, no data. Compile cache only: the same builds, cached, on a new
        // data directory. Existing data: a restart on the data the first start wrote.
        cold.push(timed(many_plugins_config(dir.path(), count, &cache, "data-1")).await);
        cache_only.push(timed(many_plugins_config(dir.path(), count, &cache, "data-2")).await);
        existing.push(timed(many_plugins_config(dir.path(), count, &cache, "data-1")).await);
    }
    for v in [&mut cold, &mut cache_only, &mut existing] {
        v.sort();
    }
    let (c, k, e) = (cold[runs / 2], cache_only[runs / 2], existing[runs / 2]);
    let ms = |d: Duration| format!("{:.0} ms", d.as_secs_f64() * 1000.0);
    vec![
        Row {
            what: format!("start serving with {count} plugins from the compile cache, new data directory"),
            kaunter: ms(k),
            baseline: format!("{} (first start: compiling all {count})", ms(c)),
            ratio: format!("{:.3}×", k.as_secs_f64() / c.as_secs_f64()),
        },
        Row {
            what: format!("restart with {count} plugins on existing data (and the cache)"),
            kaunter: ms(e),
            baseline: format!("{} (first start: compiling all {count})", ms(c)),
            ratio: format!("{:.3}×", e.as_secs_f64() / c.as_secs_f64()),
        },
    ]
}

async fn end_to_end_latency(quick: bool) -> Vec<Row> {
    let rate = 2_000;
    let n = if quick { 4_000 } else { 20_000 };
    let runs = if quick { 1 } else { 3 };
    // Baseline (POST straight to a sink) and kaunter alternate, the same number of runs each.
    let (mut base, mut results) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let (sink_url, base_hist, base_count) = latency_sink().await;
        paced(&sink_url, events(n, 4), rate).await;
        assert_eq!(base_count.load(Ordering::Relaxed), n as u64);
        let quantiles = {
            let b = base_hist.lock().unwrap();
            (b.value_at_quantile(0.5), b.value_at_quantile(0.99))
        };
        base.push(quantiles);
        results.push(one_latency_run(n, rate).await);
    }
    let median = |mut v: Vec<u64>| {
        v.sort_unstable();
        (v[v.len() / 2], v[0], v[v.len() - 1])
    };
    let (p50, p50_lo, p50_hi) = median(results.iter().map(|r| r.0).collect());
    let (p99, p99_lo, p99_hi) = median(results.iter().map(|r| r.1).collect());
    let (b50, ..) = median(base.iter().map(|r| r.0).collect());
    let (b99, ..) = median(base.iter().map(|r| r.1).collect());
    let ms = |us: u64| format!("{:.2} ms", us as f64 / 1000.0);
    let spread = |lo: u64, hi: u64| {
        if runs > 1 {
            format!(" (median of {runs} runs; {}–{})", ms(lo), ms(hi))
        } else {
            String::new()
        }
    };
    vec![
        Row {
            what: format!("ingest → SKU map → signed webhook delivered, p50 at {rate} events/s"),
            kaunter: format!("{}{}", ms(p50), spread(p50_lo, p50_hi)),
            baseline: format!("{} (POST straight to the sink, alternating runs)", ms(b50)),
            ratio: format!("{:.1}×", p50 as f64 / b50 as f64),
        },
        Row {
            what: format!("ingest → SKU map → signed webhook delivered, p99 at {rate} events/s"),
            kaunter: format!("{}{}", ms(p99), spread(p99_lo, p99_hi)),
            baseline: format!("{} (POST straight to the sink, alternating runs)", ms(b99)),
            ratio: format!("{:.1}×", p99 as f64 / b99 as f64),
        },
    ]
}
