//! `GET /auth/revocations`: every revocation as Server-Sent Events, for services that
//! verify tokens themselves (scope `revocations:read`).

use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;

use actix_web::http::header::{self, ContentEncoding};
use actix_web::{HttpRequest, HttpResponse, get, web};
use actix_web_lab::sse;
use authstream_proto::Scope;
use authstream_runtime::UnixTime;
use authstream_web::ApiError;
use authstream_web::ErrorCode;
use authstream_web::http::Caller;
use serde::Deserialize;
use tokio::sync::{broadcast, watch};

use crate::feed::{Item, Position, Start, Subscription};
use crate::state::AuthState;

pub const SCOPE: Scope = Scope::RevocationsRead;

/// What `retry:` tells a reconnecting client to wait.
const RETRY: Duration = Duration::from_secs(1);

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FeedQuery {
    /// Where to resume, for clients that cannot send the `Last-Event-ID` header (the
    /// header wins): an event's id, as received
    last_event_id: Option<String>,
}

#[utoipa::path(
    tag = "tokens", summary = "Follow every revocation (Server-Sent Events)",
    description = "For services that verify tokens themselves. Events: `revocation` (`id:` the feed position just after it, data a `FeedRevocation`), `reset` (first, when there is no `Last-Event-ID` or it is older than the kept log: `id:` the position it covers, data `{position, time, revocations: [FeedRevocation]}`, everything still in force: drop what you held), `heartbeat` (about every 10 ms, at most 25 ms apart while every log can be read: data `{position, time}`, the position and the Unix ms of the reads that found nothing after it). A position is opaque (the last id read of each of the revocation log's shards, comma-separated): send it back as it came. The stream ends when the caller's token expires or is revoked, when the caller falls more than 1024 events behind, and at shutdown; resume with `Last-Event-ID`.",
    security(("bearer" = [])),
    params(
        FeedQuery,
        ("Last-Event-ID" = Option<String>, Header, description = "The last event id received: the stream resumes after it")
    ),
    responses(
        (status = 200, description = "The revocation events (`Cache-Control: no-store`)", content_type = "text/event-stream", body = String),
        (status = 401, response = authstream_web::openapi::Unauthorized),
        (status = 403, response = authstream_web::openapi::Forbidden),
        (status = 422, response = authstream_web::openapi::Unprocessable),
        (status = 429, response = authstream_web::openapi::TooManyRequests),
        (status = 503, response = authstream_web::openapi::Unavailable)
    )
)]
#[get("/auth/revocations")]
pub async fn follow(
    state: web::Data<AuthState>,
    req: HttpRequest,
    caller: Caller,
    query: web::Query<FeedQuery>,
) -> Result<HttpResponse, ApiError> {
    let claims = match caller {
        Caller::Service(claims) if claims.has_scope(SCOPE) => claims,
        Caller::Service(_) => {
            return Err(ApiError::new(
                ErrorCode::InsufficientScope,
                format!("the scope {SCOPE} is required"),
            ));
        }
        Caller::User(_) => {
            return Err(ApiError::forbidden(format!(
                "this needs a service token with the scope {SCOPE}"
            )));
        }
    };
    let header_id = req
        .headers()
        .get("last-event-id")
        .map(|v| v.to_str().unwrap_or("\u{0}"));
    let last =
        match header_id.or(query.last_event_id.as_deref()) {
            None | Some("") => None,
            Some(id) => Some(Position::parse(id.trim()).ok_or_else(|| {
                ApiError::field("Last-Event-ID", "must be an event id of this feed")
            })?),
        };
    let wait = state.settings.common.redis_timeout;
    let resumed = last.is_some();
    let Some(subscription) = state.feed.subscribe(last, wait).await else {
        return Err(ApiError::new(
            ErrorCode::StoreUnavailable,
            "the revocation log cannot be read right now",
        ));
    };
    let now = UnixTime::now();
    let expires_in = now.until(UnixTime::from_secs(claims.reg.exp));
    tracing::info!(client_id = %claims.client_id(), resumed, "revocation feed opened");
    let follower = Follower {
        queue: VecDeque::new(),
        subscription,
        shutdown: state.feed.shutdown_signal(),
        expiry: Box::pin(tokio::time::sleep(expires_in)),
        own_jti: claims.reg.jti.clone(),
        done: false,
    };
    let body = sse::Sse::from_stream(events(follower)).with_retry_duration(RETRY);
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header(("X-Accel-Buffering", "no"))
        .insert_header(ContentEncoding::Identity)
        .body(body))
}

