//! `/health`'s checks: D1 (reachable, and its migrations applied), KV, R2,
//! KAM and the deployment's environment. Every check reads; none writes, and
//! no AI provider is called.

use crate::services::database::Database;
use crate::services::timing::with_timeout;
use crate::services::{kam, migrations, storage};
use crate::types::env::{App, JOB_CACHE, STRUCTURE_STORAGE};
use crate::types::limits::Tier;
use serde::Serialize;

const CHECK_TIMEOUT_MS: u64 = 3_000;

/// One check's result as `/health` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Check {
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl From<Result<(), String>> for Check {
    fn from(result: Result<(), String>) -> Check {
        match result {
            Ok(()) => Check {
                ok: true,
                error: None,
            },
            Err(e) => Check {
                ok: false,
                error: Some(e),
            },
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Checks {
    pub database: Check,
    pub kv: Check,
    pub r2: Check,
    pub kam: Check,
    pub environment: Check,
}

impl Checks {
    pub fn healthy(&self) -> bool {
        [
            &self.database,
            &self.kv,
            &self.r2,
            &self.kam,
            &self.environment,
        ]
        .iter()
        .all(|c| c.ok)
    }
}

/// Run every check at once, each capped at a few seconds.
pub async fn checks(app: &App, host: &str) -> Checks {
    let database = async {
        let db = Database::new(app).map_err(|e| e.message)?;
        with_timeout(CHECK_TIMEOUT_MS, db.ping())
            .await
            .ok_or("timed out")?
            .map_err(|e| e.message)?;
        // Reachable is not enough: a schema behind this code fails every route.
        with_timeout(CHECK_TIMEOUT_MS, migrations::check(&db))
            .await
            .ok_or("timed out")?
    };
    let kam_client = app.kam();
    let (database, kv, r2, kam) = futures_util::join!(
        database,
        storage::kv_reachable(&app.env, JOB_CACHE, CHECK_TIMEOUT_MS),
        storage::r2_reachable(&app.env, STRUCTURE_STORAGE, CHECK_TIMEOUT_MS),
        kam::reachable(&kam_client)
    );
    Checks {
        database: database.into(),
        kv: kv.into(),
        r2: r2.into(),
        kam: kam.into(),
        environment: environment_check(&app.config.environment, host).into(),
    }
}

/// What this deployment runs without, or misconfigured (none is fatal).
pub fn warnings(app: &App) -> Vec<String> {
    let mut warnings = app.config.providers.order_problems();
    warnings.extend(app.config.pricing_error.clone());
    warnings.extend(app.config.limits_errors.iter().cloned());
    warnings.extend(app.config.alerts.error.clone());
    for tier in Tier::ALL {
        if app.env.rate_limiter(tier.rate_limit_binding()).is_err() {
            warnings.push(format!(
                "the {} binding is missing: {} clients are not rate limited",
                tier.rate_limit_binding(),
                tier.as_str()
            ));
        }
    }
    if app.config.shared_secret.is_none() {
        warnings.push(
            "SHARED_SECRET is not set: worker authentication and KAM calls are refused".into(),
        );
    }
    warnings
}

/// A worker that is not on loopback runs as `production` or `staging`: the
/// top level of wrangler.toml (ENVIRONMENT=development) is for local dev,
/// and a plain `wrangler deploy` that shipped it must not go unnoticed.
pub fn environment_check(environment: &str, host: &str) -> Result<(), String> {
    let local = host == "localhost"
        || host.ends_with(".localhost")
        || host.starts_with("127.")
        || host == "[::1]"
        || host == "::1";
    if local || matches!(environment, "production" | "staging") {
        Ok(())
    } else {
        Err(format!(
            "ENVIRONMENT is `{environment}` on {host}: deployed without --env? Deploy with `npm run deploy` (--env production) or `npm run deploy:staging`"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_development_build_off_loopback_is_reported() {
        assert!(environment_check("development", "127.0.0.1").is_ok());
        assert!(environment_check("development", "localhost").is_ok());
        assert!(environment_check("production", "granulator.example.com").is_ok());
        assert!(environment_check("staging", "granulator.example.workers.dev").is_ok());
        let e = environment_check("development", "granulator.example.workers.dev").unwrap_err();
        assert!(e.contains("--env"), "{e}");
    }

    #[test]
    fn checks_show_ok_and_the_error_of_a_failed_one() {
        let ok = Check::from(Ok(()));
        let failed = Check::from(Err("timed out".to_string()));
        assert_eq!(serde_json::to_value(&ok).unwrap(), json!({"ok": true}));
        assert_eq!(
            serde_json::to_value(&failed).unwrap(),
            json!({"ok": false, "error": "timed out"})
        );
        let mut all = Checks {
            database: ok.clone(),
            kv: ok.clone(),
            r2: ok.clone(),
            kam: ok.clone(),
            environment: ok,
        };
        assert!(all.healthy());
        all.kam = failed;
        assert!(!all.healthy());
    }
}
