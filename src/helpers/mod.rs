//! Small pure helpers: economy, prompts. Auth parsing, KAM's answers, HTTP
//! responses and the request log are the kit's, named here where the seed
//! puts them.
pub use bitware_kit::{auth, http, kam_answer, log};
pub mod economy;
pub mod prompts;
