//! Jobs at model speed, end to end against `wrangler dev` with its local
//! queue and the mock streaming at a real token rate: async execute (202),
//! jobs that outlive their request (504 then replay), joining instead of 409,
//! idempotency keys bound to their request (422), streamed progress, the
//! status route and the events stream, truncation and stalls while
//! streaming, exact usage, and the dead-letter queue.

mod support;

use reqwest::Method;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use support::*;

/// A valid answer streamed at `tps` tokens a second: `output` tokens take output/tps s.
fn slow(output: u64, tps: u64) -> Value {
    json!({"kind": "valid", "usage": {"input": 1000, "output": output}, "tokensPerSecond": tps, "ttftMs": 200})
}

fn quiz(topic: &str) -> Value {
    json!({"input": {"topic": topic, "structureType": "quiz", "granularityLevel": 1}})
}

/// `POST /api/execute` with extra headers; the action is `granulate` unless named.
async fn execute_with(who: &Who, body: &Value, headers: &[(&str, &str)]) -> Reply {
    let mut body = body.clone();
    if let Some(map) = body.as_object_mut() {
        map.entry("action").or_insert(json!("granulate"));
    }
    send(Method::POST, "/api/execute", who, Some(&body), headers).await
}

fn job_id(r: &Reply) -> i64 {
    r.body["jobId"]
        .as_i64()
        .or(r.body["output"]["jobId"].as_i64())
        .or(r.body["details"]["jobId"].as_i64())
        .unwrap_or_else(|| panic!("no job id in {}", r.body))
}

