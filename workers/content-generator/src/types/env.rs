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

pub const SERVICE_NAME: &str = "bitware-content-generator";
pub const DB: &str = "DB";
pub const CACHE: &str = "CACHE";
pub const STORAGE: &str = "STORAGE";
pub const AI: &str = "AI";
pub const JOB_QUEUE: &str = "JOB_QUEUE";
/// The granulator, this worker's stage before it (a service binding:
/// stored outlines are fetched through its API, never from its storage).
pub const GRANULATOR: &str = "GRANULATOR";

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
    /// How long the granulator may take to answer (`GRANULATOR_TIMEOUT_MS`).
    pub granulator_timeout_ms: u64,
    pub providers: ProviderSetup,
    pub settings: Settings,
    pub pricing: Pricing,
    /// Tiers, the per-job ceiling and daily spend caps (`bitware_kit::limits`).
    pub limits: Limits,
    pub jobs: JobSettings,
}

/// How long jobs may run and where they run: the kit's
/// (`bitware_kit::config::job_settings` reads them).
pub use bitware_kit::jobs::JobSettings;

use bitware_kit::config::{number, read};

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
        let (limits, _problems) = Limits::from_vars(
            read(env, "DEFAULT_TIER").as_deref(),
            read(env, "MAX_JOB_COST_USD").as_deref(),
            read(env, "DAILY_SPEND_CAP_USD").as_deref(),
        );
        Config {
            version: read(env, "VERSION").unwrap_or_else(|| env!("CARGO_PKG_VERSION").into()),
            shared_secret: read(env, "SHARED_SECRET").and_then(Secret::new),
            kam_timeout_ms: number(env, "KAM_TIMEOUT_MS", 3_000, 100, 10_000),
            granulator_timeout_ms: number(env, "GRANULATOR_TIMEOUT_MS", 10_000, 100, 60_000),
            providers: bitware_kit::config::providers(env, environment == "production", AI),
            settings: bitware_kit::config::chain_settings(env),
            pricing: Pricing::with_override(read(env, "PRICING").as_deref()).unwrap_or_default(),
            limits,
            jobs: bitware_kit::config::job_settings(env),
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
