//! The chain's `Runtime` on Workers: `fetch` with an abort on timeout, the
//! Workers AI binding, `Delay` for backoff, `Date.now()` and `Math.random()`.

use super::wire::HttpCall;
use super::{HttpReply, Runtime, Transport};
use crate::services::timing::{now_ms, sleep, with_timeout};
use crate::types::env::AI;
use serde_json::Value;
use worker::{AbortController, Env, Fetch, Headers, Method, Request, RequestInit};

pub struct WorkerRuntime<'a> {
    pub env: &'a Env,
}

impl Runtime for WorkerRuntime<'_> {
    async fn http(&self, call: &HttpCall, timeout_ms: u64) -> Result<HttpReply, Transport> {
        let headers = Headers::new();
        for (name, value) in &call.headers {
            headers
                .set(name, value)
                .map_err(|_| Transport::Failed(format!("invalid header {name}")))?;
        }
        let mut init = RequestInit::new();
        init.with_method(Method::Post)
            .with_headers(headers)
            .with_body(Some(call.body.to_string().into()));
        let request = Request::new_with_init(&call.url, &init)
            .map_err(|_| Transport::Failed("invalid provider URL".into()))?;
        let controller = AbortController::default();
        let signal = controller.signal();
        let exchange = async {
            let mut response = Fetch::Request(request).send_with_signal(&signal).await?;
            let status = response.status_code();
            let retry_after = response.headers().get("retry-after").ok().flatten();
            let body = response.text().await?;
            Ok::<_, worker::Error>(HttpReply {
                status,
                retry_after,
                body,
            })
        };
        match with_timeout(timeout_ms, exchange).await {
            Some(Ok(reply)) => Ok(reply),
            // The error text can name the URL, never a key: keys travel in headers.
            Some(Err(e)) => Err(Transport::Failed(format!(
                "request failed: {}",
                e.to_string().chars().take(200).collect::<String>()
            ))),
            None => {
                controller.abort();
                Err(Transport::Timeout)
            }
        }
    }

    async fn workers_ai(
        &self,
        model: &str,
        input: &Value,
        timeout_ms: u64,
    ) -> Result<Value, Transport> {
        let ai = self
            .env
            .ai(AI)
            .map_err(|_| Transport::Failed("the AI binding is missing".into()))?;
        match with_timeout(timeout_ms, ai.run::<_, Value>(model, input)).await {
            Some(Ok(v)) => Ok(v),
            Some(Err(e)) => {
                crate::error::worker_log(&format!(
                    "Workers AI ({model}) failed: {}",
                    super::wire::redact_credentials(
                        &e.to_string().chars().take(300).collect::<String>()
                    )
                ));
                Err(Transport::Failed(
                    "Workers AI failed (details in the worker log)".into(),
                ))
            }
            None => Err(Transport::Timeout),
        }
    }

    async fn sleep(&self, ms: u64) {
        sleep(ms).await
    }

    fn now_ms(&self) -> u64 {
        now_ms()
    }

    fn random(&self) -> f64 {
        js_sys::Math::random()
    }
}
