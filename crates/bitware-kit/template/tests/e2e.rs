//! End to end against `wrangler dev` (`./test.sh` starts it with the KAM
//! stand-in): public endpoints, every route × every credential tier, the
//! error model, one execute. The harness is `bitware_kit::testing`.

use bitware_kit::testing::{assert_error, get, post, send, Who};
use reqwest::Method;
use serde_json::{json, Value};

/// Every route of the table, with a body that passes its own validation.
fn routes() -> Vec<(Method, &'static str, &'static str, Option<Value>)> {
    vec![
        (Method::GET, "/", "public", None),
        (Method::GET, "/health", "public", None),
        (Method::GET, "/help", "public", None),
        (Method::GET, "/openapi.json", "public", None),
        (
            Method::POST,
            "/api/execute",
            "authenticated",
            Some(json!({"action": "example", "input": {"text": "auth matrix"}})),
        ),
        (Method::GET, "/api/admin/stats", "admin", None),
    ]
}

/// What each tier gets on a route of each access level.
fn expected(access: &str, who: &Who) -> u16 {
    let bad = matches!(who, Who::BadKey | Who::WorkerWrongSecret);
    let admin = matches!(who, Who::AdminSession | Who::Worker);
    match access {
        "public" => 200,
        _ if *who == Who::Nobody || bad => 401,
        "admin" if !admin => 403,
        _ => 200,
    }
}

#[tokio::test]
async fn every_route_answers_every_credential_tier_as_its_access_rule_says() {
    let table: Vec<Value> = get("/help", &Who::Nobody).await.body["routes"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        table.len(),
        routes().len(),
        "the matrix covers every route of /help"
    );
    for (method, path, access, body) in routes() {
        assert!(
            table
                .iter()
                .any(|r| r["path"] == path && r["auth"] == access),
            "{path} is {access} in /help"
        );
        for who in Who::MATRIX {
            let reply = send(method.clone(), path, &who, body.as_ref(), &[]).await;
            assert_eq!(
                reply.status,
                expected(access, &who),
                "{method} {path} as {who:?}: {}",
                reply.body
            );
            if reply.status >= 400 {
                let code = if reply.status == 401 {
                    "unauthorized"
                } else {
                    "forbidden"
                };
                assert_error(&reply, reply.status, code);
            }
        }
    }
}

#[tokio::test]
async fn public_endpoints_say_who_and_how_the_worker_is() {
    let root = get("/", &Who::Nobody).await;
    assert_eq!(
        (root.status, root.body["status"].as_str()),
        (200, Some("healthy"))
    );
    assert_eq!(root.body["service"], "__SERVICE__");
    assert!(root.header("X-Request-ID").is_some());
    assert_eq!(root.header("Access-Control-Allow-Origin"), Some("*"));
    let health = get("/health", &Who::Nobody).await;
    assert_eq!(health.status, 200, "{}", health.body);
    for check in ["database", "kv", "r2", "kam"] {
        assert_eq!(
            health.body["checks"][check]["ok"], true,
            "{check}: {}",
            health.body
        );
    }
    let help = get("/help", &Who::Nobody).await;
    assert_eq!(help.body["actions"], json!(["example"]));
    let doc = get("/openapi.json", &Who::Nobody).await;
    assert_eq!(doc.body["openapi"], "3.1.0");
    for route in help.body["routes"].as_array().into_iter().flatten() {
        let method = route["method"].as_str().unwrap_or("").to_ascii_lowercase();
        let path = route["path"].as_str().unwrap_or("");
        assert_eq!(
            doc.body["paths"][path][&method]["x-access"], route["auth"],
            "{method} {path}"
        );
    }
}

#[tokio::test]
async fn errors_are_json_with_status_code_and_allow_on_405() {
    assert_error(&get("/nope", &Who::Client).await, 404, "not_found");
    let wrong = send(Method::DELETE, "/api/execute", &Who::Client, None, &[]).await;
    assert_error(&wrong, 405, "method_not_allowed");
    assert_eq!(wrong.header("Allow"), Some("POST, OPTIONS"));
    let missing = post(
        "/api/execute",
        &Who::Client,
        json!({"input": {"text": "x"}}),
    )
    .await;
    assert_error(&missing, 400, "invalid_field");
    assert_eq!(missing.body["details"]["field"], "action");
    let empty = post(
        "/api/execute",
        &Who::Client,
        json!({"action": "example", "input": {}}),
    )
    .await;
    assert_eq!(empty.body["details"]["field"], "input.text");
    let kam_down = send(
        Method::POST,
        "/api/execute",
        &Who::ApiKey("kam-fault-500".into()),
        Some(&json!({"action": "example", "input": {"text": "x"}})),
        &[],
    )
    .await;
    assert_error(&kam_down, 503, "kam_unavailable");
}

#[tokio::test]
async fn execute_counts_the_text_records_it_and_admins_see_it() {
    let before = get("/api/admin/stats", &Who::Worker).await.body["executions"]
        .as_i64()
        .unwrap_or(0);
    let reply = post(
        "/api/execute",
        &Who::Client,
        json!({"action": "example", "input": {"text": "One two. Three!"}}),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["success"], true);
    assert_eq!(reply.body["output"]["words"], 3);
    assert_eq!(reply.body["output"]["sentences"], 2);
    assert_eq!(reply.body["output"]["readyForNext"], true);
    assert!(reply.body["metadata"]["executionId"]
        .as_i64()
        .is_some_and(|id| id > 0));
    let stats = get("/api/admin/stats", &Who::AdminSession).await;
    assert!(
        stats.body["executions"].as_i64().unwrap_or(0) > before,
        "{}",
        stats.body
    );
    assert!(stats.body["tenants"]
        .as_array()
        .is_some_and(|t| t.iter().any(|t| t["tenant"] == "dev-client")));
}
