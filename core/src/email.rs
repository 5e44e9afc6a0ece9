//! Email addresses: validated as email-validator does, and lower-cased (docs/wire.md,
//! "Decision 7 (11)").

use std::fmt;

/// A syntactically valid, lower-cased email address (docs/wire.md, "Decision 7 (11)": emails are
/// case-insensitive, so input is lower-cased before anything compares or stores it).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Email(String);

/// Why a string is not an acceptable email address; the text follows email-validator's
/// wording because the 422 body quotes it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct EmailError(pub &'static str);

/// Domains that email-validator refuses as special-use or reserved (RFC 6761 and friends).
const SPECIAL_USE: &[&str] = &["arpa", "invalid", "local", "localhost", "onion", "test"];

/// The one form addresses are compared in, everywhere: lower-cased as input is (Unicode, so
/// `Ä` folds to `ä`, and no further, so `ſ` stays `ſ`). Lookups (the stored `email_key`),
/// uniqueness, the lockout and per-recipient limits all key by it.
pub fn key(address: &str) -> String {
    address.to_lowercase()
}

impl Email {
    /// Validates and normalises an address.
    pub fn parse(raw: &str) -> Result<Self, EmailError> {
        let s = raw.trim();
        let Some(at) = s.rfind('@') else {
            return Err(EmailError("An email address must have an @-sign."));
        };
        let (local, domain) = (&s[..at], &s[at + 1..]);
        if local.is_empty() {
            return Err(EmailError("There must be something before the @-sign."));
        }
        if domain.is_empty() {
            return Err(EmailError("There must be something after the @-sign."));
        }
        validate_local(local)?;
        validate_domain(domain)?;
        if s.chars().count() > 254 {
            return Err(EmailError("The email address is too long."));
        }
        Ok(Self(key(s)))
    }

    /// Wraps a stored address without validating it (adopted rows may predate our rules).
    pub fn from_stored(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    /// The address as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The address as an owned string.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn validate_local(local: &str) -> Result<(), EmailError> {
    if local.chars().count() > 64 {
        return Err(EmailError("The email address is too long before the @-sign."));
    }
    if local.starts_with('.') {
        return Err(EmailError("An email address cannot start with a period."));
    }
    if local.ends_with('.') {
        return Err(EmailError(
            "An email address cannot have a period immediately before the @-sign.",
        ));
    }
    if local.contains("..") {
        return Err(EmailError("An email address cannot have two periods in a row."));
    }
    const ATEXT: &str = "!#$%&'*+-/=?^_`{|}~.";
    if !local
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || ATEXT.contains(c) || (!c.is_ascii() && c.is_alphanumeric()))
    {
        return Err(EmailError(
            "The email address contains invalid characters before the @-sign.",
        ));
    }
    Ok(())
}

fn validate_domain(domain: &str) -> Result<(), EmailError> {
    let lower = domain.to_lowercase();
    if lower.len() > 253 {
        return Err(EmailError("The email address is too long after the @-sign."));
    }
    if lower.starts_with('[') {
        return Err(EmailError(
            "The part after the @-sign cannot be a bracketed IP address.",
        ));
    }
    let labels: Vec<&str> = lower.split('.').collect();
    if SPECIAL_USE
        .iter()
        .any(|s| lower == *s || lower.ends_with(&format!(".{s}")))
    {
        return Err(EmailError(
            "The part after the @-sign is a special-use or reserved name that cannot be used with email.",
        ));
    }
    if labels.iter().any(|l| l.is_empty()) {
        return Err(EmailError(
            "An email address cannot have a period immediately after the @-sign or two periods in a row.",
        ));
    }
    for label in &labels {
        if label.starts_with('-') || label.ends_with('-') {
            return Err(EmailError(
                "An email address cannot have a hyphen immediately after the @-sign or before a period.",
            ));
        }
        if label.chars().count() > 63 {
            return Err(EmailError(
                "After the @-sign, periods cannot be separated by so many characters.",
            ));
        }
        if !label
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || (!c.is_ascii() && c.is_alphanumeric()))
        {
            return Err(EmailError("The part after the @-sign contains invalid characters."));
        }
    }
    if labels.len() < 2 {
        return Err(EmailError(
            "The part after the @-sign is not valid. It should have a period.",
        ));
    }
    let tld = labels[labels.len() - 1];
    if tld.chars().all(|c| c.is_ascii_digit()) {
        return Err(EmailError("The part after the @-sign is not valid IDNA."));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[regstack_macros::dual_test]
    fn accepts_and_lowercases() {
        assert_eq!(Email::parse("Bob@Example.COM").unwrap().as_str(), "bob@example.com");
        assert!(Email::parse("validate-abc@regstack-probe.example").is_ok());
        assert!(Email::parse("a.b+tag@sub.domain.org").is_ok());
    }

    #[regstack_macros::dual_test]
    fn rejects_special_use_and_malformed() {
        for bad in [
            "reachability@probe.invalid",
            "x@foo.test",
            "x@host.local",
            "x@localhost",
            "no-at-sign",
            "@example.com",
            "x@",
            "x@nodot",
            "a..b@example.com",
            ".a@example.com",
            "a b@example.com",
            "x@-bad.com",
            "x@example.123",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad} should be rejected");
        }
        assert_eq!(
            Email::parse("x@nodot").unwrap_err().0,
            "The part after the @-sign is not valid. It should have a period."
        );
    }
}
