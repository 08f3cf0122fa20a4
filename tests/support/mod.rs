//! Helpers for the end-to-end tests: the running worker, every credential
//! tier and the error model are the kit's harness (`bitware_kit::testing`,
//! re-exported here); the mock AI provider (`MOCK_URL`), execute bodies and
//! templates are the granulator's. `./test.sh` starts both; without them
//! these tests fail rather than pass.

#![allow(dead_code)]

pub use bitware_kit::testing::*;
use reqwest::Method;
use serde_json::{json, Value};

/// The mock AI provider.
pub fn mock() -> String {
    std::env::var("MOCK_URL").unwrap_or_else(|_| panic!("MOCK_URL is not set: run the end-to-end tests through ./test.sh, which starts the worker and the mock AI provider"))
}

/// `POST /api/execute` with an optional X-Request-ID.
/// `POST /api/execute`. A body without an `action` is sent as `granulate`
/// (the Resource Manager always names one; a missing action is a 400, which
/// its own test sends with `send`).
pub async fn execute(who: &Who, mut body: Value, request_id: Option<&str>) -> Reply {
    if let Some(map) = body.as_object_mut() {
        map.entry("action").or_insert(json!("granulate"));
    }
    let headers: Vec<(&str, &str)> = request_id
        .map(|r| vec![("X-Request-ID", r)])
        .unwrap_or_default();
    send(Method::POST, "/api/execute", who, Some(&body), &headers).await
}

pub fn granulate(topic: &str, structure_type: &str, granularity: u8) -> Value {
    json!({"action": "granulate", "input": {"topic": topic, "structureType": structure_type, "granularityLevel": granularity}})
}

/// Queue mock behaviours for requests whose prompt contains `key`.
pub async fn script(key: &str, steps: Value) {
    let r = http()
        .post(format!("{}/__mock/script", mock()))
        .json(&json!({"key": key, "steps": steps}))
        .send()
        .await
        .expect("mock answers");
    assert!(r.status().is_success());
}

/// What the mock saw for `key`: `calls[]` with provider, kind, step, status, user, usage.
pub async fn mock_calls(key: &str) -> Vec<Value> {
    let r: Value = http()
        .get(format!("{}/__mock/calls", mock()))
        .query(&[("key", key)])
        .send()
        .await
        .expect("mock")
        .json()
        .await
        .expect("json");
    r["calls"].as_array().cloned().unwrap_or_default()
}

/// Add a rate limit at the mock (`dev/mock-ai/src/limits.rs`): `{"apiKey"?,
/// "match"?, "concurrent"?, "tokensPerMinute"?}`.
pub async fn mock_limit(rule: Value) {
    let r = http()
        .post(format!("{}/__mock/limits", mock()))
        .json(&rule)
        .send()
        .await
        .expect("mock answers");
    assert!(r.status().is_success());
}

/// The mock's rate limits, each with its buckets (peak in flight, admitted, refused).
pub async fn mock_limits() -> Value {
    http()
        .get(format!("{}/__mock/limits", mock()))
        .send()
        .await
        .expect("mock")
        .json()
        .await
        .expect("json")
}

/// One value read from the local D1 file (read-only; `D1_FILE` is set by `start_stack`).
pub fn d1_value(sql: &str) -> String {
    let db = std::env::var("D1_FILE").expect("D1_FILE is set by ./test.sh");
    let out = std::process::Command::new("sqlite3")
        .args(["-readonly", "-cmd", ".timeout 10000", &db, sql])
        .output()
        .expect("sqlite3 runs");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A tenant's booked and reserved spend today, and the reservations a job left open.
pub fn spend_of(tenant: &str, job_id: i64) -> (f64, f64, u64) {
    let row = d1_value(&format!(
        "SELECT coalesce(sum(spent_usd), 0) || ' ' || coalesce(sum(reserved_usd), 0) FROM tenant_daily_spend WHERE tenant = '{tenant}';"
    ));
    let mut parts = row.split(' ').map(|v| v.parse::<f64>().expect("a number"));
    let open = d1_value(&format!(
        "SELECT count(*) FROM spend_reservations WHERE job_id = {job_id};"
    ));
    (
        parts.next().unwrap_or(-1.0),
        parts.next().unwrap_or(-1.0),
        open.parse().expect("a count"),
    )
}

/// 1 000 prompt + 500 completion tokens of gpt-4o-mini (the mock's default usage).
pub const DEFAULT_CALL_COST: f64 = 0.00045;

/// A quiz template an admin creates for one test.
pub fn quiz_template(name: &str) -> Value {
    json!({"templateName": name, "structureType": "quiz", "description": "e2e",
        "aiPromptTemplate": "Quiz on {topic} for {audience}. {level_targets} Constraints: {constraints}."})
}

/// Create `quiz_template(name)` as an admin; the reply of the create call.
pub async fn create_quiz_template(name: &str) -> Reply {
    post(
        "/api/admin/templates",
        &Who::AdminSession,
        json!({"action": "create", "template": quiz_template(name)}),
    )
    .await
}

/// Read an SSE stream to its end: (event name, data, ms since opened).
pub async fn read_events(id: i64, who: &Who) -> (u16, String, Vec<(String, Value, u128)>) {
    let mut rb = http().get(format!("{}/api/jobs/{id}/events", base()));
    rb = match who {
        Who::Client => rb.header("X-API-Key", "dev-client-key"),
        Who::OtherClient => rb.header("X-API-Key", "dev-other-key"),
        _ => rb
            .header("Authorization", format!("Bearer {SECRET}"))
            .header("X-Worker-ID", "e2e"),
    };
    let mut response = rb.send().await.expect("events answer");
    // Timed from the stream's start (authentication before it is not the stream's cadence).
    let opened = std::time::Instant::now();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let mut events = Vec::new();
    let mut buffer = String::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let mut name = String::from("message");
            let mut data = Value::Null;
            for line in block.lines() {
                if let Some(n) = line.strip_prefix("event: ") {
                    name = n.to_string();
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data = serde_json::from_str(d).unwrap_or(Value::Null);
                }
            }
            events.push((name, data, opened.elapsed().as_millis()));
        }
    }
    (status, content_type, events)
}
