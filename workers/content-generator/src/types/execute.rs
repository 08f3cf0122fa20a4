//! `POST /api/execute` (seed §2.2): the Resource Manager's request, checked
//! at the edge so that services see only valid input.

use bitware_kit::error::{AppError, AppResult};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

pub const MAX_TEXT_CHARS: usize = 20_000;
/// The summary's length in tokens: what the model may write, and what the
/// job expects it to (progress, placement, budget).
pub const DEFAULT_MAX_TOKENS: u32 = 400;
pub const MAX_TOKENS: (u32, u32) = (16, 8_000);
/// How long a synchronous request waits for its job (ms): then a 504 with
/// the job's links, and the job goes on.
pub const DEFAULT_TIMEOUT_MS: u64 = 30_000;
pub const TIMEOUT_MS: (u64, u64) = (1_000, 300_000);

/// The actions this worker performs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Example,
}

impl Action {
    pub const NAMES: [&'static str; 1] = ["example"];
}

/// What the job does: the part of the request that shapes its result (its
/// hash binds an idempotency key; it is stored for a queued run).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobRequest {
    pub action: Action,
    pub text: String,
    pub max_tokens: u32,
    /// A budget the request sets for itself (it can only lower the ceiling).
    pub max_cost_usd: Option<f64>,
}

/// How the caller waits: not part of what the job is.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecuteRequest {
    pub job: JobRequest,
    pub timeout_ms: u64,
    pub asynchronous: bool,
}

fn bad(field: &str, message: impl Into<String>) -> AppError {
    AppError::invalid_field(field, message)
}

impl ExecuteRequest {
    /// `{"action": "example", "input": {"text", "maxTokens"?}, "maxCostUsd"?,
    /// "timeout"?, "async"?}`; every fault is a 400 naming its field.
    pub fn parse(body: &Value) -> AppResult<ExecuteRequest> {
        if !body.is_object() {
            return Err(AppError::bad_request(
                "invalid_body",
                "the body must be a JSON object",
            ));
        }
        let action = match body["action"].as_str() {
            Some("example") => Action::Example,
            Some(other) => {
                return Err(bad(
                    "action",
                    format!(
                        "unknown action `{other}`; one of {}",
                        Action::NAMES.join(", ")
                    ),
                ))
            }
            None => return Err(bad("action", "is required")),
        };
        let text = match body["input"]["text"].as_str().map(str::trim) {
            Some(t) if !t.is_empty() => t.to_string(),
            _ => return Err(bad("input.text", "is required and must be non-empty text")),
        };
        if text.chars().count() > MAX_TEXT_CHARS {
            return Err(bad(
                "input.text",
                format!("must be at most {MAX_TEXT_CHARS} characters"),
            ));
        }
        let max_tokens = match &body["input"]["maxTokens"] {
            Value::Null => DEFAULT_MAX_TOKENS,
            v => match v.as_u64() {
                Some(n) if (u64::from(MAX_TOKENS.0)..=u64::from(MAX_TOKENS.1)).contains(&n) => {
                    n as u32
                }
                _ => {
                    return Err(bad(
                        "input.maxTokens",
                        format!(
                            "must be a whole number from {} to {}",
                            MAX_TOKENS.0, MAX_TOKENS.1
                        ),
                    ))
                }
            },
        };
        let max_cost_usd = match &body["maxCostUsd"] {
            Value::Null => None,
            v => match v.as_f64() {
                Some(x) if x.is_finite() && x > 0.0 => Some(x),
                _ => return Err(bad("maxCostUsd", "must be a positive number (USD)")),
            },
        };
        let timeout_ms = match &body["timeout"] {
            Value::Null => DEFAULT_TIMEOUT_MS,
            v => match v.as_u64() {
                Some(ms) if (TIMEOUT_MS.0..=TIMEOUT_MS.1).contains(&ms) => ms,
                _ => {
                    return Err(bad(
                        "timeout",
                        format!(
                            "must be milliseconds from {} to {}",
                            TIMEOUT_MS.0, TIMEOUT_MS.1
                        ),
                    ))
                }
            },
        };
        let asynchronous = match &body["async"] {
            Value::Null => false,
            Value::Bool(b) => *b,
            _ => return Err(bad("async", "must be true or false")),
        };
        Ok(ExecuteRequest {
            job: JobRequest {
                action,
                text,
                max_tokens,
                max_cost_usd,
            },
            timeout_ms,
            asynchronous,
        })
    }
}

impl JobRequest {
    /// What the idempotency key is bound to.
    pub fn canonical(&self) -> Value {
        json!({"action": self.action, "text": self.text, "maxTokens": self.max_tokens, "maxCostUsd": self.max_cost_usd})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_valid_request_parses_and_every_fault_names_its_field() {
        let ok = ExecuteRequest::parse(&json!({"action": "example", "input": {"text": " hi "}}))
            .unwrap();
        assert_eq!(
            (ok.job.action, ok.job.text.as_str()),
            (Action::Example, "hi")
        );
        assert_eq!(
            (ok.job.max_tokens, ok.timeout_ms, ok.asynchronous),
            (DEFAULT_MAX_TOKENS, DEFAULT_TIMEOUT_MS, false)
        );
        let field = |body: Value| {
            ExecuteRequest::parse(&body).unwrap_err().details.unwrap()["field"].clone()
        };
        assert_eq!(field(json!({"input": {"text": "x"}})), "action");
        assert_eq!(
            field(json!({"action": "nope", "input": {"text": "x"}})),
            "action"
        );
        assert_eq!(
            field(json!({"action": "example", "input": {}})),
            "input.text"
        );
        assert_eq!(
            field(json!({"action": "example", "input": {"text": "x".repeat(MAX_TEXT_CHARS + 1)}})),
            "input.text"
        );
        assert_eq!(
            field(json!({"action": "example", "input": {"text": "x", "maxTokens": 2}})),
            "input.maxTokens"
        );
        assert_eq!(
            field(json!({"action": "example", "input": {"text": "x"}, "maxCostUsd": -1})),
            "maxCostUsd"
        );
        assert_eq!(
            field(json!({"action": "example", "input": {"text": "x"}, "timeout": 5})),
            "timeout"
        );
        assert_eq!(
            field(json!({"action": "example", "input": {"text": "x"}, "async": "yes"})),
            "async"
        );
        assert_eq!(
            ExecuteRequest::parse(&json!([1])).unwrap_err().status(),
            400
        );
    }

    #[test]
    fn how_the_caller_waits_is_not_part_of_the_job() {
        let a = ExecuteRequest::parse(
            &json!({"action": "example", "input": {"text": "x"}, "timeout": 2000}),
        )
        .unwrap();
        let b = ExecuteRequest::parse(
            &json!({"action": "example", "input": {"text": "x"}, "async": true}),
        )
        .unwrap();
        assert_eq!(a.job.canonical(), b.job.canonical());
        let c =
            ExecuteRequest::parse(&json!({"action": "example", "input": {"text": "y"}})).unwrap();
        assert_ne!(a.job.canonical(), c.job.canonical());
    }
}
