//! The chain's policy, driven by a scripted runtime on a virtual clock.

use super::*;
use serde_json::json;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;

mod budget;
mod cancel;

struct Script {
    replies: RefCell<VecDeque<Result<HttpReply, Transport>>>,
    calls: RefCell<Vec<HttpCall>>,
    clock: Cell<u64>,
    slept: RefCell<Vec<u64>>,
    /// Asks its sink before sending, as the Workers runtime does after
    /// waiting for a header slot.
    asks_before_sending: Cell<bool>,
}

impl Script {
    fn new(replies: Vec<Result<HttpReply, Transport>>) -> Script {
        Script {
            replies: RefCell::new(replies.into()),
            calls: RefCell::default(),
            clock: Cell::new(0),
            slept: RefCell::default(),
            asks_before_sending: Cell::new(false),
        }
    }
}

impl Runtime for Script {
    async fn http(&self, call: &HttpCall, timeout_ms: u64) -> Result<HttpReply, Transport> {
        self.calls.borrow_mut().push(call.clone());
        let reply = self
            .replies
            .borrow_mut()
            .pop_front()
            .expect("the chain made more calls than scripted");
        let spent = if reply == Err(Transport::Timeout) {
            timeout_ms
        } else {
            100
        };
        self.clock.set(self.clock.get() + spent);
        reply
    }
    async fn http_stream(
        &self,
        call: &HttpCall,
        timeout_ms: u64,
        _total_ms: u64,
        _stall_ms: u64,
        sink: &mut dyn FnMut(&[u8]) -> bool,
    ) -> Result<HttpReply, Transport> {
        if self.asks_before_sending.get() && !sink(&[]) {
            return Err(Transport::NotSent);
        }
        Ok(fed_whole(self.http(call, timeout_ms).await?, sink))
    }
    async fn workers_ai(&self, _: &str, _: &Value, _: u64) -> Result<Value, Transport> {
        Err(Transport::Failed("not scripted".into()))
    }
    async fn sleep(&self, ms: u64) {
        self.slept.borrow_mut().push(ms);
        self.clock.set(self.clock.get() + ms);
    }
    fn now_ms(&self) -> u64 {
        self.clock.get()
    }
    fn random(&self) -> f64 {
        0.5
    }
}

fn ok_openai(content: &str, finish: &str) -> Result<HttpReply, Transport> {
    let body = json!({"model": "gpt-4o-mini", "choices": [{"message": {"content": content}, "finish_reason": finish}],
        "usage": {"prompt_tokens": 1000, "completion_tokens": 500}});
    Ok(HttpReply {
        status: 200,
        retry_after: None,
        body: body.to_string(),
    })
}

fn ok_anthropic(content: &str) -> Result<HttpReply, Transport> {
    let body = json!({"model": "claude-haiku-4-5", "content": [{"type": "text", "text": content}], "stop_reason": "end_turn",
        "usage": {"input_tokens": 1000, "output_tokens": 500}});
    Ok(HttpReply {
        status: 200,
        retry_after: None,
        body: body.to_string(),
    })
}

fn status(code: u16, retry_after: Option<&str>) -> Result<HttpReply, Transport> {
    Ok(HttpReply {
        status: code,
        retry_after: retry_after.map(str::to_string),
        body: r#"{"error":{"message":"injected"}}"#.into(),
    })
}

fn providers() -> Vec<ProviderConfig> {
    vec![
        ProviderConfig {
            kind: ProviderKind::Openai,
            model: "gpt-4o-mini".into(),
            base_url: "http://127.0.0.1:1/v1".into(),
            api_key: Secret::new("k1".into()),
        },
        ProviderConfig {
            kind: ProviderKind::Anthropic,
            model: "claude-haiku-4-5".into(),
            base_url: "http://127.0.0.1:1".into(),
            api_key: Secret::new("k2".into()),
        },
    ]
}

fn request() -> CompletionRequest {
    CompletionRequest {
        purpose: Purpose::named("granulate"),
        system: "s".into(),
        user: "u".into(),
        schema_name: "granulator_course".into(),
        schema: json!({"type": "object"}),
        max_tokens: 4000,
        temperature: 0.4,
        expected_output_tokens: 1000,
        offline_answer: None,
        progress: None,
        shared_prefix: 0,
        cache_key: None,
    }
}

