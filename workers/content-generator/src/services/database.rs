//! Every SQL statement of the worker (binds only, typed rows). The job
//! lifecycle's tables and statements are the kit's (`D1Jobs`, `D1Ledger` on
//! `JobSchema::KIT`); this worker's own table is `generations`.

use crate::types::env::{App, DB};
use bitware_kit::d1::bind::{i, n, ot, t};
use bitware_kit::d1::D1;
use bitware_kit::error::{AppError, AppResult};
use bitware_kit::jobs::view::{read_job, JobRow};
use bitware_kit::jobs::{Completion, D1Jobs, JobSchema};
use serde::Deserialize;

/// This worker's own migrations, after the kit's (`/health` checks both).
pub const MIGRATIONS: &[&str] = &["0002_generations.sql"];

pub struct Database {
    db: D1,
}

/// Generations per tenant and structure type (`/api/admin/stats`).
#[derive(Debug, Deserialize)]
pub struct GenerationCount {
    pub tenant: String,
    pub structure_type: String,
    pub generations: i64,
    pub words: i64,
}

/// A completed generation's row (`generations`).
pub struct GenerationRow<'a> {
    pub tenant: &'a str,
    pub job_id: i64,
    pub granulator_job_id: i64,
    pub structure_type: &'a str,
    pub elements: i64,
    pub words: i64,
    pub target_words: i64,
    pub quality_score: f64,
    pub storage_tier: &'a str,
}

impl Database {
    pub fn new(app: &App) -> AppResult<Database> {
        Ok(Database {
            db: D1::open(&app.env, DB)?,
        })
    }

    /// The kit's job store on the kit's tables.
    pub fn jobs(&self) -> D1Jobs<'_> {
        D1Jobs::new(&self.db, JobSchema::KIT)
    }

    /// Job `id` in the caller's scope (another tenant's is a 404).
    pub async fn job(&self, id: i64, scope: Option<&str>) -> AppResult<JobRow> {
        read_job(&self.db, JobSchema::KIT, id, scope).await
    }

    /// The D1 handle (the kit's readers of its own tables take it).
    pub fn d1(&self) -> &D1 {
        &self.db
    }

    /// A finished run, with its generation row, in one atomic step.
    pub async fn complete(&self, c: &Completion<'_>, row: &GenerationRow<'_>) -> AppResult<bool> {
        let insert = self.db.stmt(
            "INSERT INTO generations (tenant, job_id, granulator_job_id, structure_type, elements, words, target_words, quality_score, storage_tier) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            &[
                t(row.tenant),
                i(row.job_id),
                i(row.granulator_job_id),
                t(row.structure_type),
                i(row.elements),
                i(row.words),
                i(row.target_words),
                n(row.quality_score.clamp(0.0, 1.0)),
                t(row.storage_tier),
            ],
        )?;
        self.jobs().complete_with(c, vec![insert]).await
    }

    /// The tier a completed generation's content is kept in (`None`: no
    /// generation of that job in the caller's scope).
    pub async fn content_tier(&self, id: i64, scope: Option<&str>) -> AppResult<Option<String>> {
        #[derive(Deserialize)]
        struct Row {
            storage_tier: String,
        }
        let stmt = self.db.stmt(
            "SELECT g.storage_tier FROM generations g JOIN jobs j ON j.id = g.job_id \
             WHERE g.job_id = ?1 AND (?2 IS NULL OR j.client_id = ?2)",
            &[i(id), ot(scope)],
        )?;
        let row: Option<Row> = self.db.first("reading a generation", stmt).await?;
        Ok(row.map(|r| r.storage_tier))
    }

    pub async fn generations_by_tenant(&self) -> AppResult<Vec<GenerationCount>> {
        let stmt = self.db.stmt(
            "SELECT tenant, structure_type, COUNT(*) AS generations, SUM(words) AS words \
             FROM generations GROUP BY tenant, structure_type ORDER BY tenant, structure_type",
            &[],
        )?;
        self.db.all("reading generations", stmt).await
    }

    /// `/health`: the kit's migrations and this worker's are applied.
    pub async fn check(&self) -> AppResult<()> {
        let applied = self.db.applied_migrations().await?;
        let missing: Vec<&str> = bitware_kit::jobs::MIGRATIONS
            .iter()
            .chain(MIGRATIONS)
            .copied()
            .filter(|m| !applied.iter().any(|a| a == m))
            .collect();
        match missing.is_empty() {
            true => Ok(()),
            false => Err(AppError::unavailable(
                "migrations_missing",
                format!("migrations not applied: {}", missing.join(", ")),
            )),
        }
    }
}
