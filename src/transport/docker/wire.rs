//! Small pieces of the wire protocol: error bodies, bounded reads, URLs,
//! `Retry-After` and the backoff schedule.

use std::time::Duration;

use reqwest::Response;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use url::Url;

use crate::image::one_line;

/// Longest wait between two attempts, whatever `Retry-After` says.
pub const MAX_RETRY_WAIT: Duration = Duration::from_secs(60);
/// The longest `Retry-After` taken from a registry (a registry asking for
/// hours is asking for a requeue, which the controller decides on; a larger
/// number, up to `u64::MAX`, is this).
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);
/// First backoff step (doubled per attempt, jittered).
const BACKOFF_BASE: Duration = Duration::from_millis(200);

pub(super) fn display_repo(r: &str) -> String {
    if r.is_empty() { "*".into() } else { r.into() }
}

pub(super) fn join_what(what: &str, message: &str) -> String {
    match (what.is_empty(), message.is_empty()) {
        (true, _) => message.into(),
        (false, true) => what.into(),
        (false, false) => format!("{what}: {message}"),
    }
}

/// The messages of a Distribution error body (`{"errors":[{code,message}]}`),
/// each worded as containers/image words it (the code in lower case with
/// spaces, then the message: `manifest unknown: manifest unknown`,
/// `unauthorized: authentication required`), so that scripts grepping
/// skopeo's errors find the same text; else the first line of the body, bounded.
pub fn registry_message(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Envelope {
        errors: Vec<Item>,
    }
    #[derive(serde::Deserialize)]
    struct Item {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    if let Ok(env) = serde_json::from_slice::<Envelope>(body) {
        let msgs: Vec<String> = env
            .errors
            .iter()
            .map(|e| {
                let code = e.code.to_lowercase().replace('_', " ");
                match (code.is_empty(), e.message.is_empty()) {
                    (false, false) => format!("{code}: {}", e.message),
                    (true, _) => e.message.clone(),
                    (false, true) => code,
                }
            })
            .filter(|m| !m.is_empty())
            .collect();
        if !msgs.is_empty() {
            return truncate(&msgs.join("; "), 300);
        }
    }
    let text = String::from_utf8_lossy(body);
    truncate(text.lines().next().unwrap_or("").trim(), 200)
}

fn truncate(s: &str, n: usize) -> String {
    excerpt(s, n)
}

/// At most `n` characters of text a registry sent, control characters
/// (escape sequences, NUL, line breaks) turned into spaces: what an error
/// message may quote of a body or header.
pub fn excerpt(s: &str, n: usize) -> String {
    let mut out: String = s
        .chars()
        .take(n)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if s.chars().nth(n).is_some() {
        out.push('…');
    }
    out
}

/// Read at most `cap` bytes of a body; longer bodies are an error.
pub async fn read_capped(mut resp: Response, cap: usize) -> std::result::Result<Vec<u8>, String> {
    if let Some(len) = resp.content_length()
        && len > cap as u64
    {
        return Err(format!(
            "response of {len} bytes is over the {cap}-byte limit"
        ));
    }
    let mut out = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| one_line(&e))? {
        if out.len() + chunk.len() > cap {
            return Err(format!("response is over the {cap}-byte limit"));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// `host[:port]` of a URL.
pub fn host_port(url: &Url) -> String {
    match (url.host_str(), url.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_string(),
        _ => String::new(),
    }
}

pub(super) fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme()
        && a.host_str() == b.host_str()
        && a.port_or_known_default() == b.port_or_known_default()
}

/// What went wrong on the connection, short (without reqwest's "error
/// sending request for url" wrapper), with a hint for the usual TLS
/// mistakes; and whether trying again can help.
pub fn describe_connection_error(e: &reqwest::Error) -> (String, bool) {
    let mut parts: Vec<String> = Vec::new();
    let mut cur = std::error::Error::source(e);
    while let Some(s) = cur {
        let m = s.to_string();
        if !m.starts_with("client error (") && !parts.iter().any(|p| p.contains(&m)) {
            parts.push(m);
        }
        cur = s.source();
    }
    let mut message = if e.is_timeout() {
        "timed out".to_string()
    } else if parts.is_empty() {
        e.to_string()
    } else {
        parts.join(": ")
    };
    let lower = message.to_ascii_lowercase();
    let untrusted = lower.contains("certificate")
        || lower.contains("unknownissuer")
        || lower.contains("invalid peer");
    let not_tls = lower.contains("invalidcontenttype") || lower.contains("corrupt message");
    if untrusted {
        message += " (the registry's certificate is not trusted: add its CA with a cert dir or CA Secret, or disable TLS verification)";
    } else if not_tls {
        message += " (the registry may speak plain HTTP: disable TLS verification to use it)";
    }
    (message, !untrusted && !not_tls && !e.is_builder())
}

/// `Retry-After`: delta-seconds or an HTTP date, at most [`MAX_RETRY_AFTER`]
/// (any number a registry sends, however large, is safe to add to a time).
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
        // Longer than u64 still means "a long time".
        let secs = v.parse::<u64>().unwrap_or(u64::MAX);
        return Some(Duration::from_secs(secs).min(MAX_RETRY_AFTER));
    }
    let when = jiff::fmt::rfc2822::parse(v).ok()?.timestamp();
    let now = jiff::Timestamp::now();
    let d = now.duration_until(when);
    Some(
        Duration::try_from(d)
            .unwrap_or(Duration::ZERO)
            .min(MAX_RETRY_AFTER),
    )
}

