//! Small pure helpers of this worker. Auth parsing, HTTP responses and the
//! request log are the kit's, named here where the seed puts them.
pub use bitware_kit::{auth, http, log};
