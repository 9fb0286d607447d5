//! The served OpenAPI document against the server that serves it. A route is in the
//! document because registering it put it there (each service's `configure`), so no
//! list of routes is compared with another here: what is left to check is that every
//! documented operation is answered by a route (its method and path as documented) and
//! that each operation's parameters are consistent with its path.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, unsafe_code)]

use std::time::Duration;

/// The `/openapi.json` a running server at `base` (e.g. `http://127.0.0.1:1234`) serves.
pub async fn served_openapi(base: &str) -> serde_json::Value {
    let res = reqwest::get(format!("{base}/openapi.json")).await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/json");
    res.json().await.unwrap()
}

/// Asks the server at `base` for every operation its document lists and asserts that a
/// route answers each: anything but the unknown-route 404 (`not_found`, "no such
/// route") or a 405. The requests carry no credentials and no body, so most answers
/// are refusals; what counts is that the route exists with that method. Each `{name}`
/// of a path becomes `x`, unless `probes` gives the path to ask instead, e.g.
/// `("/static/{file}", "/static/app.css")` for a route that answers an unknown value
/// like an unknown route. Also: each parameter is listed once, each `{name}` is a
/// documented path parameter, and the `expected` operations, e.g.
/// `("post", "/auth/login")`, are documented. Returns the document.
pub async fn assert_documented_routes_answer(
    base: &str,
    expected: &[(&str, &str)],
    probes: &[(&str, &str)],
) -> serde_json::Value {
    let document = served_openapi(base).await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let paths = document["paths"].as_object().expect("paths");
    for (path, operations) in paths {
        let concrete = probes
            .iter()
            .find(|(template, _)| template == path)
            .map(|(_, concrete)| (*concrete).to_owned())
            .unwrap_or_else(|| with_values(path));
        for (method, operation) in operations.as_object().expect("operations") {
            let verb = reqwest::Method::from_bytes(method.to_ascii_uppercase().as_bytes())
                .unwrap_or_else(|_| panic!("{method} {path}: not a method"));
            let res = http
                .request(verb, format!("{base}{concrete}"))
                .send()
                .await
                .unwrap_or_else(|e| panic!("{method} {concrete}: {e}"));
            let status = res.status().as_u16();
            assert_ne!(
                status, 405,
                "{method} {path}: documented, but the route does not take {method}"
            );
            if status == 404 {
                let body: serde_json::Value = res.json().await.unwrap_or_default();
                assert!(
                    !(body["code"] == "not_found" && body["detail"] == "no such route"),
                    "{method} {path}: documented, but no route answers {concrete}: {body}"
                );
            }
            assert_parameters(method, path, operation);
        }
    }
    for (method, path) in expected {
        assert!(
            document["paths"][path][method].is_object(),
            "{method} {path} is not documented"
        );
    }
    document
}

/// The path with each `{name}` (or `{name:regex}`) segment replaced by `x`.
fn with_values(pattern: &str) -> String {
    pattern
        .split('/')
        .map(|segment| {
            if segment.starts_with('{') {
                "x"
            } else {
                segment
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Each parameter of the operation once, and each `{name}` of its path among them as a
/// path parameter.
fn assert_parameters(method: &str, path: &str, operation: &serde_json::Value) {
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
