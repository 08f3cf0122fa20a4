//! Business logic. Pure modules (no `worker` types) are unit-tested natively.
pub mod normalize;
pub mod offline;
pub mod outline;
pub mod validation;
pub mod ai_provider;
