//! The scrubber against each encoding, checked by an independent decoder of everything it leaves.

use super::*;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};

const TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJrYXVudGVyIn0.c2lnbmF0dXJl-_x";
/// A secret with characters every encoding escapes.
const KEY: &str = "k3y/with+plus=&<tag>\"quote\" sp!";

fn scrubber() -> Scrubber {
    Scrubber::new(&[
        Sensitive {
            kind: Kind::Credential,
            name: "erp-oauth".into(),
            value: TOKEN.into(),
        },
        Sensitive {
            kind: Kind::Secret,
            name: "erp-key".into(),
            value: KEY.into(),
        },
    ])
}

fn percent(text: &str, lower: bool, plus: bool) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            b' ' if plus => "+".into(),
            _ if lower => format!("%{b:02x}"),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// JSON string escaping the way PHP and Go do it: `\/`, and `<`, `>`, `&` as `\u00XX`.
fn json_escaped(text: &str) -> String {
    let quoted = serde_json::to_string(text).unwrap();
    quoted[1..quoted.len() - 1]
        .replace('/', "\\/")
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

/// Whether any part of `value` of `window` bytes can still be read from `text`: as is, after
/// percent-decoding or JSON-unescaping, or in any base64 run decoded from any offset.
fn reveals(text: &str, value: &str, window: usize) -> Option<String> {
    let pieces: Vec<&[u8]> = value.as_bytes().windows(window).collect();
    let mut readings = vec![text.as_bytes().to_vec()];
    readings.extend(View::percent(text.as_bytes(), false).map(|v| v.bytes));
    readings.extend(View::percent(text.as_bytes(), true).map(|v| v.bytes));
    readings.extend(View::json(text.as_bytes()).map(|v| v.bytes));
    let mut decoded = Vec::new();
    for reading in &readings {
        for run in reading.split(|b| !is_base64(*b)) {
            for offset in 0..4.min(run.len()) {
                let run = &run[offset..];
                let run = &run[..run.len() / 4 * 4];
                for engine in [&STANDARD_NO_PAD, &URL_SAFE_NO_PAD] {
                    if let Ok(bytes) = engine.decode(run) {
                        decoded.push(bytes);
                    }
                }
            }
        }
    }
    readings.extend(decoded);
    readings
        .iter()
        .find(|r| pieces.iter().any(|p| r.windows(window).any(|w| w == *p)))
        .map(|r| String::from_utf8_lossy(r).into_owned())
}

fn assert_clean(scrubbed: &str, label: &str) {
    assert!(scrubbed.contains(label), "{scrubbed}");
    for (value, window) in [(TOKEN, 6), (KEY, 6)] {
        if let Some(reading) = reveals(scrubbed, value, window) {
            panic!("part of {value:?} is readable in {scrubbed:?}: {reading:?}");
        }
    }
}

#[test]
fn the_value_itself_is_replaced_with_its_label() {
    let s = scrubber();
    let text = format!("HTTP 400: authorization: Bearer {TOKEN}\nx-key: {KEY}\n");
    let scrubbed = s.scrub(&text);
    assert_eq!(
        scrubbed,
        "HTTP 400: authorization: Bearer [redacted: credential erp-oauth]\nx-key: [redacted: secret erp-key]\n"
    );
    assert!(matches!(s.scrub("nothing here"), Cow::Borrowed("nothing here")));
    assert_eq!(s.scrub_bytes(b"nothing here"), None);
}

#[test]
fn percent_encoded_values_are_found_in_upper_and_lower_case_with_plus_for_space_and_mixed() {
    let s = scrubber();
    for (lower, plus) in [(false, false), (true, false), (false, true), (true, true)] {
        let text = format!(
            "/echo?url=%2Fhooks%3Fkey%3D{}&t={}",
            percent(KEY, lower, plus),
            percent(TOKEN, lower, plus)
        );
        let scrubbed = s.scrub(&text);
        assert_clean(&scrubbed, "[redacted: secret erp-key]");
        assert!(
            scrubbed.starts_with("/echo?url=%2Fhooks%3Fkey%3D[redacted: secret erp-key]&t="),
            "{scrubbed}"
        );
    }
    // Escaped and plain characters mixed, the way encoders differ on which characters to escape.
    let mixed = "k3y%2fwith%2Bplus%3D%26<tag>%22quote\"+sp!";
    assert_eq!(s.scrub(mixed), "[redacted: secret erp-key]");
}

#[test]
fn json_escaped_values_are_found() {
    let s = scrubber();
    let text = format!("{{\"echo\":\"x-key: {}\"}}", json_escaped(KEY));
    assert!(
        text.contains("k3y\\/with+plus=\\u0026\\u003ctag\\u003e\\\"quote\\\""),
        "{text}"
    );
    let scrubbed = s.scrub(&text);
    assert_eq!(scrubbed, "{\"echo\":\"x-key: [redacted: secret erp-key]\"}");
    // Every character escaped, as `\u00XX`.
    let all: String = KEY.chars().map(|c| format!("\\u{:04x}", c as u32)).collect();
    assert_eq!(s.scrub(&all), "[redacted: secret erp-key]");
}

#[test]
fn base64_of_the_value_is_found_padded_or_not_in_both_alphabets() {
    let s = scrubber();
    for value in [TOKEN, KEY] {
        for engine in [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD] {
            let encoded = engine.encode(value);
            let scrubbed = s.scrub(&encoded);
            assert!(scrubbed.starts_with("[redacted: "), "{encoded} → {scrubbed}");
            assert!(!scrubbed.contains('='), "the padding goes with it: {scrubbed}");
            assert_clean(&scrubbed, "[redacted: ");
        }
        for prefix in ["Bearer ", "Basic ", ""] {
            let encoded = STANDARD.encode(format!("{prefix}{value}"));
            assert_clean(&s.scrub(&encoded), "[redacted: ");
        }
    }
}

#[test]
fn base64_inside_a_longer_base64_text_is_found_at_every_alignment() {
    let s = scrubber();
    for value in [TOKEN, KEY] {
        for before in 0..6 {
            for after in 0..4 {
                let dump = format!(
                    "{}authorization: Bearer {value}{}",
                    &"POST /hooks HTTP/1.1\n"[..before + 14],
                    &"\nhost: erp"[..after + 1]
                );
                let starts = dump.find(value).unwrap();
                let ends = starts + value.len();
                for engine in [&STANDARD, &URL_SAFE_NO_PAD] {
                    let encoded = engine.encode(&dump);
                    let scrubbed = s.scrub(&encoded);
                    assert_clean(&scrubbed, "[redacted: ");
                    // Exactly the characters that carry bits of the value go (each carries six bits
                    // of the byte stream): those before and after it stay.
                    let (left, rest) = scrubbed.split_once("[redacted: ").unwrap();
                    let right = rest.split_once(']').unwrap().1;
                    let resumes = encoded.len() - right.len();
                    assert!(left.len() * 6 <= starts * 8, "{left} carries bits of the value");
                    assert!(resumes * 6 >= ends * 8, "{right} carries bits of the value");
                    assert!(left.len() * 6 + 12 > starts * 8, "too much went before: {left}");
                    assert!(resumes * 6 < ends * 8 + 18, "too much went after: {right}");
                }
            }
        }
    }
}

#[test]
fn base64_inside_json_escapes_or_percent_encoding_is_found() {
    let s = scrubber();
    let encoded = STANDARD.encode(format!("x-key: {KEY}"));
    assert!(encoded.contains('/') || encoded.contains('+'), "{encoded}");
    let in_json = format!("{{\"dump\":\"{}\"}}", encoded.replace('/', "\\/"));
    assert_clean(&s.scrub(&in_json), "[redacted: secret erp-key]");
    let in_url = format!("/echo?dump={}", percent(&encoded, false, false));
    assert_clean(&s.scrub(&in_url), "[redacted: secret erp-key]");
}

#[test]
fn short_values_are_scrubbed_as_they_are_but_not_in_base64() {
    let s = Scrubber::new(&[Sensitive {
        kind: Kind::Secret,
        name: "pin".into(),
        value: "4 2/7".into(),
    }]);
    assert_eq!(s.scrub("pin=4 2/7;"), "pin=[redacted: secret pin];");
    assert_eq!(s.scrub("pin=4+2%2F7;"), "pin=[redacted: secret pin];");
    assert_eq!(s.scrub("pin=4 2\\/7;"), "pin=[redacted: secret pin];");
    let encoded = STANDARD.encode("4 2/7");
    assert_eq!(s.scrub(&encoded), encoded, "too short to be recognised in base64");
}

#[test]
fn overlapping_values_are_all_taken_out() {
    let s = Scrubber::new(&[
        Sensitive {
            kind: Kind::Secret,
            name: "a".into(),
            value: "abcdef123456".into(),
        },
        Sensitive {
            kind: Kind::Secret,
            name: "b".into(),
            value: "123456uvwxyz".into(),
        },
    ]);
    assert_eq!(s.scrub("<abcdef123456uvwxyz>"), "<[redacted: secret a]>");
    assert_eq!(s.scrub(""), "");
    assert_eq!(Scrubber::new(&[]).scrub("abc"), "abc");
}
