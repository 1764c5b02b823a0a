//! Document numbers for the records a connector creates in an accounting or ERP system (invoice
//! numbers, `DocNumber`, external ids), filled from a template the operator configures.
//!
//! POS order ids are often unique only within a store, so the usual template is
//! [`DEFAULT_TEMPLATE`], `{store}-{order}` (`hk-001-HK001-000124`): store B's order `A-123` never
//! takes store A's number. Placeholders: `{order}` (the POS id of the document: the order id of a
//! sale, the refund id of a refund; required), `{store}` and `{tenant}` (from the event `source`
//! `/t/{tenant}/s/{store}/p/{terminal}`). A chain whose order ids are unique across stores can use
//! `{order}` alone.
//!
//! A number longer than the vendor allows is shortened the same way on every attempt: its start,
//! a `-`, and the first 8 hex digits of the SHA-256 of the whole number.

use crate::{Event, host};

/// The default template.
pub const DEFAULT_TEMPLATE: &str = "{store}-{order}";

/// Hex digits of the hash kept when a number is shortened.
const HASH_DIGITS: usize = 8;

/// The number for the document of `event`, whose own POS id is `order`, at most `max` characters.
/// `field` names the configuration key holding `template`, for the errors, which say what is
/// wrong with the template or the event.
///
/// ```
/// # let event = kaunter_sdk::Event::from_json(serde_json::json!({"id": "e1", "source": "/t/acme/s/hk-001/p/till-1",
/// #     "type": "x.note.v1", "time": "2026-11-25T10:00:00Z", "data": {}}), kaunter_sdk::Dialect::Canonical,
/// #     &kaunter_sdk::Defaults { id: "e1".into(), now: "2026-11-25T10:00:00Z".into() }).unwrap();
/// use kaunter_sdk::documents::{DEFAULT_TEMPLATE, document_number};
/// assert_eq!(document_number("document_number", DEFAULT_TEMPLATE, &event, "A-123", 255).unwrap(), "hk-001-A-123");
/// ```
pub fn document_number(field: &str, template: &str, event: &Event, order: &str, max: usize) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = template;
    let mut has_order = false;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let close = after
            .find('}')
            .ok_or_else(|| format!("{field} `{template}` has an unclosed `{{`"))?;
        let value = match &after[..close] {
            "order" => {
                has_order = true;
                order
            }
            "store" => event
                .store()
                .ok_or_else(|| format!("the event source `{}` names no store for {{store}}", event.source))?,
            "tenant" => event
                .tenant()
                .ok_or_else(|| format!("the event source `{}` names no tenant for {{tenant}}", event.source))?,
            other => {
                return Err(format!(
                    "{field} `{template}` has an unknown placeholder `{{{other}}}` (use {{order}}, {{store}}, {{tenant}})"
                ));
            }
        };
        out.push_str(value);
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    if !has_order {
        return Err(format!("{field} `{template}` must contain {{order}}"));
    }
    Ok(shorten(out, max))
}

/// `number` itself when it has at most `max` characters, else its start, `-` and a hash.
fn shorten(number: String, max: usize) -> String {
    if number.chars().count() <= max {
        return number;
    }
    let hash = crate::hex_encode(&host::sha256(number.as_bytes()));
    let keep = max.saturating_sub(HASH_DIGITS + 1);
    let start: String = number.chars().take(keep).collect();
    format!("{start}-{}", &hash[..HASH_DIGITS])
}
