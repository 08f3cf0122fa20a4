//! A generation as a long job on the kit's lifecycle, end to end against
//! `wrangler dev` and the mock AI provider streaming at a real token rate
//! (`./test.sh` starts both): async 202 + `Location`, status and the events
//! stream, a duplicate joining the running job (one generation, one bill),
//! 422 on a reused key, 504 then replay, cancel (no model call starts after
//! it), the budget ceiling, the daily spend cap and the rate limit. The job
//! writes a real granulator outline (a granularity-2 quiz: the root and its
//! three categories, four calls at once).

use bitware_kit::testing::mock::{calls, script, streamed};
use bitware_kit::testing::{assert_error, events_text, get, send, unique, until_ended, Reply, Who};
use futures_util::future::join_all;
use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;

/// The granulator's output for a granularity-2 quiz (tests/fixtures), its
/// topic marked so that the mock's scripts and call log are this test's.
fn body(marker: &str) -> Value {
    let mut input: Value =
        serde_json::from_str(include_str!("fixtures/quiz-g2.json")).expect("the fixture");
    input["topic"] = json!(format!("{marker}: world capitals"));
    json!({"action": "generate", "input": input})
}

/// The model calls of one generation of `body`: the root's, and one per category.
const CALLS: usize = 4;

/// `n` steps for each of a job's calls.
fn each_call(step: Value, jobs: usize) -> Value {
    json!(vec![step; CALLS * jobs])
}

/// One of several jobs of a test: its own topic under the test's marker.
fn job_body(marker: &str, id: &str) -> Value {
    let mut b = body(marker);
    b["input"]["topic"] = json!(format!("{marker} job {id}: world capitals"));
    b
}

async fn execute(who: &Who, body: &Value, id: &str, extra: &[(&str, &str)]) -> Reply {
    let mut headers = vec![("X-Request-ID", id)];
    headers.extend_from_slice(extra);
    send(Method::POST, "/api/execute", who, Some(body), &headers).await
}

#[tokio::test]
async fn async_execute_answers_202_with_location_and_status_and_events_follow_it_to_the_end() {
    let marker = unique("async");
    script(&marker, each_call(streamed(100, 75), 1)).await;
    let accepted = execute(
        &Who::Client,
        &body(&marker),
        &marker,
        &[("Prefer", "respond-async")],
    )
    .await;
    assert_eq!(accepted.status, 202, "{}", accepted.body);
    let job_id = accepted.body["jobId"].as_i64().expect("jobId");
    let location = format!("/api/jobs/{job_id}/status");
    assert_eq!(accepted.header("Location"), Some(location.as_str()));
    assert_eq!(accepted.header("Preference-Applied"), Some("respond-async"));
    assert_eq!(
        accepted.body["eventsUrl"],
        format!("/api/jobs/{job_id}/events")
    );
    let status = get(&location, &Who::Client).await;
    assert_eq!(status.status, 200, "{}", status.body);
    assert_eq!(status.body["status"], "processing");
    assert_eq!(status.body["runMode"], "queue");
    assert!(
        status.body["progress"]["expectedTokens"]
            .as_u64()
            .unwrap_or(0)
            > 1_000
    );
    // Another tenant does not see it.
    assert_error(&get(&location, &Who::OtherClient).await, 404, "not_found");

    let text = events_text(job_id, &Who::Client).await;
    assert!(text.contains("event: progress\n"), "{text}");
    assert!(
        text.trim_end().contains("event: completed\ndata: {"),
        "{text}"
    );
    assert!(!text.contains("event: failed"), "{text}");
    let done = until_ended(job_id, &Who::Client, 30).await;
    assert_eq!(
        (done["status"].as_str(), done["percent"].as_u64()),
        (Some("completed"), Some(100))
    );
    assert_eq!(done["tokens"]["output"], 300);
    let result_url = accepted.body["resultUrl"].as_str().expect("resultUrl");
    let full = get(result_url, &Who::Client).await;
    assert_eq!(full.status, 200, "{}", full.body);
    assert_eq!(full.body["job"]["status"], "completed");
    assert!(full.body["result"]["output"]["content"]["categories"].is_array());

    // The same X-Request-ID replays the stored result.
    let replay = execute(&Who::Client, &body(&marker), &marker, &[]).await;
    assert_eq!(replay.status, 200, "{}", replay.body);
    assert_eq!(replay.header("Idempotent-Replay"), Some("true"));
    assert_eq!(replay.body["metadata"]["jobId"], job_id);
    assert_eq!(replay.body["output"], full.body["result"]["output"]);
    assert_eq!(calls(&marker).await.len(), CALLS, "one generation");
}

