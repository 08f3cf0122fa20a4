//! A job as its owner reads it (`GET /api/jobs/{id}/status`, the events
//! stream, a cancel's answer), from the kit's `jobs` table: status, stage,
//! percent done (tokens streamed of those expected), usage, cost, failure or
//! cancel, and timings. The row and its reading are the kit's; a worker adds
//! its own fields beside the view if it has any.

use super::store::{stage, JobStatus};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// The columns of a job's row the view reads (`read_job`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct JobRow {
    pub id: i64,
    pub client_id: String,
    pub execution_id: String,
    pub status: JobStatus,
    pub stage: String,
    pub run_mode: String,
    pub run_count: i64,
    pub provider: Option<String>,
    pub model: Option<String>,
    pub tokens_input: i64,
    pub tokens_output: i64,
    pub cost_usd: Option<f64>,
    pub failure_code: Option<String>,
    pub failure_reason: Option<String>,
    pub cancelled_by: Option<String>,
    pub cancelled_at: Option<String>,
    pub progress_tokens: i64,
    pub expected_tokens: Option<i64>,
    pub submitted_at_ms: Option<i64>,
    pub started_at_ms: Option<i64>,
    pub heartbeat_at_ms: Option<i64>,
    pub processing_time_ms: Option<i64>,
    pub created_at: String,
    pub updated_at: String,
    pub completed_at: Option<String>,
}

/// The columns [`JobRow`] reads, for a worker's own `SELECT` on its table.
pub const JOB_ROW_COLUMNS: &str = "id, client_id, execution_id, status, stage, run_mode, run_count, provider, model, \
     tokens_input, tokens_output, cost_usd, failure_code, failure_reason, cancelled_by, cancelled_at, \
     progress_tokens, expected_tokens, submitted_at_ms, started_at_ms, heartbeat_at_ms, processing_time_ms, \
     created_at, updated_at, completed_at";

/// Percent done: 100 once completed; otherwise the tokens streamed of those
/// expected, held at 99 until the job ends (a model may write more than
/// expected), 0 without an expectation.
pub fn percent(status: JobStatus, tokens: i64, expected: Option<i64>) -> u8 {
    if status == JobStatus::Completed {
        return 100;
    }
    match expected {
        Some(e) if e > 0 => (tokens.max(0).saturating_mul(100) / e).min(99) as u8,
        _ => 0,
    }
}

/// A job's view as it goes out (camelCase, the kit's links).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobView {
    pub job_id: i64,
    pub execution_id: String,
    pub status: JobStatus,
    /// The run's stage; a queued job no consumer has started yet shows `queued`.
    pub stage: String,
    pub run_mode: String,
    pub run: i64,
    pub percent: u8,
    pub progress: Value,
    pub provider: Option<String>,
    pub model: Option<String>,
    pub tokens: Value,
    pub cost_usd: Option<f64>,
    pub failure: Option<Value>,
    pub cancelled_by: Option<String>,
    pub cancelled_at: Option<String>,
    pub timings: Value,
    pub status_url: String,
    pub events_url: String,
    pub cancel_url: String,
}

impl JobView {
    /// The view of `row` at `now_ms` (for the elapsed time of a running job).
    pub fn of(row: &JobRow, now_ms: u64) -> JobView {
        let id = row.id;
        let queued = row.status == JobStatus::Processing && row.started_at_ms.is_none();
        let elapsed = match (row.status, row.started_at_ms.or(row.submitted_at_ms)) {
            (JobStatus::Processing, Some(start)) => Some((now_ms as i64 - start).max(0)),
            _ => row.processing_time_ms,
        };
        JobView {
            job_id: id,
            execution_id: row.execution_id.clone(),
            status: row.status,
            stage: if queued && row.run_mode == "queue" {
                stage::QUEUED.to_string()
            } else {
                row.stage.clone()
            },
            run_mode: row.run_mode.clone(),
            run: row.run_count,
            percent: percent(row.status, row.progress_tokens, row.expected_tokens),
            progress: json!({"tokens": row.progress_tokens, "expectedTokens": row.expected_tokens}),
            provider: row.provider.clone(),
            model: row.model.clone(),
            tokens: json!({"input": row.tokens_input, "output": row.tokens_output}),
            cost_usd: row.cost_usd,
            failure: row
                .failure_code
                .as_ref()
                .filter(|_| row.status == JobStatus::Failed)
                .map(|code| json!({"code": code, "reason": row.failure_reason})),
            cancelled_by: row.cancelled_by.clone(),
            cancelled_at: row.cancelled_at.clone(),
            timings: json!({
                "createdAt": row.created_at,
                "updatedAt": row.updated_at,
                "completedAt": row.completed_at,
                "submittedAtMs": row.submitted_at_ms,
                "startedAtMs": row.started_at_ms,
                "heartbeatAtMs": row.heartbeat_at_ms,
                "elapsedMs": elapsed,
            }),
            status_url: format!("/api/jobs/{id}/status"),
            events_url: format!("/api/jobs/{id}/events"),
            cancel_url: format!("/api/jobs/{id}/cancel"),
        }
    }

