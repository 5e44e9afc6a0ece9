//! The handlers keep the typed contract the routing table declares (and the OpenAPI document
//! publishes): an empty body is refused with one `missing` per required field and no other,
//! an unknown key with `extra_forbidden`, and `GET /openapi.json` serves the document of what
//! is mounted.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::http::StatusCode;
use regstack_core::config::Config;
use regstack_core::render::Renderer;
use regstack_core::routes::{Access, Endpoint};
use regstack_core::testing::{oneshot, test_ports};
use regstack_core::Engine;
use serde_json::{json, Value};

async fn call(app: &axum::Router, endpoint: Endpoint, token: &str, body: Option<Value>) -> (StatusCode, Value) {
    call_as(app, endpoint, token, "", body).await
}

/// Calls `endpoint` with `user_id` for a `{user_id}` path parameter.
async fn call_as(
    app: &axum::Router,
    endpoint: Endpoint,
    token: &str,
    user_id: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let route = endpoint.route();
    let token = (route.access != Access::Public).then_some(token);
    let path = route.path.replace("{user_id}", user_id);
    let a = oneshot(app, route.method.clone(), &path, token, body.as_ref()).await;
    (a.status, a.json)
}

async fn handlers_keep_the_declared_bodies() {
    let config = Config {
        jwt_secret: "0123456789abcdef0123456789abcdef".into(),
        require_verification: false,
        enable_sms_2fa: true,
        enable_admin_router: true,
        enable_oauth: true,
        enable_refresh_tokens: true,
        enable_web_push: true,
        password_hash_memory_kib: 64,
        password_hash_iterations: 1,
        ..Config::default()
    };
    let t = test_ports();
    let provider = regstack_core::testing::ScriptedProvider::new("corp");
    let engine = Engine::with_oauth_providers(
        config,
        t.ports.clone(),
        Renderer::new(Default::default()),
        vec![provider],
    )
    .await
    .unwrap();
    let engine = Arc::new(engine);
    let app = regstack_core::http::router(engine.clone());
    let creds = json!({"email": "contract@example.com", "password": "correct horse"});
    let (s, me) = call(&app, Endpoint::Register, "", Some(creds.clone())).await;
    assert_eq!(s, StatusCode::CREATED);
    let me = me["id"].as_str().unwrap().to_string();
    // A superuser, so the admin routes judge the body rather than refusing the caller.
    regstack_core::flows::admin::bootstrap_admin(&engine, "contract@example.com", "unused-here")
        .await
        .unwrap();
    let (s, login) = call(&app, Endpoint::Login, "", Some(creds)).await;
    assert_eq!(s, StatusCode::OK);
    let token = login["access_token"].as_str().unwrap().to_string();

    for endpoint in Endpoint::ALL {
        let Some(fields) = endpoint.contract().body else {
            continue;
        };
        let required: BTreeSet<&str> = fields.iter().filter(|f| f.required).map(|f| f.name).collect();
        let (status, body) = call_as(&app, *endpoint, &token, &me, Some(json!({}))).await;
        if required.is_empty() {
            // A refresh with no token in the body (and no cookie) is the route's own 401.
            let own_refusal = *endpoint == Endpoint::TokenRefresh && status == StatusCode::UNAUTHORIZED;
            assert!(
                status.is_success() || own_refusal,
                "{endpoint:?} with no fields: {status} {body}"
            );
        } else {
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{endpoint:?}: {body}");
            let missing: BTreeSet<&str> = body["detail"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|e| e["type"] == "missing")
                .map(|e| e["loc"][1].as_str().unwrap())
                .collect();
            assert_eq!(
                missing, required,
                "{endpoint:?} validates other fields than it declares"
            );
        }
        let (status, body) = call_as(&app, *endpoint, &token, &me, Some(json!({"zz_undeclared": 1}))).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{endpoint:?}: {body}");
        assert!(
            body["detail"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["type"] == "extra_forbidden" && e["loc"] == json!(["body", "zz_undeclared"])),
            "{endpoint:?}: {body}"
        );
    }

    let (status, doc) = call(&app, Endpoint::OpenApi, "", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["paths"]["/phone/start"]["post"].is_object());
    assert!(
        doc["paths"]["/relay"].is_null(),
        "the relay endpoint is not mounted here"
    );
}

#[regstack_macros::dual_test]
async fn handlers_keep_the_bodies_the_table_declares() {
    handlers_keep_the_declared_bodies().await;
}
