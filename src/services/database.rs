//! Every SQL statement of the worker. Typed rows in and out, binds only.
//!
//! Multi-row writes pass their rows as one JSON parameter and expand it with
//! `json_each`, so finishing a job is one atomic `batch` of a fixed number of
//! statements whatever the outline's size: elements are inserted one depth at
//! a time and find their parent's id through the unique `(job_id, path)`.
//! D1 round trips are counted (reported in `X-D1-Round-Trips`).

use crate::error::{AppError, AppResult};
use crate::services::ai_provider::Attempt;
use crate::services::outline::ElementRow;
use crate::types::env::{App, DB};
use crate::types::template::{Template, TemplateInput, TemplateRow};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::cell::Cell;
use wasm_bindgen::JsValue;
use worker::{D1Database, D1PreparedStatement};

const NOW: &str = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')";

pub struct Database {
    db: D1Database,
    round_trips: Cell<u32>,
}

fn t(s: &str) -> JsValue {
    JsValue::from_str(s)
}
fn n(x: f64) -> JsValue {
    JsValue::from_f64(x)
}
fn i(x: i64) -> JsValue {
    // D1 rejects BigInt: integers travel as numbers.
    JsValue::from_f64(x as f64)
}
fn ot(s: Option<&str>) -> JsValue {
    s.map(JsValue::from_str).unwrap_or(JsValue::NULL)
}
fn on(x: Option<f64>) -> JsValue {
    x.map(JsValue::from_f64).unwrap_or(JsValue::NULL)
}

/// A job as the API reads it (heavy JSON columns are read separately).
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct JobRow {
    pub id: f64,
    pub client_id: String,
    pub execution_id: String,
    pub topic: String,
    pub structure_type: String,
    pub granularity_level: f64,
    pub target_audience: String,
    pub template_id: Option<f64>,
    pub template_name: Option<String>,
    pub status: String,
    pub stage: String,
    pub run_count: f64,
    pub provider: Option<String>,
    pub model: Option<String>,
    pub tokens_input: f64,
    pub tokens_output: f64,
    pub tokens_cached: f64,
    pub cost_usd: Option<f64>,
    pub quality_score: Option<f64>,
    pub validation_passed: Option<f64>,
    pub total_elements: Option<f64>,
    pub estimated_total_words: Option<f64>,
    pub storage_type: Option<String>,
    pub storage_location: Option<String>,
    pub structure_bytes: Option<f64>,
    pub processing_time_ms: Option<f64>,
    pub failure_code: Option<String>,
    pub failure_reason: Option<String>,
    pub deadline_at: f64,
    pub created_at: String,
    pub updated_at: String,
    pub completed_at: Option<String>,
    pub run_mode: String,
    pub submitted_at_ms: Option<f64>,
    pub started_at_ms: Option<f64>,
    pub heartbeat_at_ms: Option<f64>,
    pub progress_tokens: f64,
    pub progress_elements: f64,
    pub expected_tokens: Option<f64>,
    pub expected_elements: Option<f64>,
}

const JOB_COLUMNS: &str = "id, client_id, execution_id, topic, structure_type, granularity_level, target_audience, template_id, \
    template_name, status, stage, run_count, provider, model, tokens_input, tokens_output, tokens_cached, cost_usd, quality_score, \
    validation_passed, total_elements, estimated_total_words, storage_type, storage_location, structure_bytes, processing_time_ms, \
    failure_code, failure_reason, deadline_at, created_at, updated_at, completed_at, run_mode, submitted_at_ms, started_at_ms, \
    heartbeat_at_ms, progress_tokens, progress_elements, expected_tokens, expected_elements";

#[derive(Debug, Clone, Deserialize)]
pub struct JobPayload {
    pub request_params: String,
    pub result_json: Option<String>,
    pub structure_root: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct AttemptRow {
    pub provider: String,
    pub model: String,
    pub purpose: String,
    pub status: String,
    pub http_status: Option<f64>,
    pub latency_ms: f64,
    pub tokens_input: f64,
    pub tokens_output: f64,
    pub tokens_cached: f64,
    pub cost_usd: Option<f64>,
    pub error: Option<String>,
    pub created_at: String,
}

#[derive(Debug, Clone, Deserialize)]
struct ElementDbRow {
    path: String,
    parent_path: Option<String>,
    depth: f64,
    element_type: String,
    sequence_order: f64,
    title: String,
    content_outline: String,
    target_word_count: f64,
    content_type: String,
    generation_priority: f64,
    content_tone: String,
    key_points: String,
    metadata: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ValidationRow {
    pub id: f64,
    pub job_id: f64,
    pub validation_level: f64,
    pub accuracy_percentage: f64,
    pub threshold: f64,
    pub passed: f64,
    pub criteria: String,
    pub issues: String,
    pub ai_feedback: Option<String>,
    pub tokens_input: f64,
    pub tokens_output: f64,
    pub cost_usd: Option<f64>,
    pub created_at: String,
}

pub struct NewJob<'a> {
    pub client_id: &'a str,
    pub execution_id: &'a str,
    pub topic: &'a str,
    pub structure_type: &'a str,
    pub granularity: u8,
    pub target_audience: &'a str,
    pub template_id: i64,
    pub template_name: &'a str,
    pub request_params: &'a str,
    pub deadline_at: u64,
    pub request_hash: &'a str,
    /// `inline` (runs now, in this request) or `queue` (waits for the consumer).
    pub run_mode: &'a str,
    pub expected_tokens: u32,
    pub expected_elements: u32,
}

#[derive(Debug)]
pub enum Claim {
    /// This request owns the job now (a new one, or a failed/abandoned one run again).
    /// `spent_usd` is what earlier runs of the job already cost: a re-run
    /// is charged against the same budget.
    Run {
        job_id: i64,
        run: u32,
        spent_usd: f64,
    },
    /// Completed before: replay what was returned then.
    Replay { job_id: i64, result: Value },
    /// Another request is running it.
    InProgress { job_id: i64 },
    /// The key was used for a different request.
    Mismatch { job_id: i64 },
}

/// What a waiting request needs to know about a job.
#[derive(Debug, Clone, Deserialize)]
pub struct JobState {
    pub status: String,
    pub failure_code: Option<String>,
    pub failure_reason: Option<String>,
    pub result_json: Option<String>,
}

/// What a finished job writes, in one batch.
pub struct Completion<'a> {
    pub job_id: i64,
    pub client_id: &'a str,
    pub template_id: i64,
    pub provider: &'a str,
    pub model: &'a str,
    pub usage: crate::types::pricing::TokenUsage,
    pub cost_usd: Option<f64>,
    pub quality_score: f64,
    pub validation: Option<&'a NewValidation>,
    pub elements: &'a [ElementRow],
    pub estimated_total_words: u32,
    pub content_metadata: &'a Value,
    pub deliverable_specs: &'a Value,
    pub structure_root: &'a Value,
    pub storage_type: &'a str,
    pub storage_location: Option<&'a str>,
    pub structure_bytes: usize,
    pub result_json: &'a str,
    pub processing_time_ms: u64,
    pub attempts: &'a [Attempt],
    pub date: &'a str,
}

