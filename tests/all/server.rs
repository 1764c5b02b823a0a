//! Connections: slow or idle clients are cut off by the `[server]` timeouts, and idle sockets
//! never lock fresh clients out. Timers are shortened by config; each test waits for a condition
//! with a generous deadline, never for a measured time.

use crate::harness::*;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn host_with(server: &str) -> (Host, String) {
    let sink_url = "http://127.0.0.1:9/hooks".to_owned();
    let mut options = ConfigOptions::new(&sink_url);
    options.server_extra = server.to_owned();
    let host = Host::start(&config(&options));
    let addr = host.url.trim_start_matches("http://").to_owned();
    (host, addr)
}

/// Reads until the server closes the connection (or 60 s pass); returns what it sent.
async fn read_until_closed(stream: &mut (impl AsyncReadExt + Unpin)) -> String {
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    let closed = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => received.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the server kept the connection open for 60 s");
    String::from_utf8_lossy(&received).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_half_sent_request_head_is_closed_after_the_header_timeout() {
    let (_host, addr) = host_with("header_read_timeout_secs = 1");
    let mut stream = TcpStream::connect(&addr).await.unwrap();
    stream
        .write_all(b"POST /v1/events HTTP/1.1\r\nHost: kaunter\r\nContent-Type: appl")
        .await
        .unwrap();
    let answer = read_until_closed(&mut stream).await;
    assert!(!answer.contains("202"), "{answer}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_idle_keep_alive_connection_is_closed() {
    let (_host, addr) = host_with("keep_alive_idle_secs = 1");
    // A silent socket, and one that made a request and kept the connection.
    let mut silent = TcpStream::connect(&addr).await.unwrap();
    let mut kept = TcpStream::connect(&addr).await.unwrap();
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: kaunter\r\n\r\n")
        .await
        .unwrap();
    let answer = read_until_closed(&mut kept).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert_eq!(read_until_closed(&mut silent).await, "");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_trickled_body_is_refused_with_408() {
    let (host, addr) = host_with("body_read_timeout_secs = 1\nbody_min_bytes_per_sec = 100");
    let mut stream = TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /v1/events HTTP/1.1\r\nHost: kaunter\r\nAuthorization: Bearer {POS_KEY}\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    // 12 bytes a second, as the review's client did, until the server answers.
    let writer = {
        let (mut read, mut write) = stream.into_split();
        let trickle = tokio::spawn(async move {
            for _ in 0..120 {
                if write.write_all(b"{\"id\": \"slow").await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
        let answer = read_until_closed(&mut read).await;
        trickle.abort();
        answer
    };
    assert!(writer.starts_with("HTTP/1.1 408"), "{writer}");
    assert!(writer.contains("body_too_slow"), "{writer}");
    assert!(writer.contains("server.body_min_bytes_per_sec"), "{writer}");
    // The host answers others all along.
    let (status, _) = host.get("/healthz", ADMIN_KEY).await;
    assert_eq!(status, 200);
}

/// 5,000 idle sockets against a limit of 500 connections: the longest-idle ones are closed to
/// admit new clients, so `/healthz` and ingest keep answering.
#[tokio::test(flavor = "multi_thread")]
async fn idle_connections_cannot_lock_out_health_checks_or_ingest() {
    let (host, addr) = host_with("max_connections = 500");
    let mut idle = Vec::with_capacity(5000);
    for _ in 0..5000 {
        idle.push(TcpStream::connect(&addr).await.unwrap());
    }
    for i in 0..3 {
        // A fresh client each time: a new connection, as a new till or monitor would open.
        let fresh = || reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
        let health = fresh().get(format!("{}/healthz", host.url)).send().await.unwrap();
        assert_eq!(health.status(), 200);
        let ingest = fresh()
            .post(format!("{}/v1/events", host.url))
            .bearer_auth(POS_KEY)
            .json(&sale(
                &format!("crowd-{i}"),
                "hk-001",
                &format!("C-{i}"),
                &[("1", 1, 100)],
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(ingest.status(), 202);
    }
    // The earliest idle sockets were closed by the server to make room.
    let mut first = idle.swap_remove(0);
    assert_eq!(read_until_closed(&mut first).await, "");
    drop(idle);
}

/// The admin key is checked before a body is read: a wrong key announcing a 50 MB upload gets
/// 401 at once, without sending the body. With the right key, an upload over 1 MiB is read (up
/// to the 64 MiB component limit) and judged as a component.
#[tokio::test(flavor = "multi_thread")]
async fn admin_bodies_are_read_only_after_the_key_and_within_their_own_limit() {
    let (host, addr) = host_with("");
    let mut stream = TcpStream::connect(&addr).await.unwrap();
    stream
        .write_all(
            b"POST /v1/admin/plugins/webhook/versions HTTP/1.1\r\nHost: kaunter\r\nAuthorization: Bearer not-a-key\r\nContent-Type: application/wasm\r\nContent-Length: 50000000\r\n\r\n",
        )
        .await
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(60), stream.read(&mut buf))
        .await
        .expect("no answer without the body")
        .unwrap();
    let answer = String::from_utf8_lossy(&buf[..n]);
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");

    let junk = vec![0x42u8; 2 * 1024 * 1024];
    let response = reqwest::Client::new()
        .post(format!("{}/v1/admin/plugins/webhook/versions", host.url))
        .bearer_auth(ADMIN_KEY)
        .header("content-type", "application/wasm")
        .body(junk)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(status, 400, "{body}");
    assert_ne!(body["error"]["code"], "payload_too_large", "{body}");
}

/// A command whose reader goes away (`kaunter … | head`) ends quietly with SIGPIPE's status,
/// not with a panic message and a stack trace.
#[test]
fn a_closed_output_pipe_ends_a_command_quietly() {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_kaunter-e2e"))
        .args(["demo", "--print-config"])
        .env("RUST_BACKTRACE", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take()); // the reader is gone before anything is written
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(output.status.code(), Some(141), "{stderr}");
}

/// `kaunter check` looks at the plugin files too: a component that is not there fails the check
/// with the field and the path, instead of "ok".
#[test]
fn check_fails_when_a_plugin_file_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("kaunter.toml");
    let text = crate::harness::config(&crate::harness::ConfigOptions::new("http://127.0.0.1:9/hooks"));
    std::fs::write(&file, &text).unwrap();
    let ok = std::process::Command::new(env!("CARGO_BIN_EXE_kaunter-e2e"))
        .args(["check", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    assert!(String::from_utf8_lossy(&ok.stdout).starts_with("ok: "));
    let missing = text.replace(
        &format!("path = {:?}", kaunter_tests::plugins::TRANSFORM_SKU_MAP),
        "path = \"no-such-build/sku_map.wasm\"",
    );
    std::fs::write(&file, missing).unwrap();
    let failed = std::process::Command::new(env!("CARGO_BIN_EXE_kaunter-e2e"))
        .args(["check", file.to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(!failed.status.success());
    assert!(
        stderr.contains("error: plugins.sku-map.path: cannot read component")
            && stderr.contains("no-such-build/sku_map.wasm"),
        "{stderr}"
    );
}
