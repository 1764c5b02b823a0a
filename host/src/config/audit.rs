//! `[audit]`: how the audit chain is sealed and anchored outside the database.
//!
//! Names only: the HMAC key and the checkpoint signing key are `[secrets]` entries (so their
//! bytes come from an environment variable or a file, never from the database), and the anchor
//! file is a path that should be on another volume or an append-only sink. This module checks the
//! section; turning it into keys is `crate::audit`'s job.

use super::{Config, FieldProblem};
use serde::Deserialize;
use std::path::PathBuf;

/// `[audit]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// The `[secrets]` entry holding the HMAC-SHA256 key that seals every audit record (at least
    /// 16 bytes; 32 random bytes recommended).
    pub key: Option<String>,
    /// `[secrets]` entries holding keys the chain was sealed with before `key` (after a
    /// rotation), so `kaunter audit verify` can check the older records.
    pub previous_keys: Vec<String>,
    /// The `[secrets]` entry holding the Ed25519 private key (its 32-byte seed; use the secret's
    /// `encoding = "hex"` or `"base64"`) that signs checkpoints.
    pub signing_key: Option<String>,
    /// Where signed checkpoints of the chain's head are appended, one JSON object a line. Keep it
    /// outside the data directory: another volume, or a file an append-only sink collects.
    pub anchor_file: Option<PathBuf>,
    /// How often to write a checkpoint when records were added (also at start, after every
    /// operator action, and at a clean shutdown).
    pub anchor_every_secs: u64,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            key: None,
            previous_keys: Vec::new(),
            signing_key: None,
            anchor_file: None,
            anchor_every_secs: 60,
        }
    }
}

impl AuditConfig {
    /// The secrets `[audit]` names, each with the field naming it.
    pub fn secret_names(&self) -> Vec<(&'static str, &str)> {
        let mut out: Vec<(&'static str, &str)> = Vec::new();
        if let Some(key) = &self.key {
            out.push(("key", key));
        }
        out.extend(self.previous_keys.iter().map(|k| ("previous_keys", k.as_str())));
        if let Some(key) = &self.signing_key {
            out.push(("signing_key", key));
        }
        out
    }

    /// Problems with `[audit]` in `config`.
    pub(super) fn problems(&self, config: &Config) -> Vec<FieldProblem> {
        let mut out = Vec::new();
        let mut add = |field: &str, message: String| {
            out.push(FieldProblem {
                field: format!("audit.{field}"),
                message,
            })
        };
        for (field, name) in self.secret_names() {
            match config.secrets.get(name) {
                None => add(
                    field,
                    format!(
                        "[audit] {field} names secret `{name}`, which is not defined; add `{name} = {{ file = \"/etc/kaunter/{name}\", encoding = \"hex\" }}` under [secrets]"
                    ),
                ),
                Some(secret) if !secret.destinations.is_empty() => add(
                    field,
                    format!(
                        "secret `{name}` is an audit key ([audit] {field}) and must never leave the host; remove its `for`"
                    ),
                ),
                Some(_) => {}
            }
            if let Some(plugin) = config.plugins.iter().find(|p| p.secrets.iter().any(|s| s == name)) {
                add(
                    field,
                    format!(
                        "plugin `{}` uses secret `{name}`, which is an audit key ([audit] {field}): a plugin could then compute the chain's seals or sign checkpoints; give the plugin a secret of its own",
                        plugin.name
                    ),
                );
            }
        }
        let names = self.secret_names();
        if let Some((field, name)) = names
            .iter()
            .enumerate()
            .find(|(i, (_, n))| names[..*i].iter().any(|(_, m)| m == n))
            .map(|(_, pair)| *pair)
        {
            add(
                field,
                format!(
                    "[audit] uses secret `{name}` twice; the chain key, earlier keys and the signing key are all different keys"
                ),
            );
        }
        match (&self.signing_key, &self.anchor_file) {
            (Some(_), None) => add(
                "anchor_file",
                "[audit] signing_key is set but anchor_file is not; add anchor_file = \"/path/on/another/volume/kaunter-anchors.jsonl\"".into(),
            ),
            (None, Some(_)) => add(
                "signing_key",
                "[audit] anchor_file is set but signing_key is not; checkpoints are signed: add signing_key = \"NAME\" naming an Ed25519 seed under [secrets]".into(),
            ),
            _ => {}
        }
        if !(1..=86_400).contains(&self.anchor_every_secs) {
            add(
                "anchor_every_secs",
                format!(
                    "[audit] anchor_every_secs = {} is out of range; write a checkpoint every 1 to 86400 seconds (60 is usual)",
                    self.anchor_every_secs
                ),
            );
        }
        out
    }
}
