//! Types shared across the crate: structure types and API shapes.
pub mod structure;
