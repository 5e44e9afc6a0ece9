//! Outbound webhooks at the edge (docs/events.md): `fetch` that never follows a redirect,
//! cut off at the request's timeout, and waits on `setTimeout`. Deliveries run after the
//! response, under `waitUntil`, through the core's `SpawnedOutbox`.

use std::time::Duration;

use async_trait::async_trait;
use futures_util::future::{select, Either};
use regstack_core::ports::{HttpPoster, NetError, OutboundRequest, Timer};
use worker::wasm_bindgen::JsValue;
use worker::{AbortController, Delay, Fetch, Headers, Method, Request, RequestInit, RequestRedirect};

use crate::js::js;

/// POSTs with the Workers `fetch`.
pub struct FetchPoster;

#[async_trait]
impl HttpPoster for FetchPoster {
    async fn post(&self, req: OutboundRequest) -> Result<u16, NetError> {
        // A fixed text: the runtime's own messages can quote the URL, which may carry secrets.
        let failed = |_: worker::Error| NetError("the request could not be made or failed".into());
        let headers = Headers::new();
        for (name, value) in &req.headers {
            headers.set(name, value).map_err(failed)?;
        }
        let mut init = RequestInit::new();
        // A redirect is the receiver's answer, never a new destination for a signed event.
        init.with_method(Method::Post)
            .with_redirect(RequestRedirect::Manual)
            .with_headers(headers)
            .with_body(Some(JsValue::from(worker::js_sys::Uint8Array::from(&req.body[..]))));
        let request = Request::new_with_init(&req.url, &init).map_err(failed)?;
        let timeout = req.timeout;
        js(async move {
            let controller = AbortController::default();
            let signal = controller.signal();
            let fetch = Fetch::Request(request);
            let sending = Box::pin(fetch.send_with_signal(&signal));
            let timer = Box::pin(Delay::from(timeout));
            let outcome = match select(sending, timer).await {
                Either::Left((Ok(resp), _)) => Ok(resp.status_code()),
                Either::Left((Err(e), _)) => Err(failed(e)),
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

/// Waits with `setTimeout`.
pub struct WorkerTimer;

#[async_trait]
impl Timer for WorkerTimer {
    async fn sleep(&self, duration: Duration) {
        js(Delay::from(duration)).await;
    }
}
