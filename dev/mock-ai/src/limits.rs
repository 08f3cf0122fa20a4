//! Rate limits per API key, as the providers enforce them (issue 24, "Bad
//! input and faults"): off until a test or benchmark adds a rule with
//! `POST /__mock/limits` (`DELETE` drops every rule, `GET` shows each rule's
//! buckets).
//!
//! A rule sets a concurrent-request limit, a tokens-per-minute limit, or
//! both, for one API key (`apiKey`) or for every key, each key then with a
//! bucket of its own. `match` narrows it to the requests whose prompt holds
//! a marker (` && ` parts, as script keys): the suite's tests share one stack
//! and one key per provider, so a test limits its own job's calls only.
//!
//! - Concurrent requests: a request holds a slot from its admission until
//!   its answer ends (a stream's last event, or the client dropping it). Over
//!   the limit, `Retry-After` is the time until the first slot is expected
//!   to free (a stream's planned end), at least a second.
//! - Tokens per minute: a token bucket of `tokensPerMinute` refilled
//!   continuously (Anthropic documents its limits so; OpenAI's behave alike).
//!   A request is admitted when the bucket holds its estimate (the prompt at
//!   4 characters a token plus its `max_tokens`, as OpenAI counts a request
//!   before it runs), which is taken; once the answer is made the estimate
//!   is settled to the tokens billed (input + output). `Retry-After` is the
//!   time until the bucket holds the estimate. A request whose estimate is
//!   over the limit itself can never run: 429 without `Retry-After`.
//!
//! The answer is each provider's: OpenAI's error object (`code`
//! `rate_limit_exceeded`, `type` `requests` or `tokens`) with
//! `x-ratelimit-{limit,remaining,reset}-{requests,tokens}` (resets as
//! durations: `1.5s`, `12ms`, `1m0s`); Anthropic's (`type` `error`, error
//! `type` `rate_limit_error`) with `anthropic-ratelimit-{requests,tokens}-
//! {limit,remaining,reset}` (resets as RFC 3339 times); both with an integer
//! `Retry-After` in seconds. Neither provider has a header for concurrency:
//! a concurrent limit is reported in the `requests` headers. Answers that a
//! rule admitted carry the same headers.
//!
//! Time is passed in (`now`), so the limiter is tested on a virtual clock.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Rule {
    /// The key limited (`Authorization: Bearer` / `x-api-key`); none: every
    /// key, each its own bucket.
    #[serde(default)]
    pub api_key: Option<String>,
    /// Only requests whose system and user prompt hold this (` && ` parts).
    #[serde(default, rename = "match")]
    pub matching: Option<String>,
    #[serde(default)]
    pub concurrent: Option<u32>,
    #[serde(default)]
    pub tokens_per_minute: Option<u64>,
}

/// One key's state under one rule.
#[derive(Debug)]
struct Bucket {
    /// Requests admitted and not ended, with their expected end when known.
    in_flight: HashMap<u64, Option<Instant>>,
    /// Tokens the bucket holds (negative after answers billed past their estimate).
    tokens: f64,
    refilled_at: Instant,
    peak_in_flight: usize,
    admitted: u64,
    refused: u64,
}

impl Bucket {
    fn new(rule: &Rule, now: Instant) -> Bucket {
        Bucket {
            in_flight: HashMap::new(),
            tokens: rule.tokens_per_minute.unwrap_or(0) as f64,
            refilled_at: now,
            peak_in_flight: 0,
            admitted: 0,
            refused: 0,
        }
    }

    fn refill(&mut self, tpm: u64, now: Instant) {
        let elapsed = now.saturating_duration_since(self.refilled_at);
        self.tokens = (self.tokens + elapsed.as_secs_f64() * per_second(tpm)).min(tpm as f64);
        self.refilled_at = now;
    }
}

fn per_second(tpm: u64) -> f64 {
    tpm as f64 / 60.0
}

struct RuleState {
    rule: Rule,
    buckets: HashMap<String, Bucket>,
}

impl RuleState {
    fn applies(&self, api_key: &str, text: &str) -> bool {
        self.rule.api_key.as_deref().is_none_or(|k| k == api_key)
            && self
                .rule
                .matching
                .as_deref()
                .is_none_or(|m| m.split(" && ").all(|part| text.contains(part)))
    }
}