pub struct Failure<'a> {
    pub job_id: i64,
    pub client_id: &'a str,
    pub template_id: i64,
    pub code: &'a str,
    pub reason: &'a str,
    pub provider: Option<&'a str>,
    pub model: Option<&'a str>,
    pub usage: crate::types::pricing::TokenUsage,
    pub cost_usd: Option<f64>,
    pub processing_time_ms: u64,
    pub attempts: &'a [Attempt],
    pub date: &'a str,
}

/// Money set aside for one run against its tenant's daily cap.
#[derive(Debug, Clone, PartialEq)]
pub struct Reservation {
    pub id: String,
    pub tenant: String,
    /// The UTC day (YYYY-MM-DD) the reservation and its spend count against.
    pub day: String,
    pub amount_usd: f64,
}

/// A tenant's day so far, as the ledger holds it.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
pub struct DaySpend {
    pub reserved_usd: f64,
    pub spent_usd: f64,
}

#[derive(Debug, Clone, Serialize)]
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

#[derive(Debug, Default)]
pub struct JobFilter<'a> {
    pub scope: Option<&'a str>,
    pub status: Option<&'a str>,
    pub structure_type: Option<&'a str>,
    pub from: Option<&'a str>,
    pub to: Option<&'a str>,
    pub limit: u32,
    pub offset: u32,
}

/// The job an earlier request with the same key created.
#[derive(Deserialize)]
struct ExistingJob {
    id: f64,
    status: String,
    deadline_at: f64,
    result_json: Option<String>,
    request_hash: Option<String>,
}

impl ExistingJob {
    /// What it means for a new request with the same key; `None` when it
    /// failed or was abandoned past its deadline, so it may run again.
    fn claim(self, job: &NewJob<'_>, now_ms: u64) -> AppResult<Option<Claim>> {
        let job_id = self.id as i64;
        // Rows older than the hash column match anything (NULL).
        if self
            .request_hash
            .as_deref()
            .is_some_and(|h| h != job.request_hash)
        {
            return Ok(Some(Claim::Mismatch { job_id }));
        }
        match self.status.as_str() {
            "completed" => {
                let result = self
                    .result_json
                    .as_deref()
                    .and_then(|r| serde_json::from_str(r).ok())
                    .ok_or_else(|| AppError::internal("a completed job has no stored result"))?;
                Ok(Some(Claim::Replay { job_id, result }))
            }
            "processing" if self.deadline_at as u64 >= now_ms => {
                Ok(Some(Claim::InProgress { job_id }))
            }
            _ => Ok(None),
        }
    }
}

impl Database {
    pub fn new(app: &App) -> AppResult<Database> {
        let db = app
            .env
            .d1(DB)
            .map_err(|e| AppError::database("opening D1", e))?;
        Ok(Database {
            db,
            round_trips: Cell::new(0),
        })
    }

    pub fn round_trips(&self) -> u32 {
        self.round_trips.get()
    }

    /// Round trips made through another handle for the same request (an inline run).
    pub fn add_round_trips(&self, n: u32) {
        self.round_trips.set(self.round_trips.get() + n);
    }

    fn stmt(&self, sql: &str, binds: &[JsValue]) -> AppResult<D1PreparedStatement> {
        self.db
            .prepare(sql)
            .bind(binds)
            .map_err(|e| AppError::database("binding a statement", e))
    }

    async fn all<T: DeserializeOwned>(
        &self,
        context: &str,
        stmt: D1PreparedStatement,
    ) -> AppResult<Vec<T>> {
        self.round_trips.set(self.round_trips.get() + 1);
        let result = stmt
            .all()
            .await
            .map_err(|e| AppError::database(context, e))?;
        result
            .results::<T>()
            .map_err(|e| AppError::database(context, e))
    }

    async fn first<T: DeserializeOwned>(
        &self,
        context: &str,
        stmt: D1PreparedStatement,
    ) -> AppResult<Option<T>> {
        Ok(self.all(context, stmt).await?.into_iter().next())
    }

    async fn run(&self, context: &str, stmt: D1PreparedStatement) -> AppResult<usize> {
        self.round_trips.set(self.round_trips.get() + 1);
        let result = stmt
            .run()
            .await
            .map_err(|e| AppError::database(context, e))?;
        Ok(result
            .meta()
            .ok()
            .flatten()
            .and_then(|m| m.changes)
            .unwrap_or(0))
    }

    async fn batch(
        &self,
        context: &str,
        statements: Vec<D1PreparedStatement>,
    ) -> AppResult<Vec<worker::D1Result>> {
        self.round_trips.set(self.round_trips.get() + 1);
        self.db
            .batch(statements)
            .await
            .map_err(|e| AppError::database(context, e))
    }

    /// `SELECT 1`: the health check reads, never writes.
    pub async fn ping(&self) -> AppResult<()> {
        let stmt = self.stmt("SELECT 1 AS ok", &[])?;
        self.first::<Value>("pinging D1", stmt).await.map(|_| ())
    }

    // ---- templates -------------------------------------------------------

    const TEMPLATE_COLUMNS: &'static str = "id, template_name, structure_type, description, template_schema, ai_prompt_template, \
        validation_rules, structure_rules, complexity_level, target_audience, ai_provider_config, cost_optimization, usage_count, \
        created_at, updated_at";

    fn to_templates(rows: Vec<TemplateRow>) -> AppResult<Vec<Template>> {
        rows.into_iter()
            .map(|r| Template::try_from(r).map_err(AppError::internal))
            .collect()
    }

    pub async fn list_templates(&self, structure_type: Option<&str>) -> AppResult<Vec<Template>> {
        let stmt = match structure_type {
            Some(st) => self.stmt(
                &format!("SELECT {} FROM granulation_templates WHERE deleted_at IS NULL AND structure_type = ?1 ORDER BY template_name", Self::TEMPLATE_COLUMNS),
                &[t(st)],
            )?,
            None => self.stmt(&format!("SELECT {} FROM granulation_templates WHERE deleted_at IS NULL ORDER BY structure_type, template_name", Self::TEMPLATE_COLUMNS), &[])?,
        };
        Self::to_templates(self.all("listing templates", stmt).await?)
    }

