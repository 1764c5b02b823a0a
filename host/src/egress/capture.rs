//! Captured egress: requests a plugin makes in a sandbox run, a shadow deployment or a smoke call
//! are checked against its grants exactly like live ones, then recorded and answered from canned
//! responses instead of being sent. Live requests can be recorded too (without changing what is
//! sent), so a shadow version's requests can be compared with the live version's.

use super::{CallProblems, Destination, HttpGrant, MAX_REQUEST_BYTES, PluginEgress, Problem};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use wasmtime_wasi_http::{Error as HttpError, WasiBody};

/// One outbound request as the plugin made it (after the checkpoint added what it adds).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CapturedRequest {
    /// HTTP method.
    pub method: String,
    /// Full URL.
    pub url: String,
    /// Headers in order; injected credentials appear as `[redacted: credential NAME]`.
    pub headers: Vec<(String, String)>,
    /// The body (UTF-8, or `base64:` and the bytes in base64 when not text).
    pub body: String,
    /// The status it was answered with (canned, or the real one for recorded live requests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
}

/// One canned answer: `match` is `"METHOD URL-prefix"` (or just a URL prefix).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CannedResponse {
    /// Which requests it answers: `"POST http://erp.example/hooks"`, or a URL prefix alone.
    #[serde(rename = "match")]
    pub matches: String,
    /// Status code.
    #[serde(default = "ok")]
    pub status: u16,
    /// Response headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Body: a JSON value (sent as JSON) or a string (sent as is).
    #[serde(default)]
    pub body: Option<serde_json::Value>,
}

fn ok() -> u16 {
    200
}

/// Canned answers. A request is answered by the first `match` that fits it; several answers with
/// the same `match` are served in order, one per request, and the last one repeats (so a
/// one-URL protocol such as JSON-RPC or GraphQL can script a conversation). A request nothing
/// matches gets `200 {}`.
#[derive(Debug, Default)]
pub struct CannedResponses {
    /// The answers, in file order.
    pub rules: Vec<CannedResponse>,
    /// How many requests each `match` has answered so far.
    served: std::sync::Mutex<BTreeMap<String, usize>>,
}

impl CannedResponses {
    /// Canned answers from a list.
    pub fn new(rules: Vec<CannedResponse>) -> Self {
        CannedResponses {
            rules,
            served: Default::default(),
        }
    }

    /// Reads a JSON array of [`CannedResponse`]s.
    pub fn parse(text: &str) -> Result<Self, String> {
        serde_json::from_str(text).map(CannedResponses::new).map_err(|e| {
            format!("canned responses must be a JSON array of {{\"match\", \"status\", \"headers\", \"body\"}}: {e}")
        })
    }

    /// The answer for the next request to `method url`.
    pub fn answer(&self, method: &str, url: &str) -> (u16, BTreeMap<String, String>, Vec<u8>) {
        let fits = |r: &CannedResponse| match r.matches.split_once(' ') {
            Some((m, prefix)) => m.eq_ignore_ascii_case(method) && url.starts_with(prefix),
            None => url.starts_with(&r.matches),
        };
        let rule = self.rules.iter().find(|r| fits(r)).map(|first| {
            let queue: Vec<&CannedResponse> = self.rules.iter().filter(|r| r.matches == first.matches).collect();
            let mut served = self.served.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let n = served.entry(first.matches.clone()).or_default();
            let rule = queue[(*n).min(queue.len() - 1)];
            *n += 1;
            rule
        });
        match rule {
            Some(r) => {
                let mut headers = r.headers.clone();
                let body = match &r.body {
                    None => Vec::new(),
                    Some(serde_json::Value::String(s)) => s.clone().into_bytes(),
                    Some(json) => {
                        headers
                            .entry("content-type".into())
                            .or_insert_with(|| "application/json".into());
                        json.to_string().into_bytes()
                    }
                };
                (r.status, headers, body)
            }
            None => (
                200,
                BTreeMap::from([("content-type".to_owned(), "application/json".to_owned())]),
                b"{}".to_vec(),
            ),
        }
    }
}

fn body_text(bytes: &[u8]) -> String {
    use base64::Engine as _;
    match std::str::from_utf8(bytes) {
        Ok(text) => text.to_owned(),
        Err(_) => format!("base64:{}", base64::engine::general_purpose::STANDARD.encode(bytes)),
    }
}

fn boxed(bytes: Bytes) -> WasiBody {
    Full::new(bytes).map_err(|never| match never {}).boxed_unsync()
}

