//! Business logic. Pure modules (no `worker` types) are unit-tested natively;
//! the rest implements I/O with Workers bindings.
/// The provider chain is the kit's (`bitware_kit::ai`).
pub use bitware_kit::ai as ai_provider;
pub mod fanout;
pub mod normalize;
pub mod offline;
pub mod outline;
pub mod partial;
pub mod progress;
pub mod validation;

pub mod alerts;
pub mod economy;
pub mod envelope;
pub mod stats;
pub use bitware_kit::{kam, storage, timing};

pub mod database;
pub mod granulator;
pub mod health;
pub mod job_cancel;
pub mod job_events;
pub mod jobs;
pub mod migrations;
pub mod queue_jobs;
pub mod spend;
pub mod templates;