    pub async fn template_by_name(&self, name: &str) -> AppResult<Option<Template>> {
        let stmt = self.stmt(&format!("SELECT {} FROM granulation_templates WHERE deleted_at IS NULL AND template_name = ?1", Self::TEMPLATE_COLUMNS), &[t(name)])?;
        Ok(
            Self::to_templates(self.all("reading a template", stmt).await?)?
                .into_iter()
                .next(),
        )
    }

    /// The oldest live template of a type: the seeded one unless an admin removed it.
    pub async fn default_template(&self, structure_type: &str) -> AppResult<Option<Template>> {
        let stmt = self.stmt(
            &format!("SELECT {} FROM granulation_templates WHERE deleted_at IS NULL AND structure_type = ?1 ORDER BY id LIMIT 1", Self::TEMPLATE_COLUMNS),
            &[t(structure_type)],
        )?;
        Ok(
            Self::to_templates(self.all("reading the default template", stmt).await?)?
                .into_iter()
                .next(),
        )
    }

    fn template_binds(input: &TemplateInput) -> AppResult<Vec<JsValue>> {
        Ok(vec![
            t(&input.template_name),
            t(input.structure_type.as_str()),
            t(&input.description),
            t(&input.template_schema.to_string()),
            t(&input.ai_prompt_template),
            t(&to_json(&input.validation_rules)?),
            t(&to_json(&input.structure_rules)?),
            n(input.complexity_level as f64),
            t(&input.target_audience),
            t(&to_json(&input.ai_provider_config)?),
            t(&to_json(&input.cost_optimization)?),
        ])
    }

    pub async fn create_template(&self, input: &TemplateInput) -> AppResult<Template> {
        let sql = format!(
            "INSERT INTO granulation_templates (template_name, structure_type, description, template_schema, ai_prompt_template, \
             validation_rules, structure_rules, complexity_level, target_audience, ai_provider_config, cost_optimization) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) RETURNING {}",
            Self::TEMPLATE_COLUMNS
        );
        let stmt = self.stmt(&sql, &Self::template_binds(input)?)?;
        let rows: Vec<TemplateRow> = self
            .all_or_conflict("creating a template", stmt, &input.template_name)
            .await?;
        Self::to_templates(rows)?
            .into_iter()
            .next()
            .ok_or_else(|| AppError::internal("the new template was not returned"))
    }

    pub async fn update_template(
        &self,
        current_name: &str,
        input: &TemplateInput,
    ) -> AppResult<Option<Template>> {
        let sql = format!(
            "UPDATE granulation_templates SET template_name = ?1, structure_type = ?2, description = ?3, template_schema = ?4, \
             ai_prompt_template = ?5, validation_rules = ?6, structure_rules = ?7, complexity_level = ?8, target_audience = ?9, \
             ai_provider_config = ?10, cost_optimization = ?11, updated_at = {NOW} \
             WHERE template_name = ?12 AND deleted_at IS NULL RETURNING {}",
            Self::TEMPLATE_COLUMNS
        );
        let mut binds = Self::template_binds(input)?;
        binds.push(t(current_name));
        let stmt = self.stmt(&sql, &binds)?;
        let rows: Vec<TemplateRow> = self
            .all_or_conflict("updating a template", stmt, &input.template_name)
            .await?;
        Ok(Self::to_templates(rows)?.into_iter().next())
    }

    /// A template write: the live-name unique index failing is the caller's
    /// 409 (not logged as a fault); anything else is a database error.
    async fn all_or_conflict<T: DeserializeOwned>(
        &self,
        context: &str,
        stmt: D1PreparedStatement,
        name: &str,
    ) -> AppResult<Vec<T>> {
        self.round_trips.set(self.round_trips.get() + 1);
        match stmt.all().await {
            Ok(result) => result
                .results::<T>()
                .map_err(|e| AppError::database(context, e)),
            Err(e) if e.to_string().contains("UNIQUE constraint failed") => {
                Err(AppError::conflict(
                    "template_exists",
                    format!("a template named `{name}` already exists"),
                ))
            }
            Err(e) => Err(AppError::database(context, e)),
        }
    }

    /// Soft delete: the template leaves listings and new jobs; old jobs keep their link.
    pub async fn delete_template(&self, name: &str) -> AppResult<bool> {
        let stmt = self.stmt(
            &format!("UPDATE granulation_templates SET deleted_at = {NOW}, updated_at = {NOW} WHERE template_name = ?1 AND deleted_at IS NULL"),
            &[t(name)],
        )?;
        Ok(self.run("deleting a template", stmt).await? > 0)
    }

    // ---- jobs ------------------------------------------------------------

