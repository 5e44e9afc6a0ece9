//! Reading JSON bodies and validating them with pydantic v2's error shapes (docs/wire.md, "Conventions"), so
//! a client written against the original sees the same 422 lists on both runtimes.

use axum::extract::{FromRequest, Request};
use axum::http::{header, StatusCode};
use serde_json::{json, Map, Value};

use super::error::ApiError;
use crate::email::Email;

/// The request body, as read: absent/empty, or a JSON value.
#[derive(Debug, Clone)]
pub enum Body {
    /// No body, an empty body, or JSON `null`.
    Missing,
    /// Any JSON value.
    Json(Value),
}

/// The largest body a route accepts; runtimes put it in the request extensions.
#[derive(Clone, Copy, Debug)]
pub struct BodyLimit(pub usize);

/// Extracts [`Body`]: 413 past the size limit, 422 for malformed JSON or a non-JSON content
/// type, 400 for bytes that are not UTF-8.
pub struct JsonBody(pub Body);

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let limit = req.extensions().get::<BodyLimit>().map(|l| l.0).unwrap_or(64 * 1024);
        // The rest of the body stays unread on the socket, so the connection cannot be reused.
        let too_large = || ApiError::Detail {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            detail: "Request body is too large.".into(),
            headers: vec![(header::CONNECTION, "close".into())],
        };
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > limit as u64) {
            return Err(too_large());
        }
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).to_ascii_lowercase());
        let bytes = axum::body::to_bytes(req.into_body(), limit)
            .await
            .map_err(|_| too_large())?;
        if bytes.is_empty() {
            return Ok(JsonBody(Body::Missing));
        }
        let is_json = match &content_type {
            None => true,
            Some(ct) => {
                let mime = ct.split(';').next().unwrap_or("").trim();
                mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
            }
        };
        if !is_json {
            return Err(ApiError::Validation(vec![json!({
                "type": "model_attributes_type",
                "loc": ["body"],
                "msg": "Input should be a valid dictionary or object to extract fields from",
                "input": String::from_utf8_lossy(&bytes),
            })]));
        }
        let text = std::str::from_utf8(&bytes)
            .map_err(|_| ApiError::detail(StatusCode::BAD_REQUEST, "There was an error parsing the body"))?;
        match serde_json::from_str::<Value>(text) {
            Ok(Value::Null) => Ok(JsonBody(Body::Missing)),
            Ok(v) => Ok(JsonBody(Body::Json(v))),
            Err(e) => Err(json_invalid(text, &e)),
        }
    }
}

/// Python's `json` wording for the common failures, at the character offset it reports.
fn json_invalid(text: &str, e: &serde_json::Error) -> ApiError {
    // Python reports the character offset; at end of input that is the length.
    let offset: usize = if e.is_eof() {
        text.chars().count()
    } else {
        text.split_inclusive('\n')
            .take(e.line().saturating_sub(1))
            .map(|l| l.chars().count())
            .sum::<usize>()
            + e.column().saturating_sub(1)
    };
    let msg = e.to_string();
    let reason = if msg.starts_with("key must be a string") {
        "Expecting property name enclosed in double quotes"
    } else if msg.starts_with("trailing characters") {
        "Extra data"
    } else if msg.starts_with("expected `,` or `}`") {
        "Expecting ',' delimiter"
    } else if msg.starts_with("expected `:`") {
        "Expecting ':' delimiter"
    } else if msg.starts_with("control character") || msg.starts_with("invalid escape") {
        "Invalid control character"
    } else {
        "Expecting value"
    };
    ApiError::Validation(vec![json!({
        "type": "json_invalid",
        "loc": ["body", offset],
        "msg": "JSON decode error",
        "input": {},
        "ctx": {"error": reason},
    })])
}

/// Field-by-field validation of one request model, collecting every error like pydantic.
pub struct Fields {
    map: Map<String, Value>,
    errors: Vec<Value>,
    known: Vec<&'static str>,
}

