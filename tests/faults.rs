//! Provider faults end to end, each scripted at the mock: fenced and prose
//! answers, invalid JSON asked again, wrong shapes and truncation, 429 with
//! `Retry-After`, 5xx then the next provider, bad keys and refusals, hangs,
//! every provider failing, the budget, the request deadline (504, the job goes
//! on), older Claude models, a fan-out over the provider's concurrent-request
//! limit per key (backed off, completed, billed once).
//! Run through `./test.sh` (against the stack it starts); each test uses its
//! own topic marker (and, where it counts rows, its own client), so tests run
//! in parallel.

mod support;

use serde_json::{json, Value};
use support::*;

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

// ---- rate limits per key at the provider -----------------------------------------

#[tokio::test]
async fn a_fan_out_over_the_provider_s_concurrent_limit_backs_off_and_completes_billed_once_with_every_429_recorded(
) {
    let key = unique("fan-ratelimit");
    let tenant = unique("fan-ratelimit-tenant");
    // Every key the worker uses may run 2 of this job's calls at once (each
    // key its own bucket); over that the mock answers 429 with Retry-After.
    mock_limit(json!({"match": key, "concurrent": 2})).await;
    // Each call streams what it writes at 150 tokens/s: a slot is held for seconds.
    let at = json!({"kind": "valid", "measured": true, "tokensPerSecond": 150, "ttftMs": 200});
    script(&key, json!(vec![at; 16])).await;
    let body = json!({"input": {"topic": key, "structureType": "course", "granularityLevel": 4},
        "config": {"strategy": "fanout"}});
    let r = execute(&Who::WorkerFor(tenant.clone()), body, None).await;
    assert_eq!(
        r.status, 200,
        "the fan-out backs off, not fails: {}",
        r.body
    );
    assert_eq!(r.body["metadata"]["strategy"], "fanout");
    let branches = r.body["metadata"]["branches"].as_u64().unwrap();
    assert!(
        branches >= 5,
        "more calls at once than the limit: {branches}"
    );
    // The limit held and it bit: never more than 2 in flight, some refused.
    let limits = mock_limits().await;
    let rule = limits["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["rule"]["match"] == key.as_str())
        .unwrap();
    for bucket in rule["buckets"].as_array().unwrap() {
        assert!(bucket["peakInFlight"].as_u64() <= Some(2), "{bucket}");
    }
    let calls = mock_calls(&key).await;
    let refused = calls.iter().filter(|c| c["status"] == 429).count();
    assert!(refused > 0, "the limit never bit: {calls:?}");
    // Backed off at the same provider: every answer came from the first one.
    assert!(
        calls
            .iter()
            .all(|c| c["provider"] == "openai" && (c["status"] == 200 || c["status"] == 429)),
        "{calls:?}"
    );
    // Every call is an attempt, the 429s included, part by part in order.
    let id = r.body["output"]["jobId"].as_i64().unwrap();
    let detail = get(&format!("/api/jobs/{id}"), &Who::WorkerFor(tenant.clone())).await;
    let attempts = detail.body["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), calls.len(), "{attempts:?}");
    let parts: std::collections::BTreeSet<&str> =
        calls.iter().map(|c| c["part"].as_str().unwrap()).collect();
    for part in parts {
        let at_mock: Vec<(u64, u64, u64)> = calls
            .iter()
            .filter(|c| c["part"] == part)
            .map(|c| {
                let u = &c["usage"];
                (
                    c["status"].as_u64().unwrap(),
                    u["input"].as_u64().unwrap_or(0),
                    u["output"].as_u64().unwrap_or(0),
                )
            })
            .collect();
        let recorded: Vec<(u64, u64, u64)> = attempts
            .iter()
            .filter(|a| a["branch"] == part)
            .map(|a| {
                let t = &a["tokens"];
                (
                    a["httpStatus"].as_u64().unwrap(),
                    t["input"].as_u64().unwrap(),
                    t["output"].as_u64().unwrap(),
                )
            })
            .collect();
        assert_eq!(recorded, at_mock, "{part}");
    }
    for a in attempts.iter().filter(|a| a["httpStatus"] == 429) {
        assert_eq!(a["status"], "http_error", "{a}");
        assert_eq!(a["costUsd"], 0.0, "a refused call costs nothing: {a}");
    }
    // Tokens and cost are what the mock served (gpt-4o-mini: 0.15 in, 0.60 out per 1M).
    let served = |k: &str| -> u64 {
        calls
            .iter()
            .map(|c| c["usage"][k].as_u64().unwrap_or(0))
            .sum()
    };
    assert_eq!(r.body["usage"]["tokens"]["input"], served("input"));
    assert_eq!(r.body["usage"]["tokens"]["output"], served("output"));
    let cost: f64 = calls
        .iter()
        .filter(|c| c["status"] == 200)
        .map(|c| {
            let u = &c["usage"];
            let (i, o) = (u["input"].as_f64().unwrap(), u["output"].as_f64().unwrap());
            ((i * 0.15 + o * 0.60) / 1e6 * 1e6).round() / 1e6
        })
        .sum();
    assert!(
        approx(&r.body["cost"], cost),
        "{} vs {cost}",
        r.body["cost"]
    );
    // Billed once: the tenant's day booked the job's cost, nothing left reserved.
    let (spent, reserved, open) = spend_of(&tenant, id);
    assert!((spent - cost).abs() < 1e-9, "booked {spent}, billed {cost}");
    assert_eq!((reserved, open), (0.0, 0), "a reservation left open");
}

// ---- answers too large to read ----------------------------------------------------

async fn flood_bytes_sent() -> u64 {
    let totals: Value = http()
        .get(format!("{}/__mock/totals", mock()))
        .send()
        .await
        .expect("mock")
        .json()
        .await
        .expect("json");
    totals["floodBytesSent"].as_u64().expect("floodBytesSent")
}

#[tokio::test]
async fn a_50_mb_answer_is_cut_at_the_call_s_byte_cap_and_the_worker_keeps_serving() {
    const FLOOD: usize = 50 * 1024 * 1024;
    for plain in [true, false] {
        let key = unique("flood");
        script(
            &key,
            json!([{"kind": "flood", "bytes": FLOOD, "plain": plain}, {"kind": "valid"}]),
        )
        .await;
        let sent_before = flood_bytes_sent().await;
        let started = std::time::Instant::now();
        let job = tokio::spawn(async move {
            let r = execute(&Who::Client, granulate(&key, "quiz", 1), None).await;
            (r, mock_calls(&key).await)
        });
        // While the flood is being read, the worker answers others as usual.
        let mut others = Vec::new();
        while !job.is_finished() && others.len() < 20 {
            let t = std::time::Instant::now();
            let r = get("/", &Who::Nobody).await;
            assert_eq!(r.status, 200, "{}", r.body);
            others.push(t.elapsed().as_millis());
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        let (r, calls) = job.await.unwrap();
        let took = started.elapsed();
        assert_eq!(r.status, 200, "asked again after the flood: {}", r.body);
        let read = flood_bytes_sent().await - sent_before;
        let max_tokens = calls[0]["maxTokens"].as_u64().unwrap() as usize;
        let cap = max_tokens * 1024 + 64 * 1024;
        eprintln!(
            "flood ({}): {read} of {FLOOD} bytes sent before the worker stopped (cap {cap}), job {} ms, GET / while flooded: {others:?} ms",
            if plain { "one body" } else { "stream" },
            took.as_millis()
        );
        assert!(
            read < (cap + 16 * 1024 * 1024) as u64 && read < FLOOD as u64 / 2,
            "read {read} bytes of a {FLOOD}-byte answer with a {cap}-byte cap"
        );
        let id = r.body["output"]["jobId"].as_i64().unwrap();
        let job = get(&format!("/api/jobs/{id}"), &Who::Client).await;
        let first = &job.body["attempts"][0];
        assert_eq!(first["status"], "truncated", "{}", job.body);
        assert!(
            first["error"].as_str().unwrap().contains("passed"),
            "{first}"
        );
        assert_eq!(
            first["tokens"]["output"].as_u64(),
            Some(max_tokens as u64),
            "an unread answer counts at its worst case: {first}"
        );
    }
    // And after both, as before.
    assert_eq!(get("/health", &Who::Nobody).await.status, 200);
}
