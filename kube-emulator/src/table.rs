//! `meta.k8s.io/v1` Tables for kubectl: a Name column, then the version's
//! printer columns (or a single Age column), typed cells, dates as human
//! durations, and a PartialObjectMetadata (or the object) per row.

use serde_json::{Value, json};

use crate::jsonpath::select;
use crate::object;
use crate::registry::{Builtin, PrinterColumn, ResourceType};

/// Content-Type of Table replies.
pub const CONTENT_TYPE: &str = "application/json;as=Table;v=v1;g=meta.k8s.io";

/// What `rows[].object` holds (`includeObject`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncludeObject {
    /// No object.
    None,
    /// PartialObjectMetadata (the default).
    Metadata,
    /// The full object.
    Object,
}

impl IncludeObject {
    /// Parses the `includeObject` query value.
    pub fn parse(v: Option<&str>) -> Self {
        match v {
            Some("None") => IncludeObject::None,
            Some("Object") => IncludeObject::Object,
            _ => IncludeObject::Metadata,
        }
    }
}

/// Kubernetes' `HumanDuration`: `45s`, `3m12s`, `2d4h`, …
pub fn human_duration(secs: i64) -> String {
    if secs < -1 {
        return "<invalid>".into();
    }
    if secs < 0 {
        return "0s".into();
    }
    if secs < 120 {
        return format!("{secs}s");
    }
    let minutes = secs / 60;
    if minutes < 10 {
        let s = secs % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    }
    if minutes < 180 {
        return format!("{minutes}m");
    }
    let hours = secs / 3600;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{h}h", hours / 24)
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        return if dy == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{dy}d", hours / 24 / 365)
        };
    }
    format!("{}y", hours / 24 / 365)
}

fn age_column() -> PrinterColumn {
    PrinterColumn {
        name: "Age".into(),
        type_: "date".into(),
        format: String::new(),
        description: "CreationTimestamp is a timestamp representing the server time when this object was created.".into(),
        priority: 0,
        json_path: ".metadata.creationTimestamp".into(),
    }
}

fn col(name: &str, path: &str) -> PrinterColumn {
    PrinterColumn {
        name: name.into(),
        type_: "string".into(),
        format: String::new(),
        description: String::new(),
        priority: 0,
        json_path: path.into(),
    }
}

fn columns(rt: &ResourceType, version: &str) -> Vec<PrinterColumn> {
    let custom = rt
        .version(version)
        .map(|v| v.printer_columns.clone())
        .unwrap_or_default();
    if !custom.is_empty() {
        return custom;
    }
    match rt.builtin {
        Some(Builtin::Namespace) => vec![col("Status", ".status.phase"), age_column()],
        Some(Builtin::Secret) => vec![col("Type", ".type"), count("Data", ".data"), age_column()],
        Some(Builtin::ConfigMap) => vec![count("Data", ".data"), age_column()],
        Some(Builtin::Lease) => vec![col("Holder", ".spec.holderIdentity"), age_column()],
        _ => vec![age_column()],
    }
}

/// A built-in column counting the entries of a map (`DATA` of secrets).
fn count(name: &str, path: &str) -> PrinterColumn {
    PrinterColumn {
        type_: COUNT.into(),
        ..col(name, path)
    }
}

/// Internal column type: the number of entries, shown as an integer.
const COUNT: &str = "count";

fn cell(c: &PrinterColumn, obj: &Value) -> Value {
    if c.type_ == COUNT {
        let n = select(obj, &c.json_path)
            .first()
            .and_then(Value::as_object)
            .map_or(0, |m| m.len());
        return json!(n);
    }
    let Some(v) = select(obj, &c.json_path).into_iter().next() else {
        return Value::Null;
    };
    match c.type_.as_str() {
        "date" => match v.as_str().and_then(|s| s.parse::<jiff::Timestamp>().ok()) {
            Some(t) => json!(human_duration(
                jiff::Timestamp::now().as_second() - t.as_second()
            )),
            None => Value::Null,
        },
        "integer" => v
            .as_i64()
            .map(Value::from)
            .or_else(|| v.as_f64().map(|f| json!(f as i64)))
            .unwrap_or(Value::Null),
        "number" => v.as_f64().map(Value::from).unwrap_or(Value::Null),
        "boolean" => v.as_bool().map(Value::from).unwrap_or(Value::Null),
        _ => match v {
            Value::String(s) => json!(s),
            other => json!(other.to_string()),
        },
    }
}

/// A Table of `objects` (already typed for `version`).
pub fn render(
    rt: &ResourceType,
    version: &str,
    objects: &[Value],
    rv: Option<u64>,
    include: IncludeObject,
) -> Value {
    let cols = columns(rt, version);
    let mut defs = vec![
        json!({ "name": "Name", "type": "string", "format": "name", "description": "Name must be unique within a namespace.", "priority": 0 }),
    ];
    defs.extend(cols.iter().map(|c| {
        let type_ = if c.type_ == COUNT { "integer" } else { c.type_.as_str() };
        json!({ "name": c.name, "type": type_, "format": c.format, "description": c.description, "priority": c.priority })
    }));
    let rows: Vec<Value> = objects
        .iter()
        .map(|o| {
            let mut cells = vec![json!(object::name(o))];
            cells.extend(cols.iter().map(|c| cell(c, o)));
            let mut row = json!({ "cells": cells });
            match include {
                IncludeObject::Metadata => row["object"] = object::partial_metadata(o),
                IncludeObject::Object => row["object"] = o.clone(),
                IncludeObject::None => {}
            }
            row
        })
        .collect();
    let mut meta = json!({});
    if let Some(rv) = rv {
        meta["resourceVersion"] = json!(rv.to_string());
    }
    json!({ "kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": meta, "columnDefinitions": defs, "rows": rows })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        for (s, want) in [
            (45, "45s"),
            (119, "119s"),
            (192, "3m12s"),
            (600, "10m"),
            (3 * 3600 + 60, "3h1m"),
            (10 * 3600, "10h"),
            (52 * 3600, "2d4h"),
            (400 * 86400, "400d"),
            (3 * 365 * 86400, "3y"),
        ] {
            assert_eq!(human_duration(s), want, "{s}");
        }
    }
}
