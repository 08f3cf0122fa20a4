//! Prices and costs (seed §9.2).
//!
//! Prices are USD per 1M tokens, dated, and may be overridden per deployment
//! by the `PRICING` JSON var. A model with no price has an unknown cost
//! (`None`, serialised as `null`) — never 0, which would hide real spend.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const PRICING_DATE: &str = "2026-11-01";

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Price {
    pub input: f64,
    pub output: f64,
    /// Price of prompt tokens served from the provider's cache, when it differs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached_input: Option<f64>,
    /// Price of prompt tokens written to the provider's cache (Anthropic:
    /// 1.25× input for the 5-minute cache), when it differs from `input`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_write: Option<f64>,
}

impl Price {
    /// The dearest a prompt token can be billed: a budget's worst case never
    /// assumes a cache hit, and a prompt may be written to the cache.
    pub fn worst_input(&self) -> f64 {
        self.input
            .max(self.cache_write.unwrap_or(self.input))
            .max(self.cached_input.unwrap_or(self.input))
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenUsage {
    pub input: u64,
    pub output: u64,
    /// Part of `input` that the provider served from its prompt cache.
    #[serde(default)]
    pub cached: u64,
    /// Part of `input` that the provider wrote to its prompt cache (billed
    /// at the model's `cache_write` price; Anthropic only).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cache_write: u64,
}

// serde's `skip_serializing_if` passes a reference.
#[allow(clippy::trivially_copy_pass_by_ref)]
fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl TokenUsage {
    pub fn total(&self) -> u64 {
        self.input + self.output
    }
}

impl std::ops::AddAssign for TokenUsage {
    fn add_assign(&mut self, other: TokenUsage) {
        self.input += other.input;
        self.output += other.output;
        self.cached += other.cached;
        self.cache_write += other.cache_write;
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pricing {
    pub date: String,
    pub currency: String,
    pub unit: String,
    pub models: BTreeMap<String, Price>,
}

/// Model, input, output, cached input (a cache read), cache write; `None`
/// where the provider bills no difference. OpenAI caches for free (no write
/// price) and reads at 25-50 % of input; Anthropic reads at 0.1× and writes
/// at 1.25× (the 5-minute cache); Workers AI publishes no cache price.
type DefaultPrice = (&'static str, f64, f64, Option<f64>, Option<f64>);
const DEFAULT_PRICES: [DefaultPrice; 10] = [
    ("gpt-4o-mini", 0.15, 0.60, Some(0.075), None),
    ("gpt-4.1-mini", 0.40, 1.60, Some(0.10), None),
    ("gpt-4.1-nano", 0.10, 0.40, Some(0.025), None),
    ("gpt-4.1", 2.00, 8.00, Some(0.50), None),
    ("gpt-4o", 2.50, 10.00, Some(1.25), None),
    ("claude-haiku-4-5", 1.00, 5.00, Some(0.10), Some(1.25)),
    ("claude-sonnet-4-5", 3.00, 15.00, Some(0.30), Some(3.75)),
    ("@cf/meta/llama-3.1-8b-instruct", 0.282, 0.827, None, None),
    (
        "@cf/meta/llama-3.3-70b-instruct-fp8-fast",
        0.293,
        2.253,
        None,
        None,
    ),
    ("offline", 0.0, 0.0, Some(0.0), None),
];

impl Default for Pricing {
    fn default() -> Self {
        Pricing {
            date: PRICING_DATE.to_string(),
            currency: "USD".to_string(),
            unit: "per 1M tokens".to_string(),
            models: DEFAULT_PRICES
                .iter()
                .map(|(m, i, o, c, w)| {
                    (
                        m.to_string(),
                        Price {
                            input: *i,
                            output: *o,
                            cached_input: *c,
                            cache_write: *w,
                        },
                    )
                })
                .collect(),
        }
    }
}

#[derive(Deserialize)]
struct PricingOverride {
    date: Option<String>,
    #[serde(default)]
    models: BTreeMap<String, Price>,
}

impl Pricing {
    /// Defaults merged with a `PRICING` override such as
    /// `{"date":"2026-12-01","models":{"gpt-4o-mini":{"input":0.1,"output":0.4}}}`.
    pub fn with_override(json: Option<&str>) -> Result<Pricing, String> {
        let mut pricing = Pricing::default();
        let Some(json) = json.filter(|s| !s.trim().is_empty()) else {
            return Ok(pricing);
        };
        let over: PricingOverride =
            serde_json::from_str(json).map_err(|e| format!("PRICING is not valid: {e}"))?;
        for (model, price) in over.models {
            let cache = [price.cached_input, price.cache_write];
            if !(price.input >= 0.0
                && price.output >= 0.0
                && cache.iter().flatten().all(|p| *p >= 0.0))
            {
                return Err(format!("PRICING for {model} must not be negative"));
            }
            pricing.models.insert(model, price);
        }
        if let Some(date) = over.date {
            pricing.date = date;
        }
        Ok(pricing)
    }

    /// Exact model name, else the longest priced prefix (dated snapshots
    /// such as `gpt-4o-mini-2024-07-18` cost what their family costs).
    pub fn price(&self, model: &str) -> Option<Price> {
        if let Some(p) = self.models.get(model) {
            return Some(*p);
        }
        self.models
            .iter()
            .filter(|(name, _)| {
                model.starts_with(name.as_str()) && model[name.len()..].starts_with('-')
            })
            .max_by_key(|(name, _)| name.len())
            .map(|(_, p)| *p)
    }

    /// Uncached input at the input price, cache reads at the cached price,
    /// cache writes at the write price (each `input` when the model has
    /// none), output at the output price.
    pub fn cost(&self, model: &str, usage: &TokenUsage) -> Option<f64> {
        let p = self.price(model)?;
        let cached = usage.cached.min(usage.input);
        let written = usage.cache_write.min(usage.input - cached);
        let fresh = (usage.input - cached - written) as f64;
        let cost = (fresh * p.input
            + cached as f64 * p.cached_input.unwrap_or(p.input)
            + written as f64 * p.cache_write.unwrap_or(p.input)
            + usage.output as f64 * p.output)
            / 1e6;
        Some(round_usd(cost))
    }
}

/// Costs are kept to the micro-dollar.
pub fn round_usd(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

/// Sum of costs where an unknown part makes the total unknown.
pub fn sum_costs(costs: impl IntoIterator<Item = Option<f64>>) -> Option<f64> {
    costs
        .into_iter()
        .try_fold(0.0, |acc, c| c.map(|c| round_usd(acc + c)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn costs_use_per_million_prices() {
        let p = Pricing::default();
        let usage = TokenUsage {
            input: 1_000_000,
            output: 1_000_000,
            ..Default::default()
        };
        assert_eq!(p.cost("gpt-4o-mini", &usage), Some(0.75));
        assert_eq!(p.cost("claude-haiku-4-5", &usage), Some(6.0));
        assert_eq!(
            p.cost("@cf/meta/llama-3.1-8b-instruct", &usage),
            Some(1.109)
        );
    }

    #[test]
    fn cached_prompt_tokens_use_the_cached_price() {
        let p = Pricing::default();
        let usage = TokenUsage {
            input: 1000,
            output: 0,
            cached: 400,
            ..Default::default()
        };
        // 600 × 0.15 + 400 × 0.075 per 1M
        assert_eq!(p.cost("gpt-4o-mini", &usage), Some(0.00012));
    }

    #[test]
    fn cache_writes_use_the_write_price_and_reads_the_cached_price() {
        let p = Pricing::default();
        let usage = TokenUsage {
            input: 10_000,
            output: 1_000,
            cached: 4_000,
            cache_write: 2_000,
        };
        // Haiku: 4,000 fresh × 1.00 + 4,000 read × 0.10 + 2,000 written × 1.25 + 1,000 out × 5.00
        assert_eq!(p.cost("claude-haiku-4-5", &usage), Some(0.0119));
        // A model without a write price bills a write as plain input: 6,000 × 0.15 + 4,000 × 0.075 + 1,000 × 0.60
        assert_eq!(p.cost("gpt-4o-mini", &usage), Some(0.0018));
        // Reads and writes never exceed the prompt they are part of.
        let odd = TokenUsage {
            input: 100,
            output: 0,
            cached: 80,
            cache_write: 80,
        };
        assert_eq!(p.cost("claude-haiku-4-5", &odd), Some(0.000033));
    }

    #[test]
    fn every_default_model_carries_its_cache_prices_and_the_worst_input_price() {
        let p = Pricing::default();
        for (model, price) in &p.models {
            assert!(
                price.cached_input.is_some() || model.starts_with("@cf/"),
                "{model}"
            );
            assert!(price.cached_input.unwrap_or(0.0) <= price.input, "{model}");
        }
        let sonnet = p.price("claude-sonnet-4-5").unwrap();
        assert_eq!(sonnet.cache_write, Some(3.75));
        assert_eq!(sonnet.worst_input(), 3.75);
        assert_eq!(p.price("gpt-4o-mini").unwrap().worst_input(), 0.15);
        assert!(Pricing::with_override(Some(
            r#"{"models":{"x":{"input":1,"output":1,"cacheWrite":-1}}}"#
        ))
        .is_err());
    }

    #[test]
    fn dated_snapshots_use_their_family_price_but_unknown_models_are_unknown() {
        let p = Pricing::default();
        assert_eq!(p.price("gpt-4o-mini-2024-07-18"), p.price("gpt-4o-mini"));
        assert_eq!(p.price("gpt-4o-2024-08-06"), p.price("gpt-4o"));
        assert_eq!(
            p.cost(
                "mystery-model",
                &TokenUsage {
                    input: 10,
                    output: 10,
                    ..Default::default()
                }
            ),
            None
        );
        assert_eq!(p.price("gpt-4oops"), None);
    }

    #[test]
    fn override_merges_and_rejects_garbage() {
        let p = Pricing::with_override(Some(
            r#"{"date":"2027-01-01","models":{"mock-model":{"input":1,"output":2}}}"#,
        ))
        .unwrap();
        assert_eq!(p.date, "2027-01-01");
        assert_eq!(p.price("mock-model").unwrap().output, 2.0);
        assert!(p.price("gpt-4o").is_some());
        assert!(Pricing::with_override(Some("{nope")).is_err());
        assert!(
            Pricing::with_override(Some(r#"{"models":{"x":{"input":-1,"output":1}}}"#)).is_err()
        );
    }

    #[test]
    fn an_unknown_part_makes_a_sum_unknown() {
        assert_eq!(sum_costs([Some(0.1), Some(0.2)]), Some(0.3));
        assert_eq!(sum_costs([Some(0.1), None]), None);
        assert_eq!(sum_costs([]), Some(0.0));
    }
}
