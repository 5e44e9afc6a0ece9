//! Email through Amazon SES (API v2) and SMS through Amazon SNS.
//!
//! Credentials come from exactly one place: explicit keys, a named profile, or the SDK's
//! default chain (environment, shared files, web identity, container and instance metadata).
//! The config validates that keys and profile are not both set. The standard `AWS_ENDPOINT_URL`
//! (and `AWS_ENDPOINT_URL_SESV2` / `AWS_ENDPOINT_URL_SNS`) variables point the clients at an
//! emulator or a VPC endpoint. Throttling and transient failures are retried by the SDK's
//! standard retry policy (three attempts, exponential backoff with jitter); what still fails is
//! reported with the service's error code and message, never the message body.

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};

/// Where the SDK takes its credentials from.
enum CredentialSource<'a> {
    Keys {
        access_key_id: &'a str,
        secret_access_key: &'a str,
    },
    Profile(&'a str),
    DefaultChain,
}

/// One SDK configuration: hyper 1 with rustls on ring (no C toolchain needed), a fixed region.
async fn sdk_config(region: &str, credentials: CredentialSource<'_>) -> SdkConfig {
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .build_https();
    let region = Region::new(region.to_string());
    let loader = aws_config::defaults(BehaviorVersion::latest())
        .http_client(http.clone())
        .region(region.clone());
    let loader = match credentials {
        CredentialSource::Keys {
            access_key_id,
            secret_access_key,
        } => loader.credentials_provider(aws_credential_types::Credentials::new(
            access_key_id,
            secret_access_key,
            None,
            None,
            "regstack-config",
        )),
        // Only that profile's credentials: the default chain would prefer environment keys.
        CredentialSource::Profile(name) => loader.profile_name(name).credentials_provider(
            aws_config::profile::ProfileFileCredentialsProvider::builder()
                .configure(
                    &aws_config::provider_config::ProviderConfig::without_region()
                        .with_region(Some(region))
                        .with_http_client(http),
                )
                .profile_name(name)
                .build(),
        ),
        CredentialSource::DefaultChain => loader,
    };
    loader.load().await
}

/// The service's own words for a failure (code and message), without the request.
fn describe<E: std::error::Error>(service: &str, e: &E) -> String {
    format!(
        "{service}: {}",
        aws_smithy_types::error::display::DisplayErrorContext(e)
    )
}

#[cfg(feature = "ses")]
pub use ses::SesMailer;

#[cfg(feature = "ses")]
mod ses {
    use async_trait::async_trait;
    use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message};
    use regstack_core::config::EmailConfig;
    use regstack_core::ports::{DeliveryError, EmailMessage, Mailer};

    use super::{describe, sdk_config, CredentialSource};

    /// Sends through SES v2 `SendEmail` as a simple message with text and HTML parts.
    pub struct SesMailer {
        pub(super) client: aws_sdk_sesv2::Client,
    }

    impl SesMailer {
        /// A mailer for the `[email]` settings (`ses_region`, and `ses_profile` or the explicit
        /// keys or neither).
        pub async fn from_config(email: &EmailConfig) -> Result<Self, String> {
            let nonempty = |v: &Option<String>| v.clone().filter(|s| !s.is_empty());
            let (key, secret, profile) = (
                nonempty(&email.ses_access_key_id),
                nonempty(&email.ses_secret_access_key),
                nonempty(&email.ses_profile),
            );
            let source =
                match (&key, &secret, &profile) {
                    (Some(k), Some(s), None) => CredentialSource::Keys {
                        access_key_id: k,
                        secret_access_key: s,
                    },
                    (None, None, Some(p)) => CredentialSource::Profile(p),
                    (None, None, None) => CredentialSource::DefaultChain,
                    _ => return Err(
                        "email: set ses_access_key_id and ses_secret_access_key together, or ses_profile, or neither"
                            .into(),
                    ),
                };
            let sdk = sdk_config(&email.ses_region, source).await;
            Ok(Self {
                client: aws_sdk_sesv2::Client::new(&sdk),
            })
        }
    }

    fn utf8(data: &str) -> Result<Content, DeliveryError> {
        Content::builder()
            .data(data)
            .charset("UTF-8")
            .build()
            .map_err(|e| DeliveryError(format!("ses: {e}")))
    }

    #[async_trait]
    impl Mailer for SesMailer {
        async fn send(&self, m: &EmailMessage) -> Result<(), DeliveryError> {
            let body = Body::builder().text(utf8(&m.text)?).html(utf8(&m.html)?).build();
            let message = Message::builder().subject(utf8(&m.subject)?).body(body).build();
            let sent = self
                .client
                .send_email()
                .from_email_address(&m.from)
                .destination(Destination::builder().to_addresses(&m.to).build())
                .content(EmailContent::builder().simple(message).build())
                .send()
                .await
                .map_err(|e| DeliveryError(describe("ses", &e)))?;
            tracing::info!(
                target: "regstack.email.ses",
                to = %m.to,
                message_id = sent.message_id().unwrap_or("-"),
                "email sent through SES"
            );
            Ok(())
        }
    }
}

