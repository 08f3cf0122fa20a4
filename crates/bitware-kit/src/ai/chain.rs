//! The chain itself: providers in order, each attempt timed, retried, fed
//! back or refused by the policy in the module doc, and recorded.

use super::json_extract::{extract_json, Extracted};
use super::stream::{Format, StreamDecoder};
use super::wire::{ErrorClass, Reply, WireRequest};
use super::*;

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
            branch: None,
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
