//! Secret values never leave a configuration error.
//!
//! Config errors are shown on the console, answered by the admin API and written to the
//! append-only audit log when a reload is refused, so they must not carry what the file keeps
//! secret: anything given as `{ value = "…" }` (secrets, API keys, client ids and secrets, refresh
//! tokens) and every string under `[secrets]`, `[credentials]` and `[[api_keys]]` but names,
//! URLs and the like ([`PUBLIC_KEYS`]). This module
//! finds those values in the file's text, even when the text does not parse, and takes them out
//! of messages; it never decides whether a configuration is valid.

/// Values shorter than this are left in messages.
pub const MIN_REDACTED_CHARS: usize = 4;

/// What a removed value is replaced with.
pub const REDACTED: &str = "[redacted]";

/// Keys under the sensitive tables whose values are not secret (names, where to read a secret
/// from, URLs, grants): kept, so messages about them stay readable.
const PUBLIC_KEYS: &[&str] = &[
    "name",
    "encoding",
    "file",
    "env",
    "grant",
    "token_url",
    "scope",
    "header",
    "prefix",
    "for",
    "stores",
    "algorithm",
    "key_id",
    "client_auth",
    "admin",
    "role",
    "audience",
    "lifetime_secs",
];

/// The tables whose strings are secret unless their key is in [`PUBLIC_KEYS`].
const SENSITIVE_TABLES: &[&str] = &["secrets", "credentials", "api_keys"];

/// Tables where `key = "…"` names a secret rather than holding one (`[audit] key`); a value
/// written there as `{ value = "…" }` is still found.
const NAMING_TABLES: &[&str] = &["audit"];

/// The secret values written in a configuration's text (see the module docs).
pub fn secret_values(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    if let Ok(table) = text.parse::<toml::Table>() {
        for (key, value) in &table {
            match value {
                toml::Value::Table(t) if NAMING_TABLES.contains(&key.as_str()) => {
                    for (inner_key, inner) in t {
                        if !(inner_key == "key" && inner.is_str()) {
                            collect(inner, false, &mut found);
                        }
                    }
                }
                _ => collect(value, SENSITIVE_TABLES.contains(&key.as_str()), &mut found),
            }
        }
    }
    // Also line by line, for text that does not parse.
    let (mut sensitive, mut naming) = (false, false);
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('[') {
            let header = trimmed.trim_matches(|c| c == '[' || c == ']').trim();
            sensitive = SENSITIVE_TABLES
                .iter()
                .any(|s| header == *s || header.starts_with(&format!("{s}.")));
            naming = NAMING_TABLES.contains(&header);
        }
        for (key, value) in quoted_values(trimmed) {
            if key == "value" || (key == "key" && !naming) || (sensitive && !PUBLIC_KEYS.contains(&key.as_str())) {
                found.push(value);
            }
        }
    }
    // Shorter values are not secrets worth the name, and redacting them would garble messages.
    found.retain(|v| v.chars().count() >= MIN_REDACTED_CHARS);
    found.sort_by_key(|v| std::cmp::Reverse(v.len()));
    found.dedup();
    found
}

fn collect(value: &toml::Value, sensitive: bool, out: &mut Vec<String>) {
    match value {
        toml::Value::String(s) if sensitive => out.push(s.clone()),
        toml::Value::Table(t) => {
            for (key, inner) in t {
                if key == "value" || key == "key" {
                    collect(inner, true, out);
                } else if !PUBLIC_KEYS.contains(&key.as_str()) {
                    collect(inner, sensitive, out);
                }
            }
        }
        toml::Value::Array(items) => items.iter().for_each(|v| collect(v, sensitive, out)),
        _ => {}
    }
}

/// The quoted strings on one line, each with the bare key written before its `=` (empty when
/// there is none, e.g. in an array); an unclosed string runs to the end of the line. Escaped
/// strings are returned as written and unescaped, since parser messages show either.
fn quoted_values(line: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = line.char_indices();
    while let Some((start, c)) = chars.next() {
        if c != '"' && c != '\'' {
            continue;
        }
        let mut end = None;
        let mut escaped = false;
        for (i, d) in chars.by_ref() {
            if c == '"' && d == '\\' && !escaped {
                escaped = true;
                continue;
            }
            if d == c && !escaped {
                end = Some(i);
                break;
            }
            escaped = false;
        }
        let key = line[..start]
            .trim_end()
            .strip_suffix('=')
            .map(|before| {
                let before = before.trim_end();
                let from = before
                    .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
                    .map_or(0, |i| i + 1);
                before[from..].to_owned()
            })
            .unwrap_or_default();
        let inner = &line[start + 1..end.unwrap_or(line.len())];
        if inner.contains('\\') {
            out.push((key.clone(), inner.replace("\\\"", "\"").replace("\\\\", "\\")));
        }
        out.push((key, inner.to_owned()));
    }
    out
}

/// `message` with every one of `values` replaced by [`REDACTED`].
pub fn redact(message: &str, values: &[String]) -> String {
    let mut out = message.to_owned();
    for value in values {
        if out.contains(value.as_str()) {
            out = out.replace(value.as_str(), REDACTED);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_found_in_good_and_broken_text() {
        let text = r#"
[[api_keys]]
name = "pos"
key = { value = "pos-key-0123" }

[secrets]
erp = { value = "whsec_abc", encoding = "text" }
plain = "bare-secret"

[credentials.xero]
client_secret = { value = "cs-9" }
token_url = "https://identity.xero.com/connect/token"

[[plugins]]
name = "webhook"

[audit]
key = "audit-chain"
"#;
        let values = secret_values(text);
        assert!(!values.contains(&"audit-chain".to_owned()), "{values:?}");
        let inline = secret_values("[audit]\nkey = { value = \"chain-key-bytes\" }\n");
        assert!(inline.contains(&"chain-key-bytes".to_owned()), "{inline:?}");
        for secret in ["pos-key-0123", "whsec_abc", "bare-secret", "cs-9"] {
            assert!(values.contains(&secret.to_owned()), "{secret}: {values:?}");
        }
        assert!(!values.contains(&"webhook".to_owned()));
        assert!(!values.contains(&"text".to_owned()));
        assert!(!values.iter().any(|v| v.starts_with("https://")));
        let broken = "[secrets]\nerp = { value = \"whsec_abc\", = }\nother = \"s3cr\\\"et\n";
        let values = secret_values(broken);
        assert!(values.contains(&"whsec_abc".to_owned()), "{values:?}");
        assert!(values.contains(&"s3cr\"et".to_owned()), "{values:?}");
        assert_eq!(
            redact("at `erp = { value = \"whsec_abc\" }`", &values),
            "at `erp = { value = \"[redacted]\" }`"
        );
    }
}
