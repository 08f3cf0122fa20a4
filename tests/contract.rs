//! The response contract (issue 15): camelCase everywhere, the Resource
//! Manager envelope for every action of `/api/execute` with its top-level
//! `model`, `structureReference.url`, `/help` naming fields as the API returns
//! them, meaningful efficiency ratings, and estimates of any priced model.
//! Run through `./test.sh` against the same stack as the behaviour tests (tests/auth.rs …).

mod support;

use serde_json::{json, Value};
use support::*;

/// Every object key in `v`, with its path (values are data and not checked).
fn keys(v: &Value, path: &str, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                out.push(format!("{path}.{k}"));
                keys(child, &format!("{path}.{k}"), out);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                keys(child, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

fn snake_keys(v: &Value) -> Vec<String> {
    let mut all = Vec::new();
    keys(v, "", &mut all);
    all.into_iter()
        .filter(|p| p.rsplit('.').next().is_some_and(|k| k.contains('_')))
        .collect()
}

#[tokio::test]
async fn stats_economy_and_analytics_answer_in_camel_case() {
    // The admin rows this test's quiz (run as dev-client) must grow.
    let row_of = |v: &Value, list: &str, key: &str, value: &str| {
        v[list]
            .as_array()
            .and_then(|rows| rows.iter().find(|r| r[key] == value))
            .cloned()
            .unwrap_or_else(|| json!({"jobs": 0, "completed": 0}))
    };
    let admin_before = get("/api/admin/stats", &Who::AdminSession).await.body;
    let analytics_before = get("/api/admin/analytics", &Who::AdminSession).await.body;
    // Data first, so every list has rows whose keys are checked.
    let key = unique("camel");
    let r = execute(&Who::Client, granulate(&key, "quiz", 1), None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    for (path, who) in [
        ("/api/stats", Who::Client),
        ("/api/economy/stats", Who::Client),
        ("/api/economy/stats", Who::Worker),
        ("/api/admin/stats", Who::AdminSession),
        ("/api/admin/analytics", Who::AdminSession),
        ("/api/ai-providers", Who::Client),
        ("/health", Who::Nobody),
    ] {
        let r = get(path, &who).await;
        assert!(r.status == 200, "{path}: {}", r.body);
        assert_eq!(snake_keys(&r.body), Vec::<String>::new(), "{path}");
    }
    let e = get("/api/economy/stats", &Who::Worker).await.body;
    let row = &e["byModel"][0];
    for field in [
        "provider",
        "model",
        "attempts",
        "tokensInput",
        "tokensOutput",
        "costUsd",
    ] {
        assert!(row.get(field).is_some(), "byModel lacks {field}: {row}");
    }
    let p = &e["byProvider"][0];
    for field in ["averageLatencyMs", "successRate", "successes"] {
        assert!(p.get(field).is_some(), "byProvider lacks {field}: {p}");
    }
    // The rows are the data, under their camelCase names: dev-client's and
    // the quiz type's grew by at least the quiz run above (the file's other
    // tests run jobs of their own meanwhile).
    let a = get("/api/admin/stats", &Who::AdminSession).await.body;
    let (was, now) = (
        row_of(&admin_before, "clients", "clientId", "dev-client"),
        row_of(&a, "clients", "clientId", "dev-client"),
    );
    assert!(
        now["jobs"].as_u64().unwrap() > was["jobs"].as_u64().unwrap(),
        "{was} -> {now}"
    );
    assert!(now["costUsd"].as_f64().unwrap() > 0.0, "{now}");
    let an = get("/api/admin/analytics", &Who::AdminSession).await.body;
    let (was, now) = (
        row_of(&analytics_before, "structureTypes", "structureType", "quiz"),
        row_of(&an, "structureTypes", "structureType", "quiz"),
    );
    for field in ["jobs", "completed"] {
        assert!(
            now[field].as_u64().unwrap() > was[field].as_u64().unwrap(),
            "quiz {field}: {was} -> {now}"
        );
    }
}

#[tokio::test]
async fn the_execute_envelope_names_its_model_at_the_top_level() {
    let key = unique("model");
    let r = execute(&Who::Client, granulate(&key, "course", 2), None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["model"], "gpt-4o-mini", "{}", r.body);
    assert_eq!(r.body["model"], r.body["output"]["model"]);
    for field in ["success", "output", "usage", "duration", "cost", "metadata"] {
        assert!(r.body.get(field).is_some(), "{field}");
    }
    assert!(r.body["usage"]["tokens"]["input"].as_u64().unwrap() > 0);
    // The provider and model are named once in output, once at the top for the RM.
    assert!(r.body["metadata"].get("model").is_none());
}

#[tokio::test]
async fn a_stored_structure_reference_carries_the_url_that_returns_it() {
    let key = unique("ref");
    script(
        &key,
        json!([{"kind": "valid", "counts": [12, 5, 4], "pad": 600}]),
    )
    .await;
    // One call, so the scripted answer is the outline (a granularity-5 course fans out under auto).
    let mut body = granulate(&key, "course", 5);
    body["config"] = json!({"strategy": "single"});
    let r = execute(&Who::Client, body, None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let out = &r.body["output"];
    let reference = &out["structureReference"];
    assert!(
        reference.is_object(),
        "a padded outline is stored out of line: {out}"
    );
    let url = reference["url"].as_str().unwrap();
    assert_eq!(url, format!("/api/jobs/{}/structure", out["jobId"]));
    let stored = get(url, &Who::Client).await;
    assert_eq!(stored.status, 200, "{}", stored.body);
    assert_eq!(stored.body["source"], reference["type"]);
    // What is stored is the outline the job returned: the scripted 12 x 5 x 4,
    // as the summary counts it, of the size the reference gives, and the same
    // as the copy rebuilt from the job's elements.
    let structure = &stored.body["structure"];
    let modules = structure["modules"].as_array().unwrap();
    let lessons: Vec<&Value> = modules
        .iter()
        .flat_map(|m| m["lessons"].as_array().unwrap())
        .collect();
    let activities: usize = lessons
        .iter()
        .map(|l| l["activities"].as_array().unwrap().len())
        .sum();
    assert_eq!(
        json!({"modules": modules.len(), "lessons": lessons.len(), "activities": activities}),
        out["summary"]["elementsByLevel"],
        "{}",
        out["summary"]
    );
    assert_eq!((modules.len(), lessons.len(), activities), (12, 60, 240));
    assert_eq!(
        reference["sizeBytes"],
        serde_json::to_string(structure).unwrap().len()
    );
    let rebuilt = get(&format!("{url}?source=elements"), &Who::Client).await;
    assert_eq!(rebuilt.status, 200, "{}", rebuilt.body);
    assert_eq!(rebuilt.body["source"], "elements");
    assert_eq!(&rebuilt.body["structure"], structure);
}

#[tokio::test]
async fn validate_and_estimate_actions_answer_with_the_resource_manager_envelope() {
    let key = unique("actions");
    let done = execute(&Who::Client, granulate(&key, "quiz", 1), None).await;
    assert_eq!(done.status, 200, "{}", done.body);
    let id = done.body["output"]["jobId"].as_i64().unwrap();
    let validated = execute(
        &Who::Client,
        json!({"action": "validate", "input": {"jobId": id, "validationLevel": 1}}),
        None,
    )
    .await;
    let estimated = execute(
        &Who::Client,
        json!({"action": "estimate", "input": {"structureType": "course", "granularityLevel": 3}}),
        None,
    )
    .await;
    for (name, r) in [("validate", &validated), ("estimate", &estimated)] {
        assert_eq!(r.status, 200, "{name}: {}", r.body);
        for field in ["success", "output", "usage", "duration", "cost", "metadata"] {
            assert!(
                r.body.get(field).is_some(),
                "{name} lacks {field}: {}",
                r.body
            );
        }
        assert_eq!(r.body["success"], true);
        assert!(r.body["usage"]["tokens"]["input"].is_u64(), "{name}");
        assert!(r.body["usage"]["tokens"]["output"].is_u64(), "{name}");
        assert!(r.body["duration"].is_u64(), "{name}");
        assert_eq!(r.body["metadata"]["action"], name);
        assert!(r.body["metadata"]["workerChain"].is_object(), "{name}");
    }
    assert_eq!(validated.body["output"]["jobId"], id);
    assert_eq!(validated.body["output"]["validationResult"]["level"], 1);
    // A level-1 validation calls no model: free and without tokens.
    assert_eq!(validated.body["cost"], 0.0);
    assert_eq!(estimated.body["cost"], 0.0, "an estimate calls no model");
    assert_eq!(
        estimated.body["model"],
        estimated.body["output"]["estimate"]["model"]
    );
    assert!(
        estimated.body["output"]["estimate"]["costUsd"]
            .as_f64()
            .unwrap()
            > 0.0
    );
}

#[tokio::test]
async fn help_names_fields_as_the_api_returns_them() {
    let help = get("/help", &Who::Nobody).await.body;
    let route = help["routes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["path"] == "/api/ai-providers")
        .unwrap()
        .clone();
    let text = route.to_string();
    assert!(
        text.contains("inDefaultChain") && !text.contains("inChain,"),
        "{text}"
    );
    let providers = get("/api/ai-providers", &Who::Client).await.body;
    for p in providers["providers"].as_array().unwrap() {
        assert!(p.get("inDefaultChain").is_some(), "{p}");
    }
}

#[tokio::test]
async fn efficiency_is_free_for_an_offline_job_and_instant_for_a_mock_answer() {
    let key = unique("eff");
    let offline = execute(
        &Who::Client,
        json!({"input": {"topic": key, "structureType": "quiz", "granularityLevel": 1}, "config": {"aiProvider": "offline"}}),
        None,
    )
    .await;
    assert_eq!(offline.status, 200, "{}", offline.body);
    assert_eq!(
        offline.body["metadata"]["efficiency"]["rating"], "free",
        "{}",
        offline.body["metadata"]
    );
    let mocked = execute(&Who::Client, granulate(&unique("eff"), "quiz", 1), None).await;
    assert_eq!(mocked.status, 200, "{}", mocked.body);
    // The mock answers 500 output tokens in milliseconds: the rating follows
    // the documented bands (over 1,000 generated tokens/s is "instant").
    let e = &mocked.body["metadata"]["efficiency"];
    let tps = e["outputTokensPerSecond"].as_f64().unwrap();
    let want = if tps > 1000.0 {
        "instant"
    } else if tps >= 40.0 {
        "high"
    } else if tps >= 15.0 {
        "medium"
    } else {
        "low"
    };
    assert_eq!(e["rating"], want, "{e}");
}

#[tokio::test]
async fn any_model_of_the_price_map_is_estimated_configured_or_not() {
    let pricing = get("/api/economy/pricing", &Who::Client).await.body;
    let models: Vec<String> = pricing["models"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert!(
        models.contains(&"local-llama".to_string()),
        "the stack declares local-llama"
    );
    for model in &models {
        let r = post(
            "/api/economy/estimate",
            &Who::Client,
            json!({"structureType": "quiz", "granularityLevel": 2, "aiModel": model}),
        )
        .await;
        assert_eq!(r.status, 200, "{model}: {}", r.body);
        assert_eq!(r.body["estimate"]["model"], model.as_str());
        assert!(
            r.body["estimate"]["costUsd"].is_number(),
            "{model}: {}",
            r.body
        );
    }
    // Workers AI is not configured in this stack, yet its model has a price.
    let r = post(
        "/api/economy/estimate",
        &Who::Client,
        json!({"structureType": "quiz", "aiProvider": "workers_ai"}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["estimate"]["provider"], "workers_ai");
    assert!(r.body["estimate"]["costUsd"].is_number(), "{}", r.body);
    let free = post(
        "/api/economy/estimate",
        &Who::Client,
        json!({"structureType": "quiz", "aiModel": "local-llama"}),
    )
    .await;
    assert_eq!(
        free.body["estimate"]["costUsd"], 0.0,
        "declared at 0 in PRICING"
    );
}

#[tokio::test]
async fn health_checks_the_database_schema_and_reports_skipped_providers_honestly() {
    let h = get("/health", &Who::Nobody).await;
    assert_eq!(h.status, 200, "{}", h.body);
    assert_eq!(h.body["checks"]["database"]["ok"], true);
    // The stack orders openai,anthropic and configures both: nothing skipped.
    let warnings = h.body["warnings"].to_string();
    assert!(!warnings.contains("skipped"), "{warnings}");
}

#[tokio::test]
async fn an_outline_beyond_the_inline_tier_travels_inline_beside_its_reference_up_to_512_kib() {
    // A KV-tier outline (25-128 KiB) and an R2-tier one under 512 KiB: the
    // Content Generator reads `structure` and ignores `structureReference.url`,
    // so both must carry the outline itself, equal to what is stored.
    for (pad, tier) in [(300, "kv"), (900, "r2")] {
        let key = unique("inline-beside");
        script(
            &key,
            json!([{"kind": "valid", "counts": [12, 5, 4], "pad": pad}]),
        )
        .await;
        let mut body = granulate(&key, "course", 5);
        body["config"] = json!({"strategy": "single"});
        let rid = unique("inline-beside-rid");
        let r = execute(&Who::Client, body.clone(), Some(&rid)).await;
        assert_eq!(r.status, 200, "{}", r.body);
        let out = &r.body["output"];
        assert_eq!(out["structureReference"]["type"], tier, "pad {pad}");
        let size = out["structureReference"]["sizeBytes"].as_u64().unwrap();
        assert!(size <= 512 * 1024, "{size}");
        let url = out["structureReference"]["url"].as_str().unwrap();
        let stored = get(url, &Who::Client).await;
        assert_eq!(stored.status, 200, "{}", stored.body);
        assert_eq!(out["structure"], stored.body["structure"], "{tier}");
        // A replay (the Resource Manager's retry) answers the same, the
        // outline read back from its tier (the stored row keeps a reference).
        let replay = execute(&Who::Client, body, Some(&rid)).await;
        assert_eq!(replay.status, 200, "{}", replay.body);
        assert_eq!(replay.header("Idempotent-Replay"), Some("true"));
        assert_eq!(replay.body["output"]["structure"], stored.body["structure"]);
        assert_eq!(
            replay.body["output"]["structureReference"],
            out["structureReference"]
        );
    }
    // Past 512 KiB only the reference travels.
    let key = unique("by-reference");
    script(
        &key,
        json!([{"kind": "valid", "counts": [12, 5, 4], "pad": 2200}]),
    )
    .await;
    let mut body = granulate(&key, "course", 5);
    body["config"] = json!({"strategy": "single"});
    let r = execute(&Who::Client, body, None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let out = &r.body["output"];
    assert_eq!(out["structureReference"]["type"], "r2");
    assert!(out["structureReference"]["sizeBytes"].as_u64().unwrap() > 512 * 1024);
    assert!(
        out.get("structure").is_none(),
        "a reference only past the cap"
    );
}
