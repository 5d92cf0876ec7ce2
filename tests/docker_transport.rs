//! The `docker` transport against real Distribution registries and the real
//! skopeo: plain HTTP, TLS with htpasswd Basic auth, manifests and blobs read
//! and written through the image traits, mounts, tag listing with pagination,
//! and the number of requests each operation costs.
mod support;

use std::sync::Arc;

use futures::TryStreamExt;
use kubemirror::digest::VerifyingStream;
use kubemirror::image::{
    Auth, BlobInfo, ErrorKind, ImageSource, Registry as _, ReuseHint, Secret, SystemContext,
};
use kubemirror::manifest::{self, Parsed};
use kubemirror::transport::{docker, parse_image_name};
use support::copyloop::{self, Counter};
use support::registry::Registry;

fn plain_ctx(counter: &Arc<Counter>) -> SystemContext {
    SystemContext {
        tls_verify: Some(false),
        observer: Some(counter.clone()),
        ..Default::default()
    }
}

/// skopeo copies an mkimage layout to `image` (a `docker://` name) with `flags`.
fn skopeo_push(
    layout_args: &[&str],
    tag: &str,
    image: &str,
    flags: &[String],
) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("img");
    let mut args = vec!["--tag", tag];
    args.extend_from_slice(layout_args);
    support::mkimage(&layout, &args);
    support::run(
        support::skopeo()
            .arg("copy")
            .args(flags)
            .args(["--all"])
            .arg(format!("oci:{}:{tag}", layout.display()))
            .arg(image),
    );
    dir
}

fn skopeo_out(args: &[String]) -> Vec<u8> {
    support::run(support::skopeo().args(args)).stdout
}

fn skopeo_digest(image: &str, flags: &[String]) -> String {
    let mut args: Vec<&str> = flags.iter().map(String::as_str).collect();
    args.push(image);
    support::skopeo_digest(&args)
}

fn skopeo_raw(image: &str, flags: &[String]) -> Vec<u8> {
    let mut args = vec!["inspect".to_string(), "--raw".into()];
    args.extend_from_slice(flags);
    args.push(image.into());
    skopeo_out(&args)
}

