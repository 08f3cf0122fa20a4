//! Panics contained (bitware_kit::contain), end to end against `wrangler dev`:
//! the development-only route `/__test/panic` (ENVIRONMENT=development and
//! TEST_PANIC_ROUTE=enabled, scripts/lib.sh) panics inside the worker. The
//! panicking request gets a JSON 500 with its request id and nothing of the
//! panic's text; a request in flight on the same instance gets a JSON 503;
//! the next request succeeds on a fresh instance; and the jobs that were
//! running are not lost: the scheduled sweep ends one `abandoned`, booking
//! what its run had streamed, and its idempotency key runs again to
//! completion; the other's key takes it over once its dead run wrote no
//! heartbeat for the stall period, long before its deadline.
//! One test, alone in its own `cargo test` run (./test.sh e2e): the reset
//! would fail any other test's requests in flight.

mod support;

use reqwest::Method;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use support::*;

async fn execute_with(who: &Who, body: &Value, headers: &[(&str, &str)]) -> Reply {
    send(Method::POST, "/api/execute", who, Some(body), headers).await
}

async fn status(id: i64) -> Value {
    let s = get(&format!("/api/jobs/{id}/status"), &Who::Client).await;
    assert_eq!(s.status, 200, "{}", s.body);
    s.body
}

