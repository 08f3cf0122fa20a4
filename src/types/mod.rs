//! Types shared across the crate: structure types, templates and API shapes.
pub mod api;
pub mod bodies;
pub mod env;
pub mod job;
pub mod limits;
pub mod structure;
pub mod template;
