//! Logging setup: one `init` for the whole process, structured fields, filter from `KAUNTER_LOG`.
//!
//! Log lines carry text from outside (webhook source names, ids, plugin log messages, vendor
//! errors). Each record is written as exactly one line: line breaks and other control characters
//! inside a record are escaped (`\n`, `\x1b`), so nobody can forge a second line or repaint the
//! terminal. Colour codes are written only when standard error is a terminal.

pub mod prom;
pub mod trace;

use std::io::{IsTerminal, Write};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// Installs the global subscriber. `default` applies when `KAUNTER_LOG` is unset
/// (e.g. `info`, or `warn` for the demo so its progress line stays readable).
/// `KAUNTER_LOG_FORMAT=json` writes one JSON object per line (`timestamp`, `level`, `target`,
/// `fields`) for log collectors; anything else, or unset, writes text.
pub fn init(default: &str) {
    let filter = EnvFilter::try_from_env("KAUNTER_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let json = std::env::var("KAUNTER_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let ansi = !json && std::io::stderr().is_terminal();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(OneLinePerRecord { ansi });
    let _ = if json {
        builder
            .json()
            .flatten_event(false)
            .with_current_span(true)
            .with_span_list(false)
            .try_init()
    } else {
        builder.try_init()
    };
}

/// Standard error, one line per record (see the module docs).
#[derive(Clone, Copy)]
struct OneLinePerRecord {
    /// Colour codes are the formatter's own: keep ESC (the formatter escapes it in field values).
    ansi: bool,
}

impl<'a> MakeWriter<'a> for OneLinePerRecord {
    type Writer = EscapingWriter<std::io::Stderr>;

    fn make_writer(&'a self) -> Self::Writer {
        EscapingWriter {
            inner: std::io::stderr(),
            ansi: self.ansi,
        }
    }
}

/// Writes each formatted record (one `write` call, ending in a newline) with the control
/// characters inside it escaped.
struct EscapingWriter<W> {
    inner: W,
    ansi: bool,
}

impl<W: Write> Write for EscapingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.inner.write_all(&escape_record(buf, self.ansi))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// `record` with every control character but tab (and ESC when `keep_esc`) escaped, keeping one
/// final newline.
fn escape_record(record: &[u8], keep_esc: bool) -> std::borrow::Cow<'_, [u8]> {
    let body = record.strip_suffix(b"\n").unwrap_or(record);
    let unsafe_byte = |b: u8| (b < 0x20 && b != b'\t' && !(keep_esc && b == 0x1b)) || b == 0x7f;
    if !body.iter().any(|&b| unsafe_byte(b)) {
        return std::borrow::Cow::Borrowed(record);
    }
    let mut out = Vec::with_capacity(record.len() + 16);
    for &b in body {
        match b {
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b if unsafe_byte(b) => out.extend_from_slice(format!("\\x{b:02x}").as_bytes()),
            b => out.push(b),
        }
    }
    if record.ends_with(b"\n") {
        out.push(b'\n');
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_is_one_line_whatever_its_fields_hold() {
        let forged =
            b"WARN unknown source name=x\n2026-12-07T08:00:00Z  INFO sink resumed by api-key:demo-admin\x1b[2K\r\n";
        let escaped = escape_record(forged, false);
        assert_eq!(
            std::str::from_utf8(&escaped).unwrap(),
            "WARN unknown source name=x\\n2026-12-07T08:00:00Z  INFO sink resumed by api-key:demo-admin\\x1b[2K\\r\n"
        );
        assert_eq!(escaped.iter().filter(|&&b| b == b'\n').count(), 1);
        // On a terminal the formatter's colours stay; line breaks are still escaped.
        let coloured = b"\x1b[32m INFO\x1b[0m a\nb\n";
        assert_eq!(&*escape_record(coloured, true), b"\x1b[32m INFO\x1b[0m a\\nb\n");
        let plain = b"INFO all good\tfine\n";
        assert!(matches!(escape_record(plain, false), std::borrow::Cow::Borrowed(_)));
    }
}
