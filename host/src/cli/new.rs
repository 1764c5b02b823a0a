//! `kaunter new transform|connector|source NAME`: writes a plugin project that builds to a
//! component with one command and runs in the sandbox with one more — manifest (with a sample
//! event), a sample event file (and, for a source, a signed sample webhook), the plugin's code using `kaunter-sdk`, passing native unit tests, and a
//! README with the commands.

use clap::{Args, ValueEnum};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Arguments of `kaunter new`.
#[derive(Args)]
pub struct NewArgs {
    /// What to write.
    kind: Kind,
    /// The plugin's name (lower case, digits and dashes), also the directory name.
    name: String,
    /// Where to create the project (default: the current directory).
    #[arg(long, default_value = ".")]
    dir: PathBuf,
    /// Path of kaunter's `sdk/` directory (default: the one this binary was built from).
    #[arg(long)]
    sdk: Option<PathBuf>,
    /// The language: Rust (`kaunter-sdk`), Python (`sdk/python`, componentize-py) or
    /// JavaScript (`sdk/js`, componentize-js). Python and JavaScript have a connector template.
    #[arg(long, value_enum, default_value = "rust")]
    lang: Lang,
}

/// The language of a template.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Lang {
    /// Rust, with `kaunter-sdk`.
    Rust,
    /// Python, with `sdk/python` and componentize-py.
    Python,
    /// JavaScript, with `sdk/js` and componentize-js.
    Js,
}

/// The kind of plugin.
#[derive(Clone, Copy, ValueEnum)]
enum Kind {
    /// Reshapes events (world `transform`).
    Transform,
    /// Delivers events to a system (world `connector`).
    Connector,
    /// Turns a vendor's signed webhooks into events (world `source`).
    Source,
}

const CARGO: &str = include_str!("templates/Cargo.toml.tmpl");
const TRANSFORM: &str = include_str!("templates/transform.rs.tmpl");
const CONNECTOR: &str = include_str!("templates/connector.rs.tmpl");
const SOURCE: &str = include_str!("templates/source.rs.tmpl");
/// The secret the source template's sample webhook is signed with (a sandbox value).
const SOURCE_SAMPLE_SECRET: &str = "demo-secret";
const MANIFEST: &str = include_str!("templates/manifest.toml.tmpl");
const README: &str = include_str!("templates/README.md.tmpl");
const SAMPLE: &str = include_str!("../../../samples/sale.json");
/// The sample sale as the typed event a Python plugin receives, as plain data.
const PY_EVENT: &str = include_str!("templates/python/event.json");
const PY_APP: &str = include_str!("templates/python/app.py.tmpl");
const PY_TEST: &str = include_str!("templates/python/test_app.py.tmpl");
const PY_README: &str = include_str!("templates/python/README.md.tmpl");
const PY_REQUIREMENTS: &str = include_str!("templates/python/requirements.txt.tmpl");
/// The sample sale as the event a JavaScript plugin receives, as plain JSON.
const JS_EVENT: &str = include_str!("templates/js/event.json");
const JS_APP: &str = include_str!("templates/js/app.js.tmpl");
const JS_COMPONENT: &str = include_str!("templates/js/component.js.tmpl");
const JS_BUILD: &str = include_str!("templates/js/build.mjs.tmpl");
const JS_PACKAGE: &str = include_str!("templates/js/package.json.tmpl");
const JS_TEST: &str = include_str!("templates/js/app.test.js.tmpl");
const JS_README: &str = include_str!("templates/js/README.md.tmpl");