/// Poll the status route until the job ends; every status seen, in order.
async fn until_done(id: i64, who: &Who) -> Vec<Value> {
    let started = Instant::now();
    let mut seen = Vec::new();
    loop {
        let s = get(&format!("/api/jobs/{id}/status"), who).await;
        assert_eq!(s.status, 200, "{}", s.body);
        let done = s.body["status"] != "processing";
        seen.push(s.body);
        if done {
            return seen;
        }
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "job {id} still running: {:?}",
            seen.last()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn outline_calls(key: &str) -> usize {
    mock_calls(key)
        .await
        .iter()
        .filter(|c| c["kind"] != "review")
        .count()
}

#[tokio::test]
async fn prefer_respond_async_answers_202_with_links_and_the_queue_completes_the_job() {
    let key = unique("async202");
    let rid = unique("rid");
    let started = Instant::now();
    let r = execute_with(
        &Who::Client,
        &quiz(&key),
        &[("Prefer", "respond-async"), ("X-Request-ID", &rid)],
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.body);
    assert!(started.elapsed() < Duration::from_secs(5));
    let id = job_id(&r);
    assert_eq!(
        r.header("Location"),
        Some(format!("/api/jobs/{id}/status").as_str())
    );
    assert_eq!(r.body["statusUrl"], format!("/api/jobs/{id}/status"));
    assert_eq!(r.body["eventsUrl"], format!("/api/jobs/{id}/events"));
    let last = until_done(id, &Who::Client).await.pop().unwrap();
    assert_eq!(last["status"], "completed", "{last}");
    assert_eq!(last["runMode"], "queue");
    assert_eq!(last["percent"], 100);
    // The result is then the same request id's answer, replayed.
    let replay = execute_with(&Who::Client, &quiz(&key), &[("X-Request-ID", &rid)]).await;
    assert_eq!(replay.status, 200, "{}", replay.body);
    assert_eq!(replay.header("Idempotent-Replay"), Some("true"));
    assert_eq!(replay.body["output"]["jobId"], id);
    assert_eq!(outline_calls(&key).await, 1);
}

#[tokio::test]
async fn config_async_true_is_asynchronous_and_a_bad_value_is_a_400() {
    let key = unique("cfgasync");
    let mut body = quiz(&key);
    body["config"] = json!({"async": true});
    let r = execute(&Who::Client, body.clone(), None).await;
    assert_eq!(r.status, 202, "{}", r.body);
    let last = until_done(job_id(&r), &Who::Client).await.pop().unwrap();
    assert_eq!(last["status"], "completed");
    body["config"] = json!({"async": "yes"});
    let bad = execute(&Who::Client, body, None).await;
    assert_error(&bad, 400, "invalid_field");
    assert!(bad.body["error"].as_str().unwrap().contains("config.async"));
}

#[tokio::test]
async fn a_sync_request_past_its_timeout_gets_504_the_job_completes_and_the_same_id_replays() {
    let key = unique("outlive");
    let rid = unique("rid");
    script(&key, json!([slow(400, 100)])).await; // ~4 s of streaming
    let mut body = quiz(&key);
    body["timeout"] = json!(1500);
    let first = execute(&Who::Client, body.clone(), Some(&rid)).await;
    assert_error(&first, 504, "deadline_exceeded");
    let id = job_id(&first);
    assert_eq!(
        first.body["details"]["statusUrl"],
        format!("/api/jobs/{id}/status")
    );
    let last = until_done(id, &Who::Client).await.pop().unwrap();
    assert_eq!(last["status"], "completed", "{last}");
    let again = execute(&Who::Client, body, Some(&rid)).await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.header("Idempotent-Replay"), Some("true"));
    assert_eq!(again.body["output"]["jobId"], id);
    assert_eq!(outline_calls(&key).await, 1);
}

/// The Resource Manager's pattern: a short timeout, retries 1 s apart with the
/// same id on any non-2xx, against a job longer than the timeout.
#[tokio::test]
async fn resource_manager_retries_join_the_running_job_and_one_generation_is_billed() {
    let key = unique("rmjoin");
    let rid = unique("rid");
    script(&key, json!([slow(500, 100)])).await; // ~5 s
    let mut body = quiz(&key);
    body["timeout"] = json!(2000);
    let mut statuses = Vec::new();
    let mut success = None;
    for _ in 0..4 {
        let r = execute(&Who::Worker, body.clone(), Some(&rid)).await;
        statuses.push(r.status);
        if r.status == 200 {
            success = Some(r);
            break;
        }
        assert_error(&r, 504, "deadline_exceeded");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let ok = success.unwrap_or_else(|| panic!("no try succeeded: {statuses:?}"));
    assert!(statuses.len() >= 2, "{statuses:?}");
    assert_eq!(statuses[0], 504);
    assert_eq!(ok.header("Idempotent-Replay"), Some("true"));
    let id = job_id(&ok);
    let job = get(&format!("/api/jobs/{id}"), &Who::Worker).await.body;
    let successes: Vec<_> = job["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["status"] == "success")
        .collect();
    assert_eq!(successes.len(), 1, "{}", job["attempts"]);
    assert_eq!(ok.body["usage"]["tokens"]["output"], 500);
    assert_eq!(outline_calls(&key).await, 1);
}

#[tokio::test]
async fn fifty_concurrent_duplicates_generate_once_and_all_get_the_result() {
    let key = unique("fifty");
    let rid = unique("rid");
    script(&key, json!([slow(200, 100)])).await; // ~2 s
                                                 // A tenant of its own: fifty paid requests at once stay clear of the
                                                 // rate limit other tests' client shares.
    let who = Who::WorkerFor(unique("fifty-client"));
    let requests = (0..50).map(|_| {
        let (key, rid, who) = (key.clone(), rid.clone(), who.clone());
        tokio::spawn(async move { execute(&who, quiz(&key), Some(&rid)).await })
    });
    let replies: Vec<Reply> = futures_util::future::join_all(requests)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    let statuses: Vec<u16> = replies.iter().map(|r| r.status).collect();
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    let ids: std::collections::HashSet<i64> = replies.iter().map(job_id).collect();
    assert_eq!(ids.len(), 1);
    // At most one generation per id: the mock saw one outline request.
    assert_eq!(outline_calls(&key).await, 1);
    let fresh = replies
        .iter()
        .filter(|r| r.header("Idempotent-Replay").is_none())
        .count();
    let seen: Vec<_> = replies
        .iter()
        .map(|r| {
            (
                r.header("Idempotent-Replay").map(str::to_string),
                r.body["metadata"]["run"].clone(),
                r.body["duration"].clone(),
            )
        })
        .collect();
    assert_eq!(fresh, 1, "exactly one request generated: {seen:?}");
}

#[tokio::test]
async fn the_same_id_with_a_different_request_is_422_idempotency_key_reused() {
    let key = unique("reuse");
    let rid = unique("rid");
    assert_eq!(
        execute(&Who::Client, quiz(&key), Some(&rid)).await.status,
        200
    );
    let other = json!({"input": {"topic": format!("{key} other"), "structureType": "quiz", "granularityLevel": 1}});
    let r = execute(&Who::Client, other, Some(&rid)).await;
    assert_error(&r, 422, "idempotency_key_reused");
    // Only how the caller waits changed: still the same request.
    let mut same = quiz(&key);
    same["timeout"] = json!(9000);
    let replay = execute(&Who::Client, same, Some(&rid)).await;
    assert_eq!(replay.status, 200, "{}", replay.body);
    assert_eq!(replay.header("Idempotent-Replay"), Some("true"));
    assert_eq!(outline_calls(&key).await, 1);
}

#[tokio::test]
async fn status_reports_tokens_elements_percent_and_remaining_time_while_the_model_streams() {
    let key = unique("progress");
    // Twice: should a loaded box make the first attempt fail, the retry streams too.
    script(&key, json!([slow(400, 100), slow(400, 100)])).await; // ~4 s
    let r = execute_with(&Who::Client, &quiz(&key), &[("Prefer", "respond-async")]).await;
    assert_eq!(r.status, 202, "{}", r.body);
    let seen = until_done(job_id(&r), &Who::Client).await;
    let streaming: Vec<&Value> = seen
        .iter()
        .filter(|s| s["stage"] == "generating" && s["tokens"]["received"].as_u64() > Some(0))
        .collect();
    assert!(
        !streaming.is_empty(),
        "no progress while generating: {seen:?}"
    );
    let mid = streaming[streaming.len() / 2];
    let percent = mid["percent"].as_u64().unwrap();
    assert!((5..=85).contains(&percent), "{mid}");
    assert!(mid["tokens"]["expected"].as_u64().unwrap() > 0);
    assert!(mid["elements"]["expected"].as_u64().unwrap() > 0);
    assert!(mid["elapsedMs"].as_u64().unwrap() > 0);
    assert!(mid["estimatedRemainingMs"].as_u64().is_some(), "{mid}");
    let percents: Vec<u64> = streaming
        .iter()
        .map(|s| s["percent"].as_u64().unwrap())
        .collect();
    assert!(percents.windows(2).all(|w| w[0] <= w[1]), "{percents:?}");
    let last = seen.last().unwrap();
    assert_eq!(last["status"], "completed");
    assert_eq!(last["percent"], 100);
    assert_eq!(last["tokens"]["received"], 400);
}

#[tokio::test]
async fn events_stream_progress_at_least_every_2_s_and_ends_with_completed() {
    let key = unique("events");
    // Twice: should a loaded box make the first attempt fail, the retry streams too.
    script(&key, json!([slow(400, 100), slow(400, 100)])).await;
    let r = execute_with(&Who::Client, &quiz(&key), &[("Prefer", "respond-async")]).await;
    assert_eq!(r.status, 202, "{}", r.body);
    let id = job_id(&r);
    let (status, content_type, events) = read_events(id, &Who::Client).await;
    assert_eq!(status, 200);
    assert!(
        content_type.starts_with("text/event-stream"),
        "{content_type}"
    );
    let names: Vec<&str> = events.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(names.last(), Some(&"completed"), "{names:?}");
    // Progress, and the quiz's level-1 nodes as they close in the stream.
    assert!(
        names[..names.len() - 1]
            .iter()
            .all(|n| *n == "progress" || *n == "branch"),
        "{names:?}"
    );
    assert!(names.len() >= 3, "{names:?}");
    let gaps: Vec<u128> = events.windows(2).map(|w| w[1].2 - w[0].2).collect();
    assert!(gaps.iter().all(|g| *g <= 2_000), "{gaps:?}");
    // The worker sends the first event at once and then one a second; the slack
    // absorbs a loaded test box (./bench.sh --async measures the real figures).
    assert!(events[0].2 <= 2_000, "first event after {} ms", events[0].2);
    assert!(
        events
            .iter()
            .any(|e| e.1["stage"] == "generating" && e.1["tokens"]["received"].as_u64() > Some(0)),
        "{events:?}"
    );
    assert_eq!(events.last().unwrap().1["jobId"], id);
    // Scoped like the job: another client sees nothing.
    let (other, _, _) = read_events(id, &Who::OtherClient).await;
    assert_eq!(other, 404);
}

#[tokio::test]
async fn events_of_a_finished_job_end_at_once_and_failed_jobs_end_with_failed() {
    let key = unique("evfail");
    script(
        &key,
        json!([{"kind": "status", "code": 401}, {"kind": "status", "code": 401}]),
    )
    .await;
    let r = execute(&Who::Client, quiz(&key), None).await;
    assert_eq!(r.status, 502, "{}", r.body);
    let (_, _, events) = read_events(job_id(&r), &Who::Client).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].0, "failed");
    assert_eq!(events[0].1["failureCode"], "provider_error");
}

#[tokio::test]
async fn a_stream_that_ends_early_is_truncation_and_is_asked_again() {
    let key = unique("cut");
    script(&key, json!([{"kind": "cut"}])).await;
    let r = execute(&Who::Client, quiz(&key), None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let job = get(&format!("/api/jobs/{}", job_id(&r)), &Who::Client)
        .await
        .body;
    let statuses: Vec<&str> = job["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, vec!["truncated", "success"]);
}

#[tokio::test]
async fn a_stalled_stream_is_retried_like_a_timeout() {
    let key = unique("stall");
    script(&key, json!([{"kind": "stall", "ms": 6000}])).await; // past the stack's 3 s stall limit
    let r = execute(&Who::Client, quiz(&key), None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let job = get(&format!("/api/jobs/{}", job_id(&r)), &Who::Client)
        .await
        .body;
    let attempts = job["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2, "{attempts:?}");
    assert_eq!(attempts[0]["status"], "timeout");
    assert!(attempts[0]["error"].as_str().unwrap().contains("stalled"));
    assert_eq!(attempts[1]["status"], "success");
}

#[tokio::test]
async fn usage_is_exact_when_streaming_in_both_wire_formats() {
    for provider in ["openai", "anthropic"] {
        let key = unique(&format!("usage-{provider}"));
        script(&key, json!([{"kind": "valid", "usage": {"input": 1234, "output": 321}, "tokensPerSecond": 2000}])).await;
        let mut body = quiz(&key);
        body["config"] = json!({"aiProvider": provider});
        let r = execute(&Who::Client, body, None).await;
        assert_eq!(r.status, 200, "{provider}: {}", r.body);
        assert_eq!(r.body["usage"]["tokens"]["input"], 1234, "{provider}");
        assert_eq!(r.body["usage"]["tokens"]["output"], 321, "{provider}");
        assert_eq!(r.body["output"]["provider"], provider);
    }
}

#[tokio::test]
async fn a_message_the_queue_dead_letters_leaves_its_job_failed_with_a_reason() {
    // The stack makes the consumer fail for topics holding this marker.
    let key = format!("{} queue-fault-marker", unique("dlq"));
    let r = execute_with(&Who::Client, &quiz(&key), &[("Prefer", "respond-async")]).await;
    assert_eq!(r.status, 202, "{}", r.body);
    let last = until_done(job_id(&r), &Who::Client).await.pop().unwrap();
    assert_eq!(last["status"], "failed", "{last}");
    assert_eq!(last["failureCode"], "dead_lettered");
    assert!(last["failureReason"].as_str().unwrap().contains("retries"));
    assert_eq!(outline_calls(&key).await, 0);
}

#[tokio::test]
async fn a_sync_job_too_long_for_its_request_runs_in_the_queue_while_the_request_waits() {
    // A granularity-5 course is ~10 000 tokens: past 30 s of waiting plus waitUntil.
    let key = unique("longsync");
    let body = json!({"input": {"topic": key, "structureType": "course", "granularityLevel": 5}, "timeout": 30000});
    let r = execute(&Who::Client, body, None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let id = job_id(&r);
    let status = get(&format!("/api/jobs/{id}/status"), &Who::Client)
        .await
        .body;
    assert_eq!(status["runMode"], "queue");
    assert_eq!(status["status"], "completed");
}

// ---- bounded event streams -------------------------------------------------------

/// Open the events stream of job `id` as the holder of API key `key` and
/// keep it open: the response once its first event arrived (or its status).
async fn open_events(id: i64, key: &str) -> (u16, Option<String>, reqwest::Response) {
    let mut response = http()
        .get(format!("{}/api/jobs/{id}/events", base()))
        .header("X-API-Key", key)
        .send()
        .await
        .expect("events answer");
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    if status == 200 {
        let first = response.chunk().await.expect("a first event");
        assert!(first.is_some(), "the stream sent its first event");
    }
    (status, retry_after, response)
}

#[tokio::test]
async fn a_tenant_holds_at_most_ten_event_streams_and_another_tenant_is_not_held_up() {
    // A tenant of its own with a job that runs ~20 s.
    let suffix = unique("streams");
    let key = format!("dev-basic-key-{suffix}");
    let who = Who::ApiKey(key.clone());
    let topic = unique("streams-job");
    script(&topic, json!([slow(1000, 50)])).await;
    let r = execute_with(&who, &quiz(&topic), &[("Prefer", "respond-async")]).await;
    assert_eq!(r.status, 202, "{}", r.body);
    let id = job_id(&r);
    let mut open = Vec::new();
    for _ in 0..10 {
        let (status, _, response) = open_events(id, &key).await;
        assert_eq!(status, 200);
        open.push(response);
    }
    let (status, retry_after, over) = open_events(id, &key).await;
    assert_eq!(status, 429, "the eleventh stream of one tenant");
    assert!(retry_after.and_then(|s| s.parse::<u64>().ok()).is_some());
    let body: Value = over.json().await.expect("a JSON error");
    assert_eq!(body["code"], "too_many_streams", "{body}");
    assert_eq!(body["details"]["limit"], 10);
    // Another tenant, meanwhile: its own stream opens and its requests answer.
    let theirs = execute_with(
        &Who::Client,
        &quiz(&unique("streams-other")),
        &[("Prefer", "respond-async")],
    )
    .await;
    assert_eq!(theirs.status, 202, "{}", theirs.body);
    let (status, _, _their_stream) = open_events(job_id(&theirs), "dev-client-key").await;
    assert_eq!(status, 200, "another tenant's stream is not refused");
    let mut latencies = Vec::new();
    for _ in 0..10 {
        let t = Instant::now();
        assert_eq!(get("/", &Who::Nobody).await.status, 200);
        latencies.push(t.elapsed().as_millis());
    }
    latencies.sort_unstable();
    eprintln!(
        "GET / with a tenant at its 10-stream limit: median {} ms, max {} ms",
        latencies[5], latencies[9]
    );
    drop(open);
}

/// The running structure's branch positions, polled until the job ends.
async fn partial_views(id: i64) -> Vec<Vec<u64>> {
    let mut views = Vec::new();
    for _ in 0..1_200 {
        let s = get(&format!("/api/jobs/{id}/structure"), &Who::Client).await;
        assert_eq!(s.status, 200, "{}", s.body);
        if s.body["complete"] == true {
            return views;
        }
        assert_eq!(s.body["source"], "partial", "{}", s.body);
        views.push(
            s.body["branches"]
                .as_array()
                .unwrap()
                .iter()
                .map(|b| b["position"].as_u64().unwrap())
                .collect(),
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("job {id} did not end");
}

#[tokio::test]
async fn a_single_call_shows_each_level_1_node_as_soon_as_it_closes_in_the_stream() {
    let key = unique("partial-single");
    script(
        &key,
        json!([{"kind": "valid", "measured": true, "tokensPerSecond": 150, "ttftMs": 200}]),
    )
    .await;
    let body = json!({"input": {"topic": key, "structureType": "course", "granularityLevel": 3},
        "config": {"strategy": "single"}});
    let r = execute_with(&Who::Client, &body, &[("Prefer", "respond-async")]).await;
    assert_eq!(r.status, 202, "{}", r.body);
    let id = job_id(&r);
    let ((status, _, events), views) =
        tokio::join!(read_events(id, &Who::Client), partial_views(id));
    assert_eq!(status, 200);
    // While the one answer streamed, its first modules were shown before its last.
    assert!(
        views.iter().any(|v| !v.is_empty() && v.len() < 5),
        "{views:?}"
    );
    assert!(
        views.iter().all(|v| v.windows(2).all(|w| w[0] < w[1])),
        "{views:?}"
    );
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
    assert_eq!(order, [1, 2, 3, 4, 5], "{names:?}");
    let done = get(&format!("/api/jobs/{id}/structure"), &Who::Client).await;
    assert_eq!(done.body["complete"], true);
    assert_eq!(done.body["structureType"], "course");
    let modules = done.body["structure"]["modules"].as_array().unwrap();
    assert_eq!(modules.len(), 5);
    for (b, m) in branches.iter().zip(modules) {
        assert_eq!(b["total"], 5);
        assert_eq!(&b["node"], m, "the node shown is the node completed");
    }
    let attempts = get(&format!("/api/jobs/{id}"), &Who::Client).await;
    assert_eq!(
        attempts.body["attempts"].as_array().unwrap().len(),
        1,
        "one call"
    );
}
