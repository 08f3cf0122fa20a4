//! `GET /api/stats` (the caller's scope), `GET /api/admin/stats`, `GET /api/admin/analytics`.

use super::{Call, Reply};
use crate::error::AppResult;
use crate::services::database::Database;
use crate::services::stats;

pub async fn client(call: &Call<'_>) -> AppResult<Reply> {
    let days = call.query_u32("days", 30, 1, 365)?;
    let db = Database::new(call.app)?;
    Ok(Reply::ok(
        stats::jobs(&db, call.scope()?.as_deref(), days).await?,
    ))
}

pub async fn admin(call: &Call<'_>) -> AppResult<Reply> {
    let days = call.query_u32("days", 30, 1, 365)?;
    let db = Database::new(call.app)?;
    Ok(Reply::ok(stats::admin(&db, days).await?))
}

pub async fn analytics(call: &Call<'_>) -> AppResult<Reply> {
    let days = call.query_u32("days", 30, 1, 365)?;
    let db = Database::new(call.app)?;
    Ok(Reply::ok(stats::analytics(&db, days).await?))
}
