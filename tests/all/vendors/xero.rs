//! `connector-xero` in the real host against a fake of the Xero Accounting API, answering as
//! Xero documents it: `PUT /api.xro/2.0/Invoices`, `/CreditNotes` and `/Payments` with
//! `{"Invoices": [...]}`-style bodies, `GET /Invoices?InvoiceNumbers=…` and
//! `GET /CreditNotes?where=CreditNoteNumber=="…"`, `xero-tenant-id` required (403 without), a
//! bearer token required (401 without), `Idempotency-Key` replaying the stored answer (until the
//! test makes the fake forget it, as Xero does after a while), document numbers unique, 400
//! `ValidationException` with `Elements[].ValidationErrors[].Message` (an unknown or archived
//! account, a payment over what is still due), a payments batch applied all or nothing, and 429
//! with `Retry-After` and `X-Rate-Limit-Problem`. Tokens come from a real OAuth 2.0 server through
//! a host credential.

use super::{Call, Reply, VendorFake, host_config};
use crate::harness::*;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub(super) const TENANT: &str = "70784a63-d24b-46a9-a4db-0e70a274b056";

/// The organisation's books as the fake keeps them.
#[derive(Default)]
pub(super) struct Books {
    /// Documents created (invoices and credit notes), by id.
    pub(super) documents: HashMap<String, Value>,
    /// What is still unpaid on each document, in cents, by id.
    due: HashMap<String, i64>,
    /// Answers already given, by idempotency key.
    replays: HashMap<String, Reply>,
    /// Payments created.
    pub(super) payments: Vec<Value>,
}

impl Books {
    /// Forgets every idempotency key, as Xero does once a key is old enough.
    fn forget_replays(&mut self) {
        self.replays.clear();
    }

    /// A document as Xero shows it, with what is still due.
    fn shown(&self, id: &str) -> Value {
        let mut document = self.documents[id].clone();
        let due = amount(self.due[id]);
        if document["Type"] == "ACCREC" {
            document["AmountDue"] = due;
        } else {
            document["RemainingCredit"] = due;
        }
        document
    }
}

/// Cents from a JSON number as written (`39.9`, `7.98`, `-3.99`, `2`), without a float.
fn cents(value: &Value) -> i64 {
    scaled(&value.to_string(), 2)
}

/// Thousandths from a JSON number as written (`1.5` is 1500).
fn milli(value: &Value) -> i64 {
    scaled(&value.to_string(), 3)
}

fn scaled(text: &str, digits: usize) -> i64 {
    let (sign, text) = text.strip_prefix('-').map_or((1, text), |t| (-1, t));
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    sign * format!("{whole}{fraction:0<digits$}").parse::<i64>().unwrap()
}

/// Cents as a JSON number (`19982` is `199.82`).
fn amount(cents: i64) -> Value {
    serde_json::from_str(&format!("{}.{:02}", cents / 100, cents % 100)).unwrap()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                out.push(u8::from_str_radix(&text[i + 1..i + 3], 16).unwrap());
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap()
}

/// A query parameter, decoded.
fn param(call: &Call, name: &str) -> Option<String> {
    call.query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| percent_decode(v))
}

fn validation(messages: &[String]) -> Reply {
    let errors: Vec<Value> = messages.iter().map(|m| json!({"Message": m})).collect();
    Reply::json(
        400,
        &json!({"ErrorNumber": 10, "Type": "ValidationException", "Message": "A validation exception occurred",
                "Elements": [{"ValidationErrors": errors}]}),
    )
}