/// Checks a request against the plugin's grants (by URL alone: names are not resolved, since
/// nothing is sent), records it with any credential shown redacted, and answers it from `canned`.
pub(super) async fn capture(
    who: &PluginEgress,
    problems: &CallProblems,
    canned: &CannedResponses,
    request: http::Request<WasiBody>,
) -> Result<(CapturedRequest, http::Response<WasiBody>), HttpError> {
    let mut request = request;
    let destination = Destination::of_request(request.method(), request.uri())
        .map_err(|e| {
            format!(
                "plugin `{}` sent {} {}: {e}",
                who.plugin,
                request.method(),
                request.uri()
            )
        })
        .and_then(|(d, normal)| {
            let d = allowed(&who.plugin, &who.grants, d)?;
            *request.uri_mut() = normal;
            Ok(d)
        })
        .inspect_err(|reason| problems.report(Problem::Denied(reason.clone())))
        .map_err(|_| HttpError::HttpRequestDenied)?;
    let (mut captured, _) = snapshot(request).await?;
    if let Err(reason) = super::check_secret_markers(&captured.url, &captured.headers, who, &destination) {
        problems.report(Problem::Denied(reason));
        return Err(HttpError::HttpRequestDenied);
    }
    if let Some((name, header, prefix)) = who.credentials.credential_for(&who.credential_grants, &destination) {
        captured.headers.retain(|(k, _)| !k.eq_ignore_ascii_case(&header));
        captured
            .headers
            .push((header, format!("{prefix}[redacted: credential {name}]")));
    }
    let (status, headers, body) = canned.answer(&captured.method, &captured.url);
    captured.status = Some(status);
    let mut response = http::Response::builder().status(status);
    for (k, v) in &headers {
        response = response.header(k, v);
    }
    let response = response
        .body(boxed(Bytes::from(body)))
        .map_err(|e| HttpError::InternalError(Some(format!("canned response: {e}"))))?;
    Ok((captured, response))
}

fn allowed(plugin: &str, grants: &[HttpGrant], destination: Destination) -> Result<Destination, String> {
    if grants.iter().any(|g| g.allows(&destination)) {
        Ok(destination)
    } else {
        let granted: Vec<&str> = grants.iter().map(|g| g.text.as_str()).collect();
        Err(format!(
            "plugin `{plugin}` tried {destination}, which no grant allows (granted: {})",
            if granted.is_empty() {
                "none".to_owned()
            } else {
                granted.join(", ")
            }
        ))
    }
}

/// Reads a request's body (within the size cap) and returns a copy of the request as captured,
/// plus the request rebuilt around the bytes read so it can still be sent.
pub(super) async fn snapshot(
    request: http::Request<WasiBody>,
) -> Result<(CapturedRequest, http::Request<WasiBody>), HttpError> {
    let (parts, body) = request.into_parts();
    let bytes = Limited::new(body, MAX_REQUEST_BYTES)
        .collect()
        .await
        .map_err(|_| HttpError::HttpRequestBodySize(Some(MAX_REQUEST_BYTES as u64)))?
        .to_bytes();
    let captured = CapturedRequest {
        method: parts.method.to_string(),
        url: parts.uri.to_string(),
        headers: parts
            .headers
            .iter()
            .map(|(k, v)| (k.to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
            .collect(),
        body: body_text(&bytes),
        status: None,
    };
    let rebuilt = http::Request::from_parts(parts, boxed(bytes));
    Ok((captured, rebuilt))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status_of(canned: &CannedResponses, method: &str, url: &str) -> u16 {
        canned.answer(method, url).0
    }

    #[test]
    fn answers_with_one_match_are_served_in_order_and_the_last_repeats() {
        let canned = CannedResponses::parse(
            r#"[
                {"match": "POST https://erp.example/rpc", "status": 200, "body": {"result": "login"}},
                {"match": "POST https://erp.example/rpc", "status": 201, "body": {"result": "sale"}},
                {"match": "POST https://erp.example/rpc", "status": 202, "body": {"result": "done"}},
                {"match": "https://erp.example/", "status": 404}
            ]"#,
        )
        .unwrap();
        let url = "https://erp.example/rpc";
        let answers: Vec<u16> = (0..5).map(|_| status_of(&canned, "POST", url)).collect();
        assert_eq!(answers, [200, 201, 202, 202, 202]);
        assert_eq!(canned.answer("POST", url).2, br#"{"result":"done"}"#);
        // Another match has its own queue; nothing matching gets 200 {}.
        assert_eq!(status_of(&canned, "GET", "https://erp.example/items"), 404);
        assert_eq!(canned.answer("GET", "https://other.example/").2, b"{}");
    }
}
