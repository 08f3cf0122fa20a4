//! `POST /api/admin/templates`: create, update or soft-delete a template.
//! Admin statistics and analytics live in `handlers::stats`.

use super::{Call, Reply};
use crate::services::templates;
use crate::types::template::TemplateInput;
use bitware_kit::error::{AppError, AppResult};
use serde_json::json;

pub async fn templates(call: &Call<'_>) -> AppResult<Reply> {
    let body = call.body()?;
    let action = body["action"]
        .as_str()
        .ok_or_else(|| AppError::invalid_field("action", "must be create, update or delete"))?;
    let template = body
        .get("template")
        .filter(|t| t.is_object())
        .ok_or_else(|| AppError::invalid_field("template", "must be an object"))?;
    match action {
        "create" => {
            let input = TemplateInput::parse(template, None)?;
            let created = templates::create(call.app, &input).await?;
            Ok(Reply::ok(json!({"action": "create", "template": created})).status(201))
        }
        "update" => {
            // `templateName` names the template to change; `newTemplateName` renames it.
            let name = template["templateName"]
                .as_str()
                .ok_or_else(|| AppError::invalid_field("template.templateName", "is required"))?;
            let mut patch = template.clone();
            if let Some(new_name) = template.get("newTemplateName") {
                patch["templateName"] = new_name.clone();
            }
            let updated = templates::update(call.app, name, &patch).await?;
            Ok(Reply::ok(json!({"action": "update", "template": updated})))
        }
        "delete" => {
            let name = template["templateName"]
                .as_str()
                .ok_or_else(|| AppError::invalid_field("template.templateName", "is required"))?;
            templates::delete(call.app, name).await?;
            Ok(Reply::ok(json!({"action": "delete", "deleted": name})))
        }
        other => Err(AppError::invalid_field(
            "action",
            format!("`{other}` is not create, update or delete"),
        )),
    }
}
