//! A worker's configuration as the kit's parts read it from the Workers
//! environment (vars and secrets, trimmed, empty as unset; numbers clamped
//! to their range, else their default), so every worker reads the same
//! variable the same way: the provider chain's settings and providers, the
//! job lifecycle's periods. A worker reads them once per isolate.

use crate::jobs::JobSettings;
use crate::provider::{Secret, Settings};
use crate::provider_setup::ProviderSetup;
use worker::Env;

/// A secret or var by name, trimmed; unset or blank is `None`.
pub fn read(env: &Env, name: &str) -> Option<String> {
    env.secret(name)
        .ok()
        .map(|s| s.to_string())
        .or_else(|| env.var(name).ok().map(|v| v.to_string()))
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// A number by name, clamped to `min..=max`; unset or unreadable is `default`.
pub fn number(env: &Env, name: &str, default: u64, min: u64, max: u64) -> u64 {
    read(env, name)
        .and_then(|v| v.parse::<u64>().ok())
        .map(|v| v.clamp(min, max))
        .unwrap_or(default)
}

/// The providers configured (`OPENAI_*`, `ANTHROPIC_*`, the Workers AI
/// binding `ai_binding` and `WORKERS_AI_MODEL`, `AI_PROVIDER_ORDER`).
pub fn providers(env: &Env, production: bool, ai_binding: &str) -> ProviderSetup {
    ProviderSetup {
        production,
        openai_key: read(env, "OPENAI_API_KEY").and_then(Secret::new),
        openai_base_url: read(env, "OPENAI_BASE_URL"),
        openai_model: read(env, "OPENAI_MODEL"),
        anthropic_key: read(env, "ANTHROPIC_API_KEY").and_then(Secret::new),
        anthropic_base_url: read(env, "ANTHROPIC_BASE_URL"),
        anthropic_model: read(env, "ANTHROPIC_MODEL"),
        workers_ai_bound: env.ai(ai_binding).is_ok(),
        workers_ai_model: read(env, "WORKERS_AI_MODEL"),
        order: read(env, "AI_PROVIDER_ORDER"),
    }
}

/// The provider chain's retry policy (`AI_ATTEMPT_TIMEOUT_MS`,
/// `AI_MAX_ATTEMPTS`, `AI_BACKOFF_BASE_MS`, `AI_RETRY_AFTER_CAP_MS`,
/// `AI_STREAM_STALL_MS`, `AI_MAX_CALLS_AT_ONCE`).
pub fn chain_settings(env: &Env) -> Settings {
    let d = Settings::default();
    Settings {
        attempt_timeout_ms: number(
            env,
            "AI_ATTEMPT_TIMEOUT_MS",
            d.attempt_timeout_ms,
            1_000,
            300_000,
        ),
        max_attempts: number(env, "AI_MAX_ATTEMPTS", u64::from(d.max_attempts), 1, 5) as u32,
        backoff_base_ms: number(env, "AI_BACKOFF_BASE_MS", d.backoff_base_ms, 10, 10_000),
        retry_after_cap_ms: number(
            env,
            "AI_RETRY_AFTER_CAP_MS",
            d.retry_after_cap_ms,
            0,
            60_000,
        ),
        stream_stall_ms: number(env, "AI_STREAM_STALL_MS", d.stream_stall_ms, 200, 300_000),
        max_calls_at_once: number(
            env,
            "AI_MAX_CALLS_AT_ONCE",
            d.max_calls_at_once as u64,
            1,
            64,
        ) as usize,
        ..d
    }
}

/// The job lifecycle's periods (`JOB_TIMEOUT_MS`, `MODEL_TOKENS_PER_SECOND`,
/// `WAIT_UNTIL_GRACE_MS`, `EVENT_STREAMS_PER_TENANT`, `EVENTS_MAX_MS`,
/// `JOB_STALL_MS`).
pub fn job_settings(env: &Env) -> JobSettings {
    JobSettings {
        job_timeout_ms: number(env, "JOB_TIMEOUT_MS", 600_000, 5_000, 840_000),
        tokens_per_second: number(env, "MODEL_TOKENS_PER_SECOND", 50, 1, 100_000),
        wait_until_grace_ms: number(env, "WAIT_UNTIL_GRACE_MS", 20_000, 0, 30_000),
        event_streams_per_tenant: number(env, "EVENT_STREAMS_PER_TENANT", 10, 1, 1_000) as u32,
        events_max_ms: number(env, "EVENTS_MAX_MS", 300_000, 10_000, 900_000),
        stall_ms: number(env, "JOB_STALL_MS", 90_000, 15_000, 600_000),
    }
}
