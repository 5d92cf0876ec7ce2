//! Where skopeo's `sync` puts each image, computed as skopeo 1.9 does
//! (`cmd/skopeo/sync.go`) so that a destination laid out by skopeo is
//! reused as is, and which `dir:` images a `--src dir` tree holds.
//!
//! - The *suffix* of a registry image is its full docker reference
//!   (`host/ns/app:tag`, `host/ns/app@sha256:…`); of a `dir:` image its
//!   resolved path less the source argument as written (the source's base
//!   name when nothing is left).
//! - Without `--scoped` only the suffix's last path element is kept
//!   (`app:tag`); the destination is `path.Join(DESTINATION, suffix)`.
//!
//! Go's `path.Base` / `path.Join` (lexical, `/`-separated) are written out
//! here because their exact results name directories and repositories.

use std::path::{Path, PathBuf};

/// Directories a `--src dir` walk enters at most (a loop of bind mounts or a
/// huge tree ends with an error, not a hang).
pub const MAX_WALK_DIRS: usize = 100_000;

/// Go's `path.Clean`.
pub fn go_clean(p: &str) -> String {
    if p.is_empty() {
        return ".".into();
    }
    let rooted = p.starts_with('/');
    let mut out: Vec<&str> = Vec::new();
    for part in p.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if out.last().is_some_and(|l| *l != "..") {
                    out.pop();
                } else if !rooted {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    let joined = out.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

/// Go's `path.Base`.
pub fn go_base(p: &str) -> String {
    if p.is_empty() {
        return ".".into();
    }
    let t = p.trim_end_matches('/');
    if t.is_empty() {
        return "/".into();
    }
    t.rsplit('/').next().unwrap_or(t).to_string()
}

/// Go's `path.Join` of two elements.
pub fn go_join(a: &str, b: &str) -> String {
    match (a.is_empty(), b.is_empty()) {
        (true, true) => String::new(),
        (true, false) => go_clean(b),
        (false, true) => go_clean(a),
        (false, false) => go_clean(&format!("{a}/{b}")),
    }
}

/// The destination path (registry prefix or directory) of one image.
pub fn destination(dest: &str, suffix: &str, scoped: bool) -> String {
    let suffix = if scoped {
        suffix.to_string()
    } else {
        go_base(suffix)
    };
    go_join(dest, &suffix)
}

/// The suffix of a `dir:` image found under the `--src dir` argument `base`
/// (as written): its resolved path without `base`, else `base`'s base name.
pub fn dir_suffix(resolved: &str, base: &str) -> String {
    let s = resolved.strip_prefix(base).unwrap_or(resolved);
    if s.is_empty() {
        go_base(base)
    } else {
        s.to_string()
    }
}

/// Every directory under `root` (itself included) that holds a
/// `manifest.json` file, in lexical walk order; below such a directory
/// nothing more is looked at. Symbolic links are not followed (as Go's
/// `filepath.WalkDir`).
pub fn images_in_dir(root: &Path) -> Result<Vec<PathBuf>, String> {
    let meta = std::fs::metadata(root).map_err(|e| format!("{}: {e}", root.display()))?;
    if !meta.is_dir() {
        return Err(format!("{}: not a directory", root.display()));
    }
    let mut found = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    let mut seen = 0usize;
    while let Some(dir) = stack.pop() {
        seen += 1;
        if seen > MAX_WALK_DIRS {
            return Err(format!(
                "{}: more than {MAX_WALK_DIRS} directories; name a smaller tree",
                root.display()
            ));
        }
        let mut entries: Vec<(String, std::fs::FileType)> = std::fs::read_dir(&dir)
            .map_err(|e| format!("{}: {e}", dir.display()))?
            .map(|e| {
                let e = e.map_err(|e| format!("{}: {e}", dir.display()))?;
                let t = e
                    .file_type()
                    .map_err(|e| format!("{}: {e}", dir.display()))?;
                Ok((e.file_name().to_string_lossy().into_owned(), t))
            })
            .collect::<Result<_, String>>()?;
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        if entries
            .iter()
            .any(|(n, t)| n == "manifest.json" && !t.is_dir())
        {
            found.push(dir);
            continue;
        }
        // Reverse so that the stack pops in lexical order.
        for (name, t) in entries.into_iter().rev() {
            if t.is_dir() {
                stack.push(dir.join(name));
            }
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_path_functions() {
        assert_eq!(go_clean("a//b/./c/.."), "a/b");
        assert_eq!(go_clean("/../a"), "/a");
        assert_eq!(go_clean("../a"), "../a");
        assert_eq!(go_clean(""), ".");
        assert_eq!(go_base("a/b/"), "b");
        assert_eq!(go_base("///"), "/");
        assert_eq!(go_base("127.0.0.1:5000/ns/app:v1"), "app:v1");
        assert_eq!(go_join("out", "/app:v1"), "out/app:v1");
        assert_eq!(go_join("", "x"), "x");
    }

    #[test]
    fn destinations_as_skopeo_names_them() {
        let r = "127.0.0.1:5000/ns/app:v1";
        assert_eq!(destination("out", r, false), "out/app:v1");
        assert_eq!(destination("out/", r, true), "out/127.0.0.1:5000/ns/app:v1");
        let d = "127.0.0.1:5000/ns/app@sha256:00";
        assert_eq!(destination("reg/x", d, false), "reg/x/app@sha256:00");
        assert_eq!(dir_suffix("/tmp/s/a/app:v1", "/tmp/s"), "/a/app:v1");
        assert_eq!(dir_suffix("/tmp/s", "/tmp/s"), "s");
        assert_eq!(dir_suffix("/tmp/s/app", "s"), "/tmp/s/app");
    }

    #[test]
    fn walk_finds_image_directories_in_order() {
        let t = tempfile::tempdir().unwrap();
        for d in ["b/app:v1", "a/x:1", "a/x:1/nested", "c/empty"] {
            std::fs::create_dir_all(t.path().join(d)).unwrap();
        }
        for d in ["b/app:v1", "a/x:1", "a/x:1/nested"] {
            std::fs::write(t.path().join(d).join("manifest.json"), "{}").unwrap();
        }
        let found = images_in_dir(t.path()).unwrap();
        let rel: Vec<_> = found
            .iter()
            .map(|p| {
                p.strip_prefix(t.path())
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        assert_eq!(rel, ["a/x:1", "b/app:v1"]);
        assert!(images_in_dir(&t.path().join("nope")).is_err());
    }
}
