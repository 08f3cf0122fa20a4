//! Runs that stop without ending (their worker went away: an evicted
//! isolate, a crash, a reset after a panic). Such a run is ended by the
//! sweep once past its deadline, or taken over before that by a request with
//! its key or by the queue once it wrote no heartbeat for the stall period.
//! Either way, what it had streamed (its last recorded output tokens, at the
//! output price planned when it was claimed) is booked first as one
//! `abandoned` attempt: on the job, its payer's day, and the attempts ledger.
//! A run is a guarded unit: whatever it does after it was ended or taken
//! over is refused (`guarded_batch`), so nothing is booked twice.

use super::claims::stopped_sql;
use super::{i, t, u, Database, NOW};
use bitware_kit::error::{AppError, AppResult};
use serde::Deserialize;
use wasm_bindgen::JsValue;
use worker::D1PreparedStatement;

/// What the attempt booked for a stopped run says (our words; no provider text).
pub const STOPPED_RUN_NOTE: &str =
    "estimated: the run stopped before finishing (its worker went away); \
     booked at the tokens it had streamed, its prompt not counted";

impl Database {
    /// The statements booking what the stopped run of job `job_id` had
    /// streamed, each a no-op unless the job is still `processing` with its
    /// run stopped (past its deadline at `now_ms`, or started and silent
    /// since `cutoff_ms`). `release` also gives back the run's open
    /// reservations (a takeover that reserved anew); otherwise they stay for
    /// the run that follows, or for the sweep of expired ones.
    pub(super) fn book_stopped_run(
        &self,
        job_id: i64,
        run: Option<u32>,
        now_ms: u64,
        cutoff_ms: u64,
        today: &str,
        release: bool,
    ) -> AppResult<Vec<D1PreparedStatement>> {
        // `?5`: only that run (the queue's message names one), or any (NULL).
        let this_run = "(?5 IS NULL OR j.run_count = ?5)";
        let stopped = format!(
            "EXISTS (SELECT 1 FROM granulation_jobs j WHERE j.id = ?1 AND {this_run} AND {})",
            stopped_sql("j", "?2", "?3")
        );
        // NULL when the planned model is unpriced (an unknown cost, never 0).
        let estimate = "(SELECT CASE WHEN j.progress_tokens > 0 AND j.planned_provider IS NOT NULL \
             THEN j.progress_tokens * j.planned_output_price / 1000000.0 ELSE 0 END FROM granulation_jobs j WHERE j.id = ?1)";
        let payer = "coalesce((SELECT min(tenant) FROM spend_reservations WHERE job_id = ?1), \
             (SELECT client_id FROM granulation_jobs WHERE id = ?1))";
        let day = "coalesce((SELECT min(day) FROM spend_reservations WHERE job_id = ?1), ?4)";
        let released = if release {
            "reserved_usd = max(0, reserved_usd - coalesce((SELECT sum(amount_usd) FROM spend_reservations WHERE job_id = ?1), 0)), "
        } else {
            ""
        };
        // Every statement names `?5` (in its condition), so each takes all
        // five parameters (D1 counts up to the highest one named).
        let run = run.map_or(JsValue::NULL, |r| u(u64::from(r)));
        let binds = [i(job_id), u(now_ms), u(cutoff_ms), t(today), run];
        let mut statements = vec![
            self.stmt(
                &format!(
                    "INSERT INTO resource_consumption (job_id, client_id, provider, model, purpose, status, latency_ms, \
                     tokens_output, cost_usd, error) \
                     SELECT j.id, j.client_id, j.planned_provider, j.planned_model, 'granulate', 'abandoned', \
                     max(0, coalesce(j.heartbeat_at_ms, j.started_at_ms, ?2) - coalesce(j.started_at_ms, j.submitted_at_ms, ?2)), \
                     j.progress_tokens, j.progress_tokens * j.planned_output_price / 1000000.0, '{STOPPED_RUN_NOTE}' \
                     FROM granulation_jobs j WHERE j.id = ?1 AND j.progress_tokens > 0 \
                     AND j.planned_provider IS NOT NULL AND j.planned_model IS NOT NULL AND {this_run} AND {}",
                    stopped_sql("j", "?2", "?3")
                ),
                &binds,
            )?,
            self.stmt(
                &format!(
                    "INSERT INTO tenant_daily_spend (tenant, day) SELECT {payer}, {day} WHERE {stopped} \
                     ON CONFLICT (tenant, day) DO NOTHING"
                ),
                &binds,
            )?,
            self.stmt(
                &format!(
                    "UPDATE tenant_daily_spend SET {released}spent_usd = spent_usd + coalesce({estimate}, 0), \
                     updated_at = {NOW} WHERE tenant = {payer} AND day = {day} AND {stopped}"
                ),
                &binds,
            )?,
        ];
        if release {
            statements.push(self.stmt(
                &format!("DELETE FROM spend_reservations WHERE job_id = ?1 AND {stopped}"),
                &binds,
            )?);
        }
        // Last: the job's own totals (the condition above reads its row).
        statements.push(self.stmt(
            &format!(
                "UPDATE granulation_jobs SET tokens_output = tokens_output + \
                 CASE WHEN planned_provider IS NOT NULL THEN progress_tokens ELSE 0 END, \
                 cost_usd = cost_usd + {estimate}, progress_tokens = 0, updated_at = {NOW} WHERE id = ?1 AND {stopped}"
            ),
            &binds,
        )?);
        Ok(statements)
    }

