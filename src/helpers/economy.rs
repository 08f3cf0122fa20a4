//! Efficiency figures (seed §9.2): throughput of a job or a period, rated.
//! Prices and costs are `types::pricing`.

use crate::types::pricing::TokenUsage;
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Efficiency {
    /// All tokens (input + output) per second of elapsed time.
    pub tokens_per_second: f64,
    /// Generated tokens per second: what the rating is about.
    pub output_tokens_per_second: f64,
    pub cost_per_token: Option<f64>,
    pub rating: &'static str,
}

/// The bands of `Efficiency::rating` (also in /help and README).
pub const EFFICIENCY_RATINGS: &[(&str, &str)] = &[
    ("free", "no model tokens were spent (the offline provider, or nothing ran)"),
    ("low", "under 15 generated tokens per second"),
    ("medium", "15 to 40 generated tokens per second"),
    ("high", "40 to 1,000 generated tokens per second (hosted models stream at 40-200)"),
    ("instant", "over 1,000 generated tokens per second: faster than a model generates, so a cached, mocked or very fast local answer; not a speed rating"),
];

/// Throughput of a job (or a period) rated in the bands above.
pub fn efficiency_of(
    output_tokens: f64,
    total_tokens: f64,
    ms: f64,
    cost: Option<f64>,
) -> Efficiency {
    let per_second = |tokens: f64| {
        if ms > 0.0 {
            tokens / (ms / 1000.0)
        } else {
            0.0
        }
    };
    let out_tps = per_second(output_tokens);
    let rating = if total_tokens <= 0.0 {
        "free"
    } else if ms <= 0.0 || out_tps > 1_000.0 {
        "instant"
    } else if out_tps >= 40.0 {
        "high"
    } else if out_tps >= 15.0 {
        "medium"
    } else {
        "low"
    };
    Efficiency {
        tokens_per_second: (per_second(total_tokens) * 10.0).round() / 10.0,
        output_tokens_per_second: (out_tps * 10.0).round() / 10.0,
        cost_per_token: cost
            .filter(|_| total_tokens > 0.0)
            .map(|c| c / total_tokens),
        rating,
    }
}

/// Seed §9.2: one job's efficiency over its elapsed time.
pub fn efficiency(usage: &TokenUsage, processing_ms: u64, cost: Option<f64>) -> Efficiency {
    efficiency_of(
        usage.output as f64,
        usage.total() as f64,
        processing_ms as f64,
        cost,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn efficiency_rates_generation_speed_and_names_free_and_instant_answers() {
        let usage = |input, output| TokenUsage {
            input,
            output,
            ..Default::default()
        };
        let e = efficiency(&usage(500, 500), 10_000, Some(0.001));
        assert_eq!(
            (e.tokens_per_second, e.output_tokens_per_second),
            (100.0, 50.0)
        );
        assert_eq!(e.rating, "high");
        assert_eq!(e.cost_per_token, Some(0.000001));
        assert_eq!(efficiency(&usage(500, 300), 10_000, None).rating, "medium");
        assert_eq!(efficiency(&usage(500, 100), 10_000, None).rating, "low");
        // A free offline job is not "low"...
        assert_eq!(
            efficiency(&TokenUsage::default(), 3, Some(0.0)).rating,
            "free"
        );
        assert_eq!(efficiency(&TokenUsage::default(), 0, None).rating, "free");
        // ...and an instant mock answer is not "high".
        assert_eq!(efficiency(&usage(1000, 1000), 10, None).rating, "instant");
        for (name, _) in EFFICIENCY_RATINGS {
            assert!(["free", "low", "medium", "high", "instant"].contains(name));
        }
    }
}
