//! End to end against `wrangler dev` (`./test.sh` starts it with the KAM
//! stand-in and the mock AI provider): public endpoints, every route × every
//! credential tier, the error model, one generation of a real granulator
//! outline (tests/fixtures), every element written. The lifecycle of its
//! job is `tests/jobs.rs`; the chain with the granulator is the root's
//! `tests/chain.rs`. The harness is `bitware_kit::testing`.

use bitware_kit::testing::{assert_error, get, post, send, Who};
use reqwest::Method;
use serde_json::{json, Value};

/// A granulator's output (tests/fixtures/NAME.json) as `generate`'s input.
fn generate(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/{name}.json", env!("CARGO_MANIFEST_DIR"));
    let input: Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("the fixture")).expect("json");
    json!({"action": "generate", "input": input})
}

/// Every route of the table (as /help spells it), with a path and body
/// that pass its own validation, and what an allowed caller gets (a job
/// route on a job that does not exist: 404).
type Row = (
    Method,
    &'static str,
    &'static str,
    &'static str,
    Option<Value>,
    u16,
);
fn routes() -> Vec<Row> {
    vec![
        (Method::GET, "/", "/", "public", None, 200),
        (Method::GET, "/health", "/health", "public", None, 200),
        (Method::GET, "/help", "/help", "public", None, 200),
        (
            Method::GET,
            "/openapi.json",
            "/openapi.json",
            "public",
            None,
            200,
        ),
        (
            Method::POST,
            "/api/execute",
            "/api/execute",
            "authenticated",
            Some(generate("quiz-g2")),
            200,
        ),
        (
            Method::GET,
            "/api/jobs/{id}",
            "/api/jobs/999999999",
            "authenticated",
            None,
            404,
        ),
        (
            Method::GET,
            "/api/jobs/{id}/status",
            "/api/jobs/999999999/status",
            "authenticated",
            None,
            404,
        ),
        (
            Method::GET,
            "/api/jobs/{id}/events",
            "/api/jobs/999999999/events",
            "authenticated",
            None,
            404,
        ),
        (
            Method::POST,
            "/api/jobs/{id}/cancel",
            "/api/jobs/999999999/cancel",
            "authenticated",
            None,
            404,
        ),
        (
            Method::GET,
            "/api/jobs/{id}/content",
            "/api/jobs/999999999/content",
            "authenticated",
            None,
            404,
        ),
        (
            Method::GET,
            "/api/admin/stats",
            "/api/admin/stats",
            "admin",
            None,
            200,
        ),
    ]
}

