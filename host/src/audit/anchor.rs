//! Checkpoints: the chain's head (position and hash) signed with Ed25519, one JSON object a line
//! in an append-only anchor file.
//!
//! A checkpoint is worth what its signing key and its file are: keep the signing key out of the
//! database (a `[secrets]` entry) and the file on another volume or in an append-only sink. The
//! verifier trusts only the public key it is given, never one written in the file.

use base64::Engine as _;
use ed25519_dalek::Signer as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use std::io::Write as _;
use std::path::Path;

/// What a checkpoint's signature covers starts with this, so it cannot pass for anything else.
const DOMAIN: &[u8] = b"kaunter-audit-checkpoint-v1";

/// The Ed25519 private key that signs checkpoints. Its bytes never appear in `Debug` output.
pub struct SigningKey(ed25519_dalek::SigningKey);

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({})", self.public().id())
    }
}

impl SigningKey {
    /// The key from its 32-byte seed.
    pub fn from_seed(seed: &[u8]) -> Result<SigningKey, String> {
        let seed: [u8; 32] = seed.try_into().map_err(|_| {
            format!(
                "an Ed25519 signing key is a 32-byte seed, this is {} bytes (write it as 64 hex digits with encoding = \"hex\", or base64 with encoding = \"base64\")",
                seed.len()
            )
        })?;
        Ok(SigningKey(ed25519_dalek::SigningKey::from_bytes(&seed)))
    }

    /// Its public key.
    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.verifying_key())
    }

    /// A checkpoint of record `seq` with hash `hash`, made at `at_ms`.
    pub fn sign(&self, seq: i64, hash: &str, at_ms: i64) -> Checkpoint {
        self.sign_checkpoint(seq, hash, at_ms, None)
    }

    /// The host's statement that it prunes records #1..#`seq` (record `seq` has hash `hash`; the
    /// chain goes on from it), made at `at_ms`.
    pub fn sign_prune(&self, seq: i64, hash: &str, at_ms: i64) -> Checkpoint {
        self.sign_checkpoint(seq, hash, at_ms, Some(seq))
    }

    fn sign_checkpoint(&self, seq: i64, hash: &str, at_ms: i64, pruned_through: Option<i64>) -> Checkpoint {
        let mut checkpoint = Checkpoint {
            seq,
            hash: hash.to_owned(),
            at: rfc3339(at_ms),
            at_ms,
            key_id: self.public().id(),
            pruned_through,
            signature: String::new(),
        };
        let signature = self.0.sign(&checkpoint.message());
        checkpoint.signature = base64::engine::general_purpose::STANDARD.encode(signature.to_bytes());
        checkpoint
    }
}

/// An Ed25519 public key checkpoints are checked with.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey(ed25519_dalek::VerifyingKey);

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublicKey({})", self.hex())
    }
}

impl PublicKey {
    /// A public key from 64 hex digits or base64 of its 32 bytes.
    pub fn parse(text: &str) -> Result<PublicKey, String> {
        let text = text.trim();
        let bytes = if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            crate::config::decode_secret(text, crate::config::SecretEncoding::Hex)?
        } else {
            base64::engine::general_purpose::STANDARD
                .decode(text)
                .map_err(|_| "a public key is 64 hex digits or the base64 of 32 bytes".to_owned())?
        };
        let bytes: [u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| format!("a public key is 32 bytes, this is {}", bytes.len()))?;
        ed25519_dalek::VerifyingKey::from_bytes(&bytes)
            .map(PublicKey)
            .map_err(|e| format!("not an Ed25519 public key: {e}"))
    }

    /// The key as 64 hex digits (what `--public-key` takes).
    pub fn hex(&self) -> String {
        crate::store::hex(self.0.as_bytes())
    }

    /// A short name: the first 16 hex digits of the key's SHA-256.
    pub fn id(&self) -> String {
        crate::store::hex(&Sha256::digest(self.0.as_bytes())[..8])
    }
}

/// One signed checkpoint: record `seq` of the chain had hash `hash` at `at`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    /// The record's position.
    pub seq: i64,
    /// Its hash, as stored.
    pub hash: String,
    /// When the checkpoint was made (RFC 3339, UTC).
    pub at: String,
    /// The same, in ms since the epoch.
    pub at_ms: i64,
    /// [`PublicKey::id`] of the signing key.
    pub key_id: String,
    /// On a prune statement: the host pruned (or is about to prune) records #1..#this, which is
    /// `seq`. Absent on a plain checkpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pruned_through: Option<i64>,
    /// Ed25519 signature (base64) over every field above.
    pub signature: String,
}

/// Why a checkpoint does not check out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    /// Signed by a key other than the one given.
    #[error("it is signed by key {found}, not by the given public key {expected}")]
    OtherKey {
        /// The key id in the checkpoint.
        found: String,
        /// The given key's id.
        expected: String,
    },
    /// The signature does not verify.
    #[error("its signature does not verify (the checkpoint was forged or altered)")]
    BadSignature,
}

