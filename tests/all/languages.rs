//! Any language: the same `big-sales` transform written in Rust, Python (componentize-py) and
//! JavaScript (componentize-js), each built from `plugins/` by this test with its own toolchain
//! (installed, pinned, by `scripts/test`), loaded by the same host and held to the same test.

use crate::harness::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn plugins_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins")
}

fn run(what: &str, command: &mut Command) {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run it ({e}); scripts/test installs the toolchains"));
    assert!(
        output.status.success(),
        "{what} failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Builds the Python plugin into `out`, with its manifest beside it.
fn build_python(out: &Path) -> PathBuf {
    let dir = plugins_dir().join("python-big-sales");
    let tool = dir.join(".venv/bin/componentize-py");
    assert!(
        tool.exists(),
        "{} is missing: run scripts/test (it installs componentize-py)",
        tool.display()
    );
    let wasm = out.join("python_big_sales.wasm");
    run(
        "componentize-py",
        Command::new(&tool)
            .args(["-d", "../../wit", "-w", "transform", "componentize", "app", "-o"])
            .arg(&wasm)
            .current_dir(&dir),
    );
    std::fs::copy(dir.join("kaunter-plugin.toml"), wasm.with_extension("manifest.toml")).unwrap();
    wasm
}

/// Builds the JavaScript plugin into `out`, with its manifest beside it.
fn build_javascript(out: &Path) -> PathBuf {
    let dir = plugins_dir().join("js-big-sales");
    assert!(
        dir.join("node_modules/@bytecodealliance/componentize-js").exists(),
        "componentize-js is missing: run scripts/test (it runs npm ci in plugins/js-big-sales)"
    );
    let wasm = out.join("js_big_sales.wasm");
    run(
        "node build.mjs",
        Command::new("node")
            .arg("build.mjs")
            .arg(&wasm)
            .arg("../../wit")
            .current_dir(&dir),
    );
    std::fs::copy(dir.join("kaunter-plugin.toml"), wasm.with_extension("manifest.toml")).unwrap();
    wasm
}

/// The same test for every build: a big sale is tagged, a small one is not, both are delivered.
async fn big_sales_are_tagged(component: &Path) {
    let sink = Sink::start().await;
    let mut o = ConfigOptions::new(&sink.url);
    o.extra = format!(
        "[[plugins]]\nname = \"big-sales\"\nkind = \"transform\"\npath = {component:?}\n[plugins.config]\nthreshold_minor = 5000\n[plugins.limits]\nmemory_mib = 128\ndeadline_ms = 5000\n"
    );
    o.routes =
        "[[routes]]\nname = \"sales\"\ntypes = [\"pos.sale.*\"]\ntransforms = [\"big-sales\"]\nsinks = [\"erp\"]\n"
            .into();
    let host = Host::start(&config(&o));
    let big = sale("big-1", "hk-001", "o-1", &[("4891234500017", 2, 3990)]);
    let small = sale("small-1", "hk-001", "o-2", &[("4891234500017", 1, 990)]);
    assert_eq!(host.post_json(&Value::Array(vec![big, small])).await.0, 202);
    wait_for("both sales at the sink", 60, || async {
        (sink.accepted_ids().len() == 2).then_some(())
    })
    .await;
    let big = &sink.requests_for("big-1")[0].json();
    let small = &sink.requests_for("small-1")[0].json();
    assert_eq!(big["bigsale"], "true", "{} did not tag {big}", component.display());
    assert!(
        small.get("bigsale").is_none(),
        "{} tagged a small sale",
        component.display()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_transform_in_rust_python_and_javascript_passes_the_same_test() {
    let out = tempfile::tempdir().unwrap();
    big_sales_are_tagged(Path::new(kaunter_tests::plugins::TRANSFORM_BIG_SALES)).await;
    big_sales_are_tagged(&build_python(out.path())).await;
    big_sales_are_tagged(&build_javascript(out.path())).await;
}
