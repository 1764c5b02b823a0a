//! `kaunter audit verify`: checks a log against the chain keys, the signed checkpoints and the
//! append-only triggers, and says exactly what was checked and what that cannot catch.

use super::anchor::{self, Checkpoint, PublicKey};
use crate::store::audit::{self, AuditRecord, ChainBreak, ChainKey, Verified};
use crate::store::sqlite::{audit_guard_problems, read_audit, read_audit_pruned};
use anyhow::Context as _;
use rusqlite::Connection;
use std::collections::BTreeSet;
use std::path::PathBuf;

/// What to verify with.
#[derive(Debug, Default)]
pub struct Options {
    /// Chain keys: the current one and any earlier ones. Giving any means the chain must be keyed.
    pub keys: Vec<ChainKey>,
    /// The anchor file and the public key its checkpoints must be signed with.
    pub anchor: Option<(PathBuf, PublicKey)>,
}

/// The outcome: problems (empty when the log checks out) and what was checked.
#[derive(Debug, Default)]
pub struct Report {
    /// Each problem found, one line each; the first chain break names the first bad record.
    pub problems: Vec<String>,
    /// What was checked and what it covers.
    pub notes: Vec<String>,
}

impl Report {
    /// Whether nothing is wrong.
    pub fn intact(&self) -> bool {
        self.problems.is_empty()
    }
}

fn all_records(conn: &Connection) -> anyhow::Result<Vec<AuditRecord>> {
    let mut records = Vec::new();
    loop {
        let after = records.last().map_or(0, |r: &AuditRecord| r.seq);
        let batch = read_audit(conn, after, 10_000).context("reading the audit log")?;
        if batch.is_empty() {
            return Ok(records);
        }
        records.extend(batch);
    }
}

/// Verifies the audit log in `conn`.
pub fn verify(conn: &Connection, options: &Options) -> anyhow::Result<Report> {
    let mut report = Report::default();

    // Checkpoints whose signature checks out, with their line; problems with the others. Read
    // before the log: a running host writes a checkpoint only after the records it holds are
    // committed, so every checkpoint read here holds records the log read next has.
    let mut checkpoints: Vec<(usize, Checkpoint)> = Vec::new();
    // Signed statements that the host pruned records #1..#N (`[retention] audit_max_age_secs`).
    let mut prunes: Vec<(usize, Checkpoint)> = Vec::new();
    if let Some((file, public)) = &options.anchor {
        let lines = anchor::read(file).with_context(|| format!("reading the anchor file {}", file.display()))?;
        if lines.is_empty() {
            report.problems.push(format!(
                "anchor file {} holds no checkpoint: a host configured with it writes one at every start; it was emptied, or is not this host's",
                file.display()
            ));
        }
        let mut previous = 0;
        for (line, parsed) in lines {
            let at = format!("checkpoint at line {line} of {}", file.display());
            match parsed.map_err(|e| e.to_string()).and_then(|c| match c.check(public) {
                Ok(()) => Ok(c),
                Err(e) => Err(e.to_string()),
            }) {
                Err(e) => report.problems.push(format!("{at}: {e}")),
                Ok(c) if c.pruned_through.is_some() => prunes.push((line, c)),
                Ok(c) if c.seq < previous || c.seq < 1 => report.problems.push(format!(
                    "{at}: it holds record #{}, before the checkpoint above it (#{previous}): lines were reordered or forged",
                    c.seq
                )),
                Ok(c) => {
                    previous = c.seq;
                    checkpoints.push((line, c));
                }
            }
        }
    }

    let records = all_records(conn)?;
    let last_seq = records.last().map_or(0, |r| r.seq);
    let start = pruned_start(conn, &records, &prunes, options, &mut report)?;
    let pruned_through = start.as_ref().map_or(0, |(seq, _)| *seq);
    let wanted: BTreeSet<i64> = checkpoints.iter().map(|(_, c)| c.seq).collect();
    let verified = audit::verify_from(
        start.as_ref().map(|(seq, hash)| (*seq, hash.as_str())),
        records,
        &options.keys,
        !options.keys.is_empty(),
        &wanted,
    );
    let mut checked_below = i64::MAX;
    if let Some(ChainBreak { seq, reason }) = &verified.broken {
        let hint = if reason.contains("was not given") {
            " (give it with --config, as [audit] key or one of previous_keys, or with --key-file)"
        } else {
            ""
        };
        report
            .problems
            .push(format!("audit log broken at record #{seq}: {reason}{hint}"));
        checked_below = *seq;
    }

    // Each checkpoint below the first break must name a record the log has, with the same hash.
    let mut anchored_at: Option<&(usize, Checkpoint)> = None;
    let mut below = 0;
    for entry @ (line, c) in &checkpoints {
        let at = || {
            format!(
                "checkpoint at line {line} of {} ({})",
                options
                    .anchor
                    .as_ref()
                    .map_or(String::new(), |(f, _)| f.display().to_string()),
                c.at
            )
        };
        if c.seq >= checked_below || c.seq > last_seq {
            break;
        }
        if c.seq <= pruned_through {
            // Pruned by the host: the chain goes on from the record it held.
            anchored_at = Some(entry);
            below = c.seq;
            continue;
        }
        if verified.hashes.get(&c.seq) != Some(&c.hash) {
            report.problems.push(format!(
                "audit log broken at record #{}: it does not match the {}: records #{}..#{} were rewritten, or replaced by a chain recomputed with the key",
                c.seq,
                at(),
                below + 1,
                c.seq
            ));
            break;
        }
        below = c.seq;
        anchored_at = Some(entry);
    }

    // Records a checkpoint holds that the log no longer has: told against the latest checkpoint,
    // which shows how far the tail was cut.
    if let (Some((line, c)), Some((file, _))) = (checkpoints.last(), &options.anchor)
        && c.seq > last_seq
        && last_seq < checked_below
    {
        report.problems.push(format!(
            "audit log truncated: the checkpoint at line {line} of {} ({}) holds record #{}, but the log ends at record #{last_seq}: records #{}..#{} were removed",
            file.display(),
            c.at,
            c.seq,
            last_seq + 1,
            c.seq
        ));
    }

    for (name, problem) in audit_guard_problems(conn).context("reading the audit log's triggers")? {
        let statement = if name.ends_with("update") { "UPDATE" } else { "DELETE" };
        report.problems.push(format!(
            "audit log guard {name} is {problem}: while it is, {statement} on audit_log is not refused"
        ));
    }

    if report.intact() {
        describe(&mut report, &verified, options, checkpoints.len(), anchored_at);
    }
    Ok(report)
}

