//! The actix side of the shared crate: the ONE mapping of `ApiError` to
//! `application/problem+json`, the request middleware (request id, one log line,
//! metrics), the health routes, and helpers every handler uses.

use std::net::IpAddr;
use std::time::Instant;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpMessage as _, HttpRequest, HttpResponse, ResponseError, web};
use tracing::Instrument as _;

use crate::error::{ApiError, Challenge, ErrorCode};
use crate::rate_limit::{Cost, Limit, Policy, RateLimiter, Subject};
use crate::store::{NodeHealth, Read, ReadAnswer, Store};
use crate::telemetry;

pub const PROBLEM_JSON: &str = "application/problem+json";

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        let body = authstream_proto::Problem {
            fields: self.fields.clone(),
            ..authstream_proto::Problem::new(self.code, self.detail.clone())
        };
        let mut res = HttpResponse::build(self.status_code());
        res.content_type(PROBLEM_JSON)
            .insert_header((header::CACHE_CONTROL, "no-store"));
        if let Some(secs) = self.retry_after_secs {
            res.insert_header((header::RETRY_AFTER, secs.to_string()));
        }
        if self.status() == 401 && self.code != ErrorCode::InvalidStreamToken {
            // RFC 6750: `error="invalid_token"` only for a token that was presented and refused.
            let error = match self.code {
                ErrorCode::MissingToken | ErrorCode::InvalidCredentials => "",
                _ => ", error=\"invalid_token\"",
            };
            let scheme = match self.challenge {
                Challenge::Bearer => "Bearer",
                Challenge::Basic => "Basic",
            };
            res.insert_header((
                header::WWW_AUTHENTICATE,
                format!("{scheme} realm=\"authstream\"{error}"),
            ));
        }
        res.body(serde_json::to_string(&body).unwrap_or_default())
    }
}

/// The code for an error response the framework produced itself (no route, wrong
/// method, unreadable body), so that every error is problem+json.
fn code_for_status(status: StatusCode) -> ErrorCode {
    match status.as_u16() {
        401 => ErrorCode::MissingToken,
        404 => ErrorCode::NotFound,
        405 => ErrorCode::MethodNotAllowed,
        413 => ErrorCode::PayloadTooLarge,
        400..=499 => ErrorCode::ValidationFailed,
        503 => ErrorCode::StoreUnavailable,
        _ => ErrorCode::Internal,
    }
}

/// Request middleware: a request id (kept from `X-Request-Id` when sane), one log
/// line per request with secrets redacted from the query, request metrics by route
/// and status, and framework errors rewritten as problem+json.
pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let started = Instant::now();
    let request_id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 64
                && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    let method = req.method().to_string();
    let path = req.path().to_owned();
    let query = telemetry::redact_query(req.query_string());
    let span = tracing::info_span!("request", request_id = %request_id);

    let res = next.call(req).instrument(span.clone()).await?;
    let status = res.status();
    let mut res = if status.as_u16() >= 400 && !is_problem(&res) {
        let error = res
            .response()
            .error()
            .map(|e| e.to_string())
            .unwrap_or_default();
        let code = code_for_status(status);
        let detail = match code {
            ErrorCode::NotFound => "no such route".to_owned(),
            ErrorCode::MethodNotAllowed => "this route does not take that method".to_owned(),
            _ if error.is_empty() => code.title().to_owned(),
            _ => error,
        };
        let mut api = ApiError::new(code, detail);
        if code == ErrorCode::ValidationFailed {
            api = api.with_field("body", "could not be read");
        }
        res.into_response(api.error_response())
    } else {
        res.map_into_boxed_body()
    };
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        res.headers_mut()
            .insert(header::HeaderName::from_static("x-request-id"), value);
    }
    let limits = res.request().extensions().get::<AppliedLimits>().cloned();
    if let Some(AppliedLimits(limits)) = limits.filter(|l| !l.0.is_empty()) {
        let list = |item: fn(&Limit) -> String| {
            HeaderValue::from_str(&limits.iter().map(item).collect::<Vec<_>>().join(", ")).ok()
        };
        let headers = res.headers_mut();
        if let Some(v) = list(Limit::policy_item) {
            headers.insert(header::HeaderName::from_static("ratelimit-policy"), v);
        }
        if let Some(v) = list(Limit::state_item) {
            headers.insert(header::HeaderName::from_static("ratelimit"), v);
        }
    }

    let route = res
        .request()
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    let status = res.status().as_u16();
    let elapsed = started.elapsed();
    let labels = [
        ("method", method_label(&method).to_owned()),
        ("route", route.clone()),
        ("status", status.to_string()),
    ];
    metrics::counter!("authstream_http_requests_total", &labels).increment(1);
    metrics::histogram!("authstream_http_request_duration_seconds", &labels)
        .record(elapsed.as_secs_f64());
    let _entered = span.enter();
    tracing::info!(
        target: "authstream::access",
        %method, %path, query = %query, %route, status,
        latency_ms = elapsed.as_secs_f64() * 1000.0,
        "request"
    );
    Ok(res)
}

