//! End-to-end behaviour of the granulator running in `wrangler dev` (real
//! workerd, local D1/KV/R2, the KAM stand-in) against the mock AI provider.
//! Run through `./test.sh`. Each test uses its own topic marker (and, where
//! it counts rows, its own client), so tests run in parallel.

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
        23,
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
    let r = raw("".into(), "application/json").await.unwrap();
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

#[tokio::test]
async fn every_bad_execute_field_is_a_400_naming_it_and_writes_nothing() {
    let client = unique("bad-input");
    let who = Who::WorkerFor(client.clone());
    let cases = [
        (
            json!({"action": "delete_everything", "input": {"topic": "x"}}),
            "action",
        ),
        (json!({"input": {"structureType": "course"}}), "input.topic"),
        (
            json!({"input": {"topic": "x", "structureType": "poem"}}),
            "input.structureType",
        ),
        (
            json!({"input": {"topic": "x", "structureType": "course"}, "params": {"granularityLevel": 9}}),
            "params.granularityLevel",
        ),
        (
            json!({"input": {"topic": "x", "templateName": "no_such_template"}}),
            "input.templateName",
        ),
        (
            json!({"input": {"topic": "x", "structureType": "quiz", "templateName": "educational_course_basic"}}),
            "input.structureType",
        ),
        (
            json!({"input": {"topic": "x", "structureType": "course", "constraints": {"counts": {"questions": 3}}}}),
            "constraints.counts.questions",
        ),
        (
            json!({"input": {"topic": "x", "structureType": "course"}, "config": {"aiProvider": "workers_ai"}}),
            "config.aiProvider",
        ),
        (
            json!({"input": {"topic": "x", "structureType": "course"}, "config": {"temperature": "hot"}}),
            "config.temperature",
        ),
        (
            json!({"input": {"topic": "x", "structureType": "course"}, "timeout": 5}),
            "timeout",
        ),
    ];
    for (body, field) in cases {
        let r = execute(&who, body.clone(), None).await;
        assert_eq!(r.status, 400, "{body}: {}", r.body);
        assert_eq!(r.body["details"]["field"], field, "{body}: {}", r.body);
    }
    let jobs = get("/api/jobs", &who).await;
    assert_eq!(
        jobs.body["total"], 0,
        "a refused request must not create a job"
    );
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

// ---- templates ---------------------------------------------------------------

#[tokio::test]
async fn templates_list_filter_and_exact_names() {
    let all = get("/api/templates", &Who::Client).await;
    assert!(all.body["count"].as_u64().unwrap() >= 6);
    let quiz = get("/api/templates?structure_type=quiz", &Who::Client).await;
    assert!(quiz.body["templates"]
        .as_array()
        .unwrap()
        .iter()
        .all(|t| t["structureType"] == "quiz"));
    assert_error(
        &get("/api/templates?structure_type=poem", &Who::Client).await,
        400,
        "invalid_field",
    );
    let one = get("/api/templates/three_act_novel", &Who::Client).await;
    assert_eq!(
        one.body["template"]["structureRules"]["levels"][0],
        json!({"level": "acts", "min": 3, "max": 3})
    );
    assert_error(
        &get("/api/templates/three_act", &Who::Client).await,
        404,
        "not_found",
    );
    assert_error(
        &get("/api/templates/THREE_ACT_NOVEL", &Who::Client).await,
        404,
        "not_found",
    );
}

#[tokio::test]
async fn admins_create_update_and_soft_delete_templates_with_cache_invalidation() {
    let name = unique("tpl").replace('-', "_");
    let name = format!("t{name}");
    let created = post(
        "/api/admin/templates",
        &Who::AdminSession,
        json!({"action": "create", "template": quiz_template(&name)}),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(
        get(&format!("/api/templates/{name}"), &Who::Client)
            .await
            .body["template"]["description"],
        "e2e"
    );
    // A job resolves the template through the KV cache...
    let first = unique("tpl-use");
    let job = execute(
        &Who::Client,
        json!({"input": {"topic": first, "templateName": name}}),
        None,
    )
    .await;
    assert_eq!(job.status, 200, "{}", job.body);
    assert!(mock_calls(&first).await[0]["user"]
        .as_str()
        .unwrap()
        .starts_with("Quiz on"));
    let job_id = job.body["output"]["jobId"].as_i64().unwrap();
    // ...an admin change invalidates it: the very next job uses the new prompt.
    let updated = post(
        "/api/admin/templates",
        &Who::Worker,
        json!({"action": "update", "template": {"templateName": name, "description": "changed",
        "complexityLevel": 5, "aiPromptTemplate": "Revised quiz about {topic}. {level_targets}"}}),
    )
    .await;
    assert_eq!(updated.status, 200, "{}", updated.body);
    let second = unique("tpl-use");
    assert_eq!(
        execute(
            &Who::Client,
            json!({"input": {"topic": second, "templateName": name}}),
            None
        )
        .await
        .status,
        200
    );
    assert!(mock_calls(&second).await[0]["user"]
        .as_str()
        .unwrap()
        .starts_with("Revised quiz about"));
    let read = get(&format!("/api/templates/{name}"), &Who::Client).await;
    assert_eq!(read.body["template"]["description"], "changed");
    assert_eq!(read.body["template"]["complexityLevel"], 5);
    // usage_count = usage_count + 1 per job, in the job's own batch.
    assert_eq!(read.body["template"]["usageCount"], 2);
    // Soft delete: gone from reads and new jobs; the old job keeps its link.
    let deleted = post(
        "/api/admin/templates",
        &Who::AdminSession,
        json!({"action": "delete", "template": {"templateName": name}}),
    )
    .await;
    assert_eq!(deleted.status, 200);
    assert_error(
        &get(&format!("/api/templates/{name}"), &Who::Client).await,
        404,
        "not_found",
    );
    let listed = get("/api/templates?structure_type=quiz", &Who::Client).await;
    assert!(listed.body["templates"]
        .as_array()
        .unwrap()
        .iter()
        .all(|t| t["templateName"] != name.as_str()));
    assert_eq!(
        get(&format!("/api/jobs/{job_id}"), &Who::Client).await.body["job"]["templateName"],
        name.as_str()
    );
    let again = execute(
        &Who::Client,
        json!({"input": {"topic": "x", "templateName": name}}),
        None,
    )
    .await;
    assert_eq!(again.status, 400);
}

#[tokio::test]
async fn template_admin_rejects_bad_input_duplicates_and_non_admins() {
    let name = format!("t{}", unique("dup").replace('-', "_"));
    assert_eq!(create_quiz_template(&name).await.status, 201);
    assert_error(
        &post(
            "/api/admin/templates",
            &Who::AdminSession,
            json!({"action": "create", "template": quiz_template(&name)}),
        )
        .await,
        409,
        "template_exists",
    );
    let cases = [
        (
            "aiPromptTemplate",
            json!("Quiz on {topic} for {reader}"),
            "template.aiPromptTemplate",
        ),
        ("structureType", json!("poem"), "template.structureType"),
        (
            "structureRules",
            json!({"levels": [{"level": "categories", "min": 1, "max": 20}, {"level": "questions", "min": 3, "max": 10}]}),
            "template.structureRules",
        ),
    ];
    for (field, value, named) in cases {
        let mut bad = quiz_template("tbad_template");
        bad[field] = value;
        let r = post(
            "/api/admin/templates",
            &Who::AdminSession,
            json!({"action": "create", "template": bad}),
        )
        .await;
        assert_eq!(r.status, 400, "{field}: {}", r.body);
        assert_eq!(r.body["details"]["field"], named);
    }
    assert_eq!(
        post(
            "/api/admin/templates",
            &Who::AdminSession,
            json!({"action": "rename", "template": quiz_template("tx_y")})
        )
        .await
        .status,
        400
    );
    assert_error(
        &post(
            "/api/admin/templates",
            &Who::Client,
            json!({"action": "create", "template": quiz_template("tnope")}),
        )
        .await,
        403,
        "forbidden",
    );
    assert_error(
        &post(
            "/api/admin/templates",
            &Who::UserSession,
            json!({"action": "create", "template": quiz_template("tnope")}),
        )
        .await,
        403,
        "forbidden",
    );
}

// ---- the pipeline --------------------------------------------------------------

fn count_elements(structure: &Value, keys: &[&str]) -> usize {
    let Some((first, rest)) = keys.split_first() else {
        return 0;
    };
    structure[*first].as_array().map_or(0, |items| {
        items.len() + items.iter().map(|i| count_elements(i, rest)).sum::<usize>()
    })
}

const LEVELS: [(&str, &[&str]); 6] = [
    ("course", &["modules", "lessons", "activities"]),
    ("quiz", &["categories", "questions"]),
    ("novel", &["acts", "chapters", "scenes"]),
    ("workflow", &["phases", "steps", "tasks"]),
    ("knowledge_map", &["concepts", "subconcepts", "details"]),
    ("learning_path", &["milestones", "skills", "activities"]),
];

#[tokio::test]
async fn every_type_granulates_at_granularity_1_3_and_5_and_reads_back() {
    let marker = unique("six-types");
    let mut handles = Vec::new();
    for (structure_type, keys) in LEVELS {
        let marker = marker.clone();
        handles.push(tokio::spawn(async move {
            let mut sizes = Vec::new();
            for g in [1u8, 3, 5] {
                let r = execute(
                    &Who::Client,
                    granulate(&format!("{marker} {structure_type}"), structure_type, g),
                    None,
                )
                .await;
                assert_eq!(r.status, 200, "{structure_type} g{g}: {}", r.body);
                let out = &r.body["output"];
                for field in [
                    "granulatorJobId",
                    "topic",
                    "structureType",
                    "wordCountEstimates",
                    "contentMetadata",
                    "readyForNext",
                ] {
                    assert!(!out[field].is_null(), "{structure_type} g{g}: no {field}");
                }
                assert!(
                    out["summary"]["wordCountEstimates"]["total"]
                        .as_u64()
                        .unwrap()
                        > 0
                );
                assert_eq!(
                    out["contentMetadata"]["workerChain"]["currentWorker"],
                    "bitware-content-granulator"
                );
                assert_eq!(
                    out["qualityScore"], 1.0,
                    "{structure_type} g{g}: {}",
                    out["qualityReport"]
                );
                assert_eq!(out["provider"], "openai");
                // One call, or under `auto` a large outline fanned out (a skeleton,
                // its branches and its root fields): each call is the mock's usage.
                let calls = r.body["metadata"]["attempts"].as_u64().unwrap();
                assert_eq!(
                    calls == 1,
                    r.body["metadata"]["strategy"] == "single",
                    "{structure_type} g{g}: {calls} calls"
                );
                assert!(approx(&r.body["cost"], DEFAULT_CALL_COST * calls as f64));
                assert_eq!(
                    r.body["usage"]["tokens"],
                    json!({"input": 1000 * calls, "output": 500 * calls, "cached": 0})
                );
                let id = out["jobId"].as_i64().unwrap();
                let stored = get(&format!("/api/jobs/{id}/structure"), &Who::Client).await;
                assert_eq!(stored.status, 200);
                let structure = stored.body["structure"].clone();
                if out["structureReference"].is_null() {
                    assert_eq!(out["structure"], structure);
                }
                let elements = count_elements(&structure, keys);
                assert_eq!(out["summary"]["totalElements"], elements);
                let depth = keys
                    .iter()
                    .scan(structure.clone(), |node, k| {
                        let next = node[*k].get(0).cloned();
                        next.map(|n| {
                            *node = n;
                            1
                        })
                    })
                    .count();
                assert_eq!(
                    depth,
                    [1, keys.len(), keys.len()][[1u8, 3, 5].iter().position(|x| *x == g).unwrap()],
                    "{structure_type} g{g}"
                );
                // The hierarchy read back from D1 rows is the same outline.
                let rebuilt = get(
                    &format!("/api/jobs/{id}/structure?source=elements"),
                    &Who::Client,
                )
                .await;
                assert_eq!(rebuilt.body["source"], "elements");
                assert_eq!(
                    rebuilt.body["structure"], structure,
                    "{structure_type} g{g}"
                );
                sizes.push(elements);
            }
            assert!(
                sizes.windows(2).all(|w| w[0] < w[1]),
                "{structure_type}: {sizes:?}"
            );
        }));
    }
    for h in handles {
        h.await.expect("a type failed");
    }
}

#[tokio::test]
async fn the_offline_provider_granulates_every_type_at_zero_cost() {
    let key = unique("offline");
    for (structure_type, _) in LEVELS {
        let mut sizes = Vec::new();
        for g in [1u8, 3, 5] {
            let body = json!({"input": {"topic": format!("{key} {structure_type}"), "structureType": structure_type, "granularityLevel": g}, "config": {"aiProvider": "offline"}});
            let r = execute(&Who::Client, body, None).await;
            assert_eq!(r.status, 200, "{}", r.body);
            assert_eq!(r.body["output"]["provider"], "offline");
            assert_eq!(r.body["output"]["qualityScore"], 1.0);
            assert_eq!(r.body["cost"], 0.0);
            assert_eq!(r.body["usage"]["tokens"]["input"], 0);
            // The next worker will not write with the offline model: its estimate uses a real one.
            let estimate = &r.body["output"]["contentMetadata"]["resourceEstimates"];
            assert_eq!(estimate["pricedWithModel"], "gpt-4o-mini");
            assert!(estimate["estimatedCostUsd"].as_f64().unwrap() > 0.0);
            sizes.push(
                r.body["output"]["summary"]["totalElements"]
                    .as_u64()
                    .unwrap(),
            );
        }
        assert!(
            sizes.windows(2).all(|w| w[0] < w[1]),
            "{structure_type}: {sizes:?}"
        );
    }
    assert!(
        mock_calls(&key).await.is_empty(),
        "the offline provider needs no network"
    );
}

#[tokio::test]
async fn storage_tiers_follow_the_size_of_the_outline() {
    let mut tiers = std::collections::BTreeSet::new();
    for (counts, pad) in [
        (json!([3, 2, 1]), 0usize),
        (json!([12, 5, 4]), 0),
        (json!([12, 5, 4]), 600),
    ] {
        let key = unique("tier");
        script(
            &key,
            json!([{"kind": "valid", "counts": counts, "pad": pad}]),
        )
        .await;
        // One call, so the scripted answer is the outline (a granularity-5 course fans out under auto).
        let mut body = granulate(&key, "course", 5);
        body["config"] = json!({"strategy": "single"});
        let r = execute(&Who::Client, body, None).await;
        assert_eq!(r.status, 200, "{}", r.body);
        let out = &r.body["output"];
        let id = out["jobId"].as_i64().unwrap();
        let tier = r.body["metadata"]["storageTier"]
            .as_str()
            .unwrap()
            .to_string();
        let stored = get(&format!("/api/jobs/{id}/structure"), &Who::Client).await;
        assert_eq!(stored.body["source"], tier.as_str());
        let size = stored.body["structure"].to_string().len();
        let expected = if size < 25 * 1024 {
            "inline"
        } else if size < 128 * 1024 {
            "kv"
        } else {
            "r2"
        };
        assert_eq!(tier, expected, "{size} bytes");
        let rebuilt = get(
            &format!("/api/jobs/{id}/structure?source=elements"),
            &Who::Client,
        )
        .await;
        assert_eq!(rebuilt.body["structure"], stored.body["structure"]);
        if tier == "inline" {
            assert_eq!(out["structure"], stored.body["structure"]);
        } else {
            let reference = &out["structureReference"];
            assert_eq!(reference["type"], tier.as_str());
            let location = if tier == "kv" {
                format!("structure:{id}")
            } else {
                format!("structures/{id}.json")
            };
            assert_eq!(reference["location"], location.as_str());
            assert_eq!(reference["sizeBytes"], size);
            assert!(out.get("structure").is_none());
        }
        let c: Vec<u64> = counts
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap())
            .collect();
        assert_eq!(
            out["summary"]["totalElements"],
            c[0] + c[0] * c[1] + c[0] * c[1] * c[2]
        );
        tiers.insert(tier);
    }
    assert_eq!(
        tiers.into_iter().collect::<Vec<_>>(),
        vec!["inline", "kv", "r2"]
    );
}

#[tokio::test]
async fn a_repeated_request_id_replays_the_completed_job_without_a_new_call() {
    let key = unique("replay");
    let rid = unique("rid");
    let first = execute(&Who::Client, granulate(&key, "quiz", 2), Some(&rid)).await;
    assert_eq!(first.status, 200, "{}", first.body);
    let second = execute(&Who::Client, granulate(&key, "quiz", 2), Some(&rid)).await;
    assert_eq!(second.status, 200);
    assert_eq!(second.header("Idempotent-Replay"), Some("true"));
    assert_eq!(
        second.body["output"]["jobId"],
        first.body["output"]["jobId"]
    );
    assert_eq!(second.body, first.body);
    assert_eq!(
        mock_calls(&key).await.len(),
        1,
        "a replay must not call the model"
    );
    // The same id from another client is another job.
    let other = execute(&Who::OtherClient, granulate(&key, "quiz", 2), Some(&rid)).await;
    assert_ne!(other.body["output"]["jobId"], first.body["output"]["jobId"]);
}

#[tokio::test]
async fn a_completed_job_replays_even_after_its_template_is_deleted() {
    let name = format!("t{}", unique("gone").replace('-', "_"));
    assert_eq!(create_quiz_template(&name).await.status, 201);
    let rid = unique("rid");
    let body = json!({"input": {"topic": unique("gone-topic"), "templateName": name}});
    let first = execute(&Who::Client, body.clone(), Some(&rid)).await;
    assert_eq!(first.status, 200, "{}", first.body);
    let deleted = post(
        "/api/admin/templates",
        &Who::AdminSession,
        json!({"action": "delete", "template": {"templateName": name}}),
    )
    .await;
    assert_eq!(deleted.status, 200);
    let retry = execute(&Who::Client, body.clone(), Some(&rid)).await;
    assert_eq!(retry.status, 200, "{}", retry.body);
    assert_eq!(retry.header("Idempotent-Replay"), Some("true"));
    assert_eq!(retry.body, first.body);
    // Without the stored job the same request is refused as before.
    assert_eq!(
        execute(&Who::Client, body, Some(&unique("rid")))
            .await
            .status,
        400
    );
}

#[tokio::test]
async fn concurrent_duplicates_create_one_job_and_join_it() {
    let key = unique("concurrent");
    let rid = unique("rid");
    script(&key, json!([{"kind": "delay", "ms": 1000}])).await; // under the 1.5 s attempt timeout
    let requests = (0..5).map(|_| {
        let (key, rid) = (key.clone(), rid.clone());
        tokio::spawn(async move {
            execute(&Who::Client, granulate(&key, "workflow", 2), Some(&rid)).await
        })
    });
    let replies: Vec<_> = futures_util::future::join_all(requests)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    let seen: Vec<_> = replies
        .iter()
        .map(|r| {
            (
                r.status,
                r.body["output"]["jobId"].clone(),
                r.header("Idempotent-Replay").map(str::to_string),
            )
        })
        .collect();
    // A repeat of a running job waits for it (no 409): every request gets the result.
    assert!(replies.iter().all(|r| r.status == 200), "{seen:?}");
    let ids: std::collections::HashSet<_> = replies
        .iter()
        .map(|r| r.body["output"]["jobId"].clone())
        .collect();
    assert_eq!(ids.len(), 1, "{seen:?}");
    let fresh = replies
        .iter()
        .filter(|r| r.header("Idempotent-Replay").is_none())
        .count();
    assert_eq!(fresh, 1, "{seen:?}");
    assert_eq!(mock_calls(&key).await.len(), 1);
}

#[tokio::test]
async fn a_failed_job_ends_failed_and_runs_again_under_the_same_request_id() {
    let key = unique("fail-then-ok");
    let rid = unique("rid");
    script(
        &key,
        json!([{"kind": "status", "code": 400}, {"kind": "status", "code": 400}]),
    )
    .await;
    let failed = execute(&Who::Client, granulate(&key, "course", 1), Some(&rid)).await;
    assert_error(&failed, 502, "provider_error");
    let id = failed.body["details"]["jobId"].as_i64().unwrap();
    assert_eq!(
        failed.body["details"]["attempts"].as_array().unwrap().len(),
        2
    );
    let status = get(&format!("/api/jobs/{id}/status"), &Who::Client).await;
    assert_eq!(status.body["status"], "failed");
    assert!(status.body["failureReason"]
        .as_str()
        .unwrap()
        .contains("HTTP 400"));
    let again = execute(&Who::Client, granulate(&key, "course", 1), Some(&rid)).await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.body["output"]["jobId"], id);
    assert_eq!(again.body["metadata"]["run"], 2);
    let job = get(&format!("/api/jobs/{id}"), &Who::Client).await;
    assert_eq!(job.body["job"]["status"], "completed");
    assert_eq!(
        job.body["attempts"].as_array().unwrap().len(),
        3,
        "both runs' attempts are kept"
    );
}

