//! Validation of a custom resource against its openAPIV3Schema, with the
//! API server's error wording (see `ApiError::invalid`).

use regex::Regex;
use serde_json::Value;

use super::{join, render_value};
use crate::error::Cause;

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn type_ok(want: &str, v: &Value) -> bool {
    match want {
        "number" => v.is_number(),
        "integer" => v.is_i64() || v.is_u64(),
        other => type_name(v) == other,
    }
}

fn num(v: &Value) -> String {
    match v.as_f64() {
        Some(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", f as i64),
        _ => v.to_string(),
    }
}

fn invalid(errs: &mut Vec<Cause>, path: &str, value: &Value, msg: String) {
    errs.push(Cause {
        reason: "FieldValueInvalid",
        field: path.to_string(),
        message: format!("Invalid value: {}: {msg}", render_value(value)),
    });
}

/// Validates `value` at `path` (empty for the root) and appends one cause per failure.
pub fn validate(value: &Value, schema: &Value, path: &str, errs: &mut Vec<Cause>) {
    let int_or_string = schema
        .get("x-kubernetes-int-or-string")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if value.is_null() {
        if schema
            .get("nullable")
            .and_then(Value::as_bool)
            .unwrap_or(false)
        {
            return;
        }
        if let Some(t) = schema.get("type").and_then(Value::as_str) {
            let p = if path.is_empty() {
                "body".to_string()
            } else {
                path.to_string()
            };
            invalid(
                errs,
                path,
                &Value::String("null".into()),
                format!("{p} in body must be of type {t}: \"null\""),
            );
        }
        return;
    }
    if int_or_string {
        if !(value.is_string() || value.is_i64() || value.is_u64()) {
            let t = type_name(value);
            invalid(
                errs,
                path,
                &Value::String(t.into()),
                format!("{path} in body must be of type integer,string: {t:?}"),
            );
            return;
        }
    } else if let Some(t) = schema.get("type").and_then(Value::as_str)
        && !type_ok(t, value)
    {
        let actual = type_name(value);
        invalid(
            errs,
            path,
            &Value::String(actual.into()),
            format!("{path} in body must be of type {t}: {actual:?}"),
        );
        return;
    }
    if let Some(options) = schema.get("enum").and_then(Value::as_array)
        && !options.contains(value)
    {
        let supported: Vec<String> = options.iter().map(render_value).collect();
        errs.push(Cause {
            reason: "FieldValueNotSupported",
            field: path.into(),
            message: format!(
                "Unsupported value: {}: supported values: {}",
                render_value(value),
                supported.join(", ")
            ),
        });
    }
    validate_composition(value, schema, path, errs);
    match value {
        Value::Number(_) => validate_number(value, schema, path, errs),
        Value::String(s) => validate_string(value, s, schema, path, errs),
        Value::Array(items) => {
            if let Some(min) = schema.get("minItems").and_then(Value::as_u64)
                && (items.len() as u64) < min
            {
                invalid(
                    errs,
                    path,
                    value,
                    format!("{path} in body should have at least {min} items"),
                );
            }
            if let Some(max) = schema.get("maxItems").and_then(Value::as_u64)
                && (items.len() as u64) > max
            {
                errs.push(Cause {
                    reason: "FieldValueTooMany",
                    field: path.into(),
                    message: format!("Too many: {}: must have at most {max} items", items.len()),
                });
            }
            if let Some(s) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    validate(item, s, &format!("{path}[{i}]"), errs);
                }
            }
        }
        Value::Object(map) => {
            let root = path.is_empty();
            if let Some(required) = schema.get("required").and_then(Value::as_array) {
                for r in required.iter().filter_map(Value::as_str) {
                    if !map.contains_key(r) {
                        errs.push(Cause {
                            reason: "FieldValueRequired",
                            field: join(path, r),
                            message: "Required value".into(),
                        });
                    }
                }
            }
            let props = schema.get("properties").and_then(Value::as_object);
            let additional = schema.get("additionalProperties").filter(|a| a.is_object());
            for (k, v) in map {
                if root && matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
                    continue;
                }
                if let Some(s) = props.and_then(|p| p.get(k)).or(additional) {
                    validate(v, s, &join(path, k), errs);
                }
            }
        }
        _ => {}
    }
}

