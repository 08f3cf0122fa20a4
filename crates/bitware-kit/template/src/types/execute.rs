//! `POST /api/execute` (seed §2.2): the Resource Manager's request, checked
//! at the edge so that services see only valid input.

use crate::error::{AppError, AppResult};
use serde_json::Value;

pub const MAX_TEXT_CHARS: usize = 20_000;

/// The actions this worker performs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Example,
}

impl Action {
    pub const NAMES: [&'static str; 1] = ["example"];
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecuteRequest {
    pub action: Action,
    pub text: String,
}

impl ExecuteRequest {
    /// `{"action": "example", "input": {"text": "..."}}`; every fault is a 400 naming its field.
    pub fn parse(body: &Value) -> AppResult<ExecuteRequest> {
        if !body.is_object() {
            return Err(AppError::bad_request(
                "invalid_body",
                "the body must be a JSON object",
            ));
        }
        let action = match body["action"].as_str() {
            Some("example") => Action::Example,
            Some(other) => {
                return Err(AppError::invalid_field(
                    "action",
                    format!(
                        "unknown action `{other}`; one of {}",
                        Action::NAMES.join(", ")
                    ),
                ))
            }
            None => return Err(AppError::invalid_field("action", "is required")),
        };
        let text = match body["input"]["text"].as_str().map(str::trim) {
            Some(t) if !t.is_empty() => t.to_string(),
            _ => {
                return Err(AppError::invalid_field(
                    "input.text",
                    "is required and must be non-empty text",
                ))
            }
        };
        if text.chars().count() > MAX_TEXT_CHARS {
            return Err(AppError::invalid_field(
                "input.text",
                format!("must be at most {MAX_TEXT_CHARS} characters"),
            ));
        }
        Ok(ExecuteRequest { action, text })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_valid_request_parses_and_every_fault_names_its_field() {
        let ok = ExecuteRequest::parse(&json!({"action": "example", "input": {"text": " hi "}}))
            .unwrap();
        assert_eq!((ok.action, ok.text.as_str()), (Action::Example, "hi"));
        let field = |body: Value| {
            ExecuteRequest::parse(&body).unwrap_err().details.unwrap()["field"].clone()
        };
        assert_eq!(field(json!({"input": {"text": "x"}})), "action");
        assert_eq!(
            field(json!({"action": "nope", "input": {"text": "x"}})),
            "action"
        );
        assert_eq!(
            field(json!({"action": "example", "input": {}})),
            "input.text"
        );
        assert_eq!(
            field(json!({"action": "example", "input": {"text": "x".repeat(MAX_TEXT_CHARS + 1)}})),
            "input.text"
        );
        assert_eq!(
            ExecuteRequest::parse(&json!([1])).unwrap_err().status(),
            400
        );
    }
}
