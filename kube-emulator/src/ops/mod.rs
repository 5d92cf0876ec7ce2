//! Object operations (create, update, patch, apply, delete, get, list) on the
//! locked store. HTTP concerns (bodies, content types) stay in `http`.

pub mod delete;
pub mod kinds;
pub mod read;
pub mod secret;
pub mod verbs;
pub mod write;

use serde_json::{Value, json};

use crate::object;

/// The `fieldValidation` directive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldValidation {
    /// Unknown fields are errors.
    Strict,
    /// Unknown fields give `Warning` headers (the default).
    Warn,
    /// Unknown fields are dropped silently.
    Ignore,
}

impl FieldValidation {
    /// Parses the query value (absent = Warn).
    pub fn parse(v: Option<&str>) -> Self {
        match v {
            Some("Strict") => FieldValidation::Strict,
            Some("Ignore") => FieldValidation::Ignore,
            _ => FieldValidation::Warn,
        }
    }
}

/// A successful reply: status code, body, `Warning` header values.
#[derive(Debug, Clone)]
pub struct Reply {
    /// HTTP status.
    pub code: u16,
    /// JSON body.
    pub body: Value,
    /// `Warning` header values (`299 - "…"`).
    pub warnings: Vec<String>,
}

impl Reply {
    /// 200 with `body`.
    pub fn ok(body: Value) -> Self {
        Reply {
            code: 200,
            body,
            warnings: vec![],
        }
    }
}

fn random_suffix(n: usize) -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::rng();
    (0..n)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// A random UID in the 8-4-4-4-12 hex form.
pub fn new_uid() -> String {
    use rand::Rng;
    let b: [u8; 16] = rand::rng().random();
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-4{}-a{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    )
}

/// Sets `uid` and `creationTimestamp` of a new object.
pub fn stamp_new(obj: &mut Value) {
    let meta = object::meta_mut(obj);
    meta.insert("uid".into(), json!(new_uid()));
    meta.insert("creationTimestamp".into(), json!(object::now_rfc3339()));
}

/// `generateName` + 5 random characters.
pub fn generated_name(prefix: &str) -> String {
    format!("{prefix}{}", random_suffix(5))
}
