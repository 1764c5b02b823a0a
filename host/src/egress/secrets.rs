//! What the checkpoint puts into requests and takes back out of responses. In: `$SECRET(name)`
//! markers in a request's URL and header values are filled with the secret's text, after the grant
//! check and only for the secret's own `for` destinations. Out: every value put into the current
//! call's requests (those texts and the OAuth tokens added by [`super::Egress::send`]) is noted in
//! the call's [`CallSecrets`], and scrubbed from each response's header values and body before the
//! plugin sees it (see [`crate::scrub`] for the encodings recognised); the engine scrubs the call's
//! error and the plugin's log lines with the same values. Nothing here decides whether a request
//! may go.

use super::{Destination, HttpGrant, PluginEgress, normalize_path};
use crate::scrub::{Kind, Scrubber, Sensitive};
use bytes::Bytes;
use std::sync::{Arc, Mutex, PoisonError};
use wasmtime_wasi_http::WasiBody;

/// Where a plugin wants a granted secret's text: `$SECRET(name)` in the URL or a header value.
/// Static credentials that vendors put in URLs or headers (a Slack incoming-webhook path, a
/// DingTalk robot's `access_token`, an API key header) stay in the host this way: the plugin's
/// configuration and every captured or recorded request show only the marker, and the checkpoint
/// fills it in on the way out, after the grant check.
pub const SECRET_MARKER: &str = "$SECRET(";

/// A secret a plugin may put in requests: its bytes and the destinations it may go to.
#[derive(Clone, Debug)]
pub struct SendableSecret {
    /// The key bytes.
    pub bytes: Vec<u8>,
    /// `[secrets] NAME.for`: where it may be sent (empty: nowhere, crypto only).
    pub destinations: Vec<HttpGrant>,
}

/// `text` with every `$SECRET(name)` replaced by that secret's text, when the secret is granted to
/// the plugin and its `for` destinations include `to`; `None` when `text` has no marker.
pub fn fill_secrets(text: &str, who: &PluginEgress, to: &Destination) -> Result<Option<String>, String> {
    fill(text, who, to, &mut |_, _| {})
}

/// [`fill_secrets`], telling `noted` each secret's name and text as it is filled in.
fn fill(
    text: &str,
    who: &PluginEgress,
    to: &Destination,
    noted: &mut dyn FnMut(&str, &str),
) -> Result<Option<String>, String> {
    if !text.contains(SECRET_MARKER) {
        return Ok(None);
    }
    let mut filled = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(SECRET_MARKER) {
        filled.push_str(&rest[..start]);
        let after = &rest[start + SECRET_MARKER.len()..];
        let end = after
            .find(')')
            .ok_or_else(|| format!("plugin `{}` sent an unclosed `$SECRET(` in a request", who.plugin))?;
        let name = &after[..end];
        let secret = who.secrets.get(name).ok_or_else(|| {
            format!(
                "plugin `{}` asked for secret `{name}` in a request, which it is not granted; add \"{name}\" to the plugin's `secrets` (and define it under [secrets])",
                who.plugin
            )
        })?;
        if !secret.destinations.iter().any(|g| g.allows(to)) {
            return Err(format!(
                "plugin `{}` put secret `{name}` in a request to {to}, where that secret may not go; to allow it, add \"{} {}://{}:{}{}\" to the secret's `for` under [secrets] (without `for` a secret is used only through crypto)",
                who.plugin, to.method, to.scheme, to.host, to.port, to.path
            ));
        }
        let value = std::str::from_utf8(&secret.bytes).map_err(|_| {
            format!("secret `{name}` is not text, so it cannot go in a URL or header; give it `encoding = \"text\"`")
        })?;
        noted(name, value);
        filled.push_str(value);
        rest = &after[end + 1..];
    }
    filled.push_str(rest);
    Ok(Some(filled))
}

