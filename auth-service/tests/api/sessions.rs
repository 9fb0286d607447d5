use authstream_testkit::assert_problem;
use authstream_testkit::auth::*;

#[tokio::test]
async fn sessions_are_listed_with_the_current_one_marked() {
    let app = spawn_auth().await;
    let email = unique_email();
    app.register(&email).await;
    app.login_as(&email, PASSWORD)
        .header("user-agent", "Phone Safari")
        .await
        .unwrap();
    let current = app.login(&email).await;
    let list = app.bearer(&current.access).sessions().await.unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0].user_agent, "Phone Safari");
    assert!(!list[0].current);
    assert_eq!(list[1].session_id, current.session_id);
    assert!(list[1].current);
    assert_eq!(list[1].ip.as_deref(), Some("127.0.0.1"));
    for s in &list {
        for (field, at) in [
            ("created_at", s.created_at),
            ("last_seen_at", s.last_seen_at),
        ] {
            assert!(at > 1_700_000_000_000, "{field}");
        }
    }
}

#[tokio::test]
async fn deleting_a_session_revokes_it_and_others_cannot_touch_it() {
    let app = spawn_auth().await;
    let mine = app.signup().await;
    let other_device = app.login(&mine.email).await;
    let stranger = app.signup().await;

    let res = app
        .bearer(&stranger.access)
        .delete_session(&other_device.session_id)
        .send()
        .await
        .unwrap();
    assert_problem(res, 404, "not_found").await;
    app.me(&other_device.access).await.unwrap();

    app.bearer(&mine.access)
        .delete_session(&other_device.session_id)
        .await
        .unwrap();
    let res = app.me(&other_device.access).send().await.unwrap();
    assert_problem(res, 401, "token_revoked").await;
    app.me(&mine.access).await.unwrap();
    let list = app.bearer(&mine.access).sessions().await.unwrap();
    assert_eq!(list.len(), 1);
}

#[tokio::test]
async fn x_forwarded_for_counts_only_from_trusted_proxies() {
    for (trusted, expected) in [(None, "127.0.0.1"), (Some("127.0.0.0/8"), "203.0.113.9")] {
        let env: Vec<(&str, &str)> = trusted
            .map(|t| ("TRUSTED_PROXIES", t))
            .into_iter()
            .collect();
        let app = spawn_auth_with(&env).await;
        let email = unique_email();
        app.register(&email).await;
        let pair = app
            .login_as(&email, PASSWORD)
            .header("x-forwarded-for", "198.51.100.1, 203.0.113.9")
            .await
            .unwrap();
        let list = app.bearer(&pair.access_token).sessions().await.unwrap();
        assert_eq!(
            list[0].ip.as_deref(),
            Some(expected),
            "trusted: {trusted:?}"
        );
    }
}
