//! How a run's ending is written on D1 (`D1Jobs`): completion and failure
//! with the worker's own statements, in one guarded batch with the spend
//! they settle; attempts paid for outside a run.

use super::spend::Reservation;
use super::store::{Completion, Failure};
use super::store_d1::{set_columns, value, D1Jobs};
use crate::ai::{totals, Attempt};
use crate::d1::bind::{i, on, ot, t, u};
use crate::d1::NOW;
use crate::error::{AppError, AppResult};
use crate::pricing::TokenUsage;
use worker::D1PreparedStatement;

impl D1Jobs<'_> {
    /// Everything a finished run writes, with the worker's own `extra`
    /// statements, atomically, in one round trip; `false` (nothing written)
    /// when its run no longer owns the job.
    pub async fn complete_with(
        &self,
        c: &Completion<'_>,
        extra: Vec<D1PreparedStatement>,
    ) -> AppResult<bool> {
        let jobs = self.schema.jobs;
        let mut binds = vec![
            i(c.job_id),
            t(c.provider),
            t(c.model),
            u(c.usage.input),
            u(c.usage.output),
            u(c.usage.cached),
            on(c.cost_usd),
            t(c.result_json),
            u(c.processing_time_ms),
        ];
        binds.extend(c.columns.iter().map(|(_, v)| value(v)));
        let mut statements = vec![self.db.stmt(
            &format!(
                "UPDATE {jobs} SET status = 'completed', stage = 'done', provider = ?2, model = ?3, \
                 tokens_input = tokens_input + ?4, tokens_output = tokens_output + ?5, tokens_cached = tokens_cached + ?6, \
                 cost_usd = cost_usd + ?7, result_json = ?8, processing_time_ms = ?9, \
                 completed_at = {NOW}, updated_at = {NOW}{} WHERE id = ?1",
                set_columns(c.columns, 10)
            ),
            &binds,
        )?];
        if !c.attempts.is_empty() {
            statements.push(self.attempts_statement(c.job_id, c.client_id, c.attempts)?);
        }
        statements.extend(extra);
        statements.extend(self.ledger().settle_job_statements(
            c.job_id,
            c.client_id,
            c.cost_usd.unwrap_or(0.0),
            c.date,
        )?);
        self.ending_batch("storing a finished job", c.job_id, c.run, statements)
            .await
    }

    /// A failed run: final state, reason, the usage of its attempts and the
    /// worker's own `extra` statements; `false` (nothing written) when its
    /// run no longer owns the job.
    pub async fn fail_with(
        &self,
        f: &Failure<'_>,
        extra: Vec<D1PreparedStatement>,
    ) -> AppResult<bool> {
        let jobs = self.schema.jobs;
        let mut statements = vec![self.db.stmt(
            &format!(
                "UPDATE {jobs} SET status = 'failed', stage = 'failed', failure_code = ?2, failure_reason = ?3, provider = ?4, \
                 model = ?5, tokens_input = tokens_input + ?6, tokens_output = tokens_output + ?7, tokens_cached = tokens_cached + ?8, \
                 cost_usd = cost_usd + ?9, processing_time_ms = ?10, updated_at = {NOW} WHERE id = ?1"
            ),
            &[
                i(f.job_id),
                t(f.code),
                t(f.reason),
                ot(f.provider),
                ot(f.model),
                u(f.usage.input),
                u(f.usage.output),
                u(f.usage.cached),
                on(f.cost_usd),
                u(f.processing_time_ms),
            ],
        )?];
        if !f.attempts.is_empty() {
            statements.push(self.attempts_statement(f.job_id, f.client_id, f.attempts)?);
        }
        statements.extend(extra);
        statements.extend(self.ledger().settle_job_statements(
            f.job_id,
            f.client_id,
            f.cost_usd.unwrap_or(0.0),
            f.date,
        )?);
        self.ending_batch("recording a failed job", f.job_id, f.run, statements)
            .await
    }

    /// Attempts paid for outside a run, on the job's totals, and the
    /// reservation that paid for them settled, in one batch.
    pub async fn record_attempts_settling(
        &self,
        job_id: i64,
        client_id: &str,
        attempts: &[Attempt],
        reservation: Option<&Reservation>,
    ) -> AppResult<()> {
        let (usage, cost) = totals(attempts);
        let mut statements = Vec::new();
        if !attempts.is_empty() {
            statements.push(self.attempts_statement(job_id, client_id, attempts)?);
            statements.push(self.job_usage_statement(job_id, &usage, cost)?);
        }
        if let Some(r) = reservation {
            statements.extend(self.ledger().settle_statements(r, cost.unwrap_or(0.0))?);
        }
        if statements.is_empty() {
            return Ok(());
        }
        self.db
            .batch("recording attempts", statements)
            .await
            .map(|_| ())
    }

    /// One statement inserting every attempt (rows as one JSON parameter).
    pub fn attempts_statement(
        &self,
        job_id: i64,
        client_id: &str,
        attempts: &[Attempt],
    ) -> AppResult<D1PreparedStatement> {
        let rows =
            serde_json::to_string(attempts).map_err(|e| AppError::internal(e.to_string()))?;
        self.db.stmt(
            &format!(
                "INSERT INTO {} (job_id, client_id, provider, model, purpose, status, http_status, latency_ms, \
                 tokens_input, tokens_output, tokens_cached, cost_usd, error, branch) \
                 SELECT ?1, ?2, json_extract(a.value, '$.provider'), json_extract(a.value, '$.model'), json_extract(a.value, '$.purpose'), \
                 json_extract(a.value, '$.status'), json_extract(a.value, '$.httpStatus'), json_extract(a.value, '$.latencyMs'), \
                 json_extract(a.value, '$.usage.input'), json_extract(a.value, '$.usage.output'), json_extract(a.value, '$.usage.cached'), \
                 json_extract(a.value, '$.costUsd'), json_extract(a.value, '$.error'), json_extract(a.value, '$.branch') FROM json_each(?3) a",
                self.schema.attempts
            ),
            &[i(job_id), t(client_id), t(&rows)],
        )
    }

    /// Add usage and cost to a job's totals.
    pub fn job_usage_statement(
        &self,
        job_id: i64,
        usage: &TokenUsage,
        cost: Option<f64>,
    ) -> AppResult<D1PreparedStatement> {
        self.db.stmt(
            &format!(
                "UPDATE {} SET tokens_input = tokens_input + ?2, tokens_output = tokens_output + ?3, \
                 tokens_cached = tokens_cached + ?4, cost_usd = cost_usd + ?5, updated_at = {NOW} WHERE id = ?1",
                self.schema.jobs
            ),
            &[i(job_id), u(usage.input), u(usage.output), u(usage.cached), on(cost)],
        )
    }
}
