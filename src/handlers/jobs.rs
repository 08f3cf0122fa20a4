//! Job endpoints, client-scoped (worker and admin see every client's jobs).
//! Another client's job is a 404, exactly like a job that does not exist.

use super::{Call, Reply};
use crate::error::{AppError, AppResult};
use crate::services::database::{Database, JobFilter, JobRow};
use crate::services::granulator;
use crate::services::progress;
use crate::services::spend::Payer;
use crate::types::api::JobRequest;
use crate::types::structure::StructureType;
use serde_json::{json, Value};

pub const MAX_PAGE: u32 = 100;
const STATUSES: [&str; 3] = ["processing", "completed", "failed"];

/// `YYYY-MM-DD` or a full ISO-8601 UTC timestamp.
fn valid_date(s: &str) -> bool {
    let b = s.as_bytes();
    let date_ok = b.len() >= 10
        && b[..10].iter().enumerate().all(|(i, c)| {
            if i == 4 || i == 7 {
                *c == b'-'
            } else {
                c.is_ascii_digit()
            }
        });
    date_ok
        && (b.len() == 10
            || (b[10] == b'T'
                && s.len() <= 30
                && s[11..]
                    .chars()
                    .all(|c| c.is_ascii_digit() || ":.Z".contains(c))))
}

/// Job fields as the API shows them (integers as integers, not floats).
pub fn job_json(j: &JobRow) -> Value {
    let int = |x: Option<f64>| x.map(|v| v as i64);
    json!({
        "id": j.id as i64,
        "clientId": j.client_id,
        "executionId": j.execution_id,
        "topic": j.topic,
        "structureType": j.structure_type,
        "granularityLevel": j.granularity_level as i64,
        "targetAudience": j.target_audience,
        "templateId": int(j.template_id),
        "templateName": j.template_name,
        "status": j.status,
        "stage": j.stage,
        "runs": j.run_count as i64,
        "provider": j.provider,
        "model": j.model,
        "tokensUsed": {"input": j.tokens_input as i64, "output": j.tokens_output as i64, "cached": j.tokens_cached as i64},
        "costUsd": j.cost_usd,
        "qualityScore": j.quality_score,
        "validationPassed": j.validation_passed.map(|v| v != 0.0),
        "totalElements": int(j.total_elements),
        "estimatedTotalWords": int(j.estimated_total_words),
        "storage": j.storage_type.as_ref().map(|t| json!({"type": t, "location": j.storage_location, "sizeBytes": int(j.structure_bytes)})),
        "processingTimeMs": int(j.processing_time_ms),
        "failureCode": j.failure_code,
        "failureReason": j.failure_reason,
        "createdAt": j.created_at,
        "updatedAt": j.updated_at,
        "completedAt": j.completed_at,
    })
}

async fn scoped_job(call: &Call<'_>, db: &Database) -> AppResult<JobRow> {
    let id = call.id_param("id")?;
    db.job(id, call.scope()?.as_deref())
        .await?
        .ok_or_else(|| AppError::not_found(format!("no job {id}")))
}

pub async fn list(call: &Call<'_>) -> AppResult<Reply> {
    let status = call.query.get("status").map(String::as_str);
    if let Some(s) = status.filter(|s| !STATUSES.contains(s)) {
        return Err(AppError::invalid_field(
            "status",
            format!("`{s}` is not one of {}", STATUSES.join(", ")),
        ));
    }
    let structure_type = call.query.get("structure_type").map(String::as_str);
    if let Some(t) = structure_type.filter(|t| StructureType::parse(t).is_none()) {
        return Err(AppError::invalid_field(
            "structure_type",
            format!("`{t}` is not one of {}", StructureType::names().join(", ")),
        ));
    }
    for name in ["from", "to"] {
        if let Some(d) = call.query.get(name).filter(|d| !valid_date(d)) {
            return Err(AppError::invalid_field(
                name,
                format!("`{d}` is not a date (YYYY-MM-DD or ISO-8601 UTC)"),
            ));
        }
    }
    let scope = call.scope()?;
    let filter = JobFilter {
        scope: scope.as_deref(),
        status,
        structure_type,
        from: call.query.get("from").map(String::as_str),
        to: call.query.get("to").map(String::as_str),
        limit: call.query_u32("limit", 20, 1, MAX_PAGE)?,
        offset: call.query_u32("offset", 0, 0, 1_000_000)?,
    };
    let db = Database::new(call.app)?;
    let (rows, total) = db.list_jobs(&filter).await?;
    Ok(Reply::ok(
        json!({"jobs": rows.iter().map(job_json).collect::<Vec<_>>(), "total": total, "limit": filter.limit, "offset": filter.offset}),
    ))
}

