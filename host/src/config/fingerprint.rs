//! A configuration's fingerprint: one digest per entry (each plugin, sink, route, API key,
//! secret, credential, store, group, and each top-level section), so `host.start` can say what
//! changed since the last start without keeping the file (which may hold inline secret values)
//! in the log. Digests are keyed with the audit key when there is one, so a reader of the log
//! cannot test guesses of an inline secret against them.

use crate::store::audit::ChainKey;
use serde_json::{Value, json};
use sha2::Digest as _;
use std::collections::BTreeMap;

/// `section` or `section.name` → digest of that entry's TOML.
pub type Fingerprint = BTreeMap<String, String>;

/// The fingerprint of a configuration's text.
pub fn fingerprint(text: &str, key: Option<&ChainKey>) -> Fingerprint {
    let digest = |name: &str, value: &toml::Value| {
        let text = toml::to_string(value).unwrap_or_else(|_| value.to_string());
        match key {
            Some(key) => key.digest("kaunter config entry", format!("{name}\n{text}").as_bytes()),
            None => crate::store::hex(&sha2::Sha256::digest(format!("{name}\n{text}").as_bytes())),
        }
    };
    let mut out = Fingerprint::new();
    let Ok(table) = text.parse::<toml::Table>() else {
        return out;
    };
    for (section, value) in &table {
        match value {
            // Arrays of named tables: one entry per name.
            toml::Value::Array(items) if items.iter().all(|i| i.get("name").is_some()) => {
                for item in items {
                    let name = format!("{section}.{}", item.get("name").and_then(|n| n.as_str()).unwrap_or(""));
                    out.insert(name.clone(), digest(&name, item));
                }
            }
            // Tables of named entries: one entry per key.
            toml::Value::Table(entries)
                if matches!(section.as_str(), "secrets" | "credentials" | "stores" | "store_groups") =>
            {
                for (key, item) in entries {
                    let name = format!("{section}.{key}");
                    out.insert(name.clone(), digest(&name, item));
                }
            }
            other => {
                out.insert(section.clone(), digest(section, other));
            }
        }
    }
    out
}

/// What changed from `old` to `new`: entries added, removed and changed, by name.
pub fn changes(old: &Fingerprint, new: &Fingerprint) -> Value {
    let added: Vec<&String> = new.keys().filter(|k| !old.contains_key(*k)).collect();
    let removed: Vec<&String> = old.keys().filter(|k| !new.contains_key(*k)).collect();
    let changed: Vec<&String> = new
        .iter()
        .filter(|(k, v)| old.get(*k).is_some_and(|o| o != *v))
        .map(|(k, _)| k)
        .collect();
    json!({ "added": added, "removed": removed, "changed": changed })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn changes_are_named_by_entry_and_inline_secrets_are_not_kept() {
        let before = "[server]\nlisten = \"0.0.0.0:8080\"\n[[plugins]]\nname = \"sku-map\"\npath = \"a.wasm\"\n[[plugins]]\nname = \"xero\"\npath = \"x.wasm\"\n[secrets]\nerp = { value = \"hunter2\" }\n";
        let after = "[server]\nlisten = \"0.0.0.0:8080\"\n[[plugins]]\nname = \"sku-map\"\npath = \"b.wasm\"\n[[plugins]]\nname = \"hubspot\"\npath = \"h.wasm\"\n[secrets]\nerp = { value = \"hunter3\" }\n";
        let key = ChainKey::new(b"0123456789abcdef0123456789abcdef").unwrap();
        let (old, new) = (fingerprint(before, Some(&key)), fingerprint(after, Some(&key)));
        assert_eq!(
            changes(&old, &new),
            json!({"added": ["plugins.hubspot"], "removed": ["plugins.xero"], "changed": ["plugins.sku-map", "secrets.erp"]})
        );
        assert!(!serde_json::to_string(&new).unwrap().contains("hunter"));
        assert_eq!(changes(&new, &new), json!({"added": [], "removed": [], "changed": []}));
    }
}
