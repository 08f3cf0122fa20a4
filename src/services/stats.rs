//! Statistics, economy and analytics from recorded data only (seed §7.2, §9.2).
//! Every figure is an aggregate of `database::stats` over `granulation_jobs`,
//! `resource_consumption` or `template_analytics`; none is hard-coded. Each
//! route's answer is a typed struct; `render` turns it into its JSON.

use crate::helpers::economy::Efficiency;
use crate::services::database::{
    AnalyticsDay, ClientJobs, DailyConsumption, Database, JobsByStatus, ModelConsumption,
    ProviderConsumption, TemplatePerformance, TypeJobs,
};
use crate::types::env::App;
use crate::types::job::JobStatus;
use bitware_kit::error::AppResult;
use serde::Serialize;
use serde_json::{json, Map, Value};

/// `GET /api/stats`: the caller's jobs (`jobs` of `GET /api/admin/stats`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobStats {
    pub scope: String,
    pub days: u32,
    pub jobs: JobCounts,
    pub success_rate: Option<f64>,
    pub average_quality_score: Option<f64>,
    pub processing_time_ms: Percentiles,
    pub tokens: InputOutput,
    pub cost_usd: Option<f64>,
    pub jobs_with_unknown_cost: u64,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobCounts {
    pub total: u64,
    pub by_status: ByStatus,
}

