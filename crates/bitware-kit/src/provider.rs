//! The AI providers as configuration knows them: which kinds exist, a
//! credential that never prints, one configured provider and the chain's
//! retry settings.

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProviderKind {
    Openai,
    Anthropic,
    WorkersAi,
    Offline,
}

impl ProviderKind {
    pub const ALL: [ProviderKind; 4] = [
        ProviderKind::Openai,
        ProviderKind::Anthropic,
        ProviderKind::WorkersAi,
        ProviderKind::Offline,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Openai => "openai",
            ProviderKind::Anthropic => "anthropic",
            ProviderKind::WorkersAi => "workers_ai",
            ProviderKind::Offline => "offline",
        }
    }

    pub fn parse(name: &str) -> Option<ProviderKind> {
        ProviderKind::ALL
            .into_iter()
            .find(|p| p.as_str() == name.trim())
    }

    pub fn default_model(self) -> &'static str {
        match self {
            ProviderKind::Openai => "gpt-4o-mini",
            ProviderKind::Anthropic => "claude-haiku-4-5",
            ProviderKind::WorkersAi => "@cf/meta/llama-3.1-8b-instruct",
            ProviderKind::Offline => "offline",
        }
    }
}

impl fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A credential that never prints.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: String) -> Option<Secret> {
        (!value.trim().is_empty()).then(|| Secret(value.trim().to_string()))
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ProviderConfig {
    pub kind: ProviderKind,
    pub model: String,
    pub base_url: String,
    pub api_key: Option<Secret>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Settings {
    pub attempt_timeout_ms: u64,
    pub max_attempts: u32,
    pub backoff_base_ms: u64,
    pub backoff_cap_ms: u64,
    pub retry_after_cap_ms: u64,
    /// An attempt is not started with less time than this before the deadline.
    pub min_attempt_ms: u64,
    /// A stream with no bytes for this long is abandoned and retried like a timeout.
    pub stream_stall_ms: u64,
    /// Model calls of one job streaming at once (a fan-out's, a batch's): the
    /// provider's limits per key set it, not the platform's (six connections
    /// waiting for headers, `ai::gate`). Over a provider's limit its 429s are
    /// waited out.
    pub max_calls_at_once: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            attempt_timeout_ms: 60_000,
            max_attempts: 3,
            backoff_base_ms: 500,
            backoff_cap_ms: 8_000,
            retry_after_cap_ms: 20_000,
            min_attempt_ms: 1_000,
            stream_stall_ms: 30_000,
            max_calls_at_once: 24,
        }
    }
}
