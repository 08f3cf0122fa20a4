//! Cancel (`POST /api/jobs/{id}/cancel`, issue 23) end to end against
//! `wrangler dev`, its local queue and D1, with the mock streaming at a real
//! token rate so a job is really running when it is cancelled: a queued job
//! never starts, a running one stops at its next chunk (no model call starts
//! after the cancel), fan-outs during their skeleton and their branches, the
//! review, a cancel racing completion, the events stream, the same
//! X-Request-ID after a cancel, the envelope of a waiting execute, and the
//! money: the job is billed what its attempts used, its reservation settled
//! once. Money is read from the local D1 file (`D1_FILE`), per test tenant.

mod support;

use reqwest::Method;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use support::*;

/// A valid answer streamed at `tps` tokens a second after 200 ms.
fn slow(output: u64, tps: u64) -> Value {
    json!({"kind": "valid", "usage": {"input": 1000, "output": output}, "tokensPerSecond": tps, "ttftMs": 200})
}

fn quiz(topic: &str) -> Value {
    json!({"action": "granulate", "input": {"topic": topic, "structureType": "quiz", "granularityLevel": 1}})
}

/// A granularity-3 course made as a skeleton plus 5 branches and the root call.
fn fanned_course(topic: &str) -> Value {
    json!({"action": "granulate", "input": {"topic": topic, "structureType": "course", "granularityLevel": 3},
        "config": {"strategy": "fanout"}})
}

/// Submit with `Prefer: respond-async`: the job's id (202).
async fn submit(who: &Who, body: &Value, request_id: Option<&str>) -> i64 {
    let mut headers = vec![("Prefer", "respond-async")];
    if let Some(rid) = request_id {
        headers.push(("X-Request-ID", rid));
    }
    let r = send(Method::POST, "/api/execute", who, Some(body), &headers).await;
    assert_eq!(r.status, 202, "{}", r.body);
    r.body["jobId"].as_i64().expect("jobId")
}

async fn cancel(id: i64, who: &Who) -> Reply {
    send(
        Method::POST,
        &format!("/api/jobs/{id}/cancel"),
        who,
        None,
        &[],
    )
    .await
}

