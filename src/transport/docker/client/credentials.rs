//! Credentials of a session, per repository: `--creds`, else the
//! context's credential store (looked up once per repository, off the async
//! workers since a store may run a credential helper).
use super::Session;
use crate::image::{Auth, Error, Result};

impl Session {
    /// Credentials for `repository`: `--creds`, else the store.
    pub async fn credentials(&self, repository: &str) -> Result<Option<Auth>> {
        if let Some(a) = &self.shared.explicit {
            return Ok(Some(a.clone()));
        }
        let Some(store) = self.shared.store.clone() else {
            return Ok(None);
        };
        if let Some(a) = self.shared.creds.lock().expect("poisoned").get(repository) {
            return Ok(a.clone());
        }
        // A store may run a credential helper: keep it off the async workers.
        let (registry, repo) = (self.registry.clone(), repository.to_string());
        let found =
            tokio::task::spawn_blocking(move || store.lookup_for_repository(&registry, &repo))
                .await
                .map_err(|e| {
                    Error::Invalid(format!("credential lookup for {}: {e}", self.registry))
                })??;
        self.shared
            .creds
            .lock()
            .expect("poisoned")
            .insert(repository.to_string(), found.clone());
        Ok(found)
    }
}