/// What each tier gets on a route of each access level.
fn expected(access: &str, who: &Who, allowed: u16) -> u16 {
    let bad = matches!(who, Who::BadKey | Who::WorkerWrongSecret);
    let admin = matches!(who, Who::AdminSession | Who::Worker);
    match access {
        "public" => allowed,
        _ if *who == Who::Nobody || bad => 401,
        "admin" if !admin => 403,
        _ => allowed,
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
    for (method, route, path, access, body, allowed) in routes() {
        assert!(
            table
                .iter()
                .any(|r| r["path"] == route && r["auth"] == access),
            "{route} is {access} in /help"
        );
        for who in Who::MATRIX {
            let reply = send(method.clone(), path, &who, body.as_ref(), &[]).await;
            assert_eq!(
                reply.status,
                expected(access, &who, allowed),
                "{method} {path} as {who:?}: {}",
                reply.body
            );
            if reply.status >= 400 {
                let code = match reply.status {
                    401 => "unauthorized",
                    404 => "not_found",
                    _ => "forbidden",
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
    assert_eq!(root.body["service"], "bitware-content-generator");
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
    assert_eq!(help.body["actions"], json!(["generate", "process"]));
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
    let mut body = generate("quiz-g2");
    body.as_object_mut().unwrap().remove("action");
    let missing = post("/api/execute", &Who::Client, body).await;
    assert_error(&missing, 400, "invalid_field");
    assert_eq!(missing.body["details"]["field"], "action");
    // The contract's fields (contracts §3), every missing one named at once.
    let mut body = generate("quiz-g2");
    let input = body["input"].as_object_mut().unwrap();
    for field in ["wordCountEstimates", "contentMetadata", "structure"] {
        input.remove(field);
    }
    let refused = post("/api/execute", &Who::Client, body).await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    let named = refused.body["details"]["missing"].to_string();
    for field in ["wordCountEstimates", "contentMetadata", "structure"] {
        assert!(named.contains(field), "{field} named: {}", refused.body);
    }
    let kam_down = send(
        Method::POST,
        "/api/execute",
        &Who::ApiKey("kam-fault-500".into()),
        Some(&generate("quiz-g2")),
        &[],
    )
    .await;
    assert_error(&kam_down, 503, "kam_unavailable");
}

#[tokio::test]
async fn generate_writes_every_element_of_a_quiz_keeps_its_answers_records_it_and_admins_see_it() {
    let stats_before = get("/api/admin/stats", &Who::Worker).await.body;
    let before = stats_before["generations"].as_i64().unwrap_or(0);
    let words_before = stats_before["words"].as_i64().unwrap_or(0);
    let request = generate("quiz-g2");
    let reply = post("/api/execute", &Who::Client, request.clone()).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["success"], true);
    let output = &reply.body["output"];
    assert_eq!(
        output["granulatorJobId"],
        request["input"]["granulatorJobId"]
    );
    assert_eq!(output["structureType"], "quiz");
    let outline = &request["input"]["structure"]["categories"];
    let written = &output["content"]["categories"];
    assert_eq!(
        written.as_array().map(Vec::len),
        outline.as_array().map(Vec::len)
    );
    for (c, category) in outline.as_array().unwrap().iter().enumerate() {
        for (q, question) in category["questions"].as_array().unwrap().iter().enumerate() {
            let made = &written[c]["questions"][q];
            // The question, its options and its answer are the outline's.
            for kept in ["question", "options", "answer"] {
                assert_eq!(made[kept], question[kept], "{c}.{q} {kept}");
            }
            assert!(
                made["generated"]["words"].as_u64().unwrap_or(0) > 0,
                "{c}.{q}: {made}"
            );
        }
    }
    assert!(
        output["content"]["overview"]["text"].is_string(),
        "{output}"
    );
    assert!(output["qualityScore"].as_f64().unwrap_or(0.0) > 0.0);
    assert_eq!(output["readyForNext"], true, "{}", output["qualityReport"]);
    assert_eq!(
        output["contentMetadata"]["workerChain"]["previousWorker"],
        "bitware-content-granulator"
    );
    assert_eq!(
        reply.body["metadata"]["workerChain"]["nextWorkers"],
        json!(["bitware-content-packager"])
    );
    assert!(
        reply.body["usage"]["tokens"]["output"]
            .as_u64()
            .unwrap_or(0)
            > 0
    );
    // Its content, by its own route too.
    let job_id = reply.body["metadata"]["jobId"].as_i64().expect("jobId");
    let content = get(&format!("/api/jobs/{job_id}/content"), &Who::Client).await;
    assert_eq!(content.status, 200, "{}", content.body);
    assert_eq!(content.body["content"], output["content"]);
    assert_error(
        &get(&format!("/api/jobs/{job_id}/content"), &Who::OtherClient).await,
        404,
        "not_found",
    );
    let stats = get("/api/admin/stats", &Who::AdminSession).await;
    assert!(
        stats.body["generations"].as_i64().unwrap_or(0) > before,
        "{}",
        stats.body
    );
    // The words this generation wrote are recorded (other tests may add more).
    let written = output["summary"]["wordsWritten"].as_i64().unwrap_or(0);
    assert!(written > 0, "{}", output["summary"]);
    assert!(
        stats.body["words"].as_i64().unwrap_or(0) >= words_before + written,
        "{} words written, stats {}",
        written,
        stats.body
    );
    assert!(stats.body["tenants"].as_array().is_some_and(|t| t
        .iter()
        .any(|t| t["tenant"] == "dev-client" && t["structureType"] == "quiz")));
}
