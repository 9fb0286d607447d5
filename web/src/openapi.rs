//! What the OpenAPI documents of both services share: the problem+json schema (its
//! `code` values are the `ErrorCode`s, so the document cannot drift from them), one
//! reusable response per error status, the security schemes, and serving the document
//! at `/openapi.json` with Swagger UI at `/docs`.

use std::borrow::Cow;
use std::sync::Arc;

use actix_web::http::header;
use actix_web::middleware::DefaultHeaders;
use actix_web::{HttpResponse, get, web};
use utoipa::openapi::content::ContentBuilder;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::{
    AdditionalProperties, ObjectBuilder, Schema, SchemaType, Type as JsonType,
};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ComponentsBuilder, OpenApi, RefOr};
use utoipa::{Modify, PartialSchema, ToResponse, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

use crate::error::ErrorCode;
use crate::error::PROBLEM_JSON;

/// Security scheme names the operations refer to.
pub const BEARER: &str = "bearer";
pub const BASIC: &str = "basic";
pub const STREAM_TOKEN: &str = "stream_token";
pub const RESUME_COOKIE: &str = "resume_cookie";

/// Swagger UI's own scripts and styles only: nothing from another origin, no inline
/// script. The one inline style its bundle injects is allowed by its hash (the
/// vendored Swagger UI 5.32); `img-src data:` for the icons its stylesheet embeds.
pub const DOCS_CSP: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self' 'sha256-RL3ie0nH+Lzz2YNqQN83mnU0J1ot4QL7b99vMdIX99w='; \
     img-src 'self' data:; connect-src 'self'; font-src 'self'; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

/// An `application/problem+json` body (RFC 9457) whose `code` is one of `codes`.
fn problem_schema(codes: &[ErrorCode], status: Option<u16>) -> Schema {
    let mut code = ObjectBuilder::new()
        .schema_type(JsonType::String)
        .description(Some("Stable, machine-readable error code"));
    code = code.enum_values(Some(codes.iter().map(|c| c.as_str())));
    let mut status_schema = ObjectBuilder::new().schema_type(JsonType::Integer);
    if let Some(status) = status {
        status_schema = status_schema.enum_values(Some([status]));
    }
    ObjectBuilder::new()
        .schema_type(JsonType::Object)
        .property("type", ObjectBuilder::new().schema_type(JsonType::String))
        .property("title", ObjectBuilder::new().schema_type(JsonType::String))
        .property("status", status_schema)
        .property("detail", ObjectBuilder::new().schema_type(JsonType::String))
        .property("code", code)
        .property(
            "fields",
            ObjectBuilder::new()
                .schema_type(JsonType::Object)
                .description(Some(
                    "validation_failed only: each bad field (or `body`, `query`) and what is wrong with it",
                ))
                .additional_properties(Some(AdditionalProperties::RefOr(RefOr::T(
                    Schema::Object(ObjectBuilder::new().schema_type(JsonType::String).build()),
                )))),
        )
        .required("type")
        .required("title")
        .required("status")
        .required("code")
        .into()
}

/// Any error answer of either service.
pub struct Problem;

impl PartialSchema for Problem {
    fn schema() -> RefOr<Schema> {
        RefOr::T(problem_schema(ErrorCode::ALL, None))
    }
}

impl ToSchema for Problem {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Problem")
    }
}

/// The error answer of one status: every code that status carries, its headers.
fn error_response(status: u16, summary: &str) -> Response {
    let codes: Vec<ErrorCode> = ErrorCode::ALL
        .iter()
        .copied()
        .filter(|c| c.status() == status)
        .collect();
    let listed = codes
        .iter()
        .map(|c| format!("`{c}`"))
        .collect::<Vec<_>>()
        .join(", ");
    let mut response = ResponseBuilder::new()
        .description(format!("{summary}: problem+json with `code` {listed}"))
        .content(
            PROBLEM_JSON,
            ContentBuilder::new()
                .schema(Some(problem_schema(&codes, Some(status))))
                .build(),
        );
    let text = || ObjectBuilder::new().schema_type(SchemaType::from(JsonType::String));
    if status == 401 {
        response = response.header(
            "WWW-Authenticate",
            HeaderBuilder::new()
                .schema(Some(text()))
                .description(Some(
                    "The scheme to authenticate with (Bearer; Basic for service tokens); \
                     absent for stream tokens",
                ))
                .build(),
        );
    }
    if matches!(status, 429 | 503) {
        response = response.header(
            "Retry-After",
            HeaderBuilder::new()
                .schema(Some(ObjectBuilder::new().schema_type(JsonType::Integer)))
                .description(Some("Seconds to wait before trying again"))
                .build(),
        );
    }
    response.build()
}

