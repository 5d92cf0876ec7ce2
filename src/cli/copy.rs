//! `kubemirror copy [flags] SRC DST` with skopeo 1.9's flags (and its hidden
//! aliases `--screds`, `--dcreds`, `--tls-verify`), plus `--jobs`,
//! `--platform`, `--report`, `--copy-attachments`, `--no-incremental`.
//! A skopeo flag kubemirror does not implement is accepted by the parser
//! and refused with a message saying why (see [`CopyArgs::refused`]).
//! Exit 0 only when the destination holds the image.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::ArgAction;

use super::common::{self, DAEMON, REGISTRY_TOKEN, SideArgs, not_supported};
use super::progress::Display;
use super::sigstore_key::{GpgSigner, SigstoreSigner};
use super::standalone::keyring_signing_key;
use super::{CliResult, GlobalArgs};
use crate::copy::compress::{Algorithm, LayerCompression};
use crate::copy::{self, CopyOptions, ManifestFormat, MultiArch, SignaturePolicy, Signer};
use crate::manifest::Platform;
use crate::transport;

#[derive(Debug, clap::Args)]
pub struct CopyArgs {
    /// Copy every image of a multi-platform index (same as --multi-arch=all)
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Which images of an index to copy: system, all, index-only
    #[arg(long, value_name = "LIST", value_parser = ["system", "all", "index-only"])]
    pub multi_arch: Option<String>,
    /// Copy only this platform of an index, os/arch[/variant] (repeatable); the destination index lists only these
    #[arg(long = "platform", value_name = "OS/ARCH[/VARIANT]")]
    pub platforms: Vec<String>,
    /// Manifest type to write: oci or v2s2 (default: the source's, converted only where the destination needs it)
    #[arg(short = 'f', long, value_name = "MANIFEST-TYPE")]
    pub format: Option<String>,
    /// Fail rather than write any manifest with another digest than the source's
    #[arg(long)]
    pub preserve_digests: bool,
    /// Do not copy signatures
    #[arg(long)]
    pub remove_signatures: bool,
    /// Blobs copied in parallel
    #[arg(long, short = 'j', value_name = "N", default_value_t = 8)]
    pub jobs: usize,
    /// Same as --jobs (skopeo 1.14's name; kubemirror copies the blobs of every image of a list in one pool)
    #[arg(long, value_name = "N")]
    pub image_parallel_copies: Option<usize>,
    /// Number of times to retry a failed operation
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub retry_times: u32,
    /// Path of the authentication file (both sides)
    #[arg(long, value_name = "PATH")]
    pub authfile: Option<PathBuf>,
    /// Suppress output information when copying images
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Write the digest of the copied manifest to this file
    #[arg(long, value_name = "PATH")]
    pub digestfile: Option<PathBuf>,
    /// Print the copy report (bytes, blobs copied / skipped / mounted) as JSON on stdout (no progress lines then)
    #[arg(long)]
    pub report: bool,
    /// Copy even when the destination already holds the same manifest
    #[arg(long)]
    pub no_incremental: bool,
    /// Also copy the attached artifacts, registry to registry: cosign .sig/.att/.sbom tags, and OCI 1.1 referrers (the destination's referrers tag merged)
    #[arg(long)]
    pub copy_attachments: bool,

    /// Sign the image with the GnuPG key FINGERPRINT (a simple signature, from the GnuPG keyring)
    #[arg(long, value_name = "FINGERPRINT")]
    pub sign_by: Option<String>,
    /// Sign the image with the sigstore private key at PATH (cosign's encrypted format)
    #[arg(long, value_name = "PATH")]
    pub sign_by_sigstore_private_key: Option<PathBuf>,
    /// Read the passphrase of the signing key from PATH (first line)
    #[arg(long, value_name = "PATH")]
    pub sign_passphrase_file: Option<PathBuf>,
    /// The name new signatures claim (default: the destination's docker reference)
    #[arg(long, value_name = "REFERENCE")]
    pub sign_identity: Option<String>,

