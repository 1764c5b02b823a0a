//! The audit log: append-only, hash-chained records of who did what, when.
//!
//! Each record's hash covers its own fields and the previous record's hash, so editing, inserting
//! or deleting a record in the middle breaks every hash after it; [`verify`] names the first
//! record that does not check out. (Truncating the tail cannot be seen from inside the file: keep
//! the last hash `kaunter audit verify` prints somewhere else to detect that.)

use serde::Serialize;
use sha2::{Digest, Sha256};

/// The `prev_hash` of the first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Something to record.
#[derive(Debug, Clone)]
pub struct AuditEntry {
    /// Who: `host`, `api-key:NAME`, `plugin:NAME@VERSION`.
    pub actor: String,
    /// What: `host.start`, `plugin.load`, `dlq.replay`, `sink.resume`, `capability.denied`, ...
    pub action: String,
    /// What it was done to: a plugin, a sink, an event id.
    pub subject: String,
    /// Details, as JSON.
    pub detail: serde_json::Value,
}

impl AuditEntry {
    /// An entry with the given fields.
    pub fn new(actor: impl Into<String>, action: &str, subject: impl Into<String>, detail: serde_json::Value) -> Self {
        Self {
            actor: actor.into(),
            action: action.to_owned(),
            subject: subject.into(),
            detail,
        }
    }
}

/// A stored record.
#[derive(Debug, Clone, Serialize)]
pub struct AuditRecord {
    /// Position in the chain, from 1.
    pub seq: i64,
    /// When (ms since the epoch).
    pub at_ms: i64,
    /// Who.
    pub actor: String,
    /// What.
    pub action: String,
    /// To what.
    pub subject: String,
    /// Details (JSON text, exactly as hashed).
    pub detail: String,
    /// Hash of the previous record.
    pub prev_hash: String,
    /// Hash of this record.
    pub hash: String,
}

/// SHA-256 (hex) over the previous hash and every field, each length-prefixed so no two different
/// records can encode alike.
pub fn chain_hash(
    prev_hash: &str,
    seq: i64,
    at_ms: i64,
    actor: &str,
    action: &str,
    subject: &str,
    detail: &str,
) -> String {
    let mut h = Sha256::new();
    for part in [
        prev_hash,
        &seq.to_string(),
        &at_ms.to_string(),
        actor,
        action,
        subject,
        detail,
    ] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    crate::engine::hex(&h.finalize())
}

/// Where the chain breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("audit log broken at record #{seq}: {reason}")]
pub struct ChainBreak {
    /// The first record that does not check out.
    pub seq: i64,
    /// Why.
    pub reason: String,
}

/// Checks a chain read in `seq` order; returns the number of records and the last hash.
pub fn verify(records: impl IntoIterator<Item = AuditRecord>) -> Result<(usize, String), ChainBreak> {
    let mut prev = GENESIS.to_owned();
    let mut count = 0;
    for (expected_seq, r) in (1..).zip(records) {
        if r.seq != expected_seq {
            return Err(ChainBreak {
                seq: r.seq,
                reason: format!("expected record #{expected_seq} here (a record was deleted or inserted)"),
            });
        }
        if r.prev_hash != prev {
            return Err(ChainBreak {
                seq: r.seq,
                reason: "its prev_hash does not match the record before it".into(),
            });
        }
        let recomputed = chain_hash(&r.prev_hash, r.seq, r.at_ms, &r.actor, &r.action, &r.subject, &r.detail);
        if recomputed != r.hash {
            return Err(ChainBreak {
                seq: r.seq,
                reason: "its contents do not match its hash (the record was edited)".into(),
            });
        }
        prev = r.hash;
        count += 1;
    }
    Ok((count, prev))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: i64) -> Vec<AuditRecord> {
        let mut prev = GENESIS.to_owned();
        (1..=n)
            .map(|seq| {
                let detail = format!("{{\"n\":{seq}}}");
                let hash = chain_hash(&prev, seq, 1000 + seq, "host", "test", "x", &detail);
                let r = AuditRecord {
                    seq,
                    at_ms: 1000 + seq,
                    actor: "host".into(),
                    action: "test".into(),
                    subject: "x".into(),
                    detail,
                    prev_hash: prev.clone(),
                    hash: hash.clone(),
                };
                prev = hash;
                r
            })
            .collect()
    }

    #[test]
    fn an_intact_chain_verifies() {
        let (n, last) = verify(chain(5)).unwrap();
        assert_eq!(n, 5);
        assert_eq!(last, chain(5)[4].hash);
    }

    #[test]
    fn edits_deletions_and_insertions_are_found() {
        let mut edited = chain(5);
        edited[2].actor = "someone-else".into();
        assert_eq!(verify(edited).unwrap_err().seq, 3);
        let mut deleted = chain(5);
        deleted.remove(1);
        assert_eq!(verify(deleted).unwrap_err().seq, 3);
        let mut rehashed = chain(5);
        rehashed[1].detail = "{}".into();
        rehashed[1].hash = chain_hash(&rehashed[1].prev_hash, 2, rehashed[1].at_ms, "host", "test", "x", "{}");
        // Re-hashing the edited record moves the break to the next one.
        assert_eq!(verify(rehashed).unwrap_err().seq, 3);
    }
}
