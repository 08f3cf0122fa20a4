//! Alerts (issue 27): the signals an operator watches, computed over a window
//! from what D1 records, each against a warning and a firing threshold.
//!
//! | signal | from | value |
//! |---|---|---|
//! | `server_error_rate` | `request_counts` | 5xx answers / requests to authenticated and admin routes |
//! | `provider_error_rate` (per provider) | `resource_consumption` | attempts that failed at the provider (HTTP error, timeout, network) / attempts |
//! | `job_duration_p95_ms` | `granulation_jobs` | p95 of `processing_time_ms` of jobs completed in the window |
//! | `jobs_abandoned` | `granulation_jobs` | jobs failed `abandoned` (runner gone past its deadline) in the window |
//! | `jobs_dead_lettered` | `granulation_jobs` | jobs failed `dead_lettered` (the queue gave up) in the window |
//! | `spend_of_cap` (per tier) | `tenant_daily_spend` | today's highest tenant spend + reservations / the tier's daily cap |
//! | `kam_failures` | `request_counts` | requests refused because KAM was unavailable |
//!
//! A value at or past `firing` fires, at or past `warning` warns; a signal
//! with no samples (`value` null) is ok. The thresholds are the defaults
//! below, overridden by the `ALERT_THRESHOLDS` JSON var (docs/runbook.md).
//! The pure part (thresholds, evaluation, log lines) is unit-tested natively.

use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Ok,
    Warning,
    Firing,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Ok => "ok",
            State::Warning => "warning",
            State::Firing => "firing",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Threshold {
    pub warning: f64,
    pub firing: f64,
}

impl Threshold {
    const fn new(warning: f64, firing: f64) -> Threshold {
        Threshold { warning, firing }
    }

    pub fn state(&self, value: Option<f64>) -> State {
        match value {
            Some(v) if v >= self.firing => State::Firing,
            Some(v) if v >= self.warning => State::Warning,
            _ => State::Ok,
        }
    }
}

/// Every signal's threshold (`ALERT_THRESHOLDS` names them in camelCase).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Thresholds {
    pub server_error_rate: Threshold,
    pub provider_error_rate: Threshold,
    pub job_duration_p95_ms: Threshold,
    pub jobs_abandoned: Threshold,
    pub jobs_dead_lettered: Threshold,
    pub spend_of_cap: Threshold,
    pub kam_failures: Threshold,
}

impl Default for Thresholds {
    fn default() -> Thresholds {
        Thresholds {
            server_error_rate: Threshold::new(0.01, 0.05),
            provider_error_rate: Threshold::new(0.10, 0.25),
            job_duration_p95_ms: Threshold::new(120_000.0, 300_000.0),
            jobs_abandoned: Threshold::new(1.0, 5.0),
            // A dead-lettered job is a client's job lost after every queue retry.
            jobs_dead_lettered: Threshold::new(1.0, 1.0),
            spend_of_cap: Threshold::new(0.8, 1.0),
            kam_failures: Threshold::new(1.0, 10.0),
        }
    }
}

/// The alerts' configuration: thresholds and the default window.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertConfig {
    pub thresholds: Thresholds,
    pub window_seconds: u32,
    /// Set when `ALERT_THRESHOLDS` is invalid (defaults are used, /health says so).
    pub error: Option<String>,
}

pub const DEFAULT_WINDOW_SECONDS: u32 = 3_600;
pub const MAX_WINDOW_SECONDS: u32 = 7 * 86_400;

impl Default for AlertConfig {
    fn default() -> AlertConfig {
        AlertConfig {
            thresholds: Thresholds::default(),
            window_seconds: DEFAULT_WINDOW_SECONDS,
            error: None,
        }
    }
}

