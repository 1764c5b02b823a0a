//! [`wit_conversions!`]: `From` impls between this crate's types and generated WIT bindings.
//!
//! The host (`wasmtime::component::bindgen!`) and the guest SDK (`wit_bindgen::generate!`) each
//! generate their own copy of the `types` interface. Both copies have the same names and fields as
//! this crate, so one macro written here gives both sides their conversions.

/// Generates `From` impls, both ways, between `kaunter_model` types and the `types` interface
/// module of some WIT bindings.
///
/// ```ignore
/// use crate::bindings::kaunter::plugin::types as wit;
/// kaunter_model::wit_conversions!(wit);
/// let event: wit::Event = model_event.into();
/// ```
#[macro_export]
macro_rules! wit_conversions {
    ($b:ident) => {
        $crate::__wit_record!(
            $b,
            Money {
                amount_minor: id,
                currency: id,
                exponent: id
            }
        );
        $crate::__wit_record!(
            $b,
            Tax {
                code: id,
                rate_ppm: id,
                amount: into
            }
        );
        $crate::__wit_record!(
            $b,
            SaleLine {
                line_no: id,
                sku: id,
                name: id,
                quantity_milli: id,
                unit_price: into,
                gross: into,
                discount: into,
                net: into,
                taxes: vec,
                attributes: id
            }
        );
        $crate::__wit_record!(
            $b,
            Tender {
                method: into,
                amount: into,
                processor_ref: id
            }
        );
        $crate::__wit_record!(
            $b,
            Totals {
                gross: into,
                discount: into,
                net: into,
                tax: into,
                total: into,
                tendered: into,
                change: into
            }
        );
        $crate::__wit_record!(
            $b,
            Sale {
                order_id: id,
                business_date: id,
                time_zone: id,
                tax_mode: into,
                lines: vec,
                tenders: vec,
                totals: into,
                member_id: id,
                cashier_id: id
            }
        );
        $crate::__wit_record!(
            $b,
            RefundLine {
                line: into,
                original_line_no: id,
                restock: id
            }
        );
        $crate::__wit_record!(
            $b,
            Refund {
                refund_id: id,
                original_order_id: id,
                business_date: id,
                time_zone: id,
                tax_mode: into,
                lines: vec,
                tenders: vec,
                totals: into,
                reason: id,
                member_id: id,
                cashier_id: id
            }
        );
        $crate::__wit_record!(
            $b,
            VoidSale {
                order_id: id,
                reason: id,
                cashier_id: id
            }
        );
        $crate::__wit_record!(
            $b,
            PaymentSettled {
                order_id: id,
                tender: into,
                settlement_id: id,
                fee: opt
            }
        );
        $crate::__wit_record!(
            $b,
            StockAdjusted {
                sku: id,
                delta_milli: id,
                reason: into,
                on_hand_milli: id
            }
        );
        $crate::__wit_record!(
            $b,
            MemberUpdated {
                member_id: id,
                tier: id,
                points_balance: id,
                name: id,
                phone: id,
                email: id
            }
        );
        $crate::__wit_record!(
            $b,
            RestockSuggested {
                sku: id,
                on_hand_milli: id,
                suggested_milli: id,
                reason: id
            }
        );
        $crate::__wit_record!(
            $b,
            AnomalyDetected {
                kind: id,
                severity: into,
                description: id,
                related_event_id: id
            }
        );
        $crate::__wit_record!(
            $b,
            Alert {
                kind: id,
                severity: into,
                title: id,
                message: id,
                state: into,
                dedup_key: id,
                target: id,
                since: id,
                evidence: vec,
                runbook: id
            }
        );
        $crate::__wit_record!($b, Evidence { name: id, value: id });
        $crate::__wit_variant!(
            $b,
            TaxMode {
                units: [Inclusive, Exclusive],
                cases: []
            }
        );
        $crate::__wit_variant!(
            $b,
            StockReason {
                units: [Receipt, Count, Shrinkage, TransferOut, TransferIn, Other],
                cases: []
            }
        );
        $crate::__wit_variant!(
            $b,
            AlertState {
                units: [Firing, Resolved],
                cases: []
            }
        );
        $crate::__wit_variant!(
            $b,
            Severity {
                units: [Info, Warning, Critical],
                cases: []
            }
        );
        $crate::__wit_variant!(
            $b,
            TenderMethod {
                units: [Cash, Card, Octopus, Fps, AlipayHk, WechatPay, Voucher, Points],
                cases: [Other]
            }
        );
        $crate::__wit_variant!(
            $b,
            Payload {
                units: [],
                cases: [
                    Sale,
                    Refund,
                    VoidSale,
                    PaymentSettled,
                    StockAdjusted,
                    MemberUpdated,
                    RestockSuggested,
                    AnomalyDetected,
                    Alert,
                    Custom
                ]
            }
        );

        impl From<$crate::Event> for $b::Event {
            fn from(v: $crate::Event) -> Self {
                Self {
                    id: v.id,
                    source: v.source,
                    type_: v.ty,
                    time: v.time,
                    subject: v.subject,
                    partition_key: v.partition_key,
                    extensions: v.extensions,
                    payload: v.payload.into(),
                }
            }
        }

        impl From<$b::Event> for $crate::Event {
            fn from(v: $b::Event) -> Self {
                Self {
                    id: v.id,
                    source: v.source,
                    ty: v.type_,
                    time: v.time,
                    subject: v.subject,
                    partition_key: v.partition_key,
                    extensions: v.extensions,
                    payload: v.payload.into(),
                }
            }
        }
    };
}

/// Implementation detail of [`wit_conversions!`]: one record, both directions.
#[doc(hidden)]
#[macro_export]
macro_rules! __wit_record {
    ($b:ident, $name:ident { $($field:ident : $kind:ident),* $(,)? }) => {
        impl From<$crate::$name> for $b::$name {
            fn from(v: $crate::$name) -> Self {
                Self { $($field: $crate::__wit_field!($kind, v.$field)),* }
            }
        }
        impl From<$b::$name> for $crate::$name {
            fn from(v: $b::$name) -> Self {
                Self { $($field: $crate::__wit_field!($kind, v.$field)),* }
            }
        }
    };
}

/// Implementation detail of [`wit_conversions!`]: one field.
#[doc(hidden)]
#[macro_export]
macro_rules! __wit_field {
    (id, $e:expr) => {
        $e
    };
    (into, $e:expr) => {
        ::core::convert::Into::into($e)
    };
    (vec, $e:expr) => {
        $e.into_iter().map(::core::convert::Into::into).collect()
    };
    (opt, $e:expr) => {
        $e.map(::core::convert::Into::into)
    };
}

/// Implementation detail of [`wit_conversions!`]: an enum or variant, both directions.
#[doc(hidden)]
#[macro_export]
macro_rules! __wit_variant {
    ($b:ident, $name:ident { units: [$($unit:ident),* $(,)?], cases: [$($case:ident),* $(,)?] }) => {
        impl From<$crate::$name> for $b::$name {
            fn from(v: $crate::$name) -> Self {
                match v {
                    $($crate::$name::$unit => Self::$unit,)*
                    $($crate::$name::$case(x) => Self::$case(::core::convert::Into::into(x)),)*
                }
            }
        }
        impl From<$b::$name> for $crate::$name {
            fn from(v: $b::$name) -> Self {
                match v {
                    $($b::$name::$unit => Self::$unit,)*
                    $($b::$name::$case(x) => Self::$case(::core::convert::Into::into(x)),)*
                }
            }
        }
    };
}