/// The `method` label: the methods the routes take, and `other` for any token a
/// client makes up (actix accepts any), so no request can add a series.
fn method_label(method: &str) -> &'static str {
    match method {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "OPTIONS" => "OPTIONS",
        _ => "other",
    }
}

fn is_problem<B>(res: &ServiceResponse<B>) -> bool {
    res.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with(PROBLEM_JSON))
}

/// JSON, path and query extractor errors as problem+json (413 for an oversized body).
pub fn json_config(limit: usize) -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(limit)
        .content_type_required(false)
        .error_handler(move |err, _req| {
            use actix_web::error::JsonPayloadError;
            let api = match &err {
                JsonPayloadError::Overflow { .. }
                | JsonPayloadError::OverflowKnownLength { .. } => ApiError::new(
                    ErrorCode::PayloadTooLarge,
                    format!("the body is larger than {limit} bytes"),
                ),
                JsonPayloadError::Deserialize(e) => ApiError::field("body", json_problem(e)),
                _ => ApiError::field("body", "is not valid JSON"),
            };
            api.into()
        })
}

/// What was wrong with a JSON body, in words that never repeat what the client sent:
/// serde's messages quote the offending value (`invalid type: integer `1234…``,
/// `unknown variant `…``), which may be a password typed into the wrong field. Only
/// the parts our own types wrote are kept: a missing field's name, and what was expected.
pub fn json_problem(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    match e.classify() {
        Category::Syntax | Category::Eof | Category::Io => "is not valid JSON".to_owned(),
        Category::Data => {
            let msg = e.to_string();
            let msg = msg
                .split_once(" at line")
                .map_or(msg.as_str(), |(head, _)| head);
            if let Some(field) = msg.strip_prefix("missing field ") {
                format!("is missing the field {field}")
            } else if let Some((_, expected)) = msg.rsplit_once(", expected ") {
                format!("has a value of the wrong type or range: expected {expected}")
            } else {
                "does not have the expected shape".to_owned()
            }
        }
    }
}

/// Reads a JSON body that must be an object. serde reads a JSON array into a struct
/// by position (`[null, null]` would be `{}`), so the object is read first.
pub fn from_json_object<T: serde::de::DeserializeOwned>(
    raw: &[u8],
) -> Result<T, serde_json::Error> {
    let object: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(raw)?;
    serde_json::from_value(serde_json::Value::Object(object))
}

/// `web::Json` for bodies that must be JSON objects (see `from_json_object`), with the
/// same limit and problem+json errors (`json_config`).
pub struct JsonObject<T>(pub T);

impl<T> JsonObject<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> std::ops::Deref for JsonObject<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: serde::de::DeserializeOwned + 'static> actix_web::FromRequest for JsonObject<T> {
    type Error = actix_web::Error;
    type Future = futures_util::future::LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut actix_web::dev::Payload) -> Self::Future {
        let object =
            web::Json::<serde_json::Map<String, serde_json::Value>>::from_request(req, payload);
        Box::pin(async move {
            let web::Json(object) = object.await?;
            serde_json::from_value(serde_json::Value::Object(object))
                .map(Self)
                .map_err(|e| ApiError::field("body", json_problem(&e)).into())
        })
    }
}

