//! A mock AI provider on loopback for the test suite and benchmarks.
//!
//! It speaks OpenAI chat completions (`POST /v1/chat/completions`) and
//! Anthropic Messages (`POST /v1/messages`), answering with outlines built by
//! the granulator's own offline generator in the shape the prompt's
//! `Target shape:` line asks for, and with reviews for review schemas.
//!
//! Tests script misbehaviour per key: `POST /__mock/script {"key", "steps"}`
//! queues steps for requests whose prompt contains `key` (tests put a unique
//! marker in the topic, so parallel tests never share a script);
//! `DELETE /__mock/script` drops every step not yet used. Steps:
//! `valid` (optionally `counts`, `usage`, `billMax`: bill every allowed token), `fenced`, `prose`, `invalid`,
//! `wrong_shape`, `truncate`, `status` (`code`, `retryAfter`, `body`),
//! `hang` (`ms`), `refuse` (`text`), `review` (`scores`), `delay` (`ms`), `raw` (`text`
//! served verbatim as the answer, `truncated`), `flood` (`bytes`, `plain`: an
//! answer far larger than any call allows).
//! `GET /__mock/calls?key=` lists what a key's requests looked like;
//! `POST /__mock/config` sets a global delay and random fault rates (bench,
//! soak); `GET /__mock/totals` reports tokens served.
//!
//! A fanned-out outline's calls are answered in kind (`fanout.rs`): a
//! skeleton request gets root fields and level-1 titles, a branch request
//! its node with the subtree its `Branch shape:` asks for. A script key may
//! hold several parts joined by ` && `, all of which the prompt must contain
//! (`"<topic> && Branch: 2 of"` scripts one branch of one test's job).
//! A Content Generator batch (schema `content_batch`: `elements[]` of
//! `{path: enum, content}`) is answered in kind (`content.rs`): for every
//! path of the enum, in order, a text of exactly the words its prompt line
//! (`- <path> | <target> words | <type>: <title>`) asks for, made from the
//! title and the topic; a `valid` step's `wordsFactor` (e.g. 0.3) writes
//! that share of each target instead (short content for the quality check).
//! Every other step works on batches as on outlines (the key matches the prompt).
//! `measured` (a `valid` step) or `measureUsage` (config) bills what was
//! really sent and written, at 4 characters a token, instead of fixed usage
//! (benchmarks of token counts; streaming time then follows the answer's size).
//!
//! A request with `"stream": true` is answered as a stream in its provider's
//! wire format (OpenAI chunks with a usage chunk and `[DONE]`; Anthropic
//! `message_start` … `message_stop`), paced at `tokensPerSecond` after
//! `ttftMs` (global config, `--tokens-per-second`/`--ttft-ms`, or per `valid`
//! step; 0 = instant). Streaming-only steps: `stall` (`ms`: half the answer,
//! then silence) and `cut` (half the answer, then the connection ends).
//!
//! Rate limits per API key (`limits.rs`): `POST /__mock/limits` adds a
//! concurrent-request and/or tokens-per-minute limit (for one key or every
//! key, optionally only for prompts holding a marker); a request over it is
//! answered 429 in its provider's format with `Retry-After` and the
//! provider's rate-limit headers. `GET` shows each rule's buckets (peak in
//! flight, admitted, refused), `DELETE` drops every rule.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use content_granulator::services::offline::generate_with_counts;
use content_granulator::types::structure::StructureType;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

mod cache;
mod content;
mod fanout;
mod limits;

#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq)]
struct Usage {
    input: u64,
    output: u64,
    /// Part of `input` read from the prompt cache.
    #[serde(default)]
    cached: u64,
    /// Part of `input` written to the prompt cache (Anthropic).
    #[serde(default, rename = "cacheWrite")]
    cache_write: u64,
}

const DEFAULT_USAGE: Usage = Usage {
    input: 1000,
    output: 500,
    cached: 0,
    cache_write: 0,
};

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Step {
    Valid {
        #[serde(default)]
        counts: Option<Vec<u32>>,
        #[serde(default)]
        usage: Option<Usage>,
        /// Characters appended to every description-like field (storage-tier tests).
        #[serde(default)]
        pad: Option<usize>,
        /// Bill the worst case the request allows: every `max_tokens` of
        /// output, and a prompt token per 3 bytes of prompt (budget tests).
        #[serde(default, rename = "billMax")]
        bill_max: bool,
        /// Streaming pace for this answer (else the global one).
        #[serde(default, rename = "tokensPerSecond")]
        tokens_per_second: Option<f64>,
        #[serde(default, rename = "ttftMs")]
        ttft_ms: Option<u64>,
        /// Bill the prompt and answer actually sent, at 4 characters a token.
        #[serde(default)]
        measured: bool,
        /// Send the response's headers with the first token, after `ttftMs`
        /// (else the global setting; else at once).
        #[serde(default, rename = "headersAtFirstToken")]
        headers_at_first_token: Option<bool>,
        /// Model the provider's prompt cache for this answer (`cache.rs`).
        #[serde(default, rename = "promptCaching")]
        prompt_caching: bool,
        /// A content batch's texts at this share of their targets' words
        /// (`content.rs`; e.g. 0.3: short content for the quality check).
        #[serde(default, rename = "wordsFactor")]
        words_factor: Option<f64>,
    },
    /// Streams half the answer, then sends nothing for `ms`.
    Stall {
        ms: u64,
    },
    /// Streams half the answer, then ends the stream without its end events.
    Cut,
    Fenced,
    Prose,
    /// Not JSON; `usage` bills it as if the model wrote that much (budget tests).
    Invalid {
        #[serde(default)]
        usage: Option<Usage>,
    },
    WrongShape,
    Truncate,
    Status {
        code: u16,
        #[serde(default, rename = "retryAfter")]
        retry_after: Option<String>,
        #[serde(default)]
        body: Option<String>,
    },
    Hang {
        ms: u64,
    },
    /// A 200 of `bytes` bytes of answer: one JSON body (`plain`), or an
    /// endless-looking stream of content deltas (the worker must stop
    /// reading at its cap; `GET /__mock/totals` reports `floodBytesSent`).
    Flood {
        bytes: usize,
        #[serde(default)]
        plain: bool,
    },
    /// A 200 whose answer is a refusal (`text`: the model's words).
    Refuse {
        #[serde(default)]
        text: Option<String>,
    },
    Review {
        scores: Vec<u32>,
    },
    Delay {
        ms: u64,
    },
    /// `text` served verbatim as the model's answer (the corpus of messy
    /// answers); `truncated` reports it as stopped at the token limit.
    Raw {
        text: String,
        #[serde(default)]
        truncated: bool,
        /// Streaming pace for this answer (else the global one).
        #[serde(default, rename = "tokensPerSecond")]
        tokens_per_second: Option<f64>,
        #[serde(default, rename = "ttftMs")]
        ttft_ms: Option<u64>,
    },
}

