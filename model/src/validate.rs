//! Business rules an event must meet before the host acknowledges it.
//!
//! Parsing (in `envelope`) checks shapes and types; this module checks meaning: a sale sells
//! something, quantities point the right way, all money in one event is in one well-formed currency.

use crate::envelope::{Event, EventError};
use crate::payload::{Money, Payload, SaleLine, Tender, Totals};

/// The longest id, source, partition key or subject accepted, in bytes.
pub const MAX_IDENTIFIER_BYTES: usize = 256;

/// Checks the rules for the event's type; returns every broken rule, each naming its field.
pub fn validate(event: &Event) -> Result<(), Vec<EventError>> {
    let mut errors = Errors::default();
    errors.envelope(event);
    match &event.payload {
        Payload::Sale(sale) => {
            errors.date("data.business_date", &sale.business_date);
            if sale.lines.is_empty() {
                errors.push("data.lines", "a sale needs at least one line");
            }
            let currency = &sale.totals.total;
            for (i, line) in sale.lines.iter().enumerate() {
                let at = format!("data.lines[{i}]");
                if line.quantity_milli <= 0 {
                    errors.push(
                        format!("{at}.quantity_milli"),
                        format!(
                            "must be positive in a sale (got {}); send returns as pos.refund.completed.v1",
                            line.quantity_milli
                        ),
                    );
                }
                errors.line(&at, line, currency);
            }
            if sale.tenders.is_empty() {
                errors.push("data.tenders", "a sale needs at least one tender");
            }
            errors.tenders(&sale.tenders, currency);
            errors.totals(&sale.totals, currency);
        }
        Payload::Refund(refund) => {
            errors.date("data.business_date", &refund.business_date);
            if refund.lines.is_empty() {
                errors.push("data.lines", "a refund needs at least one line");
            }
            let currency = &refund.totals.total;
            for (i, line) in refund.lines.iter().enumerate() {
                let at = format!("data.lines[{i}].line");
                if line.line.quantity_milli >= 0 {
                    errors.push(
                        format!("{at}.quantity_milli"),
                        format!(
                            "must be negative in a refund (got {}): the goods come back",
                            line.line.quantity_milli
                        ),
                    );
                }
                errors.line(&at, &line.line, currency);
            }
            errors.tenders(&refund.tenders, currency);
            errors.totals(&refund.totals, currency);
        }
        Payload::PaymentSettled(p) => {
            errors.money("data.tender.amount", &p.tender.amount, &p.tender.amount);
            if let Some(fee) = &p.fee {
                errors.money("data.fee", fee, &p.tender.amount);
            }
        }
        Payload::StockAdjusted(s) => errors.non_empty("data.sku", &s.sku),
        Payload::RestockSuggested(r) => errors.non_empty("data.sku", &r.sku),
        Payload::MemberUpdated(m) => errors.non_empty("data.member_id", &m.member_id),
        Payload::VoidSale(v) => errors.non_empty("data.order_id", &v.order_id),
        Payload::AnomalyDetected(_) | Payload::Alert(_) | Payload::Custom(_) => {}
    }
    errors.finish()
}

impl Errors {
    /// The CloudEvents attributes. Parsed events already meet these; events made by plugins
    /// (transform outputs, source decodes) are checked here.
    /// Ids, sources, partition keys and subjects: at most [`MAX_IDENTIFIER_BYTES`], and no
    /// control characters (NUL, line breaks, escapes), which would corrupt logs and lookups.
    fn identifier(&mut self, attribute: &str, value: &str) {
        if value.len() > MAX_IDENTIFIER_BYTES {
            self.push(
                attribute,
                format!(
                    "is {} bytes long; at most {MAX_IDENTIFIER_BYTES} bytes are accepted",
                    value.len()
                ),
            );
        } else if let Some(c) = value.chars().find(|c| c.is_control()) {
            self.push(
                attribute,
                format!("must not contain control characters (found {:?})", c),
            );
        }
    }

