//! The worker's bindings and configuration (seed §13.1), read once per request.

use bitware_kit::kam::Kam;
use bitware_kit::storage::Shelf;
use worker::Env;

pub const SERVICE_NAME: &str = "__SERVICE__";
pub const DB: &str = "DB";
pub const CACHE: &str = "CACHE";
pub const STORAGE: &str = "STORAGE";

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
    pub shared_secret: Option<String>,
    pub kam_timeout_ms: u64,
}

fn read(env: &Env, name: &str) -> Option<String> {
    env.secret(name)
        .ok()
        .map(|s| s.to_string())
        .or_else(|| env.var(name).ok().map(|v| v.to_string()))
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

impl Config {
    pub fn from_env(env: &Env) -> Config {
        Config {
            environment: read(env, "ENVIRONMENT").unwrap_or_else(|| "production".into()),
            version: read(env, "VERSION").unwrap_or_else(|| env!("CARGO_PKG_VERSION").into()),
            shared_secret: read(env, "SHARED_SECRET"),
            kam_timeout_ms: read(env, "KAM_TIMEOUT_MS")
                .and_then(|v| v.parse::<u64>().ok())
                .map(|v| v.clamp(100, 10_000))
                .unwrap_or(3_000),
        }
    }
}

/// Everything a handler needs for one request.
pub struct App {
    pub env: Env,
    pub config: Config,
    pub request_id: String,
}

impl App {
    /// KAM as this worker asks it: its id, shared secret, auth cache and timeout.
    pub fn kam(&self) -> Kam<'_> {
        Kam {
            env: &self.env,
            worker_id: SERVICE_NAME,
            shared_secret: self.config.shared_secret.as_deref(),
            cache_kv: CACHE,
            cache_seconds: bitware_kit::kam::DEFAULT_CACHE_SECONDS,
            timeout_ms: self.config.kam_timeout_ms,
        }
    }
}
