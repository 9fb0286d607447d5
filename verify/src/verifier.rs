use std::sync::Arc;
use std::time::Duration;

use authstream_proto::TokenType;
use jsonwebtoken::Algorithm;
use tokio::sync::oneshot;

use crate::feed::{Connector, Feed, unix_ms};
use crate::jwks::{JWKS_DEFAULT_REFRESH, RemoteJwks, jwks_url};
use crate::token::{self, JwtSettings, TokenError};
use crate::{BuildError, Claims, VerifyError};

/// Verifies authstream tokens locally. Cheap to clone (one shared state); the
/// background tasks (JWKS refresh, revocation feed) run on a thread of their own, so
/// that a busy application runtime cannot delay heartbeats into false staleness; they
/// stop when the last clone is dropped.
#[derive(Clone)]
pub struct Verifier {
    inner: Arc<Inner>,
}

struct Inner {
    keys: Arc<RemoteJwks>,
    feed: Arc<Feed>,
    settings: JwtSettings,
    staleness: Duration,
    /// Dropped with the last clone: the background thread's runtime then stops.
    _stop: oneshot::Sender<()>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("issuer", &self.inner.settings.issuer)
            .field("audience", &self.inner.settings.audience)
            .field("staleness_bound", &self.inner.staleness)
            .finish_non_exhaustive()
    }
}

/// Settings of a [`Verifier`]; [`build`](Self::build) starts it.
#[derive(Debug, Clone)]
#[must_use]
pub struct VerifierBuilder {
    auth_url: String,
    issuer: String,
    audience: String,
    credentials: Option<(String, String)>,
    leeway: Duration,
    staleness: Duration,
    allow_http_hosts: Vec<String>,
    jwks_min_refresh: Duration,
    ready_timeout: Duration,
}

impl Verifier {
    /// A builder for the auth service at `auth_url` (e.g. `https://auth.example.com`,
    /// the base of `/.well-known/jwks.json`, `/auth/service-token` and
    /// `/auth/revocations`).
    pub fn builder(auth_url: impl Into<String>) -> VerifierBuilder {
        VerifierBuilder {
            auth_url: auth_url.into(),
            issuer: "authstream".to_owned(),
            audience: "authstream".to_owned(),
            credentials: None,
            leeway: Duration::from_secs(5),
            staleness: Duration::from_millis(100),
            allow_http_hosts: Vec::new(),
            jwks_min_refresh: Duration::from_secs(5),
            ready_timeout: Duration::from_secs(10),
        }
    }

    /// Verifies a user's access token: signature, algorithm, `iss`, `aud`,
    /// `token_type` `access`, `exp`, `nbf`, then revocation. No network call, except
    /// a JWKS refetch for a `kid` it does not know (at most once per 5 s).
    pub async fn verify(&self, token: &str) -> Result<Claims, VerifyError> {
        self.verify_as(token, TokenType::Access).await
    }

    /// [`verify`](Self::verify) for a service token (`token_type` `service`).
    pub async fn verify_service(&self, token: &str) -> Result<Claims, VerifyError> {
        self.verify_as(token, TokenType::Service).await
    }

    /// True while the revocation feed is current (a heartbeat within the bound):
    /// verifications give verdicts.
    pub fn is_current(&self) -> bool {
        self.inner.feed.fresh(self.inner.staleness)
    }

    async fn verify_as(&self, token: &str, token_type: TokenType) -> Result<Claims, VerifyError> {
        let inner = &*self.inner;
        let claims = self.check(token, token_type).await?;
        if !inner.feed.fresh(inner.staleness) {
            return Err(VerifyError::Unavailable(
                "the revocation feed is not current",
            ));
        }
        if inner.feed.revoked(&claims) {
            return Err(VerifyError::Revoked);
        }
        Ok(claims)
    }

