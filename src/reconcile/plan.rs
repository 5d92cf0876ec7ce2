//! Plan: which tags and platforms a reconcile moves. Pure: the source's tag
//! list and the spec in, a [`MirrorPlan`] out; no I/O.
//!
//! Selection rules (documented on `TagSelector` too):
//! - `names` are taken as listed (a name the source lacks fails that tag);
//! - `pattern` and `semver` filter the source tag list (both must match when
//!   both are given);
//! - `latest: N` keeps the N highest of the filtered tags, or of all tags when
//!   it is the only filter; "highest" is by semver, tags that are not versions
//!   rank below every version and among themselves lexically;
//! - the result lists `names` first (in spec order), then the filtered tags
//!   highest first, without duplicates.

use std::cmp::Ordering;

use regex::Regex;
use semver::{Version, VersionReq};

use crate::api::v1alpha1::TagSelector;
use crate::copy::MultiArch;
use crate::manifest::Platform;

use super::Error;

/// What one `ImageMirror` reconcile copies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirrorPlan {
    /// Tags to copy, in status order.
    pub tags: Vec<String>,
    /// Listed in `names` but absent from the source's tag list.
    pub missing: Vec<String>,
    pub multi_arch: MultiArch,
}

/// A parsed, checked tag selector.
#[derive(Debug, Clone)]
pub struct Selector {
    names: Vec<String>,
    pattern: Option<Regex>,
    semver: Option<Vec<VersionReq>>,
    latest: Option<usize>,
}

impl Selector {
    /// Check a selector; errors name the field and say what to fix.
    pub fn new(sel: &TagSelector) -> Result<Self, Error> {
        let names = sel.names.clone().unwrap_or_default();
        for n in &names {
            if !crate::reference::is_valid_tag(n) {
                return Err(Error::Spec(format!(
                    "spec.tags.names: {n:?} is not a valid tag (want [A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}})"
                )));
            }
        }
        let pattern = sel
            .pattern
            .as_deref()
            .map(|p| {
                Regex::new(p).map_err(|e| {
                    Error::Spec(format!("spec.tags.pattern: invalid regex {p:?}: {e}"))
                })
            })
            .transpose()?;
        let semver = sel.semver.as_deref().map(parse_range).transpose()?;
        let latest = match sel.latest {
            None => None,
            Some(n) if n >= 1 => Some(n as usize),
            Some(n) => {
                return Err(Error::Spec(format!(
                    "spec.tags.latest: {n} must be at least 1"
                )));
            }
        };
        let s = Selector {
            names,
            pattern,
            semver,
            latest,
        };
        if s.names.is_empty() && !s.has_filter() {
            return Err(Error::Spec(
                "spec.tags: give at least one selector (names, pattern, semver or latest)".into(),
            ));
        }
        Ok(s)
    }

    /// Whether a listed tag can matter to this selector: named, matched by
    /// the filters, or an attachment tag (`sha256-…`: cosign signatures,
    /// attestations, SBOMs) that the copy looks up. Tag listings keep only
    /// these, so a registry listing millions of tags costs no memory.
    pub fn keeps(&self, tag: &str) -> bool {
        crate::reference::is_valid_tag(tag)
            && (self.names.iter().any(|n| n == tag)
                || (self.has_filter() && self.matches(tag))
                || tag.starts_with("sha256-"))
    }

    /// True when the source's tag list is needed (anything beyond `names`).
    pub fn needs_tag_list(&self) -> bool {
        self.has_filter()
    }

    fn has_filter(&self) -> bool {
        self.pattern.is_some() || self.semver.is_some() || self.latest.is_some()
    }

    fn matches(&self, tag: &str) -> bool {
        if let Some(re) = &self.pattern
            && !re.is_match(tag)
        {
            return false;
        }
        if let Some(reqs) = &self.semver {
            match lenient_version(tag) {
                Some(v) => reqs.iter().any(|r| r.matches(&v)),
                None => false,
            }
        } else {
            true
        }
    }

    /// Choose tags. `available` is the source's tag list, or `None` when it
    /// was not fetched (names only); names are then assumed present.
    pub fn select(&self, available: Option<&[String]>) -> (Vec<String>, Vec<String>) {
        let mut out: Vec<String> = Vec::new();
        let mut missing = Vec::new();
        for n in &self.names {
            if out.contains(n) {
                continue;
            }
            match available {
                Some(all) if !all.contains(n) => missing.push(n.clone()),
                _ => out.push(n.clone()),
            }
        }
        if self.has_filter() {
            let mut filtered: Vec<&String> = available
                .unwrap_or_default()
                .iter()
                .filter(|t| self.matches(t))
                .collect();
            filtered.sort_by(|a, b| compare_tags(b, a));
            filtered.dedup();
            if let Some(n) = self.latest {
                filtered.truncate(n);
            }
            for t in filtered {
                if !out.contains(t) {
                    out.push(t.clone());
                }
            }
        }
        (out, missing)
    }
}