    fn envelope(&mut self, event: &Event) {
        if event.id.is_empty() {
            self.push("id", "is required: a non-empty string");
        }
        self.identifier("id", &event.id);
        if crate::is_host_alert(&event.id) && event.source != crate::HOST_ALERT_SOURCE {
            self.push(
                "id",
                format!(
                    "must not begin with `{}`: that prefix is reserved for the host's own alerts",
                    crate::HOST_ALERT_ID_PREFIX
                ),
            );
        }
        self.identifier("source", &event.source);
        self.identifier("partitionkey", &event.partition_key);
        if let Some(subject) = &event.subject {
            self.identifier("subject", subject);
        }
        if event.source.is_empty() || event.source.contains(char::is_whitespace) {
            self.push(
                "source",
                "is required: a URI-reference without spaces, e.g. /t/acme/s/hk-001/p/till-1",
            );
        }
        if !is_rfc3339(&event.time) {
            self.push(
                "time",
                format!(
                    "must be an RFC 3339 timestamp such as 2026-11-25T10:15:00+08:00 (a real date, seconds 00-59, offset -12:00 to +14:00), got {:?}",
                    event.time.chars().take(64).collect::<String>()
                ),
            );
        }
        if event.ty.is_empty() {
            self.push("type", "is required: e.g. pos.sale.completed.v1");
        } else if let Some(expected) = event.payload.event_type()
            && expected != event.ty
        {
            self.push(
                "type",
                format!("is `{}` but the data is a {expected} payload", event.ty),
            );
        }
        for (name, value) in &event.extensions {
            // `dataschema` has no field of its own: it is carried with the extensions.
            if name == "dataschema" {
                if !crate::envelope::is_absolute_uri(value) {
                    self.push(name.clone(), "must be a non-empty absolute URI (CloudEvents 1.0)");
                }
            } else if name == "datacontenttype" {
                // The content type of data carried as bytes (a `custom` payload).
                if !crate::envelope::is_media_type(value) {
                    self.push(name.clone(), "must be a media type such as text/plain (RFC 2046)");
                }
            } else if crate::envelope::CONTEXT_ATTRIBUTES.contains(&name.as_str()) || name == "data" {
                self.push(
                    name.clone(),
                    "is a CloudEvents context attribute or the data, not an extension: set the event's own field",
                );
            } else if !crate::envelope::is_attribute_name(name) {
                self.push(
                    name.clone(),
                    "attribute names must be 1-20 lower-case letters or digits (CloudEvents 1.0)",
                );
            }
        }
    }
}

/// `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`, with fields in range (RFC 3339 §5.6): a day
/// that exists in its month, no leap second (`:60`, which most systems downstream cannot read),
/// and an offset a place on Earth uses (-12:00 to +14:00).
pub fn is_rfc3339(text: &str) -> bool {
    let b = text.as_bytes();
    let digits = |range: std::ops::Range<usize>| -> Option<u32> {
        let part = b.get(range)?;
        part.iter()
            .all(u8::is_ascii_digit)
            .then(|| part.iter().fold(0, |n, d| n * 10 + u32::from(d - b'0')))
    };
    let date_time = (|| {
        let (month, day) = (digits(5..7)?, digits(8..10)?);
        let (hour, minute, second) = (digits(11..13)?, digits(14..16)?, digits(17..19)?);
        let year = digits(0..4)?;
        let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
        let days = match month {
            2 if leap => 29,
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        };
        let separators = b[4] == b'-' && b[7] == b'-' && matches!(b[10], b'T' | b't') && b[13] == b':' && b[16] == b':';
        Some(
            separators
                && (1..=12).contains(&month)
                && (1..=days).contains(&day)
                && hour < 24
                && minute < 60
                && second < 60,
        )
    })();
    if date_time != Some(true) {
        return false;
    }
    let mut rest = &b[19..];
    if let Some(fraction) = rest.strip_prefix(b".") {
        let n = fraction.iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 {
            return false;
        }
        rest = &fraction[n..];
    }
    match rest {
        [b'Z' | b'z'] => true,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            if ![h1, h2, m1, m2].iter().all(|c| c.is_ascii_digit()) {
                return false;
            }
            let minutes =
                u32::from((*h1 - b'0') * 10 + (*h2 - b'0')) * 60 + u32::from((*m1 - b'0') * 10 + (*m2 - b'0'));
            (*m1 - b'0') * 10 + (*m2 - b'0') < 60
                && if *sign == b'+' {
                    minutes <= 14 * 60
                } else {
                    minutes <= 12 * 60
                }
        }
        _ => false,
    }
}

#[derive(Default)]
struct Errors(Vec<EventError>);

impl Errors {
    fn push(&mut self, attribute: impl Into<String>, rule: impl Into<String>) {
        self.0.push(EventError::new(attribute, rule));
    }

    fn finish(self) -> Result<(), Vec<EventError>> {
        if self.0.is_empty() { Ok(()) } else { Err(self.0) }
    }

    fn non_empty(&mut self, at: &str, value: &str) {
        if value.trim().is_empty() {
            self.push(at, "must not be empty");
        }
    }

    fn date(&mut self, at: &str, value: &str) {
        let b = value.as_bytes();
        let shaped = b.len() == 10
            && b[4] == b'-'
            && b[7] == b'-'
            && b.iter()
                .enumerate()
                .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
        if !shaped {
            self.push(at, format!("must be a date as YYYY-MM-DD, got {value:?}"));
        }
    }

    /// Currency well-formed (three upper-case letters, exponent 0..=4) and equal to the event's.
    fn money(&mut self, at: &str, money: &Money, expected: &Money) {
        let code_ok = money.currency.len() == 3 && money.currency.bytes().all(|b| b.is_ascii_uppercase());
        if !code_ok {
            self.push(
                format!("{at}.currency"),
                format!("must be an ISO 4217 code such as HKD, got {:?}", money.currency),
            );
        } else if money.currency != expected.currency || money.exponent != expected.exponent {
            self.push(
                format!("{at}.currency"),
                format!(
                    "{} (exponent {}) differs from the total's {} (exponent {}); one event uses one currency",
                    money.currency, money.exponent, expected.currency, expected.exponent
                ),
            );
        }
        if money.exponent > 4 {
            self.push(
                format!("{at}.exponent"),
                format!("must be 0 to 4, got {}", money.exponent),
            );
        }
    }

