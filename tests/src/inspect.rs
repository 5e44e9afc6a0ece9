//! Small codecs and checks that assertions use: base64url, JWT parts, datetimes, `UserPublic`.

use super::*;

/// Decodes unpadded (or padded) base64url.
pub fn base64url_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for c in s.trim_end_matches('=').bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => return None,
        } as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// The decoded header and payload of a compact JWS (signature not checked).
pub fn jwt_parts(token: &str) -> (Value, Value) {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "not a compact JWS: {token:?}");
    let decode = |p: &str| -> Value {
        let bytes = base64url_decode(p).unwrap_or_else(|| panic!("bad base64url in JWT segment {p:?}"));
        serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("JWT segment is not JSON ({e}): {p:?}"))
    };
    (decode(parts[0]), decode(parts[1]))
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.ffffff](Z|+00:00)` into Unix seconds; `None` for anything else.
pub fn parse_utc(s: &str) -> Option<f64> {
    let body = s.strip_suffix('Z').or_else(|| s.strip_suffix("+00:00"))?;
    let (date, time) = body.split_once('T')?;
    let d: Vec<&str> = date.split('-').collect();
    if d.len() != 3 || d[0].len() != 4 || d[1].len() != 2 || d[2].len() != 2 {
        return None;
    }
    let (hms, frac) = match time.split_once('.') {
        Some((hms, frac)) => (hms, Some(frac)),
        None => (time, None),
    };
    let t: Vec<&str> = hms.split(':').collect();
    if t.len() != 3 || t.iter().any(|p| p.len() != 2) {
        return None;
    }
    let num = |p: &str| -> Option<i64> {
        if p.bytes().all(|b| b.is_ascii_digit()) {
            p.parse().ok()
        } else {
            None
        }
    };
    let days = days_from_civil(num(d[0])?, num(d[1])?, num(d[2])?);
    let secs = days * 86_400 + num(t[0])? * 3600 + num(t[1])? * 60 + num(t[2])?;
    let frac = match frac {
        Some(f) if !f.is_empty() && f.len() <= 6 => num(f)? as f64 / 10f64.powi(f.len() as i32),
        Some(_) => return None,
        None => 0.0,
    };
    Some(secs as f64 + frac)
}

/// True for pydantic's JSON datetime form used in `UserPublic`: UTC with `Z`, microseconds as
/// six digits or omitted (`2026-11-22T06:15:05.944750Z`).
pub fn is_pydantic_utc(s: &str) -> bool {
    s.ends_with('Z') && frac_ok(s.trim_end_matches('Z')) && parse_utc(s).is_some()
}

/// True for Python's `isoformat()` of an aware UTC datetime (`2026-11-23T06:15:05.226286+00:00`).
pub fn is_isoformat_utc(s: &str) -> bool {
    s.ends_with("+00:00") && frac_ok(s.trim_end_matches("+00:00")) && parse_utc(s).is_some()
}

fn frac_ok(body: &str) -> bool {
    match body.split_once('.') {
        Some((_, f)) => f.len() == 6,
        None => true,
    }
}

/// Seconds since the Unix epoch, now.
pub fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// The twelve keys of `UserPublic` (docs/wire.md, "Response shapes"), in order.
pub const USER_PUBLIC_KEYS: [&str; 13] = [
    "id",
    "email",
    "is_active",
    "is_verified",
    "is_superuser",
    "full_name",
    "phone_number",
    "is_mfa_enabled",
    "created_at",
    "updated_at",
    "last_login",
    "tokens_invalidated_after",
    // Added by regstack (seed 004's roles); regstack 0.9.3 clients ignore it.
    "role",
];

/// Asserts `v` is a well-formed `UserPublic`: exactly 0.9.3's twelve keys plus `role`, the right JSON types,
/// an id that is 32 hex (SQL) or 24 hex (Mongo), and pydantic-style UTC datetimes.
#[track_caller]
pub fn assert_user_public(v: &Value) {
    let obj = v
        .as_object()
        .unwrap_or_else(|| panic!("UserPublic is not an object: {v}"));
    let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    keys.sort_unstable();
    let mut want = USER_PUBLIC_KEYS.to_vec();
    want.sort_unstable();
    assert_eq!(keys, want, "UserPublic keys differ: {v}");
    assert!(
        !obj.keys().any(|k| k.contains("password")),
        "UserPublic leaks a password field: {v}"
    );
    let id = obj["id"].as_str().unwrap_or_else(|| panic!("id is not a string: {v}"));
    assert!(
        (id.len() == 32 || id.len() == 24) && id.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()),
        "id {id:?} is neither a 32-char uuid hex nor a 24-char ObjectId"
    );
    assert!(obj["email"].is_string(), "email: {v}");
    for k in ["is_active", "is_verified", "is_superuser", "is_mfa_enabled"] {
        assert!(obj[k].is_boolean(), "{k} is not a bool: {v}");
    }
    for k in ["full_name", "phone_number"] {
        assert!(obj[k].is_null() || obj[k].is_string(), "{k} is not string|null: {v}");
    }
    assert!(
        obj["role"].as_str().is_some_and(|r| !r.is_empty()),
        "role is not a non-empty string: {v}"
    );
    for k in ["created_at", "updated_at"] {
        let s = obj[k].as_str().unwrap_or_else(|| panic!("{k} is not a string: {v}"));
        assert!(
            is_pydantic_utc(s),
            "{k} = {s:?} is not a pydantic UTC datetime ending in Z"
        );
    }
    for k in ["last_login", "tokens_invalidated_after"] {
        match &obj[k] {
            Value::Null => {}
            Value::String(s) => assert!(
                is_pydantic_utc(s),
                "{k} = {s:?} is not a pydantic UTC datetime ending in Z"
            ),
            other => panic!("{k} is not string|null: {other}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_datetimes() {
        assert_eq!(parse_utc("1970-01-01T00:00:00Z"), Some(0.0));
        assert_eq!(
            parse_utc("2026-01-01T12:00:00.123456Z").map(|s| (s * 1e6).round() as i64),
            Some(1_767_268_800_123_456)
        );
        assert!(is_pydantic_utc("2026-11-22T06:15:05.944750Z"));
        assert!(is_pydantic_utc("2026-11-22T06:15:05Z"));
        assert!(!is_pydantic_utc("2026-11-22T06:15:05.944Z"));
        assert!(!is_pydantic_utc("2026-11-22T06:15:05.944750+00:00"));
        assert!(is_isoformat_utc("2026-11-23T06:15:05.226286+00:00"));
        assert!(!is_isoformat_utc("2026-11-23T06:15:05.226286Z"));
    }

    #[test]
    fn decodes_base64url() {
        assert_eq!(base64url_decode("eyJhbGciOiJIUzI1NiJ9").unwrap(), br#"{"alg":"HS256"}"#);
        assert_eq!(base64url_decode("_-8").unwrap(), vec![0xff, 0xef]);
    }
}