    #[command(flatten)]
    pub src_flags: common::SrcFlags,
    #[command(flatten)]
    pub dest_flags: common::DestFlags,
    /// Accepted: kubemirror compresses layers only when asked (--dest-compress), so uncompressed layers stay uncompressed in oci:
    #[arg(long)]
    pub dest_oci_accept_uncompressed_layers: bool,
    /// Compress uncompressed layers at the destination (gzip, or --dest-compress-format)
    #[arg(long)]
    pub dest_compress: bool,
    /// Decompress every layer at the destination
    #[arg(long)]
    pub dest_decompress: bool,
    /// Compress every layer at the destination with FORMAT: gzip or zstd (layers in another format are recompressed)
    #[arg(long, value_name = "FORMAT")]
    pub dest_compress_format: Option<String>,
    /// Compression LEVEL (gzip 0-9, zstd 1-19) when layers are compressed
    #[arg(long, value_name = "LEVEL")]
    pub dest_compress_level: Option<i32>,
    /// Accepted: kubemirror always asks the registry for each blob before uploading it
    #[arg(long)]
    pub dest_precompute_digests: bool,

    /// Deprecated (skopeo's): --src-tls-verify and --dest-tls-verify at once
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true", action = ArgAction::Set, hide = true)]
    pub tls_verify: Option<bool>,

    // skopeo flags kubemirror refuses, with a message (see `refused`).
    #[arg(long, hide = true, value_name = "TOKEN")]
    pub src_registry_token: Option<String>,
    #[arg(long, hide = true, value_name = "TOKEN")]
    pub dest_registry_token: Option<String>,
    /// Directory to use to share blobs across OCI repositories (oci: source)
    #[arg(long, value_name = "DIRECTORY")]
    pub src_shared_blob_dir: Option<PathBuf>,
    /// Directory to use to share blobs across OCI repositories (oci: destination)
    #[arg(long, value_name = "DIRECTORY")]
    pub dest_shared_blob_dir: Option<PathBuf>,
    #[arg(long, hide = true, value_name = "HOST")]
    pub src_daemon_host: Option<String>,
    #[arg(long, hide = true, value_name = "HOST")]
    pub dest_daemon_host: Option<String>,
    /// Additional tags (NAME:TAG) to write for the image (docker-archive: destinations; ignored elsewhere, as skopeo does)
    #[arg(long, value_name = "TAG")]
    pub additional_tag: Vec<String>,
    #[arg(long, hide = true, value_name = "KEY")]
    pub encryption_key: Vec<String>,
    #[arg(long, hide = true, value_name = "KEY")]
    pub decryption_key: Vec<String>,
    #[arg(long, hide = true, value_name = "INDEX")]
    pub encrypt_layer: Vec<i64>,

    /// Source image, e.g. docker://registry.example/app:1.0
    #[arg(value_name = "SOURCE-IMAGE")]
    pub source: String,
    /// Destination image, e.g. oci:/path:tag
    #[arg(value_name = "DESTINATION-IMAGE")]
    pub destination: String,
}

const ENCRYPTION: &str = "image encryption (ocicrypt) is not implemented";

impl CopyArgs {
    /// The skopeo flags that are accepted by the parser but not implemented:
    /// an error that names the flag and says why.
    fn refused(&self) -> Result<(), String> {
        for (flag, given, why) in [
            (
                "--src-registry-token",
                self.src_registry_token.is_some(),
                REGISTRY_TOKEN,
            ),
            (
                "--dest-registry-token",
                self.dest_registry_token.is_some(),
                REGISTRY_TOKEN,
            ),
            ("--src-daemon-host", self.src_daemon_host.is_some(), DAEMON),
            (
                "--dest-daemon-host",
                self.dest_daemon_host.is_some(),
                DAEMON,
            ),
            (
                "--encryption-key",
                !self.encryption_key.is_empty(),
                ENCRYPTION,
            ),
            (
                "--decryption-key",
                !self.decryption_key.is_empty(),
                ENCRYPTION,
            ),
            (
                "--encrypt-layer",
                !self.encrypt_layer.is_empty(),
                ENCRYPTION,
            ),
        ] {
            not_supported(flag, given, why)?;
        }
        Ok(())
    }

    /// The signers `--sign-by` / `--sign-by-sigstore-private-key` ask for.
    fn signers(&self) -> Result<Vec<Arc<dyn Signer>>, String> {
        if let Some(i) = &self.sign_identity {
            crate::reference::parse(i)
                .map_err(|e| format!("Could not parse --sign-identity {i:?}: {e}"))?;
        }
        signers(
            self.sign_by.as_deref(),
            self.sign_by_sigstore_private_key.as_deref(),
            &self.sign_passphrase_file,
        )
    }

    fn format(&self) -> Result<Option<ManifestFormat>, String> {
        manifest_format(self.format.as_deref())
    }

