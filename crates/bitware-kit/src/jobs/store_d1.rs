//! The job store on D1 (`jobs::store` has the rules): the worker's job
//! table and attempts table as its [`JobSchema`] names them. Every ending
//! (completion, failure, the settling of a cancel) is one guarded batch
//! with the spend it settles and, through `complete_with` / `fail_with`,
//! the worker's own statements: it writes everything or, when the run no
//! longer owns the job, nothing (`endings_d1.rs`). Runs that stop are booked
//! and guarded in `stopped_d1.rs`.

use super::ledger_d1::D1Ledger;
use super::spend::Reservation;
use super::stopped_d1::stopped_sql;
use super::store::{
    stalled, CancelledRun, Claim, Column, Completion, Failure, JobSchema, JobState, JobStatus,
    JobStore, Moment, NewJob, StoredJob,
};
use crate::ai::progress::ProgressWrite;
use crate::ai::Attempt;
use crate::d1::bind::{flag, i, n, on, ot, t, u};
use crate::d1::{batch_rows, changes, D1, NOW};
use crate::error::{AppError, AppResult};
use serde::Deserialize;
use serde_json::Value;
use worker::wasm_bindgen::JsValue;

/// The job store on a worker's D1.
pub struct D1Jobs<'a> {
    pub db: &'a D1,
    pub schema: JobSchema,
}

/// The job an earlier request with the same key created.
#[derive(Deserialize)]
struct ExistingJob {
    id: i64,
    status: JobStatus,
    deadline_at: u64,
    result_json: Option<String>,
    request_hash: Option<String>,
    /// The last sign of life of its run (`None` until a runner started it).
    beat_at_ms: Option<u64>,
    #[serde(default)]
    cancelled_by: Option<String>,
    #[serde(default)]
    cancelled_at: Option<String>,
}

impl ExistingJob {
    /// What it means for a new request with the same key; `None` when it
    /// failed, or its run stopped, so it may run again.
    fn claim(self, job: &NewJob<'_>, now_ms: u64, stall_ms: u64) -> AppResult<Option<Claim>> {
        let job_id = self.id;
        // Rows older than the hash column match anything (NULL).
        if self
            .request_hash
            .as_deref()
            .is_some_and(|h| h != job.request_hash)
        {
            return Ok(Some(Claim::Mismatch { job_id }));
        }
        match self.status {
            JobStatus::Completed => {
                let result = self
                    .result_json
                    .as_deref()
                    .and_then(|r| serde_json::from_str(r).ok())
                    .ok_or_else(|| AppError::internal("a completed job has no stored result"))?;
                Ok(Some(Claim::Replay { job_id, result }))
            }
            JobStatus::Cancelled => Ok(Some(Claim::Cancelled {
                job_id,
                cancelled_by: self.cancelled_by,
                cancelled_at: self.cancelled_at,
            })),
            JobStatus::Processing
                if self.deadline_at >= now_ms && !stalled(self.beat_at_ms, now_ms, stall_ms) =>
            {
                Ok(Some(Claim::InProgress { job_id }))
            }
            _ => Ok(None),
        }
    }
}

#[derive(Deserialize)]
struct Claimed {
    run_count: u32,
    cost_usd: Option<f64>,
    id: i64,
}

/// A worker column's value as D1 binds it (objects and arrays as JSON text).
pub(super) fn value(v: &Value) -> JsValue {
    match v {
        Value::Null => JsValue::NULL,
        Value::Bool(b) => flag(*b),
        Value::Number(x) => x.as_f64().map_or(JsValue::NULL, n),
        Value::String(s) => t(s),
        other => t(&other.to_string()),
    }
}

