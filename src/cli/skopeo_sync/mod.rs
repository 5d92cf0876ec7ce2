//! skopeo's own `sync`: `kubemirror sync --src docker|dir|yaml --dest
//! docker|dir [flags] SOURCE DESTINATION`, as skopeo-sync(1) of skopeo 1.9.
//! It is told apart from `sync -f FILE` (ImageMirror documents) by its
//! `--src`/`--dest` flags (see `super::skopeo_style_sync`).
//!
//! - `--src docker`: SOURCE is a repository (every tag is copied) or one
//!   image (`repo:tag`, `repo@digest`); `--src dir`: every directory under
//!   SOURCE holding a `manifest.json`; `--src yaml`: the file format of
//!   [`yaml`].
//! - Each image goes to DESTINATION joined with its name, exactly as skopeo
//!   names it ([`layout`]); a `dir:` destination directory that exists is
//!   refused, as skopeo refuses it.
//! - Each copy is the `copy` engine's, with `copy`'s progress lines; skopeo's
//!   informational log lines (`Copying image ref 1/2`, `Synced 2 images from
//!   1 sources`) go to stderr in logrus' text format, as skopeo prints them.
//! - `--dry-run` lists what would be copied and writes nothing (skopeo
//!   1.9.3 still creates the empty `dir:` destination directories).

mod layout;
mod yaml;

use std::path::PathBuf;
use std::process::ExitCode;

use super::common::{self, REGISTRY_TOKEN, SideArgs, not_supported};
use super::copy::{manifest_format, signers};
use super::progress::Display;
use super::{CliResult, GlobalArgs};
use crate::copy::{self, CopyOptions, MultiArch, SignaturePolicy};
use crate::image::{Auth, ImageReference, SystemContext};
use crate::transport;

#[derive(Debug, clap::Args)]
pub struct SkopeoSyncArgs {
    /// SOURCE transport type: docker, dir or yaml
    #[arg(short = 's', long = "src", value_name = "TRANSPORT")]
    pub src: Option<String>,
    /// DESTINATION transport type: docker or dir
    #[arg(short = 'd', long = "dest", value_name = "TRANSPORT")]
    pub dest: Option<String>,
    /// Images at DESTINATION are prefixed with the full source image path as scope
    #[arg(long)]
    pub scoped: bool,
    /// Copy all images if SOURCE-IMAGE is a list
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Run without actually copying data
    #[arg(long)]
    pub dry_run: bool,
    /// Do not abort the sync if any image copy fails
    #[arg(long)]
    pub keep_going: bool,
    /// Do not copy signatures from SOURCE images
    #[arg(long)]
    pub remove_signatures: bool,
    /// MANIFEST TYPE (oci or v2s2) to use when syncing image(s) to a destination
    #[arg(short = 'f', long, value_name = "MANIFEST-TYPE")]
    pub format: Option<String>,
    /// Preserve digests of images and lists
    #[arg(long)]
    pub preserve_digests: bool,
    /// Sign the image using a GPG key with the specified FINGERPRINT
    #[arg(long, value_name = "FINGERPRINT")]
    pub sign_by: Option<String>,
    /// Sign the image using a sigstore private key at PATH
    #[arg(long, value_name = "PATH")]
    pub sign_by_sigstore_private_key: Option<PathBuf>,
    /// File that contains a passphrase for the --sign-by key
    #[arg(long, value_name = "PATH")]
    pub sign_passphrase_file: Option<PathBuf>,
    /// The number of times to possibly retry
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub retry_times: u32,
    /// Blobs copied in parallel (per image)
    #[arg(long, short = 'j', value_name = "N", default_value_t = 8)]
    pub jobs: usize,
    /// Path of the authentication file (both sides)
    #[arg(long, value_name = "PATH")]
    pub authfile: Option<PathBuf>,

    #[command(flatten)]
    pub src_flags: common::SrcFlags,
    #[command(flatten)]
    pub dest_flags: common::DestFlags,

    #[arg(long, hide = true, value_name = "TOKEN")]
    pub src_registry_token: Option<String>,
    #[arg(long, hide = true, value_name = "TOKEN")]
    pub dest_registry_token: Option<String>,

