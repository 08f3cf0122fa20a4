//! `GET /`, `GET /health`, `GET /help` (seed §7.1): public, read-only.

use super::{Call, Reply};
use crate::openapi;
use crate::services::health;
use crate::types::env::SERVICE_NAME;
use crate::types::request::ACTIONS;
use bitware_kit::error::AppResult;
use bitware_kit::timing::iso_now;
use serde_json::json;

pub async fn root(call: &Call<'_>) -> AppResult<Reply> {
    let c = &call.app.config;
    Ok(Reply::ok(
        json!({"status": "healthy", "service": SERVICE_NAME, "version": c.version,
        "environment": c.environment, "timestamp": iso_now()}),
    ))
}

pub async fn health(call: &Call<'_>) -> AppResult<Reply> {
    let checks = health::checks(call.app).await;
    let healthy = checks.values().all(|c| c["ok"] == true);
    let body = json!({"status": if healthy { "healthy" } else { "degraded" }, "service": SERVICE_NAME,
        "version": call.app.config.version, "checks": checks, "timestamp": iso_now()});
    Ok(Reply::ok(body).status(if healthy { 200 } else { 503 }))
}

/// Every route from the route table and its schemas, so `/help` cannot drift
/// from the router or from `/openapi.json`.
pub async fn help(call: &Call<'_>) -> AppResult<Reply> {
    let routes = openapi::help();
    Ok(Reply::ok(json!({
        "service": SERVICE_NAME,
        "version": call.app.config.version,
        "auth": {
            "client": "X-API-Key",
            "session": "x-bitware-session-token",
            "worker": "Authorization: Bearer <shared secret> + X-Worker-ID (+ X-Client-ID to act for a client)",
        },
        "routes": routes,
        "actions": ACTIONS,
    })))
}

/// `GET /openapi.json`: generated from the route table and `crate::openapi`.
pub async fn openapi(call: &Call<'_>) -> AppResult<Reply> {
    Ok(Reply::ok(openapi::document(&call.app.config.version)))
}