#[derive(Debug, Clone, Serialize)]
pub struct ByStatus {
    pub completed: u64,
    pub failed: u64,
    pub processing: u64,
    /// Stopped by a cancel: neither a success nor a failure (not in `successRate`).
    pub cancelled: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Percentiles {
    pub p50: Option<f64>,
    pub p90: Option<f64>,
    pub p99: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct InputOutput {
    pub input: u64,
    pub output: u64,
}

/// `GET /api/economy/stats`: consumption from recorded attempts.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EconomyStats {
    pub scope: String,
    pub days: u32,
    pub totals: ConsumptionSummary,
    pub daily: Vec<DailyConsumption>,
    pub by_provider: Vec<ProviderConsumption>,
    pub by_model: Vec<ModelConsumption>,
    pub cost_per_job: Option<f64>,
    pub efficiency: Efficiency,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsumptionSummary {
    pub attempts: u64,
    pub jobs: u64,
    pub tokens: TokenTotals,
    pub cost_usd: f64,
    pub unpriced_attempts: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct TokenTotals {
    pub input: u64,
    pub output: u64,
    pub cached: u64,
    pub total: u64,
}

/// `GET /api/admin/stats`: across clients.
#[derive(Debug, Clone, Serialize)]
pub struct AdminStats {
    pub days: u32,
    pub jobs: JobStats,
    pub templates: Vec<TemplateStats>,
    pub providers: Vec<ProviderConsumption>,
    pub clients: Vec<ClientJobs>,
}

/// One template's performance from the daily rollup.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TemplateStats {
    pub template_name: String,
    pub structure_type: String,
    pub jobs: u64,
    pub completed: u64,
    pub failed: u64,
    pub success_rate: Option<f64>,
    pub average_quality_score: Option<f64>,
    pub validation_failure_rate: Option<f64>,
    pub average_processing_time_ms: Option<f64>,
    pub average_cost_usd: Option<f64>,
    pub tokens: u64,
}

/// `GET /api/admin/analytics`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Analytics {
    pub days: u32,
    pub templates: Vec<TemplateStats>,
    pub daily: Vec<DayStats>,
    pub structure_types: Vec<TypeJobs>,
    pub providers: Vec<ProviderComparison>,
    pub recommendations: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DayStats {
    pub date: String,
    pub jobs: u64,
    pub completed: u64,
    pub failed: u64,
    pub average_quality_score: Option<f64>,
    pub cost_usd: f64,
}

/// A provider compared with the others (analytics `providers[]`).
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProviderComparison {
    pub provider: String,
    pub attempts: u64,
    pub success_rate: Option<f64>,
    pub average_latency_ms: Option<f64>,
    pub cost_usd: f64,
    #[serde(rename = "costPer1kTokens")]
    pub cost_per_1k_tokens: Option<f64>,
    pub successes: u64,
}

/// A stats answer as JSON, integral numbers as integers.
pub fn render<T: Serialize>(stats: &T) -> Value {
    tidy(serde_json::to_value(stats).unwrap_or(Value::Null))
}

/// Integral floats (sums and averages of whole numbers) back to integers.
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
    crate::services::timing::iso_of(now - days as i64 * 86_400_000)
}

/// A rate (success, failure), to 4 decimals.
fn ratio(a: f64, b: f64) -> Option<f64> {
    (b > 0.0).then(|| ((a / b) * 1e4).round() / 1e4)
}

/// Money per unit, unrounded: a cost per token is far below 1e-4.
fn per(a: f64, b: f64) -> Option<f64> {
    (b > 0.0).then(|| a / b)
}

fn num(x: Option<u64>) -> u64 {
    x.unwrap_or(0)
}

/// The job figures of a window from its per-status rows and sorted times.
pub fn job_stats(
    scope: Option<&str>,
    days: u32,
    by_status: &[JobsByStatus],
    times_ms: &[u64],
) -> JobStats {
    let times: Vec<f64> = times_ms.iter().map(|t| *t as f64).collect();
    let row = |s: JobStatus| by_status.iter().find(|r| r.status == s);
    let count = |s: JobStatus| row(s).map(|r| r.jobs).unwrap_or(0);
    let (completed, failed) = (count(JobStatus::Completed), count(JobStatus::Failed));
    let unknown: u64 = by_status.iter().map(|r| num(r.unknown_cost_jobs)).sum();
    let cost: f64 = by_status.iter().map(|r| r.cost_usd.unwrap_or(0.0)).sum();
    JobStats {
        scope: scope.unwrap_or("all").to_string(),
        days,
        jobs: JobCounts {
            total: by_status.iter().map(|r| r.jobs).sum(),
            by_status: ByStatus {
                completed,
                failed,
                processing: count(JobStatus::Processing),
                cancelled: count(JobStatus::Cancelled),
            },
        },
        success_rate: ratio(completed as f64, (completed + failed) as f64),
        average_quality_score: row(JobStatus::Completed).and_then(|r| r.avg_quality),
        processing_time_ms: Percentiles {
            p50: percentile(&times, 50.0),
            p90: percentile(&times, 90.0),
            p99: percentile(&times, 99.0),
        },
        tokens: InputOutput {
            input: by_status.iter().map(|r| num(r.tokens_input)).sum(),
            output: by_status.iter().map(|r| num(r.tokens_output)).sum(),
        },
        cost_usd: (unknown == 0).then_some(cost),
        jobs_with_unknown_cost: unknown,
    }
}

/// `GET /api/stats`: the caller's jobs.
pub async fn jobs(app: &App, scope: Option<&str>, days: u32) -> AppResult<JobStats> {
    let db = Database::new(app)?;
    jobs_with(&db, scope, days).await
}

async fn jobs_with(db: &Database, scope: Option<&str>, days: u32) -> AppResult<JobStats> {
    let from = since(days);
    let by_status = db.jobs_by_status(scope, &from).await?;
    let times = db.processing_times(scope, &from).await?;
    Ok(job_stats(scope, days, &by_status, &times))
}

fn provider_rows(mut rows: Vec<ProviderConsumption>) -> Vec<ProviderConsumption> {
    for p in &mut rows {
        p.success_rate = ratio(num(p.successes) as f64, p.attempts as f64);
    }
    rows
}

/// `GET /api/economy/stats`: consumption from recorded attempts.
pub async fn economy(app: &App, scope: Option<&str>, days: u32) -> AppResult<EconomyStats> {
    let db = Database::new(app)?;
    let from = since(days);
    let totals = db.consumption_totals(scope, &from).await?;
    let daily = db.consumption_daily(scope, &from).await?;
    let by_provider = provider_rows(db.consumption_by_provider(scope, &from).await?);
    let by_model = db.consumption_by_model(scope, &from).await?;
    let (input, output) = (num(totals.tokens_input), num(totals.tokens_output));
    let tokens = input + output;
    let cost = totals.cost_usd.unwrap_or(0.0);
    let efficiency = crate::helpers::economy::efficiency_of(
        output as f64,
        tokens as f64,
        num(totals.latency_ms) as f64,
        Some(cost),
    );
    Ok(EconomyStats {
        scope: scope.unwrap_or("all").to_string(),
        days,
        totals: ConsumptionSummary {
            attempts: totals.attempts,
            jobs: totals.jobs,
            tokens: TokenTotals {
                input,
                output,
                cached: num(totals.tokens_cached),
                total: tokens,
            },
            cost_usd: cost,
            unpriced_attempts: num(totals.unpriced_attempts),
        },
        daily,
        by_provider,
        by_model,
        cost_per_job: per(cost, totals.jobs as f64),
        efficiency,
    })
}

/// Per-template performance from the daily rollup.
pub fn template_stats(rows: &[TemplatePerformance]) -> Vec<TemplateStats> {
    rows.iter()
        .map(|r| {
            let (jobs, completed) = (r.jobs as f64, r.completed as f64);
            TemplateStats {
                template_name: r.template_name.clone(),
                structure_type: r.structure_type.clone(),
                jobs: r.jobs,
                completed: r.completed,
                failed: r.failed,
                success_rate: ratio(completed, jobs),
                average_quality_score: ratio(r.quality_sum.unwrap_or(0.0), completed),
                validation_failure_rate: ratio(r.validation_failures as f64, completed),
                average_processing_time_ms: per(num(r.processing_ms_sum) as f64, jobs)
                    .map(f64::round),
                average_cost_usd: per(r.cost_usd_sum.unwrap_or(0.0), jobs),
                tokens: num(r.tokens_sum),
            }
        })
        .collect()
}

/// `GET /api/admin/stats`: across clients.
pub async fn admin(app: &App, days: u32) -> AppResult<AdminStats> {
    let db = Database::new(app)?;
    let from = since(days);
    let jobs = jobs_with(&db, None, days).await?;
    let templates = template_stats(&db.template_performance(&from).await?);
    let providers = provider_rows(db.consumption_by_provider(None, &from).await?);
    let clients = db.jobs_by_client(&from).await?;
    Ok(AdminStats {
        days,
        jobs,
        templates,
        providers,
        clients,
    })
}

/// Recommendations that follow from the numbers, each naming its evidence.
pub fn recommendations(
    templates: &[TemplateStats],
    providers: &[ProviderComparison],
) -> Vec<String> {
    let mut out = Vec::new();
    for t in templates {
        let name = &t.template_name;
        if let Some(rate) = t.success_rate.filter(|r| *r < 0.8 && t.jobs >= 5) {
            out.push(format!("template {name}: success rate {:.0}% over {} jobs; review its prompt and provider settings", rate * 100.0, t.jobs));
        }
        if let Some(rate) = t.validation_failure_rate.filter(|r| *r > 0.3) {
            out.push(format!("template {name}: {:.0}% of validated jobs fail validation; tighten the prompt's guidance", rate * 100.0));
        }
        if let Some(q) = t.average_quality_score.filter(|q| *q < 0.7) {
            out.push(format!(
                "template {name}: average quality {q:.2} is below 0.70"
            ));
        }
    }
    for p in providers {
        let name = &p.provider;
        let attempts = p.attempts;
        if let Some(rate) =
            ratio(p.successes as f64, attempts as f64).filter(|r| *r < 0.8 && attempts >= 5)
        {
            out.push(format!("provider {name}: only {:.0}% of {attempts} attempts succeed; consider moving it later in AI_PROVIDER_ORDER", rate * 100.0));
        }
    }
    if templates.is_empty() {
        out.push("no jobs in this period: nothing to recommend yet".into());
    }
    out
}

fn day_stats(d: &AnalyticsDay) -> DayStats {
    DayStats {
        date: d.date.clone(),
        jobs: d.jobs,
        completed: d.completed,
        failed: d.failed,
        average_quality_score: ratio(d.quality_sum.unwrap_or(0.0), d.completed as f64),
        cost_usd: d.cost_usd.unwrap_or(0.0),
    }
}

fn provider_comparison(p: &ProviderConsumption) -> ProviderComparison {
    let successes = num(p.successes);
    let cost = p.cost_usd.unwrap_or(0.0);
    let tokens = num(p.tokens_input) + num(p.tokens_output);
    ProviderComparison {
        provider: p.provider.clone(),
        attempts: p.attempts,
        success_rate: ratio(successes as f64, p.attempts as f64),
        average_latency_ms: p.avg_latency_ms,
        cost_usd: cost,
        cost_per_1k_tokens: per(cost * 1000.0, tokens as f64),
        successes,
    }
}

/// `GET /api/admin/analytics`.
pub async fn analytics(app: &App, days: u32) -> AppResult<Analytics> {
    let db = Database::new(app)?;
    let from = since(days);
    let templates = template_stats(&db.template_performance(&from).await?);
    let daily = db
        .analytics_daily(&from)
        .await?
        .iter()
        .map(day_stats)
        .collect();
    let structure_types = db.jobs_by_type(&from).await?;
    let providers: Vec<ProviderComparison> = db
        .consumption_by_provider(None, &from)
        .await?
        .iter()
        .map(provider_comparison)
        .collect();
    let recommendations = recommendations(&templates, &providers);
    Ok(Analytics {
        days,
        templates,
        daily,
        structure_types,
        providers,
        recommendations,
    })
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
        let t = vec![TemplateStats {
            template_name: "x".into(),
            jobs: 10,
            success_rate: Some(0.5),
            validation_failure_rate: Some(0.5),
            average_quality_score: Some(0.6),
            ..TemplateStats::default()
        }];
        let p = vec![ProviderComparison {
            provider: "openai".into(),
            attempts: 10,
            successes: 5,
            ..ProviderComparison::default()
        }];
        let r = recommendations(&t, &p);
        assert_eq!(r.len(), 4);
        assert!(r[0].contains("success rate 50% over 10 jobs"));
        assert!(r[3].contains("openai"));
        assert_eq!(recommendations(&[], &[]).len(), 1);
    }

