//! Small pure helpers: auth parsing, economy, prompts, HTTP responses.
pub mod auth;
pub mod economy;
pub mod http;
pub mod kam_answer;
pub mod log;
pub mod prompts;
