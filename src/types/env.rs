//! The worker's bindings and configuration (seed §13.1), read once per
//! isolate: vars and secrets do not change within an isolate's life (a new
//! deployment, or `wrangler dev` reloading, starts a new one).

use crate::services::alerts::AlertConfig;
use crate::types::limits::Limits;
use crate::types::pricing::Pricing;
use crate::types::provider::{Secret, Settings};
use crate::types::provider_setup::ProviderSetup;
use bitware_kit::ai::gate::HeaderGate;
use bitware_kit::kam::Kam;
use bitware_kit::storage::Shelf;
use std::rc::Rc;
use worker::Env;

pub const DB: &str = "DB";
pub const TEMPLATE_CACHE: &str = "TEMPLATE_CACHE";
pub const JOB_CACHE: &str = "JOB_CACHE";
pub const STRUCTURE_STORAGE: &str = "STRUCTURE_STORAGE";
pub use bitware_kit::kam::KEY_ACCOUNT_MANAGER;
pub const AI: &str = "AI";
pub const JOB_QUEUE: &str = "JOB_QUEUE";
pub const SERVICE_NAME: &str = "bitware-content-granulator";

/// Where finished structures too large to inline are kept (`bitware_kit::storage`).
pub const STRUCTURES: Shelf = Shelf {
    kv_binding: JOB_CACHE,
    r2_binding: STRUCTURE_STORAGE,
    kv_prefix: "structure:",
    r2_prefix: "structures/",
};

#[derive(Debug, Clone)]
pub struct Config {
    pub environment: String,
    pub version: String,
    pub shared_secret: Option<Secret>,
    pub providers: ProviderSetup,
    pub settings: Settings,
    pub pricing: Pricing,
    /// Set when the `PRICING` override is invalid (defaults are used, /health says so).
    pub pricing_error: Option<String>,
    pub kam_timeout_ms: u64,
    /// How long KAM's positive answers are trusted (`KAM_CACHE_SECONDS`):
    /// the most a session ended at KAM keeps working here.
    pub kam_cache_seconds: u64,
    /// Tiers, per-job ceiling and daily spend caps (types::limits).
    pub limits: Limits,
    /// Problems with the limit vars (defaults are used, /health says so).
    pub limits_errors: Vec<String>,
    pub jobs: JobSettings,
    /// Alert thresholds and window (`ALERT_THRESHOLDS`, `ALERT_WINDOW_SECONDS`;
    /// an invalid value keeps the defaults and /health says so).
    pub alerts: AlertConfig,
}

/// How long jobs may run and where they run: the kit's
/// (`bitware_kit::config::job_settings` reads them).
pub use bitware_kit::jobs::JobSettings;

use bitware_kit::config::{number as read_number, read};

thread_local! {
    /// This isolate's configuration, read from the env on first use.
    static CONFIG: std::cell::OnceCell<Rc<Config>> = const { std::cell::OnceCell::new() };
}

impl Config {
    /// The configuration of this isolate: read from `env` the first time, then
    /// shared by every request, queue batch and cron run (wasm isolates run
    /// one thread, so the thread-local is per isolate).
    pub fn of_isolate(env: &Env) -> Rc<Config> {
        CONFIG.with(|cell| cell.get_or_init(|| Rc::new(Config::from_env(env))).clone())
    }

    pub fn from_env(env: &Env) -> Config {
        let environment = read(env, "ENVIRONMENT").unwrap_or_else(|| "production".into());
        let production = environment == "production";
        let (pricing, pricing_error) = match Pricing::with_override(read(env, "PRICING").as_deref())
        {
            Ok(p) => (p, None),
            Err(e) => (Pricing::default(), Some(e)),
        };
        let (limits, limits_errors) = Limits::from_vars(
            read(env, "DEFAULT_TIER").as_deref(),
            read(env, "MAX_JOB_COST_USD").as_deref(),
            read(env, "DAILY_SPEND_CAP_USD").as_deref(),
        );
        Config {
            limits,
            limits_errors,
            version: read(env, "VERSION").unwrap_or_else(|| env!("CARGO_PKG_VERSION").into()),
            shared_secret: read(env, "SHARED_SECRET").and_then(Secret::new),
            providers: bitware_kit::config::providers(env, production, AI),
            settings: bitware_kit::config::chain_settings(env),
            jobs: bitware_kit::config::job_settings(env),
            alerts: AlertConfig::from_vars(
                read(env, "ALERT_THRESHOLDS").as_deref(),
                read(env, "ALERT_WINDOW_SECONDS").as_deref(),
            ),
            pricing,
            pricing_error,
            kam_timeout_ms: read_number(env, "KAM_TIMEOUT_MS", 3_000, 100, 10_000),
            kam_cache_seconds: read_number(
                env,
                "KAM_CACHE_SECONDS",
                bitware_kit::kam::DEFAULT_CACHE_SECONDS,
                0,
                3_600,
            ),
            environment,
        }
    }
}

/// Everything a handler needs for one request.
#[derive(Clone)]
pub struct App {
    pub env: Env,
    pub config: Rc<Config>,
    pub request_id: String,
    /// The invocation's six slots for connections waiting for headers, one
    /// for every run it holds (a queue batch runs its jobs at once).
    pub gate: HeaderGate,
}

impl App {
    /// KAM as this worker asks it: its id, shared secret, auth cache and timeout.
    pub fn kam(&self) -> Kam<'_> {
        Kam {
            env: &self.env,
            worker_id: SERVICE_NAME,
            shared_secret: self.config.shared_secret.as_ref().map(|s| s.expose()),
            cache_kv: JOB_CACHE,
            cache_seconds: self.config.kam_cache_seconds,
            timeout_ms: self.config.kam_timeout_ms,
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::types::limits::{Tier, RATE_LIMIT_PERIOD_SECONDS};

    /// The limits `/help` and the 429 announce are the ones wrangler.toml
    /// configures, locally and in production: each binding's first `simple`
    /// setting after its name.
    #[test]
    fn rate_limit_bindings_match_wrangler_toml() {
        let toml = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/wrangler.toml"))
            .expect("wrangler.toml");
        for tier in Tier::ALL {
            let name = format!("\"{}\"", tier.rate_limit_binding());
            let want = format!(
                "simple = {{ limit = {}, period = {RATE_LIMIT_PERIOD_SECONDS} }}",
                tier.requests_per_minute()
            );
            let settings: Vec<&str> = toml
                .match_indices(&name)
                .map(|(at, _)| {
                    let rest = &toml[at..];
                    let start = rest.find("simple = ").unwrap_or(0);
                    let end = rest[start..]
                        .find('}')
                        .map_or(rest.len(), |e| start + e + 1);
                    &rest[start..end]
                })
                .collect();
            assert!(
                settings.len() >= 2,
                "{name} is bound locally and in production"
            );
            assert!(
                settings.iter().all(|s| *s == want),
                "{name}: {settings:?}, want {want}"
            );
        }
    }
}
