//! The job store: a job's row from its claim to its final state. The rules
//! every implementation keeps (D1's `D1Jobs`, the twin `MemoryJobs`; the
//! contract suite checks both):
//!
//! - **Idempotency.** A job is keyed by (client, execution id). A claim
//!   creates it, or answers what became of the earlier request with that
//!   key: replay a completed one, join a running one, refuse a different
//!   request under the same key (`Mismatch`), answer a cancelled one as it
//!   is; a failed one, or one whose run stopped, runs again under the next
//!   run number.
//! - **A run owns its job by number.** Progress, stage, completion, failure
//!   and the settling of a cancel apply only while the job is `processing`
//!   under that run's number (`run_count`); otherwise nothing is written
//!   (`false`).
//! - **Runs that stop.** A run past its deadline, or started and silent for
//!   the stall period, has stopped: what it had streamed is booked as one
//!   `abandoned` attempt at its planned output price, before it is taken
//!   over (a claim, the queue) or ended (the sweep).
//! - **Final is final.** A completed or cancelled job never changes status.
//! - **Spend.** Every ending settles the job's reservations in the same
//!   atomic step (the ledger's `settle_job`).

use super::spend::Reservation;
use crate::ai::progress::ProgressWrite;
use crate::ai::Attempt;
use crate::error::AppResult;
use crate::pricing::TokenUsage;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;

/// A job's status (the `status` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    Processing,
    Completed,
    Failed,
    /// Stopped by a cancel: final, like completed.
    Cancelled,
}

impl JobStatus {
    pub const ALL: [JobStatus; 4] = [
        JobStatus::Processing,
        JobStatus::Completed,
        JobStatus::Failed,
        JobStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Processing => "processing",
            JobStatus::Completed => "completed",
            JobStatus::Failed => "failed",
            JobStatus::Cancelled => "cancelled",
        }
    }

    /// What a cancel does to a job in this state: a running (or queued) job
    /// is stopped, a cancelled one answers as it is (a cancel is idempotent),
    /// a completed or failed one cannot be cancelled (its spend is settled
    /// and its result, or failure, recorded).
    pub fn on_cancel(self) -> OnCancel {
        match self {
            JobStatus::Processing => OnCancel::Stop,
            JobStatus::Cancelled => OnCancel::AlreadyCancelled,
            JobStatus::Completed | JobStatus::Failed => OnCancel::NotCancellable,
        }
    }

    pub fn parse(s: &str) -> Option<JobStatus> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }

    pub fn names() -> Vec<&'static str> {
        Self::ALL.iter().map(|v| v.as_str()).collect()
    }
}

impl fmt::Display for JobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a cancel does to a job, by its status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnCancel {
    Stop,
    AlreadyCancelled,
    NotCancellable,
}

/// Where a job runs (the `run_mode` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunMode {
    /// In the request's isolate, kept alive past the response by `waitUntil`
    /// (which the platform honours for ~30 s after the response).
    Inline,
    /// In the queue consumer (15 min of wall time); the request waits on the row.
    Queue,
}

impl RunMode {
    pub fn as_str(self) -> &'static str {
        match self {
            RunMode::Inline => "inline",
            RunMode::Queue => "queue",
        }
    }
}

impl fmt::Display for RunMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The stage names the kit itself writes (a worker names its others).
pub mod stage {
    /// What a queued job that no consumer has started shows (never stored).
    pub const QUEUED: &str = "queued";
    pub const DONE: &str = "done";
    pub const FAILED: &str = "failed";
    pub const CANCELLED: &str = "cancelled";
}

/// The worker's job table and how the kit writes it: the kit's migrations
/// make [`JobSchema::KIT`]; a worker whose table predates them (the
/// granulator's `granulation_jobs`) names its own, which carries every
/// column of the kit's `jobs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobSchema {
    pub jobs: &'static str,
    /// One row per provider attempt (the kit's `job_attempts`).
    pub attempts: &'static str,
    /// The stage a claimed run starts in.
    pub first_stage: &'static str,
    /// The call purpose a stopped run's estimated attempt is booked under.
    pub stopped_purpose: &'static str,
}

