//! Every SQL statement of the worker (binds only, typed rows). The job
//! lifecycle's tables and statements are the kit's (`D1Jobs`, `D1Ledger` on
//! `JobSchema::KIT`); this worker's own table is `executions`.

use crate::types::env::{App, DB};
use bitware_kit::d1::bind::{i, t};
use bitware_kit::d1::D1;
use bitware_kit::error::{AppError, AppResult};
use bitware_kit::jobs::{Completion, D1Jobs, JobSchema};
use serde::Deserialize;

/// This worker's own migrations, after the kit's (`/health` checks both).
pub const MIGRATIONS: &[&str] = &["0002_initial_schema.sql"];

pub struct Database {
    db: D1,
}

#[derive(Debug, Deserialize)]
pub struct TenantCount {
    pub tenant: String,
    pub executions: i64,
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

    /// A finished run, with its execution row, in one atomic step.
    pub async fn complete(&self, c: &Completion<'_>, input_chars: usize) -> AppResult<bool> {
        let row = self.db.stmt(
            "INSERT INTO executions (tenant, action, input_chars, job_id) VALUES (?1, 'example', ?2, ?3)",
            &[t(c.client_id), i(input_chars as i64), i(c.job_id)],
        )?;
        self.jobs().complete_with(c, vec![row]).await
    }

    pub async fn executions_by_tenant(&self) -> AppResult<Vec<TenantCount>> {
        let stmt = self.db.stmt(
            "SELECT tenant, COUNT(*) AS executions FROM executions GROUP BY tenant ORDER BY tenant",
            &[],
        )?;
        self.db.all("reading executions", stmt).await
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
