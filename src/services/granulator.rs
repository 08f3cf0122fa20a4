//! The granulation pipeline behind `POST /api/execute` (seed §2.2, §8, §12).
//!
//! claim the job (idempotent per client + execution id) → render the
//! template's prompt → provider chain with the type's JSON schema →
//! normalise → rule check (violations go back to the model once) → enforce
//! constraints → quality score → optional validation (a failed one
//! re-granulates once with the feedback) → estimates and metadata → storage
//! tier → one atomic batch that writes elements, job, attempts and analytics.
//! Any failure ends the job `failed` with its reason and its attempts' usage.

use crate::error::worker_log;
use crate::error::{AppError, AppResult, Kind};
use crate::helpers::auth::Principal;
use crate::helpers::economy::{efficiency, TokenUsage};
use crate::helpers::prompts::{self, JobPrompt};
use crate::services::ai_provider::runtime::WorkerRuntime;
use crate::services::ai_provider::{
    totals, Attempt, Budget, Chain, ChainError, CompletionRequest, ProviderConfig, ProviderKind,
    Purpose,
};
use crate::services::database::{
    Claim, Completion, Database, Failure, JobRow, NewJob, NewValidation,
};
use crate::services::normalize::normalize;
use crate::services::offline;
use crate::services::outline::{self, MetadataInput};
use crate::services::progress::{self, Placement, Progress};
use crate::services::spend::{self, Payer};
use crate::services::storage::{self, Tier};
use crate::services::templates;
use crate::services::timing::{now_ms, sleep, today};
use crate::services::validation::{
    self, assess, trim_to_max_elements, Constraints, QualityReport, Verdict,
};
use crate::types::api::{check_counts, GranulateParams, JobRequest};
use crate::types::env::App;
use crate::types::job::{JobStatus, Stage};
use crate::types::structure::StructureType;
use crate::types::template::Template;
use serde_json::{json, Value};
use std::rc::Rc;

/// Time a crashed run keeps its claim after the request deadline.
const ABANDON_GRACE_MS: u64 = 30_000;
/// At most one progress write a second while a model call streams.
const PROGRESS_WRITE_MS: u64 = 1_000;
const PROGRESS_POLL_MS: u64 = 250;

/// Everything fixed before the first model call.
struct Plan {
    template: Template,
    structure_type: StructureType,
    params: GranulateParams,
    constraints: Constraints,
    counts: Vec<u32>,
    audience: String,
    prompt: String,
    schema: Value,
    max_tokens: u32,
    temperature: f64,
    expected_output_tokens: u32,
    chain: Vec<ProviderConfig>,
    budget: Budget,
    validation: Option<(u8, f64)>,
    deadline_ms: u64,
}

pub fn chain_error(e: ChainError) -> AppError {
    match e {
        ChainError::BudgetExceeded(m) => AppError::new(
            Kind::Unprocessable,
            "budget_exceeded",
            format!("the job's budget does not allow another model call: {m}"),
        ),
        ChainError::DeadlineExceeded(m) => {
            AppError::new(Kind::GatewayTimeout, "deadline_exceeded", m)
        }
        ChainError::ProvidersFailed(m) => AppError::new(
            Kind::BadGateway,
            "provider_error",
            format!("every AI provider failed; last: {m}"),
        ),
    }
}

/// The AI review of an outline (validation levels 2-3).
fn review_request(
    structure_type: StructureType,
    topic: &str,
    audience: &str,
    level: u8,
    structure: &Value,
    report: &QualityReport,
    chain: &[ProviderConfig],
) -> CompletionRequest {
    CompletionRequest {
        purpose: Purpose::Validate,
        system: validation::review_system_prompt(),
        user: validation::review_prompt(structure_type, topic, audience, level, structure),
        schema_name: validation::REVIEW_SCHEMA_NAME.into(),
        schema: validation::review_schema(level),
        max_tokens: 2_000,
        temperature: 0.0,
        expected_output_tokens: 400,
        progress: None,
        offline_answer: uses_offline(chain).then(|| validation::offline_review(level, report)),
    }
}

/// The offline provider's answer is built only when the chain can use it:
/// generating a whole outline on every request would be wasted work.
fn uses_offline(chain: &[ProviderConfig]) -> bool {
    chain.iter().any(|p| p.kind == ProviderKind::Offline)
}

