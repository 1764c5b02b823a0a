//! Appending to the audit chain, and readying it when the store opens.
//!
//! Records are sealed with the store's [`ChainKey`] when it has one. On open, missing or altered
//! append-only triggers are restored and the restoration recorded; a key new to the chain (first
//! keying of a log, or a rotation) is recorded as an `audit.keyed` record sealed with it; and a
//! keyed chain opened without a key is refused, so the host never appends records an auditor would
//! have to call forged. This module never reads configuration.

use super::super::audit::{AuditEntry, AuditHead, ChainKey, GENESIS, KEYED_ACTION, Sealing, seal, sealing};
use super::super::schema::restore_audit_guards;
use super::super::{StoreError, StoreResult, now_ms};
use rusqlite::{Connection, OptionalExtension as _, params};

/// The last record: (seq, hash), or `None` for an empty log.
fn last_record(conn: &Connection) -> StoreResult<Option<(i64, String)>> {
    let last = conn
        .prepare_cached("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    // A log pruned to its last record goes on from the last record pruned.
    match last {
        Some(last) => Ok(Some(last)),
        None => super::read_audit_pruned(conn),
    }
}

/// Appends `entries`, sealed with `key` (or unkeyed without one); returns the new head.
pub(super) fn append(conn: &Connection, key: Option<&ChainKey>, entries: &[AuditEntry]) -> StoreResult<AuditHead> {
    let (mut seq, mut prev) = last_record(conn)?.unwrap_or((0, GENESIS.to_owned()));
    let mut operator_seq = 0;
    let now = now_ms();
    for e in entries {
        seq += 1;
        let detail = e.detail.to_string();
        let hash = seal(key, &prev, seq, now, &e.actor, &e.action, &e.subject, &detail);
        conn.prepare_cached(
            "INSERT INTO audit_log (seq, at_ms, actor, action, subject, detail, prev_hash, hash)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?
        .execute(params![seq, now, e.actor, e.action, e.subject, detail, prev, hash])?;
        if e.by_operator() {
            operator_seq = seq;
        }
        prev = hash;
    }
    Ok(AuditHead {
        seq,
        hash: prev,
        operator_seq,
    })
}

/// Readies the chain of a store being opened with `key`; `existed` says whether `audit_log`
/// was there before this open. Returns the head.
pub(super) fn prepare(conn: &mut Connection, key: Option<&ChainKey>, existed: bool) -> StoreResult<AuditHead> {
    let tx = conn.transaction()?;
    let last = last_record(&tx)?;
    let last_sealing = match &last {
        Some((seq, hash)) => Some(sealing(hash).ok_or_else(|| {
            StoreError::Corrupt(format!(
                "audit record #{seq}: its hash is neither SHA-256 nor hmac-sha256; run `kaunter audit verify`"
            ))
        })?),
        None => None,
    };
    if let (None, Some(Sealing::Keyed(id)), Some((seq, _))) = (key, last_sealing, &last) {
        return Err(StoreError::AuditKeyMissing {
            key_id: id.to_owned(),
            last: *seq,
        });
    }
    let mut entries = Vec::new();
    let restored = restore_audit_guards(&tx)?;
    if existed && !restored.is_empty() {
        let names: Vec<String> = restored
            .iter()
            .map(|(name, problem)| format!("{name}: {problem}"))
            .collect();
        tracing::warn!(triggers = ?names, "the audit log's append-only triggers were missing or altered; restored them");
        entries.push(AuditEntry::new(
            "host",
            "audit.guard.restored",
            "audit_log",
            serde_json::json!({ "triggers": restored.iter().map(|(name, problem)| serde_json::json!({ "name": name, "problem": problem })).collect::<Vec<_>>() }),
        ));
    }
    if let Some(key) = key {
        let previous = match (last_sealing, &last) {
            (Some(Sealing::Keyed(id)), _) if id == key.id() => None,
            (Some(Sealing::Keyed(id)), _) => Some(format!("hmac-sha256 key {id}")),
            (Some(Sealing::Unkeyed), Some((seq, _))) => Some(format!("unkeyed SHA-256 (records #1..#{seq})")),
            _ => Some("none (a new log)".to_owned()),
        };
        if let Some(previous) = previous {
            // Keying first, so the guard record (if any) is sealed with the key too.
            entries.insert(
                0,
                AuditEntry::new(
                    "host",
                    KEYED_ACTION,
                    "audit_log",
                    serde_json::json!({ "key_id": key.id(), "before": previous }),
                ),
            );
        }
    }
    let head = if entries.is_empty() {
        let (seq, hash) = last.unwrap_or((0, GENESIS.to_owned()));
        AuditHead {
            seq,
            hash,
            operator_seq: 0,
        }
    } else {
        append(&tx, key, &entries)?
    };
    tx.commit()?;
    Ok(head)
}

#[cfg(test)]
mod tests {
    use super::super::super::audit::{AuditRecord, verify};
    use super::super::super::{Store, StoreError};
    use super::super::SqliteStore;
    use super::*;
    use std::collections::BTreeSet;
    use std::path::Path;
    use std::time::Duration;

    fn open(dir: &Path, key: Option<&ChainKey>) -> Result<SqliteStore, StoreError> {
        SqliteStore::open_keyed(dir, Duration::from_micros(200), 64, key.cloned())
    }

    async fn record(store: &SqliteStore, actor: &str, action: &str) {
        store
            .audit(vec![AuditEntry::new(actor, action, "x", serde_json::json!({}))])
            .await
            .unwrap();
    }

    async fn records(store: &SqliteStore) -> Vec<AuditRecord> {
        store.audit_log(0, 1000).await.unwrap()
    }

    fn key(byte: u8) -> ChainKey {
        ChainKey::new(&[byte; 32]).unwrap()
    }

    #[tokio::test]
    async fn an_unkeyed_log_is_keyed_from_the_first_open_with_a_key_and_still_verifies() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path(), None).unwrap();
        record(&store, "host", "host.start").await;
        record(&store, "api-key:ops", "sink.pause").await;
        drop(store);
        let k = key(1);
        let store = open(dir.path(), Some(&k)).unwrap();
        record(&store, "host", "host.start").await;
        drop(store);
        // The same key again: nothing to record.
        let store = open(dir.path(), Some(&k)).unwrap();
        let all = records(&store).await;
        assert_eq!(all.len(), 4);
        assert_eq!(all[2].action, KEYED_ACTION);
        let detail: serde_json::Value = serde_json::from_str(&all[2].detail).unwrap();
        assert_eq!(detail["key_id"], k.id());
        assert_eq!(detail["before"], "unkeyed SHA-256 (records #1..#2)");
        let v = verify(all, std::slice::from_ref(&k), true, &BTreeSet::new())
            .result()
            .unwrap();
        assert_eq!(v.runs.len(), 2);
        assert_eq!((v.runs[0].from, v.runs[0].to, v.runs[1].from), (1, 2, 3));
    }

    #[tokio::test]
    async fn a_keyed_log_is_refused_without_its_key_and_a_new_key_is_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let (old, new) = (key(1), key(2));
        let store = open(dir.path(), Some(&old)).unwrap();
        record(&store, "host", "host.start").await;
        drop(store);
        let refused = open(dir.path(), None).err().unwrap();
        assert!(
            matches!(&refused, StoreError::AuditKeyMissing { key_id, last: 2 } if key_id == old.id()),
            "{refused}"
        );
        let store = open(dir.path(), Some(&new)).unwrap();
        let all = records(&store).await;
        assert_eq!(all[2].action, KEYED_ACTION);
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&all[2].detail).unwrap()["before"],
            format!("hmac-sha256 key {}", old.id())
        );
        assert!(
            verify(all.clone(), std::slice::from_ref(&new), true, &BTreeSet::new())
                .broken
                .is_some()
        );
        verify(all, &[new, old], true, &BTreeSet::new()).result().unwrap();
    }

    #[tokio::test]
    async fn dropped_guards_are_restored_and_recorded_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path(), None).unwrap();
        record(&store, "host", "host.start").await;
        assert_eq!(records(&store).await.len(), 1, "a fresh log records no restoration");
        drop(store);
        let conn = Connection::open(dir.path().join(super::super::DB_FILE)).unwrap();
        conn.execute_batch("DROP TRIGGER audit_log_no_delete").unwrap();
        drop(conn);
        let store = open(dir.path(), None).unwrap();
        let all = records(&store).await;
        assert_eq!(all[1].action, "audit.guard.restored");
        assert_eq!(
            all[1].detail,
            r#"{"triggers":[{"name":"audit_log_no_delete","problem":"missing"}]}"#
        );
    }

    #[tokio::test]
    async fn the_head_follows_commits_and_operator_actions() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path(), Some(&key(1))).unwrap();
        let heads = store.audit_head();
        assert_eq!(heads.borrow().seq, 1, "the audit.keyed record");
        record(&store, "api-key:ops", "sink.pause").await;
        record(&store, "plugin:x@1", "capability.denied").await;
        let head = heads.borrow().clone();
        let all = records(&store).await;
        assert_eq!((head.seq, head.operator_seq), (3, 2));
        assert_eq!(head.hash, all[2].hash);
    }
}
