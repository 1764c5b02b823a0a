//! The audit chain's protection outside the database: the HMAC key that seals every record, and
//! signed checkpoints that pin the chain's head somewhere the database's writer cannot reach.
//!
//! [`AuditSetup`] turns `[audit]` into keys. [`anchor`] is the checkpoint format (Ed25519 over
//! the head's position and hash) and the append-only anchor file; [`anchorer`] keeps writing
//! checkpoints while the host runs; [`verify`] checks a log against the keys, the checkpoints
//! and the append-only triggers (what `kaunter audit verify` prints). Records themselves are
//! written and sealed by the store (`store::audit`); this module writes to the database only
//! through the store, and never holds key bytes anywhere but in the key types.

pub mod anchor;
pub mod anchorer;
pub mod verify;

use crate::config::Config;
use crate::store::audit::{ChainKey, ShortKey};
use anchor::SigningKey;
use std::path::PathBuf;
use std::time::Duration;

/// `[audit]` read into keys.
#[derive(Debug)]
pub struct AuditSetup {
    /// The key new records are sealed with.
    pub key: Option<ChainKey>,
    /// Keys older records were sealed with.
    pub previous_keys: Vec<ChainKey>,
    /// Checkpoint signing key and anchor file.
    pub anchor: Option<(SigningKey, PathBuf)>,
    /// How often to write a checkpoint.
    pub every: Duration,
}

/// A key named in `[audit]` that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The secret could not be read or decoded.
    #[error("[audit] {field}: secret `{name}`: {reason}")]
    Secret {
        /// `key`, `previous_keys` or `signing_key`.
        field: &'static str,
        /// The secret's name.
        name: String,
        /// What went wrong.
        reason: String,
    },
    /// The chain key is too short.
    #[error("[audit] {field}: secret `{name}`: {source}")]
    ShortKey {
        /// `key` or `previous_keys`.
        field: &'static str,
        /// The secret's name.
        name: String,
        /// The length problem.
        source: ShortKey,
    },
}

impl AuditSetup {
    /// Reads the keys `[audit]` names from `[secrets]`.
    pub fn from_config(config: &Config) -> Result<AuditSetup, SetupError> {
        let audit = &config.audit;
        let bytes = |field: &'static str, name: &str| -> Result<Vec<u8>, SetupError> {
            let secret = config.secrets.get(name).ok_or_else(|| SetupError::Secret {
                field,
                name: name.to_owned(),
                reason: "not defined under [secrets]".into(),
            })?;
            secret.bytes(&config.base_dir).map_err(|reason| SetupError::Secret {
                field,
                name: name.to_owned(),
                reason,
            })
        };
        let chain_key = |field: &'static str, name: &str| -> Result<ChainKey, SetupError> {
            ChainKey::new(&bytes(field, name)?).map_err(|source| SetupError::ShortKey {
                field,
                name: name.to_owned(),
                source,
            })
        };
        let key = audit.key.as_deref().map(|name| chain_key("key", name)).transpose()?;
        let previous_keys = audit
            .previous_keys
            .iter()
            .map(|name| chain_key("previous_keys", name))
            .collect::<Result<_, _>>()?;
        let anchor = match (&audit.signing_key, &audit.anchor_file) {
            (Some(name), Some(file)) => {
                let signing =
                    SigningKey::from_seed(&bytes("signing_key", name)?).map_err(|reason| SetupError::Secret {
                        field: "signing_key",
                        name: name.clone(),
                        reason,
                    })?;
                Some((signing, config.resolve(file)))
            }
            _ => None,
        };
        Ok(AuditSetup {
            key,
            previous_keys,
            anchor,
            every: Duration::from_secs(audit.anchor_every_secs.max(1)),
        })
    }

    /// Every chain key, the current one first.
    pub fn keys(&self) -> Vec<ChainKey> {
        self.key.iter().chain(&self.previous_keys).cloned().collect()
    }
}
