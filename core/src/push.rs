//! Web Push sign-in alerts (docs/web-push.md).
//!
//! A signed-in user's browser subscribes with its own push service and hands regstack the
//! subscription: the endpoint, and the browser's P-256 key and 16-byte secret. On every new
//! sign-in each subscription gets a short notice, encrypted for that browser alone (RFC 8291,
//! `aes128gcm`) and signed with the VAPID key (RFC 8292) so the push service knows the sender.
//! Sends run off the request path: a push service that hangs or fails never delays a
//! sign-in, and one that says a subscription is gone (404, 410) gets it deleted.

use std::sync::Arc;
use std::time::Duration;

use aes_gcm::aead::{Aead, KeyInit};
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine as _;
use p256::ecdsa::signature::Signer;
use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use p256::{PublicKey, SecretKey};
use serde_json::json;
use sha2::Sha256;

use crate::engine::Engine;
use crate::pages::origin;
use crate::ports::{HttpClient, HttpMethod, OutboundRequest, PushSubscriptionStore, Random};
use crate::records::{PushSubscription, User};
use crate::time::Timestamp;

/// The push services of the browsers people use, as origins a subscription's endpoint may
/// have (`push_service_origins`); `*.` matches any subdomain.
pub const DEFAULT_PUSH_SERVICES: &[&str] = &[
    "https://fcm.googleapis.com",
    "https://android.googleapis.com",
    "https://updates.push.services.mozilla.com",
    "https://web.push.apple.com",
    "https://*.notify.windows.com",
];

/// The longest endpoint accepted; real ones are a few hundred characters (and ASCII, so this
/// is bytes too, which keeps every backend's unique index on it within its key size).
pub const ENDPOINT_MAX_CHARS: usize = 1024;

/// How long a push service has to take a message.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a push service keeps an alert for a browser that is offline: a sign-in alert
/// is stale after a day.
const TTL_SECONDS: u32 = 86_400;

/// A VAPID JWT's lifetime; RFC 8292 allows at most 24 hours.
const VAPID_JWT_SECONDS: i64 = 12 * 3600;

/// The seed-004 warning for a generated pair.
pub const GENERATED_WARNING: &str = "vapid_public_key and vapid_private_key are not set: generated a pair for this \
     process. For production and multi-instance deployments, set a stable VAPID key pair: if the pair changes, \
     existing browser push subscriptions may stop receiving notifications and users may need to subscribe again. \
     `regstack vapid generate` prints one.";

/// The VAPID key pair that signs every push (RFC 8292).
#[derive(Clone)]
pub struct VapidKeys {
    secret: SecretKey,
    public: [u8; 65],
}

impl std::fmt::Debug for VapidKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VapidKeys")
            .field("public", &self.public_key())
            .finish_non_exhaustive()
    }
}

/// Bytes from base64url, padded or not (seed 004's keys are padded); standard base64's
/// `+` and `/` are read too, since keys get pasted from anywhere.
pub fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let cleaned: String = text
        .trim()
        .trim_end_matches('=')
        .chars()
        .map(|c| match c {
            '+' => '-',
            '/' => '_',
            c => c,
        })
        .collect();
    URL_SAFE_NO_PAD.decode(cleaned).ok()
}

impl VapidKeys {
    /// The pair in seed 004's formats: the uncompressed public point (65 bytes) and the
    /// PKCS#8 DER private key, each base64url. The public key must be the private key's.
    pub fn from_base64(public: &str, private: &str) -> Result<Self, String> {
        let der = decode_base64(private).ok_or("vapid_private_key is not base64url")?;
        let secret = SecretKey::from_pkcs8_der(&der)
            .map_err(|_| "vapid_private_key is not a PKCS#8 DER P-256 private key".to_string())?;
        let keys = Self::from_secret(secret);
        let given = decode_base64(public).ok_or("vapid_public_key is not base64url")?;
        if PublicKey::from_sec1_bytes(&given).is_err() || given.len() != 65 {
            return Err("vapid_public_key is not an uncompressed P-256 point (65 bytes)".into());
        }
        if given != keys.public {
            return Err("vapid_public_key is not the public half of vapid_private_key".into());
        }
        Ok(keys)
    }

    fn from_secret(secret: SecretKey) -> Self {
        let point = secret.public_key().to_sec1_bytes();
        let mut public = [0u8; 65];
        public.copy_from_slice(&point);
        Self { secret, public }
    }

    /// A fresh pair from `random`.
    pub fn generate(random: &dyn Random) -> Self {
        Self::from_secret(random_secret(random))
    }

