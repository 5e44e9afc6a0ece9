//! SMS through Twilio's Messages API: `POST /2010-04-01/Accounts/{sid}/Messages.json` with the
//! form fields `To`, `From` and `Body`, authenticated with HTTP basic auth (account SID and
//! auth token). Rate limiting (429) and server errors are retried with backoff; other refusals
//! are reported at once with Twilio's error code and message (never the body, which holds the
//! code).

use std::time::Duration;

use async_trait::async_trait;
use regstack_core::config::SmsConfig;
use regstack_core::ports::{DeliveryError, SmsMessage, SmsSender};

/// Sends SMS through one Twilio account.
pub struct TwilioSms {
    client: reqwest::Client,
    url: String,
    account_sid: String,
    auth_token: String,
    from: String,
    retries: u32,
}

impl TwilioSms {
    /// A sender for the `[sms]` settings.
    pub fn from_config(sms: &SmsConfig) -> Result<Self, String> {
        let missing = |f: &str| format!("sms.{f} is required for the twilio backend");
        let account_sid = sms
            .twilio_account_sid
            .clone()
            .ok_or_else(|| missing("twilio_account_sid"))?;
        let auth_token = sms
            .twilio_auth_token
            .clone()
            .ok_or_else(|| missing("twilio_auth_token"))?;
        let from = sms.from_number.clone().ok_or_else(|| missing("from_number"))?;
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| format!("twilio: {e}"))?;
        let url = format!(
            "{}/2010-04-01/Accounts/{account_sid}/Messages.json",
            sms.twilio_api_base.trim_end_matches('/')
        );
        Ok(Self {
            client,
            url,
            account_sid,
            auth_token,
            from,
            retries: 3,
        })
    }
}

#[async_trait]
impl SmsSender for TwilioSms {
    async fn send(&self, m: &SmsMessage) -> Result<(), DeliveryError> {
        let form = [
            ("To", m.to.as_str()),
            ("From", self.from.as_str()),
            ("Body", m.body.as_str()),
        ];
        let mut delay = Duration::from_millis(300);
        for attempt in 1..=self.retries {
            let sent = self
                .client
                .post(&self.url)
                .basic_auth(&self.account_sid, Some(&self.auth_token))
                .form(&form)
                .send()
                .await;
            let retryable = match sent {
                Ok(resp) if resp.status().is_success() => return Ok(()),
                Ok(resp) => {
                    let status = resp.status();
                    let detail: serde_json::Value = resp.json().await.unwrap_or_default();
                    let reason = format!(
                        "twilio answered {status}: code {} {}",
                        detail["code"],
                        detail["message"].as_str().unwrap_or("")
                    );
                    if !(status.as_u16() == 429 || status.is_server_error()) {
                        return Err(DeliveryError(reason));
                    }
                    reason
                }
                Err(e) => format!("twilio unreachable: {e}"),
            };
            if attempt == self.retries {
                return Err(DeliveryError(retryable));
            }
            tracing::warn!(target: "regstack.sms.twilio", attempt, error = %retryable, "sms send failed; retrying");
            tokio::time::sleep(delay).await;
            delay *= 2;
        }
        Err(DeliveryError("twilio: retries exhausted".into()))
    }
}
