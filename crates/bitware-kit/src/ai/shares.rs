//! A budget split between model calls that run at once: every call's share
//! of what is left, sized so that all of them together never pass it in the
//! worst case (moved from the granulator's fan-out for every worker that
//! makes parallel calls, issue 26).

use super::{affordable_output_tokens, worst_case_input_tokens, Budget};
use crate::pricing::Price;

/// One call of a fan-out as the budget sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CallCost {
    pub input_bytes: usize,
    pub max_tokens: u32,
    pub expected_tokens: u32,
}

/// Split what is left of the job's budget between calls in flight together,
/// in proportion to each one's worst case (prompt plus `max_tokens` at the
/// first provider's price): every call then clamps its `max_tokens`, retries
/// included, to its share, so all of them together never pass the budget.
pub fn budget_shares(
    left: Option<f64>,
    price: Option<Price>,
    calls: &[CallCost],
) -> Vec<Option<f64>> {
    let Some(left) = left else {
        return vec![None; calls.len()];
    };
    let worst = |c: &CallCost| {
        let input = worst_case_input_tokens(c.input_bytes) as f64;
        let output = c.max_tokens as f64;
        match price {
            Some(p) if p.input + p.output > 0.0 => input * p.worst_input() + output * p.output,
            _ => input + output,
        }
    };
    let total: f64 = calls.iter().map(worst).sum();
    calls
        .iter()
        .map(|c| {
            Some(if total > 0.0 {
                // Floor to a micro-dollar so rounding never adds up past the budget.
                (left * worst(c) / total * 1e6).floor() / 1e6
            } else {
                left / calls.len().max(1) as f64
            })
        })
        .collect()
}

/// Whether every call can make its expected output within its share (the
/// first provider's price); if not, the job is made in one call instead.
pub fn shares_fit(
    price: Option<Price>,
    model: &str,
    shares: &[Option<f64>],
    calls: &[CallCost],
) -> bool {
    shares.iter().zip(calls).all(|(share, c)| {
        affordable_output_tokens(
            price,
            model,
            &Budget {
                limit_usd: *share,
                spent_usd: 0.0,
            },
            worst_case_input_tokens(c.input_bytes),
            c.max_tokens,
            c.expected_tokens,
        )
        .is_ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_of_the_budget_add_up_to_at_most_what_is_left() {
        let price = Some(Price {
            input: 0.15,
            output: 0.6,
            cached_input: None,
            cache_write: None,
        });
        let calls = vec![
            CallCost {
                input_bytes: 3_000,
                max_tokens: 1_024,
                expected_tokens: 360,
            },
            CallCost {
                input_bytes: 5_000,
                max_tokens: 2_120,
                expected_tokens: 810,
            },
            CallCost {
                input_bytes: 5_000,
                max_tokens: 2_120,
                expected_tokens: 810,
            },
        ];
        let shares = budget_shares(Some(0.01), price, &calls);
        let sum: f64 = shares.iter().map(|s| s.unwrap()).sum();
        assert!(sum <= 0.01 && sum > 0.0099, "{shares:?}");
        assert!(shares[1] > shares[0] && shares[1] == shares[2]);
        assert!(shares_fit(price, "m", &shares, &calls));
        // A budget that cannot pay every call's expected output: not a fan-out.
        let tiny = budget_shares(Some(0.001), price, &calls);
        assert!(!shares_fit(price, "m", &tiny, &calls));
        assert_eq!(budget_shares(None, price, &calls), vec![None, None, None]);
        // A model without a price cannot be bounded under a budget.
        assert!(!shares_fit(None, "m", &shares, &calls));
    }
}
