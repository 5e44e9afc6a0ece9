//! Layering the sources into one [`Config`]: TOML text < secrets-env text < environment pairs
//! < programmatic overrides, highest last. The runtimes only read files and the environment
//! and hand the text over, so the merge rules, and the `REGSTACK_*` naming rule, live here.

use serde_json::{Map, Value};

use super::{invalid, Config, ConfigError};

/// The inputs of [`load`], lowest precedence first.
#[derive(Default, Clone, Copy)]
pub struct Sources<'a> {
    /// The text of `regstack.toml`, if one was found.
    pub toml: Option<&'a str>,
    /// The text of `regstack.secrets.env`, if one was found.
    pub secrets_env: Option<&'a str>,
    /// The process environment (only `REGSTACK_*` names are read, case-insensitively).
    pub env: &'a [(String, String)],
    /// Programmatic overrides as `(dotted.field, value)`: the constructor kwargs.
    pub overrides: &'a [(String, Value)],
}

/// A loaded config and the warnings the operator should see (unknown keys and the like).
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The validated config.
    pub config: Config,
    /// One line per ignored key.
    pub warnings: Vec<String>,
}

const SUB_MODELS: &[&str] = &["email", "sms", "oauth"];

/// Other names for top-level fields (seed 004's, docs/wire.md "Decision 13"): read as the field
/// they stand for, from every source.
const ALIASES: &[(&str, &str)] = &[("enable_registration", "allow_registration")];

/// Every environment name starts with this (matched without regard to case).
pub const ENV_PREFIX: &str = "REGSTACK_";

/// The naming rule, written once: a field's environment name is [`ENV_PREFIX`] and its path,
/// upper-cased, joined by `__` (`REGSTACK_JWT_SECRET`, `REGSTACK_EMAIL__SMTP_PASSWORD`).
/// The loader reads names back by the same rule.
pub fn env_name(path: &[&str]) -> String {
    format!("{ENV_PREFIX}{}", path.join("__").to_ascii_uppercase())
}

/// The environment name of every field, for a runtime that must ask for each by name (the
/// edge reads vars and secrets one at a time).
pub fn env_names() -> Vec<String> {
    let schema = serde_json::to_value(Config::default()).expect("config serialises");
    let mut names = Vec::new();
    for (key, value) in schema.as_object().into_iter().flatten() {
        names.push(env_name(&[key]));
        for (alias, _) in ALIASES.iter().filter(|(_, field)| field == key) {
            names.push(env_name(&[alias]));
        }
        if SUB_MODELS.contains(&key.as_str()) {
            for sub in value.as_object().into_iter().flatten().map(|(k, _)| k) {
                names.push(env_name(&[key, sub]));
            }
        }
    }
    names
}

/// A map field's entries take any name; the schema holds one entry's shape under this key.
const ANY_NAME: &str = "*";

/// The shape every source is checked against: the defaults, plus the shape of an entry of
/// each map field (`oauth.providers`).
fn schema() -> Value {
    let mut schema = serde_json::to_value(Config::default()).expect("config serialises");
    schema["oauth"]["providers"] = serde_json::json!({
        ANY_NAME: serde_json::to_value(super::OidcProviderConfig::default()).expect("provider config serialises")
    });
    schema
}

/// The environment names of the per-provider settings a runtime cannot list in advance (the
/// edge asks for each name): for each provider named in `REGSTACK_OAUTH__PROVIDERS`'s JSON
/// among `known`, its `…__CLIENT_SECRET` and the other fields of one provider.
pub fn provider_env_names(known: &[(String, String)]) -> Vec<String> {
    let providers = env_name(&["oauth", "providers"]);
    let Some((_, json)) = known.iter().find(|(k, _)| k.eq_ignore_ascii_case(&providers)) else {
        return Vec::new();
    };
    let Ok(Value::Object(map)) = serde_json::from_str::<Value>(json) else {
        return Vec::new();
    };
    let fields = serde_json::to_value(super::OidcProviderConfig::default()).expect("provider config serialises");
    let mut names = Vec::new();
    for name in map.keys() {
        for field in fields.as_object().into_iter().flatten().map(|(k, _)| k) {
            names.push(env_name(&["oauth", "providers", name, field]));
        }
    }
    names
}

