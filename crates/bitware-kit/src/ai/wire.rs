//! Provider wire formats as pure functions: build the HTTP call, read the reply.
//!
//! OpenAI (and every OpenAI-compatible server) — chat completions with a strict
//! `json_schema` response format. Anthropic — Messages with `output_config`
//! structured output on models that support it, a forced tool call otherwise.
//! Workers AI — the `AI` binding's input and output objects.
//!
//! Prompt caching: a request names how many leading bytes of its user
//! prompt every call of its job shares (`shared`) and a per-job key
//! (`cache_key`). Anthropic gets `cache_control` breakpoints at the end of
//! the system prompt and of that shared part; OpenAI caches prefixes itself
//! and gets the key as `prompt_cache_key`, so a job's calls land on the same
//! cache; the `AI` binding takes neither (workers-rs passes no options).

use crate::pricing::TokenUsage;
use serde_json::{json, Value};

pub const ANTHROPIC_VERSION: &str = "2023-06-01";
const TOOL_NAME: &str = "emit_result";

/// What every provider is asked.
#[derive(Debug, Clone)]
pub struct WireRequest<'a> {
    pub model: &'a str,
    pub system: &'a str,
    pub user: &'a str,
    pub schema_name: &'a str,
    pub schema: &'a Value,
    pub max_tokens: u32,
    pub temperature: f64,
    /// Leading bytes of `user` that the job's other calls send too.
    pub shared: usize,
    /// Groups a job's calls on the provider's prompt cache (not secret).
    pub cache_key: Option<&'a str>,
}

impl WireRequest<'_> {
    /// `user` split where the shared part ends (all of it call-specific when
    /// the split falls outside it or inside a character).
    pub fn user_parts(&self) -> (&str, &str) {
        match self.user.get(..self.shared) {
            Some(shared) => (shared, &self.user[shared.len()..]),
            None => ("", self.user),
        }
    }
}

/// An Anthropic cache breakpoint: the prompt up to here is cached (5 minutes).
fn ephemeral() -> Value {
    json!({"type": "ephemeral"})
}

#[derive(Debug, Clone, PartialEq)]
pub struct HttpCall {
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Value,
}

/// A provider's answer, read from its wire format.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Reply {
    /// Text the model produced (JSON, perhaps wrapped in prose).
    pub text: Option<String>,
    /// Already-structured output (Anthropic tool input, Workers AI objects).
    pub json: Option<Value>,
    pub refusal: Option<String>,
    /// The model stopped at its token limit.
    pub truncated: bool,
    pub usage: TokenUsage,
    pub model: Option<String>,
}

fn join(base: &str, path: &str) -> String {
    format!(
        "{}/{}",
        base.trim_end_matches('/'),
        path.trim_start_matches('/')
    )
}

pub fn openai_call(base_url: &str, api_key: &str, req: &WireRequest<'_>) -> HttpCall {
    let mut headers = vec![("content-type".into(), "application/json".into())];
    // A keyless server (Ollama, vLLM, llama.cpp) gets no empty `Bearer `.
    if !api_key.is_empty() {
        headers.insert(0, ("authorization".into(), format!("Bearer {api_key}")));
    }
    let mut call = HttpCall {
        url: join(base_url, "chat/completions"),
        headers,
        body: json!({
            "model": req.model,
            "messages": [
                {"role": "system", "content": req.system},
                {"role": "user", "content": req.user},
            ],
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": req.schema_name, "strict": true, "schema": req.schema},
            },
            "max_completion_tokens": req.max_tokens,
            "temperature": req.temperature,
            // Streamed for progress; the last chunk carries the exact usage.
            "stream": true,
            "stream_options": {"include_usage": true},
        }),
    };
    // Prefixes of 1,024 tokens and more are cached without asking; the key
    // routes a job's calls to the same cache.
    if let Some(key) = req.cache_key {
        call.body["prompt_cache_key"] = json!(key);
    }
    call
}

pub fn openai_reply(body: &Value) -> Result<Reply, String> {
    let choice = body["choices"].get(0).ok_or("the reply has no choices")?;
    let message = &choice["message"];
    Ok(Reply {
        text: message["content"].as_str().map(str::to_string),
        json: None,
        refusal: message["refusal"].as_str().map(str::to_string),
        truncated: choice["finish_reason"] == "length",
        usage: openai_usage(&body["usage"]),
        model: body["model"].as_str().map(str::to_string),
    })
}

/// OpenAI's `usage` (plain, or a stream's last chunk): `prompt_tokens`
/// includes the cached ones.
pub fn openai_usage(usage: &Value) -> TokenUsage {
    TokenUsage {
        input: usage["prompt_tokens"].as_u64().unwrap_or(0),
        output: usage["completion_tokens"].as_u64().unwrap_or(0),
        cached: usage["prompt_tokens_details"]["cached_tokens"]
            .as_u64()
            .unwrap_or(0),
        cache_write: 0,
    }
}

