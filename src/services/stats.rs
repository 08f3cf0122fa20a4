//! Statistics, economy and analytics from recorded data only (seed §7.2, §9.2).
//! Every figure is an aggregate over `granulation_jobs`, `resource_consumption`
//! or `template_analytics`; none is hard-coded. `?1` is the client scope
//! (NULL for worker and admin callers, who see every client).

use crate::error::AppResult;
use crate::services::database::{Database, StatBind};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

// ---- typed rows: D1's snake_case columns in, camelCase out ---------------

/// A day of recorded attempts (`GET /api/economy/stats` `daily[]`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all(serialize = "camelCase"))]
pub struct DailyConsumption {
    pub date: String,
    pub attempts: f64,
    pub tokens_input: Option<f64>,
    pub tokens_output: Option<f64>,
    pub cost_usd: Option<f64>,
}

/// Attempts of one provider (`byProvider[]`, admin `providers[]`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all(serialize = "camelCase"))]
pub struct ProviderConsumption {
    pub provider: String,
    pub attempts: f64,
    pub successes: Option<f64>,
    pub tokens_input: Option<f64>,
    pub tokens_output: Option<f64>,
    pub cost_usd: Option<f64>,
    #[serde(rename(serialize = "averageLatencyMs"))]
    pub avg_latency_ms: Option<f64>,
    #[serde(default)]
    pub success_rate: Option<f64>,
}

/// Attempts of one model (`byModel[]`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all(serialize = "camelCase"))]
pub struct ModelConsumption {
    pub provider: String,
    pub model: String,
    pub attempts: f64,
    pub tokens_input: Option<f64>,
    pub tokens_output: Option<f64>,
    pub cost_usd: Option<f64>,
}

/// Jobs of one tenant (admin `clients[]`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all(serialize = "camelCase"))]
pub struct ClientJobs {
    pub client_id: String,
    pub jobs: f64,
    pub cost_usd: Option<f64>,
}

/// Jobs of one structure type (analytics `structureTypes[]`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all(serialize = "camelCase"))]
pub struct TypeJobs {
    pub structure_type: String,
    pub jobs: f64,
    pub completed: Option<f64>,
}

fn typed<T: for<'de> Deserialize<'de>>(context: &str, rows: Vec<Value>) -> AppResult<Vec<T>> {
    rows.into_iter()
        .map(|r| {
            serde_json::from_value(r).map_err(|e| {
                crate::error::AppError::internal(format!("{context}: unexpected row: {e}"))
            })
        })
        .collect()
}

fn provider_rows(rows: Vec<Value>) -> AppResult<Vec<ProviderConsumption>> {
    let mut rows: Vec<ProviderConsumption> = typed("consumption by provider", rows)?;
    for p in &mut rows {
        p.success_rate = ratio(p.successes.unwrap_or(0.0), p.attempts);
    }
    Ok(rows)
}

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

/// Integral floats (D1 returns every number as f64) back to integers.
pub fn tidy(value: Value) -> Value {
    match value {
        Value::Number(n) => match n.as_f64() {
            Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => json!(f as i64),
            _ => Value::Number(n),
        },
        Value::Array(a) => Value::Array(a.into_iter().map(tidy).collect()),
        Value::Object(o) => Value::Object(
            o.into_iter()
                .map(|(k, v)| (k, tidy(v)))
                .collect::<Map<_, _>>(),
        ),
        other => other,
    }
}

/// Nearest-rank percentile of sorted values.
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    Some(sorted[rank.min(sorted.len()) - 1])
}