    /// The public key as browsers take it (`applicationServerKey`): base64url, unpadded.
    pub fn public_key(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.public)
    }

    /// `(public, private)` in seed 004's text: padded base64url of the raw point and of the
    /// PKCS#8 DER.
    pub fn to_seed_format(&self) -> (String, String) {
        let der = self
            .secret
            .to_pkcs8_der()
            .map(|d| d.as_bytes().to_vec())
            .unwrap_or_default();
        (URL_SAFE.encode(self.public), URL_SAFE.encode(der))
    }

    /// The `Authorization` header for a push to `endpoint` (RFC 8292): a JWT for the
    /// endpoint's origin, signed ES256, and the public key.
    pub fn authorization(&self, endpoint: &str, subject: &str, now: Timestamp) -> String {
        let header = URL_SAFE_NO_PAD.encode(br#"{"typ":"JWT","alg":"ES256"}"#);
        let claims = json!({
            "aud": origin(endpoint).unwrap_or_default(),
            "exp": now.timestamp() + VAPID_JWT_SECONDS,
            "sub": subject,
        });
        let claims = URL_SAFE_NO_PAD.encode(claims.to_string());
        let signing_input = format!("{header}.{claims}");
        let key = p256::ecdsa::SigningKey::from(&self.secret);
        let signature: p256::ecdsa::Signature = key.sign(signing_input.as_bytes());
        let jwt = format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()));
        format!("vapid t={jwt}, k={}", self.public_key())
    }
}

fn random_secret(random: &dyn Random) -> SecretKey {
    loop {
        let mut bytes = [0u8; 32];
        random.fill(&mut bytes);
        // Fails only for zero or a value past the group order: about 2^-32 of draws.
        if let Ok(secret) = SecretKey::from_slice(&bytes) {
            return secret;
        }
    }
}

/// Why a subscription was refused, with the field it names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refused {
    /// `endpoint`, `p256dh` or `auth`.
    pub field: &'static str,
    /// What is wrong, for the 422.
    pub reason: &'static str,
}

/// Checks a browser's subscription: an https endpoint at one of `services` (an http one
/// only where an entry names that exact loopback origin), a P-256 point and a 16-byte
/// secret. Answers the keys as unpadded base64url, the form they are stored in.
pub fn check_subscription(
    endpoint: &str,
    p256dh: &str,
    auth: &str,
    services: &[String],
) -> Result<(String, String), Refused> {
    if !endpoint_allowed(endpoint, services) {
        return Err(Refused {
            field: "endpoint",
            reason: "endpoint must be an https:// URL of a known push service",
        });
    }
    let point = decode_base64(p256dh)
        .filter(|b| b.len() == 65 && PublicKey::from_sec1_bytes(b).is_ok())
        .ok_or(Refused {
            field: "p256dh",
            reason: "p256dh must be a base64url uncompressed P-256 public key (65 bytes)",
        })?;
    let secret = decode_base64(auth).filter(|b| b.len() == 16).ok_or(Refused {
        field: "auth",
        reason: "auth must be a base64url 16-byte secret",
    })?;
    Ok((URL_SAFE_NO_PAD.encode(point), URL_SAFE_NO_PAD.encode(secret)))
}

/// Whether `endpoint` is at one of `services`.
pub fn endpoint_allowed(endpoint: &str, services: &[String]) -> bool {
    if endpoint.len() > ENDPOINT_MAX_CHARS
        || !endpoint.is_ascii()
        || endpoint
            .chars()
            .any(|c| c.is_ascii_whitespace() || c.is_ascii_control() || c == '\\')
    {
        return false;
    }
    // A plain host only: no user info, wildcard or stray character reaches the allowlist.
    let Some(origin) = origin(endpoint) else {
        return false;
    };
    services.iter().any(|service| {
        let service = service.trim().trim_end_matches('/').to_ascii_lowercase();
        if let Some(suffix) = service.strip_prefix("https://*.") {
            return origin
                .strip_prefix("https://")
                .is_some_and(|host| host.len() > suffix.len() + 1 && host.ends_with(&format!(".{suffix}")));
        }
        service == origin
    })
}

/// Whether `entry` may stand in `push_service_origins`: an https origin (or `https://*.`
/// and a domain), or an http one on loopback (a stand-in push service).
pub fn valid_service(entry: &str) -> bool {
    let entry = entry.trim().trim_end_matches('/');
    // `https://*.domain` is checked as the origin of the domain itself.
    let (wildcard, plain) = match entry.strip_prefix("https://*.") {
        Some(domain) => (true, format!("https://{domain}")),
        None => (false, entry.to_string()),
    };
    // Nothing but the origin: no path, query or fragment.
    let Some(origin) = origin(&plain).filter(|o| o.eq_ignore_ascii_case(&plain)) else {
        return false;
    };
    origin.starts_with("https://")
        || (!wildcard
            && origin
                .strip_prefix("http://")
                .is_some_and(crate::config::is_loopback_authority))
}

