//! The account pages and their static files (docs/pages.md), mounted by both runtimes beside
//! the API when `enable_ui_router` is on: the pages of [`Page::ALL`] under `ui_prefix`, the
//! files of [`crate::pages::ASSETS`] under `static_prefix`.

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::engine::Engine;
use crate::http::ApiError;
use crate::pages::{content_security_policy, Asset, Page, ASSETS};

/// The pages and the static files, or an empty router with the UI off.
pub fn pages(engine: Arc<Engine>) -> Router {
    let config = &engine.config;
    if !config.enable_ui_router {
        return Router::new();
    }
    let mut ui: Router<Arc<Engine>> = Router::new();
    for page in Page::ALL {
        let page = *page;
        ui = ui.route(
            page.row().0,
            get(move |State(engine): State<Arc<Engine>>| render(engine, page)),
        );
    }
    // One route per bundled file: nothing else under `static_prefix` is claimed, so a prefix
    // shared with other paths (even "/") shadows none of them.
    let mut files: Router<Arc<Engine>> = Router::new();
    for file in ASSETS {
        files = files.route(
            &format!("/{}", file.path),
            get(move |query: RawQuery, headers: HeaderMap| asset(file, query, headers)),
        );
    }
    // axum nests nothing at the root: a prefix of "/" mounts the routes as they are.
    let at = |router: Router<Arc<Engine>>, prefix: &str, inner: Router<Arc<Engine>>| match prefix.trim_end_matches('/')
    {
        "" => router.merge(inner),
        prefix => router.nest(prefix, inner),
    };
    let router = at(Router::new(), &config.ui_prefix, ui);
    at(router, &config.static_prefix, files)
        // Another method on a page's path gets the contract's JSON 405.
        .layer(axum::middleware::map_response(super::method_not_allowed))
        .with_state(engine)
}

async fn render(engine: Arc<Engine>, page: Page) -> Response {
    match engine.renderer.page(page, &engine.config, &engine.oauth.labels()) {
        Ok(html) => {
            let mut resp = (StatusCode::OK, html).into_response();
            let h = resp.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            // The pages read one-time tokens from their query strings: never stored, never
            // sent on as a referrer, never framed.
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
            h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
            h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
            // Built only from checked origins, so it is always a valid header; should that
            // ever fail, the strictest policy goes out rather than none.
            let csp = HeaderValue::from_str(&content_security_policy(&engine.config))
                .unwrap_or_else(|_| HeaderValue::from_static(crate::pages::STRICTEST_POLICY));
            h.insert(header::CONTENT_SECURITY_POLICY, csp);
            resp
        }
        Err(e) => {
            tracing::error!(target: "regstack.pages", error = %e, "a page failed to render");
            ApiError::from(crate::flows::FlowError::Render(e)).into_response()
        }
    }
}

/// A bundled file: a year's caching under its versioned URL (`?v=` its hash, as the pages
/// link it), revalidation by ETag under any other.
async fn asset(file: &'static Asset, RawQuery(query): RawQuery, headers: HeaderMap) -> Response {
    let etag = format!("\"{}\"", file.version());
    // A weak validator (`W/"…"`, as a compressing proxy sends it back) names the same file.
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .map(|t| t.trim().trim_start_matches("W/"))
                .any(|t| t == etag || t == "*")
        });
    let mut resp = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (StatusCode::OK, file.body).into_response()
    };
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(file.content_type));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    let versioned = query.as_deref() == Some(format!("v={}", file.version()).as_str());
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(if versioned {
            "public, max-age=31536000, immutable"
        } else {
            "no-cache"
        }),
    );
    resp
}
