use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::*;

#[tokio::test]
async fn sessions_are_listed_with_the_current_one_marked() {
    let app = spawn_app().await;
    let email = unique_email();
    app.register(&email, PASSWORD).await;
    app.login_as(&email, PASSWORD, "Phone Safari").await;
    let current = app.login(&email).await;
    let res = app
        .get("/auth/sessions")
        .bearer_auth(&current.access)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let list: Vec<Value> = res.json().await.unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["user_agent"], "Phone Safari");
    assert_eq!(list[0]["current"], false);
    assert_eq!(list[1]["session_id"], current.session_id.as_str());
    assert_eq!(list[1]["current"], true);
    assert_eq!(list[1]["ip"], "127.0.0.1");
    for s in &list {
        for field in ["created_at", "last_seen_at"] {
            assert!(s[field].as_i64().unwrap() > 1_700_000_000_000, "{field}");
        }
    }
}

#[tokio::test]
async fn deleting_a_session_revokes_it_and_others_cannot_touch_it() {
    let app = spawn_app().await;
    let mine = app.signup().await;
    let other_device = app.login(&mine.email).await;
    let stranger = app.signup().await;

    let res = app
        .http
        .delete(app.url(&format!("/auth/sessions/{}", other_device.session_id)))
        .bearer_auth(&stranger.access)
        .send()
        .await
        .unwrap();
    assert_problem(res, 404, "not_found").await;
    assert_eq!(app.me(&other_device.access).await.status(), StatusCode::OK);

    let res = app
        .http
        .delete(app.url(&format!("/auth/sessions/{}", other_device.session_id)))
        .bearer_auth(&mine.access)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_problem(app.me(&other_device.access).await, 401, "token_revoked").await;
    assert_eq!(app.me(&mine.access).await.status(), StatusCode::OK);
    let list: Vec<Value> = app.get_json("/auth/sessions", &mine.access).await;
    assert_eq!(list.len(), 1);
}

#[tokio::test]
async fn x_forwarded_for_counts_only_from_trusted_proxies() {
    for (trusted, expected) in [(None, "127.0.0.1"), (Some("127.0.0.0/8"), "203.0.113.9")] {
        let env: Vec<(&str, &str)> = trusted
            .map(|t| ("TRUSTED_PROXIES", t))
            .into_iter()
            .collect();
        let app = spawn_app_with(&env).await;
        let email = unique_email();
        app.register(&email, PASSWORD).await;
        let res = app
            .post("/auth/login")
            .header("x-forwarded-for", "198.51.100.1, 203.0.113.9")
            .json(&serde_json::json!({"email": email, "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        let access = res.json::<Value>().await.unwrap()["access_token"]
            .as_str()
            .unwrap()
            .to_owned();
        let list: Vec<Value> = app.get_json("/auth/sessions", &access).await;
        assert_eq!(list[0]["ip"], expected, "trusted: {trusted:?}");
    }
}
