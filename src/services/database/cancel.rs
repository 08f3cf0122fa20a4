//! A job's cancel. The route records it: only a `processing` job becomes
//! `cancelled` (the guard), and a queued job no consumer has started gives
//! its reservation back at once (nothing ran). A started run sees the cancel
//! and records what it spent (`settle_cancelled`): its attempts, its usage on
//! the job, and its reservation settled to that spend, once.
//!
//! The schema's trigger `job_final_states_are_final` keeps a cancelled job
//! cancelled: a completion racing the cancel fails as a whole (elements,
//! attempts, analytics and spend with it) and the run settles it here instead.

use super::claims::{stopped_sql, Moment};
use super::{i, on, ot, t, u, Database, NOW};
use crate::services::ai_provider::Attempt;
use crate::types::pricing::TokenUsage;
use bitware_kit::error::AppResult;

/// What the stopped run of a cancelled job spent.
pub struct CancelledRun<'a> {
    pub job_id: i64,
    /// The run that stopped: it settles only if it was the job's run when
    /// the cancel came (a run taken over before that settles nothing).
    pub run: u32,
    pub client_id: &'a str,
    pub provider: Option<&'a str>,
    pub model: Option<&'a str>,
    pub usage: TokenUsage,
    pub cost_usd: Option<f64>,
    pub processing_time_ms: u64,
    pub attempts: &'a [Attempt],
    /// Today (UTC), for spend whose reservation the sweep released already.
    pub date: &'a str,
}

/// A queued job no consumer has started, cancelled and not yet settled.
const UNSTARTED_CANCELLED: &str =
    "EXISTS (SELECT 1 FROM granulation_jobs j WHERE j.id = ?1 AND j.status = 'cancelled' \
     AND j.started_at_ms IS NULL AND j.completed_at IS NULL)";

impl Database {
    /// Cancel job `job_id` for `by` (a principal's label) if it is still
    /// `processing`; `true` when this call cancelled it. One batch, so a queued
    /// job's reservation is released in the same transaction as its cancel.
    /// A started run that stopped without ending (past its deadline, or no
    /// heartbeat since `now.stall_ms`) will never settle: what it streamed is
    /// booked and its reservations released here, and the job is settled.
    pub async fn cancel_job(&self, job_id: i64, by: &str, now: Moment<'_>) -> AppResult<bool> {
        let cutoff = now.ms.saturating_sub(now.stall_ms);
        let mut statements =
            self.book_stopped_run(job_id, None, now.ms, cutoff, now.today, true)?;
        let cancel_at = statements.len();
        // SET reads the row as it was: a stopped run's job is settled now.
        statements.push(self.stmt(
            &format!(
                "UPDATE granulation_jobs SET status = 'cancelled', stage = 'cancelled', cancelled_by = ?2, \
                 cancelled_at = {NOW}, updated_at = {NOW}, \
                 completed_at = CASE WHEN {stopped} THEN {NOW} END \
                 WHERE id = ?1 AND status = 'processing'",
                stopped = stopped_sql("granulation_jobs", "?3", "?4")
            ),
            &[i(job_id), t(by), u(now.ms), u(cutoff)],
        )?);
        statements.extend([
            self.stmt(
                &format!(
                    "UPDATE tenant_daily_spend SET reserved_usd = max(0, reserved_usd - \
                     (SELECT coalesce(sum(r.amount_usd), 0) FROM spend_reservations r WHERE r.job_id = ?1 \
                      AND r.tenant = tenant_daily_spend.tenant AND r.day = tenant_daily_spend.day)), updated_at = {NOW} \
                     WHERE EXISTS (SELECT 1 FROM spend_reservations r WHERE r.job_id = ?1 \
                      AND r.tenant = tenant_daily_spend.tenant AND r.day = tenant_daily_spend.day) \
                     AND {UNSTARTED_CANCELLED}"
                ),
                &[i(job_id)],
            )?,
            self.stmt(
                &format!("DELETE FROM spend_reservations WHERE job_id = ?1 AND {UNSTARTED_CANCELLED}"),
                &[i(job_id)],
            )?,
            self.stmt(
                &format!(
                    "UPDATE granulation_jobs SET completed_at = {NOW}, processing_time_ms = 0 WHERE id = ?1 \
                     AND status = 'cancelled' AND started_at_ms IS NULL AND completed_at IS NULL"
                ),
                &[i(job_id)],
            )?,
        ]);
        let results = self.batch("cancelling a job", statements).await?;
        Ok(super::changes(results.get(cancel_at)) > 0)
    }

    /// The stopped run of a cancelled job: its attempts, its usage added to
    /// the job, and its reservation settled to what it spent, in one batch.
    /// `completed_at` marks the job settled: a second call changes nothing
    /// on the job, and the reservation is gone by then.
    pub async fn settle_cancelled(&self, c: &CancelledRun<'_>) -> AppResult<()> {
        let mut statements = Vec::new();
        if !c.attempts.is_empty() {
            statements.push(self.attempts_statement(c.job_id, c.client_id, c.attempts)?);
        }
        statements.extend(self.settle_job_statements(
            c.job_id,
            c.client_id,
            c.cost_usd.unwrap_or(0.0),
            c.date,
        )?);
        statements.push(self.stmt(
            &format!(
                "UPDATE granulation_jobs SET provider = coalesce(?2, provider), model = coalesce(?3, model), \
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
        // Only the run the job had when it was cancelled, and only once:
        // otherwise nothing is written (settled already, or not this run's).
        let settles = "EXISTS (SELECT 1 FROM granulation_jobs WHERE id = ?1 AND run_count = ?2 \
             AND status = 'cancelled' AND completed_at IS NULL)";
        let binds = [i(c.job_id), u(u64::from(c.run))];
        self.guarded_batch("settling a cancelled job", settles, &binds, statements)
            .await
            .map(|_| ())
    }
}
