//! Streamed provider answers as pure state machines: bytes in, a `Reply` out.
//!
//! OpenAI (`stream: true`, `stream_options.include_usage`): `data:` chunks with
//! `choices[0].delta`, a last chunk with `usage`, then `data: [DONE]`.
//! Anthropic: `message_start` (input usage, model), `content_block_*` (text or
//! tool-input JSON deltas), `message_delta` (stop reason, output usage),
//! `message_stop`. Workers AI: `data: {"response": "…"}` chunks, `usage` on a
//! late chunk, `data: [DONE]`.
//!
//! A stream that ends before its terminal event is cut short: the reply is
//! marked truncated. A decoder reads at most its byte limit (`with_limit`):
//! past it `feed` answers `false` (stop reading) and keeps nothing more, so
//! no answer can hold more of the isolate's memory than the limit. A server that ignored `stream: true` and answered one
//! JSON body is read as before. While bytes arrive, `tokens()` and
//! `elements()` say how far the answer has got (for progress).

use super::wire::{self, Reply};
use super::Progress;
use crate::pricing::TokenUsage;
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Openai,
    Anthropic,
    WorkersAi,
}

/// An error event inside a 200 stream (Anthropic `overloaded_error`, …).
#[derive(Debug, Clone, PartialEq)]
pub struct StreamError(pub String);

#[derive(Debug)]
pub struct StreamDecoder {
    format: Format,
    /// Undecided until the first non-space byte: `{` means a plain JSON body.
    plain: Option<bool>,
    pending: Vec<u8>,
    /// How much of `pending` holds no newline (scanned once, not per chunk).
    scanned: usize,
    raw: Vec<u8>,
    /// Bytes fed so far, and the most that will be read.
    received: usize,
    limit: usize,
    text: String,
    tool_json: String,
    refusal: String,
    model: Option<String>,
    finish: Option<String>,
    done: bool,
    usage: TokenUsage,
    usage_seen: bool,
    deltas: u64,
    elements: u64,
    error: Option<String>,
    /// Bytes of the answer's text already handed to `Progress::push_text`.
    reported: usize,
}

impl StreamDecoder {
    pub fn new(format: Format) -> StreamDecoder {
        StreamDecoder::with_limit(format, usize::MAX)
    }

    /// A decoder that reads at most `limit` bytes of the answer.
    pub fn with_limit(format: Format, limit: usize) -> StreamDecoder {
        StreamDecoder {
            format,
            plain: None,
            pending: Vec::new(),
            scanned: 0,
            raw: Vec::new(),
            received: 0,
            limit,
            text: String::new(),
            tool_json: String::new(),
            refusal: String::new(),
            model: None,
            finish: None,
            done: false,
            usage: TokenUsage::default(),
            usage_seen: false,
            deltas: 0,
            elements: 0,
            error: None,
            reported: 0,
        }
    }

    /// Output tokens so far: the provider's own count once it sent one, else
    /// the characters received at ~4 a token.
    pub fn tokens(&self) -> u64 {
        if self.usage.output > 0 {
            return self.usage.output;
        }
        ((self.text.len() + self.tool_json.len()) as u64).div_ceil(4)
    }

    /// Outline elements seen so far (each carries a `"title"`).
    pub fn elements(&self) -> u64 {
        self.elements
    }

    /// `feed`, then tell `progress` the running counts (live job progress)
    /// and the answer's new text (kept only if it asked: `Progress::keep_text`).
    pub fn feed_reporting(&mut self, bytes: &[u8], progress: Option<&Progress>) -> bool {
        let more = self.feed(bytes);
        if let Some(p) = progress {
            p.update(self.tokens(), self.elements());
            // The answer is text or a tool call's JSON, never both.
            let answer = match self.tool_json.is_empty() {
                true => &self.text,
                false => &self.tool_json,
            };
            if let Some(new) = answer.get(self.reported..).filter(|n| !n.is_empty()) {
                p.push_text(new);
                self.reported = answer.len();
            }
        }
        more
    }

    /// True when the answer passed the byte limit (what came after it was
    /// not read).
    pub fn over_limit(&self) -> bool {
        self.received > self.limit
    }