/// One provider-chain call with this worker's runtime, settings and prices.
async fn complete(
    app: &App,
    providers: &[ProviderConfig],
    request: &CompletionRequest,
    validate: &dyn Fn(&Value) -> Result<Value, Vec<String>>,
    budget: &mut Budget,
    deadline_ms: u64,
    attempts: &mut Vec<Attempt>,
) -> Result<crate::services::ai_provider::Completion, ChainError> {
    let runtime = WorkerRuntime { env: &app.env };
    let chain = Chain {
        runtime: &runtime,
        providers,
        settings: app.config.settings,
        pricing: &app.config.pricing,
    };
    chain
        .complete(request, validate, budget, deadline_ms, attempts)
        .await
}

fn plan(app: &App, template: Template, request: &JobRequest, start: u64) -> AppResult<Plan> {
    let params = request.params.clone();
    let config = &request.config;
    let structure_type = template.structure_type;
    check_counts(&params, structure_type, &template.structure_rules)?;
    validation::check_max_elements_feasible(
        structure_type,
        params.granularity_level,
        &template.structure_rules,
        &params.constraints(),
    )
    .map_err(|m| {
        AppError::new(Kind::BadRequest, "constraints_conflict", m)
            .with_details(json!({"field": "constraints.maxElements"}))
    })?;
    let chain = app.config.providers.chain(
        Some(&template.ai_provider_config),
        config.ai_provider,
        config.ai_model.as_deref(),
    )?;
    let JobPrompt {
        prompt,
        counts,
        audience,
        constraints,
    } = prompts::job_prompt(&template, &params).map_err(AppError::internal)?;
    let expected = structure_type.spec().expected_output_tokens(&counts);
    let max_tokens = config
        .max_tokens
        .or(template.ai_provider_config.max_tokens)
        .unwrap_or((expected * 2 + 500).clamp(1024, 16_000));
    let validation = match (config.validation, config.validation_level) {
        (Some(false), _) => None,
        (Some(true), level) | (None, level @ Some(_)) => Some((
            level.unwrap_or(template.validation_rules.validation_level),
            config
                .validation_threshold
                .unwrap_or(template.validation_rules.validation_threshold),
        )),
        (None, None) => None,
    };
    Ok(Plan {
        schema: prompts::json_schema(structure_type, counts.len(), &template.structure_rules),
        temperature: config
            .temperature
            .or(template.ai_provider_config.temperature)
            .unwrap_or(0.4),
        budget: Budget {
            limit_usd: Some(app.config.limits.job_budget(
                template.cost_optimization.max_cost_per_job,
                config.max_cost_usd,
            )),
            spent_usd: 0.0,
        },
        // The job's own deadline: its request may stop waiting long before.
        deadline_ms: start + app.config.jobs.job_timeout_ms.max(request.timeout_ms),
        template,
        structure_type,
        params,
        constraints,
        counts,
        audience,
        prompt,
        max_tokens,
        expected_output_tokens: expected,
        chain,
        validation,
    })
}

/// What became of a submitted granulation.
pub enum Submitted {
    /// This request claimed the job (new, or a failed one run again).
    Claimed { job_id: i64, run: u32 },
    /// Completed before under this key: the stored answer.
    Replay(Value),
    /// Another request, or the queue, is running it.
    Running { job_id: i64 },
}

/// A claimed job's plan, so an inline run starts without reading it back.
pub struct Prepared {
    plan: Plan,
    client_id: String,
    execution_id: String,
}

/// Elements an outline of these per-level counts has (each level multiplies).
fn expected_elements(counts: &[u32]) -> u32 {
    let mut total = 0u32;
    let mut level = 1u32;
    for c in counts {
        level = level.saturating_mul(*c);
        total = total.saturating_add(level);
    }
    total
}

