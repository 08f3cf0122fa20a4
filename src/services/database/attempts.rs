//! `resource_consumption`: every provider attempt a job made (paid or not),
//! written with the job's totals in the same batch.

use super::{i, on, t, u, Database, NOW};
use crate::services::ai_provider::Attempt;
use crate::types::pricing::TokenUsage;
use bitware_kit::error::{AppError, AppResult};
use serde::Deserialize;
use worker::D1PreparedStatement;

/// One recorded attempt, as D1 returns it.
#[derive(Debug, Clone, Deserialize)]
pub struct AttemptRow {
    pub provider: String,
    pub model: String,
    pub purpose: String,
    pub status: String,
    pub http_status: Option<u16>,
    pub latency_ms: u64,
    pub tokens_input: u64,
    pub tokens_output: u64,
    pub tokens_cached: u64,
    pub cost_usd: Option<f64>,
    pub error: Option<String>,
    /// The part of a fanned-out outline the call wrote.
    #[serde(default)]
    pub branch: Option<String>,
    pub created_at: String,
}

impl Database {
    pub async fn attempts(&self, job_id: i64) -> AppResult<Vec<AttemptRow>> {
        let stmt = self.stmt(
            "SELECT provider, model, purpose, status, http_status, latency_ms, tokens_input, tokens_output, tokens_cached, cost_usd, error, \
             branch, created_at FROM resource_consumption WHERE job_id = ?1 ORDER BY id",
            &[i(job_id)],
        )?;
        self.all("reading attempts", stmt).await
    }

    /// Attempts of a call that produced no verdict still cost money: record
    /// them and add them to the job's totals, together.
    pub async fn record_attempts(
        &self,
        job_id: i64,
        client_id: &str,
        attempts: &[Attempt],
    ) -> AppResult<()> {
        self.record_attempts_settling(job_id, client_id, attempts, None)
            .await
    }

    /// `record_attempts`, settling `reservation` to their cost in the same
    /// batch (a failed review).
    pub async fn record_attempts_settling(
        &self,
        job_id: i64,
        client_id: &str,
        attempts: &[Attempt],
        reservation: Option<&super::Reservation>,
    ) -> AppResult<()> {
        let (usage, cost) = crate::services::ai_provider::totals(attempts);
        let mut statements = Vec::new();
        if !attempts.is_empty() {
            statements.push(self.attempts_statement(job_id, client_id, attempts)?);
            statements.push(self.job_usage_statement(job_id, &usage, cost)?);
        }
        if let Some(r) = reservation {
            statements.extend(self.settle_statements(r, cost.unwrap_or(0.0))?);
        }
        if statements.is_empty() {
            return Ok(());
        }
        self.batch("recording attempts", statements)
            .await
            .map(|_| ())
    }

    pub(super) fn attempts_statement(
        &self,
        job_id: i64,
        client_id: &str,
        attempts: &[Attempt],
    ) -> AppResult<D1PreparedStatement> {
        let rows =
            serde_json::to_string(attempts).map_err(|e| AppError::internal(e.to_string()))?;
        self.stmt(
            "INSERT INTO resource_consumption (job_id, client_id, provider, model, purpose, status, http_status, latency_ms, \
             tokens_input, tokens_output, tokens_cached, cost_usd, error, branch) \
             SELECT ?1, ?2, json_extract(a.value, '$.provider'), json_extract(a.value, '$.model'), json_extract(a.value, '$.purpose'), \
             json_extract(a.value, '$.status'), json_extract(a.value, '$.httpStatus'), json_extract(a.value, '$.latencyMs'), \
             json_extract(a.value, '$.usage.input'), json_extract(a.value, '$.usage.output'), json_extract(a.value, '$.usage.cached'), \
             json_extract(a.value, '$.costUsd'), json_extract(a.value, '$.error'), json_extract(a.value, '$.branch') FROM json_each(?3) a",
            &[i(job_id), t(client_id), t(&rows)],
        )
    }

    /// Add attempts made after the job's run (a review) to its totals.
    pub(super) fn job_usage_statement(
        &self,
        job_id: i64,
        usage: &TokenUsage,
        cost: Option<f64>,
    ) -> AppResult<D1PreparedStatement> {
        self.stmt(
            &format!(
                "UPDATE granulation_jobs SET tokens_input = tokens_input + ?2, tokens_output = tokens_output + ?3, \
                 tokens_cached = tokens_cached + ?4, cost_usd = cost_usd + ?5, updated_at = {NOW} WHERE id = ?1"
            ),
            &[i(job_id), u(usage.input), u(usage.output), u(usage.cached), on(cost)],
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_attempt_row_decodes_with_integer_counts() {
        let a: AttemptRow = serde_json::from_value(json!({
            "provider": "openai", "model": "gpt-4o-mini", "purpose": "generate", "status": "http_error",
            "http_status": 503, "latency_ms": 120, "tokens_input": 0, "tokens_output": 0, "tokens_cached": 0,
            "cost_usd": null, "error": "busy", "created_at": "2026-11-25T10:00:00.000Z"
        }))
        .unwrap();
        assert_eq!((a.http_status, a.latency_ms), (Some(503), 120));
    }
}