    fn line(&mut self, at: &str, line: &SaleLine, currency: &Money) {
        self.non_empty(&format!("{at}.sku"), &line.sku);
        for (name, money) in [
            ("unit_price", &line.unit_price),
            ("gross", &line.gross),
            ("discount", &line.discount),
            ("net", &line.net),
        ] {
            self.money(&format!("{at}.{name}"), money, currency);
        }
        for (j, tax) in line.taxes.iter().enumerate() {
            self.money(&format!("{at}.taxes[{j}].amount"), &tax.amount, currency);
        }
    }

    fn tenders(&mut self, tenders: &[Tender], currency: &Money) {
        for (i, tender) in tenders.iter().enumerate() {
            self.money(&format!("data.tenders[{i}].amount"), &tender.amount, currency);
        }
    }

    fn totals(&mut self, totals: &Totals, currency: &Money) {
        for (name, money) in [
            ("gross", &totals.gross),
            ("discount", &totals.discount),
            ("net", &totals.net),
            ("tax", &totals.tax),
            ("total", &totals.total),
            ("tendered", &totals.tendered),
            ("change", &totals.change),
        ] {
            self.money(&format!("data.totals.{name}"), money, currency);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::{Defaults, Dialect};

    fn money(amount: i64) -> serde_json::Value {
        serde_json::json!({"amount_minor": amount, "currency": "HKD", "exponent": 2})
    }

    fn sale(quantity: i64) -> Event {
        let value = serde_json::json!({
            "source": "/t/acme/s/hk-001/p/till-1",
            "type": "pos.sale.completed.v1",
            "data": {
                "order_id": "A1", "business_date": "2026-11-25", "time_zone": "Asia/Hong_Kong",
                "tax_mode": "inclusive",
                "lines": [{"line_no": 1, "sku": "P-1", "quantity_milli": quantity,
                           "unit_price": money(100), "gross": money(100), "discount": money(0),
                           "net": money(100)}],
                "tenders": [{"method": "octopus", "amount": money(100)}],
                "totals": {"gross": money(100), "discount": money(0), "net": money(100),
                           "tax": money(0), "total": money(100), "tendered": money(100),
                           "change": money(0)}
            }
        });
        let defaults = Defaults {
            id: "1".into(),
            now: "2026-11-25T10:00:00+08:00".into(),
        };
        Event::from_json(value, Dialect::Canonical, &defaults).unwrap()
    }

    #[test]
    fn a_good_sale_passes() {
        assert_eq!(validate(&sale(1000)), Ok(()));
        assert_eq!(sale(1000).partition_key, "hk-001:A1");
    }

    #[test]
    fn negative_quantity_in_a_sale_names_the_field() {
        let errors = validate(&sale(-1000)).unwrap_err();
        assert_eq!(errors[0].attribute, "data.lines[0].quantity_milli");
        assert!(errors[0].rule.contains("pos.refund.completed.v1"));
    }

    #[test]
    fn mixed_currencies_are_refused() {
        let mut event = sale(1000);
        if let Payload::Sale(s) = &mut event.payload {
            s.lines[0].net.currency = "USD".into();
        }
        let errors = validate(&event).unwrap_err();
        assert_eq!(errors[0].attribute, "data.lines[0].net.currency");
    }
}

#[cfg(test)]
mod time_tests {
    use super::is_rfc3339;

    #[test]
    fn rfc_3339_timestamps_are_told_from_everything_else() {
        for good in [
            "2026-11-25T10:15:00+08:00",
            "2026-11-25T02:15:00Z",
            "2026-11-25T02:15:00.123456z",
            "2026-12-31T23:59:59-05:30",
            "2028-02-29T10:00:00+14:00",
            "2026-11-25T10:00:00-12:00",
        ] {
            assert!(is_rfc3339(good), "{good}");
        }
        for bad in [
            "",
            "2026-11-25",
            "2026-11-25 10:15:00+08:00",
            "2026-13-25T10:15:00Z",
            "2026-11-25T24:00:00Z",
            "2026-11-25T10:15:00",
            "2026-11-25T10:15:00.Z",
            "2026-11-25T10:15:00+0800",
            "2026-11-25T10:15:00+08:00 ",
            "２026-11-25T10:15:00Z",
            // A leap second, days that do not exist, offsets no place uses.
            "2026-12-31T23:59:60Z",
            "2026-02-29T10:00:00Z",
            "2026-04-31T10:00:00Z",
            "2026-11-25T10:15:00+23:59",
            "2026-11-25T10:15:00+14:01",
            "2026-11-25T10:15:00-12:30",
            "2026-11-25T10:15:00+08:60",
        ] {
            assert!(!is_rfc3339(bad), "{bad}");
        }
    }
}
