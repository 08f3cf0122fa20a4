//! Waiting for a job another request or the queue runs, and the errors its
//! waiters get: the kit's (`bitware_kit::jobs::wait`).

pub use bitware_kit::jobs::wait::{
    cancelled_error, failure_error, still_running, wait_for, Waited,
};
