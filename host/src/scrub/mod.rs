//! Scrubbing: known secret values taken out of text the host did not write.
//!
//! A vendor that echoes a request (many error pages do) hands back whatever the egress checkpoint
//! put in it: an OAuth access token, the text of a `$SECRET(name)` in a URL or header. A
//! [`Scrubber`] is built from exactly those values and replaces every occurrence it recognises
//! with `[redacted: secret NAME]` or `[redacted: credential NAME]`:
//!
//! - the value as is;
//! - percent-encoded: `%XX` in upper or lower case, `+` for a space, any mix of escaped and plain
//!   characters;
//! - JSON-escaped: `\/`, `\"`, `\\`, `\n`…, `\uXXXX` (surrogate pairs too);
//! - standard or URL-safe base64, padded or not, also inside a longer base64 text at any of the
//!   three byte alignments (the one to three characters that also carry neighbouring bytes go
//!   with it), for values of at least [`MIN_ENCODED_BYTES`] bytes; base64 inside JSON escapes or
//!   percent-encoding is found too.
//!
//! One layer of encoding only: a value encoded twice (percent-encoded twice, base64 of a
//! percent-encoded value, base64 broken into lines), compressed, hashed or otherwise transformed
//! is not recognised. This module knows nothing of requests or plugins; the egress checkpoint, the
//! engine and the credentials module decide what to scrub with which values.

mod views;

use aho_corasick::{AhoCorasick, MatchKind};
use base64::Engine as _;
use std::borrow::Cow;
use std::collections::HashSet;
use views::View;

/// Values shorter than this are scrubbed as they are and inside percent-encoding and JSON
/// escapes, but not in base64: a handful of base64 characters would match unrelated text.
pub const MIN_ENCODED_BYTES: usize = 8;

/// What stands in for a text that could not be scrubbed (the matcher could not be built): all of
/// it goes, rather than any of it unscrubbed.
const UNSCRUBBABLE: &str = "[redacted: could not be scrubbed]";

/// What a value is, for its redaction label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A `[secrets]` value (`[redacted: secret NAME]`).
    Secret,
    /// An OAuth credential's token or client secret (`[redacted: credential NAME]`).
    Credential,
}

/// A value to take out of text, and the name it is shown by instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sensitive {
    /// Secret or credential.
    pub kind: Kind,
    /// The secret's or credential's name in the configuration.
    pub name: String,
    /// The text that must not be shown.
    pub value: String,
}

impl Sensitive {
    /// What replaces the value: `[redacted: secret NAME]` or `[redacted: credential NAME]`.
    pub fn label(&self) -> String {
        let kind = match self.kind {
            Kind::Secret => "secret",
            Kind::Credential => "credential",
        };
        format!("[redacted: {kind} {}]", self.name)
    }
}

/// One needle: which label it stands for, and how many base64 characters on each side also carry
/// bits of the value (and go with it).
#[derive(Debug, Clone, Copy)]
struct Needle {
    label: usize,
    left: usize,
    right: usize,
}

/// Base64 characters that carry bits of 0, 1 or 2 bytes at the edge of a group of three.
const EDGE: [usize; 3] = [0, 2, 3];

/// Finds and replaces a fixed set of values in any text (see the module documentation).
pub struct Scrubber {
    finder: Option<AhoCorasick>,
    needles: Vec<Needle>,
    labels: Vec<String>,
    /// Some value has a space, so `+` in percent-encoded text may stand for one.
    spaces: bool,
}

impl Scrubber {
    /// A scrubber for `values` (empty values are ignored).
    pub fn new(values: &[Sensitive]) -> Scrubber {
        let mut labels = Vec::new();
        let mut texts: Vec<Vec<u8>> = Vec::new();
        let mut needles = Vec::new();
        let mut seen = HashSet::new();
        for sensitive in values {
            let value = sensitive.value.as_bytes();
            if value.is_empty() {
                continue;
            }
            let label = labels.len();
            labels.push(sensitive.label());
            let mut add = |text: Vec<u8>, left: usize, right: usize| {
                if seen.insert(text.clone()) {
                    texts.push(text);
                    needles.push(Needle { label, left, right });
                }
            };
            add(value.to_vec(), 0, 0);
            if value.len() >= MIN_ENCODED_BYTES {
                let engines = [
                    &base64::engine::general_purpose::STANDARD_NO_PAD,
                    &base64::engine::general_purpose::URL_SAFE_NO_PAD,
                ];
                for engine in engines {
                    // The value's bytes from `skip` on, in whole groups of three, encode the same
                    // wherever the value starts at that alignment in a longer text.
                    for (skip, left) in EDGE.iter().enumerate() {
                        let whole = (value.len() - skip) / 3 * 3;
                        let rest = value.len() - skip - whole;
                        let core = engine.encode(&value[skip..skip + whole]);
                        add(core.into_bytes(), *left, EDGE[rest]);
                    }
                }
            }
        }
        // Standard semantics: every match, overlapping ones too (what `find` iterates).
        let finder = AhoCorasick::builder()
            .match_kind(MatchKind::Standard)
            .build(&texts)
            .inspect_err(
                |e| tracing::error!(error = %e, "cannot build the secret scrubber; scrubbed texts are replaced whole"),
            )
            .ok();
        Scrubber {
            finder,
            needles,
            labels,
            spaces: values.iter().any(|v| v.value.contains(' ')),
        }
    }

