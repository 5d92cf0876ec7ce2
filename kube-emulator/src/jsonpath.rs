//! The JSONPath subset of `additionalPrinterColumns`: `.f`, `[n]`, `[*]`
//! and `[?(@.k=="v")]` (also `.k.j` inside the filter).

use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
enum Seg {
    Field(String),
    Index(usize),
    All,
    Filter(Vec<String>, Value),
}

fn parse(path: &str) -> Option<Vec<Seg>> {
    let p = path.trim();
    let p = p
        .strip_prefix('{')
        .and_then(|s| s.strip_suffix('}'))
        .unwrap_or(p);
    let p = p.strip_prefix('$').unwrap_or(p);
    let mut segs = vec![];
    let chars: Vec<char> = p.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '.' => {
                let start = i + 1;
                i = start;
                while i < chars.len() && chars[i] != '.' && chars[i] != '[' {
                    i += 1;
                }
                let name: String = chars[start..i].iter().collect();
                if !name.is_empty() {
                    segs.push(Seg::Field(name));
                }
            }
            '[' => {
                let end = chars[i..].iter().position(|&c| c == ']')? + i;
                let inner: String = chars[i + 1..end].iter().collect();
                let inner = inner.trim();
                if inner == "*" {
                    segs.push(Seg::All);
                } else if let Some(f) = inner.strip_prefix("?(").and_then(|s| s.strip_suffix(')')) {
                    let (lhs, rhs) = f.split_once("==")?;
                    let keys: Vec<String> = lhs
                        .trim()
                        .strip_prefix("@.")?
                        .split('.')
                        .map(String::from)
                        .collect();
                    let rhs = rhs.trim();
                    let val = if let Some(s) = rhs
                        .strip_prefix('"')
                        .and_then(|s| s.strip_suffix('"'))
                        .or_else(|| rhs.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')))
                    {
                        Value::String(s.to_string())
                    } else {
                        serde_json::from_str(rhs).ok()?
                    };
                    segs.push(Seg::Filter(keys, val));
                } else if let Some(s) = inner.strip_prefix('\'').and_then(|s| s.strip_suffix('\''))
                {
                    segs.push(Seg::Field(s.to_string()));
                } else {
                    segs.push(Seg::Index(inner.parse().ok()?));
                }
                i = end + 1;
            }
            _ => return None,
        }
    }
    Some(segs)
}

/// All values `path` selects in `v` (empty if none or the path is unsupported).
pub fn select(v: &Value, path: &str) -> Vec<Value> {
    let Some(segs) = parse(path) else {
        return vec![];
    };
    let mut cur = vec![v.clone()];
    for s in segs {
        let mut next = vec![];
        for c in cur {
            match &s {
                Seg::Field(f) => next.extend(c.get(f).cloned()),
                Seg::Index(n) => next.extend(c.get(*n).cloned()),
                Seg::All => match c {
                    Value::Array(a) => next.extend(a),
                    Value::Object(m) => next.extend(m.into_iter().map(|(_, v)| v)),
                    _ => {}
                },
                Seg::Filter(keys, want) => {
                    if let Value::Array(a) = c {
                        next.extend(a.into_iter().filter(|e| {
                            let mut x = Some(e);
                            for k in keys {
                                x = x.and_then(|x| x.get(k));
                            }
                            x == Some(want)
                        }));
                    }
                }
            }
        }
        cur = next;
    }
    cur
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn subset() {
        let v = json!({"spec": {"size": 3, "l": [1, 2]}, "status": {"conditions": [{"type": "A", "status": "False"}, {"type": "Ready", "status": "True"}]}});
        assert_eq!(select(&v, ".spec.size"), [json!(3)]);
        assert_eq!(select(&v, ".spec.l[1]"), [json!(2)]);
        assert_eq!(select(&v, ".spec.l[*]"), [json!(1), json!(2)]);
        assert_eq!(
            select(&v, ".status.conditions[?(@.type==\"Ready\")].status"),
            [json!("True")]
        );
        assert!(select(&v, ".spec.missing").is_empty());
    }
}