pub fn path_config() -> web::PathConfig {
    web::PathConfig::default().error_handler(|_, _| ApiError::not_found("resource").into())
}

pub fn query_config() -> web::QueryConfig {
    // The message of a query that did not parse may quote it: never echoed.
    web::QueryConfig::default()
        .error_handler(|_, _| ApiError::field("query", "has a parameter of the wrong type").into())
}

/// The bearer token of the `Authorization` header.
pub fn bearer_token(req: &HttpRequest) -> Result<&str, ApiError> {
    let value = req.headers().get(header::AUTHORIZATION).ok_or_else(|| {
        ApiError::new(
            ErrorCode::MissingToken,
            "an Authorization: Bearer token is required",
        )
    })?;
    let value = value
        .to_str()
        .map_err(|_| ApiError::new(ErrorCode::InvalidToken, "unreadable Authorization header"))?;
    match value.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(token.trim())
        }
        _ => Err(ApiError::new(
            ErrorCode::MissingToken,
            "an Authorization: Bearer token is required",
        )),
    }
}

/// Proxies whose `X-Forwarded-For` is believed, as addresses or CIDR blocks.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<(IpAddr, u8)>);

impl TrustedProxies {
    pub fn parse(items: &[String]) -> Result<Self, String> {
        items
            .iter()
            .map(|item| {
                let (addr, bits) = item.split_once('/').unwrap_or((item, ""));
                let addr: IpAddr = addr
                    .parse()
                    .map_err(|_| format!("not an address or CIDR block: {item:?}"))?;
                let max = if addr.is_ipv4() { 32 } else { 128 };
                let bits = if bits.is_empty() {
                    max
                } else {
                    bits.parse()
                        .map_err(|_| format!("bad prefix in {item:?}"))?
                };
                if bits > max {
                    return Err(format!("bad prefix in {item:?}"));
                }
                Ok((addr, bits))
            })
            .collect::<Result<_, _>>()
            .map(Self)
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|(net, bits)| match (net, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => prefix_eq(&n.octets(), &a.octets(), *bits),
            (IpAddr::V6(n), IpAddr::V6(a)) => prefix_eq(&n.octets(), &a.octets(), *bits),
            _ => false,
        })
    }

    /// The client address: the peer, or, when the peer is a trusted proxy, the
    /// right-most `X-Forwarded-For` hop that is not a trusted proxy. Every header line
    /// counts (a proxy may append a line of its own rather than extend the last one),
    /// read as one list in order, walked from the right.
    pub fn client_ip(&self, req: &HttpRequest) -> Option<IpAddr> {
        let peer = req.peer_addr()?.ip();
        let lines: Vec<&str> = req
            .headers()
            .get_all("x-forwarded-for")
            .map(|v| v.to_str().unwrap_or(""))
            .collect();
        Some(self.client_of(peer, &lines))
    }

    /// `client_ip` on a peer and the `X-Forwarded-For` lines. IPv4-mapped IPv6
    /// addresses are read as IPv4 before they are matched (a dual-stack listener sees
    /// `::ffff:10.0.0.1` for a proxy configured as `10.0.0.0/8`), and a hop written
    /// with a port (`203.0.113.7:4711`, `[2001:db8::1]:443`) is read without it.
    fn client_of(&self, peer: IpAddr, lines: &[&str]) -> IpAddr {
        let peer = peer.to_canonical();
        if !self.trusts(peer) {
            return peer;
        }
        let mut client = peer;
        for hop in lines
            .iter()
            .rev()
            .flat_map(|line| line.rsplit(','))
            .map(str::trim)
        {
            match parse_hop(hop) {
                Some(ip) => {
                    client = ip;
                    if !self.trusts(ip) {
                        break;
                    }
                }
                None => break,
            }
        }
        client
    }
}

