//! Prompt caching as the providers document it, so that a benchmark sees
//! what a job would really be billed (on with `promptCaching` in
//! `/__mock/config`, or per `valid` step; off by default, so every other
//! test keeps its exact usage). Tokens are counted as the mock bills them:
//! 4 characters a token, the prompt being the schema, then the system
//! prompt, then the user prompt (the order both providers cache in:
//! OpenAI puts a structured-output schema before the system message,
//! Anthropic caches tools, then system, then messages).
//!
//! OpenAI: automatic. The longest prefix this prompt shares with an earlier
//! one (same model, same `prompt_cache_key`) is cached from 1,024 tokens,
//! in steps of 128.
//!
//! Anthropic: explicit. The prompt up to each `cache_control` breakpoint is
//! a cache entry; entries under the model's minimum (1,024 tokens, 2,048
//! for Haiku) are not made. The longest breakpoint prefix already cached is
//! read (`cache_read_input_tokens`); the rest up to the last eligible
//! breakpoint is written (`cache_creation_input_tokens`).
//!
//! Both: an entry exists only once the response that wrote it has started
//! (after its time to first token), so calls sent at the same moment all
//! miss, as they do at a provider.

use serde_json::Value;
use std::time::{Duration, Instant};

pub const OPENAI_MIN_TOKENS: u64 = 1024;
pub const OPENAI_STEP_TOKENS: u64 = 128;
/// Entries kept (oldest dropped first): enough for a benchmark's jobs.
const MAX_ENTRIES: usize = 4096;

pub fn anthropic_min_tokens(model: &str) -> u64 {
    if model.contains("haiku") {
        2048
    } else {
        1024
    }
}

/// Tokens of a cached prefix: whole tokens only.
fn tokens(bytes: usize) -> u64 {
    bytes as u64 / 4
}

/// What one request's prompt did with the cache.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Hit {
    pub read: u64,
    pub written: u64,
}

struct Entry {
    anthropic: bool,
    model: String,
    key: Option<String>,
    text: String,
    ready_at: Instant,
}

#[derive(Default)]
pub struct PromptCache {
    entries: Vec<Entry>,
}

impl PromptCache {
    fn remember(&mut self, entry: Entry) {
        if self.entries.len() >= MAX_ENTRIES {
            self.entries.remove(0);
        }
        self.entries.push(entry);
    }

    /// An OpenAI request's cached tokens; the prompt is remembered from `ready_at`.
    pub fn openai(
        &mut self,
        model: &str,
        key: Option<&str>,
        prompt: &str,
        now: Instant,
        ttft: Duration,
    ) -> Hit {
        let longest = self
            .entries
            .iter()
            .filter(|e| !e.anthropic && e.model == model && e.key.as_deref() == key)
            .filter(|e| e.ready_at <= now)
            .map(|e| common_prefix(&e.text, prompt))
            .max()
            .unwrap_or(0);
        let t = tokens(longest);
        let read = match t >= OPENAI_MIN_TOKENS {
            true => {
                OPENAI_MIN_TOKENS
                    + (t - OPENAI_MIN_TOKENS) / OPENAI_STEP_TOKENS * OPENAI_STEP_TOKENS
            }
            false => 0,
        };
        self.remember(Entry {
            anthropic: false,
            model: model.to_string(),
            key: key.map(str::to_string),
            text: prompt.to_string(),
            ready_at: now + ttft,
        });
        Hit { read, written: 0 }
    }

    /// An Anthropic request: `prefixes` are the prompt up to each breakpoint, in order.
    pub fn anthropic(
        &mut self,
        model: &str,
        prefixes: &[String],
        now: Instant,
        ttft: Duration,
    ) -> Hit {
        let min = anthropic_min_tokens(model);
        let eligible: Vec<&String> = prefixes.iter().filter(|p| tokens(p.len()) >= min).collect();
        let cached = |p: &str, ready: bool| {
            self.entries.iter().any(|e| {
                e.anthropic && e.model == model && e.text == p && (!ready || e.ready_at <= now)
            })
        };
        let read = eligible
            .iter()
            .filter(|p| cached(p, true))
            .map(|p| tokens(p.len()))
            .max()
            .unwrap_or(0);
        let last = eligible.iter().map(|p| tokens(p.len())).max().unwrap_or(0);
        let fresh: Vec<String> = eligible
            .iter()
            .filter(|p| !cached(p, false))
            .map(|p| (*p).clone())
            .collect();
        for text in fresh {
            self.remember(Entry {
                anthropic: true,
                model: model.to_string(),
                key: None,
                text,
                ready_at: now + ttft,
            });
        }
        Hit {
            read,
            written: last - read,
        }
    }
}

fn common_prefix(a: &str, b: &str) -> usize {
    a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count()
}

fn block_text(block: &Value) -> &str {
    block["text"].as_str().unwrap_or("")
}

