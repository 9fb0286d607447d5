//! Demo mode in the standalone auth service: off unless `DEMO=true`.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

/// A signed-in user with a new pending generation: (access token, generation id).
async fn owner_with_generation(app: &TestApp) -> (String, String) {
    let user = app.signup().await;
    let id = format!("demo-{}", uuid::Uuid::new_v4().simple());
    assert_eq!(
        app.create_generation(&user.access, &id).await.status(),
        StatusCode::CREATED
    );
    (user.access, id)
}

async fn status_of(app: &TestApp, access: &str, id: &str) -> String {
    let generation: Value = app.get_json(&format!("/generations/{id}"), access).await;
    generation["status"].as_str().unwrap().to_owned()
}

async fn simulate(app: &TestApp, access: &str, id: &str) -> reqwest::Response {
    app.post(&format!("/demo/generations/{id}/simulate"))
        .bearer_auth(access)
        .json(&json!({"duration_ms": 500}))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn without_demo_there_is_no_page_and_no_simulation() {
    for overrides in [&[][..], &[("DEMO", "false")][..]] {
        let app = spawn_app_with(overrides).await;
        for path in ["/", "/static/app.js", "/clients/js/authstream.js"] {
            let res = app.get(path).send().await.unwrap();
            assert_problem(res, 404, "not_found").await;
        }
        let (access, id) = owner_with_generation(&app).await;
        let res = simulate(&app, &access, &id).await;
        assert_problem(res, 404, "not_found").await;
        assert_eq!(
            status_of(&app, &access, &id).await,
            "pending",
            "{overrides:?}"
        );
    }
}

#[tokio::test]
async fn with_demo_the_page_is_served_and_a_generation_can_be_simulated() {
    let app = spawn_app_with(&[("DEMO", "true")]).await;
    let page = app.get("/").send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(page.text().await.unwrap().contains("start-simulation"));

    let (access, id) = owner_with_generation(&app).await;
    let res = simulate(&app, &access, &id).await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["generation_id"], id.as_str());
    assert_eq!(body["events"], 16);
    // The first event is out before the answer.
    assert_ne!(status_of(&app, &access, &id).await, "pending");
}
