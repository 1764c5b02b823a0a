//! Square's webhook notification and the Payment and Refund objects it carries (the fields this
//! source reads, as the Payments and Refunds APIs document them), mapped to kaunter's
//! [`PaymentSettled`].
//!
//! Square amounts are integers in the currency's smallest denomination (ISO 4217), used as they
//! are with the currency's ISO exponent.

use kaunter_sdk::{Money, PaymentSettled, Tender, TenderMethod};
use serde::Deserialize;

/// The notification: `{"merchant_id", "type", "event_id", "created_at", "data": {...}}`.
#[derive(Debug, Deserialize)]
pub struct Notification {
    /// `payment.updated`, `refund.created`, ...
    #[serde(rename = "type")]
    pub ty: String,
    /// Square's id of this notification (kept as extension `vendoreventid`).
    pub event_id: String,
    /// When Square created the notification, RFC 3339.
    pub created_at: String,
    /// The object (absent in `webhooks.test_notification`).
    #[serde(default)]
    pub data: NotificationData,
}

/// `data`.
#[derive(Debug, Default, Deserialize)]
pub struct NotificationData {
    /// `{"payment": {...}}` or `{"refund": {...}}`.
    #[serde(default)]
    pub object: serde_json::Value,
}

/// `Money`: `{"amount": 7980, "currency": "HKD"}`.
#[derive(Debug, Deserialize)]
pub struct SquareMoney {
    /// Smallest denomination.
    pub amount: i64,
    /// ISO 4217.
    pub currency: String,
}

impl SquareMoney {
    fn money(&self) -> Money {
        let code = self.currency.trim().to_ascii_uppercase();
        Money::new(self.amount, &code, exponent(&code))
    }
}

/// `processing_fee[]`.
#[derive(Debug, Deserialize)]
pub struct ProcessingFee {
    /// The fee (negative on refunds: fees Square gives back).
    pub amount_money: SquareMoney,
}

/// A Payment (`payment.created`, `payment.updated`).
#[derive(Debug, Deserialize)]
pub struct Payment {
    /// The payment's id: settlement id and processor reference.
    pub id: String,
    /// `APPROVED`, `PENDING`, `COMPLETED`, `CANCELED`, `FAILED`.
    pub status: String,
    /// Amount before tip.
    pub amount_money: SquareMoney,
    /// Amount with tip (what settled).
    #[serde(default)]
    pub total_money: Option<SquareMoney>,
    /// Square's fees, once known.
    #[serde(default)]
    pub processing_fee: Vec<ProcessingFee>,
    /// `CARD`, `CASH`, `WALLET`, `EXTERNAL`, `BANK_ACCOUNT`, `BUY_NOW_PAY_LATER`, `SQUARE_ACCOUNT`.
    #[serde(default)]
    pub source_type: Option<String>,
    /// For cards: the brand (a Square gift card is a voucher).
    #[serde(default)]
    pub card_details: Option<CardDetails>,
    /// For wallets: the brand.
    #[serde(default)]
    pub wallet_details: Option<Branded>,
    /// For payments taken outside Square: their kind.
    #[serde(default)]
    pub external_details: Option<External>,
    /// Square location: the store.
    #[serde(default)]
    pub location_id: Option<String>,
    /// The Square order paid.
    #[serde(default)]
    pub order_id: Option<String>,
    /// When the payment last changed, RFC 3339.
    #[serde(default)]
    pub updated_at: Option<String>,
}

/// `card_details`.
#[derive(Debug, Deserialize)]
pub struct CardDetails {
    /// The card.
    #[serde(default)]
    pub card: Option<Card>,
}

/// `card_details.card`.
#[derive(Debug, Deserialize)]
pub struct Card {
    /// `VISA`, `SQUARE_GIFT_CARD`, ...
    #[serde(default)]
    pub card_brand: Option<String>,
}

/// `wallet_details`.
#[derive(Debug, Deserialize)]
pub struct Branded {
    /// `ALIPAY`, `WECHAT_PAY`, `CASH_APP`, `PAYPAY`, ...
    #[serde(default)]
    pub brand: Option<String>,
}

/// `external_details`.
#[derive(Debug, Deserialize)]
pub struct External {
    /// `CARD`, `CHECK`, `BANK_TRANSFER`, `OTHER_GIFT_CARD`, `FOOD_VOUCHER`, ...
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
}

