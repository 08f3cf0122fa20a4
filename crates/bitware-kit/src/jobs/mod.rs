//! The job lifecycle every worker shares, behind ports that speak the kit's
//! own types, with their D1 implementations, in-memory twins and one
//! contract suite that holds both to the same rules.
//!
//! Moved here from the granulator (issue 23), then driven whole (issue 26):
//! - [`spend`]: the daily spend ledger — reservations against a tenant's
//!   cap and a job's budget, settlement, the sweep of expired reservations —
//!   with the 429 `spend_cap_exceeded` / 422 `budget_exceeded` answers;
//!   `D1Ledger` on D1 (`worker`), `memory::MemoryLedger` in memory.
//!
//! - [`store`]: the job store — idempotent claims (replay, join, 422 on a
//!   reused key, re-run of a failed or stopped job), a run that owns its
//!   job by number, progress and heartbeat, completion and failure in one
//!   guarded batch with the spend they settle, cancel, the takeover and
//!   sweep of runs that stopped — `D1Jobs` on D1, `memory_jobs::MemoryJobs`
//!   in memory.
//!
//! - [`run`]: a run's watcher (progress, heartbeat, cancel and takeover
//!   seen) and its `RunCancel`, the provider chain's `Stop` for it;
//! - [`wait`]: where a job runs, waiting for it, and its waiters' answers;
//! - [`submit`]: reserve, then claim (a join or a replay gives its
//!   reservation back); [`queue`]: the queue's consumer, dead letters and
//!   the producer.
//!
//! - `work` (`worker`): the whole round over a worker's one `Work` trait —
//!   submit, place, run beside the watcher, end, answer — and `routes`
//!   (`worker`): the job routes every worker answers the same way.
//!
//! The tables are the kit's (`crates/bitware-kit/migrations/`); a worker
//! copies those migrations into its own, first. [`JobSchema`] names the
//! tables a worker's store writes (the granulator's predate the kit's).
//!
//! Feature `twins`: the in-memory twins ([`memory`]) and the contract suite
//! ([`contract`]), for a worker's tests and for the kit's contract worker.

pub mod cancel;
pub mod end;
pub mod events;
pub mod queue;
#[cfg(feature = "worker")]
pub mod routes;
pub mod run;
pub mod spend;
pub mod store;
pub mod submit;
pub mod view;
pub mod wait;
#[cfg(feature = "worker")]
pub mod work;

#[cfg(feature = "worker")]
mod endings_d1;
#[cfg(feature = "worker")]
mod ledger_d1;
#[cfg(feature = "worker")]
mod stopped_d1;
#[cfg(feature = "worker")]
mod store_d1;
#[cfg(feature = "worker")]
pub use ledger_d1::D1Ledger;
#[cfg(feature = "worker")]
pub use stopped_d1::STOPPED_RUN_NOTE;
#[cfg(feature = "worker")]
pub use store_d1::D1Jobs;

#[cfg(any(test, feature = "twins"))]
pub mod contract;
#[cfg(test)]
mod fixtures;
#[cfg(any(test, feature = "twins"))]
pub mod memory;
#[cfg(any(test, feature = "twins"))]
pub mod memory_jobs;

pub use spend::{DaySpend, JobBound, Refused, Reservation, SpendLedger};
pub use store::{
    run_superseded, stalled, CancelledRun, Claim, Column, Completion, Failure, JobSchema, JobState,
    JobStatus, JobStore, Moment, NewJob, OnCancel, PlannedCall, RunMode, StoredJob,
};
pub use wait::JobSettings;

/// The kit's migrations, in order: what a worker's `/health` expects among
/// its own applied migrations (a worker that made the same tables before
/// the kit shipped them, as the granulator did, lists its own instead).
pub const MIGRATIONS: &[&str] = &["0001_kit_jobs.sql"];

/// Implement [`SpendLedger`] for a type by handing every call to the
/// ledger `$via` reaches from `$s` (a worker's store that holds, or opens,
/// the kit's): `bitware_kit::delegate_spend_ledger!(Database, |db| db.ledger());`
#[macro_export]
macro_rules! delegate_spend_ledger {
    ($ty:ty, |$s:ident| $via:expr) => {
        impl $crate::jobs::SpendLedger for $ty {
            async fn reserve(
                &self,
                r: &$crate::jobs::Reservation,
                cap_usd: f64,
                expires_at_ms: u64,
                bound: Option<&$crate::jobs::JobBound>,
            ) -> $crate::error::AppResult<Result<(), $crate::jobs::Refused>> {
                let $s = self;
                $crate::jobs::SpendLedger::reserve(&$via, r, cap_usd, expires_at_ms, bound).await
            }
            async fn settle_spend(
                &self,
                r: &$crate::jobs::Reservation,
                spent_usd: f64,
            ) -> $crate::error::AppResult<()> {
                let $s = self;
                $crate::jobs::SpendLedger::settle_spend(&$via, r, spent_usd).await
            }
            async fn settle_job(
                &self,
                job_id: i64,
                tenant: &str,
                spent_usd: f64,
                today: &str,
            ) -> $crate::error::AppResult<()> {
                let $s = self;
                $crate::jobs::SpendLedger::settle_job(&$via, job_id, tenant, spent_usd, today).await
            }
            async fn release_expired(&self, now_ms: u64) -> $crate::error::AppResult<usize> {
                let $s = self;
                $crate::jobs::SpendLedger::release_expired(&$via, now_ms).await
            }
            async fn day_spend(
                &self,
                tenant: &str,
                day: &str,
            ) -> $crate::error::AppResult<$crate::jobs::DaySpend> {
                let $s = self;
                $crate::jobs::SpendLedger::day_spend(&$via, tenant, day).await
            }
        }
    };
}

