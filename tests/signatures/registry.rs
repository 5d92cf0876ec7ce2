//! Signatures on a real Distribution registry: a `file://` lookaside that
//! `signature::write` stores must satisfy skopeo's own policy with the same
//! registries.d; a `sha256-<hex>.sig` attachment we push must survive
//! `skopeo copy` (which reads and rewrites attachments) and read back as
//! signatures openssl verifies.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use bytes::Bytes;
use kubemirror::digest::Digest;
use kubemirror::image::{Signature, SystemContext};
use kubemirror::signature::{self as sig, Policy, RegistriesD, Target, sigstore};
use kubemirror::transport::parse_image_name;

use crate::support::registry::Registry;
use crate::support::{run, skopeo};
use crate::*;

/// Push the fixture to `docker://HOST/team/app:v1`; return the reference
/// string and the manifest digest.
fn push(reg: &Registry, tmp: &Path) -> (String, Digest) {
    let layout = layout(tmp);
    let image = format!("{}/team/app:v1", reg.host);
    run(skopeo().args([
        "copy",
        "-q",
        "--dest-tls-verify=false",
        &format!("oci:{}:t", layout.display()),
        &format!("docker://{image}"),
    ]));
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let d = index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    (image, d)
}

/// A context for the plain-HTTP registry with this registries.d.
fn ctx(registries_d: &Path) -> SystemContext {
    SystemContext {
        tls_verify: Some(false),
        signature_storage: Some(Arc::new(RegistriesD::load(registries_d).unwrap())),
        ..Default::default()
    }
}

