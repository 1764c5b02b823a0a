//! OAuth 2.0 credentials run by the host: client-credentials and refresh-token grants, token
//! caching with refresh a minute before expiry, refresh-token rotation kept durably in the store.
//!
//! Tokens never enter a plugin. The egress checkpoint asks [`Credentials::bearer_for`] for each
//! allowed request and adds `Authorization: Bearer …` when the plugin is granted a credential whose
//! `for` destinations include the request. This module talks only to token endpoints, through its
//! own client; it never sends plugin traffic.

use crate::config::{Config, CredentialConfig, OAuthGrant};
use crate::egress::Destination;
use crate::store::Store;
use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The kv namespace holding rotated refresh tokens (not a valid plugin name).
const STATE_NAMESPACE: &str = "kaunter:credentials";

/// Why no token could be had.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CredentialError {
    /// The authorization server is unreachable or failed; a later attempt may work.
    #[error("credential `{0}`: {1}")]
    Transient(String, String),
    /// The server refused the grant (`invalid_grant`, `invalid_client`, ...): an operator must act.
    #[error("credential `{name}`: the authorization server answered {error}: {detail}; {action}")]
    Refused {
        /// Credential.
        name: String,
        /// OAuth error code.
        error: String,
        /// The server's description.
        detail: String,
        /// What to do.
        action: String,
    },
}

struct Cached {
    token: String,
    refresh_at: Instant,
}

struct Credential {
    name: String,
    config: CredentialConfig,
    client_id: String,
    client_secret: String,
    first_refresh_token: Option<String>,
    cache: tokio::sync::Mutex<Option<Cached>>,
}

