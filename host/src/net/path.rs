//! Request paths in one canonical form, before any check looks at them.
//!
//! A grant, a secret's `for` and a credential's `for` are path prefixes; comparing them with raw
//! path text lets `/hooks/../admin` pass a grant for `/hooks/`. Every path is therefore brought to
//! the RFC 3986 normal form first (§6.2.2: percent-encoded unreserved characters decoded, other
//! percent-encodings upper-cased; §5.2.4: dot segments removed), empty segments (`//`) merged,
//! and what servers read differently is refused outright: encoded `/` or `\`, backslashes, NUL and
//! control characters, and `;` parameters on a dot segment (`..;/`, which some servers resolve).
//! The checkpoint checks, and then sends, exactly the normal form. This module never decides
//! whether a path is allowed.

/// The normal form of a request path (no query), or why it cannot be normalised unambiguously.
pub fn normalize_path(raw: &str) -> Result<String, String> {
    if raw.is_empty() {
        return Ok("/".to_owned());
    }
    if !raw.starts_with('/') {
        return Err(format!("the path `{}` does not start with `/`", escape(raw)));
    }
    let mut segments: Vec<String> = Vec::new();
    let mut trailing_slash = false;
    for raw_segment in raw[1..].split('/') {
        let segment = decode_unreserved(raw_segment)?;
        trailing_slash = false;
        let base = segment.split(';').next().unwrap_or("");
        if segment.contains(';') && (base.is_empty() || base == "." || base == "..") {
            return Err(format!(
                "the path `{}` has `;` parameters on an empty or dot segment, which servers resolve differently",
                escape(raw)
            ));
        }
        match segment.as_str() {
            // `//` and a trailing `/`: an empty segment is merged into its neighbour.
            "" | "." => trailing_slash = true,
            ".." => {
                segments.pop();
                trailing_slash = true;
            }
            _ => segments.push(segment),
        }
    }
    let mut normal = String::with_capacity(raw.len());
    for segment in &segments {
        normal.push('/');
        normal.push_str(segment);
    }
    if normal.is_empty() || trailing_slash {
        normal.push('/');
    }
    Ok(normal)
}

/// One segment with `%XX` of unreserved characters decoded and every other escape upper-cased;
/// refuses escapes that would change how the path splits (`/`, `\`), controls, and bad escapes.
fn decode_unreserved(segment: &str) -> Result<String, String> {
    let bytes = segment.as_bytes();
    let mut out = String::with_capacity(segment.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("the path segment `{}` has a malformed `%` escape", escape(segment)))?;
            match hex {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => out.push(char::from(hex)),
                b'/' | b'\\' => {
                    return Err(format!(
                        "the path segment `{}` encodes a `/` or `\\`, which servers read differently",
                        escape(segment)
                    ));
                }
                0..=0x1f | 0x7f => {
                    return Err(format!(
                        "the path segment `{}` encodes a control character",
                        escape(segment)
                    ));
                }
                _ => out.push_str(&format!("%{hex:02X}")),
            }
            i += 3;
            continue;
        }
        if b == b'\\' {
            return Err(format!(
                "the path segment `{}` has a backslash, which some servers read as `/`",
                escape(segment)
            ));
        }
        if b < 0x20 || b == 0x7f {
            return Err(format!(
                "the path segment `{}` has a control character",
                escape(segment)
            ));
        }
        out.push(char::from(b));
        i += 1;
    }
    Ok(out)
}

/// `text` made safe to quote in a message or log line: controls and non-ASCII escaped, and cut
/// at 200 characters.
fn escape(text: &str) -> String {
    let mut out: String = text.chars().take(200).flat_map(char::escape_default).collect();
    if text.chars().count() > 200 {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_segments_and_escaped_dots_are_resolved() {
        for (raw, normal) in [
            ("/hooks/../admin/steal", "/admin/steal"),
            ("/hooks/good/../../leak", "/leak"),
            ("/hooks/%2e%2e/admin", "/admin"),
            ("/hooks/%2E%2E/admin", "/admin"),
            ("/hooks/.%2e/admin", "/admin"),
            ("/hooks/./sales", "/hooks/sales"),
            ("/hooks//sales", "/hooks/sales"),
            ("//admin", "/admin"),
            ("/hooks/", "/hooks/"),
            ("/hooks/sales/..", "/hooks/"),
            ("/../../etc", "/etc"),
            ("", "/"),
            ("/", "/"),
            ("/a%7eb/%41", "/a~b/A"),
            ("/a%c3%a9", "/a%C3%A9"),
            ("/robot/send", "/robot/send"),
            ("/hooks;v=1/x", "/hooks;v=1/x"),
            ("/$SECRET(hook)/x", "/$SECRET(hook)/x"),
        ] {
            assert_eq!(normalize_path(raw).as_deref(), Ok(normal), "{raw}");
        }
    }

    #[test]
    fn what_servers_read_differently_is_refused() {
        for (raw, why) in [
            ("/hooks/..%2fadmin", "encodes a `/`"),
            ("/hooks/..%2Fadmin", "encodes a `/`"),
            ("/hooks/..%5cadmin", "encodes a `/` or `\\`"),
            ("/hooks/..\\admin", "backslash"),
            ("/hooks/..;/admin", "`;` parameters"),
            ("/hooks/;x/admin", "`;` parameters"),
            ("/hooks/%00", "control character"),
            ("/hooks/%zz", "malformed"),
            ("/hooks/%2", "malformed"),
            ("hooks", "does not start with"),
        ] {
            let refused = normalize_path(raw);
            assert!(refused.as_ref().is_err_and(|e| e.contains(why)), "{raw}: {refused:?}");
        }
    }
}
