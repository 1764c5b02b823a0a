//! Time without a time-zone database: RFC 3339 instants, fixed UTC offsets and minutes of the day.
//!
//! Every decision uses the event's own `time` (never the wall clock), so the same events give the
//! same alerts on every run, replay and shadow. Local time is the instant plus a fixed offset:
//! the offset configured for the event's `time_zone` (`utc_offsets`), else the built-in table of
//! zones without daylight saving ([`BUILT_IN_OFFSETS`], Hong Kong is `+08:00` all year), else the
//! offset written in the event's `time` (what the till's clock said).

use serde::Deserialize;
use std::collections::BTreeMap;

/// IANA zones with one offset all year (no daylight saving), in minutes east of UTC.
pub const BUILT_IN_OFFSETS: &[(&str, i32)] = &[
    ("Asia/Hong_Kong", 480),
    ("Asia/Macau", 480),
    ("Asia/Shanghai", 480),
    ("Asia/Taipei", 480),
    ("Asia/Singapore", 480),
    ("Asia/Kuala_Lumpur", 480),
    ("Asia/Manila", 480),
    ("Asia/Tokyo", 540),
    ("Asia/Seoul", 540),
    ("Asia/Bangkok", 420),
    ("Asia/Jakarta", 420),
    ("Asia/Ho_Chi_Minh", 420),
    ("Asia/Kolkata", 330),
    ("Asia/Dubai", 240),
    ("UTC", 0),
    ("Etc/UTC", 0),
];

/// An instant read from RFC 3339 text, with the offset it was written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Instant {
    /// Milliseconds since the Unix epoch.
    pub epoch_ms: i64,
    /// The offset written in the text, minutes east of UTC.
    pub offset_minutes: i32,
}

/// Reads `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`; `None` when the text is not RFC 3339.
pub fn parse_rfc3339(text: &str) -> Option<Instant> {
    let b = text.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let year = digits(&b[0..4])?;
    let month = digits(&b[5..7])?;
    let day = digits(&b[8..10])?;
    let (hour, minute, second) = (digits(&b[11..13])?, digits(&b[14..16])?, digits(&b[17..19])?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut rest = &b[19..];
    let mut millis = 0;
    if rest.first() == Some(&b'.') {
        let fraction: Vec<u8> = rest[1..].iter().copied().take_while(u8::is_ascii_digit).collect();
        if fraction.is_empty() {
            return None;
        }
        for (i, d) in fraction.iter().take(3).enumerate() {
            millis += i64::from(d - b'0') * [100, 10, 1][i];
        }
        rest = &rest[1 + fraction.len()..];
    }
    let offset_minutes = match rest {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let minutes = digits(&[*h1, *h2])? * 60 + digits(&[*m1, *m2])?;
            if *sign == b'-' { -minutes } else { minutes }
        }
        _ => return None,
    };
    let days = days_from_civil(i64::from(year), month, day);
    let local_seconds = days * 86_400 + i64::from(hour * 3600 + minute * 60 + second);
    Some(Instant {
        epoch_ms: (local_seconds - i64::from(offset_minutes) * 60) * 1000 + millis,
        offset_minutes,
    })
}

fn digits(bytes: &[u8]) -> Option<i32> {
    bytes
        .iter()
        .try_fold(0i32, |n, b| b.is_ascii_digit().then(|| n * 10 + i32::from(b - b'0')))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i32, day: i32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month = i64::from(month);
    let day_of_year = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// Where a local offset came from (it goes into the evidence).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetSource {
    /// `utc_offsets` in the plugin's configuration.
    Configured,
    /// [`BUILT_IN_OFFSETS`].
    BuiltIn,
    /// The offset written in the event's `time`.
    EventTime,
}

impl OffsetSource {
    /// How the evidence names it.
    pub fn name(self) -> &'static str {
        match self {
            OffsetSource::Configured => "configured",
            OffsetSource::BuiltIn => "built_in",
            OffsetSource::EventTime => "event_time",
        }
    }
}

/// The offset (minutes east of UTC) to read local time in for `time_zone`, and where it came from.
pub fn local_offset(time_zone: &str, at: Instant, configured: &BTreeMap<String, UtcOffset>) -> (i32, OffsetSource) {
    if let Some(offset) = configured.get(time_zone) {
        return (offset.0, OffsetSource::Configured);
    }
    match BUILT_IN_OFFSETS.iter().find(|(zone, _)| *zone == time_zone) {
        Some((_, offset)) => (*offset, OffsetSource::BuiltIn),
        None => (at.offset_minutes, OffsetSource::EventTime),
    }
}

