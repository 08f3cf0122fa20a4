//! Economy endpoints (seed §2.1): pricing, estimates, consumption stats.

use super::{Call, Reply};
use crate::services::{economy, stats};
use crate::types::bodies::parse_estimate;
use crate::types::pricing::TokenUsage;
use bitware_kit::error::AppResult;
use serde_json::json;

pub async fn pricing(call: &Call<'_>) -> AppResult<Reply> {
    let p = &call.app.config.pricing;
    // What one standard job (a granularity-3 course: ~2,000 tokens in, ~4,000 out) costs per model.
    let usage = TokenUsage {
        input: 2_000,
        output: 4_000,
        ..TokenUsage::default()
    };
    let examples: Vec<_> = p.models.keys().map(|m| json!({"model": m, "job": "course, granularity 3", "tokens": usage, "costUsd": p.cost(m, &usage)})).collect();
    Ok(Reply::ok(
        json!({"date": p.date, "currency": p.currency, "unit": p.unit, "models": p.models, "examples": examples}),
    ))
}

pub async fn estimate(call: &Call<'_>) -> AppResult<Reply> {
    let (params, config) = parse_estimate(call.body()?, economy::provider_of)?;
    let quote = economy::quote(call.app, &params, &config).await?;
    Ok(Reply::ok(json!(quote)))
}

pub async fn stats(call: &Call<'_>) -> AppResult<Reply> {
    let days = call.query_u32("days", 30, 1, 365)?;
    let stats = stats::economy(call.app, call.scope()?.as_deref(), days).await?;
    Ok(Reply::ok(stats::render(&stats)))
}