#[tokio::test]
async fn a_duplicate_joins_the_running_job_one_generation_one_bill() {
    let marker = unique("join");
    script(&marker, each_call(streamed(100, 60), 2)).await;
    let b = body(&marker);
    let (first, second) = tokio::join!(execute(&Who::Client, &b, &marker, &[]), async {
        tokio::time::sleep(Duration::from_millis(700)).await;
        execute(&Who::Client, &b, &marker, &[]).await
    });
    assert_eq!(
        (first.status, second.status),
        (200, 200),
        "{} / {}",
        first.body,
        second.body
    );
    assert_eq!(
        first.body["metadata"]["jobId"],
        second.body["metadata"]["jobId"]
    );
    assert_eq!(second.header("Idempotent-Replay"), Some("true"));
    assert_eq!(first.body["output"], second.body["output"]);
    assert_eq!(calls(&marker).await.len(), CALLS, "one generation");
    let job_id = first.body["metadata"]["jobId"].as_i64().unwrap();
    let status = get(&format!("/api/jobs/{job_id}/status"), &Who::Client).await;
    assert_eq!(
        status.body["tokens"]["output"], 240,
        "billed once: {}",
        status.body
    );
    assert_eq!(status.body["costUsd"], first.body["cost"]);
}

#[tokio::test]
async fn a_reused_key_with_another_request_is_422() {
    let marker = unique("reuse");
    script(&marker, each_call(streamed(100, 100), 1)).await;
    let first = execute(
        &Who::Client,
        &body(&marker),
        &marker,
        &[("Prefer", "respond-async")],
    )
    .await;
    assert_eq!(first.status, 202, "{}", first.body);
    let mut other = body(&marker);
    other["input"]["topic"] = json!(format!("{marker}: another topic"));
    let reused = execute(&Who::Client, &other, &marker, &[]).await;
    assert_error(&reused, 422, "idempotency_key_reused");
    assert_eq!(reused.body["details"]["jobId"], first.body["jobId"]);
    // How the caller waits is not part of the request: the same body joins.
    let same = execute(
        &Who::Client,
        &body(&marker),
        &marker,
        &[("Prefer", "respond-async")],
    )
    .await;
    assert_eq!(
        (same.status, &same.body["jobId"]),
        (202, &first.body["jobId"])
    );
}

#[tokio::test]
async fn a_request_past_its_timeout_gets_504_with_links_and_the_same_id_later_replays() {
    let marker = unique("timeout");
    script(&marker, each_call(streamed(100, 300), 1)).await;
    let mut b = body(&marker);
    b["timeout"] = json!(1500);
    let late = execute(&Who::Client, &b, &marker, &[]).await;
    assert_error(&late, 504, "deadline_exceeded");
    let job_id = late.body["details"]["jobId"].as_i64().expect("jobId");
    assert_eq!(
        late.body["details"]["statusUrl"],
        format!("/api/jobs/{job_id}/status")
    );
    // The job goes on (inline, kept alive past the response) and completes.
    let done = until_ended(job_id, &Who::Client, 30).await;
    assert_eq!(done["status"], "completed", "{done}");
    let replay = execute(&Who::Client, &b, &marker, &[]).await;
    assert_eq!(replay.status, 200, "{}", replay.body);
    assert_eq!(replay.header("Idempotent-Replay"), Some("true"));
    assert_eq!(replay.body["metadata"]["jobId"], job_id);
    assert_eq!(calls(&marker).await.len(), CALLS);
}