/// One `X-Forwarded-For` hop: an address, with or without a port, canonical.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let ip = hop.parse::<IpAddr>().ok().or_else(|| {
        let host = match hop.strip_prefix('[') {
            Some(bracketed) => bracketed.split_once(']')?.0,
            // `a.b.c.d:port`: one colon. A bare IPv6 address parsed above.
            None => hop.rsplit_once(':')?.0,
        };
        host.parse().ok()
    })?;
    Some(ip.to_canonical())
}

fn prefix_eq(a: &[u8], b: &[u8], bits: u8) -> bool {
    let full = usize::from(bits / 8);
    let rest = bits % 8;
    if a[..full] != b[..full] {
        return false;
    }
    rest == 0 || (a[full] ^ b[full]) >> (8 - rest) == 0
}

/// `scheme://host[:port]` of an absolute http(s) URL whose origin is safe to put in a
/// header; `None` for a path (the default: the stream routes are on this origin).
pub fn origin_of(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let origin = url.get(..url.len() - rest.len() + authority.len())?;
    let clean = !authority.is_empty()
        && authority
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'));
    clean.then_some(origin)
}

/// `GET /healthz`: the process is up.
#[utoipa::path(get, path = "/healthz", tag = "operations", summary = "Liveness",
    responses((status = 200, description = "The process is up", body = authstream_proto::ops::Health, example = json!({"status": "ok"}))))]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(authstream_proto::ops::Health::ok())
}

/// `GET /readyz`: the store answers. On a Cluster, 503 only when no node answers: a
/// master being replaced leaves every replica of the service degraded, not unready
/// (taking them all out of the load balancer would turn one shard's failover into a
/// full outage); the body names each master and whether it answered. On a stream
/// replica (which watches its subscriptions with a canary per node) also 503 when a
/// node answers but this replica's subscription to it delivered nothing for
/// `STALL_AFTER`: a fault of this replica's own, which a restart or another replica
/// fixes. Read from memory: no round trip beyond the store check.
#[utoipa::path(get, path = "/readyz", tag = "operations", summary = "Readiness: the store answers (and, on a stream replica, delivers)", responses(
    (status = 200, description = "The store answers (`degraded`: a Cluster node does not, the others serve). On a stream replica each node also says whether this replica's subscription to it is `delivering`.", body = authstream_proto::ops::Readiness, example = json!({"status": "ready", "store": "redis-cluster", "nodes": [{"node": "127.0.0.1:7001", "up": true, "delivering": true}]})),
    (status = 503, response = crate::openapi::Unavailable)))]
pub async fn readyz(store: web::Data<Store>) -> Result<HttpResponse, ApiError> {
    let mut nodes = store.nodes().await?;
    if let Some(delivery) = store.delivery() {
        let stalled: Vec<&str> = delivery
            .iter()
            .filter(|d| d.stalled)
            .map(|d| d.node.as_str())
            .collect();
        if !stalled.is_empty() {
            tracing::warn!(nodes = ?stalled, "this replica's subscriptions deliver nothing from nodes that answer");
            return Err(ApiError::new(
                ErrorCode::StoreUnavailable,
                format!(
                    "this replica's subscription to {} has delivered nothing for {} s while the node answers",
                    stalled.join(", "),
                    crate::store::STALL_AFTER.as_secs()
                ),
            ));
        }
        // One Redis answered the ping: its one node is up. On a Cluster, a node the
        // canary knows and `CLUSTER NODES` not yet (or no more) is up if it answers.
        let single = nodes.is_empty();
        for d in &delivery {
            if !nodes.iter().any(|n| n.node == d.node) {
                nodes.push(NodeHealth {
                    node: d.node.clone(),
                    up: single || d.answers,
                    delivering: None,
                });
            }
        }
        for node in &mut nodes {
            node.delivering = Some(delivery.iter().any(|d| d.node == node.node && d.delivering));
        }
    }
    use authstream_proto::ops::{NodeReadiness, Readiness, ReadyStatus};
    let status = match nodes.iter().all(|n| n.up) {
        true => ReadyStatus::Ready,
        false => ReadyStatus::Degraded,
    };
    let nodes: Vec<NodeReadiness> = nodes
        .into_iter()
        .map(|n| NodeReadiness {
            node: n.node,
            up: n.up,
            delivering: n.delivering,
        })
        .collect();
    Ok(HttpResponse::Ok().json(Readiness {
        status,
        store: store.kind().to_owned(),
        nodes: (!nodes.is_empty()).then_some(nodes),
    }))
}

