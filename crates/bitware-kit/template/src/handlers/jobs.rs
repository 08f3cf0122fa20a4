//! `GET /api/jobs/{id}` (the job and its result), `GET /api/jobs/{id}/status`,
//! `GET /api/jobs/{id}/events` and `POST /api/jobs/{id}/cancel`: the kit's
//! job routes (`bitware_kit::jobs::routes`), in the caller's scope (another
//! tenant's job is a 404).

use super::{Call, Reply};
use crate::types::env::DB;
use bitware_kit::error::AppResult;
use bitware_kit::jobs::routes::JobRoutes;
use bitware_kit::jobs::JobSchema;

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
