//! End-to-end tests: real plugins compiled from `plugins/`, a real `kaunter` process on a real
//! SQLite file, real HTTP sinks. One binary, one module per area.

#![allow(
    clippy::disallowed_methods,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs
)]

mod audit;
mod audit_chain;
mod backlog;
mod credentials;
mod delivery;
mod disk;
mod echoes;
mod fsync;
mod emits;
mod harness;
mod https;
mod ingest;
mod languages;
mod lifecycle;
mod recovery;
mod sandbox;
mod server;
mod sources;
mod templates;
mod vendors;
mod wit;

/// Every plugin in `plugins/` is exercised by some test here.
#[test]
fn every_plugin_has_a_test() {
    let mut sources = String::new();
    let mut dirs = vec![std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("all")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            // The harness configures every plugin; a test module must actually use it.
            if path.is_dir() {
                dirs.push(path);
            } else if !(path.ends_with("harness.rs") || path.ends_with("all/main.rs")) {
                sources.push_str(&std::fs::read_to_string(path).unwrap());
            }
        }
    }
    for (name, _) in kaunter_tests::plugins::ALL {
        let constant = name.replace('-', "_").to_uppercase();
        let used = sources.contains(&format!("plugins::{constant}")) || sources.contains(&format!("\"{}", short(name)));
        assert!(used, "plugin `{name}` has no end-to-end test; add one under tests/all/");
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
