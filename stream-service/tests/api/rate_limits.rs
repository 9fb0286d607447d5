//! Stream and WebSocket opens spend the granted user's per-tier budget, the same
//! budget the auth service spends; publishing services are not limited.

use std::time::Duration;

use serde_json::json;
use shared::claims::Tier;
use shared::testing::header_text as header;
use tokio_tungstenite::tungstenite::Error;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;

use crate::helpers::{TestApp, assert_problem, grant, spawn_app_with};

async fn token_of(app: &TestApp, user: &str, tier: Tier, generation: &str) -> String {
    let grant = shared::stream_token::StreamGrant {
        tier,
        ..grant(user, "s", generation)
    };
    app.mint(&grant, Duration::from_secs(60)).await
}

#[tokio::test]
async fn stream_and_websocket_opens_spend_the_users_tier_budget() {
    let app = spawn_app_with(&[("RATE_LIMIT_FREE", "2/600s"), ("RATE_LIMIT_PAID", "3/600s")]).await;
    let generation = app.create_generation("ada").await;
    let mut open = Vec::new();
    for left in [1, 0] {
        let token = token_of(&app, "ada", Tier::Free, &generation).await;
        let res = app.open_stream(&generation, &token).await;
        assert_eq!(res.status(), 200);
        assert_eq!(header(&res, "ratelimit-policy"), "\"free\";q=2;w=600");
        assert!(header(&res, "ratelimit").starts_with(&format!("\"free\";r={left};t=")));
        open.push(res);
    }
    let token = token_of(&app, "ada", Tier::Free, &generation).await;
    let refused = app.open_stream(&generation, &token).await;
    assert_eq!(header(&refused, "retry-after"), "300");
    assert_eq!(header(&refused, "ratelimit"), "\"free\";r=0;t=300");
    assert_problem(refused, 429, "rate_limited").await;

    let token = token_of(&app, "ada", Tier::Free, &generation).await;
    let url = format!(
        "ws://127.0.0.1:{}/generations/generate/{generation}/ws?token={token}",
        app.port
    );
    match tokio_tungstenite::connect_async(url.into_client_request().unwrap()).await {
        Err(Error::Http(response)) => {
            assert_eq!(response.status(), 429);
            assert_eq!(response.headers()["retry-after"], "300");
        }
        other => panic!("a limited user opened a WebSocket: {:?}", other.map(|_| ())),
    }

    // A paid user has a budget of its own; the publishing service has none.
    let paid = app.create_generation("bob").await;
    for _ in 0..3 {
        let token = token_of(&app, "bob", Tier::Paid, &paid).await;
        let res = app.open_stream(&paid, &token).await;
        assert_eq!(res.status(), 200);
        open.push(res);
    }
    let token = token_of(&app, "bob", Tier::Paid, &paid).await;
    let refused = app.open_stream(&paid, &token).await;
    assert_eq!(header(&refused, "ratelimit-policy"), "\"paid\";q=3;w=600");
    assert_problem(refused, 429, "rate_limited").await;
    for progress in [0.1, 0.2, 0.3, 0.4] {
        let res = app
            .publish(
                &paid,
                &json!({"status": "processing", "progress": progress}),
            )
            .await;
        assert_eq!(res.status(), 202);
        assert!(!res.headers().contains_key("ratelimit"));
    }
}
