//! `connector-quickbooks` in the real host against a fake of the QuickBooks Online Accounting API
//! v3, answering as Intuit documents it: `POST /v3/company/{realmId}/salesreceipt` and
//! `/refundreceipt` with `requestid` (a repeated one gets the stored answer) and `minorversion`,
//! `{"SalesReceipt": {"Id": …}, "time": …}` on success, errors as `Fault.Error[]` with codes
//! (6140 duplicate document number, 610 object not found, 2050 a `DocNumber` over 21
//! characters), and a 401 `AUTHENTICATION` fault (in
//! lower case) without a bearer token. Tokens come from a real OAuth 2.0 server through a host
//! credential.

use super::{Call, Reply, VendorFake, host_config};
use crate::harness::*;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

const REALM: &str = "9130357766900476";

/// The company's books as the fake keeps them.
#[derive(Default)]
struct Company {
    /// Receipts created, in order, as sent (with their new `Id`).
    receipts: Vec<(String, Value)>,
    /// Answers already given, by `requestid`.
    replays: HashMap<String, Reply>,
}

fn fault(kind: &str, code: &str, message: &str, detail: &str) -> Reply {
    Reply::json(
        400,
        &json!({"Fault": {"Error": [{"Message": message, "Detail": detail, "code": code, "element": ""}],
                          "type": kind},
                "time": "2026-11-25T02:15:03.123-08:00"}),
    )
}

fn query(call: &Call, name: &str) -> Option<String> {
    call.query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.replace("%3A", ":"))
}

/// Answers like QuickBooks Online for a company with items 1 and 21 (item 999 made inactive),
/// payment methods 1 (cash) and 7 (Octopus), and deposit accounts 35 and 36.
fn quickbooks(company: Arc<Mutex<Company>>) -> impl Fn(&Call) -> Reply + Send + Sync + 'static {
    move |call: &Call| {
        if !call.header("authorization").starts_with("Bearer ") {
            return Reply::json(
                401,
                &json!({"fault": {"error": [{"message": "message=AuthenticationFailed; errorCode=003200; statusCode=401",
                                             "detail": "Token invalid", "code": "3200"}],
                                  "type": "AUTHENTICATION"},
                        "time": 1764036903123_u64}),
            );
        }
        let prefix = format!("/v3/company/{REALM}/");
        let Some(entity) = call.path.strip_prefix(&prefix) else {
            return Reply::json(
                403,
                &json!({"Fault": {"Error": [{"Message": "message=ApplicationAuthorizationFailed; errorCode=003100; statusCode=403",
                                             "code": "003100"}], "type": "AUTHORIZATION"}}),
            );
        };
        let Some(request_id) = query(call, "requestid") else {
            return fault(
                "ValidationFault",
                "2020",
                "Required param missing, need to supply the required value for the API",
                "requestid",
            );
        };
        let mut company = company.lock().unwrap();
        if let Some(stored) = company.replays.get(&request_id) {
            return stored.clone();
        }
        let kind = match (call.method.as_str(), entity) {
            ("POST", "salesreceipt") => "SalesReceipt",
            ("POST", "refundreceipt") => "RefundReceipt",
            _ => {
                return Reply::json(
                    404,
                    &json!({"Fault": {"Error": [{"Message": "Unsupported Operation", "code": "500"}]}}),
                );
            }
        };
        let mut receipt = call.json();
        let inactive = receipt["Line"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|l| l["SalesItemLineDetail"]["ItemRef"]["value"].as_str())
            .any(|item| !["1", "21"].contains(&item));
        let unknown_payment = !["1", "7"].contains(&receipt["PaymentMethodRef"]["value"].as_str().unwrap_or(""))
            || !["35", "36"].contains(&receipt["DepositToAccountRef"]["value"].as_str().unwrap_or(""));
        if inactive || unknown_payment {
            return fault(
                "ValidationFault",
                "610",
                "Object Not Found",
                "Object Not Found : Something you're trying to use has been made inactive. Check the fields with accounts, customers, items, vendors or employees.",
            );
        }
        let number = receipt["DocNumber"].clone();
        let length = number.as_str().map_or(0, |n| n.chars().count());
        if length > 21 {
            return fault(
                "ValidationFault",
                "2050",
                "String length is either shorter or longer than supported by specification",
                &format!(
                    "String length specified does not match the supported length. Min:0 Max:21 supported. Supplied length:{length}"
                ),
            );
        }
        if let Some((id, _)) = company
            .receipts
            .iter()
            .find(|(k, r)| k == kind && r["DocNumber"] == number)
        {
            let id = id.clone();
            return fault(
                "ValidationFault",
                "6140",
                "Duplicate Document Number Error",
                &format!(
                    "Duplicate Document Number Error : You must specify a different number. This number has already been used. DocNumber={} is assigned to TxnType=Sales Receipt with TxnId={id}",
                    number.as_str().unwrap_or("")
                ),
            );
        }
        let id = (148 + company.receipts.len()).to_string();
        receipt["Id"] = json!(id);
        receipt["SyncToken"] = json!("0");
        receipt["domain"] = json!("QBO");
        company.receipts.push((kind.to_owned(), receipt.clone()));
        let reply = Reply::json(200, &json!({kind: receipt, "time": "2026-11-25T02:15:03.123-08:00"}));
        company.replays.insert(request_id, reply.clone());
        reply
    }
}

