//! The example action as a long job on the kit's lifecycle
//! (`bitware_kit::jobs`): submit (reserve the budget against the payer's
//! daily cap, then claim under the idempotency key: replay, join, 422 on a
//! reused key), run (the provider chain streaming beside the kit's `Watch`,
//! which writes progress and the heartbeat and sees a cancel), and end
//! (completed with its execution row, failed with its reason, or cancelled
//! with what it spent), inline or in this worker's queue consumer. What is
//! this worker's own is `services::example`.

use crate::services::database::Database;
use crate::services::example;
use crate::types::env::{App, SERVICE_NAME};
use crate::types::execute::{ExecuteRequest, JobRequest};
use bitware_kit::ai::runtime::WorkerRuntime;
use bitware_kit::ai::{totals, Budget, Chain, Progress, RuntimeClock};
use bitware_kit::error::{AppError, AppResult};
use bitware_kit::jobs::end::RunEnd;
use bitware_kit::jobs::queue::{self, Delivery, JobMessage};
use bitware_kit::jobs::run::{beside, RunCancel, RunStop, Watch};
use bitware_kit::jobs::submit::reserve_and_claim;
use bitware_kit::jobs::wait;
use bitware_kit::jobs::{
    run_superseded, Completion, JobStore as _, Moment, NewJob, PlannedCall, RunMode,
    SpendLedger as _,
};
use bitware_kit::limits::Payer;
use bitware_kit::timing::{day_of, now_ms, Clock as _};
use serde_json::{json, Value};
use std::rc::Rc;

/// Time a crashed run keeps its claim after the job's own deadline.
const ABANDON_GRACE_MS: u64 = 30_000;
/// Jobs the cron sweep ends at most per run.
const SWEEP_LIMIT: u32 = 200;

/// What became of a submitted job: the kit's.
pub use bitware_kit::jobs::submit::Submitted;

/// A chain's failure as the error a caller reads: the kit's.
pub use bitware_kit::ai::chain_error;

/// Reserve the job's budget and claim it under `execution_id`. Asked for
/// async, it goes to the queue; otherwise where its expected output fits.
pub async fn submit(
    app: &App,
    db: &Database,
    payer: &Payer,
    request: &ExecuteRequest,
    execution_id: &str,
    asynchronous: bool,
) -> AppResult<(Submitted, RunMode)> {
    let config = &app.config;
    let job = &request.job;
    let now = now_ms();
    let placement = match asynchronous {
        true => RunMode::Queue,
        false => wait::placement(
            job.max_tokens,
            config.jobs.tokens_per_second,
            request.timeout_ms,
            config.jobs.wait_until_grace_ms,
        ),
    };
    let providers = config.providers.chain(None, None, None)?;
    let params = serde_json::to_string(job).map_err(|e| AppError::internal(e.to_string()))?;
    let hash = wait::request_hash(&job.canonical());
    let new_job = NewJob {
        client_id: &payer.tenant,
        execution_id,
        request_params: &params,
        deadline_at: now + config.jobs.job_timeout_ms + ABANDON_GRACE_MS,
        request_hash: &hash,
        run_mode: placement,
        expected_tokens: job.max_tokens,
        expected_elements: 1,
        planned: providers.first().map(|p| PlannedCall {
            provider: p.kind.as_str(),
            model: &p.model,
            output_price: config.pricing.price(&p.model).map(|price| price.output),
        }),
        columns: &[],
    };
    let budget = config.limits.job_budget(None, job.max_cost_usd);
    let claim = reserve_and_claim(
        db,
        &config.limits,
        payer,
        &new_job,
        budget,
        now,
        config.jobs.stall_ms,
    )
    .await?;
    let (submitted, _) = Submitted::of(claim)?;
    Ok((submitted, placement))
}

