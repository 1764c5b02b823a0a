//! The audit log: append-only, chained records of who did what, when.
//!
//! Each record's hash covers its own fields and the previous record's hash, so editing, inserting
//! or deleting a record in the middle breaks every hash after it; [`verify`] names the first
//! record that does not check out.
//!
//! A record is *sealed* one of two ways, told apart by the form of its `hash`:
//! - keyed: `hmac-sha256:{key id}:{hex}`, an HMAC-SHA256 under a [`ChainKey`] kept outside the
//!   database, so nobody without the key can rewrite a record, recompute the hashes after it, or
//!   append one;
//! - unkeyed: 64 hex digits of plain SHA-256, which anyone who can write the file can recompute
//!   (logs written before the host had a key, and hosts run without one).
//!
//! Once a chain is keyed it stays keyed: an unkeyed record after a keyed one is a forgery. Every
//! switch of key (first keying, rotation) is an `audit.keyed` record sealed with the new key.
//! Truncating the tail cannot be seen from inside the file; signed checkpoints kept elsewhere
//! (`crate::audit`) catch that. This module never reads configuration or files.

use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};

/// The `prev_hash` of the first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The action of the record that starts a run of records sealed with a new key.
pub const KEYED_ACTION: &str = "audit.keyed";

/// Prefix of a keyed record's hash.
const KEYED_PREFIX: &str = "hmac-sha256:";

/// Fewest key bytes accepted (32 random bytes are recommended).
pub const MIN_KEY_BYTES: usize = 16;

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

    /// Whether a person asked for it (an API key, an operator at the command line, a signal), as
    /// opposed to the host or a plugin: such records are worth a checkpoint at once.
    pub fn by_operator(&self) -> bool {
        ["api-key:", "operator:", "signal:"]
            .iter()
            .any(|p| self.actor.starts_with(p))
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
    /// Hash of this record: 64 hex digits (unkeyed) or `hmac-sha256:{key id}:{hex}` (keyed).
    pub hash: String,
}

/// The last record of the chain, as the writer last committed it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditHead {
    /// Its position (0 for an empty log).
    pub seq: i64,
    /// Its hash.
    pub hash: String,
    /// The position of the newest record an operator asked for (see [`AuditEntry::by_operator`]).
    pub operator_seq: i64,
}

/// The HMAC-SHA256 key that seals audit records. Its bytes never appear in `Debug` output.
#[derive(Clone)]
pub struct ChainKey {
    mac: Hmac<Sha256>,
    id: String,
}

impl std::fmt::Debug for ChainKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ChainKey({})", self.id)
    }
}

/// A key too short to seal the chain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an audit key needs at least {MIN_KEY_BYTES} bytes (32 random bytes are recommended); this one has {0}")]
pub struct ShortKey(pub usize);

impl ChainKey {
    /// A key from its bytes (at least [`MIN_KEY_BYTES`]).
    pub fn new(bytes: &[u8]) -> Result<ChainKey, ShortKey> {
        if bytes.len() < MIN_KEY_BYTES {
            return Err(ShortKey(bytes.len()));
        }
        let mac = <Hmac<Sha256> as Mac>::new_from_slice(bytes).map_err(|_| ShortKey(bytes.len()))?;
        let mut key = ChainKey { mac, id: String::new() };
        key.id = super::hex(&key.sum(&[b"kaunter audit key id"])[..4]);
        Ok(key)
    }

    /// A short name for the key (8 hex digits of an HMAC of a fixed text under it: it tells
    /// keys apart and reveals nothing about the key).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// A keyed digest (hex) of `data` under this key, for fingerprints that must not let a reader
    /// of the log guess what was hashed (a configuration entry holding an inline secret).
    pub fn digest(&self, label: &str, data: &[u8]) -> String {
        super::hex(&self.sum(&[label.as_bytes(), b"\0", data]))
    }

    fn sum(&self, parts: &[&[u8]]) -> Vec<u8> {
        let mut mac = self.mac.clone();
        for part in parts {
            mac.update(part);
        }
        mac.finalize().into_bytes().to_vec()
    }
}

