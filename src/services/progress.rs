//! Pure rules of jobs that outlive their request: the live progress counter a
//! streaming call feeds, the percent and remaining-time estimate read from a
//! job row (by the granulator's stages), the request hash that binds an
//! idempotency key to its request; where a job runs, `Prefer:
//! respond-async` and the join poll's backoff are the kit's.

use crate::types::api::JobRequest;
use crate::types::job::Stage;
use serde_json::json;

/// The live counter a streaming model call feeds (the kit's).
pub use bitware_kit::ai::Progress;

/// A job's progress as the status route and the events stream report it.
#[derive(Debug, Clone, PartialEq)]
pub struct Estimate {
    pub percent: u8,
    pub remaining_ms: Option<u64>,
}

/// Percent from the stage, and inside `generating` from tokens and elements
/// received against what the outline is expected to need (whichever is
/// further); remaining time extrapolates the generation's rate so far.
pub fn estimate(
    stage: Stage,
    tokens: u64,
    expected_tokens: u64,
    elements: u64,
    expected_elements: u64,
    generating_ms: u64,
) -> Estimate {
    let fraction = |done: u64, expected: u64| {
        if expected == 0 {
            0.0
        } else {
            done as f64 / expected as f64
        }
    };
    match stage {
        Stage::Queued => Estimate {
            percent: 0,
            remaining_ms: None,
        },
        Stage::Generating => {
            let f = fraction(tokens, expected_tokens)
                .max(fraction(elements, expected_elements))
                .min(0.99);
            let remaining_ms = (f >= 0.02 && generating_ms > 0)
                .then(|| (generating_ms as f64 * (1.0 - f) / f) as u64);
            Estimate {
                percent: 5 + (f * 80.0) as u8,
                remaining_ms,
            }
        }
        Stage::Refining => Estimate {
            percent: 85,
            remaining_ms: None,
        },
        Stage::Validating => Estimate {
            percent: 90,
            remaining_ms: None,
        },
        Stage::Storing => Estimate {
            percent: 97,
            remaining_ms: Some(1_000),
        },
        Stage::Done | Stage::Failed | Stage::Cancelled => Estimate {
            percent: 100,
            remaining_ms: Some(0),
        },
    }
}

/// Hex SHA-256 of what the request asks for. `timeout` and the async
/// preference only say how the caller waits, so a retry may change them.
pub fn request_hash(request: &JobRequest) -> String {
    bitware_kit::jobs::wait::request_hash(
        &json!({"params": request.params, "config": request.config}),
    )
}

/// Where a synchronous job runs (the job row's `run_mode`), `Prefer:
/// respond-async`, the join poll's backoff and a job's links: the kit's.
pub use bitware_kit::jobs::wait::{job_links, placement, poll_delay_ms, prefers_async};
pub use bitware_kit::jobs::RunMode as Placement;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::api::ExecuteRequest;
    use crate::types::request::parse_execute;
    use serde_json::Value;

    /// These bodies are about the request's fields: they name the action.
    fn job(mut body: Value) -> JobRequest {
        if let Some(map) = body.as_object_mut() {
            map.entry("action").or_insert(json!("granulate"));
        }
        match parse_execute(&body, None).unwrap() {
            ExecuteRequest::Granulate { request, .. } => request,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn request_hash_ignores_timeout_and_sees_every_field_that_shapes_the_outline() {
        let a = job(json!({"input": {"topic": "Rust", "structureType": "quiz"}, "timeout": 30000}));
        let b = job(json!({"params": {"topic": "Rust", "structureType": "quiz"}, "timeout": 5000}));
        let c = job(json!({"input": {"topic": "Rust", "structureType": "course"}}));
        let d = job(
            json!({"input": {"topic": "Rust", "structureType": "quiz"}, "config": {"temperature": 0.1}}),
        );
        assert_eq!(request_hash(&a), request_hash(&b));
        assert_eq!(request_hash(&a).len(), 64);
        assert_ne!(request_hash(&a), request_hash(&c));
        assert_ne!(request_hash(&a), request_hash(&d));
    }

    #[test]
    fn percent_follows_tokens_or_elements_and_estimates_what_is_left() {
        let e = estimate(Stage::Generating, 500, 1_000, 0, 50, 5_000);
        assert_eq!(e.percent, 45);
        assert_eq!(e.remaining_ms, Some(5_000));
        let by_elements = estimate(Stage::Generating, 100, 1_000, 40, 50, 5_000);
        assert_eq!(by_elements.percent, 69);
        assert_eq!(estimate(Stage::Generating, 0, 1_000, 0, 50, 0).percent, 5);
        assert_eq!(
            estimate(Stage::Generating, 0, 1_000, 0, 50, 0).remaining_ms,
            None
        );
        // Never 100 % before the job is done, even past the expectation.
        assert!(estimate(Stage::Generating, 5_000, 1_000, 0, 0, 9_000).percent < 100);
        assert_eq!(estimate(Stage::Queued, 0, 0, 0, 0, 0).percent, 0);
        assert_eq!(estimate(Stage::Done, 0, 0, 0, 0, 0).percent, 100);
    }
}
