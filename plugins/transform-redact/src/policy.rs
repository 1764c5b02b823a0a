//! The redaction policy: the plugin's configuration checked field by field and compiled. Anything
//! it cannot honour exactly — an unknown field, an action it does not know, a `hash` without a
//! usable secret — is `PluginError::InvalidConfig` saying what, where and how to fix it, so the
//! event is dead-lettered on this route instead of reaching the sink unredacted (fail closed).

use kaunter_sdk::{PluginError, host};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// The typed fields this plugin can act on: (name, whether the event needs it, what it is).
pub const FIELDS: &[(&str, bool, &str)] = &[
    ("member.member_id", true, "member id on pos.member.updated.v1"),
    ("member.name", false, "member name on pos.member.updated.v1"),
    ("member.phone", false, "member phone on pos.member.updated.v1"),
    ("member.email", false, "member email on pos.member.updated.v1"),
    ("sale.member_id", false, "member id on pos.sale.completed.v1"),
    ("sale.cashier_id", false, "cashier on pos.sale.completed.v1"),
    (
        "sale.tenders.processor_ref",
        false,
        "payment references on pos.sale.completed.v1",
    ),
    ("refund.member_id", false, "member id on pos.refund.completed.v1"),
    ("refund.cashier_id", false, "cashier on pos.refund.completed.v1"),
    ("refund.reason", false, "free-text reason on pos.refund.completed.v1"),
    (
        "refund.tenders.processor_ref",
        false,
        "payment references on pos.refund.completed.v1",
    ),
    ("void.reason", false, "free-text reason on pos.sale.voided.v1"),
    ("void.cashier_id", false, "cashier on pos.sale.voided.v1"),
    (
        "payment.tender.processor_ref",
        false,
        "payment reference on pos.payment.settled.v1",
    ),
];

/// `member_id` stands for the member id on every event that carries one, so one member gets one
/// pseudonym everywhere.
pub const MEMBER_ID_ALIAS: (&str, &[&str]) = ("member_id", &["member.member_id", "sale.member_id", "refund.member_id"]);

/// What to do to a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Drop it (or, inside a JSON array, replace it by `null`).
    Remove,
    /// Keep the last N characters, `*` for the rest (all `*` when it is N characters or shorter).
    Mask(usize),
    /// A keyed pseudonym: HMAC-SHA256 under the named secret, hex, truncated.
    Hash,
}

impl Action {
    /// How `redacted` names it.
    pub fn name(self) -> &'static str {
        match self {
            Action::Remove => "remove",
            Action::Mask(_) => "mask",
            Action::Hash => "hash",
        }
    }
}

/// Which custom events a rule applies to: one type, a prefix (`crm.*`) or any (`*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypePattern(pub String);

impl TypePattern {
    /// Whether an event type matches.
    pub fn matches(&self, ty: &str) -> bool {
        match self.0.strip_suffix('*') {
            Some(prefix) => ty.starts_with(prefix),
            None => self.0 == ty,
        }
    }
}

/// One rule on a `custom` payload: a JSON Pointer whose `*` segments match every key or element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomRule {
    /// Event types.
    pub types: TypePattern,
    /// The pointer as configured (what `redacted` reports).
    pub pointer: String,
    /// Its unescaped segments.
    pub segments: Vec<String>,
    /// What to do.
    pub action: Action,
}

/// The compiled policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Typed fields (names from [`FIELDS`]) and their actions.
    pub fields: BTreeMap<String, Action>,
    /// Rules on custom payloads.
    pub custom: Vec<CustomRule>,
    /// Extension attributes by name.
    pub extensions: BTreeMap<String, Action>,
    /// The host secret `hash` uses.
    pub secret: Option<String>,
    /// Hex characters of a pseudonym.
    pub hash_length: usize,
}