/// Poll the status route until `ready` holds for a running job.
async fn until_running(id: i64, who: &Who, ready: impl Fn(&Value) -> bool) -> Value {
    let started = Instant::now();
    loop {
        let s = get(&format!("/api/jobs/{id}/status"), who).await;
        assert_eq!(s.status, 200, "{}", s.body);
        assert_eq!(
            s.body["status"], "processing",
            "job {id} ended early: {}",
            s.body
        );
        if ready(&s.body) {
            return s.body;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "job {id}: {}",
            s.body
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Streaming: the model's first tokens reached the job's row.
fn streaming(s: &Value) -> bool {
    s["tokens"]["received"].as_u64().unwrap_or(0) > 0
}

/// The job once final and settled (`completedAt` set), as `GET /api/jobs/{id}` shows it.
async fn settled(id: i64, who: &Who) -> Value {
    let started = Instant::now();
    loop {
        let r = get(&format!("/api/jobs/{id}"), who).await;
        assert_eq!(r.status, 200, "{}", r.body);
        let job = &r.body["job"];
        if job["status"] != "processing" && !job["completedAt"].is_null()
            || job["status"] == "failed"
        {
            return r.body;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "job {id}: {}",
            r.body
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn attempts_cost(detail: &Value) -> f64 {
    detail["attempts"]
        .as_array()
        .expect("attempts")
        .iter()
        .map(|a| a["costUsd"].as_f64().unwrap_or(0.0))
        .sum()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

/// The money of a cancelled job: billed what its attempts used, no
/// reservation left open, and the tenant's day booked that once.
fn assert_billed_once(id: i64, detail: &Value, tenant: &str) {
    let cost = detail["job"]["costUsd"].as_f64().expect("a known cost");
    assert!(close(cost, attempts_cost(detail)), "{detail}");
    let (spent, reserved, open) = spend_of(tenant, id);
    assert_eq!(open, 0, "job {id} left a reservation open");
    assert!(close(spent, cost), "booked {spent}, billed {cost}");
    assert!(close(reserved, 0.0), "still reserved {reserved}");
}

#[tokio::test]
async fn cancel_of_a_job_that_does_not_exist_is_a_404() {
    for who in [Who::Client, Who::Worker] {
        let r = cancel(999_999_999, &who).await;
        assert_error(&r, 404, "not_found");
        // The job was looked up (not an unknown route).
        assert_eq!(r.body["error"], "no job 999999999", "{}", r.body);
    }
}

#[tokio::test]
async fn a_running_job_stops_at_its_next_chunk_ends_cancelled_and_is_billed_only_what_it_streamed()
{
    let key = unique("cancel-run");
    let tenant = unique("cancel-run-tenant");
    let who = Who::WorkerFor(tenant.clone());
    let rid = unique("cancel-run-rid");
    // 3 000 tokens at 60 tokens/s: 50 s if nobody stops it.
    script(&key, json!([slow(3000, 60)])).await;
    let id = submit(&who, &quiz(&key), Some(&rid)).await;
    until_running(id, &who, streaming).await;

    // Another tenant cannot see it, so cannot stop it: a 404 like a missing job.
    assert_error(&cancel(id, &Who::OtherClient).await, 404, "not_found");
    let calls_before = mock_calls(&key).await.len();
    assert_eq!(calls_before, 1);

    let r = cancel(id, &who).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let job = &r.body["job"];
    assert_eq!(job["status"], "cancelled");
    assert_eq!(job["stage"], "cancelled");
    assert_eq!(job["cancelledBy"], "worker:e2e-tests");
    assert!(job["cancelledAt"].is_string(), "{job}");
    // The answer waited for the run to stop and settle.
    assert!(job["completedAt"].is_string(), "{job}");
    let attempts = r.body["attempts"].as_array().expect("attempts");
    assert_eq!(attempts.len(), 1, "{}", r.body);
    assert_eq!(attempts[0]["status"], "cancelled");
    // What streamed before the drop: some tokens, far from the 3 000.
    let streamed = attempts[0]["tokens"]["output"].as_u64().unwrap();
    assert!(streamed > 0 && streamed < 3000, "{streamed}");
    assert_eq!(job["tokensUsed"]["output"], streamed);
    assert_billed_once(id, &r.body, &tenant);

    // No model call started after the cancel, and none does later.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(mock_calls(&key).await.len(), calls_before);

    // Idempotent: a second cancel answers the same.
    let again = cancel(id, &who).await;
    assert_eq!(again.status, 200, "{}", again.body);
    for field in [
        "status",
        "cancelledBy",
        "cancelledAt",
        "costUsd",
        "completedAt",
    ] {
        assert_eq!(again.body["job"][field], job[field], "{field}");
    }

    // The status route, the list filter and the events stream show it.
    let s = get(&format!("/api/jobs/{id}/status"), &who).await;
    assert_eq!(
        (s.body["status"].clone(), s.body["stage"].clone()),
        (json!("cancelled"), json!("cancelled"))
    );
    let list = get("/api/jobs?status=cancelled", &who).await;
    assert_eq!(list.status, 200, "{}", list.body);
    assert_eq!(list.body["jobs"][0]["id"], id);
    assert_eq!(get("/api/jobs?status=failed", &who).await.body["total"], 0);
    let stats = get("/api/stats", &who).await;
    assert_eq!(
        stats.body["jobs"]["byStatus"]["cancelled"], 1,
        "{}",
        stats.body
    );
    assert_eq!(
        stats.body["jobs"]["byStatus"]["failed"], 0,
        "{}",
        stats.body
    );
    let (status, _, events) = read_events(id, &who).await;
    assert_eq!(status, 200);
    let last = events.last().expect("an event");
    assert_eq!(last.0, "cancelled", "{events:?}");
    assert_eq!(last.1["status"], "cancelled");

    // The same X-Request-ID replays the cancel: it never restarts a job
    // someone stopped (the Resource Manager's retries after its 30 s race).
    let replay = send(
        Method::POST,
        "/api/execute",
        &who,
        Some(&quiz(&key)),
        &[("X-Request-ID", &rid)],
    )
    .await;
    assert_error(&replay, 409, "job_cancelled");
    assert_eq!(replay.body["details"]["jobId"], id);
    assert_eq!(replay.body["details"]["cancelledBy"], "worker:e2e-tests");
    assert_eq!(mock_calls(&key).await.len(), calls_before);
}

#[tokio::test]
async fn a_queued_job_cancelled_while_its_consumer_retries_never_calls_the_model() {
    // The stack's queue fault marker: the consumer fails before it starts
    // the job, and the queue retries the message.
    let key = unique("cancel-queued queue-fault-marker");
    let tenant = unique("cancel-queued-tenant");
    let who = Who::WorkerFor(tenant.clone());
    let id = submit(&who, &quiz(&key), None).await;
    let s = get(&format!("/api/jobs/{id}/status"), &who).await;
    assert_eq!(s.body["stage"], "queued", "{}", s.body);

    let r = cancel(id, &who).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let job = &r.body["job"];
    assert_eq!(job["status"], "cancelled");
    assert!(job["completedAt"].is_string(), "settled at once: {job}");
    assert_eq!(job["costUsd"], 0.0);
    assert_eq!(r.body["attempts"], json!([]));
    assert_billed_once(id, &r.body, &tenant);

    // The queue's retries (and its dead-letter consumer) leave it cancelled.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(mock_calls(&key).await.is_empty());
    let later = get(&format!("/api/jobs/{id}"), &who).await;
    assert_eq!(later.body["job"]["status"], "cancelled");
    assert_eq!(later.body["job"]["cancelledAt"], job["cancelledAt"]);
}

#[tokio::test]
async fn a_completed_job_cannot_be_cancelled_and_says_so() {
    let key = unique("cancel-done");
    let r = execute(&Who::Client, quiz(&key), None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let id = r.body["output"]["jobId"].as_i64().unwrap();
    let c = cancel(id, &Who::Client).await;
    assert_error(&c, 409, "job_not_cancellable");
    assert_eq!(c.body["details"]["status"], "completed");
    assert!(c.body["error"].as_str().unwrap().contains("completed"));
    assert_eq!(
        get(&format!("/api/jobs/{id}"), &Who::Client).await.body["job"]["status"],
        "completed"
    );
}

#[tokio::test]
async fn a_fan_out_cancelled_during_its_skeleton_starts_no_branch() {
    let key = unique("cancel-skeleton");
    let tenant = unique("cancel-skeleton-tenant");
    let who = Who::WorkerFor(tenant.clone());
    // The skeleton streams slowly; branches would be quick.
    script(
        &key,
        json!([{"kind": "valid", "measured": true, "tokensPerSecond": 15, "ttftMs": 200}]),
    )
    .await;
    let id = submit(&who, &fanned_course(&key), None).await;
    until_running(id, &who, streaming).await;
    let calls = mock_calls(&key).await;
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0]["part"], "skeleton");

    let r = cancel(id, &who).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let detail = settled(id, &who).await;
    assert_eq!(detail["job"]["status"], "cancelled");
    let attempts = detail["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 1, "{detail}");
    assert_eq!(
        (attempts[0]["status"].clone(), attempts[0]["branch"].clone()),
        (json!("cancelled"), json!("skeleton"))
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        mock_calls(&key).await.len(),
        1,
        "a branch started after the cancel"
    );
    assert_billed_once(id, &detail, &tenant);
}

#[tokio::test]
async fn a_fan_out_cancelled_during_its_branches_drops_them_and_starts_no_new_call() {
    let key = unique("cancel-branches");
    let tenant = unique("cancel-branches-tenant");
    let who = Who::WorkerFor(tenant.clone());
    // A quick skeleton, then every branch and the root call stream slowly.
    let at = |tps: u64| json!({"kind": "valid", "measured": true, "tokensPerSecond": tps, "ttftMs": 200});
    script(
        &key,
        json!([at(5000), at(10), at(10), at(10), at(10), at(10), at(10)]),
    )
    .await;
    let id = submit(&who, &fanned_course(&key), None).await;
    until_running(id, &who, |s| {
        s["branches"]["total"].as_u64().unwrap_or(0) > 0 && streaming(s)
    })
    .await;
    // Every part is in flight (5 branches and the root call).
    let started = Instant::now();
    while mock_calls(&key).await.len() < 7 {
        assert!(started.elapsed() < Duration::from_secs(30));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let before = mock_calls(&key).await.len();

    let r = cancel(id, &who).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let detail = settled(id, &who).await;
    assert_eq!(detail["job"]["status"], "cancelled");
    let attempts = detail["attempts"].as_array().unwrap();
    let dropped: Vec<&Value> = attempts
        .iter()
        .filter(|a| a["status"] == "cancelled")
        .collect();
    assert!(!dropped.is_empty(), "{detail}");
    assert!(
        dropped
            .iter()
            .all(|a| a["branch"] != "skeleton" && a["tokens"]["output"].as_u64().unwrap() > 0),
        "{detail}"
    );
    assert!(attempts
        .iter()
        .any(|a| a["branch"] == "skeleton" && a["status"] == "success"));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        mock_calls(&key).await.len(),
        before,
        "a call started after the cancel"
    );
    assert_billed_once(id, &detail, &tenant);
}

#[tokio::test]
async fn a_job_cancelled_during_its_review_keeps_its_paid_outline_attempt_and_ends_cancelled() {
    let key = unique("cancel-review");
    let tenant = unique("cancel-review-tenant");
    let who = Who::WorkerFor(tenant.clone());
    // The outline comes at once; the review streams slowly.
    script(&key, json!([{"kind": "valid"}, slow(2000, 40)])).await;
    let mut body = quiz(&key);
    body["config"] = json!({"validationLevel": 2});
    let id = submit(&who, &body, None).await;
    until_running(id, &who, |s| s["stage"] == "validating").await;
    // The review reports no progress: give it a moment to stream.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let before = mock_calls(&key).await.len();
    assert_eq!(before, 2);

    let r = cancel(id, &who).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let detail = settled(id, &who).await;
    assert_eq!(detail["job"]["status"], "cancelled");
    let statuses: Vec<(String, String)> = detail["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["purpose"].as_str().unwrap().into(),
                a["status"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        statuses,
        vec![
            ("granulate".into(), "success".into()),
            ("validate".into(), "cancelled".into())
        ]
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        mock_calls(&key).await.len(),
        before,
        "no re-granulation after the cancel"
    );
    assert_billed_once(id, &detail, &tenant);
}

#[tokio::test]
async fn a_cancel_racing_completion_leaves_one_final_state_settled_once() {
    let key = unique("cancel-race");
    let tenant = unique("cancel-race-tenant");
    let who = Who::WorkerFor(tenant.clone());
    // About 2 s of streaming: the cancel is sent as the answer ends.
    script(&key, json!([slow(200, 100)])).await;
    let id = submit(&who, &quiz(&key), None).await;
    let started = Instant::now();
    loop {
        let s = get(&format!("/api/jobs/{id}/status"), &who).await;
        if s.body["status"] != "processing"
            || s.body["tokens"]["received"].as_u64().unwrap_or(0) >= 100
        {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "{}", s.body);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let r = cancel(id, &who).await;
    let detail = settled(id, &who).await;
    let status = detail["job"]["status"].as_str().unwrap().to_string();
    match r.status {
        200 => assert_eq!(status, "cancelled", "{}", r.body),
        409 => {
            assert_eq!(r.body["code"], "job_not_cancellable");
            assert_eq!(status, "completed", "{}", r.body);
        }
        other => panic!("cancel answered {other}: {}", r.body),
    }
    // Either way the job was finalised once: its spend is what its attempts
    // used, booked once, nothing left reserved.
    assert_billed_once(id, &detail, &tenant);
    // And it stays as it ended.
    let again = cancel(id, &who).await;
    match status.as_str() {
        "cancelled" => assert_eq!(again.status, 200),
        _ => assert_error(&again, 409, "job_not_cancellable"),
    }
}

#[tokio::test]
async fn an_execute_waiting_on_a_job_that_is_cancelled_answers_409_job_cancelled() {
    let key = unique("cancel-envelope");
    let tenant = unique("cancel-envelope-tenant");
    let who = Who::WorkerFor(tenant.clone());
    script(&key, json!([slow(3000, 60)])).await;
    let body = quiz(&key);
    let waiting = {
        let who = who.clone();
        let body = body.clone();
        tokio::spawn(async move { execute(&who, body, None).await })
    };
    // The job is the tenant's only one.
    let started = Instant::now();
    let id = loop {
        let list = get("/api/jobs", &who).await;
        if let Some(id) = list.body["jobs"][0]["id"].as_i64() {
            break id;
        }
        assert!(started.elapsed() < Duration::from_secs(30));
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    until_running(id, &who, streaming).await;
    let r = cancel(id, &who).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let answer = waiting.await.expect("the execute finished");
    assert_error(&answer, 409, "job_cancelled");
    assert_eq!(answer.body["details"]["jobId"], id);
    assert_eq!(answer.body["details"]["cancelledBy"], "worker:e2e-tests");
}
