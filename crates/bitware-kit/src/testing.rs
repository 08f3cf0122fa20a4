//! The end-to-end harness every worker's suite uses (`test-support`
//! feature, host only): the running worker (`WORKER_URL`), requests as every
//! credential tier of the KAM stand-in (`dev/kam`), and the error model's
//! assertions. The worker's scripts start the stack (`scripts/kit.sh`);
//! without it these helpers fail rather than pass.

// A harness for tests: a failed step panics, as a test's assertions do.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use reqwest::header::HeaderMap;
use reqwest::Method;
use serde_json::Value;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

pub const SECRET: &str = "dev-shared-secret";

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: run the end-to-end tests through the worker's ./test.sh, which starts it"))
}

/// The worker under test.
pub fn base() -> String {
    env("WORKER_URL")
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

pub fn assert_error(reply: &Reply, status: u16, code: &str) {
    assert_eq!(reply.status, status, "body: {}", reply.body);
    assert_eq!(reply.body["code"], code, "body: {}", reply.body);
    assert_eq!(reply.body["status"], status);
    assert!(reply.body["error"].as_str().is_some_and(|e| !e.is_empty()));
}

pub fn approx(a: &Value, b: f64) -> bool {
    a.as_f64().is_some_and(|a| (a - b).abs() < 1e-9)
}

/// Poll job `job_id`'s status as `who` until it leaves `processing` (at
/// most `secs`); its last status.
pub async fn until_ended(job_id: i64, who: &Who, secs: u64) -> Value {
    for _ in 0..secs * 4 {
        let s = get(&format!("/api/jobs/{job_id}/status"), who).await;
        assert_eq!(s.status, 200, "{}", s.body);
        if s.body["status"] != "processing" {
            return s.body;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    panic!("job {job_id} still processing after {secs} s");
}

/// The whole events stream of job `job_id` as `who` sees it, as text (it
/// ends with the job); the answer must be a `text/event-stream`.
pub async fn events_text(job_id: i64, who: &Who) -> String {
    let r = who
        .apply(http().get(format!("{}/api/jobs/{job_id}/events", base())))
        .send()
        .await
        .expect("the worker answers");
    assert_eq!(r.status().as_u16(), 200);
    assert!(r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream")));
    r.text().await.expect("the stream ends")
}

/// The repository's mock AI provider (`dev/mock-ai`), at `MOCK_URL` (the
/// worker's test stack starts it): scripted answers per prompt marker and
/// the log of the calls it saw.
pub mod mock {
    use super::http;
    use serde_json::{json, Value};

    pub fn url() -> String {
        std::env::var("MOCK_URL").expect("MOCK_URL (the test stack starts the mock AI provider)")
    }

    /// Queue `steps` for the requests whose prompt holds `key` (a test's
    /// unique marker: parallel tests never share a script).
    pub async fn script(key: &str, steps: Value) {
        let r = http()
            .post(format!("{}/__mock/script", url()))
            .json(&json!({"key": key, "steps": steps}))
            .send()
            .await
            .expect("the mock answers");
        assert!(r.status().is_success());
    }

    /// The model calls the mock saw for prompts holding `key`.
    pub async fn calls(key: &str) -> Vec<Value> {
        let r: Value = http()
            .get(format!("{}/__mock/calls", url()))
            .query(&[("key", key)])
            .send()
            .await
            .expect("the mock answers")
            .json()
            .await
            .expect("json");
        r["calls"].as_array().cloned().unwrap_or_default()
    }

    /// A valid answer streamed at `tps` tokens a second (0: at once), billed
    /// 120 input and `output` output tokens.
    pub fn streamed(tps: u32, output: u32) -> Value {
        json!({"kind": "valid", "tokensPerSecond": tps, "usage": {"input": 120, "output": output}})
    }
}
