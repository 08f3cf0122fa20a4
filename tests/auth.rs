//! Authentication, authorisation and the edge against `wrangler dev`: every
//! route × every credential tier, KAM outages, tenants' job scopes, workers
//! acting for clients, malformed and oversized bodies, unknown routes, CORS and
//! request ids, and the public endpoints (`/health`, `/help`,
//! `/api/ai-providers`).
//! Run through `./test.sh` (against the stack it starts); each test uses its
//! own topic marker (and, where it counts rows, its own client), so tests run
//! in parallel.

mod support;

use reqwest::Method;
use serde_json::{json, Value};
use support::*;

// ---- authentication and authorisation -----------------------------------

fn sample_request(method: &str, path: &str) -> (String, Option<Value>) {
    let path = path
        .replace("{id}", "999999999")
        .replace("{name}", "educational_course_basic");
    let body = match (method, path.as_str()) {
        ("POST", "/api/execute") => {
            Some(json!({"action": "estimate", "input": {"structureType": "quiz"}}))
        }
        ("POST", "/api/validate") => Some(json!({"jobId": 999999999})),
        ("POST", "/api/economy/estimate") => Some(json!({"structureType": "quiz"})),
        ("POST", "/api/admin/templates") => {
            Some(json!({"action": "delete", "template": {"templateName": "no_such_template"}}))
        }
        _ => None,
    };
    (path, body)
}

#[tokio::test]
async fn every_route_enforces_its_tier_for_every_caller() {
    let help = get("/help", &Who::Nobody).await;
    let routes = help.body["routes"].as_array().expect("routes").clone();
    assert_eq!(
        routes.len(),
        25,
        "the route table changed: update this test's expectations"
    );
    for route in &routes {
        let method = route["method"].as_str().unwrap();
        let (path, body) = sample_request(method, route["path"].as_str().unwrap());
        let auth = route["auth"].as_str().unwrap();
        for who in Who::MATRIX {
            let reply = send(
                Method::from_bytes(method.as_bytes()).unwrap(),
                &path,
                &who,
                body.as_ref(),
                &[],
            )
            .await;
            let denied = matches!(reply.status, 401 | 403);
            let expected_denial = match (auth, &who) {
                ("public", _) => None,
                (_, Who::Nobody | Who::BadKey | Who::WorkerWrongSecret) => Some(401),
                ("authenticated", _) => None,
                ("admin", Who::AdminSession | Who::Worker) => None,
                ("admin", _) => Some(403),
                other => panic!("unknown tier {other:?}"),
            };
            match expected_denial {
                Some(code) => assert_eq!(
                    reply.status, code,
                    "{method} {path} as {who:?}: {}",
                    reply.body
                ),
                None => assert!(
                    !denied && reply.status < 500,
                    "{method} {path} as {who:?} got {}: {}",
                    reply.status,
                    reply.body
                ),
            }
            if denied {
                assert!(reply.body["code"].is_string() && reply.body["error"].is_string());
            }
        }
    }
}

/// The credential headers of each tier, as `Who` sends them.
fn tier_headers(who: &Who) -> Vec<(&'static str, &'static str)> {
    match who {
        Who::Client => vec![("X-API-Key", "dev-client-key")],
        Who::UserSession => vec![("x-bitware-session-token", "dev-user-session")],
        Who::AdminSession => vec![("x-bitware-session-token", "dev-admin-session")],
        Who::Worker => vec![
            ("Authorization", "Bearer dev-shared-secret"),
            ("X-Worker-ID", "e2e-tests"),
        ],
        other => panic!("no headers for {other:?}"),
    }
}

