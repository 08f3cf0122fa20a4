//! Idempotent job creation on `granulation_jobs`: a request claims its
//! (client, execution id), replays a completed job, joins a running one, or
//! runs a failed or abandoned one again; its spend reservation is linked to
//! the run in the same batch.

use super::{i, on, ot, t, u, Database, Reservation, NOW};
use crate::types::job::{JobStatus, RunMode};
use crate::types::structure::StructureType;
use bitware_kit::error::{AppError, AppResult};
use serde::Deserialize;
use serde_json::Value;
use wasm_bindgen::JsValue;

/// When a claim is made: now, the stall period of a started run, and the
/// UTC day (what a stopped run's spend is booked on without a reservation).
#[derive(Debug, Clone, Copy)]
pub struct Moment<'a> {
    pub ms: u64,
    pub stall_ms: u64,
    pub today: &'a str,
}

pub struct NewJob<'a> {
    pub client_id: &'a str,
    pub execution_id: &'a str,
    pub topic: &'a str,
    pub structure_type: StructureType,
    pub granularity: u8,
    pub target_audience: &'a str,
    pub template_id: i64,
    pub template_name: &'a str,
    pub request_params: &'a str,
    pub deadline_at: u64,
    pub request_hash: &'a str,
    /// Runs now, in this request, or waits for the queue consumer.
    pub run_mode: RunMode,
    pub expected_tokens: u32,
    pub expected_elements: u32,
    /// The first provider and model of the run's chain, and its output
    /// price (USD per 1M tokens; `None` when unpriced): what the tokens of
    /// a run that stops without ending are booked at.
    pub planned: Option<PlannedCall<'a>>,
}

/// The call a run is expected to make first (its chain's first provider).
#[derive(Debug, Clone, Copy)]
pub struct PlannedCall<'a> {
    pub provider: &'a str,
    pub model: &'a str,
    pub output_price: Option<f64>,
}