impl JobSchema {
    /// The tables the kit's migrations make.
    pub const KIT: JobSchema = JobSchema {
        jobs: "jobs",
        attempts: "job_attempts",
        first_stage: "running",
        stopped_purpose: "generate",
    };
}

/// When a claim (or a takeover) is made: now, the stall period of a
/// started run, and the UTC day (what a stopped run's spend is booked on
/// without a reservation).
#[derive(Debug, Clone, Copy)]
pub struct Moment<'a> {
    pub ms: u64,
    pub stall_ms: u64,
    pub today: &'a str,
}

/// The call a run is expected to make first (its chain's first provider):
/// what the tokens of a run that stops without ending are booked at.
#[derive(Debug, Clone, Copy)]
pub struct PlannedCall<'a> {
    pub provider: &'a str,
    pub model: &'a str,
    /// USD per 1M output tokens; `None` when unpriced.
    pub output_price: Option<f64>,
}

/// A worker's own column of the job row and its value (text, number, bool
/// or null), written with the claim and again by a re-run. Column names are
/// the worker's code, never input.
pub type Column<'a> = (&'static str, Value);

/// A job as a request asks for it.
pub struct NewJob<'a> {
    pub client_id: &'a str,
    pub execution_id: &'a str,
    /// The request as submitted (JSON), what a queued run starts from.
    pub request_params: &'a str,
    pub deadline_at: u64,
    pub request_hash: &'a str,
    pub run_mode: RunMode,
    pub expected_tokens: u32,
    pub expected_elements: u32,
    pub planned: Option<PlannedCall<'a>>,
    /// The worker's own columns (set on a claim and on a re-run).
    pub columns: &'a [Column<'a>],
}

/// What became of a claim.
#[derive(Debug, Clone, PartialEq)]
pub enum Claim {
    /// This request owns the job now (a new one, or a failed or stopped one
    /// run again). `spent_usd` is what earlier runs of the job already cost:
    /// a re-run is charged against the same budget.
    Run {
        job_id: i64,
        run: u32,
        spent_usd: f64,
    },
    /// Completed before: replay what was returned then.
    Replay { job_id: i64, result: Value },
    /// Another request, or the queue, is running it.
    InProgress { job_id: i64 },
    /// The key was used for a different request.
    Mismatch { job_id: i64 },
    /// Cancelled: a repeated key answers the cancel, it never restarts a job
    /// someone stopped (a new key runs it again).
    Cancelled {
        job_id: i64,
        cancelled_by: Option<String>,
        cancelled_at: Option<String>,
    },
}

/// A started run whose last heartbeat is older than `stall_ms` has gone away.
/// A queued run not yet started (`None`) is the queue's to start, never stalled.
pub fn stalled(beat_at_ms: Option<u64>, now_ms: u64, stall_ms: u64) -> bool {
    beat_at_ms.is_some_and(|beat| beat.saturating_add(stall_ms) < now_ms)
}

/// What a waiting request needs to know about a job.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct JobState {
    pub status: JobStatus,
    pub failure_code: Option<String>,
    pub failure_reason: Option<String>,
    /// The stored result, only once completed.
    pub result_json: Option<String>,
    #[serde(default)]
    pub cancelled_by: Option<String>,
}

/// A job as a queued run needs it: who it is for and what was asked.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredJob {
    pub client_id: String,
    pub execution_id: String,
    /// What earlier runs of the job spent (counts against its budget).
    pub cost_usd: Option<f64>,
    /// The request as submitted.
    pub request_params: String,
    /// When the sweep takes the job for abandoned (ms).
    pub deadline_at: u64,
}

