//! One page of a tag list or catalog (`{"name": …, "tags": [ … ]}`), parsed
//! without building a JSON tree: each string of the named array is handed to
//! a callback as it is read (non-strings are skipped, `null` is an empty
//! list), so a page costs its bytes plus what the callback keeps.

use std::fmt;

use serde::Deserializer;
use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// Call `each` with every string of array `key` in `body`, until it returns
/// `false`. Errors are serde_json's (a position, never the bytes).
pub fn parse(
    body: &[u8],
    key: &str,
    each: &mut dyn FnMut(String) -> bool,
) -> Result<(), serde_json::Error> {
    let mut stopped = false;
    let mut each = |s: String| {
        let go_on = each(s);
        stopped |= !go_on;
        go_on
    };
    let mut de = serde_json::Deserializer::from_slice(body);
    let parsed = Page {
        key,
        each: &mut each,
    }
    .deserialize(&mut de)
    .and_then(|_| de.end());
    // Once the callback stopped, the rest of the page is never read (serde
    // then complains about the unfinished array: not an error of the page).
    match parsed {
        Err(_) if stopped => Ok(()),
        other => other,
    }
}

struct Page<'a> {
    key: &'a str,
    each: &'a mut dyn FnMut(String) -> bool,
}

impl<'de> DeserializeSeed<'de> for Page<'_> {
    /// Whether the callback stopped the reading.
    type Value = bool;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Page<'_> {
    type Value = bool;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "an object with a {:?} array", self.key)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
        while let Some(k) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            if k == self.key {
                if map.next_value_seed(Items { each: self.each })? {
                    return Ok(true);
                }
                // Any further keys are not read: the list is what we came for.
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                return Ok(false);
            }
            map.next_value::<IgnoredAny>()?;
        }
        Ok(false)
    }
}

struct Items<'a> {
    each: &'a mut dyn FnMut(String) -> bool,
}

impl<'de> DeserializeSeed<'de> for Items<'_> {
    type Value = bool;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Items<'_> {
    type Value = bool;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of strings or null")
    }
    fn visit_unit<E>(self) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_none<E>(self) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<bool, A::Error> {
        while let Some(item) = seq.next_element::<MaybeString>()? {
            if let MaybeString(Some(s)) = item
                && !(self.each)(s)
            {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

/// A string, or anything else (skipped).
struct MaybeString(Option<String>);

impl<'de> serde::Deserialize<'de> for MaybeString {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = MaybeString;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_str<E>(self, v: &str) -> Result<MaybeString, E> {
                Ok(MaybeString(Some(v.to_string())))
            }
            fn visit_string<E>(self, v: String) -> Result<MaybeString, E> {
                Ok(MaybeString(Some(v)))
            }
            fn visit_bool<E>(self, _: bool) -> Result<MaybeString, E> {
                Ok(MaybeString(None))
            }
            fn visit_i64<E>(self, _: i64) -> Result<MaybeString, E> {
                Ok(MaybeString(None))
            }
            fn visit_u64<E>(self, _: u64) -> Result<MaybeString, E> {
                Ok(MaybeString(None))
            }
            fn visit_f64<E>(self, _: f64) -> Result<MaybeString, E> {
                Ok(MaybeString(None))
            }
            fn visit_unit<E>(self) -> Result<MaybeString, E> {
                Ok(MaybeString(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<MaybeString, A::Error> {
                while s.next_element::<IgnoredAny>()?.is_some() {}
                Ok(MaybeString(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<MaybeString, A::Error> {
                while m.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(MaybeString(None))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(body: &str) -> Result<Vec<String>, serde_json::Error> {
        let mut out = Vec::new();
        parse(body.as_bytes(), "tags", &mut |s| {
            out.push(s);
            true
        })?;
        Ok(out)
    }

    #[test]
    fn strings_of_the_named_array() {
        assert_eq!(
            all(r#"{"name":"a","tags":["v1",2,null,["x"],{"y":1},"v\u00e92"],"more":1}"#).unwrap(),
            ["v1", "vé2"]
        );
        assert!(all(r#"{"name":"a","tags":null}"#).unwrap().is_empty());
        assert!(all(r#"{"name":"a"}"#).unwrap().is_empty());
        assert!(all(r#"{"tags":["a"]"#).is_err());
        assert!(all(r#"["a"]"#).is_err());
        assert!(all(r#"{"tags":["a"]} trailing"#).is_err());
    }

    #[test]
    fn the_callback_stops_reading() {
        let mut n = 0;
        parse(br#"{"tags":["a","b","c","#, "tags", &mut |_| {
            n += 1;
            n < 2
        })
        .unwrap();
        assert_eq!(n, 2, "the truncated rest is never read");
    }
}