#[derive(Debug)]
pub enum Claim {
    /// This request owns the job now (a new one, or a failed/abandoned one run again).
    /// `spent_usd` is what earlier runs of the job already cost: a re-run
    /// is charged against the same budget.
    Run {
        job_id: i64,
        run: u32,
        spent_usd: f64,
    },
    /// Completed before: replay what was returned then.
    Replay { job_id: i64, result: Value },
    /// Another request is running it.
    InProgress { job_id: i64 },
    /// The key was used for a different request.
    Mismatch { job_id: i64 },
    /// Cancelled: a repeated key answers the cancel, it never restarts a
    /// job someone stopped (a new key runs it again).
    Cancelled {
        job_id: i64,
        cancelled_by: Option<String>,
        cancelled_at: Option<String>,
    },
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
    /// failed, was abandoned past its deadline, or its started run wrote no
    /// heartbeat for `stall_ms` (its worker went away), so it may run again.
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

/// A started run whose last heartbeat is older than `stall_ms` has gone away.
/// A queued run not yet started (`None`) is the queue's to start, never stalled.
pub fn stalled(beat_at_ms: Option<u64>, now_ms: u64, stall_ms: u64) -> bool {
    beat_at_ms.is_some_and(|beat| beat.saturating_add(stall_ms) < now_ms)
}

/// SQL true of a `processing` row whose run stopped without ending: past its
/// deadline (`?now`), or started and silent since `?cutoff` (now less the
/// stall period). `{j}` is the row's alias; binds are named by the caller.
pub(super) fn stopped_sql(j: &str, now: &str, cutoff: &str) -> String {
    format!(
        "{j}.status = 'processing' AND ({j}.deadline_at < {now} OR \
         ({j}.started_at_ms IS NOT NULL AND coalesce({j}.heartbeat_at_ms, {j}.started_at_ms) < {cutoff}))"
    )
}

impl Database {
    /// Create the job, or find what became of an earlier request with the same key.
    /// The `UNIQUE (client_id, execution_id)` constraint makes concurrent duplicates safe.
    /// A run claimed here takes over `reservation` (its spend reservation) in
    /// the same batch, so its completion or failure settles it.
    pub async fn claim_job(
        &self,
        job: &NewJob<'_>,
        now: Moment<'_>,
        reservation: &Reservation,
    ) -> AppResult<Claim> {
        let now_ms = now.ms;
        #[derive(Deserialize)]
        struct Claimed {
            id: i64,
            run_count: u32,
            cost_usd: Option<f64>,
        }
        let insert = self.stmt(
            "INSERT INTO granulation_jobs (client_id, execution_id, topic, structure_type, granularity_level, target_audience, \
             template_id, template_name, request_params, deadline_at, request_hash, run_mode, expected_tokens, expected_elements, \
             submitted_at_ms, started_at_ms, heartbeat_at_ms, cost_usd, planned_provider, planned_model, planned_output_price) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, CASE WHEN ?12 = 'inline' THEN ?15 END, ?15, 0, ?16, ?17, ?18) \
             ON CONFLICT (client_id, execution_id) DO NOTHING RETURNING id, run_count, cost_usd",
            &Self::job_binds(job, now_ms),
        )?;
        // Only when the INSERT just before it created the job (not on a conflict).
        let link_new = self.stmt(
            "UPDATE spend_reservations SET job_id = last_insert_rowid() WHERE id = ?1 AND changes() = 1",
            &[t(&reservation.id)],
        )?;
        let created = self
            .batch("creating a job", vec![insert, link_new])
            .await?
            .into_iter()
            .next()
            .map(|r| r.results::<Claimed>())
            .transpose()
            .map_err(|e| AppError::database("creating a job", e))?
            .and_then(|rows| rows.into_iter().next());
        if let Some(c) = created {
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
        // Failed, or its run stopped (past its deadline, or silent for the
        // stall period): run it again, unless another request just did. What
        // a stopped run had streamed is booked and its reservations released
        // first, in the same batch, only if it is still stopped then.
        let cutoff = now_ms.saturating_sub(now.stall_ms);
        let mut statements =
            self.book_stopped_run(job_id, None, now_ms, cutoff, now.today, true)?;
        let mut binds = vec![i(job_id), u(now_ms)];
        binds.extend(Self::job_binds(job, now_ms).into_iter().skip(2));
        binds.push(u(cutoff));
        let reclaim = self.stmt(
            &format!(
                "UPDATE granulation_jobs SET status = 'processing', stage = 'generating', run_count = run_count + 1, topic = ?3, \
                 structure_type = ?4, granularity_level = ?5, target_audience = ?6, template_id = ?7, template_name = ?8, \
                 request_params = ?9, deadline_at = ?10, request_hash = ?11, run_mode = ?12, expected_tokens = ?13, \
                 expected_elements = ?14, submitted_at_ms = ?15, started_at_ms = CASE WHEN ?12 = 'inline' THEN ?15 END, \
                 heartbeat_at_ms = ?15, progress_tokens = 0, progress_elements = 0, progress_branches_done = 0, progress_branches_total = 0, failure_code = NULL, failure_reason = NULL, provider = NULL, model = NULL, \
                 quality_score = NULL, validation_passed = NULL, completed_at = NULL, planned_provider = ?16, planned_model = ?17, \
                 planned_output_price = ?18, updated_at = {NOW} \
                 WHERE id = ?1 AND (status = 'failed' OR ({stopped})) RETURNING id, run_count, cost_usd",
                stopped = stopped_sql("granulation_jobs", "?2", "?19")
            ),
            &binds,
        )?;
        let link_rerun = self.stmt(
            "UPDATE spend_reservations SET job_id = ?2 WHERE id = ?1 AND changes() = 1",
            &[t(&reservation.id), i(job_id)],
        )?;
        let reclaim_at = statements.len();
        statements.extend([reclaim, link_rerun]);
        let rerun = self
            .batch("re-running a job", statements)
            .await?
            .into_iter()
            .nth(reclaim_at)
            .map(|r| r.results::<Claimed>())
            .transpose()
            .map_err(|e| AppError::database("re-running a job", e))?
            .and_then(|rows| rows.into_iter().next());
        match rerun {
            Some(c) => Ok(Claim::Run {
                job_id,
                run: c.run_count,
                spent_usd: c.cost_usd.unwrap_or(0.0),
            }),
            None => Ok(Claim::InProgress { job_id }),
        }
    }

    /// The stored response of a completed job, by its idempotency key.
    pub async fn completed_result(
        &self,
        client_id: &str,
        execution_id: &str,
    ) -> AppResult<Option<Value>> {
        #[derive(Deserialize)]
        struct Stored {
            result_json: String,
        }
        let stmt = self.stmt(
            "SELECT result_json FROM granulation_jobs WHERE client_id = ?1 AND execution_id = ?2 AND status = 'completed'",
            &[t(client_id), t(execution_id)],
        )?;
        let stored: Option<Stored> = self.first("reading a completed job", stmt).await?;
        Ok(stored.and_then(|s| serde_json::from_str(&s.result_json).ok()))
    }

    /// What became of an earlier request under this key, without claiming
    /// anything: a completed job's result or a running job to join (when the
    /// request hash matches), else `None`.
    pub async fn existing_claim(
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

    /// The job an idempotency key (client, execution id) already names.
    async fn existing_job(&self, job: &NewJob<'_>) -> AppResult<Option<ExistingJob>> {
        let lookup = self.stmt(
            "SELECT id, status, deadline_at, result_json, request_hash, cancelled_by, cancelled_at, \
             CASE WHEN started_at_ms IS NOT NULL THEN coalesce(heartbeat_at_ms, started_at_ms) END AS beat_at_ms \
             FROM granulation_jobs WHERE client_id = ?1 AND execution_id = ?2",
            &[t(job.client_id), t(job.execution_id)],
        )?;
        self.first("reading a job", lookup).await
    }

    fn job_binds(job: &NewJob<'_>, now_ms: u64) -> Vec<JsValue> {
        vec![
            t(job.client_id),
            t(job.execution_id),
            t(job.topic),
            t(job.structure_type.as_str()),
            u(job.granularity as u64),
            t(job.target_audience),
            i(job.template_id),
            t(job.template_name),
            t(job.request_params),
            u(job.deadline_at),
            t(job.request_hash),
            t(job.run_mode.as_str()),
            u(job.expected_tokens as u64),
            u(job.expected_elements as u64),
            u(now_ms),
            ot(job.planned.map(|p| p.provider)),
            ot(job.planned.map(|p| p.model)),
            on(job.planned.and_then(|p| p.output_price)),
        ]
    }
}