/// What a run that made a result writes, in one atomic step with the
/// worker's own writes (its `columns` of the job row, and on D1 the
/// statements it passes to `D1Jobs::complete_with`).
pub struct Completion<'a> {
    pub job_id: i64,
    /// The run that made it: only while it still owns the job is it stored.
    pub run: u32,
    pub client_id: &'a str,
    pub provider: &'a str,
    pub model: &'a str,
    pub usage: TokenUsage,
    pub cost_usd: Option<f64>,
    /// The response a repeated request replays.
    pub result_json: &'a str,
    pub processing_time_ms: u64,
    pub attempts: &'a [Attempt],
    /// The UTC day its spend is booked on when its reservation is gone.
    pub date: &'a str,
    pub columns: &'a [Column<'a>],
}

/// What a run that failed writes: its reason and the usage it incurred.
pub struct Failure<'a> {
    pub job_id: i64,
    pub run: u32,
    pub client_id: &'a str,
    pub code: &'a str,
    pub reason: &'a str,
    pub provider: Option<&'a str>,
    pub model: Option<&'a str>,
    pub usage: TokenUsage,
    pub cost_usd: Option<f64>,
    pub processing_time_ms: u64,
    pub attempts: &'a [Attempt],
    pub date: &'a str,
}

/// What the run of a cancelled job spent until it stopped: booked once,
/// by that run, with its reservations settled.
pub struct CancelledRun<'a> {
    pub job_id: i64,
    pub run: u32,
    pub client_id: &'a str,
    pub provider: Option<&'a str>,
    pub model: Option<&'a str>,
    pub usage: TokenUsage,
    pub cost_usd: Option<f64>,
    pub processing_time_ms: u64,
    pub attempts: &'a [Attempt],
    pub date: &'a str,
}

/// The error a run gets when it tries to end a job it no longer owns (a
/// request or the queue took it over, or the sweep ended it): nothing it
/// made is stored; the job goes on, or ended, without it.
pub fn run_superseded(job_id: i64, run: u32) -> crate::error::AppError {
    crate::error::AppError::new(
        crate::error::Kind::Conflict,
        "run_superseded",
        format!(
            "run {run} of job {job_id} was taken over or ended while it ran (no heartbeat for the stall period, \
             or past its deadline); follow statusUrl for the job's result"
        ),
    )
    .with_details(serde_json::json!({"jobId": job_id, "statusUrl": format!("/api/jobs/{job_id}/status")}))
}

