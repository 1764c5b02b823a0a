//! `connector-hubspot`: keeps HubSpot CRM contacts in step with loyalty members' purchases.
//!
//! - A sale or refund with a `member_id` upserts the member's contact, found by a unique contact
//!   property (`id_property`, default `kaunter_member_id`), with the last purchase (or refund):
//!   date, store, order, amount as a decimal string from minor units, currency; the lifetime spend
//!   (a running total the plugin keeps in kv, counting each order or refund once, see [`spend`]);
//!   and the loyalty extensions set by `transform-loyalty` (`loyaltypoints`, `loyaltybalance`,
//!   `loyaltytier`). With `notes = true` a note describing the purchase is also added to the
//!   contact's timeline.
//! - `pos.member.updated.v1` upserts tier and points, and name, phone and email only when the
//!   event still carries them (a redacting transform may have removed them).
//! - Everything else, and sales or refunds without a member, is skipped (delivered with an empty
//!   receipt and a debug log line).
//!
//! Requests: `POST {base_url}/crm/v3/objects/contacts/batch/upsert` with one input
//! `{"idProperty", "id", "objectWriteTraceId", "properties"}`, and for notes
//! `POST {base_url}/crm/v3/objects/notes` associated to the contact (type 202, note to contact).
//! The OAuth bearer token is added by the host; the plugin never sees it. HubSpot has no
//! idempotency key: the upsert sets the same values on every attempt, the delivery's idempotency
//! key travels as `objectWriteTraceId` (HubSpot echoes it in per-input errors), the running total
//! counts each order or refund once (whatever event id carries it), and a note is created at most
//! once per order or refund and sink (marked in the member's kv record).
//!
//! Answers ([`outcome`]): 2xx delivered (`remote_id` = the contact id); HubSpot's error JSON
//! `{"status":"error","message","category"}` with 400/403/404 (e.g. `VALIDATION_ERROR`) dead-letters
//! with the message; so does 409 (`CONFLICT`: the email belongs to another contact, nothing was
//! written; no call here creates by a key, so a 409 never means "already done"); 429 throttles,
//! waiting `Retry-After` or the rate-limit window HubSpot names; 401 and 5xx retry.

pub mod spend;

use kaunter_sdk::http::{self, Request, Response};
use kaunter_sdk::{DeliveryContext, DeliveryError, Event, Payload, PluginConfig, Receipt, RetryHint, host};
use serde::Deserialize;
use serde_json::{Map, Value, json};

/// The plugin's configuration.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HubSpotConfig {
    /// API base.
    #[serde(default = "default_base_url")]
    base_url: String,
    /// The unique-value contact property holding the member id.
    #[serde(default = "default_id_property")]
    id_property: String,
    /// Prefix of the custom contact properties this plugin writes.
    #[serde(default = "default_prefix")]
    property_prefix: String,
    /// Where a member's name goes (HubSpot has no single full-name property).
    #[serde(default = "default_name_property")]
    name_property: String,
    /// Whether to add a note to the contact's timeline for each purchase and refund.
    #[serde(default)]
    notes: bool,
    /// Orders and refunds counted into a member's lifetime spend are remembered for this many days
    /// (by business date, before the member's newest).
    #[serde(default = "default_remember_days")]
    remember_days: i64,
    /// At most this many orders and refunds are remembered per member.
    #[serde(default = "default_remember_documents")]
    remember_documents: usize,
}

impl HubSpotConfig {
    fn bounds(&self) -> spend::Bounds {
        spend::Bounds {
            days: self.remember_days.max(0),
            documents: self.remember_documents.max(1),
        }
    }
}

fn default_base_url() -> String {
    "https://api.hubapi.com".into()
}
fn default_id_property() -> String {
    "kaunter_member_id".into()
}
fn default_prefix() -> String {
    "kaunter_".into()
}
fn default_name_property() -> String {
    "firstname".into()
}
fn default_remember_days() -> i64 {
    90
}
fn default_remember_documents() -> usize {
    64
}