/// Switches a test or benchmark sets as JSON (`POST /__mock/config`): one
/// flag per provider behaviour, not a state machine.
#[allow(clippy::struct_excessive_bools)]
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
struct GlobalConfig {
    #[serde(default)]
    delay_ms: u64,
    /// Share of unscripted requests answered with a 500.
    #[serde(default)]
    error_rate: f64,
    /// Share of unscripted requests that hang for `hang_ms`.
    #[serde(default)]
    timeout_rate: f64,
    #[serde(default)]
    hang_ms: u64,
    /// Outline shape for unscripted outline requests (benchmarks of size).
    #[serde(default)]
    counts: Option<Vec<u32>>,
    /// Streaming pace (0 = as fast as possible) and time to first token.
    #[serde(default)]
    tokens_per_second: f64,
    #[serde(default)]
    ttft_ms: u64,
    /// Usage reported for unscripted answers (default 1000 in / 500 out).
    #[serde(default)]
    usage: Option<Usage>,
    /// Bill unscripted answers by what was sent and written (4 characters a token).
    #[serde(default)]
    measure_usage: bool,
    /// Write outlines as long as the catalog's per-level token estimates (what
    /// a model writes), not the offline generator's terse text (benchmarks).
    #[serde(default)]
    catalog_length: bool,
    /// Model the providers' prompt caches for unscripted answers (`cache.rs`):
    /// off by default, so fixed usage stays exactly what a test scripted.
    #[serde(default)]
    prompt_caching: bool,
    /// Hold a stream's headers until its first token (`ttft_ms`), as a
    /// provider that answers once the model starts writing: the worker's
    /// connection then waits for headers that long (its six slots, `ai::gate`).
    #[serde(default)]
    headers_at_first_token: bool,
}

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
struct Totals {
    /// Bytes of `flood` answers the client read (what the socket took).
    flood_bytes_sent: u64,
    requests: u64,
    answered: u64,
    tokens_input: u64,
    tokens_output: u64,
    injected_errors: u64,
    injected_timeouts: u64,
    /// Requests answered 429 by a rate limit (`/__mock/limits`).
    rate_limited: u64,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct CallRecord {
    key: Option<String>,
    provider: &'static str,
    model: String,
    kind: String,
    step: String,
    status: u16,
    user: String,
    max_tokens: Option<u64>,
    usage: Option<Usage>,
    /// `skeleton` or `branch 3/8` for a fanned-out outline's calls.
    part: Option<String>,
    /// `cache_control` breakpoints the request carried (Anthropic).
    cache_breakpoints: usize,
    /// The request's `prompt_cache_key` (OpenAI).
    prompt_cache_key: Option<String>,
    /// When the request arrived and when its answer was all sent (a stream's
    /// last event, or the client gone), as positions on one counter of the
    /// mock's events: which calls overlapped, without timing anything.
    start_seq: u64,
    end_seq: Option<u64>,
    /// When the answer's headers were sent, on the same counter: a call
    /// waits for its headers from `startSeq` to here.
    headers_seq: Option<u64>,
    /// The same in ms since the mock started: a benchmark's timeline of
    /// calls (`startMs`, `endMs`), never a test's assertion.
    start_ms: u64,
    end_ms: Option<u64>,
}

#[derive(Default)]
struct Mock {
    scripts: Mutex<HashMap<String, VecDeque<Step>>>,
    calls: Mutex<Vec<CallRecord>>,
    config: Mutex<GlobalConfig>,
    totals: Mutex<Totals>,
    seed: Mutex<u64>,
    cache: Mutex<cache::PromptCache>,
    limits: Arc<Mutex<limits::Limiter>>,
    events: std::sync::atomic::AtomicU64,
    /// When the mock started (`None` until the first call reads it).
    started: std::sync::OnceLock<std::time::Instant>,
}

type Shared = Arc<Mock>;

impl Mock {
    /// The next position on the counter of calls' starts and ends.
    fn event(&self) -> u64 {
        self.events
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
    }

    /// Milliseconds since the mock's clock started.
    fn ms(&self) -> u64 {
        let start = self.started.get_or_init(std::time::Instant::now);
        start.elapsed().as_millis() as u64
    }

    /// Call `index`'s headers are sent.
    fn headers_sent(&self, index: usize) {
        let seq = self.event();
        if let Some(c) = self.calls.lock().unwrap().get_mut(index) {
            c.headers_seq = Some(seq);
        }
    }

    /// Call `index`'s answer was all sent.
    fn ended(&self, index: usize) {
        let seq = self.event();
        let ms = self.ms();
        if let Some(c) = self.calls.lock().unwrap().get_mut(index) {
            c.end_seq = Some(seq);
            c.end_ms = Some(ms);
        }
    }