/// `GET /metrics`: Prometheus text format.
#[utoipa::path(get, path = "/metrics", tag = "operations", summary = "Prometheus metrics",
    responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain")))]
pub async fn metrics() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(
            telemetry::metrics_handle()
                .map(|h| h.render())
                .unwrap_or_default(),
        )
}

/// Registers `/healthz`, `/readyz` and `/metrics`, and installs the metrics recorder
/// so that everything counted from now on is exported.
pub fn health_routes(cfg: &mut web::ServiceConfig) {
    telemetry::metrics_handle();
    cfg.route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(readyz))
        .route("/metrics", web::get().to(metrics));
}

/// The default service: no route matched. When the path matched but the method did
/// not, that is a 405.
pub async fn not_found(req: HttpRequest) -> HttpResponse {
    match req.match_pattern() {
        Some(_) => ApiError::new(
            ErrorCode::MethodNotAllowed,
            "this route does not take that method",
        ),
        None => ApiError::new(ErrorCode::NotFound, "no such route"),
    }
    .error_response()
}

/// CORS for browsers on the configured origins; none configured allows none.
pub fn cors(origins: &[String]) -> actix_cors::Cors {
    let mut cors = actix_cors::Cors::default()
        .allowed_methods(["GET", "POST", "PATCH", "DELETE", "OPTIONS"])
        .allowed_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::IF_MATCH,
            header::HeaderName::from_static("last-event-id"),
            header::HeaderName::from_static("x-device-token"),
        ])
        .expose_headers([
            header::ETAG,
            header::RETRY_AFTER,
            header::HeaderName::from_static("x-request-id"),
            header::HeaderName::from_static("ratelimit-policy"),
            header::HeaderName::from_static("ratelimit"),
        ])
        .supports_credentials()
        .max_age(600);
    for origin in origins {
        cors = cors.allowed_origin(origin);
    }
    cors
}

/// Extractor configuration every app registers: JSON and raw (`web::Bytes`) bodies up
/// to `body_limit` bytes (413 `payload_too_large` past it, not actix's 256 KiB
/// default for raw bodies), path and query errors as problem+json.
pub fn extractor_config(cfg: &mut web::ServiceConfig, body_limit: usize) {
    cfg.app_data(json_config(body_limit))
        .app_data(web::PayloadConfig::new(body_limit))
        .app_data(path_config())
        .app_data(query_config());
}

/// The app's validator and the request's bearer token, taken before the async part.
struct Presented {
    validator: Option<web::Data<crate::jwt::Validator>>,
    token: Result<String, ApiError>,
}

impl Presented {
    fn of(req: &HttpRequest) -> Self {
        Self {
            validator: req.app_data::<web::Data<crate::jwt::Validator>>().cloned(),
            token: bearer_token(req).map(str::to_owned),
        }
    }

    fn into_parts(self) -> Result<(web::Data<crate::jwt::Validator>, String), ApiError> {
        let validator = self
            .validator
            .ok_or_else(|| ApiError::internal("no validator registered"))?;
        Ok((validator, self.token?))
    }

    /// The token's claims, validated as a `C`.
    async fn validate<C: crate::claims::Claims>(self) -> Result<C, ApiError> {
        let (validator, token) = self.into_parts()?;
        Ok(validator
            .validate::<C>(&token, crate::UnixTime::now())
            .await?)
    }

    /// A user's access token, or else a service token.
    async fn caller(self) -> Result<Caller, ApiError> {
        let (validator, token) = self.into_parts()?;
        Caller::validate(&validator, &token).await
    }
}