/// Check a granulation request and claim its job (idempotent per client and
/// execution id, bound to the request's hash). `async_requested` sends it to
/// the queue; otherwise `placement` decides. Nothing is generated here.
///
/// The job's budget is reserved against the payer's daily spend cap before
/// anything is claimed, so a refusal (429) writes nothing; a claimed run owns
/// the reservation, settled when the run ends.
pub async fn submit(
    app: &App,
    db: &Database,
    payer: &Payer,
    request: &JobRequest,
    execution_id: Option<String>,
    async_requested: bool,
) -> AppResult<(Submitted, Placement, Option<Prepared>)> {
    let client_id = payer.tenant.as_str();
    let start = now_ms();
    let planned = match templates::resolve(
        app,
        db,
        request.params.template_name.as_deref(),
        request.params.structure_type,
    )
    .await
    {
        Ok(template) => plan(app, template, request, start),
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
            app.config.jobs.tokens_per_second,
            request.timeout_ms,
            app.config.jobs.wait_until_grace_ms,
        )
    };
    let execution_id = execution_id.unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let request_params =
        serde_json::to_string(request).map_err(|e| AppError::internal(e.to_string()))?;
    let hash = progress::request_hash(request);
    let new_job = NewJob {
        client_id,
        execution_id: &execution_id,
        topic: &plan.params.topic,
        structure_type: plan.structure_type,
        granularity: plan.params.granularity_level.get(),
        target_audience: &plan.audience,
        template_id: plan.template.id,
        template_name: &plan.template.template_name,
        request_params: &request_params,
        deadline_at: plan.deadline_ms + ABANDON_GRACE_MS,
        request_hash: &hash,
        run_mode: placement,
        expected_tokens: plan.expected_output_tokens,
        expected_elements: expected_elements(&plan.counts),
    };
    // A request whose job already completed is replayed, and one whose job
    // is running joins it, even when the cap is reached: neither spends.
    let (claim, reservation) = match spend::reserve(
        app,
        db,
        payer,
        plan.budget.limit_usd.unwrap_or(0.0),
        new_job.deadline_at,
    )
    .await
    {
        Ok(reservation) => match db.claim_job(&new_job, start, &reservation).await {
            Ok(claim) => (claim, Some(reservation)),
            Err(e) => {
                let _ = db.settle_spend(&reservation, 0.0).await;
                return Err(e);
            }
        },
        Err(refused) if refused.kind == Kind::TooManyRequests => {
            match db.existing_claim(&new_job, start).await? {
                Some(claim) => (claim, None),
                None => return Err(refused),
            }
        }
        Err(e) => return Err(e),
    };
    if let (false, Some(reservation)) = (matches!(claim, Claim::Run { .. }), &reservation) {
        // Nothing runs under this reservation: give it back.
        db.settle_spend(reservation, 0.0).await?;
    }
    let submitted = match claim {
        Claim::Run {
            job_id,
            run,
            spent_usd,
        } => {
            // A re-run of a failed job is charged against the same budget.
            plan.budget.spent_usd = spent_usd;
            Submitted::Claimed { job_id, run }
        }
        Claim::Replay { result, .. } => Submitted::Replay(result),
        Claim::InProgress { job_id } => Submitted::Running { job_id },
        Claim::Mismatch { job_id } => {
            return Err(AppError::new(
                Kind::Unprocessable,
                "idempotency_key_reused",
                "this X-Request-ID (or executionId) was used for a different request; use a new id for a new request",
            )
            .with_details(json!({"jobId": job_id})))
        }
    };
    let prepared = matches!(submitted, Submitted::Claimed { .. }).then(|| Prepared {
        plan,
        client_id: client_id.to_string(),
        execution_id: execution_id.clone(),
    });
    Ok((submitted, placement, prepared))
}

/// Run a claimed job to its end (inline or in the queue consumer): the
/// stored request is planned again, generated with live progress, and the
/// job ends `completed` or `failed`. Owns its `App`, so it can outlive the
/// request that started it.
///
/// Also returns the D1 round trips the run made (the inline path reports them
/// in its request's `X-D1-Round-Trips`).
pub async fn run_job(
    app: App,
    job_id: i64,
    run: u32,
    prepared: Option<Prepared>,
) -> (AppResult<Value>, u32) {
    let db = match Database::new(&app) {
        Ok(db) => db,
        Err(e) => return (Err(e), 0),
    };
    let result = run_with(&app, &db, job_id, run, prepared).await;
    (result, db.round_trips())
}