/// A PaymentRefund (`refund.created`, `refund.updated`).
#[derive(Debug, Deserialize)]
pub struct SquareRefund {
    /// The refund's id: the settlement id.
    pub id: String,
    /// `PENDING`, `COMPLETED`, `REJECTED`, `FAILED`.
    pub status: String,
    /// Amount refunded.
    pub amount_money: SquareMoney,
    /// The refunded payment.
    #[serde(default)]
    pub payment_id: Option<String>,
    /// The order refunded.
    #[serde(default)]
    pub order_id: Option<String>,
    /// Square location: the store.
    #[serde(default)]
    pub location_id: Option<String>,
    /// Fees given back (negative).
    #[serde(default)]
    pub processing_fee: Vec<ProcessingFee>,
    /// Where the money went back: `CARD`, `CASH`, `WALLET`, ...
    #[serde(default)]
    pub destination_type: Option<String>,
    /// When the refund last changed, RFC 3339.
    #[serde(default)]
    pub updated_at: Option<String>,
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

/// A Square source type (with its details) as a tender method.
fn method(source_type: &str, payment: Option<&Payment>) -> TenderMethod {
    let other = |name: &str| TenderMethod::Other(name.to_ascii_lowercase());
    match source_type {
        "CARD" => {
            let brand = payment
                .and_then(|p| p.card_details.as_ref())
                .and_then(|d| d.card.as_ref())
                .and_then(|c| c.card_brand.as_deref());
            if brand == Some("SQUARE_GIFT_CARD") {
                TenderMethod::Voucher
            } else {
                TenderMethod::Card
            }
        }
        "CASH" => TenderMethod::Cash,
        "WALLET" => match payment
            .and_then(|p| p.wallet_details.as_ref())
            .and_then(|w| w.brand.as_deref())
        {
            Some(brand) => other(&format!("wallet:{brand}")),
            None => other("wallet"),
        },
        "EXTERNAL" => match payment
            .and_then(|p| p.external_details.as_ref())
            .and_then(|e| e.kind.as_deref())
        {
            Some("CARD") => TenderMethod::Card,
            Some("OTHER_GIFT_CARD" | "FOOD_VOUCHER") => TenderMethod::Voucher,
            Some(kind) => other(&format!("external:{kind}")),
            None => other("external"),
        },
        "" => other("unknown"),
        name => other(name),
    }
}

/// Sum of the fees; `None` when Square reported none (yet) or they do not add up.
fn fee(fees: &[ProcessingFee]) -> Option<Money> {
    let first = fees.first()?.amount_money.money();
    Money::sum(
        &first.currency,
        first.exponent,
        &fees.iter().map(|f| f.amount_money.money()).collect::<Vec<_>>(),
    )
}

impl Payment {
    /// A `COMPLETED` payment, settled: `total_money` (tip included); `None` for other statuses.
    pub fn settled(&self) -> Option<PaymentSettled> {
        if self.status != "COMPLETED" {
            return None;
        }
        Some(PaymentSettled {
            order_id: self.order_id.clone().unwrap_or_else(|| self.id.clone()),
            tender: Tender {
                method: method(self.source_type.as_deref().unwrap_or(""), Some(self)),
                amount: self.total_money.as_ref().unwrap_or(&self.amount_money).money(),
                processor_ref: Some(self.id.clone()),
            },
            settlement_id: self.id.clone(),
            fee: fee(&self.processing_fee),
        })
    }
}

impl SquareRefund {
    /// A `COMPLETED` refund, as a settlement reversal (negative tender); `None` otherwise.
    pub fn reversed(&self) -> Option<PaymentSettled> {
        if self.status != "COMPLETED" {
            return None;
        }
        let money = self.amount_money.money();
        let payment = self.payment_id.clone().unwrap_or_else(|| self.id.clone());
        Some(PaymentSettled {
            order_id: self.order_id.clone().unwrap_or_else(|| payment.clone()),
            tender: Tender {
                method: method(self.destination_type.as_deref().unwrap_or(""), None),
                amount: Money::new(-money.amount_minor, &money.currency, money.exponent),
                processor_ref: Some(payment),
            },
            settlement_id: self.id.clone(),
            fee: fee(&self.processing_fee),
        })
    }
}