/// The rate-limit decisions made for a request, which `observe` writes as the
/// `RateLimit-Policy` and `RateLimit` headers of its answer (429 or not).
#[derive(Debug, Clone, Default)]
struct AppliedLimits(Vec<Limit>);

/// Records a decision for the answer's headers. A later decision of the same policy
/// replaces the earlier one (a login given back its attempt).
pub fn record_limit(req: &HttpRequest, limit: Limit) {
    let mut extensions = req.extensions_mut();
    let applied = extensions.get_or_insert_with(AppliedLimits::default);
    applied.0.retain(|l| l.policy != limit.policy);
    applied.0.push(limit);
}

fn limiter_of(req: &HttpRequest) -> Result<web::Data<RateLimiter>, ApiError> {
    // Missing is a wiring bug, and a refusal: nothing fails open.
    req.app_data::<web::Data<RateLimiter>>()
        .cloned()
        .ok_or_else(|| ApiError::internal("no rate limiter registered"))
}

/// Spends one request of `subject`'s budget under `policy`: the decision goes into the
/// answer's headers, and a refusal is 429 `rate_limited` with `Retry-After`.
pub async fn spend(
    req: &HttpRequest,
    limiter: &RateLimiter,
    policy: Policy,
    subject: Subject<'_>,
) -> Result<Limit, ApiError> {
    let limit = limiter.decide(policy, subject, Cost::Take).await?;
    record_limit(req, limit);
    limit.check()?;
    Ok(limit)
}

/// `spend`, with one read of the request's sent in the same round trip.
pub async fn spend_and_read(
    req: &HttpRequest,
    limiter: &RateLimiter,
    policy: Policy,
    subject: Subject<'_>,
    read: Read<'_>,
) -> Result<ReadAnswer, ApiError> {
    let (limit, found) = limiter
        .decide_and_read(policy, subject, Cost::Take, read)
        .await?;
    record_limit(req, limit);
    limit.check()?;
    Ok(found)
}

/// A request authenticated by a Bearer token of type `C`, validated (signature,
/// claims, revocation) by the `web::Data<Validator>` of the app, then admitted by the
/// user's per-tier rate limit (service tokens are not limited).
pub struct Authenticated<C>(pub C);

impl<C: crate::claims::Claims + 'static> actix_web::FromRequest for Authenticated<C> {
    type Error = ApiError;
    type Future = futures_util::future::LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut actix_web::dev::Payload) -> Self::Future {
        let pending = Pending::<C>::from_request(req, payload);
        Box::pin(async move { Ok(Self(pending.await?.admit().await?)) })
    }
}

/// A request authenticated like `Authenticated<C>` (or a `Caller`, or an
/// `Anonymous` one), whose rate-limit decision the route makes together with its
/// first store read, in one round trip: nothing of it is usable before
/// `admit_reading` (or `admit`) has spent the budget. Service tokens are not limited:
/// for them it is the read alone.
pub struct Pending<T> {
    value: T,
    charged: Option<Charged>,
    req: HttpRequest,
}

/// Whose budget a pending request spends.
enum Charged {
    /// A user, under the policy of its tier.
    User(String, crate::claims::Tier),
    /// The client address, under `anon`.
    Address(Option<IpAddr>),
}

impl Charged {
    fn user((id, tier): (&str, crate::claims::Tier)) -> Self {
        Self::User(id.to_owned(), tier)
    }

    fn budget(&self) -> (Policy, Subject<'_>) {
        match self {
            Self::User(id, tier) => (Policy::for_tier(*tier), Subject::User(id)),
            Self::Address(ip) => (Policy::Anon, Subject::Address(*ip)),
        }
    }
}

impl<T> Pending<T> {
    /// Who is asking, to name what to read: the route acts on nothing before the
    /// request is admitted.
    pub fn presented(&self) -> &T {
        &self.value
    }

    /// Spends the user's budget and makes `read`, in one round trip; 429 when refused.
    pub async fn admit_reading(self, read: Read<'_>) -> Result<(T, ReadAnswer), ApiError> {
        let limiter = limiter_of(&self.req)?;
        let Some(charged) = &self.charged else {
            return Ok((self.value, limiter.store().read(read).await?));
        };
        let (policy, subject) = charged.budget();
        let found = spend_and_read(&self.req, &limiter, policy, subject, read).await?;
        Ok((self.value, found))
    }