    /// End runs still `processing` past their deadline (their worker went
    /// away): each is booked at what it had streamed, then `failed`
    /// (`abandoned`), so nothing stays in flight. At most `limit` a sweep.
    pub async fn fail_abandoned_jobs(
        &self,
        now_ms: u64,
        today: &str,
        limit: u32,
    ) -> AppResult<usize> {
        #[derive(Deserialize)]
        struct Stopped {
            id: i64,
        }
        let stmt = self.stmt(
            "SELECT id FROM granulation_jobs WHERE status = 'processing' AND deadline_at < ?1 ORDER BY id LIMIT ?2",
            &[u(now_ms), u(u64::from(limit))],
        )?;
        let stopped: Vec<Stopped> = self.all("finding abandoned jobs", stmt).await?;
        let mut ended = 0;
        for job in stopped {
            // The deadline alone decides here (a cutoff of 0 matches no heartbeat).
            let mut statements = self.book_stopped_run(job.id, None, now_ms, 0, today, false)?;
            statements.push(self.stmt(
                &format!(
                    "UPDATE granulation_jobs SET status = 'failed', stage = 'failed', failure_code = 'abandoned', \
                     failure_reason = 'the run stopped before finishing (its worker went away); send the request again to retry', \
                     updated_at = {NOW} WHERE id = ?1 AND status = 'processing' AND deadline_at < ?2"
                ),
                &[i(job.id), u(now_ms)],
            )?);
            let results = self.batch("failing an abandoned job", statements).await?;
            ended += super::changes(results.last());
        }
        Ok(ended)
    }

    /// Run a batch that ends run `run` of job `job_id` only while that run
    /// owns the job (`processing` under that run number): `Ok(false)`,
    /// nothing written, when it no longer does.
    pub(super) async fn ending_batch(
        &self,
        context: &str,
        job_id: i64,
        run: u32,
        statements: Vec<D1PreparedStatement>,
    ) -> AppResult<bool> {
        let owns = "EXISTS (SELECT 1 FROM granulation_jobs WHERE id = ?1 AND run_count = ?2 \
             AND status = 'processing')";
        self.guarded_batch(context, owns, &[i(job_id), u(u64::from(run))], statements)
            .await
    }
}

/// The error a run gets when it tries to end a job it no longer owns (a
/// request or the queue took it over, or the sweep ended it): nothing it
/// made is stored; the job goes on, or ended, without it.
pub fn run_superseded(job_id: i64, run: u32) -> AppError {
    AppError::new(
        bitware_kit::error::Kind::Conflict,
        "run_superseded",
        format!(
            "run {run} of job {job_id} was taken over or ended while it ran (no heartbeat for the stall period, \
             or past its deadline); follow statusUrl for the job's result"
        ),
    )
    .with_details(serde_json::json!({"jobId": job_id, "statusUrl": format!("/api/jobs/{job_id}/status")}))
}