/// The checks `regstack ses setup` runs against SES before it writes a config
/// (docs/cli.md, "ses setup").
#[cfg(feature = "ses")]
pub mod ses_checks {
    use aws_sdk_sesv2::error::ProvideErrorMetadata;
    use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message};
    use regstack_core::config::EmailConfig;

    use super::describe;

    /// How a check came out.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
    #[serde(rename_all = "lowercase")]
    pub enum Outcome {
        /// It holds.
        Pass,
        /// Worth acting on; does not stop the setup.
        Warn,
        /// It does not hold.
        Fail,
    }

    /// One check's answer.
    #[derive(Clone, Debug, serde::Serialize)]
    pub struct Check {
        /// How it came out.
        pub outcome: Outcome,
        /// What was checked.
        pub name: &'static str,
        /// What SES said, in a sentence.
        pub detail: String,
    }

    fn check(outcome: Outcome, name: &'static str, detail: impl Into<String>) -> Check {
        Check {
            outcome,
            name,
            detail: detail.into(),
        }
    }

    /// Error codes that mean the credentials themselves were refused.
    const BAD_CREDENTIALS: &[&str] = &[
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "ExpiredTokenException",
        "InvalidSignatureException",
        "IncompleteSignature",
    ];

    async fn client(email: &EmailConfig) -> Result<aws_sdk_sesv2::Client, String> {
        Ok(super::ses::SesMailer::from_config(email).await?.client)
    }

    /// The sender's identity (the address, else its domain) and the account's sandbox. The
    /// identity read is also the credentials' test: SES answers it only to a signed request.
    pub async fn run(email: &EmailConfig) -> Vec<Check> {
        let client = match client(email).await {
            Ok(c) => c,
            Err(e) => return vec![check(Outcome::Fail, "credentials", e)],
        };
        let address = email.from_address.as_str();
        let domain = address.rsplit_once('@').map_or(address, |(_, d)| d);
        // The address, its domain, then each parent domain: a verified domain covers its
        // addresses, and SES lets a verified parent cover its subdomains.
        let mut candidates = vec![address.to_string()];
        let mut d = domain;
        loop {
            candidates.push(d.to_string());
            match d.split_once('.') {
                Some((_, parent)) if parent.contains('.') => d = parent,
                _ => break,
            }
        }
        let mut pending: Option<(String, String)> = None;
        let mut verified: Option<String> = None;
        for name in &candidates {
            match client.get_email_identity().email_identity(name).send().await {
                Ok(found) => {
                    let status = found.verification_status().map(|s| s.as_str().to_string());
                    if status.as_deref() == Some("SUCCESS") {
                        verified = Some(name.clone());
                        break;
                    }
                    pending.get_or_insert((name.clone(), status.unwrap_or_else(|| "unknown".into())));
                }
                Err(e) if e.code() == Some("NotFoundException") => {}
                Err(e) if e.code().is_some_and(|c| BAD_CREDENTIALS.contains(&c)) => {
                    return vec![check(Outcome::Fail, "credentials", describe("ses", &e))];
                }
                Err(e) if e.code().is_some_and(|c| c.starts_with("AccessDenied")) => {
                    return vec![
                        check(Outcome::Pass, "credentials", "SES knows them"),
                        check(
                            Outcome::Warn,
                            "sender identity",
                            format!("not readable with these credentials (ses:GetEmailIdentity denied): check {domain} in the SES console"),
                        ),
                        sandbox(&client).await,
                    ];
                }
                // No code: the request never got an answer from SES.
                Err(e) if e.code().is_none() => {
                    return vec![check(Outcome::Fail, "connection", describe("ses", &e))];
                }
                Err(e) => return vec![check(Outcome::Fail, "credentials", describe("ses", &e))],
            }
        }
        let mut out = vec![check(Outcome::Pass, "credentials", "SES answered a signed request")];
        out.push(match (verified, pending) {
            (Some(name), _) => check(Outcome::Pass, "sender identity", format!("{name} is verified")),
            (None, Some((name, status))) => check(
                Outcome::Fail,
                "sender identity",
                format!("{name} is not verified yet (status {status})"),
            ),
            (None, None) => check(
                Outcome::Fail,
                "sender identity",
                format!(
                    "neither {address} nor {domain} is an SES identity in {}: add and verify one",
                    email.ses_region
                ),
            ),
        });
        out.push(sandbox(&client).await);
        out
    }

    /// The account's sandbox, from SES v2 `GetAccount`.
    async fn sandbox(client: &aws_sdk_sesv2::Client) -> Check {
        match client.get_account().send().await {
            Ok(account) if account.production_access_enabled() => {
                check(Outcome::Pass, "sandbox", "production access: mail goes to any address")
            }
            Ok(_) => check(
                Outcome::Warn,
                "sandbox",
                "the account is in the SES sandbox: SES will reject email to any address that isn't separately verified",
            ),
            Err(e) => check(
                Outcome::Warn,
                "sandbox state",
                format!(
                    "could not read the account's sending state ({}): check it in the SES console before going live",
                    e.code().unwrap_or("no answer")
                ),
            ),
        }
    }

    /// Sends one short probe message from the configured sender to `to`.
    pub async fn send_test(email: &EmailConfig, to: &str) -> Check {
        let client = match client(email).await {
            Ok(c) => c,
            Err(e) => return check(Outcome::Fail, "test message", e),
        };
        let utf8 = |s: &str| Content::builder().data(s).charset("UTF-8").build();
        let (Ok(subject), Ok(text)) = (
            utf8("regstack: SES test message"),
            utf8("This message was sent by `regstack ses setup` to check the SES settings. Nothing to do."),
        ) else {
            return check(Outcome::Fail, "test message", "could not build the message");
        };
        let message = Message::builder()
            .subject(subject)
            .body(Body::builder().text(text).build())
            .build();
        match client
            .send_email()
            .from_email_address(&email.from_address)
            .destination(Destination::builder().to_addresses(to).build())
            .content(EmailContent::builder().simple(message).build())
            .send()
            .await
        {
            Ok(sent) => check(
                Outcome::Pass,
                "test message",
                format!("sent to {to} (message id {})", sent.message_id().unwrap_or("-")),
            ),
            Err(e) => check(Outcome::Fail, "test message", describe("ses", &e)),
        }
    }
}

