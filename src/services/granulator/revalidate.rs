//! Reading a completed job's structure back, and validating a completed
//! job again (`POST /api/validate`, execute `validate`).

use super::plan::{complete, review_request};
use super::{chain_error, worker_ports, ABANDON_GRACE_MS};
use crate::helpers::auth::Principal;
use crate::services::ai_provider::runtime::WorkerRuntime;
use crate::services::ai_provider::{
    attempt_worst_case_usd, totals, AttemptStatus, Budget, ChainError, Runtime,
};
use crate::services::database::{Database, JobBound, JobRow, NewValidation};
use crate::services::outline;
use crate::services::spend;
use crate::services::storage::{self, Tier};
use crate::services::templates;
use crate::services::validation::{self, assess, Verdict};
use crate::types::api::JobRequest;
use crate::types::env::{App, STRUCTURES};
use crate::types::job::JobStatus;
use crate::types::outline::Outline;
use crate::types::rules::StructureRules;
use crate::types::structure::StructureType;
use bitware_kit::error::{AppError, AppResult};
use serde::Serialize;
use serde_json::{json, Value};

/// The structure of a completed job: from its storage tier, or rebuilt from
/// `structure_elements` (`from_elements`, or when a KV copy has expired).
/// What was stored is canonical; anything else is an internal error.
pub async fn load_structure(
    app: &App,
    db: &Database,
    job: &JobRow,
    from_elements: bool,
) -> AppResult<(Outline, &'static str)> {
    let structure_type = StructureType::parse(&job.structure_type)
        .ok_or_else(|| AppError::internal("a job has an unknown structure type"))?;
    let canonical = |value: &Value| {
        Outline::from_canonical(structure_type, value)
            .map_err(|e| AppError::internal(format!("job {}'s stored structure: {e}", job.id)))
    };
    let tier = job.storage_type.as_deref().and_then(Tier::parse);
    if !from_elements {
        match (tier, job.storage_location.as_deref()) {
            (Some(Tier::Inline), _) => {
                let payload = db.job_payload(job.id).await?;
                let stored = payload
                    .and_then(|p| p.result_json)
                    .and_then(|r| serde_json::from_str::<Value>(&r).ok());
                if let Some(structure) = stored
                    .map(|r| r["output"]["structure"].clone())
                    .filter(|s| s.is_object())
                {
                    return Ok((canonical(&structure)?, "inline"));
                }
            }
            (Some(tier), Some(location)) => {
                if let Some(structure) =
                    storage::load(&app.env, &STRUCTURES, tier, location).await?
                {
                    return Ok((canonical(&structure)?, tier.as_str()));
                }
            }
            _ => {}
        }
    }
    let root = db
        .job_payload(job.id)
        .await?
        .and_then(|p| p.structure_root)
        .and_then(|r| serde_json::from_str(&r).ok())
        .unwrap_or_else(|| json!({}));
    let rows = db.elements(job.id).await?;
    let outline = outline::rebuild(structure_type, &root, &rows)
        .map_err(|e| AppError::internal(format!("job {}'s elements: {e}", job.id)))?;
    Ok((outline, "elements"))
}

/// A stored answer as it is served again (a replay, a join): an outline
/// kept out of the stored row (KV/R2 tier) goes back inline when it fits
/// the answer (`storage::ANSWER_INLINE_LIMIT`), read from its tier.
pub async fn with_structure(app: &App, db: &Database, mut envelope: Value) -> AppResult<Value> {
    let output = &envelope["output"];
    if output.get("structure").is_some() {
        return Ok(envelope);
    }
    let fits = output["structureReference"]["sizeBytes"]
        .as_u64()
        .is_some_and(|size| usize::try_from(size).is_ok_and(|s| s <= storage::ANSWER_INLINE_LIMIT));
    let (true, Some(job_id)) = (fits, output["jobId"].as_i64()) else {
        return Ok(envelope);
    };
    let Some(job) = db.job(job_id, None).await? else {
        return Ok(envelope);
    };
    let (outline, _) = load_structure(app, db, &job, false).await?;
    envelope["output"]["structure"] = outline.to_value();
    Ok(envelope)
}

/// The caller's completed job, the request it was made from and its type:
/// 404 when it is not the caller's, 409 while it is not completed.
async fn completed_job(
    db: &Database,
    principal: &Principal,
    job_id: i64,
) -> AppResult<(JobRow, JobRequest, StructureType)> {
    let scope = principal.scope();
    let job = db
        .job(job_id, scope.as_deref())
        .await?
        .ok_or_else(|| AppError::not_found(format!("no job {job_id}")))?;
    if job.status != JobStatus::Completed {
        return Err(AppError::conflict(
            "job_not_completed",
            format!(
                "job {job_id} is {}; only completed jobs can be validated",
                job.status
            ),
        ));
    }
    let payload = db
        .job_payload(job_id)
        .await?
        .ok_or_else(|| AppError::not_found(format!("no job {job_id}")))?;
    let request: JobRequest = serde_json::from_str(&payload.request_params)
        .map_err(|e| AppError::internal(format!("job {job_id} has unreadable parameters: {e}")))?;
    let structure_type = StructureType::parse(&job.structure_type)
        .ok_or_else(|| AppError::internal("a job has an unknown structure type"))?;
    Ok((job, request, structure_type))
}

