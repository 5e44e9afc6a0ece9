//! Per-purpose JWTs, byte-compatible with regstack 0.9.3 (docs/wire.md, "Tokens").
//!
//! Each purpose has its own HMAC key, `HMAC-SHA256(jwt_secret, purpose)`, so a reset token can
//! never pass as a session. Claims keep the original's order and types: `iat` is a float with
//! microseconds (bulk revocation needs sub-second ordering), `exp` an integer. Time is always
//! passed in.
//!
//! Signing and checking are plain HMAC over the signing input, with the signature compared in
//! constant time by `hmac`'s `verify_slice`. Decoding takes any byte string: every malformed
//! part is a [`JwtError`], never a panic (a 3-byte signature once crashed a request through a
//! JWT library's slice conversion; `core/tests/fuzz.rs` keeps that token as a regression case).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::{Map, Value};
use sha2::{Sha256, Sha384, Sha512};

use crate::time::{from_micros, plus_seconds, to_micros, Timestamp};

/// What a token is for; each purpose signs with its own derived key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Purpose {
    /// A login session.
    Session,
    /// A password-reset link (single use: its `jti` is revoked on success).
    PasswordReset,
    /// An email-change link; carries `new_email`.
    EmailChange,
    /// The phone-setup step; carries `phone`.
    PhoneSetup,
    /// The second step of an MFA login.
    LoginMfa,
}

impl Purpose {
    /// Every purpose.
    pub const ALL: [Purpose; 5] = [
        Purpose::Session,
        Purpose::PasswordReset,
        Purpose::EmailChange,
        Purpose::PhoneSetup,
        Purpose::LoginMfa,
    ];

    /// The `purpose` claim and key-derivation label.
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Session => "session",
            Purpose::PasswordReset => "password_reset",
            Purpose::EmailChange => "email_change",
            Purpose::PhoneSetup => "phone_setup",
            Purpose::LoginMfa => "login_mfa",
        }
    }

    /// The claim this purpose carries beyond the base set, if any.
    pub fn extra_claim(self) -> Option<&'static str> {
        match self {
            Purpose::EmailChange => Some("new_email"),
            Purpose::PhoneSetup => Some("phone"),
            _ => None,
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Why a token was refused. The HTTP layer shows one static text for all of them.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    /// Not three base64url parts, or the JSON inside is malformed.
    #[error("malformed token")]
    Malformed,
    /// The header names another algorithm than the configured one.
    #[error("unexpected algorithm")]
    Algorithm,
    /// The signature does not verify with this purpose's key.
    #[error("bad signature")]
    Signature,
    /// A required claim is missing or has the wrong type.
    #[error("missing or invalid claim `{0}`")]
    Claim(&'static str),
    /// The audience does not match the configuration.
    #[error("audience mismatch")]
    Audience,
    /// The token is for another purpose.
    #[error("wrong purpose")]
    Purpose,
    /// `now >= exp`.
    #[error("expired")]
    Expired,
}

/// The decoded claims of a verified token.
#[derive(Clone, Debug, PartialEq)]
pub struct Claims {
    /// The user id.
    pub sub: String,
    /// The token id, used for per-token revocation.
    pub jti: String,
    /// Issued-at, with microseconds.
    pub iat: Timestamp,
    /// Expiry, whole seconds since the epoch.
    pub exp: i64,
    /// The purpose.
    pub purpose: Purpose,
    /// `new_email` or `phone`, for the purposes that carry one.
    pub extra: Option<String>,
}

impl Claims {
    /// `exp` as an instant: how long a revocation of this token must be kept.
    pub fn expires_at(&self) -> Timestamp {
        from_micros(self.exp.saturating_mul(1_000_000))
    }
}

/// The HMAC algorithm of every token (`jwt_algorithm`); any other name is refused when the
/// config loads, with these three listed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum JwtAlgorithm {
    /// HMAC-SHA256, the default.
    #[default]
    #[serde(rename = "HS256")]
    Hs256,
    /// HMAC-SHA384.
    #[serde(rename = "HS384")]
    Hs384,
    /// HMAC-SHA512.
    #[serde(rename = "HS512")]
    Hs512,
}