struct Follower {
    queue: VecDeque<sse::Event>,
    subscription: Subscription,
    shutdown: watch::Receiver<bool>,
    expiry: std::pin::Pin<Box<tokio::time::Sleep>>,
    own_jti: String,
    done: bool,
}

fn revocation_event(id: &str, json: &str) -> sse::Event {
    sse::Event::Data(
        sse::Data::new(json.to_owned())
            .event("revocation")
            .id(id.to_owned()),
    )
}

impl Follower {
    fn start(&mut self) {
        match std::mem::replace(&mut self.subscription.start, Start::Resume(Vec::new())) {
            Start::Resume(entries) => {
                for e in entries {
                    self.queue.push_back(revocation_event(&e.id, &e.json));
                }
            }
            Start::Reset { json, position } => {
                self.queue.push_back(sse::Event::Data(
                    sse::Data::new(json).event("reset").id(position),
                ));
            }
        }
    }

    /// The next event, or `None` when the stream ends.
    async fn next(&mut self) -> Option<sse::Event> {
        loop {
            if let Some(event) = self.queue.pop_front() {
                return Some(event);
            }
            if self.done || *self.shutdown.borrow() {
                return None;
            }
            let item = tokio::select! {
                biased;
                _ = self.shutdown.changed() => return None,
                _ = &mut self.expiry => return None,
                item = self.subscription.receiver.recv() => item,
            };
            match item {
                Ok(Item::Entry(entry)) => {
                    let delivered = &mut self.subscription.delivered;
                    if delivered.covers(entry.log, entry.key) {
                        continue;
                    }
                    *delivered = Position::parse(&entry.id).unwrap_or_else(|| delivered.clone());
                    // The caller's own token revoked: this is its last event.
                    self.done = entry.jti.as_deref() == Some(self.own_jti.as_str());
                    return Some(revocation_event(&entry.id, &entry.json));
                }
                Ok(Item::Heartbeat { position, time }) => {
                    // A heartbeat queued before this follower started may name an
                    // older position than it has: it says the newer, just as current.
                    let position = position.max(&self.subscription.delivered);
                    return Some(sse::Event::Data(
                        sse::Data::new(Item::heartbeat_json(&position, time)).event("heartbeat"),
                    ));
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    tracing::info!("revocation feed: a follower fell behind and is disconnected");
                    return None;
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }
}

fn events(
    mut follower: Follower,
) -> impl futures_util::Stream<Item = Result<sse::Event, Infallible>> {
    follower.start();
    futures_util::stream::unfold(follower, |mut follower| async move {
        let event = follower.next().await?;
        Some((Ok(event), follower))
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::feed::{MAX_QUEUED, RevocationFeed};

    fn follower(feed: &Arc<crate::feed::RevocationFeed>, subscription: Subscription) -> Follower {
        Follower {
            queue: VecDeque::new(),
            subscription,
            shutdown: feed.shutdown_signal(),
            expiry: Box::pin(tokio::time::sleep(Duration::from_secs(60))),
            own_jti: "own".into(),
            done: false,
        }
    }

    #[tokio::test]
    async fn a_follower_that_falls_behind_is_disconnected_and_shutdown_ends_the_others() {
        let feed = RevocationFeed::new(
            authstream_store::Store::memory("lag"),
            Duration::from_secs(60),
        );
        let wait = Duration::from_secs(5);
        let slow = feed.subscribe(None, wait).await.unwrap();
        let mut slow = follower(&feed, slow);
        let mut keeping_up = follower(&feed, feed.subscribe(None, wait).await.unwrap());
        slow.start();
        keeping_up.start();
        let (first, second) = (slow.next().await.unwrap(), keeping_up.next().await.unwrap());
        assert!(matches!(first, sse::Event::Data(_)) && matches!(second, sse::Event::Data(_)));
        for _ in 0..=MAX_QUEUED * 2 {
            feed.send(Item::Heartbeat {
                position: Arc::new(Position::start(8)),
                time: 1,
            });
        }
        // Whatever it may still take, it ends instead of skipping events.
        let mut taken = 0;
        while slow.next().await.is_some() {
            taken += 1;
            assert!(taken <= MAX_QUEUED, "never more than the queue");
        }
        feed.shutdown();
        assert!(
            keeping_up.next().await.is_none(),
            "shutdown ends the stream"
        );
    }
}
