//! The store round-trip budget of every auth route: what a request waits for, counted
//! by the store handle (`Store::round_trips`), rate-limit decisions included, on Redis
//! and in memory alike.

use authstream_proto::auth::{ProfilePatch, UserPatch};
use authstream_proto::{GenerationId, ROLE_ADMIN, Tier};
use authstream_store::Store;
use authstream_testkit::auth::{AuthApp, PASSWORD, spawn_auth, spawn_auth_on, spawn_auth_with};
use authstream_testkit::{assert_problem, header_text, revocations_fresh, unique_prefix};
use reqwest::Response;

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

/// Sends a call, whatever it answers.
async fn sent<T: Send + 'static>(call: authstream_client::Call<T>) -> Response {
    call.send().await.unwrap()
}

fn display_name(name: &str) -> ProfilePatch {
    ProfilePatch {
        display_name: Some(Some(name.to_owned())),
        preferences: None,
    }
}

/// Each auth route with its round trips, measured on `app`.
async fn measure(app: &AuthApp) -> Vec<(&'static str, u64)> {
    let user = app.signup().await;
    let me = app.bearer(&user.access);
    let email = user.email.clone();
    let mut costs = Vec::new();

    costs.push((
        "POST /auth/login",
        cost!(app, 200, |()| () => sent(app.login_as(&email, PASSWORD).header("user-agent", "agent")).await),
    ));
    costs.push((
        "POST /auth/refresh",
        cost!(app, 200, |s| app.login(&email).await => sent(app.refresh(&s.refresh)).await),
    ));
    costs.push((
        "POST /auth/validate",
        cost!(app, 200, |()| () => sent(app.validate(&user.access)).await),
    ));
    costs.push((
        "POST /auth/revoke",
        cost!(app, 200, |s| app.login(&email).await => sent(app.revoke(&s.access)).await),
    ));
    costs.push((
        "GET /auth/me",
        cost!(app, 200, |()| () => sent(me.me()).await),
    ));
    costs.push((
        "PATCH /auth/me",
        cost!(app, 200, |etag| {
            header_text(&sent(me.me()).await, "etag")
        } => sent(me.update_me(&display_name("Ada"), Some(&etag))).await),
    ));
    costs.push((
        "GET /auth/sessions",
        cost!(app, 200, |()| () => sent(me.sessions()).await),
    ));
    costs.push((
        "DELETE /auth/sessions/{id}",
        cost!(app, 204, |s| app.login(&email).await => sent(me.delete_session(&s.session_id)).await),
    ));
    costs.push((
        "POST /auth/logout",
        cost!(app, 204, |s| app.login(&email).await => sent(app.bearer(&s.access).logout()).await),
    ));
    let generation = uuid::Uuid::new_v4().to_string();
    costs.push((
        "POST /generations",
        cost!(app, 201, |id| uuid::Uuid::new_v4().to_string() => sent(app.new_generation(&user.access, &id)).await),
    ));
    app.create_generation(&user.access, &generation).await;
    let generation = GenerationId::parse(&generation).unwrap();
    costs.push((
        "GET /generations/{id}",
        cost!(app, 200, |()| () => sent(me.generation(&generation)).await),
    ));
    // Last: it ends every session of the user, the one measuring included.
    costs.push((
        "POST /auth/logout-all",
        cost!(app, 204, |s| app.login(&email).await => sent(app.bearer(&s.access).logout_all()).await),
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
    let app = spawn_auth().await;
    let costs = measure(&app).await;
    assert_eq!(table(&costs), table(BUDGET));
}

#[tokio::test]
async fn every_auth_route_keeps_its_round_trip_budget_in_memory() {
    let app = spawn_auth_on(Store::memory(&unique_prefix()), &[]).await;
    let costs = measure(&app).await;
    assert_eq!(table(&costs), table(BUDGET));
}

#[tokio::test]
async fn a_refresh_reads_the_tier_and_roles_of_now() {
    // The user record comes back with the rotation: a tier changed since the login
    // is in the refreshed access token.
    let app = spawn_auth().await;
    let user = app.signup().await;
    let patch = UserPatch {
        tier: Some("paid".to_owned()),
        roles: Some(vec![ROLE_ADMIN.to_owned()]),
    };
    app.administer(&user.user_id, &patch).await;
    let pair = app.refresh(&user.refresh).await.unwrap();
    let claims = app.validate(&pair.access_token).await.unwrap();
    assert_eq!(claims.tier, Some(Tier::Paid));
    assert_eq!(claims.roles, Some(vec!["admin".to_owned()]));
}

#[tokio::test]
async fn a_refused_request_changes_nothing_though_its_read_went_along() {
    let app = spawn_auth_with(&[("RATE_LIMIT_FREE", "5/60s")]).await;
    let user = app.signup().await;
    let other = app.login(&user.email).await;
    let me = app.bearer(&user.access);
    while sent(me.me()).await.status() != 429 {}

    let res = sent(me.delete_session(&other.session_id)).await;
    assert_problem(res, 429, "rate_limited").await;
    app.validate(&other.access).await.unwrap();
    let session = app.store.keys().session(&user.user_id, &other.session_id);
    assert!(app.store.exists(&session).await.unwrap(), "not revoked");

    let res = sent(app.new_generation(&user.access, "refused-gen")).await;
    assert_problem(res, 429, "rate_limited").await;
    let record = app.store.keys().generation("refused-gen");
    assert!(!app.store.exists(&record).await.unwrap(), "not created");

    let res = sent(me.update_me(&display_name("Refused"), Some("*"))).await;
    assert_problem(res, 429, "rate_limited").await;
    let stored = app.store.get(&app.store.keys().user(&user.user_id)).await;
    assert!(!stored.unwrap().unwrap().contains("Refused"), "not changed");
}