/// Which limit refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exceeded {
    Concurrent,
    Tokens,
    /// The request alone is over the tokens-per-minute limit.
    TooLarge,
}

/// What a rule's bucket says of the request, for the headers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Standing {
    pub concurrent: Option<(u32, u32, Duration)>,
    /// (limit, remaining, time until full)
    pub tokens: Option<(u64, u64, Duration)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    pub exceeded: Exceeded,
    pub limit: u64,
    pub used: u64,
    pub requested: u64,
    /// `None`: waiting cannot help (`TooLarge`).
    pub retry_after: Option<Duration>,
    pub standing: Standing,
}

#[derive(Default)]
pub struct Limiter {
    rules: Vec<RuleState>,
    next_id: u64,
}

/// A request's place under every rule that admitted it: its slots are
/// freed when it is dropped (the answer ended or the client went away).
pub struct Admission {
    limiter: Arc<Mutex<Limiter>>,
    id: u64,
    /// (rule index, key) of every bucket that took the request.
    held: Vec<(usize, String)>,
    estimate: u64,
    pub standing: Option<Standing>,
}

impl Limiter {
    pub fn add(&mut self, rule: Rule) -> usize {
        self.rules.push(RuleState {
            rule,
            buckets: HashMap::new(),
        });
        self.rules.len()
    }

    pub fn clear(&mut self) -> usize {
        let n = self.rules.len();
        self.rules.clear();
        n
    }

    /// Every rule with its buckets (`GET /__mock/limits`).
    pub fn report(&self) -> Value {
        let rules: Vec<Value> = self
            .rules
            .iter()
            .map(|r| {
                let buckets: Vec<Value> = r
                    .buckets
                    .iter()
                    .map(|(key, b)| {
                        json!({"apiKey": key, "inFlight": b.in_flight.len(), "peakInFlight": b.peak_in_flight,
                               "admitted": b.admitted, "refused": b.refused, "tokens": b.tokens.floor()})
                    })
                    .collect();
                json!({"rule": r.rule, "buckets": buckets})
            })
            .collect();
        json!({ "rules": rules })
    }
}

/// Admit a request of `api_key` whose prompt text is `text` and whose
/// estimate is `estimate` tokens: under every rule that applies, or none.
pub fn admit(
    limiter: &Arc<Mutex<Limiter>>,
    api_key: &str,
    text: &str,
    estimate: u64,
    now: Instant,
) -> Result<Admission, Refusal> {
    let mut guard = limiter.lock().unwrap_or_else(|e| e.into_inner());
    let l = &mut *guard;
    let applying: Vec<usize> = (0..l.rules.len())
        .filter(|&i| l.rules[i].applies(api_key, text))
        .collect();
    // Every rule is asked before any takes the request.
    for &i in &applying {
        let rs = &mut l.rules[i];
        let bucket = rs
            .buckets
            .entry(api_key.to_string())
            .or_insert_with(|| Bucket::new(&rs.rule, now));
        if let Some(refusal) = refusal(&rs.rule, bucket, estimate, now) {
            bucket.refused += 1;
            return Err(refusal);
        }
    }
    l.next_id += 1;
    let id = l.next_id;
    let mut standing = None;
    for &i in &applying {
        let rs = &mut l.rules[i];
        let rule = rs.rule.clone();
        let Some(bucket) = rs.buckets.get_mut(api_key) else {
            continue;
        };
        bucket.in_flight.insert(id, None);
        bucket.peak_in_flight = bucket.peak_in_flight.max(bucket.in_flight.len());
        bucket.admitted += 1;
        if rule.tokens_per_minute.is_some() {
            bucket.tokens -= estimate as f64;
        }
        standing = Some(standing_of(&rule, bucket, now));
    }
    Ok(Admission {
        limiter: limiter.clone(),
        id,
        held: applying
            .into_iter()
            .map(|i| (i, api_key.to_string()))
            .collect(),
        estimate,
        standing,
    })
}