/// The configuration, parsed on the first event.
static CONFIG: PluginConfig<HubSpotConfig> = PluginConfig::new();

/// Upserts the member's contact (and adds a purchase note when configured).
#[kaunter_sdk::connector]
fn deliver(event: Event, context: DeliveryContext) -> Result<Receipt, DeliveryError> {
    let config = CONFIG
        .get()
        .map_err(|e| DeliveryError::Rejected(format!("invalid hubspot config: {e:?}")))?;
    let Some(update) = update_for(config, &event, &context.sink)? else {
        host::debug(&format!(
            "`{}` without a member is not a HubSpot contact update; skipped",
            event.ty
        ));
        return Ok(Receipt {
            status: None,
            remote_id: None,
        });
    };
    let base = config.base_url.trim_end_matches('/');
    let now = host::now_ms();
    let body = json!({
        "inputs": [{
            "idProperty": config.id_property,
            "id": update.member_id,
            "objectWriteTraceId": context.idempotency_key,
            "properties": update.properties,
        }]
    });
    let url = format!("{base}/crm/v3/objects/contacts/batch/upsert");
    let request = Request::post_json(&url, &body).map_err(|e| DeliveryError::Rejected(e.to_string()))?;
    let response = outcome(http::send(&request), now)?;
    // A 2xx means HubSpot took the write; an answer it did not document only loses the contact id.
    let answer: Value = response.json().unwrap_or_else(|e| {
        host::warn(&format!("batch upsert succeeded but its answer is unreadable: {e}"));
        Value::Null
    });
    if let Some(error) = answer["errors"].as_array().and_then(|errors| errors.first()) {
        return Err(from_error_body(response.status, error, || None));
    }
    let contact_id = answer["results"][0]["id"].as_str().map(str::to_owned);
    if let (true, Some(note), Some(contact)) = (config.notes, &update.note, &contact_id) {
        if note.counted.noted {
            host::debug(&format!("a note for `{}` was added before", note.document.key));
        } else if !note.counted.remembered {
            host::info(&format!(
                "no note for `{}`: the member's kv record does not hold it, so the note could not be kept to once",
                note.document.key
            ));
        } else {
            add_note(base, &event, note, contact, now)?;
            spend::noted(&update.member_id, &note.document, &context.sink);
        }
    }
    Ok(Receipt {
        status: Some(response.status),
        remote_id: contact_id,
    })
}
kaunter_sdk::manifest!("../kaunter-plugin.toml");

/// One contact upsert.
struct Update {
    member_id: String,
    properties: Map<String, Value>,
    /// The note for purchases and refunds.
    note: Option<Note>,
}

/// A timeline note about a purchase or refund.
struct Note {
    /// The note text.
    body: String,
    /// The order or refund it describes.
    document: spend::Document,
    /// What counting it found.
    counted: spend::Counted,
}

