//! kube-emulator in process with the kubemirror CRDs installed (and
//! Established), and a kubeconfig on disk for subprocesses (the controller
//! binary, kubectl).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::PostParams;
use kube::{Api, Client};
use kube_emulator::Emulator;

use kubemirror::api::v1alpha1::{ImageMirror, crds};

pub struct Cluster {
    pub emu: Emulator,
    pub dir: tempfile::TempDir,
    /// `dir/kubeconfig`, pointing at the emulator.
    pub kubeconfig: PathBuf,
}

impl Cluster {
    pub async fn start() -> Cluster {
        let emu = Emulator::start("127.0.0.1:0")
            .await
            .expect("start kube-emulator");
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = dir.path().join("kubeconfig");
        emu.write_kubeconfig(&kubeconfig).unwrap();
        let c = Cluster {
            emu,
            dir,
            kubeconfig,
        };
        install_crds(&c.client(), Duration::from_secs(30)).await;
        c
    }

    pub fn client(&self) -> Client {
        Client::try_from(kube::Config::new(self.emu.url().parse().unwrap())).unwrap()
    }

    /// ImageMirrors in `default`.
    pub fn mirrors(&self) -> Api<ImageMirror> {
        Api::namespaced(self.client(), "default")
    }
}

/// Create the CRDs and wait until they are Established.
async fn install_crds(client: &Client, deadline: Duration) {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in crds() {
        api.create(&PostParams::default(), &crd)
            .await
            .expect("create CRD");
    }
    let until = Instant::now() + deadline;
    for crd in crds() {
        let name = crd.metadata.name.clone().unwrap();
        loop {
            let got = api.get(&name).await.expect("get CRD");
            let established = got
                .status
                .and_then(|s| s.conditions)
                .unwrap_or_default()
                .iter()
                .any(|c| c.type_ == "Established" && c.status == "True");
            if established {
                break;
            }
            assert!(Instant::now() < until, "CRD {name} not Established");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