/// The fields a record's hash covers, each length-prefixed so no two different records encode
/// alike.
fn encode(prev_hash: &str, seq: i64, at_ms: i64, actor: &str, action: &str, subject: &str, detail: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(128 + detail.len());
    for part in [
        prev_hash,
        &seq.to_string(),
        &at_ms.to_string(),
        actor,
        action,
        subject,
        detail,
    ] {
        out.extend_from_slice(&(part.len() as u64).to_be_bytes());
        out.extend_from_slice(part.as_bytes());
    }
    out
}

/// Unkeyed seal: SHA-256 (hex) over the previous hash and every field.
pub fn chain_hash(
    prev_hash: &str,
    seq: i64,
    at_ms: i64,
    actor: &str,
    action: &str,
    subject: &str,
    detail: &str,
) -> String {
    super::hex(&Sha256::digest(encode(
        prev_hash, seq, at_ms, actor, action, subject, detail,
    )))
}

/// Keyed seal: `hmac-sha256:{key id}:{hex}`, the HMAC-SHA256 under `key` of the key id and the
/// same encoding [`chain_hash`] hashes.
#[allow(clippy::too_many_arguments)]
pub fn chain_mac(
    key: &ChainKey,
    prev_hash: &str,
    seq: i64,
    at_ms: i64,
    actor: &str,
    action: &str,
    subject: &str,
    detail: &str,
) -> String {
    let body = encode(prev_hash, seq, at_ms, actor, action, subject, detail);
    let sum = key.sum(&[&(key.id.len() as u64).to_be_bytes(), key.id.as_bytes(), &body]);
    format!("{KEYED_PREFIX}{}:{}", key.id, super::hex(&sum))
}

/// Seals a record with `key`, or unkeyed without one.
#[allow(clippy::too_many_arguments)]
pub fn seal(
    key: Option<&ChainKey>,
    prev_hash: &str,
    seq: i64,
    at_ms: i64,
    actor: &str,
    action: &str,
    subject: &str,
    detail: &str,
) -> String {
    match key {
        Some(key) => chain_mac(key, prev_hash, seq, at_ms, actor, action, subject, detail),
        None => chain_hash(prev_hash, seq, at_ms, actor, action, subject, detail),
    }
}

/// How a stored hash says its record was sealed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sealing<'a> {
    /// Plain SHA-256.
    Unkeyed,
    /// HMAC-SHA256 under the key with this id.
    Keyed(&'a str),
}

/// Reads the form of a stored hash; `None` when it is neither form.
pub fn sealing(hash: &str) -> Option<Sealing<'_>> {
    let is_hex = |s: &str| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit());
    match hash.strip_prefix(KEYED_PREFIX) {
        Some(rest) => {
            let (id, sum) = rest.split_once(':')?;
            (id.len() == 8 && id.bytes().all(|b| b.is_ascii_hexdigit()) && is_hex(sum)).then_some(Sealing::Keyed(id))
        }
        None => is_hex(hash).then_some(Sealing::Unkeyed),
    }
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

/// A run of consecutive records sealed the same way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    /// First record.
    pub from: i64,
    /// Last record.
    pub to: i64,
    /// The key id, or `None` for unkeyed SHA-256.
    pub key_id: Option<String>,
}

/// What [`verify`] found: the chain up to its first break, and the break.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verified {
    /// Records.
    pub count: usize,
    /// The last record's hash ([`GENESIS`] for an empty log).
    pub last_hash: String,
    /// Runs of records by how they are sealed, oldest first.
    pub runs: Vec<Run>,
    /// The hashes of the records asked for in `at`, by position (before the break).
    pub hashes: BTreeMap<i64, String>,
    /// The first record that does not check out, if one does not.
    pub broken: Option<ChainBreak>,
}

impl Verified {
    /// The whole chain checked out, or where it breaks.
    pub fn result(self) -> Result<Verified, ChainBreak> {
        match self.broken {
            Some(broken) => Err(broken),
            None => Ok(self),
        }
    }

