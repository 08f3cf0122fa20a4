//! The provider chain: "a prompt and a JSON schema" in, "validated JSON plus a
//! record of every attempt" out, across providers (seed §9).
//!
//! Policy, per provider in order:
//! - each attempt gets `min(attempt_timeout, time left before the deadline)`;
//! - 5xx / 529 / timeouts are retried with exponential backoff and full
//!   jitter (`Retry-After` honoured up to a cap), at most `max_attempts` calls;
//! - a 429 (a rate limit; not one that says the account has no credit) is
//!   waited out without counting against `max_attempts`: each wait is the
//!   longer of its `Retry-After` (up to the cap) and the exponential step, plus
//!   up to half again at random, while the provider's share of the time lasts
//!   (half of what is left before the deadline, all of it for the last
//!   provider); then the next provider;
//! - 400 / 401 / 403 / no credit / refusals go straight to the next provider;
//! - unusable output (no JSON, invalid JSON, wrong shape, truncated) is asked
//!   again once with the problems fed back, then the next provider;
//! - before every attempt its `max_tokens` is clamped so that the worst case
//!   (the prompt at 3 bytes a token plus every allowed output token) fits
//!   what is left of the job's budget; when not even the expected output
//!   fits, the attempt is refused before it is made.
//!
//! All I/O goes through `Runtime`, so the whole policy is tested natively;
//! `runtime` implements it on Workers (`worker` feature).

mod chain;
pub mod gate;
pub mod json5;
pub mod json_extract;
pub mod progress;
#[cfg(test)]
mod props;
#[cfg(feature = "worker")]
pub mod runtime;
pub mod shares;
pub mod stream;
pub mod wire;

pub use chain::{feedback_prompt, Chain};

pub use progress::Progress;

use crate::pricing::{round_usd, sum_costs, Price, Pricing, TokenUsage};
use crate::provider::{ProviderConfig, ProviderKind, Secret, Settings};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::rc::Rc;
use wire::HttpCall;

/// Why a call is made (`granulate`, `repair`, `validate`, ...): the worker
/// names its own purposes; attempts are recorded under them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Purpose(&'static str);

impl Purpose {
    pub const fn named(name: &'static str) -> Purpose {
        Purpose(name)
    }

    pub fn as_str(self) -> &'static str {
        self.0
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
    /// Leading bytes of `user` that other calls of the same job send too
    /// (0: none). The caller orders its prompt so: what the calls share
    /// first, what is specific to this one last; providers cache the prefix.
    pub shared_prefix: usize,
    /// A stable, non-secret key of the job (OpenAI `prompt_cache_key`).
    pub cache_key: Option<String>,
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
    /// Dropped mid-stream by a cancel: its usage is what had streamed.
    Cancelled,
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
            AttemptStatus::Cancelled => "cancelled",
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
    /// Which part of a fanned-out outline the call wrote (`skeleton`,
    /// `branch 3/8`); `None` for a single call, a repair or a review.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    /// The `max_tokens` the call asked for, when the provider billed more
    /// output than that (a self-hosted server may ignore it): a provider
    /// fault. The chain makes no further attempt after it; the worker makes
    /// no further call for the job and warns (`provider_overbilled`).
    #[serde(skip)]
    pub overbilled_past: Option<u32>,
}

