use std::os::unix::fs::PermissionsExt;

use super::*;

fn basic(u: &str, p: &str) -> Auth {
    Auth::Basic {
        username: u.into(),
        password: Secret::new(p),
    }
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

#[test]
fn longest_match_and_key_forms() {
    let json = format!(
        r#"{{"auths": {{
            "registry.example": {{"auth": "{}"}},
            "registry.example/team": {{"auth": "{}"}},
            "registry.example/team/app": {{"auth": "{}"}},
            "https://index.docker.io/v1/": {{"auth": "{}"}},
            "http://old.example:5000/v2/": {{"username": "u5", "password": "p5"}},
            "placeholder.example": {{}}
        }}}}"#,
        b64("host:hp"),
        b64("team:tp"),
        b64("app:ap"),
        b64("hub:hubp")
    );
    let f = AuthFile::parse(json.as_bytes(), "test").unwrap();
    let find = |r: &str, repo: &str| f.find(r, repo).unwrap();
    assert_eq!(
        find("registry.example", "team/app"),
        Some(basic("app", "ap"))
    );
    assert_eq!(
        find("registry.example", "team/app/sub"),
        Some(basic("app", "ap"))
    );
    assert_eq!(
        find("registry.example", "team/other"),
        Some(basic("team", "tp"))
    );
    assert_eq!(
        find("registry.example", "teamx/app"),
        Some(basic("host", "hp"))
    );
    assert_eq!(
        f.lookup("registry.example").unwrap(),
        Some(basic("host", "hp"))
    );
    assert_eq!(
        find("docker.io", "library/alpine"),
        Some(basic("hub", "hubp"))
    );
    assert_eq!(find("old.example:5000", "x"), Some(basic("u5", "p5")));
    assert_eq!(find("placeholder.example", "x"), None);
    assert_eq!(find("unknown.example", "x"), None);
}

#[test]
fn identity_tokens_and_secrets() {
    let json = format!(
        r#"{{"auths": {{"reg.example": {{"auth": "{}", "identitytoken": "idt-123"}}}}}}"#,
        b64("bob:")
    );
    let f = AuthFile::parse(json.as_bytes(), "t").unwrap();
    assert_eq!(
        f.lookup("reg.example").unwrap(),
        Some(Auth::IdentityToken {
            username: "bob".into(),
            token: Secret::new("idt-123")
        })
    );
    assert!(!format!("{f:?}").contains("idt-123"));

    // A Kubernetes Secret payload: helpers named in it are never run.
    let secret = format!(
        r#"{{"auths": {{"reg.example": {{"username": "k", "password": "kp", "auth": "{}"}}}}, "credsStore": "evil", "credHelpers": {{"other.example": "evil"}}}}"#,
        b64("k:kp")
    );
    let s = AuthFile::from_dockerconfigjson(secret.as_bytes()).unwrap();
    assert_eq!(s.lookup("reg.example").unwrap(), Some(basic("k", "kp")));
    assert_eq!(s.lookup("other.example").unwrap(), None);
    assert_eq!(s.lookup("third.example").unwrap(), None);
    // Legacy .dockercfg: entries at the top level.
    let legacy = format!(
        r#"{{"https://legacy.example": {{"auth": "{}", "email": "x@y"}}}}"#,
        b64("l:lp")
    );
    let s = AuthFile::from_dockerconfigjson(legacy.as_bytes()).unwrap();
    assert_eq!(s.lookup("legacy.example").unwrap(), Some(basic("l", "lp")));
}

