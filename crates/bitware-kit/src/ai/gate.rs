//! The platform's limit on outgoing connections, as Workers enforce it since
//! 2026-04-09: at most six connections of one invocation may be *waiting for
//! their response headers* at once; a connection is freed as soon as its
//! headers arrive, so any number may be streaming their bodies (ADR 0015).
//! A seventh `fetch` is queued by the runtime, not failed; `wrangler dev`
//! does not queue at all. The gate holds the seventh in the worker instead:
//! production and local runs behave alike, and a queued call's first-byte
//! timeout starts when its request is sent, not while it waits its turn.
//!
//! How many model calls stream at once is the job's own choice
//! (`Settings::max_calls_at_once`, the provider's limits per key), not this
//! gate's.

use async_lock::{Semaphore, SemaphoreGuardArc};
use std::sync::Arc;

/// Connections of one invocation waiting for headers at once.
pub const HEADER_SLOTS: usize = 6;

/// One invocation's slots for connections waiting for their headers. Cheap
/// to clone: clones share the slots.
#[derive(Clone)]
pub struct HeaderGate {
    slots: Arc<Semaphore>,
}

/// A slot held from before a request is sent until its headers are in.
pub struct Slot {
    _guard: SemaphoreGuardArc,
}

impl HeaderGate {
    pub fn new() -> HeaderGate {
        HeaderGate::with_slots(HEADER_SLOTS)
    }

    /// A gate of `n` slots (at least one).
    pub fn with_slots(n: usize) -> HeaderGate {
        HeaderGate {
            slots: Arc::new(Semaphore::new(n.max(1))),
        }
    }

    /// Wait for a slot; drop it once the response's headers are in.
    pub async fn slot(&self) -> Slot {
        Slot {
            _guard: self.slots.acquire_arc().await,
        }
    }

    /// A slot now, if one is free.
    pub fn try_slot(&self) -> Option<Slot> {
        self.slots.try_acquire_arc().map(|g| Slot { _guard: g })
    }
}

impl Default for HeaderGate {
    fn default() -> Self {
        HeaderGate::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::FutureExt;

    #[test]
    fn six_slots_then_a_wait_until_one_is_given_back() {
        let gate = HeaderGate::new();
        let held: Vec<Slot> = (0..HEADER_SLOTS)
            .map(|_| gate.try_slot().unwrap())
            .collect();
        assert!(gate.try_slot().is_none());
        let mut waiting = Box::pin(gate.slot());
        assert!(waiting.as_mut().now_or_never().is_none());
        drop(held);
        assert!(waiting.now_or_never().is_some());
    }

    #[test]
    fn clones_share_the_slots_and_a_gate_has_at_least_one() {
        let gate = HeaderGate::with_slots(0);
        let other = gate.clone();
        let slot = gate.try_slot().unwrap();
        assert!(other.try_slot().is_none());
        drop(slot);
        assert!(other.try_slot().is_some());
    }
}