/// Every configured credential.
pub struct Credentials {
    entries: BTreeMap<String, Credential>,
    store: Option<Arc<dyn Store>>,
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Credentials {
    /// No credentials (for tools and benchmarks that run plugins without a host).
    pub fn none() -> Arc<Credentials> {
        Arc::new(Credentials {
            entries: BTreeMap::new(),
            store: None,
            client: client(),
        })
    }

    /// Reads the configured credentials' client ids and secrets.
    pub fn new(config: &Config, store: Arc<dyn Store>) -> anyhow::Result<Arc<Credentials>> {
        let mut entries = BTreeMap::new();
        for (name, c) in &config.credentials {
            let read = |what: &str, r: &crate::config::SecretRef| {
                r.read(&config.base_dir)
                    .map_err(|e| anyhow::anyhow!("credential `{name}`, {what}: {e}"))
            };
            entries.insert(
                name.clone(),
                Credential {
                    name: name.clone(),
                    config: c.clone(),
                    client_id: read("client_id", &c.client_id)?,
                    client_secret: read("client_secret", &c.client_secret)?,
                    first_refresh_token: c.refresh_token.as_ref().map(|r| read("refresh_token", r)).transpose()?,
                    cache: tokio::sync::Mutex::new(None),
                },
            );
        }
        Ok(Arc::new(Credentials {
            entries,
            store: Some(store),
            client: client(),
        }))
    }

    /// Which of the `granted` credentials covers a destination, if any (without fetching a token).
    pub fn credential_for(&self, granted: &[String], destination: &Destination) -> Option<String> {
        granted
            .iter()
            .find(|name| {
                self.entries
                    .get(*name)
                    .is_some_and(|c| c.config.destinations.iter().any(|d| d.allows(destination)))
            })
            .cloned()
    }

    /// The bearer token for a request, if one of the `granted` credentials covers its destination.
    pub async fn bearer_for(
        &self,
        granted: &[String],
        destination: &Destination,
    ) -> Result<Option<String>, CredentialError> {
        for name in granted {
            let Some(credential) = self.entries.get(name) else {
                continue;
            };
            if credential.config.destinations.iter().any(|d| d.allows(destination)) {
                return self.token(credential).await.map(Some);
            }
        }
        Ok(None)
    }

    async fn token(&self, c: &Credential) -> Result<String, CredentialError> {
        // Holding the lock while fetching makes concurrent callers share one token request.
        let mut cache = c.cache.lock().await;
        if let Some(cached) = cache.as_ref()
            && cached.refresh_at > Instant::now()
        {
            return Ok(cached.token.clone());
        }
        let fresh = self.fetch(c).await?;
        let token = fresh.token.clone();
        *cache = Some(fresh);
        Ok(token)
    }

    async fn fetch(&self, c: &Credential) -> Result<Cached, CredentialError> {
        let transient = |why: String| CredentialError::Transient(c.name.clone(), why);
        let mut form = Vec::new();
        match c.config.grant {
            OAuthGrant::ClientCredentials => form.push(("grant_type", "client_credentials".to_owned())),
            OAuthGrant::RefreshToken => {
                let stored = match &self.store {
                    Some(store) => store
                        .kv_get(STATE_NAMESPACE, &c.name)
                        .await
                        .map_err(|e| transient(format!("cannot read the stored refresh token: {e}")))?
                        .and_then(|v| String::from_utf8(v).ok()),
                    None => None,
                };
                let refresh = stored.or_else(|| c.first_refresh_token.clone()).unwrap_or_default();
                form.push(("grant_type", "refresh_token".to_owned()));
                form.push(("refresh_token", refresh));
            }
        }
        if let Some(scope) = &c.config.scope {
            form.push(("scope", scope.clone()));
        }
        let body: Vec<String> = form.iter().map(|(k, v)| format!("{k}={}", form_encode(v))).collect();
        let basic = base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            form_encode(&c.client_id),
            form_encode(&c.client_secret)
        ));
        let request = http::Request::post(&c.config.token_url)
            .header(http::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(http::header::ACCEPT, "application/json")
            .header(http::header::AUTHORIZATION, format!("Basic {basic}"))
            .body(Full::new(Bytes::from(body.join("&"))))
            .map_err(|e| transient(format!("bad token_url: {e}")))?;
        #[allow(clippy::disallowed_methods)] // The host's own call to a token endpoint, not plugin egress.
        let call = self.client.request(request);
        let response = tokio::time::timeout(Duration::from_secs(10), call)
            .await
            .map_err(|_| transient("the token endpoint did not answer within 10 s".into()))?
            .map_err(|e| transient(format!("cannot reach the token endpoint: {e}")))?;
        let status = response.status();
        let bytes = Limited::new(response.into_body(), 256 * 1024)
            .collect()
            .await
            .map_err(|_| transient("unreadable token response".into()))?
            .to_bytes();
        let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
        if !status.is_success() {
            let error = json["error"].as_str().unwrap_or("").to_owned();
            let detail = json["error_description"]
                .as_str()
                .unwrap_or("no description")
                .to_owned();
            let action = match error.as_str() {
                "invalid_grant" => {
                    "the refresh token is revoked or expired: authorize kaunter again and put the new refresh_token in the config"
                }
                "invalid_client" | "unauthorized_client" => "check client_id and client_secret",
                _ => "",
            };
            if !action.is_empty() {
                return Err(CredentialError::Refused {
                    name: c.name.clone(),
                    error,
                    detail,
                    action: action.into(),
                });
            }
            return Err(transient(format!(
                "the token endpoint answered {status}: {error} {detail}"
            )));
        }
        let token = json["access_token"]
            .as_str()
            .ok_or_else(|| transient("the token response has no access_token".into()))?
            .to_owned();
        if let (Some(rotated), Some(store)) = (json["refresh_token"].as_str(), &self.store) {
            // Keep the new refresh token before using the access token: the old one may be dead now.
            store
                .kv_set(STATE_NAMESPACE, &c.name, rotated.as_bytes().to_vec(), u64::MAX)
                .await
                .map_err(|e| transient(format!("cannot store the rotated refresh token: {e}")))?;
        }
        let lifetime = json["expires_in"].as_u64().unwrap_or(300);
        let refresh_in = Duration::from_secs(lifetime.saturating_sub(60).max(lifetime / 2).max(1));
        tracing::info!(credential = %c.name, expires_in = lifetime, "OAuth access token obtained");
        Ok(Cached {
            token,
            refresh_at: Instant::now() + refresh_in,
        })
    }
}

fn client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build(HttpConnector::new())
}

/// `application/x-www-form-urlencoded` for one value.
fn form_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => out.push(b as char),
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}
