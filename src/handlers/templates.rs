//! `GET /api/templates[?structure_type=]` and `GET /api/templates/{name}` (exact name only).

use super::{Call, Reply};
use crate::services::templates;
use crate::types::structure::StructureType;
use bitware_kit::error::{AppError, AppResult};
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
    let list = templates::list(call.app, filter).await?;
    Ok(Reply::ok(json!({"templates": list, "count": list.len()})))
}

pub async fn get(call: &Call<'_>) -> AppResult<Reply> {
    let name = call.param("name");
    let template = templates::get(call.app, name).await?;
    Ok(Reply::ok(json!({"template": template})))
}
