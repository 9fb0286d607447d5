use authstream_client::answer;
use authstream_proto::auth::{Profile, ProfilePatch};
use authstream_testkit::auth::*;
use authstream_testkit::{assert_problem, header_text};
use reqwest::{Method, StatusCode};
use serde_json::json;

async fn patch(
    app: &AuthApp,
    access: &str,
    etag: Option<&str>,
    body: ProfilePatch,
) -> reqwest::Response {
    app.bearer(access)
        .update_me(&body, etag)
        .send()
        .await
        .unwrap()
}

fn name(display_name: Option<&str>) -> ProfilePatch {
    ProfilePatch {
        display_name: Some(display_name.map(str::to_owned)),
        preferences: None,
    }
}

/// The caller's `ETag`.
async fn etag_of(app: &AuthApp, access: &str) -> String {
    let res = app.me(access).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    header_text(&res, "etag")
}

#[tokio::test]
async fn me_has_an_etag_and_if_match_guards_changes() {
    let app = spawn_auth().await;
    let laptop = app.signup().await;
    let phone = app.login(&laptop.email).await;

    let res = app.me(&laptop.access).send().await.unwrap();
    let etag = res.headers()["etag"].to_str().unwrap().to_owned();
    let me: Profile = answer::json(res).await.unwrap();
    assert_eq!(me.email, laptop.email);
    assert!(me.roles.is_empty());
    assert_eq!(me.display_name, None);

    // No If-Match: the change is refused.
    assert_problem(
        patch(&app, &laptop.access, None, name(Some("Ada"))).await,
        428,
        "precondition_required",
    )
    .await;

    // The laptop changes the profile first...
    let change = ProfilePatch {
        preferences: Some(json!({"theme": "dark"})),
        ..name(Some("Ada"))
    };
    let res = patch(&app, &laptop.access, Some(&etag), change).await;
    assert_eq!(res.status(), StatusCode::OK);
    let new_etag = res.headers()["etag"].to_str().unwrap().to_owned();
    assert_ne!(new_etag, etag);
    let changed: Profile = answer::json(res).await.unwrap();
    assert_eq!(changed.display_name.as_deref(), Some("Ada"));
    assert_eq!(changed.preferences.get("theme"), Some(&json!("dark")));

    // ...so the phone, holding the old ETag, gets 412 and nothing changes.
    let res = patch(&app, &phone.access, Some(&etag), name(Some("Grace"))).await;
    assert_problem(res, 412, "precondition_failed").await;
    let me = app.me(&phone.access).await.unwrap();
    assert_eq!(me.display_name.as_deref(), Some("Ada"));

    // With the fresh ETag it works; null clears the name.
    let res = patch(&app, &phone.access, Some(&new_etag), name(None)).await;
    assert_eq!(res.status(), StatusCode::OK);
    let cleared: Profile = answer::json(res).await.unwrap();
    assert_eq!(cleared.display_name, None);
}

#[tokio::test]
async fn if_match_takes_a_list_and_compares_strongly() {
    let app = spawn_auth().await;
    let user = app.signup().await;
    let etag = etag_of(&app, &user.access).await;
    // A weak tag never matches for a change (RFC 9110 13.1.1).
    let weak = format!("W/{etag}");
    assert_problem(
        patch(&app, &user.access, Some(&weak), name(Some("Ada"))).await,
        412,
        "precondition_failed",
    )
    .await;
    let list = format!(r#""v999", {etag}"#);
    let res = patch(&app, &user.access, Some(&list), name(Some("Ada"))).await;
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test]
async fn bad_profile_values_are_named() {
    let app = spawn_auth().await;
    let user = app.signup().await;
    let etag = etag_of(&app, &user.access).await;
    let bad = ProfilePatch {
        preferences: Some(json!([1])),
        ..name(Some(&"x".repeat(101)))
    };
    let res = patch(&app, &user.access, Some(&etag), bad).await;
    let problem = assert_problem(res, 422, "validation_failed").await;
    assert!(
        problem.fields.contains_key("display_name") && problem.fields.contains_key("preferences"),
        "{problem:?}"
    );
    // A field the patch does not have: no `ProfilePatch` holds it.
    let res = app
        .bearer(&user.access)
        .request(Method::PATCH, "/auth/me")
        .header("if-match", &etag)
        .json(&json!({"email": "new@example.com"}))
        .send()
        .await
        .unwrap();
    assert_problem(res, 422, "validation_failed").await;
}
