//! The generated OpenAPI document and Swagger UI.

use authstream_testkit::assert_problem;
use authstream_testkit::auth::{spawn_auth, spawn_auth_with};
use reqwest::Method;

/// Every operation of a server's served document answered by a route of it.
async fn assert_document_covers_routes(demo: bool) {
    let flag = if demo { "true" } else { "false" };
    let app = spawn_auth_with(&[("DEMO", flag)]).await;
    let document = authstream_testkit::assert_documented_routes_answer(
        &app.address,
        &[("post", "/auth/login"), ("get", "/openapi.json")],
        &[
            ("/static/{file}", "/static/app.css"),
            ("/clients/js/{file}", "/clients/js/authstream.js"),
        ],
    )
    .await;
    let simulate = &document["paths"]["/demo/generations/{generation_id}/simulate"]["post"];
    assert_eq!(simulate.is_object(), demo);
}

#[tokio::test]
async fn every_route_is_in_the_document() {
    assert_document_covers_routes(false).await;
}

#[tokio::test]
async fn every_route_is_in_the_document_in_demo_mode() {
    assert_document_covers_routes(true).await;
}

#[tokio::test]
async fn the_document_describes_security_and_every_error_code() {
    let app = spawn_auth().await;
    let doc = authstream_testkit::served_openapi(&app.address).await;
    assert_eq!(doc["openapi"], "3.1.0");
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
    assert_eq!(schemes["basic"]["scheme"], "basic");
    assert_eq!(schemes["stream_token"]["in"], "query");
    assert_eq!(schemes["stream_token"]["name"], "token");

    let codes: Vec<&str> = doc["components"]["schemas"]["Problem"]["properties"]["code"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    for code in authstream_web::ErrorCode::ALL {
        assert!(codes.contains(&code.as_str()), "{code} missing");
    }
    // Each status documents exactly its own codes.
    let unauthorized = &doc["components"]["responses"]["Unauthorized"]["content"]["application/problem+json"]
        ["schema"]["properties"]["code"]["enum"];
    assert!(
        unauthorized
            .as_array()
            .unwrap()
            .contains(&"token_expired".into())
    );
    assert!(
        !unauthorized
            .as_array()
            .unwrap()
            .contains(&"not_found".into())
    );

    let login = &doc["paths"]["/auth/login"]["post"];
    assert_eq!(
        login["responses"]["401"]["$ref"],
        "#/components/responses/Unauthorized"
    );
    assert_eq!(
        login["responses"]["429"]["$ref"],
        "#/components/responses/TooManyRequests"
    );
    assert_eq!(
        doc["paths"]["/auth/service-token"]["post"]["security"][0]["basic"],
        serde_json::json!([])
    );
    assert_eq!(
        doc["paths"]["/auth/me"]["patch"]["responses"]["428"]["$ref"],
        "#/components/responses/PreconditionRequired"
    );
    // The request bodies are the handlers' own types.
    let credentials = &doc["components"]["schemas"]["Credentials"];
    assert_eq!(credentials["properties"]["password"]["type"], "string");
}

#[tokio::test]
async fn swagger_ui_is_served_from_the_binary_under_a_strict_csp() {
    let app = spawn_auth().await;
    let no_redirect = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let res = no_redirect
        .get(format!("{}/docs", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 308);
    assert_eq!(res.headers()["location"], "/docs/");

    let res = app
        .auth
        .request(Method::GET, "/docs/")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let csp = res.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("http"),
        "{csp}"
    );
    let page = res.text().await.unwrap();
    assert!(page.contains("swagger-ui-bundle.js"));
    assert!(!page.contains("<script>"), "no inline script");

    let res = app
        .auth
        .request(Method::GET, "/docs/swagger-initializer.js")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains("/openapi.json"));
    let res = app
        .auth
        .request(Method::GET, "/docs/nothing-here.js")
        .send()
        .await
        .unwrap();
    assert_problem(res, 404, "not_found").await;
}
