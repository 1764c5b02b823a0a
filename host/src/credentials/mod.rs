//! OAuth 2.0 credentials run by the host: client-credentials and refresh-token grants, the client
//! authenticated by its secret (HTTP Basic) or by a signed JWT assertion (RFC 7523: NetSuite
//! machine-to-machine), token caching with refresh a minute before expiry, a token dropped as soon
//! as a destination answers 401 with it, refresh-token rotation kept durably in the store. Token
//! endpoints are reached over https (or http) through this module's own client.
//!
//! Tokens never enter a plugin. The egress checkpoint asks [`Credentials::bearer_for`] for each
//! allowed request and adds `Authorization: Bearer …` when the plugin is granted a credential whose
//! `for` destinations include the request. This module talks only to token endpoints, through its
//! own client; it never sends plugin traffic. A token endpoint that echoes the request in its
//! refusal does not put the client secret, refresh token or assertion into the error (and so into
//! dead letters and the audit log): they are scrubbed from it (see [`crate::scrub`]).

use crate::config::{ClientAuthStyle, Config, CredentialConfig, OAuthGrant};
use crate::net::Destination;
use crate::scrub::{Kind, Scrubber, Sensitive};
use crate::store::Store;
use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A token to add to one request.
pub struct Injected {
    /// The credential it comes from.
    pub credential: String,
    /// Header name, lower case.
    pub header: String,
    /// Header value (prefix and token).
    pub value: String,
    /// The token alone.
    pub token: String,
}

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

/// After a token is dropped on a 401, the next one is not dropped again for this long: a
/// destination that refuses every token for another reason (a missing permission) must not turn
/// each failing request into a token request.
const DROP_AT_MOST_EVERY: Duration = Duration::from_secs(5);

struct Credential {
    name: String,
    config: CredentialConfig,
    client_id: String,
    client_auth: ClientAuth,
    first_refresh_token: Option<String>,
    cache: tokio::sync::Mutex<Option<Cached>>,
    /// When a token of this credential was last dropped on a 401.
    dropped_at: std::sync::Mutex<Option<Instant>>,
    /// The authorization server's latest refusal, until a token request succeeds again.
    refused: std::sync::Mutex<Option<Refusal>>,
}

/// A credential the authorization server refuses (`invalid_grant`, ...): what the
/// `credential-failing` alert reports.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Refusal {
    /// The credential.
    pub credential: String,
    /// The refusal, with what to do.
    pub error: String,
    /// Refused token requests since the last success.
    pub count: u64,
    /// When the first of them was refused (ms since the epoch).
    pub since_ms: i64,
}

/// How the client proves who it is to the token endpoint.
enum ClientAuth {
    /// HTTP Basic with the client secret.
    Secret(String),
    /// A JWT signed with the client's private key, made fresh for each token request.
    Assertion(Assertion),
}

struct Assertion {
    algorithm: jsonwebtoken::Algorithm,
    key: jsonwebtoken::EncodingKey,
    key_id: String,
    audience: String,
    lifetime_secs: u64,
}

type TokenClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// Every configured credential.
pub struct Credentials {
    entries: BTreeMap<String, Arc<Credential>>,
    store: Option<Arc<dyn Store>>,
    client: TokenClient,
}

