//! `cargo bench -p kaunter-tests --bench pipeline [-- --quick]`
//!
//! Measures the numbers of DESIGN §8, each against a baseline run in the same process:
//! 1. transform cost: the SKU-mapping plugin as a warm Wasm component vs the same Rust code native;
//! 2. warm plugin call cost on a minimal event;
//! 3. durable ingest, batched and single-event, vs an HTTP endpoint that parses and validates the
//!    same requests but stores nothing;
//! 4. ingest → transform → delivered latency at 2,000 events/s vs posting the same events straight
//!    to the sink;
//! 5. the same latency while the connector is swapped between two versions twice a second, vs the
//!    same run without swaps;
//! 6. start-up of a host with 20 plugins from the compile cache vs compiling them.
//!
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

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Row {
    what: String,
    kaunter: String,
    baseline: String,
    ratio: String,
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut rows = Vec::new();
    rt.block_on(async {
        rows.extend(transform_cost(quick).await);
        rows.extend(store_throughput(quick).await);
        rows.extend(ingest_throughput(quick).await);
        rows.extend(end_to_end_latency(quick).await);
        rows.extend(swap_latency(quick).await);
        rows.extend(startup(quick).await);
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
    let iterations = if quick { 20_000 } else { 200_000 };

    let config: transform_sku_map::SkuMapConfig = serde_json::from_str(SKU_CONFIG).unwrap();
    let start = Instant::now();
    for _ in 0..iterations {
        let mut e = std::hint::black_box(event.clone());
        config.map_event(&mut e);
        std::hint::black_box(e);
    }
    let native = start.elapsed().as_nanos() as f64 / iterations as f64;

    // Warm up, then time the same work through the component boundary.
    for _ in 0..1000 {
        plugin.handle(&event.clone().into()).await.unwrap();
    }
    let start = Instant::now();
    for _ in 0..iterations {
        let out = plugin
            .handle(&std::hint::black_box(event.clone()).into())
            .await
            .unwrap();
        std::hint::black_box(out.into_iter().map(Event::from).count());
    }
    let wasm = start.elapsed().as_nanos() as f64 / iterations as f64;

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
    let tiny_wit = tiny.clone().into();
    let start = Instant::now();
    for _ in 0..iterations {
        std::hint::black_box(plugin.handle(&tiny_wit).await.unwrap());
    }
    let warm_call = start.elapsed().as_nanos() as f64 / iterations as f64;
    let start = Instant::now();
    for _ in 0..iterations {
        let mut e = std::hint::black_box(tiny.clone());
        config.map_event(&mut e);
        std::hint::black_box(e);
    }
    let native_tiny = start.elapsed().as_nanos() as f64 / iterations as f64;
    vec![
        Row {
            what: "SKU-map transform on a 3-line sale (per event)".into(),
            kaunter: format!("{:.2} µs (Wasm, warm)", wasm / 1000.0),
            baseline: format!("{:.2} µs (same code, native)", native / 1000.0),
            ratio: format!("{:.2}×", wasm / native),
        },
        Row {
            what: "warm plugin call, minimal event".into(),
            kaunter: format!("{:.2} µs", warm_call / 1000.0),
            baseline: format!("{:.3} µs (native)", native_tiny / 1000.0),
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
                event_seq: *seq,
                event_id: String::new(),
                received_at_us: 1,
                derived: vec![],
                deliveries: vec![],
                dead_letters: vec![],
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

/// An endpoint that does what ingest does minus durability: parse, validate, answer 202.
async fn parse_only_server() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().route(
        "/v1/events",
        axum::routing::post(|body: axum::body::Bytes| async move {
            let value: Value = serde_json::from_slice(&body).unwrap();
            let items = match value {
                Value::Array(items) => items,
                one => vec![one],
            };
            let defaults = Defaults {
                id: ulid::Ulid::new().to_string(),
                now: "2026-11-25T00:00:00Z".into(),
            };
            let mut ids = Vec::new();
            for item in items {
                let event = Event::from_json(item, Dialect::Canonical, &defaults).unwrap();
                kaunter_model::validate(&event).unwrap();
                ids.push(json!({"id": event.id, "status": "accepted"}));
            }
            (axum::http::StatusCode::ACCEPTED, axum::Json(json!({"results": ids})))
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

async fn ingest_throughput(quick: bool) -> Vec<Row> {
    let (batches, singles) = if quick { (200, 4_000) } else { (1_000, 20_000) };
    let batched: Arc<Vec<String>> = Arc::new(
        events(batches * 100, 2)
            .chunks(100)
            .map(|c| Value::Array(c.to_vec()).to_string())
            .collect(),
    );
    let single: Arc<Vec<String>> = Arc::new(events(singles, 3).iter().map(Value::to_string).collect());
    let baseline_url = parse_only_server().await;
    let base_batched = blast(&baseline_url, batched.clone(), 100, 8).await;
    let base_single = blast(&baseline_url, single.clone(), 1, 64).await;

    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&bench_config(dir.path(), "")).await.unwrap();
    let durable_batched = blast(&server.url(), batched, 100, 8).await;
    let durable_single = blast(&server.url(), single, 1, 64).await;
    vec![
        Row {
            what: "durable ingest, batches of 100 (events/s)".into(),
            kaunter: format!("{durable_batched:.0}"),
            baseline: format!("{base_batched:.0} (parse + validate, no storage)"),
            ratio: format!("{:.2}×", durable_batched / base_batched),
        },
        Row {
            what: "durable ingest, one event per request (events/s)".into(),
            kaunter: format!("{durable_single:.0}"),
            baseline: format!("{base_single:.0} (parse + validate, no storage)"),
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
    let routes = format!(
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
    );
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

/// A configuration with `count` transform plugins, each a distinct build (its own version).
fn many_plugins_config(dir: &std::path::Path, count: u32) -> Config {
    let mut text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = {:?}\nwatch_plugins = false\n",
        dir.join("data").display().to_string()
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
    let mut cold = Vec::new();
    let mut warm = Vec::new();
    for _ in 0..runs {
        let dir = tempfile::tempdir().unwrap();
        let config = many_plugins_config(dir.path(), count);
        let started = Instant::now();
        let first = Server::start(&config).await.unwrap();
        cold.push(started.elapsed());
        drop(first);
        let started = Instant::now();
        let _again = Server::start(&config).await.unwrap();
        warm.push(started.elapsed());
    }
    cold.sort();
    warm.sort();
    let (c, w) = (cold[runs / 2], warm[runs / 2]);
    vec![Row {
        what: format!("start serving with {count} plugins, restart from the compile cache"),
        kaunter: format!("{:.0} ms", w.as_secs_f64() * 1000.0),
        baseline: format!(
            "{:.0} ms (first start: compiling all {count})",
            c.as_secs_f64() * 1000.0
        ),
        ratio: format!("{:.3}×", w.as_secs_f64() / c.as_secs_f64()),
    }]
}

async fn end_to_end_latency(quick: bool) -> Vec<Row> {
    let rate = 2_000;
    let n = if quick { 4_000 } else { 20_000 };
    let runs = if quick { 1 } else { 3 };
    let (sink_url, base_hist, base_count) = latency_sink().await;
    paced(&sink_url, events(n, 4), rate).await;
    assert_eq!(base_count.load(Ordering::Relaxed), n as u64);
    let mut results = Vec::new();
    for _ in 0..runs {
        results.push(one_latency_run(n, rate).await);
    }
    let median = |mut v: Vec<u64>| {
        v.sort_unstable();
        (v[v.len() / 2], v[0], v[v.len() - 1])
    };
    let (p50, p50_lo, p50_hi) = median(results.iter().map(|r| r.0).collect());
    let (p99, p99_lo, p99_hi) = median(results.iter().map(|r| r.1).collect());
    let b = base_hist.lock().unwrap();
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
            baseline: format!("{} (POST straight to the sink)", ms(b.value_at_quantile(0.5))),
            ratio: format!("{:.1}×", p50 as f64 / b.value_at_quantile(0.5) as f64),
        },
        Row {
            what: format!("ingest → SKU map → signed webhook delivered, p99 at {rate} events/s"),
            kaunter: format!("{}{}", ms(p99), spread(p99_lo, p99_hi)),
            baseline: format!("{} (POST straight to the sink)", ms(b.value_at_quantile(0.99))),
            ratio: format!("{:.1}×", p99 as f64 / b.value_at_quantile(0.99) as f64),
        },
    ]
}