#[tokio::test]
async fn retry_reruns_a_failed_job_with_its_original_parameters() {
    let key = unique("retry");
    script(
        &key,
        json!([{"kind": "status", "code": 401}, {"kind": "status", "code": 403}]),
    )
    .await;
    let failed = execute(&Who::Client, granulate(&key, "knowledge_map", 2), None).await;
    assert_eq!(failed.status, 502);
    let id = failed.body["details"]["jobId"].as_i64().unwrap();
    assert_error(
        &post(
            &format!("/api/jobs/{id}/retry"),
            &Who::OtherClient,
            json!({}),
        )
        .await,
        404,
        "not_found",
    );
    let retried = send(
        Method::POST,
        &format!("/api/jobs/{id}/retry"),
        &Who::Client,
        None,
        &[],
    )
    .await;
    assert_eq!(retried.status, 200, "{}", retried.body);
    assert_eq!(retried.body["output"]["jobId"], id);
    assert_eq!(retried.body["output"]["structureType"], "knowledge_map");
    assert_eq!(retried.body["output"]["granularityLevel"], 2);
    assert_error(
        &send(
            Method::POST,
            &format!("/api/jobs/{id}/retry"),
            &Who::Client,
            None,
            &[],
        )
        .await,
        409,
        "job_not_failed",
    );
}

