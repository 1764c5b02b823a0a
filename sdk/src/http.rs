//! Outbound HTTP over standard `wasi:http`, served by the host's egress checkpoint.
//!
//! [`send`] makes one request and reads the whole response. [`delivery_outcome`] maps a response
//! to what the host should do, following the conventions every connector should share:
//! 2xx delivered, 409 already there, 410 endpoint gone, 429 throttled, 408/5xx retry, 401 retry
//! (when the host holds an OAuth credential for the destination it drops the token the target
//! refused and fetches a new one for the next attempt; the retry budget ends in the dead-letter
//! queue), other 4xx rejected for good; `Retry-After` (seconds or HTTP date) becomes the retry hint.

use crate::{DeliveryError, Receipt, RetryHint};
#[cfg(target_arch = "wasm32")]
use wasi::http::outgoing_handler;
#[cfg(target_arch = "wasm32")]
use wasi::http::types::{ErrorCode, Fields, Method, OutgoingBody, OutgoingRequest, Scheme};

/// A request to send.
#[derive(Debug, Clone)]
pub struct Request {
    /// `GET`, `POST`, ...
    pub method: String,
    /// Absolute URL: `http://host:port/path?query` or `https://...`.
    pub url: String,
    /// Header name/value pairs.
    pub headers: Vec<(String, String)>,
    /// Body bytes.
    pub body: Vec<u8>,
}

