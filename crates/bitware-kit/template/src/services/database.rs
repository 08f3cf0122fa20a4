//! Every SQL statement of the worker (binds only, typed rows).

use crate::error::{AppError, AppResult};
use crate::types::env::{App, DB};
use serde::Deserialize;
use worker::{query, D1Database};

pub struct Database {
    db: D1Database,
}

#[derive(Debug, Deserialize)]
pub struct TenantCount {
    pub tenant: String,
    pub executions: i64,
}

#[derive(Deserialize)]
struct Id {
    id: i64,
}

impl Database {
    pub fn new(app: &App) -> AppResult<Database> {
        let db = app
            .env
            .d1(DB)
            .map_err(|e| AppError::database("opening D1", e))?;
        Ok(Database { db })
    }

    /// One row per execution; its id.
    pub async fn record_execution(
        &self,
        tenant: &str,
        action: &str,
        input_chars: usize,
    ) -> AppResult<i64> {
        let statement = query!(
            &self.db,
            "INSERT INTO executions (tenant, action, input_chars) VALUES (?1, ?2, ?3) RETURNING id",
            tenant,
            action,
            input_chars as f64
        )
        .map_err(|e| AppError::database("recording an execution", e))?;
        let row: Option<Id> = statement
            .first(None)
            .await
            .map_err(|e| AppError::database("recording an execution", e))?;
        row.map(|r| r.id)
            .ok_or_else(|| AppError::internal("the execution was not recorded"))
    }

    pub async fn executions_by_tenant(&self) -> AppResult<Vec<TenantCount>> {
        self.db
            .prepare("SELECT tenant, COUNT(*) AS executions FROM executions GROUP BY tenant ORDER BY tenant")
            .all()
            .await
            .and_then(|r| r.results::<TenantCount>())
            .map_err(|e| AppError::database("reading executions", e))
    }

    /// `/health`: the schema is there.
    pub async fn check(&self) -> AppResult<()> {
        self.db
            .prepare("SELECT COUNT(*) AS n FROM executions")
            .all()
            .await
            .map(|_| ())
            .map_err(|e| AppError::database("checking the schema", e))
    }
}
