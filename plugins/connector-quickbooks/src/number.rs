//! Document numbers: the `document_number` template filled in from the event.
//!
//! POS order ids are often unique only within a store, so the default template is
//! `{store}-{order}` (`hk-001-HK001-000124`): store B's order `A-123` never takes store A's
//! number. Placeholders: `{order}` (the order id of a sale, the refund id of a refund; required),
//! `{store}` and `{tenant}` (from the event `source` `/t/{tenant}/s/{store}/p/{terminal}`). A chain
//! whose order ids are unique across stores can use `{order}` alone.
//!
//! QuickBooks refuses a `DocNumber` longer than 21 characters (error 2050, "String length
//! specified does not match the supported length"), so a longer number is shortened the same way
//! on every attempt: its first 12 characters, a `-`, and the first 8 hex digits of the SHA-256 of
//! the whole number (`hk-001-HK001-0000000123` → `hk-001-HK001-1a2b3c4d`, illustrative). The
//! whole number is still in `PrivateNote`.

use kaunter_sdk::{Event, host};

/// The default template.
pub const DEFAULT_TEMPLATE: &str = "{store}-{order}";

/// Hex digits of the hash kept when a number is shortened.
const HASH_DIGITS: usize = 8;

/// The number for the document of `event`, whose own POS id is `order`, at most `max` characters.
/// Errors name what is wrong with the template or the event.
pub fn document_number(template: &str, event: &Event, order: &str, max: usize) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = template;
    let mut has_order = false;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let close = after
            .find('}')
            .ok_or_else(|| format!("document_number `{template}` has an unclosed `{{`"))?;
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
                    "document_number `{template}` has an unknown placeholder `{{{other}}}` (use {{order}}, {{store}}, {{tenant}})"
                ));
            }
        };
        out.push_str(value);
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    if !has_order {
        return Err(format!("document_number `{template}` must contain {{order}}"));
    }
    Ok(shorten(out, max))
}

/// `number` itself when it has at most `max` characters, else its start, `-` and a hash.
fn shorten(number: String, max: usize) -> String {
    if number.chars().count() <= max {
        return number;
    }
    let hash = kaunter_sdk::hex_encode(&host::sha256(number.as_bytes()));
    let keep = max.saturating_sub(HASH_DIGITS + 1);
    let start: String = number.chars().take(keep).collect();
    format!("{start}-{}", &hash[..HASH_DIGITS])
}
