//! What the pipeline needs from the outside world, as traits: the job store
//! (D1), the structure store (KV/R2) and the template source (D1 behind the
//! KV cache). Model calls and the clock come from the provider chain's
//! `Runtime`. On Workers they are `Database`, [`WorkerStructures`] and
//! [`WorkerTemplates`]; the unit tests run the same pipeline on in-memory
//! twins (`memory.rs`) and a scripted model on a virtual clock.

use crate::services::ai_provider::{Attempt, Confirm, Runtime, Stop};
use crate::services::database::{
    CancelledRun, Claim, Completion, Database, Failure, JobState, Moment, NewJob, Reservation,
};
use crate::services::spend::SpendLedger;
use crate::services::storage::{self, Tier};
use crate::services::templates;
use crate::types::env::{App, Config, STRUCTURES};
use crate::types::job::{JobStatus, PartialBranch, ProgressWrite, Stage};
use crate::types::structure::StructureType;
use crate::types::template::Template;
use bitware_kit::error::AppResult;
use serde_json::Value;

/// A job as a queued run needs it: who it is for and what was asked.
#[derive(Debug, Clone)]
pub struct StoredJob {
    pub client_id: String,
    pub execution_id: String,
    /// What earlier runs of the job spent (counts against its budget).
    pub cost_usd: Option<f64>,
    /// The request as submitted (`JobRequest` JSON).
    pub request_params: String,
}

/// Jobs, their runs and the daily spend ledger.
#[allow(async_fn_in_trait)] // used through generics only, on one thread
pub trait JobStore: SpendLedger {
    /// The stored response of a completed job, by its idempotency key.
    async fn completed_result(
        &self,
        client_id: &str,
        execution_id: &str,
    ) -> AppResult<Option<Value>>;
    /// Create the job or find what became of an earlier request with its key;
    /// a run claimed here takes over `reservation`.
    /// A run that stopped (past its deadline, or silent for `now.stall_ms`)
    /// is booked at what it had streamed and taken over.
    async fn claim_job(
        &self,
        job: &NewJob<'_>,
        now: Moment<'_>,
        reservation: &Reservation,
    ) -> AppResult<Claim>;
    /// A replay or a join of an earlier request with this key, claiming nothing.
    async fn existing_claim(
        &self,
        job: &NewJob<'_>,
        now_ms: u64,
        stall_ms: u64,
    ) -> AppResult<Option<Claim>>;
    async fn stored_job(&self, job_id: i64) -> AppResult<Option<StoredJob>>;
    /// End a run that never reached a model (its reservation is released).
    async fn fail_run(&self, job_id: i64, run: u32, code: &str, reason: &str) -> AppResult<bool>;
    async fn job_state(&self, job_id: i64) -> AppResult<Option<JobState>>;
    /// The stage of run `run`, and its heartbeat (nothing once it no longer owns the job).
    async fn set_stage(&self, job_id: i64, run: u32, stage: Stage, now_ms: u64) -> AppResult<()>;
    /// Progress of run `run`, and its heartbeat; `false` (nothing written)
    /// once it no longer owns the job: cancelled, ended by the sweep, or
    /// taken over.
    async fn write_progress(
        &self,
        job_id: i64,
        run: u32,
        p: &ProgressWrite,
        now_ms: u64,
    ) -> AppResult<bool>;
    /// Elements, job, attempts, validation, analytics and spend in one
    /// batch; `false` (nothing written) when its run no longer owns the job
    /// (cancelled meanwhile, taken over, or ended by the sweep).
    async fn complete_job(&self, c: &Completion<'_>) -> AppResult<bool>;
    /// `false` (nothing written) when its run no longer owns the job.
    async fn fail_job(&self, f: &Failure<'_>) -> AppResult<bool>;
    /// The stopped run of a cancelled job: its attempts, usage and spend, once.
    async fn settle_cancelled(&self, c: &CancelledRun<'_>) -> AppResult<()>;
    /// A branch of run `run` that passed its checks, shown before the job
    /// ends (issue 24); only the job's current run's are shown, and the cron
    /// sweep clears them 10 minutes after the job ends.
    async fn record_branch(&self, job_id: i64, run: u32, branch: &PartialBranch) -> AppResult<()>;
    /// Attempts paid for outside a run (a failed re-validation).
    async fn record_attempts(
        &self,
        job_id: i64,
        client_id: &str,
        attempts: &[Attempt],
    ) -> AppResult<()>;
}

/// Where outlines too large for D1 go: `None` for the inline tier.
#[allow(async_fn_in_trait)]
pub trait StructureStore {
    async fn store(&self, tier: Tier, job_id: i64, json: &str) -> AppResult<Option<String>>;
}

/// The template a job uses: the named one, else the type's default.
#[allow(async_fn_in_trait)]
pub trait TemplateSource {
    async fn resolve(
        &self,
        name: Option<&str>,
        structure_type: Option<StructureType>,
    ) -> AppResult<Template>;
}

/// Everything the pipeline runs on.
pub struct Ports<'a, R, J, S, T> {
    pub config: &'a Config,
    /// Model calls, the clock and pauses.
    pub runtime: &'a R,
    pub jobs: &'a J,
    pub structures: S,
    pub templates: T,
    /// Set once a provider billed past a call's `max_tokens`: the job makes
    /// no further model call (`plan::complete`).
    pub overbilled: std::cell::RefCell<Option<String>>,
    /// The cancel of the job this run is for (the provider chain's `Stop`).
    pub cancel: RunCancel,
}

/// The cancel of the job a run is for. `job` is set when the run starts (a
/// submit or a re-validation has none, and checks nothing); `seen` once the
/// run saw the job cancelled, by its watcher or before a model call;
/// `superseded` once a progress write found the job no longer the run's
/// (taken over, or ended by the sweep): the run stops as for a cancel, and
/// nothing it made is stored.
#[derive(Debug, Default)]
pub struct RunCancel {
    pub job: std::cell::Cell<Option<i64>>,
    pub seen: std::cell::Cell<bool>,
    pub superseded: std::cell::Cell<bool>,
}

/// The pipeline as it runs on Workers.
pub type WorkerPorts<'a> = Ports<
    'a,
    crate::services::ai_provider::runtime::WorkerRuntime<'a>,
    Database,
    WorkerStructures<'a>,
    WorkerTemplates<'a>,
>;

impl<R: Runtime, J: JobStore, S: StructureStore, T: TemplateSource> Ports<'_, R, J, S, T> {
    pub fn now_ms(&self) -> u64 {
        self.runtime.now_ms()
    }

    /// Whether the run's job has been cancelled: the flag once seen, else
    /// its row (one read; an unreadable row is no cancel).
    pub async fn cancelled_now(&self) -> bool {
        if self.cancel.seen.get() {
            return true;
        }
        let Some(job_id) = self.cancel.job.get() else {
            return false;
        };
        if let Ok(Some(state)) = self.jobs.job_state(job_id).await {
            if state.status == JobStatus::Cancelled {
                self.cancel.seen.set(true);
            }
        }
        self.cancel.seen.get()
    }
}

/// The chain asks before every attempt (a read of the job's row) and on
/// every streamed chunk (the flag the run's watcher sets).
impl<R: Runtime, J: JobStore, S: StructureStore, T: TemplateSource> Stop for Ports<'_, R, J, S, T> {
    fn requested(&self) -> bool {
        self.cancel.seen.get() || self.cancel.superseded.get()
    }
    fn confirm(&self) -> Confirm<'_> {
        Box::pin(async { self.cancel.superseded.get() || self.cancelled_now().await })
    }
}

