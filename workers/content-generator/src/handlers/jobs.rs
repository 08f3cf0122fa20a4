//! `GET /api/jobs/{id}` (the job and its result), `GET /api/jobs/{id}/status`,
//! `GET /api/jobs/{id}/events`, `POST /api/jobs/{id}/cancel` (the kit's job
//! view, events stream and cancel) and `GET /api/jobs/{id}/content` (the
//! content a completed job wrote, wherever it is kept), in the caller's
//! scope (another tenant's job is a 404).

use super::{Call, Reply};
use crate::services::database::Database;
use crate::types::env::{DB, RESULTS};
use bitware_kit::error::{AppError, AppResult};
use bitware_kit::jobs::view::JobView;
use bitware_kit::jobs::{cancel, events, JobSchema, JobStatus};
use bitware_kit::storage::{self, Tier};
use bitware_kit::timing::{now_ms, WallClock};
use serde_json::json;

/// The job and, once completed, the result its request answered.
pub async fn get(call: &Call<'_>) -> AppResult<Reply> {
    let id = call.job_id()?;
    let scope = call.scope()?;
    let db = Database::new(call.app)?;
    let row = db.job(id, scope.as_deref()).await?;
    let result = db.result(id, scope.as_deref()).await?;
    Ok(Reply::ok(
        serde_json::json!({"job": JobView::of(&row, now_ms()), "result": result}),
    ))
}

pub async fn status(call: &Call<'_>) -> AppResult<Reply> {
    let id = call.job_id()?;
    let row = Database::new(call.app)?
        .job(id, call.scope()?.as_deref())
        .await?;
    Reply::json(&JobView::of(&row, now_ms()))
}

pub async fn events(call: &Call<'_>) -> AppResult<worker::Response> {
    let id = call.job_id()?;
    let app = call.app;
    let stream = events::events(
        app.env.clone(),
        DB,
        JobSchema::KIT,
        id,
        call.scope()?,
        app.config.jobs.events_max_ms,
    )
    .await?;
    let bytes = futures_util::StreamExt::map(stream, |e| {
        Ok::<Vec<u8>, worker::Error>(e.to_sse().into_bytes())
    });
    bitware_kit::http::event_stream_response(bytes, &app.request_id)
        .map_err(|e| AppError::internal(format!("opening the events stream: {e}")))
}

pub async fn cancel(call: &Call<'_>) -> AppResult<Reply> {
    let id = call.job_id()?;
    let principal = call.principal()?;
    let scope = principal.scope();
    let db = Database::new(call.app)?;
    let row = cancel::cancel(
        &db,
        &WallClock,
        id,
        &cancel::cancelled_by(principal),
        call.app.config.jobs.stall_ms,
        async || db.job(id, scope.as_deref()).await,
    )
    .await?;
    Reply::json(&JobView::of(&row, now_ms()))
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
        None => db
            .result(id, scope.as_deref())
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