fn refusal(rule: &Rule, bucket: &mut Bucket, estimate: u64, now: Instant) -> Option<Refusal> {
    if let Some(limit) = rule.concurrent {
        if bucket.in_flight.len() >= limit as usize {
            let first_free = bucket
                .in_flight
                .values()
                .flatten()
                .min()
                .map(|end| end.saturating_duration_since(now))
                .unwrap_or(Duration::ZERO);
            return Some(Refusal {
                exceeded: Exceeded::Concurrent,
                limit: u64::from(limit),
                used: bucket.in_flight.len() as u64,
                requested: 1,
                retry_after: Some(first_free),
                standing: standing_of(rule, bucket, now),
            });
        }
    }
    if let Some(tpm) = rule.tokens_per_minute {
        bucket.refill(tpm, now);
        let held = bucket.tokens;
        if estimate > tpm || (estimate as f64) > held {
            let too_large = estimate > tpm;
            let wait = ((estimate as f64 - held) / per_second(tpm)).max(0.0);
            return Some(Refusal {
                exceeded: if too_large {
                    Exceeded::TooLarge
                } else {
                    Exceeded::Tokens
                },
                limit: tpm,
                used: (tpm as f64 - held).max(0.0).ceil() as u64,
                requested: estimate,
                retry_after: (!too_large).then(|| Duration::from_secs_f64(wait)),
                standing: standing_of(rule, bucket, now),
            });
        }
    }
    None
}

fn standing_of(rule: &Rule, bucket: &Bucket, now: Instant) -> Standing {
    let concurrent = rule.concurrent.map(|limit| {
        let used = bucket.in_flight.len() as u32;
        let reset = bucket
            .in_flight
            .values()
            .flatten()
            .min()
            .map(|end| end.saturating_duration_since(now))
            .unwrap_or(Duration::ZERO);
        (limit, limit.saturating_sub(used), reset)
    });
    let tokens = rule.tokens_per_minute.map(|tpm| {
        let held = bucket.tokens.max(0.0);
        let to_full = (tpm as f64 - bucket.tokens).max(0.0) / per_second(tpm);
        (tpm, held.floor() as u64, Duration::from_secs_f64(to_full))
    });
    Standing { concurrent, tokens }
}

impl Admission {
    fn each(&self, f: impl Fn(&Rule, &mut Bucket)) {
        let mut l = self.limiter.lock().unwrap_or_else(|e| e.into_inner());
        for (i, key) in &self.held {
            if let Some(rs) = l.rules.get_mut(*i) {
                let rule = rs.rule.clone();
                if let Some(bucket) = rs.buckets.get_mut(key) {
                    f(&rule, bucket);
                }
            }
        }
    }

    /// When the answer is expected to end (a stream's plan): what a request
    /// refused meanwhile is told to wait.
    pub fn expect_end(&self, at: Instant) {
        self.each(|_, b| {
            if let Some(end) = b.in_flight.get_mut(&self.id) {
                *end = Some(at);
            }
        });
    }

    /// The tokens the answer was billed, in place of the estimate taken.
    pub fn settle(&mut self, billed: u64) {
        let estimate = self.estimate;
        self.each(|rule, b| {
            if rule.tokens_per_minute.is_some() {
                b.tokens += estimate as f64 - billed as f64;
            }
        });
        self.estimate = billed;
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        self.each(|_, b| {
            b.in_flight.remove(&self.id);
        });
    }
}

/// A duration as OpenAI writes its resets: `12ms`, `1.5s`, `6m0s`.
pub fn go_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        let s = format!("{:.3}", d.as_secs_f64());
        format!("{}s", s.trim_end_matches('0').trim_end_matches('.'))
    } else {
        format!("{}m{}s", ms / 60_000, (ms % 60_000) / 1000)
    }
}

/// `at` as RFC 3339 in UTC, to the second (Anthropic's resets).
pub fn rfc3339(at: SystemTime) -> String {
    let secs = at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// `Retry-After` in whole seconds, at least 1 (both providers send integers).
pub fn retry_after_seconds(d: Duration) -> u64 {
    d.as_secs_f64().ceil().max(1.0) as u64
}

/// The rate-limit headers of a provider's answer.
pub fn headers(anthropic: bool, s: &Standing, wall: SystemTime) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let families = [
        (
            "requests",
            s.concurrent
                .map(|(limit, left, reset)| (u64::from(limit), u64::from(left), reset)),
        ),
        ("tokens", s.tokens),
    ];
    for (family, figures) in families {
        let Some((limit, remaining, reset)) = figures else {
            continue;
        };
        if anthropic {
            let p = format!("anthropic-ratelimit-{family}");
            out.push((format!("{p}-limit"), limit.to_string()));
            out.push((format!("{p}-remaining"), remaining.to_string()));
            out.push((format!("{p}-reset"), rfc3339(wall + reset)));
        } else {
            out.push((format!("x-ratelimit-limit-{family}"), limit.to_string()));
            out.push((
                format!("x-ratelimit-remaining-{family}"),
                remaining.to_string(),
            ));
            out.push((format!("x-ratelimit-reset-{family}"), go_duration(reset)));
        }
    }
    out
}

