//! Demo only: the vendors the demo chain delivers to, simulated in-process on one loopback port so
//! `kaunter demo` runs end to end on one machine. Nothing here is used outside the demo.
//!
//! Each vendor sits under its own path prefix and answers the connector's requests in the shapes of
//! the vendor's published API (the same ones the fakes in `tests/all/vendors/` use):
//!
//! | prefix | answers |
//! |---|---|
//! | `/oauth/token` | OAuth 2.0 token endpoint for the host's `[credentials.*]`: `client_credentials` and `refresh_token` (rotated on every use), the client authenticated by HTTP Basic or form fields, opaque access tokens that expire |
//! | `/xero/api.xro/2.0/` | `PUT Invoices`, `CreditNotes`, `Payments`: the documents with new ids; `Idempotency-Key` replays the stored answer; a taken document number is a `ValidationException` |
//! | `/shopify/admin/api/{version}/graphql.json` | `inventoryItems` SKU lookups (every SKU is in the catalogue) and `inventoryAdjustQuantities` (the `@idempotent` key required) |
//! | `/hubspot/crm/v3/objects/` | contacts batch upsert by the unique member-id property, notes |
//! | `/slack/api/chat.postMessage` | `{"ok": true, "ts": …}` |
//! | `/dingtalk/robot/send` | `{"errcode": 0}` once the access token and the `sign` (HMAC-SHA256 over `"{timestamp}\n{secret}"`) check out |
//!
//! Every request to a destination some credential's `for` covers must carry a live token the
//! token endpoint issued to that credential's client, in the header the credential names. The
//! simulator learns the clients, the robot's token and secret from the demo configuration, so an
//! operator's edited copy keeps working. It counts what each system received for the progress line.

use crate::config::{Config, OAuthGrant};
use crate::engine::hmac_sha256;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Lifetime of an access token (the host fetches a new one half-way through).
const TOKEN_LIFETIME_SECS: u64 = 120;

/// What each simulated system has received.
#[derive(Default)]
pub struct Counts {
    /// Xero invoices created.
    pub invoices: AtomicU64,
    /// Xero credit notes created.
    pub credit_notes: AtomicU64,
    /// Xero payments created.
    pub payments: AtomicU64,
    /// Shopify inventory changes applied (one per SKU and location in a mutation).
    pub adjustments: AtomicU64,
    /// HubSpot contacts created by an upsert.
    pub contacts: AtomicU64,
    /// HubSpot upserts (creating or updating).
    pub upserts: AtomicU64,
    /// Slack messages posted.
    pub slack: AtomicU64,
    /// DingTalk messages sent.
    pub dingtalk: AtomicU64,
    /// Access tokens issued.
    pub tokens: AtomicU64,
    /// Requests repeating one already applied (same idempotency key or message).
    pub duplicates: AtomicU64,
    /// Requests refused for a missing, unknown or expired token, a bad client secret or signature.
    pub bad_auth: AtomicU64,
    /// Xero requests answered `503` while it was down (`--outage`).
    pub unavailable: AtomicU64,
}

/// The running simulator.
pub struct Vendors {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// What was received.
    pub counts: Counts,
    /// While set, Xero answers every request `503` (the demo's `--outage`).
    pub xero_down: std::sync::atomic::AtomicBool,
    clients: Vec<Client>,
    robot: Option<Robot>,
    state: Mutex<Books>,
}

/// An OAuth client, from a `[credentials.NAME]` whose token URL is the simulator's.
struct Client {
    id: String,
    secret: String,
    first_refresh: Option<String>,
    grant: OAuthGrant,
    /// Header and prefix its token travels in.
    header: String,
    prefix: String,
    /// Path prefixes (on the simulator) its token is for.
    paths: Vec<String>,
}

/// The DingTalk robot: its access token and signing secret.
struct Robot {
    token: String,
    secret: Vec<u8>,
}

/// What the simulated systems keep.
#[derive(Default)]
struct Books {
    /// Access token → (client index, expiry).
    tokens: HashMap<String, (usize, Instant)>,
    /// Refresh tokens already exchanged (rotation: each works once).
    spent_refresh: HashSet<String>,
    /// Xero: answers by idempotency key; document number → id; created ids.
    xero_replies: HashMap<String, Value>,
    xero_numbers: HashMap<String, String>,
    xero_ids: HashSet<String>,
    /// Shopify: SKU → inventory item; adjustment groups by idempotency key.
    items: HashMap<String, String>,
    groups: HashMap<String, String>,
    /// HubSpot: member id → contact id; write trace ids seen.
    contacts: HashMap<String, String>,
    traces: HashSet<String>,
    /// Slack and DingTalk: hashes of the messages posted.
    messages: HashSet<u64>,
}