impl AlertConfig {
    /// From the `ALERT_THRESHOLDS` JSON (a partial map over the defaults) and
    /// `ALERT_WINDOW_SECONDS`; an invalid value keeps the defaults and says why.
    pub fn from_vars(thresholds: Option<&str>, window_seconds: Option<&str>) -> AlertConfig {
        let mut config = AlertConfig::default();
        let mut problems = Vec::new();
        if let Some(json) = thresholds.filter(|s| !s.trim().is_empty()) {
            match serde_json::from_str::<Thresholds>(json) {
                Ok(t) => match t.invalid() {
                    None => config.thresholds = t,
                    Some(name) => problems.push(format!(
                        "ALERT_THRESHOLDS.{name}: warning and firing must be numbers >= 0 with warning <= firing"
                    )),
                },
                Err(e) => problems.push(format!("ALERT_THRESHOLDS is not valid: {e}")),
            }
        }
        if let Some(w) = window_seconds {
            match w.trim().parse::<u32>() {
                Ok(n) if (1..=MAX_WINDOW_SECONDS).contains(&n) => config.window_seconds = n,
                _ => problems.push(format!(
                    "ALERT_WINDOW_SECONDS must be an integer from 1 to {MAX_WINDOW_SECONDS}"
                )),
            }
        }
        if !problems.is_empty() {
            config.error = Some(problems.join("; "));
        }
        config
    }
}

impl Thresholds {
    fn named(&self) -> [(&'static str, Threshold); 7] {
        [
            ("serverErrorRate", self.server_error_rate),
            ("providerErrorRate", self.provider_error_rate),
            ("jobDurationP95Ms", self.job_duration_p95_ms),
            ("jobsAbandoned", self.jobs_abandoned),
            ("jobsDeadLettered", self.jobs_dead_lettered),
            ("spendOfCap", self.spend_of_cap),
            ("kamFailures", self.kam_failures),
        ]
    }

    /// The first threshold that makes no sense.
    fn invalid(&self) -> Option<&'static str> {
        self.named()
            .into_iter()
            .find(|(_, t)| !(t.warning >= 0.0 && t.firing >= t.warning && t.firing.is_finite()))
            .map(|(name, _)| name)
    }
}

/// What D1 recorded in the window (the reads of `database::alerts`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Observed {
    pub requests: u64,
    pub server_errors: u64,
    pub kam_failures: u64,
    /// Provider → (attempts, provider errors).
    pub providers: BTreeMap<String, (u64, u64)>,
    pub completed_jobs: u64,
    pub job_duration_p95_ms: Option<f64>,
    pub jobs_abandoned: u64,
    pub jobs_dead_lettered: u64,
    /// Tier → (tenants with spend today, the highest tenant's spend + reservations in USD).
    pub spend_today: BTreeMap<String, (u64, f64)>,
}

/// One signal's verdict.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Signal {
    pub name: &'static str,
    /// The provider or tier of a per-provider or per-tier signal.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    pub state: State,
    pub value: Option<f64>,
    pub unit: &'static str,
    /// What the value is computed over (requests, attempts, jobs, tenants).
    pub samples: u64,
    pub threshold: Threshold,
}

impl Signal {
    /// `name` or `name:subject`.
    pub fn key(&self) -> String {
        match &self.subject {
            Some(s) => format!("{}:{s}", self.name),
            None => self.name.to_string(),
        }
    }
}

fn rate(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| ((part as f64 / whole as f64) * 1e4).round() / 1e4)
}

fn signal(
    name: &'static str,
    subject: Option<String>,
    value: Option<f64>,
    unit: &'static str,
    samples: u64,
    threshold: Threshold,
) -> Signal {
    Signal {
        name,
        subject,
        state: threshold.state(value),
        value,
        unit,
        samples,
        threshold,
    }
}

