//! Running the two command-line tools side by side: kubemirror (with
//! `--insecure-policy`, as the skopeo-compatibility tests call it) and the
//! real skopeo, with assertions that print stderr when a run goes the wrong way.

use std::process::{Command, Output};

/// `kubemirror --insecure-policy`, ready for more arguments.
pub fn km() -> Command {
    let mut c = super::kubemirror();
    c.arg("--insecure-policy");
    c
}

/// Runs `c` to completion.
pub fn run(mut c: Command) -> Output {
    c.output().expect("run")
}

/// The stdout of a run that must have succeeded.
pub fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The stderr of a run that must have failed.
pub fn err(o: &Output) -> String {
    assert!(
        !o.status.success(),
        "succeeded: {}",
        String::from_utf8_lossy(&o.stdout)
    );
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `skopeo ARGS`, which must succeed: its stdout.
pub fn sk(args: &[&str]) -> String {
    let mut c = super::skopeo();
    c.args(args);
    ok(&run(c))
}