    /// Create the job, or find what became of an earlier request with the same key.
    /// The `UNIQUE (client_id, execution_id)` constraint makes concurrent duplicates safe.
    /// A run claimed here takes over `reservation` (its spend reservation) in
    /// the same batch, so its completion or failure settles it.
    pub async fn claim_job(
        &self,
        job: &NewJob<'_>,
        now_ms: u64,
        reservation: &Reservation,
    ) -> AppResult<Claim> {
        #[derive(Deserialize)]
        struct Claimed {
            id: f64,
            run_count: f64,
            cost_usd: Option<f64>,
        }
        let insert = self.stmt(
            "INSERT INTO granulation_jobs (client_id, execution_id, topic, structure_type, granularity_level, target_audience, \
             template_id, template_name, request_params, deadline_at, request_hash, run_mode, expected_tokens, expected_elements, \
             submitted_at_ms, started_at_ms, heartbeat_at_ms, cost_usd) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, CASE WHEN ?12 = 'inline' THEN ?15 END, ?15, 0) \
             ON CONFLICT (client_id, execution_id) DO NOTHING RETURNING id, run_count, cost_usd",
            &Self::job_binds(job, now_ms),
        )?;
        // Only when the INSERT just before it created the job (not on a conflict).
        let link_new = self.stmt(
            "UPDATE spend_reservations SET job_id = last_insert_rowid() WHERE id = ?1 AND changes() = 1",
            &[t(&reservation.id)],
        )?;
        let created = self
            .batch("creating a job", vec![insert, link_new])
            .await?
            .into_iter()
            .next()
            .map(|r| r.results::<Claimed>())
            .transpose()
            .map_err(|e| AppError::database("creating a job", e))?
            .and_then(|rows| rows.into_iter().next());
        if let Some(c) = created {
            return Ok(Claim::Run {
                job_id: c.id as i64,
                run: c.run_count as u32,
                spent_usd: c.cost_usd.unwrap_or(0.0),
            });
        }
        let existing = self
            .existing_job(job)
            .await?
            .ok_or_else(|| AppError::internal("the conflicting job vanished"))?;
        let job_id = existing.id as i64;
        if let Some(claim) = existing.claim(job, now_ms)? {
            return Ok(claim);
        }
        // Failed, or abandoned past its deadline: run it again, unless another request just did.
        let mut binds = vec![i(job_id), n(now_ms as f64)];
        binds.extend(Self::job_binds(job, now_ms).into_iter().skip(2));
        let reclaim = self.stmt(
            &format!(
                "UPDATE granulation_jobs SET status = 'processing', stage = 'generating', run_count = run_count + 1, topic = ?3, \
                 structure_type = ?4, granularity_level = ?5, target_audience = ?6, template_id = ?7, template_name = ?8, \
                 request_params = ?9, deadline_at = ?10, request_hash = ?11, run_mode = ?12, expected_tokens = ?13, \
                 expected_elements = ?14, submitted_at_ms = ?15, started_at_ms = CASE WHEN ?12 = 'inline' THEN ?15 END, \
                 heartbeat_at_ms = ?15, progress_tokens = 0, progress_elements = 0, failure_code = NULL, failure_reason = NULL, provider = NULL, model = NULL, \
                 quality_score = NULL, validation_passed = NULL, completed_at = NULL, updated_at = {NOW} \
                 WHERE id = ?1 AND (status = 'failed' OR (status = 'processing' AND deadline_at < ?2)) RETURNING id, run_count, cost_usd"
            ),
            &binds,
        )?;
        let link_rerun = self.stmt(
            "UPDATE spend_reservations SET job_id = ?2 WHERE id = ?1 AND changes() = 1",
            &[t(&reservation.id), i(job_id)],
        )?;
        let rerun = self
            .batch("re-running a job", vec![reclaim, link_rerun])
            .await?
            .into_iter()
            .next()
            .map(|r| r.results::<Claimed>())
            .transpose()
            .map_err(|e| AppError::database("re-running a job", e))?
            .and_then(|rows| rows.into_iter().next());
        match rerun {
            Some(c) => Ok(Claim::Run {
                job_id,
                run: c.run_count as u32,
                spent_usd: c.cost_usd.unwrap_or(0.0),
            }),
            None => Ok(Claim::InProgress { job_id }),
        }
    }

    /// The stored response of a completed job, by its idempotency key.
    pub async fn completed_result(
        &self,
        client_id: &str,
        execution_id: &str,
    ) -> AppResult<Option<Value>> {
        #[derive(Deserialize)]
        struct Stored {
            result_json: String,
        }
        let stmt = self.stmt(
            "SELECT result_json FROM granulation_jobs WHERE client_id = ?1 AND execution_id = ?2 AND status = 'completed'",
            &[t(client_id), t(execution_id)],
        )?;
        let stored: Option<Stored> = self.first("reading a completed job", stmt).await?;
        Ok(stored.and_then(|s| serde_json::from_str(&s.result_json).ok()))
    }

    /// What became of an earlier request under this key, without claiming
    /// anything: a completed job's result or a running job to join (when the
    /// request hash matches), else `None`.
    pub async fn existing_claim(&self, job: &NewJob<'_>, now_ms: u64) -> AppResult<Option<Claim>> {
        match self.existing_job(job).await? {
            Some(existing) => existing.claim(job, now_ms),
            None => Ok(None),
        }
    }

    /// The job an idempotency key (client, execution id) already names.
    async fn existing_job(&self, job: &NewJob<'_>) -> AppResult<Option<ExistingJob>> {
        let lookup = self.stmt(
            "SELECT id, status, deadline_at, result_json, request_hash FROM granulation_jobs WHERE client_id = ?1 AND execution_id = ?2",
            &[t(job.client_id), t(job.execution_id)],
        )?;
        self.first("reading a job", lookup).await
    }

    fn job_binds(job: &NewJob, now_ms: u64) -> Vec<JsValue> {
        vec![
            t(job.client_id),
            t(job.execution_id),
            t(job.topic),
            t(job.structure_type),
            n(job.granularity as f64),
            t(job.target_audience),
            i(job.template_id),
            t(job.template_name),
            t(job.request_params),
            n(job.deadline_at as f64),
            t(job.request_hash),
            t(job.run_mode),
            n(job.expected_tokens as f64),
            n(job.expected_elements as f64),
            n(now_ms as f64),
        ]
    }

    /// A waiting request's look at a job (the result only once it is complete).
    pub async fn job_state(&self, job_id: i64) -> AppResult<Option<JobState>> {
        let stmt = self.stmt(
            "SELECT status, failure_code, failure_reason, CASE WHEN status = 'completed' THEN result_json END AS result_json \
             FROM granulation_jobs WHERE id = ?1",
            &[i(job_id)],
        )?;
        self.first("reading a job's state", stmt).await
    }

    /// The queue consumer takes a queued job: only one delivery of one run
    /// may, unless the runner that took it stopped beating for `stale_ms`.
    pub async fn start_queued(
        &self,
        job_id: i64,
        run: u32,
        now_ms: u64,
        stale_ms: u64,
    ) -> AppResult<bool> {
        #[derive(Deserialize)]
        struct Started {
            #[allow(dead_code)]
            id: f64,
        }
        let stmt = self.stmt(
            &format!(
                "UPDATE granulation_jobs SET started_at_ms = ?3, heartbeat_at_ms = ?3, progress_tokens = 0, progress_elements = 0, \
                 updated_at = {NOW} WHERE id = ?1 AND run_count = ?2 AND status = 'processing' \
                 AND (started_at_ms IS NULL OR coalesce(heartbeat_at_ms, started_at_ms) < ?4) RETURNING id"
            ),
            &[i(job_id), n(run as f64), n(now_ms as f64), n(now_ms.saturating_sub(stale_ms) as f64)],
        )?;
        Ok(self
            .first::<Started>("starting a queued job", stmt)
            .await?
            .is_some())
    }

    /// Progress of the running model call; also the runner's heartbeat.
    pub async fn write_progress(
        &self,
        job_id: i64,
        tokens: u64,
        elements: u64,
        now_ms: u64,
    ) -> AppResult<()> {
        let stmt = self.stmt(
            &format!(
                "UPDATE granulation_jobs SET progress_tokens = ?2, progress_elements = ?3, heartbeat_at_ms = ?4, updated_at = {NOW} \
                 WHERE id = ?1 AND status = 'processing'"
            ),
            &[i(job_id), n(tokens as f64), n(elements as f64), n(now_ms as f64)],
        )?;
        self.run("writing a job's progress", stmt).await.map(|_| ())
    }

