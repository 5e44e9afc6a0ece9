//! The identity the edge vouches for when it forwards a request to the origin app.
//!
//! The edge authenticates the caller's session (with the same revocation rules as `/me`),
//! removes every `x-regstack-*` header the client sent, and adds the user's id, email and
//! superuser flag, a timestamp, and an HMAC-SHA256 over all four made with
//! `origin_auth_secret`. The origin verifies the signature in constant time and refuses a
//! timestamp more than [`MAX_AGE_SECONDS`] away from its own clock, so a captured set of
//! headers stops working within a minute and a forged one never does.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The user's id.
pub const USER_ID: &str = "x-regstack-user-id";
/// The user's email, percent-encoded outside printable ASCII.
pub const EMAIL: &str = "x-regstack-user-email";
/// `true` or `false`.
pub const SUPERUSER: &str = "x-regstack-user-superuser";
/// Unix seconds when the edge signed.
pub const TIMESTAMP: &str = "x-regstack-timestamp";
/// Lower-case hex HMAC-SHA256 of the other four.
pub const SIGNATURE: &str = "x-regstack-signature";
/// Every header the edge sets; it strips these (and any other `x-regstack-*`) from clients.
pub const HEADERS: [&str; 5] = [USER_ID, EMAIL, SUPERUSER, TIMESTAMP, SIGNATURE];
/// The prefix the edge strips from client requests.
pub const PREFIX: &str = "x-regstack-";
/// How far a signature's timestamp may be from the verifier's clock.
pub const MAX_AGE_SECONDS: i64 = 60;

/// A verified user, as the edge saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ForwardedIdentity {
    /// `users.id`.
    pub user_id: String,
    /// The user's email.
    pub email: String,
    /// Whether the user is an admin.
    pub is_superuser: bool,
}

/// Why forwarded identity headers were refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    /// Some identity headers are present but not all of them.
    #[error("incomplete identity headers")]
    Incomplete,
    /// A header does not parse.
    #[error("malformed identity headers")]
    Malformed,
    /// The timestamp is too far from now.
    #[error("identity headers are stale")]
    Stale,
    /// The signature does not match.
    #[error("identity signature does not match")]
    BadSignature,
}

fn mac(secret: &str, identity: &ForwardedIdentity, timestamp: i64) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    let timestamp = timestamp.to_string();
    let superuser = if identity.is_superuser { "true" } else { "false" };
    // Length-prefixed, so no two different identities can produce the same message.
    for part in [
        "regstack-identity-v1",
        &timestamp,
        &identity.user_id,
        &identity.email,
        superuser,
    ] {
        mac.update(&(part.len() as u64).to_be_bytes());
        mac.update(part.as_bytes());
    }
    mac
}

