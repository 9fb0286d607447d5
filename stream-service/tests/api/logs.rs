//! Logs say what happened and never what the secret was.

use authstream_proto::GenerationStatus;
use authstream_proto::stream::{NewEventBody, StreamEventKind};
use authstream_testkit::assert_problem;
use authstream_testkit::stream::spawn_app;

#[tokio::test]
async fn stream_tokens_and_resume_grants_never_reach_the_logs() {
    let app = spawn_app().await;
    let generation = app.create_generation("u").await;
    let token = app.token("u", "s", &generation).await;
    let mut stream = app.sse(&generation, &token).await;
    stream.take(1).await;
    // A replay, and a browser reconnect by cookie.
    let res = app.open_stream(&generation, &token).await;
    assert_problem(res, 401, "invalid_stream_token").await;
    let res = app.reconnect(&generation, &token, &stream.cookie).await;
    let mut resumed = app.sse_from(res);
    resumed.take(1).await;
    // A JWT where a stream token goes, and a publisher's service token.
    let jwt = app.access_token("u", "s");
    app.remember(&jwt);
    let res = app.open_stream(&generation, &jwt).await;
    assert_problem(res, 401, "invalid_stream_token").await;
    let service = app.service_token(&["events:publish"]);
    app.remember(&service);
    app.client
        .with_token(&service)
        .publish(&generation, &NewEventBody::new(GenerationStatus::Completed))
        .await
        .unwrap();
    resumed.until_end().await;

    let logs = authstream_testkit::logs().contents();
    // What happened is there...
    for line in [
        "stream opened",
        "replay",
        "resume_cookie",
        "event published",
        "token=[REDACTED]",
    ] {
        assert!(logs.contains(line), "{line:?} not logged");
    }
    // ...and none of the secrets.
    app.assert_no_secrets_leaked().await;
}

#[tokio::test]
async fn a_percent_encoded_token_parameter_is_redacted_too() {
    let app = spawn_app().await;
    let generation = app.create_generation("u").await;
    let token = app.token("u", "s", &generation).await;
    // `%74oken` is `token` to the handler, so it must be `token` to the redaction.
    let res = app
        .raw_stream_request(generation.as_str(), &format!("%74oken={token}"))
        .send()
        .await
        .unwrap();
    let mut stream = app.sse_from(res);
    assert_eq!(
        stream.take(1).await[0].data.event,
        StreamEventKind::Connected
    );
    let logs = authstream_testkit::logs().contents();
    assert!(
        logs.contains("%74oken=[REDACTED]"),
        "the request was logged"
    );
    assert!(!logs.contains(&token), "the token was logged in clear");
    app.assert_no_secrets_leaked().await;
}
