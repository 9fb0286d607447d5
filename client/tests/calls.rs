//! Calls against a server that answers one request as told: what each call sends,
//! and how the answer becomes a typed value, an error or a raw response.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::error::Error as _;
use std::time::Duration;

use authstream_client::{AuthClient, ErrorKind, StreamClient, answer};
use authstream_proto::auth::{Credentials, TokenPair};
use authstream_proto::stream::StreamEventKind;
use authstream_proto::{ErrorCode, GenerationId};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

const TOKEN: &str = "tok-8d1c3a2f9b";

/// A server on a free port answering one request with `status`, `headers` and
/// `body`; the task gives back the request's head.
async fn serve_once(
    status: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (String, JoinHandle<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let mut answer = format!(
        "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        answer.push_str(&format!("{k}: {v}\r\n"));
    }
    answer.push_str("\r\n");
    answer.push_str(body);
    let task = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut head = Vec::new();
        let mut buf = [0u8; 4096];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = socket.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            head.extend_from_slice(&buf[..n]);
        }
        socket.write_all(answer.as_bytes()).await.unwrap();
        socket.shutdown().await.ok();
        String::from_utf8_lossy(&head).to_lowercase()
    });
    (base, task)
}

fn credentials() -> Credentials {
    Credentials {
        email: "ada@example.com".to_owned(),
        password: "correct horse".to_owned(),
    }
}

const RATE_LIMITED: &str = r#"{"type":"about:blank","title":"Too many requests","status":429,"detail":"the login budget is spent","code":"rate_limited"}"#;

#[tokio::test]
async fn a_typed_call_sends_its_route_and_reads_its_answer() {
    let body = r#"{"access_token":"a","refresh_token":"r","token_type":"Bearer","expires_in":900,"refresh_expires_in":86400,"session_id":"s-1"}"#;
    let (base, server) = serve_once("200 OK", &[("content-type", "application/json")], body).await;
    let auth = AuthClient::new(reqwest::Client::new(), &base);
    let pair: TokenPair = auth.login(&credentials()).await.unwrap();
    assert_eq!(pair.session_id, "s-1");
    let head = server.await.unwrap();
    assert!(head.starts_with("post /auth/login http/1.1\r\n"), "{head}");
    assert!(head.contains("content-type: application/json"), "{head}");
}

#[tokio::test]
async fn a_refused_call_is_an_error_with_its_problem_and_retry_after() {
    let headers = [
        ("content-type", "application/problem+json"),
        ("retry-after", "3"),
    ];
    let (base, server) = serve_once("429 Too Many Requests", &headers, RATE_LIMITED).await;
    let auth = AuthClient::new(reqwest::Client::new(), &base).with_token(TOKEN);
    let err = auth.sessions().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Status);
    assert_eq!(err.status().map(|s| s.as_u16()), Some(429));
    assert_eq!(err.code(), Some(ErrorCode::RateLimited));
    assert_eq!(err.retry_after(), Some(Duration::from_secs(3)));
    assert_eq!(err.route(), "GET /auth/sessions");
    assert!(!err.to_string().contains(TOKEN));
    assert!(!format!("{err:?}").contains(TOKEN));
    let head = server.await.unwrap();
    assert!(
        head.contains(&format!("authorization: bearer {TOKEN}")),
        "{head}"
    );
}

#[tokio::test]
async fn send_gives_the_raw_response_whatever_its_status() {
    let headers = [
        ("content-type", "application/problem+json"),
        ("retry-after", "3"),
    ];
    let (base, _server) = serve_once("429 Too Many Requests", &headers, RATE_LIMITED).await;
    let auth = AuthClient::new(reqwest::Client::new(), &base);
    let res = auth
        .login(&credentials())
        .header("user-agent", "phone")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 429);
    assert_eq!(
        answer::retry_after(res.headers()),
        Some(Duration::from_secs(3))
    );
    let problem = answer::problem(res).await.unwrap();
    assert_eq!(problem.code, ErrorCode::RateLimited);
}

#[tokio::test]
async fn another_success_status_than_the_routes_is_an_error() {
    let (base, _server) = serve_once("200 OK", &[], "").await;
    let auth = AuthClient::new(reqwest::Client::new(), &base);
    let err = auth.register(&credentials()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Status);
    assert!(err.problem().is_none());
    assert_eq!(err.to_string(), "POST /auth/register: 200 OK");
}

#[tokio::test]
async fn a_route_without_an_answer_takes_its_204() {
    let (base, server) = serve_once("204 No Content", &[], "").await;
    let auth = AuthClient::new(reqwest::Client::new(), &base).with_token(TOKEN);
    auth.logout().await.unwrap();
    assert!(server.await.unwrap().starts_with("post /auth/logout "));
}

#[tokio::test]
async fn opening_a_stream_sends_its_token_and_resume_point() {
    let body = "event: connected\ndata: {\"event\":\"connected\",\"generation_id\":\"g-1\"}\n\n";
    let (base, server) = serve_once("200 OK", &[("content-type", "text/event-stream")], body).await;
    let stream = StreamClient::new(reqwest::Client::new(), &base);
    let id = GenerationId::parse("g-1").unwrap();
    let mut events = stream.open_after(&id, "abc_-9", "5-0").await.unwrap();
    let connected = events.next().await.unwrap().unwrap();
    assert_eq!(connected.data.event, StreamEventKind::Connected);
    assert!(events.next().await.unwrap().is_none());
    let head = server.await.unwrap();
    assert!(
        head.starts_with("get /generations/generate/g-1/stream?token=abc_-9 http/1.1\r\n"),
        "{head}"
    );
    assert!(head.contains("last-event-id: 5-0"), "{head}");
    assert!(head.contains("accept: text/event-stream"), "{head}");
}

#[tokio::test]
async fn a_transport_error_never_prints_the_stream_token() {
    // A port nothing listens on any more.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let stream = StreamClient::new(reqwest::Client::new(), &format!("http://127.0.0.1:{port}"));
    let id = GenerationId::parse("g-1").unwrap();
    let err = stream.open(&id, TOKEN).await.unwrap_err();
    assert!(err.is_transport(), "{err:?}");
    assert_eq!(err.kind(), ErrorKind::Connect);
    let mut printed = format!("{err} {err:?}");
    let mut source = err.source();
    while let Some(s) = source {
        printed.push_str(&format!(" {s} {s:?}"));
        source = s.source();
    }
    assert!(!printed.contains(TOKEN), "{printed}");
}

#[test]
fn neither_a_client_nor_a_call_prints_its_token() {
    let auth = AuthClient::new(reqwest::Client::new(), "http://127.0.0.1:1/").with_token(TOKEN);
    assert_eq!(auth.base(), "http://127.0.0.1:1");
    assert!(!format!("{auth:?}").contains(TOKEN));
    assert!(!format!("{:?}", auth.me()).contains(TOKEN));
    assert!(!format!("{:?}", auth.without_token()).contains("redacted"));
}
