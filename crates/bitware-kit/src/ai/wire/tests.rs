//! The wire formats: requests built and replies read, per provider.

use super::*;

fn req(schema: &Value) -> WireRequest<'_> {
    WireRequest {
        model: "gpt-4o-mini",
        system: "sys",
        user: "usr",
        schema_name: "granulator_course",
        schema,
        max_tokens: 4000,
        temperature: 0.4,
        shared: 0,
        cache_key: None,
    }
}

#[test]
fn openai_request_uses_strict_json_schema() {
    let schema = json!({"type": "object"});
    let call = openai_call("http://127.0.0.1:9/v1/", "sk-test", &req(&schema));
    assert_eq!(call.url, "http://127.0.0.1:9/v1/chat/completions");
    assert!(call
        .headers
        .contains(&("authorization".into(), "Bearer sk-test".into())));
    assert_eq!(call.body["response_format"]["json_schema"]["strict"], true);
    assert_eq!(
        call.body["response_format"]["json_schema"]["name"],
        "granulator_course"
    );
    assert_eq!(call.body["messages"][1]["content"], "usr");
    assert_eq!(call.body["stream"], true);
    assert_eq!(call.body["stream_options"]["include_usage"], true);
    assert!(call.body.get("prompt_cache_key").is_none());
}

#[test]
fn openai_request_carries_the_jobs_prompt_cache_key() {
    let schema = json!({"type": "object"});
    let mut r = req(&schema);
    r.cache_key = Some("granulator-job-42");
    r.shared = 2;
    let call = openai_call("http://127.0.0.1:9/v1", "", &r);
    assert_eq!(call.body["prompt_cache_key"], "granulator-job-42");
    // OpenAI caches prefixes itself: the prompt is sent whole, in order.
    assert_eq!(call.body["messages"][0]["content"], "sys");
    assert_eq!(call.body["messages"][1]["content"], "usr");
}

#[test]
fn anthropic_marks_the_system_prompt_and_the_shared_part_cacheable() {
    let schema = json!({"type": "object"});
    let mut r = req(&schema);
    r.model = "claude-haiku-4-5";
    r.user = "shared context\n\nthis call's task";
    r.shared = "shared context\n\n".len();
    let call = anthropic_call("http://127.0.0.1:9", "key", &r);
    assert_eq!(
        call.body["system"],
        json!([{"type": "text", "text": "sys", "cache_control": {"type": "ephemeral"}}])
    );
    assert_eq!(
        call.body["messages"][0]["content"],
        json!([
            {"type": "text", "text": "shared context\n\n", "cache_control": {"type": "ephemeral"}},
            {"type": "text", "text": "this call's task"}
        ])
    );
    let breakpoints = call.body.to_string().matches("cache_control").count();
    assert!(breakpoints <= 4, "{breakpoints}");
    // Nothing shared: one block, no breakpoint in the message.
    r.shared = 0;
    let call = anthropic_call("http://127.0.0.1:9", "key", &r);
    assert_eq!(
        call.body["messages"][0]["content"],
        json!([{"type": "text", "text": "shared context\n\nthis call's task"}])
    );
    // A split inside a character (or past the end) shares nothing.
    r.user = "é";
    r.shared = 1;
    assert_eq!(r.user_parts(), ("", "é"));
    r.shared = 9;
    assert_eq!(r.user_parts(), ("", "é"));
}

#[test]
fn openai_reply_reads_usage_cache_truncation_and_refusal() {
    let body = json!({"model": "gpt-4o-mini-2024-07-18", "choices": [{"message": {"content": "{}", "refusal": null}, "finish_reason": "length"}],
        "usage": {"prompt_tokens": 120, "completion_tokens": 30, "prompt_tokens_details": {"cached_tokens": 100}}});
    let r = openai_reply(&body).unwrap();
    assert_eq!(
        r.usage,
        TokenUsage {
            input: 120,
            output: 30,
            cached: 100,
            cache_write: 0
        }
    );
    assert!(r.truncated);
    assert_eq!(r.model.as_deref(), Some("gpt-4o-mini-2024-07-18"));
    let refused = json!({"choices": [{"message": {"content": null, "refusal": "no"}, "finish_reason": "stop"}], "usage": {}});
    assert_eq!(
        openai_reply(&refused).unwrap().refusal.as_deref(),
        Some("no")
    );
    assert!(openai_reply(&json!({"error": {}})).is_err());
}

#[test]
fn anthropic_uses_structured_output_or_a_forced_tool() {
    let schema = json!({"type": "object"});
    let mut r = req(&schema);
    r.model = "claude-haiku-4-5";
    let call = anthropic_call("http://127.0.0.1:9", "key", &r);
    assert_eq!(call.url, "http://127.0.0.1:9/v1/messages");
    assert!(call
        .headers
        .contains(&("anthropic-version".into(), ANTHROPIC_VERSION.into())));
    assert_eq!(call.body["output_config"]["format"]["type"], "json_schema");
    assert!(call.body.get("tools").is_none());
    r.model = "claude-3-5-haiku-latest";
    let call = anthropic_call("http://127.0.0.1:9", "key", &r);
    assert_eq!(call.body["tool_choice"]["name"], TOOL_NAME);
    assert!(call.body.get("output_config").is_none());
}

