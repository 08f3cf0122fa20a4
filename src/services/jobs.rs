//! Jobs as the API reads them: one job (another tenant's is a 404, exactly
//! like one that does not exist), a page of jobs, live status and its event
//! stream, the stored structure, validation history; what a retry re-runs.
//! Each answer is a struct that serde turns into the documented JSON.

use crate::helpers::auth::Principal;
use crate::services::database::{AttemptRow, Database, JobFilter, JobRow, ValidationRow};
use crate::services::{granulator, partial, progress, timing};
use crate::types::api::JobRequest;
use crate::types::bodies::Revalidation;
use crate::types::env::App;
use crate::types::job::{JobStatus, PartialBranch, RunMode, Stage};
use crate::types::outline::Outline;
use bitware_kit::error::{AppError, AppResult};
use serde::Serialize;
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct TokenCounts {
    pub input: u64,
    pub output: u64,
    pub cached: u64,
}

/// Where a completed job's structure is kept.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StorageView {
    #[serde(rename = "type")]
    pub tier: String,
    pub location: Option<String>,
    pub size_bytes: Option<u64>,
}

/// A job's fields as the API shows them.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobView {
    pub id: i64,
    pub client_id: String,
    pub execution_id: String,
    pub topic: String,
    pub structure_type: String,
    pub granularity_level: u8,
    pub target_audience: String,
    pub template_id: Option<i64>,
    pub template_name: Option<String>,
    pub status: JobStatus,
    pub stage: Stage,
    pub runs: u32,
    pub provider: Option<String>,
    pub model: Option<String>,
    pub tokens_used: TokenCounts,
    pub cost_usd: Option<f64>,
    pub quality_score: Option<f64>,
    pub validation_passed: Option<bool>,
    pub total_elements: Option<u64>,
    pub estimated_total_words: Option<u64>,
    pub storage: Option<StorageView>,
    pub processing_time_ms: Option<u64>,
    pub failure_code: Option<String>,
    pub failure_reason: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub completed_at: Option<String>,
    /// Who cancelled the job (`client:…`, `user:…`, `admin:…`, `worker:…`) and when.
    pub cancelled_by: Option<String>,
    pub cancelled_at: Option<String>,
}

impl From<&JobRow> for JobView {
    fn from(j: &JobRow) -> JobView {
        JobView {
            id: j.id,
            client_id: j.client_id.clone(),
            execution_id: j.execution_id.clone(),
            topic: j.topic.clone(),
            structure_type: j.structure_type.clone(),
            granularity_level: j.granularity_level,
            target_audience: j.target_audience.clone(),
            template_id: j.template_id,
            template_name: j.template_name.clone(),
            status: j.status,
            stage: j.stage,
            runs: j.run_count,
            provider: j.provider.clone(),
            model: j.model.clone(),
            tokens_used: TokenCounts {
                input: j.tokens_input,
                output: j.tokens_output,
                cached: j.tokens_cached,
            },
            cost_usd: j.cost_usd,
            quality_score: j.quality_score,
            validation_passed: j.validation_passed,
            total_elements: j.total_elements,
            estimated_total_words: j.estimated_total_words,
            storage: j.storage_type.as_ref().map(|t| StorageView {
                tier: t.clone(),
                location: j.storage_location.clone(),
                size_bytes: j.structure_bytes,
            }),
            processing_time_ms: j.processing_time_ms,
            failure_code: j.failure_code.clone(),
            failure_reason: j.failure_reason.clone(),
            created_at: j.created_at.clone(),
            updated_at: j.updated_at.clone(),
            completed_at: j.completed_at.clone(),
            cancelled_by: j.cancelled_by.clone(),
            cancelled_at: j.cancelled_at.clone(),
        }
    }
}

/// One provider attempt of a job.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AttemptView {
    pub provider: String,
    pub model: String,
    pub purpose: String,
    pub status: String,
    pub http_status: Option<u16>,
    pub latency_ms: u64,
    pub tokens: TokenCounts,
    pub cost_usd: Option<f64>,
    pub error: Option<String>,
    /// The part of a fanned-out outline the call wrote (`skeleton`, `branch 3/8`).
    pub branch: Option<String>,
    pub created_at: String,
}

impl From<AttemptRow> for AttemptView {
    fn from(a: AttemptRow) -> AttemptView {
        AttemptView {
            provider: a.provider,
            model: a.model,
            purpose: a.purpose,
            status: a.status,
            http_status: a.http_status,
            latency_ms: a.latency_ms,
            tokens: TokenCounts {
                input: a.tokens_input,
                output: a.tokens_output,
                cached: a.tokens_cached,
            },
            cost_usd: a.cost_usd,
            error: a.error,
            branch: a.branch,
            created_at: a.created_at,
        }
    }
}