/// Accepts objects with a string `title`.
fn needs_title(v: &Value) -> Result<Value, Vec<String>> {
    if v["title"].is_string() {
        Ok(v.clone())
    } else {
        Err(vec!["`title` is missing".into()])
    }
}

struct Run {
    result: Result<Completion, ChainError>,
    attempts: Vec<Attempt>,
    budget: Budget,
}

async fn run(script: &Script, providers: &[ProviderConfig], budget: Budget, deadline: u64) -> Run {
    let pricing = Pricing::default();
    let chain = Chain {
        runtime: script,
        providers,
        settings: Settings::default(),
        pricing: &pricing,
        stop: None,
    };
    let mut attempts = Vec::new();
    let mut budget = budget;
    let result = chain
        .complete(
            &request(),
            &needs_title,
            &mut budget,
            deadline,
            &mut attempts,
        )
        .await;
    Run {
        result,
        attempts,
        budget,
    }
}

fn statuses(attempts: &[Attempt]) -> Vec<(&'static str, &'static str)> {
    attempts
        .iter()
        .map(|a| (a.provider.as_str(), a.status.as_str()))
        .collect()
}

#[tokio::test]
async fn first_answer_is_used_and_priced_exactly() {
    let script = Script::new(vec![ok_openai(r#"{"title": "x"}"#, "stop")]);
    let r = run(&script, &providers(), Budget::default(), 120_000).await;
    let done = r.result.unwrap();
    assert_eq!(done.provider, ProviderKind::Openai);
    assert_eq!(r.attempts.len(), 1);
    // 1000 × 0.15 + 500 × 0.60 per 1M
    assert_eq!(r.attempts[0].cost_usd, Some(0.00045));
    assert_eq!(r.budget.spent_usd, 0.00045);
}

#[tokio::test]
async fn rate_limits_are_retried_honouring_retry_after() {
    let script = Script::new(vec![
        status(429, Some("2")),
        ok_openai(r#"{"title": "x"}"#, "stop"),
    ]);
    let r = run(&script, &providers(), Budget::default(), 120_000).await;
    assert!(r.result.is_ok());
    // At least the 2 s asked, plus up to half again at random (0.5 here).
    assert_eq!(*script.slept.borrow(), vec![2500]);
    assert_eq!(
        statuses(&r.attempts),
        vec![("openai", "http_error"), ("openai", "success")]
    );
    assert_eq!(r.attempts[0].http_status, Some(429));
    assert_eq!(r.attempts[0].cost_usd, Some(0.0));
}

#[tokio::test]
async fn a_rate_limit_is_waited_out_past_max_attempts_with_pauses_that_grow() {
    // Five 429s at one provider (max_attempts is 3), then its answer.
    let mut replies: Vec<_> = (0..5).map(|_| status(429, Some("1"))).collect();
    replies.push(ok_openai(r#"{"title": "x"}"#, "stop"));
    let script = Script::new(replies);
    let r = run(&script, &providers(), Budget::default(), 120_000).await;
    assert_eq!(r.result.unwrap().provider, ProviderKind::Openai);
    // The longer of Retry-After (1 s) and the 500 ms step doubling to its
    // 8 s cap, plus a quarter (jitter 0.5 of up to half again).
    assert_eq!(*script.slept.borrow(), vec![1250, 1250, 2500, 5000, 10_000]);
    assert_eq!(r.attempts.len(), 6);
    assert!(r.attempts[..5]
        .iter()
        .all(|a| a.http_status == Some(429) && a.cost_usd == Some(0.0)));
    assert_eq!(r.attempts[5].status, AttemptStatus::Success);
}

#[tokio::test]
async fn a_limit_that_never_lifts_leaves_the_next_provider_half_the_time() {
    // 429s from openai until half of the 60 s before the deadline is used, then anthropic.
    let mut replies: Vec<_> = (0..6).map(|_| status(429, Some("1"))).collect();
    replies.push(ok_anthropic(r#"{"title": "y"}"#));
    let script = Script::new(replies);
    let r = run(&script, &providers(), Budget::default(), 60_000).await;
    assert_eq!(r.result.unwrap().provider, ProviderKind::Anthropic);
    // Calls take 100 ms: the sixth 429 comes at 20.6 s, and its 10 s wait
    // plus an attempt's minimum would pass 30 s.
    assert_eq!(*script.slept.borrow(), vec![1250, 1250, 2500, 5000, 10_000]);
    assert!(script.clock.get() <= 30_000 + 100, "{}", script.clock.get());
    assert_eq!(
        statuses(&r.attempts)
            .iter()
            .filter(|s| s.0 == "openai")
            .count(),
        6
    );
    assert_eq!(
        script.calls.borrow()[6].url,
        "http://127.0.0.1:1/v1/messages"
    );
}

#[tokio::test]
async fn a_429_that_says_the_account_has_no_credit_is_not_waited_for() {
    let script = Script::new(vec![
        Ok(HttpReply {
            status: 429,
            retry_after: Some("1".into()),
            body: r#"{"error":{"message":"You exceeded your current quota, please check your plan and billing details.","type":"insufficient_quota"}}"#.into(),
        }),
        ok_anthropic(r#"{"title": "y"}"#),
    ]);
    let r = run(&script, &providers(), Budget::default(), 120_000).await;
    assert_eq!(r.result.unwrap().provider, ProviderKind::Anthropic);
    assert!(script.slept.borrow().is_empty());
}

#[tokio::test]
async fn server_errors_are_retried_with_backoff_then_the_next_provider_answers() {
    let script = Script::new(vec![
        status(500, None),
        status(529, None),
        status(503, None),
        ok_anthropic(r#"{"title": "y"}"#),
    ]);
    let r = run(&script, &providers(), Budget::default(), 120_000).await;
    assert_eq!(r.result.unwrap().provider, ProviderKind::Anthropic);
    // 500 ms and 1000 ms steps at jitter 0.5 → 75 % of each step.
    assert_eq!(*script.slept.borrow(), vec![375, 750]);
    assert_eq!(r.attempts.len(), 4);
    assert_eq!(
        script.calls.borrow()[3].url,
        "http://127.0.0.1:1/v1/messages"
    );
}

#[tokio::test]
async fn bad_keys_go_straight_to_the_next_provider() {
    let script = Script::new(vec![status(401, None), ok_anthropic(r#"{"title": "y"}"#)]);
    let r = run(&script, &providers(), Budget::default(), 120_000).await;
    assert!(r.result.is_ok());
    assert!(script.slept.borrow().is_empty());
    // Our words only: the provider's message ("injected") stays in the log.
    assert_eq!(
        r.attempts[0].error.as_deref(),
        Some("HTTP 401: the provider refused the API key: check it")
    );
}

#[tokio::test]
async fn invalid_output_is_asked_again_once_with_the_problems() {
    let script = Script::new(vec![
        ok_openai(r#"{"name": "x"}"#, "stop"),
        ok_openai(r#"Sure! ```json {"title": "x"} ```"#, "stop"),
    ]);
    let r = run(&script, &providers(), Budget::default(), 120_000).await;
    assert!(r.result.is_ok());
    let second = &script.calls.borrow()[1];
    let user = second.body["messages"][1]["content"].as_str().unwrap();
    assert!(
        user.contains("could not be used") && user.contains("`title` is missing"),
        "{user}"
    );
    assert_eq!(
        statuses(&r.attempts),
        vec![("openai", "invalid_output"), ("openai", "success")]
    );
    // Both calls were billed: the failed one's tokens count too.
    let (usage, cost) = totals(&r.attempts);
    assert_eq!(usage.input, 2000);
    assert_eq!(cost, Some(0.0009));
}

#[tokio::test]
async fn output_still_invalid_after_feedback_moves_to_the_next_provider() {
    let script = Script::new(vec![
        ok_openai("not json", "stop"),
        ok_openai("{}", "stop"),
        ok_anthropic(r#"{"title": "z"}"#),
    ]);
    let r = run(&script, &providers(), Budget::default(), 120_000).await;
    assert_eq!(r.result.unwrap().provider, ProviderKind::Anthropic);
    assert_eq!(r.attempts.len(), 3);
}

#[tokio::test]
async fn truncated_answers_are_detected_and_asked_again() {
    let script = Script::new(vec![
        ok_openai(r#"{"title": "x", "modules": [{"ti"#, "length"),
        ok_openai(r#"{"title": "x"}"#, "stop"),
    ]);
    let r = run(&script, &providers(), Budget::default(), 120_000).await;
    assert!(r.result.is_ok());
    assert_eq!(r.attempts[0].status, AttemptStatus::Truncated);
    let user = script.calls.borrow()[1].body["messages"][1]["content"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(user.contains("cut off"));
}

#[tokio::test]
async fn refusals_move_to_the_next_provider() {
    let refusal = json!({"choices": [{"message": {"content": null, "refusal": "I can't"}, "finish_reason": "stop"}], "usage": {"prompt_tokens": 10, "completion_tokens": 2}});
    let script = Script::new(vec![
        Ok(HttpReply {
            status: 200,
            retry_after: None,
            body: refusal.to_string(),
        }),
        ok_anthropic(r#"{"title": "y"}"#),
    ]);
    let r = run(&script, &providers(), Budget::default(), 120_000).await;
    assert!(r.result.is_ok());
    assert_eq!(r.attempts[0].status, AttemptStatus::Refused);
}

#[tokio::test]
async fn a_refusal_s_own_words_never_reach_the_attempt() {
    let words = "Refused. Internal: https://internal.example/admin key sk-live-0123456789abcdef";
    let refusal = json!({"choices": [{"message": {"content": null, "refusal": words}, "finish_reason": "stop"}], "usage": {"prompt_tokens": 10, "completion_tokens": 2}});
    let script = Script::new(vec![
        Ok(HttpReply {
            status: 200,
            retry_after: None,
            body: refusal.to_string(),
        }),
        ok_anthropic(r#"{"title": "y"}"#),
    ]);
    let r = run(&script, &providers(), Budget::default(), 120_000).await;
    let error = r.attempts[0].error.clone().unwrap();
    assert_eq!(
        error,
        "openai (gpt-4o-mini) refused to answer this request; the next provider was tried. Rephrase the topic if every provider refuses it"
    );
    for leaked in ["internal.example", "sk-live", "Internal"] {
        assert!(!error.contains(leaked), "{error}");
    }
}

#[tokio::test]
async fn an_answer_past_its_byte_cap_is_unusable_and_counts_at_its_worst_case() {
    // A 200 whose body is larger than a call of 4 000 max tokens can need.
    let huge = "x".repeat(answer_byte_cap(4000) + 1);
    let body = json!({"model": "gpt-4o-mini", "choices": [{"message": {"content": huge}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1}});
    let script = Script::new(vec![
        Ok(HttpReply {
            status: 200,
            retry_after: None,
            body: body.to_string(),
        }),
        ok_openai(r#"{"title": "x"}"#, "stop"),
    ]);
    let r = run(&script, &providers(), Budget::default(), 120_000).await;
    assert!(r.result.is_ok(), "asked again, as for a truncation");
    let first = &r.attempts[0];
    assert_eq!(first.status, AttemptStatus::Truncated);
    assert!(
        first.error.as_deref().unwrap().contains("passed"),
        "{first:?}"
    );
    assert_eq!(first.usage.output, 4000, "every allowed output token");
    assert!(first.usage.input >= 1, "the prompt's worst case");
    let user = script.calls.borrow()[1].body["messages"][1]["content"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(user.contains("cut off"), "{user}");
}

#[test]
fn the_answer_byte_cap_grows_with_max_tokens_up_to_a_ceiling() {
    assert_eq!(answer_byte_cap(0), ANSWER_BYTES_MARGIN);
    assert_eq!(
        answer_byte_cap(1000),
        1000 * ANSWER_BYTES_PER_TOKEN + ANSWER_BYTES_MARGIN
    );
    assert!(answer_byte_cap(1000) < answer_byte_cap(2000));
    assert_eq!(answer_byte_cap(u32::MAX), MAX_ANSWER_BYTES);
}

#[tokio::test]
async fn timeouts_are_retried_but_the_deadline_ends_the_chain() {
    let script = Script::new(vec![Err(Transport::Timeout), Err(Transport::Timeout)]);
    let r = run(&script, &providers(), Budget::default(), 100_000).await;
    assert!(
        matches!(r.result, Err(ChainError::DeadlineExceeded(_))),
        "{:?}",
        r.result
    );
    assert_eq!(
        statuses(&r.attempts),
        vec![("openai", "timeout"), ("openai", "timeout")]
    );
    assert!(script.clock.get() <= 100_000 + 1);
}

#[tokio::test]
async fn every_provider_failing_reports_the_last_error() {
    let script = Script::new(vec![status(400, None), status(403, None)]);
    let r = run(&script, &providers(), Budget::default(), 120_000).await;
    match r.result {
        Err(ChainError::ProvidersFailed(message)) => {
            assert_eq!(
                message,
                "anthropic: HTTP 403: the provider refused access (key permissions, region or model access)"
            )
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn the_offline_provider_answers_without_io() {
    let offline = vec![ProviderConfig {
        kind: ProviderKind::Offline,
        model: "offline".into(),
        base_url: String::new(),
        api_key: None,
    }];
    let script = Script::new(vec![]);
    let pricing = Pricing::default();
    let chain = Chain {
        runtime: &script,
        providers: &offline,
        settings: Settings::default(),
        pricing: &pricing,
        stop: None,
    };
    let mut req = request();
    req.offline_answer = Some(json!({"title": "offline"}));
    let mut attempts = Vec::new();
    let done = chain
        .complete(
            &req,
            &needs_title,
            &mut Budget::default(),
            10_000,
            &mut attempts,
        )
        .await
        .unwrap();
    assert_eq!(done.model, "offline");
    assert_eq!(attempts[0].cost_usd, Some(0.0));
}

#[test]
fn secrets_never_print() {
    let s = Secret::new("sk-live-123".into()).unwrap();
    assert_eq!(format!("{s:?}"), "Secret(***)");
    assert!(!format!("{:?}", providers()).contains("k1"));
    assert!(Secret::new("  ".into()).is_none());
}

#[test]
fn an_attempt_s_worst_case_is_priced_on_the_dearest_provider() {
    let pricing = Pricing::default();
    let mut r = request();
    r.max_tokens = 1000;
    // "s" + "u" + {"type":"object"}: 19 bytes, at 3 a token: 7 tokens, never
    // a cache hit and perhaps all written to the cache (Haiku: 1.25× input).
    let worst = attempt_worst_case_usd(&providers(), &pricing, &r).unwrap();
    let price = |m: &str| pricing.price(m).unwrap();
    let on = |p: Price| (7.0 * p.worst_input() + 1000.0 * p.output) / 1e6;
    let expected = on(price("gpt-4o-mini")).max(on(price("claude-haiku-4-5")));
    assert!((worst - expected).abs() < 1e-12, "{worst} vs {expected}");
    let mut unpriced = providers();
    unpriced[1].model = "no-such-model".into();
    assert_eq!(attempt_worst_case_usd(&unpriced, &pricing, &r), None);
}

fn billing(content: &str, output: u64) -> Result<HttpReply, Transport> {
    let body = json!({"model": "gpt-4o-mini", "choices": [{"message": {"content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 10, "completion_tokens": output}});
    Ok(HttpReply {
        status: 200,
        retry_after: None,
        body: body.to_string(),
    })
}

#[tokio::test]
async fn a_provider_that_bills_past_max_tokens_gets_no_further_attempt() {
    // Usable, but billed 100 000 output tokens for a call of 4 000: kept,
    // and marked.
    let script = Script::new(vec![billing(r#"{"title": "x"}"#, 100_000)]);
    let r = run(&script, &providers(), Budget::default(), 120_000).await;
    assert!(r.result.is_ok());
    assert_eq!(r.attempts[0].overbilled_past, Some(4000));
    assert!(r.attempts[0]
        .error
        .as_deref()
        .unwrap()
        .starts_with("provider_overbilled: openai (gpt-4o-mini) billed 100000 output tokens for a call of 4000 max tokens"));
    // Unusable and overbilled: no re-ask, no next provider.
    let script = Script::new(vec![billing("not json", 100_000)]);
    let r = run(&script, &providers(), Budget::default(), 120_000).await;
    assert!(
        matches!(&r.result, Err(ChainError::ProvidersFailed(m)) if m.contains("provider_overbilled")),
        "{:?}",
        r.result
    );
    assert_eq!(script.calls.borrow().len(), 1, "no further call");
    // Billing exactly max_tokens is not a fault.
    let script = Script::new(vec![billing(r#"{"title": "x"}"#, 4000)]);
    let r = run(&script, &providers(), Budget::default(), 120_000).await;
    assert_eq!(r.attempts[0].overbilled_past, None);
}