/// `[plugins.config]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Typed fields → action; absent means [`default_fields`].
    #[serde(default)]
    pub fields: Option<BTreeMap<String, Value>>,
    /// Event type pattern → JSON Pointer → action.
    #[serde(default)]
    pub custom: BTreeMap<String, BTreeMap<String, Value>>,
    /// Extension name → action.
    #[serde(default)]
    pub extensions: BTreeMap<String, Value>,
    /// Name of the host secret for `hash`.
    #[serde(default)]
    pub secret: Option<String>,
    /// Hex characters kept of a pseudonym (8 to 64).
    #[serde(default = "default_hash_length")]
    pub hash_length: usize,
}

fn default_hash_length() -> usize {
    16
}

/// Without `fields`: remove member name, phone and email; pseudonymise member ids.
pub fn default_fields() -> BTreeMap<String, Action> {
    let mut fields = BTreeMap::new();
    for name in ["member.name", "member.phone", "member.email"] {
        fields.insert(name.to_owned(), Action::Remove);
    }
    for name in MEMBER_ID_ALIAS.1 {
        fields.insert((*name).to_owned(), Action::Hash);
    }
    fields
}

fn invalid(message: String) -> PluginError {
    PluginError::InvalidConfig(format!("transform-redact: {message}"))
}

/// Reads an action: `"remove"`, `"hash"` or `{ mask = N }`.
fn action(at: &str, value: &Value) -> Result<Action, PluginError> {
    let parsed = match value {
        Value::String(s) if s == "remove" => Some(Action::Remove),
        Value::String(s) if s == "hash" => Some(Action::Hash),
        Value::Object(o) if o.len() == 1 => o
            .get("mask")
            .and_then(Value::as_u64)
            .and_then(|n| usize::try_from(n).ok())
            .map(Action::Mask),
        _ => None,
    };
    parsed.ok_or_else(|| {
        invalid(format!(
            "{at} = {value} is not an action; write \"remove\", \"hash\" or {{ mask = N }} (keep the last N characters)"
        ))
    })
}

impl Policy {
    /// Checks and compiles the configuration; probes the secret when any rule hashes.
    pub fn compile(raw: &RawConfig) -> Result<Policy, PluginError> {
        let fields = match &raw.fields {
            None => default_fields(),
            Some(map) => typed_fields(map)?,
        };
        let mut custom = Vec::new();
        for (types, rules) in &raw.custom {
            if types.is_empty() {
                return Err(invalid(
                    "custom has an empty event type; name a type (\"crm.contact.v1\"), a prefix (\"crm.*\") or \"*\""
                        .into(),
                ));
            }
            for (pointer, value) in rules {
                let at = format!("custom.\"{types}\".\"{pointer}\"");
                custom.push(CustomRule {
                    types: TypePattern(types.clone()),
                    pointer: pointer.clone(),
                    segments: segments(&at, pointer)?,
                    action: action(&at, value)?,
                });
            }
        }
        let mut extensions = BTreeMap::new();
        for (name, value) in &raw.extensions {
            let at = format!("extensions.\"{name}\"");
            let well_formed = !name.is_empty()
                && name.len() <= 20
                && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
            if !well_formed || name == "redacted" {
                return Err(invalid(format!(
                    "{at}: `{name}` is not an extension this plugin can redact; extension names are 1-20 lower-case letters or digits (and not `redacted`, which this plugin writes)"
                )));
            }
            extensions.insert(name.clone(), action(&at, value)?);
        }
        if !(8..=64).contains(&raw.hash_length) {
            return Err(invalid(format!(
                "hash_length = {} is out of range; use 8 to 64 hex characters (16 by default)",
                raw.hash_length
            )));
        }
        let policy = Policy {
            fields,
            custom,
            extensions,
            secret: raw.secret.clone(),
            hash_length: raw.hash_length,
        };
        policy.check_secret()?;
        Ok(policy)
    }