/// Read every blob of a single-image manifest and check it against its digest.
async fn read_all_blobs(src: &dyn ImageSource, m: &kubemirror::manifest::Manifest) -> usize {
    let img = m.image().unwrap();
    let mut n = 0;
    for d in manifest::blobs(&img) {
        let info = BlobInfo::from(&d);
        let blob = src.get_blob(&info).await.unwrap();
        assert_eq!(blob.size, Some(d.size()));
        let chunks: Vec<bytes::Bytes> = VerifyingStream::new(blob.stream, info.digest, info.size)
            .try_collect()
            .await
            .unwrap();
        assert_eq!(chunks.iter().map(|c| c.len() as u64).sum::<u64>(), d.size());
        n += 1;
    }
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_reads_what_skopeo_pushed_and_writes_what_skopeo_reads() {
    let reg = Registry::plain();
    let reg2 = Registry::plain();
    let flags = reg.tls_flags("");
    let name = reg.image("t/app:v1");
    let _fixture = skopeo_push(
        &["--layers", "2", "--layer-size", "300K"],
        "v1",
        &name,
        &reg.tls_flags("dest"),
    );
    let counter = Counter::new();
    let ctx = plain_ctx(&counter);
    let src_ref = parse_image_name(&name).unwrap();
    let src = src_ref.new_image_source(&ctx).await.unwrap();

    // Exact bytes and digests, as skopeo sees them.
    let m = src.get_manifest(None).await.unwrap();
    assert_eq!(m.bytes.as_ref(), skopeo_raw(&name, &flags).as_slice());
    let digest = skopeo_digest(&name, &flags);
    assert_eq!(m.digest().to_string(), digest);
    counter.reset();
    assert_eq!(src.manifest_digest().await.unwrap().to_string(), digest);
    assert_eq!(
        counter.summary().get("HEAD 200"),
        Some(&1),
        "{:?}",
        counter.summary()
    );
    assert_eq!(counter.total(), 1, "manifest_digest is one HEAD");
    counter.reset();
    assert_eq!(read_all_blobs(src.as_ref(), &m).await, 3);
    assert_eq!(
        counter.total(),
        3,
        "one GET per blob: {:?}",
        counter.summary()
    );

    // Cold copy to another registry: HEAD + POST + PUT per blob at the destination.
    let dst_name = reg2.image("mirror/app:v1");
    let dst_ref = parse_image_name(&dst_name).unwrap();
    let dst_counter = Counter::new();
    let dst_ctx = plain_ctx(&dst_counter);
    let dst = dst_ref.new_image_destination(&dst_ctx).await.unwrap();
    counter.reset();
    let hint = ReuseHint {
        source: src_ref.docker_reference(),
    };
    let done = copyloop::copy(src.as_ref(), dst.as_ref(), &hint)
        .await
        .unwrap();
    assert_eq!(done.uploaded, 3);
    let d = dst_counter.summary();
    // scheme probe: HTTPS refused before any HTTP request (0), as for any
    // insecure registry, and no /v2/ ping; existing manifest HEAD 404;
    // 3 × (POST 202 — a self-mount that opens the upload —, PUT 201); manifest PUT 201
    assert_eq!(d.get("GET 0"), Some(&1), "{d:?}");
    assert_eq!(d.get("GET 200"), None, "{d:?}");
    assert_eq!(d.get("HEAD 404"), Some(&1), "{d:?}");
    assert_eq!(d.get("POST 202"), Some(&3), "{d:?}");
    assert_eq!(d.get("PUT 201"), Some(&4), "{d:?}");
    assert_eq!(dst_counter.total(), 9, "{d:?}");
    // source: HEAD manifest, GET manifest, 3 blob GETs
    assert_eq!(counter.total(), 5, "{:?}", counter.summary());
    assert_eq!(
        skopeo_digest(&dst_name, &reg2.tls_flags("")),
        digest,
        "skopeo sees what we pushed"
    );

    // A no-op check: two HEADs.
    counter.reset();
    dst_counter.reset();
    let done = copyloop::copy(src.as_ref(), dst.as_ref(), &hint)
        .await
        .unwrap();
    assert!(done.up_to_date);
    assert_eq!((counter.total(), dst_counter.total()), (1, 1));

    // Another tag of the same repository: every blob present (one POST each,
    // a self-mount answered 201).
    let v2 = parse_image_name(&reg2.image("mirror/app:v2")).unwrap();
    let v2 = v2.new_image_destination(&dst_ctx).await.unwrap();
    dst_counter.reset();
    let done = copyloop::copy(src.as_ref(), v2.as_ref(), &hint)
        .await
        .unwrap();
    assert_eq!(done.present, 3, "{done:?}");
    let d = dst_counter.summary();
    assert_eq!(
        (d.get("HEAD 404"), d.get("POST 201"), d.get("PUT 201")),
        (Some(&1), Some(&3), Some(&1)),
        "{d:?}"
    );
    assert_eq!(dst_counter.total(), 5);

    // Same registry, other repository: every blob mounted with one POST.
    let other = parse_image_name(&reg.image("t/other:v1")).unwrap();
    let odst = other.new_image_destination(&ctx).await.unwrap();
    counter.reset();
    let done = copyloop::copy(src.as_ref(), odst.as_ref(), &hint)
        .await
        .unwrap();
    assert_eq!((done.mounted, done.uploaded), (3, 0), "{done:?}");
    assert_eq!(counter.summary().get("POST 201"), Some(&3));
    assert_eq!(skopeo_digest(&reg.image("t/other:v1"), &flags), digest);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_arch_index_round_trips() {
    let reg = Registry::plain();
    let name = reg.image("t/multi:v1");
    let _fixture = skopeo_push(
        &[
            "--layers",
            "1",
            "--layer-size",
            "10K",
            "--platforms",
            "linux/amd64,linux/arm64",
        ],
        "v1",
        &name,
        &reg.tls_flags("dest"),
    );
    let counter = Counter::new();
    let ctx = plain_ctx(&counter);
    let src = parse_image_name(&name)
        .unwrap()
        .new_image_source(&ctx)
        .await
        .unwrap();
    let top = src.get_manifest(None).await.unwrap();
    assert!(top.is_index());
    let Parsed::Index(index) = top.parse().unwrap() else {
        panic!()
    };
    for d in index.manifests() {
        let m = src.get_manifest(Some(d.digest())).await.unwrap();
        assert_eq!(&m.digest(), d.digest());
    }
    let dst_name = reg.image("t/multi-copy:v1");
    let dst = parse_image_name(&dst_name)
        .unwrap()
        .new_image_destination(&ctx)
        .await
        .unwrap();
    copyloop::copy(src.as_ref(), dst.as_ref(), &ReuseHint::default())
        .await
        .unwrap();
    let flags = reg.tls_flags("");
    assert_eq!(skopeo_raw(&dst_name, &flags), top.bytes.to_vec());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_basic_auth() {
    let password = "pw-Sekr1t-7q";
    let reg = Registry::basic_auth("alice", password);
    let name = reg.image("t/app:v1");
    let mut push_flags = reg.tls_flags("dest");
    push_flags.push(format!("--dest-creds=alice:{password}"));
    let _fixture = skopeo_push(
        &["--layers", "1", "--layer-size", "20K"],
        "v1",
        &name,
        &push_flags,
    );
    let mut read_flags = reg.tls_flags("");
    read_flags.push(format!("--creds=alice:{password}"));
    let digest = skopeo_digest(&name, &read_flags);

    let counter = Counter::new();
    let creds = Auth::Basic {
        username: "alice".into(),
        password: Secret::new(password),
    };
    let ctx = SystemContext {
        cert_dir: Some(reg.cert_dir()),
        credentials: Some(creds.clone()),
        observer: Some(counter.clone()),
        ..Default::default()
    };
    let r = parse_image_name(&name).unwrap();
    let src = r.new_image_source(&ctx).await.unwrap();
    let m = src.get_manifest(None).await.unwrap();
    assert_eq!(m.digest().to_string(), digest);
    assert_eq!(read_all_blobs(src.as_ref(), &m).await, 2);
    // Push (mounting from t/app) and let skopeo read it back.
    let dst_name = reg.image("t/copy:v2");
    let dst = parse_image_name(&dst_name)
        .unwrap()
        .new_image_destination(&ctx)
        .await
        .unwrap();
    let hint = ReuseHint {
        source: r.docker_reference(),
    };
    copyloop::copy(src.as_ref(), dst.as_ref(), &hint)
        .await
        .unwrap();
    assert_eq!(skopeo_digest(&dst_name, &read_flags), digest);

    // The CA given as PEM bytes (a Kubernetes Secret) works like --cert-dir.
    let pem = std::fs::read(reg.cert_dir().join("ca.crt")).unwrap();
    let ctx_pem = SystemContext {
        extra_ca_pem: vec![pem],
        credentials: Some(creds.clone()),
        ..Default::default()
    };
    let src = r.new_image_source(&ctx_pem).await.unwrap();
    assert_eq!(src.manifest_digest().await.unwrap().to_string(), digest);
    // --tls-verify=false accepts the unknown CA.
    let ctx_insecure = SystemContext {
        tls_verify: Some(false),
        credentials: Some(creds),
        ..Default::default()
    };
    let src = r.new_image_source(&ctx_insecure).await.unwrap();
    assert_eq!(src.manifest_digest().await.unwrap().to_string(), digest);

    // Credentials from an auth file written by `skopeo login`, and from a
    // Kubernetes dockerconfigjson payload with a namespace-scoped entry.
    let authfile = reg.dir.path().join("auth.json");
    support::run(
        support::skopeo()
            .args(["login", "--authfile"])
            .arg(&authfile)
            .arg(format!("--cert-dir={}", reg.cert_dir().display()))
            .args(["-u", "alice", "-p", password, &reg.host]),
    );
    let files = kubemirror::credentials::AuthFiles::load(Some(&authfile)).unwrap();
    let ctx_file = SystemContext {
        cert_dir: Some(reg.cert_dir()),
        credential_store: Some(Arc::new(files)),
        ..Default::default()
    };
    let src = r.new_image_source(&ctx_file).await.unwrap();
    assert_eq!(src.manifest_digest().await.unwrap().to_string(), digest);
    let secret = format!(
        r#"{{"auths":{{"{0}":{{"username":"alice","password":"nope"}},"{0}/t":{{"username":"alice","password":"{password}"}}}}}}"#,
        reg.host
    );
    let store =
        kubemirror::credentials::AuthFile::from_dockerconfigjson(secret.as_bytes()).unwrap();
    let ctx_secret = SystemContext {
        cert_dir: Some(reg.cert_dir()),
        credential_store: Some(Arc::new(store)),
        ..Default::default()
    };
    let src = r.new_image_source(&ctx_secret).await.unwrap();
    assert_eq!(src.manifest_digest().await.unwrap().to_string(), digest);

    // A wrong password: one line that names registry, repository and
    // operation, and never the password.
    let wrong = "WRONG-pw-Zx81";
    let ctx_wrong = SystemContext {
        cert_dir: Some(reg.cert_dir()),
        credentials: Some(Auth::from_creds(&format!("alice:{wrong}")).unwrap()),
        retry_times: 3,
        ..Default::default()
    };
    let err = r
        .new_image_source(&ctx_wrong)
        .await
        .unwrap()
        .get_manifest(None)
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.starts_with(&format!(
            "401 Unauthorized from {} for repository t/app (pull)",
            reg.host
        )),
        "{msg}"
    );
    assert_eq!(err.kind(), ErrorKind::Unauthorized);
    let dst = parse_image_name(&reg.image("t/app:v9"))
        .unwrap()
        .new_image_destination(&ctx_wrong)
        .await
        .unwrap();
    let err = dst.put_manifest(&m, None).await.unwrap_err();
    assert!(
        err.to_string().starts_with(&format!(
            "401 Unauthorized from {} for repository t/app (push)",
            reg.host
        )),
        "{err}"
    );
    for text in [
        msg,
        err.to_string(),
        format!("{err:?}"),
        format!("{ctx_wrong:?}"),
    ] {
        assert!(!text.contains(wrong) && !text.contains(password), "{text}");
        assert!(!text.contains('\n'), "{text}");
    }

    // An unknown CA: refused at once (no retries), named as a certificate problem.
    let counter = Counter::new();
    let ctx_noca = SystemContext {
        retry_times: 3,
        observer: Some(counter.clone()),
        ..Default::default()
    };
    let err = r
        .new_image_source(&ctx_noca)
        .await
        .unwrap()
        .get_manifest(None)
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(msg.starts_with(&reg.host), "{msg}");
    assert!(msg.to_lowercase().contains("certificate"), "{msg}");
    assert_eq!(err.kind(), ErrorKind::Invalid);
    assert_eq!(counter.total(), 1, "no retries for a TLS refusal");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tags_and_catalog_paginate_like_skopeo() {
    let reg = Registry::plain();
    let name = reg.image("t/tags:v0");
    let _fixture = skopeo_push(
        &["--layers", "1", "--layer-size", "1K"],
        "v0",
        &name,
        &reg.tls_flags("dest"),
    );
    let counter = Counter::new();
    let ctx = plain_ctx(&counter);
    let r = parse_image_name(&name).unwrap();
    let m = r
        .new_image_source(&ctx)
        .await
        .unwrap()
        .get_manifest(None)
        .await
        .unwrap();
    // 130 tags, written through the destination.
    for i in 1..=130 {
        let dst = r
            .with_tag(&format!("t{i:03}"))
            .unwrap()
            .new_image_destination(&ctx)
            .await
            .unwrap();
        dst.put_manifest(&m, None).await.unwrap();
    }
    for repo in ["a/one", "a/two", "b/three"] {
        let dst = parse_image_name(&reg.image(&format!("{repo}:x"))).unwrap();
        let dst = dst.new_image_destination(&ctx).await.unwrap();
        for d in manifest::blobs(&m.image().unwrap()) {
            let info = BlobInfo::from(&d);
            let hint = ReuseHint {
                source: r.docker_reference(),
            };
            assert!(dst.try_reusing_blob(&info, &hint).await.unwrap().is_some());
        }
        dst.put_manifest(&m, None).await.unwrap();
    }
    let ours = r.list_tags(&ctx).await.unwrap();
    assert_eq!(ours.len(), 131);
    let out = skopeo_out(&[
        "list-tags".into(),
        "--tls-verify=false".into(),
        reg.image("t/tags"),
    ]);
    let theirs: serde_json::Value = serde_json::from_slice(&out).unwrap();
    let theirs: Vec<String> = serde_json::from_value(theirs["Tags"].clone()).unwrap();
    assert_eq!(ours, theirs);

    // Distribution 2.8 answers the tag list in one page whatever `n` says
    // (tag pagination came with Distribution 3): one GET.
    let catalog = docker::registry(&reg.host, &ctx)
        .unwrap()
        .with_page_size(50);
    let repo = catalog.repository("t/tags").unwrap();
    assert_eq!(repo.name(), format!("{}/t/tags", reg.host));
    counter.reset();
    assert_eq!(repo.tags().await.unwrap(), theirs);
    assert_eq!(counter.total(), 1, "{:?}", counter.summary());
    // The catalog is paginated by Distribution 2.8 (Link: rel="next").
    let catalog = docker::registry(&reg.host, &ctx).unwrap().with_page_size(2);
    counter.reset();
    let repos = catalog.repositories().await.unwrap();
    assert_eq!(repos, ["a/one", "a/two", "b/three", "t/tags"]);
    assert_eq!(counter.total(), 2, "{:?}", counter.summary());
    assert_eq!(catalog.lookup("a/").await.unwrap(), ["a/one", "a/two"]);
    let img = repo.image("t001").unwrap();
    assert_eq!(
        img.to_string(),
        format!("docker://{}/t/tags:t001", reg.host)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_without_size_and_mount_fallback() {
    let reg = Registry::plain();
    let counter = Counter::new();
    let ctx = plain_ctx(&counter);
    let dst = parse_image_name(&reg.image("u/app:v1"))
        .unwrap()
        .new_image_destination(&ctx)
        .await
        .unwrap();
    let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let digest = kubemirror::digest::sha256(&data);
    let chunks = |d: &[u8]| -> kubemirror::image::BlobStream {
        let parts: Vec<kubemirror::image::Result<bytes::Bytes>> = d
            .chunks(64 << 10)
            .map(|c| Ok(bytes::Bytes::copy_from_slice(c)))
            .collect();
        Box::pin(futures::stream::iter(parts))
    };

    // No size known: POST, a chunked PATCH, then PUT ?digest=.
    let info = BlobInfo::new(digest.clone(), None);
    counter.reset();
    dst.put_blob(
        &info,
        kubemirror::image::Blob {
            stream: chunks(&data),
            size: None,
        },
    )
    .await
    .unwrap();
    let s = counter.summary();
    assert_eq!(
        (s.get("POST 202"), s.get("PATCH 202"), s.get("PUT 201")),
        (Some(&1), Some(&1), Some(&1)),
        "{s:?}"
    );
    let present = dst
        .try_reusing_blob(
            &BlobInfo::new(digest.clone(), Some(data.len() as u64)),
            &ReuseHint::default(),
        )
        .await
        .unwrap();
    assert_eq!(present, Some(kubemirror::image::Reused::Present));

    // Unknown size and content that lies: refused, nothing stored.
    let mut bad = data.clone();
    bad[1000] ^= 1;
    let other = kubemirror::digest::sha256(b"something else");
    let err = dst
        .put_blob(
            &BlobInfo::new(other.clone(), None),
            kubemirror::image::Blob {
                stream: chunks(&bad),
                size: None,
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Corrupt, "{err}");
    assert!(
        dst.try_reusing_blob(&BlobInfo::new(other, None), &ReuseHint::default())
            .await
            .unwrap()
            .is_none()
    );

    // A mount from a repository that lacks the blob: the registry opens an
    // upload session (202), which put_blob uses: no second POST.
    let data2: Vec<u8> = data.iter().rev().copied().collect();
    let info2 = BlobInfo::new(kubemirror::digest::sha256(&data2), Some(data2.len() as u64));
    let hint = ReuseHint {
        source: Some(kubemirror::reference::parse(&format!("{}/u/empty:v1", reg.host)).unwrap()),
    };
    counter.reset();
    assert_eq!(dst.try_reusing_blob(&info2, &hint).await.unwrap(), None);
    dst.put_blob(
        &info2,
        kubemirror::image::Blob {
            stream: chunks(&data2),
            size: Some(data2.len() as u64),
        },
    )
    .await
    .unwrap();
    let s = counter.summary();
    assert_eq!(
        (s.get("POST 202"), s.get("PUT 201")),
        (Some(&1), Some(&1)),
        "{s:?}"
    );
    assert_eq!(counter.total(), 2, "{s:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_certificates_from_cert_dir() {
    // A client CA the registry trusts, and a client pair signed by it.
    let pki = tempfile::tempdir().unwrap();
    let p = |n: &str| pki.path().join(n).to_string_lossy().into_owned();
    support::run(std::process::Command::new("openssl").args([
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=client CA",
        "-keyout",
        &p("clientca.key"),
        "-out",
        &p("clientca.pem"),
    ]));
    support::run(std::process::Command::new("openssl").args([
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=kubemirror",
        "-keyout",
        &p("client.key"),
        "-out",
        &p("client.csr"),
    ]));
    std::fs::write(
        pki.path().join("client.ext"),
        "extendedKeyUsage=clientAuth\n",
    )
    .unwrap();
    support::run(std::process::Command::new("openssl").args([
        "x509",
        "-req",
        "-in",
        &p("client.csr"),
        "-CA",
        &p("clientca.pem"),
        "-CAkey",
        &p("clientca.key"),
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        &p("client.ext"),
        "-out",
        &p("client.cert"),
    ]));
    let reg = Registry::start(support::registry::RegistryOptions {
        client_auth: Some(support::registry::ClientAuth {
            ca: pki.path().join("clientca.pem"),
            cert: pki.path().join("client.cert"),
            key: pki.path().join("client.key"),
        }),
        ..Default::default()
    });
    let with_pair = pki.path().join("certs.d");
    std::fs::create_dir(&with_pair).unwrap();
    std::fs::copy(reg.cert_dir().join("ca.crt"), with_pair.join("ca.crt")).unwrap();
    std::fs::copy(
        pki.path().join("client.cert"),
        with_pair.join("client.cert"),
    )
    .unwrap();
    std::fs::copy(pki.path().join("client.key"), with_pair.join("client.key")).unwrap();

    let r = parse_image_name(&reg.image("c/app")).unwrap();
    let ok = SystemContext {
        cert_dir: Some(with_pair.clone()),
        ..Default::default()
    };
    assert_eq!(
        r.list_tags(&ok).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    let without = SystemContext {
        cert_dir: Some(reg.cert_dir()),
        ..Default::default()
    };
    let err = r.list_tags(&without).await.unwrap_err();
    assert!(
        matches!(err, kubemirror::image::Error::Connection { .. }),
        "{err}"
    );
    // A certificate without its key is a clear error.
    std::fs::remove_file(with_pair.join("client.key")).unwrap();
    let broken = SystemContext {
        cert_dir: Some(with_pair),
        retry_times: 1,
        ..Default::default()
    };
    let err = r.list_tags(&broken).await.unwrap_err();
    assert!(err.to_string().contains("missing key"), "{err}");
}
