//! Business logic. Pure modules (no `worker` types) are unit-tested natively;
//! the rest implements I/O with Workers bindings.
pub mod ai_provider;
pub mod fanout;
pub mod normalize;
pub mod offline;
pub mod outline;
pub mod progress;
pub mod validation;

pub mod economy;
pub mod envelope;
pub mod stats;
pub mod storage;
pub mod timing;

pub mod database;
pub mod granulator;
pub mod health;
pub mod job_events;
pub mod jobs;
pub mod kam;
pub mod migrations;
pub mod queue_jobs;
pub mod spend;
pub mod templates;