fn config(fake: &VendorFake, oauth: &OAuthServer) -> String {
    let company = format!("{}/v3/company/{REALM}/", fake.url);
    host_config(&format!(
        r#"
[credentials.quickbooks]
grant = "refresh_token"
token_url = "{token_url}"
client_id = {{ value = "kaunter-qbo-app" }}
client_secret = {{ value = "qbo-client-secret" }}
refresh_token = {{ value = "qbo-first-refresh-token" }}
scope = "com.intuit.quickbooks.accounting"
for = ["POST {company}"]

[[plugins]]
name = "quickbooks"
kind = "connector"
path = {path:?}
[plugins.config]
base_url = "{base}"
realm_id = "{REALM}"
item = "1"
tax_code = "NON"
[plugins.config.items]
"4891234500017" = "21"
"4890000000000" = "999"
[plugins.config.tenders]
cash = {{ payment_method = "1", deposit_account = "35" }}
octopus = {{ payment_method = "7", deposit_account = "36" }}
[plugins.grants]
http = ["POST {company}"]
credentials = ["quickbooks"]

[[sinks]]
name = "qbo"
connector = "quickbooks"
max_attempts = 3
backoff_base_ms = 50
backoff_max_ms = 400

[[routes]]
name = "books"
types = ["pos.sale.*", "pos.refund.*"]
sinks = ["qbo"]
"#,
        token_url = oauth.token_url,
        base = fake.url,
        path = kaunter_tests::plugins::CONNECTOR_QUICKBOOKS,
    ))
}

