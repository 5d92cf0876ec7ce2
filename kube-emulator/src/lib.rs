//! An in-memory Kubernetes API server that the real kubectl (1.27–1.33) and
//! kube-rs 5 accept unmodified, for tests.
//!
//! ```no_run
//! # async fn demo() -> Result<(), kube_emulator::EmulatorError> {
//! let emu = kube_emulator::Emulator::start("127.0.0.1:0").await?;
//! emu.write_kubeconfig("/tmp/kubeconfig")?;
//! println!("{}", emu.url());
//! emu.hooks().compact_history();
//! emu.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! See `README.md` for what of Kubernetes is emulated and what is left out.

mod context;
mod crd;
mod discovery;
mod emulator;
mod error;
mod hooks;
mod http;
mod jsonpath;
mod managed;
mod object;
mod openapi;
mod ops;
mod patch;
mod protobuf;
mod registry;
mod schema;
mod selector;
mod store;
mod table;
mod watch;
mod workloads;

pub use emulator::{Emulator, EmulatorError, kubeconfig_yaml};
pub use hooks::{Hooks, RbacAttributes, RecordedRequest};