/// The contact update an event makes for `sink`, if any.
fn update_for(config: &HubSpotConfig, event: &Event, sink: &str) -> Result<Option<Update>, DeliveryError> {
    let p = &config.property_prefix;
    let mut properties = Map::new();
    let store = event.store().unwrap_or("(unknown)").to_owned();
    let (member_id, note) = match &event.payload {
        Payload::Sale(sale) => {
            let Some(member) = &sale.member_id else { return Ok(None) };
            let total = &sale.totals.total;
            put(
                &mut properties,
                format!("{p}last_purchase_date"),
                sale.business_date.clone(),
            );
            if let Some(store) = event.store() {
                put(&mut properties, format!("{p}last_purchase_store"), store.to_owned());
            }
            put(
                &mut properties,
                format!("{p}last_purchase_order_id"),
                sale.order_id.clone(),
            );
            put(&mut properties, format!("{p}last_purchase_amount"), total.to_decimal());
            put(
                &mut properties,
                format!("{p}last_purchase_currency"),
                total.currency.clone(),
            );
            let document = spend::Document::new(event.store(), &sale.order_id, false, &sale.business_date);
            let counted = spend::count(member, &document, total, sink, config.bounds())?;
            if let Some(lifetime) = &counted.total {
                put(&mut properties, format!("{p}lifetime_spend"), lifetime.to_decimal());
            }
            let lines = match sale.lines.len() {
                1 => "1 line".to_owned(),
                n => format!("{n} lines"),
            };
            let body = format!(
                "Purchase at store {store}: order {}, {} {} ({lines})",
                sale.order_id,
                total.currency,
                total.to_decimal(),
            );
            (
                member.clone(),
                Note {
                    body,
                    document,
                    counted,
                },
            )
        }
        Payload::Refund(refund) => {
            let Some(member) = &refund.member_id else {
                return Ok(None);
            };
            let refunded = refund
                .amount_refunded()
                .ok_or_else(|| DeliveryError::Rejected("the refund total overflows".into()))?;
            put(
                &mut properties,
                format!("{p}last_refund_date"),
                refund.business_date.clone(),
            );
            if let Some(store) = event.store() {
                put(&mut properties, format!("{p}last_refund_store"), store.to_owned());
            }
            put(&mut properties, format!("{p}last_refund_amount"), refunded.to_decimal());
            put(
                &mut properties,
                format!("{p}last_refund_currency"),
                refunded.currency.clone(),
            );
            // Refund totals are negative: adding them takes the refund off the lifetime spend.
            let document = spend::Document::new(event.store(), &refund.refund_id, true, &refund.business_date);
            let counted = spend::count(member, &document, &refund.totals.total, sink, config.bounds())?;
            if let Some(lifetime) = &counted.total {
                put(&mut properties, format!("{p}lifetime_spend"), lifetime.to_decimal());
            }
            let body = format!(
                "Refund at store {store}: {} for order {}, {} {}",
                refund.refund_id,
                refund.original_order_id,
                refunded.currency,
                refunded.to_decimal()
            );
            (
                member.clone(),
                Note {
                    body,
                    document,
                    counted,
                },
            )
        }
        Payload::MemberUpdated(m) => {
            if let Some(tier) = &m.tier {
                put(&mut properties, format!("{p}loyalty_tier"), tier.clone());
            }
            if let Some(points) = m.points_balance {
                put(&mut properties, format!("{p}loyalty_balance"), points.to_string());
            }
            if let Some(name) = &m.name {
                put(&mut properties, config.name_property.clone(), name.clone());
            }
            if let Some(phone) = &m.phone {
                put(&mut properties, "phone".into(), phone.clone());
            }
            if let Some(email) = &m.email {
                put(&mut properties, "email".into(), email.clone());
            }
            if properties.is_empty() {
                host::debug("the member update carries nothing HubSpot keeps; skipped");
                return Ok(None);
            }
            return Ok(Some(Update {
                member_id: m.member_id.clone(),
                properties,
                note: None,
            }));
        }
        _ => return Ok(None),
    };
    for (extension, property) in [
        ("loyaltypoints", "loyalty_points_earned"),
        ("loyaltybalance", "loyalty_balance"),
    ] {
        match event.extension(extension).map(|v| v.trim().parse::<i64>()) {
            Some(Ok(points)) => put(&mut properties, format!("{p}{property}"), points.to_string()),
            Some(Err(_)) => host::warn(&format!("extension `{extension}` is not a whole number; not sent")),
            None => {}
        }
    }
    if let Some(tier) = event.extension("loyaltytier") {
        put(&mut properties, format!("{p}loyalty_tier"), tier.to_owned());
    }
    Ok(Some(Update {
        member_id,
        properties,
        note: Some(note),
    }))
}