#[tokio::test]
async fn job_lists_filter_page_and_count() {
    let client = unique("lister");
    let who = Who::WorkerFor(client);
    for t in ["quiz", "course", "quiz"] {
        assert_eq!(
            execute(&who, granulate(&unique("list"), t, 1), None)
                .await
                .status,
            200
        );
    }
    let all = get("/api/jobs", &who).await;
    assert_eq!(all.body["total"], 3);
    let quizzes = get("/api/jobs?structure_type=quiz&status=completed", &who).await;
    assert_eq!(quizzes.body["total"], 2);
    let page = get("/api/jobs?limit=1&offset=1", &who).await;
    assert_eq!(page.body["jobs"].as_array().unwrap().len(), 1);
    assert_eq!(page.body["total"], 3);
    assert_eq!(page.body["jobs"][0]["id"], all.body["jobs"][1]["id"]);
    let none = get("/api/jobs?from=2999-01-01", &who).await;
    assert_eq!(none.body["total"], 0);
    assert_error(
        &get("/api/jobs?status=stuck", &who).await,
        400,
        "invalid_field",
    );
    assert_error(
        &get("/api/jobs?limit=1000", &who).await,
        400,
        "invalid_field",
    );
    assert_error(
        &get("/api/jobs?from=yesterday", &who).await,
        400,
        "invalid_field",
    );
}