/// Poll until `done` holds of the job's status (at most `secs`).
async fn until(id: i64, secs: u64, done: impl Fn(&Value) -> bool) -> Value {
    let started = Instant::now();
    loop {
        let s = status(id).await;
        if done(&s) {
            return s;
        }
        assert!(
            started.elapsed() < Duration::from_secs(secs),
            "job {id}: {s}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_panic_answers_json_resets_the_instance_and_loses_no_job() {
    // A job streaming for ~20 s on the queue consumer, and a synchronous
    // execute streaming for ~10 s, both running when the panic comes.
    let job_key = unique("panic-job");
    let job_rid = unique("panic-job-rid");
    let sync_key = unique("panic-sync");
    script(
        &job_key,
        json!([{"kind": "valid", "usage": {"input": 1000, "output": 2000}, "tokensPerSecond": 100, "ttftMs": 200}]),
    )
    .await;
    script(
        &sync_key,
        json!([{"kind": "valid", "usage": {"input": 1000, "output": 1000}, "tokensPerSecond": 100, "ttftMs": 200}]),
    )
    .await;
    let job_body = json!({"action": "granulate", "input": {"topic": job_key, "structureType": "quiz", "granularityLevel": 1}});
    let accepted = execute_with(
        &Who::Client,
        &job_body,
        &[("Prefer", "respond-async"), ("X-Request-ID", &job_rid)],
    )
    .await;
    assert_eq!(accepted.status, 202, "{}", accepted.body);
    let job = accepted.body["jobId"].as_i64().expect("a job id");
    until(job, 30, |s| {
        s["stage"] == "generating" && s["tokens"]["received"].as_u64() > Some(0)
    })
    .await;
    // The synchronous execute carries a key: after the panic its run is dead,
    // and the same key takes it over once the run wrote no heartbeat for the
    // stall period (JOB_STALL_MS, scripts/lib.sh).
    let sync_rid = unique("panic-sync-rid");
    let sync_body = granulate(&sync_key, "quiz", 1);
    let in_flight = {
        let (body, rid) = (sync_body.clone(), sync_rid.clone());
        tokio::spawn(async move {
            send(
                Method::POST,
                "/api/execute",
                &Who::Client,
                Some(&body),
                &[("X-Request-ID", rid.as_str())],
            )
            .await
        })
    };
    tokio::time::sleep(Duration::from_millis(1500)).await;

    // The panic: a JSON 500 naming the request, nothing of the panic's text.
    let rid = unique("panic-rid");
    let r = http()
        .get(format!("{}/__test/panic", base()))
        .header("X-Request-ID", &rid)
        .send()
        .await
        .expect("the worker answers");
    let code = r.status().as_u16();
    let request_id = r
        .headers()
        .get("X-Request-ID")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let text = r.text().await.unwrap_or_default();
    assert_eq!(code, 500, "{text}");
    let body: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"));
    assert_eq!(body["code"], "internal_error", "{body}");
    assert_eq!(body["details"]["requestId"], rid.as_str(), "{body}");
    assert_eq!(request_id.as_deref(), Some(rid.as_str()));
    for leak in [
        "test-panic-route",
        "on purpose",
        "panicked",
        "src/lib.rs",
        "unreachable",
    ] {
        assert!(!text.contains(leak), "the answer shows {leak:?}: {text}");
    }

    // The request in flight on the same instance: a JSON 503, not a hang.
    let other = tokio::time::timeout(Duration::from_secs(30), in_flight)
        .await
        .expect("the request in flight is answered")
        .expect("the request task");
    assert_error(&other, 503, "instance_reset");

    // The next requests succeed, on a fresh instance.
    let health = get("/health", &Who::Nobody).await;
    assert_eq!(health.status, 200, "{}", health.body);
    let fresh = execute(
        &Who::Client,
        granulate(&unique("after-panic"), "quiz", 1),
        None,
    )
    .await;
    assert_eq!(fresh.status, 200, "{}", fresh.body);

    // The job its runner died with: it completes, or the sweep ends it
    // `abandoned` once past its deadline (moved there in the local D1, as
    // tests/ledger.rs does) and its key runs again.
    let now = status(job).await;
    if now["status"] != "completed" {
        assert_eq!(now["status"], "processing", "{now}");
        let db = std::env::var("D1_FILE").expect("D1_FILE is set by ./test.sh");
        let moved = std::process::Command::new("sqlite3")
            .arg("-cmd")
            .arg(".timeout 10000")
            .arg(&db)
            .arg(format!(
                "UPDATE granulation_jobs SET deadline_at = 1 WHERE id = {job};"
            ))
            .status()
            .expect("sqlite3 runs");
        assert!(moved.success());
        // What the dead run had streamed, frozen since the panic.
        let streamed = d1_number(&format!(
            "SELECT progress_tokens FROM granulation_jobs WHERE id = {job}"
        ));
        assert!(
            streamed > 0.0,
            "the run had streamed tokens before the panic"
        );
        let fired = http()
            .get(format!("{}/__scheduled?cron=*/5+*+*+*+*", base()))
            .send()
            .await
            .expect("the cron fires");
        assert!(fired.status().is_success());
        let ended = status(job).await;
        assert_eq!(
            (&ended["status"], &ended["failureCode"]),
            (&json!("failed"), &json!("abandoned")),
            "{ended}"
        );
        // The sweep booked it: one estimated attempt, on the job and its cost.
        let detail = get(&format!("/api/jobs/{job}"), &Who::Client).await;
        assert_eq!(detail.status, 200, "{}", detail.body);
        assert_stopped_run_booked(&detail.body, streamed);
        script(&job_key, json!([{"kind": "valid"}])).await;
        let again = execute_with(
            &Who::Client,
            &job_body,
            &[("Prefer", "respond-async"), ("X-Request-ID", &job_rid)],
        )
        .await;
        assert!(matches!(again.status, 200 | 202), "{}", again.body);
        let again_id = again.body["jobId"]
            .as_i64()
            .or(again.body["output"]["jobId"].as_i64())
            .expect("a job id");
        assert_eq!(again_id, job, "the key's job runs again: {}", again.body);
    }
    let last = until(job, 60, |s| s["status"] != "processing").await;
    assert_eq!(last["status"], "completed", "{last}");

    // The synchronous job's run died with the instance. Once it wrote no
    // heartbeat for the stall period, the same key takes the job over (it
    // does not wait for the job's deadline): one generation completes, and
    // what the dead run had streamed is booked as an estimated attempt.
    let sync_job = d1_number(&format!(
        "SELECT id FROM granulation_jobs WHERE execution_id = '{sync_rid}'"
    )) as i64;
    let (streamed, beat) = (
        d1_number(&format!(
            "SELECT progress_tokens FROM granulation_jobs WHERE id = {sync_job}"
        )),
        d1_number(&format!(
            "SELECT coalesce(heartbeat_at_ms, started_at_ms) FROM granulation_jobs WHERE id = {sync_job}"
        )),
    );
    assert_eq!(status(sync_job).await["status"], "processing");
    assert!(
        streamed > 0.0,
        "the sync run had streamed tokens before the panic"
    );
    let stall_ms: f64 = 15_000.0; // JOB_STALL_MS of the test stack
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as f64)
        .unwrap_or(0.0);
    let wait = (beat + stall_ms + 1_500.0 - now_ms).max(0.0);
    tokio::time::sleep(Duration::from_millis(wait as u64)).await;
    script(&sync_key, json!([{"kind": "valid"}])).await;
    let taken = execute_with(&Who::Client, &sync_body, &[("X-Request-ID", &sync_rid)]).await;
    assert_eq!(
        taken.status, 200,
        "the key takes the stalled job over: {}",
        taken.body
    );
    let detail = get(&format!("/api/jobs/{sync_job}"), &Who::Client).await;
    assert_eq!(detail.status, 200, "{}", detail.body);
    let job_view = &detail.body["job"];
    assert_eq!(
        (&job_view["status"], &job_view["runs"]),
        (&json!("completed"), &json!(2)),
        "{}",
        detail.body
    );
    assert_stopped_run_booked(&detail.body, streamed);
    // One dead call and one that completed the job, nothing more.
    assert_eq!(mock_calls(&sync_key).await.len(), 2);
    assert_eq!(
        d1_number(&format!(
            "SELECT count(*) FROM spend_reservations WHERE job_id = {sync_job}"
        )),
        0.0,
        "the dead run's reservation was released and the new run's settled"
    );
}

/// One number a query of the local D1 answers.
fn d1_number(sql: &str) -> f64 {
    let db = std::env::var("D1_FILE").expect("D1_FILE is set by ./test.sh");
    let out = std::process::Command::new("sqlite3")
        .arg("-cmd")
        .arg(".timeout 10000")
        .arg(&db)
        .arg(sql)
        .output()
        .expect("sqlite3 runs");
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    text.parse()
        .unwrap_or_else(|_| panic!("{sql}: not a number: {text:?}"))
}

/// The job's attempts hold exactly one `abandoned` attempt: the tokens its
/// dead run had streamed, priced at the planned model's output price
/// (gpt-4o-mini, $0.60 per 1M), its prompt not counted; and the job's cost is
/// the sum of its attempts'.
fn assert_stopped_run_booked(detail: &Value, streamed: f64) {
    let attempts = detail["attempts"].as_array().expect("attempts");
    let stopped: Vec<&Value> = attempts
        .iter()
        .filter(|a| a["status"] == "abandoned")
        .collect();
    assert_eq!(stopped.len(), 1, "{detail}");
    let a = stopped[0];
    assert_eq!(a["tokens"]["output"].as_f64(), Some(streamed), "{a}");
    assert_eq!(a["tokens"]["input"], 0, "{a}");
    let cost = a["costUsd"].as_f64().expect("a priced estimate");
    assert!((cost - streamed * 0.6 / 1e6).abs() < 1e-12, "{a}");
    assert!(
        a["error"]
            .as_str()
            .is_some_and(|e| e.starts_with("estimated")),
        "{a}"
    );
    let sum: f64 = attempts.iter().filter_map(|a| a["costUsd"].as_f64()).sum();
    let job_cost = detail["job"]["costUsd"].as_f64().expect("the job's cost");
    assert!((job_cost - sum).abs() < 1e-9, "{detail}");
}
