//! `GET /api/jobs/{id}` (the job and its result), `GET /api/jobs/{id}/status`,
//! `GET /api/jobs/{id}/events`, `POST /api/jobs/{id}/cancel` (the kit's job
//! view, events stream and cancel) and `GET /api/jobs/{id}/content` (the
//! content a completed job wrote, wherever it is kept), in the caller's
//! scope (another tenant's job is a 404).

use super::{Call, Reply};
use crate::services::database::Database;
use crate::types::env::{DB, RESULTS};
use bitware_kit::error::{AppError, AppResult};
use bitware_kit::jobs::routes::{read_result, JobRoutes};
use bitware_kit::jobs::{JobSchema, JobStatus};
use bitware_kit::storage::{self, Tier};
use serde_json::json;

fn routes<'a>(call: &'a Call<'_>) -> JobRoutes<'a> {
    JobRoutes {
        env: &call.app.env,
        db: DB,
        schema: JobSchema::KIT,
        request_id: &call.app.request_id,
    }
}

pub async fn get(call: &Call<'_>) -> AppResult<Reply> {
    routes(call)
        .get(call.job_id()?, call.scope()?.as_deref())
        .await
}

pub async fn status(call: &Call<'_>) -> AppResult<Reply> {
    routes(call)
        .status(call.job_id()?, call.scope()?.as_deref())
        .await
}

pub async fn events(call: &Call<'_>) -> AppResult<worker::Response> {
    let max_ms = call.app.config.jobs.events_max_ms;
    routes(call)
        .events(call.job_id()?, call.scope()?, max_ms)
        .await
}

pub async fn cancel(call: &Call<'_>) -> AppResult<Reply> {
    let stall_ms = call.app.config.jobs.stall_ms;
    routes(call)
        .cancel(call.job_id()?, call.principal()?, stall_ms)
        .await
}

/// The content tree a completed generation wrote: from KV or R2 when it was
/// kept there, else the inline copy of its result. What the next worker
/// reads when the answer carried only `contentReference`.
pub async fn content(call: &Call<'_>) -> AppResult<Reply> {
    let id = call.job_id()?;
    let scope = call.scope()?;
    let db = Database::new(call.app)?;
    let row = db.job(id, scope.as_deref()).await?;
    if row.status != JobStatus::Completed {
        return Err(AppError::conflict(
            "content_not_ready",
            format!(
                "job {id} is {}: its content exists once it completed",
                row.status.as_str()
            ),
        ));
    }
    let tier = db
        .content_tier(id, scope.as_deref())
        .await?
        .and_then(|t| Tier::parse(&t))
        .unwrap_or(Tier::Inline);
    let stored = match RESULTS.location(tier, id) {
        Some(location) => storage::load(&call.app.env, &RESULTS, tier, &location).await?,
        None => None,
    };
    let content = match stored {
        Some(content) => content,
        None => read_result(db.d1(), JobSchema::KIT, id, scope.as_deref())
            .await?
            .map(|r| r["output"]["content"].clone())
            .filter(|c| !c.is_null())
            .ok_or_else(|| {
                AppError::new(
                    bitware_kit::error::Kind::NotFound,
                    "content_expired",
                    format!(
                        "job {id}'s content is no longer kept ({} tier)",
                        tier.as_str()
                    ),
                )
            })?,
    };
    Ok(Reply::ok(
        json!({"jobId": id, "source": tier.as_str(), "content": content}),
    ))
}
