//! The demo routes over plain HTTP: the page's files and headers, and who may simulate.

use reqwest::StatusCode;
use reqwest::header::{self, HeaderMap};
use serde_json::{Value, json};

use crate::harness::*;

struct Api {
    base: String,
    http: reqwest::Client,
}

impl Api {
    fn new(server: &Server) -> Self {
        Self {
            base: server.base.clone(),
            http: reqwest::Client::new(),
        }
    }

    /// A new user, signed in: (email, access token).
    async fn user(&self) -> (String, String) {
        let email = new_email();
        let res = self
            .http
            .post(format!("{}/auth/register", self.base))
            .json(&json!({ "email": email, "password": PASSWORD }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::CREATED);
        let access = api_login(&self.base, &email).await;
        (email, access)
    }

    async fn generation(&self, access: &str) -> String {
        let res = self
            .http
            .post(format!("{}/generations", self.base))
            .bearer_auth(access)
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::CREATED);
        res.json::<Value>().await.unwrap()["generation_id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// POSTs to a demo route: the status and the JSON answer.
    async fn demo(
        &self,
        action: &str,
        id: &str,
        access: Option<&str>,
        body: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .http
            .post(format!("{}/demo/generations/{id}/{action}", self.base));
        if let Some(access) = access {
            req = req.bearer_auth(access);
        }
        if let Some(body) = body {
            req = req
                .header(header::CONTENT_TYPE, "application/json")
                .body(body.to_owned());
        }
        let res = req.send().await.unwrap();
        let status = res.status();
        (status, res.json().await.unwrap_or(Value::Null))
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

#[tokio::test]
async fn the_page_and_its_scripts_are_served_under_a_same_origin_policy() {
    let server = Server::start().await;
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
        let headers = res.headers().clone();
        assert_eq!(header(&headers, "content-type"), content_type, "{path}");
        assert_eq!(header(&headers, "cache-control"), "no-cache", "{path}");
        assert_eq!(header(&headers, "x-content-type-options"), "nosniff");
        assert_eq!(header(&headers, "referrer-policy"), "no-referrer");
        let csp = header(&headers, "content-security-policy");
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

        let etag = header(&headers, "etag").to_owned();
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
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "{path}");
        assert_eq!(
            header(res.headers(), "content-type"),
            "application/problem+json",
            "{path}"
        );
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["code"], "not_found", "{path}");
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
    let server = Server::start().await;
    let api = Api::new(&server);
    let (owner_email, owner) = api.user().await;
    let (_, stranger) = api.user().await;
    let id = api.generation(&owner).await;

    let (status, body) = api.demo("simulate", &id, None, None).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("missing_token"))
    );
    let (status, body) = api.demo("simulate", &id, Some(&stranger), None).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("forbidden"))
    );
    let (status, body) = api
        .demo("simulate", "no-such-generation", Some(&owner), None)
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    let (status, body) = api
        .demo(
            "simulate",
            &id,
            Some(&owner),
            Some(r#"{"duration_ms":5,"outcome":"maybe"}"#),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        body["fields"]["duration_ms"].is_string() && body["fields"]["outcome"].is_string(),
        "{body}"
    );

    let (status, body) = api
        .demo(
            "simulate",
            &id,
            Some(&owner),
            Some(r#"{"duration_ms":500}"#),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["events"], 16);
    assert_eq!(body["duration_ms"], 500);
    let (status, body) = api.demo("simulate", &id, Some(&owner), None).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::CONFLICT, Some("generation_exists"))
    );

    let history = server_history(&server, &owner_email, &id).await;
    assert_eq!(history.len(), 16);
    let (_, last) = &history[15];
    assert_eq!(
        (
            last["status"].as_str(),
            last["stage"].as_str(),
            last["progress"].as_f64()
        ),
        (Some("completed"), Some("completed"), Some(1.0))
    );
    let (status, body) = api.demo("simulate", &id, Some(&owner), None).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::CONFLICT, Some("generation_finished"))
    );

    // A failing run ends with `failed`.
    let failing = api.generation(&owner).await;
    let (status, _) = api
        .demo(
            "simulate",
            &failing,
            Some(&owner),
            Some(r#"{"duration_ms":500,"outcome":"failed"}"#),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let history = server_history(&server, &owner_email, &failing).await;
    assert_eq!(
        history.last().map(|(_, d)| d["status"].clone()),
        Some(json!("failed"))
    );

    // Dropping the connection is the owner's to ask, too.
    let (status, _) = api
        .demo("disconnect", &failing, Some(&stranger), None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = api.demo("disconnect", &failing, Some(&owner), None).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    // ...and it revokes nothing.
    let me = api
        .http
        .get(format!("{}/auth/me", api.base))
        .bearer_auth(&owner)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), StatusCode::OK);
}