/// Where the records left begin, when the log does not start at record #1: after the records the
/// host pruned, which a signed prune statement in the anchor file must cover (without an anchor
/// file, the log's own marker is taken, and the report says so). Records missing at the start that
/// nothing covers are a problem.
fn pruned_start(
    conn: &Connection,
    records: &[AuditRecord],
    prunes: &[(usize, Checkpoint)],
    options: &Options,
    report: &mut Report,
) -> anyhow::Result<Option<(i64, String)>> {
    let marker = read_audit_pruned(conn).context("reading how far the audit log was pruned")?;
    let missing = match (records.first(), &marker) {
        (Some(first), _) if first.seq > 1 => first.seq - 1,
        (None, Some((through, _))) => *through,
        _ => return Ok(None),
    };
    if let Some((file, _)) = &options.anchor {
        return Ok(match prunes.iter().find(|(_, c)| c.pruned_through == Some(missing)) {
            Some((line, c)) => {
                report.notes.push(format!(
                    "  records #1..#{missing} were pruned by the host ([retention] audit_max_age_secs): signed prune statement at line {line} of {} ({}); the chain goes on from record #{missing}'s hash",
                    file.display(),
                    c.at
                ));
                Some((missing, c.hash.clone()))
            }
            None => {
                report.problems.push(format!(
                    "audit log cut at the start: records #1..#{missing} are missing and no signed prune statement in {} covers them: they were deleted",
                    file.display()
                ));
                records.first().map(|r| (missing, r.prev_hash.clone()))
            }
        });
    }
    Ok(match marker {
        Some((through, hash)) if through == missing => {
            report.notes.push(format!(
                "  records #1..#{missing} were pruned, by the log's own record of it (unsigned: give the anchor file with --config or --anchor to check the host's signed prune statement)"
            ));
            Some((through, hash))
        }
        _ => {
            report.problems.push(format!(
                "audit log cut at the start: records #1..#{missing} are missing and the log records no prune that far: they were deleted"
            ));
            records.first().map(|r| (missing, r.prev_hash.clone()))
        }
    })
}