    /// `text` with every occurrence of the values replaced; `None` when there was none.
    pub fn scrub_bytes(&self, text: &[u8]) -> Option<Vec<u8>> {
        let Some(finder) = &self.finder else {
            return Some(UNSCRUBBABLE.as_bytes().to_vec());
        };
        let mut spans = Vec::new();
        self.find(finder, text, None, &mut spans);
        if text.contains(&b'%') || (self.spaces && text.contains(&b'+')) {
            if let Some(view) = View::percent(text, false) {
                self.find(finder, &view.bytes, Some(&view), &mut spans);
            }
            if self.spaces
                && let Some(view) = View::percent(text, true)
            {
                self.find(finder, &view.bytes, Some(&view), &mut spans);
            }
        }
        if text.contains(&b'\\')
            && let Some(view) = View::json(text)
        {
            self.find(finder, &view.bytes, Some(&view), &mut spans);
        }
        if spans.is_empty() {
            return None;
        }
        spans.sort_by_key(|&(start, end, _)| (start, std::cmp::Reverse(end)));
        let mut out = Vec::with_capacity(text.len());
        let mut at = 0;
        let mut spans = spans.into_iter().peekable();
        while let Some((start, mut end, label)) = spans.next() {
            while let Some(&(next, next_end, _)) = spans.peek()
                && next < end
            {
                end = end.max(next_end);
                spans.next();
            }
            out.extend_from_slice(text.get(at..start).unwrap_or_default());
            out.extend_from_slice(self.labels.get(label).map_or(UNSCRUBBABLE, String::as_str).as_bytes());
            at = end;
        }
        out.extend_from_slice(text.get(at..).unwrap_or_default());
        Some(out)
    }

    /// `text` with every occurrence of the values replaced.
    pub fn scrub<'a>(&self, text: &'a str) -> Cow<'a, str> {
        match self.scrub_bytes(text.as_bytes()) {
            Some(bytes) => Cow::Owned(String::from_utf8_lossy(&bytes).into_owned()),
            None => Cow::Borrowed(text),
        }
    }

    /// `text` scrubbed, owned.
    pub fn scrub_string(&self, text: String) -> String {
        match self.scrub_bytes(text.as_bytes()) {
            Some(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            None => text,
        }
    }

    /// Adds the stretches of the original text where `haystack` (the text itself, or `view` of
    /// it) holds a value.
    fn find(&self, finder: &AhoCorasick, haystack: &[u8], view: Option<&View>, spans: &mut Vec<(usize, usize, usize)>) {
        for found in finder.find_overlapping_iter(haystack) {
            let Some(needle) = self.needles.get(found.pattern().as_usize()) else {
                continue;
            };
            let (mut start, mut end) = (found.start(), found.end());
            let base64 = |at: usize| haystack.get(at).is_some_and(|b| is_base64(*b));
            for _ in 0..needle.left {
                if start == 0 || !base64(start - 1) {
                    break;
                }
                start -= 1;
            }
            for _ in 0..needle.right {
                if !base64(end) {
                    break;
                }
                end += 1;
            }
            if needle.right > 0 {
                for _ in 0..2 {
                    if haystack.get(end) != Some(&b'=') {
                        break;
                    }
                    end += 1;
                }
            }
            let (start, end) = match view {
                Some(view) => view.original(start, end),
                None => (start, end),
            };
            spans.push((start, end, needle.label));
        }
    }
}

fn is_base64(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'+' | b'/' | b'-' | b'_')
}

#[cfg(test)]
mod tests;
