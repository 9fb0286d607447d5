//! Routes against the OpenAPI document: every registered route listed and documented.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, unsafe_code)]

/// Every `(method, pattern)` that the routes `configure` registers answer, e.g.
/// `("post", "/auth/login")`, so a test can hold them against the OpenAPI document.
///
/// actix lists no routes, so the patterns come from the resource map's debug form, and
/// each is probed with every method: a method the pattern does not take falls through
/// to the default service (or its resource's 405). Probes carry no credentials, so every handler refuses them.
/// Patterns that resolve to no top-level route (those inside a `web::scope`, such as
/// Swagger UI's files) come back in the second set.
pub async fn registered_routes<F>(
    configure: F,
) -> (
    std::collections::BTreeSet<(String, String)>,
    std::collections::BTreeSet<String>,
)
where
    F: FnOnce(&mut actix_web::web::ServiceConfig),
{
    use actix_web::http::{Method, StatusCode};
    use actix_web::{App, HttpRequest, HttpResponse, test, web};

    async fn fell_through(req: HttpRequest) -> HttpResponse {
        HttpResponse::ImATeapot().body(format!("{:?}", req.resource_map()))
    }
    let app = test::init_service(
        App::new()
            .configure(configure)
            .default_service(web::to(fell_through)),
    )
    .await;
    let probe = test::TestRequest::get()
        .uri("/__no_such_route__")
        .to_request();
    let res = test::call_service(&app, probe).await;
    assert_eq!(res.status(), StatusCode::IM_A_TEAPOT);
    let map = String::from_utf8(test::read_body(res).await.to_vec()).unwrap();

    let mut patterns = std::collections::BTreeSet::new();
    let mut rest = map.as_str();
    while let Some(start) = rest.find("patterns: Single(\"") {
        rest = &rest[start + "patterns: Single(\"".len()..];
        let end = rest.find("\")").unwrap();
        patterns.insert(rest[..end].replace("\\\"", "\""));
        rest = &rest[end..];
    }
    let mut routes = std::collections::BTreeSet::new();
    let mut unresolved = std::collections::BTreeSet::new();
    for pattern in patterns.into_iter().filter(|p| !p.is_empty()) {
        // `{name}` and `{name:regex}` segments become a plain value.
        let mut concrete = String::new();
        let mut depth = 0;
        for c in pattern.chars() {
            match c {
                '{' => {
                    if depth == 0 {
                        concrete.push('x');
                    }
                    depth += 1;
                }
                '}' => depth -= 1,
                _ if depth == 0 => concrete.push(c),
                _ => {}
            }
        }
        let mut found = false;
        for method in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
            let req = test::TestRequest::default()
                .method(Method::from_bytes(method.as_bytes()).unwrap())
                .uri(&concrete)
                .to_request();
            let res = test::call_service(&app, req).await;
            let matched = res.request().match_pattern();
            // A resource's own answer to a method it lacks is a bare 405.
            let refused = [StatusCode::IM_A_TEAPOT, StatusCode::METHOD_NOT_ALLOWED];
            if !refused.contains(&res.status()) && matched.as_deref() == Some(&pattern) {
                routes.insert((method.to_ascii_lowercase(), pattern.clone()));
                found = true;
            }
        }
        if !found {
            unresolved.insert(pattern);
        }
    }
    (routes, unresolved)
}

/// The `/openapi.json` a running server at `base` (e.g. `http://127.0.0.1:1234`) serves.
pub async fn served_openapi(base: &str) -> serde_json::Value {
    let res = reqwest::get(format!("{base}/openapi.json")).await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/json");
    res.json().await.unwrap()
}

/// Holds the routes `configure` registers against the document the server at `base`
/// serves: each registered route is documented and each documented one is registered
/// (Swagger UI, `/docs` and its files, is the one exception), and `expected` routes,
/// e.g. `("post", "/auth/login")`, are among them. Returns the routes and the document.
pub async fn assert_every_route_documented<F>(
    configure: F,
    base: &str,
    expected: &[(&str, &str)],
) -> (
    std::collections::BTreeSet<(String, String)>,
    serde_json::Value,
)
where
    F: FnOnce(&mut actix_web::web::ServiceConfig),
{
    let document = served_openapi(base).await;
    let (routes, unresolved) = registered_routes(configure).await;
    assert_eq!(
        unresolved.into_iter().collect::<Vec<_>>(),
        ["/{_:.*}"],
        "only Swagger UI's files are in a scope"
    );
    let missing: Vec<_> = routes
        .iter()
        .filter(|(method, path)| document["paths"][path][method].is_null() && path != "/docs")
        .collect();
    assert!(
        missing.is_empty(),
        "registered but not documented: {missing:?}"
    );
    let paths = document["paths"].as_object().expect("paths");
    for (path, operations) in paths {
        for (method, operation) in operations.as_object().expect("operations") {
            assert!(
                routes.contains(&(method.clone(), path.clone())),
                "documented but not registered: {method} {path}"
            );
            // Each parameter once, and each `{name}` of the path among them.
            let params: Vec<(String, String)> = operation["parameters"]
                .as_array()
                .map(|list| {
                    list.iter()
                        .map(|p| (p["name"].to_string(), p["in"].to_string()))
                        .collect()
                })
                .unwrap_or_default();
            let unique: std::collections::BTreeSet<_> = params.iter().collect();
            assert_eq!(
                unique.len(),
                params.len(),
                "{method} {path}: a parameter twice"
            );
            for segment in path.split('/').filter(|s| s.starts_with('{')) {
                let name = format!("{:?}", segment.trim_matches(['{', '}']));
                assert!(
                    params.contains(&(name, "\"path\"".to_owned())),
                    "{method} {path}: {segment} undocumented"
                );
            }
        }
    }
    for (method, path) in expected {
        let route = ((*method).to_owned(), (*path).to_owned());
        assert!(routes.contains(&route), "{method} {path} is not registered");
    }
    (routes, document)
}
