//! The chain itself: providers in order, each attempt timed, retried, fed
//! back or refused by the policy in the module doc, and recorded.

// `Outcome` is the senders' error type: see its doc.
#![allow(clippy::result_large_err)]

use super::json_extract::{extract_json, Extracted};
use super::stream::{Format, StreamDecoder};
use super::wire::{ErrorClass, Reply, WireRequest};
use super::*;

/// What one call produced, before bookkeeping. The senders below return it
/// as their error (`Result<Reply, Outcome>`): one per attempt, as large as
/// the reply it sits beside, so boxing it would buy nothing.
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
    /// The job was cancelled while the answer streamed: the call was dropped,
    /// `reply` carries the usage so far (the prompt at ~4 characters a token,
    /// the output tokens received); `false`: it was dropped before it was
    /// sent, and used nothing.
    Dropped(Reply, bool),
}

pub struct Chain<'a, R: Runtime> {
    pub runtime: &'a R,
    pub providers: &'a [ProviderConfig],
    pub settings: Settings,
    pub pricing: &'a Pricing,
    /// The job's cancel: checked before every attempt and on every chunk.
    pub stop: Option<&'a dyn Stop>,
}

/// What a run of the chain carries from attempt to attempt: the job's
/// budget, its deadline, the attempts so far and the last failure.
struct Run<'r> {
    budget: &'r mut Budget,
    deadline_ms: u64,
    attempts: &'r mut Vec<Attempt>,
    last_error: String,
}

impl Run<'_> {
    /// Record an attempt; a call that produced an answer is paid for.
    fn note(&mut self, attempt: Attempt, paid: bool) {
        if paid {
            self.budget.spent_usd =
                round_usd(self.budget.spent_usd + attempt.cost_usd.unwrap_or(0.0));
        }
        self.attempts.push(attempt);
    }
}

