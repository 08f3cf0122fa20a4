//! `GET /api/admin/stats`: workers and admin sessions only.

use super::{Call, Reply};
use crate::services::database::Database;
use bitware_kit::error::AppResult;
use serde_json::json;

/// Generations recorded, per tenant and structure type, with the words written.
pub async fn stats(call: &Call<'_>) -> AppResult<Reply> {
    let rows = Database::new(call.app)?.generations_by_tenant().await?;
    let generations: i64 = rows.iter().map(|r| r.generations).sum();
    let words: i64 = rows.iter().map(|r| r.words).sum();
    let tenants: Vec<_> = rows
        .iter()
        .map(|r| json!({"tenant": r.tenant, "structureType": r.structure_type, "generations": r.generations, "words": r.words}))
        .collect();
    Ok(Reply::ok(
        json!({"generations": generations, "words": words, "tenants": tenants}),
    ))
}
