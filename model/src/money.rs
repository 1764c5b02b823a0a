//! Arithmetic on money and the views integrations need of a sale or refund, all in integer minor
//! units (no floats anywhere): sums, products with thousandth quantities, tax-inclusive and
//! tax-exclusive totals, and the net effect of refunds.

use crate::payload::{Money, Refund, Sale, SaleLine, TaxMode};

impl Money {
    /// An amount in minor units: `Money::new(1250, "HKD", 2)` is HK$12.50.
    pub fn new(amount_minor: i64, currency: &str, exponent: u8) -> Money {
        Money {
            amount_minor,
            currency: currency.to_owned(),
            exponent,
        }
    }

    /// `self − other`; `None` on a currency mismatch or overflow.
    pub fn checked_sub(&self, other: &Money) -> Option<Money> {
        self.checked_add(&other.negated()?)
    }

    /// The same amount with the opposite sign (`None` only for `i64::MIN`).
    pub fn negated(&self) -> Option<Money> {
        Some(Money::new(
            self.amount_minor.checked_neg()?,
            &self.currency,
            self.exponent,
        ))
    }

    /// `self × quantity_milli / 1000`, rounded half away from zero (a unit price times a
    /// quantity in thousandths); `None` on overflow.
    pub fn times_milli(&self, quantity_milli: i64) -> Option<Money> {
        let product = i128::from(self.amount_minor) * i128::from(quantity_milli);
        let rounded = (product + product.signum() * 500) / 1000;
        Some(Money::new(i64::try_from(rounded).ok()?, &self.currency, self.exponent))
    }

    /// The sum of amounts, all in `currency`/`exponent`; `None` on a mismatch or overflow.
    pub fn sum<'a>(currency: &str, exponent: u8, amounts: impl IntoIterator<Item = &'a Money>) -> Option<Money> {
        amounts
            .into_iter()
            .try_fold(Money::zero(currency, exponent), |total, m| total.checked_add(m))
    }

    /// The amount as a decimal string, e.g. `"12.50"` or `"-3"` (for display and for APIs that
    /// take decimal strings; never go through a float).
    pub fn to_decimal(&self) -> String {
        let sign = if self.amount_minor < 0 { "-" } else { "" };
        let abs = self.amount_minor.unsigned_abs();
        if self.exponent == 0 {
            return format!("{sign}{abs}");
        }
        let scale = 10u64.pow(u32::from(self.exponent));
        format!(
            "{sign}{}.{:0width$}",
            abs / scale,
            abs % scale,
            width = usize::from(self.exponent)
        )
    }
}

impl std::fmt::Display for Money {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.currency, self.to_decimal())
    }
}

impl SaleLine {
    /// The line's taxes, summed.
    pub fn tax(&self) -> Option<Money> {
        Money::sum(
            &self.net.currency,
            self.net.exponent,
            self.taxes.iter().map(|t| &t.amount),
        )
    }

    /// What the line costs with tax, whatever the tax mode.
    pub fn amount_including_tax(&self, mode: TaxMode) -> Option<Money> {
        match mode {
            TaxMode::Inclusive => Some(self.net.clone()),
            TaxMode::Exclusive => self.net.checked_add(&self.tax()?),
        }
    }

    /// What the line costs without tax, whatever the tax mode.
    pub fn amount_excluding_tax(&self, mode: TaxMode) -> Option<Money> {
        match mode {
            TaxMode::Inclusive => self.net.checked_sub(&self.tax()?),
            TaxMode::Exclusive => Some(self.net.clone()),
        }
    }
}

impl Sale {
    /// The lines with their amounts including tax (what a customer-facing system shows).
    pub fn lines_including_tax(&self) -> impl Iterator<Item = (&SaleLine, Option<Money>)> {
        self.lines.iter().map(|l| (l, l.amount_including_tax(self.tax_mode)))
    }

    /// The lines with their amounts excluding tax (what an accounting system books as revenue).
    pub fn lines_excluding_tax(&self) -> impl Iterator<Item = (&SaleLine, Option<Money>)> {
        self.lines.iter().map(|l| (l, l.amount_excluding_tax(self.tax_mode)))
    }

    /// The sum of the lines' net amounts (recomputed from the lines, not read from the totals).
    pub fn lines_net(&self) -> Option<Money> {
        let t = &self.totals.total;
        Money::sum(&t.currency, t.exponent, self.lines.iter().map(|l| &l.net))
    }

    /// The sum of the tenders.
    pub fn tendered(&self) -> Option<Money> {
        let t = &self.totals.total;
        Money::sum(&t.currency, t.exponent, self.tenders.iter().map(|x| &x.amount))
    }
}

impl Refund {
    /// The refund's total as a positive amount (refunds carry negative amounts).
    pub fn amount_refunded(&self) -> Option<Money> {
        self.totals.total.negated()
    }

    /// Lines whose goods go back on the shelf (for stock systems).
    pub fn restocked_lines(&self) -> impl Iterator<Item = &SaleLine> {
        self.lines.iter().filter(|l| l.restock).map(|l| &l.line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hkd(minor: i64) -> Money {
        Money::new(minor, "HKD", 2)
    }

    #[test]
    fn arithmetic_stays_in_minor_units() {
        assert_eq!(hkd(3990).times_milli(2000), Some(hkd(7980)));
        // 1.5 kg at HK$12.35/kg = 18.525 → 18.53 (half away from zero), and the negative mirror.
        assert_eq!(hkd(1235).times_milli(1500), Some(hkd(1853)));
        assert_eq!(hkd(1235).times_milli(-1500), Some(hkd(-1853)));
        assert_eq!(hkd(500).checked_sub(&hkd(1250)), Some(hkd(-750)));
        assert_eq!(hkd(100).checked_add(&Money::new(100, "USD", 2)), None);
        assert_eq!(Money::sum("HKD", 2, &[hkd(1), hkd(2)]), Some(hkd(3)));
        assert_eq!(hkd(-750).to_string(), "HKD -7.50");
        assert_eq!(Money::new(1200, "JPY", 0).to_decimal(), "1200");
        assert_eq!(hkd(5).to_decimal(), "0.05");
    }
}
