//! Test harness: a real `kaunter` process with its own data directory, a scriptable HTTP sink,
//! configuration builders, and waiting on conditions with deadlines.

use base64::Engine as _;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use std::time::{Duration, Instant};

pub const POS_KEY: &str = "test-pos-key-0001";
pub const HK_ONLY_KEY: &str = "test-hk-only-key";
pub const ADMIN_KEY: &str = "test-admin-key-01";
/// Role `metrics`: scrapes `/metrics`, nothing else.
pub const METRICS_KEY: &str = "test-metrics-key-01";
/// Role `viewer`: reads the operator views, changes nothing.
pub const VIEWER_KEY: &str = "test-viewer-key-01";
/// Set in the host's environment; no plugin may read it.
pub const SNOOP_SECRET: &str = "hunter2-from-the-host-environment";
/// The Standard Webhooks secret the test config gives the webhook connector.
pub const WEBHOOK_SECRET: &str = "whsec_dGVzdC13ZWJob29rLXNlY3JldC1rZXktMDEyMzQ1Njc=";

/// Options for [`config`].
pub struct ConfigOptions {
    pub sink_url: String,
    pub max_pending: usize,
    pub max_body_bytes: usize,
    pub max_attempts: u32,
    pub extra: String,
    pub routes: String,
    /// More `[server]` settings, one `key = value` a line.
    pub server_extra: String,
}

impl ConfigOptions {
    pub fn new(sink_url: &str) -> Self {
        Self {
            sink_url: sink_url.to_owned(),
            max_pending: 100_000,
            max_body_bytes: 1024 * 1024,
            max_attempts: 5,
            extra: String::new(),
            server_extra: String::new(),
            routes: r#"
[[routes]]
name = "sales"
types = ["pos.*"]
transforms = ["sku-map"]
sinks = ["erp"]
"#
            .into(),
        }
    }
}

/// A host configuration using the real plugins, pointing the webhook connector at `sink_url`.
pub fn config(o: &ConfigOptions) -> String {
    let cache = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("kaunter-compile-cache");
    format!(
        r#"
[server]
cache_dir = {cache:?}
max_pending = {max_pending}
max_body_bytes = {max_body}
{server_extra}

[[api_keys]]
name = "pos"
key = {{ value = "{POS_KEY}" }}
stores = ["*"]

[[api_keys]]
name = "hk-tills"
key = {{ value = "{HK_ONLY_KEY}" }}
stores = ["hk-*"]

[[api_keys]]
name = "ops"
key = {{ value = "{ADMIN_KEY}" }}
admin = true

[[api_keys]]
name = "prometheus"
key = {{ value = "{METRICS_KEY}" }}
role = "metrics"

[[api_keys]]
name = "shift-lead"
key = {{ value = "{VIEWER_KEY}" }}
role = "viewer"

[secrets]
erp-signing = {{ value = "{WEBHOOK_SECRET}" }}

[[plugins]]
name = "sku-map"
kind = "transform"
path = {sku:?}
[plugins.config]
prefix_strip = ["LEGACY-"]
[plugins.config.table]
"4891234500017" = "PANADOL-500-20"
"4891234500024" = "VITC-1000-60"

[[plugins]]
name = "webhook"
kind = "connector"
path = {webhook:?}
secrets = ["erp-signing"]
[plugins.config]
url = "{sink}"
secret = "erp-signing"
[plugins.grants]
http = ["POST {sink}"]
clock = true

[[plugins]]
name = "spin"
kind = "transform"
path = {spin:?}
[plugins.limits]
deadline_ms = 300

[[plugins]]
name = "hog"
kind = "transform"
path = {hog:?}
[plugins.limits]
memory_mib = 16

[[plugins]]
name = "deep"
kind = "transform"
path = {deep:?}

[[plugins]]
name = "flood-out"
kind = "transform"
path = {flood_out:?}

[[plugins]]
name = "flood-bytes"
kind = "transform"
path = {flood_out:?}
[plugins.grants]
emits = ["pos.*"]
[plugins.limits]
max_output_events = 20000
max_output_bytes = 100000

[[plugins]]
name = "flood-dropped"
kind = "transform"
path = {flood_out:?}
[plugins.config]
drop_input = true
[plugins.grants]
emits = ["pos.*"]
[plugins.limits]
max_output_events = 20000
max_output_bytes = 100000

[[plugins]]
name = "broken"
kind = "transform"
path = {broken:?}

[[plugins]]
name = "snoop"
kind = "transform"
path = {snoop:?}

[[plugins]]
name = "chatty"
kind = "transform"
path = {snoop:?}
[plugins.config]
log_flood = true

[[plugins]]
name = "clock-peek"
kind = "transform"
path = {snoop:?}
[plugins.config]
read_clock = true

[[plugins]]
name = "burner"
kind = "transform"
path = {spin:?}
[plugins.limits]
deadline_ms = 30000
fuel = 20000000

[[plugins]]
name = "flood-calls"
kind = "transform"
path = {egress:?}
[plugins.config]
target = "POST {sink}"
repeat = 50
[plugins.grants]
http = ["POST {sink}"]

[[sinks]]
name = "erp"
connector = "webhook"
concurrency = 8
max_attempts = {attempts}
backoff_base_ms = 50
backoff_max_ms = 400
{extra}
{routes}
"#,
        cache = cache.display().to_string(),
        max_pending = o.max_pending,
        max_body = o.max_body_bytes,
        sku = kaunter_tests::plugins::TRANSFORM_SKU_MAP,
        webhook = kaunter_tests::plugins::CONNECTOR_WEBHOOK,
        spin = kaunter_tests::plugins::HOSTILE_LOOP,
        hog = kaunter_tests::plugins::HOSTILE_MEMORY,
        deep = kaunter_tests::plugins::HOSTILE_RECURSION,
        flood_out = kaunter_tests::plugins::HOSTILE_OUTPUT,
        broken = kaunter_tests::plugins::HOSTILE_TRAP,
        snoop = kaunter_tests::plugins::HOSTILE_SNOOP,
        egress = kaunter_tests::plugins::HOSTILE_EGRESS,
        sink = o.sink_url,
        attempts = o.max_attempts,
        extra = o.extra,
        server_extra = o.server_extra,
        routes = o.routes,
    )
}

