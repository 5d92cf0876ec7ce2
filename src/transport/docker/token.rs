//! Bearer tokens for a [`Session`]: which scopes a request needs, the cache
//! (per credentials and scope set, honouring `expires_in`), and the token
//! server conversation (GET with Basic credentials; the OAuth2 POST form for
//! identity tokens and for token servers that refuse GET).

use std::time::Duration;

use reqwest::Method;
use url::Url;

use super::auth::{self, CachedToken, Challenge, Scopes};
use super::client::{Op, Session};
use super::wire::{host_port, read_capped};
use crate::image::{Auth, Result};

impl Session {
    /// The `Authorization` value for `op` under `challenge`.
    pub(super) async fn authorization(
        &self,
        op: &Op,
        challenge: &Challenge,
        renew: bool,
    ) -> Result<Option<String>> {
        let creds = self.credentials(&op.repository).await?;
        match challenge {
            Challenge::None => Ok(None),
            Challenge::Basic => Ok(creds.as_ref().and_then(auth::basic_header)),
            Challenge::Bearer {
                realm,
                service,
                scope,
            } => {
                let mut scopes = op.scopes.clone();
                if let Some(s) = scope.as_ref().filter(|_| renew) {
                    for one in s
                        .split(' ')
                        .filter(|s| !s.is_empty() && !op.scopes.covers(s))
                    {
                        scopes = scopes.with(one.to_string());
                    }
                }
                let key = format!("{}|{}", auth::fingerprint(creds.as_ref()), scopes.key());
                if !renew && let Some(t) = self.cached_token(&key) {
                    return Ok(Some(format!("Bearer {}", t.expose())));
                }
                let _guard = self.shared.token_fetch.lock().await;
                // Another task may have fetched it while we waited.
                if !renew && let Some(t) = self.cached_token(&key) {
                    return Ok(Some(format!("Bearer {}", t.expose())));
                }
                let (token, life) = self
                    .fetch_token(op, realm, service.as_deref(), &scopes, creds.as_ref())
                    .await?;
                self.shared
                    .tokens
                    .lock()
                    .expect("poisoned")
                    .insert(key, CachedToken::new(token.clone(), life));
                Ok(Some(format!("Bearer {}", token.expose())))
            }
        }
    }

    fn cached_token(&self, key: &str) -> Option<crate::image::Secret> {
        let mut tokens = self.shared.tokens.lock().expect("poisoned");
        match tokens.get(key) {
            Some(t) if t.is_fresh() => Some(t.token.clone()),
            Some(_) => {
                tokens.remove(key);
                None
            }
            None => None,
        }
    }

    /// Ask the token server: GET with Basic credentials (or none); the
    /// OAuth2 POST form for identity tokens, or when GET is refused with 404/405.
    async fn fetch_token(
        &self,
        op: &Op,
        realm: &str,
        service: Option<&str>,
        scopes: &Scopes,
        creds: Option<&Auth>,
    ) -> Result<(crate::image::Secret, Duration)> {
        let realm_url = Url::parse(realm).map_err(|_| {
            self.plain_error(
                op,
                0,
                format!("invalid token realm {:?}", super::wire::excerpt(realm, 100)),
            )
        })?;
        let base = self.base().await?;
        if base.scheme() == "https" && realm_url.scheme() != "https" {
            // Credentials for an https registry never travel in cleartext.
            return Err(self.plain_error(
                op,
                0,
                format!(
                    "refusing token realm {}://{}: the registry is https, the realm is not (credentials would travel in cleartext)",
                    realm_url.scheme(),
                    host_port(&realm_url)
                ),
            ));
        }
        let auth_op = Op {
            what: format!("token from {}", host_port(&realm_url)),
            ..op.clone()
        };
        let use_post = matches!(creds, Some(Auth::IdentityToken { .. }));
        let mut resp = None;
        if !use_post {
            let mut url = realm_url.clone();
            {
                let mut q = url.query_pairs_mut();
                if let Some(s) = service {
                    q.append_pair("service", s);
                }
                for s in &scopes.0 {
                    q.append_pair("scope", s);
                }
            }
            let basic = creds.and_then(auth::basic_header);
            let r = self
                .execute(&auth_op, &Method::GET, &url, &|r| r, basic.as_deref(), true)
                .await?;
            let refused = matches!(r.status().as_u16(), 404 | 405);
            if !(refused && creds.is_some()) {
                resp = Some(r);
            }
        }
        let resp = match resp {
            Some(r) => r,
            None => {
                let form = auth::oauth_form(creds.expect("checked above"), service, scopes);
                let body = url::form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(&form)
                    .finish();
                self.execute(
                    &auth_op,
                    &Method::POST,
                    &realm_url,
                    &|r| {
                        r.header(
                            reqwest::header::CONTENT_TYPE,
                            "application/x-www-form-urlencoded",
                        )
                        .body(body.clone())
                    },
                    None,
                    true,
                )
                .await?
            }
        };
        if !resp.status().is_success() {
            return Err(self.status_error(&auth_op, resp).await);
        }
        let body = read_capped(resp, 1 << 20)
            .await
            .map_err(|m| self.plain_error(&auth_op, 0, m))?;
        serde_json::from_slice::<auth::TokenResponse>(&body)
            .ok()
            .and_then(auth::TokenResponse::into_token)
            .ok_or_else(|| {
                self.plain_error(&auth_op, 0, "token server answered without a token".into())
            })
    }
}
