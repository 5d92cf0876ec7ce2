//! The error every transport returns through the image traits. Variants carry
//! where (`location`: a registry host and repository, or a path) and what
//! operation failed, so that the one-line message a user sees says what to
//! fix. [`Error::kind`] tells callers (retry loops, `error_policy`) whether
//! trying again can help.

use std::time::Duration;

use crate::digest::DigestError;
use crate::manifest::ManifestError;
use crate::reference::ReferenceError;

/// How an error should be treated by whoever decides to retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The input (reference, path, spec) is wrong: retrying cannot help.
    Invalid,
    /// Credentials missing or refused (401/403).
    Unauthorized,
    /// The image, tag, blob or path does not exist.
    NotFound,
    /// The registry throttles us (429); wait `retry_after` if given.
    RateLimited,
    /// A passing fault: connection error, 5xx, timeout. Retry with backoff.
    Transient,
    /// Content does not match its digest, or a store is corrupt.
    Corrupt,
    /// A format or feature this transport does not handle.
    Unsupported,
}

/// An error from a transport or from the image layer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Reference(#[from] ReferenceError),

    /// An unknown transport name, and the known ones as a user writes them
    /// (`docker://, oci:, …`: built from `transport::TRANSPORTS`).
    #[error("unknown transport {0:?}: use {1}")]
    UnknownTransport(String, String),

    #[error("invalid image name {input:?}: {reason}")]
    InvalidName { input: String, reason: String },

    #[error("{location}: {source}")]
    Manifest {
        location: String,
        #[source]
        source: ManifestError,
    },

    #[error("{location}: {what} not found")]
    NotFound { location: String, what: String },

    /// An index lists no image for the platform asked for (the message is skopeo's).
    #[error("choosing an image from manifest list {location}: {message}")]
    NoInstance { location: String, message: String },

    #[error("{location}: {what}: {source}")]
    Digest {
        location: String,
        what: String,
        #[source]
        source: DigestError,
    },

    #[error("{location}: {op}: {source}")]
    Io {
        location: String,
        op: String,
        #[source]
        source: std::io::Error,
    },

    /// A registry answered with an error status.
    #[error("{status} {} from {host} for repository {repository} ({op}){}", status_text(*.status), detail_suffix(.message))]
    Registry {
        host: String,
        repository: String,
        op: String,
        status: u16,
        message: String,
        retry_after: Option<Duration>,
    },

    /// The connection to a registry failed (refused, reset, TLS, timeout).
    #[error("{host}: {op}: {message}")]
    Connection {
        host: String,
        op: String,
        message: String,
        /// False for failures no retry can mend (an unknown CA, a bad client certificate).
        retryable: bool,
    },

    #[error("{location}: {message}")]
    Corrupt { location: String, message: String },

    #[error("{0}")]
    Unsupported(String),

    #[error("{0}")]
    Invalid(String),

    #[error("signature: {0}")]
    Signature(String),
}

/// The reason phrase of the statuses registries commonly answer with.
pub fn status_text(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        413 => "Payload Too Large",
        416 => "Range Not Satisfiable",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "",
    }
}

fn detail_suffix(message: &str) -> String {
    if message.is_empty() {
        String::new()
    } else {
        format!(": {message}")
    }
}

impl Error {
    /// Whether and how a caller may retry.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Reference(_)
            | Error::UnknownTransport(..)
            | Error::InvalidName { .. }
            | Error::Invalid(_) => ErrorKind::Invalid,
            Error::Manifest { source, .. } => match source {
                ManifestError::Schema1
                | ManifestError::UnsupportedType(_)
                | ManifestError::Conversion(_) => ErrorKind::Unsupported,
                _ => ErrorKind::Corrupt,
            },
            Error::NotFound { .. } | Error::NoInstance { .. } => ErrorKind::NotFound,
            Error::Digest { .. } | Error::Corrupt { .. } => ErrorKind::Corrupt,
            Error::Io { source, .. } => match source.kind() {
                std::io::ErrorKind::NotFound => ErrorKind::NotFound,
                std::io::ErrorKind::PermissionDenied => ErrorKind::Unauthorized,
                std::io::ErrorKind::InvalidData | std::io::ErrorKind::UnexpectedEof => {
                    ErrorKind::Corrupt
                }
                _ => ErrorKind::Transient,
            },
            Error::Registry { status, .. } => match status {
                401 | 403 => ErrorKind::Unauthorized,
                404 => ErrorKind::NotFound,
                429 => ErrorKind::RateLimited,
                408 | 500..=599 => ErrorKind::Transient,
                _ => ErrorKind::Invalid,
            },
            Error::Connection { retryable, .. } => {
                if *retryable {
                    ErrorKind::Transient
                } else {
                    ErrorKind::Invalid
                }
            }
            Error::Unsupported(_) => ErrorKind::Unsupported,
            Error::Signature(_) => ErrorKind::Invalid,
        }
    }

    /// True when trying the same operation again may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self.kind(), ErrorKind::Transient | ErrorKind::RateLimited)
    }

    /// How long the server asked us to wait, if it did.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::Registry { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// An I/O error with context.
    pub fn io(location: impl Into<String>, op: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            location: location.into(),
            op: op.into(),
            source,
        }
    }

    /// A manifest error with context.
    pub fn manifest(location: impl Into<String>, source: ManifestError) -> Self {
        Error::Manifest {
            location: location.into(),
            source,
        }
    }

    /// A "not found" with context.
    pub fn not_found(location: impl Into<String>, what: impl Into<String>) -> Self {
        Error::NotFound {
            location: location.into(),
            what: what.into(),
        }
    }
}

impl crate::digest::FromDigestError for Error {
    fn from_digest_error(e: DigestError) -> Self {
        let what = match &e {
            DigestError::Mismatch { expected, .. } => format!("blob {expected}"),
            DigestError::SizeMismatch { digest, .. } => format!("blob {digest}"),
            DigestError::Invalid(d) => d.clone(),
        };
        Error::Digest {
            location: "stream".into(),
            what,
            source: e,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error and its sources on one line: each source appended after `": "`
/// unless the text so far already contains it (many errors quote their
/// source), and line breaks turned into spaces. For log lines, status
/// messages and the CLI's `Error:` line.
pub fn one_line(e: &(dyn std::error::Error + 'static)) -> String {
    let mut msg = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        let t = s.to_string();
        if !msg.contains(&t) {
            msg.push_str(": ");
            msg.push_str(&t);
        }
        cur = s.source();
    }
    msg.replace('\n', " ")
}

/// The operation named when a temporary file cannot be made: it says
/// where (global `--tmpdir`, else `TMPDIR`), so the fix is plain.
pub fn temp_file_op() -> String {
    format!(
        "create a temporary file in {} (--tmpdir or TMPDIR)",
        tempfile::env::temp_dir().display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_errors_read_as_one_line_and_classify() {
        let e = Error::Registry {
            host: "127.0.0.1:5000".into(),
            repository: "mirror/app".into(),
            op: "push".into(),
            status: 401,
            message: "authentication required".into(),
            retry_after: None,
        };
        assert_eq!(
            e.to_string(),
            "401 Unauthorized from 127.0.0.1:5000 for repository mirror/app (push): authentication required"
        );
        assert_eq!(e.kind(), ErrorKind::Unauthorized);
        assert!(!e.is_retryable());
    }
}
