//! The demo routes over plain HTTP: the page's files and headers, and who may simulate.

use authstream_client::AuthClient;
use authstream_proto::GenerationStatus;
use authstream_proto::auth::{NewGeneration, SimulateBody, SimulationStarted};
use authstream_testkit::browser::*;
use authstream_testkit::stack::{generation_id, sent};
use authstream_testkit::{assert_problem, header_text};
use reqwest::StatusCode;
use reqwest::header;

use crate::server;

/// A new user of `server`, signed in: (email, the API as that user).
async fn user(server: &Server) -> (String, AuthClient) {
    let accounts = server.accounts();
    let user = accounts.signup().await;
    (user.email, accounts.bearer(&user.access))
}

/// A new generation of the holder of `api`'s token.
async fn generation(api: &AuthClient) -> String {
    let created = api.create_generation(&NewGeneration::default()).await;
    created.unwrap().generation_id.into_string()
}

/// A simulation of `duration_ms`, ending with `outcome`.
fn simulation(duration_ms: u64, outcome: Option<&str>) -> SimulateBody {
    SimulateBody {
        duration_ms: Some(duration_ms),
        outcome: outcome.map(str::to_owned),
    }
}

#[tokio::test]
async fn the_page_and_its_scripts_are_served_under_a_same_origin_policy() {
    let server = server().await;
    let http = reqwest::Client::new();
    for (path, content_type) in [
        ("/", "text/html; charset=utf-8"),
        ("/static/app.css", "text/css; charset=utf-8"),
        ("/static/app.js", "text/javascript; charset=utf-8"),
        ("/static/ui.js", "text/javascript; charset=utf-8"),
        ("/static/sessions.js", "text/javascript; charset=utf-8"),
        ("/static/stream-view.js", "text/javascript; charset=utf-8"),
        (
            "/clients/js/authstream.js",
            "text/javascript; charset=utf-8",
        ),
        ("/clients/js/errors.js", "text/javascript; charset=utf-8"),
        (
            "/clients/js/generation-stream.js",
            "text/javascript; charset=utf-8",
        ),
        (
            "/clients/js/auth-client.js",
            "text/javascript; charset=utf-8",
        ),
    ] {
        let res = http
            .get(format!("{}{path}", server.base))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        assert_eq!(header_text(&res, "content-type"), content_type, "{path}");
        assert_eq!(header_text(&res, "cache-control"), "no-cache", "{path}");
        assert_eq!(header_text(&res, "x-content-type-options"), "nosniff");
        assert_eq!(header_text(&res, "referrer-policy"), "no-referrer");
        let csp = header_text(&res, "content-security-policy");
        let etag = header_text(&res, "etag");
        for directive in [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "connect-src 'self'",
            "frame-ancestors 'none'",
        ] {
            assert!(csp.contains(directive), "{path}: {csp}");
        }
        assert!(!csp.contains("unsafe") && !csp.contains("http"), "{csp}");
        let body = res.text().await.unwrap();
        // No external assets: nothing is loaded from anywhere but this origin.
        assert!(
            !body.contains("https://") && !body.contains("http://"),
            "{path}"
        );

        let again = http
            .get(format!("{}{path}", server.base))
            .header(header::IF_NONE_MATCH, &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED, "{path}");
    }
    // Another name in either directory is the 404 of a route that does not exist.
    for path in ["/static/nope.js", "/clients/js/authstream.d.ts"] {
        let res = http
            .get(format!("{}{path}", server.base))
            .send()
            .await
            .unwrap();
        assert_problem(res, 404, "not_found").await;
    }
    let head = http.head(format!("{}/", server.base)).send().await.unwrap();
    assert_eq!(head.status(), StatusCode::OK);
    let page = http
        .get(format!("{}/", server.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for id in [
        "progress-bar",
        "progress-percent",
        "stage",
        "message",
        "status",
        "event-log",
        "sessions",
        "sign-out-everywhere",
    ] {
        assert!(
            page.contains(&format!("id=\"{id}\"")),
            "#{id} is on the page"
        );
    }
}

#[tokio::test]
async fn only_the_owner_simulates_a_pending_generation_once() {
    let server = server().await;
    let (owner_email, owner) = user(&server).await;
    let (_, stranger) = user(&server).await;
    let id = generation_id(&generation(&owner).await);

    let anonymous = server.accounts().auth;
    assert_problem(
        sent(anonymous.simulate(&id, None)).await,
        401,
        "missing_token",
    )
    .await;
    assert_problem(sent(stranger.simulate(&id, None)).await, 403, "forbidden").await;
    let unknown = generation_id("no-such-generation");
    assert_problem(sent(owner.simulate(&unknown, None)).await, 404, "not_found").await;
    let bad = simulation(5, Some("maybe"));
    let res = sent(owner.simulate(&id, Some(&bad))).await;
    let problem = assert_problem(res, 422, "validation_failed").await;
    assert!(
        problem.fields.contains_key("duration_ms") && problem.fields.contains_key("outcome"),
        "{problem:?}"
    );

    let started: SimulationStarted = owner
        .simulate(&id, Some(&simulation(500, None)))
        .await
        .unwrap();
    assert_eq!(started.events, 16);
    assert_eq!(started.duration_ms, 500);
    let res = sent(owner.simulate(&id, None)).await;
    assert_problem(res, 409, "generation_exists").await;

    let history = server.history(&owner_email, id.as_str()).await;
    assert_eq!(history.len(), 16);
    let last = &history[15].data;
    assert_eq!(
        (last.status, last.stage.as_deref(), last.progress),
        (
            Some(GenerationStatus::Completed),
            Some("completed"),
            Some(1.0)
        )
    );
    let res = sent(owner.simulate(&id, None)).await;
    assert_problem(res, 409, "generation_finished").await;

    // A failing run ends with `failed`.
    let failing = generation_id(&generation(&owner).await);
    let failed = simulation(500, Some("failed"));
    owner.simulate(&failing, Some(&failed)).await.unwrap();
    let history = server.history(&owner_email, failing.as_str()).await;
    assert_eq!(
        history.last().and_then(|e| e.data.status),
        Some(GenerationStatus::Failed)
    );

    // Dropping the connection is the owner's to ask, too.
    let res = sent(stranger.disconnect(&failing)).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    owner.disconnect(&failing).await.unwrap();
    // ...and it revokes nothing.
    let me = sent(owner.me()).await;
    assert_eq!(me.status(), StatusCode::OK);
}
