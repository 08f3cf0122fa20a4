//! How a run ends on `granulation_jobs`: the kit's guarded completion or
//! failure (job row, attempts, settled spend; only while the run owns the
//! job) with the outline's own writes in the same batch — its columns,
//! elements, verdict and the template's analytics.

use super::{flag, i, n, on, t, u, Database, NewValidation};
use crate::services::ai_provider::Attempt;
use crate::services::outline::ElementRow;
use crate::types::pricing::TokenUsage;
use bitware_kit::error::AppResult;
use bitware_kit::jobs::{self as kit, Column};
use serde_json::{json, Value};
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

impl Completion<'_> {
    /// The kit's part of it, with the outline's `columns` of the job row.
    pub fn ending<'c>(&'c self, columns: &'c [Column<'c>]) -> kit::Completion<'c> {
        kit::Completion {
            job_id: self.job_id,
            run: self.run,
            client_id: self.client_id,
            provider: self.provider,
            model: self.model,
            usage: self.usage,
            cost_usd: self.cost_usd,
            result_json: self.result_json,
            processing_time_ms: self.processing_time_ms,
            attempts: self.attempts,
            date: self.date,
            columns,
        }
    }
}

impl<'a> Failure<'a> {
    /// The kit's failure of a run, with the template it used.
    pub fn of(f: kit::Failure<'a>, template_id: i64) -> Failure<'a> {
        Failure {
            job_id: f.job_id,
            run: f.run,
            client_id: f.client_id,
            template_id,
            code: f.code,
            reason: f.reason,
            provider: f.provider,
            model: f.model,
            usage: f.usage,
            cost_usd: f.cost_usd,
            processing_time_ms: f.processing_time_ms,
            attempts: f.attempts,
            date: f.date,
        }
    }

    /// The kit's part of it.
    pub fn ending(&self) -> kit::Failure<'a> {
        kit::Failure {
            job_id: self.job_id,
            run: self.run,
            client_id: self.client_id,
            code: self.code,
            reason: self.reason,
            provider: self.provider,
            model: self.model,
            usage: self.usage,
            cost_usd: self.cost_usd,
            processing_time_ms: self.processing_time_ms,
            attempts: self.attempts,
            date: self.date,
        }
    }
}

impl Database {
    /// A finished outline: the kit's completion of run `c.run` (job row,
    /// attempts, settled spend) with the outline's own writes — its columns,
    /// elements, verdict, the template's use and its analytics — in one
    /// guarded batch; `false` (nothing written) when its run no longer owns
    /// the job.
    pub async fn store_outline(&self, c: &Completion<'_>) -> AppResult<bool> {
        let mut extra = self.element_statements(c.job_id, c.elements)?;
        if let Some(v) = c.validation {
            extra.push(self.validation_statement(c.job_id, c.client_id, v)?);
        }
        extra.push(self.stmt(
            "UPDATE granulation_templates SET usage_count = usage_count + 1 WHERE id = ?1",
            &[i(c.template_id)],
        )?);
        let validation_failed = c.validation.is_some_and(|v| !v.passed);
        extra.push(self.analytics_statement(
            c.template_id,
            c.date,
            true,
            validation_failed,
            c.quality_score,
            c.processing_time_ms,
            c.usage.total(),
            c.cost_usd,
        )?);
        let columns = [
            ("quality_score", json!(c.quality_score)),
            ("validation_passed", json!(c.validation.map(|v| v.passed))),
            ("total_elements", json!(c.elements.len())),
            ("estimated_total_words", json!(c.estimated_total_words)),
            (
                "content_generation_metadata",
                json!(c.content_metadata.to_string()),
            ),
            ("deliverable_specs", json!(c.deliverable_specs.to_string())),
            ("structure_root", json!(c.structure_root.to_string())),
            ("storage_type", json!(c.storage_type)),
            ("storage_location", json!(c.storage_location)),
            ("structure_bytes", json!(c.structure_bytes)),
        ];
        self.jobs().complete_with(&c.ending(&columns), extra).await
    }

    /// A failed outline: the kit's failure of run `f.run` with the
    /// template's analytics; `false` (nothing written) when its run no
    /// longer owns the job.
    pub async fn record_failure(&self, f: &Failure<'_>) -> AppResult<bool> {
        let analytics = self.analytics_statement(
            f.template_id,
            f.date,
            false,
            false,
            0.0,
            f.processing_time_ms,
            f.usage.total(),
            f.cost_usd,
        )?;
        self.jobs().fail_with(&f.ending(), vec![analytics]).await
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