/// Run a claimed job to its end, inline or in the queue consumer: its
/// stored request through the provider chain, streaming, with the kit's
/// watcher beside it. Owns its `App`, so it can outlive its request.
pub async fn run_job(app: App, job_id: i64, run: u32) -> AppResult<Value> {
    let db = Database::new(&app)?;
    let stored = db
        .stored_job(job_id)
        .await?
        .ok_or_else(|| AppError::not_found(format!("no job {job_id}")))?;
    let config = &app.config;
    let prepared = serde_json::from_str::<JobRequest>(&stored.request_params)
        .map_err(|e| AppError::internal(format!("job {job_id} has unreadable parameters: {e}")))
        .and_then(|job| Ok((config.providers.chain(None, None, None)?, job)));
    let (providers, job) = match prepared {
        Ok(p) => p,
        Err(error) => {
            db.fail_run(job_id, run, error.code, &error.message).await?;
            return Err(error);
        }
    };
    let runtime = WorkerRuntime { env: &app.env };
    let clock = RuntimeClock(&runtime);
    let start = clock.now_ms();
    let progress = Rc::new(Progress::default());
    let cancel = RunCancel::default();
    cancel.job.set(Some(job_id));
    let stop = RunStop {
        cancel: &cancel,
        jobs: &db,
    };
    let mut request = example::completion_request(&job);
    request.progress = Some(progress.clone());
    request.cache_key = Some(format!("{SERVICE_NAME}-job-{job_id}"));
    // What earlier runs of the job spent counts against its budget.
    let mut budget = Budget {
        limit_usd: Some(config.limits.job_budget(None, job.max_cost_usd)),
        spent_usd: stored.cost_usd.unwrap_or(0.0),
    };
    let mut attempts = Vec::new();
    db.set_stage(job_id, run, "summarising", start).await?;
    let outcome = {
        let chain = Chain {
            runtime: &runtime,
            providers: &providers,
            settings: config.settings,
            pricing: &config.pricing,
            stop: Some(&stop),
        };
        let deadline = start + config.jobs.job_timeout_ms;
        let work = chain.complete(
            &request,
            &example::check_answer,
            &mut budget,
            deadline,
            &mut attempts,
        );
        let watcher = Watch {
            clock: &clock,
            jobs: &db,
            cancel: &cancel,
            progress: &progress,
            job_id,
            run,
            start_ms: start,
        }
        .watch(async || {});
        beside(work, watcher).await
    };
    let ending = RunEnd {
        job_id,
        run,
        client_id: &stored.client_id,
        start_ms: start,
        now_ms: clock.now_ms(),
        attempts: &attempts,
    };
    match outcome {
        Ok(done) => {
            let (usage, cost) = totals(&attempts);
            let envelope = json!({
                "success": true,
                "output": example::output(&job, &done.value),
                "usage": {"tokens": {"input": usage.input, "output": usage.output}},
                "duration": clock.now_ms().saturating_sub(start),
                "cost": cost,
                "metadata": {"jobId": job_id, "executionId": stored.execution_id, "worker": SERVICE_NAME,
                    "provider": done.provider.as_str(), "model": done.model},
            });
            let result_json = envelope.to_string();
            let now = clock.now_ms();
            let completion = Completion {
                job_id,
                run,
                client_id: &stored.client_id,
                provider: done.provider.as_str(),
                model: &done.model,
                usage,
                cost_usd: cost,
                result_json: &result_json,
                processing_time_ms: now.saturating_sub(start),
                attempts: &attempts,
                date: &day_of(now),
                columns: &[],
            };
            let stored_it = db
                .complete(&completion, &stored.client_id, job.text.chars().count())
                .await;
            match stored_it {
                Ok(true) => Ok(envelope),
                // Cancelled while it finished: the cancel stands (final is final).
                _ if cancel.cancelled_now(&db).await => Err(ending.cancelled(&db).await),
                Ok(false) => Err(run_superseded(job_id, run)),
                Err(e) => Err(ending.fail(&db, e).await),
            }
        }
        Err(_) if cancel.cancelled_now(&db).await => Err(ending.cancelled(&db).await),
        Err(_) if cancel.superseded.get() => Err(run_superseded(job_id, run)),
        Err(e) => Err(ending.fail(&db, chain_error(e)).await),
    }
}

/// The queue consumer: the kit's (started once per run, a stalled run taken
/// over, `Retry` only when the job could not be started or its end recorded).
pub async fn consume(app: &App, message: &JobMessage) -> Delivery {
    let Ok(db) = Database::new(app) else {
        return Delivery::Retry;
    };
    let now = now_ms();
    let today = day_of(now);
    let moment = Moment {
        ms: now,
        stall_ms: app.config.jobs.stall_ms,
        today: &today,
    };
    queue::consume(&db, message, moment, async |run| {
        run_job(app.clone(), message.job_id, run).await
    })
    .await
}

/// A message the queue gave up on: its run ends `failed` with the reason.
pub async fn dead_letter(app: &App, message: &JobMessage) -> Delivery {
    match Database::new(app) {
        Ok(db) => queue::dead_letter(&db, message).await,
        Err(_) => Delivery::Retry,
    }
}

/// The cron sweep: runs past their deadline end `failed` (`abandoned`,
/// booked at what they streamed), expired reservations are released.
pub async fn sweep(app: &App) -> AppResult<(usize, usize)> {
    let db = Database::new(app)?;
    let now = now_ms();
    let abandoned = db
        .fail_abandoned_jobs(now, &day_of(now), SWEEP_LIMIT)
        .await?;
    let released = db.release_expired(now).await?;
    Ok((abandoned, released))
}