/// Validate a completed job again (`POST /api/validate`, execute `validate`).
pub async fn revalidate(
    app: &App,
    db: &Database,
    principal: &Principal,
    job_id: i64,
    level: Option<u8>,
    threshold: Option<f64>,
) -> AppResult<Revalidated> {
    let (job, request, structure_type) = completed_job(db, principal, job_id).await?;
    // A template deleted since keeps its job valid against the contract's rules.
    let template = match job.template_name.as_deref() {
        Some(name) => templates::by_name(app, db, name).await?,
        None => None,
    };
    let rules = template
        .as_ref()
        .map(|t| t.structure_rules.clone())
        .unwrap_or_else(|| StructureRules::contract(structure_type));
    let rules_default = template
        .as_ref()
        .map(|t| t.validation_rules.clone())
        .unwrap_or_default();
    let level = level.unwrap_or(rules_default.validation_level);
    let threshold = threshold.unwrap_or(rules_default.validation_threshold);
    let (structure, _) = load_structure(app, db, &job, false).await?;
    let report = assess(
        request.params.granularity_level,
        &rules,
        &request.params.constraints(),
        &structure,
    );
    let mut attempts = Vec::new();
    let (verdict, reservation) = if level < 2 {
        (validation::verdict(level, threshold, &report, None), None)
    } else {
        let chain = app.config.providers.chain(
            template.as_ref().map(|t| &t.ai_provider_config),
            None,
            None,
        )?;
        let request_review = review_request(
            structure_type,
            &job.topic,
            &job.target_audience,
            level,
            &structure,
            &report,
            &chain,
        );
        // A review is charged against the job's own budget (what its runs and
        // earlier reviews spent counts) and the daily cap. Before its first
        // call it reserves its worst case (two attempts: a retry or the one
        // re-ask) or what is left, whichever is less, atomically against both,
        // so concurrent reviews of one job can never overrun its budget; its
        // chain may spend only what it reserved.
        let limit_usd = app.config.limits.job_budget(
            template
                .as_ref()
                .and_then(|t| t.cost_optimization.max_cost_per_job),
            request.config.max_cost_usd,
        );
        let spent_usd = job.cost_usd.unwrap_or(0.0);
        let left_usd = (limit_usd - spent_usd).max(0.0);
        let amount_usd = attempt_worst_case_usd(&chain, &app.config.pricing, &request_review)
            .map_or(left_usd, |worst| (2.0 * worst).min(left_usd));
        let payer = bitware_kit::limits::payer(
            &app.kam(),
            principal,
            Some(&job.client_id),
            &app.config.limits,
        )
        .await;
        let runtime = WorkerRuntime::with_gate(&app.env, app.gate.clone());
        let now = runtime.now_ms();
        let deadline = now + 60_000;
        let reservation = spend::reserve_for_job(
            &app.config.limits,
            db,
            &payer,
            amount_usd,
            deadline + ABANDON_GRACE_MS,
            &JobBound {
                job_id,
                limit_usd,
                now_ms: now,
            },
        )
        .await?;
        let mut budget = Budget {
            limit_usd: Some(spent_usd + amount_usd),
            spent_usd,
        };
        let ports = worker_ports(app, db, &runtime);
        let outcome = complete(
            &ports,
            &chain,
            &request_review,
            &|v| validation::parse_review(level, v),
            &mut budget,
            deadline,
            &mut attempts,
        )
        .await;
        match outcome {
            Ok(review) => (
                validation::verdict(level, threshold, &report, Some(&review.value)),
                Some(reservation),
            ),
            Err(e) => {
                // The attempts were paid for: recorded, and the reservation
                // settled to them, even though the review failed.
                db.jobs()
                    .record_attempts_settling(job_id, &job.client_id, &attempts, Some(&reservation))
                    .await?;
                let over_budget = matches!(e, ChainError::BudgetExceeded(_));
                let error = chain_error(e);
                return Err(if over_budget {
                    error.with_details(json!({
                        "jobId": job_id,
                        "budgetUsd": limit_usd,
                        "spentUsd": spent_usd,
                        "reservedUsd": amount_usd,
                    }))
                } else {
                    error
                });
            }
        }
    };
    let (usage, cost) = totals(&attempts);
    let row = NewValidation::of(&verdict, &usage, cost);
    db.record_validation(
        job_id,
        &job.client_id,
        &row,
        &attempts,
        reservation.as_ref(),
    )
    .await?;
    let model = attempts
        .iter()
        .rev()
        .find(|a| a.status == AttemptStatus::Success)
        .map(|a| a.model.clone());
    Ok(Revalidated {
        verdict,
        tokens_used: TokensIn {
            input: usage.input,
            output: usage.output,
        },
        cost_usd: cost,
        model,
    })
}

/// A validation of a completed job (`validationResult`).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Revalidated {
    /// Level, accuracy, threshold, passed, criteria, issues, the reviewer's
    /// feedback.
    #[serde(flatten)]
    pub verdict: Verdict,
    pub tokens_used: TokensIn,
    /// `None`: an unpriced model.
    pub cost_usd: Option<f64>,
    /// The reviewing model; `None` at level 1 (no model call).
    pub model: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct TokensIn {
    pub input: u64,
    pub output: u64,
}