impl Checkpoint {
    /// The bytes the signature covers: a domain tag, then every field length-prefixed.
    fn message(&self) -> Vec<u8> {
        let mut out = DOMAIN.to_vec();
        let pruned = self.pruned_through.map(|p| format!("pruned-through:{p}"));
        // A plain checkpoint signs what it always did; a prune statement adds its field.
        for part in [
            Some(self.seq.to_string().as_str()),
            Some(self.hash.as_str()),
            Some(self.at.as_str()),
            Some(self.at_ms.to_string().as_str()),
            Some(self.key_id.as_str()),
            pruned.as_deref(),
        ]
        .into_iter()
        .flatten()
        {
            out.extend_from_slice(&(part.len() as u64).to_be_bytes());
            out.extend_from_slice(part.as_bytes());
        }
        out
    }

    /// Checks the signature with `key`.
    pub fn check(&self, key: &PublicKey) -> Result<(), CheckpointError> {
        if self.key_id != key.id() {
            return Err(CheckpointError::OtherKey {
                found: self.key_id.clone(),
                expected: key.id(),
            });
        }
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&self.signature)
            .map_err(|_| CheckpointError::BadSignature)?;
        let signature = ed25519_dalek::Signature::from_slice(&bytes).map_err(|_| CheckpointError::BadSignature)?;
        key.0
            .verify_strict(&self.message(), &signature)
            .map_err(|_| CheckpointError::BadSignature)
    }
}

/// One line of an anchor file: its number (from 1) and the checkpoint, or why it is not one.
pub type Line = (usize, Result<Checkpoint, String>);

/// Reads every line of an anchor file (an absent file has none).
pub fn read(path: &Path) -> std::io::Result<Vec<Line>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    Ok(text
        .lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| {
            (
                i + 1,
                serde_json::from_str::<Checkpoint>(line).map_err(|e| format!("not a checkpoint ({e})")),
            )
        })
        .collect())
}

/// Appends `checkpoint` as one line and syncs it to disk (creating the file, and its directory,
/// the first time).
pub fn append(path: &Path, checkpoint: &Checkpoint) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(checkpoint)?;
    line.push(b'\n');
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
        && !dir.exists()
    {
        std::fs::create_dir_all(dir)?;
    }
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
    file.write_all(&line)?;
    file.sync_data()
}

/// `at_ms` as RFC 3339 UTC with milliseconds.
pub fn rfc3339(at_ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(at_ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_else(|| at_ms.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> SigningKey {
        SigningKey::from_seed(&[byte; 32]).unwrap()
    }

    #[test]
    fn a_checkpoint_verifies_with_its_public_key_only() {
        let checkpoint = key(1).sign(42, "hmac-sha256:0badcafe:00", 1_700_000_000_000);
        assert_eq!(checkpoint.at, "2023-11-14T22:13:20.000Z");
        checkpoint.check(&key(1).public()).unwrap();
        assert!(matches!(
            checkpoint.check(&key(2).public()),
            Err(CheckpointError::OtherKey { .. })
        ));
        // A checkpoint signed by another key but naming ours.
        let mut forged = key(2).sign(42, "x", 1);
        forged.key_id = key(1).public().id();
        assert_eq!(forged.check(&key(1).public()), Err(CheckpointError::BadSignature));
    }

    #[test]
    fn every_field_is_signed() {
        let good = key(1).sign(42, "abc", 1000);
        let public = key(1).public();
        for tampered in [
            Checkpoint {
                seq: 43,
                ..good.clone()
            },
            Checkpoint {
                hash: "abd".into(),
                ..good.clone()
            },
            Checkpoint {
                at_ms: 1001,
                ..good.clone()
            },
            Checkpoint {
                at: "1970-01-01T00:00:01.001Z".into(),
                ..good.clone()
            },
        ] {
            assert_eq!(
                tampered.check(&public),
                Err(CheckpointError::BadSignature),
                "{tampered:?}"
            );
        }
    }

    #[test]
    fn keys_parse_from_hex_or_base64_and_seeds_must_be_32_bytes() {
        let public = key(3).public();
        assert_eq!(PublicKey::parse(&public.hex()).unwrap(), public);
        let b64 = base64::engine::general_purpose::STANDARD.encode(public.0.as_bytes());
        assert_eq!(PublicKey::parse(&b64).unwrap(), public);
        assert!(PublicKey::parse("abcd").is_err());
        assert!(SigningKey::from_seed(&[0; 31]).unwrap_err().contains("32-byte seed"));
        assert!(!format!("{:?}", key(3)).contains(&"03".repeat(32)));
    }

    #[test]
    fn lines_are_appended_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("anchors.jsonl");
        assert!(read(&path).unwrap().is_empty());
        let first = key(1).sign(1, "a", 1);
        append(&path, &first).unwrap();
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"garbage\n")
            .unwrap();
        let lines = read(&path).unwrap();
        assert_eq!(lines[0], (1, Ok(first)));
        assert_eq!(lines[1].0, 2);
        assert!(lines[1].1.as_ref().unwrap_err().starts_with("not a checkpoint"));
    }
}
