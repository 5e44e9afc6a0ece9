//! Per-IP rate limits (docs/wire.md, "Decision 8"): parsing `N/unit[;N/unit…]` and the fixed-window maths.
//!
//! The count itself lives behind the [`crate::ports::Counter`] port, whose increment is atomic,
//! so N parallel requests against a limit of K admit exactly K on every runtime.

use std::fmt;

use crate::time::{from_micros, to_micros, Timestamp};

/// A per-IP rate-limit class: one `*_rate_limit` config field (docs/wire.md, "Per-IP rate limits").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum RateClass {
    Login,
    LoginMfaConfirm,
    Register,
    ForgotPassword,
    ResetPassword,
    Verify,
    ResendVerification,
    ChangePassword,
    ChangeEmail,
    ConfirmEmailChange,
    DeleteAccount,
    OAuthExchange,
    PhoneStart,
    PhoneConfirm,
    PhoneDisable,
    TokenRefresh,
}

impl RateClass {
    /// Every class.
    pub const ALL: [RateClass; 16] = [
        RateClass::Login,
        RateClass::LoginMfaConfirm,
        RateClass::Register,
        RateClass::ForgotPassword,
        RateClass::ResetPassword,
        RateClass::Verify,
        RateClass::ResendVerification,
        RateClass::ChangePassword,
        RateClass::ChangeEmail,
        RateClass::ConfirmEmailChange,
        RateClass::DeleteAccount,
        RateClass::OAuthExchange,
        RateClass::PhoneStart,
        RateClass::PhoneConfirm,
        RateClass::PhoneDisable,
        RateClass::TokenRefresh,
    ];

    /// The config field holding this class's limit.
    pub fn config_field(self) -> &'static str {
        match self {
            RateClass::Login => "login_rate_limit",
            RateClass::LoginMfaConfirm => "login_mfa_confirm_rate_limit",
            RateClass::Register => "register_rate_limit",
            RateClass::ForgotPassword => "forgot_password_rate_limit",
            RateClass::ResetPassword => "reset_password_rate_limit",
            RateClass::Verify => "verify_rate_limit",
            RateClass::ResendVerification => "resend_verification_rate_limit",
            RateClass::ChangePassword => "change_password_rate_limit",
            RateClass::ChangeEmail => "change_email_rate_limit",
            RateClass::ConfirmEmailChange => "confirm_email_change_rate_limit",
            RateClass::DeleteAccount => "delete_account_rate_limit",
            RateClass::OAuthExchange => "oauth_exchange_rate_limit",
            RateClass::PhoneStart => "phone_start_rate_limit",
            RateClass::PhoneConfirm => "phone_confirm_rate_limit",
            RateClass::PhoneDisable => "phone_disable_rate_limit",
            RateClass::TokenRefresh => "token_refresh_rate_limit",
        }
    }

    /// A short stable name for counter keys.
    pub fn key(self) -> &'static str {
        self.config_field().trim_end_matches("_rate_limit")
    }
}

/// One limit: `count` requests per `window_seconds`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests admitted per window.
    pub count: u64,
    /// The window length in seconds.
    pub window_seconds: u64,
    /// How many units the window spans, kept for the 429 text (`5 per 1 minute`).
    multiplier: u64,
    unit: &'static str,
}

/// The longest window accepted (ten years), so the window maths in microseconds cannot
/// overflow.
pub const MAX_WINDOW_SECONDS: u64 = 10 * 366 * 86_400;

/// A limit string that does not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid rate limit {0:?}: write it as N/second, N/minute, N/hour or N/day, several joined by `;`")]
pub struct RateLimitParseError(pub String);

impl RateLimit {
    /// Parses one or more limits joined by `;` (slowapi syntax: `5/minute`, `5 per minute`,
    /// `100/5 minutes`).
    pub fn parse_all(spec: &str) -> Result<Vec<RateLimit>, RateLimitParseError> {
        let mut out = Vec::new();
        for part in spec.split([';', ',']) {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            out.push(Self::parse_one(part).ok_or_else(|| RateLimitParseError(part.to_string()))?);
        }
        if out.is_empty() {
            return Err(RateLimitParseError(spec.to_string()));
        }
        Ok(out)
    }

    fn parse_one(part: &str) -> Option<RateLimit> {
        let lower = part.to_ascii_lowercase();
        let (n, rest) = if let Some((n, rest)) = lower.split_once('/') {
            (n, rest)
        } else {
            lower.split_once(" per ")?
        };
        let count: u64 = n.trim().parse().ok().filter(|c| *c > 0)?;
        let rest = rest.trim();
        let (multiplier, unit) = match rest.split_once(char::is_whitespace) {
            Some((m, u)) => (m.trim().parse::<u64>().ok().filter(|m| *m > 0)?, u.trim()),
            None => (1, rest),
        };
        let (seconds, unit): (u64, &'static str) = match unit.trim_end_matches('s') {
            "second" | "sec" => (1, "second"),
            "minute" | "min" => (60, "minute"),
            "hour" => (3600, "hour"),
            "day" => (86_400, "day"),
            _ => return None,
        };
        Some(RateLimit {
            count,
            window_seconds: seconds.checked_mul(multiplier).filter(|w| *w <= MAX_WINDOW_SECONDS)?,
            multiplier,
            unit,
        })
    }

