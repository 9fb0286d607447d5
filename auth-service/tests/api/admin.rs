use authstream_proto::Tier;
use authstream_proto::auth::UserPatch;
use authstream_testkit::assert_problem;
use authstream_testkit::auth::*;

fn tier(tier: &str) -> UserPatch {
    UserPatch {
        tier: Some(tier.to_owned()),
        roles: None,
    }
}

#[tokio::test]
async fn an_admin_changes_the_tier_and_new_tokens_carry_it() {
    let app = spawn_auth().await;
    let user = app.signup().await;
    let admin = app.admin().await;
    let changed = app
        .bearer(&admin.access)
        .update_user(&user.user_id, &tier("paid"))
        .await
        .unwrap();
    assert_eq!(changed.tier, Tier::Paid);
    let old = app.validate(&user.access).await.unwrap();
    assert_eq!(old.tier, Some(Tier::Free), "an issued token keeps its tier");
    // The next token carries the new tier, from a login and from a refresh alike.
    let renewed = app.login(&user.email).await;
    let refreshed = app.refresh(&user.refresh).await.unwrap();
    for access in [renewed.access, refreshed.access_token] {
        let new = app.validate(&access).await.unwrap();
        assert_eq!(new.tier, Some(Tier::Paid));
    }
}

#[tokio::test]
async fn user_administration_needs_the_admin_role_or_scope() {
    let app = spawn_auth().await;
    let user = app.signup().await;
    let other = app.signup().await;
    let as_user = app.bearer(&user.access);
    let res = as_user.update_user(&other.user_id, &tier("paid")).send();
    assert_problem(res.await.unwrap(), 403, "forbidden").await;
    let res = as_user.revoke_user(&other.user_id).send().await.unwrap();
    assert_problem(res, 403, "forbidden").await;
    let backend = app.bearer(&app.service_token(BACKEND_CLIENT).await);
    let res = backend.revoke_user(&other.user_id).send().await.unwrap();
    assert_problem(res, 403, "insufficient_scope").await;
    let admin = app.bearer(&app.service_token(ADMIN_CLIENT).await);
    let res = admin.update_user(&other.user_id, &tier("gold")).send();
    assert_problem(res.await.unwrap(), 422, "validation_failed").await;
    let res = admin.update_user("nobody", &tier("paid")).send();
    assert_problem(res.await.unwrap(), 404, "not_found").await;
}

#[tokio::test]
async fn revoking_a_user_ends_all_their_tokens_at_once() {
    let app = spawn_auth().await;
    // By a service with users:admin, and by a user with the admin role.
    for admin in [
        app.service_token(ADMIN_CLIENT).await,
        app.admin().await.access,
    ] {
        revoke_user_by(&app, &admin).await;
    }
}

async fn revoke_user_by(app: &AuthApp, admin: &str) {
    let user = app.signup().await;
    let second = app.login(&user.email).await;
    let bystander = app.signup().await;
    app.bearer(admin).revoke_user(&user.user_id).await.unwrap();
    for s in [&user, &second] {
        let res = app.validate(&s.access).send().await.unwrap();
        assert_problem(res, 401, "token_revoked").await;
        let res = app.refresh(&s.refresh).send().await.unwrap();
        assert_problem(res, 401, "token_revoked").await;
    }
    app.me(&bystander.access).await.unwrap();
    let again = app.login(&user.email).await;
    app.me(&again.access).await.unwrap();
}