/// How long to wait before attempt `attempt + 1`: the server's `Retry-After`
/// if given, else exponential backoff with jitter; never above the cap.
pub fn backoff(attempt: u32, retry_after: Option<Duration>) -> Duration {
    if let Some(w) = retry_after {
        return w.min(MAX_RETRY_WAIT);
    }
    let exp = BACKOFF_BASE.saturating_mul(1 << attempt.min(16));
    let jitter = rand::random::<f64>() * 0.5 + 0.75;
    exp.mul_f64(jitter).min(MAX_RETRY_WAIT)
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn retry_after_forms() {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_static("3"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(3)));
        let later = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(30);
        let date = jiff::fmt::rfc2822::to_string(&later.to_zoned(jiff::tz::TimeZone::UTC))
            .unwrap()
            .replace("+0000", "GMT");
        h.insert(RETRY_AFTER, HeaderValue::from_str(&date).unwrap());
        let d = retry_after(&h).unwrap();
        assert!(
            d > Duration::from_secs(25) && d <= Duration::from_secs(30),
            "{d:?}"
        );
        h.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&h), Some(Duration::ZERO));
        let far = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(200 * 365 * 24);
        let far = jiff::fmt::rfc2822::to_string(&far.to_zoned(jiff::tz::TimeZone::UTC))
            .unwrap()
            .replace("+0000", "GMT");
        for huge in ["18446744073709551615", "99999999999999999999999", &far] {
            h.insert(RETRY_AFTER, HeaderValue::from_str(huge).unwrap());
            assert_eq!(retry_after(&h), Some(MAX_RETRY_AFTER), "{huge}");
        }
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        assert!(backoff(0, None) <= Duration::from_millis(250));
        assert!(backoff(3, None) >= Duration::from_millis(1200));
        assert_eq!(backoff(30, None), MAX_RETRY_WAIT);
        assert_eq!(backoff(0, Some(Duration::from_secs(3600))), MAX_RETRY_WAIT);
    }

    #[test]
    fn registry_messages() {
        let body = br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"x"}}]}"#;
        assert_eq!(registry_message(body), "manifest unknown: manifest unknown");
        assert_eq!(registry_message(b"oops\nmore"), "oops");
    }
}