/// Answers like the Accounting API for an organisation whose chart of accounts has revenue
/// account 200, bank accounts 090 (cash) and 091 (Octopus), and an archived bank account 092.
pub(super) fn xero(books: Arc<Mutex<Books>>) -> impl Fn(&Call) -> Reply + Send + Sync + 'static {
    move |call: &Call| {
        if !call.header("authorization").starts_with("Bearer ") {
            return Reply::json(
                401,
                &json!({"Type": null, "Title": "Unauthorized", "Status": 401, "Detail": "AuthenticationUnsuccessful"}),
            );
        }
        if call.header("xero-tenant-id") != TENANT {
            return Reply::json(
                403,
                &json!({"Type": null, "Title": "Forbidden", "Status": 403, "Detail": "AuthorizationUnsuccessful"}),
            );
        }
        let mut books = books.lock().unwrap();
        if call.method == "GET" {
            return find_documents(&books, call);
        }
        let key = call.header("idempotency-key").to_owned();
        if let Some(stored) = books.replays.get(&key) {
            return stored.clone();
        }
        let body = call.json();
        let reply = match (call.method.as_str(), call.path.as_str()) {
            ("PUT", "/api.xro/2.0/Invoices") => {
                create_document(&mut books, body, "Invoices", "InvoiceID", "InvoiceNumber")
            }
            ("PUT", "/api.xro/2.0/CreditNotes") => {
                create_document(&mut books, body, "CreditNotes", "CreditNoteID", "CreditNoteNumber")
            }
            ("PUT", "/api.xro/2.0/Payments") => create_payments(&mut books, body),
            _ => Reply::json(404, &json!({"Title": "Not Found", "Status": 404})),
        };
        if reply.status == 200 && !key.is_empty() {
            books.replays.insert(key, reply.clone());
        }
        reply
    }
}

fn create_document(books: &mut Books, body: Value, list: &str, id_field: &str, number_field: &str) -> Reply {
    let mut document = body[list][0].clone();
    let mut errors = Vec::new();
    if document["Contact"]["Name"].as_str().is_none() && document["Contact"]["ContactID"].as_str().is_none() {
        errors.push("A Contact must be specified for this type of transaction".to_owned());
    }
    for line in document["LineItems"].as_array().into_iter().flatten() {
        let code = line["AccountCode"].as_str().unwrap_or("");
        if code != "200" {
            errors.push(format!("Account code '{code}' is not a valid code for this document."));
        }
    }
    let number = &document[number_field];
    if books.documents.values().any(|d| &d[number_field] == number) {
        errors.push(format!(
            "{} # must be unique.",
            if list == "Invoices" { "Invoice" } else { "Credit Note" }
        ));
    }
    if !errors.is_empty() {
        return validation(&errors);
    }
    let total: i64 = document["LineItems"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|line| {
            let discount = if line["DiscountAmount"].is_null() {
                0
            } else {
                cents(&line["DiscountAmount"])
            };
            milli(&line["Quantity"]) * cents(&line["UnitAmount"]) / 1000 - discount
        })
        .sum();
    let id = format!("00000000-0000-4000-8000-{:012}", books.documents.len() + 1);
    document[id_field] = json!(id);
    document["Total"] = amount(total);
    books.documents.insert(id.clone(), document);
    books.due.insert(id.clone(), total);
    Reply::json(
        200,
        &json!({"Id": "9b1f1e2a-0000-4000-8000-000000000000", "Status": "OK", "ProviderName": "kaunter-tests",
                "DateTimeUTC": "/Date(1764036900000)/", list: [books.shown(&id)]}),
    )
}

/// `GET /Invoices?InvoiceNumbers=a,b` and `GET /CreditNotes?where=CreditNoteNumber=="x"`.
fn find_documents(books: &Books, call: &Call) -> Reply {
    let (list, kind, number_field, numbers) = match call.path.as_str() {
        "/api.xro/2.0/Invoices" => {
            let numbers = param(call, "InvoiceNumbers").unwrap_or_default();
            let numbers: Vec<String> = numbers.split(',').map(str::to_owned).collect();
            ("Invoices", "ACCREC", "InvoiceNumber", numbers)
        }
        "/api.xro/2.0/CreditNotes" => {
            let filter = param(call, "where").unwrap_or_default();
            let Some(number) = filter
                .strip_prefix("CreditNoteNumber==\"")
                .and_then(|rest| rest.strip_suffix('"'))
            else {
                return Reply::json(
                    400,
                    &json!({"ErrorNumber": 16, "Type": "QueryParseException", "Message": format!("cannot parse {filter}")}),
                );
            };
            (
                "CreditNotes",
                "ACCRECCREDIT",
                "CreditNoteNumber",
                vec![number.to_owned()],
            )
        }
        _ => return Reply::json(404, &json!({"Title": "Not Found", "Status": 404})),
    };
    let mut ids: Vec<&String> = books
        .documents
        .iter()
        .filter(|(_, d)| d["Type"] == kind && numbers.iter().any(|n| d[number_field] == n.as_str()))
        .map(|(id, _)| id)
        .collect();
    ids.sort();
    let found: Vec<Value> = ids.into_iter().map(|id| books.shown(id)).collect();
    Reply::json(
        200,
        &json!({"Id": "5d1f1e2a-0000-4000-8000-000000000000", "Status": "OK", "ProviderName": "kaunter-tests",
                "DateTimeUTC": "/Date(1764036900000)/", list: found}),
    )
}

