//! The audit chain against someone who can write the database: keyed seals, signed checkpoints
//! in an anchor file, the append-only triggers, and what `kaunter audit verify` says about each.
//! Tampering happens the way an intruder would do it: on the SQLite file, with the host down.

use crate::harness::*;
use kaunter::store::audit::{ChainKey, chain_hash, chain_mac};
use std::path::PathBuf;
use std::process::Command;

/// The chain key's bytes (kept in a file, hex) and the checkpoint signing seed.
const CHAIN_KEY: [u8; 32] = [0x5a; 32];
const SIGNING_SEED: [u8; 32] = [0x3c; 32];

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Where the key file and the anchor file live: a directory apart from the host's data.
struct Outside {
    dir: tempfile::TempDir,
}

impl Outside {
    fn new() -> Outside {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("audit.key"), format!("{}\n", hex(&CHAIN_KEY))).unwrap();
        Outside { dir }
    }

    fn key_file(&self) -> PathBuf {
        self.dir.path().join("audit.key")
    }

    fn anchor(&self) -> PathBuf {
        self.dir.path().join("anchors.jsonl")
    }

    /// `[audit]` (with its two secrets), checkpointing every `every` seconds.
    fn section(&self, every: u64) -> String {
        format!(
            "\n[secrets.audit-chain]\nfile = {key:?}\nencoding = \"hex\"\n\n[secrets.audit-signing]\nvalue = \"{seed}\"\nencoding = \"hex\"\n\n[audit]\nkey = \"audit-chain\"\nsigning_key = \"audit-signing\"\nanchor_file = {anchor:?}\nanchor_every_secs = {every}\n",
            key = self.key_file(),
            seed = hex(&SIGNING_SEED),
            anchor = self.anchor(),
        )
    }

    /// Checkpoints in the anchor file, as JSON.
    fn checkpoints(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.anchor())
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

fn public_key() -> String {
    kaunter::audit::anchor::SigningKey::from_seed(&SIGNING_SEED)
        .unwrap()
        .public()
        .hex()
}

/// A host with `[audit]` and an ungranted-egress plugin on stores `nosy-*`, whose refusals are
/// audit records no operator asked for.
fn keyed_host(outside: &Outside, every: u64) -> Host {
    let sink_url = "http://127.0.0.1:9/hooks";
    let mut options = ConfigOptions::new(sink_url);
    options.extra = format!(
        "\n[[plugins]]\nname = \"nosy\"\nkind = \"transform\"\npath = {path:?}\n[plugins.config]\ntarget = \"GET http://example.com/\"\n[plugins.grants]\nhttp = [\"POST http://127.0.0.1:9/x\"]\n{audit}",
        path = kaunter_tests::plugins::HOSTILE_EGRESS,
        audit = outside.section(every),
    );
    options.routes.push_str(
        "\n[[routes]]\nname = \"nosy\"\ntypes = [\"pos.*\"]\nstores = [\"nosy-*\"]\ntransforms = [\"nosy\"]\nsinks = [\"erp\"]\n",
    );
    Host::start(&config(&options))
}

fn data(host: &Host) -> PathBuf {
    host.dir.path().join("data")
}

/// `kaunter audit verify --data … ARGS`: (passed, what it printed).
fn verify(host: &Host, args: &[&str]) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_kaunter-e2e"))
        .args(["audit", "verify", "--data", data(host).to_str().unwrap()])
        .args(args)
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), said)
}

/// Verify with the host's own configuration.
fn verify_with_config(host: &Host) -> (bool, String) {
    let config = host.dir.path().join("kaunter.toml");
    verify(host, &["--config", config.to_str().unwrap()])
}

fn open_db(host: &Host) -> rusqlite::Connection {
    rusqlite::Connection::open(data(host).join("kaunter.db")).unwrap()
}

/// Waits until the anchor file holds a checkpoint of record `seq` or later.
async fn wait_for_checkpoint(outside: &Outside, seq: i64) -> serde_json::Value {
    wait_for(&format!("a checkpoint of record #{seq}"), 30, || async {
        outside
            .checkpoints()
            .into_iter()
            .last()
            .filter(|c| c["seq"].as_i64().unwrap() >= seq)
    })
    .await
}

