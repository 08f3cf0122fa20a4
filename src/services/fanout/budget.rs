//! The budget of a fan-out: every call's share of what is left (the kit's
//! `ai::shares`, re-exported), and what a branch's prompt weighs before its
//! skeleton is known.

use super::{branch_schema, skeleton_expected_tokens};
use crate::helpers::prompts;
use crate::types::rules::StructureRules;
use crate::types::structure::StructureType;

pub use bitware_kit::ai::shares::{budget_shares, shares_fit, CallCost};

/// Bytes of a branch prompt before its skeleton is known: the skeleton's
/// expected size stands in for it.
pub fn branch_input_bytes(
    st: StructureType,
    counts: &[u32],
    parts: usize,
    rules: &StructureRules,
) -> usize {
    let system = prompts::system_prompt(st).len();
    let schema = branch_schema(st, counts, rules).to_string().len();
    system + schema + 1_200 + skeleton_expected_tokens(counts, parts) as usize * 4
}
