//! `[telemetry]`: OpenTelemetry traces, off by default, one line to turn on:
//!
//! ```toml
//! [telemetry]
//! endpoint = "http://otel-collector:4318"            # OTLP/HTTP; /v1/traces is added
//! headers = { x-api-key = { env = "OTLP_API_KEY" } }  # secrets by reference
//! service_name = "kaunter-hk"                         # default "kaunter"
//! sampling_ratio = 0.1                                # default 1.0; a traceparent that came in decides first
//! ```
//!
//! The standard variables apply where the file is silent, as every OpenTelemetry SDK reads them:
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (the full URL) or `OTEL_EXPORTER_OTLP_ENDPOINT` (the base),
//! `OTEL_EXPORTER_OTLP_HEADERS` / `OTEL_EXPORTER_OTLP_TRACES_HEADERS` (`k=v,k2=v2`),
//! `OTEL_SERVICE_NAME`, `OTEL_TRACES_SAMPLER` and `OTEL_TRACES_SAMPLER_ARG`; `OTEL_SDK_DISABLED=true`
//! and `OTEL_TRACES_EXPORTER=none` turn tracing off.

use super::SecretRef;
use crate::telemetry::trace::{Sampler, Settings};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;

/// `[telemetry]`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TelemetryConfig {
    /// The OTLP/HTTP collector: its base URL (`/v1/traces` is added) or the full traces URL.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Headers on every export (an API key), each a secret reference.
    #[serde(default)]
    pub headers: BTreeMap<String, SecretRef>,
    /// `service.name` (default `kaunter`).
    #[serde(default)]
    pub service_name: Option<String>,
    /// Share of events traced when no `traceparent` came with them (0 to 1, default 1).
    #[serde(default)]
    pub sampling_ratio: Option<f64>,
}

impl TelemetryConfig {
    /// What is wrong with the section, as `(field, message)` pairs.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if let Some(endpoint) = &self.endpoint
            && !(endpoint.starts_with("http://") || endpoint.starts_with("https://"))
        {
            out.push((
                "telemetry.endpoint".into(),
                format!("endpoint `{endpoint}` is not an http:// or https:// URL; use the collector's OTLP/HTTP address, e.g. \"http://otel-collector:4318\""),
            ));
        }
        if let Some(ratio) = self.sampling_ratio
            && !(0.0..=1.0).contains(&ratio)
        {
            out.push((
                "telemetry.sampling_ratio".into(),
                format!("sampling_ratio {ratio} is outside 0 to 1 (0.1 traces one event in ten)"),
            ));
        }
        out
    }

    /// Where and how to export, from this section and the `OTEL_*` variables `env` gives;
    /// `None` when tracing is off.
    pub fn settings(&self, base_dir: &Path, env: impl Fn(&str) -> Option<String>) -> Result<Option<Settings>, String> {
        let off = |name: &str, value: &str| env(name).is_some_and(|v| v.trim().eq_ignore_ascii_case(value));
        if off("OTEL_SDK_DISABLED", "true") || off("OTEL_TRACES_EXPORTER", "none") {
            return Ok(None);
        }
        let endpoint = match &self.endpoint {
            Some(base) => traces_url(base),
            None => match (
                env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"),
                env("OTEL_EXPORTER_OTLP_ENDPOINT"),
            ) {
                (Some(full), _) => full,
                (None, Some(base)) => traces_url(&base),
                (None, None) => return Ok(None),
            },
        };
        let mut headers: Vec<(String, String)> = Vec::new();
        for variable in ["OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_TRACES_HEADERS"] {
            for pair in env(variable).unwrap_or_default().split(',') {
                if let Some((k, v)) = pair.split_once('=') {
                    headers.push((k.trim().to_owned(), percent_decode(v.trim())));
                }
            }
        }
        for (name, secret) in &self.headers {
            let value = secret
                .read(base_dir)
                .map_err(|e| format!("telemetry.headers.{name}: {e}"))?;
            headers.push((name.clone(), value));
        }
        let sampler = match self.sampling_ratio {
            Some(ratio) => Sampler {
                parent_based: true,
                ratio,
            },
            None => match env("OTEL_TRACES_SAMPLER") {
                Some(name) => Sampler::from_otel(&name, env("OTEL_TRACES_SAMPLER_ARG").as_deref()).ok_or_else(|| {
                    format!("OTEL_TRACES_SAMPLER `{name}` is not one kaunter knows (always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off, parentbased_traceidratio)")
                })?,
                None => Sampler {
                    parent_based: true,
                    ratio: 1.0,
                },
            },
        };
        Ok(Some(Settings {
            endpoint,
            headers,
            service_name: self
                .service_name
                .clone()
                .or_else(|| env("OTEL_SERVICE_NAME"))
                .unwrap_or_else(|| "kaunter".into()),
            sampler,
        }))
    }
}

/// The traces URL of a collector's base URL (`http://c:4318` → `http://c:4318/v1/traces`); a URL
/// already ending in `/v1/traces` is kept.
fn traces_url(base: &str) -> String {
    let base = base.trim_end_matches('/');
    if base.ends_with("/v1/traces") {
        base.to_owned()
    } else {
        format!("{base}/v1/traces")
    }
}

/// `%XX` escapes decoded, as the OTLP exporter spec allows in header values.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(byte) = text.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| (*v).to_owned())
    }

    #[test]
    fn off_unless_an_endpoint_is_given_in_the_file_or_the_environment() {
        let none = TelemetryConfig::default();
        assert!(none.settings(Path::new("."), env(&[])).unwrap().is_none());
        let from_env = none
            .settings(
                Path::new("."),
                env(&[
                    ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/"),
                    ("OTEL_EXPORTER_OTLP_HEADERS", "x-api-key=abc%3D,team=ops"),
                    ("OTEL_SERVICE_NAME", "kaunter-hk"),
                    ("OTEL_TRACES_SAMPLER", "traceidratio"),
                    ("OTEL_TRACES_SAMPLER_ARG", "0.25"),
                ]),
            )
            .unwrap()
            .unwrap();
        assert_eq!(from_env.endpoint, "http://collector:4318/v1/traces");
        assert_eq!(
            from_env.headers,
            [("x-api-key".into(), "abc=".into()), ("team".into(), "ops".into())]
        );
        assert_eq!(from_env.service_name, "kaunter-hk");
        assert_eq!(
            from_env.sampler,
            Sampler {
                parent_based: false,
                ratio: 0.25
            }
        );
        let file = TelemetryConfig {
            endpoint: Some("https://otlp.example.com/v1/traces".into()),
            sampling_ratio: Some(0.1),
            ..TelemetryConfig::default()
        };
        let settings = file
            .settings(Path::new("."), env(&[("OTEL_SERVICE_NAME", "x")]))
            .unwrap()
            .unwrap();
        assert_eq!(settings.endpoint, "https://otlp.example.com/v1/traces");
        assert_eq!(
            settings.sampler,
            Sampler {
                parent_based: true,
                ratio: 0.1
            }
        );
        assert!(
            file.settings(Path::new("."), env(&[("OTEL_SDK_DISABLED", "true")]))
                .unwrap()
                .is_none()
        );
        assert!(
            none.settings(
                Path::new("."),
                env(&[
                    ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c"),
                    ("OTEL_TRACES_SAMPLER", "bogus")
                ])
            )
            .unwrap_err()
            .contains("OTEL_TRACES_SAMPLER `bogus`")
        );
    }
}