    /// The first rule that hashes, named as in the configuration.
    fn first_hash(&self) -> Option<String> {
        let field = self
            .fields
            .iter()
            .find(|(_, a)| **a == Action::Hash)
            .map(|(f, _)| format!("fields.\"{f}\""));
        let custom = || {
            self.custom
                .iter()
                .find(|r| r.action == Action::Hash)
                .map(|r| format!("custom.\"{}\".\"{}\"", r.types.0, r.pointer))
        };
        let extension = || {
            self.extensions
                .iter()
                .find(|(_, a)| **a == Action::Hash)
                .map(|(n, _)| format!("extensions.\"{n}\""))
        };
        field.or_else(custom).or_else(extension)
    }

    /// A `hash` rule needs `secret`, and the host must hold that secret for this plugin.
    fn check_secret(&self) -> Result<(), PluginError> {
        let Some(rule) = self.first_hash() else {
            return Ok(());
        };
        let Some(secret) = &self.secret else {
            let defaulted = if rule.starts_with("fields.") {
                " (the default policy hashes member ids)"
            } else {
                ""
            };
            return Err(invalid(format!(
                "{rule} uses hash{defaulted}, which needs a keyed secret: set secret = \"NAME\" in the plugin's [plugins.config] \
                 and grant it with secrets = [\"NAME\"] in its [[plugins]] entry, or change the action to \"remove\" or {{ mask = N }}"
            )));
        };
        host::hmac_sha256(secret, b"transform-redact: secret check").map_err(|e| {
            let host::CryptoError::UnknownSecret(why) = e;
            invalid(format!(
                "secret = \"{secret}\" (for {rule}) cannot be used: {why}; define it under [secrets] and add \"{secret}\" to secrets in the plugin's [[plugins]] entry"
            ))
        })?;
        Ok(())
    }
}

fn typed_fields(map: &BTreeMap<String, Value>) -> Result<BTreeMap<String, Action>, PluginError> {
    let mut fields = BTreeMap::new();
    // The alias first, so an explicit field overrides it.
    if let Some(value) = map.get(MEMBER_ID_ALIAS.0) {
        let a = action(&format!("fields.\"{}\"", MEMBER_ID_ALIAS.0), value)?;
        if a == Action::Remove {
            return Err(invalid(
                "fields.\"member_id\" = \"remove\" would remove member.member_id, which pos.member.updated.v1 requires; \
                 use \"hash\" or { mask = N } for member_id, or list sale.member_id and refund.member_id as \"remove\" \
                 and member.member_id as \"hash\""
                    .into(),
            ));
        }
        for name in MEMBER_ID_ALIAS.1 {
            fields.insert((*name).to_owned(), a);
        }
    }
    for (name, value) in map.iter().filter(|(n, _)| *n != MEMBER_ID_ALIAS.0) {
        let at = format!("fields.\"{name}\"");
        let Some((_, required, _)) = FIELDS.iter().find(|(known, _, _)| known == name) else {
            let known: Vec<&str> = FIELDS.iter().map(|(n, _, _)| *n).collect();
            return Err(invalid(format!(
                "{at}: `{name}` is not a field this plugin knows; use one of member_id, {} \
                 (custom payloads go under `custom`, extension attributes under `extensions`)",
                known.join(", ")
            )));
        };
        let a = action(&at, value)?;
        if *required && a == Action::Remove {
            return Err(invalid(format!(
                "{at} = \"remove\": the event cannot do without `{name}`; use \"hash\" or {{ mask = N }}"
            )));
        }
        fields.insert(name.clone(), a);
    }
    Ok(fields)
}

/// The segments of an RFC 6901 JSON Pointer (`/contact/phone`, `~1` is `/`, `~0` is `~`).
fn segments(at: &str, pointer: &str) -> Result<Vec<String>, PluginError> {
    let Some(rest) = pointer.strip_prefix('/') else {
        return Err(invalid(format!(
            "{at}: `{pointer}` is not a JSON Pointer; start it with `/`, e.g. \"/contact/phone\" or \"/contacts/*/email\""
        )));
    };
    Ok(rest
        .split('/')
        .map(|s| s.replace("~1", "/").replace("~0", "~"))
        .collect())
}
