//! What opening a stream checks besides the token: a strict `Last-Event-ID`.

use shared::testing;

use crate::helpers::{ids, spawn_app};

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
