//! The budget of a fan-out: every call's share of what is left, sized so
//! that all of them together never pass it in the worst case.

use super::{branch_schema, skeleton_expected_tokens};
use crate::helpers::prompts;
use crate::services::ai_provider::{affordable_output_tokens, worst_case_input_tokens, Budget};
use crate::types::pricing::Price;
use crate::types::rules::StructureRules;
use crate::types::structure::StructureType;

/// One call of the fan-out as the budget sees it.
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

/// Bytes of a branch prompt before its skeleton is known: the skeleton's
/// expected size stands in for it.
pub fn branch_input_bytes(st: StructureType, counts: &[u32], rules: &StructureRules) -> usize {
    let system = prompts::system_prompt(st).len();
    let schema = branch_schema(st, counts, rules).to_string().len();
    system + schema + 1_200 + skeleton_expected_tokens(counts) as usize * 4
}
