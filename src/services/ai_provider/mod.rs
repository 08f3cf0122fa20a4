//! The provider chain: "a prompt and a JSON schema" in, "validated JSON plus a
//! record of every attempt" out, across providers (seed §9).
//!
//! Policy, per provider in order:
//! - each attempt gets `min(attempt_timeout, time left before the deadline)`;
//! - 429 / 5xx / 529 / timeouts are retried with exponential backoff and full
//!   jitter (`Retry-After` honoured up to a cap), at most `max_attempts` calls;
//! - 400 / 401 / 403 / no credit / refusals go straight to the next provider;
//! - unusable output (no JSON, invalid JSON, wrong shape, truncated) is asked
//!   again once with the problems fed back, then the next provider;
//! - before every attempt its `max_tokens` is clamped so that the worst case
//!   (the prompt at 3 bytes a token plus every allowed output token) fits
//!   what is left of the job's budget; when not even the expected output
//!   fits, the attempt is refused before it is made.
//!
//! All I/O goes through `Runtime`, so the whole policy is tested natively.

pub mod json_extract;
pub mod runtime;
pub mod stream;
pub mod wire;

use crate::services::progress::Progress;
use crate::types::pricing::{round_usd, sum_costs, Price, Pricing, TokenUsage};
use crate::types::provider::{ProviderConfig, ProviderKind, Secret, Settings};
use json_extract::{extract_json, Extracted};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::rc::Rc;
use stream::{Format, StreamDecoder};
use wire::{ErrorClass, HttpCall, Reply, WireRequest};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    Granulate,
    Repair,
    Validate,
}

impl Purpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Granulate => "granulate",
            Purpose::Repair => "repair",
            Purpose::Validate => "validate",
        }
    }
}

#[derive(Debug, Clone)]
pub struct CompletionRequest {
    pub purpose: Purpose,
    pub system: String,
    pub user: String,
    pub schema_name: String,
    pub schema: Value,
    pub max_tokens: u32,
    pub temperature: f64,
    /// What a model is expected to write, for budget checks.
    pub expected_output_tokens: u32,
    /// The offline provider's answer (deterministic, computed by the caller).
    pub offline_answer: Option<Value>,
    /// Fed with tokens and elements received while the answer streams.
    pub progress: Option<Rc<Progress>>,
}

impl CompletionRequest {
    /// Tokens of the prompt, estimated at 4 characters a token.
    pub fn estimated_input_tokens(&self) -> u64 {
        let chars = self.system.len() + self.user.len() + self.schema.to_string().len();
        (chars as u64).div_ceil(4)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptStatus {
    Success,
    HttpError,
    Timeout,
    NetworkError,
    InvalidOutput,
    Truncated,
    Refused,
    BudgetRefused,
}

impl AttemptStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptStatus::Success => "success",
            AttemptStatus::HttpError => "http_error",
            AttemptStatus::Timeout => "timeout",
            AttemptStatus::NetworkError => "network_error",
            AttemptStatus::InvalidOutput => "invalid_output",
            AttemptStatus::Truncated => "truncated",
            AttemptStatus::Refused => "refused",
            AttemptStatus::BudgetRefused => "budget_refused",
        }
    }
}

/// One call to a provider (or one refused before it was made).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Attempt {
    pub provider: ProviderKind,
    pub model: String,
    pub purpose: Purpose,
    pub status: AttemptStatus,
    pub http_status: Option<u16>,
    pub latency_ms: u64,
    pub usage: TokenUsage,
    /// `None` when the model has no price: unknown, never 0.
    pub cost_usd: Option<f64>,
    pub error: Option<String>,
}

/// Spend allowed for one job, across all its model calls: a ceiling on what
/// providers can bill in the worst case, not an estimate. Before every call
/// its `max_tokens` is clamped so that the prompt plus the clamped output at
/// the model's price fit what is left; a model without a price cannot be
/// bounded and is refused while a limit applies (declare it in `PRICING`,
/// 0 is a valid price for a self-hosted model).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Budget {
    pub limit_usd: Option<f64>,
    pub spent_usd: f64,
}

impl Budget {
    pub fn left_usd(&self) -> Option<f64> {
        self.limit_usd.map(|l| (l - self.spent_usd).max(0.0))
    }
}

/// Prompt tokens for budgeting: at most one token per 3 bytes of prompt
/// text. Tokenisers average ~4 characters a token for English prose; JSON
/// schemas and other scripts run denser, so the ceiling assumes 3.
pub fn worst_case_input_tokens(bytes: usize) -> u64 {
    (bytes as u64).div_ceil(3)
}