/// Merges the sources (TOML < secrets-env < env < overrides), coerces strings to each
/// field's type, warns about unknown keys, and validates bounds.
pub fn load(sources: Sources<'_>) -> Result<Loaded, ConfigError> {
    let schema = schema();
    let defaults = serde_json::to_value(Config::default()).expect("config serialises");
    let mut tree = defaults.clone();
    let mut warnings = Vec::new();

    if let Some(text) = sources.toml {
        let table: toml::Table = toml::from_str(text).map_err(|e| ConfigError::Toml(e.message().to_string()))?;
        for (key, value) in table {
            let value = toml_to_json(value);
            let key = key.to_ascii_lowercase();
            if SUB_MODELS.contains(&key.as_str()) {
                match value {
                    Value::Object(inner) => {
                        for (k, v) in inner {
                            set_path(
                                &schema,
                                &mut tree,
                                &[key.clone(), k.to_ascii_lowercase()],
                                v,
                                "regstack.toml",
                                &mut warnings,
                            )?;
                        }
                    }
                    other => set_path(&schema, &mut tree, &[key], other, "regstack.toml", &mut warnings)?,
                }
            } else {
                set_path(&schema, &mut tree, &[key], value, "regstack.toml", &mut warnings)?;
            }
        }
    }
    if let Some(text) = sources.secrets_env {
        for (name, value) in parse_env_file(text) {
            apply_env(&schema, &mut tree, &name, &value, "regstack.secrets.env", &mut warnings)?;
        }
    }
    for (name, value) in sources.env {
        apply_env(&schema, &mut tree, name, value, "environment", &mut warnings)?;
    }
    for (name, value) in sources.overrides {
        let path: Vec<String> = name
            .split(['.'])
            .flat_map(|p| p.split("__"))
            .map(|p| p.to_ascii_lowercase())
            .collect();
        set_path(&schema, &mut tree, &path, value.clone(), "overrides", &mut warnings)?;
    }

    let config: Config = match serde_json::from_value(tree.clone()) {
        Ok(config) => config,
        Err(e) => return Err(field_error(&defaults, &tree, e)),
    };
    config.validate()?;
    warnings.extend(config.inert_settings());
    Ok(Loaded { config, warnings })
}

/// Names the field a typed value refused (an unknown backend or algorithm, say), by trying
/// each set value alone against the defaults; serde's own message lists what is accepted.
fn field_error(schema: &Value, tree: &Value, e: serde_json::Error) -> ConfigError {
    let fails = |probe: Value| serde_json::from_value::<Config>(probe).err();
    for (key, value) in tree.as_object().into_iter().flatten() {
        match value {
            Value::Object(inner) if SUB_MODELS.contains(&key.as_str()) => {
                for (sub, v) in inner {
                    let mut probe = schema.clone();
                    probe[key][sub] = v.clone();
                    if let Some(err) = fails(probe) {
                        return invalid(&format!("{key}.{sub}"), err.to_string());
                    }
                }
            }
            _ => {
                let mut probe = schema.clone();
                probe[key] = value.clone();
                if let Some(err) = fails(probe) {
                    return invalid(key, err.to_string());
                }
            }
        }
    }
    invalid("config", e.to_string())
}

/// `KEY=value` lines: `#` comments and blank lines skipped, matching quotes stripped, no
/// `export` and no interpolation (docs/wire.md, "Sources and precedence").
pub fn parse_env_file(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((k, v)) = line.split_once('=') else { continue };
        let mut v = v.trim();
        if v.len() >= 2 && ((v.starts_with('"') && v.ends_with('"')) || (v.starts_with('\'') && v.ends_with('\''))) {
            v = &v[1..v.len() - 1];
        }
        out.push((k.trim().to_string(), v.to_string()));
    }
    out
}

fn apply_env(
    schema: &Value,
    tree: &mut Value,
    name: &str,
    raw: &str,
    source: &str,
    warnings: &mut Vec<String>,
) -> Result<(), ConfigError> {
    let lower = name.to_ascii_lowercase();
    let Some(rest) = lower.strip_prefix(&ENV_PREFIX.to_ascii_lowercase()) else {
        return Ok(());
    };
    // REGSTACK_CONFIG names the TOML file; it is not a field.
    if rest == "config" {
        return Ok(());
    }
    let path: Vec<String> = rest.split("__").map(str::to_string).collect();
    set_path(schema, tree, &path, Value::String(raw.to_string()), source, warnings)
}