    /// xorshift: deterministic per run, no extra dependency.
    fn random(&self) -> f64 {
        let mut s = self.seed.lock().unwrap();
        if *s == 0 {
            *s = 0x2545_F491_4F6C_DD1D;
        }
        *s ^= *s << 13;
        *s ^= *s >> 7;
        *s ^= *s << 17;
        (*s >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Provider {
    OpenAi,
    Anthropic,
}

/// What the request asks for.
enum Want {
    Outline(StructureType),
    /// One level-1 node of a fanned-out outline, with its subtree.
    Branch(StructureType),
    /// The root fields but the title of a fanned-out outline.
    Root(StructureType),
    /// Some level-2 children of a branch written in parts.
    Children(StructureType),
    Review(Vec<String>),
    /// A Content Generator batch: the paths its schema's enum lists (`content.rs`).
    Content(Vec<String>),
    /// A summary of the prompt's text (`{"summary"}`: the scaffolded
    /// worker's example action, `crates/bitware-kit/template`).
    Summary,
    Unknown,
}

fn want_of(schema: &Value) -> Want {
    let props = &schema["properties"];
    if let Some(paths) = content::batch_paths(schema) {
        return Want::Content(paths);
    }
    if props.get("criteria").is_some() {
        let names = props["criteria"]["items"]["properties"]["criterion"]["enum"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        return Want::Review(names);
    }
    if props.get("summary").is_some() && props.as_object().is_some_and(|p| p.len() == 1) {
        return Want::Summary;
    }
    StructureType::ALL
        .into_iter()
        .find(|t| props.get(t.spec().levels[0].key).is_some())
        .map(Want::Outline)
        .or_else(|| fanout::branch_type(schema).map(Want::Branch))
        .or_else(|| fanout::root_type(schema).map(Want::Root))
        .or_else(|| fanout::children_type(schema).map(Want::Children))
        .unwrap_or(Want::Unknown)
}

/// A script key matches when the text holds it, or each of its ` && ` parts.
fn key_matches(text: &str, key: &str) -> bool {
    key.split(" && ").all(|part| text.contains(part))
}

fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            // Adjacent text blocks are one text (a prompt split at its cache breakpoint).
            .map(|p| p["text"].as_str().unwrap_or(""))
            .collect::<String>(),
        _ => String::new(),
    }
}

fn between<'a>(text: &'a str, open: &str, close: &str) -> Option<&'a str> {
    let start = text.find(open)? + open.len();
    let end = text[start..].find(close)? + start;
    Some(&text[start..end])
}

/// Parse the `Target shape:` line back into counts (the line `helpers::prompts::level_targets`
/// writes into every job's prompt).
fn parse_target_shape(prompt: &str) -> Option<Vec<(String, u32)>> {
    let line = prompt
        .lines()
        .find_map(|l| l.trim().strip_prefix("Target shape: "))?;
    line.trim_end_matches('.')
        .split(", ")
        .map(|pair| {
            let (k, v) = pair.split_once('=')?;
            Some((k.to_string(), v.parse().ok()?))
        })
        .collect()
}

fn outline(t: StructureType, user: &str, counts: Option<Vec<u32>>) -> Value {
    let counts = counts.unwrap_or_else(|| {
        parse_target_shape(user)
            .map(|pairs| pairs.into_iter().map(|(_, n)| n).collect())
            .unwrap_or_else(|| t.spec().levels.iter().map(|l| l.min).collect())
    });
    let topic = between(user, "<topic>", "</topic>").unwrap_or("Mock topic");
    generate_with_counts(t, &counts, topic).to_value()
}

fn pad_descriptions(v: &mut Value, n: usize) {
    const FIELDS: [&str; 6] = [
        "description",
        "contentOutline",
        "summary",
        "definition",
        "objective",
        "explanation",
    ];
    match v {
        Value::Object(map) => {
            for (k, child) in map.iter_mut() {
                match child {
                    Value::String(s) if FIELDS.contains(&k.as_str()) => {
                        s.push_str(&" lorem ipsum".repeat(n / 12 + 1))
                    }
                    other => pad_descriptions(other, n),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|i| pad_descriptions(i, n)),
        _ => {}
    }
}

fn review(names: &[String], scores: &[u32]) -> Value {
    let criteria: Vec<Value> = names
        .iter()
        .enumerate()
        .map(|(i, n)| json!({"criterion": n, "score": scores.get(i).or(scores.last()).copied().unwrap_or(90), "reason": "mock review"}))
        .collect();
    let low = scores.iter().any(|s| *s < 70);
    json!({"criteria": criteria, "issues": if low { vec!["mock: the ordering of items is weak"] } else { vec![] }, "feedback": if low { "mock: reorder the items" } else { "mock: fine" }})
}

fn openai_body(
    model: &str,
    content: Option<String>,
    refusal: Option<&str>,
    finish: &str,
    usage: Usage,
) -> Value {
    json!({
        "id": "chatcmpl-mock", "object": "chat.completion", "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content, "refusal": refusal}, "finish_reason": finish}],
        "usage": {"prompt_tokens": usage.input, "completion_tokens": usage.output, "total_tokens": usage.input + usage.output,
                  "prompt_tokens_details": {"cached_tokens": usage.cached}},
    })
}

fn anthropic_body(
    model: &str,
    text: Option<String>,
    tool_input: Option<Value>,
    stop: &str,
    usage: Usage,
) -> Value {
    let mut content = Vec::new();
    if let Some(t) = text {
        content.push(json!({"type": "text", "text": t}));
    }
    if let Some(input) = tool_input {
        content.push(
            json!({"type": "tool_use", "id": "toolu_mock", "name": "emit_result", "input": input}),
        );
    }
    json!({
        "id": "msg_mock", "type": "message", "role": "assistant", "model": model, "content": content, "stop_reason": stop,
        // Anthropic's input_tokens leave out what was read from and written to the cache.
        "usage": {"input_tokens": usage.input - usage.cached.min(usage.input) - usage.cache_write.min(usage.input - usage.cached.min(usage.input)),
                  "output_tokens": usage.output, "cache_read_input_tokens": usage.cached, "cache_creation_input_tokens": usage.cache_write},
    })
}

/// `api_key`: the credential the request carried (rate limits are per key).
async fn complete(state: Shared, provider: Provider, body: Value, api_key: &str) -> Response {
    let model = body["model"].as_str().unwrap_or("mock").to_string();
    let (system, user, schema, uses_tool) = match provider {
        Provider::OpenAi => {
            let messages = body["messages"].as_array().cloned().unwrap_or_default();
            let system = messages
                .iter()
                .filter(|m| m["role"] == "system")
                .map(|m| text_of(&m["content"]))
                .collect::<Vec<_>>()
                .join("\n");
            let user = messages
                .iter()
                .filter(|m| m["role"] == "user")
                .map(|m| text_of(&m["content"]))
                .collect::<Vec<_>>()
                .join("\n");
            (
                system,
                user,
                body["response_format"]["json_schema"]["schema"].clone(),
                false,
            )
        }
        Provider::Anthropic => {
            let user = body["messages"]
                .as_array()
                .map(|m| {
                    m.iter()
                        .map(|m| text_of(&m["content"]))
                        .collect::<Vec<_>>()
                        .join("\n")
                })
                .unwrap_or_default();
            let tool = body["tools"].get(0).map(|t| t["input_schema"].clone());
            let schema = tool
                .clone()
                .unwrap_or_else(|| body["output_config"]["format"]["schema"].clone());
            (text_of(&body["system"]), user, schema, tool.is_some())
        }
    };
    let all_text = format!("{system}\n{user}");
    let want = want_of(&schema);
    let branch = fanout::branch_of(&user);
    let branch_part = fanout::branch_part(&user);
    let part_label = |i: &u32, n: &u32| {
        let label = format!("branch {}/{n}", i + 1);
        match user
            .lines()
            .find_map(|l| l.trim().strip_prefix("Branch part: "))
        {
            Some(p) => format!(
                "{label} part {}",
                p.split(':').next().unwrap_or("").replace(" of ", "/")
            ),
            None => label,
        }
    };
    let part = match (&want, &branch) {
        (Want::Outline(_), _) if fanout::is_skeleton(&user) => Some("skeleton".to_string()),
        (Want::Branch(_) | Want::Children(_), Some((i, n, _))) => Some(part_label(i, n)),
        (Want::Root(_), _) if fanout::is_root(&user) => Some("root".to_string()),
        _ => None,
    };
    // Rate limits first: a request refused by one is not a model call, and
    // takes no scripted step.
    let estimate = ((system.len() + user.len() + schema.to_string().len()) as u64).div_ceil(4)
        + body["max_completion_tokens"]
            .as_u64()
            .or(body["max_tokens"].as_u64())
            .unwrap_or(DEFAULT_USAGE.output);
    let mut admission = match limits::admit(
        &state.limits,
        api_key,
        &all_text,
        estimate,
        std::time::Instant::now(),
    ) {
        Ok(admission) => admission,
        Err(refusal) => {
            return rate_limited(&state, provider, &model, &refusal, part, &user, &body);
        }
    };
    let key = {
        let scripts = state.scripts.lock().unwrap();
        scripts
            .keys()
            .filter(|k| key_matches(&all_text, k))
            .max_by_key(|k| k.len())
            .cloned()
    };
    let scripted = key.as_ref().and_then(|k| {
        state
            .scripts
            .lock()
            .unwrap()
            .get_mut(k)
            .and_then(VecDeque::pop_front)
    });
    let config = state.config.lock().unwrap().clone();
    state.totals.lock().unwrap().requests += 1;
    let step = match scripted {
        Some(step) => step,
        None => {
            let roll = state.random();
            if roll < config.error_rate {
                Step::Status {
                    code: 500,
                    retry_after: None,
                    body: None,
                }
            } else if roll < config.error_rate + config.timeout_rate {
                Step::Hang { ms: config.hang_ms }
            } else {
                Step::Valid {
                    counts: config.counts.clone(),
                    usage: config.usage,
                    pad: None,
                    bill_max: false,
                    tokens_per_second: None,
                    ttft_ms: None,
                    measured: config.measure_usage,
                    prompt_caching: config.prompt_caching,
                    words_factor: None,
                    headers_at_first_token: None,
                }
            }
        }
    };
    if config.delay_ms > 0 {
        tokio::time::sleep(Duration::from_millis(config.delay_ms)).await;
    }
    if let Step::Flood { bytes, plain } = step {
        state.calls.lock().unwrap().push(CallRecord {
            key,
            provider: if provider == Provider::OpenAi {
                "openai"
            } else {
                "anthropic"
            },
            model: model.clone(),
            kind: "flood".into(),
            step: "flood".into(),
            status: 200,
            user: user.chars().take(200).collect(),
            max_tokens: body["max_completion_tokens"]
                .as_u64()
                .or(body["max_tokens"].as_u64()),
            usage: None,
            part: None,
            cache_breakpoints: 0,
            prompt_cache_key: None,
            start_seq: state.event(),
            end_seq: None,
            headers_seq: None,
            start_ms: state.ms(),
            end_ms: None,
        });
        return flood(state, provider, bytes, plain);
    }
    let step_name = serde_json::to_value(&step)
        .ok()
        .and_then(|v| v["kind"].as_str().map(str::to_string))
        .unwrap_or_default();
    let stream = body["stream"] == true;
    let hold_headers = match &step {
        Step::Valid {
            headers_at_first_token: Some(hold),
            ..
        } => *hold,
        _ => config.headers_at_first_token,
    };
    let mut pace = match &step {
        Step::Valid {
            tokens_per_second,
            ttft_ms,
            ..
        }
        | Step::Raw {
            tokens_per_second,
            ttft_ms,
            ..
        } => (
            tokens_per_second.unwrap_or(config.tokens_per_second),
            ttft_ms.unwrap_or(config.ttft_ms),
        ),
        _ => (config.tokens_per_second, config.ttft_ms),
    };
    let mut stream_end = StreamEnd::Complete;
    let topic = between(&user, "<topic>", "</topic>").unwrap_or("Mock topic");
    let words_factor = match &step {
        Step::Valid {
            words_factor: Some(f),
            ..
        } => *f,
        _ => 1.0,
    };
    let answer = |counts: Option<Vec<u32>>, scores: &[u32]| match &want {
        Want::Outline(t) if fanout::is_skeleton(&user) => {
            let n = counts
                .as_ref()
                .and_then(|c| c.first().copied())
                .or_else(|| parse_target_shape(&user).and_then(|p| p.first().map(|x| x.1)))
                .unwrap_or(t.spec().levels[0].min);
            fanout::skeleton(*t, n, fanout::skeleton_children(&schema), topic)
        }
        Want::Outline(t) => {
            let mut v = outline(*t, &user, counts);
            if config.catalog_length {
                fanout::pad_to_estimate(*t, &mut v, fanout::Part::Outline);
            }
            v
        }
        // `counts` of a step, for a branch: the shape below its node.
        Want::Branch(t) => match (&branch, counts.or_else(|| fanout::branch_shape(&user))) {
            (Some((i, n, title)), Some(shape)) => {
                let mut v = fanout::branch(*t, *i, *n, title, &shape, branch_part, topic);
                if config.catalog_length {
                    fanout::pad_to_estimate(*t, &mut v, fanout::Part::Branch);
                }
                v
            }
            _ => json!({"mock": "a branch request without its Branch lines"}),
        },
        Want::Children(t) => match (&branch, fanout::branch_shape(&user)) {
            (Some((i, n, title)), Some(shape)) => {
                let key = t.spec().levels[1].key;
                let node = fanout::branch(*t, *i, *n, title, &shape, branch_part, topic);
                let mut v = json!({key: node[key]});
                if config.catalog_length {
                    fanout::pad_to_estimate(*t, &mut v, fanout::Part::Children);
                }
                v
            }
            _ => json!({"mock": "a part request without its Branch lines"}),
        },
        Want::Root(t) => {
            let mut v = fanout::root(*t, topic);
            if config.catalog_length {
                fanout::pad_to_estimate(*t, &mut v, fanout::Part::Root);
            }
            v
        }
        Want::Review(names) => review(names, scores),
        Want::Content(paths) => content::batch(paths, &user, words_factor),
        Want::Summary => json!({"summary": format!(
            "Summary: {}",
            user.split_whitespace().take(60).collect::<Vec<_>>().join(" ")
        )}),
        Want::Unknown => json!({"mock": "unknown schema"}),
    };
    let mut usage: Option<Usage>;
    let (status, reply, headers): (u16, Value, Vec<(&str, String)>) = match step {
        Step::Status {
            code,
            retry_after,
            body,
        } => {
            usage = None;
            admission.settle(0);
            state.totals.lock().unwrap().injected_errors += 1;
            let error = body.map(Value::String).unwrap_or_else(|| json!({"error": {"message": format!("mock injected {code}"), "type": "mock_error"}}));
            (
                code,
                error,
                retry_after
                    .map(|r| vec![("retry-after", r)])
                    .unwrap_or_default(),
            )
        }
        Step::Hang { ms } => {
            state.totals.lock().unwrap().injected_timeouts += 1;
            tokio::time::sleep(Duration::from_millis(ms)).await;
            usage = None;
            admission.settle(0);
            (504, json!({"error": {"message": "mock hung"}}), vec![])
        }
        other => {
            let max_tokens = body["max_completion_tokens"]
                .as_u64()
                .or(body["max_tokens"].as_u64());
            let mut u = match &other {
                Step::Valid { bill_max: true, .. } => Usage {
                    input: ((system.len() + user.len() + schema.to_string().len()) as u64)
                        .div_ceil(3),
                    output: max_tokens.unwrap_or(DEFAULT_USAGE.output),
                    ..Usage::default()
                },
                Step::Valid { usage: Some(u), .. } | Step::Invalid { usage: Some(u) } => *u,
                _ => DEFAULT_USAGE,
            };
            usage = Some(u);
            let other_measured = matches!(other, Step::Valid { measured: true, .. });
            let other_caching = matches!(
                other,
                Step::Valid {
                    prompt_caching: true,
                    bill_max: false,
                    ..
                }
            );
            if let Step::Delay { ms } = other {
                tokio::time::sleep(Duration::from_millis(ms)).await;
            }
            let value = match &other {
                Step::Valid { counts, pad, .. } => {
                    let mut v = answer(counts.clone(), &[]);
                    if let Some(n) = pad {
                        pad_descriptions(&mut v, *n);
                    }
                    v
                }
                Step::Review { scores } => answer(None, scores),
                _ => answer(None, &[]),
            };
            let pretty = serde_json::to_string_pretty(&value).unwrap_or_default();
            let (text, finish, refusal): (Option<String>, &str, Option<&str>) = match other {
                Step::Fenced => (
                    Some(format!("Here is the outline:\n```json\n{pretty}\n```\n")),
                    "stop",
                    None,
                ),
                Step::Prose => (
                    Some(format!("Sure! {value} I hope this helps.")),
                    "stop",
                    None,
                ),
                Step::Invalid { .. } => (
                    Some("I think the outline should start with basics { not json".into()),
                    "stop",
                    None,
                ),
                Step::WrongShape => (
                    Some(json!({"unexpected": "shape"}).to_string()),
                    "stop",
                    None,
                ),
                Step::Truncate => {
                    // Half, cut on a character boundary (content may hold any text).
                    let mut half = pretty.len() / 2;
                    while !pretty.is_char_boundary(half) {
                        half -= 1;
                    }
                    (Some(pretty[..half].to_string()), "length", None)
                }
                Step::Stall { ms } => {
                    stream_end = StreamEnd::Stall(ms);
                    (Some(value.to_string()), "stop", None)
                }
                Step::Cut => {
                    stream_end = StreamEnd::Cut;
                    (Some(value.to_string()), "stop", None)
                }
                Step::Refuse { ref text } => (
                    None,
                    "stop",
                    Some(text.as_deref().unwrap_or("I can't help with that.")),
                ),
                Step::Raw {
                    text, truncated, ..
                } => (Some(text), if truncated { "length" } else { "stop" }, None),
                _ => (Some(value.to_string()), "stop", None),
            };
            if other_measured {
                u = Usage {
                    input: ((system.len() + user.len() + schema.to_string().len()) as u64)
                        .div_ceil(4),
                    output: (text.as_deref().map_or(0, str::len) as u64).div_ceil(4),
                    ..Usage::default()
                };
                usage = Some(u);
            }
            if other_caching {
                let ttft = Duration::from_millis(pace.1);
                let now = std::time::Instant::now();
                let hit = match provider {
                    Provider::OpenAi => state.cache.lock().unwrap().openai(
                        &model,
                        body["prompt_cache_key"].as_str(),
                        &format!("{schema}{system}{user}"),
                        now,
                        ttft,
                    ),
                    Provider::Anthropic => state.cache.lock().unwrap().anthropic(
                        &model,
                        &cache::anthropic_prefixes(&schema, &body),
                        now,
                        ttft,
                    ),
                };
                u.cached = hit.read.min(u.input);
                u.cache_write = hit.written.min(u.input - u.cached);
                usage = Some(u);
            }
            // The rate limit's estimate becomes what this answer bills.
            admission.settle(u.input + u.output);
            let body = match provider {
                Provider::OpenAi => openai_body(&model, text, refusal, finish, u),
                Provider::Anthropic => {
                    let stop = if refusal.is_some() {
                        "refusal"
                    } else if finish == "length" {
                        "max_tokens"
                    } else {
                        "end_turn"
                    };
                    // A forced tool call carries the object itself; malformed steps stay text.
                    let structured = matches!(
                        text.as_deref().map(serde_json::from_str::<Value>),
                        Some(Ok(_))
                    );
                    if uses_tool && structured && stop == "end_turn" {
                        anthropic_body(
                            &model,
                            None,
                            text.and_then(|t| serde_json::from_str(&t).ok()),
                            "tool_use",
                            u,
                        )
                    } else {
                        anthropic_body(&model, text, None, stop, u)
                    }
                }
            };
            if !stream {
                let mut totals = state.totals.lock().unwrap();
                totals.answered += 1;
                totals.tokens_input += u.input;
                totals.tokens_output += u.output;
            }
            (200, body, vec![])
        }
    };
    let start_seq = state.event();
    let record = CallRecord {
        key,
        provider: if provider == Provider::OpenAi {
            "openai"
        } else {
            "anthropic"
        },
        model,
        kind: match want {
            Want::Outline(t) | Want::Branch(t) | Want::Root(t) | Want::Children(t) => {
                t.as_str().to_string()
            }
            Want::Review(_) => "review".into(),
            Want::Content(_) => "content".into(),
            Want::Summary => "summary".into(),
            Want::Unknown => "unknown".into(),
        },
        step: step_name,
        status,
        user: user.chars().take(20_000).collect(),
        max_tokens: body["max_completion_tokens"]
            .as_u64()
            .or(body["max_tokens"].as_u64()),
        usage,
        part,
        cache_breakpoints: cache::breakpoints(&body),
        prompt_cache_key: body["prompt_cache_key"].as_str().map(str::to_string),
        start_seq,
        end_seq: None,
        headers_seq: None,
        start_ms: state.ms(),
        end_ms: None,
    };
    // Not held across the wait for headers below: the handler stays `Send`.
    let index = {
        let mut calls = state.calls.lock().unwrap();
        calls.push(record);
        calls.len() - 1
    };
    let limit_headers = admission
        .standing
        .map(|s| limits::headers(provider == Provider::Anthropic, &s, SystemTime::now()))
        .unwrap_or_default();
    if stream && status == 200 && hold_headers && pace.1 > 0 {
        tokio::time::sleep(Duration::from_millis(pace.1)).await;
        pace.1 = 0;
    }
    state.headers_sent(index);
    let mut response = if stream && status == 200 {
        stream_response(state, provider, reply, pace, stream_end, admission, index)
    } else {
        state.ended(index);
        (
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            Json(reply),
        )
            .into_response()
    };
    let headers = headers
        .into_iter()
        .map(|(name, value)| (name.to_string(), value))
        .chain(limit_headers);
    insert_headers(&mut response, headers);
    response
}

fn insert_headers(response: &mut Response, headers: impl IntoIterator<Item = (String, String)>) {
    for (name, value) in headers {
        if let (Ok(name), Ok(v)) = (
            axum::http::HeaderName::try_from(name),
            HeaderValue::from_str(&value),
        ) {
            response.headers_mut().insert(name, v);
        }
    }
}

/// A request over a rate limit (`limits.rs`): recorded as a call of its
/// part with status 429, answered in its provider's format.
fn rate_limited(
    state: &Shared,
    provider: Provider,
    model: &str,
    refusal: &limits::Refusal,
    part: Option<String>,
    user: &str,
    body: &Value,
) -> Response {
    {
        let mut totals = state.totals.lock().unwrap();
        totals.requests += 1;
        totals.rate_limited += 1;
    }
    let anthropic = provider == Provider::Anthropic;
    // A refusal starts and ends at once (the timeline shows it as a point).
    let (seq, ms) = (state.event(), state.ms());
    state.calls.lock().unwrap().push(CallRecord {
        key: None,
        provider: if anthropic { "anthropic" } else { "openai" },
        model: model.to_string(),
        kind: "rate_limited".into(),
        step: "rate_limited".into(),
        status: 429,
        user: user.chars().take(20_000).collect(),
        max_tokens: body["max_completion_tokens"]
            .as_u64()
            .or(body["max_tokens"].as_u64()),
        usage: None,
        part,
        cache_breakpoints: cache::breakpoints(body),
        prompt_cache_key: body["prompt_cache_key"].as_str().map(str::to_string),
        start_seq: seq,
        end_seq: Some(seq),
        headers_seq: Some(seq),
        start_ms: ms,
        end_ms: Some(ms),
    });
    let (reply, headers) = limits::refusal_answer(anthropic, model, refusal, SystemTime::now());
    let mut response = (StatusCode::TOO_MANY_REQUESTS, Json(reply)).into_response();
    insert_headers(&mut response, headers);
    response
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum StreamEnd {
    Complete,
    Stall(u64),
    Cut,
}

/// One streamed answer: what the whole reply says, as the events of its wire format.
struct StreamPlan {
    /// Events before the content (role, message_start, content_block_start).
    head: Vec<String>,
    /// The content, in pieces.
    pieces: Vec<String>,
    /// Builds the event for one piece.
    openai: bool,
    tool: bool,
    /// Events after the content (finish, usage, stop).
    tail: Vec<String>,
    usage: Usage,
}

fn data(v: &Value) -> String {
    format!("data: {v}\n\n")
}

fn event(name: &str, v: &Value) -> String {
    format!("event: {name}\ndata: {v}\n\n")
}

fn split_pieces(text: &str, n: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let n = n.clamp(1, chars.len().max(1));
    let size = chars.len().div_ceil(n).max(1);
    chars.chunks(size).map(|c| c.iter().collect()).collect()
}

/// The reply body (as the non-streamed answer would be) turned into events.
fn stream_plan(provider: Provider, reply: &Value, pieces: usize) -> StreamPlan {
    match provider {
        Provider::OpenAi => {
            let model = reply["model"].clone();
            let choice = &reply["choices"][0];
            let content = choice["message"]["content"].as_str().unwrap_or("");
            let refusal = choice["message"]["refusal"].as_str();
            let u = &reply["usage"];
            let usage = Usage {
                input: u["prompt_tokens"].as_u64().unwrap_or(0),
                output: u["completion_tokens"].as_u64().unwrap_or(0),
                cached: u["prompt_tokens_details"]["cached_tokens"]
                    .as_u64()
                    .unwrap_or(0),
                cache_write: 0,
            };
            let mut head = vec![data(
                &json!({"id": "chatcmpl-mock", "object": "chat.completion.chunk", "model": model,
                "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": null}]}),
            )];
            if let Some(r) = refusal {
                head.push(data(&json!({"model": model, "choices": [{"index": 0, "delta": {"refusal": r}, "finish_reason": null}]})));
            }
            let tail = vec![
                data(
                    &json!({"model": model, "choices": [{"index": 0, "delta": {}, "finish_reason": choice["finish_reason"]}]}),
                ),
                data(&json!({"model": model, "choices": [], "usage": reply["usage"]})),
                "data: [DONE]\n\n".to_string(),
            ];
            StreamPlan {
                head,
                pieces: split_pieces(content, pieces),
                openai: true,
                tool: false,
                tail,
                usage,
            }
        }
        Provider::Anthropic => {
            let model = reply["model"].clone();
            let u = &reply["usage"];
            let read = u["cache_read_input_tokens"].as_u64().unwrap_or(0);
            let written = u["cache_creation_input_tokens"].as_u64().unwrap_or(0);
            let usage = Usage {
                input: u["input_tokens"].as_u64().unwrap_or(0) + read + written,
                output: u["output_tokens"].as_u64().unwrap_or(0),
                cached: read,
                cache_write: written,
            };
            let block = &reply["content"][0];
            let tool = block["type"] == "tool_use";
            let content = if tool {
                block["input"].to_string()
            } else {
                block["text"].as_str().unwrap_or("").to_string()
            };
            let start_block = if tool {
                json!({"type": "tool_use", "id": "toolu_mock", "name": "emit_result", "input": {}})
            } else {
                json!({"type": "text", "text": ""})
            };
            let mut start_usage = u.clone();
            start_usage["output_tokens"] = json!(1);
            let head = vec![
                event(
                    "message_start",
                    &json!({"type": "message_start", "message": {"id": "msg_mock", "type": "message", "role": "assistant",
                    "model": model, "content": [], "stop_reason": null, "usage": start_usage}}),
                ),
                event(
                    "content_block_start",
                    &json!({"type": "content_block_start", "index": 0, "content_block": start_block}),
                ),
            ];
            let tail = vec![
                event(
                    "content_block_stop",
                    &json!({"type": "content_block_stop", "index": 0}),
                ),
                event(
                    "message_delta",
                    &json!({"type": "message_delta", "delta": {"stop_reason": reply["stop_reason"]}, "usage": {"output_tokens": usage.output}}),
                ),
                event("message_stop", &json!({"type": "message_stop"})),
            ];
            StreamPlan {
                head,
                pieces: split_pieces(&content, pieces),
                openai: false,
                tool,
                tail,
                usage,
            }
        }
    }
}

fn piece_event(plan: &StreamPlan, piece: &str) -> String {
    if plan.openai {
        data(
            &json!({"choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": null}]}),
        )
    } else if plan.tool {
        event(
            "content_block_delta",
            &json!({"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": piece}}),
        )
    } else {
        event(
            "content_block_delta",
            &json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}}),
        )
    }
}

