//! The alerts' reads (`services::alerts`): one batch over `request_counts`,
//! `resource_consumption`, `granulation_jobs` and `tenant_daily_spend`; and
//! the 10-second request counter every authenticated request bumps.

use super::{batch_rows, flag, t, Database};
use crate::services::alerts::Observed;
use bitware_kit::error::AppResult;
use serde::Deserialize;

/// `?1` is the window's start (ISO); 10-second buckets compare on its first 18 characters.
const REQUESTS: &str = "SELECT coalesce(sum(requests), 0) AS requests, coalesce(sum(server_errors), 0) AS server_errors, \
    coalesce(sum(kam_failures), 0) AS kam_failures FROM request_counts WHERE bucket >= substr(?1, 1, 18)";

/// Failed at the provider: its HTTP error, a timeout, the network. Invalid,
/// truncated or refused answers are the model's, and `budget_refused` is ours.
const PROVIDERS: &str = "SELECT provider, count(*) AS attempts, \
    sum(CASE WHEN status IN ('http_error', 'timeout', 'network_error') THEN 1 ELSE 0 END) AS errors \
    FROM resource_consumption WHERE created_at >= ?1 AND provider != 'offline' GROUP BY provider ORDER BY provider";

/// Nearest-rank p95 of the window's completed jobs (the row at ceil(0.95 n)).
const JOB_P95: &str = "WITH done AS (SELECT processing_time_ms AS ms FROM granulation_jobs \
    WHERE status = 'completed' AND completed_at >= ?1 AND processing_time_ms IS NOT NULL) \
    SELECT (SELECT count(*) FROM done) AS jobs, \
    (SELECT ms FROM done ORDER BY ms LIMIT 1 OFFSET max(0, ((SELECT count(*) FROM done) * 95 + 99) / 100 - 1)) AS p95_ms";

const FAILED: &str = "SELECT coalesce(sum(CASE WHEN failure_code = 'abandoned' THEN 1 ELSE 0 END), 0) AS abandoned, \
    coalesce(sum(CASE WHEN failure_code = 'dead_lettered' THEN 1 ELSE 0 END), 0) AS dead_lettered \
    FROM granulation_jobs WHERE status = 'failed' AND updated_at >= ?1";

/// `?2` is today (UTC): caps are daily, whatever the window.
const SPEND: &str = "SELECT tier, count(*) AS tenants, max(reserved_usd + spent_usd) AS highest_usd \
    FROM tenant_daily_spend WHERE day = ?2 AND tier IS NOT NULL AND (reserved_usd + spent_usd) > 0 GROUP BY tier ORDER BY tier";

#[derive(Deserialize)]
struct Requests {
    requests: u64,
    server_errors: u64,
    kam_failures: u64,
}

#[derive(Deserialize)]
struct Provider {
    provider: String,
    attempts: u64,
    errors: Option<u64>,
}

#[derive(Deserialize)]
struct P95 {
    jobs: u64,
    p95_ms: Option<f64>,
}

#[derive(Deserialize)]
struct Failed {
    abandoned: u64,
    dead_lettered: u64,
}

#[derive(Deserialize)]
struct Spend {
    tier: String,
    tenants: u64,
    highest_usd: Option<f64>,
}

impl Database {
    /// What the alerts read, from `since` (ISO) and for `today` (`YYYY-MM-DD`).
    pub async fn alert_window(&self, since: &str, today: &str) -> AppResult<Observed> {
        let binds = [t(since), t(today)];
        let statements = vec![
            self.stmt(REQUESTS, &binds[..1])?,
            self.stmt(PROVIDERS, &binds[..1])?,
            self.stmt(JOB_P95, &binds[..1])?,
            self.stmt(FAILED, &binds[..1])?,
            self.stmt(SPEND, &binds)?,
        ];
        let results = self.batch("reading the alerts' window", statements).await?;
        let context = "reading the alerts' window";
        let requests = batch_rows::<Requests>(context, results.first())?.pop();
        let providers = batch_rows::<Provider>(context, results.get(1))?;
        let p95 = batch_rows::<P95>(context, results.get(2))?.pop();
        let failed = batch_rows::<Failed>(context, results.get(3))?.pop();
        let spend = batch_rows::<Spend>(context, results.get(4))?;
        let (requests, server_errors, kam_failures) = requests
            .map(|r| (r.requests, r.server_errors, r.kam_failures))
            .unwrap_or_default();
        Ok(Observed {
            requests,
            server_errors,
            kam_failures,
            providers: providers
                .into_iter()
                .map(|p| (p.provider, (p.attempts, p.errors.unwrap_or(0))))
                .collect(),
            completed_jobs: p95.as_ref().map_or(0, |p| p.jobs),
            job_duration_p95_ms: p95.and_then(|p| p.p95_ms),
            jobs_abandoned: failed.as_ref().map_or(0, |f| f.abandoned),
            jobs_dead_lettered: failed.map_or(0, |f| f.dead_lettered),
            spend_today: spend
                .into_iter()
                .map(|s| (s.tier, (s.tenants, s.highest_usd.unwrap_or(0.0))))
                .collect(),
        })
    }

    /// One request in `bucket` (`YYYY-MM-DDTHH:MM:S`), and whether it ended
    /// 5xx or on an unavailable KAM.
    pub async fn count_request(
        &self,
        bucket: &str,
        server_error: bool,
        kam_failure: bool,
    ) -> AppResult<()> {
        let stmt = self.stmt(
            "INSERT INTO request_counts (bucket, requests, server_errors, kam_failures) VALUES (?1, 1, ?2, ?3) \
             ON CONFLICT (bucket) DO UPDATE SET requests = requests + 1, \
             server_errors = server_errors + excluded.server_errors, kam_failures = kam_failures + excluded.kam_failures",
            &[t(bucket), flag(server_error), flag(kam_failure)],
        )?;
        self.run("counting a request", stmt).await.map(|_| ())
    }

    /// Forget request counts from before `before` (ISO; the cron keeps 8 days).
    pub async fn prune_request_counts(&self, before: &str) -> AppResult<usize> {
        let stmt = self.stmt(
            "DELETE FROM request_counts WHERE bucket < substr(?1, 1, 18)",
            &[t(before)],
        )?;
        self.run("pruning request counts", stmt).await
    }
}
