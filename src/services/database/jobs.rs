//! `granulation_jobs` read back as the API shows it: one job, a page of
//! jobs, its JSON payload. What a running job writes (claims, start,
//! progress, stage, endings) is the kit's job store (`Database::jobs`).

use super::{i, sql_bool, t, u, Database};
use crate::types::job::{JobStatus, RunMode, Stage};
use crate::types::structure::StructureType;
use bitware_kit::error::AppResult;
use serde::Deserialize;

/// A job as the API reads it (heavy JSON columns are read separately).
#[derive(Debug, Clone, Deserialize)]
pub struct JobRow {
    pub id: i64,
    pub client_id: String,
    pub execution_id: String,
    pub topic: String,
    pub structure_type: String,
    pub granularity_level: u8,
    pub target_audience: String,
    pub template_id: Option<i64>,
    pub template_name: Option<String>,
    pub status: JobStatus,
    pub stage: Stage,
    pub run_count: u32,
    pub provider: Option<String>,
    pub model: Option<String>,
    pub tokens_input: u64,
    pub tokens_output: u64,
    pub tokens_cached: u64,
    pub cost_usd: Option<f64>,
    pub quality_score: Option<f64>,
    #[serde(deserialize_with = "sql_bool")]
    pub validation_passed: Option<bool>,
    pub total_elements: Option<u64>,
    pub estimated_total_words: Option<u64>,
    pub storage_type: Option<String>,
    pub storage_location: Option<String>,
    pub structure_bytes: Option<u64>,
    pub processing_time_ms: Option<u64>,
    pub failure_code: Option<String>,
    pub failure_reason: Option<String>,
    pub deadline_at: u64,
    pub created_at: String,
    pub updated_at: String,
    pub completed_at: Option<String>,
    pub run_mode: RunMode,
    pub submitted_at_ms: Option<u64>,
    pub started_at_ms: Option<u64>,
    pub heartbeat_at_ms: Option<u64>,
    pub progress_tokens: u64,
    pub progress_elements: u64,
    pub expected_tokens: Option<u64>,
    pub expected_elements: Option<u64>,
    #[serde(default)]
    pub progress_branches_done: u64,
    #[serde(default)]
    pub progress_branches_total: u64,
    /// Who cancelled the job (`client:…`, `user:…`, `admin:…`, `worker:…`) and when.
    #[serde(default)]
    pub cancelled_by: Option<String>,
    #[serde(default)]
    pub cancelled_at: Option<String>,
}

const JOB_COLUMNS: &str = "id, client_id, execution_id, topic, structure_type, granularity_level, target_audience, template_id, \
    template_name, status, stage, run_count, provider, model, tokens_input, tokens_output, tokens_cached, cost_usd, quality_score, \
    validation_passed, total_elements, estimated_total_words, storage_type, storage_location, structure_bytes, processing_time_ms, \
    failure_code, failure_reason, deadline_at, created_at, updated_at, completed_at, run_mode, submitted_at_ms, started_at_ms, \
    heartbeat_at_ms, progress_tokens, progress_elements, expected_tokens, expected_elements, progress_branches_done, \
    progress_branches_total, cancelled_by, cancelled_at";

/// The JSON text columns of a job: its request, stored result and root fields.
#[derive(Debug, Clone, Deserialize)]
pub struct JobPayload {
    pub request_params: String,
    pub result_json: Option<String>,
    pub structure_root: Option<String>,
}

#[derive(Debug, Default)]
pub struct JobFilter<'a> {
    pub scope: Option<&'a str>,
    pub status: Option<JobStatus>,
    pub structure_type: Option<StructureType>,
    pub from: Option<&'a str>,
    pub to: Option<&'a str>,
    pub limit: u32,
    pub offset: u32,
}

impl Database {
    pub async fn job(&self, job_id: i64, scope: Option<&str>) -> AppResult<Option<JobRow>> {
        let stmt = match scope {
            Some(client) => self.stmt(
                &format!(
                    "SELECT {JOB_COLUMNS} FROM granulation_jobs WHERE id = ?1 AND client_id = ?2"
                ),
                &[i(job_id), t(client)],
            )?,
            None => self.stmt(
                &format!("SELECT {JOB_COLUMNS} FROM granulation_jobs WHERE id = ?1"),
                &[i(job_id)],
            )?,
        };
        self.first("reading a job", stmt).await
    }