#[tokio::test]
async fn constraints_are_enforced_not_just_mentioned() {
    let key = unique("constraints");
    let r = execute(
        &Who::Client,
        json!({"input": {"topic": key, "structureType": "course", "granularityLevel": 3,
        "constraints": {"maxElements": 20, "counts": {"modules": 4}}}}),
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let out = &r.body["output"];
    assert_eq!(out["structure"]["modules"].as_array().unwrap().len(), 4);
    assert_eq!(out["summary"]["totalElements"], 20);
    let calls = mock_calls(&key).await;
    assert!(calls[0]["user"]
        .as_str()
        .unwrap()
        .contains("at most 20 elements in total"));
    assert_eq!(calls.len(), 2, "the violation went back to the model once");
}

#[tokio::test]
async fn rule_violations_go_back_to_the_model_once() {
    let key = unique("repair");
    script(&key, json!([{"kind": "valid", "counts": [2, 2, 1]}])).await;
    let r = execute(&Who::Client, granulate(&key, "course", 3), None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let calls = mock_calls(&key).await;
    assert_eq!(calls.len(), 2);
    let feedback = calls[1]["user"].as_str().unwrap();
    assert!(
        feedback.contains("Your previous outline")
            && feedback.contains("has 2 modules, needs 3-12"),
        "{feedback}"
    );
    assert!(
        r.body["output"]["structure"]["modules"]
            .as_array()
            .unwrap()
            .len()
            >= 3
    );
    assert_eq!(r.body["output"]["qualityScore"], 1.0);
    assert!(approx(&r.body["cost"], 2.0 * DEFAULT_CALL_COST));
}

// ---- provider faults --------------------------------------------------------------

async fn run_with(steps: Value) -> (Reply, Vec<Value>) {
    let key = unique("fault");
    script(&key, steps).await;
    let r = execute(&Who::Client, granulate(&key, "quiz", 2), None).await;
    let calls = mock_calls(&key).await;
    (r, calls)
}

fn attempt_statuses(job: &Value) -> Vec<String> {
    job["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            format!(
                "{}:{}",
                a["provider"].as_str().unwrap(),
                a["status"].as_str().unwrap()
            )
        })
        .collect()
}