/// Stream `reply` at `tokens_per_second` after `ttft_ms`; usage counts as
/// served once its event is written.
fn stream_response(
    state: Shared,
    provider: Provider,
    reply: Value,
    pace: (f64, u64),
    end: StreamEnd,
    admission: limits::Admission,
    index: usize,
) -> Response {
    let (tps, ttft_ms) = pace;
    let output = match provider {
        Provider::OpenAi => reply["usage"]["completion_tokens"].as_u64().unwrap_or(0),
        Provider::Anthropic => reply["usage"]["output_tokens"].as_u64().unwrap_or(0),
    };
    let duration = if tps > 0.0 {
        Duration::from_secs_f64(output as f64 / tps)
    } else {
        Duration::ZERO
    };
    // About 20 events a second when paced, 16 pieces when instant.
    let pieces = if tps > 0.0 {
        ((duration.as_secs_f64() * 20.0).ceil() as usize).max(1)
    } else {
        16
    };
    let plan = stream_plan(provider, &reply, pieces);
    let interval = duration / plan.pieces.len().max(1) as u32;
    let (tx, rx) = tokio::sync::mpsc::channel::<String>(64);
    // Its rate-limit slot is held until the stream ends or the client drops it.
    admission.expect_end(std::time::Instant::now() + Duration::from_millis(ttft_ms) + duration);
    tokio::spawn(async move {
        // The admission holds its concurrency slot until the stream ends.
        let _admission = admission;
        let sent = async {
            if ttft_ms > 0 {
                tokio::time::sleep(Duration::from_millis(ttft_ms)).await;
            }
            for e in &plan.head {
                if tx.send(e.clone()).await.is_err() {
                    return false;
                }
            }
            let half = plan.pieces.len() / 2;
            for (i, piece) in plan.pieces.iter().enumerate() {
                if i == half && end != StreamEnd::Complete {
                    match end {
                        StreamEnd::Stall(ms) => tokio::time::sleep(Duration::from_millis(ms)).await,
                        _ => return false,
                    }
                }
                if tx.send(piece_event(&plan, piece)).await.is_err() {
                    return false;
                }
                if !interval.is_zero() {
                    tokio::time::sleep(interval).await;
                }
            }
            for e in &plan.tail {
                if tx.send(e.clone()).await.is_err() {
                    return false;
                }
            }
            true
        }
        .await;
        state.ended(index);
        if sent {
            let mut totals = state.totals.lock().unwrap();
            totals.answered += 1;
            totals.tokens_input += plan.usage.input;
            totals.tokens_output += plan.usage.output;
        }
    });
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|e| (Ok::<_, std::convert::Infallible>(e), rx))
    });
    let mut response = axum::body::Body::from_stream(body).into_response();
    response.headers_mut().insert(
        "content-type",
        HeaderValue::from_static("text/event-stream"),
    );
    response
}