/// KV and R2 of the worker's bindings.
pub struct WorkerStructures<'a> {
    pub app: &'a App,
}

impl StructureStore for WorkerStructures<'_> {
    async fn store(&self, tier: Tier, job_id: i64, json: &str) -> AppResult<Option<String>> {
        storage::store(&self.app.env, &STRUCTURES, tier, job_id, json).await
    }
}

/// Templates from D1 behind the KV cache.
pub struct WorkerTemplates<'a> {
    pub app: &'a App,
    pub db: &'a Database,
}

impl TemplateSource for WorkerTemplates<'_> {
    async fn resolve(
        &self,
        name: Option<&str>,
        structure_type: Option<StructureType>,
    ) -> AppResult<Template> {
        templates::resolve(self.app, self.db, name, structure_type).await
    }
}

impl JobStore for Database {
    async fn completed_result(
        &self,
        client_id: &str,
        execution_id: &str,
    ) -> AppResult<Option<Value>> {
        Database::completed_result(self, client_id, execution_id).await
    }
    async fn claim_job(
        &self,
        job: &NewJob<'_>,
        now: Moment<'_>,
        reservation: &Reservation,
    ) -> AppResult<Claim> {
        Database::claim_job(self, job, now, reservation).await
    }
    async fn existing_claim(
        &self,
        job: &NewJob<'_>,
        now_ms: u64,
        stall_ms: u64,
    ) -> AppResult<Option<Claim>> {
        Database::existing_claim(self, job, now_ms, stall_ms).await
    }
    async fn stored_job(&self, job_id: i64) -> AppResult<Option<StoredJob>> {
        let Some(job) = self.job(job_id, None).await? else {
            return Ok(None);
        };
        Ok(self.job_payload(job_id).await?.map(|p| StoredJob {
            client_id: job.client_id,
            execution_id: job.execution_id,
            cost_usd: job.cost_usd,
            request_params: p.request_params,
        }))
    }
    async fn fail_run(&self, job_id: i64, run: u32, code: &str, reason: &str) -> AppResult<bool> {
        Database::fail_run(self, job_id, run, code, reason).await
    }
    async fn job_state(&self, job_id: i64) -> AppResult<Option<JobState>> {
        Database::job_state(self, job_id).await
    }
    async fn set_stage(&self, job_id: i64, run: u32, stage: Stage, now_ms: u64) -> AppResult<()> {
        Database::set_stage(self, job_id, run, stage, now_ms).await
    }
    async fn write_progress(
        &self,
        job_id: i64,
        run: u32,
        p: &ProgressWrite,
        now_ms: u64,
    ) -> AppResult<bool> {
        Database::write_progress(self, job_id, run, p, now_ms).await
    }
    async fn complete_job(&self, c: &Completion<'_>) -> AppResult<bool> {
        Database::complete_job(self, c).await
    }
    async fn fail_job(&self, f: &Failure<'_>) -> AppResult<bool> {
        Database::fail_job(self, f).await
    }
    async fn record_branch(&self, job_id: i64, run: u32, branch: &PartialBranch) -> AppResult<()> {
        Database::record_branch(self, job_id, run, branch).await
    }
    async fn settle_cancelled(&self, c: &CancelledRun<'_>) -> AppResult<()> {
        Database::settle_cancelled(self, c).await
    }
    async fn record_attempts(
        &self,
        job_id: i64,
        client_id: &str,
        attempts: &[Attempt],
    ) -> AppResult<()> {
        Database::record_attempts(self, job_id, client_id, attempts).await
    }
}