/// The job store (the module's rules above). Used through generics only,
/// on one thread.
#[allow(async_fn_in_trait)]
pub trait JobStore {
    /// The stored response of a completed job, by its idempotency key.
    async fn completed_result(
        &self,
        client_id: &str,
        execution_id: &str,
    ) -> AppResult<Option<Value>>;
    /// Create the job or find what became of an earlier request with its
    /// key; a run claimed here takes over `reservation` (linked in the same
    /// atomic step). A stopped run is booked and taken over.
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
    async fn job_state(&self, job_id: i64) -> AppResult<Option<JobState>>;
    /// The queue consumer starts run `run` of a queued job: `Some(run)` to
    /// go on with (the next number when a stalled run was taken over);
    /// `None`: taken by another delivery, finished, or run again since.
    async fn start_queued(&self, job_id: i64, run: u32, now: Moment<'_>) -> AppResult<Option<u32>>;
    /// The stage of run `run`, and its heartbeat (nothing once it no longer
    /// owns the job).
    async fn set_stage(&self, job_id: i64, run: u32, stage: &str, now_ms: u64) -> AppResult<()>;
    /// Progress of run `run`, and its heartbeat; `false` (nothing written)
    /// once it no longer owns the job.
    async fn write_progress(
        &self,
        job_id: i64,
        run: u32,
        p: &ProgressWrite,
        now_ms: u64,
    ) -> AppResult<bool>;
    /// `false` (nothing written) when its run no longer owns the job.
    async fn complete_job(&self, c: &Completion<'_>) -> AppResult<bool>;
    /// `false` (nothing written) when its run no longer owns the job.
    async fn fail_job(&self, f: &Failure<'_>) -> AppResult<bool>;
    /// End a run that never reached a model (its reservation is released,
    /// nothing booked); `false` when it no longer owned the job.
    async fn fail_run(&self, job_id: i64, run: u32, code: &str, reason: &str) -> AppResult<bool>;
    /// Cancel a `processing` job (`false`: it was not): a run that had
    /// stopped is booked and settled now, one never started releases its
    /// reservation; a live run settles itself (`settle_cancelled`).
    async fn cancel_job(&self, job_id: i64, by: &str, now: Moment<'_>) -> AppResult<bool>;
    /// The run of a cancelled job books what it spent, once, only if it is
    /// still that job's run.
    async fn settle_cancelled(&self, c: &CancelledRun<'_>) -> AppResult<()>;
    /// Attempts paid for outside a run (on the job's totals too).
    async fn record_attempts(
        &self,
        job_id: i64,
        client_id: &str,
        attempts: &[Attempt],
    ) -> AppResult<()>;
    /// End runs still `processing` past their deadline at `now_ms`: each is
    /// booked at what it had streamed, then `failed` (`abandoned`). At most
    /// `limit`; how many.
    async fn fail_abandoned_jobs(&self, now_ms: u64, today: &str, limit: u32) -> AppResult<usize>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn statuses_round_trip_through_their_schema_strings() {
        for s in JobStatus::ALL {
            assert_eq!(JobStatus::parse(s.as_str()), Some(s));
            assert_eq!(serde_json::to_value(s).unwrap(), json!(s.as_str()));
            assert_eq!(
                serde_json::from_value::<JobStatus>(json!(s.as_str())).unwrap(),
                s
            );
            assert_eq!(s.to_string(), s.as_str());
        }
        assert_eq!(
            JobStatus::names(),
            vec!["processing", "completed", "failed", "cancelled"]
        );
        assert_eq!(JobStatus::parse("Completed"), None);
        assert!(serde_json::from_value::<JobStatus>(json!("done")).is_err());
    }

    #[test]
    fn only_a_running_job_is_stopped_and_a_finished_one_cannot_be_cancelled() {
        assert_eq!(JobStatus::Processing.on_cancel(), OnCancel::Stop);
        assert_eq!(JobStatus::Cancelled.on_cancel(), OnCancel::AlreadyCancelled);
        assert_eq!(JobStatus::Completed.on_cancel(), OnCancel::NotCancellable);
        assert_eq!(JobStatus::Failed.on_cancel(), OnCancel::NotCancellable);
    }

    #[test]
    fn a_run_is_stalled_only_once_started_and_silent_past_the_period() {
        assert!(!stalled(None, 1_000_000, 10));
        assert!(!stalled(Some(1_000), 1_010, 10));
        assert!(stalled(Some(1_000), 1_011, 10));
        assert!(!stalled(Some(u64::MAX), 0, u64::MAX));
    }

    #[test]
    fn the_kit_schema_and_its_migration_name_the_same_tables_and_states() {
        let sql = include_str!("../../migrations/0001_kit_jobs.sql");
        assert!(sql.contains(&format!("CREATE TABLE {} (", JobSchema::KIT.jobs)));
        assert!(sql.contains(&format!("CREATE TABLE {} (", JobSchema::KIT.attempts)));
        for s in JobStatus::ALL {
            assert!(sql.contains(&format!("'{}'", s.as_str())), "{s}");
        }
        for m in [RunMode::Inline, RunMode::Queue] {
            assert!(sql.contains(&format!("'{}'", m.as_str())), "{m}");
        }
        assert!(sql.contains("'abandoned'") && sql.contains("'cancelled'"));
    }
}