    /// Decode `bytes`; `false` once the answer has passed the byte limit:
    /// stop reading, nothing more will be kept.
    pub fn feed(&mut self, bytes: &[u8]) -> bool {
        if self.over_limit() {
            return false;
        }
        self.received = self.received.saturating_add(bytes.len());
        if self.over_limit() {
            self.pending.clear();
            self.raw.clear();
            self.scanned = 0;
            return false;
        }
        if self.plain.is_none() {
            if let Some(b) = bytes.iter().find(|b| !b.is_ascii_whitespace()) {
                self.plain = Some(*b == b'{');
            }
        }
        if self.plain == Some(true) {
            self.raw.extend_from_slice(bytes);
            return true;
        }
        self.pending.extend_from_slice(bytes);
        // Lines are cut from the front once per chunk; only new bytes are
        // searched, so a long line arriving in small chunks stays linear.
        let mut start = 0;
        let mut from = self.scanned;
        while let Some(pos) = self.pending[from..].iter().position(|b| *b == b'\n') {
            let end = from + pos;
            let line = String::from_utf8_lossy(&self.pending[start..end]).into_owned();
            self.line(line.trim_end_matches('\r'));
            start = end + 1;
            from = start;
        }
        self.pending.drain(..start);
        self.scanned = self.pending.len();
        true
    }

    fn line(&mut self, line: &str) {
        // `event:` lines repeat what the data's `type` says; comments and ids are ignored.
        let Some(data) = line.strip_prefix("data:") else {
            return;
        };
        let data = data.trim_start();
        if data == "[DONE]" {
            self.done = true;
            return;
        }
        let Ok(event) = serde_json::from_str::<Value>(data) else {
            return;
        };
        if let Some(e) = event.get("error").filter(|e| !e.is_null()) {
            let message = e["message"]
                .as_str()
                .or(e.as_str())
                .unwrap_or("error event");
            self.error = Some(message.chars().take(200).collect());
            return;
        }
        match self.format {
            Format::Openai => self.openai(&event),
            Format::Anthropic => self.anthropic(&event),
            Format::WorkersAi => self.workers_ai(&event),
        }
    }

    fn push_text(&mut self, piece: &str, tool: bool) {
        self.elements += piece.matches("\"title\"").count() as u64;
        self.deltas += 1;
        if tool {
            self.tool_json.push_str(piece);
        } else {
            self.text.push_str(piece);
        }
    }

    fn openai(&mut self, event: &Value) {
        if let Some(m) = event["model"].as_str() {
            self.model = Some(m.to_string());
        }
        if let Some(choice) = event["choices"].get(0) {
            if let Some(piece) = choice["delta"]["content"].as_str() {
                self.push_text(piece, false);
            }
            if let Some(piece) = choice["delta"]["refusal"].as_str() {
                self.refusal.push_str(piece);
            }
            if let Some(f) = choice["finish_reason"].as_str() {
                self.finish = Some(f.to_string());
            }
        }
        let usage = &event["usage"];
        if usage.is_object() {
            self.usage_seen = true;
            self.usage = wire::openai_usage(usage);
        }
    }

    fn anthropic(&mut self, event: &Value) {
        match event["type"].as_str().unwrap_or("") {
            "message_start" => {
                let m = &event["message"];
                self.model = m["model"].as_str().map(str::to_string);
                self.usage = wire::anthropic_usage(&m["usage"]);
            }
            "content_block_delta" => {
                let d = &event["delta"];
                match d["type"].as_str().unwrap_or("") {
                    "text_delta" => self.push_text(d["text"].as_str().unwrap_or(""), false),
                    "input_json_delta" => {
                        self.push_text(d["partial_json"].as_str().unwrap_or(""), true)
                    }
                    _ => {}
                }
            }
            "message_delta" => {
                if let Some(s) = event["delta"]["stop_reason"].as_str() {
                    self.finish = Some(s.to_string());
                }
                // Cumulative: the last one is the call's output usage. Newer
                // API versions repeat the input and cache counts here too.
                let u = &event["usage"];
                if let Some(out) = u["output_tokens"].as_u64() {
                    self.usage.output = out;
                    self.usage_seen = true;
                }
                if u.get("input_tokens").is_some_and(Value::is_u64) {
                    let output = self.usage.output;
                    self.usage = wire::anthropic_usage(u);
                    self.usage.output = output;
                }
            }
            "message_stop" => self.done = true,
            _ => {}
        }
    }

