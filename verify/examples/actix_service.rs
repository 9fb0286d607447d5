//! An actix-web service whose `/me` answers only verified, unrevoked access tokens.
//! `AUTH_URL=http://127.0.0.1:8081 CLIENT_ID=… CLIENT_SECRET=… cargo run --example
//! actix_service --features actix` (the client needs the scope `revocations:read`).
use std::net::TcpListener;

use actix_web::{App, HttpServer, dev::Server, get, web};
use authstream_verify::{Claims, Verifier, actix::Verified};

#[get("/me")]
async fn me(Verified(claims): Verified) -> web::Json<Claims> {
    web::Json(claims)
}

/// The service on `listener`, the verifier in its app data.
pub fn server(verifier: Verifier, listener: TcpListener) -> std::io::Result<Server> {
    let verifier = web::Data::new(verifier);
    let app = move || App::new().app_data(verifier.clone()).service(me);
    Ok(HttpServer::new(app).listen(listener)?.run())
}

#[actix_web::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let env = |name| std::env::var(name);
    let verifier = Verifier::builder(env("AUTH_URL")?)
        .service_credentials(env("CLIENT_ID")?, env("CLIENT_SECRET")?)
        .build()
        .await?;
    server(verifier, TcpListener::bind("127.0.0.1:3000")?)?.await?;
    Ok(())
}