/// Plan a mirror: the tags to copy and which platforms.
pub fn plan_mirror(
    selector: &Selector,
    available: Option<&[String]>,
    multi_arch: MultiArch,
) -> Result<MirrorPlan, Error> {
    let (tags, missing) = selector.select(available);
    Ok(MirrorPlan {
        tags,
        missing,
        multi_arch,
    })
}

/// `spec.platforms` as the copy engine wants it: empty means the whole index.
pub fn multi_arch(platforms: &[String]) -> Result<MultiArch, Error> {
    if platforms.is_empty() {
        return Ok(MultiArch::All);
    }
    let parsed = platforms
        .iter()
        .map(|p| Platform::parse(p).map_err(|e| Error::Spec(format!("spec.platforms: {e}"))))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(MultiArch::Platforms(parsed))
}

/// Order tags by version: semver-like tags by version (then lexically, so
/// `1.27` and `1.27.0` have a fixed order), every version above every
/// non-version, non-versions lexically.
pub fn compare_tags(a: &str, b: &str) -> Ordering {
    match (lenient_version(a), lenient_version(b)) {
        (Some(va), Some(vb)) => va.cmp(&vb).then_with(|| a.cmp(b)),
        (Some(_), None) => Ordering::Greater,
        (None, Some(_)) => Ordering::Less,
        (None, None) => a.cmp(b),
    }
}

/// A tag as a version, as Flux and Masterminds/semver read them: a leading
/// `v` is ignored and missing minor/patch numbers are zero (`1.27` → 1.27.0).
pub fn lenient_version(tag: &str) -> Option<Version> {
    let t = tag.strip_prefix('v').unwrap_or(tag);
    if let Ok(v) = Version::parse(t) {
        return Some(v);
    }
    // Pad `1` / `1.27` (before any pre-release or build suffix).
    let split = t.find(['-', '+']).unwrap_or(t.len());
    let (core, rest) = t.split_at(split);
    let parts: Vec<&str> = core.split('.').collect();
    if parts.is_empty()
        || parts.len() > 2
        || parts
            .iter()
            .any(|p| p.is_empty() || !p.bytes().all(|c| c.is_ascii_digit()))
    {
        return None;
    }
    let padded = match parts.len() {
        1 => format!("{core}.0.0{rest}"),
        _ => format!("{core}.0{rest}"),
    };
    Version::parse(&padded).ok()
}