/// Sets one contact property.
fn put(properties: &mut Map<String, Value>, name: String, value: String) {
    properties.insert(name, Value::String(value));
}

/// Creates the purchase note on the contact's timeline (the caller keeps it to once per order or
/// refund and sink).
fn add_note(base: &str, event: &Event, note: &Note, contact_id: &str, now: i64) -> Result<(), DeliveryError> {
    let body = json!({
        "properties": { "hs_timestamp": event.time, "hs_note_body": escape_html(&note.body) },
        "associations": [{
            "to": { "id": contact_id },
            "types": [{ "associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 202 }]
        }]
    });
    let url = format!("{base}/crm/v3/objects/notes");
    let request = Request::post_json(&url, &body).map_err(|e| DeliveryError::Rejected(e.to_string()))?;
    outcome(http::send(&request), now)?;
    Ok(())
}

/// Note bodies are HTML: text from the event is escaped.
fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// Maps a HubSpot answer: the response when it is a 2xx, else what the host should do.
pub fn outcome(result: Result<Response, http::HttpError>, now_ms: i64) -> Result<Response, DeliveryError> {
    let response = result.map_err(|e| {
        DeliveryError::Retry(RetryHint {
            after_ms: None,
            reason: format!("no response from HubSpot: {e}"),
        })
    })?;
    if (200..300).contains(&response.status) {
        return Ok(response);
    }
    let body = response
        .json::<Value>()
        .unwrap_or_else(|_| json!({ "message": response.body_snippet(200) }));
    Err(from_error_body(response.status, &body, || {
        rate_limit_wait(&response, &body, now_ms)
    }))
}

/// What the host should do about a HubSpot error (a whole answer, or one entry of a batch's
/// `errors`): by `category` first, then by status.
fn from_error_body(status: u16, body: &Value, wait: impl Fn() -> Option<u64>) -> DeliveryError {
    let category = body["category"].as_str().unwrap_or("");
    let message = body["message"].as_str().unwrap_or("");
    let said = match category {
        "" => format!("HubSpot answered HTTP {status}: {message}"),
        _ => format!("HubSpot answered HTTP {status} {category}: {message}"),
    };
    let hint = |reason: String| RetryHint {
        after_ms: wait(),
        reason,
    };
    match (status, category) {
        // HubSpot's 409 means a unique value (the email, most often) already belongs to another
        // contact and nothing was written; no call here creates by a key, so it is never "done".
        (409, _) | (_, "CONFLICT") => DeliveryError::Rejected(format!(
            "{said} (a unique value in this update, usually the email, belongs to another HubSpot contact; nothing was written: merge the contacts or correct the member's email, then replay)"
        )),
        (429, _) | (_, "RATE_LIMITS") => DeliveryError::Throttled(hint(said)),
        // The host refreshes its token on a retry; the retry budget ends in the dead-letter queue.
        (401, _) | (408, _) | (500..=599, _) => DeliveryError::Retry(hint(said)),
        _ => DeliveryError::Rejected(said),
    }
}

/// How long to wait after a 429: `Retry-After` when given; an hour for the daily limit (it resets
/// at midnight in the account's time zone, which the plugin cannot know); else the rolling window
/// HubSpot names in `X-HubSpot-RateLimit-Interval-Milliseconds` (10 s when absent).
fn rate_limit_wait(response: &Response, body: &Value, now_ms: i64) -> Option<u64> {
    if let Some(after) = response
        .header("retry-after")
        .and_then(|v| http::retry_after_ms(v, now_ms))
    {
        return Some(after);
    }
    let daily_spent = response.header("x-hubspot-ratelimit-daily-remaining").map(str::trim) == Some("0");
    if body["policyName"].as_str() == Some("DAILY") || daily_spent {
        return Some(3_600_000);
    }
    Some(
        response
            .header("x-hubspot-ratelimit-interval-milliseconds")
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(10_000),
    )
}

#[cfg(test)]
mod tests;
