//! The operations routes: `/healthz`, `/readyz` (the store answers, and on a stream
//! replica delivers) and `/metrics`, and with them `/openapi.json` and Swagger UI
//! (`crate::openapi`): the routes every server has (`operations`).

use actix_web::{HttpResponse, get, web};
use utoipa_actix_web::service_config::ServiceConfig;

use crate::error::{ApiError, ErrorCode};
use authstream_runtime::telemetry;
use authstream_store::{NodeHealth, Store};

/// `GET /healthz`: the process is up.
#[utoipa::path(tag = "operations", summary = "Liveness",
    responses((status = 200, description = "The process is up", body = authstream_proto::ops::Health, example = json!({"status": "ok"}))))]
#[get("/healthz")]
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
#[utoipa::path(tag = "operations", summary = "Readiness: the store answers (and, on a stream replica, delivers)", responses(
    (status = 200, description = "The store answers (`degraded`: a Cluster node does not, the others serve). On a stream replica each node also says whether this replica's subscription to it is `delivering`.", body = authstream_proto::ops::Readiness, example = json!({"status": "ready", "store": "redis-cluster", "nodes": [{"node": "127.0.0.1:7001", "up": true, "delivering": true}]})),
    (status = 503, response = crate::openapi::Unavailable)))]
#[get("/readyz")]
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
                    authstream_store::STALL_AFTER.as_secs()
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
#[utoipa::path(tag = "operations", summary = "Prometheus metrics",
    responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain")))]
#[get("/metrics")]
pub async fn metrics() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(
            telemetry::metrics_handle()
                .map(|h| h.render())
                .unwrap_or_default(),
        )
}

/// Registers the routes every server has, after its own: `/healthz`, `/readyz`,
/// `/metrics`, then `/openapi.json` and Swagger UI at `/docs` (`crate::openapi::serve`);
/// and installs the metrics recorder so that everything counted from now on is exported.
/// Registering a handler here is what documents it: each goes into the OpenAPI document
/// of the server that calls this. `/readyz` reads the `Store` and `/openapi.json` the
/// `ApiDocument` from the app data, which the server adds.
pub fn operations(cfg: &mut ServiceConfig) {
    telemetry::metrics_handle();
    cfg.service(healthz).service(readyz).service(metrics);
    crate::openapi::serve(cfg);
}