/// Parse a range in the npm / Masterminds syntax users write (`>=1.26.0 <2.0.0`,
/// `~1.27`, `^1 || ^2`) into the `semver` crate's comma-separated form.
pub fn parse_range(input: &str) -> Result<Vec<VersionReq>, Error> {
    let bad = |e: String| {
        Error::Spec(format!(
            "spec.tags.semver: invalid range {input:?}: {e} (want e.g. \">=1.26.0 <2.0.0\" or \"~1.27\")"
        ))
    };
    let mut reqs = Vec::new();
    for alt in input.split("||") {
        let mut comparators: Vec<String> = Vec::new();
        let mut pending_op = String::new();
        for tok in alt.split([' ', ',']).filter(|t| !t.is_empty()) {
            if tok
                .chars()
                .all(|c| matches!(c, '<' | '>' | '=' | '~' | '^'))
            {
                pending_op.push_str(tok);
                continue;
            }
            let tok = tok.strip_prefix('v').unwrap_or(tok);
            let tok = match tok.find(|c: char| c.is_ascii_digit() || c == '*') {
                Some(i) if tok[..i].ends_with('v') => {
                    format!("{}{}", &tok[..i - 1], &tok[i..])
                }
                _ => tok.to_string(),
            };
            comparators.push(format!("{}{}", std::mem::take(&mut pending_op), tok));
        }
        if !pending_op.is_empty() {
            return Err(bad(format!("operator {pending_op:?} without a version")));
        }
        if comparators.is_empty() {
            return Err(bad("empty range".into()));
        }
        let req = VersionReq::parse(&comparators.join(", ")).map_err(|e| bad(e.to_string()))?;
        reqs.push(req);
    }
    Ok(reqs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn sel(
        names: Option<&[&str]>,
        pattern: Option<&str>,
        semver: Option<&str>,
        latest: Option<i32>,
    ) -> Selector {
        Selector::new(&TagSelector {
            names: names.map(tags),
            pattern: pattern.map(str::to_string),
            semver: semver.map(str::to_string),
            latest,
        })
        .unwrap()
    }

    const AVAILABLE: &[&str] = &[
        "latest",
        "1.25.3",
        "1.26.0",
        "1.26.1",
        "1.27.0",
        "1.27.2",
        "1.28.0-rc.1",
        "2.0.0",
        "v1.27.5",
        "alpine",
        "1.27",
    ];

    fn pick(s: &Selector) -> (Vec<String>, Vec<String>) {
        s.select(Some(&tags(AVAILABLE)))
    }

    #[test]
    fn names_are_taken_as_listed_and_missing_ones_reported() {
        let (t, missing) = pick(&sel(
            Some(&["1.27", "latest", "nope", "1.27"]),
            None,
            None,
            None,
        ));
        assert_eq!(t, tags(&["1.27", "latest"]));
        assert_eq!(missing, tags(&["nope"]));
        // Without a tag list (names only, not listed), names pass through.
        let s = sel(Some(&["a", "b"]), None, None, None);
        assert!(!s.needs_tag_list());
        assert_eq!(s.select(None).0, tags(&["a", "b"]));
    }

    #[test]
    fn pattern_filters_the_tag_list_highest_first() {
        let (t, _) = pick(&sel(None, Some(r"^1\.2[6-9]\.[0-9]+$"), None, None));
        assert_eq!(t, tags(&["1.27.2", "1.27.0", "1.26.1", "1.26.0"]));
    }

    #[test]
    fn semver_range_with_spaces_and_v_prefix() {
        let (t, _) = pick(&sel(None, None, Some(">=1.26.0 <2.0.0"), None));
        // Pre-releases are excluded by a range without one; `v1.27.5` and `1.27` count.
        assert_eq!(
            t,
            tags(&["v1.27.5", "1.27.2", "1.27.0", "1.27", "1.26.1", "1.26.0"])
        );
        let (t, _) = pick(&sel(None, None, Some("~1.26 || >= 2"), None));
        assert_eq!(t, tags(&["2.0.0", "1.26.1", "1.26.0"]));
    }

    #[test]
    fn latest_n_over_semver_and_non_semver_tags() {
        let (t, _) = pick(&sel(None, None, None, Some(3)));
        assert_eq!(t, tags(&["2.0.0", "1.28.0-rc.1", "v1.27.5"]));
        // Non-versions rank below versions and among themselves lexically.
        let s = sel(None, None, None, Some(2));
        let (t, _) = s.select(Some(&tags(&["beta", "alpha", "gamma"])));
        assert_eq!(t, tags(&["gamma", "beta"]));
        let (t, _) = s.select(Some(&tags(&["beta", "0.1", "gamma"])));
        assert_eq!(t, tags(&["0.1", "gamma"]));
    }

    #[test]
    fn selectors_combine() {
        // pattern AND semver, then latest N, names first.
        let s = sel(
            Some(&["latest"]),
            Some(r"^[0-9.]+$"),
            Some(">=1.26.0 <2.0.0"),
            Some(2),
        );
        let (t, _) = pick(&s);
        assert_eq!(t, tags(&["latest", "1.27.2", "1.27.0"]));
        // A name also chosen by a filter appears once, where the name puts it.
        let s = sel(Some(&["1.27.0"]), None, Some("~1.27.0"), None);
        assert_eq!(pick(&s).0, tags(&["1.27.0", "v1.27.5", "1.27.2", "1.27"]));
    }

    #[test]
    fn spec_errors_name_the_field() {
        let e = Selector::new(&TagSelector::default()).unwrap_err();
        assert!(
            e.to_string().contains("spec.tags: give at least one"),
            "{e}"
        );
        let e = Selector::new(&TagSelector {
            pattern: Some("(".into()),
            ..Default::default()
        })
        .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("spec.tags.pattern: invalid regex"),
            "{e}"
        );
        let e = Selector::new(&TagSelector {
            semver: Some(">= banana".into()),
            ..Default::default()
        })
        .unwrap_err();
        assert!(
            e.to_string().starts_with("spec.tags.semver: invalid range"),
            "{e}"
        );
        let e = Selector::new(&TagSelector {
            latest: Some(0),
            ..Default::default()
        })
        .unwrap_err();
        assert!(e.to_string().contains("spec.tags.latest"), "{e}");
        let e = Selector::new(&TagSelector {
            names: Some(tags(&["bad tag"])),
            ..Default::default()
        })
        .unwrap_err();
        assert!(e.to_string().contains("spec.tags.names"), "{e}");
        assert!(e.is_spec_error());
    }

    #[test]
    fn platforms_become_multi_arch() {
        assert_eq!(multi_arch(&[]).unwrap(), MultiArch::All);
        let m = multi_arch(&tags(&["linux/amd64", "linux/arm64/v8"])).unwrap();
        let MultiArch::Platforms(p) = m else {
            panic!("{m:?}")
        };
        assert_eq!(p[1].variant.as_deref(), Some("v8"));
        let e = multi_arch(&tags(&["linux"])).unwrap_err();
        assert!(e.to_string().contains("spec.platforms"), "{e}");
    }

    #[test]
    fn lenient_versions() {
        assert_eq!(lenient_version("v1.2.3"), Some(Version::new(1, 2, 3)));
        assert_eq!(lenient_version("1.27"), Some(Version::new(1, 27, 0)));
        assert_eq!(lenient_version("2"), Some(Version::new(2, 0, 0)));
        assert!(lenient_version("1.2-rc1").is_some());
        assert_eq!(lenient_version("latest"), None);
        assert_eq!(lenient_version("1.2.3.4"), None);
    }
}