    fn compression(&self) -> Result<Option<LayerCompression>, String> {
        layer_compression(
            self.dest_compress,
            self.dest_decompress,
            self.dest_compress_format.as_deref(),
            self.dest_compress_level,
        )
    }

    fn multi_arch(&self) -> Result<MultiArch, String> {
        if !self.platforms.is_empty() {
            let ps = self
                .platforms
                .iter()
                .map(|p| Platform::parse(p))
                .collect::<Result<Vec<_>, _>>()?;
            return Ok(MultiArch::Platforms(ps));
        }
        Ok(match (self.all, self.multi_arch.as_deref()) {
            (true, _) | (_, Some("all")) => MultiArch::All,
            (_, Some("index-only")) => MultiArch::IndexOnly,
            _ => MultiArch::System,
        })
    }

    fn side(&self, src: bool) -> Result<SideArgs, String> {
        let s = if src {
            self.src_flags.side()
        } else {
            self.dest_flags.side()
        };
        Ok(SideArgs {
            // The side's own flag wins over the deprecated shared one, as in skopeo.
            tls_verify: s.tls_verify.or(self.tls_verify),
            cert_dir: s.cert_dir,
            creds: common::creds(&s.creds, &s.username, &s.password, s.no_creds)?,
            authfile: s.authfile.or_else(|| self.authfile.clone()),
            retry_times: self.retry_times,
            no_creds: s.no_creds,
        })
    }
}

/// `--format oci|v2s2` (`v2s1` refused with the reason), as skopeo words its errors.
pub(super) fn manifest_format(format: Option<&str>) -> Result<Option<ManifestFormat>, String> {
    match format {
        None => Ok(None),
        Some("oci") => Ok(Some(ManifestFormat::Oci)),
        Some("v2s2") => Ok(Some(ManifestFormat::DockerV2S2)),
        Some("v2s1") => Err(
            "--format v2s1 is not supported by kubemirror: Docker schema 1 is deprecated and neither read nor written; use oci or v2s2".into(),
        ),
        Some(f) => Err(format!(
            "unknown format {f:?}. Choose one of the supported formats: 'oci', 'v2s1', or 'v2s2'"
        )),
    }
}

/// The destination image; `--additional-tag`s go into a docker-archive's
/// `RepoTags` (each must be NAME:TAG, as skopeo checks) and are ignored,
/// with a warning, by other transports (skopeo ignores them silently).
fn destination(
    name: &str,
    additional: &[String],
) -> Result<Box<dyn crate::image::ImageReference>, String> {
    let mut tags = Vec::with_capacity(additional.len());
    for t in additional {
        let r = crate::reference::parse(t)
            .map_err(|e| format!("error parsing additional-tag '{t}': {e}"))?;
        let tagged =
            !t.contains('@') && t.rsplit('/').next().is_some_and(|last| last.contains(':'));
        if !tagged {
            return Err(format!("additional-tag '{t}' must be a tagged reference"));
        }
        tags.push(r);
    }
    if tags.is_empty() {
        return transport::parse_image_name(name).map_err(|e| e.to_string());
    }
    match name.strip_prefix("docker-archive:") {
        Some(rest) => Ok(Box::new(
            transport::archive::docker::DockerArchiveReference::parse(rest)
                .map_err(|e| e.to_string())?
                .with_additional_tags(tags),
        )),
        None => {
            eprintln!(
                "Warning: --additional-tag applies to docker-archive: destinations only; ignored"
            );
            transport::parse_image_name(name).map_err(|e| e.to_string())
        }
    }
}

/// `--dest-compress`, `--dest-decompress`, `--dest-compress-format`,
/// `--dest-compress-level` as one setting: a format alone compresses every
/// layer with it (recompressing others); `--dest-compress` alone gzips the
/// uncompressed ones; a level alone changes nothing (it applies to the
/// compression the others ask for).
pub(super) fn layer_compression(
    compress: bool,
    decompress: bool,
    format: Option<&str>,
    level: Option<i32>,
) -> Result<Option<LayerCompression>, String> {
    let algorithm = format.map(Algorithm::parse).transpose()?;
    if decompress && (compress || algorithm.is_some()) {
        return Err(
            "--dest-decompress cannot be used with --dest-compress or --dest-compress-format"
                .into(),
        );
    }
    if let (Some(l), Some(a)) = (level, algorithm.or(compress.then_some(Algorithm::Gzip))) {
        let range = match a {
            Algorithm::Gzip => 0..=9,
            Algorithm::Zstd => 1..=19,
        };
        if !range.contains(&l) {
            return Err(format!(
                "--dest-compress-level {l}: want {}..={} for {}",
                range.start(),
                range.end(),
                if a == Algorithm::Gzip { "gzip" } else { "zstd" }
            ));
        }
    }
    Ok(if decompress {
        Some(LayerCompression::Decompress)
    } else if compress || algorithm.is_some() {
        Some(LayerCompression::Compress {
            algorithm: algorithm.unwrap_or(Algorithm::Gzip),
            level,
            recompress: algorithm.is_some(),
        })
    } else {
        None
    })
}

