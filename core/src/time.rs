//! Timestamps and the three text forms the wire contract uses for them.
//!
//! The core never reads a clock; `now` always arrives from the [`crate::ports::Clock`] port.
//! Every instant is UTC with microsecond precision, because bulk revocation compares a
//! token's fractional `iat` against `tokens_invalidated_after` (docs/wire.md, "Revocation").

use chrono::{DateTime, NaiveDateTime, TimeZone, Timelike, Utc};

/// A UTC instant with microsecond precision.
pub type Timestamp = DateTime<Utc>;

/// Truncates an instant to whole microseconds, the precision every store keeps.
pub fn truncate_micros(t: Timestamp) -> Timestamp {
    let nanos = t.nanosecond();
    let keep = nanos - nanos % 1_000;
    t.with_nanosecond(keep).unwrap_or(t)
}

/// Microseconds since the Unix epoch.
pub fn to_micros(t: Timestamp) -> i64 {
    t.timestamp_micros()
}

/// The instant `micros` microseconds after the Unix epoch (clamped to chrono's range).
pub fn from_micros(micros: i64) -> Timestamp {
    Utc.timestamp_micros(micros).single().unwrap_or_default()
}

/// `t + seconds`, saturating instead of overflowing.
pub fn plus_seconds(t: Timestamp, seconds: i64) -> Timestamp {
    chrono::TimeDelta::try_seconds(seconds)
        .and_then(|d| t.checked_add_signed(d))
        .unwrap_or(t)
}

/// pydantic's JSON form: `2026-11-22T06:15:05.944750Z`, fraction omitted when zero.
pub fn to_pydantic(t: Timestamp) -> String {
    let t = truncate_micros(t);
    if t.nanosecond() == 0 {
        t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
    } else {
        t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
    }
}

/// Python's `datetime.isoformat()` for an aware UTC value: `2026-11-23T06:15:05.226286+00:00`.
pub fn to_isoformat(t: Timestamp) -> String {
    let t = truncate_micros(t);
    if t.nanosecond() == 0 {
        t.format("%Y-%m-%dT%H:%M:%S+00:00").to_string()
    } else {
        t.format("%Y-%m-%dT%H:%M:%S%.6f+00:00").to_string()
    }
}

/// The SQLite storage form of regstack 0.9.3: `YYYY-MM-DD HH:MM:SS.ffffff`, UTC, no offset.
pub fn to_sql_text(t: Timestamp) -> String {
    truncate_micros(t).format("%Y-%m-%d %H:%M:%S%.6f").to_string()
}

/// Parses the SQLite text form, tolerating what other writers leave behind: no fraction,
/// a `T` separator, or a trailing offset (which is honoured).
pub fn from_sql_text(s: &str) -> Option<Timestamp> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    for fmt in ["%Y-%m-%d %H:%M:%S%.f%:z", "%Y-%m-%d %H:%M:%S%.f%z"] {
        if let Ok(t) = DateTime::parse_from_str(s, fmt) {
            return Some(t.with_timezone(&Utc));
        }
    }
    for fmt in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, fmt) {
            return Some(Utc.from_utc_datetime(&t));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[regstack_macros::dual_test]
    fn wire_forms_match_python() {
        let t = from_micros(1_795_846_505_944_750);
        assert_eq!(to_pydantic(t), "2026-11-28T06:15:05.944750Z");
        assert_eq!(to_isoformat(t), "2026-11-28T06:15:05.944750+00:00");
        assert_eq!(to_sql_text(t), "2026-11-28 06:15:05.944750");
        let whole = from_micros(1_795_846_505_000_000);
        assert_eq!(to_pydantic(whole), "2026-11-28T06:15:05Z");
        assert_eq!(to_isoformat(whole), "2026-11-28T06:15:05+00:00");
        assert_eq!(to_sql_text(whole), "2026-11-28 06:15:05.000000");
    }

    #[regstack_macros::dual_test]
    fn sql_text_round_trips_and_tolerates_variants() {
        let t = from_micros(1_767_268_800_123_456);
        assert_eq!(from_sql_text(&to_sql_text(t)), Some(t));
        assert_eq!(
            from_sql_text("2026-01-01 12:00:00"),
            Some(from_micros(1_767_268_800_000_000))
        );
        assert_eq!(from_sql_text("2026-01-01 13:00:00.123456+01:00"), Some(t));
        assert_eq!(from_sql_text("not a date"), None);
    }
}
