//! `resource_consumption`: every provider attempt a job made (paid or not),
//! written with the job's totals in the same batch.

use super::{i, Database};
use bitware_kit::error::AppResult;
use serde::Deserialize;

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