/// The rule: every credential a request presents must be valid, else it is
/// a 401 naming the header that failed (`details.header`); all valid, the
/// request acts as the first of worker > session > API key.
#[tokio::test]
async fn a_wrong_credential_beside_a_valid_one_is_401_naming_its_header() {
    let tiers = [
        Who::Client,
        Who::UserSession,
        Who::AdminSession,
        Who::Worker,
    ];
    let wrong: [(&str, &str); 3] = [
        ("X-API-Key", "not-a-key"),
        ("x-bitware-session-token", "not-a-session"),
        ("Authorization", "Bearer wrong-secret"),
    ];
    for who in &tiers {
        let valid = tier_headers(who);
        for (header, value) in wrong {
            if valid.iter().any(|(h, _)| *h == header) {
                continue;
            }
            let mut headers = valid.clone();
            headers.push((header, value));
            if header == "Authorization" && !matches!(who, Who::Worker) {
                headers.push(("X-Worker-ID", "e2e-tests"));
            }
            for path in ["/api/templates", "/api/jobs"] {
                let r = send(Method::GET, path, &Who::Nobody, None, &headers).await;
                assert_error(&r, 401, "unauthorized");
                assert_eq!(
                    r.body["details"]["header"], header,
                    "{who:?} + {header}: {}",
                    r.body
                );
                assert!(
                    r.body["error"].as_str().unwrap().starts_with(header),
                    "{}",
                    r.body
                );
            }
        }
    }
    // Two valid credentials: the request acts as the higher one (an admin
    // session beside a client key reaches admin routes; a client key beside
    // a user session does not).
    let both = [
        ("x-bitware-session-token", "dev-admin-session"),
        ("X-API-Key", "dev-client-key"),
    ];
    let r = send(Method::GET, "/api/admin/stats", &Who::Nobody, None, &both).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let worker_and_key = [
        ("Authorization", "Bearer dev-shared-secret"),
        ("X-Worker-ID", "e2e-tests"),
        ("X-API-Key", "dev-client-key"),
    ];
    let r = send(
        Method::GET,
        "/api/admin/stats",
        &Who::Nobody,
        None,
        &worker_and_key,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let user_and_key = [
        ("x-bitware-session-token", "dev-user-session"),
        ("X-API-Key", "dev-client-key"),
    ];
    let r = send(
        Method::GET,
        "/api/admin/stats",
        &Who::Nobody,
        None,
        &user_and_key,
    )
    .await;
    assert_error(&r, 403, "forbidden");
    // A credential header sent blank fails like a wrong one. (A blank
    // `Authorization` never reaches the worker: the local runtime drops it.)
    for header in ["x-bitware-session-token", "X-API-Key"] {
        let mut headers = vec![("X-Worker-ID", "e2e-tests"), (header, "")];
        if header != "X-API-Key" {
            headers.push(("X-API-Key", "dev-client-key"));
        } else {
            headers.push(("x-bitware-session-token", "dev-user-session"));
        }
        let r = send(Method::GET, "/api/templates", &Who::Nobody, None, &headers).await;
        assert_error(&r, 401, "unauthorized");
        assert_eq!(r.body["details"]["header"], header, "{}", r.body);
    }
}

#[tokio::test]
async fn kam_outages_are_503_and_never_let_a_request_through() {
    for mode in [
        "kam-fault-500",
        "kam-fault-garbage",
        "kam-fault-slow",
        "kam-fault-throw",
    ] {
        for who in [Who::ApiKey(mode.into()), Who::Session(mode.into())] {
            let reply = get("/api/templates", &who).await;
            assert_error(&reply, 503, "kam_unavailable");
            assert!(reply.header("Retry-After").is_some());
        }
    }
    assert_error(
        &get("/api/templates", &Who::ApiKey("kam-fault-403".into())).await,
        401,
        "unauthorized",
    );
}

#[tokio::test]
async fn authorization_without_a_worker_id_is_refused() {
    let reply = send(
        Method::GET,
        "/api/templates",
        &Who::Nobody,
        None,
        &[("Authorization", "Bearer dev-shared-secret")],
    )
    .await;
    assert_error(&reply, 401, "unauthorized");
}

#[tokio::test]
async fn clients_see_only_their_own_jobs_and_admins_see_all() {
    let topic = unique("own-jobs");
    let done = execute(&Who::Client, granulate(&topic, "quiz", 1), None).await;
    assert_eq!(done.status, 200, "{}", done.body);
    let id = done.body["output"]["jobId"].as_i64().unwrap();
    for path in [
        format!("/api/jobs/{id}"),
        format!("/api/jobs/{id}/status"),
        format!("/api/jobs/{id}/structure"),
    ] {
        assert_eq!(get(&path, &Who::Client).await.status, 200, "{path}");
        assert_eq!(
            get(&path, &Who::UserSession).await.status,
            200,
            "{path}: a session of the same client"
        );
        assert_error(&get(&path, &Who::OtherClient).await, 404, "not_found");
        assert_eq!(get(&path, &Who::AdminSession).await.status, 200, "{path}");
        assert_eq!(get(&path, &Who::Worker).await.status, 200, "{path}");
    }
    // Cancel is scoped like the job: another tenant's is a 404 exactly like a
    // missing one; every tier that sees this completed job gets its 409.
    let cancel = format!("/api/jobs/{id}/cancel");
    for who in [
        Who::Client,
        Who::UserSession,
        Who::AdminSession,
        Who::Worker,
    ] {
        let r = send(Method::POST, &cancel, &who, None, &[]).await;
        assert_error(&r, 409, "job_not_cancellable");
        assert_eq!(r.body["details"]["status"], "completed", "{who:?}");
    }
    let hidden = send(Method::POST, &cancel, &Who::OtherClient, None, &[]).await;
    let missing = send(
        Method::POST,
        "/api/jobs/999999999/cancel",
        &Who::OtherClient,
        None,
        &[],
    )
    .await;
    assert_error(&hidden, 404, "not_found");
    assert_eq!(
        hidden.body["error"]
            .as_str()
            .map(|e| e.replace(&id.to_string(), "N")),
        missing.body["error"]
            .as_str()
            .map(|e| e.replace("999999999", "N")),
        "another tenant's job reads as a missing one"
    );
    let others = get("/api/jobs?limit=100", &Who::OtherClient).await;
    assert!(others.body["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .all(|j| j["clientId"] == "other-client"));
}

#[tokio::test]
async fn workers_act_for_the_client_they_name() {
    let client = unique("acme");
    let done = execute(
        &Who::WorkerFor(client.clone()),
        granulate(&unique("acting"), "workflow", 1),
        None,
    )
    .await;
    assert_eq!(done.status, 200, "{}", done.body);
    let id = done.body["output"]["jobId"].as_i64().unwrap();
    let job = get(&format!("/api/jobs/{id}"), &Who::WorkerFor(client.clone())).await;
    assert_eq!(job.body["job"]["clientId"], client.as_str());
    assert_error(
        &get(&format!("/api/jobs/{id}"), &Who::Client).await,
        404,
        "not_found",
    );
}

// ---- errors, limits, protocol ---------------------------------------------

#[tokio::test]
async fn malformed_oversized_and_mistyped_bodies_are_4xx() {
    let url = format!("{}/api/execute", base());
    let raw = |body: String, content_type: &'static str| {
        http()
            .post(&url)
            .header("X-API-Key", "dev-client-key")
            .header("Content-Type", content_type)
            .body(body)
            .send()
    };
    let r = raw("{\"action\":".into(), "application/json")
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "malformed_json");
    let r = raw(
        format!("{{\"input\":{{\"topic\":\"{}\"}}}}", "x".repeat(70_000)),
        "application/json",
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 413);
    assert_eq!(
        r.json::<Value>().await.unwrap()["code"],
        "payload_too_large"
    );
    let r = raw("{}".into(), "text/plain").await.unwrap();
    assert_eq!(r.status(), 415);
    let r = raw(String::new(), "application/json").await.unwrap();
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_json() {
    assert_error(
        &get("/api/nothing-here", &Who::Client).await,
        404,
        "not_found",
    );
    let r = send(Method::PUT, "/api/execute", &Who::Client, None, &[]).await;
    assert_error(&r, 405, "method_not_allowed");
    assert_eq!(r.header("Allow"), Some("POST, OPTIONS"));
}

/// workers-rs reads any method it does not know as GET; the router reads
/// the method as sent: a recognised method a route does not declare (QUERY,
/// PATCH, TRACE…) is a 405 with `Allow`, public or not, with or without
/// credentials, and one the server does not know at all is a 501.
#[tokio::test]
async fn undeclared_methods_are_405_with_allow_and_unknown_ones_501() {
    let query = Method::from_bytes(b"QUERY").unwrap();
    for (path, allow) in [
        ("/", "GET, OPTIONS"),
        ("/health", "GET, OPTIONS"),
        ("/help", "GET, OPTIONS"),
        ("/openapi.json", "GET, OPTIONS"),
        ("/api/jobs", "GET, OPTIONS"),
        ("/api/jobs/1", "GET, OPTIONS"),
        ("/api/execute", "POST, OPTIONS"),
    ] {
        for method in [query.clone(), Method::PATCH, Method::TRACE, Method::DELETE] {
            for who in [Who::Nobody, Who::Client] {
                let r = send(method.clone(), path, &who, None, &[]).await;
                assert_error(&r, 405, "method_not_allowed");
                assert_eq!(r.header("Allow"), Some(allow), "{method} {path}");
                assert!(r.body["jobs"].is_null(), "{method} {path} answered as GET");
            }
        }
    }
    // Methods workerd passes on but the server does not implement (a method
    // workerd does not know at all, e.g. BREW, it answers 501 itself).
    for method in ["PROPFIND", "MKCOL"] {
        let m = Method::from_bytes(method.as_bytes()).unwrap();
        for path in ["/", "/api/jobs", "/nope"] {
            let r = send(m.clone(), path, &Who::Client, None, &[]).await;
            assert_error(&r, 501, "not_implemented");
            assert!(r.header("Allow").is_none(), "{method} {path}");
        }
    }
}

#[tokio::test]
async fn cors_preflight_and_request_ids() {
    let r = http()
        .request(Method::OPTIONS, format!("{}/api/execute", base()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let allow = r.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_string();
    for h in [
        "X-API-Key",
        "Authorization",
        "X-Worker-ID",
        "x-bitware-session-token",
    ] {
        assert!(allow.contains(h), "{allow}");
    }
    let mine = send(
        Method::GET,
        "/",
        &Who::Nobody,
        None,
        &[("X-Request-ID", "req-abc-123")],
    )
    .await;
    assert_eq!(mine.header("X-Request-ID"), Some("req-abc-123"));
    let fresh = get("/", &Who::Nobody).await;
    assert_eq!(fresh.header("X-Request-ID").map(str::len), Some(36));
}

// ---- public endpoints -------------------------------------------------------

#[tokio::test]
async fn health_reports_dependencies_and_providers_without_secrets() {
    let r = get("/health", &Who::Nobody).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["status"], "healthy");
    for check in ["database", "kv", "r2", "kam"] {
        assert_eq!(r.body["checks"][check]["ok"], true, "{check}");
    }
    assert_eq!(
        r.body["aiProviders"]["order"],
        json!(["openai", "anthropic"])
    );
    let text = r.body.to_string();
    assert!(!text.contains("mock-openai-key") && !text.contains(SECRET));
}

#[tokio::test]
async fn help_documents_granularity_quality_and_placeholders() {
    let r = get("/help", &Who::Nobody).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["structureTypes"].as_array().unwrap().len(), 6);
    assert_eq!(
        r.body["qualityScore"]["weights"].as_array().unwrap().len(),
        5
    );
    assert_eq!(r.body["promptPlaceholders"].as_array().unwrap().len(), 7);
    assert!(r.body["routes"]
        .as_array()
        .unwrap()
        .iter()
        .all(|x| x["method"].is_string() && x["auth"].is_string() && x["request"].is_string()));
}

#[tokio::test]
async fn ai_providers_are_described_without_calling_them() {
    let r = get("/api/ai-providers", &Who::Client).await;
    assert_eq!(r.status, 200);
    let configured: Vec<(&str, &str)> = r.body["providers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["configured"] == true)
        .map(|p| (p["name"].as_str().unwrap(), p["model"].as_str().unwrap()))
        .collect();
    // Offline is configured too outside production, but only used when asked for.
    assert_eq!(
        configured,
        vec![
            ("openai", "gpt-4o-mini"),
            ("anthropic", "claude-haiku-4-5"),
            ("offline", "offline")
        ]
    );
    assert_eq!(r.body["order"], json!(["openai", "anthropic"]));
    assert_eq!(
        r.body["settings"]["attemptTimeoutMs"], 1500,
        "the configured value, read without calling anyone"
    );
    let text = r.body.to_string();
    assert!(!text.contains("mock-openai-key") && !text.contains("mock-anthropic-key"));
}
