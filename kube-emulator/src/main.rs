//! `kube-emulator --listen 127.0.0.1:PORT --kubeconfig FILE`: serves until
//! SIGTERM/SIGINT, after writing the kubeconfig and printing one line
//! `kube-emulator listening on http://127.0.0.1:PORT`.

use std::io::Write;
use std::process::ExitCode;

const USAGE: &str = "usage: kube-emulator [--listen 127.0.0.1:PORT] [--kubeconfig FILE]";

fn parse_args() -> Result<(String, Option<String>), String> {
    let mut listen = "127.0.0.1:0".to_string();
    let mut kubeconfig = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let (key, inline) = match a.split_once('=') {
            Some((k, v)) => (k.to_string(), Some(v.to_string())),
            None => (a.clone(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{key} needs a value\n{USAGE}"))
        };
        match key.as_str() {
            "--listen" => listen = value()?,
            "--kubeconfig" => kubeconfig = Some(value()?),
            "-h" | "--help" => return Err(USAGE.to_string()),
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    Ok((listen, kubeconfig))
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let (listen, kubeconfig) = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let emu = match kube_emulator::Emulator::start(&listen).await {
        Ok(e) => e,
        Err(e) => {
            eprintln!("kube-emulator: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(path) = kubeconfig
        && let Err(e) = emu.write_kubeconfig(&path)
    {
        eprintln!("kube-emulator: {e}");
        return ExitCode::FAILURE;
    }
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "kube-emulator listening on {}", emu.url());
    let _ = out.flush();
    drop(out);
    wait_for_signal().await;
    emu.shutdown().await;
    ExitCode::SUCCESS
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