impl Attempt {
    /// `provider_overbilled`'s figures, in words.
    pub fn overbilling(&self) -> Option<String> {
        self.overbilled_past.map(|max_tokens| {
            format!(
                "{} ({}) billed {} output tokens for a call of {max_tokens} max tokens",
                self.provider, self.model, self.usage.output
            )
        })
    }
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

/// The most bytes read of one answer: room for `max_tokens` tokens on the
/// most verbose wire (a streamed OpenAI chunk per token is ~250 bytes with
/// its envelope; four times that), a fixed margin for the envelope, and an
/// absolute ceiling whatever `max_tokens` says. An answer past it is not
/// read on: it is unusable, as a truncated one is.
pub fn answer_byte_cap(max_tokens: u32) -> usize {
    (max_tokens as usize)
        .saturating_mul(ANSWER_BYTES_PER_TOKEN)
        .saturating_add(ANSWER_BYTES_MARGIN)
        .min(MAX_ANSWER_BYTES)
}
pub const ANSWER_BYTES_PER_TOKEN: usize = 1024;
pub const ANSWER_BYTES_MARGIN: usize = 64 * 1024;
/// 8 MiB, for a single call's whole outline. A fan-out's calls are capped by
/// their own `max_tokens` (1–4 k tokens: 1–4 MiB each), so the bytes a
/// provider flooding every stream at once could make an invocation hold grow
/// with `Settings::max_calls_at_once`; the decoder keeps the answer's text,
/// not the wire's envelopes, which is most of those bytes.
pub const MAX_ANSWER_BYTES: usize = 8 * 1024 * 1024;
/// The most bytes read of an error body (only a summary of it is kept).
pub const MAX_ERROR_BODY_BYTES: usize = 64 * 1024;

/// Prompt tokens for budgeting: at most one token per 3 bytes of prompt
/// text. Tokenisers average ~4 characters a token for English prose; JSON
/// schemas and other scripts run denser, so the ceiling assumes 3.
pub fn worst_case_input_tokens(bytes: usize) -> u64 {
    (bytes as u64).div_ceil(3)
}

/// The most one attempt of `request` can cost on the dearest of `providers`
/// (the prompt at 3 bytes a token, none of it a cache hit and all of it
/// perhaps a cache write, and every allowed output token); `None`
/// when one of them has no price, so no bound can be given. The offline
/// provider costs nothing.
pub fn attempt_worst_case_usd(
    providers: &[ProviderConfig],
    pricing: &Pricing,
    request: &CompletionRequest,
) -> Option<f64> {
    let input = worst_case_input_tokens(
        request.system.len() + request.user.len() + request.schema.to_string().len(),
    ) as f64;
    let output = f64::from(request.max_tokens);
    providers.iter().try_fold(0.0_f64, |dearest, p| {
        if p.kind == ProviderKind::Offline {
            return Some(dearest);
        }
        let price = pricing.price(&p.model)?;
        Some(dearest.max((input * price.worst_input() + output * price.output) / 1e6))
    })
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
    // Never a cache hit, perhaps a cache write: the dearest prompt price.
    let input_cost = input_tokens as f64 * price.worst_input() / 1e6;
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
    /// The job was cancelled: no attempt was started after the chain saw it,
    /// and a call streaming then was dropped (recorded as `cancelled`).
    Cancelled(String),
}

/// A chain's failure as the error a caller reads: 422 `budget_exceeded`,
/// 504 `deadline_exceeded`, 502 `provider_error` (naming the last failure),
/// 409 `job_cancelled`.
pub fn chain_error(e: ChainError) -> crate::error::AppError {
    use crate::error::{AppError, Kind};
    match e {
        ChainError::BudgetExceeded(m) => AppError::new(
            Kind::Unprocessable,
            "budget_exceeded",
            format!("the job's budget does not allow another model call: {m}"),
        ),
        ChainError::DeadlineExceeded(m) => {
            AppError::new(Kind::GatewayTimeout, "deadline_exceeded", m)
        }
        ChainError::ProvidersFailed(m) => AppError::new(
            Kind::BadGateway,
            "provider_error",
            format!("every AI provider failed; last: {m}"),
        ),
        ChainError::Cancelled(m) => AppError::conflict("job_cancelled", m),
    }
}

/// A job's cancel as the chain sees it. `requested` is asked on every
/// streamed chunk, so it must be a flag (no I/O): the job's own watcher sets
/// it. `confirm` is asked before every attempt and may read the job's store,
/// so no model call starts once a cancel is recorded.
pub trait Stop {
    fn requested(&self) -> bool;
    fn confirm(&self) -> Confirm<'_>;
}

/// `Stop::confirm`'s answer (a boxed future, so `Stop` is object-safe).
pub type Confirm<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = bool> + 'a>>;

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
    /// Not sent: asked before sending (`sink` given no bytes), the job no
    /// longer wanted it. Nothing reached the provider.
    NotSent,
}

/// A whole reply as a stream of one chunk: a 2xx body goes to `sink` (and
/// is left out of the reply), any other comes back as it is.
pub fn fed_whole(reply: HttpReply, sink: &mut dyn FnMut(&[u8]) -> bool) -> HttpReply {
    if (200..300).contains(&reply.status) {
        sink(reply.body.as_bytes());
        return HttpReply {
            body: String::new(),
            ..reply
        };
    }
    reply
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
    /// `body` is empty) until `sink` answers `false` (the answer is over its
    /// byte limit: the call is dropped); any other status comes back, its
    /// body cut at [`MAX_ERROR_BODY_BYTES`]. `timeout_ms`
    /// bounds the wait for the answer to start; once it streams, only a stall
    /// of `stall_ms` or `total_ms` in all end it (a long answer that keeps
    /// coming is not a timeout). `sink` given no bytes asks whether the call
    /// is still wanted (a runtime that waited before sending asks so; `false`:
    /// the job stopped, and the runtime answers [`Transport::NotSent`]). The
    /// default reads the body in one piece.
    async fn http_stream(
        &self,
        call: &HttpCall,
        timeout_ms: u64,
        _total_ms: u64,
        _stall_ms: u64,
        sink: &mut dyn FnMut(&[u8]) -> bool,
    ) -> Result<HttpReply, Transport> {
        Ok(fed_whole(self.http(call, timeout_ms).await?, sink))
    }
    /// Workers AI with `stream: true` (`sink` as for `http_stream`); the
    /// default feeds the whole answer.
    async fn workers_ai_stream(
        &self,
        model: &str,
        input: &Value,
        timeout_ms: u64,
        _total_ms: u64,
        _stall_ms: u64,
        sink: &mut dyn FnMut(&[u8]) -> bool,
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

/// Sum of usage and cost over attempts; an unpriced attempt makes cost unknown.
pub fn totals(attempts: &[Attempt]) -> (TokenUsage, Option<f64>) {
    let mut usage = TokenUsage::default();
    for a in attempts {
        usage += a.usage;
    }
    (usage, sum_costs(attempts.iter().map(|a| a.cost_usd)))
}

/// A `Runtime`'s clock as a [`crate::timing::Clock`] (what the job
/// lifecycle's waits and watchers take), so a run's watcher and its model
/// calls share one clock: the platform's on Workers, a virtual one in tests.
pub struct RuntimeClock<'a, R>(pub &'a R);

impl<R: Runtime> crate::timing::Clock for RuntimeClock<'_, R> {
    fn now_ms(&self) -> u64 {
        self.0.now_ms()
    }
    async fn sleep(&self, ms: u64) {
        self.0.sleep(ms).await;
    }
}

#[cfg(test)]
mod tests;
