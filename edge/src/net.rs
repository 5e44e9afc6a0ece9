//! Outbound HTTP at the edge (the core's `HttpClient` port): the Workers `fetch`, never
//! following a redirect, cut off at the request's timeout (body included), answers read up to
//! the request's limit. Used by webhooks and by the OAuth providers.

use async_trait::async_trait;
use futures_util::future::{select, Either};
use futures_util::StreamExt;
use regstack_core::ports::{HttpClient, HttpMethod, InboundResponse, NetError, OutboundRequest};
use worker::wasm_bindgen::JsValue;
use worker::{AbortController, Delay, Fetch, Headers, Method, Request, RequestInit, RequestRedirect};

use crate::js::js;

/// `fetch`.
pub struct FetchClient;

#[async_trait]
impl HttpClient for FetchClient {
    async fn send(&self, req: OutboundRequest) -> Result<InboundResponse, NetError> {
        // A fixed text: the runtime's own messages can quote the URL, which may carry secrets.
        let failed = |_: worker::Error| NetError("the request could not be made or failed".into());
        let headers = Headers::new();
        for (name, value) in &req.headers {
            headers.set(name, value).map_err(failed)?;
        }
        let mut init = RequestInit::new();
        // A redirect is the receiver's answer, never a new destination for a signed event or
        // a client secret.
        init.with_redirect(RequestRedirect::Manual).with_headers(headers);
        match req.method {
            HttpMethod::Get => {
                init.with_method(Method::Get);
            }
            HttpMethod::Post => {
                init.with_method(Method::Post)
                    .with_body(Some(JsValue::from(worker::js_sys::Uint8Array::from(&req.body[..]))));
            }
        }
        let request = Request::new_with_init(&req.url, &init).map_err(failed)?;
        let (timeout, limit) = (req.timeout, req.max_response_bytes);
        js(async move {
            let controller = AbortController::default();
            let signal = controller.signal();
            let exchange = async {
                let mut resp = Fetch::Request(request)
                    .send_with_signal(&signal)
                    .await
                    .map_err(failed)?;
                let status = resp.status_code();
                let headers = resp.headers().entries().collect();
                let mut body = Vec::new();
                // A response without a body (204, 304) has no stream: it is an empty body.
                if let (true, Ok(mut stream)) = (limit > 0, resp.stream()) {
                    while let Some(chunk) = stream.next().await {
                        let chunk = chunk.map_err(failed)?;
                        if body.len() + chunk.len() > limit {
                            return Err(NetError(format!("the answer is longer than {limit} bytes")));
                        }
                        body.extend_from_slice(&chunk);
                    }
                }
                Ok(InboundResponse { status, headers, body })
            };
            let outcome = match select(Box::pin(exchange), Box::pin(Delay::from(timeout))).await {
                Either::Left((outcome, _)) => outcome,
                Either::Right(_) => Err(NetError(format!("no answer within {timeout:?}"))),
            };
            if outcome.is_err() {
                controller.abort();
            }
            outcome
        })
        .await
    }
}