    fn status(status: JobStatus, jobs: u64, cost: Option<f64>, unknown: u64) -> JobsByStatus {
        JobsByStatus {
            status,
            jobs,
            avg_quality: (status == JobStatus::Completed).then_some(0.875),
            cost_usd: cost,
            unknown_cost_jobs: Some(unknown),
            tokens_input: Some(jobs * 100),
            tokens_output: Some(jobs * 200),
        }
    }

    /// The documented `GET /api/stats` shape, every field name pinned.
    #[test]
    fn job_stats_render_the_documented_shape() {
        let rows = [
            status(JobStatus::Completed, 3, Some(0.03), 0),
            status(JobStatus::Failed, 1, Some(0.0), 0),
            status(JobStatus::Cancelled, 1, Some(0.01), 0),
        ];
        let body = render(&job_stats(Some("c"), 30, &rows, &[100, 200, 300]));
        assert_eq!(
            body,
            json!({
                "scope": "c", "days": 30,
                "jobs": {"total": 5, "byStatus": {"completed": 3, "failed": 1, "processing": 0, "cancelled": 1}},
                // A cancelled job is neither a success nor a failure.
                "successRate": 0.75, "averageQualityScore": 0.875,
                "processingTimeMs": {"p50": 200, "p90": 300, "p99": 300},
                "tokens": {"input": 500, "output": 1000},
                "costUsd": 0.04, "jobsWithUnknownCost": 0,
            })
        );
        // One unpriced job makes the total unknown, not low.
        let rows = [status(JobStatus::Completed, 2, Some(0.02), 1)];
        let body = render(&job_stats(None, 7, &rows, &[]));
        assert_eq!(body["scope"], "all");
        assert_eq!(body["costUsd"], Value::Null);
        assert_eq!(body["jobsWithUnknownCost"], 1);
        assert_eq!(body["processingTimeMs"]["p50"], Value::Null);
    }