type Answer = (u16, Value);

/// Starts the simulator when some `[credentials.*]` token URL points at a loopback
/// `http://127.0.0.1:PORT/oauth/token` (the bundled demo's does); `None` otherwise.
pub async fn start(config: &Config) -> anyhow::Result<Option<Arc<Vendors>>> {
    let Some(authority) = config
        .credentials
        .values()
        .find_map(|c| c.token_url.strip_prefix("http://127.0.0.1:"))
        .and_then(|rest| rest.split_once('/'))
        .map(|(port, _)| format!("127.0.0.1:{port}"))
    else {
        return Ok(None);
    };
    let (host, port) = authority.split_once(':').unwrap_or(("127.0.0.1", ""));
    let port: u16 = port.parse().unwrap_or(0);
    let mut clients = Vec::new();
    for c in config.credentials.values() {
        if !c.token_url.starts_with(&format!("http://{authority}/")) {
            continue;
        }
        let read = |r: &crate::config::SecretRef| r.read(&config.base_dir).map_err(anyhow::Error::msg);
        clients.push(Client {
            id: read(&c.client_id)?,
            secret: c.client_secret.as_ref().map(read).transpose()?.unwrap_or_default(),
            first_refresh: c.refresh_token.as_ref().map(read).transpose()?,
            grant: c.grant,
            header: c.header.to_ascii_lowercase(),
            prefix: c.prefix.clone(),
            paths: c
                .destinations
                .iter()
                .filter(|d| d.host == host && d.port == port)
                .map(|d| d.path_prefix.clone())
                .collect(),
        });
    }
    let mut robot = None;
    for plugin in &config.plugins {
        let text = |key: &str| plugin.config.get(key).and_then(|v| v.as_str()).unwrap_or_default();
        if text("base_url").starts_with(&format!("http://{authority}/dingtalk")) {
            let secret = match config.secrets.get(text("secret")) {
                Some(s) => s.bytes(&config.base_dir).map_err(anyhow::Error::msg)?,
                None => Vec::new(),
            };
            // The token is usually held by the host as `$SECRET(name)`; read it from there.
            let token = match text("access_token")
                .strip_prefix("$SECRET(")
                .and_then(|rest| rest.strip_suffix(')'))
            {
                Some(name) => match config.secrets.get(name) {
                    Some(s) => {
                        String::from_utf8_lossy(&s.bytes(&config.base_dir).map_err(anyhow::Error::msg)?).into_owned()
                    }
                    None => String::new(),
                },
                None => text("access_token").to_owned(),
            };
            robot = Some(Robot { token, secret });
        }
    }
    let listener = tokio::net::TcpListener::bind(&authority).await.map_err(|e| {
        anyhow::anyhow!("the demo vendors cannot listen on {authority}: {e} (is another demo running?)")
    })?;
    let vendors = Arc::new(Vendors {
        url: format!("http://{authority}"),
        counts: Counts::default(),
        xero_down: std::sync::atomic::AtomicBool::new(false),
        clients,
        robot,
        state: Mutex::default(),
    });
    let app = axum::Router::new().fallback(serve).with_state(vendors.clone());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(Some(vendors))
}

async fn serve(State(v): State<Arc<Vendors>>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let (status, answer) = v.answer(method.as_str(), uri.path(), uri.query().unwrap_or(""), &headers, &body);
    let status = axum::http::StatusCode::from_u16(status).unwrap_or(axum::http::StatusCode::INTERNAL_SERVER_ERROR);
    (status, axum::Json(answer)).into_response()
}

impl Vendors {
    /// One line of what each system received, e.g. `xero 812 invoices 40 credit notes · …`.
    pub fn summary(&self) -> String {
        let c = &self.counts;
        let n = |a: &AtomicU64| thousands(a.load(Ordering::Relaxed));
        let mut parts = vec![
            format!("xero {} invoices {} credit notes", n(&c.invoices), n(&c.credit_notes)),
            format!("shopify {} adjustments", n(&c.adjustments)),
            format!("hubspot {} contacts", n(&c.contacts)),
            format!("slack {} alerts", n(&c.slack)),
        ];
        if self.robot.is_some() {
            parts.push(format!("dingtalk {} alerts", n(&c.dingtalk)));
        }
        parts.join(" · ")
    }

