//! A worker's long job, driven by the kit from submit to answer. The worker
//! implements [`Work`] — what a job expects ([`Work::plan`]), what binds its
//! idempotency key ([`Work::canonical`]), the work itself ([`Work::run`],
//! with a [`RunCtx`] for its model calls) and, when it has rows of its own,
//! how a finished run is stored ([`Work::complete`]) — and hands the rest to
//! the kit:
//!
//! - [`execute`]: `POST /api/execute` after parsing — reserve, claim
//!   (replay, join, 422 on a reused key, a cancelled key's 409), place
//!   (inline or the queue), and answer as the caller asked: 202 + `Location`
//!   (`Prefer: respond-async` or `"async": true`), the result, or 504 with
//!   the job's links once the request's `timeout` passes (the job goes on);
//! - [`run_job`]: a claimed run, inline or in the queue consumer, with the
//!   kit's watcher beside it (progress, heartbeat, cancel, takeover) and its
//!   end (completed with the Resource Manager envelope, failed with its
//!   reason, cancelled with what it spent, or superseded);
//! - [`consume`], [`dead_letter`] and [`sweep`]: the queue consumer, the
//!   dead-letter consumer and the cron sweep.
//!
//! The tables are the kit's (or a worker's that carry the kit's columns,
//! named by [`Setup::schema`]).

use super::end::RunEnd;
use super::queue::{self, Delivery, JobMessage};
use super::run::{beside, RunCancel, RunStop, Watch};
use super::submit::{reserve_and_claim, Submitted};
use super::wait::{self, Waited};
use super::{
    run_superseded, Completion, D1Jobs, D1Ledger, JobSchema, JobSettings, JobStore, Moment, NewJob,
    PlannedCall, RunMode, SpendLedger,
};
use crate::ai::runtime::WorkerRuntime;
use crate::ai::shares::{budget_shares, shares_fit, CallCost};
use crate::ai::{
    chain_error, totals, Attempt, Budget, Chain, ChainError, CompletionRequest, Confirm, Progress,
    Runtime as _, RuntimeClock, Stop,
};
use crate::d1::D1;
use crate::error::{AppError, AppResult};
use crate::http::Reply;
use crate::limits::{Limits, Payer};
use crate::pricing::Pricing;
use crate::provider::{ProviderConfig, Settings};
use crate::provider_setup::ProviderSetup;
use crate::timing::{day_of, now_ms, with_timeout, Clock as _, WallClock};
use futures_util::{FutureExt, StreamExt};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use worker::{Context, Env};

/// Time a crashed run keeps its claim after the job's own deadline.
pub const ABANDON_GRACE_MS: u64 = 30_000;
/// Jobs the cron sweep ends at most per run.
pub const SWEEP_LIMIT: u32 = 200;

/// What the kit needs of a worker to drive its jobs: its bindings and the
/// parts of its configuration the lifecycle reads.
pub struct Setup<'a> {
    pub env: &'a Env,
    /// The worker's service name (the envelope's `metadata.worker`).
    pub service: &'static str,
    /// The D1 binding that holds the job tables.
    pub db: &'static str,
    /// The queue binding queued runs are sent to.
    pub queue: &'static str,
    pub schema: JobSchema,
    pub providers: &'a ProviderSetup,
    pub settings: Settings,
    pub pricing: &'a Pricing,
    pub limits: &'a Limits,
    pub jobs: &'a JobSettings,
}

/// What a job expects before it runs: where it is placed, how its progress
/// reads, what its budget is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Plan {
    pub expected_tokens: u32,
    pub expected_elements: u32,
    /// A budget the request sets for itself (it can only lower the ceiling).
    pub max_cost_usd: Option<f64>,
}

/// What a run made: the envelope's `output`, the model that made it, and
/// fields the worker adds to the envelope's `metadata`.
#[derive(Debug, Clone, PartialEq)]
pub struct Made {
    pub output: Value,
    pub provider: String,
    pub model: String,
    pub metadata: Value,
}

