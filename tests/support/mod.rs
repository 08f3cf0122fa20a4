//! Helpers for the end-to-end tests: the running worker (`GRANULATOR_URL`),
//! the mock AI provider (`MOCK_URL`), and every credential tier.
//! `./test.sh` starts both; without them these tests fail rather than pass.

#![allow(dead_code)]

use reqwest::header::HeaderMap;
use reqwest::Method;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

pub const SECRET: &str = "dev-shared-secret";

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: run the end-to-end tests through ./test.sh, which starts the worker and the mock AI provider"))
}

pub fn base() -> String {
    env("GRANULATOR_URL")
}

pub fn mock() -> String {
    env("MOCK_URL")
}

/// A client per call: each `#[tokio::test]` has its own runtime, and pooled
/// connections must not outlive the runtime that opened them.
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(60))
        .build()
        .expect("client")
}

/// A marker unique to one test, used as topic text and as mock script key.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}-{}-{}",
        nanos % 1_000_000_000_000,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

#[derive(Debug, Clone, PartialEq)]
pub enum Who {
    Nobody,
    BadKey,
    Client,
    OtherClient,
    UserSession,
    AdminSession,
    Worker,
    /// Worker credentials acting for a client (`X-Client-ID`).
    WorkerFor(String),
    WorkerWrongSecret,
    ApiKey(String),
    Session(String),
    /// A dashboard session that KAM answers without a client id, whose user
    /// id is deliberately `dev-client` (the id of another tenant's client).
    OrphanSession,
}

impl Who {
    pub const MATRIX: [Who; 9] = [
        Who::Nobody,
        Who::BadKey,
        Who::Client,
        Who::OtherClient,
        Who::UserSession,
        Who::AdminSession,
        Who::OrphanSession,
        Who::Worker,
        Who::WorkerWrongSecret,
    ];

    fn apply(&self, rb: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match self {
            Who::Nobody => rb,
            Who::BadKey => rb.header("X-API-Key", "not-a-key"),
            Who::Client => rb.header("X-API-Key", "dev-client-key"),
            Who::OtherClient => rb.header("X-API-Key", "dev-other-key"),
            Who::UserSession => rb.header("x-bitware-session-token", "dev-user-session"),
            Who::AdminSession => rb.header("x-bitware-session-token", "dev-admin-session"),
            Who::Worker => rb
                .header("Authorization", format!("Bearer {SECRET}"))
                .header("X-Worker-ID", "e2e-tests"),
            Who::WorkerFor(client) => rb
                .header("Authorization", format!("Bearer {SECRET}"))
                .header("X-Worker-ID", "e2e-tests")
                .header("X-Client-ID", client),
            Who::WorkerWrongSecret => rb
                .header("Authorization", "Bearer wrong-secret")
                .header("X-Worker-ID", "e2e-tests"),
            Who::ApiKey(k) => rb.header("X-API-Key", k),
            Who::Session(t) => rb.header("x-bitware-session-token", t),
            Who::OrphanSession => rb.header("x-bitware-session-token", "dev-orphan-session"),
        }
    }
}

pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// What `wrangler dev` answers when Miniflare restarted a crashed local
/// workerd under a request (a local-runtime fault, not the worker's answer).
const LOCAL_RUNTIME_RESTART: &str = "Your worker restarted mid-request";

pub async fn send(
    method: Method,
    path: &str,
    who: &Who,
    body: Option<&Value>,
    headers: &[(&str, &str)],
) -> Reply {
    // Safe to send again: reads, and requests that carry an idempotency key.
    let repeatable = method == Method::GET
        || headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("x-request-id"));
    let mut tries = 0;
    loop {
        tries += 1;
        let mut rb = who.apply(http().request(method.clone(), format!("{}{path}", base())));
        for (k, v) in headers {
            rb = rb.header(*k, *v);
        }
        if let Some(b) = body {
            rb = rb.json(b);
        }
        let response = rb.send().await.expect("the worker answers");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap_or_default();
        if text.starts_with(LOCAL_RUNTIME_RESTART) && repeatable && tries < 3 {
            eprintln!("{method} {path}: the local runtime restarted mid-request; sent again (try {tries})");
            continue;
        }
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text)
                .unwrap_or_else(|_| panic!("{path} answered non-JSON: {text}"))
        };
        return Reply {
            status,
            headers,
            body,
        };
    }
}

pub async fn get(path: &str, who: &Who) -> Reply {
    send(Method::GET, path, who, None, &[]).await
}

pub async fn post(path: &str, who: &Who, body: Value) -> Reply {
    send(Method::POST, path, who, Some(&body), &[]).await
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

pub fn assert_error(reply: &Reply, status: u16, code: &str) {
    assert_eq!(reply.status, status, "body: {}", reply.body);
    assert_eq!(reply.body["code"], code, "body: {}", reply.body);
    assert_eq!(reply.body["status"], status);
    assert!(reply.body["error"].as_str().is_some_and(|e| !e.is_empty()));
}

/// 1 000 prompt + 500 completion tokens of gpt-4o-mini (the mock's default usage).
pub const DEFAULT_CALL_COST: f64 = 0.00045;

pub fn approx(a: &Value, b: f64) -> bool {
    a.as_f64().is_some_and(|a| (a - b).abs() < 1e-9)
}

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
