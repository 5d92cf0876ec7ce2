//! `kubemirror copy [flags] SRC DST` with skopeo's flags, plus `--jobs`.
//! Exit 0 only when the destination holds the image.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::ArgAction;

use super::common::SideArgs;
use super::progress::Display;
use super::{CliResult, GlobalArgs};
use crate::copy::{self, CopyOptions, MultiArch, SignaturePolicy};
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
    /// Do not copy signatures
    #[arg(long)]
    pub remove_signatures: bool,
    /// Blobs copied in parallel
    #[arg(long, short = 'j', value_name = "N", default_value_t = 8)]
    pub jobs: usize,
    /// Number of times to retry a failed operation
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub retry_times: u32,
    /// Path of the authentication file (both sides)
    #[arg(long, value_name = "PATH")]
    pub authfile: Option<PathBuf>,
    /// Require HTTPS and verify certificates at the source (false also allows plain HTTP)
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true", action = ArgAction::Set)]
    pub src_tls_verify: Option<bool>,
    /// Use certificates at PATH (*.crt, *.cert, *.key) for the source registry
    #[arg(long, value_name = "PATH")]
    pub src_cert_dir: Option<PathBuf>,
    /// Use USERNAME[:PASSWORD] at the source
    #[arg(long, value_name = "USERNAME[:PASSWORD]")]
    pub src_creds: Option<String>,
    /// Authentication file for the source (overrides --authfile)
    #[arg(long, value_name = "PATH")]
    pub src_authfile: Option<PathBuf>,
    /// Require HTTPS and verify certificates at the destination (false also allows plain HTTP)
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true", action = ArgAction::Set)]
    pub dest_tls_verify: Option<bool>,
    /// Use certificates at PATH (*.crt, *.cert, *.key) for the destination registry
    #[arg(long, value_name = "PATH")]
    pub dest_cert_dir: Option<PathBuf>,
    /// Use USERNAME[:PASSWORD] at the destination
    #[arg(long, value_name = "USERNAME[:PASSWORD]")]
    pub dest_creds: Option<String>,
    /// Authentication file for the destination (overrides --authfile)
    #[arg(long, value_name = "PATH")]
    pub dest_authfile: Option<PathBuf>,
    /// Write the digest of the copied manifest to this file
    #[arg(long, value_name = "PATH")]
    pub digestfile: Option<PathBuf>,
    /// Print the copy report (bytes, blobs copied / skipped / mounted) as JSON on stdout (no progress lines then)
    #[arg(long)]
    pub report: bool,
    /// Suppress output information when copying images
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Copy even when the destination already holds the same manifest
    #[arg(long)]
    pub no_incremental: bool,
    /// Also copy the artifacts attached by tag (cosign .sig/.att/.sbom, OCI referrers tag), registry to registry
    #[arg(long)]
    pub copy_attachments: bool,
    /// Source image, e.g. docker://registry.example/app:1.0
    #[arg(value_name = "SOURCE-IMAGE")]
    pub source: String,
    /// Destination image, e.g. oci:/path:tag
    #[arg(value_name = "DESTINATION-IMAGE")]
    pub destination: String,
}

impl CopyArgs {
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

    fn side(&self, src: bool) -> SideArgs {
        let (tls_verify, cert_dir, creds, authfile) = if src {
            (
                self.src_tls_verify,
                &self.src_cert_dir,
                &self.src_creds,
                &self.src_authfile,
            )
        } else {
            (
                self.dest_tls_verify,
                &self.dest_cert_dir,
                &self.dest_creds,
                &self.dest_authfile,
            )
        };
        SideArgs {
            tls_verify,
            cert_dir: cert_dir.clone(),
            creds: creds.clone(),
            authfile: authfile.clone().or_else(|| self.authfile.clone()),
            retry_times: self.retry_times,
            no_creds: false,
        }
    }
}

pub async fn run(args: CopyArgs, g: &GlobalArgs) -> CliResult {
    let src = transport::parse_image_name(&args.source)?;
    let dst = transport::parse_image_name(&args.destination)?;
    if args.jobs == 0 {
        return Err("--jobs must be at least 1".into());
    }
    let src_ctx = args.side(true).system_context(g)?;
    let dst_ctx = args.side(false).system_context(g)?;
    // stdout carries the report with --report: no progress lines then.
    let progress = Display::choose(args.quiet || args.report);
    let options = CopyOptions {
        multi_arch: args.multi_arch()?,
        jobs: args.jobs,
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