/// The prompt of an Anthropic body up to each `cache_control` breakpoint
/// (schema, then system blocks, then message blocks), and how many there are.
pub fn anthropic_prefixes(schema: &Value, body: &Value) -> Vec<String> {
    let mut text = schema.to_string();
    let mut out = Vec::new();
    let mut blocks: Vec<&Value> = Vec::new();
    match &body["system"] {
        Value::String(s) => text.push_str(s),
        Value::Array(b) => blocks.extend(b),
        _ => {}
    }
    let mut message_blocks: Vec<Value> = Vec::new();
    for m in body["messages"].as_array().into_iter().flatten() {
        match &m["content"] {
            Value::Array(b) => message_blocks.extend(b.iter().cloned()),
            Value::String(s) => message_blocks.push(serde_json::json!({"type": "text", "text": s})),
            _ => {}
        }
    }
    for block in blocks.into_iter().chain(message_blocks.iter()) {
        text.push_str(block_text(block));
        if block.get("cache_control").is_some() {
            out.push(text.clone());
        }
    }
    out
}

/// `cache_control` breakpoints in a request body.
pub fn breakpoints(body: &Value) -> usize {
    body.to_string().matches("\"cache_control\"").count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NO_WAIT: Duration = Duration::ZERO;

    #[test]
    fn openai_caches_a_repeated_prefix_from_1024_tokens_in_128_token_steps() {
        let mut c = PromptCache::default();
        let now = Instant::now();
        let shared = "s".repeat(4 * 1500);
        let a = format!("{shared}A's own question");
        let b = format!("{shared}B's own question");
        assert_eq!(
            c.openai("gpt-4o-mini", Some("job-1"), &a, now, NO_WAIT)
                .read,
            0
        );
        // 1,500 shared tokens: 1,024 + 3 × 128.
        assert_eq!(
            c.openai("gpt-4o-mini", Some("job-1"), &b, now, NO_WAIT)
                .read,
            1408
        );
        // Another key, another model, or a short prefix: nothing.
        assert_eq!(
            c.openai("gpt-4o-mini", Some("job-2"), &b, now, NO_WAIT)
                .read,
            0
        );
        assert_eq!(c.openai("gpt-4o", Some("job-1"), &b, now, NO_WAIT).read, 0);
        let short = "t".repeat(4 * 1000);
        c.openai("gpt-4o-mini", None, &format!("{short}x"), now, NO_WAIT);
        assert_eq!(
            c.openai("gpt-4o-mini", None, &format!("{short}y"), now, NO_WAIT)
                .read,
            0
        );
    }

    #[test]
    fn an_entry_exists_only_once_the_response_that_wrote_it_has_started() {
        let mut c = PromptCache::default();
        let now = Instant::now();
        let prompt = "p".repeat(4 * 2000);
        let ttft = Duration::from_millis(500);
        c.openai("m", None, &prompt, now, ttft);
        assert_eq!(
            c.openai("m", None, &prompt, now, ttft).read,
            0,
            "sent at once: a miss"
        );
        assert_eq!(c.openai("m", None, &prompt, now + ttft, ttft).read, 1920);
        let prefixes = vec!["q".repeat(4 * 1100)];
        assert_eq!(
            c.anthropic("claude-sonnet-4-5", &prefixes, now, ttft),
            Hit {
                read: 0,
                written: 1100
            }
        );
        // At once: it misses, and writes again (billed as a write again).
        assert_eq!(
            c.anthropic("claude-sonnet-4-5", &prefixes, now, ttft),
            Hit {
                read: 0,
                written: 1100
            }
        );
        assert_eq!(
            c.anthropic("claude-sonnet-4-5", &prefixes, now + ttft, ttft),
            Hit {
                read: 1100,
                written: 0
            }
        );
    }

    #[test]
    fn anthropic_writes_then_reads_up_to_the_breakpoint_at_its_models_minimum() {
        let mut c = PromptCache::default();
        let now = Instant::now();
        let schema = json!({"type": "object"});
        let shared = "c".repeat(4 * 1500);
        let body = |own: &str| {
            json!({"system": [{"type": "text", "text": "sys", "cache_control": {"type": "ephemeral"}}],
                   "messages": [{"role": "user", "content": [
                       {"type": "text", "text": shared, "cache_control": {"type": "ephemeral"}},
                       {"type": "text", "text": own}]}]})
        };
        let first = anthropic_prefixes(&schema, &body("one"));
        assert_eq!(first.len(), 2);
        assert_eq!(breakpoints(&body("one")), 2);
        let expected = (schema.to_string().len() + 3 + shared.len()) as u64 / 4;
        assert_eq!(first[1].len() as u64 / 4, expected);
        assert_eq!(
            c.anthropic("claude-sonnet-4-5", &first, now, NO_WAIT),
            Hit {
                read: 0,
                written: expected
            }
        );
        let second = anthropic_prefixes(&schema, &body("two"));
        assert_eq!(
            c.anthropic("claude-sonnet-4-5", &second, now, NO_WAIT),
            Hit {
                read: expected,
                written: 0
            }
        );
        // Haiku needs 2,048 tokens: 1,500 are not cached, nor written.
        assert_eq!(
            c.anthropic("claude-haiku-4-5", &second, now, NO_WAIT),
            Hit::default()
        );
        assert_eq!(
            c.anthropic("claude-haiku-4-5", &second, now, NO_WAIT),
            Hit::default()
        );
        // No breakpoint, no cache.
        let plain = json!({"system": "sys", "messages": [{"role": "user", "content": shared}]});
        assert!(anthropic_prefixes(&schema, &plain).is_empty());
    }
}