/// A request to run a job, parsed: the job and how its caller waits.
#[derive(Debug, Clone, PartialEq)]
pub struct Submission<J> {
    pub job: J,
    pub timeout_ms: u64,
    pub asynchronous: bool,
}

/// A worker's job. `Clone + 'static`: an inline run outlives its request
/// (`waitUntil`), so the work owns what it needs (an `App` of `Env` and
/// `Rc<Config>`).
#[allow(async_fn_in_trait)]
pub trait Work: Clone + 'static {
    /// The job as stored (`request_params`) and read back by a queued run.
    type Job: Serialize + DeserializeOwned;

    fn setup(&self) -> Setup<'_>;

    /// What the job expects; an error refuses the request before anything
    /// is reserved or written.
    fn plan(&self, job: &Self::Job) -> AppResult<Plan>;

    /// What the idempotency key is bound to: everything that shapes the result.
    fn canonical(&self, job: &Self::Job) -> Value;

    /// The work of one run. A model call goes through `run`, which streams
    /// it, counts it against the job's budget and stops it on a cancel.
    async fn run(&self, job: &Self::Job, run: &RunCtx<'_>) -> AppResult<Made>;

    /// Store a finished run. The default writes the kit's completion alone;
    /// a worker with rows of its own adds them to the same guarded batch
    /// (`D1Jobs::complete_with`), from the job and the `output` its run made
    /// (the envelope's, as stored).
    async fn complete(
        &self,
        jobs: &D1Jobs<'_>,
        c: &Completion<'_>,
        _job: &Self::Job,
        _output: &Value,
    ) -> AppResult<bool> {
        jobs.complete_job(c).await
    }
}

/// The kit's store and ledger on one D1 handle.
pub struct Lifecycle {
    pub db: D1,
    pub schema: JobSchema,
}

impl Lifecycle {
    pub fn open(setup: &Setup<'_>) -> AppResult<Lifecycle> {
        Ok(Lifecycle {
            db: D1::open(setup.env, setup.db)?,
            schema: setup.schema,
        })
    }

    pub fn jobs(&self) -> D1Jobs<'_> {
        D1Jobs::new(&self.db, self.schema)
    }

    pub fn ledger(&self) -> D1Ledger<'_> {
        D1Ledger::new(&self.db, self.schema)
    }
}

crate::delegate_job_store!(Lifecycle, |l| l.jobs());
crate::delegate_spend_ledger!(Lifecycle, |l| l.ledger());