#[test]
fn errors_never_quote_secrets() {
    let cases: Vec<String> = vec![
        r#"{"auths": {"r.example": {"auth": "c2VjcmV0LXB3"}}"#.into(), // truncated JSON
        r#"{"auths": "TOPSECRET-1"}"#.into(),
        r#"{"auths": {"r.example": {"auth": "!!TOPSECRET-2!!"}}}"#.into(),
        r#"{"auths": {"r.example": {"password": ["TOPSECRET-3"]}}}"#.into(),
        format!(
            r#"{{"auths": {{"r.example": {{"auth": "{}"}}}}}}"#,
            b64("no-colon-TOPSECRET-4")
        ),
    ];
    for c in cases {
        let e = AuthFile::parse(c.as_bytes(), "auth.json").unwrap_err();
        let text = format!("{e} {e:?}");
        assert!(
            !text.contains("TOPSECRET") && !text.contains("c2VjcmV0"),
            "{text}"
        );
        assert!(text.contains("auth.json"), "{text}");
    }
}

#[test]
fn credential_helpers() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("docker-credential-fake");
    std::fs::write(
        &script,
        "#!/bin/sh\nread host\ncase \"$host\" in\n  helper.example) echo '{\"ServerURL\":\"helper.example\",\"Username\":\"hu\",\"Secret\":\"hs\"}' ;;\n  token.example) echo '{\"Username\":\"<token>\",\"Secret\":\"tok\"}' ;;\n  broken.example) echo 'boom' >&2; exit 3 ;;\n  *) echo 'credentials not found in native keychain'; exit 1 ;;\nesac\n",
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let prog = script.to_str().unwrap();
    assert_eq!(
        helper::run(prog, "helper.example", false).unwrap(),
        Some(basic("hu", "hs"))
    );
    assert_eq!(
        helper::run(prog, "token.example", false).unwrap(),
        Some(Auth::IdentityToken {
            username: String::new(),
            token: Secret::new("tok")
        })
    );
    assert_eq!(helper::run(prog, "absent.example", false).unwrap(), None);
    let e = helper::run(prog, "broken.example", false).unwrap_err();
    assert!(e.to_string().contains("boom"), "{e}");
    assert!(
        helper::run("/nonexistent/docker-credential-x", "h", true)
            .unwrap()
            .is_none()
    );
    assert!(helper::run("/nonexistent/docker-credential-x", "h", false).is_err());
    assert!(helper::get("../evil", "h", false).is_err());
}

#[test]
fn file_order() {
    let env = |k: &str| -> Option<PathBuf> {
        match k {
            "HOME" => Some("/home/u".into()),
            "XDG_RUNTIME_DIR" => Some("/run/user/1".into()),
            _ => None,
        }
    };
    assert_eq!(
        default_paths(None, &env),
        [
            PathBuf::from("/run/user/1/containers/auth.json"),
            "/home/u/.config/containers/auth.json".into(),
            "/home/u/.docker/config.json".into(),
        ]
    );
    assert_eq!(
        default_paths(Some(Path::new("/x.json")), &env),
        [PathBuf::from("/x.json")]
    );
    let env2 =
        |k: &str| -> Option<PathBuf> { (k == "REGISTRY_AUTH_FILE").then(|| "/r.json".into()) };
    assert_eq!(default_paths(None, &env2), [PathBuf::from("/r.json")]);

    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.json");
    let b = dir.path().join("b.json");
    std::fs::write(
        &a,
        format!(
            r#"{{"auths":{{"one.example":{{"auth":"{}"}}}}}}"#,
            b64("a:1")
        ),
    )
    .unwrap();
    std::fs::write(
        &b,
        format!(
            r#"{{"auths":{{"one.example":{{"auth":"{}"}},"two.example":{{"auth":"{}"}}}}}}"#,
            b64("b:1"),
            b64("b:2")
        ),
    )
    .unwrap();
    let files = AuthFiles::load_paths(&[dir.path().join("missing.json"), a, b]).unwrap();
    assert_eq!(files.origins().len(), 2);
    assert_eq!(files.lookup("one.example").unwrap(), Some(basic("a", "1")));
    assert_eq!(files.lookup("two.example").unwrap(), Some(basic("b", "2")));
    assert_eq!(files.lookup("three.example").unwrap(), None);
}
