//! In-memory twins of the pipeline's ports, for native tests: a job store
//! with D1's claim, spend and settlement rules (`services/database/`:
//! `claims.rs`, `runs.rs`, `stopped.rs` and `spend.rs` are the originals; keep
//! them in step), structure and template stores, and a model
//! that answers scripted replies in the OpenAI wire format on a virtual clock.

use super::ports::{JobStore, StoredJob, StructureStore, TemplateSource};
use crate::services::ai_provider::wire::HttpCall;
use crate::services::ai_provider::{Attempt, HttpReply, Runtime, Transport};
use crate::services::database::{
    stalled, CancelledRun, Claim, Completion, Failure, JobState, Moment, NewJob,
};
use crate::services::storage::Tier;
use crate::services::timing::Clock;
use crate::types::env::STRUCTURES;
use crate::types::job::{JobStatus, PartialBranch, ProgressWrite, RunMode, Stage};
use crate::types::structure::StructureType;
use crate::types::template::Template;
use bitware_kit::error::{AppError, AppResult};
use bitware_kit::jobs::memory::MemoryLedger;
use bitware_kit::jobs::{DaySpend, JobBound, Refused, Reservation, SpendLedger};
use serde_json::{json, Value};
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;

/// One job row, as much of it as the pipeline reads or writes.
#[derive(Debug, Clone)]
pub struct JobRecord {
    pub id: i64,
    pub client_id: String,
    pub execution_id: String,
    pub status: JobStatus,
    pub stages: Vec<Stage>,
    pub run_count: u32,
    pub cost_usd: f64,
    pub request_hash: String,
    pub request_params: String,
    pub deadline_at: u64,
    pub result_json: Option<String>,
    pub failure_code: Option<String>,
    pub failure_reason: Option<String>,
    pub attempts: Vec<Attempt>,
    pub elements: usize,
    pub progress_writes: u32,
    /// The last progress written (tokens, elements, branches).
    pub last_progress: ProgressWrite,
    /// The run's last heartbeat (`None` until a runner started it).
    pub beat_at: Option<u64>,
    /// The planned output price (USD per 1M tokens) a stopped run is booked at.
    pub planned_output_price: Option<f64>,
    /// Output tokens booked as estimates of runs that stopped.
    pub estimated_tokens: u64,
    /// A cancelled job's run settled (D1's `completed_at` of a cancelled job).
    pub cancel_settled: bool,
}

#[derive(Default)]
pub struct MemoryJobs {
    pub jobs: RefCell<Vec<JobRecord>>,
    /// The daily spend ledger: the kit's twin (held to D1's rules by the
    /// kit's contract suite), shared with the pipeline as its `SpendLedger`.
    pub ledger: MemoryLedger,
    /// Set to make every write fail (a D1 outage).
    pub broken: Cell<bool>,
    /// `partial_branches`: (job, run, branch), the latest of each position.
    pub partials: RefCell<Vec<(i64, u32, PartialBranch)>>,
    /// Every branch ever recorded, in order (tests read it after the job ends).
    pub branch_log: RefCell<Vec<(i64, u32, PartialBranch)>>,
    /// Set to have a cancel recorded just before the next completion is
    /// written (a cancel racing the end of a run): the completion then fails
    /// whole, as D1's `job_final_states_are_final` trigger makes it.
    pub cancel_at_completion: Cell<bool>,
}

impl MemoryJobs {
    pub fn job(&self, id: i64) -> JobRecord {
        self.jobs.borrow()[(id - 1) as usize].clone()
    }

    pub fn day(&self, tenant: &str) -> (f64, f64) {
        self.ledger.day(tenant)
    }

    fn check(&self) -> AppResult<()> {
        if self.broken.get() {
            return Err(AppError::database("writing", "D1 is down (test)"));
        }
        Ok(())
    }