/// Reserve the job's budget and claim it under `execution_id`; place it
/// (the queue when asked for async, else where its expected output fits
/// the caller's wait); run or wait; answer.
pub async fn execute<W: Work>(
    work: &W,
    ctx: &Context,
    payer: &Payer,
    submission: &Submission<W::Job>,
    execution_id: &str,
    prefer: Option<&str>,
) -> AppResult<Reply> {
    let setup = work.setup();
    let asynchronous = submission.asynchronous || wait::prefers_async(prefer);
    let started = now_ms();
    let until = started + submission.timeout_ms;
    let plan = work.plan(&submission.job)?;
    let placement = match asynchronous {
        true => RunMode::Queue,
        false => wait::placement(
            plan.expected_tokens,
            setup.jobs.tokens_per_second,
            submission.timeout_ms,
            setup.jobs.wait_until_grace_ms,
        ),
    };
    let providers = setup.providers.chain(None, None, None)?;
    let params = serde_json::to_string(&submission.job)
        .map_err(|e| AppError::internal(format!("storing the job's parameters: {e}")))?;
    let hash = wait::request_hash(&work.canonical(&submission.job));
    let new_job = NewJob {
        client_id: &payer.tenant,
        execution_id,
        request_params: &params,
        deadline_at: started + setup.jobs.job_timeout_ms + ABANDON_GRACE_MS,
        request_hash: &hash,
        run_mode: placement,
        expected_tokens: plan.expected_tokens,
        expected_elements: plan.expected_elements,
        planned: providers.first().map(|p| PlannedCall {
            provider: p.kind.as_str(),
            model: &p.model,
            output_price: setup.pricing.price(&p.model).map(|price| price.output),
        }),
        columns: &[],
    };
    let budget = setup.limits.job_budget(None, plan.max_cost_usd);
    let store = Lifecycle::open(&setup)?;
    let claim = reserve_and_claim(
        &store,
        setup.limits,
        payer,
        &new_job,
        budget,
        started,
        setup.jobs.stall_ms,
    )
    .await?;
    let (submitted, _) = Submitted::of(claim)?;
    match submitted {
        Submitted::Replay(envelope) => Ok(Reply::ok(envelope).header("Idempotent-Replay", "true")),
        Submitted::Running { job_id } if asynchronous => Ok(accepted(job_id)),
        Submitted::Running { job_id } => wait_on(&store, job_id, until, started, true).await,
        Submitted::Claimed { job_id, run } if placement == RunMode::Queue => {
            queue::enqueue(setup.env, setup.queue, &store, job_id, run).await?;
            match asynchronous {
                true => Ok(accepted(job_id)),
                false => wait_on(&store, job_id, until, started, false).await,
            }
        }
        Submitted::Claimed { job_id, run } => {
            // Inline: the run is shared with `waitUntil`, so it goes on when
            // this request stops waiting.
            let running = run_job(work.clone(), job_id, run).boxed_local().shared();
            ctx.wait_until(running.clone().map(|_| ()));
            match with_timeout(until.saturating_sub(now_ms()).max(1), running).await {
                Some(Ok(envelope)) => Ok(Reply::ok(envelope)),
                Some(Err(error)) => Err(error),
                None => Err(wait::still_running(
                    job_id,
                    now_ms().saturating_sub(started),
                )),
            }
        }
    }
}

/// What an earlier request under `execution_id` answers, before this one
/// plans anything: a completed job's stored result (`Idempotent-Replay`),
/// a key used for another request's 422, a cancelled job's 409 — with no
/// reservation, no claim and nothing the plan needs (a worker that must
/// fetch part of its job from elsewhere asks this first, so a retry of a
/// finished job never depends on that fetch). `None`: nothing final under
/// the key (the request goes on to [`execute`], which joins a running job).
pub async fn replay<W: Work>(
    work: &W,
    payer: &Payer,
    job: &W::Job,
    execution_id: &str,
) -> AppResult<Option<Reply>> {
    let setup = work.setup();
    let store = Lifecycle::open(&setup)?;
    let hash = wait::request_hash(&work.canonical(job));
    let probe = NewJob {
        client_id: &payer.tenant,
        execution_id,
        request_params: "",
        deadline_at: 0,
        request_hash: &hash,
        run_mode: RunMode::Inline,
        expected_tokens: 0,
        expected_elements: 0,
        planned: None,
        columns: &[],
    };
    let claim = store
        .existing_claim(&probe, now_ms(), setup.jobs.stall_ms)
        .await?;
    match claim.map(Submitted::of).transpose()? {
        Some((Submitted::Replay(envelope), _)) => Ok(Some(
            Reply::ok(envelope).header("Idempotent-Replay", "true"),
        )),
        _ => Ok(None),
    }
}

/// `202 Accepted`: where to follow the job.
pub fn accepted(job_id: i64) -> Reply {
    let mut body = wait::job_links(job_id);
    body["success"] = json!(true);
    body["status"] = json!("accepted");
    body["cancelUrl"] = json!(format!("/api/jobs/{job_id}/cancel"));
    Reply::ok(body)
        .status(202)
        .header("Location", format!("/api/jobs/{job_id}/status"))
        .header("Preference-Applied", "respond-async")
}

