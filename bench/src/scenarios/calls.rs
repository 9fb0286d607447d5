//! The calls the scenarios make beyond one route: a user's credentials, a stream
//! minted and opened up to `connected`, and what a failed call counts as.

use authstream_client::{ClientError, Clients, ErrorKind, SseReader};
use authstream_proto::GenerationId;
use authstream_proto::auth::Credentials;
use authstream_proto::stream::{StreamEvent, StreamEventKind};

/// The password of every user the tool registers.
pub const PASSWORD: &str = "bench password 0123";

/// What a failed call of `what` counts as: the status and problem code, or how the
/// exchange failed (never a token).
pub fn failed(what: &'static str) -> impl Fn(ClientError) -> String {
    move |e| match e.kind() {
        ErrorKind::Timeout => format!("{what}: timed out"),
        ErrorKind::Connect => format!("{what}: cannot connect"),
        ErrorKind::Status => {
            let status = e.status().map(|s| s.to_string()).unwrap_or_default();
            let code = e.code().map(|c| c.as_str()).unwrap_or_default();
            format!("{what}: {status} {code}").trim_end().to_owned()
        }
        ErrorKind::Body => format!("{what}: unexpected body"),
        _ => format!("{what}: transport error"),
    }
}

pub fn credentials(email: &str) -> Credentials {
    Credentials {
        email: email.to_owned(),
        password: PASSWORD.to_owned(),
    }
}

/// Mints a stream token for the owner and opens the stream, read up to its
/// `connected` event.
pub async fn mint_and_open(
    clients: &Clients,
    access_token: &str,
    generation_id: &GenerationId,
) -> Result<SseReader, String> {
    let minted = clients
        .auth
        .stream_token(generation_id)
        .bearer(access_token)
        .await
        .map_err(failed("POST stream-token"))?;
    let mut sse = clients
        .stream
        .open_minted(&minted)
        .await
        .map_err(failed("GET stream"))?;
    let first = sse
        .next_frame()
        .await
        .map_err(|_| "stream: read failed".to_owned())?;
    match first {
        Some(frame) if is_connected(&frame.data) => Ok(sse),
        Some(_) => Err("GET stream: the first event was not `connected`".to_owned()),
        None => Err("GET stream: ended before `connected`".to_owned()),
    }
}

/// Whether an event's data is the `connected` event.
fn is_connected(data: &str) -> bool {
    serde_json::from_str::<StreamEvent>(data).is_ok_and(|e| e.event == StreamEventKind::Connected)
}