pub async fn get(call: &Call<'_>) -> AppResult<Reply> {
    let db = Database::new(call.app)?;
    let job = scoped_job(call, &db).await?;
    let attempts = db.attempts(job.id as i64).await?;
    let attempts: Vec<Value> = attempts
        .iter()
        .map(|a| json!({"provider": a.provider, "model": a.model, "purpose": a.purpose, "status": a.status, "httpStatus": a.http_status.map(|s| s as i64),
            "latencyMs": a.latency_ms as i64, "tokens": {"input": a.tokens_input as i64, "output": a.tokens_output as i64, "cached": a.tokens_cached as i64},
            "costUsd": a.cost_usd, "error": a.error, "createdAt": a.created_at}))
        .collect();
    Ok(Reply::ok(
        json!({"job": job_json(&job), "attempts": attempts}),
    ))
}

/// Progress follows the stage the pipeline last recorded.
/// A job's live status: stage, percent, elements and tokens so far,
/// elapsed and estimated remaining time (the status route and each event).
pub fn status_body(job: &JobRow, now: u64) -> Value {
    let running = job.status == "processing";
    let queued = running && job.run_mode == "queue" && job.started_at_ms.is_none();
    let stage = if queued { "queued" } else { job.stage.as_str() };
    let started = job.started_at_ms.or(job.submitted_at_ms).map(|s| s as u64);
    let elapsed = match (running, job.submitted_at_ms) {
        (true, Some(s)) => Some(now.saturating_sub(s as u64)),
        _ => job.processing_time_ms.map(|t| t as u64),
    };
    let expected_tokens = job.expected_tokens.unwrap_or(0.0) as u64;
    let expected_elements = job.expected_elements.unwrap_or(0.0) as u64;
    let (tokens, elements) = if running {
        (job.progress_tokens as u64, job.progress_elements as u64)
    } else {
        (
            job.tokens_output as u64,
            job.total_elements.unwrap_or(job.progress_elements) as u64,
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
    let abandoned = running && (job.deadline_at as u64) < now;
    let id = job.id as i64;
    json!({
        "jobId": id,
        "status": job.status,
        "stage": stage,
        "percent": estimate.percent,
        "progress": estimate.percent,
        "elements": {"received": elements, "expected": expected_elements},
        "tokens": {"received": tokens, "expected": expected_tokens},
        "elapsedMs": elapsed,
        "estimatedRemainingMs": if running { estimate.remaining_ms } else { Some(0) },
        "runMode": job.run_mode,
        "abandoned": abandoned,
        "failureCode": job.failure_code,
        "failureReason": job.failure_reason,
        "updatedAt": job.updated_at,
        "statusUrl": format!("/api/jobs/{id}/status"),
        "eventsUrl": format!("/api/jobs/{id}/events"),
        "resultUrl": format!("/api/jobs/{id}"),
    })
}

pub async fn status(call: &Call<'_>) -> AppResult<Reply> {
    let db = Database::new(call.app)?;
    let job = scoped_job(call, &db).await?;
    Ok(Reply::ok(status_body(
        &job,
        crate::services::timing::now_ms(),
    )))
}

/// How often the events stream looks at the job, and the longest it stays
/// quiet (a `progress` event at least this often while the job runs).
const EVENTS_POLL_MS: u64 = 250;
const EVENTS_EVERY_MS: u64 = 1_000;
/// An events stream ends after this long even if the job has not.
const EVENTS_MAX_MS: u64 = 15 * 60 * 1_000;

struct EventsState {
    db: Database,
    job_id: i64,
    scope: Option<String>,
    last_sent: u64,
    last_key: Option<(String, String)>,
    opened: u64,
    finished: bool,
}

fn sse_event(name: &str, data: &Value) -> Vec<u8> {
    format!("event: {name}\ndata: {data}\n\n").into_bytes()
}

/// `GET /api/jobs/{id}/events`: Server-Sent Events of the job's status,
/// `progress` at least every second while it runs and within a poll of a
/// stage change, then one `completed` or `failed` event, then the end.
pub async fn events(call: &Call<'_>) -> AppResult<worker::Response> {
    let db = Database::new(call.app)?;
    let job = scoped_job(call, &db).await?;
    let state = EventsState {
        db,
        job_id: job.id as i64,
        scope: call.scope()?,
        last_sent: 0,
        last_key: None,
        opened: crate::services::timing::now_ms(),
        finished: false,
    };
    let stream = futures_util::stream::unfold(state, |mut st| async move {
        if st.finished {
            return None;
        }
        loop {
            let now = crate::services::timing::now_ms();
            let job = match st.db.job(st.job_id, st.scope.as_deref()).await {
                Ok(Some(job)) => job,
                Ok(None) | Err(_) => {
                    st.finished = true;
                    let data = json!({"jobId": st.job_id, "error": "the job could not be read"});
                    return Some((Ok::<Vec<u8>, worker::Error>(sse_event("error", &data)), st));
                }
            };
            let body = status_body(&job, now);
            let terminal = job.status != "processing";
            if terminal {
                st.finished = true;
                let name = if job.status == "completed" {
                    "completed"
                } else {
                    "failed"
                };
                return Some((Ok(sse_event(name, &body)), st));
            }
            let key = (
                body["stage"].as_str().unwrap_or("").to_string(),
                job.status.clone(),
            );
            let changed = st.last_key.as_ref() != Some(&key);
            if changed || now.saturating_sub(st.last_sent) >= EVENTS_EVERY_MS {
                st.last_key = Some(key);
                st.last_sent = now;
                return Some((Ok(sse_event("progress", &body)), st));
            }
            if now.saturating_sub(st.opened) > EVENTS_MAX_MS {
                st.finished = true;
                return Some((Ok(sse_event("timeout", &body)), st));
            }
            crate::services::timing::sleep(EVENTS_POLL_MS).await;
        }
    });
    crate::helpers::http::event_stream_response(stream, &call.app.request_id)
        .map_err(|e| AppError::internal(format!("opening the events stream: {e}")))
}

pub async fn structure(call: &Call<'_>) -> AppResult<Reply> {
    let from_elements = match call.query.get("source").map(String::as_str) {
        None | Some("storage") => false,
        Some("elements") => true,
        Some(other) => {
            return Err(AppError::invalid_field(
                "source",
                format!("`{other}` is not storage or elements"),
            ))
        }
    };
    let db = Database::new(call.app)?;
    let job = scoped_job(call, &db).await?;
    if job.status != "completed" {
        return Err(AppError::conflict(
            "job_not_completed",
            format!("job {} is {}", job.id as i64, job.status),
        ));
    }
    let (structure, source) =
        granulator::load_structure(call.app, &db, &job, from_elements).await?;
    Ok(Reply::ok(
        json!({"jobId": job.id as i64, "structureType": job.structure_type, "source": source, "structure": structure}),
    ))
}

pub async fn retry(call: &Call<'_>) -> AppResult<Reply> {
    let db = Database::new(call.app)?;
    let job = scoped_job(call, &db).await?;
    if job.status != "failed" {
        return Err(AppError::conflict(
            "job_not_failed",
            format!(
                "job {} is {}; only failed jobs can be retried",
                job.id as i64, job.status
            ),
        ));
    }
    let payload = db
        .job_payload(job.id as i64)
        .await?
        .ok_or_else(|| AppError::not_found("the job vanished"))?;
    let request: JobRequest = serde_json::from_str(&payload.request_params)
        .map_err(|e| AppError::internal(format!("unreadable job parameters: {e}")))?;
    // Same client and execution id: the failed job runs again in place, paid
    // by the job's tenant (at the caller's tier when the caller is that tenant).
    let payer = Payer::for_tenant(call.principal()?, &job.client_id, &call.app.config.limits);
    super::execute::granulate(
        call,
        &db,
        &payer,
        request,
        Some(job.execution_id.clone()),
        false,
    )
    .await
}

pub async fn validation_history(call: &Call<'_>) -> AppResult<Reply> {
    let job_id = match call.query.get("job_id") {
        None => None,
        Some(v) => Some(
            v.parse::<i64>()
                .ok()
                .filter(|i| *i > 0)
                .ok_or_else(|| AppError::invalid_field("job_id", "must be a positive integer"))?,
        ),
    };
    let limit = call.query_u32("limit", 50, 1, MAX_PAGE)?;
    let db = Database::new(call.app)?;
    let rows = db
        .validation_history(call.scope()?.as_deref(), job_id, limit)
        .await?;
    let results: Vec<Value> = rows
        .iter()
        .map(|r| json!({
            "id": r.id as i64, "jobId": r.job_id as i64, "level": r.validation_level as i64, "accuracyPercentage": r.accuracy_percentage,
            "threshold": r.threshold, "passed": r.passed != 0.0,
            "criteria": serde_json::from_str::<Value>(&r.criteria).unwrap_or(Value::Null),
            "issues": serde_json::from_str::<Value>(&r.issues).unwrap_or(Value::Null),
            "aiFeedback": r.ai_feedback, "tokensUsed": {"input": r.tokens_input as i64, "output": r.tokens_output as i64},
            "costUsd": r.cost_usd, "createdAt": r.created_at,
        }))
        .collect();
    Ok(Reply::ok(
        json!({"results": results, "count": results.len()}),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_checked() {
        assert!(valid_date("2026-11-25"));
        assert!(valid_date("2026-11-25T10:00:00.000Z"));
        assert!(!valid_date("yesterday"));
        assert!(!valid_date("2026-1-25"));
        assert!(!valid_date("2026-11-25 OR 1=1"));
    }
}
