//! The routes the scenarios call, each checking its status; an error names the route,
//! the status and the problem `code` (never a token).

use std::time::Duration;

use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

pub const PASSWORD: &str = "bench password 0123";

#[derive(Clone)]
pub struct Api {
    pub http: reqwest::Client,
    pub base: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Pair {
    pub access_token: String,
    pub refresh_token: String,
}

#[derive(Debug, Deserialize)]
struct Created {
    generation_id: String,
}

#[derive(Debug, Deserialize)]
pub struct StreamToken {
    pub sse_token: String,
    pub stream_url: String,
}

#[derive(Debug, Deserialize)]
struct ServiceToken {
    access_token: String,
}

impl Api {
    pub fn new(base: &str) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .pool_idle_timeout(Duration::from_secs(30))
            .build()?;
        Ok(Self {
            http,
            base: base.to_owned(),
        })
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http.request(method, format!("{}{path}", self.base))
    }

    pub async fn healthz(&self) -> Result<(), String> {
        let res = self.request(Method::GET, "/healthz").send().await;
        expect(res, StatusCode::OK, "GET /healthz").await.map(drop)
    }

    pub async fn register(&self, email: &str) -> Result<(), String> {
        let res = self
            .request(Method::POST, "/auth/register")
            .json(&json!({ "email": email, "password": PASSWORD }))
            .send()
            .await;
        expect(res, StatusCode::CREATED, "POST /auth/register")
            .await
            .map(drop)
    }

    pub async fn login(&self, email: &str) -> Result<Pair, String> {
        let res = self
            .request(Method::POST, "/auth/login")
            .json(&json!({ "email": email, "password": PASSWORD }))
            .send()
            .await;
        read(expect(res, StatusCode::OK, "POST /auth/login").await?).await
    }

    pub async fn refresh(&self, refresh_token: &str) -> Result<Pair, String> {
        let res = self
            .request(Method::POST, "/auth/refresh")
            .json(&json!({ "refresh_token": refresh_token }))
            .send()
            .await;
        read(expect(res, StatusCode::OK, "POST /auth/refresh").await?).await
    }

    pub async fn validate(&self, access_token: &str) -> Result<(), String> {
        let res = self
            .request(Method::GET, "/auth/validate")
            .bearer_auth(access_token)
            .send()
            .await;
        expect(res, StatusCode::OK, "GET /auth/validate")
            .await
            .map(drop)
    }

    /// A generation owned by the bearer (a user), with a generated id.
    pub async fn create_generation(&self, access_token: &str) -> Result<String, String> {
        let res = self
            .request(Method::POST, "/generations")
            .bearer_auth(access_token)
            .json(&json!({}))
            .send()
            .await;
        let created: Created =
            read(expect(res, StatusCode::CREATED, "POST /generations").await?).await?;
        Ok(created.generation_id)
    }

    pub async fn stream_token(
        &self,
        access_token: &str,
        generation_id: &str,
    ) -> Result<StreamToken, String> {
        let res = self
            .request(
                Method::POST,
                &format!("/generations/generate/{generation_id}/stream-token"),
            )
            .bearer_auth(access_token)
            .send()
            .await;
        read(expect(res, StatusCode::OK, "POST stream-token").await?).await
    }

