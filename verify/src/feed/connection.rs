//! Following the feed: service tokens from the auth service, the feed's connection,
//! reconnects with `Last-Event-ID` and renewals (`follow`).

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use authstream_proto::auth::ServiceToken;
use eventsource_stream::Eventsource as _;
use futures_util::{Stream, StreamExt as _};
use tokio::sync::{mpsc, oneshot};

use crate::BuildError;

use super::{Feed, IDLE, MAX_BACKOFF, SCOPE, unix_ms};

/// The `exp` of a JWT, read without verification (our own service token, to know when
/// to renew it).
fn expiry(token: &str) -> Option<i64> {
    use base64::Engine as _;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()?
        .get("exp")?
        .as_i64()
}

type Events = Pin<Box<dyn Stream<Item = Result<eventsource_stream::Event, String>> + Send>>;

/// Why a request failed: refused (4xx: do not retry blindly) or not answered.
#[derive(Debug)]
enum Failure {
    Refused(String),
    Unreachable(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Refused(m) | Self::Unreachable(m) => f.write_str(m),
        }
    }
}

/// Service tokens and feed connections.
pub(crate) struct Connector {
    pub(crate) http: reqwest::Client,
    pub(crate) token_url: reqwest::Url,
    pub(crate) feed_url: reqwest::Url,
    pub(crate) client_id: String,
    pub(crate) client_secret: String,
}

/// A service token and when to renew it.
struct Token {
    value: String,
    renew_at: tokio::time::Instant,
}

impl Connector {
    async fn service_token(&self) -> Result<Token, Failure> {
        let res = self
            .http
            .post(self.token_url.clone())
            .basic_auth(&self.client_id, Some(&self.client_secret))
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(format!(
                "grant_type=client_credentials&scope={}",
                SCOPE.as_str().replace(':', "%3A")
            ))
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .map_err(|e| Failure::Unreachable(e.without_url().to_string()))?;
        let status = res.status();
        if status.is_client_error() {
            return Err(Failure::Refused(format!(
                "the auth service answered {status} (are the credentials right, and does the \
                 client have the scope {SCOPE}?)"
            )));
        }
        if !status.is_success() {
            return Err(Failure::Unreachable(format!(
                "the auth service answered {status}"
            )));
        }
        let answer: ServiceToken = res
            .json()
            .await
            .map_err(|e| Failure::Unreachable(e.without_url().to_string()))?;
        // Renew at three quarters of its life: the stream ends when it expires. `exp`
        // is whole seconds, so the life left can be up to a second below `expires_in`.
        let mut life = Duration::from_secs(answer.expires_in);
        if let Some(exp) = expiry(&answer.access_token) {
            let left =
                u64::try_from(exp.saturating_mul(1000).saturating_sub(unix_ms())).unwrap_or(0);
            life = life.min(Duration::from_millis(left));
        }
        Ok(Token {
            value: answer.access_token,
            renew_at: tokio::time::Instant::now() + (life * 3 / 4).max(Duration::from_millis(200)),
        })
    }

    async fn open(&self, token: &str, last_id: Option<String>) -> Result<Events, Failure> {
        let mut req = self
            .http
            .get(self.feed_url.clone())
            .bearer_auth(token)
            .header(reqwest::header::ACCEPT, "text/event-stream");
        if let Some(id) = last_id {
            req = req.header("Last-Event-ID", id);
        }
        let res = tokio::time::timeout(Duration::from_secs(5), req.send())
            .await
            .map_err(|_| Failure::Unreachable("the feed did not answer".to_owned()))?
            .map_err(|e| Failure::Unreachable(e.without_url().to_string()))?;
        let status = res.status();
        if status.is_client_error() {
            return Err(Failure::Refused(format!(
                "the revocation feed answered {status} (does the client have the scope {SCOPE}?)"
            )));
        }
        if !status.is_success() {
            return Err(Failure::Unreachable(format!(
                "the revocation feed answered {status}"
            )));
        }
        Ok(Box::pin(
            res.bytes_stream()
                .eventsource()
                .map(|e| e.map_err(|e| e.to_string())),
        ))
    }

    /// A new token and a feed opened with it from `position`: the renewal.
    async fn renew(&self, position: Option<String>) -> Result<(Token, Events), Failure> {
        let token = self.service_token().await?;
        let events = self.open(&token.value, position).await?;
        Ok((token, events))
    }
}

/// Follows the feed forever: reconnects with `Last-Event-ID`, renews the service token
/// before it expires by opening a new feed before closing the old one. `ready` gets
/// the outcome of the first connection (its first heartbeat, or why it failed).
pub(crate) async fn follow(
    feed: Arc<Feed>,
    connector: Arc<Connector>,
    ready: oneshot::Sender<Result<(), BuildError>>,
) {
    let mut ready = Some(ready);
    let mut backoff = Duration::from_millis(20);
    let mut token: Option<Token> = None;
    loop {
        let current_token = match token.take() {
            Some(t) if t.renew_at > tokio::time::Instant::now() => t,
            _ => match connector.service_token().await {
                Ok(t) => t,
                Err(e) => {
                    if let Some(ready) = ready.take() {
                        let _ = ready.send(Err(BuildError::ServiceToken(e.to_string())));
                        return;
                    }
                    tracing::warn!(error = %e, "authstream-verify: no service token");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    continue;
                }
            },
        };
        let events = match connector.open(&current_token.value, feed.position()).await {
            Ok(events) => events,
            Err(e) => {
                if let Some(ready) = ready.take() {
                    let _ = ready.send(Err(BuildError::Feed(e.to_string())));
                    return;
                }
                tracing::warn!(error = %e, "authstream-verify: cannot open the revocation feed");
                // A refusal may be an expired or revoked token: take a new one.
                if matches!(e, Failure::Unreachable(_)) {
                    token = Some(current_token);
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        let mut current_token = current_token;
        let mut events = events;
        let (renewed_tx, mut renewed_rx) = mpsc::channel::<Result<(Token, Events), Failure>>(1);
        let mut renewing = false;
        loop {
            tokio::select! {
                next = tokio::time::timeout(IDLE, events.next()) => match next {
                    Ok(Some(Ok(event))) => {
                        if feed.handle(&event) {
                            backoff = Duration::from_millis(20);
                            if let Some(ready) = ready.take() {
                                let _ = ready.send(Ok(()));
                            }
                        }
                    }
                    Ok(Some(Err(e))) => {
                        tracing::warn!(error = %e, "authstream-verify: the revocation feed broke");
                        break;
                    }
                    Ok(None) => break,
                    Err(_) => {
                        tracing::warn!("authstream-verify: the revocation feed went silent");
                        break;
                    }
                },
                () = tokio::time::sleep_until(current_token.renew_at), if !renewing => {
                    renewing = true;
                    let connector = connector.clone();
                    let position = feed.position();
                    let tx = renewed_tx.clone();
                    tokio::spawn(async move {
                        let _ = tx.send(connector.renew(position).await).await;
                    });
                }
                Some(renewed) = renewed_rx.recv() => {
                    renewing = false;
                    match renewed {
                        // The new feed is open: switch to it, the old one closes now.
                        // Events both carried are applied twice, which changes nothing.
                        Ok((t, e)) => {
                            current_token = t;
                            events = e;
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "authstream-verify: cannot renew the feed's token yet");
                            current_token.renew_at = tokio::time::Instant::now() + Duration::from_secs(1);
                        }
                    }
                }
            }
        }
        token = Some(current_token);
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}