    /// Whether run `run` still owns the job (D1's `ending_batch`).
    fn owns(&self, job_id: i64, run: u32) -> bool {
        let jobs = self.jobs.borrow();
        let j = &jobs[(job_id - 1) as usize];
        j.status == JobStatus::Processing && j.run_count == run
    }

    /// Book what the stopped run of the job at `index` had streamed, at its
    /// planned output price (D1's `book_stopped_run`); what it cost.
    fn book_stopped_run(&self, index: usize) -> f64 {
        let mut jobs = self.jobs.borrow_mut();
        let j = &mut jobs[index];
        let tokens = j.last_progress.tokens;
        let cost = j.planned_output_price.unwrap_or(0.0) * tokens as f64 / 1_000_000.0;
        j.estimated_tokens += tokens;
        j.cost_usd += cost;
        j.last_progress = ProgressWrite::default();
        cost
    }

    /// Settle every reservation of a job to what it spent (D1's
    /// `settle_job_statements`, the kit's twin).
    fn settle_job(&self, job_id: i64, spent: f64, today: &str) {
        let tenant = self.job(job_id).client_id;
        self.ledger.settle_job_now(job_id, &tenant, spent, today);
    }

    fn existing(
        &self,
        job: &NewJob<'_>,
        now_ms: u64,
        stall_ms: u64,
    ) -> Option<(usize, Option<Claim>)> {
        let jobs = self.jobs.borrow();
        let i = jobs
            .iter()
            .position(|j| j.client_id == job.client_id && j.execution_id == job.execution_id)?;
        let j = &jobs[i];
        let claim = if j.request_hash != job.request_hash {
            Some(Claim::Mismatch { job_id: j.id })
        } else {
            match j.status {
                JobStatus::Completed => Some(Claim::Replay {
                    job_id: j.id,
                    result: serde_json::from_str(j.result_json.as_deref().unwrap_or("null"))
                        .unwrap_or(Value::Null),
                }),
                JobStatus::Cancelled => Some(Claim::Cancelled {
                    job_id: j.id,
                    cancelled_by: Some("client:test".into()),
                    cancelled_at: None,
                }),
                JobStatus::Processing
                    if j.deadline_at >= now_ms && !stalled(j.beat_at, now_ms, stall_ms) =>
                {
                    Some(Claim::InProgress { job_id: j.id })
                }
                _ => None,
            }
        };
        Some((i, claim))
    }
}

