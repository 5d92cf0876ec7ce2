//! openAPIV3Schema handling for custom resources: pruning of unknown
//! fields, defaulting and validation, in the API server's order
//! (prune → default → validate).

mod structural;
mod validate;

pub use structural::{apply_defaults, prune};
pub use validate::validate;

/// Renders a value the way the API server's field errors do: numbers and
/// booleans bare, strings quoted, anything else as JSON.
pub fn render_value(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => format!("{s:?}"),
        serde_json::Value::Null => "\"null\"".into(),
        serde_json::Value::Number(n) => render_number(n.as_f64().unwrap_or(0.0), n),
        other => other.to_string(),
    }
}

fn render_number(f: f64, n: &serde_json::Number) -> String {
    if n.is_f64() && f.fract() == 0.0 && f.abs() < 1e15 {
        format!("{}", f as i64)
    } else {
        n.to_string()
    }
}

/// Joins a field path: `spec` + `size` = `spec.size`.
pub(crate) fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}