async fn run_with(
    app: &App,
    db: &Database,
    job_id: i64,
    run: u32,
    prepared: Option<Prepared>,
) -> AppResult<Value> {
    let start = now_ms();
    let prepared = match prepared {
        Some(p) => p,
        None => match prepare(app, db, job_id, run, start).await? {
            Ok(p) => p,
            Err(error) => return Err(error),
        },
    };
    let Prepared {
        plan,
        client_id,
        execution_id,
    } = prepared;
    let progress = Rc::new(Progress::default());
    let mut attempts = Vec::new();
    let mut runner = Job {
        app,
        db,
        plan,
        job_id,
        run,
        client_id: &client_id,
        execution_id: &execution_id,
        start,
        progress: progress.clone(),
    };
    let outcome = {
        let work = runner.run(&mut attempts);
        // Progress reaches D1 at most once a second and only when it moved; the
        // first tokens are written within a poll of arriving.
        let writer = async {
            let mut seen = progress.version();
            let mut written_at = 0u64;
            loop {
                sleep(PROGRESS_POLL_MS).await;
                let now = now_ms();
                if progress.version() != seen && now.saturating_sub(written_at) >= PROGRESS_WRITE_MS
                {
                    seen = progress.version();
                    written_at = now;
                    let _ = db
                        .write_progress(job_id, progress.tokens(), progress.elements(), now)
                        .await;
                }
            }
        };
        futures_util::pin_mut!(work);
        futures_util::pin_mut!(writer);
        match futures_util::future::select(work, writer).await {
            futures_util::future::Either::Left((outcome, _)) => outcome,
            futures_util::future::Either::Right(((), _)) => unreachable_writer(),
        }
    };
    match outcome {
        Ok(envelope) => Ok(envelope),
        Err(error) => Err(runner.fail(error, &attempts).await),
    }
}