/// Wait on a job someone else runs (the queue, or an earlier request).
async fn wait_on(
    store: &Lifecycle,
    job_id: i64,
    until: u64,
    started: u64,
    joined: bool,
) -> AppResult<Reply> {
    match wait::wait_for(&WallClock, store, job_id, until).await? {
        Waited::Completed(envelope) => {
            let reply = Reply::ok(envelope);
            Ok(match joined {
                true => reply.header("Idempotent-Replay", "true"),
                false => reply,
            })
        }
        Waited::Failed(error) => Err(error),
        Waited::Running => Err(wait::still_running(
            job_id,
            now_ms().saturating_sub(started),
        )),
    }
}

/// The stop of one call of [`RunCtx::all_calls`]: the job's own (a cancel,
/// a takeover), or another call of the same fan-out failed for good.
struct FanStop<'a> {
    job: Option<&'a dyn Stop>,
    siblings_failed: &'a Cell<bool>,
}

impl Stop for FanStop<'_> {
    fn requested(&self) -> bool {
        self.siblings_failed.get() || self.job.is_some_and(|s| s.requested())
    }
    fn confirm(&self) -> Confirm<'_> {
        Box::pin(async move {
            if self.siblings_failed.get() {
                return true;
            }
            match self.job {
                Some(job) => job.confirm().await,
                None => false,
            }
        })
    }
}

/// The check of the answer to the `n`th of [`RunCtx::calls`]' requests.
pub type CheckNth<'a> = dyn Fn(usize, &Value) -> Result<Value, Vec<String>> + 'a;

/// What a run's work calls models through: the provider chain streaming
/// under the job's budget and cancel, its attempts recorded, its progress
/// fed to the watcher.
pub struct RunCtx<'a> {
    pub job_id: i64,
    pub run: u32,
    pub start_ms: u64,
    /// No model call starts after it.
    pub deadline_ms: u64,
    chain: Chain<'a, WorkerRuntime<'a>>,
    store: &'a Lifecycle,
    budget: RefCell<Budget>,
    attempts: RefCell<Vec<Attempt>>,
    progress: Rc<Progress>,
    cache_key: String,
}

