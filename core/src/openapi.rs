//! The OpenAPI 3.1 document of one instance (docs/wire.md, "Decision 12"), built from the
//! routing table: every mounted endpoint with its request body, answers, error shapes and
//! security; routers that are switched off are absent. No crate is needed, so it costs the
//! edge worker almost nothing.

use serde_json::{json, Map, Value};

use crate::config::Config;
use crate::routes::{Access, Endpoint, FieldType};

/// The document for `config`.
pub fn document(config: &Config) -> Value {
    let mut paths = Map::new();
    let mut bodies = Map::new();
    for endpoint in Endpoint::mounted(config) {
        let route = endpoint.route();
        let contract = endpoint.contract();
        let name = operation_id(endpoint);
        let mut op = Map::new();
        op.insert("operationId".into(), json!(name));
        op.insert("summary".into(), json!(contract.summary));
        if route.access != Access::Public {
            op.insert("security".into(), json!([{ "bearer": [] }]));
        }
        let guardable = config.turnstile_enabled && crate::turnstile::Guarded::of(endpoint).is_some();
        let guarded = crate::turnstile::Guarded::of(endpoint).is_some_and(|g| g.required(config));
        if let Some(fields) = contract.body {
            let schema_name = format!("{}Request", pascal(&name));
            let mut schema = request_schema(fields);
            if guardable {
                // Or the header of that name (docs/turnstile.md).
                schema["properties"][crate::turnstile::FIELD] = json!({
                    "type": ["string", "null"],
                    "maxLength": crate::turnstile::TOKEN_MAX_CHARS,
                    "description": "turnstile_enabled: the widget's token"
                });
            }
            bodies.insert(schema_name.clone(), schema);
            op.insert(
                "requestBody".into(),
                json!({
                    // An empty body is a 422 `missing` on every route that reads one.
                    "required": true,
                    "content": { "application/json": { "schema": { "$ref": format!("#/components/schemas/{schema_name}") } } }
                }),
            );
        }
        let mut parameters: Vec<Value> = route
            .path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
            .map(|name| json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string" } }))
            .collect();
        for q in contract.query {
            if q.text {
                parameters
                    .push(json!({ "name": q.name, "in": "query", "required": false, "schema": { "type": "string" } }));
                continue;
            }
            let mut schema = json!({ "type": "integer", "minimum": q.min, "default": q.default });
            if let Some(max) = q.max {
                schema["maximum"] = json!(max);
            }
            parameters.push(json!({ "name": q.name, "in": "query", "required": false, "schema": schema }));
        }
        if !parameters.is_empty() {
            op.insert("parameters".into(), Value::Array(parameters));
        }
        if endpoint == Endpoint::Relay {
            op.insert("parameters".into(), relay_headers());
            op.insert(
                "requestBody".into(),
                json!({ "required": true, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Relayed" } } } }),
            );
        }
        let mut responses = Map::new();
        let ok_schema = match contract.ok.bodies {
            [] => None,
            [one] => Some(json!({ "$ref": format!("#/components/schemas/{one}") })),
            many => Some(
                json!({ "oneOf": many.iter().map(|b| json!({ "$ref": format!("#/components/schemas/{b}") })).collect::<Vec<_>>() }),
            ),
        };
        let ok = match ok_schema {
            Some(schema) => {
                json!({ "description": "Success", "content": { "application/json": { "schema": schema } } })
            }
            None => json!({
                "description": "Redirect",
                "headers": { "Location": { "required": true, "schema": { "type": "string" } } }
            }),
        };
        responses.insert(contract.ok.status.to_string(), ok);
        let mut errors: Vec<u16> = contract.errors.to_vec();
        if route.access != Access::Public {
            errors.push(401);
        }
        if route.access == Access::Admin {
            errors.push(403);
        }
        if route.rate.is_some() {
            errors.push(429);
        }
        if contract.body.is_some() {
            // Bytes that are not UTF-8, and bodies over `max_request_body_bytes`.
            errors.extend([400, 413]);
        }
        if guarded {
            // A missing or refused token; no verdict from siteverify.
            errors.extend([400, 503]);
        }
        if endpoint != Endpoint::OpenApi {
            errors.push(503);
        }
        errors.sort_unstable();
        errors.dedup();
        for status in errors {
            responses.insert(status.to_string(), error_response(status));
        }
        if contract.body.is_some() || !contract.query.is_empty() {
            responses.insert(
                "422".into(),
                json!({ "description": "Validation error", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/ValidationError" } } } }),
            );
        }
        op.insert("responses".into(), Value::Object(responses));
        let path = paths.entry(route.path.to_string()).or_insert_with(|| json!({}));
        path[route.method.as_str().to_ascii_lowercase()] = Value::Object(op);
    }
    let mut schemas = components();
    if config.enable_refresh_tokens && !config.refresh_token_cookie {
        // Sessions come with a refresh token (docs/refresh-tokens.md).
        for name in ["Token", "OAuthExchange"] {
            if let Some(props) = schemas.get_mut(name).and_then(|s| s.get_mut("properties")) {
                props["refresh_token"] = json!({ "type": "string", "description": "enable_refresh_tokens" });
            }
        }
    }
    schemas.extend(bodies);
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": format!("{} accounts API", config.app_name),
            "version": env!("CARGO_PKG_VERSION"),
            "description": "regstack: wire-compatible with regstack 0.9.3. Every error body is {\"detail\": ...}; 422 bodies are pydantic's list."
        },
        "servers": [{ "url": config.api_prefix }],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer", "bearerFormat": "JWT" } }
        }
    })
}

/// `LoginMfaConfirm` → `login_mfa_confirm`.
fn operation_id(endpoint: Endpoint) -> String {
    let debug = format!("{endpoint:?}").replace("OAuth", "Oauth");
    let mut out = String::new();
    for (i, c) in debug.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

fn pascal(snake: &str) -> String {
    snake
        .split('_')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

fn request_schema(fields: &[crate::routes::Field]) -> Value {
    let mut properties = Map::new();
    for f in fields {
        let schema = match f.ty {
            // Internationalised addresses are accepted, so the format is the IDN one.
            FieldType::Email => json!({ "type": "string", "format": "idn-email" }),
            FieldType::Text { min, max } => {
                let mut s = json!({ "type": "string" });
                if min > 0 {
                    s["minLength"] = json!(min);
                }
                if let Some(max) = max {
                    s["maxLength"] = json!(max);
                }
                s
            }
            FieldType::NullableText { max } => json!({ "type": ["string", "null"], "maxLength": max }),
            FieldType::NullableBool => json!({ "type": ["boolean", "null"] }),
            FieldType::NullableRole => {
                json!({ "type": ["string", "null"], "pattern": crate::records::ROLE_PATTERN })
            }
        };
        properties.insert(f.name.into(), schema);
    }
    let required: Vec<&str> = fields.iter().filter(|f| f.required).map(|f| f.name).collect();
    json!({ "type": "object", "properties": properties, "required": required, "additionalProperties": false })
}

fn error_response(status: u16) -> Value {
    let description = match status {
        400 => "Refused (see the detail), or a body that is not UTF-8",
        401 => "Not authenticated, or the credentials are wrong",
        403 => "Not allowed",
        404 => "Switched off",
        409 => "Conflict",
        413 => "Body too large",
        429 => "Too many requests or attempts (Retry-After)",
        503 => "Temporarily unavailable (Retry-After)",
        _ => "Error",
    };
    json!({ "description": description, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } })
}

fn relay_headers() -> Value {
    let header = |name: &str, description: &str| json!({ "name": name, "in": "header", "required": true, "description": description, "schema": { "type": "string" } });
    json!([
        header(crate::relay::TIMESTAMP, "Unix seconds when the message was signed"),
        header(crate::relay::NONCE, "A single-use random value"),
        header(
            crate::relay::SIGNATURE,
            "Hex HMAC-SHA256 over the timestamp, nonce and body"
        ),
    ])
}

fn components() -> Map<String, Value> {
    let datetime = json!({ "type": "string", "format": "date-time" });
    let nullable_datetime = json!({ "type": ["string", "null"], "format": "date-time" });
    let nullable_text = json!({ "type": ["string", "null"] });
    let schemas = json!({
        "UserPublic": {
            "type": "object",
            "required": ["id", "email", "is_active", "is_verified", "is_superuser", "full_name", "phone_number",
                "is_mfa_enabled", "created_at", "updated_at", "last_login", "tokens_invalidated_after", "role"],
            "properties": {
                "id": { "type": "string" },
                "email": { "type": "string" },
                "is_active": { "type": "boolean" },
                "is_verified": { "type": "boolean" },
                "is_superuser": { "type": "boolean" },
                "full_name": nullable_text,
                "phone_number": nullable_text,
                "is_mfa_enabled": { "type": "boolean" },
                "created_at": datetime,
                "updated_at": datetime,
                "last_login": nullable_datetime,
                "tokens_invalidated_after": nullable_datetime,
                "role": { "type": "string", "description": "Added by regstack (seed 004's roles)" }
            }
        },
        "AdminStats": {
            "type": "object",
            "required": ["total_users", "active_users", "verified_users", "superusers", "pending_registrations"],
            "properties": {
                "total_users": { "type": "integer" },
                "active_users": { "type": "integer" },
                "verified_users": { "type": "integer" },
                "superusers": { "type": "integer" },
                "pending_registrations": { "type": "integer", "description": "Not expired" }
            }
        },
        "OAuthProviders": {
            "type": "object",
            "required": ["available", "linked"],
            "properties": {
                "available": { "type": "array", "items": { "type": "string" } },
                "linked": { "type": "array", "items": {
                    "type": "object",
                    "required": ["provider", "email", "linked_at", "last_used_at"],
                    "properties": {
                        "provider": { "type": "string" },
                        "email": nullable_text,
                        "linked_at": { "type": "string", "description": "Python isoformat(), with +00:00" },
                        "last_used_at": { "type": ["string", "null"], "description": "Python isoformat(), with +00:00" }
                    }
                } }
            }
        },
        "AuthorizationUrl": {
            "type": "object",
            "required": ["authorization_url"],
            "properties": { "authorization_url": { "type": "string" } }
        },
        "OAuthExchange": {
            "type": "object",
            "required": ["access_token", "redirect_to", "was_new_account", "token_type", "expires_in", "mfa_required", "mfa_pending_token"],
            "properties": {
                "access_token": { "type": "string", "description": "Empty when mfa_required" },
                "redirect_to": { "type": "string" },
                "was_new_account": { "type": "boolean" },
                "token_type": { "const": "bearer" },
                "expires_in": { "type": "integer" },
                "mfa_required": { "type": "boolean" },
                "mfa_pending_token": { "type": ["string", "null"], "description": "For POST /login/mfa-confirm" }
            }
        },
        "VapidPublicKey": {
            "type": "object",
            "required": ["public_key"],
            "properties": { "public_key": { "type": "string", "description": "base64url, unpadded: the uncompressed P-256 point" } }
        },
        "PushSubscription": {
            "type": "object",
            "required": ["id", "endpoint", "created_at"],
            "properties": {
                "id": { "type": "string" },
                "endpoint": { "type": "string" },
                "created_at": datetime
            }
        },
        "PushSubscriptionList": {
            "type": "object",
            "required": ["items"],
            "properties": {
                "items": { "type": "array", "items": { "$ref": "#/components/schemas/PushSubscription" } }
            }
        },
        "UserList": {
            "type": "object",
            "required": ["items", "total", "skip", "limit"],
            "properties": {
                "items": { "type": "array", "items": { "$ref": "#/components/schemas/UserPublic" } },
                "total": { "type": "integer" },
                "skip": { "type": "integer" },
                "limit": { "type": "integer" }
            }
        },
        "PendingRegistration": {
            "type": "object",
            "required": ["status", "email", "expires_at"],
            "properties": {
                "status": { "const": "pending_verification" },
                "email": { "type": "string" },
                "expires_at": datetime
            }
        },
        "Token": {
            "type": "object",
            "required": ["access_token", "token_type", "expires_in"],
            "properties": {
                "access_token": { "type": "string" },
                "token_type": { "const": "bearer" },
                "expires_in": { "type": "integer" }
            }
        },
        "MfaRequired": {
            "type": "object",
            "required": ["status", "mfa_pending_token", "expires_in", "delivery"],
            "properties": {
                "status": { "const": "mfa_required" },
                "mfa_pending_token": { "type": "string" },
                "expires_in": { "type": "integer" },
                "delivery": { "const": "sms" }
            }
        },
        "PhoneCodeSent": {
            "type": "object",
            "required": ["status", "pending_token", "expires_in"],
            "properties": {
                "status": { "const": "code_sent" },
                "pending_token": { "type": "string" },
                "expires_in": { "type": "integer" }
            }
        },
        "Message": {
            "type": "object",
            "required": ["message"],
            "properties": { "message": { "type": "string" } }
        },
        "Error": {
            "type": "object",
            "required": ["detail"],
            "properties": { "detail": { "type": "string" } }
        },
        "ValidationError": {
            "type": "object",
            "required": ["detail"],
            "properties": {
                "detail": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["type", "loc", "msg"],
                        "properties": {
                            "type": { "type": "string" },
                            "loc": { "type": "array", "items": { "type": ["string", "integer"] } },
                            "msg": { "type": "string" },
                            "input": {},
                            "ctx": { "type": "object" }
                        }
                    }
                }
            }
        },
        "Relayed": {
            "description": "A rendered email or SMS, as the edge worker hands it over",
            "type": "object"
        },
        "OpenApi": { "description": "An OpenAPI 3.1 document", "type": "object" }
    });
    match schemas {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[regstack_macros::dual_test]
    fn every_mounted_endpoint_is_in_the_document_and_only_those() {
        let mut everything = Config {
            enable_sms_2fa: true,
            enable_admin_router: true,
            relay_secret: Some("relay-secret-q3Vx9-Lr0aZt_7mWcBn2KpHs5YdE".into()),
            enable_oauth: true,
            enable_refresh_tokens: true,
            enable_web_push: true,
            ..Config::default()
        };
        everything.oauth.google_client_id = Some("client".into());
        everything.oauth.google_client_secret = Some("secret".into());
        let doc = document(&everything);
        for endpoint in Endpoint::ALL {
            let route = endpoint.route();
            let op = &doc["paths"][route.path][route.method.as_str().to_ascii_lowercase()];
            assert!(op.is_object(), "{endpoint:?} is missing");
            assert_eq!(op["operationId"], operation_id(*endpoint));
            assert_eq!(
                op["security"].is_array(),
                route.access != Access::Public,
                "{endpoint:?} security"
            );
        }
        assert_eq!(doc["paths"]["/login"]["post"]["operationId"], "login");
        assert_eq!(
            doc["components"]["schemas"]["LoginRequest"]["required"],
            json!(["email", "password"])
        );
        everything.enable_sms_2fa = false;
        everything.enable_password_reset = false;
        let doc = document(&everything);
        assert!(
            doc["paths"]["/phone/start"].is_null(),
            "switched-off routers are absent"
        );
        assert!(doc["paths"]["/forgot-password"].is_null());
        assert!(doc["paths"]["/login/mfa-confirm"].is_object(), "always mounted");
    }
}
