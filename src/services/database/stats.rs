//! Read-only aggregates for the statistics, economy and analytics routes,
//! over `granulation_jobs`, `resource_consumption` and `template_analytics`.
//! `?1` of a scoped query is the client scope (NULL: every client); every
//! window starts at a bound ISO timestamp. Rows come back typed: counts as
//! integers (SUM of nothing is NULL, hence the `Option`s), money as `f64`.

use super::{ot, t, Database};
use crate::types::job::JobStatus;
use bitware_kit::error::AppResult;
use serde::{Deserialize, Serialize};
use wasm_bindgen::JsValue;

const JOBS_BY_STATUS: &str = "SELECT status, COUNT(*) AS jobs, AVG(quality_score) AS avg_quality, SUM(cost_usd) AS cost_usd, \
    SUM(CASE WHEN cost_usd IS NULL THEN 1 ELSE 0 END) AS unknown_cost_jobs, SUM(tokens_input) AS tokens_input, SUM(tokens_output) AS tokens_output \
    FROM granulation_jobs WHERE (?1 IS NULL OR client_id = ?1) AND created_at >= ?2 GROUP BY status ORDER BY status";

const PROCESSING_TIMES: &str = "SELECT processing_time_ms AS ms FROM granulation_jobs WHERE (?1 IS NULL OR client_id = ?1) \
    AND created_at >= ?2 AND status = 'completed' AND processing_time_ms IS NOT NULL ORDER BY processing_time_ms";

const CONSUMPTION_TOTALS: &str = "SELECT COUNT(*) AS attempts, COUNT(DISTINCT job_id) AS jobs, SUM(tokens_input) AS tokens_input, \
    SUM(tokens_output) AS tokens_output, SUM(tokens_cached) AS tokens_cached, SUM(cost_usd) AS cost_usd, \
    SUM(CASE WHEN cost_usd IS NULL THEN 1 ELSE 0 END) AS unpriced_attempts, SUM(latency_ms) AS latency_ms \
    FROM resource_consumption WHERE (?1 IS NULL OR client_id = ?1) AND created_at >= ?2";

const CONSUMPTION_DAILY: &str = "SELECT substr(created_at, 1, 10) AS date, COUNT(*) AS attempts, SUM(tokens_input) AS tokens_input, \
    SUM(tokens_output) AS tokens_output, SUM(cost_usd) AS cost_usd FROM resource_consumption \
    WHERE (?1 IS NULL OR client_id = ?1) AND created_at >= ?2 GROUP BY date ORDER BY date";

const CONSUMPTION_BY_PROVIDER: &str = "SELECT provider, COUNT(*) AS attempts, SUM(CASE WHEN status = 'success' THEN 1 ELSE 0 END) AS successes, \
    SUM(tokens_input) AS tokens_input, SUM(tokens_output) AS tokens_output, SUM(cost_usd) AS cost_usd, AVG(latency_ms) AS avg_latency_ms \
    FROM resource_consumption WHERE (?1 IS NULL OR client_id = ?1) AND created_at >= ?2 GROUP BY provider ORDER BY provider";

const CONSUMPTION_BY_MODEL: &str = "SELECT provider, model, COUNT(*) AS attempts, SUM(tokens_input) AS tokens_input, \
    SUM(tokens_output) AS tokens_output, SUM(cost_usd) AS cost_usd FROM resource_consumption \
    WHERE (?1 IS NULL OR client_id = ?1) AND created_at >= ?2 GROUP BY provider, model ORDER BY provider, model";

const TEMPLATE_PERFORMANCE: &str = "SELECT t.template_name, t.structure_type, SUM(a.jobs_total) AS jobs, SUM(a.jobs_completed) AS completed, \
    SUM(a.jobs_failed) AS failed, SUM(a.validation_failures) AS validation_failures, SUM(a.quality_sum) AS quality_sum, \
    SUM(a.processing_ms_sum) AS processing_ms_sum, SUM(a.cost_usd_sum) AS cost_usd_sum, SUM(a.tokens_sum) AS tokens_sum \
    FROM template_analytics a JOIN granulation_templates t ON t.id = a.template_id WHERE a.date >= substr(?1, 1, 10) \
    GROUP BY a.template_id ORDER BY t.template_name";

const ANALYTICS_DAILY: &str = "SELECT date, SUM(jobs_total) AS jobs, SUM(jobs_completed) AS completed, SUM(jobs_failed) AS failed, \
    SUM(quality_sum) AS quality_sum, SUM(cost_usd_sum) AS cost_usd FROM template_analytics WHERE date >= substr(?1, 1, 10) \
    GROUP BY date ORDER BY date";