    /// Whether any record is keyed.
    pub fn keyed(&self) -> bool {
        self.runs.iter().any(|r| r.key_id.is_some())
    }
}

/// Checks a chain read in `seq` order with the given keys (the current one and any earlier
/// ones), keeping the hashes of the positions in `at`.
///
/// Stops at the first record that is out of place, does not match its seal, is sealed with a
/// key not given, is unkeyed after the chain was keyed, or switches key without an
/// [`KEYED_ACTION`] record. With `expect_keyed`, a non-empty chain without a keyed record fails
/// too: a host that has the key seals every record it writes.
pub fn verify(
    records: impl IntoIterator<Item = AuditRecord>,
    keys: &[ChainKey],
    expect_keyed: bool,
    at: &BTreeSet<i64>,
) -> Verified {
    verify_from(None, records, keys, expect_keyed, at)
}

/// As [`verify`], for a log pruned through record `start.0`, whose hash was `start.1`: the
/// records must go on from there (the first is `start.0 + 1`, sealed as record `start.0` was or
/// switching key with an [`KEYED_ACTION`] record).
pub fn verify_from(
    start: Option<(i64, &str)>,
    records: impl IntoIterator<Item = AuditRecord>,
    keys: &[ChainKey],
    expect_keyed: bool,
    at: &BTreeSet<i64>,
) -> Verified {
    let mut out = Verified {
        last_hash: start.map_or(GENESIS, |(_, hash)| hash).to_owned(),
        ..Verified::default()
    };
    if let Err(broken) = walk(
        start.map_or(0, |(seq, _)| seq),
        records,
        keys,
        expect_keyed,
        at,
        &mut out,
    ) {
        out.broken = Some(broken);
    }
    out
}

fn walk(
    start_seq: i64,
    records: impl IntoIterator<Item = AuditRecord>,
    keys: &[ChainKey],
    expect_keyed: bool,
    at: &BTreeSet<i64>,
    out: &mut Verified,
) -> Result<(), ChainBreak> {
    let mut last_seq = start_seq;
    // How the record before the first one was sealed (a pruned log goes on from it).
    let start_key: Option<Option<String>> = (start_seq > 0).then(|| match sealing(&out.last_hash) {
        Some(Sealing::Keyed(id)) => Some(id.to_owned()),
        _ => None,
    });
    for (expected_seq, r) in (start_seq + 1..).zip(records) {
        let broken = |reason: String| ChainBreak { seq: r.seq, reason };
        if r.seq != expected_seq {
            return Err(broken(format!(
                "expected record #{expected_seq} here (a record was deleted or inserted)"
            )));
        }
        if r.prev_hash != out.last_hash {
            return Err(broken("its prev_hash does not match the record before it".into()));
        }
        let sealed = sealing(&r.hash).ok_or_else(|| broken("its hash is neither SHA-256 nor hmac-sha256".into()))?;
        let previous = out
            .runs
            .last()
            .map(|run| run.key_id.as_deref())
            .or(start_key.as_ref().map(Option::as_deref));
        let recomputed = match sealed {
            Sealing::Unkeyed => {
                if let Some(Some(id)) = previous {
                    return Err(broken(format!(
                        "it is unkeyed, but the chain is keyed (key {id}) before it: it was written without the key"
                    )));
                }
                chain_hash(&r.prev_hash, r.seq, r.at_ms, &r.actor, &r.action, &r.subject, &r.detail)
            }
            Sealing::Keyed(id) => {
                let key = keys
                    .iter()
                    .find(|k| k.id == id)
                    .ok_or_else(|| broken(format!("it is sealed with audit key {id}, which was not given")))?;
                if previous != Some(Some(id)) && r.action != KEYED_ACTION {
                    return Err(broken(format!(
                        "it starts sealing with key {id} without an `{KEYED_ACTION}` record"
                    )));
                }
                chain_mac(
                    key,
                    &r.prev_hash,
                    r.seq,
                    r.at_ms,
                    &r.actor,
                    &r.action,
                    &r.subject,
                    &r.detail,
                )
            }
        };
        if recomputed != r.hash {
            return Err(broken(match sealed {
                Sealing::Unkeyed => "its contents do not match its hash (the record was edited)".into(),
                Sealing::Keyed(_) => {
                    "its contents do not match its HMAC (the record was edited, or written without the key)".into()
                }
            }));
        }
        let key_id = match sealed {
            Sealing::Unkeyed => None,
            Sealing::Keyed(id) => Some(id.to_owned()),
        };
        match out.runs.last_mut() {
            Some(run) if run.key_id == key_id => run.to = r.seq,
            _ => out.runs.push(Run {
                from: r.seq,
                to: r.seq,
                key_id,
            }),
        }
        if at.contains(&r.seq) {
            out.hashes.insert(r.seq, r.hash.clone());
        }
        last_seq = r.seq;
        out.last_hash = r.hash;
        out.count += 1;
    }
    if expect_keyed && out.count > 0 && !out.keyed() {
        return Err(ChainBreak {
            seq: last_seq,
            reason: format!(
                "a key was given but no record is keyed: a host with the key seals every record it writes (from an `{KEYED_ACTION}` record on), so these were written without it, or the keyed ones were replaced"
            ),
        });
    }
    Ok(())
}

