//! `GET /api/jobs/{id}` (the job and its result), `GET /api/jobs/{id}/status`,
//! `GET /api/jobs/{id}/events` and `POST /api/jobs/{id}/cancel`: the kit's
//! job view, events stream and cancel, in the caller's scope (another
//! tenant's job is a 404).

use super::{Call, Reply};
use crate::services::database::Database;
use crate::types::env::DB;
use bitware_kit::error::{AppError, AppResult};
use bitware_kit::jobs::view::JobView;
use bitware_kit::jobs::{cancel, events, JobSchema};
use bitware_kit::timing::{now_ms, WallClock};

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
