//! Timestamps and the three text forms the wire contract uses for them.
//!
//! The core never reads a clock; `now` always arrives from the [`crate::ports::Clock`] port.
//! Every instant is UTC with microsecond precision, because bulk revocation compares a
//! token's fractional `iat` against `tokens_invalidated_after` (docs/wire.md, "Revocation").

use chrono::{DateTime, Datelike, NaiveDateTime, TimeZone, Timelike, Utc};

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

/// `YYYY-MM-DD?HH:MM:SS` with `sep` between date and time, then `.ffffff` (always, or only
/// when non-zero with `Fraction::WhenNonZero`), then `suffix`. Written by hand: these
/// run for every timestamp of every user read and written, and chrono's format strings
/// are parsed again on each call (docs/performance.md).
fn render(t: Timestamp, sep: char, fraction: Fraction, suffix: &str) -> String {
    use std::fmt::Write;
    let t = truncate_micros(t);
    if t.nanosecond() >= 1_000_000_000 {
        // A leap second, which only chrono's own parser can produce: chrono renders it.
        return leap_second(t, sep, fraction, suffix);
    }
    let micros = t.nanosecond() / 1000;
    let mut out = String::with_capacity(32);
    let year = t.year();
    if (0..=9999).contains(&year) {
        let _ = write!(out, "{year:04}");
    } else {
        let _ = write!(out, "{}", t.format("%Y"));
    }
    let _ = write!(
        out,
        "-{:02}-{:02}{sep}{:02}:{:02}:{:02}",
        t.month(),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    if fraction == Fraction::Always || micros != 0 {
        let _ = write!(out, ".{micros:06}");
    }
    out.push_str(suffix);
    out
}

fn leap_second(t: Timestamp, sep: char, fraction: Fraction, suffix: &str) -> String {
    let whole = t.nanosecond() % 1_000_000_000 == 0;
    let format = match (fraction, whole) {
        (Fraction::WhenNonZero, true) => format!("%Y-%m-%d{sep}%H:%M:%S"),
        _ => format!("%Y-%m-%d{sep}%H:%M:%S%.6f"),
    };
    format!("{}{suffix}", t.format(&format))
}

#[derive(PartialEq)]
enum Fraction {
    Always,
    WhenNonZero,
}

/// pydantic's JSON form: `2026-11-22T06:15:05.944750Z`, fraction omitted when zero.
pub fn to_pydantic(t: Timestamp) -> String {
    render(t, 'T', Fraction::WhenNonZero, "Z")
}

/// Python's `datetime.isoformat()` for an aware UTC value: `2026-11-23T06:15:05.226286+00:00`.
pub fn to_isoformat(t: Timestamp) -> String {
    render(t, 'T', Fraction::WhenNonZero, "+00:00")
}

/// The SQLite storage form of regstack 0.9.3: `YYYY-MM-DD HH:MM:SS.ffffff`, UTC, no offset.
pub fn to_sql_text(t: Timestamp) -> String {
    render(t, ' ', Fraction::Always, "")
}

/// The storage form exactly as [`to_sql_text`] writes it (what nearly every row holds),
/// read without chrono's format parser; `None` for anything else.
fn from_canonical_sql_text(s: &str) -> Option<Timestamp> {
    let b = s.as_bytes();
    if b.len() != 26 || b[4] != b'-' || b[7] != b'-' || b[10] != b' ' || b[13] != b':' || b[16] != b':' || b[19] != b'.'
    {
        return None;
    }
    let num = |from: usize, to: usize| -> Option<u32> {
        b[from..to]
            .iter()
            .try_fold(0u32, |n, &c| c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0')))
    };
    let date = chrono::NaiveDate::from_ymd_opt(num(0, 4)? as i32, num(5, 7)?, num(8, 10)?)?;
    let time = date.and_hms_micro_opt(num(11, 13)?, num(14, 16)?, num(17, 19)?, num(20, 26)?)?;
    Some(Utc.from_utc_datetime(&time))
}

/// Parses the SQLite text form, tolerating what other writers leave behind: no fraction,
/// a `T` separator, or a trailing offset (which is honoured).
pub fn from_sql_text(s: &str) -> Option<Timestamp> {
    let s = s.trim();
    if let Some(t) = from_canonical_sql_text(s) {
        return Some(t);
    }
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
        // The hand-written fast path refuses what chrono would refuse.
        assert_eq!(from_sql_text("2026-02-30 12:00:00.000000"), None);
        assert_eq!(from_sql_text("2026-01-01 24:00:00.000000"), None);
        assert_eq!(from_sql_text("2026-01-01 12:00:00.00000x"), None);
        assert_eq!(
            from_sql_text("2026-01-01T12:00:00.123456"),
            Some(from_micros(1_767_268_800_123_456))
        );
    }

    #[regstack_macros::dual_test]
    fn rendering_matches_chrono_across_years_and_fractions() {
        for micros in [
            0i64,
            1,
            999_999,
            1_767_268_800_000_000,
            1_767_268_800_000_001,
            253_402_300_799_999_999,
        ] {
            let t = from_micros(micros);
            assert_eq!(to_sql_text(t), t.format("%Y-%m-%d %H:%M:%S%.6f").to_string());
            assert_eq!(from_sql_text(&to_sql_text(t)), Some(t));
        }
        let leap = Utc.from_utc_datetime(
            &chrono::NaiveDate::from_ymd_opt(2016, 12, 31)
                .unwrap()
                .and_hms_micro_opt(23, 59, 59, 1_500_000)
                .unwrap(),
        );
        assert_eq!(to_sql_text(leap), leap.format("%Y-%m-%d %H:%M:%S%.6f").to_string());
        assert_eq!(
            to_isoformat(leap),
            format!("{}+00:00", leap.format("%Y-%m-%dT%H:%M:%S%.6f"))
        );
    }
}
