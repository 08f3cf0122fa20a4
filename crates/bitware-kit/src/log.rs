//! One structured JSON line per request (seen by `wrangler tail`, Workers
//! Logs with `[observability]`, and the local log file of ./dev.sh).
//!
//! Only figures and identifiers the worker itself made or routed on: never a
//! header value, a body or a query string, so never a credential.

use serde::Serialize;
use serde_json::Value;

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestLog {
    pub level: &'static str,
    pub event: &'static str,
    pub request_id: String,
    pub method: String,
    /// The route pattern (`/api/jobs/{id}`), or the raw path when none matched.
    pub route: String,
    pub status: u16,
    pub ms: u64,
    /// The route's access tier: public, authenticated or admin.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access: Option<&'static str>,
    /// The caller's billing tier (basic, standard, premium, enterprise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tier: Option<&'static str>,
    /// How the caller authenticated: client, session or worker.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub caller: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job_id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tokens: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<&'static str>,
}

impl RequestLog {
    pub fn new(request_id: &str, method: &str, path: &str) -> RequestLog {
        RequestLog {
            level: "info",
            event: "request",
            request_id: request_id.to_string(),
            method: method.to_string(),
            route: path.to_string(),
            ..Default::default()
        }
    }

    /// Job id, tokens and cost from a reply body (the execute envelope, a job
    /// answer), when it has them.
    pub fn note_body(&mut self, body: &Value) {
        let job = body["output"]["jobId"]
            .as_i64()
            .or_else(|| body["jobId"].as_i64())
            .or_else(|| body["job"]["id"].as_i64());
        self.job_id = job;
        let tokens = &body["usage"]["tokens"];
        if tokens.is_object() {
            self.tokens = Some(tokens.clone());
        }
        self.cost_usd = body["cost"].as_f64();
    }

    pub fn line(&mut self, status: u16, ms: u64) -> String {
        self.status = status;
        self.ms = ms;
        if status >= 500 {
            self.level = "error";
        } else if status >= 400 {
            self.level = "warn";
        }
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_line_is_json_with_the_request_figures() {
        let mut log = RequestLog::new("rid-1", "POST", "/api/execute");
        log.note_body(&json!({"output": {"jobId": 7}, "usage": {"tokens": {"input": 10, "output": 20}}, "cost": 0.5}));
        log.tier = Some("standard");
        let line: Value = serde_json::from_str(&log.line(200, 12)).unwrap();
        assert_eq!(line["requestId"], "rid-1");
        assert_eq!(line["route"], "/api/execute");
        assert_eq!(
            (line["status"].as_u64(), line["ms"].as_u64()),
            (Some(200), Some(12))
        );
        assert_eq!(line["jobId"], 7);
        assert_eq!(line["tokens"]["output"], 20);
        assert_eq!(line["costUsd"], 0.5);
        assert_eq!(line["tier"], "standard");
        assert_eq!(line["level"], "info");
        let mut err = RequestLog::new("rid-2", "GET", "/nope");
        let line: Value = serde_json::from_str(&err.line(503, 1)).unwrap();
        assert_eq!(line["level"], "error");
        assert!(line.get("jobId").is_none());
    }
}