    fn answer(&self, method: &str, path: &str, query: &str, headers: &HeaderMap, body: &[u8]) -> Answer {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("");
        if path.starts_with("/xero/") && self.xero_down.load(Ordering::Relaxed) {
            self.counts.unavailable.fetch_add(1, Ordering::Relaxed);
            return (
                503,
                json!({"Type": "ServiceUnavailable", "Message": "The Xero API is down (the demo's --outage)"}),
            );
        }
        let mut books = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if path == "/oauth/token" && method == "POST" {
            return self.token(&mut books, header("authorization"), body);
        }
        if let Some(refusal) = self.check_token(&books, path, headers) {
            self.counts.bad_auth.fetch_add(1, Ordering::Relaxed);
            return refusal;
        }
        let body: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let vendor = path.trim_start_matches('/').split('/').next().unwrap_or("");
        let rest = &path[vendor.len() + 1..];
        match (vendor, method) {
            ("xero", "PUT") => self.xero(
                &mut books,
                rest,
                header("xero-tenant-id"),
                header("idempotency-key"),
                body,
            ),
            ("shopify", "POST") if rest.ends_with("/graphql.json") => self.shopify(&mut books, &body),
            ("hubspot", "POST") => self.hubspot(&mut books, rest, &body),
            ("slack", "POST") if rest == "/api/chat.postMessage" => self.slack(&mut books, &body),
            ("dingtalk", "POST") if rest == "/robot/send" => self.dingtalk(&mut books, query, &body),
            _ => (404, json!({"error": "not found", "path": path})),
        }
    }

    /// The token endpoint (RFC 6749 §4.4 and §6).
    fn token(&self, books: &mut Books, authorization: &str, body: &[u8]) -> Answer {
        let form = parse_form(&String::from_utf8_lossy(body));
        let field = |k: &str| form.get(k).map(String::as_str).unwrap_or("");
        let (id, secret) = match authorization.strip_prefix("Basic ") {
            Some(b64) => {
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(b64.trim())
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_default();
                let (id, secret) = decoded.split_once(':').unwrap_or(("", ""));
                (percent_decode(id), percent_decode(secret))
            }
            None => (field("client_id").to_owned(), field("client_secret").to_owned()),
        };
        let Some(index) = self.clients.iter().position(|c| c.id == id && c.secret == secret) else {
            self.counts.bad_auth.fetch_add(1, Ordering::Relaxed);
            return (
                401,
                json!({"error": "invalid_client", "error_description": "client authentication failed"}),
            );
        };
        let client = &self.clients[index];
        let mut answer = json!({"token_type": "Bearer", "expires_in": TOKEN_LIFETIME_SECS});
        match (field("grant_type"), client.grant) {
            ("client_credentials", OAuthGrant::ClientCredentials) => {}
            ("refresh_token", OAuthGrant::RefreshToken) => {
                let presented = field("refresh_token");
                let ours = client.first_refresh.as_deref() == Some(presented) || self.signed(&client.id, presented);
                if !ours || !books.spent_refresh.insert(presented.to_owned()) {
                    self.counts.bad_auth.fetch_add(1, Ordering::Relaxed);
                    return (
                        400,
                        json!({"error": "invalid_grant", "error_description": "refresh token unknown or already used"}),
                    );
                }
                answer["refresh_token"] = json!(self.refresh_token(&client.id));
            }
            (other, _) => {
                return (
                    400,
                    json!({"error": "unsupported_grant_type", "error_description": format!("`{other}` is not enabled for this client")}),
                );
            }
        }
        let now = Instant::now();
        books.tokens.retain(|_, (_, expiry)| *expiry > now);
        let token = format!("demo-at-{:032x}", rand::random::<u128>());
        books
            .tokens
            .insert(token.clone(), (index, now + Duration::from_secs(TOKEN_LIFETIME_SECS)));
        self.counts.tokens.fetch_add(1, Ordering::Relaxed);
        answer["access_token"] = json!(token);
        (200, answer)
    }

