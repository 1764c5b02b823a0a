//! Outbound https through the egress checkpoint, https token endpoints, signed-JWT client
//! authentication (RFC 7523, as NetSuite's machine-to-machine flow uses it), and a token refused
//! by the target (401) replaced before the next attempt.

use crate::harness::*;
use crate::vendors::{Call, Reply, TestCa, VendorFake};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The test config with the webhook connector pointed at `url`, trusting `ca_file` when given.
fn config_for(url: &str, ca_file: Option<&std::path::Path>) -> String {
    let text = config(&ConfigOptions::new(url));
    match ca_file {
        Some(ca) => text.replacen(
            "[server]\n",
            &format!("[server]\nextra_ca_files = [{:?}]\n", ca.display().to_string()),
            1,
        ),
        None => text,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn https_destinations_are_verified_against_trusted_authorities() {
    let ca = TestCa::new();
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &ca.ca_pem).unwrap();
    let erp = VendorFake::start_tls(|_| Reply::text(204, ""), ca.server.clone()).await;
    let url = format!("{}/hooks", erp.url);
    assert!(url.starts_with("https://127.0.0.1:"));

    // Trusting the test authority: delivered over TLS, signed, with the idempotency key.
    let host = Host::start(&config_for(&url, Some(&ca_file)));
    host.post_json(&sale("tls-1", "hk-001", "TLS-1", &[("1", 1, 100)]))
        .await;
    wait_for_state(&host, "tls-1", "erp", "delivered").await;
    let calls = erp.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!((calls[0].method.as_str(), calls[0].path.as_str()), ("POST", "/hooks"));
    assert_eq!(
        calls[0].header("webhook-id"),
        kaunter::store::idempotency_key(calls[0].json()["source"].as_str().unwrap(), "tls-1", "erp")
    );
    assert_eq!(calls[0].json()["id"], "tls-1");
    drop(host);

    // Without it the certificate is refused: nothing arrives, and the error says why.
    let host = Host::start(&config_for(&url, None));
    host.post_json(&sale("tls-2", "hk-001", "TLS-2", &[("1", 1, 100)]))
        .await;
    let error = wait_for("the first failed attempt of tls-2", 30, || async {
        let event = host.event("tls-2").await;
        event["sinks"][0]["last_error"].as_str().map(str::to_owned)
    })
    .await;
    assert_eq!(error, "no response: ErrorCode::TlsCertificateError");
    assert_eq!(erp.calls().len(), 1, "nothing reached the untrusted destination");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_signed_jwt_client_gets_tokens_over_https_and_a_refused_token_is_replaced() {
    let ca = TestCa::new();
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &ca.ca_pem).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let key_file = dir.path().join("netsuite-key.pem");
    std::fs::write(&key_file, key.serialize_pem()).unwrap();
    let public = jsonwebtoken::DecodingKey::from_ec_pem(key.public_key_pem().as_bytes()).unwrap();

    // The token endpoint checks the assertion the way an RFC 7523 server does, then issues
    // numbered tokens so the test can tell them apart.
    let issued = Arc::new(AtomicUsize::new(0));
    let token_url = Arc::new(std::sync::Mutex::new(String::new()));
    let (count, audience) = (issued.clone(), token_url.clone());
    let tokens = VendorFake::start_tls(
        move |call: &Call| {
            let form: std::collections::HashMap<String, String> = call
                .text()
                .split('&')
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.to_owned(), v.replace("%3A", ":").replace("%20", " ")))
                .collect();
            let assertion = form.get("client_assertion").cloned().unwrap_or_default();
            let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
            validation.set_audience(&[audience.lock().unwrap().clone()]);
            validation.set_issuer(&["ns-client-id"]);
            let checked = jsonwebtoken::decode::<serde_json::Value>(&assertion, &public, &validation);
            let header = jsonwebtoken::decode_header(&assertion);
            let valid = form.get("grant_type").map(String::as_str) == Some("client_credentials")
                && form.get("client_assertion_type").map(String::as_str)
                    == Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
                && call.header("authorization").is_empty()
                && checked.is_ok_and(|c| c.claims["scope"] == "rest_webservices")
                && header.is_ok_and(|h| h.kid.as_deref() == Some("cert-123"));
            if !valid {
                return Reply::json(
                    400,
                    &json!({"error": "invalid_client", "error_description": "bad assertion"}),
                );
            }
            let n = count.fetch_add(1, Ordering::SeqCst) + 1;
            Reply::json(
                200,
                &json!({"access_token": format!("ns-token-{n}"), "token_type": "Bearer", "expires_in": 3600}),
            )
        },
        ca.server.clone(),
    )
    .await;
    *token_url.lock().unwrap() = format!("{}/services/rest/auth/oauth2/v1/token", tokens.url);

    let erp = VendorFake::start(|_| Reply::text(204, "")).await;
    // The first delivery's token is refused once, as a target does when it revokes a token early.
    erp.script([Reply::json(401, &json!({"title": "Unauthorized", "status": 401}))]);
    let url = format!("{}/hooks", erp.url);
    let credential = format!(
        r#"
[credentials.netsuite]
grant = "client_credentials"
token_url = "{token_url}"
client_id = {{ value = "ns-client-id" }}
scope = "rest_webservices"
for = ["POST {url}"]
[credentials.netsuite.client_assertion]
algorithm = "ES256"
key_id = "cert-123"
private_key = {{ file = {key:?} }}
"#,
        token_url = token_url.lock().unwrap(),
        key = key_file.display().to_string(),
    );
    let mut options = ConfigOptions::new(&url);
    options.extra = credential;
    let granted = format!("http = [\"POST {url}\"]\n");
    let text = config(&options)
        .replacen(&granted, &format!("{granted}credentials = [\"netsuite\"]\n"), 1)
        .replacen(
            "[server]\n",
            &format!("[server]\nextra_ca_files = [{:?}]\n", ca_file.display().to_string()),
            1,
        );
    let host = Host::start(&text);
    host.post_json(&sale("jwt-1", "hk-001", "JWT-1", &[("1", 1, 100)]))
        .await;
    let entry = wait_for_state(&host, "jwt-1", "erp", "delivered").await;
    assert_eq!(entry["attempts"], 2, "{entry}");
    let sent: Vec<String> = erp
        .calls()
        .iter()
        .map(|c| c.header("authorization").to_owned())
        .collect();
    assert_eq!(
        sent,
        ["Bearer ns-token-1", "Bearer ns-token-2"],
        "the refused token is not used again"
    );
    host.post_json(&sale("jwt-2", "hk-001", "JWT-2", &[("1", 1, 100)]))
        .await;
    wait_for_state(&host, "jwt-2", "erp", "delivered").await;
    assert_eq!(
        erp.calls()[2].header("authorization"),
        "Bearer ns-token-2",
        "a good token is cached"
    );
    assert_eq!(issued.load(Ordering::SeqCst), 2);
    assert!(!host.log().contains("BEGIN PRIVATE KEY"));
}