/// Anthropic's `usage` (a reply's, or a stream's `message_start`): its
/// `input_tokens` leaves out what was read from and written to the cache;
/// ours counts every prompt token.
pub fn anthropic_usage(usage: &Value) -> TokenUsage {
    let read = usage["cache_read_input_tokens"].as_u64().unwrap_or(0);
    let written = usage["cache_creation_input_tokens"].as_u64().unwrap_or(0);
    TokenUsage {
        input: usage["input_tokens"].as_u64().unwrap_or(0) + read + written,
        output: usage["output_tokens"].as_u64().unwrap_or(0),
        cached: read,
        cache_write: written,
    }
}

/// Claude models with native structured output; older ones use a forced tool.
pub fn anthropic_supports_structured_output(model: &str) -> bool {
    const PREFIXES: [&str; 6] = [
        "claude-sonnet-4-5",
        "claude-opus-4-1",
        "claude-opus-4-5",
        "claude-haiku-4-5",
        "claude-sonnet-5",
        "claude-opus-5",
    ];
    PREFIXES.iter().any(|p| model.starts_with(p))
}

/// Breakpoints (2 of the 4 allowed) after the system prompt and after the
/// shared part of the user prompt: a prefix under the model's minimum
/// (1,024 or 2,048 tokens) is simply not cached.
pub fn anthropic_call(base_url: &str, api_key: &str, req: &WireRequest<'_>) -> HttpCall {
    let (shared, own) = req.user_parts();
    let mut content = Vec::new();
    if !shared.is_empty() {
        content.push(json!({"type": "text", "text": shared, "cache_control": ephemeral()}));
    }
    if !own.is_empty() || content.is_empty() {
        content.push(json!({"type": "text", "text": own}));
    }
    let mut body = json!({
        "model": req.model,
        "max_tokens": req.max_tokens,
        "temperature": req.temperature,
        "system": [{"type": "text", "text": req.system, "cache_control": ephemeral()}],
        "messages": [{"role": "user", "content": content}],
        "stream": true,
    });
    if anthropic_supports_structured_output(req.model) {
        body["output_config"] = json!({"format": {"type": "json_schema", "schema": req.schema}});
    } else {
        body["tools"] = json!([{
            "name": TOOL_NAME,
            "description": format!("Return the {} object.", req.schema_name),
            "input_schema": req.schema,
        }]);
        body["tool_choice"] = json!({"type": "tool", "name": TOOL_NAME});
    }
    HttpCall {
        url: join(base_url, "v1/messages"),
        headers: vec![
            ("x-api-key".into(), api_key.into()),
            ("anthropic-version".into(), ANTHROPIC_VERSION.into()),
            ("content-type".into(), "application/json".into()),
        ],
        body,
    }
}

pub fn anthropic_reply(body: &Value) -> Result<Reply, String> {
    let content = body["content"]
        .as_array()
        .ok_or("the reply has no content")?;
    let text: String = content
        .iter()
        .filter(|b| b["type"] == "text")
        .filter_map(|b| b["text"].as_str())
        .collect();
    let tool_input = content
        .iter()
        .find(|b| b["type"] == "tool_use")
        .map(|b| b["input"].clone());
    Ok(Reply {
        text: (!text.is_empty()).then_some(text),
        json: tool_input,
        refusal: (body["stop_reason"] == "refusal").then(|| "the model refused".to_string()),
        truncated: body["stop_reason"] == "max_tokens",
        usage: anthropic_usage(&body["usage"]),
        model: body["model"].as_str().map(str::to_string),
    })
}

/// Input for `env.AI.run(model, input)`. `max_tokens` is always explicit:
/// the binding's default (256) would truncate every outline. No cache
/// fields: the binding reports no cached tokens and takes no cache key.
pub fn workers_ai_input(req: &WireRequest<'_>) -> Value {
    json!({
        "messages": [
            {"role": "system", "content": req.system},
            {"role": "user", "content": req.user},
        ],
        "max_tokens": req.max_tokens,
        "temperature": req.temperature,
        "response_format": {"type": "json_schema", "json_schema": req.schema},
        "stream": true,
    })
}

pub fn workers_ai_reply(body: &Value, max_tokens: u32) -> Result<Reply, String> {
    let usage = &body["usage"];
    let output = usage["completion_tokens"].as_u64().unwrap_or(0);
    let (text, json) = match &body["response"] {
        Value::String(s) => (Some(s.clone()), None),
        Value::Object(_) => (None, Some(body["response"].clone())),
        _ => return Err("the reply has no response".into()),
    };
    Ok(Reply {
        text,
        json,
        refusal: None,
        // The binding reports no stop reason: hitting the limit exactly is truncation.
        truncated: output > 0 && output >= max_tokens as u64,
        usage: TokenUsage {
            input: usage["prompt_tokens"].as_u64().unwrap_or(0),
            output,
            ..TokenUsage::default()
        },
        model: None,
    })
}