    fn workers_ai(&mut self, event: &Value) {
        if let Some(piece) = event["response"].as_str() {
            self.push_text(piece, false);
        }
        let usage = &event["usage"];
        if usage.is_object() {
            self.usage_seen = true;
            self.usage = TokenUsage {
                input: usage["prompt_tokens"].as_u64().unwrap_or(0),
                output: usage["completion_tokens"].as_u64().unwrap_or(0),
                ..TokenUsage::default()
            };
        }
    }

    /// The answer, once the body has ended. `Err` for an error event or an
    /// unreadable body (retried like a 5xx).
    pub fn finish(mut self, max_tokens: u32) -> Result<Reply, StreamError> {
        if !self.pending.is_empty() {
            let rest = String::from_utf8_lossy(&std::mem::take(&mut self.pending)).to_string();
            self.line(rest.trim_end());
        }
        if let Some(e) = self.error {
            return Err(StreamError(e));
        }
        if self.plain == Some(true) {
            let body: Value = serde_json::from_slice(&self.raw).map_err(|_| {
                StreamError("the provider answered 200 with a body that is not JSON".into())
            })?;
            return match self.format {
                Format::Openai => wire::openai_reply(&body),
                Format::Anthropic => wire::anthropic_reply(&body),
                Format::WorkersAi => wire::workers_ai_reply(&body, max_tokens),
            }
            .map_err(StreamError);
        }
        let ended = match self.format {
            Format::Openai => self.done || self.finish.is_some(),
            Format::Anthropic => self.done,
            Format::WorkersAi => self.done,
        };
        let stop = self.finish.as_deref().unwrap_or("");
        let truncated = !ended
            || stop == "length"
            || stop == "max_tokens"
            || (self.format == Format::WorkersAi
                && self.usage.output > 0
                && self.usage.output >= max_tokens as u64);
        let refusal = if !self.refusal.is_empty() {
            Some(self.refusal.clone())
        } else if stop == "refusal" {
            Some("the model refused".to_string())
        } else {
            None
        };
        let json = (!self.tool_json.is_empty())
            .then(|| serde_json::from_str::<Value>(&self.tool_json).ok())
            .flatten();
        // A cut-off tool call is text to re-ask with, not silently lost.
        let text = if !self.text.is_empty() {
            Some(self.text)
        } else if json.is_none() && !self.tool_json.is_empty() {
            Some(self.tool_json)
        } else {
            None
        };
        Ok(Reply {
            text,
            json,
            refusal,
            truncated,
            usage: self.usage,
            model: self.model,
        })
    }

