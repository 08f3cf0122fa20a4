//! Parallel hierarchical generation (issue 13), end to end against `wrangler
//! dev` and the mock answering skeleton and branch calls in their wire
//! formats: the merged outline's shape, counts and titles; attempts labelled
//! per branch (and the skeleton and root calls); a failed or unusable branch retried alone while the others are
//! kept; the budget's worst case; async mode with progress counting branches
//! and the events stream; a replay identical to the first answer. Not timed:
//! `./bench.sh fanout` measures the speed-up.

mod support;

use reqwest::Method;
use serde_json::{json, Value};
use std::collections::HashSet;
use support::*;

/// A granularity-3 course (5 modules × 3 lessons × 2 activities) made as a
/// skeleton plus 5 branches.
fn course(topic: &str, config: Value) -> Value {
    let mut config = config;
    config["strategy"] = json!("fanout");
    json!({"input": {"topic": topic, "structureType": "course", "granularityLevel": 3}, "config": config})
}

fn job_id(r: &Reply) -> i64 {
    r.body["jobId"]
        .as_i64()
        .or(r.body["output"]["jobId"].as_i64())
        .unwrap_or_else(|| panic!("no job id in {}", r.body))
}

/// The mock's calls for a job, by part (`skeleton`, `branch 2/5`).
fn parts(calls: &[Value]) -> Vec<String> {
    calls
        .iter()
        .map(|c| c["part"].as_str().unwrap_or("single").to_string())
        .collect()
}

fn count(parts: &[String], part: &str) -> usize {
    parts.iter().filter(|p| p.as_str() == part).count()
}

