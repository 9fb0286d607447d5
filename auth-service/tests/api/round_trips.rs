//! The store round-trip budget of every auth route: what a request waits for, counted
//! by the store handle (`Store::round_trips`), rate-limit decisions included, on Redis
//! and in memory alike.

use authstream_store::Store;
use authstream_testkit::{revocations_fresh, unique_prefix};
use reqwest::Response;
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, assert_problem, spawn_app, spawn_app_on, spawn_app_with};

/// The round trips of a request, the fewest of a few tries: a loaded machine may now
/// and then delay the revocation tail past its freshness bound, and a validation then
/// asks the store once more. `$setup` runs before each try, uncounted; `$request` is
/// counted and must answer `$status`.
macro_rules! cost {
    ($app:expr, $status:expr, |$ready:pat_param| $setup:expr => $request:expr) => {{
        let mut fewest = u64::MAX;
        for _ in 0..4 {
            let $ready = $setup;
            revocations_fresh(&$app.store).await;
            let before = $app.store.round_trips();
            let res: Response = $request;
            let cost = $app.store.round_trips() - before;
            let status = res.status().as_u16();
            assert_eq!(status, $status, "{}", res.text().await.unwrap());
            fewest = fewest.min(cost);
        }
        fewest
    }};
}

async fn bearer(app: &TestApp, method: reqwest::Method, path: &str, access: &str) -> Response {
    app.http
        .request(method, app.url(path))
        .bearer_auth(access)
        .send()
        .await
        .unwrap()
}

/// Each auth route with its round trips, measured on `app`.
async fn measure(app: &TestApp) -> Vec<(&'static str, u64)> {
    use reqwest::Method;
    let user = app.signup().await;
    let email = user.email.clone();
    let mut costs = Vec::new();

    costs.push((
        "POST /auth/login",
        cost!(app, 200, |()| () => app.login_as(&email, PASSWORD, "agent").await),
    ));
    costs.push((
        "POST /auth/refresh",
        cost!(app, 200, |s| app.login(&email).await => app.refresh(&s.refresh).await),
    ));
    costs.push((
        "POST /auth/validate",
        cost!(app, 200, |()| () => app.validate(&user.access).await),
    ));
    costs.push((
        "POST /auth/revoke",
        cost!(app, 200, |s| app.login(&email).await => app
            .post("/auth/revoke")
            .json(&json!({ "token": s.access }))
            .send()
            .await
            .unwrap()),
    ));
    costs.push((
        "GET /auth/me",
        cost!(app, 200, |()| () => app.me(&user.access).await),
    ));
    costs.push((
        "PATCH /auth/me",
        cost!(app, 200, |etag| {
            let res = app.me(&user.access).await;
            res.headers()["etag"].to_str().unwrap().to_owned()
        } => app
            .http
            .patch(app.url("/auth/me"))
            .bearer_auth(&user.access)
            .header("if-match", etag)
            .json(&json!({"display_name": "Ada"}))
            .send()
            .await
            .unwrap()),
    ));
    costs.push((
        "GET /auth/sessions",
        cost!(app, 200, |()| () => bearer(app, Method::GET, "/auth/sessions", &user.access).await),
    ));
    costs.push((
        "DELETE /auth/sessions/{id}",
        cost!(app, 204, |s| app.login(&email).await => bearer(
            app,
            Method::DELETE,
            &format!("/auth/sessions/{}", s.session_id),
            &user.access,
        )
        .await),
    ));
    costs.push((
        "POST /auth/logout",
        cost!(app, 204, |s| app.login(&email).await => bearer(app, Method::POST, "/auth/logout", &s.access).await),
    ));
    let generation = uuid::Uuid::new_v4().to_string();
    costs.push((
        "POST /generations",
        cost!(app, 201, |id| uuid::Uuid::new_v4().to_string() => app.create_generation(&user.access, &id).await),
    ));
    assert_eq!(
        app.create_generation(&user.access, &generation)
            .await
            .status(),
        201
    );
    costs.push((
        "GET /generations/{id}",
        cost!(app, 200, |()| () => bearer(
            app,
            Method::GET,
            &format!("/generations/{generation}"),
            &user.access,
        )
        .await),
    ));
    // Last: it ends every session of the user, the one measuring included.
    costs.push((
        "POST /auth/logout-all",
        cost!(app, 204, |s| app.login(&email).await => bearer(app, Method::POST, "/auth/logout-all", &s.access).await),
    ));
    costs
}