    /// SOURCE: a repository or image (docker), a directory (dir), a YAML file (yaml)
    #[arg(value_name = "SOURCE")]
    pub source: String,
    /// DESTINATION: a registry and namespace (docker) or a directory (dir)
    #[arg(value_name = "DESTINATION")]
    pub destination: String,
}

/// skopeo's source transports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Src {
    Docker,
    Dir,
    Yaml,
}

/// skopeo's destination transports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dest {
    Docker,
    Dir,
}

/// The images of one source (skopeo's `repoDescriptor`): a repository, a
/// directory tree, or one repository of a YAML file.
struct SourceRepo {
    /// Image, and the name its destination is derived from.
    images: Vec<(Box<dyn ImageReference>, String)>,
    ctx: SystemContext,
}

impl SkopeoSyncArgs {
    fn transports(&self) -> Result<(Src, Dest), String> {
        let src = match self.src.as_deref() {
            None | Some("") => return Err("A source transport must be specified".into()),
            Some("docker") => Src::Docker,
            Some("dir") => Src::Dir,
            Some("yaml") => Src::Yaml,
            Some(t) => {
                return Err(format!(
                    "Invalid source transport {t:?}: want docker, dir or yaml"
                ));
            }
        };
        let dest = match self.dest.as_deref() {
            None | Some("") => return Err("A destination transport must be specified".into()),
            Some("docker") => Dest::Docker,
            Some("dir") => Dest::Dir,
            Some(t) => {
                return Err(format!(
                    "Invalid destination transport {t:?}: want docker or dir"
                ));
            }
        };
        if src == Src::Dir && dest == Dest::Dir {
            return Err(
                "sync from 'dir' to 'dir' not implemented, consider using rsync instead".into(),
            );
        }
        Ok((src, dest))
    }

    fn side(&self, src: bool) -> Result<SideArgs, String> {
        let (s, token, flag) = if src {
            (
                self.src_flags.side(),
                &self.src_registry_token,
                "--src-registry-token",
            )
        } else {
            (
                self.dest_flags.side(),
                &self.dest_registry_token,
                "--dest-registry-token",
            )
        };
        not_supported(flag, token.is_some(), REGISTRY_TOKEN)?;
        Ok(SideArgs {
            tls_verify: s.tls_verify,
            cert_dir: s.cert_dir,
            creds: common::creds(&s.creds, &s.username, &s.password, s.no_creds)?,
            authfile: s.authfile.or_else(|| self.authfile.clone()),
            retry_times: self.retry_times,
            no_creds: s.no_creds,
        })
    }
}

pub async fn run(args: SkopeoSyncArgs, g: &GlobalArgs) -> CliResult {
    let (src, dest) = args.transports()?;
    if args.jobs == 0 {
        return Err("--jobs must be at least 1".into());
    }
    let src_ctx = args.side(true)?.system_context(g)?;
    let dst_ctx = args.side(false)?.system_context(g)?;
    let options = CopyOptions {
        multi_arch: if args.all {
            MultiArch::All
        } else {
            MultiArch::System
        },
        jobs: args.jobs,
        signatures: if args.remove_signatures {
            SignaturePolicy::Drop
        } else {
            SignaturePolicy::Copy
        },
        policy: g.trust_policy()?,
        format: manifest_format(args.format.as_deref())?,
        preserve_digests: args.preserve_digests,
        signers: signers(
            args.sign_by.as_deref(),
            args.sign_by_sigstore_private_key.as_deref(),
            &args.sign_passphrase_file,
        )?,
        ..Default::default()
    };
    let repos = match src {
        Src::Docker => vec![docker_source(&args.source, src_ctx).await?],
        Src::Dir => vec![dir_source(&args.source, src_ctx)?],
        Src::Yaml => yaml_sources(&args.source, &src_ctx).await?,
    };
    if args.dry_run {
        log("warning", "Running in dry-run mode", &[]);
    }
    let mut synced = 0usize;
    let mut failed = false;
    for repo in &repos {
        let n = repo.images.len();
        for (i, (image, suffix)) in repo.images.iter().enumerate() {
            let target = layout::destination(&args.destination, suffix, args.scoped);
            let dst = destination_reference(&target, dest, args.dry_run)?;
            let fields = [("from", image.to_string()), ("to", dst.to_string())];
            if args.dry_run {
                log(
                    "info",
                    &format!("Would have copied image ref {}/{n}", i + 1),
                    &fields,
                );
                synced += 1;
                continue;
            }
            log("info", &format!("Copying image ref {}/{n}", i + 1), &fields);
            let progress = Display::choose(false);
            let mut opts = options.clone();
            opts.progress = progress.as_ref().map(Display::as_progress);
            let r =
                copy::copy_image(image.as_ref(), &repo.ctx, dst.as_ref(), &dst_ctx, &opts).await;
            if let Some(p) = &progress {
                p.finish();
            }
            match r {
                Ok(_) => synced += 1,
                Err(e) => {
                    let e = crate::image::one_line(&e);
                    if !args.keep_going {
                        return Err(format!("Error copying ref \"{image}\": {e}").into());
                    }
                    failed = true;
                    log(
                        "error",
                        &format!("Error copying ref \"{image}\""),
                        &[("error", e)],
                    );
                }
            }
        }
    }
    let verb = if args.dry_run {
        "Would have synced"
    } else {
        "Synced"
    };
    log(
        "info",
        &format!("{verb} {synced} images from {} sources", repos.len()),
        &[],
    );
    if failed {
        return Err("Sync failed due to previous reported error(s) for one or more images".into());
    }
    Ok(ExitCode::SUCCESS)
}