/// `plaintext` encrypted for one browser (RFC 8291: `aes128gcm`, one record); `None` when
/// `ua_public` is not a P-256 point.
pub fn encrypt(plaintext: &[u8], ua_public: &[u8; 65], auth_secret: &[u8; 16], random: &dyn Random) -> Option<Vec<u8>> {
    let ua = PublicKey::from_sec1_bytes(ua_public).ok()?;
    let ephemeral = random_secret(random);
    let as_public = ephemeral.public_key().to_sec1_bytes();
    let shared = p256::ecdh::diffie_hellman(ephemeral.to_nonzero_scalar(), ua.as_affine());
    // RFC 8291 §3.3: the input keying material, from the shared secret and the browser's secret.
    let mut key_info = Vec::with_capacity(14 + 65 + 65);
    key_info.extend_from_slice(b"WebPush: info\0");
    key_info.extend_from_slice(ua_public);
    key_info.extend_from_slice(&as_public);
    let mut ikm = [0u8; 32];
    hkdf::Hkdf::<Sha256>::new(Some(auth_secret), shared.raw_secret_bytes())
        .expand(&key_info, &mut ikm)
        .expect("32 bytes is a valid HKDF-SHA256 length");
    // RFC 8188 §2.2–2.3: the content key and nonce, from a random salt.
    let mut salt = [0u8; 16];
    random.fill(&mut salt);
    let prk = hkdf::Hkdf::<Sha256>::new(Some(&salt), &ikm);
    let mut cek = [0u8; 16];
    let mut nonce = [0u8; 12];
    prk.expand(b"Content-Encoding: aes128gcm\0", &mut cek)
        .expect("16 bytes is a valid HKDF-SHA256 length");
    prk.expand(b"Content-Encoding: nonce\0", &mut nonce)
        .expect("12 bytes is a valid HKDF-SHA256 length");
    // One record: the text, then the last-record delimiter.
    let mut record = plaintext.to_vec();
    record.push(2);
    let cipher = aes_gcm::Aes128Gcm::new_from_slice(&cek).expect("a 16-byte key");
    let sealed = cipher
        .encrypt(aes_gcm::Nonce::from_slice(&nonce), record.as_slice())
        .ok()?;
    // The header: salt, record size, key id length, key id (the sender's public key).
    let mut body = Vec::with_capacity(16 + 4 + 1 + 65 + sealed.len());
    body.extend_from_slice(&salt);
    body.extend_from_slice(&4096u32.to_be_bytes());
    body.push(as_public.len() as u8);
    body.extend_from_slice(&as_public);
    body.extend_from_slice(&sealed);
    Some(body)
}

/// How a sign-in was made, as the alert names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignInMethod {
    /// Email and password, without a second factor.
    Password,
    /// A texted code, after a password or an OAuth provider.
    SmsCode,
    /// Through an OAuth provider.
    OAuth,
}

impl SignInMethod {
    /// The alert's `method`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Password => "password",
            Self::SmsCode => "sms",
            Self::OAuth => "oauth",
        }
    }
}

/// Sends a sign-in alert to each of `user`'s browsers, off the request path: the encryption
/// and the signature happen in the background job too. Never fails: an alert is a courtesy,
/// and the sign-in it reports has already happened.
pub async fn alert_sign_in(engine: &Engine, user: &User, method: SignInMethod, provider: Option<&str>) {
    let Some(keys) = engine.vapid.as_ref() else {
        return;
    };
    let subscriptions = match engine.ports.push.subscriptions(&user.id).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(target: "regstack.push", error = %e, "reading push subscriptions failed; no alert sent");
            return;
        }
    };
    let now = engine.now();
    let payload = json!({
        "type": "sign_in",
        "title": format!("New sign-in to {}", engine.config.app_name),
        "body": "Your account was just signed in to. If this was not you, change your password.",
        "method": method.as_str(),
        "provider": provider,
        "at": crate::time::to_pydantic(now),
    })
    .to_string();
    for subscription in subscriptions {
        // Made before the account last signed out everywhere (a password change or reset):
        // the session that made it is gone, and the browser may have been someone else's.
        if crate::flows::session::issued_before_cutoff(user, subscription.created_at) {
            if let Err(e) = engine.ports.push.unsubscribe(&user.id, &subscription.endpoint).await {
                tracing::warn!(target: "regstack.push", error = %e, "deleting a stale push subscription failed");
            }
            continue;
        }
        // Stored under an earlier, wider `push_service_origins`: not sent to any more.
        if !endpoint_allowed(&subscription.endpoint, &engine.config.push_service_origins) {
            continue;
        }
        let alert = Alert {
            http: engine.ports.http.clone(),
            store: engine.ports.push.clone(),
            random: engine.ports.random.clone(),
            keys: keys.clone(),
            subject: engine.config.vapid_subject.clone(),
            now,
            payload: payload.clone(),
            subscription,
        };
        if !engine.ports.background.spawn(Box::pin(alert.deliver())) {
            tracing::warn!(target: "regstack.push", "no room to run a sign-in alert in the background; dropped it");
        }
    }
}

