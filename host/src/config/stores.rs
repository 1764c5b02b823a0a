//! `[stores]`: the store registry. Each known store's group, time zone and quiet hours.
//!
//! The registry lets kaunter know a store before it sends anything (so a silent store can be
//! noticed), bounds the `store` label on metrics (stores outside it are counted as `other`), and
//! adds each store to its group for staged rollout, beside the globs of `[store_groups]`.
//!
//! ```toml
//! [stores.hk-001]
//! group = "kowloon"
//! time_zone = "Asia/Hong_Kong"     # the default
//! quiet_hours = "23:00-07:00"      # closed overnight: silence then is expected
//! silent_after_secs = 1800         # the store-silent threshold outside quiet hours
//! ```

use chrono::{DateTime, Timelike, Utc};
use serde::{Deserialize, Serialize};

/// One `[stores.ID]` entry.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// The store group it belongs to, besides any `[store_groups]` globs that match its id.
    #[serde(default)]
    pub group: Option<String>,
    /// IANA time zone of the store's local clock.
    #[serde(default = "default_time_zone")]
    pub time_zone: String,
    /// When the store is expected to be closed, local time: `"HH:MM-HH:MM"`, crossing midnight
    /// allowed (`"23:00-07:00"`). Unset: open around the clock.
    #[serde(default)]
    pub quiet_hours: Option<String>,
    /// Seconds without an event, outside quiet hours, after which the store counts as silent.
    #[serde(default = "default_silent_after_secs")]
    pub silent_after_secs: u64,
}

fn default_time_zone() -> String {
    "Asia/Hong_Kong".into()
}

fn default_silent_after_secs() -> u64 {
    1800
}

/// Quiet hours as minutes after local midnight, `[start, end)`, wrapping past midnight when
/// `start > end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuietHours {
    start_min: u32,
    end_min: u32,
}

impl QuietHours {
    /// Parses `"HH:MM-HH:MM"`.
    pub fn parse(text: &str) -> Result<QuietHours, String> {
        let shape = || format!("quiet_hours `{text}` is not \"HH:MM-HH:MM\" (e.g. \"23:00-07:00\")");
        let (start, end) = text.split_once('-').ok_or_else(shape)?;
        let minutes = |part: &str| -> Option<u32> {
            let (h, m) = part.trim().split_once(':')?;
            let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
            (h < 24 && m < 60).then_some(h * 60 + m)
        };
        let (start_min, end_min) = (minutes(start).ok_or_else(shape)?, minutes(end).ok_or_else(shape)?);
        if start_min == end_min {
            return Err(format!(
                "quiet_hours `{text}` starts and ends at the same time; remove it if the store never closes"
            ));
        }
        Ok(QuietHours { start_min, end_min })
    }

    /// Whether `minute` (after local midnight) falls in the quiet hours.
    pub fn contains(self, minute: u32) -> bool {
        if self.start_min < self.end_min {
            (self.start_min..self.end_min).contains(&minute)
        } else {
            minute >= self.start_min || minute < self.end_min
        }
    }
}

impl StoreConfig {
    /// The store's time zone (checked when the configuration loads; UTC if it is not valid).
    pub fn tz(&self) -> chrono_tz::Tz {
        self.time_zone.parse().unwrap_or(chrono_tz::UTC)
    }

    /// Whether the store is in its quiet hours at `at`.
    pub fn is_quiet_at(&self, at: DateTime<Utc>) -> bool {
        let Some(quiet) = self.quiet_hours.as_deref().and_then(|q| QuietHours::parse(q).ok()) else {
            return false;
        };
        let local = at.with_timezone(&self.tz());
        quiet.contains(local.hour() * 60 + local.minute())
    }

    /// Seconds from `from` to `to` that fall outside the quiet hours, counted back from `to` and
    /// stopping once `cap` is reached (so a store silent for weeks costs a bounded walk): how long
    /// a store has been silent when it should have been selling.
    pub fn open_secs_between(&self, from: DateTime<Utc>, to: DateTime<Utc>, cap: u64) -> u64 {
        if self.quiet_hours.is_none() {
            return (to - from).num_seconds().max(0) as u64;
        }
        let (mut open_ms, cap_ms, mut t) = (0i64, i64::try_from(cap.saturating_mul(1000)).unwrap_or(i64::MAX), to);
        // Minute by minute backwards: quiet hours are whole local minutes.
        while t > from && open_ms < cap_ms {
            let into_minute = i64::from(t.second()) * 1000 + i64::from(t.timestamp_subsec_millis());
            let step = if into_minute == 0 { 60_000 } else { into_minute };
            let start = (t - chrono::Duration::milliseconds(step)).max(from);
            if !self.is_quiet_at(start) {
                open_ms += (t - start).num_milliseconds();
            }
            t = start;
        }
        (open_ms / 1000) as u64
    }