/// Fills `$SECRET(name)` markers in the request's path, query and header values, noting each
/// secret's text in `sent`.
pub(super) fn put_secrets_in(
    request: &mut http::Request<WasiBody>,
    who: &PluginEgress,
    to: &Destination,
    sent: &CallSecrets,
) -> Result<(), String> {
    let mut noted = |name: &str, value: &str| sent.note(Kind::Secret, name, value);
    if let Some(path) = request.uri().path_and_query().map(|p| p.as_str().to_owned())
        && let Some(filled) = fill(&path, who, to, &mut noted)?
    {
        let mut parts = request.uri().clone().into_parts();
        let filled: http::uri::PathAndQuery = filled.parse().map_err(|_| {
            format!(
                "plugin `{}`: a secret put in the URL makes it invalid; store it URL-safe",
                who.plugin
            )
        })?;
        // A secret's text must not move the request to another path than the one checked.
        if normalize_path(filled.path()).as_deref() != Ok(filled.path()) {
            return Err(format!(
                "plugin `{}`: a secret put in the URL path would change the path that was checked; store it URL-safe, without `/`, `.` segments or escapes",
                who.plugin
            ));
        }
        parts.path_and_query = Some(filled);
        *request.uri_mut() = http::Uri::from_parts(parts).map_err(|e| format!("plugin `{}`: {e}", who.plugin))?;
    }
    for value in request.headers_mut().values_mut() {
        let Ok(text) = value.to_str() else { continue };
        if let Some(filled) = fill(text, who, to, &mut noted)? {
            let mut header = http::HeaderValue::from_str(&filled)
                .map_err(|_| format!("plugin `{}`: a secret put in a header makes it invalid", who.plugin))?;
            header.set_sensitive(true);
            *value = header;
        }
    }
    Ok(())
}

/// Checks that every `$SECRET(name)` in a captured request names a secret the plugin may send
/// there, without filling anything in (captured requests show the marker).
pub fn check_secret_markers(
    url: &str,
    headers: &[(String, String)],
    who: &PluginEgress,
    to: &Destination,
) -> Result<(), String> {
    fill_secrets(url, who, to)?;
    for (_, value) in headers {
        fill_secrets(value, who, to)?;
    }
    Ok(())
}

/// The values the checkpoint put into the current call's requests: filled `$SECRET(name)` texts
/// and added OAuth tokens. Kept by the hooks of the one instance that runs the call (like
/// [`super::CallProblems`]), never in the [`PluginEgress`] shared by every warm instance, so one
/// event's call neither sees another's values nor loses its own when another call starts.
#[derive(Default)]
pub struct CallSecrets(Mutex<Sent>);

#[derive(Default)]
struct Sent {
    values: Vec<Sensitive>,
    /// Built on first use after the last new value.
    scrubber: Option<Arc<Scrubber>>,
}

impl CallSecrets {
    /// Notes a value put into a request of the current call.
    pub fn note(&self, kind: Kind, name: &str, value: &str) {
        let mut sent = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if !value.is_empty() && !sent.values.iter().any(|v| v.value == value) {
            sent.values.push(Sensitive {
                kind,
                name: name.to_owned(),
                value: value.to_owned(),
            });
            sent.scrubber = None;
        }
    }

    /// A scrubber for every value noted since the last [`CallSecrets::clear`]; `None` when none
    /// was.
    pub fn scrubber(&self) -> Option<Arc<Scrubber>> {
        let mut sent = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if sent.values.is_empty() {
            return None;
        }
        if sent.scrubber.is_none() {
            sent.scrubber = Some(Arc::new(Scrubber::new(&sent.values)));
        }
        sent.scrubber.clone()
    }

    /// Forgets the values (a new call begins).
    pub fn clear(&self) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Sent::default();
    }
}