/// One alert to one browser, with what it needs to run on its own.
struct Alert {
    http: Arc<dyn HttpClient>,
    store: Arc<dyn PushSubscriptionStore>,
    random: Arc<dyn Random>,
    keys: VapidKeys,
    subject: String,
    now: Timestamp,
    payload: String,
    subscription: PushSubscription,
}

impl Alert {
    /// The request: the payload encrypted to the browser, signed for its push service. `None`
    /// for a row whose keys are not a browser's (written by another program).
    fn request(&self) -> Option<OutboundRequest> {
        let p256dh: [u8; 65] = decode_base64(&self.subscription.p256dh)?.try_into().ok()?;
        let auth: [u8; 16] = decode_base64(&self.subscription.auth)?.try_into().ok()?;
        let body = encrypt(self.payload.as_bytes(), &p256dh, &auth, self.random.as_ref())?;
        let endpoint = &self.subscription.endpoint;
        Some(OutboundRequest {
            method: HttpMethod::Post,
            url: endpoint.clone(),
            headers: vec![
                (
                    "authorization".into(),
                    self.keys.authorization(endpoint, &self.subject, self.now),
                ),
                ("content-encoding".into(), "aes128gcm".into()),
                ("content-type".into(), "application/octet-stream".into()),
                ("ttl".into(), TTL_SECONDS.to_string()),
                ("urgency".into(), "high".into()),
            ],
            body,
            timeout: SEND_TIMEOUT,
            max_response_bytes: 0,
        })
    }

