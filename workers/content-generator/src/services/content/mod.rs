//! The Content Generator's domain (pure, unit-tested natively): from the
//! granulator's outline to the content of every element.
//!
//! `plan` walks the outline into elements (targets from
//! `wordCountEstimates`, priorities from `contentSpecs`) and batches (one
//! model call each, per level-1 branch); `request_for` is a batch's call;
//! `check_batch` accepts or refuses its answer; `assemble` puts the answers
//! on the outline and scores the result.

mod assemble;
mod check;
mod plan;
mod prompt;
#[cfg(test)]
mod tests;

pub use assemble::{assemble, Generated, COVERAGE_WEIGHT, LENGTH_WEIGHT, MAX_PROBLEMS};
pub use check::check_batch;
pub use plan::{
    plan, Batch, Element, Plan, Priority, ROOT_PATH, TOKENS_PER_ELEMENT, TOKENS_PER_WORD,
};
pub use prompt::{node_at, request_for, schema, GENERATE, MAX_BATCH_OUTPUT_TOKENS, SCHEMA_NAME};

/// Words in a text as written: whitespace-separated runs that hold at least
/// one letter or digit, so Markdown markers (`-`, `##`, `**`) and lone
/// punctuation do not count. (A script written without spaces, such as
/// Chinese, counts one word per run: the targets assume spaced languages.)
pub fn count_words(text: &str) -> u32 {
    text.split_whitespace()
        .filter(|w| w.chars().any(char::is_alphanumeric))
        .count() as u32
}