impl RunCtx<'_> {
    /// One model call: its answer once `check` accepts it (the chain re-asks
    /// with the problems `check` returns, and falls back to the next provider).
    /// It may spend all that is left of the job's budget: calls that run at
    /// once go through [`RunCtx::calls`] or [`RunCtx::all_calls`], which
    /// split it.
    pub async fn call(
        &self,
        request: CompletionRequest,
        check: &dyn Fn(&Value) -> Result<Value, Vec<String>>,
    ) -> AppResult<crate::ai::Completion> {
        let limit = self.budget.borrow().left_usd();
        self.call_within(request, check, limit, self.progress.clone())
            .await
    }

    /// Model calls that run at once, at most `concurrency` in flight (never
    /// more than the chain's `max_calls_at_once`; the platform's six
    /// connections waiting for headers are the runtime's, `ai::gate`): what is left of the job's budget
    /// is split between them in proportion to each one's worst case, so all
    /// of them together never pass it. Answers come back in the requests'
    /// order; one call's failure does not stop the others (a worker that
    /// keeps what succeeded, e.g. a fan-out isolating a failed branch).
    pub async fn calls(
        &self,
        requests: Vec<CompletionRequest>,
        check: &CheckNth<'_>,
        concurrency: usize,
    ) -> Vec<AppResult<crate::ai::Completion>> {
        self.fan_out(requests, check, concurrency, false).await
    }

    /// As [`RunCtx::calls`], for work that needs every answer: refused
    /// before any call when the budget's shares cannot pay every call's
    /// expected output (422 `budget_exceeded`), and once one call fails for
    /// good no other starts and those streaming are dropped, so nothing is
    /// spent on answers that would be thrown away. The first failure is
    /// the error.
    pub async fn all_calls(
        &self,
        requests: Vec<CompletionRequest>,
        check: &CheckNth<'_>,
        concurrency: usize,
    ) -> AppResult<Vec<crate::ai::Completion>> {
        self.fan_out(requests, check, concurrency, true)
            .await
            .into_iter()
            .collect()
    }

    async fn fan_out(
        &self,
        requests: Vec<CompletionRequest>,
        check: &CheckNth<'_>,
        concurrency: usize,
        fail_fast: bool,
    ) -> Vec<AppResult<crate::ai::Completion>> {
        let first = self.chain.providers.first();
        let price = first.and_then(|p| self.chain.pricing.price(&p.model));
        let costs: Vec<CallCost> = requests
            .iter()
            .map(|r| CallCost {
                input_bytes: r.system.len() + r.user.len() + r.schema.to_string().len(),
                max_tokens: r.max_tokens,
                expected_tokens: r.expected_output_tokens,
            })
            .collect();
        let left = self.budget.borrow().left_usd();
        let shares = budget_shares(left, price, &costs);
        let model = first.map_or("", |p| p.model.as_str());
        if fail_fast && left.is_some() && !shares_fit(price, model, &shares, &costs) {
            let refused = chain_error(ChainError::BudgetExceeded(format!(
                "${:.6} left cannot pay the expected output of {} calls at once",
                left.unwrap_or(0.0),
                requests.len()
            )));
            return requests.iter().map(|_| Err(refused.clone())).collect();
        }
        let total = requests.len() as u64;
        let done = Cell::new(0u64);
        let failed: RefCell<Option<AppError>> = RefCell::new(None);
        let siblings_failed = Cell::new(false);
        let stop = FanStop {
            job: self.chain.stop,
            siblings_failed: &siblings_failed,
        };
        let chain = Chain {
            runtime: self.chain.runtime,
            providers: self.chain.providers,
            settings: self.chain.settings,
            pricing: self.chain.pricing,
            stop: Some(&stop),
        };
        self.progress.set_branches(0, total);
        let mut answers: Vec<(usize, AppResult<crate::ai::Completion>)> =
            futures_util::stream::iter(requests.into_iter().zip(shares).enumerate())
                .map(|(i, (request, share))| {
                    let (done, failed, siblings_failed, chain) =
                        (&done, &failed, &siblings_failed, &chain);
                    async move {
                        if siblings_failed.get() {
                            return (
                                i,
                                Err(AppError::internal("not started: another call failed")),
                            );
                        }
                        let answer = self
                            .call_with(
                                chain,
                                request,
                                &|v| check(i, v),
                                share,
                                self.progress.child(),
                            )
                            .await;
                        if let (true, Err(e)) = (fail_fast, &answer) {
                            if !siblings_failed.get() {
                                siblings_failed.set(true);
                                *failed.borrow_mut() = Some(e.clone());
                            }
                        }
                        done.set(done.get() + 1);
                        self.progress.set_branches(done.get(), total);
                        (i, answer)
                    }
                })
                .buffer_unordered(
                    concurrency.clamp(1, self.chain.settings.max_calls_at_once.max(1)),
                )
                .collect()
                .await;
        answers.sort_by_key(|(i, _)| *i);
        let first_failure = failed.take();
        answers
            .into_iter()
            .map(|(_, a)| match (a, &first_failure) {
                // The calls dropped or never started for it answer with it.
                (Err(_), Some(first)) => Err(first.clone()),
                (a, _) => a,
            })
            .collect()
    }

    async fn call_within(
        &self,
        request: CompletionRequest,
        check: &dyn Fn(&Value) -> Result<Value, Vec<String>>,
        limit_usd: Option<f64>,
        progress: Rc<Progress>,
    ) -> AppResult<crate::ai::Completion> {
        self.call_with(&self.chain, request, check, limit_usd, progress)
            .await
    }

    async fn call_with(
        &self,
        chain: &Chain<'_, WorkerRuntime<'_>>,
        mut request: CompletionRequest,
        check: &dyn Fn(&Value) -> Result<Value, Vec<String>>,
        limit_usd: Option<f64>,
        progress: Rc<Progress>,
    ) -> AppResult<crate::ai::Completion> {
        request.progress = Some(progress);
        request.cache_key = Some(self.cache_key.clone());
        let mut budget = Budget {
            limit_usd,
            spent_usd: 0.0,
        };
        let mut attempts = Vec::new();
        let answer = chain
            .complete(
                &request,
                check,
                &mut budget,
                self.deadline_ms,
                &mut attempts,
            )
            .await;
        self.budget.borrow_mut().spent_usd += budget.spent_usd;
        self.attempts.borrow_mut().extend(attempts);
        answer.map_err(chain_error)
    }

    /// Name the stage the run is in (the job's status shows it).
    pub async fn stage(&self, stage: &str) -> AppResult<()> {
        self.store
            .set_stage(self.job_id, self.run, stage, self.chain.runtime.now_ms())
            .await
    }

    /// The job's progress (what its model calls streamed).
    pub fn progress(&self) -> &Rc<Progress> {
        &self.progress
    }
}

