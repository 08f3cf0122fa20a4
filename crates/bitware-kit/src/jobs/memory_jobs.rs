//! The job store in memory (feature `twins`), as `D1Jobs` keeps it on D1:
//! the contract suite runs the same cases on both. Its spend goes through
//! the ledger twin it holds ([`MemoryLedger`]).

use super::memory::MemoryLedger;
use super::spend::Reservation;
use super::store::{
    stage, stalled, CancelledRun, Claim, Completion, Failure, JobSchema, JobState, JobStatus,
    JobStore, Moment, NewJob, RunMode, StoredJob,
};
use crate::ai::progress::ProgressWrite;
use crate::ai::{totals, Attempt};
use crate::error::{AppError, AppResult};
use crate::pricing::TokenUsage;
use serde_json::{Map, Value};
use std::cell::{Cell, RefCell};

/// One job row, as much of it as the lifecycle reads or writes.
#[derive(Debug, Clone)]
pub struct JobRecord {
    pub id: i64,
    pub client_id: String,
    pub execution_id: String,
    pub status: JobStatus,
    /// Every stage written, in order (the row holds the last).
    pub stages: Vec<String>,
    pub run_count: u32,
    pub run_mode: RunMode,
    pub cost_usd: f64,
    pub usage: TokenUsage,
    pub provider: Option<String>,
    pub model: Option<String>,
    pub request_hash: String,
    pub request_params: String,
    pub deadline_at: u64,
    pub result_json: Option<String>,
    pub failure_code: Option<String>,
    pub failure_reason: Option<String>,
    pub attempts: Vec<Attempt>,
    pub progress_writes: u32,
    /// The last progress written (tokens, elements, branches).
    pub last_progress: ProgressWrite,
    /// When its run started (`None` while queued).
    pub started_at: Option<u64>,
    /// The run's last heartbeat (`None` until a runner started it).
    pub beat_at: Option<u64>,
    /// The planned output price (USD per 1M tokens) a stopped run is booked at.
    pub planned_output_price: Option<f64>,
    /// Output tokens booked as estimates of runs that stopped.
    pub estimated_tokens: u64,
    pub cancelled_by: Option<String>,
    /// When the cancel was recorded (RFC 3339, as D1 writes it).
    pub cancelled_at: Option<String>,
    /// When the job ended (a cancelled job's once its run settled).
    pub ended: bool,
    /// The worker's own columns, as last written.
    pub columns: Map<String, Value>,
}

impl JobRecord {
    /// A worker column as last written (`None`: never written).
    pub fn column(&self, name: &str) -> Option<&Value> {
        self.columns.get(name)
    }
}

/// The job store twin.
#[derive(Debug)]
pub struct MemoryJobs {
    pub schema: JobSchema,
    pub jobs: RefCell<Vec<JobRecord>>,
    pub ledger: MemoryLedger,
    /// Set to make every write fail (a D1 outage).
    pub broken: Cell<bool>,
    /// Set to have a cancel recorded just before the next completion is
    /// written (a cancel racing the end of a run): the completion then
    /// writes nothing, as D1's final-state trigger and guard make it.
    pub cancel_at_completion: Cell<bool>,
}

impl Default for MemoryJobs {
    fn default() -> Self {
        MemoryJobs::new(JobSchema::KIT)
    }
}

impl MemoryJobs {
    pub fn new(schema: JobSchema) -> MemoryJobs {
        MemoryJobs {
            schema,
            jobs: RefCell::default(),
            ledger: MemoryLedger::default(),
            broken: Cell::new(false),
            cancel_at_completion: Cell::new(false),
        }
    }

    /// Job `id` as it stands (ids start at 1).
    pub fn job(&self, id: i64) -> JobRecord {
        self.jobs.borrow()[index(id)].clone()
    }

    /// A tenant's (reserved, spent), summed over its days.
    pub fn day(&self, tenant: &str) -> (f64, f64) {
        self.ledger.day(tenant)
    }

    fn check(&self) -> AppResult<()> {
        if self.broken.get() {
            return Err(AppError::database("writing", "D1 is down (test)"));
        }
        Ok(())
    }