macro_rules! error_responses {
    ($($name:ident = $status:literal, $summary:literal;)*) => {
        $(
            #[doc = concat!("The ", stringify!($status), " answer: ", $summary, ".")]
            pub struct $name;

            impl<'r> ToResponse<'r> for $name {
                fn response() -> (&'r str, RefOr<Response>) {
                    (stringify!($name), RefOr::T(error_response($status, $summary)))
                }
            }
        )*

        /// Every reusable error response, for the components of a document.
        fn error_responses() -> Vec<(&'static str, RefOr<Response>)> {
            vec![$(<$name as ToResponse<'static>>::response()),*]
        }
    };
}

error_responses! {
    Unauthorized = 401, "Not authenticated, or the token was refused";
    Forbidden = 403, "Authenticated, but not allowed";
    NotFound = 404, "No such resource (or not yours)";
    Conflict = 409, "In conflict with the current state";
    PreconditionFailed = 412, "If-Match does not match the current version";
    PayloadTooLarge = 413, "The body is too large";
    Unprocessable = 422, "Invalid input";
    PreconditionRequired = 428, "If-Match is required";
    TooManyRequests = 429, "Rate limited";
    Unavailable = 503, "The store is unreachable, or the service is overloaded";
}

/// Adds what every document shares: the `Problem` schema, the error responses and the
/// security schemes.
pub struct SharedComponents;

impl Modify for SharedComponents {
    fn modify(&self, openapi: &mut OpenApi) {
        let components = openapi.components.take().unwrap_or_default();
        let mut builder = ComponentsBuilder::from(components)
            .schema(Problem::name(), Problem::schema())
            .security_scheme(
                BEARER,
                SecurityScheme::Http(
                    HttpBuilder::new()
                        .scheme(HttpAuthScheme::Bearer)
                        .bearer_format("JWT")
                        .description(Some(
                            "An access token (users) or a service token (services), \
                             from /auth/login or /auth/service-token",
                        ))
                        .build(),
                ),
            )
            .security_scheme(
                BASIC,
                SecurityScheme::Http(
                    HttpBuilder::new()
                        .scheme(HttpAuthScheme::Basic)
                        .description(Some("A service client's id and secret"))
                        .build(),
                ),
            )
            .security_scheme(
                STREAM_TOKEN,
                SecurityScheme::ApiKey(ApiKey::Query(ApiKeyValue::with_description(
                    "token",
                    "A single-use stream token from the auth service (never a JWT)",
                ))),
            )
            .security_scheme(
                RESUME_COOKIE,
                SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                    "as_resume",
                    "The single-use resume grant a stream sets (HttpOnly)",
                ))),
            );
        for (name, response) in error_responses() {
            builder = builder.response(name, response);
        }
        openapi.components = Some(builder.build());
    }
}

/// A generated document, serialized once.
#[derive(Clone)]
pub struct ApiDocument(Arc<str>);

impl ApiDocument {
    pub fn new(openapi: &OpenApi) -> Result<Self, serde_json::Error> {
        Ok(Self(Arc::from(openapi.to_json()?)))
    }

    pub fn json(&self) -> &str {
        &self.0
    }
}

/// `GET /openapi.json`: the OpenAPI 3.1 description of this server's routes.
#[utoipa::path(
    tag = "operations", summary = "This OpenAPI document",
    responses((status = 200, description = "This document", content_type = "application/json", body = Object))
)]
#[get("/openapi.json")]
pub async fn openapi_json(document: web::Data<ApiDocument>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(document.json().to_owned())
}

async fn docs_redirect() -> HttpResponse {
    HttpResponse::PermanentRedirect()
        .insert_header((header::LOCATION, "/docs/"))
        .finish()
}

/// Registers `GET /openapi.json` (documented, like every handler registered through
/// `ServiceConfig::service`) and Swagger UI at `/docs` (its files are built into the
/// binary; the page loads nothing from elsewhere and runs under a strict CSP). The
/// server adds the `ApiDocument` to the app data.
///
/// `/docs`, its redirect and its files, is the one part of a server that its document
/// leaves out, on purpose: it is the viewer of the API description, not part of the API
/// it describes. So it is registered beside the document (`ServiceConfig::map`, plain
/// actix), not through `service`.
pub fn serve(cfg: &mut ServiceConfig) {
    cfg.service(openapi_json).map(|cfg| {
        let swagger = utoipa_swagger_ui::SwaggerUi::new("/{_:.*}")
            .config(utoipa_swagger_ui::Config::from("/openapi.json"));
        cfg.route("/docs", web::get().to(docs_redirect)).service(
            web::scope("/docs")
                .wrap(
                    DefaultHeaders::new()
                        .add((header::CONTENT_SECURITY_POLICY, DOCS_CSP))
                        .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
                        .add((header::REFERRER_POLICY, "no-referrer")),
                )
                .service(swagger),
        )
    });
}
