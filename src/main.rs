//! The `kubemirror` binary: everything is in [`kubemirror::cli`].

fn main() -> std::process::ExitCode {
    kubemirror::cli::main()
}