    /// Spends the user's budget with no read (a route refusing before it reads).
    pub async fn admit(self) -> Result<T, ApiError> {
        if let Some(charged) = &self.charged {
            let (policy, subject) = charged.budget();
            let limiter = limiter_of(&self.req)?;
            spend(&self.req, &limiter, policy, subject).await?;
        }
        Ok(self.value)
    }
}

impl<C: crate::claims::Claims + 'static> actix_web::FromRequest for Pending<C> {
    type Error = ApiError;
    type Future = futures_util::future::LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let presented = Presented::of(req);
        let req = req.clone();
        Box::pin(async move {
            let claims = presented.validate::<C>().await?;
            let charged = claims.rate_limited_user().map(Charged::user);
            Ok(Self {
                value: claims,
                charged,
                req,
            })
        })
    }
}

impl actix_web::FromRequest for Pending<Caller> {
    type Error = ApiError;
    type Future = futures_util::future::LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let presented = Presented::of(req);
        let req = req.clone();
        Box::pin(async move {
            let caller = presented.caller().await?;
            let charged = match &caller {
                Caller::User(claims) => {
                    crate::claims::Claims::rate_limited_user(claims).map(Charged::user)
                }
                Caller::Service(_) => None,
            };
            Ok(Self {
                value: caller,
                charged,
                req,
            })
        })
    }
}

/// A request authenticated like `Authenticated`, whose handler spends the user's
/// rate limit itself, in the same store round trip as its own work
/// (`RateLimiter::budget`, then `RateLimiter::decided` and `record_limit`).
pub struct Validated<C>(pub C);

impl<C: crate::claims::Claims + 'static> actix_web::FromRequest for Validated<C> {
    type Error = ApiError;
    type Future = futures_util::future::LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let presented = Presented::of(req);
        Box::pin(async move { Ok(Self(presented.validate::<C>().await?)) })
    }
}

/// An anonymous request (no Bearer token), admitted by the per-address rate limit
/// (`anon`). Holds the client address (`TRUSTED_PROXIES` applied).
pub struct Anonymous {
    pub client_ip: Option<IpAddr>,
}

impl actix_web::FromRequest for Anonymous {
    type Error = ApiError;
    type Future = futures_util::future::LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let limiter = limiter_of(&req)?;
            let client_ip = limiter.trusted_proxies().client_ip(&req);
            spend(&req, &limiter, Policy::Anon, Subject::Address(client_ip)).await?;
            Ok(Self { client_ip })
        })
    }
}

impl actix_web::FromRequest for Pending<Anonymous> {
    type Error = ApiError;
    type Future = futures_util::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        futures_util::future::ready(limiter_of(req).map(|limiter| {
            let client_ip = limiter.trusted_proxies().client_ip(req);
            Self {
                value: Anonymous { client_ip },
                charged: Some(Charged::Address(client_ip)),
                req: req.clone(),
            }
        }))
    }
}

/// A caller that is either a signed-in user or a service client.
pub enum Caller {
    User(crate::claims::AccessClaims),
    Service(crate::claims::ServiceClaims),
}

impl Caller {
    pub fn is_admin(&self) -> bool {
        matches!(self, Self::User(c) if c.is_admin())
    }

    pub fn has_scope(&self, scope: crate::claims::Scope) -> bool {
        matches!(self, Self::Service(c) if c.has_scope(scope))
    }

    /// An admin user or a service client with `scope`; otherwise 403.
    pub fn require_admin_or_scope(&self, scope: crate::claims::Scope) -> Result<(), ApiError> {
        match self {
            _ if self.is_admin() || self.has_scope(scope) => Ok(()),
            Self::Service(_) => Err(ApiError::new(
                ErrorCode::InsufficientScope,
                format!("the scope {scope} is required"),
            )),
            Self::User(_) => Err(ApiError::forbidden("this needs the admin role")),
        }
    }
}

