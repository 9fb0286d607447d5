//! The revocation feed (`GET /auth/revocations`) followed into an in-memory view.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use authstream_proto::Scope;
use authstream_proto::auth::ServiceToken;
use authstream_proto::feed::{FeedHeartbeat, FeedReset, FeedRevocation, RevocationKind};
use eventsource_stream::Eventsource as _;
use futures_util::{Stream, StreamExt as _};
use parking_lot::{Mutex, RwLock};
use tokio::sync::{mpsc, oneshot};

use crate::{BuildError, Claims};

/// Reconnect when no event came for this long (heartbeats come every ~10 ms).
const IDLE: Duration = Duration::from_secs(1);
/// The longest wait between two connection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(1);
/// How often entries past their `until` are forgotten.
const PRUNE_EVERY: Duration = Duration::from_secs(1);
/// The scope the feed needs.
const SCOPE: Scope = Scope::RevocationsRead;

/// One `revocation` event (also each entry of a `reset`).
type Revocation = FeedRevocation;
type Reset = FeedReset;
type Heartbeat = FeedHeartbeat;

/// What is revoked, each until its `until` (Unix ms).
#[derive(Default)]
struct View {
    tokens: HashMap<String, i64>,
    sessions: HashMap<String, i64>,
    /// `sub` → (`not_before`, `until`): the latest user revocation.
    users: HashMap<String, (i64, i64)>,
}

impl View {
    fn apply(&mut self, r: Revocation) {
        let keep = |map: &mut HashMap<String, i64>, key: String, until: i64| {
            let at = map.entry(key).or_insert(until);
            *at = (*at).max(until);
        };
        match r.kind {
            RevocationKind::Token => {
                if let Some(jti) = r.jti {
                    keep(&mut self.tokens, jti, r.until);
                }
            }
            RevocationKind::Session => {
                if let Some(sid) = r.sid {
                    keep(&mut self.sessions, sid, r.until);
                }
            }
            RevocationKind::User => {
                for sid in r.sids.unwrap_or_default() {
                    keep(&mut self.sessions, sid, r.until);
                }
                if let Some(not_before) = r.not_before {
                    let at = self.users.entry(r.sub).or_insert((not_before, r.until));
                    *at = (at.0.max(not_before), at.1.max(r.until));
                }
            }
        }
    }

    /// The token, its session, or its user's tokens up to `not_before` (that second
    /// included: the feed cannot tell a token of that very second from a newer one).
    fn revoked(&self, claims: &Claims) -> bool {
        self.tokens.contains_key(&claims.jti)
            || claims
                .sid
                .as_ref()
                .is_some_and(|sid| self.sessions.contains_key(sid))
            || self
                .users
                .get(&claims.sub)
                .is_some_and(|(not_before, _)| claims.iat <= *not_before)
    }

    fn prune(&mut self, now_ms: i64) {
        self.tokens.retain(|_, until| *until > now_ms);
        self.sessions.retain(|_, until| *until > now_ms);
        self.users.retain(|_, (_, until)| *until > now_ms);
    }
}

/// The view and how current it is.
pub(crate) struct Feed {
    view: RwLock<View>,
    base: Instant,
    /// Nanoseconds after `base` of the last heartbeat; 0 before the first.
    last_heartbeat: AtomicU64,
    /// The last feed position applied (opaque): where a new connection resumes.
    position: Mutex<Option<String>>,
    last_prune: Mutex<Instant>,
}

impl Feed {
    pub(crate) fn new() -> Self {
        let base = Instant::now();
        Self {
            view: RwLock::new(View::default()),
            base,
            last_heartbeat: AtomicU64::new(0),
            position: Mutex::new(None),
            last_prune: Mutex::new(base),
        }
    }