const TYPE_DISTRIBUTION: &str = "SELECT structure_type, COUNT(*) AS jobs, SUM(CASE WHEN status = 'completed' THEN 1 ELSE 0 END) AS completed \
    FROM granulation_jobs WHERE created_at >= ?1 GROUP BY structure_type ORDER BY structure_type";

const JOBS_BY_CLIENT: &str =
    "SELECT client_id, COUNT(*) AS jobs, SUM(cost_usd) AS cost_usd FROM granulation_jobs \
    WHERE created_at >= ?1 GROUP BY client_id ORDER BY jobs DESC, client_id LIMIT 50";

/// Jobs of one status in the window.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct JobsByStatus {
    pub status: JobStatus,
    pub jobs: u64,
    pub avg_quality: Option<f64>,
    pub cost_usd: Option<f64>,
    #[serde(default)]
    pub unknown_cost_jobs: Option<u64>,
    pub tokens_input: Option<u64>,
    pub tokens_output: Option<u64>,
}

/// Every recorded attempt in the window, summed (one row, even of nothing).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct ConsumptionTotals {
    pub attempts: u64,
    pub jobs: u64,
    pub tokens_input: Option<u64>,
    pub tokens_output: Option<u64>,
    pub tokens_cached: Option<u64>,
    pub cost_usd: Option<f64>,
    pub unpriced_attempts: Option<u64>,
    pub latency_ms: Option<u64>,
}

/// A day of recorded attempts (`GET /api/economy/stats` `daily[]`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all(serialize = "camelCase"))]
pub struct DailyConsumption {
    pub date: String,
    pub attempts: u64,
    pub tokens_input: Option<u64>,
    pub tokens_output: Option<u64>,
    pub cost_usd: Option<f64>,
}

/// Attempts of one provider (`byProvider[]`, admin `providers[]`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all(serialize = "camelCase"))]
pub struct ProviderConsumption {
    pub provider: String,
    pub attempts: u64,
    pub successes: Option<u64>,
    pub tokens_input: Option<u64>,
    pub tokens_output: Option<u64>,
    pub cost_usd: Option<f64>,
    #[serde(rename(serialize = "averageLatencyMs"))]
    pub avg_latency_ms: Option<f64>,
    /// Not a column: filled in from `successes / attempts`.
    #[serde(default)]
    pub success_rate: Option<f64>,
}

/// Attempts of one model (`byModel[]`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all(serialize = "camelCase"))]
pub struct ModelConsumption {
    pub provider: String,
    pub model: String,
    pub attempts: u64,
    pub tokens_input: Option<u64>,
    pub tokens_output: Option<u64>,
    pub cost_usd: Option<f64>,
}

/// One template's daily rollup summed over the window.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct TemplatePerformance {
    pub template_name: String,
    pub structure_type: String,
    pub jobs: u64,
    pub completed: u64,
    pub failed: u64,
    pub validation_failures: u64,
    pub quality_sum: Option<f64>,
    pub processing_ms_sum: Option<u64>,
    pub cost_usd_sum: Option<f64>,
    pub tokens_sum: Option<u64>,
}

/// One day of the template rollup, every template together.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct AnalyticsDay {
    pub date: String,
    pub jobs: u64,
    pub completed: u64,
    pub failed: u64,
    pub quality_sum: Option<f64>,
    pub cost_usd: Option<f64>,
}

/// Jobs of one tenant (admin `clients[]`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all(serialize = "camelCase"))]
pub struct ClientJobs {
    pub client_id: String,
    pub jobs: u64,
    pub cost_usd: Option<f64>,
}

/// Jobs of one structure type (analytics `structureTypes[]`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all(serialize = "camelCase"))]
pub struct TypeJobs {
    pub structure_type: String,
    pub jobs: u64,
    pub completed: Option<u64>,
}

/// A scoped window: the client (NULL for all) and its start.
fn scoped(scope: Option<&str>, from: &str) -> [JsValue; 2] {
    [ot(scope), t(from)]
}

impl Database {
    async fn aggregate<T: serde::de::DeserializeOwned>(
        &self,
        context: &str,
        sql: &str,
        binds: &[JsValue],
    ) -> AppResult<Vec<T>> {
        let stmt = self.stmt(sql, binds)?;
        self.all(context, stmt).await
    }