    /// A refresh token any simulator can check (so `--keep-data` runs keep working): a nonce and
    /// its HMAC under a demo key.
    fn refresh_token(&self, client: &str) -> String {
        let nonce = format!("{:016x}", rand::random::<u64>());
        format!("demo-rt-{nonce}.{}", self.mac(client, &nonce))
    }

    fn signed(&self, client: &str, token: &str) -> bool {
        token
            .strip_prefix("demo-rt-")
            .and_then(|t| t.split_once('.'))
            .is_some_and(|(nonce, mac)| mac == self.mac(client, nonce))
    }

    fn mac(&self, client: &str, nonce: &str) -> String {
        hmac_sha256(b"kaunter-demo-refresh", format!("{client}:{nonce}").as_bytes())
            .iter()
            .take(12)
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// A refusal when a credential covers `path` and the request lacks one of its live tokens.
    fn check_token(&self, books: &Books, path: &str, headers: &HeaderMap) -> Option<Answer> {
        let covering: Vec<usize> = (0..self.clients.len())
            .filter(|&i| self.clients[i].paths.iter().any(|p| path.starts_with(p.as_str())))
            .collect();
        if covering.is_empty() {
            return None;
        }
        let live = covering.iter().any(|&i| {
            let client = &self.clients[i];
            headers
                .get(client.header.as_str())
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix(client.prefix.as_str()))
                .and_then(|token| books.tokens.get(token))
                .is_some_and(|(owner, expiry)| *owner == i && *expiry > Instant::now())
        });
        if live {
            return None;
        }
        Some(if path.starts_with("/xero/") {
            (
                401,
                json!({"Title": "Unauthorized", "Status": 401, "Detail": "AuthenticationUnsuccessful"}),
            )
        } else if path.starts_with("/shopify/") {
            (
                401,
                json!({"errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"}),
            )
        } else if path.starts_with("/slack/") {
            (200, json!({"ok": false, "error": "invalid_auth"}))
        } else {
            (
                401,
                json!({"status": "error", "category": "INVALID_AUTHENTICATION", "message": "Authentication credentials not found."}),
            )
        })
    }

    /// Xero Accounting API: documents, then payments against them.
    fn xero(&self, books: &mut Books, path: &str, tenant: &str, key: &str, body: Value) -> Answer {
        if tenant.is_empty() {
            return (
                403,
                json!({"Title": "Forbidden", "Status": 403, "Detail": "AuthorizationUnsuccessful"}),
            );
        }
        if let Some(stored) = books.xero_replies.get(key) {
            self.counts.duplicates.fetch_add(1, Ordering::Relaxed);
            return (200, stored.clone());
        }
        let reply = match path {
            "/api.xro/2.0/Invoices" => self.xero_document(books, &body, "Invoices", "InvoiceID", "InvoiceNumber"),
            "/api.xro/2.0/CreditNotes" => {
                self.xero_document(books, &body, "CreditNotes", "CreditNoteID", "CreditNoteNumber")
            }
            "/api.xro/2.0/Payments" => self.xero_payments(books, &body),
            _ => return (404, json!({"Title": "Not Found", "Status": 404})),
        };
        if reply.0 == 200 && !key.is_empty() {
            books.xero_replies.insert(key.to_owned(), reply.1.clone());
        }
        reply
    }

    fn xero_document(&self, books: &mut Books, body: &Value, list: &str, id_field: &str, number_field: &str) -> Answer {
        let document = &body[list][0];
        let number = document[number_field].as_str().unwrap_or_default().to_owned();
        if document["LineItems"].as_array().is_none_or(Vec::is_empty) {
            return xero_validation("A document must have at least one line item");
        }
        if books.xero_numbers.contains_key(&number) {
            self.counts.duplicates.fetch_add(1, Ordering::Relaxed);
            let what = if list == "Invoices" { "Invoice" } else { "Credit Note" };
            return xero_validation(&format!("{what} # must be unique."));
        }
        let id = format!("00000000-0000-4000-8000-{:012}", books.xero_ids.len() + 1);
        books.xero_numbers.insert(number.clone(), id.clone());
        books.xero_ids.insert(id.clone());
        let counter = if list == "Invoices" {
            &self.counts.invoices
        } else {
            &self.counts.credit_notes
        };
        counter.fetch_add(1, Ordering::Relaxed);
        (
            200,
            json!({"Status": "OK", "ProviderName": "kaunter demo",
                   list: [{id_field: id, number_field: number, "Status": "AUTHORISED"}]}),
        )
    }

