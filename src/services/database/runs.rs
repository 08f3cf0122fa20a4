//! How a run ends on `granulation_jobs`: completed (with its elements,
//! attempts, verdict, template analytics and settled spend, in one batch) or
//! failed (with the usage it incurred), each only while its run owns the job
//! (`stopped.rs`).

use super::{changes, flag, i, n, on, ot, t, u, Database, NewValidation, NOW};
use crate::services::ai_provider::Attempt;
use crate::services::outline::ElementRow;
use crate::types::pricing::TokenUsage;
use bitware_kit::error::AppResult;
use serde_json::Value;
use wasm_bindgen::JsValue;
use worker::D1PreparedStatement;

/// What a finished job writes, in one batch.
pub struct Completion<'a> {
    pub job_id: i64,
    /// The run that made it: only while it still owns the job is it stored.
    pub run: u32,
    pub client_id: &'a str,
    pub template_id: i64,
    pub provider: &'a str,
    pub model: &'a str,
    pub usage: TokenUsage,
    pub cost_usd: Option<f64>,
    pub quality_score: f64,
    pub validation: Option<&'a NewValidation>,
    pub elements: &'a [ElementRow],
    pub estimated_total_words: u32,
    pub content_metadata: &'a Value,
    pub deliverable_specs: &'a Value,
    pub structure_root: &'a Value,
    pub storage_type: &'a str,
    pub storage_location: Option<&'a str>,
    pub structure_bytes: usize,
    pub result_json: &'a str,
    pub processing_time_ms: u64,
    pub attempts: &'a [Attempt],
    pub date: &'a str,
}

pub struct Failure<'a> {
    pub job_id: i64,
    /// The run that failed: only while it still owns the job is it recorded.
    pub run: u32,
    pub client_id: &'a str,
    pub template_id: i64,
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

impl Database {
    /// Everything a finished job writes, atomically, in one round trip;
    /// `false` (nothing written) when its run no longer owns the job.
    pub async fn complete_job(&self, c: &Completion<'_>) -> AppResult<bool> {
        let mut statements = self.element_statements(c.job_id, c.elements)?;
        let validation_passed = c
            .validation
            .map(|v| flag(v.passed))
            .unwrap_or(JsValue::NULL);
        statements.push(self.stmt(
            &format!(
                "UPDATE granulation_jobs SET status = 'completed', stage = 'done', provider = ?2, model = ?3, \
                 tokens_input = tokens_input + ?4, tokens_output = tokens_output + ?5, tokens_cached = tokens_cached + ?6, \
                 cost_usd = cost_usd + ?7, quality_score = ?8, validation_passed = ?9, total_elements = ?10, estimated_total_words = ?11, \
                 content_generation_metadata = ?12, deliverable_specs = ?13, structure_root = ?14, storage_type = ?15, \
                 storage_location = ?16, structure_bytes = ?17, result_json = ?18, processing_time_ms = ?19, \
                 completed_at = {NOW}, updated_at = {NOW} WHERE id = ?1"
            ),
            &[
                i(c.job_id),
                t(c.provider),
                t(c.model),
                u(c.usage.input),
                u(c.usage.output),
                u(c.usage.cached),
                on(c.cost_usd),
                n(c.quality_score),
                validation_passed,
                u(c.elements.len() as u64),
                u(c.estimated_total_words as u64),
                t(&c.content_metadata.to_string()),
                t(&c.deliverable_specs.to_string()),
                t(&c.structure_root.to_string()),
                t(c.storage_type),
                ot(c.storage_location),
                u(c.structure_bytes as u64),
                t(c.result_json),
                u(c.processing_time_ms),
            ],
        )?);
        if !c.attempts.is_empty() {
            statements.push(self.attempts_statement(c.job_id, c.client_id, c.attempts)?);
        }
        if let Some(v) = c.validation {
            statements.push(self.validation_statement(c.job_id, c.client_id, v)?);
        }
        statements.push(self.stmt(
            "UPDATE granulation_templates SET usage_count = usage_count + 1 WHERE id = ?1",
            &[i(c.template_id)],
        )?);
        let validation_failed = c.validation.is_some_and(|v| !v.passed);
        statements.push(self.analytics_statement(
            c.template_id,
            c.date,
            true,
            validation_failed,
            c.quality_score,
            c.processing_time_ms,
            c.usage.total(),
            c.cost_usd,
        )?);
        statements.extend(self.settle_job_statements(
            c.job_id,
            c.client_id,
            c.cost_usd.unwrap_or(0.0),
            c.date,
        )?);
        self.ending_batch("storing a finished job", c.job_id, c.run, statements)
            .await
    }