/// Every payment of the batch is checked before any is made: one refused, none is made.
fn create_payments(books: &mut Books, body: Value) -> Reply {
    let payments: Vec<Value> = body["Payments"].as_array().cloned().unwrap_or_default();
    let mut due = books.due.clone();
    for payment in &payments {
        let target = payment["Invoice"]["InvoiceID"]
            .as_str()
            .or(payment["CreditNote"]["CreditNoteID"].as_str())
            .unwrap_or("");
        let Some(left) = due.get_mut(target) else {
            return validation(&["Invoice could not be found".to_owned()]);
        };
        match payment["Account"]["Code"].as_str().unwrap_or("") {
            "090" | "091" => {}
            "092" => {
                return validation(&["The account '092' has been archived, or has been deleted.".to_owned()]);
            }
            _ => return validation(&["Account could not be found".to_owned()]),
        }
        let paid = cents(&payment["Amount"]);
        if paid > *left {
            return validation(&["Payment amount exceeds the amount outstanding on this document".to_owned()]);
        }
        *left -= paid;
    }
    let mut created = Vec::new();
    for payment in payments {
        let mut payment = payment.clone();
        payment["PaymentID"] = json!(format!("p-{}", books.payments.len() + 1));
        books.payments.push(payment.clone());
        created.push(payment);
    }
    for (id, left) in due {
        if left == 0 {
            books.documents.get_mut(&id).unwrap()["Status"] = json!("PAID");
        }
        books.due.insert(id, left);
    }
    Reply::json(200, &json!({"Status": "OK", "Payments": created}))
}

/// The host config: the connector (see [`connector_config`]), a sink and a route for sales and
/// refunds.
fn config(fake: &VendorFake, oauth: &OAuthServer, sales_account: &str, cash_account: &str) -> String {
    host_config(&format!(
        r#"
{connector}

[[sinks]]
name = "xero"
connector = "xero"
max_attempts = 3
backoff_base_ms = 50
backoff_max_ms = 400

[[routes]]
name = "books"
types = ["pos.sale.*", "pos.refund.*"]
sinks = ["xero"]
"#,
        connector = connector_config(fake, oauth, sales_account, cash_account),
    ))
}

/// `[credentials.xero]` from the OAuth server and the `xero` connector granted the fake and the
/// credential.
pub(super) fn connector_config(
    fake: &VendorFake,
    oauth: &OAuthServer,
    sales_account: &str,
    cash_account: &str,
) -> String {
    let api = format!("{}/api.xro/2.0", fake.url);
    format!(
        r#"
[credentials.xero]
grant = "refresh_token"
token_url = "{token_url}"
client_id = {{ value = "kaunter-xero-app" }}
client_secret = {{ value = "xero-client-secret" }}
refresh_token = {{ value = "xero-first-refresh-token" }}
scope = "accounting.transactions"
for = ["GET,PUT {api}/"]

[[plugins]]
name = "xero"
kind = "connector"
path = {path:?}
[plugins.config]
base_url = "{api}"
tenant_id = "{TENANT}"
sales_account = "{sales_account}"
tax_type = "NONE"
[plugins.config.payment_accounts]
cash = "{cash_account}"
octopus = "091"
[plugins.grants]
http = ["GET,PUT {api}/"]
credentials = ["xero"]
"#,
        token_url = oauth.token_url,
        path = kaunter_tests::plugins::CONNECTOR_XERO,
    )
}

