//! `/health`'s dependency checks: reads only, each within a timeout.

use crate::services::database::Database;
use crate::services::granulator;
use crate::types::env::{App, CACHE, STORAGE};
use bitware_kit::{kam, storage};
use serde_json::{json, Map, Value};

const CHECK_TIMEOUT_MS: u64 = 2_000;

fn check(result: Result<(), String>) -> Value {
    match result {
        Ok(()) => json!({"ok": true}),
        Err(e) => json!({"ok": false, "error": e}),
    }
}

pub async fn checks(app: &App) -> Map<String, Value> {
    let database = async {
        let db = Database::new(app).map_err(|e| e.to_string())?;
        bitware_kit::timing::with_timeout(CHECK_TIMEOUT_MS, db.check())
            .await
            .ok_or("timed out")?
            .map_err(|e| e.to_string())
    };
    let kam_client = app.kam();
    let (database, kv, r2, kam, granulator) = futures_util::join!(
        database,
        storage::kv_reachable(&app.env, CACHE, CHECK_TIMEOUT_MS),
        storage::r2_reachable(&app.env, STORAGE, CHECK_TIMEOUT_MS),
        kam::reachable(&kam_client),
        granulator::reachable(app, CHECK_TIMEOUT_MS)
    );
    let mut all = Map::new();
    all.insert("database".into(), check(database));
    all.insert("kv".into(), check(kv));
    all.insert("r2".into(), check(r2));
    all.insert("kam".into(), check(kam));
    all.insert("granulator".into(), check(granulator));
    all
}
