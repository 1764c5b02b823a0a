//! OAuth 2.0 credentials: the host gets, caches, rotates and injects tokens; plugins never see them.

use crate::harness::*;
use serde_json::json;

/// The test config with `credential` granted to the webhook connector for the sink.
fn with_credential(sink: &Sink, credential: &str) -> String {
    let mut options = ConfigOptions::new(&sink.url);
    options.extra = credential.to_owned();
    let granted = format!("http = [\"POST {}\"]\n", sink.url);
    config(&options).replacen(&granted, &format!("{granted}credentials = [\"erp-oauth\"]\n"), 1)
}

#[tokio::test(flavor = "multi_thread")]
async fn client_credentials_tokens_are_injected_cached_and_never_seen_by_the_plugin() {
    let oauth = OAuthServer::start().await;
    let sink = Sink::start().await;
    let credential = format!(
        "\n[credentials.erp-oauth]\ngrant = \"client_credentials\"\ntoken_url = \"{}\"\nclient_id = {{ value = \"kaunter\" }}\nclient_secret = {{ value = \"s3cret\" }}\nscope = \"sales.write\"\nfor = [\"POST {}\"]\n",
        oauth.token_url, sink.url
    );
    let host = Host::start(&with_credential(&sink, &credential));
    for i in 0..2 {
        host.post_json(&sale(
            &format!("oa-{i}"),
            "hk-001",
            &format!("OA-{i}"),
            &[("1", 1, 100)],
        ))
        .await;
        wait_for_state(&host, &format!("oa-{i}"), "erp", "delivered").await;
    }
    let requests = sink.requests();
    let tokens: Vec<&str> = requests
        .iter()
        .map(|r| r.header("authorization").strip_prefix("Bearer ").unwrap())
        .collect();
    assert_eq!(tokens[0], tokens[1], "the second request reuses the cached token");
    let claims = jwt_claims(tokens[0]);
    assert_eq!(claims["iss"], oauth.issuer);
    assert_eq!(claims["scope"], "sales.write");
    // The connector signs what it sends; the token is added after, outside the plugin.
    assert!(verify_standard_webhook(&requests[0], WEBHOOK_SECRET));
    assert!(!String::from_utf8_lossy(&requests[0].body).contains(tokens[0]));
    // A failed attempt (its `last_error`) and a dead letter, so those records exist to be read.
    sink.script(&[500]);
    host.post_json(&sale("oa-retried", "hk-001", "oa-retried", &[("1", 1, 100)]))
        .await;
    wait_for_state(&host, "oa-retried", "erp", "delivered").await;
    sink.script(&[400]);
    host.post_json(&sale("oa-dead", "hk-001", "oa-dead", &[("1", 1, 100)]))
        .await;
    wait_for_state(&host, "oa-dead", "erp", "dead_lettered").await;
    // No secret or token is anywhere the host keeps or shows things: its log (with the plugin's
    // own log lines), its audit log, the event lookups (with each delivery's last error), the
    // DLQ, and the bytes of the database and its WAL.
    let data = host.dir.path().join("data");
    let mut places: Vec<(String, String)> = vec![
        ("host log".into(), host.log()),
        (
            "audit log".into(),
            host.cli(&["audit", "log", "--data", data.to_str().unwrap()]),
        ),
        ("dlq".into(), host.get("/v1/admin/dlq", ADMIN_KEY).await.1.to_string()),
    ];
    for id in ["oa-0", "oa-1", "oa-retried", "oa-dead"] {
        places.push((format!("GET /v1/events/{id}"), host.event(id).await.to_string()));
    }
    for file in ["kaunter.db", "kaunter.db-wal"] {
        let bytes = std::fs::read(data.join(file)).unwrap_or_default();
        places.push((file.into(), String::from_utf8_lossy(&bytes).into_owned()));
    }
    let retried = host.event("oa-retried").await;
    // Delivered on its second attempt: the first one's error is in its history.
    assert!(retried["sinks"][0]["failures"][0]["error"].is_string(), "{retried}");
    let secrets = [
        ("client secret", "s3cret"),
        ("access token", tokens[0]),
        ("webhook secret", WEBHOOK_SECRET),
    ];
    for (place, text) in &places {
        for (what, value) in secrets {
            assert!(!text.contains(value), "the {what} is in the {place}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn refresh_tokens_are_rotated_and_kept_durably() {
    let oauth = OAuthServer::start().await;
    let (token_url, exchanges) = token_recorder(&oauth.token_url).await;
    let sink = Sink::start().await;
    let credential = format!(
        "\n[credentials.erp-oauth]\ngrant = \"refresh_token\"\ntoken_url = \"{token_url}\"\nclient_id = {{ value = \"kaunter\" }}\nclient_secret = {{ value = \"s3cret\" }}\nrefresh_token = {{ value = \"first-refresh-token\" }}\nfor = [\"POST {}\"]\n",
        sink.url
    );
    let mut host = Host::start(&with_credential(&sink, &credential));
    host.post_json(&sale("rt-1", "hk-001", "RT-1", &[("1", 1, 100)])).await;
    wait_for_state(&host, "rt-1", "erp", "delivered").await;
    assert!(sink.requests()[0].header("authorization").starts_with("Bearer ey"));
    let issued = {
        let exchanges = exchanges.lock().unwrap();
        assert_eq!(exchanges.len(), 1, "{exchanges:?}");
        assert!(
            exchanges[0].0.contains("refresh_token=first-refresh-token"),
            "{exchanges:?}"
        );
        exchanges[0].1["refresh_token"].as_str().unwrap().to_owned()
    };
    assert_ne!(issued, "first-refresh-token");
    host.kill();
    // What is kept is exactly what the server issued.
    let stored = {
        let db = rusqlite::Connection::open(host.dir.path().join("data/kaunter.db")).unwrap();
        let stored: Vec<u8> = db
            .query_row(
                "SELECT value FROM kv WHERE plugin = 'kaunter:credentials' AND key = 'erp-oauth'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        String::from_utf8(stored).unwrap()
    };
    assert_eq!(stored, issued);
    // After a restart the host refreshes with the rotated token, not the configured one.
    host.restart();
    host.post_json(&sale("rt-2", "hk-001", "RT-2", &[("1", 1, 100)])).await;
    wait_for_state(&host, "rt-2", "erp", "delivered").await;
    let exchanges = exchanges.lock().unwrap();
    assert_eq!(exchanges.len(), 2, "{exchanges:?}");
    assert!(
        exchanges[1].0.contains(&format!("refresh_token={issued}")),
        "refreshed after the restart with: {}",
        exchanges[1].0
    );
}

/// A recording proxy in front of a token endpoint: returns its URL and every exchange (request
/// form, answer JSON), so a test can compare what was issued with what the host keeps.
async fn token_recorder(
    token_url: &str,
) -> (
    String,
    std::sync::Arc<std::sync::Mutex<Vec<(String, serde_json::Value)>>>,
) {
    let exchanges: std::sync::Arc<std::sync::Mutex<Vec<(String, serde_json::Value)>>> = Default::default();
    let (upstream, recorded) = (token_url.to_owned(), exchanges.clone());
    let app = axum::Router::new().route(
        "/token",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
            let (upstream, recorded) = (upstream.clone(), recorded.clone());
            async move {
                let mut request = reqwest::Client::new().post(&upstream).body(body.clone());
                for name in ["content-type", "authorization", "accept"] {
                    if let Some(value) = headers.get(name) {
                        request = request.header(name, value.to_str().unwrap());
                    }
                }
                let response = request.send().await.unwrap();
                let status = response.status().as_u16();
                let answer: serde_json::Value = response.json().await.unwrap();
                recorded.lock().unwrap().push((body, answer.clone()));
                (axum::http::StatusCode::from_u16(status).unwrap(), axum::Json(answer))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/token", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, exchanges)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_revoked_refresh_token_dead_letters_with_what_to_do_and_is_audited() {
    // The authorization server's documented refusal (RFC 6749 §5.2), from a minimal endpoint.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().route(
        "/token",
        axum::routing::post(|| async {
            (
                axum::http::StatusCode::BAD_REQUEST,
                axum::Json(json!({"error": "invalid_grant", "error_description": "token revoked"})),
            )
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let sink = Sink::start().await;
    let credential = format!(
        "\n[credentials.erp-oauth]\ngrant = \"refresh_token\"\ntoken_url = \"http://{addr}/token\"\nclient_id = {{ value = \"kaunter\" }}\nclient_secret = {{ value = \"s3cret\" }}\nrefresh_token = {{ value = \"rt-revoked-by-the-user\" }}\nfor = [\"POST {}\"]\n",
        sink.url
    );
    let host = Host::start(&with_credential(&sink, &credential));
    host.post_json(&sale("rv-1", "hk-001", "RV-1", &[("1", 1, 100)])).await;
    let entry = wait_for_state(&host, "rv-1", "erp", "dead_lettered").await;
    let error = entry["last_error"].as_str().unwrap();
    assert!(
        error.starts_with("credential refused: credential `erp-oauth`: the authorization server answered invalid_grant: token revoked; the refresh token is revoked or expired"),
        "{error}"
    );
    assert!(sink.requests().is_empty(), "nothing goes out without the token");
    let data = host.dir.path().join("data");
    let log = host.cli(&["audit", "log", "--data", data.to_str().unwrap()]);
    assert!(log.contains("credential.refused"), "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_can_go_in_a_vendor_header_and_the_secret_in_the_form_body() {
    use crate::vendors::{Reply, VendorFake};
    // Shopify's client-credentials grant: client_id and client_secret as form fields, and the
    // Admin API reads the token from `X-Shopify-Access-Token`, without a `Bearer ` prefix.
    let shop = VendorFake::start(|call| {
        if call.path == "/admin/oauth/access_token" {
            let form = call.text();
            let ok = call.header("authorization").is_empty()
                && form.contains("grant_type=client_credentials")
                && form.contains("client_id=shop-app")
                && form.contains("client_secret=shpss_s3cret");
            return if ok {
                Reply::json(
                    200,
                    &json!({"access_token": "shpat_token_1", "scope": "write_inventory", "expires_in": 86399}),
                )
            } else {
                Reply::json(400, &json!({"error": "invalid_client", "error_description": form}))
            };
        }
        Reply::text(204, "")
    })
    .await;
    let url = format!("{}/hooks", shop.url);
    let credential = format!(
        "\n[credentials.erp-oauth]\ngrant = \"client_credentials\"\ntoken_url = \"{}/admin/oauth/access_token\"\nclient_id = {{ value = \"shop-app\" }}\nclient_secret = {{ value = \"shpss_s3cret\" }}\nclient_auth = \"form\"\nheader = \"X-Shopify-Access-Token\"\nprefix = \"\"\nfor = [\"POST {url}\"]\n",
        shop.url
    );
    let mut options = ConfigOptions::new(&url);
    options.extra = credential;
    let granted = format!("http = [\"POST {url}\"]\n");
    let text = config(&options).replacen(&granted, &format!("{granted}credentials = [\"erp-oauth\"]\n"), 1);
    let host = Host::start(&text);
    host.post_json(&sale("shp-1", "hk-001", "SHP-1", &[("1", 1, 100)]))
        .await;
    wait_for_state(&host, "shp-1", "erp", "delivered").await;
    let delivered = shop.calls_to("POST", "/hooks");
    assert_eq!(delivered[0].header("x-shopify-access-token"), "shpat_token_1");
    assert_eq!(delivered[0].header("authorization"), "");
}
