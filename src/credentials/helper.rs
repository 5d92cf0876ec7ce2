//! Docker credential helpers: `docker-credential-NAME get`, the server on
//! stdin, `{"ServerURL","Username","Secret"}` on stdout. A `Username` of
//! `<token>` means `Secret` is an identity token.

use std::io::Write;
use std::process::{Command, Stdio};

use serde::Deserialize;

use crate::image::{Auth, Error, Result, Secret};
use crate::reference::DOCKER_HUB;

#[derive(Deserialize)]
struct HelperAnswer {
    #[serde(rename = "Username", default)]
    username: String,
    #[serde(rename = "Secret", default)]
    secret: String,
}

/// Ask helper `name` for `host`'s credentials. `lenient`: a helper that is
/// not installed means "nothing here" (a `credsStore` left behind by Docker
/// Desktop), not an error.
pub fn get(name: &str, host: &str, lenient: bool) -> Result<Option<Auth>> {
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        return Err(Error::Invalid(format!(
            "invalid credential helper name {name:?}"
        )));
    }
    run(&format!("docker-credential-{name}"), host, lenient)
}

/// Run `program get` for `host` (a name looked up in `PATH`, or a path).
pub(super) fn run(program: &str, host: &str, lenient: bool) -> Result<Option<Auth>> {
    // Docker stores Docker Hub credentials under its v1 URL.
    let server = if host == DOCKER_HUB {
        "https://index.docker.io/v1/"
    } else {
        host
    };
    let child = Command::new(program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && lenient => {
            tracing::warn!(helper = %program, "credential helper not installed; ignoring credsStore");
            return Ok(None);
        }
        Err(e) => {
            return Err(Error::Invalid(format!(
                "credential helper {program}: cannot run it: {e}"
            )));
        }
    };
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(server.as_bytes());
    }
    let out = child
        .wait_with_output()
        .map_err(|e| Error::Invalid(format!("credential helper {program}: {e}")))?;
    if !out.status.success() {
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        if text.to_lowercase().contains("credentials not found") {
            return Ok(None);
        }
        let first = text.lines().next().unwrap_or("").trim();
        return Err(Error::Invalid(format!(
            "credential helper {program} failed for {host} ({}): {}",
            out.status,
            first.chars().take(200).collect::<String>()
        )));
    }
    let answer: HelperAnswer = serde_json::from_slice(&out.stdout).map_err(|_| {
        Error::Invalid(format!(
            "credential helper {program}: answer for {host} is not the expected JSON"
        ))
    })?;
    if answer.secret.is_empty() && answer.username.is_empty() {
        return Ok(None);
    }
    Ok(Some(if answer.username == "<token>" {
        Auth::IdentityToken {
            username: String::new(),
            token: Secret::new(answer.secret),
        }
    } else {
        Auth::Basic {
            username: answer.username,
            password: Secret::new(answer.secret),
        }
    }))
}
