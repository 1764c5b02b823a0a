//! Property tests of the parser of outside input: any JSON value is either an event or a precise
//! error, never a panic; every valid event survives the stored form unchanged.

use kaunter_model::{Defaults, Dialect, Event};
use proptest::prelude::*;
use serde_json::{Value, json};

fn defaults() -> Defaults {
    Defaults {
        id: "01TEST".into(),
        now: "2026-11-25T00:00:00Z".into(),
    }
}

/// Arbitrary JSON, biased towards the shapes an event has.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        "[a-z_.]{0,12}".prop_map(Value::String),
        Just(json!("pos.sale.completed.v1")),
        Just(json!("HKD")),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    "[a-z_]{1,14}",
                    Just("type".to_owned()),
                    Just("data".to_owned()),
                    Just("lines".to_owned()),
                    Just("amount_minor".to_owned()),
                    Just("currency".to_owned()),
                ],
                inner,
                0..8
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn any_json_parses_or_names_what_is_wrong(value in json_value(), ty in prop_oneof![
        Just("pos.sale.completed.v1"), Just("pos.refund.completed.v1"), Just("pos.stock.adjusted.v1"), Just("x.custom")
    ]) {
        let mut event = json!({"source": "/t/a/s/b/p/c", "type": ty, "data": value.clone()});
        for dialect in [Dialect::Canonical, Dialect::CloudEvents] {
            match Event::from_json(event.clone(), dialect, &defaults()) {
                Ok(e) => {
                    let _ = kaunter_model::validate(&e);
                    let again = Event::from_stored(e.to_json().to_string().as_bytes()).unwrap();
                    prop_assert_eq!(e, again);
                }
                Err(e) => prop_assert!(!e.attribute.is_empty() && !e.rule.is_empty()),
            }
        }
        // The whole value as an envelope, too.
        event = value;
        let _ = Event::from_json(event, Dialect::CloudEvents, &defaults());
    }
}
