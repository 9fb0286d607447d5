//! What stream tests start from: grants as the auth service mints them, a holder's
//! record, and published events.

use super::*;

/// The grant of a stream token of `user` in `session` for `generation`, as the auth
/// service mints it: an hour of session left, no address, not an administrator.
pub fn grant(user: &str, session: &str, generation: &GenerationId) -> StreamGrant {
    StreamGrant {
        user_id: user.to_owned(),
        session_id: session.to_owned(),
        generation_id: generation.to_string(),
        issued_at: UnixTime::now().millis(),
        client_ip: None,
        admin: false,
        tier: Default::default(),
        kind: GrantKind::Token,
        session_expires_at: UnixTime::now().millis() + 3_600_000,
        expires_at: None,
    }
}

/// The session record and the user record (with `roles`) the auth service keeps, as
/// far as a resume reads them; an existing user keeps its roles.
pub async fn ensure_holder(store: &Store, user: &str, session: &str, roles: &[&str]) {
    let keys = store.keys();
    store
        .set_nx(&keys.session(user, session), "{}", Duration::from_secs(600))
        .await
        .unwrap();
    let record = json!({ "user_id": user, "roles": roles }).to_string();
    store
        .set_nx_no_expiry(&keys.user(user), &record)
        .await
        .unwrap();
}

/// A progress event of `status` at `progress`, in stage `work`.
pub fn event(status: GenerationStatus, progress: f64) -> NewEventBody {
    NewEventBody {
        progress: Some(progress),
        stage: Some("work".to_owned()),
        ..NewEventBody::new(status)
    }
}

/// A `processing` event numbered `step` carrying `padding`, to fill socket buffers.
pub fn padded_event(step: usize, padding: &str) -> NewEventBody {
    NewEventBody {
        extra: extra(json!({ "step": step, "padding": padding })),
        ..NewEventBody::new(GenerationStatus::Processing)
    }
}

/// The fields of a JSON object, as a published event's extra fields.
pub fn extra(object: Value) -> Map<String, Value> {
    match object {
        Value::Object(fields) => fields,
        other => panic!("not an object: {other}"),
    }
}