/// A running `kaunter serve` process.
pub struct Host {
    child: Option<Child>,
    /// A command the host runs under (e.g. `strace -f -o …`), empty for none.
    wrapper: Vec<String>,
    pub url: String,
    pub dir: tempfile::TempDir,
    pub http: reqwest::Client,
}

impl Host {
    /// Starts a host on a fresh data directory.
    pub fn start(config: &str) -> Host {
        Host::start_under(config, &[])
    }

    /// Starts a host on a fresh data directory, run by `wrapper` (a command and its arguments,
    /// followed by the host's command line).
    pub fn start_under(config: &str, wrapper: &[&str]) -> Host {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("kaunter.toml"), config).unwrap();
        let mut host = Host {
            child: None,
            wrapper: wrapper.iter().map(|a| (*a).to_owned()).collect(),
            url: String::new(),
            dir,
            http: reqwest::Client::new(),
        };
        host.spawn();
        host
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("host.log"))
            .unwrap();
        let mut command = match self.wrapper.split_first() {
            Some((program, args)) => {
                let mut command = Command::new(program);
                command.args(args).arg(env!("CARGO_BIN_EXE_kaunter-e2e"));
                command
            }
            None => Command::new(env!("CARGO_BIN_EXE_kaunter-e2e")),
        };
        let mut child = command
            .arg("serve")
            .arg("--config")
            .arg(self.dir.path().join("kaunter.toml"))
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--data")
            .arg(self.dir.path().join("data"))
            .env("KAUNTER_LOG", "info,plugin=debug")
            // A value a plugin must never be able to read (see sandbox tests).
            .env("KAUNTER_SNOOP_SECRET", SNOOP_SECRET)
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("kaunter listening on ") {
                    let _ = tx.send(url.to_owned());
                }
            }
        });
        self.child = Some(child);
        match rx.recv_timeout(Duration::from_secs(120)) {
            Ok(url) => self.url = url,
            Err(_) => panic!("host did not start; log:\n{}", self.log()),
        }
    }

    /// The host's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("host.log")).unwrap_or_default()
    }

    /// Kills the process (SIGKILL: no shutdown code runs). Under a wrapper, the host itself is
    /// killed too (found by its data directory, which no other process names).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            if !self.wrapper.is_empty() {
                let data = self.dir.path().join("data");
                let _ = Command::new("pkill").arg("-KILL").arg("-f").arg(data).status();
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the process again on the same data directory.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    pub async fn post(&self, content_type: &str, body: impl Into<reqwest::Body>, key: Option<&str>) -> (u16, Value) {
        let mut request = self
            .http
            .post(format!("{}/v1/events", self.url))
            .header("content-type", content_type)
            .body(body);
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// POSTs canonical JSON with the store-wide POS key.
    pub async fn post_json(&self, body: &Value) -> (u16, Value) {
        self.post("application/json", body.to_string(), Some(POS_KEY)).await
    }

    pub async fn get(&self, path: &str, key: &str) -> (u16, Value) {
        let response = self
            .http
            .get(format!("{}{path}", self.url))
            .bearer_auth(key)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// POSTs JSON to an admin endpoint with the admin key.
    pub async fn admin_post(&self, path: &str, body: &Value) -> (u16, Value) {
        let response = self
            .http
            .post(format!("{}{path}", self.url))
            .bearer_auth(ADMIN_KEY)
            .json(body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Uploads a component as a new version of `plugin`; returns the status and answer.
    pub async fn upload(&self, plugin: &str, component: &std::path::Path) -> (u16, Value) {
        let response = self
            .http
            .post(format!("{}/v1/admin/plugins/{plugin}/versions", self.url))
            .bearer_auth(ADMIN_KEY)
            .header("content-type", "application/wasm")
            .body(std::fs::read(component).unwrap())
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// The connector version recorded for an event's delivery to `sink`, once delivered.
    pub async fn delivered_by(&self, id: &str, sink: &str) -> String {
        let entry = wait_for_state(self, id, sink, "delivered").await;
        entry["connector_version"].as_str().unwrap_or("").to_owned()
    }

    /// The idempotency key of stored event `id`'s delivery to `sink` (`{id}:{sink}:{source
    /// digest}`), read from the event's own source.
    pub async fn key_of(&self, id: &str, sink: &str) -> String {
        let stored = self.event(id).await;
        kaunter::store::idempotency_key(stored["event"]["source"].as_str().unwrap(), id, sink)
    }

    /// The audit log as JSON records.
    pub fn audit_records(&self) -> Vec<Value> {
        let out = self.cli(&[
            "audit",
            "log",
            "--json",
            "--data",
            self.dir.path().join("data").to_str().unwrap(),
        ]);
        out.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    }

    /// `GET /v1/events/{id}` with the admin key.
    pub async fn event(&self, id: &str) -> Value {
        let (status, body) = self.get(&format!("/v1/events/{id}"), ADMIN_KEY).await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// Runs the `kaunter` CLI against this host with the admin key.
    fn run_cli(&self, args: &[&str]) -> std::process::Output {
        Command::new(env!("CARGO_BIN_EXE_kaunter-e2e"))
            .args(args)
            .env("KAUNTER_URL", &self.url)
            .env("KAUNTER_API_KEY", ADMIN_KEY)
            .output()
            .unwrap()
    }

    /// Runs the `kaunter` CLI against this host with the admin key; returns stdout.
    pub fn cli(&self, args: &[&str]) -> String {
        let output = self.run_cli(args);
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "kaunter {args:?} failed: {}{}",
            stdout,
            String::from_utf8_lossy(&output.stderr)
        );
        stdout
    }

    /// Runs the `kaunter` CLI against this host with the admin key; returns its exit code and
    /// stdout, whatever the code.
    pub fn cli_code(&self, args: &[&str]) -> (i32, String) {
        let output = self.run_cli(args);
        (
            output.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&output.stdout).into_owned(),
        )
    }

    /// Runs the `kaunter` CLI against this host, expecting it to fail; returns stderr.
    pub fn cli_fails(&self, args: &[&str]) -> String {
        let output = self.run_cli(args);
        assert!(!output.status.success(), "kaunter {args:?} should have failed");
        String::from_utf8_lossy(&output.stderr).into_owned()
    }

    /// Sends SIGHUP to the host process.
    pub fn hangup(&self) {
        let pid = self.child.as_ref().unwrap().id();
        let status = Command::new("kill").args(["-HUP", &pid.to_string()]).status().unwrap();
        assert!(status.success());
    }

    /// Sends SIGTERM and waits for the process to exit (a clean shutdown); returns its status.
    /// Under a wrapper, the host gets the signal and the wrapper's exit is awaited.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().unwrap();
        let status = if self.wrapper.is_empty() {
            Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status()
                .unwrap()
        } else {
            let data = self.dir.path().join("data");
            Command::new("pkill").arg("-TERM").arg("-f").arg(data).status().unwrap()
        };
        assert!(status.success());
        child.wait().unwrap()
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!("---- host log ----\n{}", self.log());
        }
    }
}

mod sink;
pub use sink::*;

/// Polls `check` until it returns `Some`, or fails after `secs` seconds saying what was awaited.
pub async fn wait_for<T, F, Fut>(what: &str, secs: u64, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out after {secs} s waiting for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Waits until the event's delivery to `sink` reaches `state`; returns the sink entry.
pub async fn wait_for_state(host: &Host, id: &str, sink: &str, state: &str) -> Value {
    wait_for(&format!("event {id} to be {state} at {sink}"), 90, || async {
        let (status, body) = host.get(&format!("/v1/events/{id}"), ADMIN_KEY).await;
        if status != 200 {
            return None;
        }
        body["sinks"]
            .as_array()?
            .iter()
            .find(|s| s["sink"] == sink && s["state"] == state)
            .cloned()
    })
    .await
}

pub fn hkd(amount: i64) -> Value {
    json!({"amount_minor": amount, "currency": "HKD", "exponent": 2})
}

/// A canonical sale with one line per (sku, quantity, unit price).
pub fn sale(id: &str, store: &str, order: &str, lines: &[(&str, i64, i64)]) -> Value {
    let mut total = 0;
    let lines: Vec<Value> = lines
        .iter()
        .enumerate()
        .map(|(i, (sku, qty, price))| {
            let gross = qty * price;
            total += gross;
            json!({"line_no": i + 1, "sku": sku, "quantity_milli": qty * 1000, "unit_price": hkd(*price),
                   "gross": hkd(gross), "discount": hkd(0), "net": hkd(gross), "taxes": []})
        })
        .collect();
    json!({
        "id": id,
        "source": format!("/t/acme/s/{store}/p/till-1"),
        "type": "pos.sale.completed.v1",
        "time": "2026-11-25T10:15:00+08:00",
        "data": {
            "order_id": order, "business_date": "2026-11-25", "time_zone": "Asia/Hong_Kong",
            "tax_mode": "inclusive", "lines": lines,
            "tenders": [{"method": "octopus", "amount": hkd(total), "processor_ref": "OCT-1"}],
            "totals": {"gross": hkd(total), "discount": hkd(0), "net": hkd(total), "tax": hkd(0),
                       "total": hkd(total), "tendered": hkd(total), "change": hkd(0)}
        }
    })
}

/// Verifies a Standard Webhooks signature from scratch (independent of kaunter's code).
pub fn verify_standard_webhook(r: &Received, secret: &str) -> bool {
    use hmac::{Hmac, Mac};
    let key = base64::engine::general_purpose::STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    let signed = format!("{}.{}.", r.header("webhook-id"), r.header("webhook-timestamp"));
    let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(&key).unwrap();
    mac.update(signed.as_bytes());
    mac.update(&r.body);
    let expected = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    r.header("webhook-signature")
        .split(' ')
        .any(|s| s == format!("v1,{expected}"))
}

/// A real OAuth 2.0 authorization server (`oauth2-mock-server` from npm, installed by
/// `scripts/test` into tests/oauth).
pub struct OAuthServer {
    child: std::process::Child,
    pub token_url: String,
    pub issuer: String,
}

impl OAuthServer {
    pub async fn start() -> OAuthServer {
        let bin = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("oauth/node_modules/.bin/oauth2-mock-server");
        assert!(
            bin.exists(),
            "{} is missing: run `npm ci --prefix tests/oauth` (scripts/test does)",
            bin.display()
        );
        // Port 0: the server binds a free port itself and says which, so parallel tests cannot
        // race for one.
        let mut child = Command::new(bin)
            .args(["-p", "0", "-a", "127.0.0.1"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(address) = line.strip_prefix("OAuth 2 server listening on ") {
                    let _ = tx.send(address.trim().to_owned());
                }
            }
        });
        let address = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the OAuth server did not say where it listens");
        let port: u16 = address.rsplit(':').next().unwrap().parse().unwrap();
        OAuthServer {
            child,
            token_url: format!("http://127.0.0.1:{port}/token"),
            issuer: format!("http://localhost:{port}"),
        }
    }
}

impl Drop for OAuthServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The claims of a JWT, decoded (not verified).
pub fn jwt_claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}