    /// The core's checks: the JWKS publishes Ed25519 keys only, so the algorithm is
    /// pinned to EdDSA.
    async fn check(&self, token: &str, token_type: TokenType) -> Result<Claims, TokenError> {
        let inner = &*self.inner;
        let kid = token::key_id(token, Algorithm::EdDSA)?;
        let keys = inner.keys.keys_with(&kid).await?;
        let key = keys.get(&kid).ok_or(TokenError::UnknownKey)?;
        let claims: Claims = token::decode(token, key, Algorithm::EdDSA, token_type)?;
        if token_type == TokenType::Access && claims.sid.is_none() {
            return Err(TokenError::BadClaims);
        }
        inner
            .settings
            .check(&claims.reg, unix_ms().div_euclid(1000))?;
        Ok(claims)
    }
}

impl VerifierBuilder {
    /// The expected `iss` (the auth service's `JWT_ISSUER`; default `authstream`).
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = issuer.into();
        self
    }

    /// The expected `aud` (the auth service's `JWT_AUDIENCE`; default `authstream`).
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = audience.into();
        self
    }

    /// The service client that follows the revocation feed: it needs the scope
    /// `revocations:read` (`SERVICE_CLIENTS` of the auth service). Required.
    pub fn service_credentials(
        mut self,
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
    ) -> Self {
        self.credentials = Some((client_id.into(), client_secret.into()));
        self
    }

    /// Clock leeway for `exp` and `nbf`, whole seconds (default 5 s, as the auth
    /// service's `JWT_LEEWAY_SECS`).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// How old the feed's last heartbeat may be before verifications answer
    /// [`VerifyError::Unavailable`] (default 100 ms; heartbeats come every ~10 ms).
    pub fn staleness_bound(mut self, bound: Duration) -> Self {
        self.staleness = bound;
        self
    }

    /// Hosts the auth service may be reached at over plain `http://` besides loopback
    /// (e.g. `auth` in a private network). Everything else needs `https://`.
    pub fn allow_http_hosts<I, S>(mut self, hosts: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.allow_http_hosts = hosts.into_iter().map(Into::into).collect();
        self
    }

    /// The shortest time between two JWKS fetches for unknown `kid`s (default 5 s):
    /// made-up key ids cannot make the verifier hammer the auth service.
    pub fn jwks_min_refresh(mut self, interval: Duration) -> Self {
        self.jwks_min_refresh = interval;
        self
    }

    /// How long [`build`](Self::build) waits for the feed's first heartbeat (default 10 s).
    pub fn ready_timeout(mut self, timeout: Duration) -> Self {
        self.ready_timeout = timeout;
        self
    }

    /// Fetches the JWKS, takes a service token, opens the revocation feed and waits
    /// for its first heartbeat; then keeps all three current in background tasks.
    /// Call it inside a Tokio runtime.
    pub async fn build(self) -> Result<Verifier, BuildError> {
        let (client_id, client_secret) = self.credentials.clone().ok_or_else(|| {
            BuildError::Config("service_credentials(id, secret) is required".to_owned())
        })?;
        let base = self.base_url()?;
        token::install_crypto_provider();
        let client = |pooled: bool| {
            let mut builder = reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(3))
                // A redirect could point a fetch anywhere (and over plain http).
                .redirect(reqwest::redirect::Policy::none());
            if !pooled {
                // Used from the application's runtime and the background one: no
                // connection outlives the runtime that made it.
                builder = builder.pool_max_idle_per_host(0);
            }
            builder
                .build()
                .map_err(|e| BuildError::Config(e.to_string()))
        };
        let jwks = jwks_url(base.as_str()).map_err(BuildError::Config)?;
        let keys = Arc::new(RemoteJwks::new(
            jwks,
            client(false)?,
            self.jwks_min_refresh,
            JWKS_DEFAULT_REFRESH,
        ));
        keys.refresh().await.map_err(BuildError::Jwks)?;
        let connector = Arc::new(Connector {
            http: client(true)?,
            token_url: endpoint(&base, &["auth", "service-token"])?,
            feed_url: endpoint(&base, &["auth", "revocations"])?,
            client_id,
            client_secret,
        });
        let feed = Arc::new(Feed::new());
        let (ready_tx, ready_rx) = oneshot::channel();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| BuildError::Config(format!("cannot start a runtime: {e}")))?;
        runtime.spawn(crate::feed::follow(feed.clone(), connector, ready_tx));
        runtime.spawn(RemoteJwks::refresh_forever(Arc::downgrade(&keys)));
        let (stop, stopped) = oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("authstream-verify".to_owned())
            .spawn(move || {
                // Until the verifier is dropped; dropping the runtime ends its tasks.
                let _ = runtime.block_on(stopped);
            })
            .map_err(|e| BuildError::Config(format!("cannot start a thread: {e}")))?;
        let verifier = Verifier {
            inner: Arc::new(Inner {
                keys,
                feed,
                settings: JwtSettings {
                    issuer: self.issuer,
                    audience: self.audience,
                    leeway: self.leeway,
                },
                staleness: self.staleness,
                _stop: stop,
            }),
        };
        match tokio::time::timeout(self.ready_timeout, ready_rx).await {
            Ok(Ok(Ok(()))) => Ok(verifier),
            Ok(Ok(Err(e))) => Err(e),
            Ok(Err(_)) => Err(BuildError::Feed("the feed task ended".to_owned())),
            Err(_) => Err(BuildError::Feed("no heartbeat in time".to_owned())),
        }
    }

    /// The auth URL, checked: http(s), a host, plain http only to loopback or an
    /// allowed host.
    fn base_url(&self) -> Result<reqwest::Url, BuildError> {
        let url = reqwest::Url::parse(&self.auth_url)
            .map_err(|e| BuildError::Config(format!("the auth URL is not a URL: {e}")))?;
        let name = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| BuildError::Config("the auth URL has no host".to_owned()))?
            .trim_matches(['[', ']'])
            .to_ascii_lowercase();
        match url.scheme() {
            "https" => Ok(url),
            "http" => {
                let loopback = name == "localhost"
                    || name
                        .parse::<std::net::IpAddr>()
                        .is_ok_and(|ip| ip.is_loopback());
                let allowed = self.allow_http_hosts.iter().any(|h| {
                    h.trim()
                        .trim_matches(['[', ']'])
                        .eq_ignore_ascii_case(&name)
                });
                if loopback || allowed {
                    Ok(url)
                } else {
                    Err(BuildError::Config(
                        "plain http is allowed only to loopback and allow_http_hosts: use https"
                            .to_owned(),
                    ))
                }
            }
            _ => Err(BuildError::Config(
                "the auth URL must be http:// or https://".to_owned(),
            )),
        }
    }
}