    fn xero_payments(&self, books: &mut Books, body: &Value) -> Answer {
        let mut created = Vec::new();
        for payment in body["Payments"].as_array().into_iter().flatten() {
            let target = payment["Invoice"]["InvoiceID"]
                .as_str()
                .or(payment["CreditNote"]["CreditNoteID"].as_str())
                .unwrap_or("");
            if !books.xero_ids.contains(target) {
                return xero_validation("Invoice could not be found");
            }
            if payment["Account"]["Code"].as_str().is_none_or(str::is_empty) {
                return xero_validation("Account could not be found");
            }
            created.push(
                json!({"PaymentID": format!("p-{}", self.counts.payments.fetch_add(1, Ordering::Relaxed) + 1),
                                "Amount": payment["Amount"], "Status": "AUTHORISED"}),
            );
        }
        (200, json!({"Status": "OK", "Payments": created}))
    }

    /// Shopify GraphQL Admin API: SKU lookups and inventory adjustments.
    fn shopify(&self, books: &mut Books, body: &Value) -> Answer {
        let cost = json!({"cost": {"requestedQueryCost": 10, "actualQueryCost": 10,
            "throttleStatus": {"maximumAvailable": 2000.0, "currentlyAvailable": 1990.0, "restoreRate": 100.0}}});
        let query = body["query"].as_str().unwrap_or_default();
        if query.contains("inventoryItems(") {
            let search = body["variables"]["query"].as_str().unwrap_or_default();
            let nodes: Vec<Value> = search
                .split("sku:\"")
                .skip(1)
                .filter_map(|s| s.split_once('"').map(|(sku, _)| sku.to_owned()))
                .map(|sku| {
                    let next = 30_322_695 + books.items.len();
                    let id = books
                        .items
                        .entry(sku.clone())
                        .or_insert_with(|| format!("gid://shopify/InventoryItem/{next}"));
                    json!({"id": id, "sku": sku})
                })
                .collect();
            return (
                200,
                json!({"data": {"inventoryItems": {"nodes": nodes}}, "extensions": cost}),
            );
        }
        if !query.contains("inventoryAdjustQuantities(") {
            return (
                200,
                json!({"errors": [{"message": "Field doesn't exist", "extensions": {"code": "undefinedField"}}]}),
            );
        }
        let Some(key) = query
            .split_once("@idempotent(key: \"")
            .and_then(|(_, rest)| rest.split_once('"'))
            .map(|(key, _)| key.to_owned())
        else {
            return (
                200,
                json!({"errors": [{"message": "The @idempotent directive is required for this mutation.",
                                   "extensions": {"code": "BAD_REQUEST"}}]}),
            );
        };
        let input = &body["variables"]["input"];
        let changes: Vec<Value> = input["changes"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| json!({"name": input["name"], "delta": c["delta"]}))
            .collect();
        let group = match books.groups.get(&key) {
            Some(group) => {
                self.counts.duplicates.fetch_add(1, Ordering::Relaxed);
                group.clone()
            }
            None => {
                let group = format!("gid://shopify/InventoryAdjustmentGroup/{}", 74_452 + books.groups.len());
                books.groups.insert(key, group.clone());
                self.counts
                    .adjustments
                    .fetch_add(changes.len() as u64, Ordering::Relaxed);
                group
            }
        };
        (
            200,
            json!({"data": {"inventoryAdjustQuantities": {
                "inventoryAdjustmentGroup": {"id": group, "reason": input["reason"],
                    "referenceDocumentUri": input["referenceDocumentUri"], "changes": changes},
                "userErrors": []}}, "extensions": cost}),
        )
    }