impl Request {
    /// A request with no headers and an empty body.
    pub fn new(method: &str, url: &str) -> Request {
        Request {
            method: method.to_ascii_uppercase(),
            url: url.into(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// A `GET`.
    pub fn get(url: &str) -> Request {
        Request::new("GET", url).header("accept", "application/json")
    }

    /// A request of any method with a JSON body (`PUT`, `PATCH`, ...).
    pub fn json(method: &str, url: &str, body: &impl serde::Serialize) -> Result<Request, HttpError> {
        let mut request = Request::post_json(url, body)?;
        request.method = method.to_ascii_uppercase();
        Ok(request)
    }

    /// A `POST` of an `application/x-www-form-urlencoded` body.
    pub fn post_form(url: &str, fields: &[(&str, &str)]) -> Request {
        let body = fields
            .iter()
            .map(|(k, v)| format!("{}={}", form_encode(k), form_encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        Request {
            method: "POST".into(),
            url: url.into(),
            headers: vec![("content-type".into(), "application/x-www-form-urlencoded".into())],
            body: body.into_bytes(),
        }
    }

    /// A `POST` of a JSON body (anything serde can serialise: an [`crate::Event`], a
    /// `serde_json::Value`, the plugin's own types).
    pub fn post_json(url: &str, body: &impl serde::Serialize) -> Result<Request, HttpError> {
        let body = serde_json::to_vec(body).map_err(|e| HttpError(format!("cannot encode the body as JSON: {e}")))?;
        Ok(Request {
            method: "POST".into(),
            url: url.into(),
            headers: vec![("content-type".into(), "application/json".into())],
            body,
        })
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Request {
        self.headers.push((name.to_ascii_lowercase(), value.to_owned()));
        self
    }
}

/// A response, fully read.
#[derive(Debug, Clone)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Headers, names lower case.
    pub headers: Vec<(String, String)>,
    /// Body bytes.
    pub body: Vec<u8>,
}

impl Response {
    /// First value of a header (name case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body parsed as JSON into the plugin's own type.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, HttpError> {
        serde_json::from_slice(&self.body).map_err(|e| {
            HttpError(format!(
                "HTTP {}: the response is not the JSON expected: {e}: {}",
                self.status,
                self.body_snippet(200)
            ))
        })
    }

    /// The body as text, lossily, cut to `max` bytes for error messages.
    pub fn body_snippet(&self, max: usize) -> String {
        let text = String::from_utf8_lossy(&self.body);
        let mut cut = text.len().min(max);
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text[..cut].to_owned()
    }
}

/// Percent-encodes `text` for a URL query or form body (`application/x-www-form-urlencoded`:
/// unreserved characters stay, space becomes `%20`).
pub fn form_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(byte as char),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// Why a request got no response.
#[derive(Debug, Clone)]
pub struct HttpError(pub String);

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(target_arch = "wasm32")]
fn code(e: ErrorCode) -> HttpError {
    HttpError(format!("{e:?}"))
}

/// Sends a request and reads the whole response. In native unit tests the request goes to the
/// [`crate::testing::FakeHost`] instead, which records it and answers from its canned responses.
pub fn send(request: &Request) -> Result<Response, HttpError> {
    #[cfg(not(target_arch = "wasm32"))]
    return crate::testing::send(request);
    #[cfg(target_arch = "wasm32")]
    send_wasi(request)
}

#[cfg(target_arch = "wasm32")]
fn send_wasi(request: &Request) -> Result<Response, HttpError> {
    let (scheme, rest) = request
        .url
        .split_once("://")
        .ok_or_else(|| HttpError(format!("URL {:?} has no scheme", request.url)))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let scheme = match scheme {
        "http" => Scheme::Http,
        "https" => Scheme::Https,
        other => Scheme::Other(other.to_owned()),
    };
    let method = match request.method.to_ascii_uppercase().as_str() {
        "GET" => Method::Get,
        "POST" => Method::Post,
        "PUT" => Method::Put,
        "PATCH" => Method::Patch,
        "DELETE" => Method::Delete,
        "HEAD" => Method::Head,
        other => Method::Other(other.to_owned()),
    };
    let entries: Vec<(String, Vec<u8>)> = request
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), v.as_bytes().to_vec()))
        .collect();
    let fields = Fields::from_list(&entries).map_err(|e| HttpError(format!("invalid header: {e:?}")))?;
    let outgoing = OutgoingRequest::new(fields);
    let invalid = |what: &str| HttpError(format!("invalid request {what}"));
    outgoing.set_method(&method).map_err(|_| invalid("method"))?;
    outgoing.set_scheme(Some(&scheme)).map_err(|_| invalid("scheme"))?;
    outgoing
        .set_authority(Some(authority))
        .map_err(|_| invalid("authority"))?;
    outgoing.set_path_with_query(Some(path)).map_err(|_| invalid("path"))?;
    let body = outgoing.body().map_err(|_| invalid("body"))?;
    let pending = outgoing_handler::handle(outgoing, None).map_err(code)?;
    {
        let stream = body.write().map_err(|_| invalid("body stream"))?;
        for chunk in request.body.chunks(4096) {
            stream
                .blocking_write_and_flush(chunk)
                .map_err(|e| HttpError(format!("writing body: {e:?}")))?;
        }
    }
    OutgoingBody::finish(body, None).map_err(code)?;
    pending.subscribe().block();
    let response = match pending.get() {
        Some(Ok(Ok(response))) => response,
        Some(Ok(Err(e))) => return Err(code(e)),
        Some(Err(())) | None => return Err(HttpError("response already taken".into())),
    };
    let status = response.status();
    let headers = response
        .headers()
        .entries()
        .into_iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), String::from_utf8_lossy(&v).into_owned()))
        .collect();
    let incoming = response
        .consume()
        .map_err(|_| HttpError("response body unavailable".into()))?;
    let mut bytes = Vec::new();
    {
        let stream = incoming
            .stream()
            .map_err(|_| HttpError("response stream unavailable".into()))?;
        loop {
            match stream.blocking_read(64 * 1024) {
                Ok(chunk) => bytes.extend_from_slice(&chunk),
                Err(wasi::io::streams::StreamError::Closed) => break,
                Err(e) => return Err(HttpError(format!("reading response: {e:?}"))),
            }
        }
    }
    Ok(Response {
        status,
        headers,
        body: bytes,
    })
}