async fn job_of(reply: &Reply) -> Value {
    let id = reply.body["output"]["jobId"]
        .as_i64()
        .or(reply.body["details"]["jobId"].as_i64())
        .expect("a job id");
    get(&format!("/api/jobs/{id}"), &Who::Client).await.body
}

#[tokio::test]
async fn fenced_and_prose_wrapped_json_are_extracted() {
    for kind in ["fenced", "prose"] {
        let (r, calls) = run_with(json!([{"kind": kind}])).await;
        assert_eq!(r.status, 200, "{kind}: {}", r.body);
        assert_eq!(calls.len(), 1, "{kind}");
    }
}

#[tokio::test]
async fn invalid_json_is_asked_again_and_every_attempt_is_billed() {
    let (r, calls) = run_with(json!([{"kind": "invalid", "usage": {"input": 1000, "output": 500}}, {"kind": "valid", "usage": {"input": 2000, "output": 800}}])).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(calls.len(), 2);
    assert!(calls[1]["user"]
        .as_str()
        .unwrap()
        .contains("could not be used"));
    // (3000 × 0.15 + 1300 × 0.60) / 1M
    assert!(approx(&r.body["cost"], 0.00123), "{}", r.body["cost"]);
    assert_eq!(
        r.body["usage"]["tokens"],
        json!({"input": 3000, "output": 1300, "cached": 0})
    );
    let job = job_of(&r).await;
    assert_eq!(
        attempt_statuses(&job),
        vec!["openai:invalid_output", "openai:success"]
    );
    assert!(approx(&job["job"]["costUsd"], 0.00123));
}

#[tokio::test]
async fn wrong_shapes_and_truncation_are_detected() {
    let (r, _) = run_with(json!([{"kind": "wrong_shape"}])).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        attempt_statuses(&job_of(&r).await),
        vec!["openai:invalid_output", "openai:success"]
    );
    let (r, calls) = run_with(json!([{"kind": "truncate"}])).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(calls[1]["user"].as_str().unwrap().contains("cut off"));
    assert_eq!(
        attempt_statuses(&job_of(&r).await),
        vec!["openai:truncated", "openai:success"]
    );
}