/// What an intact log's check covered, and what it cannot catch.
fn describe(
    report: &mut Report,
    v: &Verified,
    options: &Options,
    checkpoints: usize,
    anchored_at: Option<&(usize, Checkpoint)>,
) {
    let notes = &mut report.notes;
    notes.push(format!(
        "audit log intact: {} records; last hash {}",
        v.count, v.last_hash
    ));
    for run in &v.runs {
        notes.push(match &run.key_id {
            Some(id) => format!("  records #{}..#{}: HMAC-SHA256 with audit key {id}", run.from, run.to),
            None if v.keyed() => format!(
                "  records #{}..#{}: unkeyed SHA-256 (written before the chain was keyed; the first keyed record seals them)",
                run.from, run.to
            ),
            None => format!("  records #{}..#{}: unkeyed SHA-256", run.from, run.to),
        });
    }
    match (&options.anchor, anchored_at) {
        (Some((file, public)), Some((line, c))) => {
            notes.push(format!(
                "  anchored: {checkpoints} checkpoints in {} signed by Ed25519 key {} ({}); the latest (line {line}, {}) holds record #{}",
                file.display(),
                public.id(),
                public.hex(),
                c.at,
                c.seq
            ));
            let last = v.runs.last().map_or(0, |run| run.to);
            if c.seq < last {
                notes.push(format!(
                    "  records #{}..#{last} come after the latest checkpoint: {}",
                    c.seq + 1,
                    if v.keyed() {
                        "someone with the audit key could have rewritten or removed them"
                    } else {
                        "anyone who can write the database could have rewritten or removed them"
                    }
                ));
            }
        }
        _ => notes.push("  no checkpoints: a truncated tail (records removed from the end) cannot be detected".into()),
    }
    if !v.keyed() {
        notes.push(
            "  unkeyed: anyone who can write the database can rewrite records and recompute the hashes after them, or append records; only checkpoints catch rewrites of what they cover"
                .into(),
        );
    }
    if options.keys.is_empty() && options.anchor.is_none() {
        notes.push(
            "  the chain is unkeyed and unanchored: this check catches a record edited, inserted or deleted without recomputing the hashes after it, nothing more; configure [audit] key, signing_key and anchor_file (docs/audit.md)"
                .into(),
        );
    }
    notes.push(format!(
        "  append-only triggers present: {}",
        crate::store::sqlite::AUDIT_GUARDS
            .iter()
            .map(|(name, _)| *name)
            .collect::<Vec<_>>()
            .join(", ")
    ));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::anchor::SigningKey;
    use crate::store::Store as _;
    use crate::store::audit::AuditEntry;
    use crate::store::sqlite::{SqliteStore, open_read_only};
    use std::time::Duration;

    /// A log of `n` records sealed with `key`, with a checkpoint of record `anchored`.
    async fn log(dir: &std::path::Path, key: Option<ChainKey>, n: usize, anchored: i64) -> Options {
        let store = SqliteStore::open_keyed(dir, Duration::from_micros(200), 64, key.clone()).unwrap();
        for i in 0..n {
            store
                .audit(vec![AuditEntry::new(
                    "host",
                    "test",
                    i.to_string(),
                    serde_json::json!({}),
                )])
                .await
                .unwrap();
        }
        let signing = SigningKey::from_seed(&[9; 32]).unwrap();
        let record = store.audit_log(anchored - 1, 1).await.unwrap().remove(0);
        let file = dir.join("anchors.jsonl");
        anchor::append(&file, &signing.sign(record.seq, &record.hash, 1)).unwrap();
        Options {
            keys: key.into_iter().collect(),
            anchor: Some((file, signing.public())),
        }
    }

    #[tokio::test]
    async fn a_log_cut_below_its_checkpoint_names_the_records_removed() {
        let dir = tempfile::tempdir().unwrap();
        let options = log(dir.path(), Some(ChainKey::new(&[1; 32]).unwrap()), 5, 6).await;
        let conn = Connection::open(dir.path().join(crate::store::sqlite::DB_FILE)).unwrap();
        conn.execute_batch("DROP TRIGGER audit_log_no_delete; DELETE FROM audit_log WHERE seq > 3")
            .unwrap();
        let report = verify(&open_read_only(dir.path()).unwrap(), &options).unwrap();
        assert!(
            report.problems[0].starts_with("audit log truncated: the checkpoint at line 1 of"),
            "{report:?}"
        );
        assert!(
            report.problems[0].ends_with("holds record #6, but the log ends at record #3: records #4..#6 were removed"),
            "{report:?}"
        );
        assert_eq!(
            report.problems[1],
            "audit log guard audit_log_no_delete is missing (dropped): while it is, DELETE on audit_log is not refused"
        );
    }

    /// The host prunes the audit log through a checkpoint it signed, saying so first in the
    /// anchor file; verify then checks the rest from there. A prefix removed without such a
    /// statement is found, even with the log's own marker forged to match.
    #[tokio::test]
    async fn the_host_prunes_through_a_signed_checkpoint_and_only_a_signed_prune_verifies() {
        use std::sync::Arc;
        let dir = tempfile::tempdir().unwrap();
        let key = ChainKey::new(&[1; 32]).unwrap();
        let sqlite = SqliteStore::open_keyed(dir.path(), Duration::from_micros(200), 64, Some(key.clone())).unwrap();
        let heads = sqlite.audit_head();
        let store: Arc<dyn crate::store::Store> = Arc::new(sqlite);
        let record = |i: usize| vec![AuditEntry::new("host", "test", i.to_string(), serde_json::json!({}))];
        for i in 0..5 {
            store.audit(record(i)).await.unwrap();
        }
        let file = dir.path().join("anchors.jsonl");
        let anchorer = crate::audit::anchorer::Anchorer::start(
            SigningKey::from_seed(&[9; 32]).unwrap(),
            file.clone(),
            store.clone(),
            heads,
            Duration::from_secs(3600),
        )
        .await
        .unwrap();
        for i in 5..8 {
            store.audit(record(i)).await.unwrap();
        }
        // `audit.keyed` and five records: the checkpoint written at start holds #6.
        let pruned = anchorer.prune_audit(&store, i64::MAX).await.unwrap();
        assert_eq!(pruned, Some((6, 6)));
        assert_eq!(
            anchorer.prune_audit(&store, i64::MAX).await.unwrap(),
            None,
            "nothing more is checkpointed"
        );
        let anchored = Options {
            keys: vec![key.clone()],
            anchor: Some((file.clone(), SigningKey::from_seed(&[9; 32]).unwrap().public())),
        };
        let report = verify(&open_read_only(dir.path()).unwrap(), &anchored).unwrap();
        assert!(report.intact(), "{report:?}");
        assert!(
            report
                .notes
                .iter()
                .any(|n| n.contains("records #1..#6 were pruned by the host")),
            "{report:?}"
        );
        assert!(
            anchor::read(&file)
                .unwrap()
                .iter()
                .any(|(_, c)| c.as_ref().is_ok_and(|c| c.pruned_through == Some(6))),
            "no signed prune statement"
        );

        // Someone who can write the database removes #7 too, and moves the marker along.
        let conn = Connection::open(dir.path().join(crate::store::sqlite::DB_FILE)).unwrap();
        conn.execute_batch(
            "INSERT INTO audit_pruned SELECT seq, hash, 0 FROM audit_log WHERE seq = 7;
             DELETE FROM audit_log WHERE seq <= 7;",
        )
        .unwrap();
        let report = verify(&open_read_only(dir.path()).unwrap(), &anchored).unwrap();
        assert!(
            report.problems[0]
                .starts_with("audit log cut at the start: records #1..#7 are missing and no signed prune statement"),
            "{report:?}"
        );
        // Without the anchor file only the log's own marker can be followed, and the report says so.
        let unanchored = Options {
            keys: vec![key],
            anchor: None,
        };
        let report = verify(&open_read_only(dir.path()).unwrap(), &unanchored).unwrap();
        assert!(report.intact(), "{report:?}");
        assert!(
            report
                .notes
                .iter()
                .any(|n| n.contains("by the log's own record of it (unsigned")),
            "{report:?}"
        );
    }

    #[tokio::test]
    async fn an_intact_log_says_what_is_left_open() {
        let dir = tempfile::tempdir().unwrap();
        let options = log(dir.path(), Some(ChainKey::new(&[1; 32]).unwrap()), 5, 4).await;
        let report = verify(&open_read_only(dir.path()).unwrap(), &options).unwrap();
        assert!(report.intact(), "{report:?}");
        assert!(report.notes[0].starts_with("audit log intact: 6 records"), "{report:?}");
        assert!(
            report.notes.iter().any(|n| n
                == "  records #5..#6 come after the latest checkpoint: someone with the audit key could have rewritten or removed them"),
            "{report:?}"
        );
        // Unkeyed and unanchored: said plainly.
        let dir = tempfile::tempdir().unwrap();
        log(dir.path(), None, 2, 1).await;
        let report = verify(&open_read_only(dir.path()).unwrap(), &Options::default()).unwrap();
        assert!(report.intact(), "{report:?}");
        assert!(
            report
                .notes
                .iter()
                .any(|n| n.contains("the chain is unkeyed and unanchored")),
            "{report:?}"
        );
    }
}