#[tokio::test]
async fn cancel_stops_the_run_and_no_model_call_starts_after_it() {
    let marker = unique("cancel");
    // Half an answer, then silence, on every call: the chain would retry
    // after the stall (AI_STREAM_STALL_MS) with the next steps — unless the
    // job is cancelled.
    let mut steps = vec![json!({"kind": "stall", "ms": 15000}); CALLS];
    steps.extend(vec![streamed(100, 200); CALLS]);
    script(&marker, json!(steps)).await;
    let accepted = execute(
        &Who::Client,
        &body(&marker),
        &marker,
        &[("Prefer", "respond-async")],
    )
    .await;
    assert_eq!(accepted.status, 202, "{}", accepted.body);
    let job_id = accepted.body["jobId"].as_i64().unwrap();
    let cancel_path = format!("/api/jobs/{job_id}/cancel");
    // Another tenant cannot cancel it.
    let foreign = send(Method::POST, &cancel_path, &Who::OtherClient, None, &[]).await;
    assert_error(&foreign, 404, "not_found");
    for _ in 0..40 {
        if calls(&marker).await.len() == CALLS {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(calls(&marker).await.len(), CALLS, "every call streams");
    let cancelled = send(Method::POST, &cancel_path, &Who::Client, None, &[]).await;
    assert_eq!(cancelled.status, 200, "{}", cancelled.body);
    assert_eq!(cancelled.body["status"], "cancelled");
    assert_eq!(cancelled.body["cancelledBy"], "client:dev-client");
    // Idempotent: a second cancel answers the same.
    let again = send(Method::POST, &cancel_path, &Who::Client, None, &[]).await;
    assert_eq!(
        (again.status, &again.body["status"]),
        (200, &json!("cancelled"))
    );
    let text = events_text(job_id, &Who::Client).await;
    assert!(text.contains("event: cancelled\ndata: {"), "{text}");
    // Past the stall period, when the chain would have retried: no new call.
    tokio::time::sleep(Duration::from_millis(4_500)).await;
    assert_eq!(
        calls(&marker).await.len(),
        CALLS,
        "no model call after the cancel"
    );
    // The same X-Request-ID answers the cancel (it never restarts the job).
    let same = execute(&Who::Client, &body(&marker), &marker, &[]).await;
    assert_error(&same, 409, "job_cancelled");
}

#[tokio::test]
async fn a_completed_job_cannot_be_cancelled() {
    let marker = unique("done");
    script(&marker, each_call(streamed(0, 50), 1)).await;
    let done = execute(&Who::Client, &body(&marker), &marker, &[]).await;
    assert_eq!(done.status, 200, "{}", done.body);
    let job_id = done.body["metadata"]["jobId"].as_i64().unwrap();
    let late = send(
        Method::POST,
        &format!("/api/jobs/{job_id}/cancel"),
        &Who::Client,
        None,
        &[],
    )
    .await;
    assert_error(&late, 409, "job_not_cancellable");
    assert_eq!(late.body["details"]["status"], "completed");
    let none = send(
        Method::POST,
        "/api/jobs/999999999/cancel",
        &Who::Client,
        None,
        &[],
    )
    .await;
    assert_error(&none, 404, "not_found");
}

#[tokio::test]
async fn a_batch_that_fails_for_good_fails_the_job_and_no_other_batch_starts() {
    let marker = unique("failfast");
    // One call at a time, the root's first: every provider fails it.
    let mut b = body(&marker);
    b["input"]["contentMetadata"]["generationStrategy"]["maxConcurrent"] = json!(1);
    script(
        &format!("{marker} && - root | "),
        json!(vec![json!({"kind": "status", "code": 500}); 12]),
    )
    .await;
    let failed = execute(&Who::Client, &b, &marker, &[]).await;
    assert_error(&failed, 502, "provider_error");
    let seen = calls(&marker).await;
    assert!(!seen.is_empty());
    // No call for any category: content with a hole is not paid for.
    for call in &seen {
        let user = call["user"].as_str().unwrap_or("");
        assert!(
            user.contains("- root | ") && !user.contains("- categories."),
            "a call after the root failed: {user}"
        );
    }
    let job_id = failed.body["details"]["jobId"].as_i64().expect("jobId");
    let status = get(&format!("/api/jobs/{job_id}/status"), &Who::Client).await;
    assert_eq!(status.body["status"], "failed", "{}", status.body);
    assert_eq!(status.body["failure"]["code"], "provider_error");
}

#[tokio::test]
async fn a_budget_below_the_calls_worst_case_is_422_and_no_call_is_made() {
    let marker = unique("budget");
    script(&marker, each_call(streamed(0, 50), 1)).await;
    let mut b = body(&marker);
    b["maxCostUsd"] = json!(0.000001);
    let refused = execute(&Who::Client, &b, &marker, &[]).await;
    assert_error(&refused, 422, "budget_exceeded");
    assert!(calls(&marker).await.is_empty(), "no model call over budget");
    let job_id = refused.body["details"]["jobId"].as_i64().expect("jobId");
    let status = get(&format!("/api/jobs/{job_id}/status"), &Who::Client).await;
    assert_eq!(
        status.body["failure"]["code"], "budget_exceeded",
        "{}",
        status.body
    );
}

#[tokio::test]
async fn the_daily_spend_cap_refuses_a_new_job_with_429_but_a_running_one_is_joined() {
    // A basic client of its own: a $5 daily cap, $1 reserved per job.
    let who = Who::ApiKey(unique("dev-basic-key-cap"));
    let marker = unique("cap");
    script(&marker, each_call(streamed(20, 400), 6)).await;
    let ids: Vec<String> = (0..5).map(|i| format!("{marker}-{i}")).collect();
    let accepted = join_all(ids.iter().map(|id| {
        let who = who.clone();
        let b = job_body(&marker, id);
        async move { execute(&who, &b, id, &[("Prefer", "respond-async")]).await }
    }))
    .await;
    for r in &accepted {
        assert_eq!(r.status, 202, "{}", r.body);
    }
    let sixth = job_body(&marker, "six");
    let refused = execute(
        &who,
        &sixth,
        &format!("{marker}-6"),
        &[("Prefer", "respond-async")],
    )
    .await;
    assert_error(&refused, 429, "spend_cap_exceeded");
    assert_eq!(refused.body["details"]["capUsd"], json!(5.0));
    assert_eq!(refused.body["details"]["tier"], "basic");
    assert!(refused.header("Retry-After").is_some());
    // A retry of a running job joins it: joining spends nothing.
    let b0 = job_body(&marker, &ids[0]);
    let joined = execute(&who, &b0, &ids[0], &[("Prefer", "respond-async")]).await;
    assert_eq!(
        (joined.status, &joined.body["jobId"]),
        (202, &accepted[0].body["jobId"])
    );
    // Cancelled, the jobs give back what they did not spend.
    for r in &accepted {
        let path = format!("/api/jobs/{}/cancel", r.body["jobId"]);
        assert_eq!(send(Method::POST, &path, &who, None, &[]).await.status, 200);
    }
}

#[tokio::test]
async fn paid_requests_past_the_tiers_rate_limit_are_429() {
    // A basic client of its own: 60 paid requests a minute. The limiter
    // counts in fixed windows, so 2 x 60 + 1 put more than 60 in one window.
    let who = Who::ApiKey(unique("dev-basic-key-rl"));
    let bad = json!({"action": "nope"});
    let replies = join_all((0..121).map(|_| {
        let (who, bad) = (who.clone(), bad.clone());
        async move { send(Method::POST, "/api/execute", &who, Some(&bad), &[]).await }
    }))
    .await;
    let limited: Vec<&Reply> = replies.iter().filter(|r| r.status == 429).collect();
    let passed = replies.iter().filter(|r| r.status == 400).count();
    assert_eq!(passed + limited.len(), 121, "statuses other than 400/429");
    assert!(
        (60..=120).contains(&passed),
        "{passed} of 121 passed a limit of 60"
    );
    for r in limited {
        assert_error(r, 429, "rate_limited");
        assert_eq!(r.body["details"]["tier"], "basic");
    }
    // Another tenant is not affected.
    let other = send(
        Method::POST,
        "/api/execute",
        &Who::OtherClient,
        Some(&bad),
        &[],
    )
    .await;
    assert_error(&other, 400, "invalid_field");
}
