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

    /// An optional boolean that may be `null`, read as pydantic's lax mode reads one: JSON
    /// booleans, 0 and 1, and the strings `true/false`, `yes/no`, `on/off`, `t/f`, `y/n`, `1/0`
    /// in any case. `None` for absent or `null` (both leave the value alone).
    pub fn nullable_bool(&mut self, name: &'static str) -> Option<bool> {
        self.known.push(name);
        let value = self.map.get(name).cloned()?;
        // pydantic's three outcomes: a boolean, a value of the right kind it cannot interpret
        // (other whole numbers, other strings), or a value of the wrong kind (fractions,
        // lists, objects).
        enum Read {
            Bool(bool),
            Uninterpretable,
            WrongType,
        }
        let read = match &value {
            Value::Null => return None,
            Value::Bool(b) => Read::Bool(*b),
            Value::Number(n) => match n.as_f64() {
                Some(0.0) => Read::Bool(false),
                Some(1.0) => Read::Bool(true),
                Some(f) if f.fract() == 0.0 => Read::Uninterpretable,
                _ => Read::WrongType,
            },
            Value::String(s) => match s.to_ascii_lowercase().as_str() {
                "true" | "yes" | "on" | "t" | "y" | "1" => Read::Bool(true),
                "false" | "no" | "off" | "f" | "n" | "0" => Read::Bool(false),
                _ => Read::Uninterpretable,
            },
            _ => Read::WrongType,
        };
        match read {
            Read::Bool(b) => return Some(b),
            Read::Uninterpretable => self.error(
                "bool_parsing",
                name,
                "Input should be a valid boolean, unable to interpret input".into(),
                value,
                None,
            ),
            Read::WrongType => self.error("bool_type", name, "Input should be a valid boolean".into(), value, None),
        }
        None
    }

    /// An optional role name (`records::ROLE_PATTERN`); `None` for absent or `null`.
    pub fn nullable_role(&mut self, name: &'static str) -> Option<String> {
        let role = self.nullable_string(name, Some(64))??;
        if crate::records::valid_role(&role) {
            return Some(role);
        }
        let pattern = crate::records::ROLE_PATTERN;
        self.error(
            "string_pattern_mismatch",
            name,
            format!("String should match pattern '{pattern}'"),
            Value::String(role),
            Some(json!({ "pattern": pattern })),
        );
        None
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

    /// Records a `value_error` on `name` (a check beyond the field's type, such as a
    /// subscription's keys), quoting the value sent.
    pub fn refuse(&mut self, name: &'static str, reason: &str) {
        let input = self.map.get(name).cloned().unwrap_or(Value::Null);
        self.error(
            "value_error",
            name,
            format!("Value error, {reason}"),
            input,
            Some(json!({ "error": reason })),
        );
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

/// An integer as pydantic reads one from a string: surrounding whitespace, a leading `+`,
/// underscores between digits and a zero fraction (`5.0`) are allowed.
fn lax_int(text: &str) -> Option<i128> {
    let t = text.trim();
    let t = t.strip_prefix('+').unwrap_or(t);
    let t = match t.split_once('.') {
        Some((whole, frac)) if !frac.is_empty() && frac.bytes().all(|b| b == b'0') => whole,
        Some(_) => return None,
        None => t,
    };
    let (sign, digits) = match t.strip_prefix('-') {
        Some(rest) => (-1, rest),
        None => (1, t),
    };
    let ok = !digits.is_empty()
        && !digits.starts_with('_')
        && !digits.ends_with('_')
        && !digits.contains("__")
        && digits.bytes().all(|b| b.is_ascii_digit() || b == b'_');
    if !ok {
        return None;
    }
    digits.replace('_', "").parse::<i128>().ok().map(|n| sign * n)
}

/// Reads the integer query parameters of `params` from a raw query string the way FastAPI
/// does (the last occurrence wins, an absent one takes its default), with pydantic's 422 list
/// for a value that is not an integer or out of bounds. Other parameters are ignored.
pub fn query_ints(raw: Option<&str>, params: &[crate::routes::QueryParam]) -> Result<Vec<u64>, ApiError> {
    let pairs: Vec<(String, String)> = form_urlencoded::parse(raw.unwrap_or("").as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let mut values = Vec::with_capacity(params.len());
    let mut errors = Vec::new();
    for p in params {
        let Some((_, text)) = pairs.iter().rev().find(|(k, _)| k == p.name) else {
            values.push(p.default);
            continue;
        };
        let loc = json!(["query", p.name]);
        let Some(n) = lax_int(text) else {
            errors.push(json!({
                "type": "int_parsing", "loc": loc,
                "msg": "Input should be a valid integer, unable to parse string as an integer", "input": text,
            }));
            continue;
        };
        if n < i128::from(p.min) {
            errors.push(json!({
                "type": "greater_than_equal", "loc": loc,
                "msg": format!("Input should be greater than or equal to {}", p.min), "input": text,
                "ctx": {"ge": p.min},
            }));
        } else if let Some(max) = p.max.filter(|&m| n > i128::from(m)) {
            errors.push(json!({
                "type": "less_than_equal", "loc": loc,
                "msg": format!("Input should be less than or equal to {max}"), "input": text,
                "ctx": {"le": max},
            }));
        } else {
            // Past u64 there is nothing to skip to: the page is empty either way.
            values.push(u64::try_from(n).unwrap_or(u64::MAX));
        }
    }
    if errors.is_empty() {
        Ok(values)
    } else {
        Err(ApiError::Validation(errors))
    }
}