    fn with<T>(&self, job_id: i64, f: impl FnOnce(&mut JobRecord) -> T) -> Option<T> {
        let mut jobs = self.jobs.borrow_mut();
        let position = usize::try_from(job_id - 1).ok()?;
        jobs.get_mut(position).map(f)
    }

    /// Whether run `run` still owns the job (D1's ending guard).
    fn owns(&self, job_id: i64, run: u32) -> bool {
        self.with(job_id, |j| {
            j.status == JobStatus::Processing && j.run_count == run
        })
        .unwrap_or(false)
    }

    /// Whether the job's run stopped: past its deadline at `now_ms`, or
    /// started and silent since `cutoff` (D1's `stopped_sql`).
    fn stopped(j: &JobRecord, now_ms: u64, cutoff: u64) -> bool {
        j.status == JobStatus::Processing
            && (j.deadline_at < now_ms || j.started_at.is_some() && j.beat_at.unwrap_or(0) < cutoff)
    }

    /// Book what the stopped run of the job had streamed, at its planned
    /// output price, on the job (D1 also writes it as an `abandoned`
    /// attempt); what it cost.
    fn book_stopped_run(&self, job_id: i64) -> f64 {
        self.with(job_id, |j| {
            let tokens = j.last_progress.tokens;
            let Some(price) = j.planned_output_price else {
                j.last_progress.tokens = 0;
                return 0.0;
            };
            let cost = price * tokens as f64 / 1_000_000.0;
            if tokens > 0 {
                j.estimated_tokens += tokens;
                j.usage.output += tokens;
                j.cost_usd += cost;
            }
            j.last_progress.tokens = 0;
            cost
        })
        .unwrap_or(0.0)
    }

    fn existing(
        &self,
        job: &NewJob<'_>,
        now_ms: u64,
        stall_ms: u64,
    ) -> Option<(i64, Option<Claim>)> {
        let jobs = self.jobs.borrow();
        let j = jobs
            .iter()
            .find(|j| j.client_id == job.client_id && j.execution_id == job.execution_id)?;
        let job_id = j.id;
        let claim = if j.request_hash != job.request_hash {
            Some(Claim::Mismatch { job_id })
        } else {
            match j.status {
                JobStatus::Completed => Some(Claim::Replay {
                    job_id,
                    result: serde_json::from_str(j.result_json.as_deref().unwrap_or("null"))
                        .unwrap_or(Value::Null),
                }),
                JobStatus::Cancelled => Some(Claim::Cancelled {
                    job_id,
                    cancelled_by: j.cancelled_by.clone(),
                    cancelled_at: j.cancelled_at.clone(),
                }),
                JobStatus::Processing
                    if j.deadline_at >= now_ms
                        && !stalled(j.started_at.and(j.beat_at), now_ms, stall_ms) =>
                {
                    Some(Claim::InProgress { job_id })
                }
                _ => None,
            }
        };
        Some((job_id, claim))
    }