impl JwtAlgorithm {
    /// The header's `alg`.
    pub fn as_str(self) -> &'static str {
        match self {
            JwtAlgorithm::Hs256 => "HS256",
            JwtAlgorithm::Hs384 => "HS384",
            JwtAlgorithm::Hs512 => "HS512",
        }
    }
}

/// Mints and verifies regstack JWTs for one secret, algorithm and audience.
#[derive(Clone)]
pub struct JwtCodec {
    alg: JwtAlgorithm,
    keys: [[u8; 32]; 5],
    audience: Option<String>,
}

impl std::fmt::Debug for JwtCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtCodec")
            .field("alg", &self.alg)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

/// `HMAC-<digest>(key, message)`, ready to finalise or verify.
macro_rules! mac {
    ($digest:ty, $key:expr, $message:expr) => {{
        let mut mac = <Hmac<$digest> as Mac>::new_from_slice($key).expect("hmac takes any key length");
        mac.update($message);
        mac
    }};
}

/// `HMAC-SHA256(key = secret, msg = purpose)`: the per-purpose signing key.
pub fn derive_key(secret: &str, purpose: Purpose) -> [u8; 32] {
    derive(secret, purpose.as_str())
}

/// `HMAC-SHA256(key = secret, msg = label)`: a key of its own for each use of `jwt_secret`
/// (the JWT purposes, and `sms_code` for SMS codes at rest).
pub fn derive(secret: &str, label: &str) -> [u8; 32] {
    mac!(Sha256, secret.as_bytes(), label.as_bytes())
        .finalize()
        .into_bytes()
        .into()
}

impl JwtCodec {
    /// A codec for `secret`, `algorithm` and an optional audience.
    pub fn new(secret: &str, algorithm: JwtAlgorithm, audience: Option<String>) -> Self {
        let keys = Purpose::ALL.map(|p| derive_key(secret, p));
        Self {
            alg: algorithm,
            keys,
            audience,
        }
    }

