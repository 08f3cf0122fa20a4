//! `GET /api/templates[?structure_type=]` and `GET /api/templates/{name}` (exact name only).

use super::{Call, Reply};
use crate::error::{AppError, AppResult};
use crate::services::database::Database;
use crate::types::structure::StructureType;
use serde_json::json;

pub async fn list(call: &Call<'_>) -> AppResult<Reply> {
    let filter = match call.query.get("structure_type") {
        None => None,
        Some(name) => Some(StructureType::parse(name).ok_or_else(|| {
            AppError::invalid_field(
                "structure_type",
                format!(
                    "`{name}` is not one of {}",
                    StructureType::names().join(", ")
                ),
            )
        })?),
    };
    let db = Database::new(call.app)?;
    // Reads go to D1 so usage counts are current; the KV cache serves the execute path.
    let list = db.list_templates(filter.map(|t| t.as_str())).await?;
    Ok(Reply::ok(json!({"templates": list, "count": list.len()})))
}

pub async fn get(call: &Call<'_>) -> AppResult<Reply> {
    let name = call.param("name");
    let db = Database::new(call.app)?;
    let template = db
        .template_by_name(name)
        .await?
        .ok_or_else(|| AppError::not_found(format!("no template is named `{name}`")))?;
    Ok(Reply::ok(json!({"template": template})))
}