#[tokio::test]
async fn a_fanned_out_course_is_merged_with_its_counts_distinct_titles_labelled_attempts_and_an_identical_replay(
) {
    let key = unique("fan-merge");
    let rid = unique("fan-merge-rid");
    let r = execute(&Who::Client, course(&key, json!({})), Some(&rid)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let out = &r.body["output"];
    assert_eq!(r.body["metadata"]["strategy"], "fanout");
    assert_eq!(r.body["metadata"]["branches"], 5);
    let modules = out["structure"]["modules"].as_array().unwrap();
    assert_eq!(modules.len(), 5);
    let mut titles = HashSet::new();
    for m in modules {
        assert!(titles.insert(m["title"].as_str().unwrap().to_string()));
        let lessons = m["lessons"].as_array().unwrap();
        assert_eq!(lessons.len(), 3, "{m}");
        for l in lessons {
            assert!(
                titles.insert(l["title"].as_str().unwrap().to_string()),
                "a lesson title repeats across branches: {}",
                l["title"]
            );
            assert_eq!(l["activities"].as_array().unwrap().len(), 2);
        }
    }
    assert_eq!(out["summary"]["totalElements"], 5 + 15 + 30);
    assert_eq!(out["qualityScore"], 1.0);
    // One skeleton call, then one per branch, each naming its own node, and the root call.
    let calls = mock_calls(&key).await;
    let seen = parts(&calls);
    assert_eq!(seen.len(), 7, "{seen:?}");
    assert_eq!(count(&seen, "skeleton"), 1);
    assert_eq!(count(&seen, "root"), 1);
    for i in 1..=5 {
        assert_eq!(count(&seen, &format!("branch {i}/5")), 1, "{seen:?}");
    }
    // Every call is an attempt of its own, labelled with its branch.
    let detail = get(&format!("/api/jobs/{}", job_id(&r)), &Who::Client).await;
    let attempts = detail.body["attempts"].as_array().unwrap();
    let labels: Vec<&str> = attempts
        .iter()
        .map(|a| a["branch"].as_str().unwrap())
        .collect();
    assert_eq!(
        labels,
        [
            "skeleton",
            "branch 1/5",
            "branch 2/5",
            "branch 3/5",
            "branch 4/5",
            "branch 5/5",
            "root"
        ]
    );
    assert!(attempts.iter().all(|a| a["status"] == "success"));
    assert!(
        approx(&r.body["cost"], 7.0 * DEFAULT_CALL_COST),
        "{}",
        r.body["cost"]
    );
    // The same request id: the stored answer, verbatim, and no new call.
    let again = execute(&Who::Client, course(&key, json!({})), Some(&rid)).await;
    assert_eq!(again.status, 200);
    assert_eq!(again.header("Idempotent-Replay"), Some("true"));
    assert_eq!(again.body, r.body);
    assert_eq!(mock_calls(&key).await.len(), 7);
}

#[tokio::test]
async fn a_three_act_novel_writes_each_act_in_four_parts_that_merge_into_whole_acts() {
    // An act (~3,200 output tokens) is the fan-out's longest call: its 7
    // chapters go to 4 calls (2 + 2 + 2 + 1), all streaming at once, and the
    // skeleton lists every chapter title (`fanout::parts_per_node`).
    let key = unique("fan-novel");
    let body = json!({"input": {"topic": key, "structureType": "novel", "granularityLevel": 5}, "config": {"strategy": "fanout"}});
    let r = execute(&Who::Client, body, None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["metadata"]["branches"], 12);
    // Large enough for KV: read it back through its reference.
    let stored = get(&format!("/api/jobs/{}/structure", job_id(&r)), &Who::Client).await;
    assert_eq!(stored.status, 200, "{}", stored.body);
    let acts = stored.body["structure"]["acts"].as_array().unwrap();
    assert_eq!(acts.len(), 3);
    let mut titles = HashSet::new();
    for act in acts {
        assert!(
            act["purpose"].as_str().is_some_and(|p| !p.is_empty()),
            "{act}"
        );
        let chapters = act["chapters"].as_array().unwrap();
        assert_eq!(chapters.len(), 7);
        for c in chapters {
            assert!(
                titles.insert(c["title"].as_str().unwrap().to_string()),
                "{}",
                c["title"]
            );
            assert_eq!(c["scenes"].as_array().unwrap().len(), 4);
        }
    }
    assert_eq!(r.body["output"]["qualityScore"], 1.0);
    let seen = parts(&mock_calls(&key).await);
    assert_eq!(seen.len(), 14, "{seen:?}");
    for act in 1..=3 {
        for part in 1..=4 {
            assert_eq!(
                count(&seen, &format!("branch {act}/3 part {part}/4")),
                1,
                "{seen:?}"
            );
        }
    }
    let detail = get(&format!("/api/jobs/{}", job_id(&r)), &Who::Client).await;
    let labels: Vec<&str> = detail.body["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["branch"].as_str().unwrap())
        .collect();
    assert_eq!(labels[0], "skeleton");
    assert_eq!(labels[2], "branch 1/3 part 2/4");
    assert_eq!(labels[13], "root");
}

#[tokio::test]
async fn a_failed_branch_and_an_unusable_one_are_each_retried_alone_while_the_others_are_kept() {
    let key = unique("fan-fail");
    script(
        &format!("{key} && Branch: 2 of"),
        json!([{"kind": "status", "code": 500}]),
    )
    .await;
    script(
        &format!("{key} && Branch: 4 of"),
        json!([{"kind": "invalid"}]),
    )
    .await;
    let r = execute(&Who::Client, course(&key, json!({})), None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.body["output"]["structure"]["modules"]
            .as_array()
            .unwrap()
            .len(),
        5
    );
    let calls = mock_calls(&key).await;
    let seen = parts(&calls);
    assert_eq!(seen.len(), 9, "{seen:?}");
    assert_eq!(count(&seen, "branch 2/5"), 2, "the 500 was retried");
    assert_eq!(
        count(&seen, "branch 4/5"),
        2,
        "the unusable answer was asked again"
    );
    for i in [1, 3, 5] {
        assert_eq!(
            count(&seen, &format!("branch {i}/5")),
            1,
            "branch {i} was kept: {seen:?}"
        );
    }
    let asked_again = calls
        .iter()
        .filter(|c| c["part"] == "branch 4/5")
        .nth(1)
        .unwrap();
    assert!(asked_again["user"]
        .as_str()
        .unwrap()
        .contains("could not be used"));
    let detail = get(&format!("/api/jobs/{}", job_id(&r)), &Who::Client).await;
    let of = |label: &str| -> Vec<String> {
        detail.body["attempts"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["branch"] == label)
            .map(|a| a["status"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(of("branch 2/5"), ["http_error", "success"]);
    assert_eq!(of("branch 4/5"), ["invalid_output", "success"]);
    assert_eq!(of("branch 3/5"), ["success"]);
}

#[tokio::test]
async fn the_fan_out_stays_within_its_budget_when_every_call_bills_its_limit() {
    let key = unique("fan-budget");
    let budget = 0.004;
    // Every call bills the worst case it was allowed: its whole prompt and max_tokens.
    let bill_max: Vec<Value> = (0..7)
        .map(|_| json!({"kind": "valid", "billMax": true}))
        .collect();
    script(&key, json!(bill_max)).await;
    let r = execute(
        &Who::Client,
        course(&key, json!({"maxCostUsd": budget})),
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["metadata"]["strategy"], "fanout");
    let cost = r.body["cost"].as_f64().unwrap();
    assert!(cost <= budget, "spent {cost} of {budget}");
    assert!(
        cost > budget * 0.6,
        "billMax bills what each share allowed: {cost}"
    );
    // Each branch's max_tokens was clamped to its share, below the unclamped 1,540.
    let calls = mock_calls(&key).await;
    let branch_limits: Vec<u64> = calls
        .iter()
        .filter(|c| c["part"].as_str().is_some_and(|p| p.starts_with("branch")))
        .map(|c| c["maxTokens"].as_u64().unwrap())
        .collect();
    assert_eq!(branch_limits.len(), 5);
    assert!(
        branch_limits.iter().all(|m| *m < 1_540),
        "{branch_limits:?}"
    );
}

#[tokio::test]
async fn a_budget_no_call_fits_is_refused_before_any_call_fan_out_or_not() {
    let key = unique("fan-nobudget");
    let r = execute(
        &Who::Client,
        course(&key, json!({"maxCostUsd": 0.0001})),
        None,
    )
    .await;
    assert_error(&r, 422, "budget_exceeded");
    assert!(mock_calls(&key).await.is_empty());
}

#[tokio::test]
async fn an_async_fan_out_at_model_speed_counts_branches_in_its_progress_and_events() {
    let key = unique("fan-async");
    // Every call streams what it writes at 150 tokens/s after 200 ms; branch 1 is quicker,
    // so the branches end apart and progress shows some done before all.
    let at = |tps: u64| json!({"kind": "valid", "measured": true, "tokensPerSecond": tps, "ttftMs": 200});
    script(
        &key,
        json!([at(150), at(150), at(150), at(150), at(150), at(150)]),
    )
    .await;
    script(&format!("{key} && Branch: 1 of"), json!([at(600)])).await;
    let body = {
        let mut b = course(&key, json!({}));
        b["action"] = json!("granulate");
        b
    };
    let r = send(
        Method::POST,
        "/api/execute",
        &Who::Client,
        Some(&body),
        &[("Prefer", "respond-async")],
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.body);
    let id = job_id(&r);
    let (status, _, events) = read_events(id, &Who::Client).await;
    assert_eq!(status, 200);
    let names: Vec<&str> = events.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(names.last(), Some(&"completed"), "{names:?}");
    let done: Vec<u64> = events
        .iter()
        .filter_map(|e| e.1["branches"]["done"].as_u64())
        .collect();
    assert!(
        events
            .iter()
            .all(|e| e.1["branches"].is_null() || e.1["branches"]["total"] == 5),
        "{events:?}"
    );
    assert!(
        done.windows(2).all(|w| w[0] <= w[1]),
        "branches done never go back: {done:?}"
    );
    assert_eq!(done.last(), Some(&5), "{done:?}");
    assert!(
        events
            .iter()
            .any(|e| e.1["stage"] == "generating" && e.1["branches"]["done"].as_u64() < Some(5)),
        "progress while the branches are written: {events:?}"
    );
    let s = get(&format!("/api/jobs/{id}/status"), &Who::Client).await;
    assert_eq!(s.body["branches"], json!({"done": 5, "total": 5}));
    assert_eq!(s.body["status"], "completed");
    // Usage is what the mock served: measured from the text, call by call.
    let served: u64 = mock_calls(&key)
        .await
        .iter()
        .map(|c| c["usage"]["output"].as_u64().unwrap_or(0))
        .sum();
    let result = get(&format!("/api/jobs/{id}"), &Who::Client).await;
    assert_eq!(
        result.body["job"]["tokensUsed"]["output"].as_u64(),
        Some(served),
        "{}",
        result.body["job"]
    );
}

#[tokio::test]
async fn auto_makes_a_small_outline_in_one_call() {
    let key = unique("fan-auto");
    let r = execute(&Who::Client, granulate(&key, "course", 2), None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["metadata"]["strategy"], "single");
    let calls = mock_calls(&key).await;
    assert_eq!(parts(&calls), ["single"]);
}

/// Poll a running job's structure until it shows the branches at
/// `positions` (each poll checked as a partial answer), or panic if the job
/// ends first. Bounded by polls, not time.
async fn partial_until(id: i64, positions: &[u64]) -> Value {
    for _ in 0..600 {
        let s = get(&format!("/api/jobs/{id}/structure"), &Who::Client).await;
        assert_eq!(s.status, 200, "{}", s.body);
        assert_eq!(s.body["complete"], false, "the job ended first: {}", s.body);
        assert_eq!(s.body["source"], "partial");
        assert!(s.body.get("structure").is_none(), "{}", s.body);
        let seen: Vec<u64> = s.body["branches"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["position"].as_u64().unwrap())
            .collect();
        assert!(
            seen.windows(2).all(|w| w[0] < w[1]),
            "in skeleton order: {seen:?}"
        );
        if seen == positions {
            return s.body;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("job {id} never showed branches {positions:?}");
}

#[tokio::test]
async fn a_running_fan_out_shows_each_branch_once_final_and_a_slow_or_unusable_one_only_when_it_is()
{
    let key = unique("fan-partial");
    let at = |tps: u64| json!({"kind": "valid", "measured": true, "tokensPerSecond": tps, "ttftMs": 200});
    script(
        &key,
        json!([at(400), at(400), at(400), at(400), at(400), at(400)]),
    )
    .await;
    // Branch 3 answers something unusable first (asked again), then slowly.
    script(
        &format!("{key} && Branch: 3 of"),
        json!([{"kind": "invalid"}, at(30)]),
    )
    .await;
    let mut body = course(&key, json!({}));
    body["action"] = json!("granulate");
    let r = send(
        Method::POST,
        "/api/execute",
        &Who::Client,
        Some(&body),
        &[("Prefer", "respond-async")],
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.body);
    let id = job_id(&r);
    // While branch 3 is written, the others are final and shown, in order;
    // its unusable answer is not.
    let partial = partial_until(id, &[1, 2, 4, 5]).await;
    assert_eq!(partial["structureType"], "course");
    for b in partial["branches"].as_array().unwrap() {
        assert_eq!(b["total"], 5);
        assert_eq!(b["title"], b["node"]["title"]);
        assert_eq!(b["node"]["lessons"].as_array().unwrap().len(), 3, "{b}");
    }
    let status = get(&format!("/api/jobs/{id}/status"), &Who::Client).await;
    assert_eq!(status.body["status"], "processing");
    // Another tenant's partial structure is a 404, like a job that does not exist.
    let other = get(&format!("/api/jobs/{id}/structure"), &Who::OtherClient).await;
    assert_error(&other, 404, "not_found");
    // A stream opened late gets the branches already final first, then
    // branch 3 once final, each once, before the job's end.
    let (status, _, events) = read_events(id, &Who::Client).await;
    assert_eq!(status, 200);
    let names: Vec<&str> = events.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(names.last(), Some(&"completed"), "{names:?}");
    let branches: Vec<&Value> = events
        .iter()
        .filter(|e| e.0 == "branch")
        .map(|e| &e.1)
        .collect();
    let order: Vec<u64> = branches
        .iter()
        .map(|b| b["position"].as_u64().unwrap())
        .collect();
    assert_eq!(order.len(), 5, "{names:?}");
    let mut early = order[..4].to_vec();
    early.sort_unstable();
    assert_eq!((early, order[4]), (vec![1, 2, 4, 5], 3), "{order:?}");
    // The finished outline is what the branches showed, nothing renamed.
    let done = get(&format!("/api/jobs/{id}/structure"), &Who::Client).await;
    assert_eq!(done.status, 200);
    assert_eq!(done.body["complete"], true);
    assert!(done.body.get("branches").is_none());
    let modules = done.body["structure"]["modules"].as_array().unwrap();
    for b in &branches {
        let at = b["position"].as_u64().unwrap() as usize - 1;
        assert_eq!(b["node"], modules[at], "branch {at}");
        assert_eq!(b["title"], modules[at]["title"]);
    }
    for b in partial["branches"].as_array().unwrap() {
        let at = b["position"].as_u64().unwrap() as usize - 1;
        assert_eq!(b["node"], modules[at]);
    }
}

/// A round to the micro-dollar, as the worker records each attempt's cost.
fn usd(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

/// A granularity-5 course fanned out with the mock's prompt cache on for
/// this job's calls (`promptCaching` steps). Its skeleton (scripted) has
/// long module titles, so the context its branch calls share passes the
/// providers' 1,024-token minimum (a default skeleton's few hundred tokens do
/// not: docs/performance.md). Returns the reply, the job's attempts and the
/// mock's calls.
async fn cached_fan_out(provider: &str, model: &str) -> (Reply, Vec<Value>, Vec<Value>) {
    let key = unique(&format!("fan-cache-{provider}"));
    let modules: Vec<Value> = (1..=8)
        .map(|i| {
            let long = "on how every branch call shares its context with the others ".repeat(9);
            json!({"title": format!("Module {i} {long}"), "summary": format!("what module {i} covers")})
        })
        .collect();
    let skeleton = json!({"title": format!("{key} course"), "modules": modules});
    let mut steps = vec![json!({"kind": "raw", "text": skeleton.to_string()})];
    steps.extend((0..9).map(|_| json!({"kind": "valid", "measured": true, "promptCaching": true})));
    script(&key, json!(steps)).await;
    let body = json!({"input": {"topic": key, "structureType": "course", "granularityLevel": 5},
        "config": {"strategy": "fanout", "aiProvider": provider, "aiModel": model}});
    let r = execute(&Who::Client, body, None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["metadata"]["strategy"], "fanout");
    let detail = get(&format!("/api/jobs/{}", job_id(&r)), &Who::Client).await;
    let attempts = detail.body["attempts"].as_array().unwrap().clone();
    (r, attempts, mock_calls(&key).await)
}

/// Each attempt's tokens are the mock's for the same part, and the job's
/// cost and cached tokens are their sums.
fn assert_attempts_record_what_the_mock_reported(
    r: &Reply,
    attempts: &[Value],
    calls: &[Value],
    cost_of: &dyn Fn(&Value) -> f64,
) {
    assert_eq!(attempts.len(), calls.len(), "{attempts:?}");
    assert!(attempts.iter().all(|a| a["status"] == "success"));
    let (mut cached, mut cost) = (0, 0.0);
    for a in attempts {
        let part = a["branch"].as_str().unwrap();
        let call = calls
            .iter()
            .find(|c| c["part"] == part)
            .unwrap_or_else(|| panic!("no mock call for {part}"));
        let usage = &call["usage"];
        assert_eq!(
            a["tokens"]["cached"], usage["cached"],
            "{part}: {a} vs {call}"
        );
        assert_eq!(a["tokens"]["input"], usage["input"], "{part}");
        assert_eq!(a["tokens"]["output"], usage["output"], "{part}");
        let want = usd(cost_of(usage));
        assert!(
            approx(&a["costUsd"], want),
            "{part}: {} vs {want}",
            a["costUsd"]
        );
        cached += usage["cached"].as_u64().unwrap();
        cost += want;
    }
    assert!(cached > 0, "nothing was cached: {calls:?}");
    assert_eq!(r.body["usage"]["tokens"]["cached"], cached);
    assert!(
        approx(&r.body["cost"], usd(cost)),
        "{} vs {cost}",
        r.body["cost"]
    );
}

#[tokio::test]
async fn a_fanned_out_job_records_the_prefix_its_branches_share_as_cached_and_bills_it_at_the_cached_price(
) {
    let (r, attempts, calls) = cached_fan_out("openai", "gpt-4o-mini").await;
    // gpt-4o-mini: 0.15 input, 0.075 cached, 0.60 output per 1M tokens.
    let cost_of = |u: &Value| {
        let (input, cached, output) = (
            u["input"].as_f64().unwrap(),
            u["cached"].as_f64().unwrap(),
            u["output"].as_f64().unwrap(),
        );
        ((input - cached) * 0.15 + cached * 0.075 + output * 0.60) / 1e6
    };
    assert_attempts_record_what_the_mock_reported(&r, &attempts, &calls, &cost_of);
    // Every branch call was sent under the job's cache key; the branches
    // after the first read what it left, in 128-token steps from 1,024.
    let key = format!("granulator-job-{}", job_id(&r));
    assert!(
        calls.iter().all(|c| c["promptCacheKey"] == key.as_str()),
        "{calls:?}"
    );
    let branch_reads: Vec<u64> = calls
        .iter()
        .filter(|c| c["part"].as_str().unwrap().starts_with("branch"))
        .map(|c| c["usage"]["cached"].as_u64().unwrap())
        .collect();
    assert_eq!(branch_reads.len(), 8);
    assert_eq!(
        branch_reads.iter().filter(|n| **n == 0).count(),
        1,
        "{branch_reads:?}"
    );
    assert!(
        branch_reads
            .iter()
            .all(|n| *n == 0 || (*n >= 1024 && (*n - 1024) % 128 == 0)),
        "{branch_reads:?}"
    );
}

#[tokio::test]
async fn on_the_anthropic_wire_the_shared_prefix_is_marked_written_once_then_read_and_billed_so() {
    let (r, attempts, calls) = cached_fan_out("anthropic", "claude-sonnet-4-5").await;
    // Sonnet 4.5: 3.00 input, 0.30 cache read, 3.75 cache write, 15.00 output per 1M tokens.
    let cost_of = |u: &Value| {
        let n = |k: &str| u[k].as_f64().unwrap_or(0.0);
        let fresh = n("input") - n("cached") - n("cacheWrite");
        (fresh * 3.0 + n("cached") * 0.30 + n("cacheWrite") * 3.75 + n("output") * 15.0) / 1e6
    };
    assert_attempts_record_what_the_mock_reported(&r, &attempts, &calls, &cost_of);
    // The system prompt and the shared part of every call carry a breakpoint.
    assert!(
        calls
            .iter()
            .all(|c| c["cacheBreakpoints"] == 2 || c["part"] == "skeleton"),
        "{calls:?}"
    );
    let branches: Vec<&Value> = calls
        .iter()
        .filter(|c| c["part"].as_str().unwrap().starts_with("branch"))
        .collect();
    assert_eq!(branches.len(), 8);
    assert!(branches.iter().all(|c| c["cacheBreakpoints"] == 2));
    let written: Vec<u64> = branches
        .iter()
        .map(|c| c["usage"]["cacheWrite"].as_u64().unwrap_or(0))
        .collect();
    let read: Vec<u64> = branches
        .iter()
        .map(|c| c["usage"]["cached"].as_u64().unwrap())
        .collect();
    // One branch writes the shared prefix, the other seven read all of it.
    assert_eq!(written.iter().filter(|n| **n > 0).count(), 1, "{written:?}");
    let prefix = written.iter().sum::<u64>();
    assert!(prefix >= 1024, "{written:?}");
    assert_eq!(read.iter().filter(|n| **n == prefix).count(), 7, "{read:?}");
}

/// The mock's call for `part`, the `nth` (from 0) if it was called again.
fn call_of<'c>(calls: &'c [Value], part: &str, nth: usize) -> &'c Value {
    calls
        .iter()
        .filter(|c| c["part"] == part)
        .nth(nth)
        .unwrap_or_else(|| panic!("no call {nth} of {part}: {:?}", parts(calls)))
}

fn seq(call: &Value, field: &str) -> u64 {
    call[field]
        .as_u64()
        .unwrap_or_else(|| panic!("no {field} in {call}"))
}

/// Every attempt's tokens are what the mock reported for its call (calls of
/// one part in order), and the job's usage and cost their sums at
/// gpt-4o-mini's prices.
fn assert_usage_is_what_the_mock_served(r: &Reply, attempts: &[Value], calls: &[Value]) {
    assert_eq!(attempts.len(), calls.len(), "{attempts:?}");
    let (mut input, mut output, mut cost) = (0, 0, 0.0);
    for (k, a) in attempts.iter().enumerate() {
        let part = a["branch"].as_str().unwrap();
        let nth = attempts[..k].iter().filter(|b| b["branch"] == part).count();
        let usage = &call_of(calls, part, nth)["usage"];
        assert_eq!(a["tokens"]["input"], usage["input"], "{part}: {a}");
        assert_eq!(a["tokens"]["output"], usage["output"], "{part}: {a}");
        let want =
            usd(usage["input"].as_f64().unwrap() * 0.15e-6
                + usage["output"].as_f64().unwrap() * 0.6e-6);
        assert!(approx(&a["costUsd"], want), "{part}: {a} vs {want}");
        input += usage["input"].as_u64().unwrap();
        output += usage["output"].as_u64().unwrap();
        cost += want;
    }
    assert_eq!(r.body["usage"]["tokens"]["input"], input);
    assert_eq!(r.body["usage"]["tokens"]["output"], output);
    assert!(
        approx(&r.body["cost"], usd(cost)),
        "{} vs {cost}",
        r.body["cost"]
    );
}

/// The most of `calls` streaming at once, from the mock's counter of starts
/// and ends (an answer's end is when the mock has sent it all: never after
/// the worker has read it).
fn most_at_once(calls: &[Value]) -> usize {
    most_between(calls, "endSeq")
}

/// The most calls at once that had reached the mock and were still waiting
/// for their response's headers.
fn most_waiting_for_headers(calls: &[Value]) -> usize {
    most_between(calls, "headersSeq")
}

fn most_between(calls: &[Value], until: &str) -> usize {
    let mut events: Vec<(u64, i64)> = calls
        .iter()
        .flat_map(|c| [(seq(c, "startSeq"), 1), (seq(c, until), -1)])
        .collect();
    events.sort_unstable();
    let (mut now, mut most) = (0i64, 0i64);
    for (_, step) in events {
        now += step;
        most = most.max(now);
    }
    most as usize
}

#[tokio::test]
async fn branch_calls_begin_while_the_skeleton_still_streams_all_stream_at_once_at_most_six_waiting_for_headers_and_usage_is_what_the_mock_served(
) {
    let key = unique("fan-pipe");
    // A granularity-5 course: 8 modules, more branches than the platform's
    // six connections waiting for headers. Every call streams what it
    // writes, at a model's pace; the skeleton (every title, then a summary
    // each, then the outline's title) at 400 tokens/s takes about a second,
    // its summaries all in within ~0.4 s. A branch's provider sends its
    // headers with its first token, 0.8 s after the request (the stack's
    // attempt timeout is 1.5 s): more than six of the branches' requests
    // would be waiting for headers at once.
    let at = |tps: u64, ttft: u64| {
        json!({"kind": "valid", "measured": true, "tokensPerSecond": tps,
        "ttftMs": ttft, "headersAtFirstToken": true})
    };
    script(&format!("{key} && Part: skeleton."), json!([at(400, 200)])).await;
    script(&key, Value::Array((0..9).map(|_| at(200, 800)).collect())).await;
    let body = json!({"input": {"topic": key, "structureType": "course", "granularityLevel": 5},
        "config": {"strategy": "fanout"}});
    let r = execute(&Who::Client, body, None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["metadata"]["strategy"], "fanout");
    assert_eq!(r.body["metadata"]["branches"], 8);
    assert_eq!(r.body["output"]["qualityScore"], 1.0);
    let calls = mock_calls(&key).await;
    assert_eq!(calls.len(), 10, "{:?}", parts(&calls));
    // Branch 1's request reached the mock before the skeleton's answer was
    // all sent: it started from the skeleton's stream, not its end.
    let skeleton_end = seq(call_of(&calls, "skeleton", 0), "endSeq");
    assert!(
        seq(call_of(&calls, "branch 1/8", 0), "startSeq") < skeleton_end,
        "{calls:?}"
    );
    // The root call, told the outline's title (written last), after it.
    assert!(seq(call_of(&calls, "root", 0), "startSeq") > skeleton_end);
    // Every branch streamed at once with the skeleton (the platform limits
    // only connections waiting for headers), and the worker held the
    // seventh request until a sixth had its headers (`ai::gate`):
    // `wrangler dev` itself would have sent all eight.
    assert!(most_at_once(&calls) >= 9, "{calls:?}");
    assert_eq!(most_waiting_for_headers(&calls), 6, "{calls:?}");
    // The ledger as before: one successful attempt per call, each billed
    // exactly what the mock served.
    let detail = get(&format!("/api/jobs/{}", job_id(&r)), &Who::Client).await;
    let attempts = detail.body["attempts"].as_array().unwrap();
    let labels: Vec<&str> = attempts
        .iter()
        .map(|a| a["branch"].as_str().unwrap())
        .collect();
    let mut want = vec!["skeleton".to_string()];
    want.extend((1..=8).map(|i| format!("branch {i}/8")));
    want.push("root".into());
    assert_eq!(labels, want);
    assert!(attempts.iter().all(|a| a["status"] == "success"));
    assert_usage_is_what_the_mock_served(&r, attempts, &calls);
}

#[tokio::test]
async fn branches_started_from_a_skeleton_that_then_fails_its_checks_are_dropped_and_billed_and_the_skeleton_is_asked_again(
) {
    let key = unique("fan-pipe-bad");
    // The first skeleton streams five distinct titles, then only four
    // summaries: branches 1-4 start (and are answered at once) before it
    // ends and fails its checks; the chain asks again, as it always has.
    let titles: Vec<Value> = (1..=5)
        .map(|i| json!({"title": format!("Early module {i}")}))
        .collect();
    let summaries: Vec<Value> = (1..=4)
        .map(|i| json!({"summary": format!("what early module {i} covers")}))
        .collect();
    let text = json!({"modules": titles, "summaries": summaries, "title": "Early"}).to_string();
    script(
        &format!("{key} && Part: skeleton."),
        json!([{"kind": "raw", "text": text, "tokensPerSecond": 100, "ttftMs": 100}]),
    )
    .await;
    let r = execute(&Who::Client, course(&key, json!({})), None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["output"]["qualityScore"], 1.0);
    let modules = r.body["output"]["structure"]["modules"].as_array().unwrap();
    assert_eq!(modules.len(), 5);
    assert!(
        modules
            .iter()
            .all(|m| !m["title"].as_str().unwrap().starts_with("Early module")),
        "nothing of the failed skeleton is kept: {modules:?}"
    );
    let calls = mock_calls(&key).await;
    let seen = parts(&calls);
    assert_eq!(count(&seen, "skeleton"), 2, "{seen:?}");
    for i in 1..=4 {
        assert_eq!(count(&seen, &format!("branch {i}/5")), 2, "{seen:?}");
    }
    assert_eq!(count(&seen, "branch 5/5"), 1, "{seen:?}");
    assert_eq!(count(&seen, "root"), 1, "{seen:?}");
    let first_skeleton_end = seq(call_of(&calls, "skeleton", 0), "endSeq");
    assert!(seq(call_of(&calls, "branch 1/5", 0), "startSeq") < first_skeleton_end);
    assert!(call_of(&calls, "branch 1/5", 0)["user"]
        .as_str()
        .unwrap()
        .contains("Early module 1"));
    // Every call is an attempt, the dropped ones marked so and billed.
    let detail = get(&format!("/api/jobs/{}", job_id(&r)), &Who::Client).await;
    let attempts = detail.body["attempts"].as_array().unwrap();
    let dropped: Vec<&str> = attempts
        .iter()
        .filter(|a| {
            a["error"]
                .as_str()
                .is_some_and(|e| e.starts_with("dropped:"))
        })
        .map(|a| a["branch"].as_str().unwrap())
        .collect();
    assert_eq!(
        dropped,
        ["branch 1/5", "branch 2/5", "branch 3/5", "branch 4/5"],
        "{attempts:?}"
    );
    assert_usage_is_what_the_mock_served(&r, attempts, &calls);
}
