//! Runs that stop without ending, and the guard of a run's endings, on D1
//! (`D1Jobs`): a run past its deadline, or started and silent for the stall
//! period, is booked at what it had streamed before it is taken over,
//! swept or cancelled; a batch that ends a run writes only while the run
//! still owns its job.

use super::store::JobSchema;
use super::store_d1::D1Jobs;
use crate::d1::bind::{i, t, u};
use crate::d1::NOW;
use crate::error::AppResult;
use worker::wasm_bindgen::JsValue;
use worker::D1PreparedStatement;

/// What the attempt booked for a stopped run says (our words; no provider text).
pub const STOPPED_RUN_NOTE: &str =
    "estimated: the run stopped before finishing (its worker went away); \
     booked at the tokens it had streamed, its prompt not counted";

/// SQL true of a `processing` row whose run stopped without ending: past its
/// deadline (`now`), or started and silent since `cutoff` (now less the
/// stall period). `j` is the row's alias; binds are named by the caller.
pub(super) fn stopped_sql(j: &str, now: &str, cutoff: &str) -> String {
    format!(
        "{j}.status = 'processing' AND ({j}.deadline_at < {now} OR \
         ({j}.started_at_ms IS NOT NULL AND coalesce({j}.heartbeat_at_ms, {j}.started_at_ms) < {cutoff}))"
    )
}

impl D1Jobs<'_> {
    /// The statements booking what the stopped run of job `job_id` had
    /// streamed, each a no-op unless the job is still `processing` with its
    /// run stopped (past its deadline at `now_ms`, or started and silent
    /// since `cutoff_ms`); `run` limits it to that run (the queue's message
    /// names one). `release` also gives back the run's open reservations (a
    /// takeover that reserved anew); otherwise they stay for the run that
    /// follows, or for the sweep of expired ones.
    pub(super) fn book_stopped_run(
        &self,
        job_id: i64,
        run: Option<u32>,
        now_ms: u64,
        cutoff_ms: u64,
        today: &str,
        release: bool,
    ) -> AppResult<Vec<D1PreparedStatement>> {
        let JobSchema {
            jobs,
            attempts,
            stopped_purpose,
            ..
        } = self.schema;
        let this_run = "(?5 IS NULL OR j.run_count = ?5)";
        let stopped = format!(
            "EXISTS (SELECT 1 FROM {jobs} j WHERE j.id = ?1 AND {this_run} AND {})",
            stopped_sql("j", "?2", "?3")
        );
        // NULL when the planned model is unpriced (an unknown cost, never 0).
        let estimate = format!(
            "(SELECT CASE WHEN j.progress_tokens > 0 AND j.planned_provider IS NOT NULL \
             THEN j.progress_tokens * j.planned_output_price / 1000000.0 ELSE 0 END FROM {jobs} j WHERE j.id = ?1)"
        );
        let payer = format!(
            "coalesce((SELECT min(tenant) FROM spend_reservations WHERE job_id = ?1), \
             (SELECT client_id FROM {jobs} WHERE id = ?1))"
        );
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
            self.db.stmt(
                &format!(
                    "INSERT INTO {attempts} (job_id, client_id, provider, model, purpose, status, latency_ms, \
                     tokens_output, cost_usd, error) \
                     SELECT j.id, j.client_id, j.planned_provider, j.planned_model, '{stopped_purpose}', 'abandoned', \
                     max(0, coalesce(j.heartbeat_at_ms, j.started_at_ms, ?2) - coalesce(j.started_at_ms, j.submitted_at_ms, ?2)), \
                     j.progress_tokens, j.progress_tokens * j.planned_output_price / 1000000.0, '{STOPPED_RUN_NOTE}' \
                     FROM {jobs} j WHERE j.id = ?1 AND j.progress_tokens > 0 \
                     AND j.planned_provider IS NOT NULL AND j.planned_model IS NOT NULL AND {this_run} AND {}",
                    stopped_sql("j", "?2", "?3")
                ),
                &binds,
            )?,
            self.db.stmt(
                &format!(
                    "INSERT INTO tenant_daily_spend (tenant, day) SELECT {payer}, {day} WHERE {stopped} \
                     ON CONFLICT (tenant, day) DO NOTHING"
                ),
                &binds,
            )?,
            self.db.stmt(
                &format!(
                    "UPDATE tenant_daily_spend SET {released}spent_usd = spent_usd + coalesce({estimate}, 0), \
                     updated_at = {NOW} WHERE tenant = {payer} AND day = {day} AND {stopped}"
                ),
                &binds,
            )?,
        ];
        if release {
            statements.push(self.db.stmt(
                &format!("DELETE FROM spend_reservations WHERE job_id = ?1 AND {stopped}"),
                &binds,
            )?);
        }
        // Last: the job's own totals (the condition above reads its row).
        statements.push(self.db.stmt(
            &format!(
                "UPDATE {jobs} SET tokens_output = tokens_output + \
                 CASE WHEN planned_provider IS NOT NULL THEN progress_tokens ELSE 0 END, \
                 cost_usd = cost_usd + {estimate}, progress_tokens = 0, updated_at = {NOW} WHERE id = ?1 AND {stopped}"
            ),
            &binds,
        )?);
        Ok(statements)
    }

    /// Run a batch that ends run `run` of job `job_id` only while that run
    /// owns the job (`processing` under that run number).
    pub(super) async fn ending_batch(
        &self,
        context: &str,
        job_id: i64,
        run: u32,
        statements: Vec<D1PreparedStatement>,
    ) -> AppResult<bool> {
        let owns = format!(
            "EXISTS (SELECT 1 FROM {} WHERE id = ?1 AND run_count = ?2 AND status = 'processing')",
            self.schema.jobs
        );
        self.db
            .guarded_batch(context, &owns, &[i(job_id), u(u64::from(run))], statements)
            .await
    }
}
