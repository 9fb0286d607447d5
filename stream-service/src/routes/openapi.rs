//! `GET /openapi.json`: the OpenAPI 3.1 description of the stream service's routes.

use actix_web::HttpResponse;
use serde_json::{Value, json};

pub async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok().json(openapi())
}

fn problem(description: &str) -> Value {
    json!({
        "description": description,
        "content": { "application/problem+json": { "schema": { "$ref": "#/components/schemas/Problem" } } }
    })
}

/// The document; the single-process binary may merge its `paths` with the auth service's.
pub fn openapi() -> Value {
    let generation_id = json!({
        "name": "generation_id", "in": "path", "required": true,
        "schema": { "type": "string", "pattern": "^[A-Za-z0-9._~:-]{1,128}$" }
    });
    let stream_params = json!([
        generation_id,
        { "name": "token", "in": "query", "required": false,
          "description": "A single-use stream token from the auth service (not a JWT). May be left out when the as_resume cookie is sent.",
          "schema": { "type": "string", "minLength": 43, "maxLength": 43 } },
        { "name": "last_event_id", "in": "query", "required": false,
          "description": "Resume after this event id (the Last-Event-ID header takes precedence).",
          "schema": { "type": "string" } },
        { "name": "Last-Event-ID", "in": "header", "required": false, "schema": { "type": "string" } }
    ]);
    json!({
        "openapi": "3.1.0",
        "info": { "title": "authstream stream-service", "version": env!("CARGO_PKG_VERSION") },
        "paths": {
            "/generations/generate/{generation_id}/stream": { "get": {
                "summary": "Follow a generation's events as Server-Sent Events",
                "parameters": stream_params,
                "responses": {
                    "200": { "description": "The event stream; sets the as_resume cookie",
                             "content": { "text/event-stream": { "schema": { "type": "string" } } } },
                    "204": { "description": "Resumed at the terminal event of a finished generation" },
                    "401": problem("invalid_stream_token"),
                    "429": problem("rate_limited: the user has STREAM_MAX_PER_USER streams open"),
                    "503": problem("store_unavailable")
                }
            }},
            "/generations/generate/{generation_id}/ws": { "get": {
                "summary": "Follow a generation's events over a WebSocket (JSON text frames with an id field)",
                "parameters": stream_params,
                "responses": {
                    "101": { "description": "Switching to the WebSocket protocol" },
                    "401": problem("invalid_stream_token"),
                    "403": problem("forbidden: the Origin is not allowed"),
                    "422": problem("validation_failed: not a WebSocket upgrade"),
                    "429": problem("rate_limited: the user has STREAM_MAX_PER_USER streams open"),
                    "503": problem("store_unavailable")
                }
            }},
            "/generations/{generation_id}/events": { "post": {
                "summary": "Publish one progress event (service scope events:publish)",
                "security": [{ "bearer": [] }],
                "parameters": [generation_id],
                "requestBody": { "required": true, "content": { "application/json": {
                    "schema": { "$ref": "#/components/schemas/NewEvent" } } } },
                "responses": {
                    "202": { "description": "Appended", "content": { "application/json": {
                        "schema": { "type": "object", "required": ["id"], "properties": { "id": { "type": "string" } } } } } },
                    "401": problem("missing_token, invalid_token, token_expired, token_revoked, wrong_token_type"),
                    "403": problem("insufficient_scope"),
                    "404": problem("not_found"),
                    "409": problem("generation_finished"),
                    "413": problem("payload_too_large"),
                    "422": problem("validation_failed"),
                    "503": problem("store_unavailable")
                }
            }},
            "/healthz": { "get": { "summary": "The process is up", "responses": { "200": { "description": "Up" } } } },
            "/readyz": { "get": { "summary": "The store answers",
                "responses": { "200": { "description": "Ready" }, "503": problem("store_unavailable") } } },
            "/metrics": { "get": { "summary": "Prometheus metrics",
                "responses": { "200": { "description": "Text format", "content": { "text/plain": {} } } } } }
        },
        "components": {
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer", "bearerFormat": "JWT" } },
            "schemas": {
                "Problem": { "type": "object", "required": ["type", "title", "status", "code"], "properties": {
                    "type": { "type": "string" }, "title": { "type": "string" }, "status": { "type": "integer" },
                    "detail": { "type": "string" }, "code": { "type": "string" },
                    "fields": { "type": "object", "additionalProperties": { "type": "string" } } } },
                "NewEvent": { "type": "object", "required": ["status"], "additionalProperties": true, "properties": {
                    "status": { "enum": ["pending", "processing", "completed", "failed"] },
                    "stage": { "type": "string", "maxLength": 128 },
                    "progress": { "type": "number", "minimum": 0, "maximum": 1 },
                    "message": { "type": "string", "maxLength": 1024 },
                    "timestamp": { "type": "integer", "description": "Unix milliseconds; now when left out" } } }
            }
        }
    })
}
