//! Demo mode in the standalone auth service: off unless `DEMO=true`.

use authstream_client::answer;
use authstream_proto::auth::{SimulateBody, SimulationStarted};
use authstream_proto::{GenerationId, GenerationStatus};
use authstream_testkit::assert_problem;
use authstream_testkit::auth::*;
use reqwest::{Method, StatusCode};

/// A signed-in user with a new pending generation: (access token, generation id).
async fn owner_with_generation(app: &AuthApp) -> (String, GenerationId) {
    let user = app.signup().await;
    let id = format!("demo-{}", uuid::Uuid::new_v4().simple());
    let created = app.create_generation(&user.access, &id).await;
    (user.access, created.generation_id)
}

async fn status_of(app: &AuthApp, access: &str, id: &GenerationId) -> GenerationStatus {
    app.bearer(access).generation(id).await.unwrap().status
}

async fn simulate(app: &AuthApp, access: &str, id: &GenerationId) -> reqwest::Response {
    let body = SimulateBody {
        duration_ms: Some(500),
        outcome: None,
    };
    app.bearer(access)
        .simulate(id, Some(&body))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn without_demo_there_is_no_page_and_no_simulation() {
    for overrides in [&[][..], &[("DEMO", "false")][..]] {
        let app = spawn_auth_with(overrides).await;
        for path in ["/", "/static/app.js", "/clients/js/authstream.js"] {
            let res = app.auth.request(Method::GET, path).send().await.unwrap();
            assert_problem(res, 404, "not_found").await;
        }
        let (access, id) = owner_with_generation(&app).await;
        let res = simulate(&app, &access, &id).await;
        assert_problem(res, 404, "not_found").await;
        assert_eq!(
            status_of(&app, &access, &id).await,
            GenerationStatus::Pending,
            "{overrides:?}"
        );
    }
}

#[tokio::test]
async fn with_demo_the_page_is_served_and_a_generation_can_be_simulated() {
    let app = spawn_auth_with(&[("DEMO", "true")]).await;
    let page = app.auth.request(Method::GET, "/").send().await.unwrap();
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
    let started: SimulationStarted = answer::json(res).await.unwrap();
    assert_eq!(started.generation_id, id);
    assert_eq!(started.events, 16);
    // The first event is out before the answer.
    assert_ne!(
        status_of(&app, &access, &id).await,
        GenerationStatus::Pending
    );
}
