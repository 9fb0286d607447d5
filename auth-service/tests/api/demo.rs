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
        for path in [
            "/",
            "/static/app.js",
            "/static/ui.js",
            "/clients/js/authstream.js",
            "/clients/js/errors.js",
        ] {
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

/// The page's script and the client are ES modules split over several files, each
/// served from its directory's fixed table.
const SCRIPTS: [&str; 8] = [
    "/static/app.js",
    "/static/ui.js",
    "/static/sessions.js",
    "/static/stream-view.js",
    "/clients/js/authstream.js",
    "/clients/js/errors.js",
    "/clients/js/generation-stream.js",
    "/clients/js/auth-client.js",
];

#[tokio::test]
async fn with_demo_every_module_is_served_and_another_file_name_is_a_404() {
    let app = spawn_auth_with(&[("DEMO", "true")]).await;
    for path in SCRIPTS {
        let res = app.auth.request(Method::GET, path).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        let headers = res.headers().clone();
        assert_eq!(
            headers["content-type"], "text/javascript; charset=utf-8",
            "{path}"
        );
        assert_eq!(headers["cache-control"], "no-cache", "{path}");
        assert!(
            headers["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("script-src 'self'"),
            "{path}"
        );
        let body = res.text().await.unwrap();
        assert!(
            body.contains("\nimport ") || body.contains("\nexport "),
            "{path} is a module"
        );
        let file = match path.strip_prefix("/static/") {
            Some(name) => format!("{}/static/{name}", env!("CARGO_MANIFEST_DIR")),
            None => format!("{}/..{path}", env!("CARGO_MANIFEST_DIR")),
        };
        let expected = std::fs::read_to_string(file).unwrap();
        assert_eq!(body, expected, "{path} is the file as it is");
    }
    let css = app
        .auth
        .request(Method::GET, "/static/app.css")
        .send()
        .await
        .unwrap();
    assert_eq!(css.status(), StatusCode::OK);
    assert_eq!(css.headers()["content-type"], "text/css; charset=utf-8");

    for path in [
        "/static/nope.js",
        "/static/index.html",
        "/static/authstream.js",
        "/clients/js/app.js",
        "/clients/js/authstream.d.ts",
        "/clients/js/package.json",
        "/clients/js/..%2Fauthstream.js",
        "/static/sub/app.js",
    ] {
        let res = app.auth.request(Method::GET, path).send().await.unwrap();
        let body = assert_problem(res, 404, "not_found").await;
        assert_eq!(body.detail, "no such route", "{path}");
    }
    // The same answer as a route that does not exist at all.
    let res = app
        .auth
        .request(Method::GET, "/nothing/here.js")
        .send()
        .await
        .unwrap();
    let body = assert_problem(res, 404, "not_found").await;
    assert_eq!(body.detail, "no such route");
}
