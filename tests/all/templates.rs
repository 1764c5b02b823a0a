//! `kaunter new`: each template is a project that passes its own tests natively, builds to a
//! component with one command, and runs in the sandbox with one more.

use std::path::Path;
use std::process::Command;

/// Runs cargo in `dir` with the plugin workspace's target dir (dependencies already built).
fn cargo(dir: &Path, args: &[&str]) -> String {
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/target");
    let output = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(args)
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", &target)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "cargo {args:?} in {} failed:\n{text}",
        dir.display()
    );
    text
}

fn kaunter(dir: &Path, args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_kaunter-e2e"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "kaunter {args:?} failed:\n{text}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    text
}

#[test]
fn new_projects_test_build_and_run_in_the_sandbox() {
    let dir = tempfile::tempdir().unwrap();
    let lock = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/Cargo.lock");
    for (kind, name, run_args, expect) in [
        (
            "transform",
            "big-sales",
            vec!["--config", "config.json"],
            "\"bigsale\": \"true\"",
        ),
        (
            "connector",
            "hello-hook",
            vec!["--config", "config.json", "--allow", "POST http://erp.example/orders"],
            "idempotency-key: 01JDEMO0SALE000000000000001:sandbox:",
        ),
        (
            "source",
            "vendor-hooks",
            vec![
                "--webhook",
                "samples/webhook.json",
                "--config",
                "config.json",
                "--secret",
                "vendor-signing=demo-secret",
            ],
            "\"type\": \"pos.sale.completed.v1\"",
        ),
    ] {
        let created = kaunter(dir.path(), &["new", kind, name]);
        assert!(created.starts_with(&format!("created {kind} `{name}`")), "{created}");
        let project = dir.path().join(name);
        // The plugin workspace's lockfile: the same dependency versions, already compiled.
        std::fs::copy(&lock, project.join("Cargo.lock")).unwrap();
        let tested = cargo(&project, &["test"]);
        assert!(tested.contains("test result: ok. 2 passed"), "{tested}");
        cargo(&project, &["build", "--release", "--target", "wasm32-wasip2"]);
        let wasm = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../plugins/target/wasm32-wasip2/release")
            .join(format!("{}.wasm", name.replace('-', "_")));
        let mut args = vec!["plugin", "run", wasm.to_str().unwrap()];
        if kind != "source" {
            args.extend(["--event", "samples/sale.json"]);
        }
        args.extend(run_args);
        let ran = kaunter(&project, &args);
        assert!(ran.contains(expect), "{ran}");
        if kind == "source" {
            // A wrong secret: the sandbox shows the refusal the vendor would get as a 401.
            let mut wrong = args.clone();
            *wrong.last_mut().unwrap() = "vendor-signing=another-secret";
            let refused = Command::new(env!("CARGO_BIN_EXE_kaunter-e2e"))
                .args(&wrong)
                .current_dir(&project)
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&refused.stdout);
            assert!(!refused.status.success());
            assert!(
                text.contains("failed (unauthorized): unauthorized: the signature does not match the body"),
                "{text}"
            );
        } else {
            assert!(ran.contains("manifest sample: sample 0"), "{ran}");
        }
    }
    let refused = Command::new(env!("CARGO_BIN_EXE_kaunter-e2e"))
        .args(["new", "connector", "Bad_Name"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("use lower-case letters, digits and dashes"));
}