fn encode_email(email: &str) -> String {
    let mut out = String::with_capacity(email.len());
    for b in email.bytes() {
        if (0x21..=0x7e).contains(&b) && b != b'%' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn decode_email(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            out.extend(crate::hex::decode(s.get(i + 1..i + 3)?)?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The headers (name, value) that vouch for `identity` at `timestamp` (Unix seconds).
pub fn sign(secret: &str, identity: &ForwardedIdentity, timestamp: i64) -> [(&'static str, String); 5] {
    let signature = crate::hex::encode(&mac(secret, identity, timestamp).finalize().into_bytes());
    [
        (USER_ID, identity.user_id.clone()),
        (EMAIL, encode_email(&identity.email)),
        (SUPERUSER, identity.is_superuser.to_string()),
        (TIMESTAMP, timestamp.to_string()),
        (SIGNATURE, signature),
    ]
}

/// Reads and checks the identity headers through `header` (a lookup by lower-case name).
/// `Ok(None)` when none are present (an anonymous request); an error when any is present but
/// the set does not verify at `now` (Unix seconds).
pub fn verify<'a>(
    secret: &str,
    header: impl Fn(&str) -> Option<&'a str>,
    now: i64,
) -> Result<Option<ForwardedIdentity>, IdentityError> {
    let values: Vec<Option<&str>> = HEADERS.iter().map(|h| header(h)).collect();
    if values.iter().all(Option::is_none) {
        return Ok(None);
    }
    let [Some(user_id), Some(email), Some(superuser), Some(timestamp), Some(signature)] = values[..] else {
        return Err(IdentityError::Incomplete);
    };
    let is_superuser = match superuser {
        "true" => true,
        "false" => false,
        _ => return Err(IdentityError::Malformed),
    };
    let timestamp: i64 = timestamp.parse().map_err(|_| IdentityError::Malformed)?;
    let email = decode_email(email).ok_or(IdentityError::Malformed)?;
    let signature = crate::hex::decode(signature).ok_or(IdentityError::Malformed)?;
    let identity = ForwardedIdentity {
        user_id: user_id.to_string(),
        email,
        is_superuser,
    };
    // Check the signature before the clock, so a forger learns nothing from the answer.
    mac(secret, &identity, timestamp)
        .verify_slice(&signature)
        .map_err(|_| IdentityError::BadSignature)?;
    if (now - timestamp).abs() > MAX_AGE_SECONDS {
        return Err(IdentityError::Stale);
    }
    Ok(Some(identity))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "origin-auth-secret-0123456789-abcdefghij";

    fn alice() -> ForwardedIdentity {
        ForwardedIdentity {
            user_id: "0123456789abcdef0123456789abcdef".into(),
            email: "alïce@example.com".into(),
            is_superuser: false,
        }
    }

    fn lookup<'a>(headers: &'a [(&'static str, String)]) -> impl Fn(&str) -> Option<&'a str> + 'a {
        move |name| headers.iter().find(|(k, _)| *k == name).map(|(_, v)| v.as_str())
    }

    #[test]
    fn signed_headers_verify_within_the_window() {
        let headers = sign(SECRET, &alice(), 1_000);
        assert!(headers.iter().all(|(_, v)| v.is_ascii()), "{headers:?}");
        assert_eq!(verify(SECRET, lookup(&headers), 1_000), Ok(Some(alice())));
        assert_eq!(verify(SECRET, lookup(&headers), 1_060), Ok(Some(alice())));
        assert_eq!(verify(SECRET, lookup(&headers), 1_061), Err(IdentityError::Stale));
        assert_eq!(verify(SECRET, lookup(&headers), 939), Err(IdentityError::Stale));
    }

    #[test]
    fn any_change_breaks_the_signature() {
        let headers = sign(SECRET, &alice(), 1_000);
        for (i, tampered) in [
            (0, "ffffffffffffffffffffffffffffffff".to_string()),
            (1, "mallory@example.com".to_string()),
            (2, "true".to_string()),
            (3, "1001".to_string()),
        ] {
            let mut h = headers.clone();
            h[i].1 = tampered;
            assert_eq!(
                verify(SECRET, lookup(&h), 1_000),
                Err(IdentityError::BadSignature),
                "{i}"
            );
        }
        assert_eq!(
            verify("another-secret-of-enough-length-0123456789", lookup(&headers), 1_000),
            Err(IdentityError::BadSignature)
        );
    }

    #[test]
    fn absent_partial_and_malformed_headers() {
        assert_eq!(verify(SECRET, |_| None, 0), Ok(None));
        let headers = sign(SECRET, &alice(), 1_000);
        assert_eq!(
            verify(SECRET, lookup(&headers[..4]), 1_000),
            Err(IdentityError::Incomplete)
        );
        let mut h = headers.clone();
        h[4].1 = "zz".into();
        assert_eq!(verify(SECRET, lookup(&h), 1_000), Err(IdentityError::Malformed));
        let mut h = headers;
        h[2].1 = "yes".into();
        assert_eq!(verify(SECRET, lookup(&h), 1_000), Err(IdentityError::Malformed));
    }
}