#[tokio::test]
async fn rate_limits_are_retried_after_retry_after() {
    let started = std::time::Instant::now();
    let (r, calls) = run_with(json!([{"kind": "status", "code": 429, "retryAfter": "1"}])).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(calls.len(), 2);
    assert!(
        started.elapsed().as_millis() >= 1000,
        "Retry-After was not honoured"
    );
    let job = job_of(&r).await;
    assert_eq!(
        attempt_statuses(&job),
        vec!["openai:http_error", "openai:success"]
    );
    assert_eq!(job["attempts"][0]["httpStatus"], 429);
    assert_eq!(job["attempts"][0]["costUsd"], 0.0);
}

#[tokio::test]
async fn server_errors_are_retried_then_the_next_provider_answers() {
    let (r, calls) = run_with(json!([{"kind": "status", "code": 500}, {"kind": "status", "code": 529}, {"kind": "status", "code": 503}])).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["output"]["provider"], "anthropic");
    assert_eq!(
        calls
            .iter()
            .map(|c| c["provider"].as_str().unwrap())
            .collect::<Vec<_>>(),
        vec!["openai", "openai", "openai", "anthropic"]
    );
    // claude-haiku-4-5: (1000 × 1 + 500 × 5) / 1M
    assert!(approx(&r.body["cost"], 0.0035), "{}", r.body["cost"]);
}

#[tokio::test]
async fn bad_keys_and_refusals_skip_to_the_next_provider_without_retries() {
    for first in [
        json!({"kind": "status", "code": 401}),
        json!({"kind": "refuse"}),
    ] {
        let (r, calls) = run_with(json!([first])).await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(calls.len(), 2);
        assert_eq!(calls[1]["provider"], "anthropic");
    }
}

#[tokio::test]
async fn a_hung_provider_times_out_and_is_retried() {
    let (r, calls) = run_with(json!([{"kind": "hang", "ms": 4000}])).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(calls.len(), 1, "the hung call never completed at the mock");
    let job = job_of(&r).await;
    assert_eq!(
        attempt_statuses(&job),
        vec!["openai:timeout", "openai:success"]
    );
}

#[tokio::test]
async fn when_every_provider_fails_the_job_fails_cleanly_with_502() {
    let steps: Vec<Value> = (0..6)
        .map(|_| json!({"kind": "status", "code": 500}))
        .collect();
    let (r, calls) = run_with(json!(steps)).await;
    assert_error(&r, 502, "provider_error");
    assert_eq!(calls.len(), 6, "3 attempts per provider, bounded");
    let job = job_of(&r).await;
    assert_eq!(job["job"]["status"], "failed");
    assert_eq!(job["job"]["failureCode"], "provider_error");
    assert_eq!(job["attempts"].as_array().unwrap().len(), 6);
}

#[tokio::test]
async fn the_budget_refuses_calls_that_would_exceed_it() {
    let key = unique("budget");
    let r = execute(&Who::Client, json!({"input": {"topic": key, "structureType": "course", "granularityLevel": 5}, "config": {"maxCostUsd": 0.0001}}), None).await;
    assert_error(&r, 422, "budget_exceeded");
    assert!(mock_calls(&key).await.is_empty());
    let job = job_of(&r).await;
    assert_eq!(job["job"]["status"], "failed");
    assert_eq!(
        attempt_statuses(&job),
        vec!["openai:budget_refused", "anthropic:budget_refused"]
    );
}