/// A response's header values and body with the call's values taken out; `content-length` follows
/// the body. Header names are left as they are.
pub(super) fn scrub_response(scrubber: &Scrubber, headers: &mut http::HeaderMap, body: Bytes) -> Bytes {
    for value in headers.values_mut() {
        if let Some(clean) = scrubber.scrub_bytes(value.as_bytes()) {
            *value =
                http::HeaderValue::from_bytes(&clean).unwrap_or_else(|_| http::HeaderValue::from_static("[redacted]"));
        }
    }
    match scrubber.scrub_bytes(&body) {
        Some(clean) => {
            if headers.contains_key(http::header::CONTENT_LENGTH) {
                headers.insert(http::header::CONTENT_LENGTH, http::HeaderValue::from(clean.len()));
            }
            Bytes::from(clean)
        }
        None => body,
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::credentials::Credentials;
    use http_body_util::{BodyExt, Full};
    use std::collections::BTreeMap;

    pub(in crate::egress) fn plugin_with(secret: &[u8]) -> PluginEgress {
        let sendable = SendableSecret {
            bytes: secret.to_vec(),
            destinations: "POST https://oapi.dingtalk.com/robot/send"
                .parse()
                .into_iter()
                .collect(),
        };
        let secrets = BTreeMap::from([("robot-token".to_owned(), sendable)]);
        PluginEgress::new("dingtalk".into(), Arc::from([]), Credentials::none(), Arc::from([]))
            .with_secrets(Arc::new(secrets))
    }

    fn to(scheme: &str, host: &str, path: &str) -> Destination {
        Destination {
            method: "POST".into(),
            scheme: scheme.into(),
            host: host.into(),
            port: if scheme == "https" { 443 } else { 80 },
            path: path.into(),
        }
    }

    #[test]
    fn secret_markers_are_filled_only_with_granted_text_secrets_for_their_destinations() {
        let who = plugin_with(b"2f1c9e");
        let robot = to("https", "oapi.dingtalk.com", "/robot/send");
        let url = "/robot/send?access_token=$SECRET(robot-token)&timestamp=1";
        assert_eq!(
            fill_secrets(url, &who, &robot),
            Ok(Some("/robot/send?access_token=2f1c9e&timestamp=1".to_owned()))
        );
        assert_eq!(fill_secrets("/robot/send", &who, &robot), Ok(None));
        assert_eq!(
            fill_secrets("$SECRET(other)", &who, &robot),
            Err("plugin `dingtalk` asked for secret `other` in a request, which it is not granted; add \"other\" to the plugin's `secrets` (and define it under [secrets])".to_owned())
        );
        assert_eq!(
            fill_secrets("$SECRET(robot-token", &who, &robot),
            Err("plugin `dingtalk` sent an unclosed `$SECRET(` in a request".to_owned())
        );
        // A granted host that is not one of the secret's destinations never gets it, nor does
        // plain http to the same host.
        for elsewhere in [
            to("https", "echo.example", "/anything"),
            to("http", "oapi.dingtalk.com", "/robot/send"),
        ] {
            let refused = fill_secrets("/x?t=$SECRET(robot-token)", &who, &elsewhere);
            assert!(
                refused
                    .as_ref()
                    .is_err_and(|e| e.contains("where that secret may not go")),
                "{refused:?}"
            );
        }
        assert!(
            fill_secrets("$SECRET(robot-token)", &plugin_with(&[0xff, 0xfe]), &robot)
                .is_err_and(|e| e.contains("encoding = \"text\""))
        );
    }

    const URL_KEY: &str = "robot~9f8e7d6c/5b4a+3210";
    const HEADER_KEY: &str = "hdr-key/2f+9<Q>&\"z\"=x";

    fn sendable(text: &str, to: &str) -> SendableSecret {
        SendableSecret {
            bytes: text.as_bytes().to_vec(),
            destinations: to.parse().into_iter().collect(),
        }
    }

    /// A vendor that answers 400 with the whole request (URL and headers) in its body (as is,
    /// JSON-escaped the PHP way and in base64) and in a response header, and records what came.
    async fn echoing_vendor() -> (String, Arc<Mutex<Vec<String>>>) {
        use base64::Engine as _;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let kept = seen.clone();
        let app = axum::Router::new().fallback(move |request: axum::extract::Request| {
            let kept = kept.clone();
            async move {
                let mut dump = format!("{} {}\n", request.method(), request.uri());
                for (k, v) in request.headers() {
                    dump.push_str(&format!("{k}: {}\n", String::from_utf8_lossy(v.as_bytes())));
                }
                kept.lock().unwrap().push(dump.clone());
                let json = serde_json::to_string(&dump).unwrap().replace('/', "\\/");
                let b64 = base64::engine::general_purpose::STANDARD.encode(&dump);
                let body = format!("{{\"echo\":{json},\"raw\":{dump:?},\"b64\":\"{b64}\"}}");
                axum::http::Response::builder()
                    .status(400)
                    .header("x-echo", b64)
                    .header("x-echo-url", request.uri().to_string())
                    .header("content-length", body.len())
                    .body(axum::body::Body::from(body))
                    .unwrap()
            }
        });
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (url, seen)
    }

    #[tokio::test]
    async fn an_echoed_secret_is_scrubbed_from_the_response_headers_and_body_the_plugin_gets() {
        let (vendor, seen) = echoing_vendor().await;
        let secrets = BTreeMap::from([
            (
                "url-key".to_owned(),
                sendable(URL_KEY, &format!("POST {vendor}/robot/")),
            ),
            (
                "header-key".to_owned(),
                sendable(HEADER_KEY, &format!("POST {vendor}/robot/")),
            ),
        ]);
        let grants: Arc<[HttpGrant]> = Arc::from(vec![format!("POST {vendor}/robot/").parse::<HttpGrant>().unwrap()]);
        let who = PluginEgress::new("echoed".into(), grants, Credentials::none(), Arc::from([]))
            .with_secrets(Arc::new(secrets));
        let tls = super::super::tls::client_config(&[], std::path::Path::new(".")).unwrap();
        let egress = super::super::Egress::new(std::time::Duration::from_secs(10), tls);
        let (problems, sent) = (super::super::CallProblems::default(), CallSecrets::default());
        let request = http::Request::post(format!("{vendor}/robot/send?access_token=$SECRET(url-key)&n=1"))
            .header("x-api-key", "$SECRET(header-key)")
            .body(
                Full::new(Bytes::from("{}"))
                    .map_err(|never| match never {})
                    .boxed_unsync(),
            )
            .unwrap();
        let response = egress.send(&who, &problems, &sent, request).await.unwrap();
        assert!(problems.take().is_empty());
        let received = seen.lock().unwrap().concat();
        assert!(
            received.contains(URL_KEY) && received.contains(HEADER_KEY),
            "the vendor got both: {received}"
        );

        assert_eq!(response.status(), 400);
        let (parts, body) = response.into_parts();
        let body = body.collect().await.unwrap().to_bytes();
        let body = String::from_utf8(body.to_vec()).unwrap();
        let length: usize = parts.headers["content-length"].to_str().unwrap().parse().unwrap();
        assert_eq!(length, body.len(), "content-length follows the scrubbed body");
        let mut shown = body.clone();
        for (name, value) in &parts.headers {
            shown.push_str(&format!("\n{name}: {}", value.to_str().unwrap()));
        }
        for (value, label) in [
            (URL_KEY, "[redacted: secret url-key]"),
            (HEADER_KEY, "[redacted: secret header-key]"),
        ] {
            assert!(!shown.contains(value), "{value} in {shown}");
            for piece in value.as_bytes().chunks(6) {
                let piece = std::str::from_utf8(piece).unwrap();
                if piece.len() == 6 {
                    assert!(!shown.contains(&piece.replace('/', "\\/")), "{piece} in {shown}");
                }
            }
            assert!(
                shown.matches(label).count() >= 3,
                "{label} in the body's forms: {shown}"
            );
        }
        assert_eq!(
            parts.headers["x-echo-url"],
            "/robot/send?access_token=[redacted: secret url-key]&n=1"
        );
        use base64::Engine as _;
        assert!(
            base64::engine::general_purpose::STANDARD
                .decode(parts.headers["x-echo"].as_bytes())
                .is_err()
        );
    }

    /// A live request recorded for a shadow comparison is copied before the checkpoint fills it,
    /// so the record shows the markers, like captured ones.
    #[tokio::test]
    async fn recorded_live_requests_show_the_markers_not_the_values() {
        use wasmtime_wasi_http::WasiHttpHooks as _;
        let (vendor, seen) = echoing_vendor().await;
        let secrets = BTreeMap::from([(
            "url-key".to_owned(),
            sendable(URL_KEY, &format!("POST {vendor}/robot/")),
        )]);
        let grants: Arc<[HttpGrant]> = Arc::from(vec![format!("POST {vendor}/robot/").parse::<HttpGrant>().unwrap()]);
        let who = PluginEgress::new("echoed".into(), grants, Credentials::none(), Arc::from([]))
            .with_secrets(Arc::new(secrets));
        who.record.store(true, std::sync::atomic::Ordering::Relaxed);
        let tls = super::super::tls::client_config(&[], std::path::Path::new(".")).unwrap();
        let egress = super::super::Egress::new(std::time::Duration::from_secs(10), tls);
        let mut hooks = super::super::EgressHooks::new(egress, Arc::new(who), 5);
        hooks.begin_call();
        let request = http::Request::post(format!("{vendor}/robot/send?access_token=$SECRET(url-key)"))
            .body(
                Full::new(Bytes::from("{}"))
                    .map_err(|never| match never {})
                    .boxed_unsync(),
            )
            .unwrap();
        let sent = hooks.send_request(request, None, Box::new(async { Ok(()) }));
        let (response, _) = Box::into_pin(sent).await.unwrap();
        assert_eq!(response.status(), 400);
        assert!(
            seen.lock().unwrap().concat().contains(URL_KEY),
            "the live request carried the value"
        );
        let recorded = hooks.take_captured();
        assert_eq!(
            recorded[0].url,
            format!("{vendor}/robot/send?access_token=$SECRET(url-key)")
        );
        assert_eq!(recorded[0].status, Some(400));
        assert!(
            hooks
                .scrubber()
                .is_some_and(|s| s.scrub(URL_KEY) == "[redacted: secret url-key]")
        );
    }

    #[test]
    fn the_values_sent_belong_to_one_call_of_one_instance() {
        use super::super::{Egress, EgressHooks};
        let tls = super::super::tls::client_config(&[], std::path::Path::new(".")).unwrap();
        let egress = Egress::new(std::time::Duration::from_secs(1), tls);
        let who = Arc::new(plugin_with(b"2f1c9e"));
        // Two warm instances of the same plugin version, each running a call.
        let (a, b) = (
            EgressHooks::new(egress.clone(), who.clone(), 5),
            EgressHooks::new(egress, who, 5),
        );
        a.begin_call();
        b.begin_call();
        a.sent.note(Kind::Secret, "robot-token", "token-of-call-a");
        assert!(b.scrubber().is_none(), "another instance's call never sees the value");
        b.sent.note(Kind::Credential, "erp", "token-of-call-b");
        b.begin_call();
        let scrubber = a.scrubber().unwrap();
        assert_eq!(
            scrubber.scrub("token-of-call-a token-of-call-b"),
            "[redacted: secret robot-token] token-of-call-b",
            "a new call on one instance does not clear another's"
        );
        a.begin_call();
        assert!(a.scrubber().is_none(), "a new call starts with nothing sent");
        a.sent.note(Kind::Secret, "robot-token", "");
        assert!(a.scrubber().is_none(), "nothing to scrub in an empty value");
    }
}