    /// HubSpot CRM v3: contacts batch upsert by a unique property, and notes.
    fn hubspot(&self, books: &mut Books, path: &str, body: &Value) -> Answer {
        let now = "2026-11-25T02:15:00.000Z";
        if path == "/crm/v3/objects/notes" {
            let id = 9001 + books.traces.len();
            return (
                201,
                json!({"id": id.to_string(), "properties": body["properties"], "createdAt": now}),
            );
        }
        if path != "/crm/v3/objects/contacts/batch/upsert" {
            return (
                404,
                json!({"status": "error", "category": "OBJECT_NOT_FOUND", "message": "Resource not found"}),
            );
        }
        let mut results = Vec::new();
        for input in body["inputs"].as_array().into_iter().flatten() {
            let member = input["id"].as_str().unwrap_or_default().to_owned();
            if input["idProperty"].as_str().is_none_or(str::is_empty) || member.is_empty() {
                return (
                    400,
                    json!({"status": "error", "category": "VALIDATION_ERROR", "message": "idProperty and id are required"}),
                );
            }
            if let Some(trace) = input["objectWriteTraceId"].as_str()
                && !books.traces.insert(trace.to_owned())
            {
                self.counts.duplicates.fetch_add(1, Ordering::Relaxed);
            }
            let next = format!("{}", 5101 + books.contacts.len());
            let new = !books.contacts.contains_key(&member);
            let id = books.contacts.entry(member).or_insert(next).clone();
            if new {
                self.counts.contacts.fetch_add(1, Ordering::Relaxed);
            }
            self.counts.upserts.fetch_add(1, Ordering::Relaxed);
            results.push(json!({"id": id, "properties": input["properties"], "new": new,
                                "archived": false, "createdAt": now, "updatedAt": now}));
        }
        (
            200,
            json!({"status": "COMPLETE", "results": results, "startedAt": now, "completedAt": now}),
        )
    }

    /// Slack `chat.postMessage`.
    fn slack(&self, books: &mut Books, body: &Value) -> Answer {
        let Some(channel) = body["channel"].as_str().filter(|c| !c.is_empty()) else {
            return (200, json!({"ok": false, "error": "channel_not_found"}));
        };
        if body["text"].as_str().is_none() && body["blocks"].as_array().is_none() {
            return (200, json!({"ok": false, "error": "no_text"}));
        }
        self.count_message(books, body, &self.counts.slack);
        let ts = format!("1764036900.{:06}", self.counts.slack.load(Ordering::Relaxed));
        (
            200,
            json!({"ok": true, "channel": channel, "ts": ts,
                   "message": {"type": "message", "subtype": "bot_message", "text": body["text"], "ts": ts}}),
        )
    }

    /// DingTalk custom robot, with signing security.
    fn dingtalk(&self, books: &mut Books, query: &str, body: &Value) -> Answer {
        let errcode = |code: i64, message: &str| (200, json!({"errcode": code, "errmsg": message}));
        let params = parse_form(query);
        let param = |k: &str| params.get(k).map(String::as_str).unwrap_or("");
        let Some(robot) = self.robot.as_ref().filter(|r| r.token == param("access_token")) else {
            self.counts.bad_auth.fetch_add(1, Ordering::Relaxed);
            return errcode(300001, "token is not exist");
        };
        let now_ms = chrono::Utc::now().timestamp_millis();
        let timestamp = param("timestamp");
        if timestamp
            .parse::<i64>()
            .map_or(true, |t| (now_ms - t).abs() > 3_600_000)
        {
            self.counts.bad_auth.fetch_add(1, Ordering::Relaxed);
            return errcode(310000, "invalid timestamp");
        }
        let mut signed = format!("{timestamp}\n").into_bytes();
        signed.extend_from_slice(&robot.secret);
        let expected = base64::engine::general_purpose::STANDARD.encode(hmac_sha256(&robot.secret, &signed));
        if param("sign") != expected {
            self.counts.bad_auth.fetch_add(1, Ordering::Relaxed);
            return errcode(310000, "sign not match");
        }
        let well_formed = match body["msgtype"].as_str() {
            Some("markdown") => body["markdown"]["title"].is_string() && body["markdown"]["text"].is_string(),
            Some("text") => body["text"]["content"].is_string(),
            _ => false,
        };
        if !well_formed {
            return errcode(40035, "缺少参数 json");
        }
        self.count_message(books, body, &self.counts.dingtalk);
        errcode(0, "ok")
    }

