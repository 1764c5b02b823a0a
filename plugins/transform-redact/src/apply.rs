//! Applying a [`Policy`] to one event: typed fields, `custom` JSON, extensions, and the copies of
//! redacted values in `subject` and `partitionkey` (a member event's default partition key is
//! `{store}:{member id}`, so it would otherwise carry the id to the sink).

use crate::policy::{Action, CustomRule, Policy};
use kaunter_sdk::{Event, Payload, PluginError, host};
use serde_json::Value;

/// Keeps what was changed while redacting one event.
pub struct Redaction<'p> {
    policy: &'p Policy,
    /// `what=action`, in order, each once.
    pub changed: Vec<String>,
    /// (original, replacement) of every changed string, to scrub `subject` and `partitionkey`.
    replaced: Vec<(String, String)>,
}

impl<'p> Redaction<'p> {
    /// Nothing changed yet.
    pub fn new(policy: &'p Policy) -> Self {
        Redaction {
            policy,
            changed: Vec::new(),
            replaced: Vec::new(),
        }
    }

    fn note(&mut self, what: &str, action: Action) {
        let entry = format!("{what}={}", action.name());
        if !self.changed.contains(&entry) {
            self.changed.push(entry);
        }
    }

    /// The keyed pseudonym of a value: HMAC-SHA256 under the policy's secret, hex, truncated.
    pub fn pseudonym(&self, value: &str) -> Result<String, PluginError> {
        let secret = self.policy.secret.as_deref().unwrap_or_default();
        let mac = host::hmac_sha256(secret, value.as_bytes()).map_err(|e| {
            let host::CryptoError::UnknownSecret(why) = e;
            PluginError::InvalidConfig(format!("transform-redact: secret = \"{secret}\" cannot be used: {why}"))
        })?;
        let mut hex = kaunter_sdk::hex_encode(&mac);
        hex.truncate(self.policy.hash_length);
        Ok(hex)
    }

    /// The replacement of a string under a mask or hash.
    fn rewrite(&self, value: &str, action: Action) -> Result<String, PluginError> {
        Ok(match action {
            Action::Mask(keep) => mask(value, keep),
            Action::Hash => self.pseudonym(value)?,
            Action::Remove => String::new(),
        })
    }

    /// Acts on an optional typed field.
    fn optional(&mut self, field: &str, value: &mut Option<String>) -> Result<(), PluginError> {
        let Some(action) = self.policy.fields.get(field).copied() else {
            return Ok(());
        };
        let Some(original) = value.take() else {
            return Ok(());
        };
        let replacement = match action {
            Action::Remove => None,
            other => Some(self.rewrite(&original, other)?),
        };
        self.replaced
            .push((original, replacement.clone().unwrap_or_else(|| "redacted".into())));
        *value = replacement;
        self.note(field, action);
        Ok(())
    }

    /// Acts on a field the event cannot do without (the policy never removes one).
    fn required(&mut self, field: &str, value: &mut String) -> Result<(), PluginError> {
        let Some(action) = self.policy.fields.get(field).copied() else {
            return Ok(());
        };
        let replacement = self.rewrite(value, action)?;
        self.replaced
            .push((std::mem::replace(value, replacement.clone()), replacement));
        self.note(field, action);
        Ok(())
    }

    /// Redacts the event in place.
    pub fn event(&mut self, event: &mut Event) -> Result<(), PluginError> {
        match &mut event.payload {
            Payload::MemberUpdated(m) => {
                self.required("member.member_id", &mut m.member_id)?;
                self.optional("member.name", &mut m.name)?;
                self.optional("member.phone", &mut m.phone)?;
                self.optional("member.email", &mut m.email)?;
            }
            Payload::Sale(s) => {
                self.optional("sale.member_id", &mut s.member_id)?;
                self.optional("sale.cashier_id", &mut s.cashier_id)?;
                for tender in &mut s.tenders {
                    self.optional("sale.tenders.processor_ref", &mut tender.processor_ref)?;
                }
            }
            Payload::Refund(r) => {
                self.optional("refund.member_id", &mut r.member_id)?;
                self.optional("refund.cashier_id", &mut r.cashier_id)?;
                self.optional("refund.reason", &mut r.reason)?;
                for tender in &mut r.tenders {
                    self.optional("refund.tenders.processor_ref", &mut tender.processor_ref)?;
                }
            }
            Payload::VoidSale(v) => {
                self.optional("void.reason", &mut v.reason)?;
                self.optional("void.cashier_id", &mut v.cashier_id)?;
            }
            Payload::PaymentSettled(p) => {
                self.optional("payment.tender.processor_ref", &mut p.tender.processor_ref)?;
            }
            Payload::Custom(bytes) => {
                let rules: Vec<&CustomRule> = self
                    .policy
                    .custom
                    .iter()
                    .filter(|r| r.types.matches(&event.ty))
                    .collect();
                if !rules.is_empty() {
                    let mut data: Value = serde_json::from_slice(bytes).map_err(|e| {
                        PluginError::Rejected(format!(
                            "the data of this {} event is not JSON ({e}), so its personal data cannot be redacted",
                            event.ty
                        ))
                    })?;
                    for rule in rules {
                        if self.json(&mut data, &rule.segments, rule.action)? {
                            self.note(&format!("custom{}", rule.pointer), rule.action);
                        }
                    }
                    *bytes = data.to_string().into_bytes();
                }
            }
            _ => {}
        }
        self.extensions(event)?;
        self.scrub(&mut event.partition_key);
        if let Some(subject) = &mut event.subject {
            self.scrub(subject);
        }
        Ok(())
    }

