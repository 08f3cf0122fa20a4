//! Business logic. Pure modules (no `worker` types) are unit-tested natively;
//! the rest implements I/O with Workers bindings.
pub mod content;
pub mod database;
pub mod granulator;
pub mod health;
pub mod job;