/// skopeo's verdict on `docker://image` under `policy` with `registries_d`.
fn skopeo_accepts(
    policy: &serde_json::Value,
    registries_d: &Path,
    image: &str,
    tmp: &Path,
) -> (bool, String) {
    let p = tmp.join("skopeo-policy.json");
    std::fs::write(&p, serde_json::to_vec(policy).unwrap()).unwrap();
    let dst = tempfile::tempdir_in(tmp).unwrap();
    let out = Command::new("skopeo")
        .arg("--policy")
        .arg(&p)
        .arg("--registries.d")
        .arg(registries_d)
        .args(["copy", "-q", "--src-tls-verify=false"])
        .arg(format!("docker://{image}"))
        .arg(format!("dir:{}", dst.path().display()))
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Our verdict on the same image and policy, reading signatures ourselves.
async fn our_verdict(
    policy: &serde_json::Value,
    image: &str,
    ctx: &SystemContext,
) -> Result<usize, String> {
    let policy = Policy::parse("policy.json", &serde_json::to_vec(policy).unwrap()).unwrap();
    let r = parse_image_name(&format!("docker://{image}")).unwrap();
    let s = r.new_image_source(ctx).await.unwrap();
    let m = s.get_manifest(None).await.unwrap();
    let sigs = sig::read(s.as_ref(), Target::TopLevel(&m.digest()))
        .await
        .unwrap();
    policy
        .evaluate_image(r.as_ref(), &m.bytes, &sigs)
        .map(|()| sigs.len())
        .map_err(|e| e.to_string())
}

async fn write(
    image: &str,
    ctx: &SystemContext,
    d: &Digest,
    sigs: &[Signature],
) -> kubemirror::image::Result<usize> {
    let r = parse_image_name(&format!("docker://{image}")).unwrap();
    let dst = r.new_image_destination(ctx).await.unwrap();
    sig::write(dst.as_ref(), Target::TopLevel(d), sigs).await
}

#[tokio::test]
async fn lookaside_written_by_us_satisfies_skopeo_policy() {
    let tmp = tempfile::tempdir().unwrap();
    let reg = Registry::plain();
    let (image, d) = push(&reg, tmp.path());
    let signer = Gpg::new("Signer <signer@example.com>", "ed25519");
    let other = Gpg::new("Other <other@example.com>", "ed25519");
    // skopeo signs the same manifest bytes (in dir:) as the registry image.
    let out = tmp.path().join("signed");
    skopeo_signed_dir(&signer, &tmp.path().join("layout"), &out, &image);
    assert_eq!(manifest_digest(&out).1, d);
    let message = Bytes::from(std::fs::read(out.join("signature-1")).unwrap());

    let regd = tmp.path().join("registries.d");
    std::fs::create_dir(&regd).unwrap();
    let look = tmp.path().join("lookaside");
    std::fs::write(
        regd.join("test.yaml"),
        format!(
            "docker:\n  {}:\n    lookaside: file://{}\n",
            reg.host,
            look.display()
        ),
    )
    .unwrap();
    let ctx = ctx(&regd);

    // Nothing yet: both refuse.
    let key = signer.export_to(tmp.path(), "signer.gpg");
    let policy = serde_json::json!({"default": [{"type": "signedBy", "keyType": "GPGKeys", "keyPath": key}]});
    assert!(!skopeo_accepts(&policy, &regd, &image, tmp.path()).0);
    let e = our_verdict(&policy, &image, &ctx).await.unwrap_err();
    assert!(
        e.ends_with(
            "a simple signing signature was required, but no simple signing signature exists"
        ),
        "{e}"
    );

    let sigs = [Signature::SimpleSigning(message.clone())];
    assert_eq!(write(&image, &ctx, &d, &sigs).await.unwrap(), 1);
    // Idempotent: the same signature is not stored twice.
    assert_eq!(write(&image, &ctx, &d, &sigs).await.unwrap(), 1);
    let file = look.join(format!("team/app@sha256={}/signature-1", d.digest()));
    assert_eq!(std::fs::read(&file).unwrap(), message);
    assert!(!file.with_file_name("signature-2").exists());

    let (ok, stderr) = skopeo_accepts(&policy, &regd, &image, tmp.path());
    assert!(ok, "skopeo refused our lookaside: {stderr}");
    assert_eq!(our_verdict(&policy, &image, &ctx).await, Ok(1));

    let other_key = other.export_to(tmp.path(), "other.gpg");
    let wrong = serde_json::json!({"default": [{"type": "signedBy", "keyType": "GPGKeys", "keyPath": other_key}]});
    assert!(!skopeo_accepts(&wrong, &regd, &image, tmp.path()).0);
    let e = our_verdict(&wrong, &image, &ctx).await.unwrap_err();
    assert!(e.contains("no signature signed by a trusted key"), "{e}");

    // The same storage served over HTTP: skopeo and we read it there.
    let http = HttpServer::start(&look);
    let http_d = tmp.path().join("http.d");
    std::fs::create_dir(&http_d).unwrap();
    std::fs::write(
        http_d.join("test.yaml"),
        format!(
            "docker:\n  {}/team:\n    lookaside: {}/\n",
            reg.host, http.url
        ),
    )
    .unwrap();
    let http_ctx = self::ctx(&http_d);
    let (ok, stderr) = skopeo_accepts(&policy, &http_d, &image, tmp.path());
    assert!(ok, "skopeo refused our lookaside over HTTP: {stderr}");
    assert_eq!(our_verdict(&policy, &image, &http_ctx).await, Ok(1));

    // Docker scopes: the most specific one decides, for both.
    let signed_by = policy["default"][0].clone();
    let reject = serde_json::json!({"type": "reject"});
    let accept = serde_json::json!({"type": "insecureAcceptAnything"});
    let scoped = |t: serde_json::Value| serde_json::json!({"default": [accept.clone()], "transports": {"docker": t}});
    let cases = [
        (
            "repository scope",
            scoped(
                serde_json::json!({format!("{}/team/app", reg.host): [signed_by.clone()], "": [reject.clone()]}),
            ),
            true,
        ),
        (
            "tag scope beats namespace",
            scoped(
                serde_json::json!({image.clone(): [reject.clone()], format!("{}/team", reg.host): [accept.clone()]}),
            ),
            false,
        ),
        (
            "host scope with the wrong key",
            scoped(serde_json::json!({reg.host.clone(): [wrong["default"][0].clone()]})),
            false,
        ),
        (
            "transport default",
            scoped(serde_json::json!({"": [reject.clone()], "other.example": [accept.clone()]})),
            false,
        ),
        (
            "signedBy and matchRepository",
            scoped(
                serde_json::json!({"": [{"type": "signedBy", "keyType": "GPGKeys", "keyPath": key,
            "signedIdentity": {"type": "matchRepository"}}]}),
            ),
            true,
        ),
        (
            "signedBy for another name, remapped",
            scoped(
                serde_json::json!({"": [{"type": "signedBy", "keyType": "GPGKeys", "keyPath": key,
            "signedIdentity": {"type": "remapIdentity", "prefix": format!("{}/team", reg.host), "signedPrefix": format!("{}/other", reg.host)}}]}),
            ),
            false,
        ),
    ];
    for (name, p, want) in cases {
        let (theirs, stderr) = skopeo_accepts(&p, &http_d, &image, tmp.path());
        assert_eq!(theirs, want, "{name}: skopeo said {stderr}");
        let ours = our_verdict(&p, &image, &http_ctx).await;
        assert_eq!(ours.is_ok(), want, "{name}: we said {ours:?}");
    }
    drop(http);

    // Without a lookaside for this registry, writing says what to configure.
    let empty = tmp.path().join("empty.d");
    let e = write(&image, &self::ctx(&empty), &d, &sigs)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("no lookaside is configured"), "{e}");
}

