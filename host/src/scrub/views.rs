//! Decoded views of a text: percent-decoded (`%XX` in either case, optionally `+` as space) and
//! JSON-unescaped (`\/`, `\"`, `\uXXXX` with surrogate pairs, ...), each remembering which stretch
//! of the original text every decoded byte came from, so a value found in the view can be cut out
//! of the original. One layer of decoding only; this module never decides what to look for.

/// One escape that decoded to `decoded_len` bytes at `decoded_at` in the view, from
/// `original_len` bytes at `original_at` in the original text.
#[derive(Debug, Clone, Copy)]
struct Escape {
    decoded_at: usize,
    decoded_len: usize,
    original_at: usize,
    original_len: usize,
}

/// A decoded copy of a text; bytes outside escapes are copied one for one.
#[derive(Debug)]
pub(super) struct View {
    /// The decoded bytes.
    pub(super) bytes: Vec<u8>,
    escapes: Vec<Escape>,
}

impl View {
    /// `text` with `%XX` decoded (and `+` as a space when `plus_is_space`); `None` when nothing in
    /// it decodes (the view would be the text itself).
    pub(super) fn percent(text: &[u8], plus_is_space: bool) -> Option<View> {
        let mut view = View::empty(text.len());
        let mut i = 0;
        while i < text.len() {
            let byte = text[i];
            if byte == b'%'
                && let (Some(hi), Some(lo)) = (hex(text.get(i + 1)), hex(text.get(i + 2)))
            {
                view.push_escape(&[(hi << 4) | lo], i, 3);
                i += 3;
            } else if byte == b'+' && plus_is_space {
                view.push_escape(b" ", i, 1);
                i += 1;
            } else {
                view.bytes.push(byte);
                i += 1;
            }
        }
        (!view.escapes.is_empty()).then_some(view)
    }

    /// `text` with JSON string escapes decoded; `None` when it has none. Unpaired surrogates and
    /// malformed escapes stay as written.
    pub(super) fn json(text: &[u8]) -> Option<View> {
        let mut view = View::empty(text.len());
        let mut i = 0;
        while i < text.len() {
            if text[i] != b'\\' {
                view.bytes.push(text[i]);
                i += 1;
                continue;
            }
            let simple = match text.get(i + 1) {
                Some(b'"') => Some(b'"'),
                Some(b'\\') => Some(b'\\'),
                Some(b'/') => Some(b'/'),
                Some(b'b') => Some(0x08),
                Some(b'f') => Some(0x0c),
                Some(b'n') => Some(b'\n'),
                Some(b'r') => Some(b'\r'),
                Some(b't') => Some(b'\t'),
                _ => None,
            };
            if let Some(byte) = simple {
                view.push_escape(&[byte], i, 2);
                i += 2;
                continue;
            }
            match unicode_escape(text, i) {
                Some((c, len)) => {
                    let mut utf8 = [0u8; 4];
                    view.push_escape(c.encode_utf8(&mut utf8).as_bytes(), i, len);
                    i += len;
                }
                None => {
                    view.bytes.push(b'\\');
                    i += 1;
                }
            }
        }
        (!view.escapes.is_empty()).then_some(view)
    }

    fn empty(capacity: usize) -> View {
        View {
            bytes: Vec::with_capacity(capacity),
            escapes: Vec::new(),
        }
    }

    fn push_escape(&mut self, decoded: &[u8], original_at: usize, original_len: usize) {
        self.escapes.push(Escape {
            decoded_at: self.bytes.len(),
            decoded_len: decoded.len(),
            original_at,
            original_len,
        });
        self.bytes.extend_from_slice(decoded);
    }

    /// The stretch of the original text that `start..end` of the view was decoded from, widened to
    /// whole escapes.
    pub(super) fn original(&self, start: usize, end: usize) -> (usize, usize) {
        let first = self.source_of(start).0;
        let last = self.source_of(end.saturating_sub(1).max(start)).1;
        (first, last)
    }

    /// Where decoded byte `at` came from in the original text.
    fn source_of(&self, at: usize) -> (usize, usize) {
        let before = self.escapes.partition_point(|e| e.decoded_at <= at);
        let Some(e) = before.checked_sub(1).and_then(|i| self.escapes.get(i)) else {
            return (at, at + 1);
        };
        if at < e.decoded_at + e.decoded_len {
            (e.original_at, e.original_at + e.original_len)
        } else {
            let o = e.original_at + e.original_len + (at - e.decoded_at - e.decoded_len);
            (o, o + 1)
        }
    }
}

fn hex(byte: Option<&u8>) -> Option<u8> {
    let byte = *byte?;
    (byte as char).to_digit(16).map(|d| d as u8)
}

/// Four hex digits after `\u` at `at`, as a code unit.
fn code_unit(text: &[u8], at: usize) -> Option<u32> {
    if text.get(at) != Some(&b'\\') || text.get(at + 1) != Some(&b'u') {
        return None;
    }
    let mut unit = 0;
    for k in 0..4 {
        unit = (unit << 4) | u32::from(hex(text.get(at + 2 + k))?);
    }
    Some(unit)
}

/// The character a `\uXXXX` escape (or a surrogate pair of them) at `at` stands for, and how many
/// bytes of text it takes.
fn unicode_escape(text: &[u8], at: usize) -> Option<(char, usize)> {
    let unit = code_unit(text, at)?;
    match unit {
        0xd800..=0xdbff => {
            let low = code_unit(text, at + 6).filter(|u| (0xdc00..=0xdfff).contains(u))?;
            let c = char::from_u32(0x10000 + ((unit - 0xd800) << 10) + (low - 0xdc00))?;
            Some((c, 12))
        }
        0xdc00..=0xdfff => None,
        _ => Some((char::from_u32(unit)?, 6)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decoded(view: &Option<View>) -> String {
        String::from_utf8_lossy(&view.as_ref().unwrap().bytes).into_owned()
    }

    #[test]
    fn percent_escapes_decode_in_either_case_and_map_back_to_whole_escapes() {
        let text = b"a=k%2fy%2B1+2&b=%zz";
        let view = View::percent(text, false);
        assert_eq!(decoded(&view), "a=k/y+1+2&b=%zz");
        let view = view.unwrap();
        // "/y+" in the view is "%2fy%2B" in the text.
        assert_eq!(view.original(3, 6), (3, 10));
        assert_eq!(view.original(0, 2), (0, 2));
        assert_eq!(decoded(&View::percent(text, true)), "a=k/y+1 2&b=%zz");
        assert!(View::percent(b"nothing to decode", false).is_none());
        assert!(View::percent(b"1+1", true).is_some());
    }

    #[test]
    fn json_escapes_decode_with_surrogate_pairs_and_leave_broken_ones() {
        let text = br#"x\/y\u003c\"\u00e9\ud83d\ude00 \ud800 \q"#;
        let view = View::json(text);
        assert_eq!(decoded(&view), "x/y<\"é😀 \\ud800 \\q");
        let view = view.unwrap();
        // "é" (two bytes in the view) is the six bytes of `\u00e9`.
        let at = "x/y<\"".len();
        assert_eq!(view.original(at, at + 2), (12, 18));
        assert_eq!(view.original(at + 1, at + 2), (12, 18));
        assert!(View::json(b"plain").is_none());
    }
}