    fn alg_name(&self) -> &'static str {
        self.alg.as_str()
    }

    fn sign(&self, purpose: Purpose, message: &[u8]) -> Vec<u8> {
        let key = &self.keys[purpose.index()];
        match self.alg {
            JwtAlgorithm::Hs256 => mac!(Sha256, key, message).finalize().into_bytes().to_vec(),
            JwtAlgorithm::Hs384 => mac!(Sha384, key, message).finalize().into_bytes().to_vec(),
            JwtAlgorithm::Hs512 => mac!(Sha512, key, message).finalize().into_bytes().to_vec(),
        }
    }

    /// Constant-time check; a signature of the wrong length is simply wrong.
    fn verify_signature(&self, purpose: Purpose, message: &[u8], signature: &[u8]) -> bool {
        let key = &self.keys[purpose.index()];
        match self.alg {
            JwtAlgorithm::Hs256 => mac!(Sha256, key, message).verify_slice(signature).is_ok(),
            JwtAlgorithm::Hs384 => mac!(Sha384, key, message).verify_slice(signature).is_ok(),
            JwtAlgorithm::Hs512 => mac!(Sha512, key, message).verify_slice(signature).is_ok(),
        }
    }

    /// Mints a token. `iat = now`, `exp = trunc(now + ttl)`.
    pub fn mint(
        &self,
        purpose: Purpose,
        sub: &str,
        extra: Option<&str>,
        jti: &str,
        now: Timestamp,
        ttl_seconds: i64,
    ) -> (String, Claims) {
        let iat_micros = to_micros(now);
        let exp = plus_seconds(now, ttl_seconds).timestamp();
        let mut payload = Map::new();
        payload.insert("sub".into(), Value::from(sub));
        payload.insert("jti".into(), Value::from(jti));
        payload.insert("iat".into(), Value::from(iat_micros as f64 / 1_000_000.0));
        payload.insert("exp".into(), Value::from(exp));
        payload.insert("purpose".into(), Value::from(purpose.as_str()));
        if let (Some(name), Some(value)) = (purpose.extra_claim(), extra) {
            payload.insert(name.into(), Value::from(value));
        }
        if let Some(aud) = &self.audience {
            payload.insert("aud".into(), Value::from(aud.as_str()));
        }
        let header = format!("{{\"alg\":\"{}\",\"typ\":\"JWT\"}}", self.alg_name());
        let body = serde_json::to_string(&payload).expect("claims serialise");
        let signing_input = format!("{}.{}", URL_SAFE_NO_PAD.encode(header), URL_SAFE_NO_PAD.encode(body));
        let signature = self.sign(purpose, signing_input.as_bytes());
        let token = format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature));
        let claims = Claims {
            sub: sub.to_string(),
            jti: jti.to_string(),
            iat: from_micros(iat_micros),
            exp,
            purpose,
            extra: extra.filter(|_| purpose.extra_claim().is_some()).map(str::to_string),
        };
        (token, claims)
    }

    /// Verifies a token for `purpose` at `now`, in the original's order: structure, algorithm,
    /// signature, required claims, audience, purpose, expiry (no leeway).
    pub fn decode(&self, token: &str, purpose: Purpose, now: Timestamp) -> Result<Claims, JwtError> {
        let mut parts = token.split('.');
        let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(JwtError::Malformed);
        };
        let header = URL_SAFE_NO_PAD.decode(header_b64).map_err(|_| JwtError::Malformed)?;
        let header: Header<'_> = json_object(&header)?;
        match header.alg.as_ref().and_then(Loose::as_str) {
            Some(alg) if alg == self.alg_name() => {}
            Some(_) => return Err(JwtError::Algorithm),
            None => return Err(JwtError::Malformed),
        }
        let signature = URL_SAFE_NO_PAD.decode(signature_b64).map_err(|_| JwtError::Malformed)?;
        let signing_input = &token[..header_b64.len() + 1 + payload_b64.len()];
        if !self.verify_signature(purpose, signing_input.as_bytes(), &signature) {
            return Err(JwtError::Signature);
        }
        let payload = URL_SAFE_NO_PAD.decode(payload_b64).map_err(|_| JwtError::Malformed)?;
        let map: Payload<'_> = json_object(&payload)?;
        fn text<'c>(claim: &'c Option<Loose<'_>>, name: &'static str) -> Result<&'c str, JwtError> {
            claim.as_ref().and_then(Loose::as_str).ok_or(JwtError::Claim(name))
        }
        fn number(claim: &Option<Loose<'_>>, name: &'static str) -> Result<f64, JwtError> {
            claim.as_ref().and_then(Loose::as_f64).ok_or(JwtError::Claim(name))
        }
        let sub = text(&map.sub, "sub")?;
        let exp = number(&map.exp, "exp")?;
        let iat = number(&map.iat, "iat")?;
        let jti = text(&map.jti, "jti")?;
        let claimed_purpose = text(&map.purpose, "purpose")?;
        let extra = match purpose.extra_claim() {
            Some(name) => {
                let claim = if name == "phone" { &map.phone } else { &map.new_email };
                Some(text(claim, name)?.to_string())
            }
            None => None,
        };
        match (&self.audience, &map.aud) {
            (None, None) => {}
            (None, Some(_)) | (Some(_), None) => return Err(JwtError::Audience),
            (Some(want), Some(Loose::Text(got))) if got == want => {}
            (Some(want), Some(Loose::List(list))) if list.iter().any(|v| v.as_deref() == Some(want.as_str())) => {}
            (Some(_), Some(_)) => return Err(JwtError::Audience),
        }
        if claimed_purpose != purpose.as_str() {
            return Err(JwtError::Purpose);
        }
        let exp = exp.trunc() as i64;
        if now.timestamp() >= exp {
            return Err(JwtError::Expired);
        }
        Ok(Claims {
            sub: sub.to_string(),
            jti: jti.to_string(),
            iat: from_micros((iat * 1_000_000.0).round() as i64),
            exp,
            purpose,
            extra,
        })
    }
}

/// `bytes` as a JSON object into `T`. A derived struct would also take a JSON array of its
/// fields in order; a JWT's header and payload are objects, so anything else is malformed.
fn json_object<'a, T: serde::Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, JwtError> {
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(JwtError::Malformed);
    }
    serde_json::from_slice(bytes).map_err(|_| JwtError::Malformed)
}

/// The JOSE header, as far as it is read: the other members are skipped.
#[derive(serde::Deserialize)]
struct Header<'a> {
    #[serde(borrow, default, deserialize_with = "present")]
    alg: Option<Loose<'a>>,
}

/// A member that is there, `null` included (`Option` alone would read `null` as absent, and
/// `"aud": null` must still count as an audience).
fn present<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<Loose<'de>>, D::Error> {
    serde::Deserialize::deserialize(deserializer).map(Some)
}