    /// End a run that never produced a result (dead-lettered, never enqueued).
    pub async fn fail_run(
        &self,
        job_id: i64,
        run: u32,
        code: &str,
        reason: &str,
    ) -> AppResult<bool> {
        // The run made no model call: its reservation is released, nothing booked.
        let statements = vec![
            self.stmt(
                &format!(
                    "UPDATE granulation_jobs SET status = 'failed', stage = 'failed', failure_code = ?3, failure_reason = ?4, \
                     updated_at = {NOW} WHERE id = ?1 AND run_count = ?2 AND status = 'processing'"
                ),
                &[i(job_id), n(run as f64), t(code), t(reason)],
            )?,
            self.stmt(
                &format!(
                    "UPDATE tenant_daily_spend SET reserved_usd = max(0, reserved_usd - \
                     (SELECT coalesce(sum(r.amount_usd), 0) FROM spend_reservations r WHERE r.job_id = ?1 \
                      AND r.tenant = tenant_daily_spend.tenant AND r.day = tenant_daily_spend.day)), updated_at = {NOW} \
                     WHERE EXISTS (SELECT 1 FROM spend_reservations r WHERE r.job_id = ?1 \
                      AND r.tenant = tenant_daily_spend.tenant AND r.day = tenant_daily_spend.day) \
                     AND (SELECT status FROM granulation_jobs WHERE id = ?1) = 'failed'"
                ),
                &[i(job_id)],
            )?,
            self.stmt(
                "DELETE FROM spend_reservations WHERE job_id = ?1 \
                 AND (SELECT status FROM granulation_jobs WHERE id = ?1) = 'failed'",
                &[i(job_id)],
            )?,
        ];
        let results = self.batch("failing a run", statements).await?;
        Ok(results
            .first()
            .and_then(|r| r.meta().ok().flatten())
            .and_then(|m| m.changes)
            .unwrap_or(0)
            > 0)
    }

    pub async fn set_stage(&self, job_id: i64, stage: &str, now_ms: u64) -> AppResult<()> {
        let stmt = self.stmt(&format!("UPDATE granulation_jobs SET stage = ?2, heartbeat_at_ms = ?3, updated_at = {NOW} WHERE id = ?1 AND status = 'processing'"), &[i(job_id), t(stage), n(now_ms as f64)])?;
        self.run("updating a job's stage", stmt).await.map(|_| ())
    }

    fn attempts_statement(
        &self,
        job_id: i64,
        client_id: &str,
        attempts: &[Attempt],
    ) -> AppResult<D1PreparedStatement> {
        let rows =
            serde_json::to_string(attempts).map_err(|e| AppError::internal(e.to_string()))?;
        self.stmt(
            "INSERT INTO resource_consumption (job_id, client_id, provider, model, purpose, status, http_status, latency_ms, \
             tokens_input, tokens_output, tokens_cached, cost_usd, error) \
             SELECT ?1, ?2, json_extract(a.value, '$.provider'), json_extract(a.value, '$.model'), json_extract(a.value, '$.purpose'), \
             json_extract(a.value, '$.status'), json_extract(a.value, '$.httpStatus'), json_extract(a.value, '$.latencyMs'), \
             json_extract(a.value, '$.usage.input'), json_extract(a.value, '$.usage.output'), json_extract(a.value, '$.usage.cached'), \
             json_extract(a.value, '$.costUsd'), json_extract(a.value, '$.error') FROM json_each(?3) a",
            &[i(job_id), t(client_id), t(&rows)],
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn analytics_statement(
        &self,
        template_id: i64,
        date: &str,
        completed: bool,
        validation_failed: bool,
        quality: f64,
        ms: u64,
        tokens: u64,
        cost: Option<f64>,
    ) -> AppResult<D1PreparedStatement> {
        self.stmt(
            "INSERT INTO template_analytics (template_id, date, jobs_total, jobs_completed, jobs_failed, validation_failures, quality_sum, \
             processing_ms_sum, tokens_sum, cost_usd_sum) VALUES (?1, ?2, 1, ?3, ?4, ?5, ?6, ?7, ?8, coalesce(?9, 0)) \
             ON CONFLICT (template_id, date) DO UPDATE SET jobs_total = jobs_total + 1, \
             jobs_completed = jobs_completed + excluded.jobs_completed, jobs_failed = jobs_failed + excluded.jobs_failed, \
             validation_failures = validation_failures + excluded.validation_failures, quality_sum = quality_sum + excluded.quality_sum, \
             processing_ms_sum = processing_ms_sum + excluded.processing_ms_sum, tokens_sum = tokens_sum + excluded.tokens_sum, \
             cost_usd_sum = cost_usd_sum + excluded.cost_usd_sum",
            &[i(template_id), t(date), n(completed as u8 as f64), n(!completed as u8 as f64), n(validation_failed as u8 as f64), n(quality), n(ms as f64), n(tokens as f64), on(cost)],
        )
    }

    fn validation_statement(
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
                n(v.level as f64),
                n(v.accuracy_percentage),
                n(v.threshold),
                n(v.passed as u8 as f64),
                t(&v.criteria.to_string()),
                t(&v.issues.to_string()),
                ot(v.ai_feedback.as_deref()),
                n(v.tokens_input as f64),
                n(v.tokens_output as f64),
                on(v.cost_usd),
            ],
        )
    }