impl Credentials {
    /// No credentials (for tools and benchmarks that run plugins without a host).
    pub fn none() -> Arc<Credentials> {
        Arc::new(Credentials {
            entries: BTreeMap::new(),
            store: None,
            client: client(Arc::new(
                rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                    .with_safe_default_protocol_versions()
                    .unwrap_or_else(|_| unreachable_tls())
                    .with_root_certificates(rustls::RootCertStore::empty())
                    .with_no_client_auth(),
            )),
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
            let client_auth = match (&c.client_secret, &c.client_assertion) {
                (Some(secret), _) => ClientAuth::Secret(read("client_secret", secret)?),
                (None, Some(a)) => {
                    let pem = read("client_assertion.private_key", &a.private_key)?;
                    ClientAuth::Assertion(assertion(name, a, &pem, &c.token_url)?)
                }
                (None, None) => anyhow::bail!("credential `{name}` has neither client_secret nor client_assertion"),
            };
            entries.insert(
                name.clone(),
                Arc::new(Credential {
                    name: name.clone(),
                    config: c.clone(),
                    client_id: read("client_id", &c.client_id)?,
                    client_auth,
                    first_refresh_token: c.refresh_token.as_ref().map(|r| read("refresh_token", r)).transpose()?,
                    cache: tokio::sync::Mutex::new(None),
                    dropped_at: std::sync::Mutex::new(None),
                    refused: std::sync::Mutex::new(None),
                }),
            );
        }
        let tls = crate::net::tls::client_config(&config.server.extra_ca_files, &config.base_dir)?;
        Ok(Arc::new(Credentials {
            entries,
            store: Some(store),
            client: client(tls),
        }))
    }

    /// Which of the `granted` credentials covers a destination, if any (without fetching a token):
    /// its name, the header its token goes in (lower case) and the prefix before the token.
    pub fn credential_for(&self, granted: &[String], destination: &Destination) -> Option<(String, String, String)> {
        granted.iter().find_map(|name| {
            let c = self.entries.get(name)?;
            c.config.destinations.iter().any(|d| d.allows(destination)).then(|| {
                (
                    name.clone(),
                    c.config.header.to_ascii_lowercase(),
                    c.config.prefix.clone(),
                )
            })
        })
    }

    /// The token for a request, if one of the `granted` credentials covers its destination.
    pub async fn bearer_for(
        &self,
        granted: &[String],
        destination: &Destination,
    ) -> Result<Option<Injected>, CredentialError> {
        for name in granted {
            let Some(credential) = self.entries.get(name) else {
                continue;
            };
            if credential.config.destinations.iter().any(|d| d.allows(destination)) {
                let token = self.token(credential).await?;
                return Ok(Some(Injected {
                    credential: name.clone(),
                    header: credential.config.header.to_ascii_lowercase(),
                    value: format!("{}{token}", credential.config.prefix),
                    token,
                }));
            }
        }
        Ok(None)
    }

    /// The credentials whose authorization server refuses them now (until a request succeeds).
    pub fn refusals(&self) -> Vec<Refusal> {
        self.entries
            .values()
            .filter_map(|c| c.refused.lock().ok().and_then(|r| r.clone()))
            .collect()
    }

    /// Forgets the cached access token of credential `name` if it is still `token`: the
    /// destination answered 401 with it (revoked, or expired early), so the next request fetches a
    /// new one instead of failing until the cached one would have expired.
    pub async fn invalidate(&self, name: &str, token: &str) {
        if let Some(credential) = self.entries.get(name) {
            let mut cache = credential.cache.lock().await;
            let recently = credential
                .dropped_at
                .lock()
                .ok()
                .and_then(|d| *d)
                .is_some_and(|at| at.elapsed() < DROP_AT_MOST_EVERY);
            if !recently && cache.as_ref().is_some_and(|c| c.token == token) {
                *cache = None;
                if let Ok(mut at) = credential.dropped_at.lock() {
                    *at = Some(Instant::now());
                }
                tracing::warn!(credential = %name, "a destination answered 401 with the access token; a new one will be fetched");
            }
        }
    }

    async fn token(&self, c: &Arc<Credential>) -> Result<String, CredentialError> {
        // Holding the lock while fetching makes concurrent callers share one token request.
        let mut cache = c.cache.lock().await;
        if let Some(cached) = cache.as_ref()
            && cached.refresh_at > Instant::now()
        {
            return Ok(cached.token.clone());
        }
        // The request runs in its own task: a caller that gives up (a plugin's deadline) must not
        // cut it off after the server rotated the refresh token but before the new one is stored.
        let fetch = tokio::spawn(fetch(c.clone(), self.store.clone(), self.client.clone()));
        let fresh = fetch
            .await
            .map_err(|e| CredentialError::Transient(c.name.clone(), format!("the token request failed: {e}")))?;
        if let Ok(mut refused) = c.refused.lock() {
            match &fresh {
                Ok(_) => *refused = None,
                Err(e @ CredentialError::Refused { .. }) => {
                    let earlier = refused.take();
                    *refused = Some(Refusal {
                        credential: c.name.clone(),
                        error: e.to_string(),
                        count: earlier.as_ref().map_or(0, |r| r.count) + 1,
                        since_ms: earlier.map_or_else(crate::store::now_ms, |r| r.since_ms),
                    });
                }
                Err(CredentialError::Transient(..)) => {}
            }
        }
        let fresh = fresh?;
        let token = fresh.token.clone();
        *cache = Some(fresh);
        Ok(token)
    }
}

/// One token request for `c`; stores a rotated refresh token before returning.
async fn fetch(
    c: Arc<Credential>,
    store: Option<Arc<dyn Store>>,
    client: TokenClient,
) -> Result<Cached, CredentialError> {
    {
        let transient = |why: String| CredentialError::Transient(c.name.clone(), why);
        // What this request carries that must not come back in an error (a token endpoint may
        // echo the request in its refusal): the refresh token, the client secret, the assertion,
        // as sent and as form-encoded.
        let mut sent = Vec::new();
        let mut note = |value: &str| {
            for value in [value.to_owned(), form_encode(value)] {
                sent.push(Sensitive {
                    kind: Kind::Credential,
                    name: c.name.clone(),
                    value,
                });
            }
        };
        let mut form = Vec::new();
        match c.config.grant {
            OAuthGrant::ClientCredentials => form.push(("grant_type", "client_credentials".to_owned())),
            OAuthGrant::RefreshToken => {
                let stored = match &store {
                    Some(store) => store
                        .kv_get(STATE_NAMESPACE, &c.name)
                        .await
                        .map_err(|e| transient(format!("cannot read the stored refresh token: {e}")))?
                        .and_then(|v| String::from_utf8(v).ok()),
                    None => None,
                };
                let refresh = stored.or_else(|| c.first_refresh_token.clone()).unwrap_or_default();
                note(&refresh);
                form.push(("grant_type", "refresh_token".to_owned()));
                form.push(("refresh_token", refresh));
            }
        }
        if let Some(scope) = &c.config.scope {
            form.push(("scope", scope.clone()));
        }
        let mut request = http::Request::post(&c.config.token_url)
            .header(http::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(http::header::ACCEPT, "application/json");
        match &c.client_auth {
            ClientAuth::Secret(secret) => note(secret),
            ClientAuth::Assertion(_) => {}
        }
        match &c.client_auth {
            ClientAuth::Secret(secret) if c.config.client_auth == ClientAuthStyle::Form => {
                form.push(("client_id", c.client_id.clone()));
                form.push(("client_secret", secret.clone()));
            }
            ClientAuth::Secret(secret) => {
                let basic = base64::engine::general_purpose::STANDARD.encode(format!(
                    "{}:{}",
                    form_encode(&c.client_id),
                    form_encode(secret)
                ));
                request = request.header(http::header::AUTHORIZATION, format!("Basic {basic}"));
            }
            ClientAuth::Assertion(a) => {
                let jwt = a
                    .sign(&c.client_id, c.config.scope.as_deref())
                    .map_err(|e| transient(format!("cannot sign the client assertion: {e}")))?;
                form.push((
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".to_owned(),
                ));
                note(&jwt);
                form.push(("client_assertion", jwt));
            }
        }
        let body: Vec<String> = form.iter().map(|(k, v)| format!("{k}={}", form_encode(v))).collect();
        let request = request
            .body(Full::new(Bytes::from(body.join("&"))))
            .map_err(|e| transient(format!("bad token_url: {e}")))?;
        #[allow(clippy::disallowed_methods)] // The host's own call to a token endpoint, not plugin egress.
        let call = client.request(request);
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
            let scrubber = Scrubber::new(&sent);
            let error = scrubber.scrub_string(json["error"].as_str().unwrap_or("").to_owned());
            let detail = scrubber.scrub_string(
                json["error_description"]
                    .as_str()
                    .unwrap_or("no description")
                    .to_owned(),
            );
            let action = match error.as_str() {
                "invalid_grant" => {
                    "the refresh token is revoked or expired: authorize kaunter again and put the new refresh_token in the config"
                }
                "invalid_client" | "unauthorized_client" => match c.client_auth {
                    ClientAuth::Secret(_) => "check client_id and client_secret",
                    ClientAuth::Assertion(_) => {
                        "check client_id, client_assertion.key_id and that the authorization server has the certificate of client_assertion.private_key"
                    }
                },
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
        if let (Some(rotated), Some(store)) = (json["refresh_token"].as_str(), &store) {
            // Keep the new refresh token before using the access token: the old one may be dead now.
            store
                .kv_set(STATE_NAMESPACE, &c.name, rotated.as_bytes().to_vec(), u64::MAX)
                .await
                .map_err(|e| transient(format!("cannot store the rotated refresh token: {e}")))?;
        }
        // A number by RFC 6749; some servers send it as a string.
        let lifetime = json["expires_in"]
            .as_u64()
            .or_else(|| json["expires_in"].as_str().and_then(|s| s.trim().parse().ok()))
            .unwrap_or(300);
        let refresh_in = Duration::from_secs(lifetime.saturating_sub(60).max(lifetime / 2).max(1));
        tracing::info!(credential = %c.name, expires_in = lifetime, "OAuth access token obtained");
        Ok(Cached {
            token,
            refresh_at: Instant::now() + refresh_in,
        })
    }
}

fn client(tls: Arc<rustls::ClientConfig>) -> TokenClient {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config((*tls).clone())
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Client::builder(TokioExecutor::new()).build(connector)
}

/// The ring provider supports the safe default protocol versions; this only satisfies the types.
#[allow(clippy::panic)]
fn unreachable_tls() -> rustls::ConfigBuilder<rustls::ClientConfig, rustls::WantsVerifier> {
    panic!("the ring TLS provider rejected the default protocol versions")
}

/// Reads a client-assertion key and settings, failing with what to fix.
fn assertion(
    name: &str,
    a: &crate::config::ClientAssertionConfig,
    pem: &str,
    token_url: &str,
) -> anyhow::Result<Assertion> {
    use jsonwebtoken::{Algorithm, EncodingKey};
    let (algorithm, key) = match a.algorithm.as_str() {
        "PS256" => (Algorithm::PS256, EncodingKey::from_rsa_pem(pem.as_bytes())),
        "RS256" => (Algorithm::RS256, EncodingKey::from_rsa_pem(pem.as_bytes())),
        "ES256" => (Algorithm::ES256, EncodingKey::from_ec_pem(pem.as_bytes())),
        other => anyhow::bail!(
            "credential `{name}`: client_assertion algorithm `{other}` is not supported; use PS256, RS256 or ES256"
        ),
    };
    let key = key.map_err(|e| {
        anyhow::anyhow!(
            "credential `{name}`: client_assertion.private_key is not a PEM {} private key: {e}",
            if algorithm == Algorithm::ES256 {
                "P-256 (PKCS#8)"
            } else {
                "RSA"
            }
        )
    })?;
    let assertion = Assertion {
        algorithm,
        key,
        key_id: a.key_id.clone(),
        audience: a.audience.clone().unwrap_or_else(|| token_url.to_owned()),
        lifetime_secs: a.lifetime_secs.clamp(1, 3600),
    };
    // Sign once now, so a key that cannot sign fails at start-up rather than on the first event.
    assertion
        .sign("start-up-check", None)
        .map_err(|e| anyhow::anyhow!("credential `{name}`: cannot sign with client_assertion.private_key: {e}"))?;
    Ok(assertion)
}

impl Assertion {
    /// A fresh assertion: `iss` and `sub` the client id, `aud`, `scope`, `iat`, `exp`, a random `jti`.
    fn sign(&self, client_id: &str, scope: Option<&str>) -> Result<String, jsonwebtoken::errors::Error> {
        let now = chrono::Utc::now().timestamp();
        let mut header = jsonwebtoken::Header::new(self.algorithm);
        header.kid = Some(self.key_id.clone());
        let mut claims = serde_json::json!({
            "iss": client_id,
            "sub": client_id,
            "aud": self.audience,
            "iat": now,
            "exp": now + self.lifetime_secs as i64,
            "jti": ulid::Ulid::new().to_string(),
        });
        if let Some(scope) = scope {
            claims["scope"] = scope.into();
        }
        jsonwebtoken::encode(&header, &claims, &self.key)
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ClientAssertionConfig, SecretRef};

    /// A throwaway RSA key made for these tests only.
    const RSA_KEY: &str = include_str!("testdata/rsa-test-key.pem");
    const RSA_PUBLIC: &str = include_str!("testdata/rsa-test-key.pub.pem");

    fn config(algorithm: &str) -> ClientAssertionConfig {
        ClientAssertionConfig {
            algorithm: algorithm.into(),
            key_id: "cert-42".into(),
            private_key: SecretRef::Value(String::new()),
            audience: None,
            lifetime_secs: 600,
        }
    }

    #[test]
    fn a_ps256_assertion_carries_the_key_id_and_the_rfc_7523_claims() -> anyhow::Result<()> {
        let token_url = "https://1234567.suitetalk.api.netsuite.com/services/rest/auth/oauth2/v1/token";
        let a = assertion("netsuite", &config("PS256"), RSA_KEY, token_url)?;
        let jwt = a.sign("client-1", Some("rest_webservices"))?;
        let header = jsonwebtoken::decode_header(&jwt)?;
        assert_eq!(header.alg, jsonwebtoken::Algorithm::PS256);
        assert_eq!(header.kid.as_deref(), Some("cert-42"));
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::PS256);
        validation.set_audience(&[token_url]);
        validation.set_issuer(&["client-1"]);
        let key = jsonwebtoken::DecodingKey::from_rsa_pem(RSA_PUBLIC.as_bytes())?;
        let claims = jsonwebtoken::decode::<serde_json::Value>(&jwt, &key, &validation)?.claims;
        assert_eq!(claims["sub"], "client-1");
        assert_eq!(claims["scope"], "rest_webservices");
        assert_eq!(
            claims["exp"].as_i64().unwrap_or(0) - claims["iat"].as_i64().unwrap_or(0),
            600
        );
        Ok(())
    }

    #[test]
    fn a_key_that_does_not_fit_the_algorithm_is_refused_at_start_up() {
        let error = assertion("netsuite", &config("ES256"), RSA_KEY, "https://t.example/token")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            error.starts_with(
                "credential `netsuite`: client_assertion.private_key is not a PEM P-256 (PKCS#8) private key"
            ),
            "{error}"
        );
    }
}
