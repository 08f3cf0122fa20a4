//! The worker's bindings and configuration (seed §13.1), read once per
//! isolate: vars and secrets do not change within an isolate's life (a new
//! deployment, or `wrangler dev` reloading, starts a new one).

use crate::services::alerts::AlertConfig;
use crate::types::limits::Limits;
use crate::types::pricing::Pricing;
use crate::types::provider::{Secret, Settings};
use crate::types::provider_setup::ProviderSetup;
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

/// How long jobs may run and where they run (`services::progress::placement`).
#[derive(Debug, Clone, Copy)]
pub struct JobSettings {
    /// A job's own deadline, whatever its request's `timeout` (the queue
    /// consumer has 15 minutes of wall time).
    pub job_timeout_ms: u64,
    /// Output rate assumed when deciding whether a sync job fits inline.
    pub tokens_per_second: u64,
    /// What `waitUntil` is trusted to give after a response (platform: ~30 s).
    pub wait_until_grace_ms: u64,
    /// Events streams one tenant may hold open at once.
    pub event_streams_per_tenant: u32,
    /// The longest one events stream stays open (it ends with `retry:`).
    pub events_max_ms: u64,
    /// A started run that wrote no heartbeat for this long has gone away:
    /// a request with its key, or the queue, takes it over.
    pub stall_ms: u64,
}

fn read(env: &Env, name: &str) -> Option<String> {
    env.secret(name)
        .ok()
        .map(|s| s.to_string())
        .or_else(|| env.var(name).ok().map(|v| v.to_string()))
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

fn read_number(env: &Env, name: &str, default: u64, min: u64, max: u64) -> u64 {
    read(env, name)
        .and_then(|v| v.parse::<u64>().ok())
        .map(|v| v.clamp(min, max))
        .unwrap_or(default)
}

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
        let defaults = Settings::default();
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
            providers: ProviderSetup {
                production,
                openai_key: read(env, "OPENAI_API_KEY").and_then(Secret::new),
                openai_base_url: read(env, "OPENAI_BASE_URL"),
                openai_model: read(env, "OPENAI_MODEL"),
                anthropic_key: read(env, "ANTHROPIC_API_KEY").and_then(Secret::new),
                anthropic_base_url: read(env, "ANTHROPIC_BASE_URL"),
                anthropic_model: read(env, "ANTHROPIC_MODEL"),
                workers_ai_bound: env.ai(AI).is_ok(),
                workers_ai_model: read(env, "WORKERS_AI_MODEL"),
                order: read(env, "AI_PROVIDER_ORDER"),
            },
            settings: Settings {
                attempt_timeout_ms: read_number(
                    env,
                    "AI_ATTEMPT_TIMEOUT_MS",
                    defaults.attempt_timeout_ms,
                    1_000,
                    300_000,
                ),
                max_attempts: read_number(
                    env,
                    "AI_MAX_ATTEMPTS",
                    defaults.max_attempts as u64,
                    1,
                    5,
                ) as u32,
                backoff_base_ms: read_number(
                    env,
                    "AI_BACKOFF_BASE_MS",
                    defaults.backoff_base_ms,
                    10,
                    10_000,
                ),
                backoff_cap_ms: defaults.backoff_cap_ms,
                retry_after_cap_ms: read_number(
                    env,
                    "AI_RETRY_AFTER_CAP_MS",
                    defaults.retry_after_cap_ms,
                    0,
                    60_000,
                ),
                min_attempt_ms: defaults.min_attempt_ms,
                stream_stall_ms: read_number(
                    env,
                    "AI_STREAM_STALL_MS",
                    defaults.stream_stall_ms,
                    200,
                    300_000,
                ),
            },
            jobs: JobSettings {
                job_timeout_ms: read_number(env, "JOB_TIMEOUT_MS", 600_000, 5_000, 840_000),
                tokens_per_second: read_number(env, "MODEL_TOKENS_PER_SECOND", 50, 1, 100_000),
                wait_until_grace_ms: read_number(env, "WAIT_UNTIL_GRACE_MS", 20_000, 0, 30_000),
                event_streams_per_tenant: read_number(env, "EVENT_STREAMS_PER_TENANT", 10, 1, 1_000)
                    as u32,
                events_max_ms: read_number(env, "EVENTS_MAX_MS", 300_000, 10_000, 900_000),
                stall_ms: read_number(env, "JOB_STALL_MS", 90_000, 15_000, 600_000),
            },
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