    /// What is wrong with this entry, as `(field, message)` pairs.
    pub fn problems(&self, id: &str) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if id.is_empty() || id.contains(['/', '*', '?']) || id == "other" {
            out.push((
                format!("stores.{id}"),
                format!("store id `{id}` must be a plain store id as it appears in event sources (/s/ID/...): no `/`, `*` or `?`, and not `other` (the metrics label for unregistered stores)"),
            ));
        }
        if self.time_zone.parse::<chrono_tz::Tz>().is_err() {
            out.push((
                format!("stores.{id}.time_zone"),
                format!(
                    "unknown time zone `{}`; use an IANA name such as \"Asia/Hong_Kong\"",
                    self.time_zone
                ),
            ));
        }
        if let Some(Err(e)) = self.quiet_hours.as_deref().map(QuietHours::parse) {
            out.push((format!("stores.{id}.quiet_hours"), e));
        }
        if self.silent_after_secs == 0 {
            out.push((
                format!("stores.{id}.silent_after_secs"),
                "silent_after_secs must be at least 1 (seconds without an event before the store counts as silent)"
                    .into(),
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(quiet: &str) -> StoreConfig {
        StoreConfig {
            group: None,
            time_zone: default_time_zone(),
            quiet_hours: Some(quiet.into()),
            silent_after_secs: 60,
        }
    }

    #[test]
    fn quiet_hours_wrap_past_midnight_in_the_stores_own_time_zone() {
        let overnight = store("23:00-07:00");
        // 16:30 UTC is 00:30 in Hong Kong: closed. 02:00 UTC is 10:00: open.
        let at = |h, m| {
            chrono::NaiveDate::from_ymd_opt(2026, 12, 7)
                .unwrap()
                .and_hms_opt(h, m, 0)
                .unwrap()
                .and_utc()
        };
        assert!(overnight.is_quiet_at(at(16, 30)));
        assert!(
            overnight.is_quiet_at(at(15, 0)),
            "23:00 local is the first quiet minute"
        );
        assert!(!overnight.is_quiet_at(at(23, 0)), "07:00 local is open again");
        assert!(!overnight.is_quiet_at(at(2, 0)));
        let lunch = store("13:00-14:00");
        assert!(lunch.is_quiet_at(at(5, 30)));
        assert!(!lunch.is_quiet_at(at(6, 0)));
    }

    #[test]
    fn silence_counts_only_the_hours_a_store_is_open() {
        let overnight = store("23:00-07:00");
        let hk = |d, h, m| {
            chrono::NaiveDate::from_ymd_opt(2026, 12, d)
                .unwrap()
                .and_hms_opt(h, m, 0)
                .unwrap()
                .and_local_timezone(chrono_tz::Asia::Hong_Kong)
                .unwrap()
                .with_timezone(&Utc)
        };
        // Last sale 22:50, now 07:10 next morning: 10 minutes before closing, 10 after opening.
        assert_eq!(overnight.open_secs_between(hk(7, 22, 50), hk(8, 7, 10), u64::MAX), 1200);
        // Capped: the walk stops once the threshold is passed.
        assert_eq!(overnight.open_secs_between(hk(1, 12, 0), hk(8, 12, 0), 1800), 1800);
        let always_open = StoreConfig {
            quiet_hours: None,
            ..store("23:00-07:00")
        };
        assert_eq!(
            always_open.open_secs_between(hk(7, 22, 50), hk(8, 7, 10), u64::MAX),
            8 * 3600 + 1200
        );
    }

    #[test]
    fn bad_entries_say_what_and_how() {
        let mut bad = store("25:00-07:00");
        bad.time_zone = "Hong Kong".into();
        bad.silent_after_secs = 0;
        let problems = bad.problems("hk/001");
        let fields: Vec<&str> = problems.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            fields,
            [
                "stores.hk/001",
                "stores.hk/001.time_zone",
                "stores.hk/001.quiet_hours",
                "stores.hk/001.silent_after_secs"
            ]
        );
        assert!(problems[1].1.contains("Asia/Hong_Kong"), "{problems:?}");
        assert!(QuietHours::parse("07:00-07:00").unwrap_err().contains("same time"));
        assert!(store("23:00-07:00").problems("hk-001").is_empty());
    }
}
