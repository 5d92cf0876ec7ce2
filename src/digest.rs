//! Content digests: the typed [`Digest`] (from `oci-spec`), hashing of byte
//! slices, and [`VerifyingStream`], the one place where blob bytes are checked
//! against the digest they were announced with while they flow past.
//!
//! Contract: every blob that crosses a transport boundary is either hashed by a
//! [`VerifyingStream`] or by a destination that hashes what it writes; a
//! mismatch is reported as [`DigestError::Mismatch`] and the data is never
//! committed under that digest.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::Stream;
pub use oci_spec::image::{Digest, DigestAlgorithm};
use sha2::Digest as _;

/// What can go wrong while checking content against its digest.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum DigestError {
    /// The bytes hash to something else than announced.
    #[error("digest mismatch: expected {expected}, got {actual}")]
    Mismatch { expected: String, actual: String },
    /// The byte count differs from the announced size.
    #[error("size mismatch for {digest}: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        digest: String,
        expected: u64,
        actual: u64,
    },
    /// The digest string is not `algorithm:hex` or uses an algorithm we cannot compute.
    #[error("invalid digest {0:?}: want sha256:<64 hex> or sha512:<128 hex>")]
    Invalid(String),
}

/// Parse `sha256:<hex>` / `sha512:<hex>` (lowercase hex of the right length).
pub fn parse(s: &str) -> Result<Digest, DigestError> {
    let (alg, hex) = s
        .split_once(':')
        .ok_or_else(|| DigestError::Invalid(s.into()))?;
    let want = match alg {
        "sha256" => 64,
        "sha512" => 128,
        _ => return Err(DigestError::Invalid(s.into())),
    };
    if hex.len() != want
        || !hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(DigestError::Invalid(s.into()));
    }
    s.parse().map_err(|_| DigestError::Invalid(s.into()))
}

/// The sha256 digest of `data`.
pub fn sha256(data: &[u8]) -> Digest {
    let hex = hex::encode(sha2::Sha256::digest(data));
    format!("sha256:{hex}")
        .parse()
        .expect("sha256 hex is a valid digest")
}

/// The hex part of a digest (what `dir:` and OCI layouts use as file names).
pub fn hex_of(d: &Digest) -> &str {
    d.digest()
}

/// Incremental hashing with the algorithm of an expected digest.
pub enum Digester {
    Sha256(sha2::Sha256),
    Sha512(sha2::Sha512),
}

impl Digester {
    /// A digester for the algorithm `expected` uses; `sha256` for anything else
    /// (such digests fail [`parse`] before reaching here).
    pub fn for_digest(expected: &Digest) -> Self {
        match expected.algorithm() {
            DigestAlgorithm::Sha512 => Digester::Sha512(sha2::Sha512::new()),
            _ => Digester::Sha256(sha2::Sha256::new()),
        }
    }

    /// A sha256 digester.
    pub fn sha256() -> Self {
        Digester::Sha256(sha2::Sha256::new())
    }

    pub fn update(&mut self, data: &[u8]) {
        match self {
            Digester::Sha256(h) => h.update(data),
            Digester::Sha512(h) => h.update(data),
        }
    }

    /// The digest of everything passed to [`Digester::update`].
    pub fn finish(self) -> Digest {
        let s = match self {
            Digester::Sha256(h) => format!("sha256:{}", hex::encode(h.finalize())),
            Digester::Sha512(h) => format!("sha512:{}", hex::encode(h.finalize())),
        };
        s.parse().expect("computed digest is valid")
    }
}

/// A writer that hashes (sha256) and counts what it passes on, for blobs
/// written to disk whose digest is known only once they are written (a
/// recompressed layer, a layer built from a SIF file).
pub struct HashingWriter<W> {
    inner: W,
    digester: Digester,
    written: u64,
}

impl<W: std::io::Write> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            digester: Digester::sha256(),
            written: 0,
        }
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Flush the inner writer; the digest and size of everything written.
    pub fn finish(mut self) -> std::io::Result<(Digest, u64)> {
        self.inner.flush()?;
        Ok((self.digester.finish(), self.written))
    }
}

impl<W: std::io::Write> std::io::Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.digester.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Check `data` against `expected`.
pub fn verify_bytes(expected: &Digest, data: &[u8]) -> Result<(), DigestError> {
    let mut d = Digester::for_digest(expected);
    d.update(data);
    let actual = d.finish();
    if &actual == expected {
        Ok(())
    } else {
        Err(DigestError::Mismatch {
            expected: expected.to_string(),
            actual: actual.to_string(),
        })
    }
}