/// The 429 a provider answers: its body and headers.
pub fn refusal_answer(
    anthropic: bool,
    model: &str,
    r: &Refusal,
    wall: SystemTime,
) -> (Value, Vec<(String, String)>) {
    let mut hs = headers(anthropic, &r.standing, wall);
    if let Some(wait) = r.retry_after {
        hs.push(("retry-after".into(), retry_after_seconds(wait).to_string()));
    }
    let wait = r
        .retry_after
        .map(|d| format!("{:.3}s", d.as_secs_f64()))
        .unwrap_or_default();
    let body = if anthropic {
        let message = match r.exceeded {
            Exceeded::Concurrent => format!(
                "Number of concurrent requests has exceeded your rate limit of {} for this API key. Please try again later.",
                r.limit
            ),
            Exceeded::Tokens => format!(
                "This request would exceed your rate limit of {} tokens per minute for this API key. Please try again in {wait}.",
                r.limit
            ),
            Exceeded::TooLarge => format!(
                "This request ({} tokens) is larger than your rate limit of {} tokens per minute.",
                r.requested, r.limit
            ),
        };
        json!({"type": "error", "error": {"type": "rate_limit_error", "message": message}, "request_id": "req_mock_rate_limited"})
    } else {
        let (kind, message) = match r.exceeded {
            Exceeded::Concurrent => ("requests", format!(
                "Rate limit reached for {model} in organization org-mock on concurrent requests: Limit {}, Used {}, Requested 1. Please try again in {wait}. Visit https://platform.openai.com/account/rate-limits to learn more.",
                r.limit, r.used
            )),
            Exceeded::Tokens => ("tokens", format!(
                "Rate limit reached for {model} in organization org-mock on tokens per min (TPM): Limit {}, Used {}, Requested {}. Please try again in {wait}. Visit https://platform.openai.com/account/rate-limits to learn more.",
                r.limit, r.used, r.requested
            )),
            Exceeded::TooLarge => ("tokens", format!(
                "Request too large for {model} in organization org-mock on tokens per min (TPM): Limit {}, Requested {}. The input or output tokens must be reduced in order to run successfully.",
                r.limit, r.requested
            )),
        };
        json!({"error": {"message": message, "type": kind, "param": null, "code": "rate_limit_exceeded"}})
    };
    (body, hs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(rule: Rule) -> Arc<Mutex<Limiter>> {
        let l = Arc::new(Mutex::new(Limiter::default()));
        l.lock().unwrap().add(rule);
        l
    }

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    #[test]
    fn a_concurrent_limit_admits_that_many_and_frees_a_slot_when_an_answer_ends() {
        let l = limiter(Rule {
            concurrent: Some(2),
            ..Rule::default()
        });
        let t0 = Instant::now();
        let a = admit(&l, "k", "p", 10, t0).unwrap();
        let b = admit(&l, "k", "p", 10, t0).unwrap();
        b.expect_end(t0 + secs(2.4));
        a.expect_end(t0 + secs(5.0));
        let refused = admit(&l, "k", "p", 10, t0 + secs(1.0)).err().unwrap();
        assert_eq!(refused.exceeded, Exceeded::Concurrent);
        assert_eq!((refused.limit, refused.used), (2, 2));
        // The first slot is expected free when b's stream ends.
        assert_eq!(refused.retry_after, Some(secs(1.4)));
        assert_eq!(retry_after_seconds(secs(1.4)), 2);
        drop(b);
        let c = admit(&l, "k", "p", 10, t0 + secs(2.5)).unwrap();
        assert_eq!(c.standing.unwrap().concurrent.unwrap().1, 0);
        let report = l.lock().unwrap().report();
        let bucket = &report["rules"][0]["buckets"][0];
        assert_eq!(
            (
                &bucket["peakInFlight"],
                &bucket["admitted"],
                &bucket["refused"]
            ),
            (&json!(2), &json!(3), &json!(1))
        );
    }

    #[test]
    fn every_key_has_its_own_bucket_and_a_rule_applies_only_to_its_key_and_marker() {
        let l = limiter(Rule {
            concurrent: Some(1),
            ..Rule::default()
        });
        let _a = admit(&l, "key-a", "p", 1, Instant::now()).unwrap();
        assert!(admit(&l, "key-a", "p", 1, Instant::now()).is_err());
        assert!(admit(&l, "key-b", "p", 1, Instant::now()).is_ok());
        let l = limiter(Rule {
            api_key: Some("key-a".into()),
            matching: Some("topic-1 && Branch:".into()),
            concurrent: Some(1),
            ..Rule::default()
        });
        let _held = admit(&l, "key-a", "topic-1 Branch: 2", 1, Instant::now()).unwrap();
        assert!(admit(&l, "key-a", "topic-1 Branch: 3", 1, Instant::now()).is_err());
        // Another key, another test's prompt, or a call without the part: not limited.
        let t = Instant::now();
        assert!(admit(&l, "key-b", "topic-1 Branch: 3", 1, t).is_ok());
        assert!(admit(&l, "key-a", "topic-2 Branch: 3", 1, t).is_ok());
        assert!(admit(&l, "key-a", "topic-1 skeleton", 1, t).is_ok());
    }

    #[test]
    fn a_token_bucket_refills_continuously_and_is_settled_to_what_was_billed() {
        // 6,000 tokens a minute: 100 a second.
        let l = limiter(Rule {
            tokens_per_minute: Some(6000),
            ..Rule::default()
        });
        let t0 = Instant::now();
        let mut a = admit(&l, "k", "p", 4000, t0).unwrap();
        assert_eq!(a.standing.unwrap().tokens, Some((6000, 2000, secs(40.0))));
        let refused = admit(&l, "k", "p", 3000, t0).err().unwrap();
        assert_eq!(refused.exceeded, Exceeded::Tokens);
        assert_eq!(
            (refused.used, refused.requested),
            (4000, 3000),
            "{refused:?}"
        );
        // 1,000 tokens short at 100 a second.
        assert_eq!(refused.retry_after, Some(secs(10.0)));
        // The answer billed 1,500, not the 4,000 estimated: 2,500 come back.
        a.settle(1500);
        assert!(admit(&l, "k", "p", 3000, t0).is_ok());
        // Billed past the bucket: it goes below zero and the wait grows.
        let mut b = admit(&l, "k", "p", 1400, t0).unwrap();
        b.settle(2400);
        let refused = admit(&l, "k", "p", 100, t0 + secs(1.0)).err().unwrap();
        assert_eq!(refused.retry_after, Some(secs(9.0)));
        // The bucket never holds more than the limit.
        let full = admit(&l, "k", "p", 6000, t0 + secs(3600.0)).unwrap();
        assert_eq!(full.standing.unwrap().tokens.unwrap().1, 0);
    }

    #[test]
    fn a_request_larger_than_the_limit_is_refused_without_a_retry_after() {
        let l = limiter(Rule {
            tokens_per_minute: Some(1000),
            ..Rule::default()
        });
        let r = admit(&l, "k", "p", 1001, Instant::now()).err().unwrap();
        assert_eq!((r.exceeded, r.retry_after), (Exceeded::TooLarge, None));
        let (body, headers) = refusal_answer(false, "gpt-4o-mini", &r, UNIX_EPOCH);
        assert!(body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("Request too large"));
        assert!(headers.iter().all(|(name, _)| name != "retry-after"));
    }

    #[test]
    fn a_request_refused_by_one_rule_takes_nothing_from_another() {
        let l = Arc::new(Mutex::new(Limiter::default()));
        l.lock().unwrap().add(Rule {
            tokens_per_minute: Some(6000),
            ..Rule::default()
        });
        l.lock().unwrap().add(Rule {
            concurrent: Some(1),
            ..Rule::default()
        });
        let t0 = Instant::now();
        let _a = admit(&l, "k", "p", 1000, t0).unwrap();
        assert!(admit(&l, "k", "p", 1000, t0).is_err());
        let report = l.lock().unwrap().report();
        assert_eq!(report["rules"][0]["buckets"][0]["tokens"], 5000.0);
    }

    #[test]
    fn each_provider_answers_a_429_in_its_own_wire_format() {
        let l = limiter(Rule {
            concurrent: Some(1),
            tokens_per_minute: Some(60_000),
            ..Rule::default()
        });
        let t0 = Instant::now();
        let a = admit(&l, "k", "p", 600, t0).unwrap();
        a.expect_end(t0 + secs(0.3));
        let r = admit(&l, "k", "p", 10, t0).err().unwrap();
        let wall = UNIX_EPOCH + Duration::from_secs(1_796_169_600); // 2026-12-02T00:00:00Z
        let (body, headers) = refusal_answer(false, "gpt-4o-mini", &r, wall);
        assert_eq!(body["error"]["code"], "rate_limit_exceeded");
        assert_eq!(body["error"]["type"], "requests");
        let h = |hs: &[(String, String)], name: &str| {
            hs.iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
                .unwrap_or_else(|| panic!("no {name} in {hs:?}"))
        };
        assert_eq!(h(&headers, "retry-after"), "1");
        assert_eq!(h(&headers, "x-ratelimit-limit-requests"), "1");
        assert_eq!(h(&headers, "x-ratelimit-remaining-requests"), "0");
        assert_eq!(h(&headers, "x-ratelimit-reset-requests"), "300ms");
        assert_eq!(h(&headers, "x-ratelimit-limit-tokens"), "60000");
        assert_eq!(h(&headers, "x-ratelimit-remaining-tokens"), "59400");
        assert_eq!(h(&headers, "x-ratelimit-reset-tokens"), "600ms");
        let (body, headers) = refusal_answer(true, "claude-haiku-4-5", &r, wall);
        assert_eq!(body["type"], "error");
        assert_eq!(body["error"]["type"], "rate_limit_error");
        assert_eq!(h(&headers, "retry-after"), "1");
        assert_eq!(h(&headers, "anthropic-ratelimit-requests-remaining"), "0");
        assert_eq!(
            h(&headers, "anthropic-ratelimit-tokens-reset"),
            "2026-12-02T00:00:00Z"
        );
        assert_eq!(
            h(&headers, "anthropic-ratelimit-requests-reset"),
            "2026-12-02T00:00:00Z"
        );
    }

    #[test]
    fn the_worker_s_chain_reads_every_429_as_a_rate_limit_to_wait_out_with_its_retry_after() {
        use content_granulator::services::ai_provider::wire::{classify_http, ErrorClass};
        let l = limiter(Rule {
            concurrent: Some(1),
            tokens_per_minute: Some(6000),
            ..Rule::default()
        });
        let t0 = Instant::now();
        let held = admit(&l, "k", "p", 5000, t0).unwrap();
        held.expect_end(t0 + secs(3.2));
        let busy = admit(&l, "k", "p", 10, t0).err().unwrap();
        drop(held);
        let short = admit(&l, "k", "p", 2000, t0).err().unwrap();
        for (r, wait_ms) in [(busy, 4000), (short, 10_000)] {
            for anthropic in [false, true] {
                let (body, headers) = refusal_answer(anthropic, "m", &r, UNIX_EPOCH);
                let retry_after = headers
                    .iter()
                    .find(|(n, _)| n == "retry-after")
                    .map(|(_, v)| v.as_str());
                assert_eq!(
                    classify_http(429, &body.to_string(), retry_after),
                    ErrorClass::Retryable {
                        retry_after_ms: Some(wait_ms)
                    },
                    "{body}"
                );
            }
        }
    }

    #[test]
    fn durations_and_times_are_written_as_the_providers_write_them() {
        assert_eq!(go_duration(secs(0.012)), "12ms");
        assert_eq!(go_duration(secs(1.5)), "1.5s");
        assert_eq!(go_duration(secs(2.0)), "2s");
        assert_eq!(go_duration(secs(360.0)), "6m0s");
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_secs(951_782_400 + 3_723)),
            "2000-02-29T01:02:03Z"
        );
        assert_eq!(retry_after_seconds(Duration::ZERO), 1);
        assert_eq!(retry_after_seconds(secs(2.01)), 3);
    }
}
