//! `POST /api/execute`: the Resource Manager's entry point (seed §2.2).

use super::{Call, Reply};
use crate::error::AppResult;
use crate::services::{database::Database, example};
use crate::types::env::SERVICE_NAME;
use crate::types::execute::{Action, ExecuteRequest};
use bitware_kit::timing::now_ms;
use serde_json::json;

pub async fn execute(call: &Call<'_>) -> AppResult<Reply> {
    let started = now_ms();
    let principal = call.principal()?;
    let request = ExecuteRequest::parse(call.body()?)?;
    let output = match request.action {
        Action::Example => example::analyze(&request.text),
    };
    let db = Database::new(call.app)?;
    let execution_id = db
        .record_execution(
            &principal.client_id(),
            "example",
            request.text.chars().count(),
        )
        .await?;
    Ok(Reply::ok(json!({
        "success": true,
        "output": {
            "words": output.words,
            "sentences": output.sentences,
            "characters": output.characters,
            "readyForNext": true,
        },
        "usage": {"tokens": {"input": 0, "output": 0}},
        "duration": now_ms().saturating_sub(started),
        "cost": 0.0,
        "metadata": {"executionId": execution_id, "worker": SERVICE_NAME, "requestId": call.app.request_id},
    })))
}