/// Plan a queued job again from its stored request. The outer error is the
/// database's; the inner one a job that cannot run (recorded as its failure).
async fn prepare(
    app: &App,
    db: &Database,
    job_id: i64,
    run: u32,
    start: u64,
) -> AppResult<Result<Prepared, AppError>> {
    let job = db
        .job(job_id, None)
        .await?
        .ok_or_else(|| AppError::not_found(format!("no job {job_id}")))?;
    let payload = db
        .job_payload(job_id)
        .await?
        .ok_or_else(|| AppError::not_found(format!("no job {job_id}")))?;
    let planned = match serde_json::from_str::<JobRequest>(&payload.request_params) {
        Ok(request) => match templates::resolve(
            app,
            db,
            request.params.template_name.as_deref(),
            request.params.structure_type,
        )
        .await
        {
            Ok(template) => plan(app, template, &request, start),
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

/// The progress writer loops forever; `select` only ever finishes with the work.
fn unreachable_writer() -> AppResult<Value> {
    Err(AppError::internal("the progress writer stopped"))
}

/// What a waiting request saw.
pub enum Waited {
    Completed(Value),
    Failed(AppError),
    /// Still running when the wait ended.
    Running,
}

/// The error a failed job's waiters get, from its stored code and reason.
pub fn failure_error(job_id: i64, code: Option<&str>, reason: Option<&str>) -> AppError {
    let code = code.unwrap_or("job_failed");
    let kind = match code {
        "budget_exceeded" => Kind::Unprocessable,
        "deadline_exceeded" => Kind::GatewayTimeout,
        "database_unavailable" | "storage_unavailable" | "queue_unavailable" => Kind::Unavailable,
        _ => Kind::BadGateway,
    };
    let code: &'static str = match code {
        "budget_exceeded" => "budget_exceeded",
        "deadline_exceeded" => "deadline_exceeded",
        "provider_error" => "provider_error",
        "dead_lettered" => "dead_lettered",
        "abandoned" => "abandoned",
        "database_unavailable" => "database_unavailable",
        "storage_unavailable" => "storage_unavailable",
        "queue_unavailable" => "queue_unavailable",
        _ => "job_failed",
    };
    AppError::new(kind, code, reason.unwrap_or("the job failed").to_string())
        .with_details(json!({"jobId": job_id, "statusUrl": format!("/api/jobs/{job_id}/status")}))
}

/// Wait for a job to end, looking at its row with a growing pause, until
/// `until_ms`.
pub async fn wait_for(db: &Database, job_id: i64, until_ms: u64) -> AppResult<Waited> {
    let mut n = 0;
    loop {
        if let Some(state) = db.job_state(job_id).await? {
            match state.status {
                JobStatus::Completed => {
                    let result = state
                        .result_json
                        .as_deref()
                        .and_then(|r| serde_json::from_str(r).ok())
                        .ok_or_else(|| {
                            AppError::internal("a completed job has no stored result")
                        })?;
                    return Ok(Waited::Completed(result));
                }
                JobStatus::Failed => {
                    return Ok(Waited::Failed(failure_error(
                        job_id,
                        state.failure_code.as_deref(),
                        state.failure_reason.as_deref(),
                    )))
                }
                JobStatus::Processing => {}
            }
        }
        let now = now_ms();
        if now >= until_ms {
            return Ok(Waited::Running);
        }
        sleep(progress::poll_delay_ms(n).min(until_ms - now)).await;
        n += 1;
    }
}

/// The answer of a request whose wait ended before its job.
pub fn still_running(job_id: i64, waited_ms: u64) -> AppError {
    AppError::new(
        Kind::GatewayTimeout,
        "deadline_exceeded",
        format!(
            "the job is still running after {waited_ms} ms (the request's timeout); it continues: \
             follow statusUrl, or send the same X-Request-ID again to get its result"
        ),
    )
    .with_details(progress::job_links(job_id))
}

struct Job<'a> {
    app: &'a App,
    db: &'a Database,
    plan: Plan,
    job_id: i64,
    run: u32,
    client_id: &'a str,
    execution_id: &'a str,
    start: u64,
    progress: Rc<Progress>,
}

/// An outline and how it scored.
struct Draft {
    structure: Value,
    report: QualityReport,
    provider: String,
    model: String,
}

impl Job<'_> {
    fn outline_request(&self, purpose: Purpose, user: String) -> CompletionRequest {
        let p = &self.plan;
        CompletionRequest {
            purpose,
            system: prompts::system_prompt(p.structure_type),
            user,
            schema_name: prompts::schema_name(p.structure_type),
            schema: p.schema.clone(),
            max_tokens: p.max_tokens,
            temperature: p.temperature,
            expected_output_tokens: p.expected_output_tokens,
            progress: Some(self.progress.clone()),
            offline_answer: uses_offline(&p.chain).then(|| {
                offline::generate(
                    p.structure_type,
                    p.params.granularity_level,
                    &p.template.structure_rules,
                    &p.constraints,
                    &p.params.topic,
                )
            }),
        }
    }

    async fn draft(
        &mut self,
        purpose: Purpose,
        user: String,
        attempts: &mut Vec<Attempt>,
    ) -> Result<Draft, ChainError> {
        let st = self.plan.structure_type;
        let request = self.outline_request(purpose, user);
        let done = complete(
            self.app,
            &self.plan.chain,
            &request,
            &|v| normalize(st, v),
            &mut self.plan.budget,
            self.plan.deadline_ms,
            attempts,
        )
        .await?;
        let report = self.assess(&done.value);
        Ok(Draft {
            structure: done.value,
            report,
            provider: done.provider.as_str().to_string(),
            model: done.model,
        })
    }

    fn assess(&self, structure: &Value) -> QualityReport {
        let p = &self.plan;
        assess(
            p.structure_type,
            p.params.granularity_level,
            &p.template.structure_rules,
            &p.constraints,
            structure,
        )
    }

    async fn run(&mut self, attempts: &mut Vec<Attempt>) -> AppResult<Value> {
        let first = self
            .draft(Purpose::Granulate, self.plan.prompt.clone(), attempts)
            .await
            .map_err(chain_error)?;
        let mut best = self.refine(first, attempts).await?;

        let mut verdict = None;
        if let Some((level, threshold)) = self.plan.validation {
            let v = self.validate(&best, level, threshold, attempts).await?;
            // An unavailable review is no finding to act on: no second outline.
            if !v.passed && v.reason.is_none() {
                // One more outline with the reviewer's findings, then the better verdict stands.
                let feedback = prompts::feedback_prompt(
                    &v.issues
                        .iter()
                        .take(12)
                        .cloned()
                        .chain(v.ai_feedback.clone())
                        .collect::<Vec<_>>(),
                );
                let user = format!("{}\n\n{feedback}", self.plan.prompt);
                match self.draft(Purpose::Granulate, user, attempts).await {
                    Ok(second) => {
                        let second_verdict =
                            self.validate(&second, level, threshold, attempts).await?;
                        if second_verdict.reason.is_none()
                            && second_verdict.accuracy_percentage >= v.accuracy_percentage
                        {
                            best = second;
                            verdict = Some(second_verdict);
                        } else {
                            verdict = Some(v);
                        }
                    }
                    Err(_) => verdict = Some(v),
                }
            } else {
                verdict = Some(v);
            }
        }
        self.finish(best, verdict, attempts).await
    }

    /// Rule and constraint violations go back to the model once; the better
    /// outline is kept, and `maxElements` is then enforced by trimming.
    async fn refine(&mut self, draft: Draft, attempts: &mut Vec<Attempt>) -> AppResult<Draft> {
        let mut best = draft;
        if !best.report.violations.is_empty() && now_ms() + 2_000 < self.plan.deadline_ms {
            self.db.set_stage(self.job_id, Stage::Refining).await?;
            let user = format!(
                "{}\n\nYour previous outline:\n{}\n\n{}",
                self.plan.prompt,
                best.structure,
                prompts::feedback_prompt(&best.report.feedback())
            );
            if let Ok(repaired) = self.draft(Purpose::Repair, user, attempts).await {
                if repaired.report.score >= best.report.score {
                    best = repaired;
                }
            }
        }
        let p = &self.plan;
        let (st, g) = (p.structure_type, p.params.granularity_level);
        let rules = &p.template.structure_rules;
        if trim_to_max_elements(st, g, rules, &p.constraints, &mut best.structure) > 0 {
            best.report = self.assess(&best.structure);
        }
        Ok(best)
    }

    async fn validate(
        &mut self,
        draft: &Draft,
        level: u8,
        threshold: f64,
        attempts: &mut Vec<Attempt>,
    ) -> AppResult<Verdict> {
        if level < 2 {
            return Ok(validation::verdict(level, threshold, &draft.report, None));
        }
        self.db.set_stage(self.job_id, Stage::Validating).await?;
        let request = review_request(
            self.plan.structure_type,
            &self.plan.params.topic,
            &self.plan.audience,
            level,
            &draft.structure,
            &draft.report,
            &self.plan.chain,
        );
        let outcome = complete(
            self.app,
            &self.plan.chain,
            &request,
            &|v| validation::parse_review(level, v),
            &mut self.plan.budget,
            self.plan.deadline_ms,
            attempts,
        )
        .await;
        let review = match outcome {
            Ok(review) => review,
            // The outline is produced and paid for: keep it, marked unreviewed.
            Err(e) => {
                let error = chain_error(e).message;
                return Ok(validation::review_unavailable(
                    level,
                    threshold,
                    &draft.report,
                    &error,
                ));
            }
        };
        Ok(validation::verdict(
            level,
            threshold,
            &draft.report,
            Some(&review.value),
        ))
    }

    async fn finish(
        &mut self,
        draft: Draft,
        verdict: Option<Verdict>,
        attempts: &[Attempt],
    ) -> AppResult<Value> {
        let p = &self.plan;
        let st = p.structure_type;
        let rows = outline::flatten(st, &draft.structure);
        let words = outline::word_counts(st, &rows);
        let structure_json = draft.structure.to_string();
        let tier = Tier::for_size(structure_json.len());
        if tier != Tier::Inline {
            self.db.set_stage(self.job_id, Stage::Storing).await?;
        }
        let location = storage::store(self.app, tier, self.job_id, &structure_json).await?;
        let min_quality = p.template.validation_rules.min_quality_score;
        let metadata = outline::content_metadata(
            &MetadataInput {
                structure_type: st,
                topic: &p.params.topic,
                granularity: p.params.granularity_level.get(),
                target_audience: &p.audience,
                min_quality_score: min_quality,
                validation_required: verdict.is_some(),
                storage_tier: tier.as_str(),
                model: Some(&draft.model),
            },
            &rows,
            &words,
            &self.app.config.pricing,
        );
        let (usage, cost) = totals(attempts);
        let elapsed = now_ms().saturating_sub(self.start);
        // The offline provider's outlines are numbered skeletons (`placeholder`).
        let placeholder = draft.provider == ProviderKind::Offline.as_str();
        let ready = validation::ready_for_content_generation(
            draft.report.score,
            min_quality,
            verdict.as_ref(),
            placeholder,
            self.app.config.environment == "production",
        );
        let deliverable_specs = json!({
            "format": "structured_json",
            "structureType": st,
            "sections": st.spec().levels.iter().take(p.counts.len()).map(|l| l.key).collect::<Vec<_>>(),
            "estimatedTotalWords": words.total,
            "storage": tier,
        });
        let structure_field = match &location {
            None => ("structure", draft.structure.clone()),
            Some(loc) => (
                "structureReference",
                json!({"type": tier, "location": loc, "sizeBytes": structure_json.len(),
                    "url": format!("/api/jobs/{}/structure", self.job_id)}),
            ),
        };
        let mut summary = json!({
            "totalElements": rows.len(),
            "elementsByLevel": draft.report.elements_by_level,
            "depth": draft.report.depth,
            "wordCountEstimates": words,
            "contentMetadata": metadata,
        });
        for (level, count) in &draft.report.elements_by_level {
            summary[level] = json!(count);
        }
        let mut output = json!({
            "granulatorJobId": self.job_id,
            "jobId": self.job_id,
            "topic": p.params.topic,
            "structureType": st,
            "templateName": p.template.template_name,
            "granularityLevel": p.params.granularity_level.get(),
            "targetAudience": p.audience,
            "summary": summary,
            "wordCountEstimates": words,
            "contentMetadata": metadata,
            "qualityScore": draft.report.score,
            "qualityReport": {"components": draft.report.components, "violations": draft.report.violations},
            "readyForContentGeneration": ready,
            "readyForNext": ready,
            "nextWorkerRecommendation": outline::NEXT_WORKERS[0],
            "processingTimeMs": elapsed,
            "tokensUsed": {"input": usage.input, "output": usage.output, "total": usage.total()},
            "costUsd": cost,
            "provider": draft.provider,
            "model": draft.model,
            "deliverableSpecs": deliverable_specs,
            "placeholder": placeholder,
        });
        output[structure_field.0] = structure_field.1;
        let mut warnings = Vec::new();
        if let Some(v) = &verdict {
            output["validationResult"] = json!({
                "level": v.level, "accuracyPercentage": v.accuracy_percentage, "threshold": v.threshold, "passed": v.passed,
                "criteria": v.criteria, "issues": v.issues, "aiFeedback": v.ai_feedback,
            });
            if let Some(reason) = v.reason {
                output["validationResult"]["reason"] = json!(reason);
                warnings.push(json!({"code": reason, "message": v.issues.first()}));
            }
        }
        if placeholder {
            warnings.push(json!({"code": "placeholder", "message": "the offline provider's outline is a numbered skeleton with template text, not content to write from"}));
        }
        // Top-level `model`: the Resource Manager prices `usage.tokens` under it.
        let envelope = json!({
            "success": true,
            "model": draft.model,
            "output": output,
            "usage": {"tokens": {"input": usage.input, "output": usage.output, "cached": usage.cached}},
            "duration": elapsed,
            "cost": cost,
            "metadata": {
                "workerChain": outline::worker_chain(),
                "jobId": self.job_id,
                "executionId": self.execution_id,
                "run": self.run,
                "attempts": attempts.len(),
                "storageTier": tier,
                "efficiency": efficiency(&usage, elapsed, cost),
                "warnings": warnings,
            },
        });
        let result_json = envelope.to_string();
        let validation_row = verdict.as_ref().map(|v| {
            let (vu, vc) = totals(
                &attempts
                    .iter()
                    .filter(|a| a.purpose == Purpose::Validate)
                    .cloned()
                    .collect::<Vec<_>>(),
            );
            NewValidation::of(v, &vu, vc)
        });
        self.db
            .complete_job(&Completion {
                job_id: self.job_id,
                client_id: self.client_id,
                template_id: p.template.id,
                provider: &draft.provider,
                model: &draft.model,
                usage,
                cost_usd: cost,
                quality_score: draft.report.score,
                validation: validation_row.as_ref(),
                elements: &rows,
                estimated_total_words: words.total,
                content_metadata: &metadata,
                deliverable_specs: &deliverable_specs,
                structure_root: &outline::root_fields(st, &draft.structure),
                storage_type: tier.as_str(),
                storage_location: location.as_deref(),
                structure_bytes: structure_json.len(),
                result_json: &result_json,
                processing_time_ms: elapsed,
                attempts,
                date: &today(),
            })
            .await?;
        Ok(envelope)
    }

    /// Leave the job `failed` with the reason and the usage it incurred.
    async fn fail(&self, error: AppError, attempts: &[Attempt]) -> AppError {
        let (usage, cost): (TokenUsage, Option<f64>) = totals(attempts);
        let last = attempts.last();
        let failure = Failure {
            job_id: self.job_id,
            client_id: self.client_id,
            template_id: self.plan.template.id,
            code: error.code,
            reason: &error.message,
            provider: last.map(|a| a.provider.as_str()),
            model: last.map(|a| a.model.as_str()),
            usage,
            cost_usd: cost,
            processing_time_ms: now_ms().saturating_sub(self.start),
            attempts,
            date: &today(),
        };
        if let Err(e) = self.db.fail_job(&failure).await {
            crate::error::worker_log(&format!(
                "job {} could not be marked failed: {e}",
                self.job_id
            ));
        }
        let summary: Vec<Value> = attempts
            .iter()
            .map(|a| json!({"provider": a.provider, "model": a.model, "purpose": a.purpose, "status": a.status, "httpStatus": a.http_status, "error": a.error}))
            .collect();
        let mut details = error.details.clone().unwrap_or_else(|| json!({}));
        details["jobId"] = json!(self.job_id);
        details["attempts"] = json!(summary);
        details["usage"] =
            json!({"tokens": {"input": usage.input, "output": usage.output}, "cost": cost});
        error.with_details(details)
    }
}