/// Run a claimed job to its end, inline or in the queue consumer: the
/// worker's [`Work::run`] with the kit's watcher beside it, then its end.
/// Owns its work, so it can outlive its request.
pub async fn run_job<W: Work>(work: W, job_id: i64, run: u32) -> AppResult<Value> {
    let setup = work.setup();
    let store = Lifecycle::open(&setup)?;
    let stored = store
        .stored_job(job_id)
        .await?
        .ok_or_else(|| AppError::not_found(format!("no job {job_id}")))?;
    let prepared = serde_json::from_str::<W::Job>(&stored.request_params)
        .map_err(|e| AppError::internal(format!("job {job_id} has unreadable parameters: {e}")))
        .and_then(|job| Ok((setup.providers.chain(None, None, None)?, job)));
    let (providers, job): (Vec<ProviderConfig>, W::Job) = match prepared {
        Ok(p) => p,
        Err(error) => {
            store
                .fail_run(job_id, run, error.code, &error.message)
                .await?;
            return Err(error);
        }
    };
    let plan = match work.plan(&job) {
        Ok(plan) => plan,
        Err(error) => {
            store
                .fail_run(job_id, run, error.code, &error.message)
                .await?;
            return Err(error);
        }
    };
    let runtime = WorkerRuntime::new(setup.env);
    let clock = RuntimeClock(&runtime);
    let start = clock.now_ms();
    let cancel = RunCancel::default();
    cancel.job.set(Some(job_id));
    let stop = RunStop {
        cancel: &cancel,
        jobs: &store,
    };
    store
        .set_stage(job_id, run, setup.schema.first_stage, start)
        .await?;
    let ctx = RunCtx {
        job_id,
        run,
        start_ms: start,
        // The job's own deadline, not only this run's: a queued run that
        // started late must end before the sweep takes it for abandoned.
        deadline_ms: (start + setup.jobs.job_timeout_ms)
            .min(stored.deadline_at.saturating_sub(ABANDON_GRACE_MS)),
        chain: Chain {
            runtime: &runtime,
            providers: &providers,
            settings: setup.settings,
            pricing: setup.pricing,
            stop: Some(&stop),
        },
        store: &store,
        // What earlier runs of the job spent counts against its budget.
        budget: RefCell::new(Budget {
            limit_usd: Some(setup.limits.job_budget(None, plan.max_cost_usd)),
            spent_usd: stored.cost_usd.unwrap_or(0.0),
        }),
        attempts: RefCell::new(Vec::new()),
        progress: Rc::new(Progress::default()),
        cache_key: format!("{}-job-{job_id}", setup.service),
    };
    let outcome = {
        let watcher = Watch {
            clock: &clock,
            jobs: &store,
            cancel: &cancel,
            progress: &ctx.progress,
            job_id,
            run,
            start_ms: start,
        }
        .watch(async || {});
        beside(work.run(&job, &ctx), watcher).await
    };
    let attempts = ctx.attempts.take();
    let ending = RunEnd {
        job_id,
        run,
        client_id: &stored.client_id,
        start_ms: start,
        now_ms: clock.now_ms(),
        attempts: &attempts,
    };
    match outcome {
        Ok(made) => {
            let (usage, cost) = totals(&attempts);
            let now = clock.now_ms();
            // The worker's fields first: the kit's (the job's identity) win.
            let mut metadata = made.metadata.clone();
            if !metadata.is_object() {
                metadata = json!({});
            }
            for (k, v) in [
                ("jobId", json!(job_id)),
                ("executionId", json!(stored.execution_id)),
                ("worker", json!(setup.service)),
                ("provider", json!(made.provider)),
                ("model", json!(made.model)),
            ] {
                metadata[k] = v;
            }
            let envelope = json!({
                "success": true,
                // The Resource Manager prices `usage.tokens` under it.
                "model": made.model,
                "output": made.output,
                "usage": {"tokens": {"input": usage.input, "output": usage.output, "cached": usage.cached}},
                "duration": now.saturating_sub(start),
                "cost": cost,
                "metadata": metadata,
            });
            let result_json = envelope.to_string();
            let completion = Completion {
                job_id,
                run,
                client_id: &stored.client_id,
                provider: &made.provider,
                model: &made.model,
                usage,
                cost_usd: cost,
                result_json: &result_json,
                processing_time_ms: now.saturating_sub(start),
                attempts: &attempts,
                date: &day_of(now),
                columns: &[],
            };
            let jobs = store.jobs();
            match work
                .complete(&jobs, &completion, &job, &envelope["output"])
                .await
            {
                Ok(true) => Ok(envelope),
                // Cancelled while it finished: the cancel stands (final is final).
                _ if cancel.cancelled_now(&store).await => Err(ending.cancelled(&store).await),
                Ok(false) => Err(run_superseded(job_id, run)),
                Err(e) => Err(ending.fail(&store, e).await),
            }
        }
        Err(_) if cancel.cancelled_now(&store).await => Err(ending.cancelled(&store).await),
        Err(_) if cancel.superseded.get() => Err(run_superseded(job_id, run)),
        Err(e) => Err(ending.fail(&store, e).await),
    }
}