/// How many output tokens a call may be allowed: `wanted` when the budget
/// allows it, fewer when only that fits, or the reason no useful call fits.
pub fn affordable_output_tokens(
    price: Option<Price>,
    model: &str,
    budget: &Budget,
    input_tokens: u64,
    wanted: u32,
    useful_minimum: u32,
) -> Result<u32, String> {
    let Some(left) = budget.left_usd() else {
        return Ok(wanted);
    };
    let Some(price) = price else {
        return Err(format!(
            "{model} has no price, so a budget of ${} cannot be guaranteed; declare its price in PRICING (0 for a self-hosted model)",
            budget.limit_usd.unwrap_or(0.0)
        ));
    };
    let input_cost = input_tokens as f64 * price.input / 1e6;
    let for_output = left - input_cost;
    let affordable = if price.output <= 0.0 {
        if for_output < 0.0 {
            0
        } else {
            wanted
        }
    } else {
        // A micro-dollar of headroom absorbs the rounding of recorded costs.
        let usd = for_output - 1e-6;
        if usd <= 0.0 {
            0
        } else {
            (usd * 1e6 / price.output).floor().min(wanted as f64) as u32
        }
    };
    if affordable >= useful_minimum.min(wanted) && affordable > 0 {
        Ok(affordable)
    } else {
        Err(format!(
            "{model} needs at least {} output tokens (about ${:.6} with the prompt); ${left:.6} of the job's budget is left",
            useful_minimum.min(wanted),
            input_cost + useful_minimum.min(wanted) as f64 * price.output / 1e6
        ))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum ChainError {
    /// Every remaining attempt would have exceeded the budget.
    BudgetExceeded(String),
    /// The request's deadline passed before a usable answer.
    DeadlineExceeded(String),
    /// Every provider failed; the message names the last failure.
    ProvidersFailed(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    pub value: Value,
    pub provider: ProviderKind,
    pub model: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct HttpReply {
    pub status: u16,
    pub retry_after: Option<String>,
    pub body: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Transport {
    Timeout,
    /// A stream sent no bytes for this many ms.
    Stalled(u64),
    Failed(String),
}

/// The I/O the chain needs; the worker implements it with `fetch`, the AI
/// binding and timers, tests with a script.
#[allow(async_fn_in_trait)]
pub trait Runtime {
    async fn http(&self, call: &HttpCall, timeout_ms: u64) -> Result<HttpReply, Transport>;
    async fn workers_ai(
        &self,
        model: &str,
        input: &Value,
        timeout_ms: u64,
    ) -> Result<Value, Transport>;
    /// A streamed call: a 2xx body goes to `sink` as it arrives (the returned
    /// `body` is empty); any other status comes back whole. `timeout_ms`
    /// bounds the wait for the answer to start; once it streams, only a stall
    /// of `stall_ms` or `total_ms` in all end it (a long answer that keeps
    /// coming is not a timeout). The default reads the body in one piece.
    async fn http_stream(
        &self,
        call: &HttpCall,
        timeout_ms: u64,
        _total_ms: u64,
        _stall_ms: u64,
        sink: &mut dyn FnMut(&[u8]),
    ) -> Result<HttpReply, Transport> {
        let reply = self.http(call, timeout_ms).await?;
        if (200..300).contains(&reply.status) {
            sink(reply.body.as_bytes());
            return Ok(HttpReply {
                body: String::new(),
                ..reply
            });
        }
        Ok(reply)
    }
    /// Workers AI with `stream: true`; the default feeds the whole answer.
    async fn workers_ai_stream(
        &self,
        model: &str,
        input: &Value,
        timeout_ms: u64,
        _total_ms: u64,
        _stall_ms: u64,
        sink: &mut dyn FnMut(&[u8]),
    ) -> Result<(), Transport> {
        let body = self.workers_ai(model, input, timeout_ms).await?;
        sink(body.to_string().as_bytes());
        Ok(())
    }
    async fn sleep(&self, ms: u64);
    fn now_ms(&self) -> u64;
    /// Uniform in [0, 1), for jitter.
    fn random(&self) -> f64;
}

/// What one call produced, before bookkeeping.
enum Outcome {
    Usable(Value, Reply),
    Retry {
        status: AttemptStatus,
        http_status: Option<u16>,
        retry_after_ms: Option<u64>,
        error: String,
    },
    NextProvider {
        status: AttemptStatus,
        http_status: Option<u16>,
        error: String,
        reply: Option<Reply>,
    },
    AskAgain {
        status: AttemptStatus,
        problems: Vec<String>,
        reply: Reply,
    },
}

pub struct Chain<'a, R: Runtime> {
    pub runtime: &'a R,
    pub providers: &'a [ProviderConfig],
    pub settings: Settings,
    pub pricing: &'a Pricing,
}

impl<R: Runtime> Chain<'_, R> {
    /// Run `request` through the providers until one answers with JSON that
    /// `validate` accepts (it returns the normalised value or the problems).
    pub async fn complete(
        &self,
        request: &CompletionRequest,
        validate: &dyn Fn(&Value) -> Result<Value, Vec<String>>,
        budget: &mut Budget,
        deadline_ms: u64,
        attempts: &mut Vec<Attempt>,
    ) -> Result<Completion, ChainError> {
        let mut last_error = String::from("no AI provider is configured");
        let mut budget_refusals = 0;
        for provider in self.providers {
            let mut feedback: Option<Vec<String>> = None;
            let mut asked_again = false;
            let mut calls = 0;
            while calls < self.settings.max_attempts {
                let now = self.runtime.now_ms();
                let remaining = deadline_ms.saturating_sub(now);
                if remaining < self.settings.min_attempt_ms {
                    return Err(ChainError::DeadlineExceeded(format!(
                        "the request deadline passed after {} attempt(s); last error: {last_error}",
                        attempts.len()
                    )));
                }
                let user = match &feedback {
                    Some(problems) => format!("{}\n\n{}", request.user, feedback_prompt(problems)),
                    None => request.user.clone(),
                };
                let max_tokens = match self.fit_to_budget(provider, request, &user, budget) {
                    Ok(max_tokens) => max_tokens,
                    Err(refusal) => {
                        attempts.push(self.record(
                            provider,
                            request.purpose,
                            AttemptStatus::BudgetRefused,
                            None,
                            0,
                            None,
                            Some(refusal.clone()),
                        ));
                        last_error = refusal;
                        budget_refusals += 1;
                        break;
                    }
                };
                calls += 1;
                let timeout = self.settings.attempt_timeout_ms.min(remaining);
                let outcome = self
                    .call(
                        provider, request, &user, max_tokens, timeout, remaining, validate,
                    )
                    .await;
                let latency = self.runtime.now_ms().saturating_sub(now);
                match outcome {
                    Outcome::Usable(value, reply) => {
                        let attempt = self.record(
                            provider,
                            request.purpose,
                            AttemptStatus::Success,
                            Some(200),
                            latency,
                            Some(&reply),
                            None,
                        );
                        budget.spent_usd =
                            round_usd(budget.spent_usd + attempt.cost_usd.unwrap_or(0.0));
                        attempts.push(attempt);
                        let model = reply.model.unwrap_or_else(|| provider.model.clone());
                        return Ok(Completion {
                            value,
                            provider: provider.kind,
                            model,
                        });
                    }
                    Outcome::Retry {
                        status,
                        http_status,
                        retry_after_ms,
                        error,
                    } => {
                        attempts.push(self.record(
                            provider,
                            request.purpose,
                            status,
                            http_status,
                            latency,
                            None,
                            Some(error.clone()),
                        ));
                        last_error = format!("{}: {error}", provider.kind);
                        if calls >= self.settings.max_attempts {
                            break;
                        }
                        let pause = self.backoff(calls, retry_after_ms);
                        let left = deadline_ms.saturating_sub(self.runtime.now_ms());
                        if pause + self.settings.min_attempt_ms > left {
                            break; // no time to wait and retry here: try the next provider
                        }
                        self.runtime.sleep(pause).await;
                    }
                    Outcome::NextProvider {
                        status,
                        http_status,
                        error,
                        reply,
                    } => {
                        let attempt = self.record(
                            provider,
                            request.purpose,
                            status,
                            http_status,
                            latency,
                            reply.as_ref(),
                            Some(error.clone()),
                        );
                        budget.spent_usd =
                            round_usd(budget.spent_usd + attempt.cost_usd.unwrap_or(0.0));
                        attempts.push(attempt);
                        last_error = format!("{}: {error}", provider.kind);
                        break;
                    }
                    Outcome::AskAgain {
                        status,
                        problems,
                        reply,
                    } => {
                        let error = problems.join("; ");
                        let attempt = self.record(
                            provider,
                            request.purpose,
                            status,
                            Some(200),
                            latency,
                            Some(&reply),
                            Some(error.clone()),
                        );
                        budget.spent_usd =
                            round_usd(budget.spent_usd + attempt.cost_usd.unwrap_or(0.0));
                        attempts.push(attempt);
                        last_error = format!("{}: {error}", provider.kind);
                        if asked_again {
                            break;
                        }
                        asked_again = true;
                        feedback = Some(problems);
                    }
                }
            }
        }
        if budget_refusals > 0 && budget_refusals == self.providers.len() {
            return Err(ChainError::BudgetExceeded(last_error));
        }
        Err(ChainError::ProvidersFailed(last_error))
    }

    /// The `max_tokens` this attempt may ask for within the budget.
    fn fit_to_budget(
        &self,
        provider: &ProviderConfig,
        request: &CompletionRequest,
        user: &str,
        budget: &Budget,
    ) -> Result<u32, String> {
        let input_bytes = request.system.len() + user.len() + request.schema.to_string().len();
        affordable_output_tokens(
            self.pricing.price(&provider.model),
            &provider.model,
            budget,
            worst_case_input_tokens(input_bytes),
            request.max_tokens,
            request.expected_output_tokens,
        )
    }

    fn backoff(&self, calls: u32, retry_after_ms: Option<u64>) -> u64 {
        match retry_after_ms {
            Some(ms) => ms.min(self.settings.retry_after_cap_ms),
            None => {
                let exp = self
                    .settings
                    .backoff_base_ms
                    .saturating_mul(1 << (calls - 1).min(16));
                let capped = exp.min(self.settings.backoff_cap_ms) as f64;
                // "Equal jitter": at least half the step, so retries never stampede.
                (capped * (0.5 + 0.5 * self.runtime.random())) as u64
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn record(
        &self,
        provider: &ProviderConfig,
        purpose: Purpose,
        status: AttemptStatus,
        http_status: Option<u16>,
        latency_ms: u64,
        reply: Option<&Reply>,
        error: Option<String>,
    ) -> Attempt {
        let usage = reply.map(|r| r.usage).unwrap_or_default();
        let model = reply
            .and_then(|r| r.model.clone())
            .unwrap_or_else(|| provider.model.clone());
        // A call that produced no tokens cost nothing, priced model or not.
        let cost_usd = if usage == TokenUsage::default() {
            Some(0.0)
        } else {
            self.pricing.cost(&model, &usage)
        };
        Attempt {
            provider: provider.kind,
            model,
            purpose,
            status,
            http_status,
            latency_ms,
            usage,
            cost_usd,
            error,
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn call(
        &self,
        provider: &ProviderConfig,
        request: &CompletionRequest,
        user: &str,
        max_tokens: u32,
        timeout_ms: u64,
        total_ms: u64,
        validate: &dyn Fn(&Value) -> Result<Value, Vec<String>>,
    ) -> Outcome {
        let wire_request = WireRequest {
            model: &provider.model,
            system: &request.system,
            user,
            schema_name: &request.schema_name,
            schema: &request.schema,
            max_tokens,
            temperature: request.temperature,
        };
        let key = provider.api_key.as_ref().map(Secret::expose).unwrap_or("");
        if let Some(p) = &request.progress {
            p.reset();
        }
        let reply = match provider.kind {
            ProviderKind::Offline => {
                let Some(answer) = request.offline_answer.clone() else {
                    return Outcome::NextProvider {
                        status: AttemptStatus::Refused,
                        http_status: None,
                        error: "the offline provider cannot answer this request".into(),
                        reply: None,
                    };
                };
                Ok(Reply {
                    json: Some(answer),
                    model: Some("offline".into()),
                    ..Reply::default()
                })
            }
            ProviderKind::WorkersAi => {
                let mut decoder = StreamDecoder::new(Format::WorkersAi);
                let sent = {
                    let progress = request.progress.as_deref();
                    let mut sink = |bytes: &[u8]| decoder.feed_reporting(bytes, progress);
                    self.runtime
                        .workers_ai_stream(
                            &provider.model,
                            &wire::workers_ai_input(&wire_request),
                            timeout_ms,
                            total_ms,
                            self.settings.stream_stall_ms,
                            &mut sink,
                        )
                        .await
                };
                match sent {
                    Ok(()) => decoder.finish(max_tokens).map_err(|e| e.0),
                    Err(e) => return transport_outcome(e, timeout_ms),
                }
            }
            ProviderKind::Openai | ProviderKind::Anthropic => {
                let call = if provider.kind == ProviderKind::Openai {
                    wire::openai_call(&provider.base_url, key, &wire_request)
                } else {
                    wire::anthropic_call(&provider.base_url, key, &wire_request)
                };
                let format = if provider.kind == ProviderKind::Openai {
                    Format::Openai
                } else {
                    Format::Anthropic
                };
                let mut decoder = StreamDecoder::new(format);
                let sent = {
                    let progress = request.progress.as_deref();
                    let mut sink = |bytes: &[u8]| decoder.feed_reporting(bytes, progress);
                    self.runtime
                        .http_stream(
                            &call,
                            timeout_ms,
                            total_ms,
                            self.settings.stream_stall_ms,
                            &mut sink,
                        )
                        .await
                };
                let http = match sent {
                    Ok(http) => http,
                    Err(e) => return transport_outcome(e, timeout_ms),
                };
                if !(200..300).contains(&http.status) {
                    let error = wire::error_summary(http.status, &http.body);
                    // The provider's own words go to the log only, redacted.
                    if let Some(message) = wire::provider_message(&http.body) {
                        crate::error::worker_log(&format!(
                            "{} ({}) answered HTTP {}: {message}",
                            provider.kind, provider.model, http.status
                        ));
                    }
                    return match wire::classify_http(
                        http.status,
                        &http.body,
                        http.retry_after.as_deref(),
                    ) {
                        ErrorClass::Retryable { retry_after_ms } => Outcome::Retry {
                            status: AttemptStatus::HttpError,
                            http_status: Some(http.status),
                            retry_after_ms,
                            error,
                        },
                        ErrorClass::Fatal => Outcome::NextProvider {
                            status: AttemptStatus::HttpError,
                            http_status: Some(http.status),
                            error,
                            reply: None,
                        },
                    };
                }
                decoder.finish(max_tokens).map_err(|e| e.0)
            }
        };
        let reply = match reply {
            Ok(reply) => reply,
            Err(error) => {
                return Outcome::Retry {
                    status: AttemptStatus::HttpError,
                    http_status: Some(200),
                    retry_after_ms: None,
                    error,
                }
            }
        };
        if let Some(refusal) = &reply.refusal {
            let error = format!("refused: {}", refusal.chars().take(200).collect::<String>());
            return Outcome::NextProvider {
                status: AttemptStatus::Refused,
                http_status: Some(200),
                error,
                reply: Some(reply),
            };
        }
        let parsed = match (&reply.json, &reply.text) {
            (Some(json), _) => Extracted::Json(json.clone()),
            (None, Some(text)) => extract_json(text),
            (None, None) => Extracted::Invalid("the answer is empty".into()),
        };
        match parsed {
            Extracted::Json(value) => match validate(&value) {
                Ok(valid) => Outcome::Usable(valid, reply),
                Err(problems) if reply.truncated => truncated(problems, reply),
                Err(problems) => Outcome::AskAgain {
                    status: AttemptStatus::InvalidOutput,
                    problems,
                    reply,
                },
            },
            Extracted::Invalid(problem) if reply.truncated => truncated(vec![problem], reply),
            Extracted::Invalid(problem) => Outcome::AskAgain {
                status: AttemptStatus::InvalidOutput,
                problems: vec![problem],
                reply,
            },
        }
    }
}

fn truncated(mut problems: Vec<String>, reply: Reply) -> Outcome {
    problems.insert(0, "the answer was cut off at the token limit: be more concise (shorter descriptions), keep the same shape".into());
    Outcome::AskAgain {
        status: AttemptStatus::Truncated,
        problems,
        reply,
    }
}

fn transport_outcome(e: Transport, timeout_ms: u64) -> Outcome {
    match e {
        Transport::Timeout => Outcome::Retry {
            status: AttemptStatus::Timeout,
            http_status: None,
            retry_after_ms: None,
            error: format!("no answer within {timeout_ms} ms"),
        },
        Transport::Stalled(ms) => Outcome::Retry {
            status: AttemptStatus::Timeout,
            http_status: None,
            retry_after_ms: None,
            error: format!("the stream stalled: no bytes for {ms} ms"),
        },
        Transport::Failed(error) => Outcome::Retry {
            status: AttemptStatus::NetworkError,
            http_status: None,
            retry_after_ms: None,
            error,
        },
    }
}

/// What the model is told when its previous answer was not usable.
pub fn feedback_prompt(problems: &[String]) -> String {
    format!(
        "Your previous answer could not be used:\n- {}\nAnswer again with the complete corrected JSON object only.",
        problems.join("\n- ")
    )
}

/// Sum of usage and cost over attempts; an unpriced attempt makes cost unknown.
pub fn totals(attempts: &[Attempt]) -> (TokenUsage, Option<f64>) {
    let mut usage = TokenUsage::default();
    for a in attempts {
        usage += a.usage;
    }
    (usage, sum_costs(attempts.iter().map(|a| a.cost_usd)))
}

#[cfg(test)]
mod tests;
