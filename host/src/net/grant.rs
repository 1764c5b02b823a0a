//! HTTP destination grants: what the operator allows a plugin to call.
//!
//! A grant is written `"[METHODS ]scheme://host[:port][/path-prefix]"`, e.g.
//! `"POST https://api.xero.com/api.xro/2.0/"` or `"GET,POST http://127.0.0.1:9090/hooks"`.
//! Without methods, any method is allowed. The port defaults by scheme. The path is a prefix on
//! segment boundaries: `/hooks` allows `/hooks` and `/hooks/sales`, not `/hooksx`.

use super::path::normalize_path;
use serde::{Deserialize, Deserializer};
use std::fmt;
use std::str::FromStr;

/// One granted destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpGrant {
    /// Allowed methods (upper case); empty means any.
    pub methods: Vec<String>,
    /// `http` or `https`.
    pub scheme: String,
    /// Host name or IP literal, lower case (IPv6 without brackets).
    pub host: String,
    /// Port.
    pub port: u16,
    /// Path prefix (`/` for everything).
    pub path_prefix: String,
    /// The grant as written, for messages.
    pub text: String,
}

/// The parts of a request the checkpoint decides on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    /// Upper-case method.
    pub method: String,
    /// `http` or `https`.
    pub scheme: String,
    /// Lower-case host (IPv6 without brackets).
    pub host: String,
    /// Port (explicit or the scheme's default).
    pub port: u16,
    /// Path (without query).
    pub path: String,
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        write!(
            f,
            "{} {}://{}:{}{}",
            self.method, self.scheme, host, self.port, self.path
        )
    }
}

impl Destination {
    /// Where a request goes, with its path in normal form (see [`normalize_path`]), and the
    /// request's URI rewritten to carry exactly that path: the checkpoint checks and sends the
    /// same thing. Refuses a request without a host or whose path cannot be normalised.
    pub fn of_request(method: &http::Method, uri: &http::Uri) -> Result<(Destination, http::Uri), String> {
        let scheme = uri.scheme_str().unwrap_or("").to_ascii_lowercase();
        let (host, port) = uri
            .authority()
            .ok_or_else(|| "a request without a host".to_owned())
            .and_then(|a| split_authority(a.as_str()))?;
        let path = normalize_path(uri.path()).map_err(|e| format!("refused before any check: {e}"))?;
        let mut parts = uri.clone().into_parts();
        let path_and_query = match uri.query() {
            Some(query) => format!("{path}?{query}"),
            None => path.clone(),
        };
        parts.path_and_query = Some(
            path_and_query
                .parse()
                .map_err(|e| format!("the normalised path `{path}` is not a valid URI path: {e}"))?,
        );
        let normal = http::Uri::from_parts(parts).map_err(|e| format!("the normalised URI is invalid: {e}"))?;
        let destination = Destination {
            method: method.as_str().to_ascii_uppercase(),
            port: port.unwrap_or(default_port(&scheme).unwrap_or(80)),
            scheme,
            host,
            path,
        };
        Ok((destination, normal))
    }
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

/// Splits `host[:port]` (with `[v6]` support) into a lower-case host and an optional port.
pub fn split_authority(authority: &str) -> Result<(String, Option<u16>), String> {
    let authority = authority.rsplit('@').next().unwrap_or(authority);
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or("unclosed `[` in IPv6 host")?;
        (host, after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err("empty host".into());
    }
    let port = port
        .map(|p| p.parse::<u16>().map_err(|_| format!("bad port `{p}`")))
        .transpose()?;
    Ok((host.to_ascii_lowercase(), port))
}

impl FromStr for HttpGrant {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let trimmed = text.trim();
        let (methods, url) = match trimmed.split_once(' ') {
            Some((m, u)) => (m, u.trim()),
            None => ("*", trimmed),
        };
        let methods = if methods == "*" {
            Vec::new()
        } else {
            methods
                .split(',')
                .map(|m| m.trim().to_ascii_uppercase())
                .filter(|m| !m.is_empty())
                .collect()
        };
        if methods.iter().any(|m| !m.bytes().all(|b| b.is_ascii_uppercase())) {
            return Err(format!(
                "grant `{text}`: methods must be names like GET or POST, comma separated"
            ));
        }
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| format!("grant `{text}`: the URL needs a scheme, e.g. https://host"))?;
        let scheme = scheme.to_ascii_lowercase();
        let Some(default) = default_port(&scheme) else {
            return Err(format!("grant `{text}`: scheme must be http or https"));
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if path.contains(['?', '#', '*']) {
            return Err(format!(
                "grant `{text}`: the path is a plain prefix (no query, fragment or wildcards)"
            ));
        }
        match normalize_path(path) {
            Ok(normal) if normal == path => {}
            Ok(normal) => {
                return Err(format!(
                    "grant `{text}`: write the path in its normal form, `{normal}` (requests are checked after `.`, `..`, `//` and escapes of plain characters are resolved)"
                ));
            }
            Err(e) => return Err(format!("grant `{text}`: {e}")),
        }
        let (host, port) = split_authority(authority).map_err(|e| format!("grant `{text}`: {e}"))?;
        Ok(HttpGrant {
            methods,
            scheme,
            host,
            port: port.unwrap_or(default),
            path_prefix: path.to_owned(),
            text: trimmed.to_owned(),
        })
    }
}