/// Every signal of `observed` against `t`; `caps` is each tier's daily cap
/// (a tier without spend today is listed, ok, with no value).
pub fn evaluate(observed: &Observed, t: &Thresholds, caps: &[(&str, f64)]) -> Vec<Signal> {
    let o = observed;
    let mut signals = vec![signal(
        "server_error_rate",
        None,
        rate(o.server_errors, o.requests),
        "ratio",
        o.requests,
        t.server_error_rate,
    )];
    for (provider, (attempts, errors)) in &o.providers {
        signals.push(signal(
            "provider_error_rate",
            Some(provider.clone()),
            rate(*errors, *attempts),
            "ratio",
            *attempts,
            t.provider_error_rate,
        ));
    }
    signals.push(signal(
        "job_duration_p95_ms",
        None,
        o.job_duration_p95_ms,
        "ms",
        o.completed_jobs,
        t.job_duration_p95_ms,
    ));
    signals.push(signal(
        "jobs_abandoned",
        None,
        Some(o.jobs_abandoned as f64),
        "jobs",
        o.jobs_abandoned,
        t.jobs_abandoned,
    ));
    signals.push(signal(
        "jobs_dead_lettered",
        None,
        Some(o.jobs_dead_lettered as f64),
        "jobs",
        o.jobs_dead_lettered,
        t.jobs_dead_lettered,
    ));
    for (tier, cap) in caps {
        let (tenants, highest) = o.spend_today.get(*tier).copied().unwrap_or((0, 0.0));
        // To 1e-6: a day's first jobs are a tiny share of a cap.
        let value = (tenants > 0 && *cap > 0.0).then(|| ((highest / cap) * 1e6).round() / 1e6);
        signals.push(signal(
            "spend_of_cap",
            Some(tier.to_string()),
            value,
            "ratio",
            tenants,
            t.spend_of_cap,
        ));
    }
    signals.push(signal(
        "kam_failures",
        None,
        Some(o.kam_failures as f64),
        "requests",
        o.requests,
        t.kam_failures,
    ));
    signals
}

/// `GET /api/admin/alerts`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub window_seconds: u32,
    pub since: String,
    pub generated_at: String,
    /// The worst state of any signal.
    pub state: State,
    /// Keys (`name` or `name:subject`) of the signals firing, then warning.
    pub firing: Vec<String>,
    pub warning: Vec<String>,
    pub signals: Vec<Signal>,
}

impl Report {
    pub fn new(
        window_seconds: u32,
        since: String,
        generated_at: String,
        signals: Vec<Signal>,
    ) -> Report {
        let keys = |s: State| -> Vec<String> {
            signals
                .iter()
                .filter(|x| x.state == s)
                .map(Signal::key)
                .collect()
        };
        Report {
            window_seconds,
            since,
            generated_at,
            state: signals.iter().map(|s| s.state).max().unwrap_or(State::Ok),
            firing: keys(State::Firing),
            warning: keys(State::Warning),
            signals,
        }
    }

    /// One JSON line per signal (`event: "alert"`) for Workers Logs, at
    /// `error` when firing, `warn` when warning, `info` when ok.
    pub fn log_lines(&self, source: &str) -> Vec<String> {
        self.signals
            .iter()
            .map(|s| {
                let level = match s.state {
                    State::Firing => "error",
                    State::Warning => "warn",
                    State::Ok => "info",
                };
                json!({
                    "level": level, "event": "alert", "source": source,
                    "signal": s.name, "subject": s.subject, "state": s.state,
                    "value": s.value, "unit": s.unit, "samples": s.samples,
                    "warning": s.threshold.warning, "firing": s.threshold.firing,
                    "windowSeconds": self.window_seconds,
                })
                .to_string()
            })
            .collect()
    }
}

pub use reading::{prune, record_request, report};

/// The D1 side: reading the window, and recording each request's outcome.
mod reading {
    use super::{evaluate, Report};
    use crate::services::database::Database;
    use crate::services::timing::{iso_of, now_ms};
    use crate::types::env::App;
    use bitware_kit::error::AppResult;
    use bitware_kit::limits::Tier;

    /// The signals over the last `window_seconds`.
    pub async fn report(app: &App, window_seconds: u32) -> AppResult<Report> {
        let now = now_ms() as i64;
        let since = iso_of(now - window_seconds as i64 * 1_000);
        let today = iso_of(now)[..10].to_string();
        let observed = Database::new(app)?.alert_window(&since, &today).await?;
        let caps: Vec<(&str, f64)> = Tier::ALL
            .iter()
            .map(|t| (t.as_str(), app.config.limits.daily_cap(*t)))
            .collect();
        let signals = evaluate(&observed, &app.config.alerts.thresholds, &caps);
        Ok(Report::new(window_seconds, since, iso_of(now), signals))
    }

