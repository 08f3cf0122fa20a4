//! The one error type of a worker and its one mapping to HTTP:
//! `{"error": "<what was wrong>", "status": N, "code": "<machine_code>", "details"?: …}`.

use serde_json::{json, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    BadRequest,
    Unauthorized,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    Conflict,
    PayloadTooLarge,
    UnsupportedMediaType,
    /// Well-formed but cannot be done as asked (e.g. over budget).
    Unprocessable,
    /// A rate limit or spend cap: `details.retryAfterSeconds` says when to retry.
    TooManyRequests,
    Internal,
    NotImplemented,
    /// An upstream AI provider failed.
    BadGateway,
    /// A dependency (KAM, D1, KV, R2, provider configuration) is unavailable.
    Unavailable,
    /// The request's deadline passed.
    GatewayTimeout,
}

impl Kind {
    pub fn status(self) -> u16 {
        match self {
            Kind::BadRequest => 400,
            Kind::Unauthorized => 401,
            Kind::Forbidden => 403,
            Kind::NotFound => 404,
            Kind::MethodNotAllowed => 405,
            Kind::Conflict => 409,
            Kind::PayloadTooLarge => 413,
            Kind::UnsupportedMediaType => 415,
            Kind::Unprocessable => 422,
            Kind::TooManyRequests => 429,
            Kind::Internal => 500,
            Kind::NotImplemented => 501,
            Kind::BadGateway => 502,
            Kind::Unavailable => 503,
            Kind::GatewayTimeout => 504,
        }
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct AppError {
    pub kind: Kind,
    pub code: &'static str,
    pub message: String,
    pub details: Option<Value>,
}

pub type AppResult<T> = Result<T, AppError>;

impl AppError {
    pub fn new(kind: Kind, code: &'static str, message: impl Into<String>) -> AppError {
        AppError {
            kind,
            code,
            message: message.into(),
            details: None,
        }
    }

    #[must_use]
    pub fn with_details(mut self, details: Value) -> AppError {
        self.details = Some(details);
        self
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> AppError {
        AppError::new(Kind::BadRequest, code, message)
    }

    /// A 400 that names the offending field.
    pub fn invalid_field(field: &str, message: impl Into<String>) -> AppError {
        let message = message.into();
        AppError::new(
            Kind::BadRequest,
            "invalid_field",
            format!("{field}: {message}"),
        )
        .with_details(json!({"field": field}))
    }

    pub fn unauthorized(message: impl Into<String>) -> AppError {
        AppError::new(Kind::Unauthorized, "unauthorized", message)
    }

    pub fn forbidden(message: impl Into<String>) -> AppError {
        AppError::new(Kind::Forbidden, "forbidden", message)
    }

    pub fn not_found(message: impl Into<String>) -> AppError {
        AppError::new(Kind::NotFound, "not_found", message)
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> AppError {
        AppError::new(Kind::Conflict, code, message)
    }

    pub fn internal(message: impl Into<String>) -> AppError {
        AppError::new(Kind::Internal, "internal_error", message)
    }

    pub fn unavailable(code: &'static str, message: impl Into<String>) -> AppError {
        AppError::new(Kind::Unavailable, code, message)
    }

    /// D1 failed: the job cannot be recorded, so nothing else is attempted.
    /// A CHECK constraint that refuses a value is the request's fault, not an
    /// outage: a 400, so clients and the Resource Manager do not retry it
    /// and no false outage alarm is raised. (Input is validated at the edge;
    /// this is the net under that.)
    pub fn database(context: &str, e: impl std::fmt::Display) -> AppError {
        let text = e.to_string();
        worker_log(&format!("database error while {context}: {text}"));
        if text.contains("CHECK constraint failed") {
            return AppError::bad_request(
                "invalid_input",
                format!("the request holds a value outside what can be stored ({context}); check the lengths and characters of its text fields"),
            );
        }
        AppError::unavailable(
            "database_unavailable",
            format!("the database is unavailable ({context})"),
        )
    }

    pub fn status(&self) -> u16 {
        self.kind.status()
    }

    pub fn body(&self) -> Value {
        let mut body = json!({"error": self.message, "status": self.status(), "code": self.code});
        if let Some(details) = &self.details {
            body["details"] = details.clone();
        }
        body
    }
}

/// Log a line (never with a credential in it). Native tests print to stderr.
pub fn worker_log(line: &str) {
    #[cfg(all(feature = "worker", target_arch = "wasm32"))]
    worker::console_error!("{line}");
    #[cfg(not(all(feature = "worker", target_arch = "wasm32")))]
    eprintln!("{line}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_has_error_status_code_and_details() {
        let e = AppError::invalid_field("input.topic", "is required");
        assert_eq!(e.status(), 400);
        assert_eq!(
            e.body(),
            json!({"error": "input.topic: is required", "status": 400, "code": "invalid_field", "details": {"field": "input.topic"}})
        );
        assert_eq!(AppError::unavailable("kam_unavailable", "x").status(), 503);
        assert!(AppError::not_found("x").body().get("details").is_none());
    }

    #[test]
    fn a_check_constraint_is_the_input_s_fault_and_other_d1_errors_are_outages() {
        let e = AppError::database(
            "creating a job",
            "D1_ERROR: CHECK constraint failed: length(topic) > 0: SQLITE_CONSTRAINT",
        );
        assert_eq!((e.status(), e.code), (400, "invalid_input"));
        assert!(
            !e.message.contains("length(topic)"),
            "no schema detail leaks"
        );
        let e = AppError::database("creating a job", "D1_ERROR: database is locked");
        assert_eq!((e.status(), e.code), (503, "database_unavailable"));
    }
}