/// `bytes` bytes of answer in 64 KiB pieces, counted as the client takes them.
fn flood(state: Shared, provider: Provider, bytes: usize, plain: bool) -> Response {
    const PIECE: usize = 64 * 1024;
    let filler = "x".repeat(PIECE);
    let delta = match provider {
        Provider::OpenAi => data(&json!({"choices": [{"index": 0, "delta": {"content": filler}}]})),
        Provider::Anthropic => event(
            "content_block_delta",
            &json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": filler}}),
        ),
    };
    let (head, piece, content_type) = if plain {
        let head = match provider {
            Provider::OpenAi => r#"{"choices": [{"message": {"content": ""#,
            Provider::Anthropic => r#"{"content": [{"type": "text", "text": ""#,
        };
        (head.to_string(), filler, "application/json")
    } else {
        (String::new(), delta, "text/event-stream")
    };
    let count = bytes.div_ceil(piece.len()).max(1);
    let chunks = std::iter::once(head).chain(std::iter::repeat_n(piece, count));
    let body = futures_util::stream::iter(chunks).then(move |chunk| {
        let state = state.clone();
        async move {
            state.totals.lock().unwrap().flood_bytes_sent += chunk.len() as u64;
            Ok::<_, std::convert::Infallible>(chunk)
        }
    });
    let mut response = axum::body::Body::from_stream(body).into_response();
    response
        .headers_mut()
        .insert("content-type", HeaderValue::from_static(content_type));
    response
}