#[tokio::test]
async fn sigstore_attachment_round_trip_through_registry_and_skopeo_copy() {
    let tmp = tempfile::tempdir().unwrap();
    let reg = Registry::plain();
    let (image, d) = push(&reg, tmp.path());
    let (k1, pub1) = openssl_key(tmp.path(), "k1");
    let (k2, pub2) = openssl_key(tmp.path(), "k2");
    let pub1_path = tmp.path().join("k1.pub");
    let pub2_path = tmp.path().join("k2.pub");
    assert_eq!(std::fs::read(&pub1_path).unwrap(), pub1);

    let regd = tmp.path().join("registries.d");
    std::fs::create_dir(&regd).unwrap();
    std::fs::write(
        regd.join("test.yaml"),
        format!(
            "docker:\n  {}:\n    use-sigstore-attachments: true\n",
            reg.host
        ),
    )
    .unwrap();
    let ctx = ctx(&regd);
    let s1 = openssl_sign(tmp.path(), &k1, &cosign_payload(&image, &d));

    // Attachments off: writing refuses and says why.
    let off = tmp.path().join("off.d");
    let e = write(&image, &self::ctx(&off), &d, std::slice::from_ref(&s1))
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("use-sigstore-attachments: true"),
        "{e}"
    );

    assert_eq!(
        write(&image, &ctx, &d, std::slice::from_ref(&s1))
            .await
            .unwrap(),
        1
    );
    // Debian's skopeo 1.9 cannot verify sigstore signatures ("Debian-local
    // change: sigstore disabled"), so openssl checks what we stored and read
    // back, and our policy's verdicts follow.
    let r = parse_image_name(&format!("docker://{image}")).unwrap();
    let got = sig::read_attachment(r.as_ref(), &ctx, &d).await.unwrap();
    assert_eq!(got, std::slice::from_ref(&s1));
    openssl_verifies(tmp.path(), &pub1_path, &got[0]);
    let policy =
        |key: &Path| serde_json::json!({"default": [{"type": "sigstoreSigned", "keyPath": key}]});
    assert_eq!(our_verdict(&policy(&pub1_path), &image, &ctx).await, Ok(1));
    let e = our_verdict(&policy(&pub2_path), &image, &ctx)
        .await
        .unwrap_err();
    assert!(e.ends_with("no signature signed by a trusted key"), "{e}");
    let _ = pub2;

    // Adding a second signature keeps the first; adding the same again is a no-op.
    let s2 = openssl_sign(tmp.path(), &k2, &cosign_payload(&image, &d));
    write(&image, &ctx, &d, &[s1.clone(), s2.clone()])
        .await
        .unwrap();
    write(&image, &ctx, &d, std::slice::from_ref(&s2))
        .await
        .unwrap();
    let got = sig::read_attachment(r.as_ref(), &ctx, &d).await.unwrap();
    assert_eq!(got, [s1.clone(), s2.clone()]);
    let raw = run(skopeo().args([
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!(
            "docker://{}/team/app:{}",
            reg.host,
            sigstore::signature_tag(&d)
        ),
    ]))
    .stdout;
    let m: serde_json::Value = serde_json::from_slice(&raw).unwrap();
    assert_eq!(m["layers"].as_array().unwrap().len(), 2);
    assert_eq!(m["layers"][0]["mediaType"], sigstore::MEDIA_TYPE);
    assert_eq!(
        m["layers"][1]["annotations"][sigstore::ANNOTATION_SIGNATURE],
        {
            let Signature::Sigstore { annotations, .. } = &s2 else {
                unreachable!()
            };
            annotations[sigstore::ANNOTATION_SIGNATURE].clone()
        }
    );
    assert_eq!(our_verdict(&policy(&pub2_path), &image, &ctx).await, Ok(2));

    // skopeo copies the image with its attachment; we read what it wrote.
    let copy = format!("{}/mirror/app:v1", reg.host);
    run(skopeo().arg("--registries.d").arg(&regd).args([
        "copy",
        "-q",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        &format!("docker://{image}"),
        &format!("docker://{copy}"),
    ]));
    let r = parse_image_name(&format!("docker://{copy}")).unwrap();
    let src = r.new_image_source(&ctx).await.unwrap();
    let sigs = sig::read(src.as_ref(), Target::TopLevel(&d)).await.unwrap();
    assert_eq!(sigs.len(), 2, "{sigs:?}");
    assert!(sigs.contains(&s1) && sigs.contains(&s2));
    // Their identity names the source repository: a copy is not that image.
    let e = our_verdict(&policy(&pub1_path), &copy, &ctx)
        .await
        .unwrap_err();
    assert!(e.contains("does not match"), "{e}");
}

