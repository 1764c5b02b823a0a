//! Secrets in the configuration: where a value comes from (`value`, `env`, `file`), how a
//! `[secrets]` entry's bytes are encoded, and reading them.

use serde::Deserialize;
use std::path::{Path, PathBuf};

/// A secret value: inline (demo only), from an environment variable, or from a file.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum SecretRef {
    /// The value itself. Fine for demos; use `env` or `file` in production.
    Value(String),
    /// Name of an environment variable holding the value.
    Env(String),
    /// Path of a file holding the value (trailing newline ignored).
    File(PathBuf),
}

/// A `[secrets]` entry: where the value comes from (`value`, `env` or `file`, exactly one), how
/// its text becomes the key bytes (`encoding`), and where, if anywhere, a plugin may send it
/// (`for`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(try_from = "NamedSecretFields")]
pub struct NamedSecret {
    /// Where the value comes from.
    pub source: SecretRef,
    /// How the value's text becomes key bytes.
    pub encoding: SecretEncoding,
    /// Destinations (grant syntax) whose requests may carry the secret as `$SECRET(name)` in
    /// their URL or headers. Empty: the secret is used only through `crypto` (HMACs) and never
    /// leaves the host.
    pub destinations: Vec<crate::net::HttpGrant>,
}

impl From<SecretRef> for NamedSecret {
    fn from(source: SecretRef) -> Self {
        NamedSecret {
            source,
            encoding: SecretEncoding::Auto,
            destinations: Vec::new(),
        }
    }
}

/// How a secret's text becomes the bytes HMACs are keyed with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecretEncoding {
    /// `whsec_<base64>` (Standard Webhooks, Svix) is base64-decoded after the prefix; anything else
    /// is used as its UTF-8 text.
    #[default]
    Auto,
    /// The UTF-8 text as written, prefix and all (Stripe's `whsec_…` endpoint secrets, Shopify
    /// client secrets, Square signature keys, DingTalk `SEC…` secrets).
    Text,
    /// Standard base64.
    Base64,
    /// Hexadecimal.
    Hex,
}

/// The fields of a `[secrets]` entry as written, before checking that exactly one source is set.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NamedSecretFields {
    value: Option<String>,
    env: Option<String>,
    file: Option<PathBuf>,
    #[serde(default)]
    encoding: SecretEncoding,
    #[serde(default, rename = "for")]
    destinations: Vec<crate::net::HttpGrant>,
}

impl TryFrom<NamedSecretFields> for NamedSecret {
    type Error = String;

    fn try_from(f: NamedSecretFields) -> Result<Self, String> {
        let source = match (f.value, f.env, f.file) {
            (Some(v), None, None) => SecretRef::Value(v),
            (None, Some(e), None) => SecretRef::Env(e),
            (None, None, Some(p)) => SecretRef::File(p),
            _ => {
                return Err(
                    "a secret takes exactly one of `value`, `env` or `file` (and optionally `encoding` and `for`)"
                        .into(),
                );
            }
        };
        Ok(NamedSecret {
            source,
            encoding: f.encoding,
            destinations: f.destinations,
        })
    }
}

impl NamedSecret {
    /// The key bytes: the value read from its source and decoded per `encoding`.
    pub fn bytes(&self, base_dir: &Path) -> Result<Vec<u8>, String> {
        let text = self.source.read(base_dir)?;
        decode_secret(&text, self.encoding)
    }
}

/// Turns a secret's text into key bytes per `encoding`.
pub fn decode_secret(text: &str, encoding: SecretEncoding) -> Result<Vec<u8>, String> {
    use base64::Engine as _;
    let b64 = |t: &str| {
        base64::engine::general_purpose::STANDARD
            .decode(t.trim())
            .map_err(|e| format!("the value is not base64 ({e}); set `encoding = \"text\"` to use it as written"))
    };
    match encoding {
        SecretEncoding::Auto => match text.strip_prefix("whsec_") {
            Some(rest) => b64(rest).map_err(|e| {
                format!("a `whsec_` secret is read as Standard Webhooks base64 after the prefix, but {e} (Stripe endpoint secrets need `encoding = \"text\"`)")
            }),
            None => Ok(text.as_bytes().to_vec()),
        },
        SecretEncoding::Text => Ok(text.as_bytes().to_vec()),
        SecretEncoding::Base64 => b64(text),
        SecretEncoding::Hex => {
            let t = text.trim();
            if !t.len().is_multiple_of(2) {
                return Err("the value is not hex (odd length)".into());
            }
            (0..t.len())
                .step_by(2)
                .map(|i| {
                    t.get(i..i + 2)
                        .and_then(|pair| u8::from_str_radix(pair, 16).ok())
                        .ok_or_else(|| format!("the value is not hex (at character {i})"))
                })
                .collect()
        }
    }
}

impl SecretRef {
    /// Reads the secret's value (from the environment or a file when so configured).
    pub fn read(&self, base_dir: &Path) -> Result<String, String> {
        match self {
            SecretRef::Value(v) => Ok(v.clone()),
            SecretRef::Env(var) => std::env::var(var)
                .map_err(|_| format!("environment variable `{var}` is not set; export it before starting kaunter")),
            SecretRef::File(path) => {
                let full = if path.is_absolute() {
                    path.clone()
                } else {
                    base_dir.join(path)
                };
                std::fs::read_to_string(&full)
                    .map(|s| s.trim_end_matches(['\n', '\r']).to_owned())
                    .map_err(|e| format!("cannot read secret file {}: {e}", full.display()))
            }
        }
    }
}