/// `allOf`, `anyOf`, `oneOf` and `not` (go-openapi's wording).
fn validate_composition(value: &Value, schema: &Value, path: &str, errs: &mut Vec<Cause>) {
    let branches = |key: &str| {
        schema
            .get(key)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let passes = |branch: &Value| {
        let mut e = vec![];
        validate(value, branch, path, &mut e);
        e.is_empty()
    };
    let name = if path.is_empty() { "body" } else { path };
    for b in branches("allOf") {
        validate(value, &b, path, errs);
    }
    let any = branches("anyOf");
    if !any.is_empty() && !any.iter().any(passes) {
        invalid(
            errs,
            path,
            value,
            format!("{name} must validate at least one schema (anyOf)"),
        );
    }
    let one = branches("oneOf");
    if !one.is_empty() {
        match one.iter().filter(|b| passes(b)).count() {
            1 => {}
            0 => invalid(
                errs,
                path,
                value,
                format!("{name} must validate one and only one schema (oneOf). Found none valid"),
            ),
            n => invalid(
                errs,
                path,
                value,
                format!(
                    "{name} must validate one and only one schema (oneOf). Found {n} valid alternatives"
                ),
            ),
        }
    }
    if let Some(not) = schema.get("not")
        && passes(not)
    {
        invalid(
            errs,
            path,
            value,
            format!("{name} must not validate the schema (not)"),
        );
    }
}

fn validate_number(value: &Value, schema: &Value, path: &str, errs: &mut Vec<Cause>) {
    let x = value.as_f64().unwrap_or(0.0);
    if let Some(min) = schema.get("minimum").filter(|m| m.is_number()) {
        let excl = schema
            .get("exclusiveMinimum")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let m = min.as_f64().unwrap_or(0.0);
        if excl && x <= m {
            invalid(
                errs,
                path,
                value,
                format!("{path} in body should be greater than {}", num(min)),
            );
        } else if x < m {
            invalid(
                errs,
                path,
                value,
                format!(
                    "{path} in body should be greater than or equal to {}",
                    num(min)
                ),
            );
        }
    }
    if let Some(max) = schema.get("maximum").filter(|m| m.is_number()) {
        let excl = schema
            .get("exclusiveMaximum")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let m = max.as_f64().unwrap_or(0.0);
        if excl && x >= m {
            invalid(
                errs,
                path,
                value,
                format!("{path} in body should be less than {}", num(max)),
            );
        } else if x > m {
            invalid(
                errs,
                path,
                value,
                format!(
                    "{path} in body should be less than or equal to {}",
                    num(max)
                ),
            );
        }
    }
    if let Some(mult) = schema.get("multipleOf").and_then(Value::as_f64)
        && mult != 0.0
        && (x / mult).fract() != 0.0
    {
        invalid(
            errs,
            path,
            value,
            format!(
                "{path} in body should be a multiple of {}",
                num(&schema["multipleOf"])
            ),
        );
    }
}

fn validate_string(value: &Value, s: &str, schema: &Value, path: &str, errs: &mut Vec<Cause>) {
    let len = s.chars().count() as u64;
    if let Some(min) = schema.get("minLength").and_then(Value::as_u64)
        && len < min
    {
        invalid(
            errs,
            path,
            value,
            format!("{path} in body should be at least {min} chars long"),
        );
    }
    if let Some(max) = schema.get("maxLength").and_then(Value::as_u64)
        && len > max
    {
        let unit = if max == 1 { "byte" } else { "bytes" };
        errs.push(Cause {
            reason: "FieldValueTooLong",
            field: path.into(),
            message: format!("Too long: may not be more than {max} {unit}"),
        });
    }
    if let Some(p) = schema.get("pattern").and_then(Value::as_str)
        && let Ok(re) = Regex::new(p)
        && !re.is_match(s)
    {
        invalid(
            errs,
            path,
            value,
            format!("{path} in body should match '{p}'"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(v: Value) -> Vec<String> {
        let schema = json!({"type": "object", "properties": {"spec": {"type": "object", "required": ["size"], "properties": {
            "size": {"type": "integer", "minimum": 0, "maximum": 10},
            "color": {"type": "string", "enum": ["red", "green"]},
            "name": {"type": "string", "pattern": "^[a-z]+$", "maxLength": 5},
            "port": {"x-kubernetes-int-or-string": true},
        }}}});
        let mut errs = vec![];
        validate(&v, &schema, "", &mut errs);
        errs.into_iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect()
    }

    #[test]
    fn one_of_required() {
        let schema = json!({"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "string"}},
            "oneOf": [{"required": ["a"]}, {"required": ["b"]}]});
        let run = |v: Value| {
            let mut errs = vec![];
            validate(&v, &schema, "spec.source", &mut errs);
            errs.into_iter().map(|c| c.message).collect::<Vec<_>>()
        };
        assert!(run(json!({"a": "x"})).is_empty());
        assert!(run(json!({"a": "x", "b": "y"}))[0].ends_with(
            "spec.source must validate one and only one schema (oneOf). Found 2 valid alternatives"
        ));
        assert!(run(json!({}))[0].ends_with("Found none valid"));
    }

    #[test]
    fn wording() {
        assert_eq!(
            run(json!({"spec": {"size": -1}})),
            [
                "spec.size: Invalid value: -1: spec.size in body should be greater than or equal to 0"
            ]
        );
        assert_eq!(run(json!({"spec": {}})), ["spec.size: Required value"]);
        assert_eq!(
            run(json!({"spec": {"size": 1, "color": 3}})),
            [
                "spec.color: Invalid value: \"integer\": spec.color in body must be of type string: \"integer\""
            ]
        );
        assert_eq!(
            run(json!({"spec": {"size": 1, "color": "pink"}})),
            ["spec.color: Unsupported value: \"pink\": supported values: \"red\", \"green\""]
        );
        assert_eq!(
            run(json!({"spec": {"size": 1, "name": "A"}})),
            ["spec.name: Invalid value: \"A\": spec.name in body should match '^[a-z]+$'"]
        );
        assert_eq!(
            run(json!({"spec": {"size": 1, "name": "abcdef"}})),
            ["spec.name: Too long: may not be more than 5 bytes"]
        );
        assert!(run(json!({"spec": {"size": 1, "port": "http"}})).is_empty());
        assert!(run(json!({"spec": {"size": 1, "port": 80}})).is_empty());
    }
}
