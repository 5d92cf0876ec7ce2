//! Which image a signature may vouch for: the `signedIdentity` rules of
//! containers-policy.json(5), applied to the docker reference an image is
//! known by ("intended") and the one inside the signature ("signed").
//! Both are normalised first (`busybox` → `docker.io/library/busybox`), but
//! a reference without tag or digest stays name-only (no implicit `latest`),
//! as containers/image compares them.

use crate::reference::{self, Reference};

/// A normalised docker reference that remembers whether it was name-only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ident {
    /// `host/repo`.
    pub name: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

impl Ident {
    /// Parse and normalise; a reference without tag or digest stays name-only.
    pub fn parse(s: &str) -> Result<Self, String> {
        let r = reference::parse(s).map_err(|e| e.to_string())?;
        let last = s.rsplit('/').next().unwrap_or(s);
        let explicit = last.contains(':') || last.contains('@');
        let mut ident = Ident::from(&r);
        if !explicit {
            ident.tag = None;
        }
        Ok(ident)
    }

    pub fn is_name_only(&self) -> bool {
        self.tag.is_none() && self.digest.is_none()
    }
}

impl From<&Reference> for Ident {
    fn from(r: &Reference) -> Self {
        Ident {
            name: reference::name(r),
            tag: r.tag().map(str::to_string),
            digest: r.digest().map(str::to_string),
        }
    }
}

impl std::fmt::Display for Ident {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

/// containers-policy.json(5) `signedIdentity`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum SignedIdentity {
    /// Same repository, and the same tag (or, for an image named by digest,
    /// any tag: the digest is checked against the manifest separately).
    #[default]
    MatchRepoDigestOrExact,
    /// Identical references (tag and digest).
    MatchExact,
    /// Same repository, any tag.
    MatchRepository,
    /// The signature must name exactly this reference, whatever the image is called.
    ExactReference(Ident),
    /// The signature must name this repository, whatever the image is called.
    ExactRepository(String),
    /// Rewrite the image's name (`prefix` → `signed_prefix`) and then
    /// apply [`SignedIdentity::MatchRepoDigestOrExact`].
    RemapIdentity {
        prefix: String,
        signed_prefix: String,
    },
}

impl SignedIdentity {
    /// `Ok` when a signature claiming `signed` may vouch for an image known as
    /// `intended`; else a one-line reason.
    pub fn check(&self, intended: Option<&Reference>, signed: &str) -> Result<(), String> {
        let signed = Ident::parse(signed)
            .map_err(|e| format!("signature identity {signed:?} is not a docker reference: {e}"))?;
        let need_intended = || {
            intended.map(Ident::from).ok_or_else(|| {
                "the image has no docker reference to match the signature identity against"
                    .to_string()
            })
        };
        let mismatch =
            |what: &dyn std::fmt::Display| Err(format!("identity {signed} does not match {what}"));
        match self {
            SignedIdentity::MatchExact => {
                let i = need_intended()?;
                if i.is_name_only() || signed.is_name_only() || i != signed {
                    return mismatch(&i);
                }
                Ok(())
            }
            SignedIdentity::MatchRepoDigestOrExact => {
                repo_digest_or_exact(&need_intended()?, &signed)
                    .map_err(|i| format!("identity {signed} does not match {i}"))
            }
            SignedIdentity::MatchRepository => {
                let i = need_intended()?;
                if i.name != signed.name {
                    return mismatch(&i.name);
                }
                Ok(())
            }
            SignedIdentity::ExactReference(want) => {
                if signed.is_name_only() || &signed != want {
                    return mismatch(want);
                }
                Ok(())
            }
            SignedIdentity::ExactRepository(want) => {
                if &signed.name != want {
                    return mismatch(want);
                }
                Ok(())
            }
            SignedIdentity::RemapIdentity {
                prefix,
                signed_prefix,
            } => {
                let mut i = need_intended()?;
                if let Some(rest) = i.name.strip_prefix(prefix.as_str())
                    && (rest.is_empty() || rest.starts_with('/') || prefix.ends_with('/'))
                {
                    i.name = format!("{signed_prefix}{rest}");
                }
                repo_digest_or_exact(&i, &signed)
                    .map_err(|i| format!("identity {signed} does not match {i} (remapped)"))
            }
        }
    }
}

fn repo_digest_or_exact(i: &Ident, signed: &Ident) -> Result<(), Ident> {
    let ok = if i.tag.is_some() {
        i == signed
    } else if i.digest.is_some() {
        i.name == signed.name
    } else {
        false
    };
    if ok { Ok(()) } else { Err(i.clone()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str) -> Reference {
        reference::parse(s).unwrap()
    }

    #[test]
    fn parse_keeps_name_only() {
        let i = Ident::parse("busybox").unwrap();
        assert_eq!(i.to_string(), "docker.io/library/busybox");
        assert!(i.is_name_only());
        let i = Ident::parse("localhost:5000/a/b").unwrap();
        assert!(i.is_name_only(), "{i:?}");
        assert_eq!(
            Ident::parse("localhost:5000/a/b:v1").unwrap().to_string(),
            "localhost:5000/a/b:v1"
        );
    }

    #[test]
    fn repo_digest_or_exact_rules() {
        let d = "sha256:".to_string() + &"a".repeat(64);
        let rule = SignedIdentity::MatchRepoDigestOrExact;
        assert!(
            rule.check(Some(&r("busybox:1")), "docker.io/library/busybox:1")
                .is_ok()
        );
        let e = rule
            .check(Some(&r("busybox:1")), "docker.io/library/busybox:2")
            .unwrap_err();
        assert_eq!(
            e,
            "identity docker.io/library/busybox:2 does not match docker.io/library/busybox:1"
        );
        assert!(
            rule.check(Some(&r("busybox:1")), "docker.io/library/busybox")
                .is_err()
        );
        assert!(
            rule.check(Some(&r(&format!("busybox@{d}"))), "busybox:9")
                .is_ok()
        );
        assert!(
            rule.check(Some(&r(&format!("busybox@{d}"))), "other:9")
                .is_err()
        );
        assert!(rule.check(None, "busybox:9").is_err());
    }

    #[test]
    fn other_rules() {
        let i = r("quay.io/a/b:1");
        assert!(
            SignedIdentity::MatchExact
                .check(Some(&i), "quay.io/a/b:1")
                .is_ok()
        );
        assert!(
            SignedIdentity::MatchExact
                .check(Some(&i), "quay.io/a/b")
                .is_err()
        );
        assert!(
            SignedIdentity::MatchRepository
                .check(Some(&i), "quay.io/a/b:7")
                .is_ok()
        );
        assert!(
            SignedIdentity::MatchRepository
                .check(Some(&i), "quay.io/a/c:1")
                .is_err()
        );
        let exact = SignedIdentity::ExactReference(Ident::parse("x.io/p:1").unwrap());
        assert!(exact.check(None, "x.io/p:1").is_ok());
        assert!(exact.check(Some(&i), "x.io/p:2").is_err());
        let repo = SignedIdentity::ExactRepository("x.io/p".into());
        assert!(repo.check(Some(&i), "x.io/p:2").is_ok());
        let remap = SignedIdentity::RemapIdentity {
            prefix: "mirror.local/quay".into(),
            signed_prefix: "quay.io".into(),
        };
        assert!(
            remap
                .check(Some(&r("mirror.local/quay/a/b:1")), "quay.io/a/b:1")
                .is_ok()
        );
        assert!(
            remap
                .check(Some(&r("mirror.local/quayx/a:1")), "quay.io/a/b:1")
                .is_err()
        );
    }
}