/// The destination image for `target` (skopeo's `destinationReference`):
/// `docker://target`, or a new directory `target` (an existing one is
/// refused; not created on a dry run).
fn destination_reference(
    target: &str,
    dest: Dest,
    dry_run: bool,
) -> Result<Box<dyn ImageReference>, String> {
    match dest {
        Dest::Docker => {
            transport::parse_image_name(&format!("docker://{target}")).map_err(|e| e.to_string())
        }
        Dest::Dir => {
            let p = std::path::Path::new(target);
            match std::fs::symlink_metadata(p) {
                Ok(_) => {
                    return Err(format!(
                        "Refusing to overwrite destination directory \"{target}\""
                    ));
                }
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(format!("Destination directory could not be used: {e}"));
                }
                Err(_) => {}
            }
            if !dry_run {
                std::fs::create_dir_all(p)
                    .map_err(|e| format!("Error creating directory for image {target}: {e}"))?;
            }
            transport::parse_image_name(&format!("dir:{target}")).map_err(|e| e.to_string())
        }
    }
}

/// Whether a docker reference as written names a repository only (no tag, no digest).
fn is_name_only(s: &str) -> bool {
    !s.contains('@') && !s.rsplit('/').next().is_some_and(|l| l.contains(':'))
}

/// The suffix of a registry image: its full docker reference.
fn docker_suffix(r: &dyn ImageReference) -> String {
    r.docker_reference()
        .map(|d| d.to_string())
        .unwrap_or_default()
}

/// `--src docker SOURCE`: one image, or every tag of a repository.
async fn docker_source(source: &str, ctx: SystemContext) -> Result<SourceRepo, String> {
    let tagged = !is_name_only(source);
    let reference = crate::reference::parse(source).map_err(|e| {
        format!("Cannot obtain a valid image reference for transport \"docker\" and reference {source:?}: {e}")
    })?;
    log(
        "info",
        "Tag presence check",
        &[("imagename", source.into()), ("tagged", tagged.to_string())],
    );
    let images = if tagged {
        let r = transport::parse_image_name(&format!("docker://{reference}"))
            .map_err(|e| e.to_string())?;
        let s = docker_suffix(r.as_ref());
        vec![(r, s)]
    } else {
        let name = crate::reference::name(&reference);
        let images = repository_tags(&name, &ctx).await?;
        if images.is_empty() {
            return Err(format!("No images to sync found in {source:?}"));
        }
        images
    };
    Ok(SourceRepo { images, ctx })
}