    /// Whether the job has ended (and, for a cancelled one, its run settled:
    /// `completed_at` is set by the settling).
    pub fn ended(row: &JobRow) -> bool {
        row.status != JobStatus::Processing
            && (row.status != JobStatus::Cancelled || row.completed_at.is_some())
    }
}

/// Job `id` in the caller's scope (`None`: every tenant), from `schema`'s
/// table; another tenant's job is a 404 like a missing one.
#[cfg(feature = "worker")]
pub async fn read_job(
    db: &crate::d1::D1,
    schema: super::JobSchema,
    id: i64,
    scope: Option<&str>,
) -> crate::error::AppResult<JobRow> {
    use crate::d1::bind::{i, ot};
    let sql = format!(
        "SELECT {JOB_ROW_COLUMNS} FROM {} WHERE id = ?1 AND (?2 IS NULL OR client_id = ?2)",
        schema.jobs
    );
    db.first::<JobRow>("reading a job", db.stmt(&sql, &[i(id), ot(scope)])?)
        .await?
        .ok_or_else(|| crate::error::AppError::not_found(format!("no job {id}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn row(status: JobStatus) -> JobRow {
        JobRow {
            id: 7,
            client_id: "c".into(),
            execution_id: "e".into(),
            status,
            stage: "running".into(),
            run_mode: "queue".into(),
            run_count: 1,
            provider: None,
            model: None,
            tokens_input: 0,
            tokens_output: 0,
            cost_usd: None,
            failure_code: Some("provider_error".into()),
            failure_reason: Some("down".into()),
            cancelled_by: None,
            cancelled_at: None,
            progress_tokens: 50,
            expected_tokens: Some(200),
            submitted_at_ms: Some(1_000),
            started_at_ms: Some(2_000),
            heartbeat_at_ms: None,
            processing_time_ms: None,
            created_at: "t".into(),
            updated_at: "t".into(),
            completed_at: None,
        }
    }

    #[test]
    fn percent_is_tokens_of_expected_held_below_100_until_completed() {
        assert_eq!(percent(JobStatus::Processing, 50, Some(200)), 25);
        assert_eq!(percent(JobStatus::Processing, 500, Some(200)), 99);
        assert_eq!(percent(JobStatus::Processing, 5, None), 0);
        assert_eq!(percent(JobStatus::Processing, 5, Some(0)), 0);
        assert_eq!(percent(JobStatus::Completed, 0, Some(200)), 100);
    }

    #[test]
    fn a_view_shows_its_links_a_failure_only_when_failed_and_queued_before_start() {
        let v = JobView::of(&row(JobStatus::Processing), 5_000);
        assert_eq!(v.percent, 25);
        assert_eq!(v.failure, None);
        assert_eq!(v.timings["elapsedMs"], 3_000);
        assert_eq!(v.cancel_url, "/api/jobs/7/cancel");
        let mut queued = row(JobStatus::Processing);
        queued.started_at_ms = None;
        assert_eq!(JobView::of(&queued, 0).stage, "queued");
        let failed = JobView::of(&row(JobStatus::Failed), 0);
        assert_eq!(failed.failure.unwrap()["code"], "provider_error");
    }

    #[test]
    fn a_cancelled_job_has_ended_once_its_run_settled() {
        let mut r = row(JobStatus::Cancelled);
        assert!(!JobView::ended(&r));
        r.completed_at = Some("t".into());
        assert!(JobView::ended(&r));
        assert!(JobView::ended(&row(JobStatus::Failed)));
        assert!(!JobView::ended(&row(JobStatus::Processing)));
    }
}
