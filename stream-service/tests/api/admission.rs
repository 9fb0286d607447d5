//! What opening a stream checks besides the token: a strict `Last-Event-ID`, and
//! the `Origin` of a WebSocket.

use shared::testing;
use tokio_tungstenite::tungstenite::Error;

use crate::helpers::{ids, spawn_app, spawn_app_with};
use crate::websocket::{connect_from, next, ws_url};

#[tokio::test]
async fn a_malformed_last_event_id_is_no_resume_point_and_never_a_503() {
    let app = spawn_app().await;
    let generation = app.create_generation("u").await;
    let published = vec![
        app.publish_ok(&generation, "processing", 0.1).await,
        app.publish_ok(&generation, "processing", 0.2).await,
    ];
    let bad_ids = [
        // The very last possible id: Redis cannot read after it.
        "18446744073709551615-18446744073709551615",
        "18446744073709551616-0",
        "+1764470000123-0",
        "1764470000123-+0",
        "-1764470000123-0",
        "1764470000123-0-0",
        "1764470000123",
        "１７６４４７００００１２３-0",
        "1764470000123-0\u{1}",
        "0x1764470000123-0",
        "not-an-id",
    ];
    for (i, bad) in bad_ids.iter().enumerate() {
        let token = app.token("u", "s", &generation).await;
        // The header for some, the query for the rest (control characters fit only there).
        let res = if bad.is_ascii() && !bad.contains('\u{1}') && i % 2 == 0 {
            app.stream_request(&generation, &[("token", &token)])
                .header("Last-Event-ID", *bad)
                .send()
                .await
                .unwrap()
        } else {
            let encoded: String = bad
                .bytes()
                .map(|b| format!("%{b:02X}"))
                .collect::<Vec<_>>()
                .concat();
            app.stream_request(
                &generation,
                &[("token", &token), ("last_event_id", &encoded)],
            )
            .send()
            .await
            .unwrap()
        };
        assert_eq!(res.status(), 200, "{bad:?}");
        let mut stream = app.sse_from(res);
        let received = stream.take(3).await;
        assert_eq!(received[0].data["event"], "connected", "{bad:?}");
        // No resume point: the kept history from the start, and no `reset`.
        assert_eq!(ids(&received), published, "{bad:?}");
    }
    let logs = testing::logs().contents();
    assert!(!logs.contains("1764470000123"), "a raw id reached the log");
    app.assert_no_secrets_leaked().await;
}

#[tokio::test]
async fn a_websocket_from_another_origin_is_refused_before_its_token_is_used() {
    let app = spawn_app_with(&[
        ("CORS_ALLOWED_ORIGINS", "https://app.example"),
        ("STREAM_PUBLIC_URL", "https://stream.example:8443/base"),
    ])
    .await;
    let generation = app.create_generation("u").await;
    let token = app.token("u", "s", &generation).await;
    let url = ws_url(&app, &generation, &format!("token={token}"));
    for evil in [
        "https://evil.example",
        "null",
        "https://app.example.evil.example",
        "http://stream.example:8443",
        &format!("http://127.0.0.1:{}", app.port),
    ] {
        match connect_from(&url, Some(evil)).await {
            Err(Error::Http(res)) => {
                assert_eq!(res.status(), 403, "{evil}");
                let body: serde_json::Value =
                    serde_json::from_slice(res.body().as_deref().unwrap()).unwrap();
                assert_eq!(body["code"], "forbidden", "{evil}");
            }
            other => panic!("{evil}: {:?}", other.map(|_| ())),
        }
    }
    // The token was not used up: the allowed origins, and a client without Origin, get in.
    for allowed in [
        Some("https://app.example"),
        Some("https://STREAM.example:8443"),
        None,
    ] {
        let token = if allowed == Some("https://app.example") {
            token.clone()
        } else {
            app.token("u", "s", &generation).await
        };
        let url = ws_url(&app, &generation, &format!("token={token}"));
        let (mut socket, _) = connect_from(&url, allowed).await.unwrap();
        assert_eq!(
            next(&mut socket).await.unwrap()["event"],
            "connected",
            "{allowed:?}"
        );
    }
}

#[tokio::test]
async fn without_a_public_url_the_service_is_its_own_origin() {
    let app = spawn_app().await;
    let generation = app.create_generation("u").await;
    let token = app.token("u", "s", &generation).await;
    let url = ws_url(&app, &generation, &format!("token={token}"));
    let other = format!("http://localhost:{}", app.port);
    assert!(matches!(
        connect_from(&url, Some(&other)).await,
        Err(Error::Http(res)) if res.status() == 403
    ));
    let own = format!("http://127.0.0.1:{}", app.port);
    let (mut socket, _) = connect_from(&url, Some(&own)).await.unwrap();
    assert_eq!(next(&mut socket).await.unwrap()["event"], "connected");
}