fn authorised(headers: &HeaderMap, provider: Provider) -> bool {
    match provider {
        Provider::OpenAi => headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("Bearer ") && v.len() > 7),
        Provider::Anthropic => {
            headers.contains_key("x-api-key") && headers.contains_key("anthropic-version")
        }
    }
}

async fn openai(
    State(state): State<Shared>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if !authorised(&headers, Provider::OpenAi) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": {"message": "missing bearer key"}})),
        )
            .into_response();
    }
    let key = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    complete(state, Provider::OpenAi, body, key).await
}

async fn anthropic(
    State(state): State<Shared>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if !authorised(&headers, Provider::Anthropic) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": {"message": "missing x-api-key or anthropic-version"}})),
        )
            .into_response();
    }
    let key = headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    complete(state, Provider::Anthropic, body, key).await
}

/// A keyless OpenAI-compatible server (Ollama, vLLM, llama.cpp): it refuses
/// a request that carries an Authorization header, so a test proves the
/// worker sends none when it has no key.
async fn keyless_openai(
    State(state): State<Shared>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if headers.contains_key("authorization") {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": {"message": "this keyless server got an Authorization header"}})),
        )
            .into_response();
    }
    complete(state, Provider::OpenAi, body, "").await
}

#[derive(Deserialize)]
struct Script {
    key: String,
    steps: Vec<Step>,
}