    /// Request counts older than the longest window (and a day) are deleted.
    pub async fn prune(app: &App) -> AppResult<usize> {
        let keep_ms = (super::MAX_WINDOW_SECONDS as i64 + 86_400) * 1_000;
        Database::new(app)?
            .prune_request_counts(&iso_of(now_ms() as i64 - keep_ms))
            .await
    }

    /// Count one request to an authenticated or admin route in its
    /// 10-second bucket (after the response: `waitUntil`). A failed write is
    /// logged, never the request's problem.
    pub async fn record_request(app: &App, status: u16, error_code: Option<&str>) {
        let bucket = iso_of(now_ms() as i64)[..18].to_string();
        let kam_failure = error_code == Some("kam_unavailable");
        let result = match Database::new(app) {
            Ok(db) => db.count_request(&bucket, status >= 500, kam_failure).await,
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            worker::console_error!("alerts: counting a request failed: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    const CAPS: [(&str, f64); 2] = [("basic", 5.0), ("premium", 200.0)];

    fn by_key(signals: &[Signal], key: &str) -> Signal {
        signals.iter().find(|s| s.key() == key).cloned().unwrap()
    }

    #[test]
    fn a_threshold_warns_then_fires_and_no_value_is_ok() {
        let t = Threshold::new(0.1, 0.25);
        assert_eq!(t.state(None), State::Ok);
        assert_eq!(t.state(Some(0.0999)), State::Ok);
        assert_eq!(t.state(Some(0.1)), State::Warning);
        assert_eq!(t.state(Some(0.2499)), State::Warning);
        assert_eq!(t.state(Some(0.25)), State::Firing);
        // warning == firing: straight to firing.
        assert_eq!(Threshold::new(1.0, 1.0).state(Some(1.0)), State::Firing);
    }

    #[test]
    fn quiet_records_are_all_ok_and_every_signal_is_listed() {
        let signals = evaluate(&Observed::default(), &Thresholds::default(), &CAPS);
        let names: Vec<String> = signals.iter().map(Signal::key).collect();
        assert_eq!(
            names,
            [
                "server_error_rate",
                "job_duration_p95_ms",
                "jobs_abandoned",
                "jobs_dead_lettered",
                "spend_of_cap:basic",
                "spend_of_cap:premium",
                "kam_failures"
            ]
        );
        assert!(signals.iter().all(|s| s.state == State::Ok));
        let report = Report::new(60, "a".into(), "b".into(), signals);
        assert_eq!((report.state, report.firing.len()), (State::Ok, 0));
    }

    #[test]
    fn each_signal_is_computed_from_its_records() {
        let mut o = Observed {
            requests: 200,
            server_errors: 4,
            kam_failures: 12,
            completed_jobs: 10,
            job_duration_p95_ms: Some(150_000.0),
            jobs_abandoned: 0,
            jobs_dead_lettered: 1,
            ..Default::default()
        };
        o.providers.insert("openai".into(), (8, 8));
        o.providers.insert("anthropic".into(), (10, 1));
        o.spend_today.insert("basic".into(), (3, 4.5));
        o.spend_today.insert("premium".into(), (1, 250.0));
        let s = evaluate(&o, &Thresholds::default(), &CAPS);
        let got = |k: &str| {
            let x = by_key(&s, k);
            (x.value, x.state, x.samples)
        };
        assert_eq!(got("server_error_rate"), (Some(0.02), State::Warning, 200));
        assert_eq!(
            got("provider_error_rate:openai"),
            (Some(1.0), State::Firing, 8)
        );
        assert_eq!(
            got("provider_error_rate:anthropic"),
            (Some(0.1), State::Warning, 10)
        );
        assert_eq!(
            got("job_duration_p95_ms"),
            (Some(150_000.0), State::Warning, 10)
        );
        assert_eq!(got("jobs_abandoned"), (Some(0.0), State::Ok, 0));
        assert_eq!(got("jobs_dead_lettered"), (Some(1.0), State::Firing, 1));
        assert_eq!(got("spend_of_cap:basic"), (Some(0.9), State::Warning, 3));
        assert_eq!(got("spend_of_cap:premium"), (Some(1.25), State::Firing, 1));
        assert_eq!(got("kam_failures"), (Some(12.0), State::Firing, 200));
        o.spend_today.insert("basic".into(), (1, 0.00045));
        let s2 = evaluate(&o, &Thresholds::default(), &CAPS);
        assert_eq!(by_key(&s2, "spend_of_cap:basic").value, Some(0.00009));
        let report = Report::new(3600, "s".into(), "g".into(), s);
        assert_eq!(report.state, State::Firing);
        assert_eq!(
            report.firing,
            [
                "provider_error_rate:openai",
                "jobs_dead_lettered",
                "spend_of_cap:premium",
                "kam_failures"
            ]
        );
        assert_eq!(report.warning.len(), 4);
    }

    #[test]
    fn log_lines_carry_each_signal_for_workers_logs() {
        let mut o = Observed::default();
        o.providers.insert("openai".into(), (4, 2));
        let report = Report::new(
            300,
            "s".into(),
            "g".into(),
            evaluate(&o, &Thresholds::default(), &[]),
        );
        let lines: Vec<Value> = report
            .log_lines("cron")
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), report.signals.len());
        let openai = lines.iter().find(|l| l["subject"] == "openai").unwrap();
        assert_eq!(openai["event"], "alert");
        assert_eq!(openai["signal"], "provider_error_rate");
        assert_eq!(
            (openai["state"].as_str(), openai["level"].as_str()),
            (Some("firing"), Some("error"))
        );
        assert_eq!(openai["value"], 0.5);
        assert_eq!(
            (openai["firing"].as_f64(), openai["windowSeconds"].as_u64()),
            (Some(0.25), Some(300))
        );
        let ok = lines
            .iter()
            .find(|l| l["signal"] == "jobs_abandoned")
            .unwrap();
        assert_eq!(
            (ok["level"].as_str(), ok["source"].as_str()),
            (Some("info"), Some("cron"))
        );
    }

    #[test]
    fn thresholds_and_window_come_from_vars_over_the_defaults() {
        let c = AlertConfig::from_vars(
            Some(r#"{"providerErrorRate": {"warning": 0.5, "firing": 0.9}}"#),
            Some("600"),
        );
        assert_eq!(c.error, None);
        assert_eq!(c.window_seconds, 600);
        assert_eq!(c.thresholds.provider_error_rate, Threshold::new(0.5, 0.9));
        assert_eq!(
            c.thresholds.server_error_rate,
            Thresholds::default().server_error_rate
        );
        assert_eq!(AlertConfig::from_vars(None, None), AlertConfig::default());
    }

    #[test]
    fn invalid_vars_keep_the_defaults_and_say_what_is_wrong() {
        for (json, want) in [
            (
                r#"{"nope": {"warning": 1, "firing": 2}}"#,
                "unknown field `nope`",
            ),
            (
                r#"{"kamFailures": {"warning": 5, "firing": 2}}"#,
                "ALERT_THRESHOLDS.kamFailures",
            ),
            (
                r#"{"spendOfCap": {"warning": -1, "firing": 2}}"#,
                "ALERT_THRESHOLDS.spendOfCap",
            ),
            ("[1]", "ALERT_THRESHOLDS is not valid"),
        ] {
            let c = AlertConfig::from_vars(Some(json), None);
            assert_eq!(c.thresholds, Thresholds::default(), "{json}");
            assert!(
                c.error.as_deref().unwrap_or("").contains(want),
                "{json}: {:?}",
                c.error
            );
        }
        for window in ["0", "abc", "604801"] {
            let c = AlertConfig::from_vars(None, Some(window));
            assert_eq!(c.window_seconds, DEFAULT_WINDOW_SECONDS);
            assert!(
                c.error.unwrap().contains("ALERT_WINDOW_SECONDS"),
                "{window}"
            );
        }
    }
}
