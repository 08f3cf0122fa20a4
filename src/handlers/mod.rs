//! HTTP handlers: parse (in `types`), authorise, call one service, shape
//! the response. No handler queries D1 itself: services do.

pub mod admin;
pub mod alerts;
pub mod economy;
pub mod execute;
pub mod jobs;
pub mod monitoring;
pub mod stats;
pub mod templates;

use crate::helpers::auth::Principal;
pub use crate::helpers::http::Reply;
use crate::types::env::App;
use bitware_kit::error::{AppError, AppResult};
use serde_json::Value;
use std::collections::HashMap;

/// One routed request.
pub struct Call<'a> {
    pub app: &'a App,
    /// The request URL's host (a deployed worker is not on loopback).
    pub host: String,
    /// For work that outlives the response (`waitUntil`).
    pub ctx: &'a worker::Context,
    pub principal: Option<&'a Principal>,
    pub params: Vec<(&'static str, String)>,
    pub query: HashMap<String, String>,
    pub body: Option<Value>,
}

impl Call<'_> {
    pub fn principal(&self) -> AppResult<&Principal> {
        self.principal
            .ok_or_else(|| AppError::unauthorized("authentication required"))
    }

    /// The client scope of the caller (`None`: every client).
    pub fn scope(&self) -> AppResult<Option<String>> {
        Ok(self.principal()?.scope())
    }

    pub fn body(&self) -> AppResult<&Value> {
        self.body
            .as_ref()
            .ok_or_else(|| AppError::bad_request("empty_body", "this route needs a JSON body"))
    }

    pub fn param(&self, name: &str) -> &str {
        self.params
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    }

    /// A numeric path id; anything else cannot name a job.
    pub fn id_param(&self, name: &str) -> AppResult<i64> {
        self.param(name)
            .parse::<i64>()
            .ok()
            .filter(|id| *id > 0)
            .ok_or_else(|| AppError::not_found(format!("no job {}", self.param(name))))
    }

    pub fn query_u32(&self, name: &str, default: u32, min: u32, max: u32) -> AppResult<u32> {
        match self.query.get(name) {
            None => Ok(default),
            Some(v) => v
                .parse::<u32>()
                .ok()
                .filter(|n| (min..=max).contains(n))
                .ok_or_else(|| {
                    AppError::invalid_field(name, format!("must be an integer from {min} to {max}"))
                }),
        }
    }
}