/// Minutes since local midnight (0..1440) of an instant at an offset.
pub fn minute_of_day(at: Instant, offset_minutes: i32) -> u32 {
    let local_minutes = at.epoch_ms.div_euclid(60_000) + i64::from(offset_minutes);
    // rem_euclid keeps the result in 0..1440, which fits a u32.
    u32::try_from(local_minutes.rem_euclid(1440)).unwrap_or(0)
}

/// `HH:MM` of a minute of the day.
pub fn format_minute(minute: u32) -> String {
    format!("{:02}:{:02}", minute / 60, minute % 60)
}

/// A time of day written `HH:MM` (`24:00` is the end of the day).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct ClockTime(pub u32);

impl TryFrom<String> for ClockTime {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        let parsed = text
            .split_once(':')
            .filter(|(h, m)| h.len() == 2 && m.len() == 2)
            .and_then(|(h, m)| Some((digits(h.as_bytes())?, digits(m.as_bytes())?)));
        match parsed {
            Some((h, m)) if (h < 24 && m < 60) || (h == 24 && m == 0) => Ok(ClockTime((h * 60 + m).unsigned_abs())),
            _ => Err(format!(
                "`{text}` is not a time of day; write HH:MM, e.g. \"09:30\" or \"24:00\""
            )),
        }
    }
}

/// A fixed UTC offset written `+HH:MM` or `-HH:MM`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct UtcOffset(pub i32);

impl TryFrom<String> for UtcOffset {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        let signed = match text.as_bytes().first() {
            Some(b'+') => Some((1, &text[1..])),
            Some(b'-') => Some((-1, &text[1..])),
            _ => None,
        };
        match signed.map(|(sign, rest)| (sign, ClockTime::try_from(rest.to_owned()))) {
            Some((sign, Ok(ClockTime(minutes)))) if minutes <= 14 * 60 => {
                Ok(UtcOffset(sign * i32::try_from(minutes).unwrap_or(0)))
            }
            _ => Err(format!(
                "`{text}` is not a UTC offset; write +HH:MM or -HH:MM, e.g. \"+08:00\""
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_with_offsets_and_fractions() {
        let hk = parse_rfc3339("2026-11-25T23:30:00+08:00").unwrap();
        let utc = parse_rfc3339("2026-11-25T15:30:00Z").unwrap();
        assert_eq!(hk.epoch_ms, utc.epoch_ms);
        assert_eq!(hk.offset_minutes, 480);
        assert_eq!(utc.epoch_ms, 1_795_620_600_000);
        assert_eq!(
            parse_rfc3339("2026-11-25T15:30:00.25Z").unwrap().epoch_ms,
            1_795_620_600_250
        );
        assert_eq!(parse_rfc3339("1969-12-31T23:59:59Z").unwrap().epoch_ms, -1000);
        assert_eq!(parse_rfc3339("2026-11-25 10:00"), None);
        assert_eq!(parse_rfc3339("2026-13-25T10:00:00Z"), None);
    }

    #[test]
    fn local_time_of_day_in_hong_kong() {
        // 15:30 UTC is 23:30 in Hong Kong, whatever offset the till wrote.
        let at = parse_rfc3339("2026-11-25T15:30:00Z").unwrap();
        let (offset, source) = local_offset("Asia/Hong_Kong", at, &BTreeMap::new());
        assert_eq!((offset, source), (480, OffsetSource::BuiltIn));
        assert_eq!(format_minute(minute_of_day(at, offset)), "23:30");
        let (offset, source) = local_offset("America/Atlantis", at, &BTreeMap::new());
        assert_eq!((offset, source), (0, OffsetSource::EventTime));
    }

    #[test]
    fn clock_times_and_offsets_parse_strictly() {
        assert_eq!(ClockTime::try_from("09:30".to_owned()), Ok(ClockTime(570)));
        assert_eq!(ClockTime::try_from("24:00".to_owned()), Ok(ClockTime(1440)));
        assert!(ClockTime::try_from("9:30".to_owned()).is_err());
        assert!(ClockTime::try_from("24:30".to_owned()).is_err());
        assert_eq!(UtcOffset::try_from("+05:30".to_owned()), Ok(UtcOffset(330)));
        assert_eq!(UtcOffset::try_from("-03:00".to_owned()), Ok(UtcOffset(-180)));
        assert!(UtcOffset::try_from("08:00".to_owned()).unwrap_err().contains("+HH:MM"));
    }
}
