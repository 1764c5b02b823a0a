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
