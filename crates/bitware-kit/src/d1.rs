//! D1 as every worker uses it: a handle that counts its round trips, typed
//! rows in and out, binds only (never SQL built from input), batches, and a
//! guarded batch that writes nothing unless its condition holds.
//!
//! Integers travel as JavaScript numbers (D1 rejects `BigInt`), SQLite's
//! 0/1 columns read as booleans ([`sql_bool`], [`sql_flag`]). Statements
//! are bound with exactly the parameters up to the highest `?N` they name:
//! D1 refuses a statement with more.

//!
//! The row readers are pure; the handle and binds need the `worker` feature.

use crate::error::{AppError, AppResult};
use serde::{Deserialize, Deserializer, Serialize};
#[cfg(feature = "worker")]
use {
    serde::de::DeserializeOwned,
    std::cell::Cell,
    worker::wasm_bindgen::JsValue,
    worker::{D1Database, D1PreparedStatement, D1Result, Env},
};

/// The current time as SQLite writes it in `created_at`-style columns.
pub const NOW: &str = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')";

/// The error text a guarded batch fails with when its condition does not
/// hold (`json()` of text that is not JSON: the only way plain SQL can abort
/// a D1 batch, which then writes nothing).
#[cfg(feature = "worker")]
const GUARD_REFUSED: &str = "guard_refused";

#[cfg(feature = "worker")]
/// Binds: text, numbers, integers, options and flags as D1 takes them.
pub mod bind {
    use worker::wasm_bindgen::JsValue;

    pub fn t(s: &str) -> JsValue {
        JsValue::from_str(s)
    }
    pub fn n(x: f64) -> JsValue {
        JsValue::from_f64(x)
    }
    pub fn i(x: i64) -> JsValue {
        // D1 rejects BigInt: integers travel as numbers.
        JsValue::from_f64(x as f64)
    }
    pub fn u(x: u64) -> JsValue {
        JsValue::from_f64(x as f64)
    }
    pub fn ot(s: Option<&str>) -> JsValue {
        s.map(JsValue::from_str).unwrap_or(JsValue::NULL)
    }
    pub fn oi(x: Option<i64>) -> JsValue {
        x.map(i).unwrap_or(JsValue::NULL)
    }
    pub fn on(x: Option<f64>) -> JsValue {
        x.map(JsValue::from_f64).unwrap_or(JsValue::NULL)
    }
    pub fn flag(b: bool) -> JsValue {
        u(b as u64)
    }
}

/// SQLite has no boolean: a 0/1 (or NULL) column read as `Option<bool>`.
pub fn sql_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    Ok(Option::<i64>::deserialize(d)?.map(|v| v != 0))
}

/// A 0/1 column that is never NULL.
pub fn sql_flag<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Ok(i64::deserialize(d)? != 0)
}

/// A value as the JSON text a column stores.
pub fn to_json<T: Serialize>(value: &T) -> AppResult<String> {
    serde_json::to_string(value).map_err(|e| AppError::internal(e.to_string()))
}

#[cfg(feature = "worker")]
/// The `changes` of one result of a batch.
pub fn changes(result: Option<&D1Result>) -> usize {
    result
        .and_then(|r| r.meta().ok().flatten())
        .and_then(|m| m.changes)
        .unwrap_or(0)
}

#[cfg(feature = "worker")]
/// The rows of one statement of a batch (none when it returned none).
pub fn batch_rows<T: DeserializeOwned>(
    context: &str,
    result: Option<&D1Result>,
) -> AppResult<Vec<T>> {
    Ok(result
        .map(|r| r.results::<T>())
        .transpose()
        .map_err(|e| AppError::database(context, e))?
        .unwrap_or_default())
}

#[cfg(feature = "worker")]
/// One D1 database, and the round trips made through this handle (a worker
/// reports them, e.g. in `X-D1-Round-Trips`).
pub struct D1 {
    db: D1Database,
    round_trips: Cell<u32>,
}

#[cfg(feature = "worker")]
impl D1 {
    /// The D1 binding named `binding`.
    pub fn open(env: &Env, binding: &str) -> AppResult<D1> {
        let db = env
            .d1(binding)
            .map_err(|e| AppError::database("opening D1", e))?;
        Ok(D1 {
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

    pub fn stmt(&self, sql: &str, binds: &[JsValue]) -> AppResult<D1PreparedStatement> {
        self.db
            .prepare(sql)
            .bind(binds)
            .map_err(|e| AppError::database("binding a statement", e))
    }

    pub async fn all<T: DeserializeOwned>(
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

    pub async fn first<T: DeserializeOwned>(
        &self,
        context: &str,
        stmt: D1PreparedStatement,
    ) -> AppResult<Option<T>> {
        Ok(self.all(context, stmt).await?.into_iter().next())
    }

    /// Run one statement: the rows it changed.
    pub async fn run(&self, context: &str, stmt: D1PreparedStatement) -> AppResult<usize> {
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

    /// Statements in one round trip, atomically: a failed one rolls the
    /// whole batch back.
    pub async fn batch(
        &self,
        context: &str,
        statements: Vec<D1PreparedStatement>,
    ) -> AppResult<Vec<D1Result>> {
        self.round_trips.set(self.round_trips.get() + 1);
        self.db
            .batch(statements)
            .await
            .map_err(|e| AppError::database(context, e))
    }

    /// Run `statements` as one batch only if `condition` (SQL over
    /// `binds`) holds when it starts: `Ok(false)`, nothing written, when it
    /// did not. The batch's first statement is the guard (`json()` of text
    /// that is not JSON aborts it: plain SQL cannot raise, and D1 rolls a
    /// failed batch back); after a failure the condition is read once more
    /// to tell a refused batch from a database fault.
    pub async fn guarded_batch(
        &self,
        context: &str,
        condition: &str,
        binds: &[JsValue],
        statements: Vec<D1PreparedStatement>,
    ) -> AppResult<bool> {
        #[derive(Deserialize)]
        struct Held {
            #[allow(dead_code)]
            held: i64,
        }
        let guard = self.stmt(
            &format!(
                "SELECT CASE WHEN {condition} THEN 1 ELSE json('{GUARD_REFUSED}') END AS held"
            ),
            binds,
        )?;
        let mut all = Vec::with_capacity(statements.len() + 1);
        all.push(guard);
        all.extend(statements);
        match self.batch(context, all).await {
            Ok(_) => Ok(true),
            Err(error) => {
                let check = self.stmt(&format!("SELECT 1 AS held WHERE {condition}"), binds)?;
                match self.first::<Held>(context, check).await {
                    Ok(None) => Ok(false),
                    Ok(Some(_)) | Err(_) => Err(error),
                }
            }
        }
    }

    /// `SELECT 1`: a health check reads, never writes.
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
