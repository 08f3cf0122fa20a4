//! The shapes of `POST /api/execute` (seed §2.2, contracts §2): the action,
//! a granulation's parameters and config, the job request stored for retries,
//! and the limits on what a caller may send. `types::request` parses bodies
//! into them.

use crate::types::provider::ProviderKind;
use crate::types::rules::Constraints;
use crate::types::structure::{Granularity, StructureType};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

pub const DEFAULT_TIMEOUT_MS: u64 = 120_000;
/// The shortest `timeout` (how long the caller waits). Before issue 12 it was
/// also the job's deadline, and at 1 s every job failed 504 before its first
/// call (found by Schemathesis); a job now runs to JOB_TIMEOUT_MS whatever
/// the caller waits, so 1 s is a valid wait.
pub const MIN_TIMEOUT_MS: u64 = 1_000;
pub const MAX_TIMEOUT_MS: u64 = 300_000;
pub const MAX_ELEMENTS_LIMIT: u32 = 1_000;
pub const MAX_EXECUTION_ID_LEN: usize = 128;
/// `X-Request-ID` on `POST /api/execute`: 1 to [`MAX_EXECUTION_ID_LEN`]
/// printable ASCII characters, no space. The document states this pattern
/// and [`valid_request_id`] checks it, so the two cannot disagree.
pub const REQUEST_ID_PATTERN: &str = "^[\\x21-\\x7e]+$";

/// An `X-Request-ID` as [`REQUEST_ID_PATTERN`] and [`MAX_EXECUTION_ID_LEN`] allow.
pub fn valid_request_id(id: &str) -> bool {
    (1..=MAX_EXECUTION_ID_LEN).contains(&id.len()) && id.bytes().all(|b| (0x21..=0x7e).contains(&b))
}
/// Longest topic and audience a request may send (prompts clean and cut to these too).
pub const MAX_TOPIC_CHARS: usize = 500;
pub const MAX_AUDIENCE_CHARS: usize = 200;
/// Longest `config.aiModel` / `aiProvider` / `strategy` value.
pub const MAX_CONFIG_NAME_CHARS: usize = 100;
/// Highest `config.maxCostUsd` (above 0).
pub const MAX_COST_USD: f64 = 100.0;
/// Longest `templateName` a granulation may name.
pub const MAX_TEMPLATE_NAME_CHARS: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Granulate,
    Validate,
    Estimate,
}

impl Action {
    pub const NAMES: [&'static str; 4] = ["granulate", "process", "validate", "estimate"];

    pub fn parse(name: &str) -> Option<Action> {
        match name {
            // `process` is the Resource Manager's default action.
            "granulate" | "process" => Some(Action::Granulate),
            "validate" => Some(Action::Validate),
            "estimate" => Some(Action::Estimate),
            _ => None,
        }
    }
}

/// What a granulation needs, after merging `input` and `params`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GranulateParams {
    pub topic: String,
    pub structure_type: Option<StructureType>,
    pub template_name: Option<String>,
    pub granularity_level: Granularity,
    pub target_audience: Option<String>,
    pub max_elements: Option<u32>,
    #[serde(default)]
    pub counts: BTreeMap<String, u32>,
    #[serde(default)]
    pub options: Value,
}

impl GranulateParams {
    pub fn constraints(&self) -> Constraints {
        Constraints {
            max_elements: self.max_elements,
            counts: self.counts.clone(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecConfig {
    pub ai_provider: Option<ProviderKind>,
    pub ai_model: Option<String>,
    pub temperature: Option<f64>,
    pub max_tokens: Option<u32>,
    /// Run validation after granulating (default: when a level is given).
    pub validation: Option<bool>,
    pub validation_level: Option<u8>,
    pub validation_threshold: Option<f64>,
    pub max_cost_usd: Option<f64>,
    /// How the outline is generated: one call, or a skeleton then its
    /// branches in parallel (`None` = `auto`). Left out of the stored JSON
    /// when unset, so the request hash of a request without it is unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<Strategy>,
}

/// `config.strategy`: `single` (one model call), `fanout` (a skeleton call,
/// then each level-1 branch, or part of one, in its own call, all streaming
/// at once up to `AI_MAX_CALLS_AT_ONCE`) or `auto`
/// (fan out only an outline large enough to gain; see `services::fanout`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    Single,
    Fanout,
    Auto,
}

impl Strategy {
    pub const ALL: [Strategy; 3] = [Strategy::Single, Strategy::Fanout, Strategy::Auto];
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Single => "single",
            Strategy::Fanout => "fanout",
            Strategy::Auto => "auto",
        }
    }
    pub fn parse(name: &str) -> Option<Strategy> {
        Strategy::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

/// Everything a granulation job is run with; stored for `POST /jobs/{id}/retry`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobRequest {
    pub params: GranulateParams,
    pub config: ExecConfig,
    pub timeout_ms: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ExecuteRequest {
    Granulate {
        request: JobRequest,
        execution_id: Option<String>,
        /// `config.async: true`: answer 202 and run in the queue.
        asynchronous: bool,
    },
    Validate {
        job_id: i64,
        level: Option<u8>,
        threshold: Option<f64>,
    },
    Estimate {
        params: GranulateParams,
        config: ExecConfig,
    },
}
