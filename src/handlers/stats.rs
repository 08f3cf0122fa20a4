//! `GET /api/stats` (the caller's scope), `GET /api/admin/stats`, `GET /api/admin/analytics`.

use super::{Call, Reply};
use crate::services::stats;
use bitware_kit::error::AppResult;

pub async fn client(call: &Call<'_>) -> AppResult<Reply> {
    let days = call.query_u32("days", 30, 1, 365)?;
    let jobs = stats::jobs(call.app, call.scope()?.as_deref(), days).await?;
    Ok(Reply::ok(stats::render(&jobs)))
}

pub async fn admin(call: &Call<'_>) -> AppResult<Reply> {
    let days = call.query_u32("days", 30, 1, 365)?;
    Ok(Reply::ok(stats::render(
        &stats::admin(call.app, days).await?,
    )))
}

pub async fn analytics(call: &Call<'_>) -> AppResult<Reply> {
    let days = call.query_u32("days", 30, 1, 365)?;
    Ok(Reply::ok(stats::render(
        &stats::analytics(call.app, days).await?,
    )))
}
