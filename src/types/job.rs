//! A job's lifecycle as D1 stores it and the API shows it: its status and
//! where it runs (the kit's), the pipeline stage it is in (the granulator's
//! names). Serde uses the lowercase strings of the schema's CHECK
//! constraints (`schema/granulator.sql`).

use serde::{Deserialize, Serialize};
use std::fmt;

// A job's status, what a cancel does to it and where it runs are the kit's.
pub use bitware_kit::jobs::{JobStatus, OnCancel, RunMode};

/// `granulation_jobs.stage`: where the pipeline is. `Queued` is never
/// stored: it is what a queued job that no consumer has started shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    Queued,
    Generating,
    Refining,
    Validating,
    Storing,
    Done,
    Failed,
    Cancelled,
}

impl Stage {
    pub const ALL: [Stage; 8] = [
        Stage::Queued,
        Stage::Generating,
        Stage::Refining,
        Stage::Validating,
        Stage::Storing,
        Stage::Done,
        Stage::Failed,
        Stage::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Queued => "queued",
            Stage::Generating => "generating",
            Stage::Refining => "refining",
            Stage::Validating => "validating",
            Stage::Storing => "storing",
            Stage::Done => "done",
            Stage::Failed => "failed",
            Stage::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Stage> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a job's progress write records (the kit's, beside `Progress`).
pub use bitware_kit::ai::progress::ProgressWrite;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn stages_round_trip_through_their_schema_strings() {
        for s in Stage::ALL {
            assert_eq!(Stage::parse(s.as_str()), Some(s));
            assert_eq!(serde_json::to_value(s).unwrap(), json!(s.as_str()));
            assert_eq!(
                serde_json::from_value::<Stage>(json!(s.as_str())).unwrap(),
                s
            );
            assert_eq!(s.to_string(), s.as_str());
        }
        assert_eq!(Stage::parse("processing"), None);
    }

    /// Every stage the schema's CHECK allows is a `Stage` (plus the shown-only `queued`).
    #[test]
    fn the_schema_names_every_stored_stage_and_status() {
        let schema = include_str!("../../schema/granulator.sql");
        for s in Stage::ALL.into_iter().filter(|s| *s != Stage::Queued) {
            assert!(schema.contains(&format!("'{}'", s.as_str())), "{s}");
        }
        for s in JobStatus::ALL {
            assert!(schema.contains(&format!("'{}'", s.as_str())), "{s}");
        }
        for m in [RunMode::Inline, RunMode::Queue] {
            assert!(schema.contains(&format!("'{}'", m.as_str())), "{m}");
            assert_eq!(serde_json::to_value(m).unwrap(), json!(m.as_str()));
        }
    }
}

/// A level-1 branch of a running job's outline that has passed its checks
/// (issue 24): shown at once, by the structure route (`complete: false`)
/// and the events stream (`event: branch`), before the job ends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartialBranch {
    /// 1-based, in skeleton order (the node's place in the outline).
    pub position: u32,
    /// Level-1 nodes the outline is written with.
    pub total: u32,
    pub title: String,
    /// The node's canonical subtree, as `GET /api/jobs/{id}/structure` shows it.
    pub node: serde_json::Value,
}
