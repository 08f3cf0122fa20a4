//! Who pays for a paid request, and the two guards on it: the tier's rate
//! limit (a Workers Rate Limiting binding per tier, keyed by the tenant) and
//! the tier's daily spend cap (reserved atomically in D1 before the first
//! model call, settled to the real cost when the run ends). All of it is the
//! kit's (`bitware_kit::limits`, `bitware_kit::jobs::spend`); `Database`
//! is the ledger on the granulator's D1 (`database/mod.rs`).

pub use bitware_kit::jobs::spend::{reserve, reserve_for_job, SpendLedger};
pub use bitware_kit::limits::{check_rate_limit, Payer};
