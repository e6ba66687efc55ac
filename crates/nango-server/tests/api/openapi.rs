//! `/openapi.json`: the OpenAPI 3.1 document of the REST API, generated from the route
//! annotations, served, kept in `docs/openapi.json`, and in step with the routes.

use std::path::PathBuf;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::helpers::{header, TestApp};

fn committed_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json")
}

fn generated() -> String {
    let mut json = nango_server::openapi_document().to_pretty_json().unwrap();
    json.push('\n');
    json
}

#[tokio::test]
async fn the_served_document_is_the_generated_one_and_the_committed_copy_is_current() {
    let generated = generated();
    let path = committed_path();
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "docs/openapi.json is not the document the code generates: run \
         `UPDATE_OPENAPI=1 cargo test -p nango-server --test api openapi` and commit it"
    );

    let app = TestApp::spawn_with_secret_key().await;
    let response = app.anon(Method::GET, "/openapi.json").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(header(response.headers(), "content-type").starts_with("application/json"));
    assert_eq!(response.text().await.unwrap(), generated);

    let document: Value = serde_json::from_str(&generated).unwrap();
    assert!(
        document["openapi"].as_str().unwrap().starts_with("3.1."),
        "{}",
        document["openapi"]
    );
}

/// Every documented operation, as (method, path template, operation).
fn operations(document: &Value) -> Vec<(Method, String, Value)> {
    let mut operations = Vec::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            operations.push((method, path.clone(), operation.clone()));
        }
    }
    operations
}

/// The path with its parameters filled and the required query parameters added.
fn request_target(path: &str, operation: &Value) -> String {
    let mut target = path.to_string();
    let mut query = Vec::new();
    for parameter in operation["parameters"].as_array().into_iter().flatten() {
        let name = parameter["name"].as_str().unwrap();
        match parameter["in"].as_str().unwrap() {
            "path" => target = target.replace(&format!("{{{name}}}"), "x"),
            "query" if parameter["required"] == true => query.push(format!("{name}=x")),
            _ => {}
        }
    }
    if !query.is_empty() {
        target = format!("{target}?{}", query.join("&"));
    }
    target
}