    /// Everything a finished job writes, atomically, in one round trip.
    pub async fn complete_job(&self, c: &Completion<'_>) -> AppResult<()> {
        let mut statements = Vec::new();
        for depth in 0..3u8 {
            let rows: Vec<&ElementRow> = c.elements.iter().filter(|e| e.depth == depth).collect();
            if rows.is_empty() {
                continue;
            }
            let json =
                serde_json::to_string(&rows).map_err(|e| AppError::internal(e.to_string()))?;
            statements.push(self.stmt(
                "INSERT INTO structure_elements (job_id, element_type, parent_id, path, depth, sequence_order, title, content_outline, \
                 target_word_count, content_type, generation_priority, content_tone, key_points, metadata) \
                 SELECT ?1, json_extract(e.value, '$.element_type'), \
                 (SELECT p.id FROM structure_elements p WHERE p.job_id = ?1 AND p.path = json_extract(e.value, '$.parent_path')), \
                 json_extract(e.value, '$.path'), json_extract(e.value, '$.depth'), json_extract(e.value, '$.sequence_order'), \
                 json_extract(e.value, '$.title'), json_extract(e.value, '$.content_outline'), json_extract(e.value, '$.target_word_count'), \
                 json_extract(e.value, '$.content_type'), json_extract(e.value, '$.generation_priority'), json_extract(e.value, '$.content_tone'), \
                 json_extract(e.value, '$.key_points'), json_extract(e.value, '$.metadata') FROM json_each(?2) e",
                &[i(c.job_id), t(&json)],
            )?);
        }
        let validation_passed = c
            .validation
            .map(|v| n(v.passed as u8 as f64))
            .unwrap_or(JsValue::NULL);
        statements.push(self.stmt(
            &format!(
                "UPDATE granulation_jobs SET status = 'completed', stage = 'done', provider = ?2, model = ?3, \
                 tokens_input = tokens_input + ?4, tokens_output = tokens_output + ?5, tokens_cached = tokens_cached + ?6, \
                 cost_usd = cost_usd + ?7, quality_score = ?8, validation_passed = ?9, total_elements = ?10, estimated_total_words = ?11, \
                 content_generation_metadata = ?12, deliverable_specs = ?13, structure_root = ?14, storage_type = ?15, \
                 storage_location = ?16, structure_bytes = ?17, result_json = ?18, processing_time_ms = ?19, \
                 completed_at = {NOW}, updated_at = {NOW} WHERE id = ?1"
            ),
            &[
                i(c.job_id),
                t(c.provider),
                t(c.model),
                n(c.usage.input as f64),
                n(c.usage.output as f64),
                n(c.usage.cached as f64),
                on(c.cost_usd),
                n(c.quality_score),
                validation_passed,
                n(c.elements.len() as f64),
                n(c.estimated_total_words as f64),
                t(&c.content_metadata.to_string()),
                t(&c.deliverable_specs.to_string()),
                t(&c.structure_root.to_string()),
                t(c.storage_type),
                ot(c.storage_location),
                n(c.structure_bytes as f64),
                t(c.result_json),
                n(c.processing_time_ms as f64),
            ],
        )?);
        if !c.attempts.is_empty() {
            statements.push(self.attempts_statement(c.job_id, c.client_id, c.attempts)?);
        }
        if let Some(v) = c.validation {
            statements.push(self.validation_statement(c.job_id, c.client_id, v)?);
        }
        statements.push(self.stmt(
            "UPDATE granulation_templates SET usage_count = usage_count + 1 WHERE id = ?1",
            &[i(c.template_id)],
        )?);
        let validation_failed = c.validation.is_some_and(|v| !v.passed);
        statements.push(self.analytics_statement(
            c.template_id,
            c.date,
            true,
            validation_failed,
            c.quality_score,
            c.processing_time_ms,
            c.usage.total(),
            c.cost_usd,
        )?);
        statements.extend(self.settle_job_statements(
            c.job_id,
            c.client_id,
            c.cost_usd.unwrap_or(0.0),
            c.date,
        )?);
        self.batch("storing a finished job", statements)
            .await
            .map(|_| ())
    }

    /// A failed job: final state, reason, and the usage of the attempts it made.
    pub async fn fail_job(&self, f: &Failure<'_>) -> AppResult<()> {
        let mut statements = vec![self.stmt(
            &format!(
                "UPDATE granulation_jobs SET status = 'failed', stage = 'failed', failure_code = ?2, failure_reason = ?3, provider = ?4, \
                 model = ?5, tokens_input = tokens_input + ?6, tokens_output = tokens_output + ?7, tokens_cached = tokens_cached + ?8, \
                 cost_usd = cost_usd + ?9, processing_time_ms = ?10, updated_at = {NOW} WHERE id = ?1"
            ),
            &[
                i(f.job_id),
                t(f.code),
                t(f.reason),
                ot(f.provider),
                ot(f.model),
                n(f.usage.input as f64),
                n(f.usage.output as f64),
                n(f.usage.cached as f64),
                on(f.cost_usd),
                n(f.processing_time_ms as f64),
            ],
        )?];
        if !f.attempts.is_empty() {
            statements.push(self.attempts_statement(f.job_id, f.client_id, f.attempts)?);
        }
        statements.push(self.analytics_statement(
            f.template_id,
            f.date,
            false,
            false,
            0.0,
            f.processing_time_ms,
            f.usage.total(),
            f.cost_usd,
        )?);
        statements.extend(self.settle_job_statements(
            f.job_id,
            f.client_id,
            f.cost_usd.unwrap_or(0.0),
            f.date,
        )?);
        self.batch("recording a failed job", statements)
            .await
            .map(|_| ())
    }

    /// Jobs still `processing` past their deadline lost their worker (an
    /// evicted isolate, a crash): end them `failed` so nothing stays in flight.
    pub async fn fail_abandoned_jobs(&self, now_ms: u64) -> AppResult<usize> {
        let stmt = self.stmt(
            &format!(
                "UPDATE granulation_jobs SET status = 'failed', stage = 'failed', failure_code = 'abandoned', \
                 failure_reason = 'the run stopped before finishing (its worker went away); send the request again to retry', \
                 updated_at = {NOW} WHERE status = 'processing' AND deadline_at < ?1"
            ),
            &[n(now_ms as f64)],
        )?;
        self.run("failing abandoned jobs", stmt).await
    }

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

