//! HTTP handlers: parse (in `types`), call one service, shape the reply.
//! Authentication and the access rule ran before (`bitware_kit::front`).

pub mod admin;
pub mod execute;
pub mod monitoring;

use crate::error::{AppError, AppResult};
use crate::types::env::App;
use bitware_kit::auth::Principal;
pub use bitware_kit::http::Reply;
use serde_json::Value;

/// One routed request.
pub struct Call<'a> {
    pub app: &'a App,
    pub principal: Option<&'a Principal>,
    pub body: Option<Value>,
}

impl Call<'_> {
    pub fn principal(&self) -> AppResult<&Principal> {
        self.principal
            .ok_or_else(|| AppError::unauthorized("authentication required"))
    }

    pub fn body(&self) -> AppResult<&Value> {
        self.body
            .as_ref()
            .ok_or_else(|| AppError::bad_request("empty_body", "this route needs a JSON body"))
    }
}
