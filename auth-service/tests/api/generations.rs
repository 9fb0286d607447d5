use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

#[tokio::test]
async fn a_user_creates_and_reads_own_generations() {
    let app = spawn_app().await;
    let user = app.signup().await;
    let res = app.create_generation(&user.access, "abc-123").await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["generation_id"], "abc-123");
    assert_eq!(body["owner_id"], user.user_id.as_str());
    assert_eq!(body["status"], "pending");
    assert!(body["created_at"].as_i64().unwrap() > 0);

    let res = app
        .get("/generations/abc-123")
        .bearer_auth(&user.access)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["progress"], 0.0);
    assert_eq!(body["stage"], Value::Null);
    assert!(body["updated_at"].as_i64().is_some());

    assert_problem(
        app.create_generation(&user.access, "abc-123").await,
        409,
        "generation_exists",
    )
    .await;

    // Without an id, a UUID is generated.
    let res = app
        .post("/generations")
        .bearer_auth(&user.access)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    let body: Value = res.json().await.unwrap();
    assert!(uuid::Uuid::parse_str(body["generation_id"].as_str().unwrap()).is_ok());
}

#[tokio::test]
async fn generation_ids_follow_the_rules() {
    let app = spawn_app().await;
    let user = app.signup().await;
    let long = "x".repeat(129);
    for bad in ["", "has space", "slash/y", "ünï", long.as_str()] {
        let body = assert_problem(
            app.create_generation(&user.access, bad).await,
            422,
            "validation_failed",
        )
        .await;
        assert!(body["fields"]["generation_id"].is_string());
    }
    let ok = "A.b_c~d:e-9".to_owned() + &"x".repeat(117);
    assert_eq!(
        app.create_generation(&user.access, &ok).await.status(),
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn others_cannot_read_a_generation_but_admins_and_services_can() {
    let app = spawn_app().await;
    let owner = app.signup().await;
    let other = app.signup().await;
    let admin = app.admin().await;
    app.create_generation(&owner.access, "gen-x").await;
    let res = app
        .get("/generations/gen-x")
        .bearer_auth(&other.access)
        .send()
        .await
        .unwrap();
    assert_problem(res, 403, "forbidden").await;
    let res = app
        .get("/generations/gen-x")
        .bearer_auth(&admin.access)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let service = app.service_token(BACKEND_CLIENT).await;
    let res = app
        .get("/generations/gen-x")
        .bearer_auth(&service)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let res = app
        .get("/generations/nope")
        .bearer_auth(&owner.access)
        .send()
        .await
        .unwrap();
    assert_problem(res, 404, "not_found").await;
}

#[tokio::test]
async fn services_create_generations_for_an_owner_with_the_right_scope() {
    let app = spawn_app().await;
    let owner = app.signup().await;
    let backend = app.service_token(BACKEND_CLIENT).await;
    let res = app
        .post("/generations")
        .bearer_auth(&backend)
        .json(&json!({"owner_id": owner.user_id}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    assert_eq!(
        res.json::<Value>().await.unwrap()["owner_id"],
        owner.user_id.as_str()
    );
    let res = app
        .post("/generations")
        .bearer_auth(&backend)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_problem(res, 422, "validation_failed").await;
    let res = app
        .post("/generations")
        .bearer_auth(&backend)
        .json(&json!({"owner_id": "nobody"}))
        .send()
        .await
        .unwrap();
    assert_problem(res, 422, "validation_failed").await;

    let token: Value = app
        .post("/auth/service-token")
        .json(&json!({"client_id": BACKEND_CLIENT.0, "client_secret": BACKEND_CLIENT.1, "scope": "events:publish"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let res = app
        .post("/generations")
        .bearer_auth(token["access_token"].as_str().unwrap())
        .json(&json!({"owner_id": owner.user_id}))
        .send()
        .await
        .unwrap();
    assert_problem(res, 403, "insufficient_scope").await;

    // A user may not create for someone else.
    let other = app.signup().await;
    let res = app
        .post("/generations")
        .bearer_auth(&other.access)
        .json(&json!({"owner_id": owner.user_id}))
        .send()
        .await
        .unwrap();
    assert_problem(res, 403, "forbidden").await;
}

/// 1000-character and Unicode ids: refused on creation, not found on
/// reading, never a 500.
#[tokio::test]
async fn odd_ids_are_refused_or_not_found() {
    let app = spawn_app().await;
    let user = app.signup().await;
    let long = "a".repeat(1000);
    for id in [long.as_str(), "ü✓", "💥"] {
        assert_problem(
            app.create_generation(&user.access, id).await,
            422,
            "validation_failed",
        )
        .await;
    }
    for path in [long.as_str(), "%C3%BC%E2%9C%93", "%F0%9F%92%A5", "a%20b"] {
        let res = app
            .get(&format!("/generations/{path}"))
            .bearer_auth(&user.access)
            .send()
            .await
            .unwrap();
        assert_problem(res, 404, "not_found").await;
    }
}