#[test]
fn anthropic_reply_reads_text_tools_and_stop_reasons() {
    let body = json!({"model": "claude-haiku-4-5", "content": [{"type": "text", "text": "{\"a\":1}"}], "stop_reason": "max_tokens",
        "usage": {"input_tokens": 50, "output_tokens": 20, "cache_read_input_tokens": 10}});
    let r = anthropic_reply(&body).unwrap();
    assert_eq!(r.text.as_deref(), Some("{\"a\":1}"));
    assert!(r.truncated);
    assert_eq!(
        r.usage,
        TokenUsage {
            input: 60,
            output: 20,
            cached: 10,
            cache_write: 0
        }
    );
    // A first call writes the cache: its input counts the written tokens too.
    let written = json!({"content": [{"type": "text", "text": "{}"}], "stop_reason": "end_turn",
        "usage": {"input_tokens": 30, "output_tokens": 5, "cache_creation_input_tokens": 1200, "cache_read_input_tokens": 0}});
    assert_eq!(
        anthropic_reply(&written).unwrap().usage,
        TokenUsage {
            input: 1230,
            output: 5,
            cached: 0,
            cache_write: 1200
        }
    );
    let tool = json!({"content": [{"type": "tool_use", "name": TOOL_NAME, "input": {"a": 2}}], "stop_reason": "tool_use", "usage": {}});
    assert_eq!(anthropic_reply(&tool).unwrap().json, Some(json!({"a": 2})));
    let refusal = json!({"content": [], "stop_reason": "refusal", "usage": {}});
    assert!(anthropic_reply(&refusal).unwrap().refusal.is_some());
}

#[test]
fn workers_ai_sets_max_tokens_and_reads_both_response_forms() {
    let schema = json!({"type": "object"});
    assert_eq!(workers_ai_input(&req(&schema))["max_tokens"], 4000);
    let r = workers_ai_reply(
        &json!({"response": {"a": 1}, "usage": {"prompt_tokens": 9, "completion_tokens": 4}}),
        100,
    )
    .unwrap();
    assert_eq!(r.json, Some(json!({"a": 1})));
    assert_eq!(r.usage.input, 9);
    let cut = workers_ai_reply(
        &json!({"response": "{", "usage": {"completion_tokens": 100}}),
        100,
    )
    .unwrap();
    assert!(cut.truncated);
}

#[test]
fn classification_of_http_errors() {
    assert_eq!(
        classify_http(429, "{}", Some("2")),
        ErrorClass::Retryable {
            retry_after_ms: Some(2000)
        }
    );
    assert_eq!(
        classify_http(529, "overloaded", None),
        ErrorClass::Retryable {
            retry_after_ms: None
        }
    );
    assert_eq!(
        classify_http(500, "", Some("soon")),
        ErrorClass::Retryable {
            retry_after_ms: None
        }
    );
    assert_eq!(
        classify_http(429, r#"{"error":{"code":"insufficient_quota"}}"#, None),
        ErrorClass::Fatal
    );
    assert_eq!(classify_http(400, "bad", None), ErrorClass::Fatal);
    assert_eq!(classify_http(401, "", None), ErrorClass::Fatal);
    assert_eq!(classify_http(403, "", None), ErrorClass::Fatal);
}

#[test]
fn error_summaries_carry_the_message_only() {
    assert_eq!(
        error_summary(
            401,
            r#"{"error":{"message":"Incorrect API key provided: sk-proj-abc123***************************xyz9"}}"#
        ),
        "HTTP 401: the provider refused the API key: check it"
    );
    assert_eq!(
        error_summary(502, "<html>"),
        "HTTP 502: the provider had a server error: retried with backoff"
    );
    assert_eq!(
        error_summary(429, r#"{"error":{"type":"insufficient_quota"}}"#),
        "HTTP 429: the provider account is out of quota or credit"
    );
}

#[test]
fn provider_messages_are_logged_with_credentials_redacted() {
    let m = provider_message(
        r#"{"error":{"message":"Incorrect API key provided: sk-proj-abc123***xyz9. You can find your API key at https://example.test."}}"#,
    )
    .unwrap();
    assert!(!m.contains("abc123") && !m.contains("xyz9"), "{m}");
    assert!(
        m.starts_with("Incorrect API key provided: [redacted]."),
        "{m}"
    );
    let m =
        provider_message(r#"{"error":"invalid x-api-key sk-ant-api03-AbCdEf0123456789"}"#).unwrap();
    assert!(!m.contains("AbCdEf"), "{m}");
    let m = provider_message(r#"{"message":"token a1b2c3d4e5f6a7b8c9d0e1f2 expired"}"#).unwrap();
    assert_eq!(m, "token [redacted] expired");
    assert_eq!(
        provider_message(r#"{"error":{"message":"The model gpt-4o-mini does not exist"}}"#)
            .as_deref(),
        Some("The model gpt-4o-mini does not exist")
    );
    assert_eq!(provider_message("<html>"), None);
}
