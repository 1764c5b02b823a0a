//! `connector-netsuite` against a fake NetSuite (SuiteTalk REST record API and its OAuth 2.0
//! machine-to-machine token endpoint), in the real host: the host signs a JWT client assertion
//! (ES256, `kid` = the certificate id) for the token, the connector upserts cash sales and refunds
//! on their external id (`PUT …/cashSale/eid:{store}-{order}?replace=item`), and NetSuite answers
//! 204 + `Location` on create and on update, or its documented `o:errorDetails` errors.

use super::{Call, Reply, VendorFake, host_config};
use crate::harness::*;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

const TOKEN_PATH: &str = "/services/rest/auth/oauth2/v1/token";
const RECORDS: &str = "/services/rest/record/v1/";
const CLIENT_ID: &str = "ns-integration-client-id";
const CERTIFICATE_ID: &str = "nRWCbPpLvD1ZcxA3tDt5pNDg5mrBE5IgHsbuyPbgAOc";
const TOKEN: &str = "eyJraWQiOiJjLjEyMzQ1NjcuMjAyNi0xMS0yNV8wMC0wMC0wMCIsInR5cCI6IkpXVCJ9.ns-access";

/// `{"o:errorDetails": [...]}` as NetSuite's REST web services write errors.
fn ns_error(status: u16, title: &str, code: &str, detail: &str) -> Reply {
    Reply::json(
        status,
        &json!({"type": "https://www.w3.org/Protocols/rfc2616/rfc2616-sec10.html", "title": title, "status": status,
                "o:errorDetails": [{"detail": detail, "o:errorCode": code}]}),
    )
}

/// `application/x-www-form-urlencoded` fields.
fn form(text: &str) -> Vec<(String, String)> {
    let decode = |s: &str| {
        let bytes = s.replace('+', " ").into_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%' && i + 2 < bytes.len() {
                out.push(u8::from_str_radix(std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap(), 16).unwrap());
                i += 3;
            } else {
                out.push(bytes[i]);
                i += 1;
            }
        }
        String::from_utf8(out).unwrap()
    };
    text.split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (decode(k), decode(v)))
        .collect()
}

/// A record the fake account holds: its internal id and its fields.
#[derive(Debug, Clone)]
struct Stored {
    id: u64,
    fields: Value,
}

/// A fake NetSuite account: the token endpoint checks the client assertion against the uploaded
/// certificate's public key; the record API wants the token and upserts on the external id in
/// the URL (`PUT …/{type}/eid:{externalId}`): it creates the record the first time and updates
/// the same one after, answering 204 with the record's URL in `Location` both times. On an update
/// the item lines are replaced when the request says `replace=item`, else appended, as NetSuite
/// does with a non-keyed sublist.
struct NetSuite {
    public_key_pem: String,
    token_url: Mutex<String>,
    /// (record type, external id) → record.
    records: Mutex<BTreeMap<(String, String), Stored>>,
    next_id: AtomicU64,
    /// Apply the next upsert, then answer 504 as if the gateway lost NetSuite's answer.
    lose_next_answer: AtomicBool,
}

