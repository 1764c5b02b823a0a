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

/// kaunter's repository root.
fn repo() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").canonicalize().unwrap()
}

/// Runs `program` in `dir`; returns stdout and stderr together, failing the test with both.
fn run_in(dir: &Path, program: &Path, args: &[&str], env: &[(&str, &Path)]) -> String {
    let mut command = Command::new(program);
    command.args(args).current_dir(dir);
    for (name, value) in env {
        command.env(name, value);
    }
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("{}: cannot run it ({e}); scripts/test installs it", program.display()));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "{} {args:?} in {} failed:\n{text}",
        program.display(),
        dir.display()
    );
    text
}

/// `kaunter plugin run` arguments for a connector template's component.
fn sandbox_args(wasm: &str) -> Vec<&str> {
    vec![
        "plugin",
        "run",
        wasm,
        "--event",
        "samples/sale.json",
        "--config",
        "config.json",
        "--allow",
        "POST http://erp.example/orders",
    ]
}

/// The connector template's component `{stem}.wasm`, with its manifest beside it, delivers the
/// sample sale in the sandbox, manifest sample first, with the idempotency key; returns what
/// `kaunter plugin run` printed.
fn runs_in_the_sandbox(project: &Path, stem: &str) -> String {
    std::fs::copy(
        project.join("kaunter-plugin.toml"),
        project.join(format!("{stem}.manifest.toml")),
    )
    .unwrap();
    let wasm = format!("{stem}.wasm");
    let ran = kaunter(project, &sandbox_args(&wasm));
    assert!(
        ran.contains("manifest sample: sample 0 (01JDEMO0SALE000000000000001): delivered"),
        "{ran}"
    );
    assert!(ran.contains("POST http://erp.example/orders → 200"), "{ran}");
    assert!(
        ran.contains("idempotency-key: 01JDEMO0SALE000000000000001:sandbox:"),
        "{ran}"
    );
    ran
}

#[test]
fn the_python_connector_template_passes_pytest_builds_and_delivers_in_the_sandbox() {
    let repo = repo();
    let sdk = repo.join("sdk");
    // The toolchain scripts/test installs: componentize-py and pytest, pinned.
    let bin = repo.join("plugins/python-big-sales/.venv/bin");
    let dir = tempfile::tempdir().unwrap();
    let created = kaunter(dir.path(), &["new", "connector", "--lang", "python", "py-hook"]);
    assert!(created.starts_with("created connector `py-hook`"), "{created}");
    let project = dir.path().join("py-hook");
    let wit = sdk.join("wit");
    let componentize = bin.join("componentize-py");
    run_in(
        &project,
        &componentize,
        &["-d", wit.to_str().unwrap(), "-w", "connector", "bindings", "."],
        &[],
    );
    let python_sdk = sdk.join("python");
    let tested = run_in(
        &project,
        &bin.join("python"),
        &["-m", "pytest", "-q", "-p", "no:cacheprovider"],
        &[("PYTHONPATH", &python_sdk)],
    );
    assert!(tested.contains("3 passed"), "{tested}");
    run_in(
        &project,
        &componentize,
        &[
            "-d",
            wit.to_str().unwrap(),
            "-w",
            "connector",
            "componentize",
            "app",
            "-p",
            ".",
            "-p",
            python_sdk.to_str().unwrap(),
            "-o",
            "py_hook.wasm",
        ],
        &[],
    );
    let ran = runs_in_the_sandbox(&project, "py_hook");
    assert!(ran.contains("\"order_id\":\"HK001-000123\""), "{ran}");
}

#[test]
fn the_javascript_connector_template_passes_node_test_builds_and_delivers_in_the_sandbox() {
    let repo = repo();
    let sdk = repo.join("sdk/js");
    assert!(
        sdk.join("node_modules/@bytecodealliance/componentize-js").exists(),
        "componentize-js is missing: run scripts/test (it runs npm ci in sdk/js)"
    );
    let dir = tempfile::tempdir().unwrap();
    let created = kaunter(dir.path(), &["new", "connector", "--lang", "js", "js-hook"]);
    assert!(created.starts_with("created connector `js-hook`"), "{created}");
    let project = dir.path().join("js-hook");
    // What `npm install` would give it, from the toolchain scripts/test installed (pinned to the
    // same versions as the template's package.json), without going to the registry again.
    let modules = project.join("node_modules");
    std::fs::create_dir(&modules).unwrap();
    for entry in std::fs::read_dir(sdk.join("node_modules")).unwrap() {
        let entry = entry.unwrap();
        std::os::unix::fs::symlink(entry.path(), modules.join(entry.file_name())).unwrap();
    }
    std::os::unix::fs::symlink(&sdk, modules.join("kaunter-sdk")).unwrap();
    let node = Path::new("node");
    let tested = run_in(&project, node, &["--test"], &[]);
    assert!(tested.contains("# pass 3") && tested.contains("# fail 0"), "{tested}");
    let built = run_in(&project, node, &["build.mjs"], &[]);
    assert!(built.contains("built js_hook.wasm"), "{built}");
    runs_in_the_sandbox(&project, "js_hook");
    // A template that is not a connector is not offered in JavaScript: the refusal says what to do.
    let refused = Command::new(env!("CARGO_BIN_EXE_kaunter-e2e"))
        .args(["new", "transform", "--lang", "js", "js-transform"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("Python and JavaScript templates exist for connectors"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
}
