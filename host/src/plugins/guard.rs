//! The upgrade guard: a plugin version that requests more than the last approved version of the
//! same plugin stays unloaded until an operator approves it (`kaunter plugin approve`).
//!
//! The first version of a plugin, and any version that requests nothing new, are approved by the
//! host itself (recorded as such). Approvals and refusals go to the audit log.

use super::manifest::Requests;
use crate::store::audit::AuditEntry;
use crate::store::{Approval, Store};
use std::sync::Arc;

/// What `new` requests beyond `old`, one line each (empty when nothing).
pub fn escalations(old: &Requests, new: &Requests) -> Vec<String> {
    let mut more = Vec::new();
    more.extend(
        new.http
            .iter()
            .filter(|h| !old.http.contains(h))
            .map(|h| format!("+ http {h}")),
    );
    more.extend(
        new.secrets
            .iter()
            .filter(|s| !old.secrets.contains(s))
            .map(|s| format!("+ secret {s}")),
    );
    more.extend(
        new.credentials
            .iter()
            .filter(|c| !old.credentials.contains(c))
            .map(|c| format!("+ credential {c}")),
    );
    more.extend(
        new.emits
            .iter()
            .filter(|t| !old.emits.contains(t))
            .map(|t| format!("+ emits {t}")),
    );
    if new.clock && !old.clock {
        more.push("+ clock".into());
    }
    let (o, n) = (&old.limits, &new.limits);
    let mut limit = |what: &str, old: Option<u64>, new: Option<u64>| {
        if let Some(new) = new
            && new > old.unwrap_or(0)
        {
            let was = old.map(|o| o.to_string()).unwrap_or_else(|| "not requested".into());
            more.push(format!("+ limits.{what} {new} (was {was})"));
        }
    };
    limit("deadline_ms", o.deadline_ms, n.deadline_ms);
    limit("memory_mib", o.memory_mib.map(u64::from), n.memory_mib.map(u64::from));
    limit("kv_quota_bytes", o.kv_quota_bytes, n.kv_quota_bytes);
    limit(
        "max_http_calls",
        o.max_http_calls.map(u64::from),
        n.max_http_calls.map(u64::from),
    );
    more
}

/// Reviews one version against the plugin's approvals: approves it when that needs no operator
/// (first version, or nothing requested beyond the last approved one) and returns an empty list;
/// otherwise records it as pending in the audit log and returns what it requests beyond the
/// approved version, one line each.
pub async fn review(
    store: &Arc<dyn Store>,
    name: &str,
    version: &str,
    digest: &str,
    requests: &Requests,
) -> anyhow::Result<Vec<String>> {
    let (latest, approved) = store.approvals(name, version).await?;
    if approved {
        return Ok(Vec::new());
    }
    let previous: Option<Requests> = latest.as_ref().and_then(|a| serde_json::from_str(&a.requests).ok());
    let diff = previous
        .as_ref()
        .map(|old| escalations(old, requests))
        .unwrap_or_default();
    if !diff.is_empty() {
        let from = latest.map(|a| format!("{}@{}", a.name, a.version)).unwrap_or_default();
        store
            .audit(vec![AuditEntry::new(
                "host",
                "plugin.pending",
                format!("{name}@{version}"),
                serde_json::json!({ "approved": from, "requests_more": diff }),
            )])
            .await?;
        let mut lines = vec![format!("requests more than the approved `{from}`:")];
        lines.extend(diff);
        return Ok(lines);
    }
    let by = if latest.is_none() {
        "host (first version)"
    } else {
        "host (requests nothing new)"
    };
    approve(store, name, version, digest, requests, by).await?;
    Ok(Vec::new())
}

/// Records an approval of a version, and audits it.
pub async fn approve(
    store: &Arc<dyn Store>,
    name: &str,
    version: &str,
    digest: &str,
    requests: &Requests,
    by: &str,
) -> anyhow::Result<()> {
    store
        .approve(Approval {
            name: name.to_owned(),
            version: version.to_owned(),
            digest: digest.to_owned(),
            requests: serde_json::to_string(requests)?,
            approved_by: by.to_owned(),
        })
        .await?;
    store
        .audit(vec![AuditEntry::new(
            by,
            "plugin.approve",
            format!("{name}@{version}"),
            serde_json::json!({ "sha256": digest, "requests": requests }),
        )])
        .await?;
    Ok(())
}

/// Approves version `version` of plugin `name`: the component the configuration names, if that
/// is the version, else the copy kept in the version store under `data_dir` (uploaded or earlier
/// builds). Returns what it requests.
pub async fn approve_version(
    config: &crate::config::Config,
    data_dir: &std::path::Path,
    store: &Arc<dyn Store>,
    name: &str,
    version: &str,
    by: &str,
) -> anyhow::Result<Requests> {
    use sha2::Digest as _;
    let entry = config
        .plugin(name)
        .ok_or_else(|| anyhow::anyhow!("no plugin `{name}` in the configuration"))?;
    let configured = config.plugin_path(entry);
    let kept = super::registry::version_file(data_dir, name, version);
    let mut found = None;
    for path in [&configured, &kept] {
        if let Ok(bytes) = std::fs::read(path) {
            let digest = crate::engine::hex(&sha2::Sha256::digest(&bytes));
            if crate::engine::version_of(&digest) == version {
                found = Some((path.clone(), bytes, digest));
                break;
            }
        }
    }
    let (path, bytes, digest) = found.ok_or_else(|| {
        anyhow::anyhow!(
            "no component of `{name}` is version {version}: not {} nor {}; approve a version `kaunter plugin list` shows",
            configured.display(),
            kept.display()
        )
    })?;
    let requests = super::manifest::read(&path, &bytes)
        .map_err(anyhow::Error::msg)?
        .unwrap_or_default()
        .requests;
    approve(store, name, version, &digest, &requests, by).await?;
    Ok(requests)
}