    /// The start of the fixed window containing `now`.
    pub fn window_start(&self, now: Timestamp) -> Timestamp {
        let w = (self.window_seconds as i64) * 1_000_000;
        let t = to_micros(now);
        from_micros(t - t.rem_euclid(w))
    }

    /// The end of the fixed window containing `now`.
    pub fn window_end(&self, now: Timestamp) -> Timestamp {
        from_micros(to_micros(self.window_start(now)) + self.window_seconds as i64 * 1_000_000)
    }

    /// The counter key for one client in the window containing `now` (see [`client_bucket`]).
    pub fn key(&self, class: &str, client: &str, now: Timestamp) -> String {
        format!(
            "rl:{class}:{}s:{}:{}",
            self.window_seconds,
            self.window_start(now).timestamp(),
            client_bucket(client)
        )
    }

    /// Whole seconds until the window resets (at least 1), for `Retry-After`.
    pub fn retry_after(&self, now: Timestamp) -> u64 {
        let left = to_micros(self.window_end(now)) - to_micros(now);
        (left.max(0) as u64).div_ceil(1_000_000).max(1)
    }
}

impl fmt::Display for RateLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} per {} {}", self.count, self.multiplier, self.unit)?;
        if self.multiplier > 1 {
            f.write_str("s")?;
        }
        Ok(())
    }
}

/// Who a limit counts for: an IPv4 address as it is, an IPv6 address by its /64 (one
/// subscriber usually holds a whole /64, so counting single addresses would let a client
/// rotate through them), an IPv4-mapped IPv6 address as the IPv4 one, and anything that is
/// not an address as it is.
pub fn client_bucket(client: &str) -> String {
    match client.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                let prefix = std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0);
                format!("{prefix}/64")
            }
        },
        Ok(std::net::IpAddr::V4(v4)) => v4.to_string(),
        Err(_) => client.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[regstack_macros::dual_test]
    fn parses_slowapi_syntax() {
        let l = RateLimit::parse_all("5/minute;20/hour").unwrap();
        assert_eq!((l[0].count, l[0].window_seconds), (5, 60));
        assert_eq!((l[1].count, l[1].window_seconds), (20, 3600));
        assert_eq!(l[0].to_string(), "5 per 1 minute");
        let l = RateLimit::parse_all("2 per second").unwrap();
        assert_eq!(l[0].window_seconds, 1);
        let l = RateLimit::parse_all("100/5 minutes").unwrap();
        assert_eq!(
            (l[0].window_seconds, l[0].to_string().as_str()),
            (300, "100 per 5 minutes")
        );
        for bad in [
            "",
            "5",
            "five/minute",
            "0/minute",
            "5/fortnight",
            "5/-1 minutes",
            "1/144115188075855872 days",
            "1/3661 days",
        ] {
            assert!(RateLimit::parse_all(bad).is_err(), "{bad}");
        }
    }

    #[regstack_macros::dual_test]
    fn windows_and_retry_after() {
        let l = RateLimit::parse_all("1/minute").unwrap()[0];
        let now = from_micros(1_767_268_830_500_000); // 12:00:30.5
        assert_eq!(l.window_start(now).timestamp(), 1_767_268_800);
        assert_eq!(l.retry_after(now), 30);
        assert_eq!(l.key("login", "1.2.3.4", now), "rl:login:60s:1767268800:1.2.3.4");
        let edge = from_micros(1_767_268_800_000_000);
        assert_eq!(l.retry_after(edge), 60);
    }

    #[regstack_macros::dual_test]
    fn ipv6_clients_count_by_their_64() {
        assert_eq!(client_bucket("1.2.3.4"), "1.2.3.4");
        assert_eq!(client_bucket("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
        assert_eq!(
            client_bucket("2001:0db8:0001:0002:ffff:ffff:ffff:ffff"),
            "2001:db8:1:2::/64"
        );
        assert_ne!(client_bucket("2001:db8:1:3::1"), client_bucket("2001:db8:1:2::1"));
        assert_eq!(client_bucket("::ffff:1.2.3.4"), "1.2.3.4");
        assert_eq!(client_bucket("unknown"), "unknown");
        assert!(RateLimit::parse_all("1/3660 days").is_ok());
    }
}
