//! `kaunter audit log|verify`: read the chained audit log straight from a data directory,
//! read-only, with or without a running host; `verify` checks it with the chain key and the
//! signed checkpoints, from `--config` or given one by one.

use crate::audit::AuditSetup;
use crate::audit::anchor::PublicKey;
use crate::audit::verify::{self, Options};
use crate::config::{Config, SecretEncoding, decode_secret};
use crate::store::audit::{AuditRecord, ChainKey};
use crate::store::sqlite::{open_read_only, read_audit};
use anyhow::Context as _;
use clap::{Subcommand, ValueEnum};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// `kaunter audit …`.
#[derive(Subcommand)]
pub enum AuditCommand {
    /// Check the chain: every record against its seal (HMAC with the audit key), every checkpoint
    /// in the anchor file against its signature and the log, and the append-only triggers. Names
    /// the first record that was edited, inserted, deleted, forged or cut off; exit status 1 then.
    Verify {
        /// Data directory holding kaunter.db (default: the config's server.data_dir, else
        /// kaunter-data).
        #[arg(long)]
        data: Option<PathBuf>,
        /// Take the audit keys, signing key and anchor file from this configuration's [audit].
        #[arg(long)]
        config: Option<PathBuf>,
        /// A file holding a chain key (repeat for keys used before a rotation).
        #[arg(long)]
        key_file: Vec<PathBuf>,
        /// How the key files' text becomes key bytes.
        #[arg(long, value_enum, default_value_t = KeyEncoding::Text)]
        key_encoding: KeyEncoding,
        /// The anchor file of signed checkpoints.
        #[arg(long)]
        anchor: Option<PathBuf>,
        /// The Ed25519 public key the checkpoints must be signed with (64 hex digits or base64).
        #[arg(long)]
        public_key: Option<String>,
    },
    /// Print the audit log, oldest first.
    Log {
        /// Data directory holding kaunter.db.
        #[arg(long, default_value = "kaunter-data")]
        data: PathBuf,
        /// One JSON object per line instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// How a key file's text becomes key bytes (as a secret's `encoding`).
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum KeyEncoding {
    /// The UTF-8 text as written (trailing newline ignored).
    Text,
    /// Standard base64.
    Base64,
    /// Hexadecimal.
    Hex,
}

fn all_records(data: &Path) -> anyhow::Result<Vec<AuditRecord>> {
    let conn = open_read_only(data)?;
    let mut records = Vec::new();
    loop {
        let batch = read_audit(&conn, records.last().map(|r: &AuditRecord| r.seq).unwrap_or(0), 10_000)?;
        if batch.is_empty() {
            return Ok(records);
        }
        records.extend(batch);
    }
}

/// Runs an audit subcommand.
pub fn run(command: AuditCommand) -> anyhow::Result<ExitCode> {
    match command {
        AuditCommand::Verify {
            data,
            config,
            key_file,
            key_encoding,
            anchor,
            public_key,
        } => {
            let config = config.as_deref().map(Config::load).transpose()?;
            let data = match (data, &config) {
                (Some(data), _) => data,
                (None, Some(config)) => config.resolve(&config.server.data_dir),
                (None, None) => PathBuf::from("kaunter-data"),
            };
            let options = options(config.as_ref(), &key_file, key_encoding, anchor, public_key)?;
            let conn = open_read_only(&data)?;
            let report = verify::verify(&conn, &options)?;
            for line in report.problems.iter().chain(&report.notes) {
                println!("{line}");
            }
            Ok(if report.intact() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        AuditCommand::Log { data, json } => {
            for r in all_records(&data)? {
                if json {
                    println!("{}", serde_json::to_string(&r)?);
                } else {
                    let at = crate::store::rfc3339(Some(r.at_ms));
                    println!(
                        "#{:<5} {} {:<22} {:<18} {}  {}",
                        r.seq,
                        at.as_str().unwrap_or(""),
                        r.actor,
                        r.action,
                        r.subject,
                        r.detail
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// What to verify with: `[audit]` of `config`, with each flag given taking the place of what it
/// names.
fn options(
    config: Option<&Config>,
    key_files: &[PathBuf],
    encoding: KeyEncoding,
    anchor: Option<PathBuf>,
    public_key: Option<String>,
) -> anyhow::Result<Options> {
    let setup = config
        .map(AuditSetup::from_config)
        .transpose()
        .context("reading the [audit] keys")?;
    let keys = if key_files.is_empty() {
        setup.as_ref().map(AuditSetup::keys).unwrap_or_default()
    } else {
        let encoding = match encoding {
            KeyEncoding::Text => SecretEncoding::Text,
            KeyEncoding::Base64 => SecretEncoding::Base64,
            KeyEncoding::Hex => SecretEncoding::Hex,
        };
        key_files
            .iter()
            .map(|file| {
                let text = std::fs::read_to_string(file)
                    .with_context(|| format!("reading the key file {}", file.display()))?;
                let bytes = decode_secret(text.trim_end_matches(['\n', '\r']), encoding)
                    .map_err(anyhow::Error::msg)
                    .with_context(|| format!("decoding the key file {}", file.display()))?;
                ChainKey::new(&bytes).with_context(|| format!("the key file {}", file.display()))
            })
            .collect::<anyhow::Result<_>>()?
    };
    let configured = setup.as_ref().and_then(|s| s.anchor.as_ref());
    let public = match public_key {
        Some(text) => Some(
            PublicKey::parse(&text)
                .map_err(anyhow::Error::msg)
                .context("--public-key")?,
        ),
        None => configured.map(|(key, _)| key.public()),
    };
    let file = anchor.or_else(|| configured.map(|(_, file)| file.clone()));
    let anchor = match (file, public) {
        (Some(file), Some(public)) => Some((file, public)),
        (Some(_), None) => anyhow::bail!(
            "--anchor needs the public key its checkpoints are signed with: pass --public-key, or --config with [audit] signing_key"
        ),
        (None, Some(_)) => {
            anyhow::bail!("--public-key needs the anchor file: pass --anchor, or --config with [audit] anchor_file")
        }
        (None, None) => None,
    };
    Ok(Options { keys, anchor })
}