impl NetSuite {
    fn answer(&self, call: &Call) -> Reply {
        if call.path == TOKEN_PATH {
            return self.token(call);
        }
        let Some(rest) = call.path.strip_prefix(RECORDS) else {
            return ns_error(404, "Not Found", "NONEXISTENT_ID", "The record type does not exist.");
        };
        if call.header("authorization") != format!("Bearer {TOKEN}") {
            return ns_error(
                401,
                "Unauthorized",
                "INVALID_LOGIN",
                "Invalid login attempt. For more details, see the Login Audit Trail in the NetSuite UI at Setup > Users/Roles > User Management > View Login Audit Trail.",
            );
        }
        let Some((record, external_id)) = rest.split_once("/eid:") else {
            return ns_error(
                400,
                "Bad Request",
                "INVALID_REQUEST",
                "The upsert operation needs an external ID in the request URL.",
            );
        };
        if call.method != "PUT" {
            return ns_error(
                405,
                "Method Not Allowed",
                "INVALID_REQUEST",
                "The request method is not supported.",
            );
        }
        let body = call.json();
        let replace_items = call.query.split('&').any(|p| p == "replace=item");
        let id = {
            let mut records = self.records.lock().unwrap();
            let key = (record.to_owned(), external_id.to_owned());
            match records.get_mut(&key) {
                Some(stored) => {
                    let old_lines = stored.fields["item"]["items"].as_array().cloned().unwrap_or_default();
                    let mut fields = body.clone();
                    if !replace_items {
                        let mut lines = old_lines;
                        lines.extend(body["item"]["items"].as_array().cloned().unwrap_or_default());
                        fields["item"]["items"] = Value::Array(lines);
                    }
                    for (k, v) in fields.as_object().unwrap() {
                        stored.fields[k] = v.clone();
                    }
                    stored.id
                }
                None => {
                    let id = self.next_id.fetch_add(1, Ordering::SeqCst);
                    records.insert(key, Stored { id, fields: body });
                    id
                }
            }
        };
        if self.lose_next_answer.swap(false, Ordering::SeqCst) {
            return Reply::text(504, "Gateway Timeout");
        }
        let location = format!("https://1234567.suitetalk.api.netsuite.com{RECORDS}{record}/{id}");
        Reply::text(204, "").with_header("location", &location)
    }

    /// The records of one type, by external id.
    fn records(&self, record: &str) -> BTreeMap<String, Stored> {
        self.records
            .lock()
            .unwrap()
            .iter()
            .filter(|((r, _), _)| r == record)
            .map(|((_, eid), stored)| (eid.clone(), stored.clone()))
            .collect()
    }

