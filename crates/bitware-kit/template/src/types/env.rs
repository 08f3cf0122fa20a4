//! The worker's bindings and configuration (seed §13.1), read once per
//! isolate: vars and secrets do not change within an isolate's life (a new
//! deployment, or `wrangler dev` reloading, starts a new one).

use bitware_kit::kam::Kam;
use bitware_kit::limits::Limits;
use bitware_kit::pricing::Pricing;
use bitware_kit::provider::{Secret, Settings};
use bitware_kit::provider_setup::ProviderSetup;
use bitware_kit::storage::Shelf;
use std::rc::Rc;
use worker::Env;

pub const SERVICE_NAME: &str = "__SERVICE__";
pub const DB: &str = "DB";
pub const CACHE: &str = "CACHE";
pub const STORAGE: &str = "STORAGE";
pub const AI: &str = "AI";
pub const JOB_QUEUE: &str = "JOB_QUEUE";

/// Where results too large to inline are kept (`bitware_kit::storage`).
pub const RESULTS: Shelf = Shelf {
    kv_binding: CACHE,
    r2_binding: STORAGE,
    kv_prefix: "result:",
    r2_prefix: "results/",
};

#[derive(Debug, Clone)]
pub struct Config {
    pub environment: String,
    pub version: String,
    /// `SHARED_SECRET` (a wrangler secret; never in wrangler.toml).
    pub shared_secret: Option<Secret>,
    pub kam_timeout_ms: u64,
    pub providers: ProviderSetup,
    pub settings: Settings,
    pub pricing: Pricing,
    /// Tiers, the per-job ceiling and daily spend caps (`bitware_kit::limits`).
    pub limits: Limits,
    pub jobs: JobSettings,
}

/// How long jobs may run and where they run (`bitware_kit::jobs::wait::placement`).
#[derive(Debug, Clone, Copy)]
pub struct JobSettings {
    /// A job's own deadline, whatever its request's `timeout`.
    pub job_timeout_ms: u64,
    /// Output rate assumed when deciding whether a job fits inline.
    pub tokens_per_second: u64,
    /// What `waitUntil` is trusted to give after a response (platform: ~30 s).
    pub wait_until_grace_ms: u64,
    /// The longest one events stream stays open (it ends with `retry:`).
    pub events_max_ms: u64,
    /// A started run that wrote no heartbeat for this long has gone away.
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

fn number(env: &Env, name: &str, default: u64, min: u64, max: u64) -> u64 {
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
    /// The configuration of this isolate: read from `env` the first time,
    /// then shared by every request, queue batch and cron run (a wasm
    /// isolate runs one thread, so the thread-local is per isolate).
    pub fn of_isolate(env: &Env) -> Rc<Config> {
        CONFIG.with(|cell| cell.get_or_init(|| Rc::new(Config::from_env(env))).clone())
    }

    pub fn from_env(env: &Env) -> Config {
        let environment = read(env, "ENVIRONMENT").unwrap_or_else(|| "production".into());
        let d = Settings::default();
        let (limits, _problems) = Limits::from_vars(
            read(env, "DEFAULT_TIER").as_deref(),
            read(env, "MAX_JOB_COST_USD").as_deref(),
            read(env, "DAILY_SPEND_CAP_USD").as_deref(),
        );
        Config {
            version: read(env, "VERSION").unwrap_or_else(|| env!("CARGO_PKG_VERSION").into()),
            shared_secret: read(env, "SHARED_SECRET").and_then(Secret::new),
            kam_timeout_ms: number(env, "KAM_TIMEOUT_MS", 3_000, 100, 10_000),
            providers: ProviderSetup {
                production: environment == "production",
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
                attempt_timeout_ms: number(
                    env,
                    "AI_ATTEMPT_TIMEOUT_MS",
                    d.attempt_timeout_ms,
                    1_000,
                    300_000,
                ),
                max_attempts: number(env, "AI_MAX_ATTEMPTS", u64::from(d.max_attempts), 1, 5)
                    as u32,
                backoff_base_ms: number(env, "AI_BACKOFF_BASE_MS", d.backoff_base_ms, 10, 10_000),
                retry_after_cap_ms: number(
                    env,
                    "AI_RETRY_AFTER_CAP_MS",
                    d.retry_after_cap_ms,
                    0,
                    60_000,
                ),
                stream_stall_ms: number(env, "AI_STREAM_STALL_MS", d.stream_stall_ms, 200, 300_000),
                ..d
            },
            pricing: Pricing::with_override(read(env, "PRICING").as_deref()).unwrap_or_default(),
            limits,
            jobs: JobSettings {
                job_timeout_ms: number(env, "JOB_TIMEOUT_MS", 600_000, 5_000, 840_000),
                tokens_per_second: number(env, "MODEL_TOKENS_PER_SECOND", 50, 1, 100_000),
                wait_until_grace_ms: number(env, "WAIT_UNTIL_GRACE_MS", 20_000, 0, 30_000),
                events_max_ms: number(env, "EVENTS_MAX_MS", 300_000, 10_000, 900_000),
                stall_ms: number(env, "JOB_STALL_MS", 90_000, 15_000, 600_000),
            },
            environment,
        }
    }
}

/// Everything a handler needs for one request (cloned into a run that
/// outlives it).
#[derive(Clone)]
pub struct App {
    pub env: Env,
    pub config: Rc<Config>,
    pub request_id: String,
}

impl App {
    /// The request's `App` on this isolate's configuration.
    pub fn new(env: Env, request_id: String) -> App {
        App {
            config: Config::of_isolate(&env),
            env,
            request_id,
        }
    }

    /// KAM as this worker asks it: its id, shared secret, auth cache and timeout.
    pub fn kam(&self) -> Kam<'_> {
        Kam {
            env: &self.env,
            worker_id: SERVICE_NAME,
            shared_secret: self.config.shared_secret.as_ref().map(|s| s.expose()),
            cache_kv: CACHE,
            cache_seconds: bitware_kit::kam::DEFAULT_CACHE_SECONDS,
            timeout_ms: self.config.kam_timeout_ms,
        }
    }
}
