//! kube-lease-manager 0.13 (the project's leader election) against the
//! emulator: server-side-apply conflicts give mutual exclusion.

mod common;

use std::time::Duration;

use common::Env;
use futures::FutureExt;
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::Api;
use kube_lease_manager::{LeaseCreateMode, LeaseManager, LeaseParams};

async fn manager(env: &Env, identity: &str) -> LeaseManager {
    LeaseManager::new(
        env.client(),
        "leader",
        "default",
        LeaseParams::new(identity, 10, 2),
        LeaseCreateMode::AutoCreate,
    )
    .await
    .expect("lease manager")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_one_manager_holds_the_lease() {
    let env = Env::start().await;
    let a = manager(&env, "a").await;
    let b = manager(&env, "b").await;
    let leases: Api<Lease> = Api::namespaced(env.client(), "default");

    // Both contend for the free lease at once: exactly one wins.
    let mut fa = a.changed().boxed();
    let mut fb = b.changed().boxed();
    let (winner, loser, mut pending) = tokio::time::timeout(Duration::from_secs(10), async {
        tokio::select! {
            r = &mut fa => { assert!(r.unwrap()); ("a", "b", fb) }
            r = &mut fb => { assert!(r.unwrap()); ("b", "a", fa) }
        }
    })
    .await
    .expect("someone acquires the lease");
    let holder = leases
        .get("leader")
        .await
        .unwrap()
        .spec
        .unwrap()
        .holder_identity;
    assert_eq!(holder.as_deref(), Some(winner));

    // The other one must not become leader while the lease is held (10 s).
    let attempt = tokio::time::timeout(Duration::from_millis(1000), &mut pending).await;
    assert!(
        attempt.is_err(),
        "{loser} became leader while {winner} holds the lease: {attempt:?}"
    );
    drop(pending);

    // After the winner releases, a fresh manager of the other identity takes over at once.
    let w = if winner == "a" { &a } else { &b };
    w.release().await.unwrap();
    let fresh = manager(&env, loser).await;
    let got = tokio::time::timeout(Duration::from_secs(10), fresh.changed())
        .await
        .expect("loser acquires after release");
    assert!(got.unwrap());
    let spec = leases.get("leader").await.unwrap().spec.unwrap();
    assert_eq!(spec.holder_identity.as_deref(), Some(loser));
    assert_eq!(spec.lease_transitions, Some(2));
    env.emu.shutdown().await;
}