/// A stream adaptor that hashes and counts the bytes passing through and, at the
/// end, fails with [`DigestError`] instead of ending cleanly when they do not
/// match `expected` (and `size`, when known). Because the error replaces the
/// end of the stream, a consumer that commits only on a clean end (an HTTP
/// upload with a declared length, a file renamed into place after the last
/// chunk) never commits bad content.
pub struct VerifyingStream<S> {
    inner: S,
    digester: Option<Digester>,
    expected: Digest,
    size: Option<u64>,
    seen: u64,
}

impl<S> VerifyingStream<S> {
    pub fn new(inner: S, expected: Digest, size: Option<u64>) -> Self {
        VerifyingStream {
            digester: Some(Digester::for_digest(&expected)),
            inner,
            expected,
            size,
            seen: 0,
        }
    }
}

/// Errors a [`VerifyingStream`] yields: the inner stream's, or a digest failure.
pub trait FromDigestError {
    fn from_digest_error(e: DigestError) -> Self;
}

impl<S, E> Stream for VerifyingStream<S>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: FromDigestError,
{
    type Item = Result<Bytes, E>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.digester.is_none() {
            return Poll::Ready(None);
        }
        match Pin::new(&mut this.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                this.seen += chunk.len() as u64;
                if let Some(want) = this.size.filter(|w| this.seen > *w) {
                    this.digester = None;
                    return Poll::Ready(Some(Err(E::from_digest_error(
                        DigestError::SizeMismatch {
                            digest: this.expected.to_string(),
                            expected: want,
                            actual: this.seen,
                        },
                    ))));
                }
                if let Some(d) = this.digester.as_mut() {
                    d.update(&chunk);
                }
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(Some(Err(e))) => {
                this.digester = None;
                Poll::Ready(Some(Err(e)))
            }
            Poll::Ready(None) => {
                let digester = this.digester.take().expect("checked above");
                if let Some(want) = this.size.filter(|w| this.seen != *w) {
                    return Poll::Ready(Some(Err(E::from_digest_error(
                        DigestError::SizeMismatch {
                            digest: this.expected.to_string(),
                            expected: want,
                            actual: this.seen,
                        },
                    ))));
                }
                let actual = digester.finish();
                if actual == this.expected {
                    Poll::Ready(None)
                } else {
                    Poll::Ready(Some(Err(E::from_digest_error(DigestError::Mismatch {
                        expected: this.expected.to_string(),
                        actual: actual.to_string(),
                    }))))
                }
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::{StreamExt, stream};

    #[derive(Debug, PartialEq)]
    struct E(DigestError);
    impl FromDigestError for E {
        fn from_digest_error(e: DigestError) -> Self {
            E(e)
        }
    }

    #[test]
    fn parse_accepts_only_well_formed() {
        let ok = "sha256:".to_string() + &"a".repeat(64);
        assert!(parse(&ok).is_ok());
        assert!(parse("sha256:abc").is_err());
        assert!(parse(&("sha256:".to_string() + &"A".repeat(64))).is_err());
        assert!(parse(&("md5:".to_string() + &"a".repeat(32))).is_err());
        assert!(parse("nocolon").is_err());
    }

    #[test]
    fn sha256_of_empty() {
        assert_eq!(
            sha256(b"").to_string(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[tokio::test]
    async fn verifying_stream_passes_good_and_fails_bad() {
        let data = [Bytes::from_static(b"hello "), Bytes::from_static(b"world")];
        let good = sha256(b"hello world");
        let s = stream::iter(data.clone().map(Ok::<_, E>));
        let out: Vec<_> = VerifyingStream::new(s, good.clone(), Some(11))
            .collect()
            .await;
        assert!(out.iter().all(|r| r.is_ok()));
        assert_eq!(out.len(), 2);

        let s = stream::iter(data.clone().map(Ok::<_, E>));
        let out: Vec<_> = VerifyingStream::new(s, sha256(b"other"), None)
            .collect()
            .await;
        assert!(matches!(
            out.last(),
            Some(Err(E(DigestError::Mismatch { .. })))
        ));

        let s = stream::iter(data.map(Ok::<_, E>));
        let out: Vec<_> = VerifyingStream::new(s, good, Some(5)).collect().await;
        assert!(matches!(
            out.last(),
            Some(Err(E(DigestError::SizeMismatch { .. })))
        ));
    }
}
