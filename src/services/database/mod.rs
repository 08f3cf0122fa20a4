//! Every SQL statement of the worker, split by table. Typed rows in and
//! out (integer columns as integers), binds only.
//!
//! Multi-row writes pass their rows as one JSON parameter and expand it with
//! `json_each`, so finishing a job is one atomic `batch` of a fixed number of
//! statements whatever the outline's size: elements are inserted one depth at
//! a time and find their parent's id through the unique `(job_id, path)`.
//! D1 round trips are counted (reported in `X-D1-Round-Trips`).

mod alerts;
mod attempts;
mod cancel;
mod claims;
mod elements;
mod jobs;
mod partials;
mod runs;
mod spend;
mod stats;
mod stopped;
mod streams;
mod templates;
mod validation;

pub use attempts::AttemptRow;
pub use cancel::CancelledRun;
pub use claims::{stalled, Claim, Moment, NewJob, PlannedCall};
pub use jobs::{JobFilter, JobPayload, JobRow, JobState};
pub use runs::{Completion, Failure};
pub use spend::{DaySpend, JobBound, Refused, Reservation};
pub use stats::{
    AnalyticsDay, ClientJobs, ConsumptionTotals, DailyConsumption, JobsByStatus, ModelConsumption,
    ProviderConsumption, TemplatePerformance, TypeJobs,
};
pub use stopped::{run_superseded, STOPPED_RUN_NOTE};
pub use validation::{NewValidation, ValidationRow};

use crate::types::env::{App, DB};
use bitware_kit::error::{AppError, AppResult};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};
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
fn u(x: u64) -> JsValue {
    JsValue::from_f64(x as f64)
}
fn ot(s: Option<&str>) -> JsValue {
    s.map(JsValue::from_str).unwrap_or(JsValue::NULL)
}
fn oi(x: Option<i64>) -> JsValue {
    x.map(i).unwrap_or(JsValue::NULL)
}
fn on(x: Option<f64>) -> JsValue {
    x.map(JsValue::from_f64).unwrap_or(JsValue::NULL)
}
fn flag(b: bool) -> JsValue {
    u(b as u64)
}

/// SQLite has no boolean: a 0/1 (or NULL) column read as `Option<bool>`.
fn sql_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    Ok(Option::<i64>::deserialize(d)?.map(|v| v != 0))
}

/// A 0/1 column that is never NULL.
fn sql_flag<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Ok(i64::deserialize(d)? != 0)
}

fn to_json<T: Serialize>(value: &T) -> AppResult<String> {
    serde_json::to_string(value).map_err(|e| AppError::internal(e.to_string()))
}

/// The `changes` of one result of a batch.
fn changes(result: Option<&worker::D1Result>) -> usize {
    result
        .and_then(|r| r.meta().ok().flatten())
        .and_then(|m| m.changes)
        .unwrap_or(0)
}

/// The rows of one statement of a batch (none when it returned none).
fn batch_rows<T: DeserializeOwned>(
    context: &str,
    result: Option<&worker::D1Result>,
) -> AppResult<Vec<T>> {
    Ok(result
        .map(|r| r.results::<T>())
        .transpose()
        .map_err(|e| AppError::database(context, e))?
        .unwrap_or_default())
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
        #[derive(Deserialize)]
        struct Ok {
            #[allow(dead_code)]
            ok: i64,
        }
        let stmt = self.stmt("SELECT 1 AS ok", &[])?;
        self.first::<Ok>("pinging D1", stmt).await.map(|_| ())
    }

    /// The migrations `wrangler d1 migrations apply` recorded, in order.
    pub async fn applied_migrations(&self) -> AppResult<Vec<String>> {
        #[derive(Deserialize)]
        struct Applied {
            name: String,
        }
        let stmt = self.stmt("SELECT name FROM d1_migrations ORDER BY id", &[])?;
        let rows: Vec<Applied> = self.all("reading d1_migrations", stmt).await?;
        Ok(rows.into_iter().map(|r| r.name).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Deserialize)]
    struct Flags {
        #[serde(deserialize_with = "sql_bool")]
        maybe: Option<bool>,
        #[serde(deserialize_with = "sql_flag")]
        always: bool,
    }

    #[test]
    fn zero_one_columns_read_as_booleans() {
        let f: Flags = serde_json::from_value(json!({"maybe": 1, "always": 0})).unwrap();
        assert_eq!((f.maybe, f.always), (Some(true), false));
        let f: Flags = serde_json::from_value(json!({"maybe": null, "always": 1})).unwrap();
        assert_eq!((f.maybe, f.always), (None, true));
    }
}