    /// Events decoded so far (tests, diagnostics).
    pub fn deltas(&self) -> u64 {
        self.deltas
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sse(events: &[Value]) -> String {
        events
            .iter()
            .map(|e| format!("data: {e}\n\n"))
            .collect::<String>()
    }

    #[test]
    fn openai_stream_joins_deltas_and_reads_the_usage_chunk() {
        let mut body = sse(&[
            json!({"model": "gpt-4o-mini", "choices": [{"delta": {"content": "{\"title\":"}}]}),
            json!({"choices": [{"delta": {"content": " \"A\"}"}, "finish_reason": "stop"}]}),
            json!({"choices": [], "usage": {"prompt_tokens": 12, "completion_tokens": 7, "prompt_tokens_details": {"cached_tokens": 2}}}),
        ]);
        body.push_str("data: [DONE]\n\n");
        let mut d = StreamDecoder::new(Format::Openai);
        // Split mid-line: lines are reassembled across chunks.
        let (a, b) = body.split_at(17);
        d.feed(a.as_bytes());
        d.feed(b.as_bytes());
        assert_eq!(d.elements(), 1);
        let r = d.finish(100).unwrap();
        assert_eq!(r.text.as_deref(), Some("{\"title\": \"A\"}"));
        assert_eq!(
            r.usage,
            TokenUsage {
                input: 12,
                output: 7,
                cached: 2,
                cache_write: 0
            }
        );
        assert!(!r.truncated);
        assert_eq!(r.model.as_deref(), Some("gpt-4o-mini"));
    }

    #[test]
    fn openai_stream_that_ends_early_is_truncation() {
        let body = sse(&[json!({"choices": [{"delta": {"content": "{\"title\": \"A\", \"mod"}}]})]);
        let mut d = StreamDecoder::new(Format::Openai);
        d.feed(body.as_bytes());
        assert!(d.tokens() > 0);
        assert!(d.finish(100).unwrap().truncated);
    }

    #[test]
    fn the_answers_text_reaches_a_progress_that_keeps_it_as_it_arrives() {
        let body = sse(&[
            json!({"choices": [{"delta": {"content": "{\"modules\": [{"}}]}),
            json!({"choices": [{"delta": {"content": "\"title\": \"A\"}]}"}}]}),
        ]);
        let (a, b) = body.split_at(body.find("\n\n").unwrap() + 2);
        let p = Progress::default();
        p.keep_text(true);
        let mut d = StreamDecoder::new(Format::Openai);
        d.feed_reporting(a.as_bytes(), Some(&p));
        assert_eq!(p.text_since(0).1, "{\"modules\": [{");
        d.feed_reporting(b.as_bytes(), Some(&p));
        assert_eq!(p.text_since(0).1, "{\"modules\": [{\"title\": \"A\"}]}");
    }

    #[test]
    fn openai_length_finish_and_refusal() {
        let body =
            sse(&[json!({"choices": [{"delta": {"refusal": "no"}, "finish_reason": "length"}]})]);
        let mut d = StreamDecoder::new(Format::Openai);
        d.feed(body.as_bytes());
        let r = d.finish(100).unwrap();
        assert!(r.truncated);
        assert_eq!(r.refusal.as_deref(), Some("no"));
    }

    #[test]
    fn anthropic_stream_reads_text_tool_input_stop_reason_and_usage() {
        let events = [
            json!({"type": "message_start", "message": {"model": "claude-haiku-4-5", "usage": {"input_tokens": 40, "cache_read_input_tokens": 10, "output_tokens": 1}}}),
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "tool_use", "input": {}}}),
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": "{\"a\""}}),
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": ": 2}"}}),
            json!({"type": "content_block_stop", "index": 0}),
            json!({"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 9}}),
            json!({"type": "message_stop"}),
        ];
        let body: String = events
            .iter()
            .map(|e| format!("event: {}\ndata: {e}\n\n", e["type"].as_str().unwrap()))
            .collect();
        let mut d = StreamDecoder::new(Format::Anthropic);
        for chunk in body.as_bytes().chunks(7) {
            d.feed(chunk);
        }
        let r = d.finish(100).unwrap();
        assert_eq!(r.json, Some(json!({"a": 2})));
        assert_eq!(
            r.usage,
            TokenUsage {
                input: 50,
                output: 9,
                cached: 10,
                cache_write: 0
            }
        );
        assert!(!r.truncated);
    }

    fn anthropic_usage_of(events: &[Value]) -> TokenUsage {
        let body: String = events
            .iter()
            .map(|e| format!("event: {}\ndata: {e}\n\n", e["type"].as_str().unwrap()))
            .collect();
        let mut d = StreamDecoder::new(Format::Anthropic);
        d.feed(body.as_bytes());
        d.finish(100).unwrap().usage
    }

    #[test]
    fn anthropic_stream_counts_cache_writes_and_reads_as_prompt_tokens() {
        let text = [
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "{}"}}),
            json!({"type": "content_block_stop", "index": 0}),
        ];
        // Counts in message_start only (the 2023-06-01 stream).
        let mut events = vec![
            json!({"type": "message_start", "message": {"usage": {"input_tokens": 30, "cache_creation_input_tokens": 1200, "cache_read_input_tokens": 0, "output_tokens": 1}}}),
        ];
        events.extend(text.iter().cloned());
        events.push(json!({"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 7}}));
        events.push(json!({"type": "message_stop"}));
        let want = TokenUsage {
            input: 1230,
            output: 7,
            cached: 0,
            cache_write: 1200,
        };
        assert_eq!(anthropic_usage_of(&events), want);
        // Counts repeated, cumulative, in message_delta: the last ones hold.
        let n = events.len();
        events[n - 2] = json!({"type": "message_delta", "delta": {"stop_reason": "end_turn"},
            "usage": {"input_tokens": 30, "cache_creation_input_tokens": 200, "cache_read_input_tokens": 1000, "output_tokens": 7}});
        assert_eq!(
            anthropic_usage_of(&events),
            TokenUsage {
                input: 1230,
                output: 7,
                cached: 1000,
                cache_write: 200
            }
        );
    }

    #[test]
    fn anthropic_stream_without_message_stop_is_truncation_and_errors_are_errors() {
        let body = sse(&[
            json!({"type": "message_start", "message": {"usage": {"input_tokens": 5}}}),
            json!({"type": "content_block_delta", "delta": {"type": "text_delta", "text": "{\"ti"}}),
        ]);
        let mut d = StreamDecoder::new(Format::Anthropic);
        d.feed(body.as_bytes());
        assert!(d.finish(100).unwrap().truncated);
        let mut d = StreamDecoder::new(Format::Anthropic);
        d.feed(sse(&[json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})]).as_bytes());
        assert_eq!(d.finish(100), Err(StreamError("Overloaded".into())));
    }

    #[test]
    fn workers_ai_stream_and_plain_json_bodies() {
        let mut body = sse(&[
            json!({"response": "{\"title\""}),
            json!({"response": ": 1}", "usage": {"prompt_tokens": 3, "completion_tokens": 4}}),
        ]);
        body.push_str("data: [DONE]\n\n");
        let mut d = StreamDecoder::new(Format::WorkersAi);
        d.feed(body.as_bytes());
        let r = d.finish(100).unwrap();
        assert_eq!(r.text.as_deref(), Some("{\"title\": 1}"));
        assert_eq!(r.usage.output, 4);
        let mut d = StreamDecoder::new(Format::Openai);
        d.feed(br#" {"choices": [{"message": {"content": "{}"}, "finish_reason": "stop"}], "usage": {"prompt_tokens": 1, "completion_tokens": 2}}"#);
        let r = d.finish(100).unwrap();
        assert_eq!(r.text.as_deref(), Some("{}"));
        assert_eq!(r.usage.output, 2);
    }

    #[test]
    fn a_decoder_stops_at_its_byte_limit_and_keeps_nothing_past_it() {
        let event = format!(
            "data: {}\n\n",
            json!({"choices": [{"delta": {"content": "x"}}]})
        );
        let mut d = StreamDecoder::with_limit(Format::Openai, 10 * event.len());
        for _ in 0..10 {
            assert!(d.feed(event.as_bytes()), "within the limit: read on");
        }
        assert!(!d.over_limit());
        assert!(!d.feed(event.as_bytes()), "past it: stop");
        assert!(d.over_limit());
        assert!(!d.feed(event.as_bytes()), "and stay stopped");
        assert!(d.pending.is_empty() && d.raw.is_empty());
        // A plain JSON body is held to the same limit.
        let mut d = StreamDecoder::with_limit(Format::Openai, 8);
        assert!(d.feed(b"{\"a\":"));
        assert!(!d.feed(b" 123456}"));
        assert!(d.over_limit() && d.raw.is_empty());
    }

    #[test]
    fn a_long_line_in_small_chunks_is_read_whole() {
        // 2 MB of one SSE line fed 64 bytes at a time arrives as one delta.
        // (Only new bytes are searched for a newline, so this stays linear;
        // the time is not asserted here: benchmarks measure, tests do not.)
        let piece = "y".repeat(2 * 1024 * 1024);
        let line = format!(
            "data: {}\n\n",
            json!({"choices": [{"delta": {"content": piece}}]})
        );
        let mut d = StreamDecoder::new(Format::Openai);
        for chunk in line.as_bytes().chunks(64) {
            d.feed(chunk);
        }
        assert_eq!(d.scanned, 0, "every line was cut");
        assert_eq!(d.tokens(), (piece.len() as u64).div_ceil(4));
    }
}
