//! Submitting a granulation: check it, plan it, reserve its budget against
//! the payer's daily cap, and claim its job (idempotent per client and
//! execution id); and planning a queued job again from its stored request.

use super::plan::{expected_elements, plan};
use super::ports::{OutlineStore, Ports, StructureStore, TemplateSource};
use super::{Prepared, Submitted, ABANDON_GRACE_MS};
use crate::services::ai_provider::Runtime;
use crate::services::database::{outline_columns, NewJob, PlannedCall};
use crate::services::progress::{self, Placement};
use crate::services::spend::Payer;
use crate::types::api::JobRequest;
use bitware_kit::error::{worker_log, AppError, AppResult};
use bitware_kit::jobs::submit::reserve_and_claim;

/// Check a granulation request and claim its job (idempotent per client and
/// execution id, bound to the request's hash). `async_requested` sends it to
/// the queue; otherwise `placement` decides. Nothing is generated here.
///
/// The job's budget is reserved against the payer's daily spend cap before
/// anything is claimed, so a refusal (429) writes nothing; a claimed run owns
/// the reservation, settled when the run ends.
pub async fn submit<R: Runtime, J: OutlineStore, S: StructureStore, T: TemplateSource>(
    ports: &Ports<'_, R, J, S, T>,
    payer: &Payer,
    request: &JobRequest,
    execution_id: Option<String>,
    async_requested: bool,
) -> AppResult<(Submitted, Placement, Option<Prepared>)> {
    let client_id = payer.tenant.as_str();
    let (config, db) = (ports.config, ports.jobs);
    let start = ports.now_ms();
    let planned = match ports
        .templates
        .resolve(
            request.params.template_name.as_deref(),
            request.params.structure_type,
        )
        .await
    {
        Ok(template) => plan(config, template, request, start),
        Err(e) => Err(e),
    };
    let mut plan = match planned {
        Ok(plan) => plan,
        // A job completed under this request id is replayed even if its template
        // or provider has gone since: a Resource Manager retry must not get a 400.
        Err(e) => match execution_id.as_deref() {
            Some(id) => match db.completed_result(client_id, id).await? {
                Some(result) => return Ok((Submitted::Replay(result), Placement::Inline, None)),
                None => return Err(e),
            },
            None => return Err(e),
        },
    };
    let placement = if async_requested {
        Placement::Queue
    } else {
        progress::placement(
            plan.expected_output_tokens,
            config.jobs.tokens_per_second,
            request.timeout_ms,
            config.jobs.wait_until_grace_ms,
        )
    };
    let execution_id = execution_id.unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let request_params =
        serde_json::to_string(request).map_err(|e| AppError::internal(e.to_string()))?;
    let hash = progress::request_hash(request);
    let columns = outline_columns(
        &plan.params.topic,
        plan.structure_type,
        plan.params.granularity_level.get(),
        &plan.audience,
        plan.template.id,
        &plan.template.template_name,
    );
    let new_job = NewJob {
        client_id,
        execution_id: &execution_id,
        request_params: &request_params,
        deadline_at: plan.deadline_ms + ABANDON_GRACE_MS,
        request_hash: &hash,
        run_mode: placement,
        expected_tokens: plan.expected_output_tokens,
        expected_elements: expected_elements(&plan.counts),
        planned: plan.chain.first().map(|p| PlannedCall {
            provider: p.kind.as_str(),
            model: &p.model,
            output_price: config.pricing.price(&p.model).map(|price| price.output),
        }),
        columns: &columns,
    };
    let budget = plan.budget.limit_usd.unwrap_or(0.0);
    let claim = reserve_and_claim(
        ports.jobs,
        &ports.config.limits,
        payer,
        &new_job,
        budget,
        start,
        ports.config.jobs.stall_ms,
    )
    .await?;
    let (submitted, spent_usd) = Submitted::of(claim)?;
    // A re-run of a failed job is charged against the same budget.
    plan.budget.spent_usd = spent_usd;
    let prepared = matches!(submitted, Submitted::Claimed { .. }).then(|| Prepared {
        plan,
        client_id: client_id.to_string(),
        execution_id: execution_id.clone(),
    });
    Ok((submitted, placement, prepared))
}

/// Plan a queued job again from its stored request. The outer error is the
/// database's; the inner one a job that cannot run (recorded as its failure).
pub(super) async fn prepare<R: Runtime, J: OutlineStore, S: StructureStore, T: TemplateSource>(
    ports: &Ports<'_, R, J, S, T>,
    job_id: i64,
    run: u32,
    start: u64,
) -> AppResult<Result<Prepared, AppError>> {
    let db = ports.jobs;
    let job = db
        .stored_job(job_id)
        .await?
        .ok_or_else(|| AppError::not_found(format!("no job {job_id}")))?;
    let planned = match serde_json::from_str::<JobRequest>(&job.request_params) {
        Ok(request) => match ports
            .templates
            .resolve(
                request.params.template_name.as_deref(),
                request.params.structure_type,
            )
            .await
        {
            Ok(template) => plan(ports.config, template, &request, start),
            Err(e) => Err(e),
        },
        Err(e) => Err(AppError::internal(format!(
            "job {job_id} has unreadable parameters: {e}"
        ))),
    };
    match planned {
        Ok(mut plan) => {
            // What earlier runs of this job cost counts against its budget.
            plan.budget.spent_usd = job.cost_usd.unwrap_or(0.0);
            Ok(Ok(Prepared {
                plan,
                client_id: job.client_id,
                execution_id: job.execution_id,
            }))
        }
        Err(error) => {
            let reason = error.message.clone();
            if !db.fail_run(job_id, run, error.code, &reason).await? {
                worker_log(&format!("job {job_id} run {run} was no longer processing"));
            }
            Ok(Err(error))
        }
    }
}
