//! Protobuf bodies (what client-go's typed clients send: `kubectl create
//! namespace|secret|configmap`, Helm's release Secrets) and server-side
//! apply by two field managers, with the real kubectl.

mod common;

use common::Env;
use k8s_pb::api::core::v1 as pb;
use k8s_pb::apimachinery::pkg::apis::meta::v1::Status;
use k8s_pb::apimachinery::pkg::runtime::Unknown;
use prost::Message;

/// GET `path` asking for protobuf first; the status, Content-Type and the
/// envelope's kind and raw message.
async fn get_protobuf(env: &Env, path: &str) -> (u16, String, String, Vec<u8>) {
    let req = http::Request::get(path)
        .header(
            "Accept",
            "application/vnd.kubernetes.protobuf, application/json",
        )
        .body(Vec::new())
        .unwrap();
    let resp = env.client().send(req.map(Into::into)).await.unwrap();
    let status = resp.status().as_u16();
    let ct = resp.headers()["content-type"].to_str().unwrap().to_string();
    let body = http_body_util::BodyExt::collect(resp.into_body())
        .await
        .unwrap()
        .to_bytes();
    let env = Unknown::decode(body.strip_prefix(b"k8s\0").expect("the k8s\\0 magic")).unwrap();
    (
        status,
        ct,
        env.type_meta.unwrap().kind.unwrap(),
        env.raw.unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_create_sends_protobuf() {
    let env = Env::start().await;
    for args in [
        &["create", "namespace", "team"][..],
        &[
            "create",
            "secret",
            "generic",
            "creds",
            "--from-literal=user=root",
            "-n",
            "team",
        ],
        &[
            "create",
            "configmap",
            "settings",
            "--from-literal=level=debug",
            "-n",
            "team",
        ],
    ] {
        let out = env.kubectl(args).await;
        assert!(out.ok, "kubectl {}: {out:?}", args.join(" "));
    }
    let posts: Vec<_> = env
        .emu
        .hooks()
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST")
        .map(|r| (r.path, r.content_type.unwrap_or_default(), r.status))
        .collect();
    assert_eq!(posts.len(), 3, "{posts:?}");
    for (path, ct, status) in &posts {
        assert_eq!(
            (ct.as_str(), *status),
            ("application/vnd.kubernetes.protobuf", 201),
            "{path}"
        );
    }
    let out = env
        .kubectl(&[
            "get",
            "secret",
            "creds",
            "-n",
            "team",
            "-o",
            "jsonpath={.data.user}",
        ])
        .await;
    assert_eq!(out.stdout, "cm9vdA==", "{out:?}");
    let out = env
        .kubectl(&["get", "namespace", "team", "-o", "jsonpath={.status.phase}"])
        .await;
    assert_eq!(out.stdout, "Active", "{out:?}");

    // Replies in protobuf when asked for first: an object, a list, a Status.
    let (code, ct, kind, raw) = get_protobuf(&env, "/api/v1/namespaces/team/secrets/creds").await;
    assert_eq!(
        (code, ct.as_str(), kind.as_str()),
        (200, "application/vnd.kubernetes.protobuf", "Secret")
    );
    let secret = pb::Secret::decode(raw.as_slice()).unwrap();
    assert_eq!(secret.data["user"], b"root");
    assert_eq!(secret.metadata.unwrap().namespace.as_deref(), Some("team"));
    let (_, _, kind, raw) = get_protobuf(&env, "/api/v1/namespaces/team/configmaps").await;
    assert_eq!(kind, "ConfigMapList");
    let list = pb::ConfigMapList::decode(raw.as_slice()).unwrap();
    assert_eq!(list.items[0].data["level"], "debug");
    let (code, _, kind, raw) = get_protobuf(&env, "/api/v1/namespaces/team/secrets/missing").await;
    assert_eq!((code, kind.as_str()), (404, "Status"));
    let status = Status::decode(raw.as_slice()).unwrap();
    assert_eq!(
        status.message.as_deref(),
        Some("secrets \"missing\" not found")
    );

    // A kind the emulator does not decode from protobuf: 415 naming it.
    let mut body = b"k8s\0".to_vec();
    Unknown {
        type_meta: Some(k8s_pb::apimachinery::pkg::runtime::TypeMeta {
            api_version: Some("v1".into()),
            kind: Some("Pod".into()),
        }),
        raw: Some(vec![]),
        content_encoding: None,
        content_type: None,
    }
    .encode(&mut body)
    .unwrap();
    let req = http::Request::post("/api/v1/namespaces/team/pods")
        .header("Content-Type", "application/vnd.kubernetes.protobuf")
        .body(body)
        .unwrap();
    let resp = env.client().send(req.map(Into::into)).await.unwrap();
    assert_eq!(resp.status().as_u16(), 415);
    env.emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_field_managers_applying_the_same_value_share_it() {
    let env = Env::start().await;
    let ns = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shared\n  labels:\n    team: mirror\nspec: {}\n";
    for manager in ["a", "b"] {
        let out = env
            .kubectl_in(
                &[
                    "apply",
                    "--server-side",
                    &format!("--field-manager={manager}"),
                    "-f",
                    "-",
                ],
                ns,
            )
            .await;
        assert!(out.ok, "{manager}: {out:?}");
    }
    let out = env
        .kubectl(&[
            "get",
            "namespace",
            "shared",
            "-o",
            "jsonpath={.metadata.managedFields[*].manager}",
        ])
        .await;
    assert_eq!(out.stdout, "a b", "{out:?}");
    // A different value for a shared field conflicts with both owners.
    let out = env
        .kubectl_in(
            &["apply", "--server-side", "--field-manager=c", "-f", "-"],
            &ns.replace("team: mirror", "team: other"),
        )
        .await;
    assert!(!out.ok, "{out:?}");
    assert!(
        out.stderr.contains("conflicts with \"a\"")
            && out.stderr.contains("conflicts with \"b\"")
            && out.stderr.contains(".metadata.labels.team"),
        "{out:?}"
    );
    env.emu.shutdown().await;
}