    fn set_columns(j: &mut JobRecord, columns: &[(&'static str, Value)]) {
        for (name, v) in columns {
            j.columns.insert((*name).to_string(), v.clone());
        }
    }
}

fn index(id: i64) -> usize {
    usize::try_from(id - 1).unwrap_or(usize::MAX)
}

impl JobStore for MemoryJobs {
    async fn completed_result(
        &self,
        client_id: &str,
        execution_id: &str,
    ) -> AppResult<Option<Value>> {
        self.check()?;
        Ok(self
            .jobs
            .borrow()
            .iter()
            .find(|j| {
                j.client_id == client_id
                    && j.execution_id == execution_id
                    && j.status == JobStatus::Completed
            })
            .and_then(|j| {
                j.result_json
                    .as_deref()
                    .and_then(|r| serde_json::from_str(r).ok())
            }))
    }

    async fn claim_job(
        &self,
        job: &NewJob<'_>,
        now: Moment<'_>,
        reservation: &Reservation,
    ) -> AppResult<Claim> {
        self.check()?;
        let started = (job.run_mode == RunMode::Inline).then_some(now.ms);
        let planned_output_price = job.planned.and_then(|p| p.output_price);
        let first_stage = self.schema.first_stage.to_string();
        match self.existing(job, now.ms, now.stall_ms) {
            None => {
                let mut jobs = self.jobs.borrow_mut();
                let id = jobs.len() as i64 + 1;
                let mut record = JobRecord {
                    id,
                    client_id: job.client_id.into(),
                    execution_id: job.execution_id.into(),
                    status: JobStatus::Processing,
                    stages: vec![first_stage],
                    run_count: 1,
                    run_mode: job.run_mode,
                    cost_usd: 0.0,
                    usage: TokenUsage::default(),
                    provider: None,
                    model: None,
                    request_hash: job.request_hash.into(),
                    request_params: job.request_params.into(),
                    deadline_at: job.deadline_at,
                    result_json: None,
                    failure_code: None,
                    failure_reason: None,
                    attempts: vec![],
                    progress_writes: 0,
                    last_progress: ProgressWrite::default(),
                    started_at: started,
                    beat_at: Some(now.ms),
                    planned_output_price,
                    estimated_tokens: 0,
                    cancelled_by: None,
                    cancelled_at: None,
                    ended: false,
                    columns: Map::new(),
                };
                Self::set_columns(&mut record, job.columns);
                jobs.push(record);
                drop(jobs);
                self.ledger.set_job_cost(id, 0.0);
                self.ledger.link(&reservation.id, id);
                Ok(Claim::Run {
                    job_id: id,
                    run: 1,
                    spent_usd: 0.0,
                })
            }
            Some((_, Some(claim))) => Ok(claim),
            // Failed, or its run stopped: book what a stopped run had
            // streamed (its reservations released), then run it again.
            Some((id, None)) => {
                let cutoff = now.ms.saturating_sub(now.stall_ms);
                let was_stopped = self
                    .with(id, |j| Self::stopped(j, now.ms, cutoff))
                    .unwrap_or(false);
                if was_stopped {
                    let spent = self.book_stopped_run(id);
                    let tenant = self.job(id).client_id;
                    self.ledger.settle_job_now(id, &tenant, spent, now.today);
                }
                let claim = self
                    .with(id, |j| {
                        j.status = JobStatus::Processing;
                        j.stages.push(first_stage);
                        j.run_count += 1;
                        j.run_mode = job.run_mode;
                        j.started_at = started;
                        j.beat_at = Some(now.ms);
                        j.planned_output_price = planned_output_price;
                        j.last_progress = ProgressWrite::default();
                        j.deadline_at = job.deadline_at;
                        j.request_params = job.request_params.into();
                        j.request_hash = job.request_hash.into();
                        j.failure_code = None;
                        j.failure_reason = None;
                        j.provider = None;
                        j.model = None;
                        Self::set_columns(j, job.columns);
                        Claim::Run {
                            job_id: id,
                            run: j.run_count,
                            spent_usd: j.cost_usd,
                        }
                    })
                    .ok_or_else(|| AppError::internal("the conflicting job vanished"))?;
                self.ledger.set_job_cost(id, self.job(id).cost_usd);
                self.ledger.link(&reservation.id, id);
                Ok(claim)
            }
        }
    }

    async fn existing_claim(
        &self,
        job: &NewJob<'_>,
        now_ms: u64,
        stall_ms: u64,
    ) -> AppResult<Option<Claim>> {
        self.check()?;
        Ok(self.existing(job, now_ms, stall_ms).and_then(|(_, c)| c))
    }

    async fn stored_job(&self, job_id: i64) -> AppResult<Option<StoredJob>> {
        self.check()?;
        Ok(self.with(job_id, |j| StoredJob {
            client_id: j.client_id.clone(),
            execution_id: j.execution_id.clone(),
            cost_usd: Some(j.cost_usd),
            request_params: j.request_params.clone(),
            deadline_at: j.deadline_at,
        }))
    }

    async fn job_state(&self, job_id: i64) -> AppResult<Option<JobState>> {
        self.check()?;
        Ok(self.with(job_id, |j| JobState {
            status: j.status,
            failure_code: j.failure_code.clone(),
            failure_reason: j.failure_reason.clone(),
            result_json: (j.status == JobStatus::Completed)
                .then(|| j.result_json.clone())
                .flatten(),
            cancelled_by: j.cancelled_by.clone(),
        }))
    }

    async fn start_queued(&self, job_id: i64, run: u32, now: Moment<'_>) -> AppResult<Option<u32>> {
        self.check()?;
        let cutoff = now.ms.saturating_sub(now.stall_ms);
        let Some((takes, stalled_run)) = self.with(job_id, |j| {
            let silent = j.started_at.is_none() || j.beat_at.unwrap_or(0) < cutoff;
            let takes = j.run_count == run && j.status == JobStatus::Processing && silent;
            (takes, takes && j.started_at.is_some())
        }) else {
            return Ok(None);
        };
        if !takes {
            return Ok(None);
        }
        if stalled_run {
            let spent = self.book_stopped_run(job_id);
            let tenant = self.job(job_id).client_id;
            // The queue's takeover books on the payer's day; the reservation
            // stays for the run that follows (D1: `release` off).
            self.ledger.book(job_id, &tenant, spent, now.today);
        }
        Ok(self.with(job_id, |j| {
            if stalled_run {
                j.run_count += 1;
            }
            j.started_at = Some(now.ms);
            j.beat_at = Some(now.ms);
            j.last_progress = ProgressWrite::default();
            j.run_count
        }))
    }

    async fn set_stage(&self, job_id: i64, run: u32, stage: &str, now_ms: u64) -> AppResult<()> {
        self.check()?;
        self.with(job_id, |j| {
            if j.status == JobStatus::Processing && j.run_count == run {
                j.stages.push(stage.to_string());
                j.beat_at = Some(now_ms);
            }
        });
        Ok(())
    }

    async fn write_progress(
        &self,
        job_id: i64,
        run: u32,
        p: &ProgressWrite,
        now_ms: u64,
    ) -> AppResult<bool> {
        self.check()?;
        Ok(self
            .with(job_id, |j| {
                if j.status != JobStatus::Processing || j.run_count != run {
                    return false;
                }
                j.progress_writes += 1;
                j.last_progress = *p;
                j.beat_at = Some(now_ms);
                true
            })
            .unwrap_or(false))
    }

    async fn complete_job(&self, c: &Completion<'_>) -> AppResult<bool> {
        self.check()?;
        if self.cancel_at_completion.take() {
            self.with(c.job_id, |j| {
                j.status = JobStatus::Cancelled;
                j.cancelled_by = Some("client:test".into());
                j.cancelled_at = j.started_at.map(|ms| crate::timing::iso_of(ms as i64));
            });
        }
        if !self.owns(c.job_id, c.run) {
            return Ok(false);
        }
        let cost = c.cost_usd.unwrap_or(0.0);
        self.with(c.job_id, |j| {
            j.status = JobStatus::Completed;
            j.stages.push(stage::DONE.into());
            j.provider = Some(c.provider.into());
            j.model = Some(c.model.into());
            j.usage += c.usage;
            j.cost_usd += cost;
            j.result_json = Some(c.result_json.into());
            j.attempts.extend(c.attempts.iter().cloned());
            j.ended = true;
            Self::set_columns(j, c.columns);
        });
        self.ledger
            .set_job_cost(c.job_id, self.job(c.job_id).cost_usd);
        self.ledger
            .settle_job_now(c.job_id, c.client_id, cost, c.date);
        Ok(true)
    }

    async fn fail_job(&self, f: &Failure<'_>) -> AppResult<bool> {
        self.check()?;
        if !self.owns(f.job_id, f.run) {
            return Ok(false);
        }
        let cost = f.cost_usd.unwrap_or(0.0);
        self.with(f.job_id, |j| {
            j.status = JobStatus::Failed;
            j.stages.push(stage::FAILED.into());
            j.provider = f.provider.map(str::to_string);
            j.model = f.model.map(str::to_string);
            j.usage += f.usage;
            j.cost_usd += cost;
            j.failure_code = Some(f.code.into());
            j.failure_reason = Some(f.reason.into());
            j.attempts.extend(f.attempts.iter().cloned());
        });
        self.ledger
            .set_job_cost(f.job_id, self.job(f.job_id).cost_usd);
        self.ledger
            .settle_job_now(f.job_id, f.client_id, cost, f.date);
        Ok(true)
    }

    async fn fail_run(&self, job_id: i64, run: u32, code: &str, reason: &str) -> AppResult<bool> {
        self.check()?;
        let failed = self
            .with(job_id, |j| {
                if j.run_count != run || j.status != JobStatus::Processing {
                    return false;
                }
                j.status = JobStatus::Failed;
                j.stages.push(stage::FAILED.into());
                j.failure_code = Some(code.into());
                j.failure_reason = Some(reason.into());
                true
            })
            .unwrap_or(false);
        if failed {
            // No model call was made: the reservation is released, nothing booked.
            self.ledger.release_job(job_id);
        }
        Ok(failed)
    }

    async fn cancel_job(&self, job_id: i64, by: &str, now: Moment<'_>) -> AppResult<bool> {
        self.check()?;
        let cutoff = now.ms.saturating_sub(now.stall_ms);
        let Some((processing, was_stopped, unstarted)) = self.with(job_id, |j| {
            (
                j.status == JobStatus::Processing,
                Self::stopped(j, now.ms, cutoff),
                j.started_at.is_none(),
            )
        }) else {
            return Ok(false);
        };
        if !processing {
            return Ok(false);
        }
        if was_stopped {
            let spent = self.book_stopped_run(job_id);
            let tenant = self.job(job_id).client_id;
            self.ledger
                .settle_job_now(job_id, &tenant, spent, now.today);
        }
        self.with(job_id, |j| {
            j.status = JobStatus::Cancelled;
            j.stages.push(stage::CANCELLED.into());
            j.cancelled_by = Some(by.into());
            j.cancelled_at = Some(crate::timing::iso_of(now.ms as i64));
            j.ended = was_stopped || unstarted;
        });
        if unstarted && !was_stopped {
            self.ledger.release_job(job_id);
        }
        Ok(true)
    }

    async fn settle_cancelled(&self, c: &CancelledRun<'_>) -> AppResult<()> {
        self.check()?;
        let cost = c.cost_usd.unwrap_or(0.0);
        let settles = self
            .with(c.job_id, |j| {
                // As D1's guard: the run the job had when cancelled, once.
                if j.status != JobStatus::Cancelled || j.run_count != c.run || j.ended {
                    return false;
                }
                j.ended = true;
                j.usage += c.usage;
                j.cost_usd += cost;
                if c.provider.is_some() {
                    j.provider = c.provider.map(str::to_string);
                    j.model = c.model.map(str::to_string);
                }
                j.attempts.extend(c.attempts.iter().cloned());
                true
            })
            .unwrap_or(false);
        if settles {
            self.ledger
                .set_job_cost(c.job_id, self.job(c.job_id).cost_usd);
            self.ledger
                .settle_job_now(c.job_id, c.client_id, cost, c.date);
        }
        Ok(())
    }

    async fn record_attempts(
        &self,
        job_id: i64,
        _client_id: &str,
        attempts: &[Attempt],
    ) -> AppResult<()> {
        self.check()?;
        let (usage, cost) = totals(attempts);
        self.with(job_id, |j| {
            j.attempts.extend(attempts.iter().cloned());
            j.usage += usage;
            j.cost_usd += cost.unwrap_or(0.0);
        });
        Ok(())
    }

    async fn fail_abandoned_jobs(&self, now_ms: u64, today: &str, limit: u32) -> AppResult<usize> {
        self.check()?;
        let late: Vec<i64> = self
            .jobs
            .borrow()
            .iter()
            .filter(|j| j.status == JobStatus::Processing && j.deadline_at < now_ms)
            .map(|j| j.id)
            .take(limit as usize)
            .collect();
        for id in &late {
            let spent = self.book_stopped_run(*id);
            let tenant = self.job(*id).client_id;
            self.ledger.book(*id, &tenant, spent, today);
            self.with(*id, |j| {
                j.status = JobStatus::Failed;
                j.stages.push(stage::FAILED.into());
                j.failure_code = Some("abandoned".into());
                j.failure_reason = Some(
                    "the run stopped before finishing (its worker went away); send the request again to retry"
                        .into(),
                );
            });
        }
        Ok(late.len())
    }
}

// The twin pays through its ledger twin, as D1's store and ledger share a database.
crate::delegate_spend_ledger!(MemoryJobs, |m| m.ledger);