impl serde::Serialize for HttpGrant {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for HttpGrant {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl HttpGrant {
    /// Whether this grant allows the destination.
    pub fn allows(&self, d: &Destination) -> bool {
        self.scheme == d.scheme
            && self.host == d.host
            && self.port == d.port
            && path_within(&d.path, &self.path_prefix)
            && (self.methods.is_empty() || self.methods.contains(&d.method))
    }
}

fn path_within(path: &str, prefix: &str) -> bool {
    if prefix == "/" || path == prefix {
        return true;
    }
    match path.strip_prefix(prefix) {
        Some(rest) => prefix.ends_with('/') || rest.starts_with('/'),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dest(method: &str, scheme: &str, host: &str, port: u16, path: &str) -> Destination {
        Destination {
            method: method.into(),
            scheme: scheme.into(),
            host: host.into(),
            port,
            path: path.into(),
        }
    }

    #[test]
    fn grants_parse_and_match_exactly() {
        let g: HttpGrant = "POST https://api.xero.com/api.xro/2.0".parse().unwrap();
        assert_eq!(
            (g.host.as_str(), g.port, g.path_prefix.as_str()),
            ("api.xero.com", 443, "/api.xro/2.0")
        );
        assert!(g.allows(&dest("POST", "https", "api.xero.com", 443, "/api.xro/2.0/Invoices")));
        assert!(g.allows(&dest("POST", "https", "api.xero.com", 443, "/api.xro/2.0")));
        assert!(!g.allows(&dest("POST", "https", "api.xero.com", 443, "/api.xro/2.01")));
        assert!(!g.allows(&dest("GET", "https", "api.xero.com", 443, "/api.xro/2.0/Invoices")));
        assert!(!g.allows(&dest("POST", "http", "api.xero.com", 443, "/api.xro/2.0/Invoices")));
        assert!(!g.allows(&dest("POST", "https", "api.xero.com", 8443, "/api.xro/2.0/Invoices")));
        assert!(!g.allows(&dest("POST", "https", "evil.com", 443, "/api.xro/2.0/Invoices")));
        let any: HttpGrant = "http://[::1]:9090".parse().unwrap();
        assert!(any.allows(&dest("DELETE", "http", "::1", 9090, "/x")));
    }

    #[test]
    fn bad_grants_say_why() {
        assert!("ftp://x".parse::<HttpGrant>().unwrap_err().contains("http or https"));
        assert!("api.xero.com".parse::<HttpGrant>().unwrap_err().contains("scheme"));
        assert!(
            "POST https://x/a*"
                .parse::<HttpGrant>()
                .unwrap_err()
                .contains("plain prefix")
        );
        assert!(
            "POST https://x:99999/"
                .parse::<HttpGrant>()
                .unwrap_err()
                .contains("bad port")
        );
    }
}
