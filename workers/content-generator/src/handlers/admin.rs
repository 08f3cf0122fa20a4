//! `GET /api/admin/stats`: workers and admin sessions only.

use super::{Call, Reply};
use crate::services::database::Database;
use bitware_kit::error::AppResult;
use serde_json::json;

pub async fn stats(call: &Call<'_>) -> AppResult<Reply> {
    let rows = Database::new(call.app)?.executions_by_tenant().await?;
    let total: i64 = rows.iter().map(|r| r.executions).sum();
    let tenants: Vec<_> = rows
        .iter()
        .map(|r| json!({"tenant": r.tenant, "executions": r.executions}))
        .collect();
    Ok(Reply::ok(json!({"executions": total, "tenants": tenants})))
}
