//! Waiting for a job another request or the queue runs, and the errors its
//! waiters get.

use crate::services::progress;
use crate::services::timing::Clock;
use crate::types::job::JobStatus;
use bitware_kit::error::{AppError, AppResult, Kind};
use bitware_kit::jobs::JobStore;
use serde_json::{json, Value};

/// What a waiting request saw.
pub enum Waited {
    Completed(Value),
    Failed(AppError),
    /// Still running when the wait ended.
    Running,
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

/// Wait for a job to end, looking at its row with a growing pause, until
/// `until_ms`.
pub async fn wait_for<C: Clock, J: JobStore>(
    clock: &C,
    db: &J,
    job_id: i64,
    until_ms: u64,
) -> AppResult<Waited> {
    let mut n = 0;
    loop {
        if let Some(state) = db.job_state(job_id).await? {
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
        clock
            .sleep(progress::poll_delay_ms(n).min(until_ms - now))
            .await;
        n += 1;
    }
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
    .with_details(progress::job_links(job_id))
}
