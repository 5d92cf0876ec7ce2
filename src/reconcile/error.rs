//! The reconcilers' error: what went wrong for a whole object (a bad spec, an
//! unknown Secret, a source that cannot be listed). Per-tag failures are not
//! errors here; they are results in status. [`Error::kind`] tells the driver
//! whether to wait for a change, for `Retry-After`, or to back off.

use std::time::Duration;

use crate::image;

/// How the driver should treat an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The spec (or a Secret it names) is wrong: wait for a change (`Stalled`).
    Spec,
    /// The registry throttles us: wait for `Retry-After`.
    RateLimited(Option<Duration>),
    /// Anything else: retry with per-object backoff.
    Transient,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The spec is wrong; the message names the field and what to fix.
    #[error("{0}")]
    Spec(String),

    /// A Secret the spec names does not exist.
    #[error(
        "Secret {name:?} named by {field} not found in namespace {namespace:?}: create it or fix the name"
    )]
    SecretNotFound {
        field: String,
        name: String,
        namespace: String,
    },

    /// A Secret exists but does not hold what the spec needs.
    #[error("Secret {name:?} named by {field}: {message}")]
    InvalidSecret {
        field: String,
        name: String,
        message: String,
    },

    /// A ConfigMap the spec names (`trustedRootRef` of kind ConfigMap) does not exist.
    #[error(
        "ConfigMap {name:?} named by {field} not found in namespace {namespace:?}: create it or fix the name"
    )]
    ConfigMapNotFound {
        field: String,
        name: String,
        namespace: String,
    },

    /// A ConfigMap exists but does not hold what the spec needs.
    #[error("ConfigMap {name:?} named by {field}: {message}")]
    InvalidConfigMap {
        field: String,
        name: String,
        message: String,
    },

    /// Reading a ConfigMap failed (the API server, not the ConfigMap).
    #[error("reading ConfigMap {name:?}: {message}")]
    ConfigMapLookup { name: String, message: String },

    /// Reading a Secret failed (the API server, not the Secret).
    #[error("reading Secret {name:?}: {message}")]
    SecretLookup { name: String, message: String },

    /// An image operation on the whole object failed (listing tags, inspecting).
    #[error("{context}: {source}")]
    Image {
        context: String,
        #[source]
        source: Box<image::Error>,
    },
}

impl Error {
    pub fn image(context: impl Into<String>, source: image::Error) -> Self {
        Error::Image {
            context: context.into(),
            source: Box::new(source),
        }
    }

    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Spec(_)
            | Error::SecretNotFound { .. }
            | Error::InvalidSecret { .. }
            | Error::ConfigMapNotFound { .. }
            | Error::InvalidConfigMap { .. } => ErrorKind::Spec,
            Error::SecretLookup { .. } | Error::ConfigMapLookup { .. } => ErrorKind::Transient,
            Error::Image { source, .. } => match source.kind() {
                image::ErrorKind::Invalid => ErrorKind::Spec,
                image::ErrorKind::RateLimited => ErrorKind::RateLimited(source.retry_after()),
                _ => ErrorKind::Transient,
            },
        }
    }

    pub fn is_spec_error(&self) -> bool {
        self.kind() == ErrorKind::Spec
    }

    /// The condition reason (CamelCase) and Event reason for this error.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Spec(_) => "InvalidSpec",
            Error::SecretNotFound { .. } => "SecretNotFound",
            Error::InvalidSecret { .. } => "InvalidSecret",
            Error::SecretLookup { .. } => "SecretLookupFailed",
            Error::ConfigMapNotFound { .. } => "ConfigMapNotFound",
            Error::InvalidConfigMap { .. } => "InvalidConfigMap",
            Error::ConfigMapLookup { .. } => "ConfigMapLookupFailed",
            Error::Image { source, .. } => match source.kind() {
                image::ErrorKind::Invalid => "InvalidSpec",
                image::ErrorKind::Unauthorized => "Unauthorized",
                image::ErrorKind::NotFound => "NotFound",
                image::ErrorKind::RateLimited => "RateLimited",
                _ => "RegistryError",
            },
        }
    }

    /// A short label for metrics (bounded set, no user data).
    pub fn metric_label(&self) -> &'static str {
        match self.kind() {
            ErrorKind::Spec => "spec",
            ErrorKind::RateLimited(_) => "rate_limited",
            ErrorKind::Transient => "transient",
        }
    }
}