    async fn deliver(self) {
        let Some(request) = self.request() else {
            tracing::warn!(target: "regstack.push", "a push subscription's keys are unusable; skipped it");
            return;
        };
        let sub = &self.subscription;
        match self.http.send(request).await {
            Ok(answer) if (200..300).contains(&answer.status) => {}
            Ok(answer) if answer.status == 404 || answer.status == 410 => {
                // The browser unsubscribed or the push service expired it: it will never be
                // reachable again.
                match self.store.unsubscribe(&sub.user_id, &sub.endpoint).await {
                    Ok(_) => {
                        tracing::info!(target: "regstack.push", status = answer.status, "a push subscription is gone; deleted it")
                    }
                    Err(e) => {
                        tracing::warn!(target: "regstack.push", error = %e, "deleting a gone push subscription failed")
                    }
                }
            }
            Ok(answer) => {
                tracing::warn!(target: "regstack.push", status = answer.status, "a push service refused a sign-in alert");
            }
            Err(e) => {
                tracing::warn!(target: "regstack.push", error = %e, "a sign-in alert could not be sent");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// Hands out the given byte strings in order, one per `fill`.
    struct Scripted(Mutex<Vec<Vec<u8>>>);

    impl Random for Scripted {
        fn fill(&self, buf: &mut [u8]) {
            let next = self.0.lock().unwrap().remove(0);
            buf.copy_from_slice(&next);
        }
    }

    fn b64(text: &str) -> Vec<u8> {
        decode_base64(text).unwrap()
    }

    /// RFC 8291, Appendix A: the same sender key and salt give the same message, byte for byte.
    #[regstack_macros::dual_test]
    fn encrypts_the_rfc_8291_example() {
        let random = Scripted(Mutex::new(vec![
            b64("yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw"),
            b64("DGv6ra1nlYgDCS1FRnbzlw"),
        ]));
        let ua_public: [u8; 65] =
            b64("BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4")
                .try_into()
                .unwrap();
        let auth: [u8; 16] = b64("BTBZMqHH6r4Tts7J_aSIgg").try_into().unwrap();
        let body = encrypt(b"When I grow up, I want to be a watermelon", &ua_public, &auth, &random).unwrap();
        assert_eq!(
            URL_SAFE_NO_PAD.encode(body),
            "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN"
        );
    }

    /// A pair made by Python's `cryptography` with seed 004's script loads; a mismatched or
    /// mangled one does not, and the message names the field.
    #[regstack_macros::dual_test]
    fn loads_seed_004_pairs_and_refuses_bad_ones() {
        let public = "BCdXJXyjoIFw7FdU85zSC3V_vjF40xD9qgIoYMu4BWjx7uIdWiiub6atldiFZeqgHn1BJD8C0alW2sQR-Vms10E=";
        let private = "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgnML9xFefd7jWVRFLjJPwba9W80iaXybvV_LATCXNVzmhRANCAAQnVyV8o6CBcOxXVPOc0gt1f74xeNMQ_aoCKGDLuAVo8e7iHVoorm-mrZXYhWXqoB59QSQ_AtGpVtrEEflZrNdB";
        let keys = VapidKeys::from_base64(public, private).unwrap();
        assert_eq!(keys.public_key(), public.trim_end_matches('='));
        assert_eq!(keys.to_seed_format(), (public.to_string(), private.to_string()));
        let other = VapidKeys::generate(&Scripted(Mutex::new(vec![vec![7; 32]])));
        let (other_public, _) = other.to_seed_format();
        for (public, private, field) in [
            (other_public.as_str(), private, "vapid_public_key"),
            (public, "bm90IGEga2V5", "vapid_private_key"),
            (&public[..40], private, "vapid_public_key"),
        ] {
            let e = VapidKeys::from_base64(public, private).unwrap_err();
            assert!(e.starts_with(field), "{e}");
        }
        assert!(!format!("{keys:?}").contains("MIGH"), "Debug shows the private key");
    }

    #[regstack_macros::dual_test]
    fn the_vapid_header_is_an_es256_jwt_for_the_endpoints_origin() {
        use p256::ecdsa::signature::Verifier;
        let keys = VapidKeys::generate(&Scripted(Mutex::new(vec![vec![9; 32]])));
        let now = chrono::DateTime::from_timestamp(1_790_000_000, 0).unwrap();
        let header = keys.authorization(
            "https://fcm.googleapis.com/fcm/send/abc?x=1",
            "mailto:ops@example.com",
            now,
        );
        let (jwt, key) = header
            .strip_prefix("vapid t=")
            .and_then(|rest| rest.split_once(", k="))
            .unwrap();
        assert_eq!(key, keys.public_key());
        let (signed, signature) = jwt.rsplit_once('.').unwrap();
        let claims: serde_json::Value = serde_json::from_slice(&b64(signed.split_once('.').unwrap().1)).unwrap();
        assert_eq!(
            claims,
            json!({ "aud": "https://fcm.googleapis.com", "exp": 1_790_000_000 + 12 * 3600, "sub": "mailto:ops@example.com" })
        );
        let verifying = p256::ecdsa::VerifyingKey::from_sec1_bytes(&b64(key)).unwrap();
        let signature = p256::ecdsa::Signature::from_slice(&b64(signature)).unwrap();
        assert!(verifying.verify(signed.as_bytes(), &signature).is_ok());
    }

    #[regstack_macros::dual_test]
    fn endpoints_must_be_at_a_listed_push_service() {
        let services: Vec<String> = DEFAULT_PUSH_SERVICES
            .iter()
            .map(|s| s.to_string())
            .chain(["http://127.0.0.1:9000".to_string()])
            .collect();
        for good in [
            "https://fcm.googleapis.com/fcm/send/abc",
            "https://FCM.googleapis.com/wp/abc",
            "https://wns2-par02p.notify.windows.com/w/?token=abc",
            "https://web.push.apple.com/QGuQ",
            "http://127.0.0.1:9000/push/a",
        ] {
            assert!(endpoint_allowed(good, &services), "{good}");
        }
        for bad in [
            "http://fcm.googleapis.com/fcm/send/abc",
            "https://fcm.googleapis.com.evil.example/x",
            "https://evilfcm.googleapis.com/x",
            "https://notify.windows.com/x",
            "https://user@fcm.googleapis.com/x",
            "https://fcm.googleapis.com:444/x",
            "http://127.0.0.1:9001/push/a",
            "http://127.0.0.1/push/a",
            "https://fcm.googleapis.com/a b",
            "fcm.googleapis.com/x",
        ] {
            assert!(!endpoint_allowed(bad, &services), "{bad}");
        }
        for entry in [
            "https://push.example",
            "https://*.push.example",
            "http://localhost:8080",
        ] {
            assert!(valid_service(entry), "{entry}");
        }
        for entry in [
            "http://push.example",
            "https://push.example/path",
            "https://*",
            "push.example",
            "https://a@b",
        ] {
            assert!(!valid_service(entry), "{entry}");
        }
    }
}
