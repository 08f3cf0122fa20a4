//! Economy endpoints (seed §2.1): pricing, estimates, consumption stats.

use super::{Call, Reply};
use crate::error::AppResult;
use crate::services::database::Database;
use crate::services::{economy, stats, templates};
use crate::types::api::ExecuteRequest;
use crate::types::pricing::TokenUsage;
use crate::types::request::parse_execute;
use serde_json::json;

pub async fn pricing(call: &Call<'_>) -> AppResult<Reply> {
    let p = &call.app.config.pricing;
    // What one standard job (a granularity-3 course: ~2,000 tokens in, ~4,000 out) costs per model.
    let usage = TokenUsage {
        input: 2_000,
        output: 4_000,
        cached: 0,
    };
    let examples: Vec<_> = p.models.keys().map(|m| json!({"model": m, "job": "course, granularity 3", "tokens": usage, "costUsd": p.cost(m, &usage)})).collect();
    Ok(Reply::ok(
        json!({"date": p.date, "currency": p.currency, "unit": p.unit, "models": p.models, "examples": examples}),
    ))
}

pub async fn estimate(call: &Call<'_>) -> AppResult<Reply> {
    let body = call.body()?;
    // A model alone names its provider here: any model of the price map can
    // be estimated, whether or not its provider is configured.
    let provider = body.get("aiProvider").cloned().or_else(|| {
        body.get("aiModel")
            .and_then(|m| m.as_str())
            .map(|m| json!(economy::provider_of(m.trim())))
    });
    let config = json!({
        "aiProvider": provider,
        "aiModel": body.get("aiModel"),
        "validationLevel": body.get("validationLevel"),
    });
    let (params, config) = match parse_execute(
        &json!({"action": "estimate", "input": body, "config": config}),
        None,
    )? {
        ExecuteRequest::Estimate { params, config } => (params, config),
        _ => {
            return Err(crate::error::AppError::internal(
                "an estimate body did not parse as an estimate",
            ))
        }
    };
    let db = Database::new(call.app)?;
    let template = templates::resolve(
        call.app,
        &db,
        params.template_name.as_deref(),
        params.structure_type,
    )
    .await?;
    Ok(Reply::ok(economy::estimate(
        &call.app.config,
        &template,
        &params,
        &config,
    )?))
}

pub async fn stats(call: &Call<'_>) -> AppResult<Reply> {
    let days = call.query_u32("days", 30, 1, 365)?;
    let db = Database::new(call.app)?;
    Ok(Reply::ok(
        stats::economy(&db, call.scope()?.as_deref(), days).await?,
    ))
}
