//! Types shared across the crate: structure types, templates and API shapes.
pub mod api;
pub mod bodies;
pub mod catalog;
pub mod env;
pub mod job;
pub mod outline;
pub use bitware_kit::limits;
pub mod placeholders;
pub use bitware_kit::{pricing, provider, provider_setup};
pub mod purpose;
pub mod request;
pub mod rules;
pub mod structure;
pub mod template;