    fn count_message(&self, books: &mut Books, body: &Value, counter: &AtomicU64) {
        let mut hasher = DefaultHasher::new();
        body.to_string().hash(&mut hasher);
        if books.messages.insert(hasher.finish()) {
            counter.fetch_add(1, Ordering::Relaxed);
        } else {
            self.counts.duplicates.fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn xero_validation(message: &str) -> Answer {
    (
        400,
        json!({"ErrorNumber": 10, "Type": "ValidationException", "Message": "A validation exception occurred",
               "Elements": [{"ValidationErrors": [{"Message": message}]}]}),
    )
}

/// `a=1&b=2` (form body or query string), values decoded.
fn parse_form(text: &str) -> HashMap<String, String> {
    text.split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (percent_decode(k), percent_decode(v)))
        .collect()
}

/// `%XX` and `+` decoding.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = text.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `19152` → `19,152`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn simulator() -> Vendors {
        Vendors {
            url: "http://127.0.0.1:0".into(),
            counts: Counts::default(),
            xero_down: std::sync::atomic::AtomicBool::new(false),
            clients: vec![Client {
                id: "app".into(),
                secret: "s3cret".into(),
                first_refresh: Some("rt-1".into()),
                grant: OAuthGrant::RefreshToken,
                header: "authorization".into(),
                prefix: "Bearer ".into(),
                paths: vec!["/xero/api.xro/2.0/".into()],
            }],
            robot: Some(Robot {
                token: "robot".into(),
                secret: b"SECrobot".to_vec(),
            }),
            state: Mutex::default(),
        }
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(*k, v.parse().unwrap());
        }
        map
    }

    fn token(v: &Vendors, basic: &str, refresh: &str) -> Answer {
        let auth = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(basic));
        let body = format!("grant_type=refresh_token&refresh_token={refresh}");
        v.answer(
            "POST",
            "/oauth/token",
            "",
            &headers(&[("authorization", &auth)]),
            body.as_bytes(),
        )
    }

    #[test]
    fn tokens_are_checked_rotated_and_required_and_keys_replay() {
        let v = simulator();
        assert_eq!(token(&v, "app:wrong", "rt-1").0, 401);
        let (status, first) = token(&v, "app:s3cret", "rt-1");
        assert_eq!(status, 200, "{first}");
        assert_eq!(token(&v, "app:s3cret", "rt-1").0, 400, "a refresh token works once");
        let rotated = first["refresh_token"].as_str().unwrap();
        assert_eq!(token(&v, "app:s3cret", rotated).0, 200);

        let invoice = json!({"Invoices": [{"InvoiceNumber": "HK1-1", "LineItems": [{"Quantity": 1}]}]});
        let body = invoice.to_string();
        let put = |auth: &str, key: &str| {
            let h = headers(&[
                ("authorization", auth),
                ("xero-tenant-id", "t"),
                ("idempotency-key", key),
            ]);
            v.answer("PUT", "/xero/api.xro/2.0/Invoices", "", &h, body.as_bytes())
        };
        assert_eq!(put("Bearer nope", "k1").0, 401);
        let bearer = format!("Bearer {}", first["access_token"].as_str().unwrap());
        let (status, created) = put(&bearer, "k1");
        assert_eq!(status, 200, "{created}");
        assert_eq!(
            put(&bearer, "k1"),
            (200, created),
            "the same key gets the stored answer"
        );
        assert_eq!(put(&bearer, "k2").0, 400, "a taken invoice number");
        let c = &v.counts;
        assert_eq!(c.invoices.load(Ordering::Relaxed), 1);
        assert_eq!(c.duplicates.load(Ordering::Relaxed), 2);
        assert_eq!(c.bad_auth.load(Ordering::Relaxed), 3);
    }

    #[test]
    fn dingtalk_wants_the_robots_signature() {
        let v = simulator();
        let ts = chrono::Utc::now().timestamp_millis().to_string();
        let sign = base64::engine::general_purpose::STANDARD
            .encode(hmac_sha256(b"SECrobot", format!("{ts}\nSECrobot").as_bytes()));
        let body = json!({"msgtype": "text", "text": {"content": "hi"}}).to_string();
        let send = |sign: &str| {
            let query = format!("access_token=robot&timestamp={ts}&sign={}", sign.replace('+', "%2B"));
            v.answer(
                "POST",
                "/dingtalk/robot/send",
                &query,
                &HeaderMap::new(),
                body.as_bytes(),
            )
        };
        assert_eq!(send("bad").1["errcode"], 310000);
        assert_eq!(send(&sign).1["errcode"], 0);
        assert_eq!(v.counts.dingtalk.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn forms_and_numbers() {
        let form = parse_form("grant_type=refresh_token&refresh_token=a%2Bb%3D&x=1+2");
        assert_eq!(form["refresh_token"], "a+b=");
        assert_eq!(form["x"], "1 2");
        assert_eq!(thousands(19_152), "19,152");
        assert_eq!(thousands(812), "812");
        assert_eq!(thousands(1_000_000), "1,000,000");
    }
}
