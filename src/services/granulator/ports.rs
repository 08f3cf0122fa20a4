//! What the pipeline needs from the outside world, as traits: the job store
//! (the kit's lifecycle and ledger on D1, with the outline's own writes),
//! the structure store (KV/R2) and the template source (D1 behind the KV
//! cache). Model calls and the clock come from the provider chain's
//! `Runtime`. On Workers they are `Database`, [`WorkerStructures`] and
//! [`WorkerTemplates`]; the unit tests run the same pipeline on in-memory
//! twins (`memory.rs`, around the kit's twins) and a scripted model on a
//! virtual clock.

use crate::services::ai_provider::{Confirm, Runtime, Stop};
use crate::services::database::{Completion, Database, Failure};
use crate::services::spend::SpendLedger;
use crate::services::storage::{self, Tier};
use crate::services::templates;
use crate::types::env::{App, Config, STRUCTURES};
use crate::types::job::PartialBranch;
use crate::types::structure::StructureType;
use crate::types::template::Template;
use bitware_kit::error::AppResult;
use bitware_kit::jobs::JobStore;

/// The pipeline's job store: the kit's lifecycle (`JobStore`: claims,
/// progress, endings, cancel, takeover) and ledger (`SpendLedger`), with
/// the outline's own writes joined to its endings.
#[allow(async_fn_in_trait)] // used through generics only, on one thread
pub trait OutlineStore: JobStore + SpendLedger {
    /// The kit's completion of the run with the outline's elements, verdict
    /// and analytics, in one batch; `false` (nothing written) when its run
    /// no longer owns the job (cancelled meanwhile, taken over, or ended by
    /// the sweep).
    async fn store_outline(&self, c: &Completion<'_>) -> AppResult<bool>;
    /// The kit's failure of the run with the template's analytics; `false`
    /// (nothing written) when its run no longer owns the job.
    async fn record_failure(&self, f: &Failure<'_>) -> AppResult<bool>;
    /// A branch of run `run` that passed its checks, shown before the job
    /// ends (issue 24); only the job's current run's are shown, and the cron
    /// sweep clears them 10 minutes after the job ends.
    async fn record_branch(&self, job_id: i64, run: u32, branch: &PartialBranch) -> AppResult<()>;
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

/// The cancel of the job a run is for: the kit's (`jobs::run`).
pub use bitware_kit::jobs::run::RunCancel;

/// The pipeline as it runs on Workers.
pub type WorkerPorts<'a> = Ports<
    'a,
    crate::services::ai_provider::runtime::WorkerRuntime<'a>,
    Database,
    WorkerStructures<'a>,
    WorkerTemplates<'a>,
>;

impl<R: Runtime, J: OutlineStore, S: StructureStore, T: TemplateSource> Ports<'_, R, J, S, T> {
    pub fn now_ms(&self) -> u64 {
        self.runtime.now_ms()
    }

    /// Whether the run's job has been cancelled: the flag once seen, else
    /// its row (one read; an unreadable row is no cancel).
    pub async fn cancelled_now(&self) -> bool {
        self.cancel.cancelled_now(self.jobs).await
    }
}

/// The chain asks before every attempt (a read of the job's row) and on
/// every streamed chunk (the flag the run's watcher sets).
impl<R: Runtime, J: OutlineStore, S: StructureStore, T: TemplateSource> Stop
    for Ports<'_, R, J, S, T>
{
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

impl OutlineStore for Database {
    async fn store_outline(&self, c: &Completion<'_>) -> AppResult<bool> {
        Database::store_outline(self, c).await
    }
    async fn record_failure(&self, f: &Failure<'_>) -> AppResult<bool> {
        Database::record_failure(self, f).await
    }
    async fn record_branch(&self, job_id: i64, run: u32, branch: &PartialBranch) -> AppResult<()> {
        Database::record_branch(self, job_id, run, branch).await
    }
}