fn table(costs: &[(&str, u64)]) -> String {
    costs
        .iter()
        .map(|(route, n)| format!("{route}: {n}\n"))
        .collect()
}

/// Rate-limit decisions included: the `anon` one of the address on register, login
/// and revoke, the session's own refresh budget inside the rotation, the user's own on
/// every Bearer route (pipelined with the route's script where the route has one on
/// the user's slot).
const BUDGET: &[(&str, u64)] = &[
    ("POST /auth/login", 3),
    ("POST /auth/refresh", 1),
    ("POST /auth/validate", 0),
    ("POST /auth/revoke", 2),
    ("GET /auth/me", 1),
    ("PATCH /auth/me", 2),
    ("GET /auth/sessions", 2),
    ("DELETE /auth/sessions/{id}", 2),
    ("POST /auth/logout", 2),
    ("POST /generations", 2),
    ("GET /generations/{id}", 1),
    ("POST /auth/logout-all", 2),
];

#[tokio::test]
async fn every_auth_route_keeps_its_round_trip_budget_on_redis() {
    let app = spawn_app().await;
    let costs = measure(&app).await;
    assert_eq!(table(&costs), table(BUDGET));
}

#[tokio::test]
async fn every_auth_route_keeps_its_round_trip_budget_in_memory() {
    let app = spawn_app_on(Store::memory(&unique_prefix()), &[]).await;
    let costs = measure(&app).await;
    assert_eq!(table(&costs), table(BUDGET));
}

#[tokio::test]
async fn a_refresh_reads_the_tier_and_roles_of_now() {
    // The user record comes back with the rotation: a tier changed since the login
    // is in the refreshed access token.
    let app = spawn_app().await;
    let user = app.signup().await;
    let service = app.service_token(crate::helpers::ADMIN_CLIENT).await;
    let res = app
        .http
        .patch(app.url(&format!("/auth/users/{}", user.user_id)))
        .bearer_auth(service)
        .json(&json!({"tier": "paid", "roles": ["admin"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let pair: Value = app.refresh(&user.refresh).await.json().await.unwrap();
    let claims: Value = app
        .validate(pair["access_token"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(claims["tier"], "paid");
    assert_eq!(claims["roles"], json!(["admin"]));
}

#[tokio::test]
async fn a_refused_request_changes_nothing_though_its_read_went_along() {
    let app = spawn_app_with(&[("RATE_LIMIT_FREE", "5/60s")]).await;
    let user = app.signup().await;
    let other = app.login(&user.email).await;
    while app.me(&user.access).await.status() != 429 {}

    let res = app
        .http
        .delete(app.url(&format!("/auth/sessions/{}", other.session_id)))
        .bearer_auth(&user.access)
        .send()
        .await
        .unwrap();
    assert_problem(res, 429, "rate_limited").await;
    assert_eq!(app.validate(&other.access).await.status(), 200);
    let session = app.store.keys().session(&user.user_id, &other.session_id);
    assert!(app.store.exists(&session).await.unwrap(), "not revoked");

    let res = app.create_generation(&user.access, "refused-gen").await;
    assert_problem(res, 429, "rate_limited").await;
    let record = app.store.keys().generation("refused-gen");
    assert!(!app.store.exists(&record).await.unwrap(), "not created");

    let res = app
        .http
        .patch(app.url("/auth/me"))
        .bearer_auth(&user.access)
        .header("if-match", "*")
        .json(&json!({"display_name": "Refused"}))
        .send()
        .await
        .unwrap();
    assert_problem(res, 429, "rate_limited").await;
    let stored = app.store.get(&app.store.keys().user(&user.user_id)).await;
    assert!(!stored.unwrap().unwrap().contains("Refused"), "not changed");
}
