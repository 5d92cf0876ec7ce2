//! Which keyless identities are trusted: a certificate's SAN and OIDC issuer
//! against `{issuer | issuerRegExp, subject | subjectRegExp}` rules, as
//! cosign's `--certificate-identity(-regexp)` and
//! `--certificate-oidc-issuer(-regexp)` match them (regular expressions are
//! searched, not anchored, as Go's `MatchString` does: write `^…$`).

use super::KeylessError;

/// Largest compiled regular expression accepted.
const MAX_REGEX: usize = 1 << 20;

/// One side of a rule.
#[derive(Debug, Clone)]
pub enum Matcher {
    Exact(String),
    Regex(regex::Regex),
}

impl Matcher {
    /// `exact` or `regexp` (exactly one); `what` names the field in messages.
    pub fn new(exact: Option<&str>, regexp: Option<&str>, what: &str) -> Result<Self, String> {
        match (exact, regexp) {
            (Some(e), None) if !e.is_empty() => Ok(Matcher::Exact(e.to_string())),
            (None, Some(r)) => regex::RegexBuilder::new(r)
                .size_limit(MAX_REGEX)
                .build()
                .map(Matcher::Regex)
                .map_err(|e| format!("{what}RegExp: {e}")),
            _ => Err(format!(
                "exactly one of {what} and {what}RegExp is required"
            )),
        }
    }

    pub fn matches(&self, s: &str) -> bool {
        match self {
            Matcher::Exact(e) => e == s,
            Matcher::Regex(r) => r.is_match(s),
        }
    }
}

impl std::fmt::Display for Matcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Matcher::Exact(e) => write!(f, "{e:?}"),
            Matcher::Regex(r) => write!(f, "/{}/", r.as_str()),
        }
    }
}

/// A trusted identity: both sides must match.
#[derive(Debug, Clone)]
pub struct IdentityRule {
    pub issuer: Matcher,
    pub subject: Matcher,
}

impl IdentityRule {
    /// A rule from the four optional fields (exactly one of each pair).
    pub fn new(
        issuer: Option<&str>,
        issuer_regexp: Option<&str>,
        subject: Option<&str>,
        subject_regexp: Option<&str>,
    ) -> Result<Self, String> {
        Ok(IdentityRule {
            issuer: Matcher::new(issuer, issuer_regexp, "issuer")?,
            subject: Matcher::new(subject, subject_regexp, "subject")?,
        })
    }
}

/// Check `subject` / `issuer` against `rules` (any one).
pub fn check(rules: &[IdentityRule], subject: &str, issuer: &str) -> Result<(), KeylessError> {
    if rules
        .iter()
        .any(|r| r.issuer.matches(issuer) && r.subject.matches(subject))
    {
        return Ok(());
    }
    if rules.is_empty() {
        return Err(KeylessError::Identity(format!(
            "certificate identity {subject:?} (issuer {issuer:?}): no keyless identity is trusted"
        )));
    }
    let wrong_issuer = !rules.iter().any(|r| r.issuer.matches(issuer));
    Err(KeylessError::Identity(if wrong_issuer {
        format!("certificate issuer {issuer:?} (identity {subject:?}) matches no trusted issuer")
    } else {
        format!("certificate identity {subject:?} (issuer {issuer:?}) matches no trusted subject")
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules() {
        let r = IdentityRule::new(
            Some("https://accounts.example"),
            None,
            None,
            Some("^ci@example\\.com$"),
        )
        .unwrap();
        let rules = [r];
        check(&rules, "ci@example.com", "https://accounts.example").unwrap();
        let e = check(&rules, "ci@example.org", "https://accounts.example").unwrap_err();
        assert!(e.to_string().contains("matches no trusted subject"), "{e}");
        let e = check(&rules, "ci@example.com", "https://evil.example").unwrap_err();
        assert!(e.to_string().contains("matches no trusted issuer"), "{e}");
        assert!(IdentityRule::new(Some("a"), Some("b"), Some("c"), None).is_err());
        assert!(IdentityRule::new(None, None, Some("c"), None).is_err());
        assert!(IdentityRule::new(Some("a"), None, None, Some("(")).is_err());
        assert!(check(&[], "a", "b").is_err());
    }
}