fn set_path(
    schema: &Value,
    tree: &mut Value,
    path: &[String],
    value: Value,
    source: &str,
    warnings: &mut Vec<String>,
) -> Result<(), ConfigError> {
    let dotted = path.join(".");
    let (Some(schema_obj), Some(tree_obj)) = (schema.as_object(), tree.as_object_mut()) else {
        return Ok(());
    };
    let Some(first) = path.first() else { return Ok(()) };
    // Only top-level aliases exist: a sub-model's schema has no `allow_registration`.
    let first = &ALIASES
        .iter()
        .find(|(alias, _)| alias == first && schema_obj.contains_key("allow_registration"))
        .map_or_else(|| first.clone(), |(_, field)| field.to_string());
    let Some(field_schema) = schema_obj.get(first).or_else(|| schema_obj.get(ANY_NAME)) else {
        warnings.push(format!("ignoring unknown config key `{dotted}` from {source}"));
        return Ok(());
    };
    // A new entry of a map field starts from an entry's defaults.
    let fresh = |field_schema: &Value| {
        let mut v = field_schema.clone();
        if let Some(map) = v.as_object_mut() {
            map.remove(ANY_NAME);
        }
        v
    };
    if path.len() > 1 {
        if !field_schema.is_object() {
            warnings.push(format!("ignoring unknown config key `{dotted}` from {source}"));
            return Ok(());
        }
        let slot = tree_obj.entry(first.clone()).or_insert_with(|| fresh(field_schema));
        return set_path(field_schema, slot, &path[1..], value, source, warnings);
    }
    if let (Value::Object(_), Value::Object(map)) = (field_schema, &value) {
        // A TOML table (or a JSON object inside one), merged key by key.
        let slot = tree_obj.entry(first.clone()).or_insert_with(|| fresh(field_schema));
        for (k, v) in map {
            set_path(
                field_schema,
                slot,
                &[k.to_ascii_lowercase()],
                v.clone(),
                source,
                warnings,
            )?;
        }
        return Ok(());
    }
    if let (Value::Object(_), Value::String(s)) = (field_schema, &value) {
        // A whole sub-model as JSON (pydantic-settings accepts it), merged key by key.
        let parsed: Value = serde_json::from_str(s).map_err(|_| invalid(&dotted, "expected a JSON object"))?;
        let Value::Object(map) = parsed else {
            return Err(invalid(&dotted, "expected a JSON object"));
        };
        let slot = tree_obj.entry(first.clone()).or_insert_with(|| fresh(field_schema));
        for (k, v) in map {
            set_path(field_schema, slot, &[k.to_ascii_lowercase()], v, source, warnings)?;
        }
        return Ok(());
    }
    let coerced = coerce(field_schema, value).map_err(|m| invalid(&dotted, m))?;
    tree_obj.insert(first.clone(), coerced);
    Ok(())
}

/// Converts a value to the type the field's default has; env and secrets values are strings.
fn coerce(like: &Value, value: Value) -> Result<Value, String> {
    match (like, value) {
        (Value::Bool(_), Value::String(s)) => match s.trim().to_ascii_lowercase().as_str() {
            "1" | "true" | "t" | "yes" | "y" | "on" => Ok(Value::Bool(true)),
            "0" | "false" | "f" | "no" | "n" | "off" => Ok(Value::Bool(false)),
            _ => Err(format!("expected a boolean, got {s:?}")),
        },
        (Value::Bool(_), Value::Number(n)) if n.as_i64() == Some(0) || n.as_i64() == Some(1) => {
            Ok(Value::Bool(n.as_i64() == Some(1)))
        }
        (Value::Bool(_), v @ Value::Bool(_)) => Ok(v),
        (Value::Number(_), Value::String(s)) => s
            .trim()
            .parse::<i64>()
            .map(Value::from)
            .map_err(|_| format!("expected an integer, got {s:?}")),
        (Value::Number(_), Value::Number(n)) if n.is_i64() || n.is_u64() => Ok(Value::Number(n)),
        (Value::Number(_), Value::Number(n)) => match n.as_f64() {
            Some(f) if f.fract() == 0.0 => Ok(Value::from(f as i64)),
            _ => Err(format!("expected an integer, got {n}")),
        },
        (Value::Array(_), Value::String(s)) => match serde_json::from_str::<Value>(&s) {
            Ok(Value::Array(items)) if items.iter().all(Value::is_string) => Ok(Value::Array(items)),
            _ => Err("expected a JSON list of strings, e.g. [\"/srv/templates\"]".into()),
        },
        (Value::Array(_), Value::Array(items)) if items.iter().all(Value::is_string) => Ok(Value::Array(items)),
        (Value::String(_) | Value::Null, Value::String(s)) => Ok(Value::String(s)),
        (Value::Null, Value::Null) => Ok(Value::Null),
        (Value::String(_) | Value::Null, Value::Number(n)) => Ok(Value::String(n.to_string())),
        (Value::String(_) | Value::Null, Value::Bool(b)) => Ok(Value::String(b.to_string())),
        // The value is not quoted: it may be a secret in the wrong place.
        (_, other) => Err(format!("unexpected {}", kind_of(&other))),
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "table",
    }
}

fn toml_to_json(v: toml::Value) -> Value {
    match v {
        toml::Value::String(s) => Value::String(s),
        toml::Value::Integer(i) => Value::from(i),
        toml::Value::Float(f) => serde_json::Number::from_f64(f)
            .map(Value::Number)
            .unwrap_or(Value::Null),
        toml::Value::Boolean(b) => Value::Bool(b),
        toml::Value::Datetime(d) => Value::String(d.to_string()),
        toml::Value::Array(a) => Value::Array(a.into_iter().map(toml_to_json).collect()),
        toml::Value::Table(t) => Value::Object(t.into_iter().map(|(k, v)| (k, toml_to_json(v))).collect::<Map<_, _>>()),
    }
}
