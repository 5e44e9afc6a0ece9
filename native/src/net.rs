//! Outbound HTTP natively (the core's `HttpClient` port): reqwest on rustls, never following a
//! redirect, each request under its own timeout, answers read up to the request's limit. Used
//! by webhooks and by the OAuth providers.

use std::time::Duration;

use async_trait::async_trait;
use regstack_core::ports::{HttpClient, HttpMethod, InboundResponse, NetError, OutboundRequest};

/// The native [`HttpClient`].
pub struct ReqwestClient(reqwest::Client);

impl ReqwestClient {
    /// A client that never follows a redirect.
    pub fn new() -> Result<Self, String> {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map(Self)
            .map_err(|e| format!("building the HTTP client: {e}"))
    }
}

#[async_trait]
impl HttpClient for ReqwestClient {
    async fn send(&self, req: OutboundRequest) -> Result<InboundResponse, NetError> {
        let method = match req.method {
            HttpMethod::Get => reqwest::Method::GET,
            HttpMethod::Post => reqwest::Method::POST,
        };
        let mut builder = self.0.request(method, &req.url).timeout(req.timeout);
        if req.method == HttpMethod::Post {
            builder = builder.body(req.body);
        }
        for (name, value) in &req.headers {
            builder = builder.header(name, value);
        }
        // Error texts name the cause, never the URL (it may carry a secret), a header or the body.
        let mut resp = builder.send().await.map_err(net_error)?;
        let status = resp.status().as_u16();
        let headers = resp
            .headers()
            .iter()
            .filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.to_string())))
            .collect();
        let mut body = Vec::new();
        if req.max_response_bytes > 0 {
            while let Some(chunk) = resp.chunk().await.map_err(net_error)? {
                if body.len() + chunk.len() > req.max_response_bytes {
                    return Err(NetError(format!(
                        "the answer is longer than {} bytes",
                        req.max_response_bytes
                    )));
                }
                body.extend_from_slice(&chunk);
            }
        }
        Ok(InboundResponse { status, headers, body })
    }
}

/// The error and its causes (a refused connection, a timeout), without the URL.
fn net_error(e: reqwest::Error) -> NetError {
    let e = e.without_url();
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(&e);
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    NetError(text)
}