/// The queue consumer: the kit's (started once per run, a stalled run taken
/// over, `Retry` only when the job could not be started or its end recorded).
pub async fn consume<W: Work>(work: &W, message: &JobMessage) -> Delivery {
    let setup = work.setup();
    let Ok(store) = Lifecycle::open(&setup) else {
        return Delivery::Retry;
    };
    let now = now_ms();
    let today = day_of(now);
    let moment = Moment {
        ms: now,
        stall_ms: setup.jobs.stall_ms,
        today: &today,
    };
    queue::consume(&store, message, moment, async |run| {
        run_job(work.clone(), message.job_id, run).await
    })
    .await
}

/// A message the queue gave up on: its run ends `failed` with the reason.
pub async fn dead_letter<W: Work>(work: &W, message: &JobMessage) -> Delivery {
    match Lifecycle::open(&work.setup()) {
        Ok(store) => queue::dead_letter(&store, message).await,
        Err(_) => Delivery::Retry,
    }
}

/// The cron sweep: runs past their deadline end `failed` (`abandoned`,
/// booked at what they streamed), expired reservations are released.
pub async fn sweep<W: Work>(work: &W) -> AppResult<(usize, usize)> {
    let store = Lifecycle::open(&work.setup())?;
    let now = now_ms();
    let abandoned = store
        .fail_abandoned_jobs(now, &day_of(now), SWEEP_LIMIT)
        .await?;
    let released = store.release_expired(now).await?;
    Ok((abandoned, released))
}