/// The signers `--sign-by FINGERPRINT` and `--sign-by-sigstore-private-key
/// PATH` ask for (`copy` and skopeo-style `sync`), with the passphrase from
/// `--sign-passphrase-file` (first line).
pub(super) fn signers(
    sign_by: Option<&str>,
    sigstore_key: Option<&std::path::Path>,
    passphrase_file: &Option<PathBuf>,
) -> Result<Vec<Arc<dyn Signer>>, String> {
    let mut out: Vec<Arc<dyn Signer>> = Vec::new();
    if let Some(fpr) = sign_by {
        let (key, passphrase) = keyring_signing_key(fpr, passphrase_file)?;
        out.push(Arc::new(GpgSigner { key, passphrase }));
    }
    if let Some(path) = sigstore_key {
        let passphrase = match passphrase_file {
            Some(p) => std::fs::read_to_string(p)
                .map_err(|e| format!("reading passphrase file {}: {e}", p.display()))?
                .lines()
                .next()
                .unwrap_or("")
                .to_string(),
            None => String::new(),
        };
        out.push(Arc::new(SigstoreSigner::load(path, &passphrase)?));
    }
    Ok(out)
}

pub async fn run(args: CopyArgs, g: &GlobalArgs) -> CliResult {
    args.refused()?;
    let src = common::image_with_shared_blobs(
        &args.source,
        args.src_shared_blob_dir.as_deref(),
        "--src-shared-blob-dir",
    )?;
    let dst = match &args.dest_shared_blob_dir {
        Some(dir) => {
            common::image_with_shared_blobs(&args.destination, Some(dir), "--dest-shared-blob-dir")?
        }
        None => destination(&args.destination, &args.additional_tag)?,
    };
    let jobs = args.image_parallel_copies.unwrap_or(args.jobs);
    if jobs == 0 {
        return Err("--jobs must be at least 1".into());
    }
    if args.tls_verify.is_some() {
        eprintln!(
            "Warning: '--tls-verify' is deprecated, instead use: --src-tls-verify, --dest-tls-verify"
        );
    }
    let src_ctx = args.side(true)?.system_context(g)?;
    let dst_ctx = args.side(false)?.system_context(g)?;
    // stdout carries the report with --report: no progress lines then.
    let progress = Display::choose(args.quiet || args.report);
    let options = CopyOptions {
        multi_arch: args.multi_arch()?,
        jobs,
        signatures: if args.remove_signatures {
            SignaturePolicy::Drop
        } else {
            SignaturePolicy::Copy
        },
        incremental: !args.no_incremental,
        progress: progress.as_ref().map(Display::as_progress),
        policy: g.trust_policy()?,
        attachments: args.copy_attachments,
        source_tags: None,
        manifest: None,
        format: args.format()?,
        preserve_digests: args.preserve_digests,
        signers: args.signers()?,
        sign_identity: args.sign_identity.clone(),
        compression: args.compression()?,
    };
    // Ctrl-C drops the copy: in-flight transfers are abandoned before the
    // top-level manifest (the tag) is written, so nothing partial is tagged.
    let report = tokio::select! {
        r = copy::copy_image(src.as_ref(), &src_ctx, dst.as_ref(), &dst_ctx, &options) => r,
        _ = tokio::signal::ctrl_c() => {
            if let Some(p) = &progress {
                p.finish();
            }
            return Err(format!("interrupted: {} was not written", args.destination).into());
        }
    };
    if let Some(p) = &progress {
        p.finish();
    }
    let report = report?;
    if let Some(path) = &args.digestfile {
        std::fs::write(path, &report.destination_digest)
            .map_err(|e| format!("writing digest file {}: {e}", path.display()))?;
    }
    if args.report {
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    Ok(ExitCode::SUCCESS)
}