/// How one provider's turn in the chain ended.
enum Turn {
    Answered(Completion),
    /// Too little time is left for another attempt anywhere.
    OutOfTime,
    /// Not even the expected output fits what is left of the budget.
    OverBudget,
    /// Retries, the one re-ask or a fatal error used the provider up.
    GaveUp,
    /// The provider billed past `max_tokens`: no provider is tried after it.
    Halted,
    /// The job was cancelled: nothing more is tried.
    Cancelled,
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
        let mut run = Run {
            budget,
            deadline_ms,
            attempts,
            last_error: String::from("no AI provider is configured"),
        };
        let mut budget_refusals = 0;
        for (i, provider) in self.providers.iter().enumerate() {
            let last = i + 1 == self.providers.len();
            match self.turn(provider, last, request, validate, &mut run).await {
                Turn::Answered(completion) => return Ok(completion),
                Turn::OutOfTime => {
                    return Err(ChainError::DeadlineExceeded(format!(
                        "the request deadline passed after {} attempt(s); last error: {}",
                        run.attempts.len(),
                        run.last_error
                    )))
                }
                Turn::OverBudget => budget_refusals += 1,
                Turn::GaveUp => {}
                Turn::Halted => return Err(ChainError::ProvidersFailed(run.last_error)),
                Turn::Cancelled => {
                    return Err(ChainError::Cancelled(format!(
                        "the job was cancelled after {} attempt(s)",
                        run.attempts.len()
                    )))
                }
            }
        }
        if budget_refusals > 0 && budget_refusals == self.providers.len() {
            return Err(ChainError::BudgetExceeded(run.last_error));
        }
        Err(ChainError::ProvidersFailed(run.last_error))
    }

    /// One provider's attempts: retried, asked again once, or given up.
    /// `last`: no provider comes after it (it may wait a rate limit out to
    /// the deadline).
    async fn turn(
        &self,
        provider: &ProviderConfig,
        last: bool,
        request: &CompletionRequest,
        validate: &dyn Fn(&Value) -> Result<Value, Vec<String>>,
        run: &mut Run<'_>,
    ) -> Turn {
        let mut feedback: Option<Vec<String>> = None;
        // Calls counted against `max_attempts`: a rate limit's 429 is not one.
        let mut calls = 0;
        let mut rate_limited = 0;
        // A 429 is the provider asking us to wait (its limit per key on
        // requests at once or tokens a minute: a fan-out's parallel calls
        // meet it by design), not a failure: it is waited out while this
        // provider's share of the time lasts, all of it for the last
        // provider, half of what is left for any other, so the next one
        // still has time when a limit never lifts.
        let started = self.runtime.now_ms();
        let wait_until = if last {
            run.deadline_ms
        } else {
            started + run.deadline_ms.saturating_sub(started) / 2
        };
        while calls < self.settings.max_attempts {
            // No model call starts once the job's cancel is recorded.
            if let Some(stop) = self.stop {
                if stop.confirm().await {
                    return Turn::Cancelled;
                }
            }
            let now = self.runtime.now_ms();
            let remaining = run.deadline_ms.saturating_sub(now);
            if remaining < self.settings.min_attempt_ms {
                return Turn::OutOfTime;
            }
            let user = match &feedback {
                Some(problems) => format!("{}\n\n{}", request.user, feedback_prompt(problems)),
                None => request.user.clone(),
            };
            let max_tokens = match self.fit_to_budget(provider, request, &user, run.budget) {
                Ok(max_tokens) => max_tokens,
                Err(refusal) => {
                    let attempt = self.record(
                        provider,
                        request.purpose,
                        AttemptStatus::BudgetRefused,
                        None,
                        0,
                        None,
                        Some(refusal.clone()),
                    );
                    run.note(attempt, false);
                    run.last_error = refusal;
                    return Turn::OverBudget;
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
            let overbilled = outcome_usage(&outcome).output > u64::from(max_tokens);
            let attempt = |status, http_status, reply: Option<&Reply>, error: Option<String>| {
                let mut a = self.record(
                    provider,
                    request.purpose,
                    status,
                    http_status,
                    latency,
                    reply,
                    error,
                );
                if overbilled {
                    a.overbilled_past = Some(max_tokens);
                    let note = a.overbilling().unwrap_or_default();
                    crate::error::worker_log(&format!("provider_overbilled: {note}"));
                    a.error = Some(match a.error.take() {
                        Some(e) => format!("provider_overbilled: {note}; {e}"),
                        None => format!("provider_overbilled: {note}"),
                    });
                }
                a
            };
            // A provider that bills past `max_tokens` cannot be bounded: after
            // its answer, usable or not, no further attempt is made.
            if overbilled && !matches!(outcome, Outcome::Usable(..)) {
                let recorded = match outcome {
                    Outcome::NextProvider {
                        status,
                        http_status,
                        reply,
                        ..
                    } => attempt(status, http_status, reply.as_ref(), None),
                    Outcome::AskAgain { status, reply, .. } => {
                        attempt(status, Some(200), Some(&reply), None)
                    }
                    _ => attempt(AttemptStatus::InvalidOutput, Some(200), None, None),
                };
                run.last_error = recorded.error.clone().unwrap_or_default();
                run.note(recorded, true);
                return Turn::Halted;
            }
            match outcome {
                Outcome::Dropped(reply, sent) => {
                    let (http_status, error) = match sent {
                        true => (Some(200), format!(
                            "cancelled: the stream was dropped after {} output tokens (usage counted as streamed so far)",
                            reply.usage.output
                        )),
                        false => (None, "cancelled: not sent, the job stopped while the call waited for a connection".to_string()),
                    };
                    run.note(
                        attempt(
                            AttemptStatus::Cancelled,
                            http_status,
                            Some(&reply),
                            Some(error),
                        ),
                        true,
                    );
                    return Turn::Cancelled;
                }
                Outcome::Usable(value, reply) => {
                    run.note(
                        attempt(AttemptStatus::Success, Some(200), Some(&reply), None),
                        true,
                    );
                    let model = reply.model.unwrap_or_else(|| provider.model.clone());
                    return Turn::Answered(Completion {
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
                    run.note(
                        attempt(status, http_status, None, Some(error.clone())),
                        false,
                    );
                    run.last_error = format!("{}: {error}", provider.kind);
                    if http_status == Some(429) {
                        calls -= 1;
                        rate_limited += 1;
                        let pause = self.rate_limit_pause(rate_limited, retry_after_ms);
                        if self.runtime.now_ms() + pause + self.settings.min_attempt_ms > wait_until
                        {
                            break; // its share of the time is used: the next provider
                        }
                        self.runtime.sleep(pause).await;
                        continue;
                    }
                    if calls >= self.settings.max_attempts {
                        break;
                    }
                    let pause = self.backoff(calls, retry_after_ms);
                    let left = run.deadline_ms.saturating_sub(self.runtime.now_ms());
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
                    run.note(
                        attempt(status, http_status, reply.as_ref(), Some(error.clone())),
                        true,
                    );
                    run.last_error = format!("{}: {error}", provider.kind);
                    break;
                }
                Outcome::AskAgain {
                    status,
                    problems,
                    reply,
                } => {
                    let error = problems.join("; ");
                    run.note(
                        attempt(status, Some(200), Some(&reply), Some(error.clone())),
                        true,
                    );
                    run.last_error = format!("{}: {error}", provider.kind);
                    if feedback.is_some() {
                        break; // asked again once already
                    }
                    feedback = Some(problems);
                }
            }
        }
        Turn::GaveUp
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

    /// The wait after the `n`th 429 of a provider's turn: its `Retry-After`
    /// (up to the cap) or the exponential step for `n`, whichever is longer,
    /// plus up to half again at random. Never less than the provider asked;
    /// growing while the limit holds; and calls refused together (a
    /// fan-out's branches) come back apart, not all at the moment one slot
    /// frees.
    fn rate_limit_pause(&self, n: u32, retry_after_ms: Option<u64>) -> u64 {
        let step = self
            .settings
            .backoff_base_ms
            .saturating_mul(1 << (n.max(1) - 1).min(16))
            .min(self.settings.backoff_cap_ms);
        let floor = retry_after_ms
            .map_or(0, |ms| ms.min(self.settings.retry_after_cap_ms))
            .max(step);
        floor + (floor as f64 * 0.5 * self.runtime.random()) as u64
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
            branch: None,
            overbilled_past: None,
        }
    }

    /// One attempt: send it, then judge the reply.
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
            shared: request.shared_prefix,
            cache_key: request.cache_key.as_deref(),
        };
        if let Some(p) = &request.progress {
            p.reset();
        }
        let sent = match provider.kind {
            ProviderKind::Offline => offline_reply(request),
            ProviderKind::WorkersAi => {
                self.send_workers_ai(provider, request, &wire_request, timeout_ms, total_ms)
                    .await
            }
            ProviderKind::Openai | ProviderKind::Anthropic => {
                self.send_http(provider, request, &wire_request, timeout_ms, total_ms)
                    .await
            }
        };
        match sent {
            Ok(reply) => judge(provider, reply, validate),
            Err(outcome) => outcome,
        }
    }

    /// A stream's sink: `feed` the chunk unless the job was cancelled, in
    /// which case the call is dropped (the runtime aborts the fetch).
    fn keep_reading(&self, dropped: &mut bool, feed: impl FnOnce() -> bool) -> bool {
        if self.stop.is_some_and(|s| s.requested()) {
            *dropped = true;
            return false;
        }
        feed()
    }

    /// A Workers AI call through the `AI` binding, its stream decoded.
    async fn send_workers_ai(
        &self,
        provider: &ProviderConfig,
        request: &CompletionRequest,
        wire_request: &WireRequest<'_>,
        timeout_ms: u64,
        total_ms: u64,
    ) -> Result<Reply, Outcome> {
        let mut decoder =
            StreamDecoder::with_limit(Format::WorkersAi, answer_byte_cap(wire_request.max_tokens));
        let mut dropped = false;
        let sent = {
            let progress = request.progress.as_deref();
            let mut sink = |bytes: &[u8]| {
                self.keep_reading(&mut dropped, || decoder.feed_reporting(bytes, progress))
            };
            self.runtime
                .workers_ai_stream(
                    &provider.model,
                    &wire::workers_ai_input(wire_request),
                    timeout_ms,
                    total_ms,
                    self.settings.stream_stall_ms,
                    &mut sink,
                )
                .await
        };
        if dropped {
            return Err(dropped_call(
                provider,
                request,
                wire_request,
                &decoder,
                true,
            ));
        }
        match sent {
            Ok(()) if decoder.over_limit() => Err(oversized(provider, request, wire_request)),
            Ok(()) => decoder.finish(wire_request.max_tokens).map_err(unreadable),
            Err(e) => Err(transport_outcome(e, timeout_ms)),
        }
    }

    /// An OpenAI-compatible or Anthropic call over HTTP, its stream decoded;
    /// an HTTP error is classified (retry here, or the next provider).
    async fn send_http(
        &self,
        provider: &ProviderConfig,
        request: &CompletionRequest,
        wire_request: &WireRequest<'_>,
        timeout_ms: u64,
        total_ms: u64,
    ) -> Result<Reply, Outcome> {
        let key = provider.api_key.as_ref().map(Secret::expose).unwrap_or("");
        let (call, format) = if provider.kind == ProviderKind::Openai {
            (
                wire::openai_call(&provider.base_url, key, wire_request),
                Format::Openai,
            )
        } else {
            (
                wire::anthropic_call(&provider.base_url, key, wire_request),
                Format::Anthropic,
            )
        };
        let mut decoder =
            StreamDecoder::with_limit(format, answer_byte_cap(wire_request.max_tokens));
        let mut dropped = false;
        let sent = {
            let progress = request.progress.as_deref();
            let mut sink = |bytes: &[u8]| {
                self.keep_reading(&mut dropped, || decoder.feed_reporting(bytes, progress))
            };
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
        if dropped {
            // A call dropped before it was sent cost nothing.
            let sent_prompt = !matches!(sent, Err(Transport::NotSent));
            return Err(dropped_call(
                provider,
                request,
                wire_request,
                &decoder,
                sent_prompt,
            ));
        }
        let http = sent.map_err(|e| transport_outcome(e, timeout_ms))?;
        if decoder.over_limit() {
            return Err(oversized(provider, request, wire_request));
        }
        if (200..300).contains(&http.status) {
            return decoder.finish(wire_request.max_tokens).map_err(unreadable);
        }
        let error = wire::error_summary(http.status, &http.body);
        // The provider's own words go to the log only, redacted.
        if let Some(message) = wire::provider_message(&http.body) {
            crate::error::worker_log(&format!(
                "{} ({}) answered HTTP {}: {message}",
                provider.kind, provider.model, http.status
            ));
        }
        Err(
            match wire::classify_http(http.status, &http.body, http.retry_after.as_deref()) {
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
            },
        )
    }
}

/// What the provider billed for an outcome that carries its reply.
fn outcome_usage(outcome: &Outcome) -> TokenUsage {
    match outcome {
        Outcome::Usable(_, reply)
        | Outcome::AskAgain { reply, .. }
        | Outcome::NextProvider {
            reply: Some(reply), ..
        } => reply.usage,
        _ => TokenUsage::default(),
    }
}

/// The offline provider answers what the caller computed, or refuses.
fn offline_reply(request: &CompletionRequest) -> Result<Reply, Outcome> {
    match request.offline_answer.clone() {
        Some(answer) => Ok(Reply {
            json: Some(answer),
            model: Some("offline".into()),
            ..Reply::default()
        }),
        None => Err(Outcome::NextProvider {
            status: AttemptStatus::Refused,
            http_status: None,
            error: "the offline provider cannot answer this request".into(),
            reply: None,
        }),
    }
}

/// A 2xx whose stream could not be decoded: retried like a server error.
fn unreadable(e: super::stream::StreamError) -> Outcome {
    Outcome::Retry {
        status: AttemptStatus::HttpError,
        http_status: Some(200),
        retry_after_ms: None,
        error: e.0,
    }
}

/// What a decoded reply is worth: a refusal goes to the next provider, JSON
/// that `validate` accepts is usable, anything else is asked again (a
/// truncated answer with the advice to be more concise).
fn judge(
    provider: &ProviderConfig,
    reply: Reply,
    validate: &dyn Fn(&Value) -> Result<Value, Vec<String>>,
) -> Outcome {
    if let Some(refusal) = &reply.refusal {
        // The model's own words can carry anything (a prompt echoed back, a
        // key, an internal URL): they go to the log, redacted; the attempt,
        // which clients read, gets ours.
        crate::error::worker_log(&format!(
            "{} ({}) refused: {}",
            provider.kind,
            provider.model,
            wire::redact_credentials(&refusal.chars().take(300).collect::<String>())
        ));
        let error = format!(
            "{} ({}) refused to answer this request; the next provider was tried. Rephrase the topic if every provider refuses it",
            provider.kind, provider.model
        );
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
    let problems = match parsed {
        Extracted::Json(value) => match validate(&value) {
            Ok(valid) => return Outcome::Usable(valid, reply),
            Err(problems) => problems,
        },
        Extracted::Invalid(problem) => vec![problem],
    };
    if reply.truncated {
        truncated(problems, reply)
    } else {
        Outcome::AskAgain {
            status: AttemptStatus::InvalidOutput,
            problems,
            reply,
        }
    }
}

/// An answer past its byte limit was not read on: unusable, as a truncated
/// one is. Its usage is unknown, so it counts at the call's worst case (the
/// prompt at 3 bytes a token, all of it a cache write, and every allowed
/// output token): the budget and the daily cap never count less than a
/// provider can bill.
fn oversized(
    provider: &ProviderConfig,
    request: &CompletionRequest,
    wire_request: &WireRequest<'_>,
) -> Outcome {
    let limit = answer_byte_cap(wire_request.max_tokens);
    crate::error::worker_log(&format!(
        "{} ({}) sent more than {limit} bytes for a call of {} max tokens; reading stopped",
        provider.kind, provider.model, wire_request.max_tokens
    ));
    let input_bytes =
        request.system.len() + wire_request.user.len() + request.schema.to_string().len();
    let reply = Reply {
        usage: TokenUsage {
            input: worst_case_input_tokens(input_bytes),
            output: u64::from(wire_request.max_tokens),
            cached: 0,
            cache_write: worst_case_input_tokens(input_bytes),
        },
        model: Some(provider.model.clone()),
        truncated: true,
        ..Reply::default()
    };
    truncated(
        vec![format!(
            "the answer passed {limit} bytes, the most read for {} output tokens; reading stopped (usage unknown: counted at the call's worst case)",
            wire_request.max_tokens
        )],
        reply,
    )
}

/// A call dropped by a cancel: what it used so far — the prompt estimated at
/// ~4 characters a token if it was sent (no usage chunk came), nothing if it
/// was not — and the output tokens the decoder counted (the provider's own
/// count if it had sent one).
fn dropped_call(
    provider: &ProviderConfig,
    request: &CompletionRequest,
    wire_request: &WireRequest<'_>,
    decoder: &StreamDecoder,
    sent_prompt: bool,
) -> Outcome {
    let input_chars = match sent_prompt {
        true => request.system.len() + wire_request.user.len() + request.schema.to_string().len(),
        false => 0,
    };
    Outcome::Dropped(
        Reply {
            usage: TokenUsage {
                input: (input_chars as u64).div_ceil(4),
                output: decoder.tokens(),
                ..TokenUsage::default()
            },
            model: Some(provider.model.clone()),
            ..Reply::default()
        },
        sent_prompt,
    )
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
        // Only answered when the sink said the job dropped the call, which
        // the caller handles first; a runtime that says it otherwise is retried.
        Transport::NotSent => Outcome::Retry {
            status: AttemptStatus::NetworkError,
            http_status: None,
            retry_after_ms: None,
            error: "not sent".into(),
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