/// The delivery's idempotency key for a test event from hk-001's till.
fn key(id: &str) -> String {
    kaunter::store::idempotency_key("/t/acme/s/hk-001/p/till-1", id, "xero")
}

/// Two Panadol (HK$7.98 off) and one Vitamin C, paid HK$100 by Octopus and HK$100 in cash.
pub(super) fn sale_event(id: &str, order: &str) -> Value {
    json!({
        "id": id, "source": "/t/acme/s/hk-001/p/till-1", "type": "pos.sale.completed.v1",
        "time": "2026-11-25T10:15:00+08:00",
        "data": {
            "order_id": order, "business_date": "2026-11-25", "time_zone": "Asia/Hong_Kong",
            "tax_mode": "inclusive",
            "lines": [
                {"line_no": 1, "sku": "4891234500017", "name": "Panadol 500mg x20", "quantity_milli": 2000,
                 "unit_price": hkd(3990), "gross": hkd(7980), "discount": hkd(798), "net": hkd(7182), "taxes": []},
                {"line_no": 2, "sku": "4891234500024", "name": "Vitamin C 1000mg x60", "quantity_milli": 1000,
                 "unit_price": hkd(12800), "gross": hkd(12800), "discount": hkd(0), "net": hkd(12800), "taxes": []}
            ],
            "tenders": [
                {"method": "octopus", "amount": hkd(10000), "processor_ref": "OCT-88213"},
                {"method": "cash", "amount": hkd(10000)}
            ],
            "totals": {"gross": hkd(20780), "discount": hkd(798), "net": hkd(19982), "tax": hkd(0),
                       "total": hkd(19982), "tendered": hkd(20000), "change": hkd(18)}
        }
    })
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
                                "discount": hkd(-399), "net": hkd(-3591), "taxes": []},
                       "original_line_no": 1, "restock": true}],
            "tenders": [{"method": "cash", "amount": hkd(-3591)}],
            "totals": {"gross": hkd(-3990), "discount": hkd(-399), "net": hkd(-3591), "tax": hkd(0),
                       "total": hkd(-3591), "tendered": hkd(-3591), "change": hkd(0)},
            "reason": "wrong item"
        }
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn sales_and_refunds_are_booked_with_payments_through_a_rate_limit() {
    let oauth = OAuthServer::start().await;
    let books = Arc::new(Mutex::new(Books::default()));
    let fake = VendorFake::start(xero(books.clone())).await;
    // Xero's minute limit answers the first call; the sink waits Retry-After, then goes on.
    fake.script([Reply::text(429, "")
        .with_header("Retry-After", "1")
        .with_header("X-Rate-Limit-Problem", "minute")]);
    let host = Host::start(&config(&fake, &oauth, "200", "090"));

    host.post_json(&sale_event("xs-1", "HK001-000124")).await;
    let entry = wait_for_state(&host, "xs-1", "xero", "delivered").await;
    assert_eq!(entry["attempts"], 2, "{entry}");
    let invoices = fake.calls_to("PUT", "/api.xro/2.0/Invoices");
    assert_eq!(invoices.len(), 2, "throttled once, then created");
    for call in &invoices {
        assert_eq!(call.header("idempotency-key"), format!("{}:invoice", key("xs-1")));
    }
    let invoice = invoices[1].json();
    assert_eq!(
        invoice,
        json!({"Invoices": [{
            "Type": "ACCREC", "Contact": {"Name": "POS walk-in customer"},
            "Date": "2026-11-25", "DueDate": "2026-11-25", "InvoiceNumber": "hk-001-HK001-000124",
            "Reference": "POS hk-001", "CurrencyCode": "HKD", "Status": "AUTHORISED", "LineAmountTypes": "Inclusive",
            "LineItems": [
                {"Description": "Panadol 500mg x20", "Quantity": 2, "UnitAmount": 39.90, "AccountCode": "200",
                 "TaxType": "NONE", "DiscountAmount": 7.98},
                {"Description": "Vitamin C 1000mg x60", "Quantity": 1, "UnitAmount": 128.00, "AccountCode": "200",
                 "TaxType": "NONE"}
            ]
        }]})
    );
    let payments = fake.calls_to("PUT", "/api.xro/2.0/Payments");
    assert_eq!(payments.len(), 1);
    assert_eq!(
        payments[0].header("idempotency-key"),
        format!("{}:payments", key("xs-1"))
    );
    let invoice_id = "00000000-0000-4000-8000-000000000001";
    assert_eq!(
        payments[0].json()["Payments"],
        json!([
            {"Invoice": {"InvoiceID": invoice_id}, "Account": {"Code": "091"}, "Date": "2026-11-25",
             "Amount": 100.00, "Reference": "HK001-000124 octopus OCT-88213"},
            {"Invoice": {"InvoiceID": invoice_id}, "Account": {"Code": "090"}, "Date": "2026-11-25",
             "Amount": 99.82, "Reference": "HK001-000124 cash"}
        ])
    );

    host.post_json(&refund_event("xr-1")).await;
    wait_for_state(&host, "xr-1", "xero", "delivered").await;
    let credit_notes = fake.calls_to("PUT", "/api.xro/2.0/CreditNotes");
    assert_eq!(credit_notes.len(), 1);
    assert_eq!(
        credit_notes[0].header("idempotency-key"),
        format!("{}:credit-note", key("xr-1"))
    );
    let note = &credit_notes[0].json()["CreditNotes"][0];
    assert_eq!(note["Type"], "ACCRECCREDIT");
    assert_eq!(note["CreditNoteNumber"], "hk-001-R-HK001-000031");
    assert_eq!(
        note["LineItems"],
        json!([
            {"Description": "Panadol 500mg x20", "Quantity": 1, "UnitAmount": 39.90, "AccountCode": "200",
             "TaxType": "NONE"},
            {"Description": "Discount on Panadol 500mg x20", "Quantity": 1, "UnitAmount": -3.99,
             "AccountCode": "200", "TaxType": "NONE"}
        ])
    );
    let refund_payment = fake.calls_to("PUT", "/api.xro/2.0/Payments").pop().unwrap().json();
    assert_eq!(
        refund_payment["Payments"],
        json!([{"CreditNote": {"CreditNoteID": "00000000-0000-4000-8000-000000000002"}, "Account": {"Code": "090"},
                "Date": "2026-11-26", "Amount": 35.91, "Reference": "R-HK001-000031 cash"}])
    );

    // Every call carried the tenant and a token the host got from the OAuth server; the plugin
    // itself never had it.
    let calls = fake.calls();
    assert_eq!(calls.len(), 5);
    for call in &calls {
        assert_eq!(call.header("xero-tenant-id"), TENANT);
        assert_eq!(call.header("content-type"), "application/json");
        let token = call.header("authorization").strip_prefix("Bearer ").unwrap();
        assert_eq!(jwt_claims(token)["iss"], oauth.issuer);
    }
    let books = books.lock().unwrap();
    assert_eq!(
        (books.documents.len(), books.payments.len()),
        (2, 3),
        "booked once each"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_validation_exception_dead_letters_with_xeros_message() {
    let oauth = OAuthServer::start().await;
    let books = Arc::new(Mutex::new(Books::default()));
    let fake = VendorFake::start(xero(books.clone())).await;
    // An account code the organisation's chart of accounts does not have.
    let host = Host::start(&config(&fake, &oauth, "999", "090"));
    host.post_json(&sale_event("xs-bad", "HK001-000125")).await;
    let entry = wait_for_state(&host, "xs-bad", "xero", "dead_lettered").await;
    let error = entry["last_error"].as_str().unwrap();
    assert!(
        error.contains(
            "Xero refused the invoice hk-001-HK001-000125 (HTTP 400): Account code '999' is not a valid code for this document."
        ),
        "{error}"
    );
    assert_eq!(entry["attempts"], 1, "a validation error is not retried");
    assert_eq!(
        fake.calls().len(),
        1,
        "no payment is attempted for an invoice Xero refused"
    );
    assert!(books.lock().unwrap().documents.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replay_after_xero_forgot_the_keys_finds_the_invoice_and_pays_it_once() {
    let oauth = OAuthServer::start().await;
    let books = Arc::new(Mutex::new(Books::default()));
    let fake = VendorFake::start(xero(books.clone())).await;
    // Cash is mapped to an archived bank account: the invoice is created, its payments refused.
    let mut host = Host::start(&config(&fake, &oauth, "200", "092"));
    host.post_json(&sale_event("xs-dlq", "HK001-000126")).await;
    let entry = wait_for_state(&host, "xs-dlq", "xero", "dead_lettered").await;
    let error = entry["last_error"].as_str().unwrap();
    assert!(
        error.contains(
            "Xero refused the payments for the invoice hk-001-HK001-000126 (HTTP 400): The account '092' has been archived, or has been deleted."
        ),
        "{error}"
    );
    assert_eq!(entry["attempts"], 1, "{entry}");
    let invoice_id = "00000000-0000-4000-8000-000000000001";
    {
        let books = books.lock().unwrap();
        assert_eq!(books.documents.len(), 1);
        assert!(
            books.payments.is_empty(),
            "the batch is all or nothing: Octopus was not paid either"
        );
        assert_eq!(books.due[invoice_id], 19982);
        assert_eq!(books.documents[invoice_id]["Status"], "AUTHORISED");
    }

    // The operator maps cash to an active account and restarts the host; by the replay, Xero has
    // forgotten the idempotency keys.
    std::fs::write(
        host.dir.path().join("kaunter.toml"),
        config(&fake, &oauth, "200", "090"),
    )
    .unwrap();
    host.restart();
    books.lock().unwrap().forget_replays();
    let (_, dlq) = host.get("/v1/admin/dlq", ADMIN_KEY).await;
    let letter = &dlq["dead_letters"][0];
    assert_eq!(letter["event_id"], "xs-dlq");
    let out = host.cli(&["dlq", "replay", &letter["id"].as_i64().unwrap().to_string()]);
    assert!(out.contains("replayed 1"), "{out}");
    wait_for_state(&host, "xs-dlq", "xero", "delivered").await;

    // Refused payments, then on replay: the number is taken, the invoice is found, paid once.
    let calls = fake.calls();
    let seen: Vec<(String, String, String, String)> = calls
        .iter()
        .map(|c| {
            (
                c.method.clone(),
                c.path.clone(),
                c.query.clone(),
                c.header("idempotency-key").to_owned(),
            )
        })
        .collect();
    let call = |m: &str, p: &str, q: &str, k: &str| (m.to_owned(), p.to_owned(), q.to_owned(), k.to_owned());
    assert_eq!(
        seen,
        [
            call(
                "PUT",
                "/api.xro/2.0/Invoices",
                "",
                &format!("{}:invoice", key("xs-dlq"))
            ),
            call(
                "PUT",
                "/api.xro/2.0/Payments",
                "",
                &format!("{}:payments", key("xs-dlq"))
            ),
            call(
                "PUT",
                "/api.xro/2.0/Invoices",
                "",
                &format!("{}:invoice", key("xs-dlq"))
            ),
            call("GET", "/api.xro/2.0/Invoices", "InvoiceNumbers=hk-001-HK001-000126", ""),
            call(
                "PUT",
                "/api.xro/2.0/Payments",
                "",
                &format!("{}:payments", key("xs-dlq"))
            ),
        ]
    );
    for call in &calls {
        assert_eq!(call.header("xero-tenant-id"), TENANT);
        assert!(call.header("authorization").starts_with("Bearer "), "{}", call.path);
    }
    assert_eq!(
        calls[4].json()["Payments"],
        json!([
            {"Invoice": {"InvoiceID": invoice_id}, "Account": {"Code": "091"}, "Date": "2026-11-25",
             "Amount": 100.00, "Reference": "HK001-000126 octopus OCT-88213"},
            {"Invoice": {"InvoiceID": invoice_id}, "Account": {"Code": "090"}, "Date": "2026-11-25",
             "Amount": 99.82, "Reference": "HK001-000126 cash"}
        ])
    );
    let books = books.lock().unwrap();
    assert_eq!(
        (books.documents.len(), books.payments.len()),
        (1, 2),
        "one invoice, paid once"
    );
    assert_eq!(books.due[invoice_id], 0);
    assert_eq!(books.documents[invoice_id]["Status"], "PAID");
}
