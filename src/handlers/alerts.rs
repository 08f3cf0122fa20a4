//! `GET /api/admin/alerts`: the operator's signals over a window
//! (`services::alerts`), each `ok`, `warning` or `firing`.

use super::{Call, Reply};
use crate::services::alerts::{self, MAX_WINDOW_SECONDS};
use crate::services::stats::render;
use bitware_kit::error::AppResult;

pub async fn alerts(call: &Call<'_>) -> AppResult<Reply> {
    let default = call.app.config.alerts.window_seconds;
    let window = call.query_u32("window", default, 1, MAX_WINDOW_SECONDS)?;
    let report = alerts::report(call.app, window).await?;
    Ok(Reply::ok(render(&report)))
}