/// Writes the project.
pub fn run(args: NewArgs) -> anyhow::Result<ExitCode> {
    let name = &args.name;
    if name.is_empty()
        || !name.starts_with(|c: char| c.is_ascii_lowercase())
        || !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        anyhow::bail!(
            "plugin name {name:?}: use lower-case letters, digits and dashes, starting with a letter (e.g. erp-orders)"
        );
    }
    let sdk = match args.sdk {
        Some(path) => path,
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../sdk"),
    };
    let sdk = std::fs::canonicalize(&sdk).map_err(|e| {
        anyhow::anyhow!(
            "kaunter-sdk not found at {} ({e}); pass --sdk PATH/TO/kaunter/sdk",
            sdk.display()
        )
    })?;
    let root = args.dir.join(name);
    if root.exists() {
        anyhow::bail!("{} already exists; choose another name or --dir", root.display());
    }
    let sample: serde_json::Value = serde_json::from_str(SAMPLE)?;
    let (kind, code, description, requests, run_args, config_toml) = match args.kind {
        Kind::Transform => (
            "transform",
            TRANSFORM,
            "Marks sales whose total reaches a threshold.",
            "event_types = [\"pos.sale.*\"]\n\n[requests.config]\nthreshold_minor = \"sales at or over this total (minor units) get bigsale = true\"",
            "--event samples/sale.json --config config.json",
            "[plugins.config]\nthreshold_minor = 100000",
        ),
        Kind::Connector => (
            "connector",
            CONNECTOR,
            "POSTs each event as JSON to one URL with its idempotency key.",
            "# The URL is chosen by the operator: grant exactly the one in the config.\nhttp = [\"operator-chosen\"]\n# Retry-After may be an HTTP date, read against the clock.\nclock = true\nevent_types = [\"*\"]\n\n[requests.config]\nurl = \"where to POST (also granted in grants.http)\"\n\n[requests.limits]\n# The deadline covers every outbound request for one event, answers included. Unset, a host gives a\n# connector limits.http_timeout_ms (10 s) x max_http_calls, capped at 30 s. Size it from\n# `kaunter plugin run --live` (it prints the share of the deadline a call used) with room for a\n# slow vendor: a call that runs out is retried, and after max_attempts dead-lettered.\ndeadline_ms = 10000\nmax_http_calls = 2",
            "--event samples/sale.json --config config.json --allow \"POST http://erp.example/orders\"",
            "[plugins.config]\nurl = \"https://erp.example/orders\"\n[plugins.grants]\nhttp = [\"POST https://erp.example/orders\"]\nclock = true",
        ),
        Kind::Source => (
            "source",
            SOURCE,
            "Turns a vendor's signed webhooks (a POS event as JSON, HMAC-SHA256 in x-signature) into events.",
            "# The signing secret, named by the operator in the plugin's config.\nsecrets = [\"operator-chosen\"]\n# The types it produces; the operator grants them, and the sources its events carry.\nemits = [\"pos.sale.completed.v1\", \"pos.refund.completed.v1\"]\n\n[requests.config]\nsecret = \"name of the host secret the vendor signs with\"\nstore = \"store id the vendor's events belong to\"",
            "--webhook samples/webhook.json --config config.json --secret vendor-signing=demo-secret",
            "secrets = [\"vendor-signing\"]\n[plugins.config]\nsecret = \"vendor-signing\"\nstore = \"online\"\n[plugins.grants]\nemits = [\"pos.sale.completed.v1\", \"pos.refund.completed.v1\"]\nsources = [\"/t/vendor/s/online/p/{{name}}\"]   # the source its events carry (from `store`)\n# and in [secrets]: vendor-signing = { env = \"VENDOR_SIGNING_SECRET\", encoding = \"text\" }",
        ),
    };
    let config_toml = config_toml.replace("{{name}}", name);
    let fill = |template: &str| {
        template
            .replace("{{name}}", name)
            .replace("{{crate}}", &name.replace('-', "_"))
            .replace("{{kind}}", kind)
            .replace("{{description}}", description)
            .replace("{{sdk}}", &sdk.display().to_string())
            .replace("{{sample}}", &sample.to_string())
            .replace("{{requests}}", requests)
            .replace("{{run_args}}", run_args)
            .replace("{{config_toml}}", &config_toml)
    };
    let config_json = match args.kind {
        Kind::Transform => "{\"threshold_minor\": 5000}\n",
        Kind::Connector => "{\"url\": \"http://erp.example/orders\"}\n",
        Kind::Source => "{\"secret\": \"vendor-signing\", \"store\": \"online\"}\n",
    };
    if args.lang != Lang::Rust {
        if !matches!(args.kind, Kind::Connector) {
            anyhow::bail!(
                "Python and JavaScript templates exist for connectors; write a transform or source in Rust (`kaunter new {} {name}`), or start from plugins/python-big-sales or plugins/js-big-sales",
                kind
            );
        }
        let files = match args.lang {
            Lang::Python => vec![
                ("app.py", fill(PY_APP)),
                ("test_app.py", fill(PY_TEST)),
                ("README.md", fill(PY_README)),
                ("requirements.txt", PY_REQUIREMENTS.to_owned()),
                ("samples/event.json", PY_EVENT.to_owned()),
                (
                    ".gitignore",
                    "/.venv\n/wit_world\n/componentize_py_*\n/poll_loop.py\n/__pycache__\n*.wasm\n*.manifest.toml\n"
                        .into(),
                ),
            ],
            Lang::Js => js_files(&fill)?,
            Lang::Rust => Vec::new(),
        };
        std::fs::create_dir_all(root.join("samples"))?;
        for (file, text) in files {
            std::fs::write(root.join(file), text)?;
        }
        // The manifest travels beside the component, and the language's runtime needs memory.
        let manifest = fill(MANIFEST)
            .replace(
                "embedded in the component by `kaunter_sdk::manifest!`",
                "copy it beside the component as NAME.manifest.toml",
            )
            .replace(
                "[requests.limits]\n",
                "[requests.limits]\n# The component embeds its language's runtime.\nmemory_mib = 128\n",
            );
        std::fs::write(root.join("kaunter-plugin.toml"), manifest)?;
        std::fs::write(root.join("samples/sale.json"), SAMPLE)?;
        std::fs::write(root.join("config.json"), config_json)?;
        println!(
            "created {kind} `{name}` in {} ({})",
            root.display(),
            if args.lang == Lang::Python {
                "Python"
            } else {
                "JavaScript"
            }
        );
        println!(
            "  cd {}  # then follow README.md: install, test, build, run",
            root.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    std::fs::create_dir_all(root.join("src"))?;
    std::fs::create_dir_all(root.join("samples"))?;
    std::fs::write(root.join("Cargo.toml"), fill(CARGO))?;
    std::fs::write(root.join("src/lib.rs"), fill(code))?;
    std::fs::write(root.join("kaunter-plugin.toml"), fill(MANIFEST))?;
    std::fs::write(root.join("README.md"), fill(README))?;
    std::fs::write(root.join("samples/sale.json"), SAMPLE)?;
    std::fs::write(root.join("config.json"), config_json)?;
    if let Kind::Source = args.kind {
        std::fs::write(root.join("samples/webhook.json"), sample_webhook(name)?)?;
    }
    std::fs::write(root.join(".gitignore"), "/target\n")?;
    println!("created {kind} `{name}` in {}", root.display());
    println!("  cd {}", root.display());
    println!("  cargo test");
    println!("  cargo build --release --target wasm32-wasip2");
    println!(
        "  kaunter plugin run target/wasm32-wasip2/release/{}.wasm {run_args}",
        name.replace('-', "_")
    );
    Ok(ExitCode::SUCCESS)
}

/// A webhook as the vendor would send it: the sample sale, signed with the sandbox secret.
fn sample_webhook(name: &str) -> anyhow::Result<String> {
    let body = SAMPLE.trim_end();
    let signature = crate::engine::hmac_sha256(SOURCE_SAMPLE_SECRET.as_bytes(), body.as_bytes());
    let hex: String = signature.iter().map(|b| format!("{b:02x}")).collect();
    let request = serde_json::json!({
        "method": "POST",
        "path": format!("/v1/webhooks/{name}"),
        "headers": { "content-type": "application/json", "x-signature": format!("sha256={hex}") },
        "body": body,
    });
    Ok(format!("{}\n", serde_json::to_string_pretty(&request)?))
}

/// The JavaScript connector template's files.
fn js_files(fill: &dyn Fn(&str) -> String) -> anyhow::Result<Vec<(&'static str, String)>> {
    Ok(vec![
        ("app.js", fill(JS_APP)),
        ("component.js", fill(JS_COMPONENT)),
        ("build.mjs", fill(JS_BUILD)),
        ("package.json", fill(JS_PACKAGE)),
        ("app.test.js", fill(JS_TEST)),
        ("README.md", fill(JS_README)),
        ("samples/event.json", JS_EVENT.to_owned()),
        (".gitignore", "/node_modules\n/dist\n*.wasm\n*.manifest.toml\n".into()),
    ])
}