/// The structure of a completed job: from its storage tier, or rebuilt from
/// `structure_elements` (`from_elements`, or when a KV copy has expired).
pub async fn load_structure(
    app: &App,
    db: &Database,
    job: &JobRow,
    from_elements: bool,
) -> AppResult<(Value, &'static str)> {
    let structure_type = StructureType::parse(&job.structure_type)
        .ok_or_else(|| AppError::internal("a job has an unknown structure type"))?;
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
                    return Ok((structure, "inline"));
                }
            }
            (Some(tier), Some(location)) => {
                if let Some(structure) = storage::load(app, tier, location).await? {
                    return Ok((structure, tier.as_str()));
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
    Ok((outline::rebuild(structure_type, &root, &rows), "elements"))
}

/// Validate a completed job again (`POST /api/validate`, execute `validate`).
pub async fn revalidate(
    app: &App,
    db: &Database,
    principal: &Principal,
    job_id: i64,
    level: Option<u8>,
    threshold: Option<f64>,
) -> AppResult<Value> {
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
    // A template deleted since keeps its job valid against the contract's rules.
    let template = match job.template_name.as_deref() {
        Some(name) => templates::by_name(app, db, name).await?,
        None => None,
    };
    let rules = template
        .as_ref()
        .map(|t| t.structure_rules.clone())
        .unwrap_or_else(|| validation::StructureRules::contract(structure_type));
    let rules_default = template
        .as_ref()
        .map(|t| t.validation_rules.clone())
        .unwrap_or_default();
    let level = level.unwrap_or(rules_default.validation_level);
    let threshold = threshold.unwrap_or(rules_default.validation_threshold);
    let (structure, _) = load_structure(app, db, &job, false).await?;
    let report = assess(
        structure_type,
        request.params.granularity_level,
        &rules,
        &request.params.constraints(),
        &structure,
    );
    let mut attempts = Vec::new();
    let verdict = if level < 2 {
        validation::verdict(level, threshold, &report, None)
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
        // earlier reviews spent counts) and reserved against the daily cap.
        let mut budget = Budget {
            limit_usd: Some(
                app.config.limits.job_budget(
                    template
                        .as_ref()
                        .and_then(|t| t.cost_optimization.max_cost_per_job),
                    request.config.max_cost_usd,
                ),
            ),
            spent_usd: job.cost_usd.unwrap_or(0.0),
        };
        let payer = Payer::for_tenant(principal, &job.client_id, &app.config.limits);
        let deadline = now_ms() + 60_000;
        let reservation = spend::reserve(
            app,
            db,
            &payer,
            budget.left_usd().unwrap_or(0.0),
            deadline + ABANDON_GRACE_MS,
        )
        .await?;
        let outcome = complete(
            app,
            &chain,
            &request_review,
            &|v| validation::parse_review(level, v),
            &mut budget,
            deadline,
            &mut attempts,
        )
        .await;
        let (_, spent) = totals(&attempts);
        db.settle_spend(&reservation, spent.unwrap_or(0.0)).await?;
        match outcome {
            Ok(review) => validation::verdict(level, threshold, &report, Some(&review.value)),
            Err(e) => {
                // The attempts were paid for: record them even though the review failed.
                if !attempts.is_empty() {
                    db.record_attempts(job_id, &job.client_id, &attempts)
                        .await?;
                }
                return Err(chain_error(e));
            }
        }
    };
    let (usage, cost) = totals(&attempts);
    let row = NewValidation::of(&verdict, &usage, cost);
    db.record_validation(job_id, &job.client_id, &row, &attempts)
        .await?;
    Ok(json!({
        "level": level, "accuracyPercentage": verdict.accuracy_percentage, "threshold": threshold, "passed": verdict.passed,
        "criteria": verdict.criteria, "issues": verdict.issues, "aiFeedback": verdict.ai_feedback,
        "tokensUsed": {"input": usage.input, "output": usage.output}, "costUsd": cost,
        "model": attempts.iter().rev().find(|a| a.status == crate::services::ai_provider::AttemptStatus::Success).map(|a| a.model.clone()),
    }))
}
