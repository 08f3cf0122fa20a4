//! Every SQL statement of the worker, split by table. Typed rows in and
//! out (integer columns as integers), binds only.
//!
//! Multi-row writes pass their rows as one JSON parameter and expand it with
//! `json_each`, so finishing a job is one atomic `batch` of a fixed number of
//! statements whatever the outline's size: elements are inserted one depth at
//! a time and find their parent's id through the unique `(job_id, path)`.
//! D1 round trips are counted (reported in `X-D1-Round-Trips`).

mod alerts;
mod attempts;
mod claims;
mod elements;
mod jobs;
mod partials;
mod runs;
mod spend;
mod stats;
mod streams;
mod templates;
mod validation;

pub use attempts::AttemptRow;
pub use claims::outline_columns;
pub use jobs::{JobFilter, JobPayload, JobRow};
pub use runs::{Completion, Failure};
pub use spend::{DaySpend, JobBound, Refused, Reservation, SCHEMA};
pub use stats::{
    AnalyticsDay, ClientJobs, ConsumptionTotals, DailyConsumption, JobsByStatus, ModelConsumption,
    ProviderConsumption, TemplatePerformance, TypeJobs,
};
// The job lifecycle's types are the kit's.
pub use bitware_kit::jobs::{
    run_superseded, CancelledRun, Claim, JobState, Moment, NewJob, PlannedCall, STOPPED_RUN_NOTE,
};
pub use validation::{NewValidation, ValidationRow};

use crate::types::env::{App, DB};
use bitware_kit::d1::D1;
use bitware_kit::error::AppResult;
use bitware_kit::jobs::D1Jobs;

// The kit's D1 handle and binds, by their short names in every file here.
use bitware_kit::d1::bind::{flag, i, n, on, ot, t, u};
use bitware_kit::d1::{batch_rows, changes, sql_bool, sql_flag, to_json, NOW};

/// The worker's D1 (the kit's handle: round trips counted, binds only, the
/// guarded batch), with every statement of the worker as a method.
pub struct Database {
    db: D1,
}

impl std::ops::Deref for Database {
    type Target = D1;
    fn deref(&self) -> &D1 {
        &self.db
    }
}

impl Database {
    pub fn new(app: &App) -> AppResult<Database> {
        Ok(Database {
            db: D1::open(&app.env, DB)?,
        })
    }

    /// The job store on this database: the kit's, on `granulation_jobs`.
    pub fn jobs(&self) -> D1Jobs<'_> {
        D1Jobs::new(&self.db, spend::SCHEMA)
    }
}

// The lifecycle and the ledger are the kit's, on the granulator's tables.
bitware_kit::delegate_job_store!(Database, |db| db.jobs());
bitware_kit::delegate_spend_ledger!(Database, |db| db.ledger());