impl Caller {
    /// A user's access token, or else a service token.
    async fn validate(validator: &crate::jwt::Validator, token: &str) -> Result<Self, ApiError> {
        let now = crate::UnixTime::now();
        match validator
            .validate::<crate::claims::AccessClaims>(token, now)
            .await
        {
            Ok(claims) => Ok(Self::User(claims)),
            Err(crate::jwt::TokenError::WrongType(crate::claims::TokenType::Service)) => {
                Ok(Self::Service(validator.validate(token, now).await?))
            }
            Err(e) => Err(e.into()),
        }
    }
}

impl actix_web::FromRequest for Caller {
    type Error = ApiError;
    type Future = futures_util::future::LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut actix_web::dev::Payload) -> Self::Future {
        let pending = Pending::<Caller>::from_request(req, payload);
        Box::pin(async move { pending.await?.admit().await })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_matching() {
        let t = TrustedProxies::parse(&["10.0.0.0/8".into(), "::1".into()]).unwrap();
        assert!(t.trusts("10.1.2.3".parse().unwrap()));
        assert!(!t.trusts("11.0.0.1".parse().unwrap()));
        assert!(t.trusts("::1".parse().unwrap()));
        assert!(TrustedProxies::parse(&["nonsense".into()]).is_err());
        assert!(TrustedProxies::parse(&["10.0.0.0/33".into()]).is_err());
    }

    #[test]
    fn mapped_peers_match_ipv4_proxies_and_hops_may_carry_ports() {
        let t = TrustedProxies::parse(&["10.0.0.0/8".into()]).unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        // A dual-stack listener sees the proxy as ::ffff:10.0.0.1.
        assert_eq!(
            t.client_of(ip("::ffff:10.0.0.1"), &["203.0.113.7"]),
            ip("203.0.113.7")
        );
        assert_eq!(
            t.client_of(ip("::ffff:192.0.2.1"), &["203.0.113.7"]),
            ip("192.0.2.1")
        );
        // Ports are stripped instead of ending the walk at the proxy.
        assert_eq!(
            t.client_of(ip("10.0.0.1"), &["203.0.113.7:4711, 10.0.0.2:80"]),
            ip("203.0.113.7")
        );
        assert_eq!(
            t.client_of(ip("10.0.0.1"), &["[2001:db8::1]:443"]),
            ip("2001:db8::1")
        );
        assert_eq!(
            t.client_of(ip("10.0.0.1"), &["2001:db8::1"]),
            ip("2001:db8::1")
        );
        assert_eq!(
            t.client_of(ip("10.0.0.1"), &["::ffff:198.51.100.2"]),
            ip("198.51.100.2")
        );
        // Garbage stops the walk at the last good hop.
        assert_eq!(
            t.client_of(ip("10.0.0.1"), &["203.0.113.7, junk"]),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn json_problems_never_quote_the_value_sent() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Body {
            password: String,
            tier: Option<Tier>,
        }
        #[derive(Debug, serde::Deserialize)]
        #[serde(rename_all = "lowercase")]
        enum Tier {
            Free,
        }
        let problem = |raw: &str| json_problem(&serde_json::from_str::<Body>(raw).unwrap_err());
        for raw in [
            r#"{"password": 98765432101234}"#,
            r#"{"password": {"s": "S3cretValue"}}"#,
            r#"{"password": ["S3cretValue"]}"#,
            r#"{"password": "x", "tier": "S3cretValue"}"#,
            r#"{"password": 9876543210.5}"#,
        ] {
            let text = problem(raw);
            assert!(
                !text.contains("S3cretValue")
                    && !text.contains("98765")
                    && !text.contains("9876543210"),
                "{raw}: {text}"
            );
        }
        assert_eq!(
            problem(r#"{"password": 1}"#),
            "has a value of the wrong type or range: expected a string"
        );
        assert_eq!(problem("{}"), "is missing the field `password`");
        assert_eq!(problem(r#"{"password": "S3cretValue"#), "is not valid JSON");
    }
}