/// `Retry-After` in milliseconds: delta-seconds, or an HTTP date relative to `now_ms`.
pub fn retry_after_ms(value: &str, now_ms: i64) -> Option<u64> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(secs.saturating_mul(1000));
    }
    let at = parse_http_date(value)?;
    Some(at.saturating_sub(now_ms).max(0) as u64)
}

/// Parses an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`) into ms since the epoch.
fn parse_http_date(s: &str) -> Option<i64> {
    let parts: Vec<&str> = s.split_whitespace().collect();
    if parts.len() != 6 || parts[5] != "GMT" {
        return None;
    }
    let day: i64 = parts[1].parse().ok()?;
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = MONTHS.iter().position(|m| *m == parts[2])? as i64 + 1;
    let year: i64 = parts[3].parse().ok()?;
    let hms: Vec<i64> = parts[4].split(':').map(|p| p.parse().ok()).collect::<Option<_>>()?;
    if hms.len() != 3 {
        return None;
    }
    // Days from civil (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 86_400) + hms[0] * 3600 + hms[1] * 60 + hms[2]) * 1000)
}

/// What a connector should tell the host about an HTTP response (or the lack of one).
pub fn delivery_outcome(result: Result<Response, HttpError>, now_ms: i64) -> Result<Receipt, DeliveryError> {
    let response = match result {
        Ok(r) => r,
        Err(e) => {
            return Err(DeliveryError::Retry(RetryHint {
                after_ms: None,
                reason: format!("no response: {e}"),
            }));
        }
    };
    let status = response.status;
    let hint = || RetryHint {
        after_ms: response.header("retry-after").and_then(|v| retry_after_ms(v, now_ms)),
        reason: format!("HTTP {status}: {}", response.body_snippet(200)),
    };
    match status {
        200..=299 => Ok(Receipt {
            status: Some(status),
            remote_id: response.header("location").map(str::to_owned),
        }),
        409 => Err(DeliveryError::ConflictIsSuccess(Some(format!(
            "HTTP 409: {}",
            response.body_snippet(200)
        )))),
        410 => Err(DeliveryError::Disable(format!(
            "HTTP 410 Gone: {}",
            response.body_snippet(200)
        ))),
        429 => Err(DeliveryError::Throttled(hint())),
        408 | 425 | 500..=599 => Err(DeliveryError::Retry(hint())),
        401 => Err(DeliveryError::Retry(RetryHint {
            after_ms: None,
            reason: format!(
                "HTTP 401 (the credential was refused; the host fetches a new token for the next attempt): {}",
                response.body_snippet(200)
            ),
        })),
        _ => Err(DeliveryError::Rejected(format!(
            "HTTP {status}: {}",
            response.body_snippet(500)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_takes_seconds_and_dates() {
        assert_eq!(retry_after_ms("7", 0), Some(7000));
        let at = parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
        assert_eq!(at, 784_111_777_000);
        assert_eq!(retry_after_ms("Sun, 06 Nov 1994 08:49:37 GMT", at - 2000), Some(2000));
        assert_eq!(retry_after_ms("soon", 0), None);
    }

    fn response(status: u16) -> Result<Response, HttpError> {
        Ok(Response {
            status,
            headers: vec![("retry-after".into(), "3".into())],
            body: b"nope".to_vec(),
        })
    }

    #[test]
    fn statuses_map_to_what_the_host_should_do() {
        assert!(delivery_outcome(response(204), 0).is_ok());
        assert!(matches!(
            delivery_outcome(response(409), 0),
            Err(DeliveryError::ConflictIsSuccess(_))
        ));
        assert!(matches!(
            delivery_outcome(response(410), 0),
            Err(DeliveryError::Disable(_))
        ));
        match delivery_outcome(response(429), 0) {
            Err(DeliveryError::Throttled(h)) => assert_eq!(h.after_ms, Some(3000)),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            delivery_outcome(response(503), 0),
            Err(DeliveryError::Retry(_))
        ));
        assert!(matches!(
            delivery_outcome(response(400), 0),
            Err(DeliveryError::Rejected(_))
        ));
    }
}
