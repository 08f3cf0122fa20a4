//! The Resource Manager envelope (contracts §2) for the actions of
//! `/api/execute` that are not a granulation: `validate` and `estimate`
//! answer with the same top-level fields as `granulate` (`success`, `model`,
//! `output`, `usage.tokens`, `duration`, `cost`, `metadata.workerChain`), so
//! the Resource Manager reads every action the same way.

use crate::services::outline;
use serde_json::{json, Value};

pub struct Envelope<'a> {
    pub action: &'static str,
    pub output: Value,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub duration_ms: u64,
    /// `None`: unknown (an unpriced model), never 0.
    pub cost: Option<f64>,
    pub model: Option<&'a str>,
}

impl Envelope<'_> {
    pub fn into_json(self) -> Value {
        json!({
            "success": true,
            "model": self.model,
            "output": self.output,
            "usage": {"tokens": {"input": self.input_tokens, "output": self.output_tokens, "cached": 0}},
            "duration": self.duration_ms,
            "cost": self.cost,
            "metadata": {"workerChain": outline::worker_chain(), "action": self.action},
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_estimate_envelope_has_every_field_the_resource_manager_reads() {
        let e = Envelope {
            action: "estimate",
            output: json!({"estimate": {}}),
            input_tokens: 0,
            output_tokens: 0,
            duration_ms: 3,
            cost: Some(0.0),
            model: Some("gpt-4o-mini"),
        }
        .into_json();
        for field in [
            "success", "model", "output", "usage", "duration", "cost", "metadata",
        ] {
            assert!(e.get(field).is_some(), "{field}");
        }
        assert_eq!(e["usage"]["tokens"]["input"], 0);
        assert_eq!(e["metadata"]["action"], "estimate");
        assert!(e["metadata"]["workerChain"].is_object());
    }
}