    /// True when a heartbeat came within `bound`.
    pub(crate) fn fresh(&self, bound: Duration) -> bool {
        let last = self.last_heartbeat.load(Ordering::Acquire);
        if last == 0 {
            return false;
        }
        let now = u64::try_from(self.base.elapsed().as_nanos()).unwrap_or(u64::MAX);
        now.saturating_sub(last) < u64::try_from(bound.as_nanos()).unwrap_or(u64::MAX)
    }

    pub(crate) fn revoked(&self, claims: &Claims) -> bool {
        self.view.read().revoked(claims)
    }

    fn position(&self) -> Option<String> {
        self.position.lock().clone()
    }

    /// Applies one event; true for a heartbeat.
    fn handle(&self, event: &eventsource_stream::Event) -> bool {
        match event.event.as_str() {
            "revocation" => match serde_json::from_str::<Revocation>(&event.data) {
                Ok(r) => {
                    self.view.write().apply(r);
                    if !event.id.is_empty() {
                        *self.position.lock() = Some(event.id.clone());
                    }
                }
                Err(e) => tracing::warn!(error = %e, "authstream-verify: unreadable revocation"),
            },
            "reset" => match serde_json::from_str::<Reset>(&event.data) {
                Ok(reset) => {
                    let mut view = View::default();
                    for r in reset.revocations {
                        view.apply(r);
                    }
                    *self.view.write() = view;
                    *self.position.lock() = Some(reset.position);
                }
                Err(e) => tracing::warn!(error = %e, "authstream-verify: unreadable reset"),
            },
            "heartbeat" => match serde_json::from_str::<Heartbeat>(&event.data) {
                Ok(hb) => {
                    *self.position.lock() = Some(hb.position);
                    let now = u64::try_from(self.base.elapsed().as_nanos()).unwrap_or(u64::MAX);
                    self.last_heartbeat.store(now.max(1), Ordering::Release);
                    self.prune_now_and_then();
                    return true;
                }
                Err(e) => tracing::warn!(error = %e, "authstream-verify: unreadable heartbeat"),
            },
            _ => {}
        }
        false
    }

    fn prune_now_and_then(&self) {
        let mut last = self.last_prune.lock();
        if last.elapsed() >= PRUNE_EVERY {
            *last = Instant::now();
            self.view.write().prune(unix_ms());
        }
    }
}

pub(crate) fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

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

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(sub: &str, jti: &str, sid: &str, iat: i64) -> Claims {
        serde_json::from_value(serde_json::json!({
            "iss": "a", "aud": "a", "sub": sub, "iat": iat, "nbf": iat, "exp": iat + 60,
            "jti": jti, "token_type": "access", "sid": sid,
        }))
        .unwrap()
    }

    fn revocation(json: serde_json::Value) -> Revocation {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn tokens_sessions_and_users_are_revoked_until_their_until() {
        let mut view = View::default();
        view.apply(revocation(serde_json::json!(
            {"id": "1-0", "kind": "token", "sub": "u", "jti": "j1", "until": 2000}
        )));
        view.apply(revocation(serde_json::json!(
            {"id": "2-0", "kind": "session", "sub": "u", "sid": "s1", "until": 2000}
        )));
        view.apply(revocation(serde_json::json!(
            {"id": "3-0", "kind": "user", "sub": "v", "not_before": 100, "sids": ["s9"], "until": 2000}
        )));
        assert!(view.revoked(&claims("u", "j1", "s0", 1)));
        assert!(view.revoked(&claims("u", "j2", "s1", 1)));
        assert!(!view.revoked(&claims("u", "j2", "s2", 1)));
        assert!(view.revoked(&claims("v", "j3", "s3", 99)));
        assert!(
            view.revoked(&claims("v", "j3", "s3", 100)),
            "that very second"
        );
        assert!(!view.revoked(&claims("v", "j3", "s3", 101)));
        assert!(
            view.revoked(&claims("w", "j4", "s9", 101)),
            "a listed session"
        );
        view.prune(2000);
        assert!(!view.revoked(&claims("u", "j1", "s1", 1)));
        assert!(!view.revoked(&claims("v", "j3", "s3", 99)));
    }
}
