//! Reading request bodies, paths and queries: the extractor configuration every app
//! registers, `JsonObject`, and problem messages that never quote what was sent.

use actix_web::{HttpRequest, web};

use crate::error::{ApiError, ErrorCode};

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

/// Extractor configuration every app registers: JSON and raw (`web::Bytes`) bodies up
/// to `body_limit` bytes (413 `payload_too_large` past it, not actix's 256 KiB
/// default for raw bodies), path and query errors as problem+json.
pub fn extractor_config(
    cfg: &mut utoipa_actix_web::service_config::ServiceConfig,
    body_limit: usize,
) {
    cfg.app_data(json_config(body_limit))
        .app_data(web::PayloadConfig::new(body_limit))
        .app_data(path_config())
        .app_data(query_config());
}

#[cfg(test)]
mod tests {
    use super::*;

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