/// Implement [`JobStore`] for a type by handing every call to the store
/// `$via` reaches from `$s`: `bitware_kit::delegate_job_store!(Database, |db| db.jobs());`
#[macro_export]
macro_rules! delegate_job_store {
    ($ty:ty, |$s:ident| $via:expr) => {
        impl $crate::jobs::JobStore for $ty {
            async fn completed_result(
                &self,
                client_id: &str,
                execution_id: &str,
            ) -> $crate::error::AppResult<Option<$crate::__serde_json::Value>> {
                let $s = self;
                $crate::jobs::JobStore::completed_result(&$via, client_id, execution_id).await
            }
            async fn claim_job(
                &self,
                job: &$crate::jobs::NewJob<'_>,
                now: $crate::jobs::Moment<'_>,
                reservation: &$crate::jobs::Reservation,
            ) -> $crate::error::AppResult<$crate::jobs::Claim> {
                let $s = self;
                $crate::jobs::JobStore::claim_job(&$via, job, now, reservation).await
            }
            async fn existing_claim(
                &self,
                job: &$crate::jobs::NewJob<'_>,
                now_ms: u64,
                stall_ms: u64,
            ) -> $crate::error::AppResult<Option<$crate::jobs::Claim>> {
                let $s = self;
                $crate::jobs::JobStore::existing_claim(&$via, job, now_ms, stall_ms).await
            }
            async fn stored_job(
                &self,
                job_id: i64,
            ) -> $crate::error::AppResult<Option<$crate::jobs::StoredJob>> {
                let $s = self;
                $crate::jobs::JobStore::stored_job(&$via, job_id).await
            }
            async fn job_state(
                &self,
                job_id: i64,
            ) -> $crate::error::AppResult<Option<$crate::jobs::JobState>> {
                let $s = self;
                $crate::jobs::JobStore::job_state(&$via, job_id).await
            }
            async fn start_queued(
                &self,
                job_id: i64,
                run: u32,
                now: $crate::jobs::Moment<'_>,
            ) -> $crate::error::AppResult<Option<u32>> {
                let $s = self;
                $crate::jobs::JobStore::start_queued(&$via, job_id, run, now).await
            }
            async fn set_stage(
                &self,
                job_id: i64,
                run: u32,
                stage: &str,
                now_ms: u64,
            ) -> $crate::error::AppResult<()> {
                let $s = self;
                $crate::jobs::JobStore::set_stage(&$via, job_id, run, stage, now_ms).await
            }
            async fn write_progress(
                &self,
                job_id: i64,
                run: u32,
                p: &$crate::ai::progress::ProgressWrite,
                now_ms: u64,
            ) -> $crate::error::AppResult<bool> {
                let $s = self;
                $crate::jobs::JobStore::write_progress(&$via, job_id, run, p, now_ms).await
            }
            async fn complete_job(
                &self,
                c: &$crate::jobs::Completion<'_>,
            ) -> $crate::error::AppResult<bool> {
                let $s = self;
                $crate::jobs::JobStore::complete_job(&$via, c).await
            }
            async fn fail_job(
                &self,
                f: &$crate::jobs::Failure<'_>,
            ) -> $crate::error::AppResult<bool> {
                let $s = self;
                $crate::jobs::JobStore::fail_job(&$via, f).await
            }
            async fn fail_run(
                &self,
                job_id: i64,
                run: u32,
                code: &str,
                reason: &str,
            ) -> $crate::error::AppResult<bool> {
                let $s = self;
                $crate::jobs::JobStore::fail_run(&$via, job_id, run, code, reason).await
            }
            async fn cancel_job(
                &self,
                job_id: i64,
                by: &str,
                now: $crate::jobs::Moment<'_>,
            ) -> $crate::error::AppResult<bool> {
                let $s = self;
                $crate::jobs::JobStore::cancel_job(&$via, job_id, by, now).await
            }
            async fn settle_cancelled(
                &self,
                c: &$crate::jobs::CancelledRun<'_>,
            ) -> $crate::error::AppResult<()> {
                let $s = self;
                $crate::jobs::JobStore::settle_cancelled(&$via, c).await
            }
            async fn record_attempts(
                &self,
                job_id: i64,
                client_id: &str,
                attempts: &[$crate::ai::Attempt],
            ) -> $crate::error::AppResult<()> {
                let $s = self;
                $crate::jobs::JobStore::record_attempts(&$via, job_id, client_id, attempts).await
            }
            async fn fail_abandoned_jobs(
                &self,
                now_ms: u64,
                today: &str,
                limit: u32,
            ) -> $crate::error::AppResult<usize> {
                let $s = self;
                $crate::jobs::JobStore::fail_abandoned_jobs(&$via, now_ms, today, limit).await
            }
        }
    };
}
