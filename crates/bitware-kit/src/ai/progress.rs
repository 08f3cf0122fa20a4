//! The live counter a streaming model call feeds (tokens and elements seen
//! so far); the worker's progress writer reads it.

use std::cell::Cell;

/// What the current model call has produced so far; the stream decoder
/// writes it, the job's progress writer reads it (same task, no locks).
#[derive(Debug, Default)]
pub struct Progress {
    tokens: Cell<u64>,
    elements: Cell<u64>,
    version: Cell<u64>,
}

impl Progress {
    pub fn update(&self, tokens: u64, elements: u64) {
        if tokens != self.tokens.get() || elements != self.elements.get() {
            self.tokens.set(tokens);
            self.elements.set(elements);
            self.version.set(self.version.get() + 1);
        }
    }
    /// A new call starts from zero (a retry, a repair, a review).
    pub fn reset(&self) {
        self.update(0, 0);
    }
    pub fn tokens(&self) -> u64 {
        self.tokens.get()
    }
    pub fn elements(&self) -> u64 {
        self.elements.get()
    }
    /// Changes on every update: the writer skips a write when nothing moved.
    pub fn version(&self) -> u64 {
        self.version.get()
    }
}