/// How a failed HTTP answer is handled.
#[derive(Debug, Clone, PartialEq)]
pub enum ErrorClass {
    /// 429 (rate limit), 5xx, 529 overloaded: retry after a pause.
    Retryable { retry_after_ms: Option<u64> },
    /// Bad request, bad key, no credit: retrying the same provider cannot help.
    Fatal,
}

pub fn classify_http(status: u16, body: &str, retry_after: Option<&str>) -> ErrorClass {
    let lower = body.to_ascii_lowercase();
    let out_of_money = [
        "insufficient_quota",
        "credit balance",
        "billing",
        "spend limit",
    ]
    .iter()
    .any(|m| lower.contains(m));
    match status {
        429 if out_of_money => ErrorClass::Fatal,
        408 | 409 | 429 | 500..=599 => ErrorClass::Retryable {
            retry_after_ms: retry_after.and_then(parse_retry_after),
        },
        _ => ErrorClass::Fatal,
    }
}

/// `Retry-After` in seconds (the HTTP-date form is not used by these providers).
pub fn parse_retry_after(value: &str) -> Option<u64> {
    let secs: f64 = value.trim().parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then_some((secs * 1000.0) as u64)
}

/// What a client and the stored attempt learn of a provider's HTTP error:
/// our own words only (status, class, what to do). Providers echo parts of
/// API keys in their messages (`Incorrect API key provided: sk-…`), so
/// their text never reaches a response or a row; see `provider_message`.
pub fn error_summary(status: u16, body: &str) -> String {
    let what = match status {
        400 | 422 => "the provider rejected the request (model name, schema or parameters)",
        401 => "the provider refused the API key: check it",
        403 => "the provider refused access (key permissions, region or model access)",
        402 => "the provider account has no credit",
        404 => "the provider does not know this model or endpoint",
        408 => "the provider timed out",
        413 => "the request was too large for the provider",
        429 if classify_http(status, body, None) == ErrorClass::Fatal => {
            "the provider account is out of quota or credit"
        }
        429 => "the provider is rate limiting: retried with backoff",
        529 => "the provider is overloaded: retried with backoff",
        500..=599 => "the provider had a server error: retried with backoff",
        _ => "the provider answered with an unexpected error",
    };
    format!("HTTP {status}: {what}")
}

/// The provider's own message, for the worker's log only, with anything
/// shaped like a credential redacted.
pub fn provider_message(body: &str) -> Option<String> {
    let parsed: Value = serde_json::from_str(body).ok()?;
    let message = parsed["error"]["message"]
        .as_str()
        .or(parsed["error"].as_str())
        .or(parsed["message"].as_str())?;
    Some(redact_credentials(
        &message.chars().take(300).collect::<String>(),
    ))
}

/// Replace every word that looks like a secret: provider key prefixes
/// (`sk-`, `sk-ant-`, `key-`, …), and any long run of letters and digits
/// mixed together (tokens, hashes, partial keys such as `sk-ab***xyz`).
pub fn redact_credentials(text: &str) -> String {
    text.split_inclusive(|c: char| {
        c.is_whitespace() || matches!(c, '"' | '\'' | ',' | '(' | ')' | '`')
    })
    .map(|chunk| {
        let word = chunk.trim_end_matches(|c: char| {
            c.is_whitespace() || matches!(c, '"' | '\'' | ',' | '(' | ')' | '`')
        });
        let tail = &chunk[word.len()..];
        let core = word.trim_end_matches(['.', ':', ';']);
        let punct = &word[core.len()..];
        if looks_like_credential(core) {
            format!("[redacted]{punct}{tail}")
        } else {
            chunk.to_string()
        }
    })
    .collect()
}

fn looks_like_credential(word: &str) -> bool {
    let lower = word.to_ascii_lowercase();
    if [
        "sk-", "sk_", "pk-", "rk-", "key-", "xai-", "gsk_", "ghp_", "bearer",
    ]
    .iter()
    .any(|p| lower.starts_with(p) && word.len() > p.len())
    {
        return true;
    }
    let alnum = word.chars().filter(|c| c.is_ascii_alphanumeric()).count();
    let digits = word.chars().filter(|c| c.is_ascii_digit()).count();
    let letters = word.chars().filter(|c| c.is_ascii_alphabetic()).count();
    word.contains('*') && alnum >= 4 || (alnum >= 20 && digits >= 2 && letters >= 2)
}

#[cfg(test)]
mod tests;