#[tokio::test]
async fn every_documented_operation_is_routed_and_documents_its_answers() {
    let document: Value = serde_json::from_str(&generated()).unwrap();
    let operations = operations(&document);
    let expected = [
        (Method::GET, "/"),
        (Method::GET, "/health"),
        (Method::GET, "/metrics"),
        (Method::GET, "/openapi.json"),
        (Method::GET, "/sdk/frontend.js"),
        (Method::GET, "/providers"),
        (Method::GET, "/providers/{name}"),
        (Method::GET, "/config"),
        (Method::POST, "/config"),
        (Method::PUT, "/config"),
        (Method::GET, "/config/{provider_config_key}"),
        (Method::DELETE, "/config/{provider_config_key}"),
        (Method::GET, "/connection"),
        (Method::POST, "/connection"),
        (Method::POST, "/connect/sessions"),
        (Method::POST, "/connect/sessions/reconnect"),
        (Method::GET, "/connect/session"),
        (Method::DELETE, "/connect/session"),
        (Method::GET, "/webhooks/deliveries"),
        (Method::POST, "/api-auth/api-key/{provider_config_key}"),
        (Method::POST, "/api-auth/basic/{provider_config_key}"),
        (Method::GET, "/connection/{connection_id}"),
        (Method::DELETE, "/connection/{connection_id}"),
        (Method::GET, "/connections"),
        (Method::GET, "/connections/{connection_id}"),
        (Method::DELETE, "/connections/{connection_id}"),
        (Method::POST, "/connections"),
        (Method::PATCH, "/connections/{connection_id}"),
        (Method::POST, "/connections/metadata"),
        (Method::PATCH, "/connections/metadata"),
        (Method::GET, "/connections/{connection_id}/metadata"),
        (Method::POST, "/connections/{connection_id}/metadata"),
        (Method::PATCH, "/connections/{connection_id}/metadata"),
        (Method::GET, "/integrations"),
        (Method::POST, "/integrations"),
        (Method::GET, "/integrations/{provider_config_key}"),
        (Method::PATCH, "/integrations/{provider_config_key}"),
        (Method::DELETE, "/integrations/{provider_config_key}"),
        (Method::GET, "/proxy/{endpoint}"),
        (Method::POST, "/proxy/{endpoint}"),
        (Method::PUT, "/proxy/{endpoint}"),
        (Method::PATCH, "/proxy/{endpoint}"),
        (Method::DELETE, "/proxy/{endpoint}"),
        (Method::HEAD, "/proxy/{endpoint}"),
        (Method::OPTIONS, "/proxy/{endpoint}"),
    ];
    let mut documented: Vec<(Method, &str)> = operations
        .iter()
        .map(|(m, p, _)| (m.clone(), p.as_str()))
        .collect();
    documented.sort_by_key(|(m, p)| (p.to_string(), m.to_string()));
    let mut expected = expected.to_vec();
    expected.sort_by_key(|(m, p)| (p.to_string(), m.to_string()));
    assert_eq!(documented, expected, "the REST API's operations");

    let app = TestApp::spawn_with_secret_key().await;
    for (method, path, operation) in &operations {
        let target = request_target(path, operation);
        let mut request = app.api(method.clone(), &target);
        if [Method::POST, Method::PUT].contains(method) {
            request = request
                .header("content-type", "application/json")
                .body("{}");
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let body = response.text().await.unwrap();
        assert!(
            !body.contains("\"type\":\"not_found\"") && status != StatusCode::METHOD_NOT_ALLOWED,
            "{method} {target} is documented but not routed: {status} {body}"
        );
        assert!(
            operation["responses"].get(status.as_str()).is_some(),
            "{method} {target} answered {status}, which its operation does not document"
        );

        let secured = path.starts_with("/config")
            || path.starts_with("/connection")
            || path.starts_with("/connect/")
            || path.starts_with("/webhooks/")
            || path.starts_with("/integrations")
            || path.starts_with("/proxy/")
            || path == "/metrics";
        let security = operation["security"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if path == "/connect/session" {
            // The session token is the credential.
            assert_eq!(security.len(), 1, "{method} {path}: {security:?}");
            assert!(
                security[0].get("connectSessionBearer").is_some(),
                "{security:?}"
            );
            let anonymous = app.anon(method.clone(), &target).send().await.unwrap();
            assert_eq!(
                anonymous.status(),
                StatusCode::UNAUTHORIZED,
                "{method} {target}"
            );
        } else if secured {
            assert_eq!(security.len(), 2, "{method} {path}: {security:?}");
            for scheme in &security {
                let name = scheme.as_object().unwrap().keys().next().unwrap();
                assert!(
                    document["components"]["securitySchemes"][name].is_object(),
                    "{name}"
                );
            }
            let anonymous = app.anon(method.clone(), &target).send().await.unwrap();
            assert_eq!(
                anonymous.status(),
                StatusCode::UNAUTHORIZED,
                "{method} {target}"
            );
        } else {
            assert!(security.is_empty(), "{method} {path} is open");
        }
    }
}

#[tokio::test]
async fn the_browser_routes_are_served_but_not_in_the_document() {
    let document: Value = serde_json::from_str(&generated()).unwrap();
    let paths = document["paths"].as_object().unwrap();
    let app = TestApp::spawn().await;
    // The dashboard is a browser UI, not REST API: none of its routes is documented.
    assert!(
        paths.keys().all(|path| !path.starts_with("/dashboard")),
        "{:?}",
        paths.keys().collect::<Vec<_>>()
    );
    for path in [
        "/oauth/connect/{provider_config_key}",
        "/oauth/callback",
        "/dashboard",
        "/dashboard/login",
        "/dashboard/connections",
    ] {
        assert!(!paths.contains_key(path), "{path}");
        let target = path.replace("{provider_config_key}", "x");
        let response = app.anon(Method::GET, &target).send().await.unwrap();
        let body = response.text().await.unwrap();
        assert!(!body.contains("\"not_found\""), "{target} is not routed");
    }
}

/// The properties a schema of the document declares and requires (following one `$ref`).
fn schema_fields(document: &Value, name: &str) -> (Vec<String>, Vec<String>) {
    let schema = &document["components"]["schemas"][name];
    let keys = |v: &Value| -> Vec<String> {
        v.as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default()
    };
    let required = schema["required"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    (keys(&schema["properties"]), required)
}

fn assert_matches_schema(document: &Value, name: &str, value: &Value) {
    let (properties, required) = schema_fields(document, name);
    let object = value
        .as_object()
        .unwrap_or_else(|| panic!("{name}: {value}"));
    for field in &required {
        assert!(object.contains_key(field), "{name}: no {field} in {value}");
    }
    for field in object.keys() {
        assert!(
            properties.contains(field),
            "{name}: {field} is not documented"
        );
    }
}

#[tokio::test]
async fn real_answers_have_the_documented_shapes() {
    let document: Value = serde_json::from_str(&generated()).unwrap();
    let app = TestApp::spawn().await;
    app.create_config("fake-1", "fake", "read").await;
    app.provider.set(|b| {
        b.expires_in = Some(3600);
        b.issue_refresh_token = true;
    });
    app.authorize("fake-1", "c1").await;

    let connection = app.get_connection("fake-1", "c1").await;
    assert_matches_schema(&document, "ConnectionBody", &connection);
    let mut credentials = connection["credentials"].clone();
    assert_eq!(credentials["type"], "OAUTH2");
    credentials.as_object_mut().unwrap().remove("type");
    assert_matches_schema(&document, "OAuth2Credentials", &credentials);

    let list: Value = app.get("/connection").await.json().await.unwrap();
    assert_matches_schema(&document, "ConnectionList", &list);
    assert_matches_schema(&document, "ConnectionSummary", &list["connections"][0]);

    let configs: Value = app.get("/config").await.json().await.unwrap();
    assert_matches_schema(&document, "ConfigList", &configs);
    assert_matches_schema(&document, "ConfigBody", &configs["configs"][0]);
    let config: Value = app.get("/config/fake-1").await.json().await.unwrap();
    assert_matches_schema(&document, "ConfigEnvelope", &config);

    let error: Value = app.get("/config/nope").await.json().await.unwrap();
    assert_matches_schema(&document, "ErrorBody", &error);
    let health: Value = app.get("/health").await.json().await.unwrap();
    assert_matches_schema(&document, "HealthBody", &health);
}