    pub async fn list_jobs(&self, f: &JobFilter<'_>) -> AppResult<(Vec<JobRow>, u64)> {
        // Only the filters given become clauses, so each query can use its index.
        let mut clauses = Vec::new();
        let mut binds = Vec::new();
        let filters: [(&str, Option<&str>); 5] = [
            ("client_id = ", f.scope),
            ("status = ", f.status),
            ("structure_type = ", f.structure_type),
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
        page_binds.push(n(f.limit as f64));
        page_binds.push(n(f.offset as f64));
        let page = self.stmt(
            &format!("SELECT {JOB_COLUMNS} FROM granulation_jobs {where_sql} ORDER BY created_at DESC, id DESC LIMIT ?{} OFFSET ?{}", binds.len() + 1, binds.len() + 2),
            &page_binds,
        )?;
        let results = self.batch("listing jobs", vec![count, page]).await?;
        #[derive(Deserialize)]
        struct Total {
            total: f64,
        }
        let total = results
            .first()
            .and_then(|r| r.results::<Total>().ok())
            .and_then(|v| v.into_iter().next())
            .map(|t| t.total as u64)
            .unwrap_or(0);
        let rows = results
            .get(1)
            .map(|r| r.results::<JobRow>())
            .transpose()
            .map_err(|e| AppError::database("listing jobs", e))?
            .unwrap_or_default();
        Ok((rows, total))
    }

    pub async fn elements(&self, job_id: i64) -> AppResult<Vec<ElementRow>> {
        let stmt = self.stmt(
            "SELECT e.path, p.path AS parent_path, e.depth, e.element_type, e.sequence_order, e.title, e.content_outline, e.target_word_count, \
             e.content_type, e.generation_priority, e.content_tone, e.key_points, e.metadata FROM structure_elements e \
             LEFT JOIN structure_elements p ON p.id = e.parent_id WHERE e.job_id = ?1 ORDER BY e.depth, e.id",
            &[i(job_id)],
        )?;
        let rows: Vec<ElementDbRow> = self.all("reading elements", stmt).await?;
        Ok(rows
            .into_iter()
            .map(|r| ElementRow {
                path: r.path,
                parent_path: r.parent_path,
                depth: r.depth as u8,
                element_type: r.element_type,
                sequence_order: r.sequence_order as u32,
                title: r.title,
                content_outline: r.content_outline,
                target_word_count: r.target_word_count as u32,
                content_type: r.content_type,
                generation_priority: r.generation_priority as u8,
                content_tone: r.content_tone,
                key_points: serde_json::from_str(&r.key_points).unwrap_or_default(),
                metadata: serde_json::from_str(&r.metadata).unwrap_or(Value::Null),
            })
            .collect())
    }

    pub async fn attempts(&self, job_id: i64) -> AppResult<Vec<AttemptRow>> {
        let stmt = self.stmt(
            "SELECT provider, model, purpose, status, http_status, latency_ms, tokens_input, tokens_output, tokens_cached, cost_usd, error, \
             created_at FROM resource_consumption WHERE job_id = ?1 ORDER BY id",
            &[i(job_id)],
        )?;
        self.all("reading attempts", stmt).await
    }

    // ---- spend caps ----------------------------------------------------

    /// Reserve `r.amount_usd` for `r.tenant` on `r.day` if that keeps its
    /// reserved + spent within `cap_usd`, atomically: one batch, so 32
    /// concurrent reservations can never overbook the cap. `Err` carries the
    /// day's figures when there is no room.
    pub async fn reserve_spend(
        &self,
        r: &Reservation,
        cap_usd: f64,
        expires_at_ms: u64,
    ) -> AppResult<Result<(), DaySpend>> {
        let key = [t(&r.tenant), t(&r.day)];
        let statements = vec![
            self.stmt(
                "INSERT INTO tenant_daily_spend (tenant, day) VALUES (?1, ?2) ON CONFLICT (tenant, day) DO NOTHING",
                &key,
            )?,
            self.stmt(
                &format!(
                    "UPDATE tenant_daily_spend SET reserved_usd = reserved_usd + ?3, updated_at = {NOW} \
                     WHERE tenant = ?1 AND day = ?2 AND reserved_usd + spent_usd + ?3 <= ?4 + 0.000000001"
                ),
                &[t(&r.tenant), t(&r.day), n(r.amount_usd), n(cap_usd)],
            )?,
            // Recorded only if the UPDATE just before it took the money.
            self.stmt(
                "INSERT INTO spend_reservations (id, tenant, day, amount_usd, expires_at) \
                 SELECT ?1, ?2, ?3, ?4, ?5 WHERE changes() = 1 RETURNING id",
                &[t(&r.id), t(&r.tenant), t(&r.day), n(r.amount_usd), n(expires_at_ms as f64)],
            )?,
            self.stmt(
                "SELECT reserved_usd, spent_usd FROM tenant_daily_spend WHERE tenant = ?1 AND day = ?2",
                &key,
            )?,
        ];
        let results = self.batch("reserving spend", statements).await?;
        #[derive(Deserialize)]
        struct Id {
            #[allow(dead_code)]
            id: String,
        }
        let reserved = results
            .get(2)
            .map(|r| r.results::<Id>().map(|rows| !rows.is_empty()))
            .transpose()
            .map_err(|e| AppError::database("reserving spend", e))?
            .unwrap_or(false);
        if reserved {
            return Ok(Ok(()));
        }
        let day = results
            .get(3)
            .map(|r| r.results::<DaySpend>())
            .transpose()
            .map_err(|e| AppError::database("reading a tenant's spend", e))?
            .and_then(|rows| rows.into_iter().next())
            .unwrap_or(DaySpend {
                reserved_usd: 0.0,
                spent_usd: 0.0,
            });
        Ok(Err(day))
    }

    /// Release a reservation and book what was really spent (the day of the
    /// reservation; if the sweep released it already, only the spend).
    fn settle_statements(
        &self,
        r: &Reservation,
        spent_usd: f64,
    ) -> AppResult<Vec<D1PreparedStatement>> {
        Ok(vec![
            self.stmt(
                &format!(
                    "UPDATE tenant_daily_spend SET reserved_usd = max(0, reserved_usd - \
                     coalesce((SELECT amount_usd FROM spend_reservations WHERE id = ?1), 0)), \
                     spent_usd = spent_usd + ?4, updated_at = {NOW} WHERE tenant = ?2 AND day = ?3"
                ),
                &[t(&r.id), t(&r.tenant), t(&r.day), n(spent_usd.max(0.0))],
            )?,
            self.stmt("DELETE FROM spend_reservations WHERE id = ?1", &[t(&r.id)])?,
        ])
    }

    /// Settle a job's reservations and book what its run spent, against the
    /// day of the reservation (today when the sweep released it already).
    fn settle_job_statements(
        &self,
        job_id: i64,
        tenant: &str,
        spent_usd: f64,
        today: &str,
    ) -> AppResult<Vec<D1PreparedStatement>> {
        let day = "coalesce((SELECT min(day) FROM spend_reservations WHERE job_id = ?1), ?3)";
        Ok(vec![
            self.stmt(
                &format!(
                    "INSERT INTO tenant_daily_spend (tenant, day) VALUES (?2, {day}) ON CONFLICT (tenant, day) DO NOTHING"
                ),
                &[i(job_id), t(tenant), t(today)],
            )?,
            self.stmt(
                &format!(
                    "UPDATE tenant_daily_spend SET reserved_usd = max(0, reserved_usd - \
                     coalesce((SELECT sum(amount_usd) FROM spend_reservations WHERE job_id = ?1), 0)), \
                     spent_usd = spent_usd + ?4, updated_at = {NOW} WHERE tenant = ?2 AND day = {day}"
                ),
                &[i(job_id), t(tenant), t(today), n(spent_usd.max(0.0))],
            )?,
            self.stmt(
                "DELETE FROM spend_reservations WHERE job_id = ?1",
                &[i(job_id)],
            )?,
        ])
    }

    pub async fn settle_spend(&self, r: &Reservation, spent_usd: f64) -> AppResult<()> {
        let statements = self.settle_statements(r, spent_usd)?;
        self.batch("settling spend", statements).await.map(|_| ())
    }

    /// Reservations of runs that died before settling are released once past
    /// their expiry (the run's deadline plus grace).
    pub async fn release_expired_reservations(&self, now_ms: u64) -> AppResult<usize> {
        let statements = vec![
            self.stmt(
                &format!(
                    "UPDATE tenant_daily_spend SET reserved_usd = max(0, reserved_usd - \
                     (SELECT coalesce(sum(r.amount_usd), 0) FROM spend_reservations r \
                      WHERE r.tenant = tenant_daily_spend.tenant AND r.day = tenant_daily_spend.day AND r.expires_at < ?1)), \
                     updated_at = {NOW} WHERE EXISTS (SELECT 1 FROM spend_reservations r \
                      WHERE r.tenant = tenant_daily_spend.tenant AND r.day = tenant_daily_spend.day AND r.expires_at < ?1)"
                ),
                &[n(now_ms as f64)],
            )?,
            self.stmt(
                "DELETE FROM spend_reservations WHERE expires_at < ?1",
                &[n(now_ms as f64)],
            )?,
        ];
        let results = self
            .batch("releasing expired reservations", statements)
            .await?;
        Ok(results
            .get(1)
            .and_then(|r| r.meta().ok().flatten())
            .and_then(|m| m.changes)
            .unwrap_or(0))
    }

    /// A tenant's spend on one day (the spend-cap 429 and the tests read it).
    pub async fn day_spend(&self, tenant: &str, day: &str) -> AppResult<DaySpend> {
        let stmt = self.stmt(
            "SELECT reserved_usd, spent_usd FROM tenant_daily_spend WHERE tenant = ?1 AND day = ?2",
            &[t(tenant), t(day)],
        )?;
        Ok(self
            .first::<DaySpend>("reading a tenant's spend", stmt)
            .await?
            .unwrap_or(DaySpend {
                reserved_usd: 0.0,
                spent_usd: 0.0,
            }))
    }

    // ---- validation ------------------------------------------------------

    /// A stand-alone validation: its result, its attempts and the job's flag, together.
    pub async fn record_validation(
        &self,
        job_id: i64,
        client_id: &str,
        v: &NewValidation,
        attempts: &[Attempt],
    ) -> AppResult<()> {
        let (usage, cost) = crate::services::ai_provider::totals(attempts);
        let mut statements = vec![
            self.validation_statement(job_id, client_id, v)?,
            self.job_usage_statement(job_id, &usage, cost)?,
            self.stmt(&format!("UPDATE granulation_jobs SET validation_passed = ?2, updated_at = {NOW} WHERE id = ?1"), &[i(job_id), n(v.passed as u8 as f64)])?,
        ];
        if !attempts.is_empty() {
            statements.push(self.attempts_statement(job_id, client_id, attempts)?);
        }
        self.batch("recording a validation", statements)
            .await
            .map(|_| ())
    }

    /// Attempts of a call that produced no verdict still cost money: record
    /// them and add them to the job's totals, together.
    pub async fn record_attempts(
        &self,
        job_id: i64,
        client_id: &str,
        attempts: &[Attempt],
    ) -> AppResult<()> {
        let (usage, cost) = crate::services::ai_provider::totals(attempts);
        let statements = vec![
            self.attempts_statement(job_id, client_id, attempts)?,
            self.job_usage_statement(job_id, &usage, cost)?,
        ];
        self.batch("recording attempts", statements)
            .await
            .map(|_| ())
    }

    fn job_usage_statement(
        &self,
        job_id: i64,
        usage: &crate::types::pricing::TokenUsage,
        cost: Option<f64>,
    ) -> AppResult<D1PreparedStatement> {
        self.stmt(
            &format!(
                "UPDATE granulation_jobs SET tokens_input = tokens_input + ?2, tokens_output = tokens_output + ?3, \
                 tokens_cached = tokens_cached + ?4, cost_usd = cost_usd + ?5, updated_at = {NOW} WHERE id = ?1"
            ),
            &[i(job_id), n(usage.input as f64), n(usage.output as f64), n(usage.cached as f64), on(cost)],
        )
    }

    pub async fn validation_history(
        &self,
        scope: Option<&str>,
        job_id: Option<i64>,
        limit: u32,
    ) -> AppResult<Vec<ValidationRow>> {
        let columns = "v.id, v.job_id, v.validation_level, v.accuracy_percentage, v.threshold, v.passed, v.criteria, v.issues, v.ai_feedback, \
                       v.tokens_input, v.tokens_output, v.cost_usd, v.created_at";
        let stmt = match (scope, job_id) {
            (Some(c), Some(j)) => self.stmt(&format!("SELECT {columns} FROM validation_results v WHERE v.client_id = ?1 AND v.job_id = ?2 ORDER BY v.id DESC LIMIT ?3"), &[t(c), i(j), n(limit as f64)])?,
            (Some(c), None) => self.stmt(&format!("SELECT {columns} FROM validation_results v WHERE v.client_id = ?1 ORDER BY v.id DESC LIMIT ?2"), &[t(c), n(limit as f64)])?,
            (None, Some(j)) => self.stmt(&format!("SELECT {columns} FROM validation_results v WHERE v.job_id = ?1 ORDER BY v.id DESC LIMIT ?2"), &[i(j), n(limit as f64)])?,
            (None, None) => self.stmt(&format!("SELECT {columns} FROM validation_results v ORDER BY v.id DESC LIMIT ?1"), &[n(limit as f64)])?,
        };
        self.all("reading validation history", stmt).await
    }

    /// Read-only aggregate queries for stats endpoints: `sql` is a constant of
    /// `services::stats`, binds are values.
    pub async fn aggregate(
        &self,
        context: &str,
        sql: &str,
        binds: &[StatBind<'_>],
    ) -> AppResult<Vec<Value>> {
        let values: Vec<JsValue> = binds
            .iter()
            .map(|b| match b {
                StatBind::Text(s) => t(s),
                StatBind::OptText(s) => ot(*s),
                StatBind::Number(x) => n(*x),
            })
            .collect();
        let stmt = self.stmt(sql, &values)?;
        self.all(context, stmt).await
    }
}

pub enum StatBind<'a> {
    Text(&'a str),
    OptText(Option<&'a str>),
    Number(f64),
}

fn to_json<T: Serialize>(value: &T) -> AppResult<String> {
    serde_json::to_string(value).map_err(|e| AppError::internal(e.to_string()))
}