/// `, a = ?k, b = ?k+1` for the worker's columns bound from `?first` on.
pub(super) fn set_columns(columns: &[Column<'_>], first: usize) -> String {
    columns
        .iter()
        .enumerate()
        .map(|(k, (name, _))| format!(", {name} = ?{}", first + k))
        .collect()
}

impl<'a> D1Jobs<'a> {
    pub fn new(db: &'a D1, schema: JobSchema) -> D1Jobs<'a> {
        D1Jobs { db, schema }
    }

    pub(super) fn ledger(&self) -> D1Ledger<'a> {
        D1Ledger::new(self.db, self.schema)
    }

    /// The job an idempotency key (client, execution id) already names.
    async fn existing_job(&self, job: &NewJob<'_>) -> AppResult<Option<ExistingJob>> {
        let lookup = self.db.stmt(
            &format!(
                "SELECT id, status, deadline_at, result_json, request_hash, cancelled_by, cancelled_at, \
                 CASE WHEN started_at_ms IS NOT NULL THEN coalesce(heartbeat_at_ms, started_at_ms) END AS beat_at_ms \
                 FROM {} WHERE client_id = ?1 AND execution_id = ?2",
                self.schema.jobs
            ),
            &[t(job.client_id), t(job.execution_id)],
        )?;
        self.db.first("reading a job", lookup).await
    }

    /// Binds shared by a claim's insert and a re-run's update, from `?first`.
    fn run_binds(&self, job: &NewJob<'_>) -> Vec<JsValue> {
        vec![
            t(job.request_params),
            u(job.deadline_at),
            t(job.request_hash),
            t(job.run_mode.as_str()),
            u(u64::from(job.expected_tokens)),
            u(u64::from(job.expected_elements)),
            ot(job.planned.map(|p| p.provider)),
            ot(job.planned.map(|p| p.model)),
            on(job.planned.and_then(|p| p.output_price)),
            t(self.schema.first_stage),
        ]
    }
}

impl JobStore for D1Jobs<'_> {
    async fn completed_result(
        &self,
        client_id: &str,
        execution_id: &str,
    ) -> AppResult<Option<Value>> {
        #[derive(Deserialize)]
        struct Stored {
            result_json: String,
        }
        let stmt = self.db.stmt(
            &format!(
                "SELECT result_json FROM {} WHERE client_id = ?1 AND execution_id = ?2 AND status = 'completed'",
                self.schema.jobs
            ),
            &[t(client_id), t(execution_id)],
        )?;
        let stored: Option<Stored> = self.db.first("reading a completed job", stmt).await?;
        Ok(stored.and_then(|s| serde_json::from_str(&s.result_json).ok()))
    }

    async fn claim_job(
        &self,
        job: &NewJob<'_>,
        now: Moment<'_>,
        reservation: &Reservation,
    ) -> AppResult<Claim> {
        let jobs = self.schema.jobs;
        let now_ms = now.ms;
        // ?1 client, ?2 execution id, ?3 now, ?4..?13 the run's, ?14.. the worker's.
        let mut binds = vec![t(job.client_id), t(job.execution_id), u(now_ms)];
        binds.extend(self.run_binds(job));
        binds.extend(job.columns.iter().map(|(_, v)| value(v)));
        let names: String = job.columns.iter().map(|(c, _)| format!(", {c}")).collect();
        let values: String = (0..job.columns.len())
            .map(|k| format!(", ?{}", 14 + k))
            .collect();
        let insert = self.db.stmt(
            &format!(
                "INSERT INTO {jobs} (client_id, execution_id, request_params, deadline_at, request_hash, run_mode, \
                 expected_tokens, expected_elements, planned_provider, planned_model, planned_output_price, stage, \
                 submitted_at_ms, started_at_ms, heartbeat_at_ms, cost_usd{names}) \
                 VALUES (?1, ?2, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?3, CASE WHEN ?7 = 'inline' THEN ?3 END, ?3, 0{values}) \
                 ON CONFLICT (client_id, execution_id) DO NOTHING RETURNING id, run_count, cost_usd"
            ),
            &binds,
        )?;
        // Only when the INSERT just before it created the job (not on a conflict).
        let link_new = self.db.stmt(
            "UPDATE spend_reservations SET job_id = last_insert_rowid() WHERE id = ?1 AND changes() = 1",
            &[t(&reservation.id)],
        )?;
        let results = self
            .db
            .batch("creating a job", vec![insert, link_new])
            .await?;
        if let Some(c) = batch_rows::<Claimed>("creating a job", results.first())?
            .into_iter()
            .next()
        {
            return Ok(Claim::Run {
                job_id: c.id,
                run: c.run_count,
                spent_usd: c.cost_usd.unwrap_or(0.0),
            });
        }
        let existing = self
            .existing_job(job)
            .await?
            .ok_or_else(|| AppError::internal("the conflicting job vanished"))?;
        let job_id = existing.id;
        if let Some(claim) = existing.claim(job, now_ms, now.stall_ms)? {
            return Ok(claim);
        }
        // Failed, or its run stopped: run it again, unless another request
        // just did. What a stopped run had streamed is booked and its
        // reservations released first, in the same batch, only if it is
        // still stopped then.
        let cutoff = now_ms.saturating_sub(now.stall_ms);
        let mut statements =
            self.book_stopped_run(job_id, None, now_ms, cutoff, now.today, true)?;
        // ?1 job, ?2 now, ?3 cutoff, ?4..?13 the run's, ?14.. the worker's.
        let mut binds = vec![i(job_id), u(now_ms), u(cutoff)];
        binds.extend(self.run_binds(job));
        binds.extend(job.columns.iter().map(|(_, v)| value(v)));
        let reclaim = self.db.stmt(
            &format!(
                "UPDATE {jobs} SET status = 'processing', stage = ?13, run_count = run_count + 1, \
                 request_params = ?4, deadline_at = ?5, request_hash = ?6, run_mode = ?7, expected_tokens = ?8, \
                 expected_elements = ?9, planned_provider = ?10, planned_model = ?11, planned_output_price = ?12, \
                 submitted_at_ms = ?2, started_at_ms = CASE WHEN ?7 = 'inline' THEN ?2 END, heartbeat_at_ms = ?2, \
                 progress_tokens = 0, progress_elements = 0, progress_branches_done = 0, progress_branches_total = 0, \
                 failure_code = NULL, failure_reason = NULL, provider = NULL, model = NULL, completed_at = NULL, \
                 updated_at = {NOW}{} WHERE id = ?1 AND (status = 'failed' OR ({})) RETURNING id, run_count, cost_usd",
                set_columns(job.columns, 14),
                stopped_sql(jobs, "?2", "?3")
            ),
            &binds,
        )?;
        let link_rerun = self.db.stmt(
            "UPDATE spend_reservations SET job_id = ?2 WHERE id = ?1 AND changes() = 1",
            &[t(&reservation.id), i(job_id)],
        )?;
        let reclaim_at = statements.len();
        statements.extend([reclaim, link_rerun]);
        let results = self.db.batch("re-running a job", statements).await?;
        match batch_rows::<Claimed>("re-running a job", results.get(reclaim_at))?
            .into_iter()
            .next()
        {
            Some(c) => Ok(Claim::Run {
                job_id,
                run: c.run_count,
                spent_usd: c.cost_usd.unwrap_or(0.0),
            }),
            None => Ok(Claim::InProgress { job_id }),
        }
    }

    async fn existing_claim(
        &self,
        job: &NewJob<'_>,
        now_ms: u64,
        stall_ms: u64,
    ) -> AppResult<Option<Claim>> {
        match self.existing_job(job).await? {
            Some(existing) => existing.claim(job, now_ms, stall_ms),
            None => Ok(None),
        }
    }

    async fn stored_job(&self, job_id: i64) -> AppResult<Option<StoredJob>> {
        #[derive(Deserialize)]
        struct Row {
            client_id: String,
            execution_id: String,
            cost_usd: Option<f64>,
            request_params: String,
            deadline_at: u64,
        }
        let stmt = self.db.stmt(
            &format!(
                "SELECT client_id, execution_id, cost_usd, request_params, deadline_at FROM {} WHERE id = ?1",
                self.schema.jobs
            ),
            &[i(job_id)],
        )?;
        let row: Option<Row> = self.db.first("reading a stored job", stmt).await?;
        Ok(row.map(|r| StoredJob {
            client_id: r.client_id,
            execution_id: r.execution_id,
            cost_usd: r.cost_usd,
            request_params: r.request_params,
            deadline_at: r.deadline_at,
        }))
    }

    async fn job_state(&self, job_id: i64) -> AppResult<Option<JobState>> {
        let stmt = self.db.stmt(
            &format!(
                "SELECT status, failure_code, failure_reason, CASE WHEN status = 'completed' THEN result_json END AS result_json, \
                 cancelled_by FROM {} WHERE id = ?1",
                self.schema.jobs
            ),
            &[i(job_id)],
        )?;
        self.db.first("reading a job's state", stmt).await
    }

    async fn start_queued(&self, job_id: i64, run: u32, now: Moment<'_>) -> AppResult<Option<u32>> {
        #[derive(Deserialize)]
        struct Started {
            run_count: u32,
        }
        let cutoff = now.ms.saturating_sub(now.stall_ms);
        // Only a started run silent since the cutoff is booked (a deadline
        // of 0 is never passed: the sweep, not the queue, ends late runs).
        let mut statements =
            self.book_stopped_run(job_id, Some(run), 0, cutoff, now.today, false)?;
        let take_at = statements.len();
        statements.push(self.db.stmt(
            &format!(
                "UPDATE {} SET run_count = run_count + CASE WHEN started_at_ms IS NULL THEN 0 ELSE 1 END, \
                 started_at_ms = ?3, heartbeat_at_ms = ?3, progress_tokens = 0, progress_elements = 0, \
                 progress_branches_done = 0, progress_branches_total = 0, \
                 updated_at = {NOW} WHERE id = ?1 AND run_count = ?2 AND status = 'processing' \
                 AND (started_at_ms IS NULL OR coalesce(heartbeat_at_ms, started_at_ms) < ?4) RETURNING run_count",
                self.schema.jobs
            ),
            &[i(job_id), u(u64::from(run)), u(now.ms), u(cutoff)],
        )?);
        let results = self.db.batch("starting a queued job", statements).await?;
        Ok(
            batch_rows::<Started>("starting a queued job", results.get(take_at))?
                .into_iter()
                .next()
                .map(|s| s.run_count),
        )
    }

    async fn set_stage(&self, job_id: i64, run: u32, stage: &str, now_ms: u64) -> AppResult<()> {
        let stmt = self.db.stmt(
            &format!(
                "UPDATE {} SET stage = ?2, heartbeat_at_ms = ?3, updated_at = {NOW} \
                 WHERE id = ?1 AND status = 'processing' AND run_count = ?4",
                self.schema.jobs
            ),
            &[i(job_id), t(stage), u(now_ms), u(u64::from(run))],
        )?;
        self.db
            .run("updating a job's stage", stmt)
            .await
            .map(|_| ())
    }

    async fn write_progress(
        &self,
        job_id: i64,
        run: u32,
        p: &ProgressWrite,
        now_ms: u64,
    ) -> AppResult<bool> {
        let stmt = self.db.stmt(
            &format!(
                "UPDATE {} SET progress_tokens = ?2, progress_elements = ?3, heartbeat_at_ms = ?4, \
                 progress_branches_done = ?5, progress_branches_total = ?6, updated_at = {NOW} \
                 WHERE id = ?1 AND status = 'processing' AND run_count = ?7",
                self.schema.jobs
            ),
            &[
                i(job_id),
                u(p.tokens),
                u(p.elements),
                u(now_ms),
                u(p.branches_done),
                u(p.branches_total),
                u(u64::from(run)),
            ],
        )?;
        Ok(self.db.run("writing a job's progress", stmt).await? > 0)
    }

    async fn complete_job(&self, c: &Completion<'_>) -> AppResult<bool> {
        self.complete_with(c, Vec::new()).await
    }

    async fn fail_job(&self, f: &Failure<'_>) -> AppResult<bool> {
        self.fail_with(f, Vec::new()).await
    }

    async fn fail_run(&self, job_id: i64, run: u32, code: &str, reason: &str) -> AppResult<bool> {
        let jobs = self.schema.jobs;
        // The run made no model call: its reservation is released, nothing booked.
        let statements = vec![
            self.db.stmt(
                &format!(
                    "UPDATE {jobs} SET status = 'failed', stage = 'failed', failure_code = ?3, failure_reason = ?4, \
                     updated_at = {NOW} WHERE id = ?1 AND run_count = ?2 AND status = 'processing'"
                ),
                &[i(job_id), u(u64::from(run)), t(code), t(reason)],
            )?,
            self.db.stmt(
                &format!(
                    "UPDATE tenant_daily_spend SET reserved_usd = max(0, reserved_usd - \
                     (SELECT coalesce(sum(r.amount_usd), 0) FROM spend_reservations r WHERE r.job_id = ?1 \
                      AND r.tenant = tenant_daily_spend.tenant AND r.day = tenant_daily_spend.day)), updated_at = {NOW} \
                     WHERE EXISTS (SELECT 1 FROM spend_reservations r WHERE r.job_id = ?1 \
                      AND r.tenant = tenant_daily_spend.tenant AND r.day = tenant_daily_spend.day) \
                     AND (SELECT status FROM {jobs} WHERE id = ?1) = 'failed'"
                ),
                &[i(job_id)],
            )?,
            self.db.stmt(
                &format!(
                    "DELETE FROM spend_reservations WHERE job_id = ?1 \
                     AND (SELECT status FROM {jobs} WHERE id = ?1) = 'failed'"
                ),
                &[i(job_id)],
            )?,
        ];
        let results = self.db.batch("failing a run", statements).await?;
        Ok(changes(results.first()) > 0)
    }

    async fn cancel_job(&self, job_id: i64, by: &str, now: Moment<'_>) -> AppResult<bool> {
        let jobs = self.schema.jobs;
        let cutoff = now.ms.saturating_sub(now.stall_ms);
        // A job cancelled before any run started it (queued): nothing will
        // settle it but this batch.
        let unstarted = format!(
            "EXISTS (SELECT 1 FROM {jobs} j WHERE j.id = ?1 AND j.status = 'cancelled' \
             AND j.started_at_ms IS NULL AND j.completed_at IS NULL)"
        );
        // A run that had stopped (past its deadline, or silent for the stall
        // period) is booked at what it streamed and settled here too.
        let mut statements =
            self.book_stopped_run(job_id, None, now.ms, cutoff, now.today, true)?;
        let cancel_at = statements.len();
        statements.push(self.db.stmt(
            &format!(
                "UPDATE {jobs} SET status = 'cancelled', stage = 'cancelled', cancelled_by = ?2, \
                 cancelled_at = {NOW}, updated_at = {NOW}, \
                 completed_at = CASE WHEN {stopped} THEN {NOW} END \
                 WHERE id = ?1 AND status = 'processing'",
                stopped = stopped_sql(jobs, "?3", "?4")
            ),
            &[i(job_id), t(by), u(now.ms), u(cutoff)],
        )?);
        statements.extend([
            self.db.stmt(
                &format!(
                    "UPDATE tenant_daily_spend SET reserved_usd = max(0, reserved_usd - \
                     (SELECT coalesce(sum(r.amount_usd), 0) FROM spend_reservations r WHERE r.job_id = ?1 \
                      AND r.tenant = tenant_daily_spend.tenant AND r.day = tenant_daily_spend.day)), updated_at = {NOW} \
                     WHERE EXISTS (SELECT 1 FROM spend_reservations r WHERE r.job_id = ?1 \
                      AND r.tenant = tenant_daily_spend.tenant AND r.day = tenant_daily_spend.day) \
                     AND {unstarted}"
                ),
                &[i(job_id)],
            )?,
            self.db.stmt(
                &format!("DELETE FROM spend_reservations WHERE job_id = ?1 AND {unstarted}"),
                &[i(job_id)],
            )?,
            self.db.stmt(
                &format!(
                    "UPDATE {jobs} SET completed_at = {NOW}, processing_time_ms = 0 WHERE id = ?1 \
                     AND status = 'cancelled' AND started_at_ms IS NULL AND completed_at IS NULL"
                ),
                &[i(job_id)],
            )?,
        ]);
        let results = self.db.batch("cancelling a job", statements).await?;
        Ok(changes(results.get(cancel_at)) > 0)
    }

    async fn settle_cancelled(&self, c: &CancelledRun<'_>) -> AppResult<()> {
        let jobs = self.schema.jobs;
        let mut statements = Vec::new();
        if !c.attempts.is_empty() {
            statements.push(self.attempts_statement(c.job_id, c.client_id, c.attempts)?);
        }
        statements.extend(self.ledger().settle_job_statements(
            c.job_id,
            c.client_id,
            c.cost_usd.unwrap_or(0.0),
            c.date,
        )?);
        statements.push(self.db.stmt(
            &format!(
                "UPDATE {jobs} SET provider = coalesce(?2, provider), model = coalesce(?3, model), \
                 tokens_input = tokens_input + ?4, tokens_output = tokens_output + ?5, tokens_cached = tokens_cached + ?6, \
                 cost_usd = cost_usd + ?7, processing_time_ms = ?8, completed_at = {NOW}, updated_at = {NOW} \
                 WHERE id = ?1 AND status = 'cancelled' AND completed_at IS NULL"
            ),
            &[
                i(c.job_id),
                ot(c.provider),
                ot(c.model),
                u(c.usage.input),
                u(c.usage.output),
                u(c.usage.cached),
                on(c.cost_usd),
                u(c.processing_time_ms),
            ],
        )?);
        // Once, and only by the run the job had when it was cancelled.
        let settles = format!(
            "EXISTS (SELECT 1 FROM {jobs} WHERE id = ?1 AND run_count = ?2 \
             AND status = 'cancelled' AND completed_at IS NULL)"
        );
        let binds = [i(c.job_id), u(u64::from(c.run))];
        self.db
            .guarded_batch("settling a cancelled job", &settles, &binds, statements)
            .await
            .map(|_| ())
    }

    async fn record_attempts(
        &self,
        job_id: i64,
        client_id: &str,
        attempts: &[Attempt],
    ) -> AppResult<()> {
        self.record_attempts_settling(job_id, client_id, attempts, None)
            .await
    }

    async fn fail_abandoned_jobs(&self, now_ms: u64, today: &str, limit: u32) -> AppResult<usize> {
        #[derive(Deserialize)]
        struct Stopped {
            id: i64,
        }
        let jobs = self.schema.jobs;
        let stmt = self.db.stmt(
            &format!(
                "SELECT id FROM {jobs} WHERE status = 'processing' AND deadline_at < ?1 ORDER BY id LIMIT ?2"
            ),
            &[u(now_ms), u(u64::from(limit))],
        )?;
        let stopped: Vec<Stopped> = self.db.all("finding abandoned jobs", stmt).await?;
        let mut ended = 0;
        for job in stopped {
            // The deadline alone decides here (a cutoff of 0 matches no heartbeat).
            let mut statements = self.book_stopped_run(job.id, None, now_ms, 0, today, false)?;
            statements.push(self.db.stmt(
                &format!(
                    "UPDATE {jobs} SET status = 'failed', stage = 'failed', failure_code = 'abandoned', \
                     failure_reason = 'the run stopped before finishing (its worker went away); send the request again to retry', \
                     updated_at = {NOW} WHERE id = ?1 AND status = 'processing' AND deadline_at < ?2"
                ),
                &[i(job.id), u(now_ms)],
            )?);
            let results = self
                .db
                .batch("failing an abandoned job", statements)
                .await?;
            ended += changes(results.last());
        }
        Ok(ended)
    }
}
