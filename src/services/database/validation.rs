//! `validation_results`: each verdict on a job (at its run or asked for
//! later), with what its review cost.

use super::{flag, i, n, on, ot, sql_flag, t, u, Database, Reservation, NOW};
use crate::services::ai_provider::Attempt;
use crate::services::validation::Verdict;
use crate::types::pricing::TokenUsage;
use bitware_kit::error::AppResult;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use worker::D1PreparedStatement;

/// A verdict as it is recorded.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NewValidation {
    pub level: u8,
    pub accuracy_percentage: f64,
    pub threshold: f64,
    pub passed: bool,
    pub criteria: Value,
    pub issues: Value,
    pub ai_feedback: Option<String>,
    pub tokens_input: u64,
    pub tokens_output: u64,
    pub cost_usd: Option<f64>,
}

impl NewValidation {
    /// A verdict and what its review's attempts cost.
    pub fn of(verdict: &Verdict, usage: &TokenUsage, cost_usd: Option<f64>) -> NewValidation {
        NewValidation {
            level: verdict.level,
            accuracy_percentage: verdict.accuracy_percentage,
            threshold: verdict.threshold,
            passed: verdict.passed,
            criteria: json!(verdict.criteria),
            issues: json!(verdict.issues),
            ai_feedback: verdict.ai_feedback.clone(),
            tokens_input: usage.input,
            tokens_output: usage.output,
            cost_usd,
        }
    }
}

/// A recorded verdict, as D1 returns it (`criteria` and `issues` are JSON text).
#[derive(Debug, Clone, Deserialize)]
pub struct ValidationRow {
    pub id: i64,
    pub job_id: i64,
    pub validation_level: u8,
    pub accuracy_percentage: f64,
    pub threshold: f64,
    #[serde(deserialize_with = "sql_flag")]
    pub passed: bool,
    pub criteria: String,
    pub issues: String,
    pub ai_feedback: Option<String>,
    pub tokens_input: u64,
    pub tokens_output: u64,
    pub cost_usd: Option<f64>,
    pub created_at: String,
}

impl Database {
    /// A stand-alone validation: its result, its attempts, the job's flag and
    /// the settlement of the review's reservation, together (the job's cost
    /// grows in the same batch that releases what the review held, so a
    /// concurrent review never sees neither).
    pub async fn record_validation(
        &self,
        job_id: i64,
        client_id: &str,
        v: &NewValidation,
        attempts: &[Attempt],
        reservation: Option<&Reservation>,
    ) -> AppResult<()> {
        let (usage, cost) = crate::services::ai_provider::totals(attempts);
        let mut statements = vec![
            self.validation_statement(job_id, client_id, v)?,
            self.jobs().job_usage_statement(job_id, &usage, cost)?,
            self.stmt(&format!("UPDATE granulation_jobs SET validation_passed = ?2, updated_at = {NOW} WHERE id = ?1"), &[i(job_id), flag(v.passed)])?,
        ];
        if !attempts.is_empty() {
            statements.push(
                self.jobs()
                    .attempts_statement(job_id, client_id, attempts)?,
            );
        }
        if let Some(r) = reservation {
            statements.extend(self.ledger().settle_statements(r, cost.unwrap_or(0.0))?);
        }
        self.batch("recording a validation", statements)
            .await
            .map(|_| ())
    }

    pub(super) fn validation_statement(
        &self,
        job_id: i64,
        client_id: &str,
        v: &NewValidation,
    ) -> AppResult<D1PreparedStatement> {
        self.stmt(
            "INSERT INTO validation_results (job_id, client_id, validation_level, accuracy_percentage, threshold, passed, criteria, issues, \
             ai_feedback, tokens_input, tokens_output, cost_usd) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            &[
                i(job_id),
                t(client_id),
                u(v.level as u64),
                n(v.accuracy_percentage),
                n(v.threshold),
                flag(v.passed),
                t(&v.criteria.to_string()),
                t(&v.issues.to_string()),
                ot(v.ai_feedback.as_deref()),
                u(v.tokens_input),
                u(v.tokens_output),
                on(v.cost_usd),
            ],
        )
    }

    /// The newest verdicts first, of one job or all, in the caller's scope.
    pub async fn validation_history(
        &self,
        scope: Option<&str>,
        job_id: Option<i64>,
        limit: u32,
    ) -> AppResult<Vec<ValidationRow>> {
        let columns = "v.id, v.job_id, v.validation_level, v.accuracy_percentage, v.threshold, v.passed, v.criteria, v.issues, v.ai_feedback, \
                       v.tokens_input, v.tokens_output, v.cost_usd, v.created_at";
        let limit = u(limit as u64);
        let stmt = match (scope, job_id) {
            (Some(c), Some(j)) => self.stmt(&format!("SELECT {columns} FROM validation_results v WHERE v.client_id = ?1 AND v.job_id = ?2 ORDER BY v.id DESC LIMIT ?3"), &[t(c), i(j), limit])?,
            (Some(c), None) => self.stmt(&format!("SELECT {columns} FROM validation_results v WHERE v.client_id = ?1 ORDER BY v.id DESC LIMIT ?2"), &[t(c), limit])?,
            (None, Some(j)) => self.stmt(&format!("SELECT {columns} FROM validation_results v WHERE v.job_id = ?1 ORDER BY v.id DESC LIMIT ?2"), &[i(j), limit])?,
            (None, None) => self.stmt(&format!("SELECT {columns} FROM validation_results v ORDER BY v.id DESC LIMIT ?1"), &[limit])?,
        };
        self.all("reading validation history", stmt).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recorded_verdict_carries_its_level_threshold_and_cost() {
        let verdict = Verdict {
            level: 2,
            accuracy_percentage: 81.5,
            threshold: 80.0,
            passed: true,
            criteria: vec![json!({"name": "logical_flow", "score": 0.8})],
            issues: vec!["thin".into()],
            ai_feedback: Some("ok".into()),
            reason: None,
        };
        let usage = TokenUsage {
            input: 100,
            output: 20,
            ..Default::default()
        };
        let v = NewValidation::of(&verdict, &usage, Some(0.01));
        assert_eq!((v.level, v.threshold, v.passed), (2, 80.0, true));
        assert_eq!((v.tokens_input, v.tokens_output), (100, 20));
        assert_eq!(v.issues, json!(["thin"]));
        assert_eq!(v.cost_usd, Some(0.01));
    }

    #[test]
    fn a_validation_row_decodes_with_integer_ids_and_a_boolean_verdict() {
        let r: ValidationRow = serde_json::from_value(json!({
            "id": 3, "job_id": 42, "validation_level": 1, "accuracy_percentage": 90.5, "threshold": 80,
            "passed": 1, "criteria": "[]", "issues": "[]", "ai_feedback": null, "tokens_input": 0,
            "tokens_output": 0, "cost_usd": null, "created_at": "x"
        }))
        .unwrap();
        assert_eq!(
            (r.id, r.job_id, r.validation_level, r.passed),
            (3, 42, 1, true)
        );
    }
}
