//! Template resolution for jobs through a KV cache (`TEMPLATE_CACHE`,
//! 5 minutes), and admin writes that invalidate every cached entry they could
//! change. The template endpoints read D1 directly (current usage counts).
//! In production KV is eventually consistent: other locations may serve a
//! cached template for up to a minute after an admin change.

use crate::services::database::Database;
use crate::types::env::{App, TEMPLATE_CACHE};
use crate::types::structure::StructureType;
use crate::types::template::{Template, TemplateInput};
use bitware_kit::error::{AppError, AppResult};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::json;

const TTL_SECONDS: u64 = 300;

fn name_key(name: &str) -> String {
    format!("template:name:{name}")
}
fn default_key(t: StructureType) -> String {
    format!("template:default:{t}")
}

async fn cached<T, F>(app: &App, key: &str, load: F) -> AppResult<T>
where
    T: Serialize + DeserializeOwned,
    F: std::future::Future<Output = AppResult<T>>,
{
    let kv = app.env.kv(TEMPLATE_CACHE).ok();
    if let Some(kv) = &kv {
        if let Ok(Some(hit)) = kv.get(key).json::<T>().await {
            return Ok(hit);
        }
    }
    let value = load.await?;
    if let Some(kv) = &kv {
        // A failed cache write only means the next read goes to D1 again.
        if let Ok(put) = kv.put(key, &value) {
            let _ = put.expiration_ttl(TTL_SECONDS).execute().await;
        }
    }
    Ok(value)
}

pub async fn by_name(app: &App, db: &Database, name: &str) -> AppResult<Option<Template>> {
    cached(app, &name_key(name), db.template_by_name(name)).await
}

pub async fn default_for(
    app: &App,
    db: &Database,
    t: StructureType,
) -> AppResult<Option<Template>> {
    cached(app, &default_key(t), db.default_template(t)).await
}

/// The template a job uses: the named one, else the type's default.
pub async fn resolve(
    app: &App,
    db: &Database,
    name: Option<&str>,
    structure_type: Option<StructureType>,
) -> AppResult<Template> {
    let template = match (name, structure_type) {
        // A well-formed name or type that names nothing (now): 404, as
        // for any missing resource (the document allows any name).
        (Some(name), _) => by_name(app, db, name).await?.ok_or_else(|| {
            AppError::not_found(format!(
                "input.templateName: no active template is named `{name}`"
            ))
            .with_details(json!({"field": "input.templateName"}))
        })?,
        (None, Some(t)) => default_for(app, db, t).await?.ok_or_else(|| {
            AppError::not_found(format!(
                "input.structureType: no active template exists for {t}"
            ))
            .with_details(json!({"field": "input.structureType"}))
        })?,
        (None, None) => {
            return Err(AppError::invalid_field(
                "input.structureType",
                "is required (or templateName)",
            ))
        }
    };
    // Both valid, but the stored template is of another type: a conflict
    // with what is stored (409), not a malformed request.
    if let Some(t) = structure_type {
        if t != template.structure_type {
            return Err(AppError::conflict(
                "structure_type_mismatch",
                format!(
                    "input.structureType: `{t}` does not match template `{}`, which is a {}",
                    template.template_name, template.structure_type
                ),
            )
            .with_details(json!({"field": "input.structureType"})));
        }
    }
    Ok(template)
}

/// Drop every cached view an admin change can affect.
async fn invalidate(app: &App, names: &[&str]) {
    let Ok(kv) = app.env.kv(TEMPLATE_CACHE) else {
        return;
    };
    let mut keys: Vec<String> = names.iter().map(|n| name_key(n)).collect();
    keys.extend(StructureType::ALL.into_iter().map(default_key));
    for key in keys {
        let _ = kv.delete(&key).await;
    }
}

/// `GET /api/templates`: read from D1, so usage counts are current (the KV
/// cache serves the execute path).
pub async fn list(app: &App, structure_type: Option<StructureType>) -> AppResult<Vec<Template>> {
    Database::new(app)?.list_templates(structure_type).await
}

/// `GET /api/templates/{name}`: the live template of exactly that name.
pub async fn get(app: &App, name: &str) -> AppResult<Template> {
    Database::new(app)?
        .template_by_name(name)
        .await?
        .ok_or_else(|| AppError::not_found(format!("no template is named `{name}`")))
}

pub async fn create(app: &App, input: &TemplateInput) -> AppResult<Template> {
    let created = Database::new(app)?.create_template(input).await?;
    invalidate(app, &[&created.template_name]).await;
    Ok(created)
}

pub async fn update(app: &App, name: &str, patch: &serde_json::Value) -> AppResult<Template> {
    let db = Database::new(app)?;
    let current = db
        .template_by_name(name)
        .await?
        .ok_or_else(|| AppError::not_found(format!("no active template is named `{name}`")))?;
    let input = TemplateInput::parse(patch, Some(&current))?;
    let updated = db
        .update_template(name, &input)
        .await?
        .ok_or_else(|| AppError::not_found(format!("no active template is named `{name}`")))?;
    invalidate(app, &[name, &updated.template_name]).await;
    Ok(updated)
}

pub async fn delete(app: &App, name: &str) -> AppResult<()> {
    if !Database::new(app)?.delete_template(name).await? {
        return Err(AppError::not_found(format!(
            "no active template is named `{name}`"
        )));
    }
    invalidate(app, &[name]).await;
    Ok(())
}