fn since(days: u32) -> String {
    let now = crate::services::timing::now_ms() as i64;
    chrono::DateTime::from_timestamp_millis(now - days as i64 * 86_400_000)
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

fn f(v: &Value, key: &str) -> f64 {
    v[key].as_f64().unwrap_or(0.0)
}

/// A rate (success, failure), to 4 decimals.
fn ratio(a: f64, b: f64) -> Option<f64> {
    (b > 0.0).then(|| ((a / b) * 1e4).round() / 1e4)
}

/// Money per unit, unrounded: a cost per token is far below 1e-4.
fn per(a: f64, b: f64) -> Option<f64> {
    (b > 0.0).then(|| a / b)
}

/// `GET /api/stats`: the caller's jobs.
pub async fn jobs(db: &Database, scope: Option<&str>, days: u32) -> AppResult<Value> {
    let from = since(days);
    let binds = [StatBind::OptText(scope), StatBind::Text(&from)];
    let by_status = db
        .aggregate("job statistics", JOBS_BY_STATUS, &binds)
        .await?;
    let times: Vec<f64> = db
        .aggregate("processing times", PROCESSING_TIMES, &binds)
        .await?
        .iter()
        .map(|r| f(r, "ms"))
        .collect();
    let total: f64 = by_status.iter().map(|r| f(r, "jobs")).sum();
    let count = |s: &str| {
        by_status
            .iter()
            .find(|r| r["status"] == s)
            .map(|r| f(r, "jobs"))
            .unwrap_or(0.0)
    };
    let completed = by_status.iter().find(|r| r["status"] == "completed");
    let unknown: f64 = by_status.iter().map(|r| f(r, "unknown_cost_jobs")).sum();
    let cost: f64 = by_status.iter().map(|r| f(r, "cost_usd")).sum();
    Ok(tidy(json!({
        "scope": scope.unwrap_or("all"),
        "days": days,
        "jobs": {"total": total, "byStatus": {"completed": count("completed"), "failed": count("failed"), "processing": count("processing")}},
        "successRate": ratio(count("completed"), count("completed") + count("failed")),
        "averageQualityScore": completed.and_then(|r| r["avg_quality"].as_f64()),
        "processingTimeMs": {"p50": percentile(&times, 50.0), "p90": percentile(&times, 90.0), "p99": percentile(&times, 99.0)},
        "tokens": {"input": by_status.iter().map(|r| f(r, "tokens_input")).sum::<f64>(), "output": by_status.iter().map(|r| f(r, "tokens_output")).sum::<f64>()},
        "costUsd": if unknown > 0.0 { None } else { Some(cost) },
        "jobsWithUnknownCost": unknown,
    })))
}

/// `GET /api/economy/stats`: consumption from recorded attempts.
pub async fn economy(db: &Database, scope: Option<&str>, days: u32) -> AppResult<Value> {
    let from = since(days);
    let binds = [StatBind::OptText(scope), StatBind::Text(&from)];
    let totals = db
        .aggregate("consumption totals", CONSUMPTION_TOTALS, &binds)
        .await?
        .into_iter()
        .next()
        .unwrap_or_else(|| json!({}));
    let daily: Vec<DailyConsumption> = typed(
        "daily consumption",
        db.aggregate("daily consumption", CONSUMPTION_DAILY, &binds)
            .await?,
    )?;
    let by_provider = provider_rows(
        db.aggregate("consumption by provider", CONSUMPTION_BY_PROVIDER, &binds)
            .await?,
    )?;
    let by_model: Vec<ModelConsumption> = typed(
        "consumption by model",
        db.aggregate("consumption by model", CONSUMPTION_BY_MODEL, &binds)
            .await?,
    )?;
    let tokens = f(&totals, "tokens_input") + f(&totals, "tokens_output");
    let cost = f(&totals, "cost_usd");
    let efficiency = crate::helpers::economy::efficiency_of(
        f(&totals, "tokens_output"),
        tokens,
        f(&totals, "latency_ms"),
        Some(cost),
    );
    Ok(tidy(json!({
        "scope": scope.unwrap_or("all"),
        "days": days,
        "totals": {
            "attempts": f(&totals, "attempts"),
            "jobs": f(&totals, "jobs"),
            "tokens": {"input": f(&totals, "tokens_input"), "output": f(&totals, "tokens_output"), "cached": f(&totals, "tokens_cached"), "total": tokens},
            "costUsd": cost,
            "unpricedAttempts": f(&totals, "unpriced_attempts"),
        },
        "daily": daily,
        "byProvider": by_provider,
        "byModel": by_model,
        "costPerJob": per(cost, f(&totals, "jobs")),
        "efficiency": efficiency,
    })))
}

/// Per-template performance from the daily rollup.
fn template_rows(rows: &[Value]) -> Vec<Value> {
    rows.iter()
        .map(|r| {
            let jobs = f(r, "jobs");
            let completed = f(r, "completed");
            json!({
                "templateName": r["template_name"],
                "structureType": r["structure_type"],
                "jobs": jobs,
                "completed": completed,
                "failed": f(r, "failed"),
                "successRate": ratio(completed, jobs),
                "averageQualityScore": ratio(f(r, "quality_sum"), completed),
                "validationFailureRate": ratio(f(r, "validation_failures"), completed),
                "averageProcessingTimeMs": per(f(r, "processing_ms_sum"), jobs).map(f64::round),
                "averageCostUsd": per(f(r, "cost_usd_sum"), jobs),
                "tokens": f(r, "tokens_sum"),
            })
        })
        .collect()
}

/// `GET /api/admin/stats`: across clients.
pub async fn admin(db: &Database, days: u32) -> AppResult<Value> {
    let from = since(days);
    let jobs = jobs(db, None, days).await?;
    let templates = template_rows(
        &db.aggregate(
            "template performance",
            TEMPLATE_PERFORMANCE,
            &[StatBind::Text(&from)],
        )
        .await?,
    );
    let providers = provider_rows(
        db.aggregate(
            "consumption by provider",
            CONSUMPTION_BY_PROVIDER,
            &[StatBind::OptText(None), StatBind::Text(&from)],
        )
        .await?,
    )?;
    let clients: Vec<ClientJobs> = typed(
        "jobs by client",
        db.aggregate("jobs by client", JOBS_BY_CLIENT, &[StatBind::Text(&from)])
            .await?,
    )?;
    Ok(tidy(
        json!({"days": days, "jobs": jobs, "templates": templates, "providers": providers, "clients": clients}),
    ))
}

/// Recommendations that follow from the numbers, each naming its evidence.
pub fn recommendations(templates: &[Value], providers: &[Value]) -> Vec<String> {
    let mut out = Vec::new();
    for t in templates {
        let name = t["templateName"].as_str().unwrap_or("?");
        if let Some(rate) = t["successRate"]
            .as_f64()
            .filter(|r| *r < 0.8 && f(t, "jobs") >= 5.0)
        {
            out.push(format!("template {name}: success rate {:.0}% over {} jobs; review its prompt and provider settings", rate * 100.0, f(t, "jobs")));
        }
        if let Some(rate) = t["validationFailureRate"].as_f64().filter(|r| *r > 0.3) {
            out.push(format!("template {name}: {:.0}% of validated jobs fail validation; tighten the prompt's guidance", rate * 100.0));
        }
        if let Some(q) = t["averageQualityScore"].as_f64().filter(|q| *q < 0.7) {
            out.push(format!(
                "template {name}: average quality {q:.2} is below 0.70"
            ));
        }
    }
    for p in providers {
        let name = p["provider"].as_str().unwrap_or("?");
        let attempts = f(p, "attempts");
        if let Some(rate) =
            ratio(f(p, "successes"), attempts).filter(|r| *r < 0.8 && attempts >= 5.0)
        {
            out.push(format!("provider {name}: only {:.0}% of {attempts} attempts succeed; consider moving it later in AI_PROVIDER_ORDER", rate * 100.0));
        }
    }
    if templates.is_empty() {
        out.push("no jobs in this period: nothing to recommend yet".into());
    }
    out
}

/// `GET /api/admin/analytics`.
pub async fn analytics(db: &Database, days: u32) -> AppResult<Value> {
    let from = since(days);
    let templates = template_rows(
        &db.aggregate(
            "template performance",
            TEMPLATE_PERFORMANCE,
            &[StatBind::Text(&from)],
        )
        .await?,
    );
    let daily: Vec<Value> = db
        .aggregate("daily analytics", ANALYTICS_DAILY, &[StatBind::Text(&from)])
        .await?
        .iter()
        .map(|d| json!({"date": d["date"], "jobs": f(d, "jobs"), "completed": f(d, "completed"), "failed": f(d, "failed"),
            "averageQualityScore": ratio(f(d, "quality_sum"), f(d, "completed")), "costUsd": f(d, "cost_usd")}))
        .collect();
    let types: Vec<TypeJobs> = typed(
        "structure types",
        db.aggregate(
            "structure types",
            TYPE_DISTRIBUTION,
            &[StatBind::Text(&from)],
        )
        .await?,
    )?;
    let providers: Vec<Value> = db
        .aggregate("provider comparison", CONSUMPTION_BY_PROVIDER, &[StatBind::OptText(None), StatBind::Text(&from)])
        .await?
        .into_iter()
        .map(|p| {
            let tokens = f(&p, "tokens_input") + f(&p, "tokens_output");
            json!({"provider": p["provider"], "attempts": f(&p, "attempts"), "successRate": ratio(f(&p, "successes"), f(&p, "attempts")),
                "averageLatencyMs": p["avg_latency_ms"], "costUsd": f(&p, "cost_usd"), "costPer1kTokens": per(f(&p, "cost_usd") * 1000.0, tokens),
                "successes": f(&p, "successes")})
        })
        .collect();
    let recs = recommendations(&templates, &providers);
    Ok(tidy(
        json!({"days": days, "templates": templates, "daily": daily, "structureTypes": types, "providers": providers, "recommendations": recs}),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank() {
        let v = [10.0, 20.0, 30.0, 40.0];
        assert_eq!(percentile(&v, 50.0), Some(20.0));
        assert_eq!(percentile(&v, 99.0), Some(40.0));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn tidy_turns_integral_floats_into_integers() {
        assert_eq!(
            tidy(json!({"a": 3.0, "b": [0.5, 2.0], "c": 0.000000317})),
            json!({"a": 3, "b": [0.5, 2], "c": 0.000000317})
        );
    }

    #[test]
    fn recommendations_name_their_evidence() {
        let t = vec![
            json!({"templateName": "x", "jobs": 10, "successRate": 0.5, "validationFailureRate": 0.5, "averageQualityScore": 0.6}),
        ];
        let p = vec![json!({"provider": "openai", "attempts": 10, "successes": 5})];
        let r = recommendations(&t, &p);
        assert_eq!(r.len(), 4);
        assert!(r[0].contains("success rate 50% over 10 jobs"));
        assert!(r[3].contains("openai"));
        assert_eq!(recommendations(&[], &[]).len(), 1);
    }
}
