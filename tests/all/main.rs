//! End-to-end tests: real plugins compiled from `plugins/`, a real `kaunter` process on a real
//! SQLite file, real HTTP sinks. One binary, one module per area.

#![allow(
    clippy::disallowed_methods,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs
)]

mod acknowledged;
mod audit;
mod audit_chain;
mod backlog;
mod credentials;
mod delivery;
mod disk;
mod docs;
mod echoes;
mod emits;
mod fsync;
mod harness;
mod https;
mod incidents;
mod ingest;
mod languages;
mod lifecycle;
mod observability;
mod plugin_run;
mod recovery;
mod reload;
mod replay;
mod sandbox;
mod server;
mod sources;
mod templates;
mod traces;
mod vendors;
mod wit;

/// The end-to-end test named for each plugin in `plugins/`: (plugin directory, `module::test`).
const PLUGIN_TESTS: &[(&str, &str)] = &[
    (
        "connector-dingtalk",
        "vendors::dingtalk::a_signed_message_reaches_the_robot_and_a_stale_secret_dead_letters_with_dingtalks_answer",
    ),
    (
        "connector-hubspot",
        "vendors::hubspot::member_purchases_upsert_the_contact_with_a_running_total_through_a_rate_limit",
    ),
    (
        "connector-netsuite",
        "vendors::netsuite::sales_and_refunds_are_upserted_as_cash_sales_and_refunds_under_the_hosts_m2m_token",
    ),
    (
        "connector-quickbooks",
        "vendors::quickbooks::sales_and_refunds_become_receipts_once_each",
    ),
    (
        "connector-shopify-inventory",
        "vendors::shopify_inventory::stock_changes_and_sales_adjust_available_with_the_host_token_and_the_idempotency_key",
    ),
    (
        "connector-slack",
        "vendors::slack::an_anomaly_reaches_the_incoming_webhook_once_through_a_rate_limit_and_sales_are_skipped",
    ),
    (
        "connector-webhook",
        "delivery::a_sale_is_sku_mapped_and_delivered_as_a_signed_webhook",
    ),
    (
        "connector-xero",
        "vendors::xero::sales_and_refunds_are_booked_with_payments_through_a_rate_limit",
    ),
    (
        "hostile-egress",
        "sandbox::outbound_requests_outside_the_grants_are_denied_and_fail_the_event",
    ),
    (
        "hostile-forger",
        "emits::a_transform_cannot_book_a_sale_for_another_store",
    ),
    (
        "hostile-loop",
        "sandbox::a_looping_transform_is_stopped_and_other_routes_keep_delivering",
    ),
    (
        "hostile-memory",
        "sandbox::a_plugin_over_its_memory_cap_traps_and_only_its_event_fails",
    ),
    ("hostile-output", "sandbox::an_enormous_output_is_refused"),
    ("hostile-recursion", "sandbox::deep_recursion_hits_the_stack_limit"),
    (
        "hostile-snoop",
        "sandbox::files_environment_and_secrets_stay_out_of_reach",
    ),
    (
        "hostile-sometimes",
        "sandbox::concurrent_deliveries_keep_their_own_denials",
    ),
    (
        "hostile-source",
        "sources::a_failing_source_stores_nothing_and_the_host_keeps_serving",
    ),
    (
        "hostile-trap",
        "sandbox::a_plugin_trapping_on_every_event_fails_only_its_own_events",
    ),
    (
        "js-big-sales",
        "languages::the_same_transform_in_rust_python_and_javascript_passes_the_same_test",
    ),
    (
        "python-big-sales",
        "languages::the_same_transform_in_rust_python_and_javascript_passes_the_same_test",
    ),
    (
        "source-shopify",
        "vendors::shopify_source::shopify_webhooks_become_stored_routed_events",
    ),
    (
        "source-square",
        "vendors::square_source::square_notifications_become_one_stored_settlement_per_payment",
    ),
    (
        "source-stripe",
        "vendors::stripe_source::stripe_events_become_stored_settlements",
    ),
    (
        "transform-anomaly",
        "vendors::anomaly::a_refund_spike_reaches_the_alerts_sink_once_with_its_evidence",
    ),
    (
        "transform-big-sales",
        "languages::the_same_transform_in_rust_python_and_javascript_passes_the_same_test",
    ),
    (
        "transform-loyalty",
        "vendors::loyalty::member_sales_and_refunds_reach_the_sink_with_points_balance_and_tier",
    ),
    (
        "transform-redact",
        "vendors::redact::the_unprivileged_sink_never_sees_personal_data_and_gets_stable_pseudonyms",
    ),
    (
        "transform-restock",
        "vendors::restock::a_sale_under_the_reorder_point_derives_one_suggestion_routed_to_the_buyers",
    ),
    (
        "transform-sku-map",
        "delivery::a_sale_is_sku_mapped_and_delivered_as_a_signed_webhook",
    ),
];

/// Every plugin in `plugins/` has a named end-to-end test: the test exists as a test function in
/// its module, and that module runs the plugin (by its component constant, its config name or
/// its directory).
#[test]
fn every_plugin_has_a_named_test() {
    let all = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("all");
    let mut names: Vec<&str> = kaunter_tests::plugins::ALL.iter().map(|(name, _)| *name).collect();
    names.extend(["python-big-sales", "js-big-sales"]);
    for name in names {
        let Some((_, test)) = PLUGIN_TESTS.iter().find(|(plugin, _)| *plugin == name) else {
            panic!(
                "plugin `{name}` has no named end-to-end test: add one under tests/all/ and list it in PLUGIN_TESTS"
            );
        };
        let (module, function) = test.rsplit_once("::").unwrap();
        let file = all.join(format!("{}.rs", module.replace("::", "/")));
        let source = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{test}: {}: {e}", file.display()));
        let declared = source.find(&format!("fn {function}(")).is_some_and(|at| {
            let before = &source[..at];
            let attribute = before.rfind("#[").map(|a| &before[a..]).unwrap_or("");
            attribute.starts_with("#[test]") || attribute.starts_with("#[tokio::test")
        });
        assert!(
            declared,
            "{test}, named for `{name}`, is not a test function in {}",
            file.display()
        );
        let constant = name.replace('-', "_").to_uppercase();
        assert!(
            source.contains(&constant) || source.contains(&format!("\"{}", short(name))) || source.contains(name),
            "{}, where {test} is, never runs `{name}`",
            file.display()
        );
    }
}

/// Name the test config gives each plugin.
fn short(dir: &str) -> &str {
    match dir {
        "transform-sku-map" => "sku-map",
        "connector-webhook" => "webhook",
        "hostile-loop" => "spin",
        "hostile-memory" => "hog",
        "hostile-egress" => "ungranted-host",
        "hostile-recursion" => "deep",
        "hostile-output" => "flood-out",
        "hostile-trap" => "broken",
        "hostile-snoop" => "snoop",
        other => other,
    }
}