/// Every tag of repository `name` (`host/path`) as an image.
async fn repository_tags(
    name: &str,
    ctx: &SystemContext,
) -> Result<Vec<(Box<dyn ImageReference>, String)>, String> {
    log("info", "Getting tags", &[("image", name.into())]);
    let repo =
        transport::parse_image_name(&format!("docker://{name}")).map_err(|e| e.to_string())?;
    let tags = repo.list_tags(ctx).await.map_err(|e| {
        format!(
            "Error determining repository tags for image {name}: {}",
            crate::image::one_line(&e)
        )
    })?;
    let mut out = Vec::with_capacity(tags.len());
    for tag in tags {
        match repo.with_tag(&tag) {
            Ok(r) => {
                let s = docker_suffix(r.as_ref());
                out.push((r, s));
            }
            Err(e) => log(
                "error",
                &format!("Error creating a tagged reference from registry tag list: {e}"),
                &[("repo", name.into()), ("tag", tag)],
            ),
        }
    }
    Ok(out)
}

/// `--src dir SOURCE`: every image directory under SOURCE.
fn dir_source(source: &str, ctx: SystemContext) -> Result<SourceRepo, String> {
    let found = layout::images_in_dir(std::path::Path::new(source))?;
    let mut images = Vec::with_capacity(found.len());
    for dir in found {
        // skopeo names a `dir:` image by its fully resolved path.
        let resolved =
            std::fs::canonicalize(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let resolved = resolved
            .to_str()
            .ok_or_else(|| format!("{}: not a UTF-8 path", resolved.display()))?
            .to_string();
        let suffix = layout::dir_suffix(&resolved, source);
        let r =
            transport::parse_image_name(&format!("dir:{resolved}")).map_err(|e| e.to_string())?;
        images.push((r, suffix));
    }
    Ok(SourceRepo { images, ctx })
}

/// `--src yaml FILE`: one source per repository of the file. As skopeo, a
/// repository whose tags cannot be listed is logged and skipped.
async fn yaml_sources(file: &str, base: &SystemContext) -> Result<Vec<SourceRepo>, String> {
    use std::io::Read;
    let f = std::fs::File::open(file).map_err(|e| format!("reading {file}: {e}"))?;
    let mut text = String::new();
    f.take(yaml::MAX_FILE_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| format!("reading {file}: {e}"))?;
    if text.len() as u64 > yaml::MAX_FILE_BYTES {
        return Err(format!(
            "{file}: larger than {} MiB",
            yaml::MAX_FILE_BYTES >> 20
        ));
    }
    let registries = yaml::parse(&text).map_err(|e| format!("Error parsing {file}: {e}"))?;
    let mut out = Vec::new();
    for (registry, cfg) in registries {
        let mut ctx = base.clone();
        // skopeo: a registry's settings replace the --src-… ones.
        ctx.tls_verify = cfg.tls_verify;
        ctx.cert_dir = cfg.cert_dir.as_ref().map(PathBuf::from);
        if let Some(c) = &cfg.credentials
            && (!c.username.is_empty() || !c.password.is_empty())
        {
            ctx.credentials = Some(Auth::Basic {
                username: c.username.clone(),
                password: crate::image::Secret::new(c.password.clone()),
            });
        }
        for (repo, refs) in &cfg.images {
            let fields = [("registry", registry.clone()), ("repo", repo.clone())];
            log("info", "Processing repo", &fields);
            let name = match crate::reference::parse(&format!("{registry}/{repo}")) {
                Ok(r) if is_name_only(repo) => crate::reference::name(&r),
                Ok(_) => {
                    log("error", "Error parsing repository name, skipping", &fields);
                    continue;
                }
                Err(e) => {
                    log("error", "Error parsing repository name, skipping", &fields);
                    log("error", &e.to_string(), &[]);
                    continue;
                }
            };
            let images = if refs.is_empty() {
                log("info", "Querying registry for image tags", &fields);
                match repository_tags(&name, &ctx).await {
                    Ok(i) => i,
                    Err(e) => {
                        log("error", "Error processing repo, skipping", &fields);
                        log("error", &e, &[]);
                        continue;
                    }
                }
            } else {
                let mut images = Vec::new();
                for r in refs {
                    let sep = if crate::digest::parse(r).is_ok() {
                        "@"
                    } else {
                        ":"
                    };
                    match transport::parse_image_name(&format!("docker://{name}{sep}{r}")) {
                        Ok(i) => {
                            let s = docker_suffix(i.as_ref());
                            images.push((i, s));
                        }
                        Err(e) => {
                            log(
                                "error",
                                "Error parsing ref, skipping",
                                &[("ref", r.clone())],
                            );
                            log("error", &e.to_string(), &[]);
                        }
                    }
                }
                images
            };
            if images.is_empty() {
                log("warning", "No refs to sync found", &fields);
                continue;
            }
            out.push(SourceRepo {
                images,
                ctx: ctx.clone(),
            });
        }
        for (repo, pattern) in &cfg.images_by_tag_regex {
            let fields = [("registry", registry.clone()), ("repo", repo.clone())];
            log("info", "Processing repo", &fields);
            let name = match crate::reference::parse(&format!("{registry}/{repo}")) {
                Ok(r) if is_name_only(repo) => crate::reference::name(&r),
                _ => {
                    log("error", "Error parsing repository name, skipping", &fields);
                    continue;
                }
            };
            let re = match regex::Regex::new(pattern) {
                Ok(re) => re,
                Err(e) => {
                    log("error", "Error parsing regex, skipping", &fields);
                    log("error", &e.to_string(), &[]);
                    continue;
                }
            };
            log("info", "Querying registry for image tags", &fields);
            let all = match repository_tags(&name, &ctx).await {
                Ok(i) => i,
                Err(e) => {
                    log("error", "Error processing repo, skipping", &fields);
                    log("error", &e, &[]);
                    continue;
                }
            };
            log(
                "info",
                &format!("Start filtering using the regular expression: {pattern}"),
                &fields,
            );
            let images: Vec<_> = all
                .into_iter()
                .filter(|(r, _)| {
                    r.docker_reference()
                        .and_then(|d| d.tag().map(|t| re.is_match(t)))
                        .unwrap_or(false)
                })
                .collect();
            if images.is_empty() {
                log("warning", "No refs to sync found", &fields);
                continue;
            }
            out.push(SourceRepo {
                images,
                ctx: ctx.clone(),
            });
        }
    }
    Ok(out)
}

/// One log line on stderr in logrus' text format, as skopeo prints its
/// `sync` progress: `time="…" level=info msg="…" key=value …`.
fn log(level: &str, msg: &str, fields: &[(&str, String)]) {
    eprintln!("{}", log_line(level, msg, fields));
}

fn log_line(level: &str, msg: &str, fields: &[(&str, String)]) -> String {
    let now = jiff::Timestamp::now()
        .round(jiff::Unit::Second)
        .unwrap_or_else(|_| jiff::Timestamp::now());
    let mut line = format!(
        "time=\"{}\" level={level} msg={}",
        now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        logrus_value(msg)
    );
    // logrus sorts the fields by key.
    let mut fields: Vec<_> = fields.iter().collect();
    fields.sort_by_key(|(k, _)| *k);
    for (k, v) in fields {
        line.push_str(&format!(" {k}={}", logrus_value(v)));
    }
    line
}

/// logrus quotes a value unless every character is in `[A-Za-z0-9-._/@^+]`.
fn logrus_value(v: &str) -> String {
    let plain = !v.is_empty()
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._/@^+".contains(c));
    if plain {
        v.to_string()
    } else {
        format!("{v:?}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logrus_text_format() {
        let l = log_line(
            "info",
            "Copying image ref 1/2",
            &[
                ("to", "dir:out/app:v1".into()),
                ("from", "docker://h:1/ns/app:v1".into()),
            ],
        );
        assert!(l.starts_with("time=\""), "{l}");
        assert!(
            l.ends_with(
                " level=info msg=\"Copying image ref 1/2\" from=\"docker://h:1/ns/app:v1\" to=\"dir:out/app:v1\""
            ),
            "{l}"
        );
        assert_eq!(logrus_value("ns/app"), "ns/app");
        assert_eq!(logrus_value("false"), "false");
    }

    #[test]
    fn name_only() {
        assert!(is_name_only("127.0.0.1:5000/ns/app"));
        assert!(!is_name_only("127.0.0.1:5000/ns/app:v1"));
        assert!(!is_name_only("app@sha256:00"));
        assert!(is_name_only("busybox"));
    }
}