/// Re-seals records `from..` as an intruder would after editing one: each `prev_hash` the hash
/// before it, each hash recomputed with `key` (HMAC) or without (plain SHA-256).
fn reseal(db: &rusqlite::Connection, from: i64, key: Option<&ChainKey>) {
    db.execute_batch("DROP TRIGGER IF EXISTS audit_log_no_update").unwrap();
    let rows: Vec<(i64, i64, String, String, String, String)> = db
        .prepare("SELECT seq, at_ms, actor, action, subject, detail FROM audit_log WHERE seq >= ?1 ORDER BY seq")
        .unwrap()
        .query_map([from], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let mut prev: String = db
        .query_row("SELECT hash FROM audit_log WHERE seq = ?1", [from - 1], |r| r.get(0))
        .unwrap_or_else(|_| kaunter::store::audit::GENESIS.to_owned());
    for (seq, at_ms, actor, action, subject, detail) in rows {
        let hash = match key {
            Some(key) => chain_mac(key, &prev, seq, at_ms, &actor, &action, &subject, &detail),
            None => chain_hash(&prev, seq, at_ms, &actor, &action, &subject, &detail),
        };
        db.execute(
            "UPDATE audit_log SET prev_hash = ?2, hash = ?3 WHERE seq = ?1",
            rusqlite::params![seq, prev, hash],
        )
        .unwrap();
        prev = hash;
    }
    // The intruder puts the guard back, so the triggers look untouched.
    db.execute_batch(
        "CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END",
    )
    .unwrap();
}

fn head(db: &rusqlite::Connection) -> (i64, String) {
    db.query_row("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1", [], |r| {
        Ok((r.get(0)?, r.get(1)?))
    })
    .unwrap()
}

/// Starts a keyed host, has an operator pause and resume a sink (each checkpointed at once),
/// and stops it hard; returns the host and the last checkpointed position.
async fn keyed_log(outside: &Outside) -> (Host, i64) {
    let mut host = keyed_host(outside, 3600);
    host.cli(&["sink", "pause", "erp"]);
    host.cli(&["sink", "resume", "erp"]);
    let records = host.audit_records();
    let last = records.last().unwrap();
    assert_eq!(last["action"], "sink.resume");
    let seq = last["seq"].as_i64().unwrap();
    let checkpoint = wait_for_checkpoint(outside, seq).await;
    assert_eq!(checkpoint["hash"], last["hash"]);
    host.kill();
    (host, seq)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_keyed_and_anchored_log_verifies_with_the_config_or_with_the_keys_alone() {
    let outside = Outside::new();
    let (host, anchored) = keyed_log(&outside).await;
    let records = host.audit_records();
    assert_eq!(records[0]["action"], "audit.keyed");
    assert!(
        records
            .iter()
            .all(|r| r["hash"].as_str().unwrap().starts_with("hmac-sha256:"))
    );

    let (passed, said) = verify_with_config(&host);
    assert!(passed, "{said}");
    assert!(
        said.starts_with(&format!("audit log intact: {} records", records.len())),
        "{said}"
    );
    let key_id = ChainKey::new(&CHAIN_KEY).unwrap().id().to_owned();
    assert!(
        said.contains(&format!("records #1..#{anchored}: HMAC-SHA256 with audit key {key_id}")),
        "{said}"
    );
    assert!(said.contains(&format!("holds record #{anchored}")), "{said}");
    assert!(said.contains(&public_key()), "{said}");
    assert!(
        said.contains("append-only triggers present: audit_log_no_update, audit_log_no_delete"),
        "{said}"
    );

    // An auditor with the key file, the anchor file and the public key only.
    let (passed, said) = verify(
        &host,
        &[
            "--key-file",
            outside.key_file().to_str().unwrap(),
            "--key-encoding",
            "hex",
            "--anchor",
            outside.anchor().to_str().unwrap(),
            "--public-key",
            &public_key(),
        ],
    );
    assert!(passed, "{said}");
    // Without the key there is nothing to check the seals with.
    let (passed, said) = verify(&host, &[]);
    assert!(!passed);
    assert!(
        said.contains(&format!(
            "audit log broken at record #1: it is sealed with audit key {key_id}, which was not given"
        )),
        "{said}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_record_rewritten_with_recomputed_sha256_hashes_fails_verify() {
    let outside = Outside::new();
    let (host, _) = keyed_log(&outside).await;
    let db = open_db(&host);
    db.execute_batch("DROP TRIGGER audit_log_no_update; UPDATE audit_log SET actor = 'mallory' WHERE seq = 2")
        .unwrap();
    reseal(&db, 2, None);
    drop(db);
    let (passed, said) = verify_with_config(&host);
    assert!(!passed, "{said}");
    assert!(
        said.contains("audit log broken at record #2: it is unkeyed, but the chain is keyed"),
        "{said}"
    );
    // Rewriting every record unkeyed leaves no keyed chain at all, and the checkpoints disagree.
    let db = open_db(&host);
    reseal(&db, 1, None);
    drop(db);
    let (passed, said) = verify_with_config(&host);
    assert!(!passed, "{said}");
    assert!(said.contains("a key was given but no record is keyed"), "{said}");
    assert!(said.contains("it does not match the checkpoint at line 1"), "{said}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_record_appended_without_the_key_fails_verify() {
    let outside = Outside::new();
    let (host, _) = keyed_log(&outside).await;
    let db = open_db(&host);
    let (seq, prev) = head(&db);
    let forged = (seq + 1, prev.clone(), "api-key:ops", "sink.resume", "erp", "{}");
    for (hash, what) in [
        (
            chain_hash(&prev, forged.0, 1, forged.2, forged.3, forged.4, forged.5),
            "unkeyed",
        ),
        (
            chain_mac(
                &ChainKey::new(&[0x77; 32]).unwrap(),
                &prev,
                forged.0,
                1,
                forged.2,
                forged.3,
                forged.4,
                forged.5,
            ),
            "another key",
        ),
    ] {
        db.execute(
            "INSERT INTO audit_log (seq, at_ms, actor, action, subject, detail, prev_hash, hash) VALUES (?1, 1, ?2, ?3, ?4, ?5, ?6, ?7)",
            rusqlite::params![forged.0, forged.2, forged.3, forged.4, forged.5, forged.1, hash],
        )
        .unwrap();
        let (passed, said) = verify_with_config(&host);
        assert!(!passed, "{what}: {said}");
        assert!(
            said.contains(&format!("audit log broken at record #{}: ", seq + 1)),
            "{what}: {said}"
        );
        db.execute_batch("DROP TRIGGER audit_log_no_delete").unwrap();
        db.execute("DELETE FROM audit_log WHERE seq = ?1", [seq + 1]).unwrap();
        db.execute_batch(
            "CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END",
        )
        .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tail_truncated_below_the_last_checkpoint_fails_verify() {
    let outside = Outside::new();
    let (host, anchored) = keyed_log(&outside).await;
    let db = open_db(&host);
    // The intruder removes the operator's last two actions and puts the guard back.
    db.execute_batch("DROP TRIGGER audit_log_no_delete").unwrap();
    db.execute("DELETE FROM audit_log WHERE seq > ?1", [anchored - 2])
        .unwrap();
    db.execute_batch(
        "CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END",
    )
    .unwrap();
    drop(db);
    let (passed, said) = verify_with_config(&host);
    assert!(!passed, "{said}");
    let line = outside.checkpoints().len();
    let mut host = host;
    // The next start notices at once, and records it.
    host.restart();
    let problem = host
        .audit_records()
        .into_iter()
        .find(|r| r["action"] == "audit.anchor.problem")
        .unwrap();
    assert!(
        problem["detail"].as_str().unwrap().contains(&format!(
            "the latest checkpoint holds record #{anchored}, which is not in the log"
        )),
        "{problem}"
    );
    host.kill();
    assert!(
        said.contains(&format!(
            "audit log truncated: the checkpoint at line {line} of {}",
            outside.anchor().display()
        )),
        "{said}"
    );
    assert!(
        said.contains(&format!(
            "holds record #{anchored}, but the log ends at record #{}: records #{}..#{anchored} were removed",
            anchored - 2,
            anchored - 1
        )),
        "{said}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_key_holder_cannot_rewrite_records_below_the_last_checkpoint() {
    let outside = Outside::new();
    let (host, _) = keyed_log(&outside).await;
    // Record #3 (a plugin load) is well below the last checkpoint; the intruder has the chain key
    // but not the signing key.
    let db = open_db(&host);
    db.execute_batch("DROP TRIGGER audit_log_no_update; UPDATE audit_log SET detail = '{}' WHERE seq = 3")
        .unwrap();
    reseal(&db, 3, Some(&ChainKey::new(&CHAIN_KEY).unwrap()));
    drop(db);
    let (passed, said) = verify_with_config(&host);
    assert!(!passed, "{said}");
    let checkpoints = outside.checkpoints();
    let first = checkpoints
        .iter()
        .position(|c| c["seq"].as_i64().unwrap() >= 3)
        .unwrap();
    let seq = checkpoints[first]["seq"].as_i64().unwrap();
    let before = if first == 0 {
        0
    } else {
        checkpoints[first - 1]["seq"].as_i64().unwrap()
    };
    assert!(
        said.contains(&format!(
            "audit log broken at record #{seq}: it does not match the checkpoint at line {}",
            first + 1
        )),
        "{said}"
    );
    assert!(
        said.contains(&format!(
            "records #{}..#{seq} were rewritten, or replaced by a chain recomputed with the key",
            before + 1
        )),
        "{said}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn records_after_the_last_checkpoint_rewritten_with_the_key_pass_verify() {
    // The stated limit: whoever holds the chain key can rewrite what no checkpoint covers yet.
    let outside = Outside::new();
    let mut host = keyed_host(&outside, 3600);
    let anchored = wait_for_checkpoint(&outside, 1).await["seq"].as_i64().unwrap();
    host.post_json(&sale("nosy-1", "nosy-1", "N-1", &[("1", 1, 100)])).await;
    let denial = wait_for("the plugin's refused request in the audit log", 30, || async {
        host.audit_records()
            .into_iter()
            .find(|r| r["action"] == "capability.denied")
    })
    .await;
    let seq = denial["seq"].as_i64().unwrap();
    assert!(seq > anchored);
    host.kill();
    assert_eq!(
        outside.checkpoints().last().unwrap()["seq"].as_i64().unwrap(),
        anchored,
        "a plugin's record is not checkpointed at once"
    );
    let db = open_db(&host);
    db.execute_batch("DROP TRIGGER audit_log_no_update").unwrap();
    db.execute(
        "UPDATE audit_log SET subject = 'nothing-happened' WHERE seq = ?1",
        [seq],
    )
    .unwrap();
    reseal(&db, seq, Some(&ChainKey::new(&CHAIN_KEY).unwrap()));
    let (last, _) = head(&db);
    drop(db);
    let (passed, said) = verify_with_config(&host);
    assert!(passed, "{said}");
    assert!(
        said.contains(&format!(
            "records #{}..#{last} come after the latest checkpoint: someone with the audit key could have rewritten or removed them",
            anchored + 1
        )),
        "{said}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_forged_checkpoint_fails_verify() {
    let outside = Outside::new();
    let (host, anchored) = keyed_log(&outside).await;
    // A line signed with another key but naming ours, holding a record the intruder wrote.
    let intruder = kaunter::audit::anchor::SigningKey::from_seed(&[0x99; 32]).unwrap();
    let mut forged = intruder.sign(anchored, "hmac-sha256:00000000:00", 1);
    forged.key_id = outside.checkpoints()[0]["key_id"].as_str().unwrap().to_owned();
    let mut text = std::fs::read_to_string(outside.anchor()).unwrap();
    text.push_str(&format!("{}\n", serde_json::to_string(&forged).unwrap()));
    std::fs::write(outside.anchor(), text).unwrap();
    let (passed, said) = verify_with_config(&host);
    assert!(!passed, "{said}");
    assert!(
        said.contains(&format!(
            "checkpoint at line {} of {}: its signature does not verify",
            outside.checkpoints().len(),
            outside.anchor().display()
        )),
        "{said}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dropped_trigger_fails_verify_naming_it() {
    let sink = Sink::start().await;
    let mut host = Host::start(&config(&ConfigOptions::new(&sink.url)));
    host.kill();
    open_db(&host)
        .execute_batch("DROP TRIGGER audit_log_no_delete")
        .unwrap();
    let (passed, said) = verify(&host, &[]);
    assert!(!passed, "{said}");
    assert!(
        said.contains("audit log guard audit_log_no_delete is missing (dropped)"),
        "{said}"
    );
    // The next start puts it back, and says so in the log.
    host.restart();
    let records = host.audit_records();
    let restored = records.iter().find(|r| r["action"] == "audit.guard.restored").unwrap();
    assert!(
        restored["detail"].as_str().unwrap().contains("audit_log_no_delete"),
        "{restored}"
    );
    assert!(verify(&host, &[]).0);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unkeyed_log_says_what_it_cannot_detect_and_continues_keyed_once_a_key_is_set() {
    let outside = Outside::new();
    let sink = Sink::start().await;
    let mut host = Host::start(&config(&ConfigOptions::new(&sink.url)));
    host.kill();
    let unkeyed = host.audit_records().len();
    let (passed, said) = verify(&host, &[]);
    assert!(passed, "{said}");
    assert!(
        said.starts_with(&format!("audit log intact: {unkeyed} records")),
        "{said}"
    );
    assert!(
        said.contains("the chain is unkeyed and unanchored: this check catches a record edited, inserted or deleted without recomputing the hashes after it, nothing more"),
        "{said}"
    );
    assert!(
        said.contains("no checkpoints: a truncated tail (records removed from the end) cannot be detected"),
        "{said}"
    );

    // The operator adds [audit]: the old records stay as they were, the chain goes on keyed.
    let mut options = ConfigOptions::new(&sink.url);
    options.extra = outside.section(3600);
    std::fs::write(host.dir.path().join("kaunter.toml"), config(&options)).unwrap();
    host.restart();
    host.kill();
    let records = host.audit_records();
    assert_eq!(records[unkeyed]["action"], "audit.keyed");
    assert!(
        records[unkeyed]["detail"]
            .as_str()
            .unwrap()
            .contains(&format!("unkeyed SHA-256 (records #1..#{unkeyed})")),
        "{:?}",
        records[unkeyed]
    );
    let (passed, said) = verify_with_config(&host);
    assert!(passed, "{said}");
    assert!(
        said.contains(&format!(
            "records #1..#{unkeyed}: unkeyed SHA-256 (written before the chain was keyed"
        )),
        "{said}"
    );
    assert!(
        said.contains(&format!("records #{}..#{}: HMAC-SHA256", unkeyed + 1, records.len())),
        "{said}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_clean_shutdown_records_host_stop_and_checkpoints_it() {
    let outside = Outside::new();
    let mut host = keyed_host(&outside, 3600);
    let status = host.terminate();
    assert!(status.success(), "{status}");
    let records = host.audit_records();
    let last = records.last().unwrap();
    assert_eq!(
        (last["action"].as_str(), last["actor"].as_str()),
        (Some("host.stop"), Some("signal:SIGTERM"))
    );
    let checkpoint = outside.checkpoints().pop().unwrap();
    assert_eq!(checkpoint["seq"], last["seq"]);
    assert_eq!(checkpoint["hash"], last["hash"]);
    assert!(verify_with_config(&host).0);
}

/// `[retention] audit_max_age_secs`: the running host prunes old audit records through a signed
/// checkpoint (a prune statement in the anchor file first), and `kaunter audit verify` checks the
/// rest from there.
#[tokio::test(flavor = "multi_thread")]
async fn old_audit_records_are_pruned_through_a_signed_checkpoint_and_still_verify() {
    let outside = Outside::new();
    let mut options = ConfigOptions::new("http://127.0.0.1:9/hooks");
    options.extra = format!(
        "{}\n[retention]\naudit_max_age_secs = 1\nprune_interval_secs = 1\n",
        outside.section(1)
    );
    let host = Host::start(&config(&options));
    let pruned = wait_for("the audit log pruned", 60, || async {
        host.audit_records().into_iter().find(|r| r["action"] == "audit.pruned")
    })
    .await;
    let records = host.audit_records();
    let through: i64 =
        serde_json::from_str::<serde_json::Value>(pruned["detail"].as_str().unwrap()).unwrap()["through"]
            .as_i64()
            .unwrap();
    assert!(
        records[0]["seq"].as_i64().unwrap() > 1,
        "nothing was removed: {pruned} {}",
        records[0]
    );
    assert!(
        outside
            .checkpoints()
            .iter()
            .any(|c| c["pruned_through"].as_i64() == Some(through)),
        "no signed prune statement for #{through}"
    );
    let (passed, said) = verify_with_config(&host);
    assert!(passed, "{said}");
    assert!(said.contains("were pruned by the host"), "{said}");
}
