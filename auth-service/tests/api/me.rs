use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

async fn patch(app: &TestApp, access: &str, etag: Option<&str>, body: Value) -> reqwest::Response {
    let mut req = app
        .http
        .patch(app.url("/auth/me"))
        .bearer_auth(access)
        .json(&body);
    if let Some(etag) = etag {
        req = req.header("if-match", etag);
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn me_has_an_etag_and_if_match_guards_changes() {
    let app = spawn_app().await;
    let laptop = app.signup().await;
    let phone = app.login(&laptop.email).await;

    let res = app.me(&laptop.access).await;
    let etag = res.headers()["etag"].to_str().unwrap().to_owned();
    let me: Value = res.json().await.unwrap();
    assert_eq!(me["email"], laptop.email.as_str());
    assert_eq!(me["roles"], json!([]));
    assert_eq!(me["display_name"], Value::Null);

    // No If-Match: the change is refused.
    assert_problem(
        patch(&app, &laptop.access, None, json!({"display_name": "Ada"})).await,
        428,
        "precondition_required",
    )
    .await;

    // The laptop changes the profile first...
    let res = patch(
        &app,
        &laptop.access,
        Some(&etag),
        json!({"display_name": "Ada", "preferences": {"theme": "dark"}}),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let new_etag = res.headers()["etag"].to_str().unwrap().to_owned();
    assert_ne!(new_etag, etag);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["display_name"], "Ada");
    assert_eq!(body["preferences"]["theme"], "dark");

    // ...so the phone, holding the old ETag, gets 412 and nothing changes.
    let res = patch(
        &app,
        &phone.access,
        Some(&etag),
        json!({"display_name": "Grace"}),
    )
    .await;
    assert_problem(res, 412, "precondition_failed").await;
    let me: Value = app.me(&phone.access).await.json().await.unwrap();
    assert_eq!(me["display_name"], "Ada");

    // With the fresh ETag it works; null clears the name.
    let res = patch(
        &app,
        &phone.access,
        Some(&new_etag),
        json!({"display_name": null}),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        res.json::<Value>().await.unwrap()["display_name"],
        Value::Null
    );
}

#[tokio::test]
async fn if_match_takes_a_list_and_compares_strongly() {
    let app = spawn_app().await;
    let user = app.signup().await;
    let etag = app.me(&user.access).await.headers()["etag"]
        .to_str()
        .unwrap()
        .to_owned();
    let change = json!({"display_name": "Ada"});
    // A weak tag never matches for a change (RFC 9110 13.1.1).
    let weak = format!("W/{etag}");
    assert_problem(
        patch(&app, &user.access, Some(&weak), change.clone()).await,
        412,
        "precondition_failed",
    )
    .await;
    let list = format!(r#""v999", {etag}"#);
    let res = patch(&app, &user.access, Some(&list), change).await;
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test]
async fn bad_profile_values_are_named() {
    let app = spawn_app().await;
    let user = app.signup().await;
    let etag = app.me(&user.access).await.headers()["etag"]
        .to_str()
        .unwrap()
        .to_owned();
    let res = patch(
        &app,
        &user.access,
        Some(&etag),
        json!({"display_name": "x".repeat(101), "preferences": [1]}),
    )
    .await;
    let body = assert_problem(res, 422, "validation_failed").await;
    assert!(
        body["fields"]["display_name"].is_string() && body["fields"]["preferences"].is_string(),
        "{body}"
    );
    let res = patch(
        &app,
        &user.access,
        Some(&etag),
        json!({"email": "new@example.com"}),
    )
    .await;
    assert_problem(res, 422, "validation_failed").await;
}