async fn script(State(state): State<Shared>, Json(s): Json<Script>) -> Json<Value> {
    let n = s.steps.len();
    state
        .scripts
        .lock()
        .unwrap()
        .entry(s.key.clone())
        .or_default()
        .extend(s.steps);
    Json(json!({"key": s.key, "queued": n}))
}

#[derive(Deserialize)]
struct KeyQuery {
    key: String,
}

/// Calls whose prompt contains `key` (scripted or not).
async fn calls(State(state): State<Shared>, Query(q): Query<KeyQuery>) -> Json<Value> {
    let calls: Vec<CallRecord> = state
        .calls
        .lock()
        .unwrap()
        .iter()
        .filter(|c| key_matches(&c.user, &q.key))
        .cloned()
        .collect();
    let remaining = state
        .scripts
        .lock()
        .unwrap()
        .get(&q.key)
        .map(VecDeque::len)
        .unwrap_or(0);
    Json(json!({"calls": calls, "remainingSteps": remaining}))
}

async fn config(State(state): State<Shared>, Json(c): Json<GlobalConfig>) -> Json<Value> {
    *state.config.lock().unwrap() = c.clone();
    Json(json!(c))
}

async fn totals(State(state): State<Shared>) -> Json<Value> {
    Json(json!(state.totals.lock().unwrap().clone()))
}

/// Drop every queued step (what tests scripted and did not use).
async fn clear_scripts(State(state): State<Shared>) -> Json<Value> {
    let mut scripts = state.scripts.lock().unwrap();
    let dropped: usize = scripts.values().map(VecDeque::len).sum();
    scripts.clear();
    Json(json!({"dropped": dropped}))
}

/// Add a rate limit (`limits.rs`).
async fn add_limit(State(state): State<Shared>, Json(rule): Json<limits::Rule>) -> Json<Value> {
    let rules = state.limits.lock().unwrap().add(rule.clone());
    Json(json!({"rule": rule, "rules": rules}))
}

/// Every rate limit with its buckets: peak in flight, admitted, refused.
async fn show_limits(State(state): State<Shared>) -> Json<Value> {
    Json(state.limits.lock().unwrap().report())
}

async fn clear_limits(State(state): State<Shared>) -> Json<Value> {
    let dropped = state.limits.lock().unwrap().clear();
    Json(json!({"dropped": dropped}))
}

async fn reset_totals(State(state): State<Shared>) -> Json<Value> {
    *state.totals.lock().unwrap() = Totals::default();
    Json(json!({"reset": true}))
}

#[tokio::main]
async fn main() {
    let port: u16 = std::env::args()
        .skip_while(|a| a != "--port")
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    let flag = |name: &str| {
        std::env::args()
            .skip_while(|a| a != name)
            .nth(1)
            .and_then(|v| v.parse::<f64>().ok())
    };
    let state: Shared = Arc::new(Mock::default());
    state.started.get_or_init(std::time::Instant::now);
    {
        let mut c = state.config.lock().unwrap();
        c.tokens_per_second = flag("--tokens-per-second").unwrap_or(0.0);
        c.ttft_ms = flag("--ttft-ms").unwrap_or(0.0) as u64;
    }
    let app = Router::new()
        .route("/v1/chat/completions", post(openai))
        .route("/v1/messages", post(anthropic))
        .route("/keyless/v1/chat/completions", post(keyless_openai))
        .route("/__mock/script", post(script).delete(clear_scripts))
        .route("/__mock/calls", get(calls))
        .route("/__mock/config", post(config))
        .route(
            "/__mock/limits",
            post(add_limit).get(show_limits).delete(clear_limits),
        )
        .route("/__mock/totals", get(totals).delete(reset_totals))
        .route("/__mock/health", get(|| async { "ok" }))
        .with_state(state);
    // Loopback only: tests and benchmarks never leave the machine.
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("bind 127.0.0.1");
    println!(
        "mock-ai listening on {}",
        listener.local_addr().expect("local addr")
    );
    axum::serve(listener, app).await.expect("serve");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outlines_follow_the_target_shape_and_topic() {
        let v = outline(
            StructureType::Course,
            "x <topic>Rust</topic>\nTarget shape: modules=4, lessons=2.\n",
            None,
        );
        assert_eq!(v["modules"].as_array().unwrap().len(), 4);
        assert_eq!(v["modules"][0]["lessons"].as_array().unwrap().len(), 2);
        assert!(v["title"].as_str().unwrap().starts_with("Rust"));
    }

    #[test]
    fn target_shape_round_trips() {
        use content_granulator::helpers::prompts::{level_targets, PromptInput};
        use content_granulator::types::rules::{Constraints, StructureRules};
        use content_granulator::types::structure::Granularity;
        let rules = StructureRules::contract(StructureType::Course);
        let c = Constraints::default();
        let line = level_targets(&PromptInput {
            structure_type: StructureType::Course,
            topic: "Rust ownership",
            audience: "beginners",
            granularity: Granularity::new(3).unwrap(),
            rules: &rules,
            constraints: &c,
            counts: &[4, 2],
        });
        assert_eq!(
            parse_target_shape(&line).unwrap(),
            vec![("modules".into(), 4), ("lessons".into(), 2)]
        );
    }

    #[test]
    fn schemas_are_recognised() {
        let review_schema = content_granulator::services::validation::review_schema(3);
        assert!(matches!(want_of(&review_schema), Want::Review(ref n) if n.len() == 4));
        let summary = json!({"type": "object", "properties": {"summary": {"type": "string"}}});
        assert!(matches!(want_of(&summary), Want::Summary));
        let rules = content_granulator::types::rules::StructureRules::contract(StructureType::Quiz);
        let s = content_granulator::helpers::prompts::json_schema(StructureType::Quiz, 2, &rules);
        assert!(matches!(want_of(&s), Want::Outline(StructureType::Quiz)));
        let batch = json!({"type": "object", "properties": {"elements": {"type": "array", "items": {"type": "object",
            "properties": {"path": {"type": "string", "enum": ["modules.0", "modules.1"]}, "content": {"type": "string"}}}}}});
        assert!(matches!(want_of(&batch), Want::Content(ref p) if p.len() == 2));
    }

    #[test]
    fn steps_parse_from_json() {
        let steps: Vec<Step> = serde_json::from_value(json!([{"kind": "status", "code": 429, "retryAfter": "1"}, {"kind": "valid", "counts": [3]}, {"kind": "hang", "ms": 10}, {"kind": "raw", "text": "{a: 1}"}, {"kind": "raw", "text": "{", "truncated": true}])).unwrap();
        assert_eq!(steps.len(), 5);
        let short: Step =
            serde_json::from_value(json!({"kind": "valid", "wordsFactor": 0.3})).unwrap();
        assert!(matches!(
            short,
            Step::Valid {
                words_factor: Some(f),
                ..
            } if f == 0.3
        ));
        assert!(matches!(&steps[3], Step::Raw { text, truncated: false, .. } if text == "{a: 1}"));
        assert!(matches!(
            &steps[4],
            Step::Raw {
                truncated: true,
                ..
            }
        ));
    }
}