    pub async fn job_payload(&self, job_id: i64) -> AppResult<Option<JobPayload>> {
        let stmt = self.stmt("SELECT request_params, result_json, structure_root FROM granulation_jobs WHERE id = ?1", &[i(job_id)])?;
        self.first("reading a job's payload", stmt).await
    }

    /// A page of jobs, newest first, and how many match in all.
    pub async fn list_jobs(&self, f: &JobFilter<'_>) -> AppResult<(Vec<JobRow>, u64)> {
        // Only the filters given become clauses, so each query can use its
        // index; the clauses are constants, every value is a bind.
        let mut clauses = Vec::new();
        let mut binds = Vec::new();
        let filters: [(&str, Option<&str>); 5] = [
            ("client_id = ", f.scope),
            ("status = ", f.status.map(JobStatus::as_str)),
            ("structure_type = ", f.structure_type.map(|s| s.as_str())),
            ("created_at >= ", f.from),
            ("created_at < ", f.to),
        ];
        for (clause, value) in filters {
            if let Some(v) = value {
                binds.push(t(v));
                clauses.push(format!("{clause}?{}", binds.len()));
            }
        }
        let where_sql = if clauses.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", clauses.join(" AND "))
        };
        let count = self.stmt(
            &format!("SELECT COUNT(*) AS total FROM granulation_jobs {where_sql}"),
            &binds,
        )?;
        let mut page_binds = binds.clone();
        page_binds.push(u(f.limit as u64));
        page_binds.push(u(f.offset as u64));
        let page = self.stmt(
            &format!("SELECT {JOB_COLUMNS} FROM granulation_jobs {where_sql} ORDER BY created_at DESC, id DESC LIMIT ?{} OFFSET ?{}", binds.len() + 1, binds.len() + 2),
            &page_binds,
        )?;
        let results = self.batch("listing jobs", vec![count, page]).await?;
        #[derive(Deserialize)]
        struct Total {
            total: u64,
        }
        let total = results
            .first()
            .and_then(|r| r.results::<Total>().ok())
            .and_then(|v| v.into_iter().next())
            .map(|t| t.total)
            .unwrap_or(0);
        let rows = super::batch_rows("listing jobs", results.get(1))?;
        Ok((rows, total))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A row as D1 hands it over: every number a JSON number, 0/1 for flags.
    fn row() -> serde_json::Value {
        json!({
            "id": 42, "client_id": "c", "execution_id": "e", "topic": "t", "structure_type": "course",
            "granularity_level": 3, "target_audience": "a", "template_id": 7, "template_name": "n",
            "status": "processing", "stage": "generating", "run_count": 2, "provider": null, "model": null,
            "tokens_input": 10, "tokens_output": 20, "tokens_cached": 0, "cost_usd": 0.5, "quality_score": null,
            "validation_passed": 1, "total_elements": null, "estimated_total_words": null, "storage_type": null,
            "storage_location": null, "structure_bytes": null, "processing_time_ms": null, "failure_code": null,
            "failure_reason": null, "deadline_at": 1_764_000_000_000u64, "created_at": "x", "updated_at": "y",
            "completed_at": null, "run_mode": "queue", "submitted_at_ms": 1_764_000_000_000u64, "started_at_ms": null,
            "heartbeat_at_ms": null, "progress_tokens": 5, "progress_elements": 1, "expected_tokens": 1000,
            "expected_elements": null
        })
    }

    #[test]
    fn a_job_row_decodes_with_integer_ids_and_typed_states() {
        let job: JobRow = serde_json::from_value(row()).unwrap();
        assert_eq!(job.id, 42);
        assert_eq!(job.template_id, Some(7));
        assert_eq!(job.run_count, 2);
        assert_eq!(job.status, JobStatus::Processing);
        assert_eq!(job.stage, Stage::Generating);
        assert_eq!(job.run_mode, RunMode::Queue);
        assert_eq!(job.validation_passed, Some(true));
        assert_eq!(job.deadline_at, 1_764_000_000_000);
    }

    #[test]
    fn a_fractional_id_or_an_unknown_status_is_refused() {
        let mut bad = row();
        bad["id"] = json!(4.5);
        assert!(serde_json::from_value::<JobRow>(bad).is_err());
        let mut bad = row();
        bad["status"] = json!("running");
        assert!(serde_json::from_value::<JobRow>(bad).is_err());
    }
}
