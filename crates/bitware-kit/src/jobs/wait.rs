//! Jobs that outlive their request: where a job runs, how a request waits
//! for one that another request or the queue runs, and the answers its
//! waiters get (a completed job's result, a failure by its stored code, a
//! cancel, or a 504 that names where to follow it).

use super::store::{JobStatus, JobStore, RunMode};
use crate::error::{AppError, AppResult, Kind};
use crate::timing::Clock;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// How long jobs may run and where they run (a worker reads them once per
/// isolate: `config::job_settings`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct JobSettings {
    /// A job's own deadline, whatever its request's `timeout`.
    pub job_timeout_ms: u64,
    /// Output rate assumed when deciding whether a job fits inline ([`placement`]).
    pub tokens_per_second: u64,
    /// What `waitUntil` is trusted to give after a response (platform: ~30 s).
    pub wait_until_grace_ms: u64,
    /// Open events streams one tenant may hold at once.
    pub event_streams_per_tenant: u32,
    /// The longest one events stream stays open (it ends with `retry:`).
    pub events_max_ms: u64,
    /// A started run that wrote no heartbeat for this long has gone away.
    pub stall_ms: u64,
}

/// What a waiting request saw.
pub enum Waited {
    Completed(Value),
    Failed(AppError),
    /// Still running when the wait ended.
    Running,
}