#[cfg(test)]
mod stream_tests {
    use super::*;
    use content_granulator::services::ai_provider::stream::{Format, StreamDecoder};
    use content_granulator::services::ai_provider::wire as wire_reply;

    fn decode(
        format: Format,
        plan: &StreamPlan,
    ) -> content_granulator::services::ai_provider::wire::Reply {
        let mut d = StreamDecoder::new(format);
        for e in &plan.head {
            d.feed(e.as_bytes());
        }
        for p in &plan.pieces {
            d.feed(piece_event(plan, p).as_bytes());
        }
        for e in &plan.tail {
            d.feed(e.as_bytes());
        }
        d.finish(10_000).unwrap()
    }

    /// A content batch through the whole handler, streamed in `provider`'s
    /// wire format and decoded as the worker decodes it.
    async fn batch_answer(state: &Shared, provider: Provider, prompt: &str) -> wire_reply::Reply {
        let schema = json!({"type": "object", "properties": {"elements": {"type": "array", "items": {"type": "object",
            "properties": {"path": {"type": "string", "enum": ["root", "modules.0", "modules.0.lessons.0"]},
                           "content": {"type": "string", "minLength": 1}}}}}});
        let messages = json!([{"role": "user", "content": prompt}]);
        let (body, format) = match provider {
            Provider::OpenAi => (
                json!({"model": "gpt-4o-mini", "stream": true, "messages": messages,
                    "response_format": {"type": "json_schema", "json_schema": {"name": "content_batch", "schema": schema}}}),
                Format::Openai,
            ),
            Provider::Anthropic => (
                json!({"model": "claude-haiku-4-5", "stream": true, "max_tokens": 4000, "messages": messages,
                    "tools": [{"name": "emit_result", "input_schema": schema}]}),
                Format::Anthropic,
            ),
        };
        let response = complete(state.clone(), provider, body, "test-key").await;
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let mut d = StreamDecoder::new(format);
        d.feed(&bytes);
        d.finish(10_000).unwrap()
    }

    fn words_of(reply: &wire_reply::Reply) -> Vec<(String, usize)> {
        let v = reply
            .json
            .clone()
            .or_else(|| {
                reply
                    .text
                    .as_deref()
                    .and_then(|t| serde_json::from_str(t).ok())
            })
            .expect("a JSON answer");
        v["elements"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["path"].as_str().unwrap().to_string(),
                    e["content"].as_str().unwrap().split_whitespace().count(),
                )
            })
            .collect()
    }

    #[tokio::test]
    async fn content_batches_stream_in_both_formats_and_take_scripted_steps() {
        let state: Shared = Arc::new(Mock::default());
        let prompt =
            "Topic: Rust ownership — a café tour\n- root | 30 words | course: Rust ownership\n\
            - modules.0 | 40 words | module: Basics\n  Write: an introduction.\n\
            - modules.0.lessons.0 | 120 words | lesson: Ownership—moves\n";
        let want: Vec<(String, usize)> = vec![
            ("root".into(), 30),
            ("modules.0".into(), 40),
            ("modules.0.lessons.0".into(), 120),
        ];
        for provider in [Provider::OpenAi, Provider::Anthropic] {
            assert_eq!(
                words_of(&batch_answer(&state, provider, prompt).await),
                want
            );
        }
        let _queued = script(
            State(state.clone()),
            Json(Script {
                key: "café tour".into(),
                steps: vec![
                    serde_json::from_value(json!({"kind": "valid", "wordsFactor": 0.5})).unwrap(),
                    Step::Truncate,
                ],
            }),
        )
        .await;
        let short = words_of(&batch_answer(&state, Provider::OpenAi, prompt).await);
        assert_eq!(
            short.iter().map(|(_, n)| *n).collect::<Vec<_>>(),
            vec![15, 20, 60]
        );
        // Cut at a character boundary however the text is written.
        let cut = batch_answer(&state, Provider::Anthropic, prompt).await;
        assert!(cut.truncated);
        assert!(cut
            .text
            .as_deref()
            .is_some_and(|t| serde_json::from_str::<Value>(t).is_err()));
        let calls = state.calls.lock().unwrap().clone();
        assert_eq!(calls.len(), 4);
        assert!(calls.iter().all(|c| c.kind == "content"));
        assert_eq!(calls[2].step, "valid");
        assert_eq!(calls[3].step, "truncate");
    }

    #[test]
    fn both_wire_formats_stream_what_the_plain_answer_holds() {
        let u = Usage {
            input: 100,
            output: 40,
            ..Usage::default()
        };
        let openai = openai_body(
            "gpt-4o-mini",
            Some("{\"title\": \"x\"}".into()),
            None,
            "stop",
            u,
        );
        let r = decode(Format::Openai, &stream_plan(Provider::OpenAi, &openai, 5));
        assert_eq!(r.text.as_deref(), Some("{\"title\": \"x\"}"));
        assert_eq!((r.usage.input, r.usage.output), (100, 40));
        assert!(!r.truncated);
        let tool = anthropic_body(
            "claude-3-5-haiku-latest",
            None,
            Some(json!({"a": [1, 2]})),
            "tool_use",
            u,
        );
        let r = decode(
            Format::Anthropic,
            &stream_plan(Provider::Anthropic, &tool, 4),
        );
        assert_eq!(r.json, Some(json!({"a": [1, 2]})));
        assert_eq!(r.usage.output, 40);
        let text = anthropic_body("claude-haiku-4-5", Some("{}".into()), None, "max_tokens", u);
        assert!(
            decode(
                Format::Anthropic,
                &stream_plan(Provider::Anthropic, &text, 4)
            )
            .truncated
        );
    }

    #[test]
    fn cached_and_written_prompt_tokens_reach_the_kit_plain_and_streamed_in_both_formats() {
        use content_granulator::services::ai_provider::wire;
        use content_granulator::types::pricing::TokenUsage;
        let u = Usage {
            input: 3000,
            output: 40,
            cached: 1536,
            cache_write: 0,
        };
        let openai = openai_body("gpt-4o-mini", Some("{}".into()), None, "stop", u);
        let want = TokenUsage {
            input: 3000,
            output: 40,
            cached: 1536,
            cache_write: 0,
        };
        assert_eq!(wire::openai_reply(&openai).unwrap().usage, want);
        let streamed = decode(Format::Openai, &stream_plan(Provider::OpenAi, &openai, 3));
        assert_eq!(streamed.usage, want);
        let u = Usage {
            cached: 1200,
            cache_write: 1000,
            ..u
        };
        let anthropic = anthropic_body("claude-sonnet-4-5", Some("{}".into()), None, "end_turn", u);
        assert_eq!(anthropic["usage"]["input_tokens"], 800);
        let want = TokenUsage {
            input: 3000,
            output: 40,
            cached: 1200,
            cache_write: 1000,
        };
        assert_eq!(wire::anthropic_reply(&anthropic).unwrap().usage, want);
        let streamed = decode(
            Format::Anthropic,
            &stream_plan(Provider::Anthropic, &anthropic, 3),
        );
        assert_eq!(streamed.usage, want);
    }
}