    #[test]
    fn template_and_provider_figures_render_the_documented_names() {
        let t = template_stats(&[TemplatePerformance {
            template_name: "course_basic".into(),
            structure_type: "course".into(),
            jobs: 4,
            completed: 2,
            failed: 2,
            validation_failures: 1,
            quality_sum: Some(1.5),
            processing_ms_sum: Some(1001),
            cost_usd_sum: Some(0.4),
            tokens_sum: Some(900),
        }]);
        assert_eq!(
            render(&t),
            json!([{"templateName": "course_basic", "structureType": "course", "jobs": 4, "completed": 2, "failed": 2,
                "successRate": 0.5, "averageQualityScore": 0.75, "validationFailureRate": 0.5,
                "averageProcessingTimeMs": 250, "averageCostUsd": 0.1, "tokens": 900}])
        );
        let p = provider_comparison(&ProviderConsumption {
            provider: "openai".into(),
            attempts: 4,
            successes: Some(3),
            tokens_input: Some(1000),
            tokens_output: Some(1000),
            cost_usd: Some(0.5),
            avg_latency_ms: Some(20.0),
            success_rate: None,
        });
        assert_eq!(
            render(&p),
            json!({"provider": "openai", "attempts": 4, "successRate": 0.75, "averageLatencyMs": 20,
                "costUsd": 0.5, "costPer1kTokens": 0.25, "successes": 3})
        );
    }
}
