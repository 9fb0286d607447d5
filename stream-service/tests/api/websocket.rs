//! The WebSocket carries the same events as JSON text frames, with their id.

use std::time::Duration;

use authstream_store::revocations;
use futures_util::StreamExt as _;
use serde_json::Value;
use tokio::net::TcpSocket;
use tokio_tungstenite::MaybeTlsStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error, Message};

use crate::helpers::{PATIENCE, TestApp, events_to_overflow, spawn_app, spawn_patient_app_with};

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub(crate) fn ws_url(app: &TestApp, generation: &str, query: &str) -> String {
    format!(
        "ws://127.0.0.1:{}/generations/generate/{generation}/ws?{query}",
        app.port
    )
}

async fn connect(url: &str) -> Result<(Socket, String), Error> {
    connect_from(url, None).await
}

/// As a browser page on `origin` would (browsers always send `Origin`).
pub(crate) async fn connect_from(
    url: &str,
    origin: Option<&str>,
) -> Result<(Socket, String), Error> {
    let mut request = url.into_client_request().unwrap();
    if let Some(origin) = origin {
        request
            .headers_mut()
            .insert("origin", origin.parse().unwrap());
    }
    let (socket, response) = tokio_tungstenite::connect_async(request).await?;
    let cookie = response
        .headers()
        .get("set-cookie")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    Ok((socket, cookie))
}

/// The next text frame as JSON, or the close code once the server closes.
pub(crate) async fn next(socket: &mut Socket) -> Result<Value, Option<CloseCode>> {
    loop {
        let message = tokio::time::timeout(PATIENCE, socket.next())
            .await
            .expect("no frame in time");
        match message {
            Some(Ok(Message::Text(text))) => return Ok(serde_json::from_str(&text).unwrap()),
            Some(Ok(Message::Close(frame))) => return Err(frame.map(|f| f.code)),
            Some(Ok(_)) => {}
            Some(Err(_)) | None => return Err(None),
        }
    }
}

#[tokio::test]
async fn a_websocket_receives_the_same_events_as_the_event_stream() {
    let app = spawn_app().await;
    let generation = app.create_generation("u").await;
    let first = app.publish_ok(&generation, "processing", 0.5).await;
    let token = app.token("u", "s", &generation).await;
    let (mut socket, cookie) = connect(&ws_url(&app, &generation, &format!("token={token}")))
        .await
        .unwrap();
    let resume = cookie
        .split(';')
        .next()
        .unwrap()
        .trim_start_matches("as_resume=");
    app.remember(resume);

    let connected = next(&mut socket).await.unwrap();
    assert_eq!(
        connected,
        serde_json::json!({ "event": "connected", "generation_id": generation })
    );
    let history = next(&mut socket).await.unwrap();
    let last = app.publish_ok(&generation, "completed", 1.0).await;
    let live = next(&mut socket).await.unwrap();
    assert_eq!(
        next(&mut socket).await.unwrap_err(),
        Some(CloseCode::Normal)
    );

    // Each frame is the stored object plus its id.
    let stored = app
        .store
        .read_events(&generation, None)
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
    let (socket, _) = connect(&ws_url(&app, &generation, &format!("token={token}")))
        .await
        .unwrap();
    drop(socket);
    match connect(&ws_url(&app, &generation, &format!("token={token}"))).await {
        Err(Error::Http(response)) => assert_eq!(response.status(), 401),
        other => panic!("a used token opened a WebSocket: {:?}", other.map(|_| ())),
    }

    let first = app.publish_ok(&generation, "processing", 0.2).await;
    let second = app.publish_ok(&generation, "processing", 0.4).await;
    let token = app.token("u", "s", &generation).await;
    let url = ws_url(
        &app,
        &generation,
        &format!("token={token}&last_event_id={first}"),
    );
    let (mut socket, _) = connect(&url).await.unwrap();
    assert_eq!(next(&mut socket).await.unwrap()["event"], "connected");
    assert_eq!(next(&mut socket).await.unwrap()["id"], second.as_str());

    // A plain GET is not an upgrade, and does not use up the token.
    let token = app.token("u", "s", &generation).await;
    let res = app
        .http
        .get(app.url(&format!(
            "/generations/generate/{generation}/ws?token={token}"
        )))
        .send()
        .await
        .unwrap();
    crate::helpers::assert_problem(res, 422, "validation_failed").await;
    let (mut socket, _) = connect(&ws_url(&app, &generation, &format!("token={token}")))
        .await
        .unwrap();
    assert_eq!(next(&mut socket).await.unwrap()["event"], "connected");
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
        match connect(&ws_url(&app, odd, &format!("token={token}"))).await {
            Err(Error::Http(response)) => assert_eq!(response.status(), status, "{odd}"),
            other => panic!("{odd:?} opened a WebSocket: {:?}", other.map(|_| ())),
        }
        // Refused without being used: it still opens its own stream.
        let own = connect(&ws_url(&app, &generation, &format!("token={token}"))).await;
        assert!(own.is_ok(), "{odd:?}: {:?}", own.map(|_| ()));
    }
    app.assert_no_secrets_leaked().await;
}

#[tokio::test]
async fn revoking_the_session_closes_a_websocket_with_1008() {
    let app = spawn_app().await;
    let generation = app.create_generation("u").await;
    let token = app.token("u", "s", &generation).await;
    let (mut socket, _) = connect(&ws_url(&app, &generation, &format!("token={token}")))
        .await
        .unwrap();
    assert_eq!(next(&mut socket).await.unwrap()["event"], "connected");
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
    let url = ws_url(&app, &generation, &format!("token={token}"));
    let (mut socket, _) = tokio_tungstenite::client_async(url, MaybeTlsStream::Plain(tcp))
        .await
        .unwrap();
    let padding = "x".repeat(15 * 1024);
    for step in 0..events_to_overflow(padding.len()) {
        let res = app
            .publish(
                &generation,
                &serde_json::json!({ "status": "processing", "step": step, "padding": padding }),
            )
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