    pub async fn jobs_by_status(
        &self,
        scope: Option<&str>,
        from: &str,
    ) -> AppResult<Vec<JobsByStatus>> {
        self.aggregate("job statistics", JOBS_BY_STATUS, &scoped(scope, from))
            .await
    }

    /// Processing times of completed jobs, ascending.
    pub async fn processing_times(&self, scope: Option<&str>, from: &str) -> AppResult<Vec<u64>> {
        #[derive(Deserialize)]
        struct Time {
            ms: u64,
        }
        let rows: Vec<Time> = self
            .aggregate("processing times", PROCESSING_TIMES, &scoped(scope, from))
            .await?;
        Ok(rows.into_iter().map(|r| r.ms).collect())
    }

    pub async fn consumption_totals(
        &self,
        scope: Option<&str>,
        from: &str,
    ) -> AppResult<ConsumptionTotals> {
        let rows: Vec<ConsumptionTotals> = self
            .aggregate(
                "consumption totals",
                CONSUMPTION_TOTALS,
                &scoped(scope, from),
            )
            .await?;
        Ok(rows.into_iter().next().unwrap_or_default())
    }

    pub async fn consumption_daily(
        &self,
        scope: Option<&str>,
        from: &str,
    ) -> AppResult<Vec<DailyConsumption>> {
        self.aggregate("daily consumption", CONSUMPTION_DAILY, &scoped(scope, from))
            .await
    }

    pub async fn consumption_by_provider(
        &self,
        scope: Option<&str>,
        from: &str,
    ) -> AppResult<Vec<ProviderConsumption>> {
        self.aggregate(
            "consumption by provider",
            CONSUMPTION_BY_PROVIDER,
            &scoped(scope, from),
        )
        .await
    }

    pub async fn consumption_by_model(
        &self,
        scope: Option<&str>,
        from: &str,
    ) -> AppResult<Vec<ModelConsumption>> {
        self.aggregate(
            "consumption by model",
            CONSUMPTION_BY_MODEL,
            &scoped(scope, from),
        )
        .await
    }

    pub async fn template_performance(&self, from: &str) -> AppResult<Vec<TemplatePerformance>> {
        self.aggregate("template performance", TEMPLATE_PERFORMANCE, &[t(from)])
            .await
    }

    pub async fn analytics_daily(&self, from: &str) -> AppResult<Vec<AnalyticsDay>> {
        self.aggregate("daily analytics", ANALYTICS_DAILY, &[t(from)])
            .await
    }

    pub async fn jobs_by_type(&self, from: &str) -> AppResult<Vec<TypeJobs>> {
        self.aggregate("structure types", TYPE_DISTRIBUTION, &[t(from)])
            .await
    }

    pub async fn jobs_by_client(&self, from: &str) -> AppResult<Vec<ClientJobs>> {
        self.aggregate("jobs by client", JOBS_BY_CLIENT, &[t(from)])
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn aggregate_rows_decode_counts_as_integers_and_empty_sums_as_none() {
        let s: JobsByStatus =
            serde_json::from_value(json!({"status": "completed", "jobs": 4, "avg_quality": 0.9,
            "cost_usd": null, "unknown_cost_jobs": 1, "tokens_input": 100, "tokens_output": null}))
            .unwrap();
        assert_eq!(
            (s.status, s.jobs, s.tokens_output),
            (JobStatus::Completed, 4, None)
        );
        let totals: ConsumptionTotals = serde_json::from_value(json!({"attempts": 0, "jobs": 0, "tokens_input": null,
            "tokens_output": null, "tokens_cached": null, "cost_usd": null, "unpriced_attempts": null, "latency_ms": null}))
        .unwrap();
        assert_eq!(totals, ConsumptionTotals::default());
    }

    #[test]
    fn provider_rows_read_snake_case_and_show_camel_case() {
        let p: ProviderConsumption =
            serde_json::from_value(json!({"provider": "openai", "attempts": 3, "successes": 2,
            "tokens_input": 10, "tokens_output": 20, "cost_usd": 0.5, "avg_latency_ms": 12.5}))
            .unwrap();
        assert_eq!(
            serde_json::to_value(&p).unwrap(),
            json!({"provider": "openai", "attempts": 3, "successes": 2, "tokensInput": 10, "tokensOutput": 20,
                "costUsd": 0.5, "averageLatencyMs": 12.5, "successRate": null})
        );
    }
}