    /// RFC 7523 client authentication, as NetSuite's OAuth 2.0 client credentials flow wants it.
    fn token(&self, call: &Call) -> Reply {
        use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
        let fields = form(&call.text());
        let field = |name: &str| {
            fields
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
                .unwrap_or("")
        };
        let invalid = |why: &str| Reply::json(400, &json!({"error": "invalid_request", "error_description": why}));
        if field("grant_type") != "client_credentials"
            || field("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
            || !call.header("authorization").is_empty()
        {
            return invalid("expected a client_credentials grant authenticated by a JWT assertion only");
        }
        let assertion = field("client_assertion");
        let Ok(header) = decode_header(assertion) else {
            return invalid("the client assertion is not a JWT");
        };
        if header.kid.as_deref() != Some(CERTIFICATE_ID) {
            return Reply::json(400, &json!({"error": "invalid_client"}));
        }
        let mut validation = Validation::new(Algorithm::ES256);
        validation.set_audience(&[self.token_url.lock().unwrap().as_str()]);
        validation.set_issuer(&[CLIENT_ID]);
        let key = DecodingKey::from_ec_pem(self.public_key_pem.as_bytes()).unwrap();
        match decode::<Value>(assertion, &key, &validation) {
            Ok(claims) if claims.claims["scope"] == "rest_webservices" => Reply::json(
                200,
                &json!({"access_token": TOKEN, "expires_in": "3600", "token_type": "bearer"}),
            ),
            _ => Reply::json(400, &json!({"error": "invalid_grant"})),
        }
    }
}

/// The fake account, its state, the host (granted a client-assertion credential for it), and the
/// key file.
async fn start() -> (VendorFake, Arc<NetSuite>, Host, tempfile::TempDir) {
    let key = rcgen::KeyPair::generate().unwrap();
    let keys = tempfile::tempdir().unwrap();
    let pem = keys.path().join("netsuite-m2m.pem");
    std::fs::write(&pem, key.serialize_pem()).unwrap();
    let netsuite = Arc::new(NetSuite {
        public_key_pem: key.public_key_pem(),
        token_url: Mutex::default(),
        records: Mutex::default(),
        next_id: AtomicU64::new(647),
        lose_next_answer: AtomicBool::new(false),
    });
    let handler = netsuite.clone();
    let fake = VendorFake::start(move |call| handler.answer(call)).await;
    let token_url = format!("{}{TOKEN_PATH}", fake.url);
    *netsuite.token_url.lock().unwrap() = token_url.clone();
    let host = Host::start(&host_config(&format!(
        r#"
[credentials.netsuite]
grant = "client_credentials"
token_url = "{token_url}"
client_id = {{ value = "{CLIENT_ID}" }}
scope = "rest_webservices"
for = ["PUT {url}{RECORDS}"]
[credentials.netsuite.client_assertion]
algorithm = "ES256"
key_id = "{CERTIFICATE_ID}"
private_key = {{ file = {pem:?} }}

[[plugins]]
name = "netsuite"
kind = "connector"
path = {path:?}
[plugins.config]
base_url = "{url}"
entity = "107"
subsidiary = "1"
[plugins.config.locations]
hk-001 = "3"
hk-002 = "4"
[plugins.config.items]
4891234500017 = "501"
4891234500024 = "502"
[plugins.grants]
http = ["PUT {url}{RECORDS}"]
credentials = ["netsuite"]

[[sinks]]
name = "netsuite"
connector = "netsuite"
max_attempts = 3
backoff_base_ms = 20
backoff_max_ms = 200

[[routes]]
name = "books"
types = ["pos.sale.completed.v1", "pos.refund.completed.v1"]
sinks = ["netsuite"]
"#,
        url = fake.url,
        pem = pem.display().to_string(),
        path = kaunter_tests::plugins::CONNECTOR_NETSUITE,
    )));
    (fake, netsuite, host, keys)
}

fn refund(id: &str, refund_id: &str, order: &str) -> Value {
    let line = json!({"line_no": 1, "sku": "4891234500017", "quantity_milli": -1000, "unit_price": hkd(3990),
                      "gross": hkd(-3990), "discount": hkd(0), "net": hkd(-3990), "taxes": []});
    json!({"id": id, "source": "/t/acme/s/hk-001/p/till-1", "type": "pos.refund.completed.v1",
           "time": "2026-11-25T16:40:00+08:00",
           "data": {"refund_id": refund_id, "original_order_id": order, "business_date": "2026-11-25",
                    "time_zone": "Asia/Hong_Kong", "tax_mode": "inclusive",
                    "lines": [{"line": line, "original_line_no": 1, "restock": true}],
                    "tenders": [{"method": "cash", "amount": hkd(-3990)}],
                    "totals": {"gross": hkd(-3990), "discount": hkd(0), "net": hkd(-3990), "tax": hkd(0),
                               "total": hkd(-3990), "tendered": hkd(-3990), "change": hkd(0)},
                    "reason": "wrong item"}})
}

#[tokio::test(flavor = "multi_thread")]
async fn sales_and_refunds_are_upserted_as_cash_sales_and_refunds_under_the_hosts_m2m_token() {
    let (fake, netsuite, host, _keys) = start().await;
    host.post_json(&sale(
        "ns-sale-1",
        "hk-001",
        "HK001-000123",
        &[("4891234500017", 2, 3990), ("4891234500024", 1, 12800)],
    ))
    .await;
    wait_for_state(&host, "ns-sale-1", "netsuite", "delivered").await;
    host.post_json(&refund("ns-refund-1", "HK001-R-7", "HK001-000123"))
        .await;
    wait_for_state(&host, "ns-refund-1", "netsuite", "delivered").await;

    let tokens = fake.calls_to("POST", TOKEN_PATH);
    assert_eq!(tokens.len(), 1, "one token, cached for both records");
    let fields = form(&tokens[0].text());
    let names: Vec<&str> = fields.iter().map(|(k, _)| k.as_str()).collect();
    assert!(!names.contains(&"client_secret"), "no client secret: {names:?}");
    let claims = jwt_claims(&fields.iter().find(|(k, _)| k == "client_assertion").unwrap().1);
    let lifetime = claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap();
    assert!(
        (1..=3600).contains(&lifetime),
        "NetSuite allows at most an hour: {lifetime}"
    );

    let records = fake.calls_to("PUT", RECORDS);
    assert_eq!(records.len(), 2);
    assert!(
        fake.calls_to("POST", RECORDS).is_empty(),
        "records are upserted, never POSTed"
    );
    for call in &records {
        assert_eq!(call.header("authorization"), format!("Bearer {TOKEN}"));
        assert_eq!(call.header("content-type"), "application/json");
        assert_eq!(call.query, "replace=item");
        // NetSuite ignores its idempotency key on synchronous requests; the upsert does that job.
        assert_eq!(call.header("x-netsuite-idempotency-key"), "");
        assert!(!call.text().contains(TOKEN), "the token stays out of the body");
    }
    assert_eq!(
        records[0].path,
        "/services/rest/record/v1/cashSale/eid:hk-001-HK001-000123"
    );
    assert_eq!(
        records[0].text(),
        concat!(
            r#"{"memo":"POS order HK001-000123","tranDate":"2026-11-25","#,
            r#""entity":{"id":"107"},"subsidiary":{"id":"1"},"location":{"id":"3"},"item":{"items":["#,
            r#"{"item":{"id":"501"},"quantity":2,"amount":79.80},"#,
            r#"{"item":{"id":"502"},"quantity":1,"amount":128.00}]}}"#
        )
    );
    assert_eq!(
        records[1].path,
        "/services/rest/record/v1/cashRefund/eid:hk-001-HK001-R-7"
    );
    assert_eq!(
        records[1].json(),
        json!({"memo": "POS refund HK001-R-7 of order HK001-000123 (wrong item)",
               "tranDate": "2026-11-25", "entity": {"id": "107"}, "subsidiary": {"id": "1"}, "location": {"id": "3"},
               "item": {"items": [{"item": {"id": "501"}, "quantity": 1, "amount": 39.90}]}})
    );
    assert_eq!(
        netsuite.records("cashSale").keys().collect::<Vec<_>>(),
        ["hk-001-HK001-000123"]
    );
    assert_eq!(
        netsuite.records("cashRefund").keys().collect::<Vec<_>>(),
        ["hk-001-HK001-R-7"]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_retry_after_a_lost_answer_updates_the_same_record_and_two_stores_same_order_make_two() {
    let (fake, netsuite, host, _keys) = start().await;

    // NetSuite books the sale but its answer is lost (the gateway answers 504): the host retries,
    // and the upsert lands on the record the first attempt made, with its lines once.
    netsuite.lose_next_answer.store(true, Ordering::SeqCst);
    host.post_json(&sale("ns-lost", "hk-001", "A-123", &[("4891234500017", 2, 3990)]))
        .await;
    let entry = wait_for_state(&host, "ns-lost", "netsuite", "delivered").await;
    assert_eq!(entry["attempts"], 2);
    let tries = fake.calls_to("PUT", "/services/rest/record/v1/cashSale/eid:hk-001-A-123");
    assert_eq!(tries.len(), 2);
    assert_eq!(tries[0].body, tries[1].body);
    let sales = netsuite.records("cashSale");
    assert_eq!(sales.len(), 1);
    let booked = &sales["hk-001-A-123"];
    assert_eq!(
        booked.fields["item"]["items"],
        json!([{"item": {"id": "501"}, "quantity": 2, "amount": 79.80}])
    );

    // The POS sends the same order again as a new event (a resend after a crash): the same record.
    host.post_json(&sale("ns-lost-again", "hk-001", "A-123", &[("4891234500017", 2, 3990)]))
        .await;
    let entry = wait_for_state(&host, "ns-lost-again", "netsuite", "delivered").await;
    assert_eq!(entry["attempts"], 1);
    assert_eq!(netsuite.records("cashSale")["hk-001-A-123"].id, booked.id);
    assert_eq!(netsuite.records("cashSale").len(), 1);

    // Store hk-002 numbers its orders on its own and also has an A-123: a second cash sale, at
    // its own location, not an update of store hk-001's.
    host.post_json(&sale(
        "ns-other-store",
        "hk-002",
        "A-123",
        &[("4891234500024", 1, 12800)],
    ))
    .await;
    wait_for_state(&host, "ns-other-store", "netsuite", "delivered").await;
    let sales = netsuite.records("cashSale");
    assert_eq!(sales.keys().collect::<Vec<_>>(), ["hk-001-A-123", "hk-002-A-123"]);
    assert_ne!(sales["hk-001-A-123"].id, sales["hk-002-A-123"].id);
    assert_eq!(sales["hk-001-A-123"].fields["location"], json!({"id": "3"}));
    assert_eq!(sales["hk-002-A-123"].fields["location"], json!({"id": "4"}));
    assert_eq!(
        sales["hk-001-A-123"].fields["item"]["items"],
        json!([{"item": {"id": "501"}, "quantity": 2, "amount": 79.80}])
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn throttles_and_refused_tokens_are_retried_and_invalid_records_dead_letter() {
    let (fake, netsuite, host, _keys) = start().await;
    // A first sale, so the host holds a token before answers are scripted.
    host.post_json(&sale("ns-a", "hk-001", "HK001-1", &[("4891234500017", 1, 3990)]))
        .await;
    wait_for_state(&host, "ns-a", "netsuite", "delivered").await;

    // The account's concurrency limit is reached once: throttled, then upserted on the next attempt.
    fake.script([ns_error(
        429,
        "Too Many Requests",
        "CONCURRENCY_LIMIT_EXCEEDED",
        "Concurrent request limit exceeded. Request blocked.",
    )]);
    host.post_json(&sale("ns-b", "hk-001", "HK001-2", &[("4891234500017", 1, 3990)]))
        .await;
    let entry = wait_for_state(&host, "ns-b", "netsuite", "delivered").await;
    assert_eq!(entry["attempts"], 2);
    let tries = fake.calls_to("PUT", "/services/rest/record/v1/cashSale/eid:hk-001-HK001-2");
    assert_eq!(tries.len(), 2);
    assert_eq!(tries[0].body, tries[1].body);

    // NetSuite refuses the token once (revoked, say): the host drops it, gets a new one with a
    // fresh assertion, and the retry goes through.
    fake.script([ns_error(
        401,
        "Unauthorized",
        "INVALID_LOGIN",
        "Invalid login attempt. For more details, see the Login Audit Trail in the NetSuite UI at Setup > Users/Roles > User Management > View Login Audit Trail.",
    )]);
    host.post_json(&sale("ns-d", "hk-001", "HK001-4", &[("4891234500017", 1, 3990)]))
        .await;
    let entry = wait_for_state(&host, "ns-d", "netsuite", "delivered").await;
    assert_eq!(entry["attempts"], 2);
    assert_eq!(fake.calls_to("POST", TOKEN_PATH).len(), 2, "a new token after the 401");

    // A value NetSuite refuses: dead-lettered at once with NetSuite's error code and detail.
    fake.script([ns_error(
        400,
        "Bad Request",
        "INVALID_CONTENT",
        "Error while accessing resource: You have entered an Invalid Field Value 501 for the following field: item",
    )]);
    host.post_json(&sale("ns-c", "hk-001", "HK001-3", &[("4891234500017", 1, 3990)]))
        .await;
    let entry = wait_for_state(&host, "ns-c", "netsuite", "dead_lettered").await;
    assert_eq!(entry["attempts"], 1);
    assert_eq!(
        entry["last_error"],
        "rejected: HTTP 400: INVALID_CONTENT: Error while accessing resource: You have entered an Invalid Field Value 501 for the following field: item"
    );
    assert_eq!(
        netsuite.records("cashSale").keys().collect::<Vec<_>>(),
        ["hk-001-HK001-1", "hk-001-HK001-2", "hk-001-HK001-4"]
    );
}