/// The claims [`JwtCodec::decode`] reads, parsed in one pass into borrowed text where the
/// JSON allows (the session check runs on every request). A claim of the wrong type fails as
/// a missing one would. Unknown top-level claims are skipped without being parsed, and a
/// claim named twice makes the token malformed (a JSON tree would keep the last); a token
/// only reaches this after its signature checked out, so both concern tokens we signed.
#[derive(serde::Deserialize)]
struct Payload<'a> {
    #[serde(borrow, default, deserialize_with = "present")]
    sub: Option<Loose<'a>>,
    #[serde(borrow, default, deserialize_with = "present")]
    exp: Option<Loose<'a>>,
    #[serde(borrow, default, deserialize_with = "present")]
    iat: Option<Loose<'a>>,
    #[serde(borrow, default, deserialize_with = "present")]
    jti: Option<Loose<'a>>,
    #[serde(borrow, default, deserialize_with = "present")]
    purpose: Option<Loose<'a>>,
    #[serde(borrow, default, deserialize_with = "present")]
    new_email: Option<Loose<'a>>,
    #[serde(borrow, default, deserialize_with = "present")]
    phone: Option<Loose<'a>>,
    #[serde(borrow, default, deserialize_with = "present")]
    aud: Option<Loose<'a>>,
}

/// One claim's value, whatever its JSON type: text (borrowed unless it had escapes), a finite
/// number, a list (its text items), or anything else.
enum Loose<'a> {
    Text(std::borrow::Cow<'a, str>),
    Number(f64),
    List(Vec<Option<std::borrow::Cow<'a, str>>>),
    Other,
}

impl Loose<'_> {
    fn as_str(&self) -> Option<&str> {
        match self {
            Loose::Text(s) => Some(s),
            _ => None,
        }
    }

    fn as_f64(&self) -> Option<f64> {
        match self {
            Loose::Number(n) if n.is_finite() => Some(*n),
            _ => None,
        }
    }
}

impl<'de: 'a, 'a> serde::Deserialize<'de> for Loose<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Loose<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Loose::Text(v.into()))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Loose::Text(v.to_string().into()))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
                Ok(Loose::Number(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
                Ok(Loose::Number(v as f64))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
                Ok(Loose::Number(v as f64))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(Loose::Other)
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(Loose::Other)
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                // Read, not skipped, so a bad number or string inside is still malformed.
                while map.next_entry::<Loose<'de>, Loose<'de>>()?.is_some() {}
                Ok(Loose::Other)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<Loose<'de>>()? {
                    items.push(match item {
                        Loose::Text(s) => Some(s),
                        _ => None,
                    });
                }
                Ok(Loose::List(items))
            }
        }
        deserializer.deserialize_any(Visit)
    }
}