    fn extensions(&mut self, event: &mut Event) -> Result<(), PluginError> {
        let mut kept = Vec::with_capacity(event.extensions.len());
        for (name, value) in std::mem::take(&mut event.extensions) {
            match self.policy.extensions.get(&name).copied() {
                None => kept.push((name, value)),
                Some(action) => {
                    self.note(&format!("extension.{name}"), action);
                    if action != Action::Remove {
                        let replacement = self.rewrite(&value, action)?;
                        kept.push((name, replacement));
                    }
                }
            }
        }
        event.extensions = kept;
        Ok(())
    }

    /// Applies an action at the pointer's segments; whether anything was there.
    fn json(&mut self, value: &mut Value, segments: &[String], action: Action) -> Result<bool, PluginError> {
        let Some((first, rest)) = segments.split_first() else {
            return Ok(false);
        };
        let mut changed = false;
        match value {
            Value::Object(map) => {
                let keys: Vec<String> = if first == "*" {
                    map.keys().cloned().collect()
                } else if map.contains_key(first) {
                    vec![first.clone()]
                } else {
                    Vec::new()
                };
                for key in keys {
                    if rest.is_empty() {
                        match self.leaf(map.get(&key), action)? {
                            Some(new) => {
                                map.insert(key, new);
                            }
                            None => {
                                map.remove(&key);
                            }
                        }
                        changed = true;
                    } else if let Some(child) = map.get_mut(&key) {
                        changed |= self.json(child, rest, action)?;
                    }
                }
            }
            Value::Array(items) => {
                let indices: Vec<usize> = if first == "*" {
                    (0..items.len()).collect()
                } else {
                    first
                        .parse::<usize>()
                        .ok()
                        .filter(|i| *i < items.len())
                        .into_iter()
                        .collect()
                };
                for i in indices {
                    if rest.is_empty() {
                        items[i] = self.leaf(Some(&items[i]), action)?.unwrap_or(Value::Null);
                        changed = true;
                    } else {
                        changed |= self.json(&mut items[i], rest, action)?;
                    }
                }
            }
            _ => {}
        }
        Ok(changed)
    }

    /// The new value of a JSON leaf; `None` removes it. Objects and arrays cannot be masked, so
    /// a mask removes them (never lets them through).
    fn leaf(&mut self, value: Option<&Value>, action: Action) -> Result<Option<Value>, PluginError> {
        let text = match value {
            None | Some(Value::Null) => return Ok(value.cloned()),
            Some(Value::String(s)) => s.clone(),
            Some(v @ (Value::Number(_) | Value::Bool(_))) => v.to_string(),
            Some(v) if action == Action::Hash => v.to_string(),
            Some(_) => return Ok(None),
        };
        if action == Action::Remove {
            self.replaced.push((text, "redacted".into()));
            return Ok(None);
        }
        let replacement = self.rewrite(&text, action)?;
        self.replaced.push((text, replacement.clone()));
        Ok(Some(Value::String(replacement)))
    }

    /// Replaces copies of redacted values in an attribute: whole `:`/`/`-separated parts always,
    /// and substrings of four characters or more.
    fn scrub(&self, attribute: &mut String) {
        for (original, replacement) in &self.replaced {
            if original.is_empty() {
                continue;
            }
            if original.chars().count() >= 4 {
                *attribute = attribute.replace(original.as_str(), replacement);
            } else {
                let parts: Vec<String> = attribute
                    .split_inclusive([':', '/'])
                    .map(|part| {
                        let (body, sep) = part
                            .strip_suffix([':', '/'])
                            .map_or((part, ""), |b| (b, &part[b.len()..]));
                        if body == original {
                            format!("{replacement}{sep}")
                        } else {
                            part.to_owned()
                        }
                    })
                    .collect();
                *attribute = parts.concat();
            }
        }
    }
}

/// Keeps the last `keep` characters, `*` for the others; all `*` when the value is that short.
pub fn mask(value: &str, keep: usize) -> String {
    let count = value.chars().count();
    if count <= keep {
        return "*".repeat(count);
    }
    let tail: String = value.chars().skip(count - keep).collect();
    format!("{}{tail}", "*".repeat(count - keep))
}