    /// Opens the stream and reads up to its `connected` event.
    pub async fn open_stream(&self, token: &StreamToken) -> Result<Sse, String> {
        let base = if token.stream_url.starts_with("http") {
            ""
        } else {
            self.base.as_str()
        };
        // The token is base64url: nothing to escape.
        let url = format!("{base}{}?token={}", token.stream_url, token.sse_token);
        let res = self
            .http
            .get(url)
            // A stream lives as long as the scenario wants it.
            .timeout(Duration::from_secs(24 * 3600))
            .send()
            .await;
        let mut sse = Sse::new(expect(res, StatusCode::OK, "GET stream").await?);
        match sse.next_data().await? {
            Some(data) if data.contains(r#""event":"connected""#) => Ok(sse),
            Some(_) => Err("GET stream: the first event was not `connected`".to_owned()),
            None => Err("GET stream: ended before `connected`".to_owned()),
        }
    }

    /// Mints a stream token for the owner and opens the stream.
    pub async fn mint_and_open(
        &self,
        access_token: &str,
        generation_id: &str,
    ) -> Result<Sse, String> {
        let token = self.stream_token(access_token, generation_id).await?;
        self.open_stream(&token).await
    }

    pub async fn service_token(&self, id: &str, secret: &str) -> Result<String, String> {
        let res = self
            .request(Method::POST, "/auth/service-token")
            .basic_auth(id, Some(secret))
            .send()
            .await;
        let token: ServiceToken =
            read(expect(res, StatusCode::OK, "POST /auth/service-token").await?).await?;
        Ok(token.access_token)
    }

    /// RFC 7009 revocation of `token` (200 whatever the token was).
    pub async fn revoke(&self, token: &str) -> Result<(), String> {
        let res = self
            .request(Method::POST, "/auth/revoke")
            .json(&json!({ "token": token }))
            .send()
            .await;
        expect(res, StatusCode::OK, "POST /auth/revoke")
            .await
            .map(drop)
    }

    pub async fn publish(
        &self,
        service_token: &str,
        generation_id: &str,
        event: &Value,
    ) -> Result<(), String> {
        let res = self
            .request(
                Method::POST,
                &format!("/generations/{generation_id}/events"),
            )
            .bearer_auth(service_token)
            .json(event)
            .send()
            .await;
        expect(res, StatusCode::ACCEPTED, "POST events")
            .await
            .map(drop)
    }
}

/// The response if it has `status`; otherwise what went wrong, with the problem code.
async fn expect(
    res: reqwest::Result<Response>,
    status: StatusCode,
    what: &str,
) -> Result<Response, String> {
    let res = res.map_err(|e| {
        let kind = if e.is_timeout() {
            "timed out"
        } else if e.is_connect() {
            "cannot connect"
        } else {
            "transport error"
        };
        format!("{what}: {kind}")
    })?;
    if res.status() == status {
        return Ok(res);
    }
    let got = res.status();
    let code = res
        .json::<Value>()
        .await
        .ok()
        .and_then(|v| v.get("code").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_default();
    Err(format!("{what}: {got} {code}").trim_end().to_owned())
}

async fn read<T: serde::de::DeserializeOwned>(res: Response) -> Result<T, String> {
    let url = res.url().path().to_owned();
    res.json::<T>()
        .await
        .map_err(|_| format!("{url}: unexpected body"))
}

/// A Server-Sent Events reader: just the `data` of each event.
pub struct Sse {
    response: Response,
    buffer: Vec<u8>,
}

impl Sse {
    fn new(response: Response) -> Self {
        Self {
            response,
            buffer: Vec::new(),
        }
    }

    /// The next event's data; `None` when the server ended the stream.
    pub async fn next_data(&mut self) -> Result<Option<String>, String> {
        loop {
            while let Some(end) = find_blank_line(&self.buffer) {
                let block: Vec<u8> = self.buffer.drain(..end + 2).collect();
                let text = String::from_utf8_lossy(&block);
                let data: Vec<&str> = text
                    .lines()
                    .filter_map(|line| line.strip_prefix("data:"))
                    .map(|d| d.strip_prefix(' ').unwrap_or(d))
                    .collect();
                if !data.is_empty() {
                    return Ok(Some(data.join("\n")));
                }
            }
            match self.response.chunk().await {
                Ok(Some(chunk)) => self.buffer.extend_from_slice(&chunk),
                Ok(None) => return Ok(None),
                Err(_) => return Err("stream: read failed".to_owned()),
            }
        }
    }
}

fn find_blank_line(buffer: &[u8]) -> Option<usize> {
    buffer.windows(2).position(|w| w == b"\n\n")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn events_end_at_a_blank_line() {
        assert_eq!(find_blank_line(b"data: x\n\nretry"), Some(7));
        assert_eq!(find_blank_line(b"data: x\n"), None);
    }
}