/// `GET /api/jobs/{id}`.
#[derive(Debug, Clone, Serialize)]
pub struct JobDetail {
    pub job: JobView,
    pub attempts: Vec<AttemptView>,
}

/// `GET /api/jobs`.
#[derive(Debug, Clone, Serialize)]
pub struct JobPage {
    pub jobs: Vec<JobView>,
    pub total: u64,
    pub limit: u32,
    pub offset: u32,
}

/// Branches of a fanned-out outline written so far, of how many.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Branches {
    pub done: u64,
    pub total: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Received {
    pub received: u64,
    pub expected: u64,
}

/// A job's live status: stage, percent, elements and tokens so far, elapsed
/// and estimated remaining time (the status route and each event).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobProgress {
    pub job_id: i64,
    pub status: JobStatus,
    pub stage: Stage,
    pub percent: u8,
    pub progress: u8,
    pub elements: Received,
    pub tokens: Received,
    /// `null` for an outline made in one call.
    pub branches: Option<Branches>,
    pub elapsed_ms: Option<u64>,
    pub estimated_remaining_ms: Option<u64>,
    pub run_mode: RunMode,
    pub abandoned: bool,
    pub failure_code: Option<String>,
    pub failure_reason: Option<String>,
    pub updated_at: String,
    pub status_url: String,
    pub events_url: String,
    pub result_url: String,
}

/// Progress follows the stage the pipeline last recorded; a queued job no
/// consumer has started shows `queued`.
pub fn job_progress(job: &JobRow, now: u64) -> JobProgress {
    let running = job.status == JobStatus::Processing;
    let queued = running && job.run_mode == RunMode::Queue && job.started_at_ms.is_none();
    let stage = if queued { Stage::Queued } else { job.stage };
    let started = job.started_at_ms.or(job.submitted_at_ms);
    let elapsed = match (running, job.submitted_at_ms) {
        (true, Some(s)) => Some(now.saturating_sub(s)),
        _ => job.processing_time_ms,
    };
    let expected_tokens = job.expected_tokens.unwrap_or(0);
    let expected_elements = job.expected_elements.unwrap_or(0);
    let (tokens, elements) = if running {
        (job.progress_tokens, job.progress_elements)
    } else {
        (
            job.tokens_output,
            job.total_elements.unwrap_or(job.progress_elements),
        )
    };
    let estimate = progress::estimate(
        stage,
        tokens,
        expected_tokens,
        elements,
        expected_elements,
        started.map(|s| now.saturating_sub(s)).unwrap_or(0),
    );
    let id = job.id;
    JobProgress {
        job_id: id,
        status: job.status,
        stage,
        percent: estimate.percent,
        progress: estimate.percent,
        elements: Received {
            received: elements,
            expected: expected_elements,
        },
        tokens: Received {
            received: tokens,
            expected: expected_tokens,
        },
        // A completed fan-out wrote every branch, whenever progress was last written.
        branches: (job.progress_branches_total > 0).then_some(Branches {
            done: match job.status {
                JobStatus::Completed => job.progress_branches_total,
                _ => job.progress_branches_done,
            },
            total: job.progress_branches_total,
        }),
        elapsed_ms: elapsed,
        estimated_remaining_ms: if running {
            estimate.remaining_ms
        } else {
            Some(0)
        },
        run_mode: job.run_mode,
        abandoned: running && job.deadline_at < now,
        failure_code: job.failure_code.clone(),
        failure_reason: job.failure_reason.clone(),
        updated_at: job.updated_at.clone(),
        status_url: format!("/api/jobs/{id}/status"),
        events_url: format!("/api/jobs/{id}/events"),
        result_url: format!("/api/jobs/{id}"),
    }
}

/// `GET /api/jobs/{id}/structure`: a completed job's whole outline
/// (`complete: true`), or a running job's branches final so far (issue 24:
/// `complete: false`, `source: "partial"`, `branches` in skeleton order).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StructureView {
    pub job_id: i64,
    pub structure_type: String,
    pub source: &'static str,
    pub complete: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub structure: Option<Outline>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub branches: Option<Vec<PartialBranch>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct InputOutput {
    pub input: u64,
    pub output: u64,
}

/// One recorded verdict.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ValidationView {
    pub id: i64,
    pub job_id: i64,
    pub level: u8,
    pub accuracy_percentage: f64,
    pub threshold: f64,
    pub passed: bool,
    pub criteria: Value,
    pub issues: Value,
    pub ai_feedback: Option<String>,
    pub tokens_used: InputOutput,
    pub cost_usd: Option<f64>,
    pub created_at: String,
}

