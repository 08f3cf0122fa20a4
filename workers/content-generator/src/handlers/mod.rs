//! HTTP handlers: parse (in `types`), call one service, shape the reply.
//! Authentication and the access rule ran before (`bitware_kit::front`).

pub mod admin;
pub mod execute;
pub mod jobs;
pub mod monitoring;

use crate::types::env::App;
use bitware_kit::auth::Principal;
use bitware_kit::error::{AppError, AppResult};
pub use bitware_kit::http::Reply;
use serde_json::Value;
use worker::Context;

/// One routed request.
pub struct Call<'a> {
    pub app: &'a App,
    pub ctx: &'a Context,
    pub principal: Option<&'a Principal>,
    pub params: Vec<(&'static str, String)>,
    pub body: Option<Value>,
}

impl Call<'_> {
    pub fn principal(&self) -> AppResult<&Principal> {
        self.principal
            .ok_or_else(|| AppError::unauthorized("authentication required"))
    }

    /// The tenant whose jobs the caller sees (`None`: every tenant).
    pub fn scope(&self) -> AppResult<Option<String>> {
        Ok(self.principal()?.scope())
    }

    pub fn body(&self) -> AppResult<&Value> {
        self.body
            .as_ref()
            .ok_or_else(|| AppError::bad_request("empty_body", "this route needs a JSON body"))
    }

    /// A job id from the path; anything else names no job.
    pub fn job_id(&self) -> AppResult<i64> {
        let raw = self
            .params
            .iter()
            .find(|(k, _)| *k == "id")
            .map(|(_, v)| v.as_str())
            .unwrap_or("");
        raw.parse::<i64>()
            .ok()
            .filter(|id| *id > 0)
            .ok_or_else(|| AppError::not_found(format!("no job {raw}")))
    }
}