/// Records a denied capability use of `plugin` (`name@version`) in the audit log (best effort: a
/// failing store is logged).
pub async fn audit_denial(
    store: &std::sync::Arc<dyn super::Store>,
    plugin: &str,
    event_id: &str,
    place: &str,
    reason: &str,
) {
    let entry = AuditEntry::new(
        format!("plugin:{plugin}"),
        "capability.denied",
        event_id,
        serde_json::json!({ "at": place, "attempted": reason }),
    );
    if let Err(e) = store.audit(vec![entry]).await {
        tracing::error!(error = %e, "cannot record a capability denial in the audit log");
    }
}

/// Records an OAuth credential refused to `plugin` (`name@version`) in the audit log: an operator
/// must re-authorize.
pub async fn audit_credential(store: &std::sync::Arc<dyn super::Store>, plugin: &str, event_id: &str, reason: &str) {
    let entry = AuditEntry::new(
        format!("plugin:{plugin}"),
        "credential.refused",
        event_id,
        serde_json::json!({ "reason": reason }),
    );
    if let Err(e) = store.audit(vec![entry]).await {
        tracing::error!(error = %e, "cannot record a refused credential in the audit log");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> ChainKey {
        ChainKey::new(&[byte; 32]).unwrap()
    }

    /// A chain of `n` records, unkeyed up to `keyed_from` (exclusive), then sealed with `k`
    /// starting with an `audit.keyed` record.
    fn chain(n: i64, keyed_from: Option<(i64, &ChainKey)>) -> Vec<AuditRecord> {
        let mut prev = GENESIS.to_owned();
        (1..=n)
            .map(|seq| {
                let key = keyed_from.filter(|(from, _)| seq >= *from).map(|(_, k)| k);
                let action = if keyed_from.is_some_and(|(from, _)| from == seq) {
                    KEYED_ACTION
                } else {
                    "test"
                };
                let detail = format!("{{\"n\":{seq}}}");
                let hash = seal(key, &prev, seq, 1000 + seq, "host", action, "x", &detail);
                let r = AuditRecord {
                    seq,
                    at_ms: 1000 + seq,
                    actor: "host".into(),
                    action: action.into(),
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

    /// Recomputes every seal from `from` on (what someone who can write the file does after an
    /// edit), with `key` or unkeyed.
    fn reseal(records: &mut [AuditRecord], from: usize, key: Option<&ChainKey>) {
        for i in from..records.len() {
            if i > 0 {
                records[i].prev_hash = records[i - 1].hash.clone();
            }
            let r = &records[i];
            records[i].hash = seal(
                key,
                &r.prev_hash,
                r.seq,
                r.at_ms,
                &r.actor,
                &r.action,
                &r.subject,
                &r.detail,
            );
        }
    }

    fn check(records: Vec<AuditRecord>, keys: &[ChainKey], expect_keyed: bool) -> Result<Verified, ChainBreak> {
        verify(records, keys, expect_keyed, &BTreeSet::new()).result()
    }

    /// Seals computed outside this code (Python's hashlib and hmac over the documented encoding:
    /// each field as a big-endian u64 length and its bytes), so a change to the format fails here.
    #[test]
    fn seals_match_fixed_vectors() {
        let fields = (
            "",
            1,
            1_700_000_000_000,
            "api-key:ops",
            "plugin.deploy",
            "webhook",
            r#"{"version":"abc"}"#,
        );
        let (prev, seq, at, actor, action, subject, detail) = fields;
        assert_eq!(
            chain_hash(prev, seq, at, actor, action, subject, detail),
            "c24aed3d07b06b33176c942bf3734a0d618f7877a5e091c520e2b7706849bc1c"
        );
        let k = key(7);
        assert_eq!(k.id(), "c12b878f");
        assert_eq!(
            seal(Some(&k), prev, seq, at, actor, action, subject, detail),
            "hmac-sha256:c12b878f:98618f17f3a7855e77c8f945471bdb24bcbd336555e8b22f63e4bf16a59bc315"
        );
    }

    /// Deleting the last records leaves a chain that is whole by itself: only a head kept
    /// elsewhere (a checkpoint in the anchor file) shows it, because the head moved back.
    #[test]
    fn deleting_the_last_records_moves_the_head_back() {
        let whole = chain(5, None);
        let head = check(whole.clone(), &[], false).unwrap().last_hash;
        let mut truncated = whole;
        truncated.truncate(3);
        let v = check(truncated.clone(), &[], false).unwrap();
        assert_eq!(v.count, 3);
        assert_ne!(v.last_hash, head);
        assert_eq!(v.last_hash, truncated[2].hash);
    }

    #[test]
    fn an_intact_chain_verifies() {
        let v = check(chain(5, None), &[], false).unwrap();
        assert_eq!(v.count, 5);
        assert_eq!(v.last_hash, chain(5, None)[4].hash);
        assert_eq!(
            v.runs,
            vec![Run {
                from: 1,
                to: 5,
                key_id: None
            }]
        );
    }

    #[test]
    fn edits_deletions_and_insertions_are_found() {
        let mut edited = chain(5, None);
        edited[2].actor = "someone-else".into();
        assert_eq!(check(edited, &[], false).unwrap_err().seq, 3);
        let mut deleted = chain(5, None);
        deleted.remove(1);
        assert_eq!(check(deleted, &[], false).unwrap_err().seq, 3);
        let mut rehashed = chain(5, None);
        rehashed[1].detail = "{}".into();
        rehashed[1].hash = chain_hash(&rehashed[1].prev_hash, 2, rehashed[1].at_ms, "host", "test", "x", "{}");
        // Re-hashing the edited record moves the break to the next one.
        assert_eq!(check(rehashed, &[], false).unwrap_err().seq, 3);
    }

    #[test]
    fn a_keyed_chain_after_unkeyed_records_verifies_in_two_runs() {
        let k = key(7);
        let v = check(chain(6, Some((4, &k))), std::slice::from_ref(&k), true).unwrap();
        assert_eq!(v.count, 6);
        assert_eq!(v.runs.len(), 2);
        assert_eq!(
            v.runs[0],
            Run {
                from: 1,
                to: 3,
                key_id: None
            }
        );
        assert_eq!(
            v.runs[1],
            Run {
                from: 4,
                to: 6,
                key_id: Some(k.id().to_owned())
            }
        );
        assert!(
            chain(6, Some((4, &k)))[5]
                .hash
                .starts_with(&format!("hmac-sha256:{}:", k.id()))
        );
    }

    #[test]
    fn recomputing_unkeyed_hashes_over_a_keyed_chain_fails() {
        let k = key(7);
        let mut rewritten = chain(6, Some((1, &k)));
        rewritten[2].actor = "mallory".into();
        reseal(&mut rewritten, 2, None);
        let broken = check(rewritten.clone(), std::slice::from_ref(&k), true).unwrap_err();
        assert_eq!(broken.seq, 3);
        assert!(broken.reason.contains("unkeyed, but the chain is keyed"), "{broken}");
        // Every record rewritten unkeyed: with the key given, that is no keyed chain at all.
        reseal(&mut rewritten, 0, None);
        let broken = check(rewritten, std::slice::from_ref(&k), true).unwrap_err();
        assert!(broken.reason.contains("no record is keyed"), "{broken}");
    }

    #[test]
    fn a_record_sealed_with_another_key_or_appended_without_one_fails() {
        let (k, other) = (key(7), key(8));
        let mut forged = chain(4, Some((1, &k)));
        forged[3].actor = "mallory".into();
        reseal(&mut forged, 3, Some(&other));
        let broken = check(forged, std::slice::from_ref(&k), true).unwrap_err();
        assert_eq!(broken.seq, 4);
        assert!(broken.reason.contains("which was not given"), "{broken}");
        // A guessed HMAC under the right key id.
        let mut guessed = chain(4, Some((1, &k)));
        guessed[3].hash = format!("hmac-sha256:{}:{}", k.id(), "ab".repeat(32));
        let broken = check(guessed, std::slice::from_ref(&k), true).unwrap_err();
        assert!(broken.reason.contains("do not match its HMAC"), "{broken}");
    }

    #[test]
    fn a_key_switch_needs_an_audit_keyed_record() {
        let (k, next) = (key(7), key(8));
        let mut rotated = chain(5, Some((1, &k)));
        reseal(&mut rotated, 3, Some(&next));
        let keys = [k.clone(), next.clone()];
        let broken = check(rotated.clone(), &keys, true).unwrap_err();
        assert_eq!(broken.seq, 4);
        assert!(broken.reason.contains("without an `audit.keyed` record"), "{broken}");
        rotated[3].action = KEYED_ACTION.into();
        reseal(&mut rotated, 3, Some(&next));
        let v = check(rotated, &keys, true).unwrap();
        assert_eq!(v.runs.len(), 2);
    }

    #[test]
    fn without_the_key_a_keyed_chain_cannot_be_checked() {
        let k = key(7);
        let broken = check(chain(3, Some((2, &k))), &[], false).unwrap_err();
        assert_eq!(broken.seq, 2);
        assert!(broken.reason.contains(&format!("audit key {}", k.id())), "{broken}");
    }

    #[test]
    fn keys_are_named_without_revealing_them_and_short_keys_are_refused() {
        assert_eq!(key(7).id().len(), 8);
        assert_ne!(key(7).id(), key(8).id());
        assert_eq!(format!("{:?}", key(7)), format!("ChainKey({})", key(7).id()));
        assert_eq!(ChainKey::new(&[1; 15]).unwrap_err(), ShortKey(15));
        assert_eq!(sealing("nope"), None);
        assert_eq!(sealing(GENESIS), Some(Sealing::Unkeyed));
    }

    #[test]
    fn hashes_of_asked_positions_are_kept() {
        let k = key(7);
        let records = chain(5, Some((1, &k)));
        let v = verify(records.clone(), std::slice::from_ref(&k), true, &BTreeSet::from([2, 5]));
        assert_eq!(v.hashes.get(&2), Some(&records[1].hash));
        assert_eq!(v.hashes.len(), 2);
        // Up to a break only.
        let mut edited = records.clone();
        edited[3].subject = "y".into();
        let v = verify(edited, std::slice::from_ref(&k), true, &BTreeSet::from([2, 5]));
        assert_eq!(v.broken.unwrap().seq, 4);
        assert_eq!(v.hashes.keys().collect::<Vec<_>>(), vec![&2]);
    }
}