    /// A failed job: final state, reason, and the usage of the attempts it
    /// made; `false` (nothing written) when its run no longer owns the job.
    pub async fn fail_job(&self, f: &Failure<'_>) -> AppResult<bool> {
        let mut statements = vec![self.stmt(
            &format!(
                "UPDATE granulation_jobs SET status = 'failed', stage = 'failed', failure_code = ?2, failure_reason = ?3, provider = ?4, \
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
        statements.push(self.analytics_statement(
            f.template_id,
            f.date,
            false,
            false,
            0.0,
            f.processing_time_ms,
            f.usage.total(),
            f.cost_usd,
        )?);
        statements.extend(self.settle_job_statements(
            f.job_id,
            f.client_id,
            f.cost_usd.unwrap_or(0.0),
            f.date,
        )?);
        self.ending_batch("recording a failed job", f.job_id, f.run, statements)
            .await
    }

    /// End a run that never produced a result (dead-lettered, never enqueued).
    pub async fn fail_run(
        &self,
        job_id: i64,
        run: u32,
        code: &str,
        reason: &str,
    ) -> AppResult<bool> {
        // The run made no model call: its reservation is released, nothing booked.
        let statements = vec![
            self.stmt(
                &format!(
                    "UPDATE granulation_jobs SET status = 'failed', stage = 'failed', failure_code = ?3, failure_reason = ?4, \
                     updated_at = {NOW} WHERE id = ?1 AND run_count = ?2 AND status = 'processing'"
                ),
                &[i(job_id), u(run as u64), t(code), t(reason)],
            )?,
            self.stmt(
                &format!(
                    "UPDATE tenant_daily_spend SET reserved_usd = max(0, reserved_usd - \
                     (SELECT coalesce(sum(r.amount_usd), 0) FROM spend_reservations r WHERE r.job_id = ?1 \
                      AND r.tenant = tenant_daily_spend.tenant AND r.day = tenant_daily_spend.day)), updated_at = {NOW} \
                     WHERE EXISTS (SELECT 1 FROM spend_reservations r WHERE r.job_id = ?1 \
                      AND r.tenant = tenant_daily_spend.tenant AND r.day = tenant_daily_spend.day) \
                     AND (SELECT status FROM granulation_jobs WHERE id = ?1) = 'failed'"
                ),
                &[i(job_id)],
            )?,
            self.stmt(
                "DELETE FROM spend_reservations WHERE job_id = ?1 \
                 AND (SELECT status FROM granulation_jobs WHERE id = ?1) = 'failed'",
                &[i(job_id)],
            )?,
        ];
        let results = self.batch("failing a run", statements).await?;
        Ok(changes(results.first()) > 0)
    }

    #[allow(clippy::too_many_arguments)]
    fn analytics_statement(
        &self,
        template_id: i64,
        date: &str,
        completed: bool,
        validation_failed: bool,
        quality: f64,
        ms: u64,
        tokens: u64,
        cost: Option<f64>,
    ) -> AppResult<D1PreparedStatement> {
        self.stmt(
            "INSERT INTO template_analytics (template_id, date, jobs_total, jobs_completed, jobs_failed, validation_failures, quality_sum, \
             processing_ms_sum, tokens_sum, cost_usd_sum) VALUES (?1, ?2, 1, ?3, ?4, ?5, ?6, ?7, ?8, coalesce(?9, 0)) \
             ON CONFLICT (template_id, date) DO UPDATE SET jobs_total = jobs_total + 1, \
             jobs_completed = jobs_completed + excluded.jobs_completed, jobs_failed = jobs_failed + excluded.jobs_failed, \
             validation_failures = validation_failures + excluded.validation_failures, quality_sum = quality_sum + excluded.quality_sum, \
             processing_ms_sum = processing_ms_sum + excluded.processing_ms_sum, tokens_sum = tokens_sum + excluded.tokens_sum, \
             cost_usd_sum = cost_usd_sum + excluded.cost_usd_sum",
            &[i(template_id), t(date), flag(completed), flag(!completed), flag(validation_failed), n(quality), u(ms), u(tokens), on(cost)],
        )
    }
}
