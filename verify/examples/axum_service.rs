//! An axum service whose `/me` answers only verified, unrevoked access tokens.
//! `AUTH_URL=http://127.0.0.1:8081 CLIENT_ID=… CLIENT_SECRET=… cargo run --example
//! axum_service --features tower` (the client needs the scope `revocations:read`).
use authstream_verify::{Claims, Verifier, tower::VerifyLayer};
use axum::{Extension, Json, Router, routing::get};

async fn me(Extension(claims): Extension<Claims>) -> Json<Claims> {
    Json(claims)
}

/// The routes, each behind the verifier.
pub fn app(verifier: Verifier) -> Router {
    Router::new()
        .route("/me", get(me))
        .layer(VerifyLayer::new(verifier))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let env = |name| std::env::var(name);
    let verifier = Verifier::builder(env("AUTH_URL")?)
        .service_credentials(env("CLIENT_ID")?, env("CLIENT_SECRET")?)
        .build()
        .await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    axum::serve(listener, app(verifier)).await?;
    Ok(())
}
