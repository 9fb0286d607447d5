//! The WebSocket carries the same events as JSON text frames, with their id.

use std::time::Duration;

use authstream_proto::paths;
use authstream_proto::stream::{StreamEvent, StreamEventKind};
use authstream_store::revocations;
use authstream_testkit::assert_problem;
use authstream_testkit::stream::{
    PATIENCE, StreamApp, events_to_overflow, padded_event, resume_cookie, spawn_app,
    spawn_patient_app_with,
};
use futures_util::StreamExt as _;
use reqwest::Method;
use serde_json::Value;
use tokio::net::TcpSocket;
use tokio_tungstenite::MaybeTlsStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error, Message};

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The WebSocket URL of a stream at the path segment `generation` as sent (ill-formed
/// ids, which the typed client's `ws_url` cannot take), with `token`.
fn ws_url_at(app: &StreamApp, generation: &str, token: &str) -> String {
    format!(
        "ws://127.0.0.1:{}/generations/generate/{generation}/ws?token={token}",
        app.port
    )
}

pub(crate) async fn connect(url: &str) -> Result<(Socket, Option<String>), Error> {
    connect_with(url, &[]).await
}

/// As a browser page on `origin` would (browsers always send `Origin`).
pub(crate) async fn connect_from(
    url: &str,
    origin: Option<&str>,
) -> Result<(Socket, Option<String>), Error> {
    match origin {
        Some(origin) => connect_with(url, &[("origin", origin)]).await,
        None => connect(url).await,
    }
}

/// Opens a WebSocket with these headers: the socket, and the resume cookie it set.
pub(crate) async fn connect_with(
    url: &str,
    headers: &[(&'static str, &str)],
) -> Result<(Socket, Option<String>), Error> {
    let mut request = url.into_client_request().unwrap();
    for (name, value) in headers {
        request.headers_mut().insert(*name, value.parse().unwrap());
    }
    let (socket, response) = tokio_tungstenite::connect_async(request).await?;
    Ok((socket, resume_cookie(response.headers())))
}

/// The next text frame, or the close code once the server closes.
async fn next_text(socket: &mut Socket) -> Result<String, Option<CloseCode>> {
    loop {
        let message = tokio::time::timeout(PATIENCE, socket.next())
            .await
            .expect("no frame in time");
        match message {
            Some(Ok(Message::Text(text))) => return Ok(text.as_str().to_owned()),
            Some(Ok(Message::Close(frame))) => return Err(frame.map(|f| f.code)),
            Some(Ok(_)) => {}
            Some(Err(_)) | None => return Err(None),
        }
    }
}

/// The next text frame as a stream event, or the close code once the server closes.
pub(crate) async fn next(socket: &mut Socket) -> Result<StreamEvent, Option<CloseCode>> {
    let text = next_text(socket).await?;
    Ok(serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}")))
}

#[tokio::test]
async fn a_websocket_receives_the_same_events_as_the_event_stream() {
    let app = spawn_app().await;
    let generation = app.create_generation("u").await;
    let first = app.progress(&generation, 0.5).await;
    let token = app.token("u", "s", &generation).await;
    let (mut socket, cookie) = connect(&app.client.ws_url(&generation, &token))
        .await
        .unwrap();
    app.remember(&cookie.expect("a resume cookie"));

    // The frames as sent: the exact objects on the wire.
    let frame = |text: String| serde_json::from_str::<Value>(&text).unwrap();
    let connected = frame(next_text(&mut socket).await.unwrap());
    assert_eq!(
        connected,
        serde_json::json!({ "event": "connected", "generation_id": generation })
    );
    let history = frame(next_text(&mut socket).await.unwrap());
    let last = app.complete(&generation).await;
    let live = frame(next_text(&mut socket).await.unwrap());
    assert_eq!(
        next(&mut socket).await.unwrap_err(),
        Some(CloseCode::Normal)
    );

    // Each frame is the stored object plus its id.
    let stored = app
        .store
        .read_events(generation.as_str(), None)
        .await
        .unwrap()
        .events;
    for (frame, (id, data)) in [history, live].iter().zip(&stored) {
        let mut expected: Value = serde_json::from_str(data).unwrap();
        expected["id"] = Value::String(id.clone());
        assert_eq!(frame, &expected);
    }
    assert_eq!(
        stored.iter().map(|(id, _)| id.clone()).collect::<Vec<_>>(),
        [first, last]
    );
    app.assert_no_secrets_leaked().await;
}

#[tokio::test]
async fn a_websocket_needs_a_valid_token_and_resumes_after_last_event_id() {
    let app = spawn_app().await;
    let generation = app.create_generation("u").await;
    let token = app.token("u", "s", &generation).await;
    let (socket, _) = connect(&app.client.ws_url(&generation, &token))
        .await
        .unwrap();
    drop(socket);
    match connect(&app.client.ws_url(&generation, &token)).await {
        Err(Error::Http(response)) => assert_eq!(response.status(), 401),
        other => panic!("a used token opened a WebSocket: {:?}", other.map(|_| ())),
    }

    let first = app.progress(&generation, 0.2).await;
    let second = app.progress(&generation, 0.4).await;
    let token = app.token("u", "s", &generation).await;
    let url = format!(
        "{}&last_event_id={first}",
        app.client.ws_url(&generation, &token)
    );
    let (mut socket, _) = connect(&url).await.unwrap();
    assert_eq!(
        next(&mut socket).await.unwrap().event,
        StreamEventKind::Connected
    );
    assert_eq!(next(&mut socket).await.unwrap().id, Some(second));

    // A plain GET is not an upgrade, and does not use up the token.
    let token = app.token("u", "s", &generation).await;
    let res = app
        .client
        .request(
            Method::GET,
            &format!("{}?token={token}", paths::generation_ws(&generation)),
        )
        .send()
        .await
        .unwrap();
    assert_problem(res, 422, "validation_failed").await;
    let (mut socket, _) = connect(&app.client.ws_url(&generation, &token))
        .await
        .unwrap();
    assert_eq!(
        next(&mut socket).await.unwrap().event,
        StreamEventKind::Connected
    );
    app.assert_no_secrets_leaked().await;
}

/// 1000-character and Unicode ids on the WebSocket route: refused (401)
/// without using the token, never a 500; an empty id matches no route.
#[tokio::test]
async fn odd_generation_ids_on_the_websocket_route() {
    let app = spawn_app().await;
    let generation = app.create_generation("u").await;
    let long = "a".repeat(1000);
    for (odd, status) in [
        (long.as_str(), 401),
        ("%C3%BC%E2%9C%93", 401),
        ("%F0%9F%92%A5", 401),
        ("", 404),
    ] {
        let token = app.token("u", "s", &generation).await;
        match connect(&ws_url_at(&app, odd, &token)).await {
            Err(Error::Http(response)) => assert_eq!(response.status(), status, "{odd}"),
            other => panic!("{odd:?} opened a WebSocket: {:?}", other.map(|_| ())),
        }
        // Refused without being used: it still opens its own stream.
        let own = connect(&app.client.ws_url(&generation, &token)).await;
        assert!(own.is_ok(), "{odd:?}: {:?}", own.map(|_| ()));
    }
    app.assert_no_secrets_leaked().await;
}

#[tokio::test]
async fn revoking_the_session_closes_a_websocket_with_1008() {
    let app = spawn_app().await;
    let generation = app.create_generation("u").await;
    let token = app.token("u", "s", &generation).await;
    let (mut socket, _) = connect(&app.client.ws_url(&generation, &token))
        .await
        .unwrap();
    assert_eq!(
        next(&mut socket).await.unwrap().event,
        StreamEventKind::Connected
    );
    revocations::revoke_session(&app.store, "u", "s", Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(
        next(&mut socket).await.unwrap_err(),
        Some(CloseCode::Policy)
    );
    app.assert_no_secrets_leaked().await;
}

#[tokio::test]
async fn a_websocket_that_falls_behind_is_closed_with_1013() {
    let app = spawn_patient_app_with(&[("SSE_MAX_QUEUED_EVENTS", "8")]).await;
    let generation = app.create_generation("u").await;
    let token = app.token("u", "s", &generation).await;
    // A small receive buffer, and no reading while the events are published.
    let tcp = TcpSocket::new_v4().unwrap();
    tcp.set_recv_buffer_size(4096).unwrap();
    let tcp = tcp
        .connect(([127, 0, 0, 1], app.port).into())
        .await
        .unwrap();
    let url = app.client.ws_url(&generation, &token);
    let (mut socket, _) = tokio_tungstenite::client_async(url, MaybeTlsStream::Plain(tcp))
        .await
        .unwrap();
    let padding = "x".repeat(15 * 1024);
    for step in 0..events_to_overflow(padding.len()) {
        let res = app
            .publish(&generation, &padded_event(step, &padding))
            .await;
        assert_eq!(res.status(), 202);
    }
    let mut frames = 0;
    let code = loop {
        match next(&mut socket).await {
            Ok(_) => frames += 1,
            Err(code) => break code,
        }
    };
    assert_eq!(code, Some(CloseCode::Again), "after {frames} frames");
    assert!(
        app.metric("authstream_stream_lagged_disconnects_total")
            .await
            >= 1.0
    );
    app.assert_no_secrets_leaked().await;
}