impl JobStore for MemoryJobs {
    async fn completed_result(
        &self,
        client_id: &str,
        execution_id: &str,
    ) -> AppResult<Option<Value>> {
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
        let now_ms = now.ms;
        let beat_at = (job.run_mode == RunMode::Inline).then_some(now_ms);
        let planned_output_price = job.planned.and_then(|p| p.output_price);
        match self.existing(job, now_ms, now.stall_ms) {
            None => {
                let mut jobs = self.jobs.borrow_mut();
                let id = jobs.len() as i64 + 1;
                jobs.push(JobRecord {
                    id,
                    client_id: job.client_id.into(),
                    execution_id: job.execution_id.into(),
                    status: JobStatus::Processing,
                    stages: vec![Stage::Generating],
                    run_count: 1,
                    cost_usd: 0.0,
                    request_hash: job.request_hash.into(),
                    request_params: job.request_params.into(),
                    deadline_at: job.deadline_at,
                    result_json: None,
                    failure_code: None,
                    failure_reason: None,
                    attempts: vec![],
                    elements: 0,
                    progress_writes: 0,
                    last_progress: ProgressWrite::default(),
                    beat_at,
                    planned_output_price,
                    estimated_tokens: 0,
                    cancel_settled: false,
                });
                drop(jobs);
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
            Some((i, None)) => {
                if self.jobs.borrow()[i].status == JobStatus::Processing {
                    let id = self.jobs.borrow()[i].id;
                    let spent = self.book_stopped_run(i);
                    self.settle_job(id, spent, now.today);
                }
                let mut jobs = self.jobs.borrow_mut();
                let j = &mut jobs[i];
                j.beat_at = beat_at;
                j.planned_output_price = planned_output_price;
                j.last_progress = ProgressWrite::default();
                j.status = JobStatus::Processing;
                j.stages.push(Stage::Generating);
                j.run_count += 1;
                j.deadline_at = job.deadline_at;
                j.request_params = job.request_params.into();
                j.failure_code = None;
                j.failure_reason = None;
                let claim = Claim::Run {
                    job_id: j.id,
                    run: j.run_count,
                    spent_usd: j.cost_usd,
                };
                let id = j.id;
                drop(jobs);
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
        Ok(self.existing(job, now_ms, stall_ms).and_then(|(_, c)| c))
    }

    async fn stored_job(&self, job_id: i64) -> AppResult<Option<StoredJob>> {
        Ok(self
            .jobs
            .borrow()
            .get((job_id - 1) as usize)
            .map(|j| StoredJob {
                client_id: j.client_id.clone(),
                execution_id: j.execution_id.clone(),
                cost_usd: Some(j.cost_usd),
                request_params: j.request_params.clone(),
            }))
    }

    async fn fail_run(&self, job_id: i64, run: u32, code: &str, reason: &str) -> AppResult<bool> {
        self.check()?;
        let mut jobs = self.jobs.borrow_mut();
        let j = &mut jobs[(job_id - 1) as usize];
        if j.run_count != run || j.status != JobStatus::Processing {
            return Ok(false);
        }
        j.status = JobStatus::Failed;
        j.stages.push(Stage::Failed);
        j.failure_code = Some(code.into());
        j.failure_reason = Some(reason.into());
        drop(jobs);
        // No model call was made: the reservation is released, nothing booked.
        self.settle_job(job_id, 0.0, "");
        Ok(true)
    }

    async fn job_state(&self, job_id: i64) -> AppResult<Option<JobState>> {
        Ok(self
            .jobs
            .borrow()
            .get((job_id - 1) as usize)
            .map(|j| JobState {
                status: j.status,
                failure_code: j.failure_code.clone(),
                failure_reason: j.failure_reason.clone(),
                result_json: (j.status == JobStatus::Completed)
                    .then(|| j.result_json.clone())
                    .flatten(),
                cancelled_by: (j.status == JobStatus::Cancelled).then(|| "client:test".into()),
            }))
    }

    async fn set_stage(&self, job_id: i64, run: u32, stage: Stage, now_ms: u64) -> AppResult<()> {
        self.check()?;
        let mut jobs = self.jobs.borrow_mut();
        let j = &mut jobs[(job_id - 1) as usize];
        if j.status == JobStatus::Processing && j.run_count == run {
            j.stages.push(stage);
            j.beat_at = Some(now_ms);
        }
        Ok(())
    }

    async fn write_progress(
        &self,
        job_id: i64,
        run: u32,
        p: &ProgressWrite,
        now_ms: u64,
    ) -> AppResult<bool> {
        let mut jobs = self.jobs.borrow_mut();
        let job = &mut jobs[(job_id - 1) as usize];
        if job.status != JobStatus::Processing || job.run_count != run {
            return Ok(false);
        }
        job.progress_writes += 1;
        job.last_progress = *p;
        job.beat_at = Some(now_ms);
        Ok(true)
    }

    async fn complete_job(&self, c: &Completion<'_>) -> AppResult<bool> {
        self.check()?;
        if self.cancel_at_completion.take() {
            self.jobs.borrow_mut()[(c.job_id - 1) as usize].status = JobStatus::Cancelled;
        }
        // As D1's guard (and its trigger for a cancelled job): a run that no
        // longer owns its job writes nothing.
        if !self.owns(c.job_id, c.run) {
            return Ok(false);
        }
        let mut jobs = self.jobs.borrow_mut();
        let j = &mut jobs[(c.job_id - 1) as usize];
        j.status = JobStatus::Completed;
        j.stages.push(Stage::Done);
        j.cost_usd += c.cost_usd.unwrap_or(0.0);
        j.result_json = Some(c.result_json.into());
        j.elements = c.elements.len();
        j.attempts.extend(c.attempts.iter().cloned());
        drop(jobs);
        self.settle_job(c.job_id, c.cost_usd.unwrap_or(0.0), c.date);
        Ok(true)
    }

    async fn settle_cancelled(&self, c: &CancelledRun<'_>) -> AppResult<()> {
        self.check()?;
        let mut jobs = self.jobs.borrow_mut();
        let j = &mut jobs[(c.job_id - 1) as usize];
        // As D1's guard: the run the job had when cancelled, once.
        if j.status != JobStatus::Cancelled || j.run_count != c.run || j.cancel_settled {
            return Ok(());
        }
        j.cancel_settled = true;
        j.cost_usd += c.cost_usd.unwrap_or(0.0);
        j.attempts.extend(c.attempts.iter().cloned());
        drop(jobs);
        self.settle_job(c.job_id, c.cost_usd.unwrap_or(0.0), c.date);
        Ok(())
    }

    async fn fail_job(&self, f: &Failure<'_>) -> AppResult<bool> {
        self.check()?;
        if !self.owns(f.job_id, f.run) {
            return Ok(false);
        }
        let mut jobs = self.jobs.borrow_mut();
        let j = &mut jobs[(f.job_id - 1) as usize];
        j.status = JobStatus::Failed;
        j.stages.push(Stage::Failed);
        j.cost_usd += f.cost_usd.unwrap_or(0.0);
        j.failure_code = Some(f.code.into());
        j.failure_reason = Some(f.reason.into());
        j.attempts.extend(f.attempts.iter().cloned());
        drop(jobs);
        self.settle_job(f.job_id, f.cost_usd.unwrap_or(0.0), f.date);
        Ok(true)
    }

    async fn record_branch(&self, job_id: i64, run: u32, branch: &PartialBranch) -> AppResult<()> {
        self.check()?;
        let row = (job_id, run, branch.clone());
        let mut partials = self.partials.borrow_mut();
        partials.retain(|p| (p.0, p.1, p.2.position) != (job_id, run, branch.position));
        partials.push(row.clone());
        self.branch_log.borrow_mut().push(row);
        Ok(())
    }

    async fn record_attempts(
        &self,
        job_id: i64,
        _client_id: &str,
        attempts: &[Attempt],
    ) -> AppResult<()> {
        self.jobs.borrow_mut()[(job_id - 1) as usize]
            .attempts
            .extend(attempts.iter().cloned());
        Ok(())
    }
}

/// KV and R2 as a map of location → JSON.
#[derive(Default, Clone)]
pub struct MemoryStructures {
    pub stored: Rc<RefCell<HashMap<String, String>>>,
}

impl StructureStore for MemoryStructures {
    async fn store(&self, tier: Tier, job_id: i64, json: &str) -> AppResult<Option<String>> {
        let Some(location) = STRUCTURES.location(tier, job_id) else {
            return Ok(None);
        };
        self.stored
            .borrow_mut()
            .insert(location.clone(), json.into());
        Ok(Some(location))
    }
}

/// Active templates; a deleted one is simply absent.
#[derive(Default, Clone)]
pub struct MemoryTemplates {
    pub templates: Rc<RefCell<Vec<Template>>>,
}

impl TemplateSource for MemoryTemplates {
    async fn resolve(
        &self,
        name: Option<&str>,
        structure_type: Option<StructureType>,
    ) -> AppResult<Template> {
        let templates = self.templates.borrow();
        let found = match name {
            Some(name) => templates.iter().find(|t| t.template_name == name),
            None => templates
                .iter()
                .find(|t| Some(t.structure_type) == structure_type),
        };
        found.cloned().ok_or_else(|| {
            AppError::invalid_field("input.templateName", "no active template (test)")
        })
    }
}

/// A model behind the OpenAI wire format: each call takes the next scripted
/// answer (a JSON value, or an HTTP status) and costs 100 virtual ms.
#[derive(Default)]
pub struct Model {
    pub answers: RefCell<VecDeque<Result<Value, u16>>>,
    pub calls: RefCell<Vec<HttpCall>>,
    pub clock: Cell<u64>,
    /// Usage billed per answer: (prompt, completion) tokens.
    pub usage: Cell<(u64, u64)>,
}

impl Model {
    pub fn answering(answers: Vec<Result<Value, u16>>) -> Model {
        Model {
            answers: RefCell::new(answers.into()),
            clock: Cell::new(1_000_000),
            usage: Cell::new((1_000, 500)),
            ..Model::default()
        }
    }

    /// What the pipeline sent as the user prompt of call `i`.
    pub fn prompt(&self, i: usize) -> String {
        let calls = self.calls.borrow();
        calls[i].body["messages"]
            .as_array()
            .and_then(|m| m.iter().rev().find(|m| m["role"] == "user"))
            .and_then(|m| m["content"].as_str())
            .unwrap_or_default()
            .to_string()
    }
}

impl Runtime for Model {
    async fn http(&self, call: &HttpCall, _timeout_ms: u64) -> Result<HttpReply, Transport> {
        self.calls.borrow_mut().push(call.clone());
        self.clock.set(self.clock.get() + 100);
        let answer = self.answers.borrow_mut().pop_front();
        let (prompt, completion) = self.usage.get();
        match answer {
            Some(Ok(value)) => Ok(HttpReply {
                status: 200,
                retry_after: None,
                body: json!({"model": call.body["model"], "choices": [{"message": {"content": value.to_string()}, "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": prompt, "completion_tokens": completion}})
                .to_string(),
            }),
            Some(Err(status)) => Ok(HttpReply {
                status,
                retry_after: None,
                body: json!({"error": {"message": "scripted failure"}}).to_string(),
            }),
            None => Ok(HttpReply {
                status: 500,
                retry_after: None,
                body: json!({"error": {"message": "the script has no more answers"}}).to_string(),
            }),
        }
    }
    async fn workers_ai(&self, _: &str, _: &Value, _: u64) -> Result<Value, Transport> {
        Err(Transport::Failed("not scripted".into()))
    }
    async fn sleep(&self, ms: u64) {
        self.clock.set(self.clock.get() + ms);
    }
    fn now_ms(&self) -> u64 {
        self.clock.get()
    }
    fn random(&self) -> f64 {
        0.5
    }
}

impl Clock for Model {
    fn now_ms(&self) -> u64 {
        self.clock.get()
    }
    async fn sleep(&self, ms: u64) {
        self.clock.set(self.clock.get() + ms);
    }
}

/// The pipeline's ledger is the kit's twin.
impl SpendLedger for MemoryJobs {
    async fn reserve(
        &self,
        r: &Reservation,
        cap_usd: f64,
        expires_at_ms: u64,
        bound: Option<&JobBound>,
    ) -> AppResult<Result<(), Refused>> {
        self.check()?;
        self.ledger.reserve(r, cap_usd, expires_at_ms, bound).await
    }
    async fn settle_spend(&self, r: &Reservation, spent_usd: f64) -> AppResult<()> {
        self.ledger.settle_spend(r, spent_usd).await
    }
    async fn settle_job(
        &self,
        job_id: i64,
        tenant: &str,
        spent_usd: f64,
        today: &str,
    ) -> AppResult<()> {
        self.ledger
            .settle_job(job_id, tenant, spent_usd, today)
            .await
    }
    async fn release_expired(&self, now_ms: u64) -> AppResult<usize> {
        self.ledger.release_expired(now_ms).await
    }
    async fn day_spend(&self, tenant: &str, day: &str) -> AppResult<DaySpend> {
        self.ledger.day_spend(tenant, day).await
    }
}