/// openssl, independently, verifies a sigstore signature we read.
fn openssl_verifies(dir: &Path, public_key: &Path, s: &Signature) {
    use base64::Engine as _;
    let Signature::Sigstore {
        payload,
        annotations,
        ..
    } = s
    else {
        panic!("not a sigstore signature: {s:?}")
    };
    let p = dir.join("check-payload");
    let g = dir.join("check-sig");
    std::fs::write(&p, payload).unwrap();
    let der = base64::engine::general_purpose::STANDARD
        .decode(&annotations[sigstore::ANNOTATION_SIGNATURE])
        .unwrap();
    std::fs::write(&g, der).unwrap();
    run(Command::new("openssl")
        .args(["dgst", "-sha256", "-verify"])
        .arg(public_key)
        .arg("-signature")
        .arg(&g)
        .arg(&p));
}

/// `python3 -m http.server` over a directory, stopped when dropped.
struct HttpServer {
    child: std::process::Child,
    url: String,
}

impl HttpServer {
    fn start(dir: &Path) -> Self {
        let port = crate::support::free_port();
        let child = Command::new("python3")
            .args(["-m", "http.server", "--bind", "127.0.0.1", "--directory"])
            .arg(dir)
            .arg(port.to_string())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("python3 -m http.server");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "http.server did not start"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        HttpServer {
            child,
            url: format!("http://127.0.0.1:{port}"),
        }
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
