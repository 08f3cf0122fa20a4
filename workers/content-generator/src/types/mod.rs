//! This worker's types: its bindings and configuration, its API shapes.
pub mod env;
pub mod request;
pub mod structure;