fn refund_event(id: &str) -> Value {
    json!({
        "id": id, "source": "/t/acme/s/hk-001/p/till-1", "type": "pos.refund.completed.v1",
        "time": "2026-11-26T09:40:00+08:00",
        "data": {
            "refund_id": "R-HK001-000031", "original_order_id": "HK001-000124", "business_date": "2026-11-26",
            "time_zone": "Asia/Hong_Kong", "tax_mode": "inclusive",
            "lines": [{"line": {"line_no": 1, "sku": "4891234500017", "name": "Panadol 500mg x20",
                                "quantity_milli": -1000, "unit_price": hkd(3990), "gross": hkd(-3990),
                                "discount": hkd(0), "net": hkd(-3990), "taxes": []},
                       "original_line_no": 1, "restock": true}],
            "tenders": [{"method": "cash", "amount": hkd(-3990)}],
            "totals": {"gross": hkd(-3990), "discount": hkd(0), "net": hkd(-3990), "tax": hkd(0),
                       "total": hkd(-3990), "tendered": hkd(-3990), "change": hkd(0)},
            "reason": "wrong item"
        }
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn sales_and_refunds_become_receipts_once_each() {
    let oauth = OAuthServer::start().await;
    let company = Arc::new(Mutex::new(Company::default()));
    let fake = VendorFake::start(quickbooks(company.clone())).await;
    // The first call meets an expired token: retried, then booked.
    fake.script([Reply::json(
        401,
        &json!({"fault": {"error": [{"message": "message=AuthenticationFailed; errorCode=003200; statusCode=401",
                                     "detail": "Token expired: AB11764", "code": "3200"}],
                          "type": "AUTHENTICATION"}}),
    )]);
    let host = Host::start(&config(&fake, &oauth));

    // Two Panadol at HK$39.90 and one unmapped item at HK$12.00, paid by Octopus.
    host.post_json(&sale(
        "qs-1",
        "hk-001",
        "HK001-000124",
        &[("4891234500017", 2, 3990), ("4891234500031", 1, 1200)],
    ))
    .await;
    let entry = wait_for_state(&host, "qs-1", "qbo", "delivered").await;
    assert_eq!(entry["attempts"], 2, "{entry}");
    let calls = fake.calls_to("POST", &format!("/v3/company/{REALM}/salesreceipt"));
    assert_eq!(calls.len(), 2);
    for call in &calls {
        assert_eq!(
            call.query,
            format!(
                "requestid={}&minorversion=75",
                host.key_of("qs-1", "qbo").await.replace(':', "%3A")
            )
        );
        assert_eq!(call.header("content-type"), "application/json");
    }
    assert_eq!(
        calls[1].json(),
        json!({
            "DocNumber": "hk-001-HK001-000124", "TxnDate": "2026-11-25", "CurrencyRef": {"value": "HKD"},
            "GlobalTaxCalculation": "TaxInclusive",
            "Line": [
                {"LineNum": 1, "Description": "4891234500017", "Amount": 79.80, "DetailType": "SalesItemLineDetail",
                 "SalesItemLineDetail": {"ItemRef": {"value": "21"}, "Qty": 2, "UnitPrice": 39.90,
                                         "TaxCodeRef": {"value": "NON"}}},
                {"LineNum": 2, "Description": "4891234500031", "Amount": 12.00, "DetailType": "SalesItemLineDetail",
                 "SalesItemLineDetail": {"ItemRef": {"value": "1"}, "Qty": 1, "UnitPrice": 12.00,
                                         "TaxCodeRef": {"value": "NON"}}}
            ],
            "PaymentMethodRef": {"value": "7"}, "DepositToAccountRef": {"value": "36"}, "PaymentRefNum": "OCT-1",
            "PrivateNote": "POS hk-001 order HK001-000124; paid octopus 91.80 (OCT-1)"
        })
    );
    assert!(calls[1].text().contains(r#""UnitPrice":39.90"#));

    // The same order sent again under another event id: QuickBooks says 6140, so it is there.
    host.post_json(&sale("qs-2", "hk-001", "HK001-000124", &[("4891234500017", 2, 3990)]))
        .await;
    let entry = wait_for_state(&host, "qs-2", "qbo", "delivered").await;
    assert_eq!(entry["attempts"], 1);

    // The same order id at another store is another sale: booked under its own number.
    host.post_json(&sale("qs-3", "hk-002", "HK001-000124", &[("4891234500017", 1, 3990)]))
        .await;
    wait_for_state(&host, "qs-3", "qbo", "delivered").await;
    let calls = fake.calls_to("POST", &format!("/v3/company/{REALM}/salesreceipt"));
    assert_eq!(calls.len(), 4);
    assert_eq!(calls[3].json()["DocNumber"], "hk-002-HK001-000124");

    // A store id long enough to push the number past QuickBooks' 21 characters: shortened with
    // a hash, booked.
    host.post_json(&sale(
        "qs-4",
        "causeway-bay-flagship",
        "HK001-000124",
        &[("4891234500017", 1, 3990)],
    ))
    .await;
    wait_for_state(&host, "qs-4", "qbo", "delivered").await;
    let calls = fake.calls_to("POST", &format!("/v3/company/{REALM}/salesreceipt"));
    let number = calls[4].json()["DocNumber"].as_str().unwrap().to_owned();
    assert_eq!(number.len(), 21, "{number}");
    assert!(number.starts_with("causeway-bay-"), "{number}");

    host.post_json(&refund_event("qr-1")).await;
    wait_for_state(&host, "qr-1", "qbo", "delivered").await;
    let refunds = fake.calls_to("POST", &format!("/v3/company/{REALM}/refundreceipt"));
    assert_eq!(refunds.len(), 1);
    assert_eq!(
        refunds[0].query,
        format!(
            "requestid={}&minorversion=75",
            host.key_of("qr-1", "qbo").await.replace(':', "%3A")
        )
    );
    let body = refunds[0].json();
    assert_eq!(body["DocNumber"], "hk-001-R-HK001-000031");
    assert_eq!(body["Line"][0]["Amount"], json!(39.90));
    assert_eq!(body["Line"][0]["SalesItemLineDetail"]["Qty"], json!(1));
    assert_eq!(body["PaymentMethodRef"], json!({"value": "1"}));
    assert_eq!(body["DepositToAccountRef"], json!({"value": "35"}));

    // Every call carried a token the host got from the OAuth server.
    for call in fake.calls() {
        let token = call.header("authorization").strip_prefix("Bearer ").unwrap();
        assert_eq!(jwt_claims(token)["iss"], oauth.issuer);
    }
    let company = company.lock().unwrap();
    let kinds: Vec<(&str, &str)> = company
        .receipts
        .iter()
        .map(|(k, r)| (k.as_str(), r["Id"].as_str().unwrap()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("SalesReceipt", "148"),
            ("SalesReceipt", "149"),
            ("SalesReceipt", "150"),
            ("RefundReceipt", "151")
        ],
        "booked once each; the other store's order is its own receipt"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_object_not_found_fault_dead_letters_with_quickbooks_message() {
    let oauth = OAuthServer::start().await;
    let company = Arc::new(Mutex::new(Company::default()));
    let fake = VendorFake::start(quickbooks(company.clone())).await;
    let host = Host::start(&config(&fake, &oauth));
    // The SKU maps to an item the company has made inactive.
    host.post_json(&sale("qs-bad", "hk-001", "HK001-000125", &[("4890000000000", 1, 500)]))
        .await;
    let entry = wait_for_state(&host, "qs-bad", "qbo", "dead_lettered").await;
    let error = entry["last_error"].as_str().unwrap();
    assert!(
        error.contains("QuickBooks refused the sales receipt hk-001-HK001-000125 (HTTP 400): ValidationFault: Object Not Found: Object Not Found : Something you're trying to use has been made inactive.")
            && error.contains("(code 610)"),
        "{error}"
    );
    assert_eq!(entry["attempts"], 1, "a validation fault is not retried");
    assert_eq!(fake.calls().len(), 1);
    assert!(company.lock().unwrap().receipts.is_empty());
}
