//! `GET /`, `GET /health`, `GET /help` (seed §7.1): public, read-only, free.

use super::{Call, Reply};
use crate::helpers::http;
use crate::services::health;
use crate::services::timing::iso_now;
use crate::types::env::SERVICE_NAME;
use crate::types::limits::Tier;
use crate::types::structure::StructureType;
use bitware_kit::error::{AppError, AppResult};
use serde_json::{json, Value};

pub async fn root(call: &Call<'_>) -> AppResult<Reply> {
    let c = &call.app.config;
    Ok(Reply::ok(
        json!({"status": "healthy", "service": SERVICE_NAME, "version": c.version, "environment": c.environment, "timestamp": iso_now()}),
    ))
}

/// Every check reads; none writes, and no AI provider is called.
pub async fn health(call: &Call<'_>) -> AppResult<Reply> {
    let app = call.app;
    let checks = health::checks(app, &call.host).await;
    let healthy = checks.healthy();
    let warnings = health::warnings(app);
    let body = json!({
        "status": if healthy { "healthy" } else { "degraded" },
        "service": SERVICE_NAME,
        "version": app.config.version,
        "checks": checks,
        "aiProviders": app.config.providers.describe(),
        "warnings": warnings,
        // What this deployment runs with (no secret: names and numbers only).
        "config": {
            "environment": app.config.environment,
            "kamTimeoutMs": app.config.kam_timeout_ms,
            "maxJobCostUsd": app.config.limits.max_job_cost_usd,
            "defaultTier": app.config.limits.default_tier,
            "jobTimeoutMs": app.config.jobs.job_timeout_ms,
            "jobStallMs": app.config.jobs.stall_ms,
            "modelTokensPerSecond": app.config.jobs.tokens_per_second,
            "waitUntilGraceMs": app.config.jobs.wait_until_grace_ms,
        },
        "capabilities": {
            "structureTypes": StructureType::names(),
            "actions": crate::types::api::Action::NAMES,
            "storageTiers": ["inline", "kv", "r2"],
            "validationLevels": [1, 2, 3],
        },
        "timestamp": iso_now(),
    });
    Ok(Reply::ok(body).status(if healthy { 200 } else { 503 }))
}

/// `GET /openapi.json`: generated from the route table and `crate::openapi`
/// natively, served as embedded text.
pub async fn openapi(call: &Call<'_>) -> AppResult<worker::Response> {
    let document = crate::openapi::document(&call.app.config.version);
    http::json_text_response(document, &call.app.request_id)
        .map_err(|e| AppError::internal(format!("answering /openapi.json: {e}")))
}

/// `GET /help`: the generated part (`api/help.json`, `crate::openapi::help`)
/// with this deployment's version and money limits.
pub async fn help(call: &Call<'_>) -> AppResult<Reply> {
    let mut body: Value = serde_json::from_str(crate::openapi::HELP)
        .map_err(|e| AppError::internal(format!("the embedded help: {e}")))?;
    let limits = &call.app.config.limits;
    body["version"] = json!(call.app.config.version);
    let money = &mut body["money"];
    money["budget"] = json!(format!("a job's budget is the lowest of the template's maxCostPerJob, config.maxCostUsd and MAX_JOB_COST_USD (${}); a request can only lower it; before every model call max_tokens is clamped so the worst case fits what is left, else 422 budget_exceeded; re-runs and re-validations are charged to the same budget", limits.max_job_cost_usd));
    money["defaultTier"] = json!(limits.default_tier);
    money["tiers"] = Tier::ALL
        .iter()
        .map(|t| json!({"tier": t, "paidRequestsPerMinute": t.requests_per_minute(), "dailySpendCapUsd": limits.daily_cap(*t)}))
        .collect();
    Ok(Reply::ok(body))
}

/// `GET /api/ai-providers`: configuration only, no provider is called.
pub async fn ai_providers(call: &Call<'_>) -> AppResult<Reply> {
    let mut body = call.app.config.providers.describe();
    body["settings"] = json!(call.app.config.settings);
    body["pricingDate"] = json!(call.app.config.pricing.date);
    Ok(Reply::ok(body))
}
