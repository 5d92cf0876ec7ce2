//! A SIF's definition file (the Singularity recipe stored in the image): its
//! `%environment` and `%runscript` sections become the script skopeo injects
//! as `/podman/runscript` and the image's command (containers/image
//! `sif/load.go`: `parseDefFile`, `generateInjectedScript`, `processDefFile`).

/// Where the injected script goes in the layer (without the leading `/`).
pub const RUNSCRIPT_PATH: &str = "podman/runscript";

/// Definition files larger than this are refused (recipes are a few KiB).
pub const MAX_DEFFILE: u64 = 1 << 20;

/// What the definition file makes of the image: the command, and the script
/// to inject when the recipe has an environment or run script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub cmd: Vec<String>,
    pub runscript: Option<Vec<u8>>,
}

/// The command without a definition file, or with one that has neither
/// section: `bash`, as skopeo.
pub fn default_command() -> Command {
    Command {
        cmd: vec!["bash".into()],
        runscript: None,
    }
}

/// Parse a definition file as skopeo does: lines are trimmed; a line that is
/// exactly `%environment` or `%runscript` starts that section, any other line
/// starting with `%` ends it; environment lines that are empty or comments are
/// dropped; run script lines are kept as they are (trimmed). Invalid UTF-8 is
/// read lossily.
pub fn parse(def: &[u8]) -> Command {
    #[derive(PartialEq)]
    enum State {
        Other,
        Environment,
        Runscript,
    }
    let text = String::from_utf8_lossy(def);
    let mut env = Vec::new();
    let mut run = Vec::new();
    let mut state = State::Other;
    for line in text.lines() {
        let s = line.trim();
        if s == "%environment" {
            state = State::Environment;
        } else if s == "%runscript" {
            state = State::Runscript;
        } else if s.starts_with('%') {
            state = State::Other;
        } else if state == State::Environment {
            if !s.is_empty() && !s.starts_with('#') {
                env.push(s);
            }
        } else if state == State::Runscript {
            run.push(s);
        }
    }
    if env.is_empty() && run.is_empty() {
        return default_command();
    }
    let script = format!("#!/bin/bash\n{}\n{}\n", env.join("\n"), run.join("\n"));
    Command {
        cmd: vec![format!("/{RUNSCRIPT_PATH}")],
        runscript: Some(script.into_bytes()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_become_the_injected_script() {
        let def = b"Bootstrap: docker\nFrom: alpine\n%environment\n  # comment\n  export A=1\n\n%post\n  echo no\n%runscript\n  echo hi \"$@\"\n";
        let c = parse(def);
        assert_eq!(c.cmd, vec!["/podman/runscript"]);
        assert_eq!(
            String::from_utf8(c.runscript.unwrap()).unwrap(),
            "#!/bin/bash\nexport A=1\necho hi \"$@\"\n"
        );
        assert_eq!(
            parse(b"Bootstrap: docker\n%post\necho\n"),
            default_command()
        );
        assert_eq!(parse(b"\xff\xfe%runscript"), default_command());
    }
}
