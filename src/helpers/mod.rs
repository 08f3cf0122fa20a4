//! Small pure helpers: prompts, economy.
pub mod economy;
pub mod prompts;