/// `base` with `segments` appended to its path.
fn endpoint(base: &reqwest::Url, segments: &[&str]) -> Result<reqwest::Url, BuildError> {
    let mut url = base.clone();
    url.set_fragment(None);
    url.path_segments_mut()
        .map_err(|()| BuildError::Config("the auth URL cannot have a path".to_owned()))?
        .pop_if_empty()
        .extend(segments);
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_only_to_loopback_and_allowed_hosts() {
        let ok = |url: &str, hosts: &[&str]| {
            Verifier::builder(url)
                .allow_http_hosts(hosts.iter().copied())
                .base_url()
                .is_ok()
        };
        assert!(ok("http://127.0.0.1:8081", &[]));
        assert!(ok("http://localhost:8081", &[]));
        assert!(ok("http://[::1]:8081", &[]));
        assert!(ok("https://auth.example.com", &[]));
        assert!(!ok("http://auth.example.com", &[]));
        assert!(ok("http://auth:8081", &["auth"]));
        assert!(!ok("http://auth.example.com\\@localhost:8081", &[]));
        assert!(!ok("ftp://auth", &["auth"]));
    }

    #[test]
    fn endpoints_are_under_the_auth_url() {
        let base = reqwest::Url::parse("https://a.example/base/").unwrap();
        assert_eq!(
            endpoint(&base, &["auth", "revocations"]).unwrap().as_str(),
            "https://a.example/base/auth/revocations"
        );
    }
}