#[tokio::test]
async fn the_request_deadline_answers_504_and_the_job_goes_on() {
    let key = unique("deadline");
    let rid = unique("rid");
    script(&key, json!([{"kind": "hang", "ms": 3000}, {"kind": "hang", "ms": 3000}, {"kind": "hang", "ms": 3000}])).await;
    let body = json!({"input": {"topic": key, "structureType": "quiz", "granularityLevel": 1}, "timeout": 2500});
    let r = execute(&Who::Client, body.clone(), Some(&rid)).await;
    assert_error(&r, 504, "deadline_exceeded");
    let id = r.body["details"]["jobId"].as_i64().unwrap();
    assert_eq!(
        r.body["details"]["statusUrl"],
        format!("/api/jobs/{id}/status")
    );
    // The job outlives its request: three timed-out attempts, then the next provider answers.
    let mut status = Value::Null;
    for _ in 0..100 {
        status = get(&format!("/api/jobs/{id}/status"), &Who::Client)
            .await
            .body;
        if status["status"] != "processing" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(status["status"], "completed", "{status}");
    let replay = execute(&Who::Client, body, Some(&rid)).await;
    assert_eq!(replay.status, 200, "{}", replay.body);
    assert_eq!(replay.header("Idempotent-Replay"), Some("true"));
    assert_eq!(
        attempt_statuses(&job_of(&replay).await),
        vec![
            "openai:timeout",
            "openai:timeout",
            "openai:timeout",
            "anthropic:success"
        ]
    );
}

#[tokio::test]
async fn older_claude_models_use_a_forced_tool_and_declared_prices_apply() {
    let key = unique("tool");
    let r = execute(
        &Who::Client,
        json!({"input": {"topic": key, "structureType": "quiz", "granularityLevel": 1},
        "config": {"aiProvider": "anthropic", "aiModel": "claude-3-5-haiku-latest"}}),
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["output"]["model"], "claude-3-5-haiku-latest");
    // The stack declares its price in PRICING ($0.80 / $4 per 1M): 1,000 in + 500 out.
    assert!(approx(&r.body["cost"], 0.0028), "{}", r.body["cost"]);
    assert!(approx(&r.body["output"]["costUsd"], 0.0028));
    let calls = mock_calls(&key).await;
    assert_eq!(calls[0]["step"], "valid");
}

// ---- validation ---------------------------------------------------------------------

#[tokio::test]
async fn a_failed_validation_regranulates_once_then_reports_the_result() {
    let key = unique("validation");
    // Review 1 fails, the second outline's review passes.
    script(&key, json!([{"kind": "valid"}, {"kind": "review", "scores": [40, 50]}, {"kind": "valid"}, {"kind": "review", "scores": [95, 95]}])).await;
    let r = execute(&Who::Client, json!({"input": {"topic": key, "structureType": "course", "granularityLevel": 2}, "config": {"validationLevel": 2, "validationThreshold": 80}}), None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let v = &r.body["output"]["validationResult"];
    assert_eq!(v["passed"], true);
    assert_eq!(v["accuracyPercentage"], 97.5);
    assert_eq!(r.body["output"]["readyForContentGeneration"], true);
    let kinds: Vec<String> = mock_calls(&key)
        .await
        .iter()
        .map(|c| c["kind"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(kinds, vec!["course", "review", "course", "review"]);
    assert!(approx(&r.body["cost"], 4.0 * DEFAULT_CALL_COST));

    let key = unique("validation-fails");
    script(&key, json!([{"kind": "valid"}, {"kind": "review", "scores": [20, 20]}, {"kind": "valid"}, {"kind": "review", "scores": [30, 30]}])).await;
    let r = execute(&Who::Client, json!({"input": {"topic": key, "structureType": "course", "granularityLevel": 2}, "config": {"validationLevel": 2, "validationThreshold": 80}}), None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["output"]["validationResult"]["passed"], false);
    assert_eq!(r.body["output"]["readyForContentGeneration"], false);
    assert_eq!(r.body["output"]["readyForNext"], false);
    assert_eq!(
        mock_calls(&key).await.len(),
        4,
        "re-granulated at most once"
    );
}

#[tokio::test]
async fn jobs_can_be_validated_again_and_history_is_client_scoped() {
    let key = unique("revalidate");
    let done = execute(&Who::Client, granulate(&key, "learning_path", 2), None).await;
    let id = done.body["output"]["jobId"].as_i64().unwrap();
    let v = post(
        "/api/validate",
        &Who::Client,
        json!({"jobId": id, "validationLevel": 3, "threshold": 60}),
    )
    .await;
    assert_eq!(v.status, 200, "{}", v.body);
    assert_eq!(v.body["validationResult"]["level"], 3);
    assert_eq!(v.body["validationResult"]["passed"], true);
    assert_eq!(
        v.body["validationResult"]["criteria"]
            .as_array()
            .unwrap()
            .len(),
        5 + 4
    );
    let via_execute = execute(
        &Who::Client,
        json!({"action": "validate", "input": {"jobId": id}}),
        None,
    )
    .await;
    assert_eq!(via_execute.status, 200, "{}", via_execute.body);
    let history = get(
        &format!("/api/validation/history?job_id={id}"),
        &Who::Client,
    )
    .await;
    assert_eq!(history.body["count"], 2);
    assert_eq!(
        get(
            &format!("/api/validation/history?job_id={id}"),
            &Who::OtherClient
        )
        .await
        .body["count"],
        0
    );
    assert_error(
        &post("/api/validate", &Who::OtherClient, json!({"jobId": id})).await,
        404,
        "not_found",
    );
    assert_error(
        &post(
            "/api/validate",
            &Who::Client,
            json!({"jobId": id, "validationLevel": 7}),
        )
        .await,
        400,
        "invalid_field",
    );
}

// ---- economy and statistics from real data ---------------------------------------------

#[tokio::test]
async fn stats_and_economy_report_exactly_what_happened() {
    let client = unique("ledger");
    let who = Who::WorkerFor(client.clone());
    let (a, b, c) = (unique("ledger-a"), unique("ledger-b"), unique("ledger-c"));
    script(&b, json!([{"kind": "invalid"}])).await;
    script(
        &c,
        json!([{"kind": "status", "code": 400}, {"kind": "status", "code": 400}]),
    )
    .await;
    assert_eq!(
        execute(&who, granulate(&a, "quiz", 1), None).await.status,
        200
    );
    assert_eq!(
        execute(&who, granulate(&b, "quiz", 1), None).await.status,
        200
    );
    assert_eq!(
        execute(&who, granulate(&c, "quiz", 1), None).await.status,
        502
    );

    let stats = get("/api/stats", &who).await;
    assert_eq!(stats.status, 200, "{}", stats.body);
    assert_eq!(stats.body["scope"], client.as_str());
    assert_eq!(
        stats.body["jobs"],
        json!({"total": 3, "byStatus": {"completed": 2, "failed": 1, "processing": 0}})
    );
    assert_eq!(stats.body["successRate"], 0.6667);
    assert_eq!(stats.body["averageQualityScore"], 1);
    assert_eq!(stats.body["tokens"], json!({"input": 3000, "output": 1500}));
    assert!(
        approx(&stats.body["costUsd"], 3.0 * DEFAULT_CALL_COST),
        "{}",
        stats.body
    );

    let economy = get("/api/economy/stats?days=7", &who).await;
    assert_eq!(economy.status, 200, "{}", economy.body);
    let totals = &economy.body["totals"];
    assert_eq!(totals["attempts"], 5);
    assert_eq!(totals["jobs"], 3);
    assert_eq!(totals["tokens"]["total"], 4500);
    assert!(approx(&totals["costUsd"], 0.00135));
    assert!(approx(&economy.body["costPerJob"], 0.00045));
    let providers = economy.body["byProvider"].as_array().unwrap();
    assert_eq!(
        providers
            .iter()
            .map(|p| (
                p["provider"].as_str().unwrap(),
                p["attempts"].as_u64().unwrap()
            ))
            .collect::<Vec<_>>(),
        vec![("anthropic", 1), ("openai", 4)]
    );
    assert_eq!(providers[1]["successRate"], 0.5);

    // Another client's view does not include these.
    let other = get("/api/stats", &Who::WorkerFor(unique("empty"))).await;
    assert_eq!(other.body["jobs"]["total"], 0);
}

#[tokio::test]
async fn estimates_price_a_job_without_calling_a_model() {
    let r = post(
        "/api/economy/estimate",
        &Who::Client,
        json!({"templateName": "educational_course_basic", "granularityLevel": 3}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let e = &r.body["estimate"];
    assert_eq!(e["model"], "gpt-4o-mini");
    assert_eq!(e["expectedElements"], 50);
    let (input, output) = (
        e["tokens"]["input"].as_f64().unwrap(),
        e["tokens"]["output"].as_f64().unwrap(),
    );
    assert!(approx(
        &e["costUsd"],
        ((input * 0.15 + output * 0.60) / 1e6 * 1e6).round() / 1e6
    ));
    assert!(r.body["alternatives"]
        .as_array()
        .unwrap()
        .iter()
        .all(|a| a["costUsd"].as_f64().unwrap() < e["costUsd"].as_f64().unwrap()));
    let bigger = post(
        "/api/economy/estimate",
        &Who::Client,
        json!({"structureType": "course", "granularityLevel": 5}),
    )
    .await;
    assert!(
        bigger.body["estimate"]["tokens"]["output"]
            .as_f64()
            .unwrap()
            > output
    );
    assert_error(
        &post(
            "/api/economy/estimate",
            &Who::Client,
            json!({"granularityLevel": 3}),
        )
        .await,
        400,
        "invalid_field",
    );
}

#[tokio::test]
async fn pricing_is_dated_and_admin_analytics_come_from_recorded_jobs() {
    let p = get("/api/economy/pricing", &Who::Client).await;
    assert_eq!(p.status, 200);
    assert!(p.body["date"].is_string());
    assert_eq!(
        p.body["models"]["gpt-4o-mini"],
        json!({"input": 0.15, "output": 0.6, "cachedInput": 0.075})
    );
    assert!(
        execute(
            &Who::Client,
            granulate(&unique("analytics"), "novel", 1),
            None
        )
        .await
        .status
            == 200
    );
    let a = get("/api/admin/analytics", &Who::AdminSession).await;
    assert_eq!(a.status, 200, "{}", a.body);
    let novel = a.body["templates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["templateName"] == "three_act_novel")
        .expect("novel template row")
        .clone();
    assert!(novel["jobs"].as_u64().unwrap() >= 1);
    assert!(a.body["daily"]
        .as_array()
        .unwrap()
        .iter()
        .any(|d| d["jobs"].as_u64().unwrap() >= 1));
    assert!(a.body["providers"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["provider"] == "openai"));
    assert!(a.body["recommendations"].is_array());
    let s = get("/api/admin/stats", &Who::Worker).await;
    assert_eq!(s.status, 200);
    assert!(s.body["jobs"]["jobs"]["total"].as_u64().unwrap() >= 1);
}

#[tokio::test]
async fn analytics_count_a_templates_jobs_exactly() {
    let name = format!("t{}", unique("analytic").replace('-', "_"));
    assert_eq!(create_quiz_template(&name).await.status, 201);
    let (a, b, c) = (unique("an-a"), unique("an-b"), unique("an-c"));
    script(&b, json!([{"kind": "valid"}, {"kind": "review", "scores": [10, 10]}, {"kind": "valid"}, {"kind": "review", "scores": [10, 10]}])).await;
    script(
        &c,
        json!([{"kind": "status", "code": 400}, {"kind": "status", "code": 400}]),
    )
    .await;
    let job = |topic: &str, config: Value| json!({"input": {"topic": topic, "templateName": name}, "config": config});
    assert_eq!(
        execute(&Who::Client, job(&a, json!({})), None).await.status,
        200
    );
    let failed_validation = execute(
        &Who::Client,
        job(&b, json!({"validationLevel": 2, "validationThreshold": 80})),
        None,
    )
    .await;
    assert_eq!(
        failed_validation.body["output"]["validationResult"]["passed"],
        false
    );
    assert_eq!(
        execute(&Who::Client, job(&c, json!({})), None).await.status,
        502
    );

    let analytics = get("/api/admin/analytics?days=1", &Who::AdminSession).await;
    let row = analytics.body["templates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["templateName"] == name.as_str())
        .expect("the template's row")
        .clone();
    assert_eq!(
        (
            row["jobs"].clone(),
            row["completed"].clone(),
            row["failed"].clone()
        ),
        (json!(3), json!(2), json!(1)),
        "{row}"
    );
    assert_eq!(row["successRate"], 0.6667);
    assert_eq!(row["validationFailureRate"], 0.5);
    assert_eq!(row["averageQualityScore"], 1);
    // a: 1 call; b: 2 outlines + 2 reviews; c: two refused calls at no cost.
    assert!(
        approx(&row["averageCostUsd"], 5.0 * DEFAULT_CALL_COST / 3.0),
        "{row}"
    );
    assert_eq!(row["tokens"], 5 * 1500);
    let stats = get("/api/admin/stats?days=1", &Who::Worker).await;
    let same = stats.body["templates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["templateName"] == name.as_str())
        .expect("row")
        .clone();
    assert_eq!(same, row);
    assert_error(
        &get("/api/admin/analytics", &Who::Client).await,
        403,
        "forbidden",
    );
}
