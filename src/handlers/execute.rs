//! `POST /api/execute` (seed §2.2) and `POST /api/validate`.

use super::{Call, Reply};
use crate::error::AppResult;
use crate::helpers::envelope::Envelope;
use crate::services::database::Database;
use crate::services::granulator::{self, Outcome};
use crate::services::spend::Payer;
use crate::services::timing::now_ms;
use crate::services::{economy, templates};
use crate::types::api::{parse_execute, ExecuteRequest};
use serde_json::json;

pub async fn execute(call: &Call<'_>, request_id_header: Option<&str>) -> AppResult<Reply> {
    let principal = call.principal()?;
    let db = Database::new(call.app)?;
    let reply = match parse_execute(call.body()?, request_id_header)? {
        ExecuteRequest::Granulate {
            request,
            execution_id,
        } => {
            let payer = Payer::of(principal, &call.app.config.limits);
            match granulator::granulate(call.app, &db, &payer, request, execution_id).await? {
                Outcome::Fresh(envelope) => Reply::ok(envelope),
                Outcome::Replay(envelope) => {
                    Reply::ok(envelope).header("Idempotent-Replay", "true")
                }
            }
        }
        ExecuteRequest::Validate {
            job_id,
            level,
            threshold,
        } => {
            let started = now_ms();
            let result =
                granulator::revalidate(call.app, &db, principal, job_id, level, threshold).await?;
            let tokens = |k: &str| result["tokensUsed"][k].as_u64().unwrap_or(0);
            Reply::ok(
                Envelope {
                    action: "validate",
                    input_tokens: tokens("input"),
                    output_tokens: tokens("output"),
                    duration_ms: now_ms().saturating_sub(started),
                    cost: result["costUsd"].as_f64(),
                    model: result["model"].as_str(),
                    output: json!({"jobId": job_id, "validationResult": result}),
                }
                .into_json(),
            )
        }
        ExecuteRequest::Estimate { params, config } => {
            let template = templates::resolve(
                call.app,
                &db,
                params.template_name.as_deref(),
                params.structure_type,
            )
            .await?;
            let started = now_ms();
            let estimate = economy::estimate(call.app, &template, &params, &config)?;
            // An estimate calls no model: no tokens, no cost.
            Reply::ok(
                Envelope {
                    action: "estimate",
                    input_tokens: 0,
                    output_tokens: 0,
                    duration_ms: now_ms().saturating_sub(started),
                    cost: Some(0.0),
                    model: estimate["estimate"]["model"].as_str(),
                    output: estimate.clone(),
                }
                .into_json(),
            )
        }
    };
    Ok(reply.header("X-D1-Round-Trips", db.round_trips().to_string()))
}

pub async fn validate(call: &Call<'_>) -> AppResult<Reply> {
    let body = call.body()?;
    let job_id = body["jobId"].as_i64().filter(|id| *id > 0).ok_or_else(|| {
        crate::error::AppError::invalid_field("jobId", "must be a positive integer")
    })?;
    let level = match body.get("validationLevel").filter(|v| !v.is_null()) {
        None => None,
        Some(v) => Some(v.as_u64().filter(|l| (1..=3).contains(l)).ok_or_else(|| {
            crate::error::AppError::invalid_field("validationLevel", "must be 1, 2 or 3")
        })? as u8),
    };
    let threshold = match body.get("threshold").filter(|v| !v.is_null()) {
        None => None,
        Some(v) => Some(
            v.as_f64()
                .filter(|t| (0.0..=100.0).contains(t))
                .ok_or_else(|| {
                    crate::error::AppError::invalid_field(
                        "threshold",
                        "must be a number from 0 to 100",
                    )
                })?,
        ),
    };
    let db = Database::new(call.app)?;
    let result =
        granulator::revalidate(call.app, &db, call.principal()?, job_id, level, threshold).await?;
    Ok(Reply::ok(
        json!({"jobId": job_id, "validationResult": result}),
    ))
}
