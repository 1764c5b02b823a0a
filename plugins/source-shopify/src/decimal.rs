//! Exact decimal amounts: Shopify sends money as decimal strings (`"39.90"`) and tax rates as
//! JSON numbers (`0.08875`); both become integers here without ever going through a float.

use serde::Deserialize;

/// A decimal as Shopify writes it: a string (`"39.90"`), or a JSON number in older payloads.
///
/// Numbers are kept as the text serde_json prints for them, which is the shortest text that reads
/// back as the same value, i.e. the literal Shopify sent for any amount or rate of up to 15
/// significant digits.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Decimal {
    /// `"39.90"`.
    Text(String),
    /// `39.9`.
    Number(serde_json::Number),
}

impl Decimal {
    /// The decimal's text.
    pub fn text(&self) -> String {
        match self {
            Decimal::Text(t) => t.trim().to_owned(),
            Decimal::Number(n) => n.to_string(),
        }
    }

    /// The amount in minor units of a currency with `exponent` decimals. Digits beyond the
    /// exponent must be zeros (`"12.500"` is fine for HKD, `"12.505"` is not).
    pub fn minor_units(&self, exponent: u8) -> Result<i64, String> {
        scaled(&self.text(), exponent, Rounding::Exact)
    }

    /// A rate (`0.08875`) in parts per million (`88750`), rounded half away from zero.
    pub fn parts_per_million(&self) -> Result<u32, String> {
        let ppm = scaled(&self.text(), 6, Rounding::HalfAwayFromZero)?;
        u32::try_from(ppm).map_err(|_| format!("rate {} is out of range", self.text()))
    }
}

/// What to do with digits beyond the scale.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Rounding {
    /// They must be zeros.
    Exact,
    /// Round half away from zero.
    HalfAwayFromZero,
}

/// `text × 10^scale` as an integer. Accepts `-12.5`, `12`, `.5`, `1e-3` is refused.
fn scaled(text: &str, scale: u8, rounding: Rounding) -> Result<i64, String> {
    let invalid = || format!("`{text}` is not a decimal number");
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    if (whole.is_empty() && fraction.is_empty())
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !fraction.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(invalid());
    }
    let scale = usize::from(scale);
    let (kept, dropped) = fraction.split_at(fraction.len().min(scale));
    let mut value: i128 = 0;
    for b in whole.bytes().chain(kept.bytes()) {
        value = value * 10 + i128::from(b - b'0');
        if value > i128::from(i64::MAX) {
            return Err(format!("`{text}` is too large"));
        }
    }
    for _ in kept.len()..scale {
        value *= 10;
    }
    match rounding {
        Rounding::Exact if dropped.bytes().any(|b| b != b'0') => {
            return Err(format!("`{text}` has more than {scale} decimal places"));
        }
        Rounding::HalfAwayFromZero if dropped.as_bytes().first().is_some_and(|b| *b >= b'5') => value += 1,
        _ => {}
    }
    let value = i64::try_from(value).map_err(|_| format!("`{text}` is too large"))?;
    Ok(if negative { -value } else { value })
}

/// Decimal places of an ISO 4217 currency's minor unit (2 unless listed).
pub fn exponent(currency: &str) -> u8 {
    match currency {
        "BIF" | "CLP" | "DJF" | "GNF" | "ISK" | "JPY" | "KMF" | "KRW" | "PYG" | "RWF" | "UGX" | "UYI" | "VND"
        | "VUV" | "XAF" | "XOF" | "XPF" => 0,
        "BHD" | "IQD" | "JOD" | "KWD" | "LYD" | "OMR" | "TND" => 3,
        "CLF" | "UYW" => 4,
        _ => 2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> Decimal {
        Decimal::Text(s.into())
    }

    #[test]
    fn amounts_are_read_exactly() {
        assert_eq!(text("39.90").minor_units(2), Ok(3990));
        assert_eq!(text("39.9").minor_units(2), Ok(3990));
        assert_eq!(text("40").minor_units(2), Ok(4000));
        assert_eq!(text("0.05").minor_units(2), Ok(5));
        assert_eq!(text("-7.50").minor_units(2), Ok(-750));
        assert_eq!(text("1200.00").minor_units(0), Ok(1200));
        assert_eq!(text("1.234").minor_units(3), Ok(1234));
        // 0.1 + 0.2 style values stay exact: no float is involved.
        assert_eq!(text("1234567890123.45").minor_units(2), Ok(123_456_789_012_345));
    }

    #[test]
    fn amounts_that_do_not_fit_are_refused() {
        assert_eq!(
            text("12.505").minor_units(2),
            Err("`12.505` has more than 2 decimal places".into())
        );
        assert_eq!(text("12.500").minor_units(2), Ok(1250));
        assert!(text("12,50").minor_units(2).is_err());
        assert!(text("").minor_units(2).is_err());
        assert!(text("1e3").minor_units(2).is_err());
        assert!(text("99999999999999999999").minor_units(2).is_err());
    }

    #[test]
    fn rates_become_parts_per_million() {
        let number = |s: &str| Decimal::Number(serde_json::from_str(s).unwrap());
        assert_eq!(number("0.08875").parts_per_million(), Ok(88_750));
        assert_eq!(number("0.2").parts_per_million(), Ok(200_000));
        assert_eq!(number("0").parts_per_million(), Ok(0));
        assert_eq!(text("0.0000005").parts_per_million(), Ok(1));
        assert_eq!(text("0.0000004").parts_per_million(), Ok(0));
    }

    #[test]
    fn every_written_amount_reads_back_and_junk_never_panics() {
        // Money::to_decimal writes amounts the way Shopify does; reading them back is exact.
        let mut value: i64 = 1;
        for step in 0..2000 {
            value = value
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let amount = (value >> (step % 40)) % 1_000_000_000_000;
            for exponent in 0..=4 {
                let text = kaunter_sdk::Money::new(amount, "XXX", exponent).to_decimal();
                assert_eq!(Decimal::Text(text.clone()).minor_units(exponent), Ok(amount), "{text}");
            }
        }
        for junk in [
            "-", ".", "-.", "1.2.3", "--1", "+-1", "1_000", "١٢", "NaN", "inf", "0x10", "1e2", "1 000",
        ] {
            assert!(Decimal::Text(junk.into()).minor_units(2).is_err(), "{junk}");
        }
        assert_eq!(Decimal::Text(" 1.5 ".into()).minor_units(2), Ok(150));
    }

    #[test]
    fn exponents_follow_iso_4217() {
        assert_eq!(exponent("HKD"), 2);
        assert_eq!(exponent("JPY"), 0);
        assert_eq!(exponent("KWD"), 3);
    }
}
