use authstream_proto::auth::{ClientCredentials, NewGeneration};
use authstream_proto::{GenerationId, GenerationStatus};
use authstream_testkit::assert_problem;
use authstream_testkit::auth::*;
use reqwest::Method;

fn for_owner(owner_id: Option<&str>) -> NewGeneration {
    NewGeneration {
        generation_id: None,
        owner_id: owner_id.map(str::to_owned),
    }
}

fn id(raw: &str) -> GenerationId {
    GenerationId::parse(raw).unwrap()
}

#[tokio::test]
async fn a_user_creates_and_reads_own_generations() {
    let app = spawn_auth().await;
    let user = app.signup().await;
    let created = app.create_generation(&user.access, "abc-123").await;
    assert_eq!(created.generation_id, "abc-123");
    assert_eq!(created.owner_id, user.user_id);
    assert_eq!(created.status, GenerationStatus::Pending);
    assert!(created.created_at > 0);

    let view = app
        .bearer(&user.access)
        .generation(&id("abc-123"))
        .await
        .unwrap();
    assert_eq!(view.progress, 0.0);
    assert_eq!(view.stage, None);
    assert!(view.updated_at >= view.created_at);

    let res = app.new_generation(&user.access, "abc-123").send().await;
    assert_problem(res.unwrap(), 409, "generation_exists").await;

    // Without an id, a UUID is generated.
    let created = app
        .bearer(&user.access)
        .create_generation(&for_owner(None))
        .await
        .unwrap();
    assert!(uuid::Uuid::parse_str(created.generation_id.as_str()).is_ok());
}

#[tokio::test]
async fn generation_ids_follow_the_rules() {
    let app = spawn_auth().await;
    let user = app.signup().await;
    let long = "x".repeat(129);
    for bad in ["", "has space", "slash/y", "ünï", long.as_str()] {
        let res = app.new_generation(&user.access, bad).send().await.unwrap();
        let problem = assert_problem(res, 422, "validation_failed").await;
        assert!(problem.fields.contains_key("generation_id"));
    }
    let ok = "A.b_c~d:e-9".to_owned() + &"x".repeat(117);
    app.create_generation(&user.access, &ok).await;
}

#[tokio::test]
async fn others_cannot_read_a_generation_but_admins_and_services_can() {
    let app = spawn_auth().await;
    let owner = app.signup().await;
    let other = app.signup().await;
    let admin = app.admin().await;
    app.create_generation(&owner.access, "gen-x").await;
    let gen_x = id("gen-x");
    let res = app.bearer(&other.access).generation(&gen_x).send().await;
    assert_problem(res.unwrap(), 403, "forbidden").await;
    app.bearer(&admin.access).generation(&gen_x).await.unwrap();
    let service = app.service_token(BACKEND_CLIENT).await;
    app.bearer(&service).generation(&gen_x).await.unwrap();
    let res = app.bearer(&owner.access).generation(&id("nope")).send();
    assert_problem(res.await.unwrap(), 404, "not_found").await;
}

#[tokio::test]
async fn services_create_generations_for_an_owner_with_the_right_scope() {
    let app = spawn_auth().await;
    let owner = app.signup().await;
    let backend = app.bearer(&app.service_token(BACKEND_CLIENT).await);
    let created = backend
        .create_generation(&for_owner(Some(&owner.user_id)))
        .await
        .unwrap();
    assert_eq!(created.owner_id, owner.user_id);
    let res = backend.create_generation(&for_owner(None)).send().await;
    assert_problem(res.unwrap(), 422, "validation_failed").await;
    let res = backend.create_generation(&for_owner(Some("nobody"))).send();
    assert_problem(res.await.unwrap(), 422, "validation_failed").await;

    let narrowed = ClientCredentials {
        client_id: Some(BACKEND_CLIENT.id.to_owned()),
        client_secret: Some(BACKEND_CLIENT.secret.to_owned()),
        scope: Some("events:publish".to_owned()),
    };
    let token = app.auth.service_token_json(&narrowed).await.unwrap();
    let res = app
        .bearer(&token.access_token)
        .create_generation(&for_owner(Some(&owner.user_id)))
        .send();
    assert_problem(res.await.unwrap(), 403, "insufficient_scope").await;

    // A user may not create for someone else.
    let other = app.signup().await;
    let res = app
        .bearer(&other.access)
        .create_generation(&for_owner(Some(&owner.user_id)))
        .send();
    assert_problem(res.await.unwrap(), 403, "forbidden").await;
}

/// 1000-character and Unicode ids: refused on creation, not found on
/// reading, never a 500.
#[tokio::test]
async fn odd_ids_are_refused_or_not_found() {
    let app = spawn_auth().await;
    let user = app.signup().await;
    let long = "a".repeat(1000);
    for id in [long.as_str(), "ü✓", "💥"] {
        let res = app.new_generation(&user.access, id).send().await.unwrap();
        assert_problem(res, 422, "validation_failed").await;
    }
    // Ids no `GenerationId` holds: sent as they are.
    for path in [long.as_str(), "%C3%BC%E2%9C%93", "%F0%9F%92%A5", "a%20b"] {
        let res = app
            .bearer(&user.access)
            .request(Method::GET, &format!("/generations/{path}"))
            .send()
            .await
            .unwrap();
        assert_problem(res, 404, "not_found").await;
    }
}