/// Hex SHA-256 of what a request asks for (the worker decides what that is:
/// the fields that shape the result, not how the caller waits), binding an
/// idempotency key to its request.
pub fn request_hash(canonical: &Value) -> String {
    let digest = Sha256::digest(canonical.to_string().as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// RFC 7240: `Prefer: respond-async` (among other preferences).
pub fn prefers_async(prefer: Option<&str>) -> bool {
    prefer.is_some_and(|p| {
        p.split(',')
            .map(|t| t.split(';').next().unwrap_or("").trim())
            .any(|t| t.eq_ignore_ascii_case("respond-async"))
    })
}

/// A job expected to need longer than the request's wait plus what
/// `waitUntil` guarantees after it goes to the queue, so it cannot be cut
/// off mid-generation in production; shorter ones run inline (no queue hop).
pub fn placement(
    expected_output_tokens: u32,
    tokens_per_second: u64,
    timeout_ms: u64,
    wait_until_grace_ms: u64,
) -> RunMode {
    let expected_ms = u64::from(expected_output_tokens) * 1_000 / tokens_per_second.max(1);
    if expected_ms > timeout_ms + wait_until_grace_ms {
        RunMode::Queue
    } else {
        RunMode::Inline
    }
}

/// Pause before the `n`th look at a job being joined: 100 ms, growing by
/// half each time, capped at 1 s.
pub fn poll_delay_ms(n: u32) -> u64 {
    let mut d = 100.0_f64;
    for _ in 0..n.min(10) {
        d *= 1.5;
    }
    (d as u64).min(1_000)
}

/// Links of a job for `202 Accepted` and 504 answers.
pub fn job_links(job_id: i64) -> Value {
    json!({
        "jobId": job_id,
        "statusUrl": format!("/api/jobs/{job_id}/status"),
        "eventsUrl": format!("/api/jobs/{job_id}/events"),
        "resultUrl": format!("/api/jobs/{job_id}"),
    })
}

/// The error a failed job's waiters get, from its stored code and reason.
pub fn failure_error(job_id: i64, code: Option<&str>, reason: Option<&str>) -> AppError {
    let code = code.unwrap_or("job_failed");
    let kind = match code {
        "budget_exceeded" => Kind::Unprocessable,
        "deadline_exceeded" => Kind::GatewayTimeout,
        "database_unavailable" | "storage_unavailable" | "queue_unavailable" => Kind::Unavailable,
        _ => Kind::BadGateway,
    };
    let code: &'static str = match code {
        "budget_exceeded" => "budget_exceeded",
        "deadline_exceeded" => "deadline_exceeded",
        "provider_error" => "provider_error",
        "dead_lettered" => "dead_lettered",
        "abandoned" => "abandoned",
        "database_unavailable" => "database_unavailable",
        "storage_unavailable" => "storage_unavailable",
        "queue_unavailable" => "queue_unavailable",
        _ => "job_failed",
    };
    AppError::new(kind, code, reason.unwrap_or("the job failed").to_string())
        .with_details(json!({"jobId": job_id, "statusUrl": format!("/api/jobs/{job_id}/status")}))
}

/// The answer for a cancelled job (its run, a waiter, a repeated
/// X-Request-ID, the Resource Manager's envelope): a 409 that names it and
/// who cancelled it. Running it again takes a new X-Request-ID.
pub fn cancelled_error(job_id: i64, by: Option<&str>, at: Option<&str>) -> AppError {
    AppError::conflict(
        "job_cancelled",
        format!(
            "job {job_id} was cancelled{}; send the request with a new X-Request-ID to run it again",
            by.map(|b| format!(" by {b}")).unwrap_or_default()
        ),
    )
    .with_details(json!({
        "jobId": job_id,
        "cancelledBy": by,
        "cancelledAt": at,
        "statusUrl": format!("/api/jobs/{job_id}/status"),
        "resultUrl": format!("/api/jobs/{job_id}"),
    }))
}

/// The answer of a request whose wait ended before its job.
pub fn still_running(job_id: i64, waited_ms: u64) -> AppError {
    AppError::new(
        Kind::GatewayTimeout,
        "deadline_exceeded",
        format!(
            "the job is still running after {waited_ms} ms (the request's timeout); it continues: \
             follow statusUrl, or send the same X-Request-ID again to get its result"
        ),
    )
    .with_details(job_links(job_id))
}

/// Wait for a job to end, looking at its row with a growing pause, until
/// `until_ms`.
pub async fn wait_for<C: Clock, J: JobStore>(
    clock: &C,
    jobs: &J,
    job_id: i64,
    until_ms: u64,
) -> AppResult<Waited> {
    let mut n = 0;
    loop {
        if let Some(state) = jobs.job_state(job_id).await? {
            match state.status {
                JobStatus::Completed => {
                    let result = state
                        .result_json
                        .as_deref()
                        .and_then(|r| serde_json::from_str(r).ok())
                        .ok_or_else(|| {
                            AppError::internal("a completed job has no stored result")
                        })?;
                    return Ok(Waited::Completed(result));
                }
                JobStatus::Failed => {
                    return Ok(Waited::Failed(failure_error(
                        job_id,
                        state.failure_code.as_deref(),
                        state.failure_reason.as_deref(),
                    )))
                }
                JobStatus::Cancelled => {
                    return Ok(Waited::Failed(cancelled_error(
                        job_id,
                        state.cancelled_by.as_deref(),
                        None,
                    )))
                }
                JobStatus::Processing => {}
            }
        }
        let now = clock.now_ms();
        if now >= until_ms {
            return Ok(Waited::Running);
        }
        clock.sleep(poll_delay_ms(n).min(until_ms - now)).await;
        n += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefer_respond_async_is_found_among_preferences() {
        assert!(prefers_async(Some("respond-async")));
        assert!(prefers_async(Some(
            "return=minimal, Respond-Async; wait=10"
        )));
        assert!(!prefers_async(Some("return=representation")));
        assert!(!prefers_async(None));
    }

    #[test]
    fn long_jobs_go_to_the_queue_short_ones_run_inline() {
        // 10 000 tokens at 50 t/s = 200 s: past a 30 s wait plus 20 s of waitUntil.
        assert_eq!(placement(10_000, 50, 30_000, 20_000), RunMode::Queue);
        assert_eq!(placement(1_000, 50, 30_000, 20_000), RunMode::Inline);
        assert_eq!(placement(2_500, 50, 30_000, 20_000), RunMode::Inline);
        assert_eq!(placement(2_501, 50, 30_000, 20_000), RunMode::Queue);
        assert_eq!(placement(10, 0, 1_000, 0), RunMode::Queue);
    }

    #[test]
    fn poll_backoff_grows_from_100_ms_to_1_s() {
        assert_eq!(poll_delay_ms(0), 100);
        assert_eq!(poll_delay_ms(1), 150);
        assert!(poll_delay_ms(3) > poll_delay_ms(2));
        assert_eq!(poll_delay_ms(7), 1_000);
        assert_eq!(poll_delay_ms(1_000), 1_000);
    }

    #[test]
    fn a_request_hash_is_hex_sha256_of_its_canonical_form() {
        let a = request_hash(&json!({"params": {"topic": "Rust"}}));
        assert_eq!(a.len(), 64);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, request_hash(&json!({"params": {"topic": "Go"}})));
    }

    #[test]
    fn failures_keep_their_code_and_status_and_unknown_codes_are_job_failed() {
        let e = failure_error(7, Some("budget_exceeded"), Some("over"));
        assert_eq!((e.code, e.kind), ("budget_exceeded", Kind::Unprocessable));
        let e = failure_error(7, Some("queue_unavailable"), None);
        assert_eq!((e.code, e.kind), ("queue_unavailable", Kind::Unavailable));
        let e = failure_error(7, Some("something else"), None);
        assert_eq!((e.code, e.kind), ("job_failed", Kind::BadGateway));
        assert_eq!(still_running(7, 10).kind, Kind::GatewayTimeout);
        assert_eq!(
            cancelled_error(7, Some("admin:a"), None).code,
            "job_cancelled"
        );
    }
}