impl From<ValidationRow> for ValidationView {
    fn from(r: ValidationRow) -> ValidationView {
        ValidationView {
            id: r.id,
            job_id: r.job_id,
            level: r.validation_level,
            accuracy_percentage: r.accuracy_percentage,
            threshold: r.threshold,
            passed: r.passed,
            criteria: serde_json::from_str(&r.criteria).unwrap_or(Value::Null),
            issues: serde_json::from_str(&r.issues).unwrap_or(Value::Null),
            ai_feedback: r.ai_feedback,
            tokens_used: InputOutput {
                input: r.tokens_input,
                output: r.tokens_output,
            },
            cost_usd: r.cost_usd,
            created_at: r.created_at,
        }
    }
}

/// `GET /api/validation/history`.
#[derive(Debug, Clone, Serialize)]
pub struct ValidationHistory {
    pub results: Vec<ValidationView>,
    pub count: usize,
}

/// The job `id` in the caller's scope (`None`: every tenant's).
pub(crate) async fn scoped(db: &Database, id: i64, scope: Option<&str>) -> AppResult<JobRow> {
    db.job(id, scope)
        .await?
        .ok_or_else(|| AppError::not_found(format!("no job {id}")))
}

pub async fn list(app: &App, filter: &JobFilter<'_>) -> AppResult<JobPage> {
    let (rows, total) = Database::new(app)?.list_jobs(filter).await?;
    Ok(JobPage {
        jobs: rows.iter().map(JobView::from).collect(),
        total,
        limit: filter.limit,
        offset: filter.offset,
    })
}

pub async fn detail(app: &App, id: i64, scope: Option<&str>) -> AppResult<JobDetail> {
    let db = Database::new(app)?;
    let job = scoped(&db, id, scope).await?;
    let attempts = db.attempts(job.id).await?;
    Ok(JobDetail {
        job: JobView::from(&job),
        attempts: attempts.into_iter().map(AttemptView::from).collect(),
    })
}

pub async fn status(app: &App, id: i64, scope: Option<&str>) -> AppResult<JobProgress> {
    let job = scoped(&Database::new(app)?, id, scope).await?;
    Ok(job_progress(&job, timing::now_ms()))
}

pub async fn structure(
    app: &App,
    id: i64,
    scope: Option<&str>,
    from_elements: bool,
) -> AppResult<StructureView> {
    let db = Database::new(app)?;
    let job = scoped(&db, id, scope).await?;
    if job.status == JobStatus::Processing {
        // The current run's final branches only: an older run's never show.
        let rows = db.branches_since(job.id, job.run_count, 0).await?;
        return Ok(StructureView {
            job_id: job.id,
            structure_type: job.structure_type,
            source: "partial",
            complete: false,
            structure: None,
            branches: Some(partial::in_order(rows)),
        });
    }
    if job.status != JobStatus::Completed {
        return Err(AppError::conflict(
            "job_not_completed",
            format!("job {} is {}", job.id, job.status),
        ));
    }
    let (structure, source) = granulator::load_structure(app, &db, &job, from_elements).await?;
    Ok(StructureView {
        job_id: job.id,
        structure_type: job.structure_type,
        source,
        complete: true,
        structure: Some(structure),
        branches: None,
    })
}

/// A failed job and the request it was made with, to run again in place.
pub async fn retry_request(
    app: &App,
    id: i64,
    scope: Option<&str>,
) -> AppResult<(JobRow, JobRequest)> {
    let db = Database::new(app)?;
    let job = scoped(&db, id, scope).await?;
    if job.status != JobStatus::Failed {
        return Err(AppError::conflict(
            "job_not_failed",
            format!(
                "job {} is {}; only failed jobs can be retried",
                job.id, job.status
            ),
        ));
    }
    let payload = db
        .job_payload(job.id)
        .await?
        .ok_or_else(|| AppError::not_found("the job vanished"))?;
    let request: JobRequest = serde_json::from_str(&payload.request_params)
        .map_err(|e| AppError::internal(format!("unreadable job parameters: {e}")))?;
    Ok((job, request))
}

pub async fn validation_history(
    app: &App,
    scope: Option<&str>,
    job_id: Option<i64>,
    limit: u32,
) -> AppResult<ValidationHistory> {
    let rows = Database::new(app)?
        .validation_history(scope, job_id, limit)
        .await?;
    let results: Vec<ValidationView> = rows.into_iter().map(ValidationView::from).collect();
    Ok(ValidationHistory {
        count: results.len(),
        results,
    })
}