#[cfg(feature = "sns")]
pub use sns::SnsSms;

#[cfg(feature = "sns")]
mod sns {
    use async_trait::async_trait;
    use aws_sdk_sns::types::MessageAttributeValue;
    use regstack_core::config::SmsConfig;
    use regstack_core::ports::{DeliveryError, SmsMessage, SmsSender};

    use super::{describe, sdk_config, CredentialSource};

    /// Sends SMS with SNS `Publish` to a phone number, as transactional messages.
    pub struct SnsSms {
        client: aws_sdk_sns::Client,
        sender_id: Option<String>,
    }

    impl SnsSms {
        /// A sender for the `[sms]` settings: `sns_region`, credentials from the default chain,
        /// and `from_number` (if set) as the `AWS.SNS.SMS.SenderID` attribute.
        pub async fn from_config(sms: &SmsConfig) -> Result<Self, String> {
            let sdk = sdk_config(&sms.sns_region, CredentialSource::DefaultChain).await;
            Ok(Self {
                client: aws_sdk_sns::Client::new(&sdk),
                sender_id: sms.from_number.clone().filter(|s| !s.is_empty()),
            })
        }
    }

    fn string_attribute(value: &str) -> Result<MessageAttributeValue, DeliveryError> {
        MessageAttributeValue::builder()
            .data_type("String")
            .string_value(value)
            .build()
            .map_err(|e| DeliveryError(format!("sns: {e}")))
    }

    #[async_trait]
    impl SmsSender for SnsSms {
        async fn send(&self, m: &SmsMessage) -> Result<(), DeliveryError> {
            let mut publish = self
                .client
                .publish()
                .phone_number(&m.to)
                .message(&m.body)
                // Codes are time-critical: transactional routing, not the cheaper promotional.
                .message_attributes("AWS.SNS.SMS.SMSType", string_attribute("Transactional")?);
            if let Some(sender) = &self.sender_id {
                publish = publish.message_attributes("AWS.SNS.SMS.SenderID", string_attribute(sender)?);
            }
            let sent = publish.send().await.map_err(|e| DeliveryError(describe("sns", &e)))?;
            tracing::info!(
                target: "regstack.sms.sns",
                to = %m.to,
                message_id = sent.message_id().unwrap_or("-"),
                "sms sent through SNS"
            );
            Ok(())
        }
    }
}