impl Fields {
    /// Starts validating `body` as a JSON object (the only shape any model accepts).
    pub fn new(body: Body) -> Result<Self, ApiError> {
        match body {
            Body::Missing => Err(ApiError::Validation(vec![json!({
                "type": "missing", "loc": ["body"], "msg": "Field required", "input": null,
            })])),
            Body::Json(Value::Object(map)) => Ok(Self {
                map,
                errors: Vec::new(),
                known: Vec::new(),
            }),
            Body::Json(other) => Err(ApiError::Validation(vec![json!({
                "type": "model_attributes_type",
                "loc": ["body"],
                "msg": "Input should be a valid dictionary or object to extract fields from",
                "input": other,
            })])),
        }
    }

    fn error(&mut self, kind: &str, field: &str, msg: String, input: Value, ctx: Option<Value>) {
        let mut e = json!({ "type": kind, "loc": ["body", field], "msg": msg, "input": input });
        if let Some(ctx) = ctx {
            e["ctx"] = ctx;
        }
        self.errors.push(e);
    }

    fn check_str(&mut self, name: &'static str, value: &Value, min: usize, max: Option<usize>) -> Option<String> {
        let Value::String(s) = value else {
            self.error(
                "string_type",
                name,
                "Input should be a valid string".into(),
                value.clone(),
                None,
            );
            return None;
        };
        // PostgreSQL cannot store NUL in text; refuse it the same way on every backend.
        if s.contains('\0') {
            let msg = "Value error, text must not contain NUL (\\u0000) characters";
            self.error(
                "value_error",
                name,
                msg.into(),
                value.clone(),
                Some(json!({"error": "text must not contain NUL characters"})),
            );
            return None;
        }
        let n = s.chars().count();
        if n < min {
            let unit = if min == 1 { "character" } else { "characters" };
            self.error(
                "string_too_short",
                name,
                format!("String should have at least {min} {unit}"),
                value.clone(),
                Some(json!({"min_length": min})),
            );
            return None;
        }
        if let Some(max) = max.filter(|m| n > *m) {
            let unit = if max == 1 { "character" } else { "characters" };
            self.error(
                "string_too_long",
                name,
                format!("String should have at most {max} {unit}"),
                value.clone(),
                Some(json!({"max_length": max})),
            );
            return None;
        }
        Some(s.clone())
    }

    /// A required string with length bounds in characters.
    pub fn string(&mut self, name: &'static str, min: usize, max: Option<usize>) -> Option<String> {
        self.known.push(name);
        match self.map.get(name).cloned() {
            None => {
                let input = Value::Object(self.map.clone());
                self.error("missing", name, "Field required".into(), input, None);
                None
            }
            Some(v) => self.check_str(name, &v, min, max),
        }
    }

    /// An optional string that may be `null`: absent → `None`, `null` → `Some(None)`.
    pub fn nullable_string(&mut self, name: &'static str, max: Option<usize>) -> Option<Option<String>> {
        self.known.push(name);
        match self.map.get(name).cloned() {
            None => None,
            Some(Value::Null) => Some(None),
            Some(v) => self.check_str(name, &v, 0, max).map(Some),
        }
    }

    /// A required email address (email-validator rules; lower-cased).
    pub fn email(&mut self, name: &'static str) -> Option<Email> {
        let raw = self.string(name, 0, None)?;
        match Email::parse(&raw) {
            Ok(e) => Some(e),
            Err(reason) => {
                self.error(
                    "value_error",
                    name,
                    format!("value is not a valid email address: {}", reason.0),
                    Value::String(raw),
                    Some(json!({ "reason": reason.0 })),
                );
                None
            }
        }
    }

    /// Ends validation: unknown keys are `extra_forbidden`; any error gives the 422 list.
    pub fn finish(mut self) -> Result<(), ApiError> {
        let extras: Vec<(String, Value)> = self
            .map
            .iter()
            .filter(|(k, _)| !self.known.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for (k, v) in extras {
            self.errors.push(json!({
                "type": "extra_forbidden", "loc": ["body", k], "msg": "Extra inputs are not permitted", "input": v,
            }));
        }
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::Validation(self.errors))
        }
    }
}

/// Unwraps a field after [`Fields::finish`] succeeded; a required field is then always present.
pub fn take<T>(v: Option<T>) -> Result<T, ApiError> {
    v.ok_or_else(|| ApiError::detail(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error"))
}