/// The `purpose` claim of a token, read without checking it: only for a token regstack minted
/// itself and read back from its own storage (the OAuth exchange, which must tell a session
/// from an SMS sign-in step while the row, not the token, decides expiry).
pub fn purpose_claim(token: &str) -> Option<String> {
    let payload = token.split('.').nth(1)?;
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
    claims.get("purpose")?.as_str().map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hex::encode as hex;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";
    const PYTHON_TOKEN: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ1c2VyLTEiLCJqdGkiOiJfSDdwSF9RaHB2VldmZEJvcW1SWktBIiwiaWF0IjoxNzY3MjY4ODAwLjEyMzQ1NiwiZXhwIjoxNzY3Mjc2MDAwLCJwdXJwb3NlIjoic2Vzc2lvbiJ9.AfgYzUmOKbWUXMWkCGm4eSEmsR22_yfpBw2WTXRRt8s";

    fn at(micros: i64) -> Timestamp {
        from_micros(micros)
    }

    #[regstack_macros::dual_test]
    fn derived_keys_match_the_contract_vectors() {
        let expected = [
            "f08e9df8942bedb716a2aa254b933b1b3a72448d85c3a92620b69109d9927555",
            "66c35c03e801991e96e6e1207baa58efbef90c9a4661782a254509edd944ac09",
            "2f9468646cd17fc478343bea2e141f912edee58ebe86e7210fa1ad56fbb1bce8",
            "c8b3ab50c5b54b4226b31e39ed3761660bab5c536e606abff9dcd2d7170ba258",
            "9f07d1fff5c703345eaccf5a93029fd580148cbcc22882894e418913a58e8ae7",
        ];
        for (p, want) in Purpose::ALL.iter().zip(expected) {
            assert_eq!(hex(&derive_key(SECRET, *p)), want, "{}", p.as_str());
        }
    }

    #[regstack_macros::dual_test]
    fn accepts_the_python_session_token() {
        let codec = JwtCodec::new(SECRET, JwtAlgorithm::Hs256, None);
        let claims = codec
            .decode(PYTHON_TOKEN, Purpose::Session, at(1_767_268_800_200_000))
            .unwrap();
        assert_eq!(claims.sub, "user-1");
        assert_eq!(claims.jti, "_H7pH_QhpvVWfdBoqmRZKA");
        assert_eq!(to_micros(claims.iat), 1_767_268_800_123_456);
        assert_eq!(claims.exp, 1_767_276_000);
        // Expired exactly at exp, no leeway.
        assert_eq!(
            codec.decode(PYTHON_TOKEN, Purpose::Session, at(1_767_276_000_000_000)),
            Err(JwtError::Expired)
        );
        // Another purpose's key does not verify it.
        assert_eq!(
            codec.decode(PYTHON_TOKEN, Purpose::PasswordReset, at(1_767_268_800_200_000)),
            Err(JwtError::Signature)
        );
        // Another secret does not verify it.
        let other = JwtCodec::new("fedcba9876543210fedcba9876543210", JwtAlgorithm::Hs256, None);
        assert_eq!(
            other.decode(PYTHON_TOKEN, Purpose::Session, at(1_767_268_800_200_000)),
            Err(JwtError::Signature)
        );
    }

    #[regstack_macros::dual_test]
    fn mints_the_python_token_byte_for_byte() {
        let codec = JwtCodec::new(SECRET, JwtAlgorithm::Hs256, None);
        let (token, _) = codec.mint(
            Purpose::Session,
            "user-1",
            None,
            "_H7pH_QhpvVWfdBoqmRZKA",
            at(1_767_268_800_123_456),
            7200,
        );
        assert_eq!(token, PYTHON_TOKEN);
    }

    #[regstack_macros::dual_test]
    fn extra_claims_audience_and_tampering() {
        let codec = JwtCodec::new(SECRET, JwtAlgorithm::Hs512, Some("app".into()));
        let now = at(1_767_268_800_000_001);
        let (t, c) = codec.mint(Purpose::EmailChange, "u", Some("new@example.com"), "j", now, 60);
        let back = codec.decode(&t, Purpose::EmailChange, now).unwrap();
        assert_eq!(back, c);
        assert_eq!(back.extra.as_deref(), Some("new@example.com"));
        // Audience configured but absent, and present but not configured.
        let plain = JwtCodec::new(SECRET, JwtAlgorithm::Hs512, None);
        assert_eq!(plain.decode(&t, Purpose::EmailChange, now), Err(JwtError::Audience));
        let (t2, _) = plain.mint(Purpose::Session, "u", None, "j", now, 60);
        assert_eq!(codec.decode(&t2, Purpose::Session, now), Err(JwtError::Audience));
        // HS256 token against an HS512 codec.
        let hs256 = JwtCodec::new(SECRET, JwtAlgorithm::Hs256, None);
        assert_eq!(
            plain.decode(
                &hs256.mint(Purpose::Session, "u", None, "j", now, 60).0,
                Purpose::Session,
                now
            ),
            Err(JwtError::Algorithm)
        );
        // A flipped payload byte breaks the signature.
        let mut parts: Vec<String> = t2.split('.').map(str::to_string).collect();
        parts[1] =
            URL_SAFE_NO_PAD.encode(br#"{"sub":"admin","jti":"j","iat":1.0,"exp":9999999999,"purpose":"session"}"#);
        assert_eq!(
            plain.decode(&parts.join("."), Purpose::Session, now),
            Err(JwtError::Signature)
        );
        assert_eq!(plain.decode("garbage", Purpose::Session, now), Err(JwtError::Malformed));
        assert_eq!(plain.decode("a.b.c", Purpose::Session, now), Err(JwtError::Malformed));
    }

    /// Signed by `codec` with any header and payload text.
    fn forge(codec: &JwtCodec, purpose: Purpose, header: &str, payload: &str) -> String {
        let input = format!("{}.{}", URL_SAFE_NO_PAD.encode(header), URL_SAFE_NO_PAD.encode(payload));
        let signature = codec.sign(purpose, input.as_bytes());
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
    }

    #[regstack_macros::dual_test]
    fn claims_of_any_shape_are_read_or_refused_by_name() {
        let codec = JwtCodec::new(SECRET, JwtAlgorithm::Hs256, Some("app".into()));
        let now = at(1_767_268_800_000_000);
        let header = r#"{"typ":"JWT","kid":{"nested":[1,2]},"alg":"HS256"}"#;
        let decode = |payload: &str| {
            codec.decode(
                &forge(&codec, Purpose::EmailChange, header, payload),
                Purpose::EmailChange,
                now,
            )
        };
        // Escaped text, integer times, unknown claims of every type, an audience list.
        let claims = decode(
            r#"{"sub":"u\u002d1","jti":"j\/k","iat":1767268800,"exp":1767272400,"purpose":"email_change",
               "new_email":"new@example.com","aud":[null,7,"app"],"x":{"y":[true,null]},"z":false}"#,
        )
        .unwrap();
        assert_eq!((claims.sub.as_str(), claims.jti.as_str()), ("u-1", "j/k"));
        assert_eq!(
            (claims.exp, claims.extra.as_deref()),
            (1_767_272_400, Some("new@example.com"))
        );
        assert_eq!(claims.iat, at(1_767_268_800_000_000));
        // A claim of the wrong type counts as missing.
        let base =
            r#""jti":"j","iat":1.5,"exp":1767272400,"purpose":"email_change","new_email":"n@example.com","aud":"app""#;
        assert_eq!(decode(&format!(r#"{{"sub":7,{base}}}"#)), Err(JwtError::Claim("sub")));
        assert_eq!(
            decode(&format!(
                r#"{{"sub":"u",{}}}"#,
                base.replace(r#""new_email":"n@example.com""#, r#""new_email":["n"]"#)
            )),
            Err(JwtError::Claim("new_email"))
        );
        assert_eq!(
            decode(&format!(
                r#"{{"sub":"u",{}}}"#,
                base.replace("1767272400", r#""1767272400""#)
            )),
            Err(JwtError::Claim("exp"))
        );
        assert_eq!(
            decode(&format!(
                r#"{{"sub":"u",{}}}"#,
                base.replace(r#""aud":"app""#, r#""aud":["other",{"app":1}]"#)
            )),
            Err(JwtError::Audience)
        );
        assert_eq!(
            decode(&format!(
                r#"{{"sub":"u",{}}}"#,
                base.replace(r#""aud":"app""#, r#""aud":{"app":1}"#)
            )),
            Err(JwtError::Audience)
        );
        // `null` is there all the same; a bad number inside a claim's object is malformed.
        assert_eq!(
            decode(&format!(
                r#"{{"sub":"u",{}}}"#,
                base.replace(r#""aud":"app""#, r#""aud":null"#)
            )),
            Err(JwtError::Audience)
        );
        let plain = JwtCodec::new(SECRET, JwtAlgorithm::Hs256, None);
        let with_null_aud = forge(
            &plain,
            Purpose::Session,
            header,
            r#"{"sub":"u","jti":"j","iat":1,"exp":1767272400,"purpose":"session","aud":null}"#,
        );
        assert_eq!(
            plain.decode(&with_null_aud, Purpose::Session, now),
            Err(JwtError::Audience)
        );
        assert_eq!(
            decode(&format!(
                r#"{{"sub":"u",{}}}"#,
                base.replace(r#""aud":"app""#, r#""aud":{"x":1e400}"#)
            )),
            Err(JwtError::Malformed)
        );
        // Not an object at all, or an algorithm of the wrong type.
        assert_eq!(decode(r#"["sub","u"]"#), Err(JwtError::Malformed));
        let numeric_alg = forge(&codec, Purpose::Session, r#"{"alg":256}"#, r#"{}"#);
        assert_eq!(
            codec.decode(&numeric_alg, Purpose::Session, now),
            Err(JwtError::Malformed)
        );
    }
}
