//! The account pages and their static files (docs/pages.md), mounted by both runtimes beside
//! the API when `enable_ui_router` is on: the pages of [`Page::ALL`] under `ui_prefix`, the
//! files of [`crate::pages::StaticFiles`] under `static_prefix`.

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::engine::Engine;
use crate::http::ApiError;
use crate::pages::{content_security_policy, Page, StaticFile, StaticFiles};

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
    let files = static_files(engine.renderer.static_files());
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
    page_response(&engine.renderer, &engine.config, &engine.oauth.labels(), page)
}

/// `page` rendered for `config`, with the headers every page carries. `regstack theme
/// design` serves its preview through it too.
pub fn page_response(
    renderer: &crate::render::Renderer,
    config: &crate::config::Config,
    providers: &[(String, String)],
    page: Page,
) -> Response {
    match renderer.page(page, config, providers) {
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
            let csp = HeaderValue::from_str(&content_security_policy(config))
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

/// One route per file, to nest under `static_prefix`: nothing else there is claimed, so a
/// prefix shared with other paths (even "/") shadows none of them. `regstack theme design`
/// serves its preview from it too.
pub fn static_files<S: Clone + Send + Sync + 'static>(files: &StaticFiles) -> Router<S> {
    let mut router = Router::new();
    for file in files.iter() {
        let file = Arc::new(file.clone());
        router = router.route(
            &format!("/{}", file.path),
            get(move |query: RawQuery, headers: HeaderMap| asset(file.clone(), query, headers)),
        );
    }
    router
}

/// A static file: a year's caching under its versioned URL (`?v=` its hash, as the pages
/// link it), revalidation by ETag under any other.
async fn asset(file: Arc<StaticFile>, RawQuery(query): RawQuery, headers: HeaderMap) -> Response {
    let etag = format!("\"{}\"", file.version);
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
        (StatusCode::OK, file.body.clone()).into_response()
    };
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(file.content_type));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    // Opened on its own, an SVG (or anything a host put here) is a document of this origin:
    // it gets no script, no plugin, no form, and no origin of its own. Style sheets and
    // scripts loaded by the pages are untouched, since a policy binds only documents.
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; img-src data:; sandbox"),
    );
    let versioned = query.as_deref() == Some(format!("v={}", file.version).as_str());
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