/// `POST /api/validate`: a completed job validated again.
pub async fn revalidate(
    app: &App,
    principal: &Principal,
    r: &Revalidation,
) -> AppResult<granulator::Revalidated> {
    let db = Database::new(app)?;
    granulator::revalidate(app, &db, principal, r.job_id, r.level, r.threshold).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn job(status: &str, stage: &str, run_mode: &str) -> JobRow {
        serde_json::from_value(json!({
            "id": 9, "client_id": "c", "execution_id": "e", "topic": "t", "structure_type": "quiz",
            "granularity_level": 2, "target_audience": "a", "template_id": 3, "template_name": "quiz_basic",
            "status": status, "stage": stage, "run_count": 1, "provider": "offline", "model": "offline",
            "tokens_input": 10, "tokens_output": 400, "tokens_cached": 0, "cost_usd": 0.0, "quality_score": 0.9,
            "validation_passed": 0, "total_elements": 12, "estimated_total_words": 3000, "storage_type": "kv",
            "storage_location": "structure:9", "structure_bytes": 30000, "processing_time_ms": 1500,
            "failure_code": null, "failure_reason": null, "deadline_at": 10_000, "created_at": "c",
            "updated_at": "u", "completed_at": null, "run_mode": run_mode, "submitted_at_ms": 1_000,
            "started_at_ms": null, "heartbeat_at_ms": null, "progress_tokens": 50, "progress_elements": 2,
            "expected_tokens": 1000, "expected_elements": 20
        }))
        .unwrap()
    }

    /// The documented job shape: every field name pinned, integers as integers.
    #[test]
    fn a_job_shows_the_documented_fields() {
        let v = serde_json::to_value(JobView::from(&job("completed", "done", "inline"))).unwrap();
        assert_eq!(
            v,
            json!({
                "id": 9, "clientId": "c", "executionId": "e", "topic": "t", "structureType": "quiz",
                "granularityLevel": 2, "targetAudience": "a", "templateId": 3, "templateName": "quiz_basic",
                "status": "completed", "stage": "done", "runs": 1, "provider": "offline", "model": "offline",
                "tokensUsed": {"input": 10, "output": 400, "cached": 0}, "costUsd": 0.0, "qualityScore": 0.9,
                "validationPassed": false, "totalElements": 12, "estimatedTotalWords": 3000,
                "storage": {"type": "kv", "location": "structure:9", "sizeBytes": 30000},
                "processingTimeMs": 1500, "failureCode": null, "failureReason": null,
                "createdAt": "c", "updatedAt": "u", "completedAt": null,
                "cancelledBy": null, "cancelledAt": null,
            })
        );
    }

    #[test]
    fn a_queued_job_nobody_started_shows_queued_and_a_finished_one_its_totals() {
        let p = job_progress(&job("processing", "generating", "queue"), 5_000);
        assert_eq!(
            (p.stage, p.percent, p.elapsed_ms),
            (Stage::Queued, 0, Some(4_000))
        );
        assert_eq!(
            p.tokens,
            Received {
                received: 50,
                expected: 1000
            }
        );
        assert!(!p.abandoned);
        assert!(job_progress(&job("processing", "generating", "queue"), 20_000).abandoned);
        let running = job_progress(&job("processing", "generating", "inline"), 5_000);
        assert_eq!(running.stage, Stage::Generating);
        let done = job_progress(&job("completed", "done", "inline"), 5_000);
        assert_eq!((done.percent, done.estimated_remaining_ms), (100, Some(0)));
        assert_eq!(done.elements.received, 12);
        assert_eq!(done.tokens.received, 400);
        assert_eq!(done.elapsed_ms, Some(1500));
        let v = serde_json::to_value(&done).unwrap();
        for field in [
            "jobId",
            "status",
            "stage",
            "percent",
            "progress",
            "elements",
            "tokens",
            "elapsedMs",
            "estimatedRemainingMs",
            "runMode",
            "abandoned",
            "failureCode",
            "failureReason",
            "updatedAt",
            "statusUrl",
            "eventsUrl",
            "resultUrl",
        ] {
            assert!(v.get(field).is_some(), "{field}");
        }
        assert_eq!(v["statusUrl"], "/api/jobs/9/status");
        assert_eq!(v["runMode"], "inline");
    }

    #[test]
    fn a_recorded_verdict_shows_its_json_columns_parsed() {
        let row: ValidationRow = serde_json::from_value(json!({
            "id": 1, "job_id": 9, "validation_level": 2, "accuracy_percentage": 82.5, "threshold": 80,
            "passed": 1, "criteria": "[{\"name\":\"x\"}]", "issues": "[]", "ai_feedback": "ok",
            "tokens_input": 5, "tokens_output": 6, "cost_usd": 0.001, "created_at": "c"
        }))
        .unwrap();
        let v = serde_json::to_value(ValidationView::from(row)).unwrap();
        assert_eq!(v["jobId"], 9);
        assert_eq!(v["level"], 2);
        assert_eq!(v["passed"], true);
        assert_eq!(v["criteria"], json!([{"name": "x"}]));
        assert_eq!(v["tokensUsed"], json!({"input": 5, "output": 6}));
    }
}
