//! The live counter a streaming model call feeds (tokens and elements seen
//! so far, branches of a fanned-out answer); the worker's progress writer
//! reads it.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

/// A job's live progress as its writer records it: tokens and elements the
/// model calls streaming now (summed over a fan-out's calls), and branches of
/// a fanned-out outline done of total (0 of 0 for one call).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ProgressWrite {
    pub tokens: u64,
    pub elements: u64,
    pub branches_done: u64,
    pub branches_total: u64,
}

/// What the current model call has produced so far; the stream decoder
/// writes it, the job's progress writer reads it (same task, no locks).
/// The calls of a fanned-out outline each feed a [`Progress::child`], whose
/// counts add up in the job's own, with the branches done of total.
#[derive(Debug, Default)]
pub struct Progress {
    tokens: Cell<u64>,
    elements: Cell<u64>,
    version: Cell<u64>,
    branches_done: Cell<u64>,
    branches_total: Cell<u64>,
    parent: Option<Rc<Progress>>,
    /// The answer's text as it streams, kept only when asked
    /// ([`Progress::keep_text`]), and which call it is of (a new call, a
    /// retry, starts the text again).
    text: RefCell<Option<String>>,
    call: Cell<u64>,
}

impl Progress {
    pub fn update(&self, tokens: u64, elements: u64) {
        let (old_tokens, old_elements) = (self.tokens.get(), self.elements.get());
        if tokens != old_tokens || elements != old_elements {
            self.tokens.set(tokens);
            self.elements.set(elements);
            self.version.set(self.version.get() + 1);
            if let Some(parent) = &self.parent {
                parent.update(
                    (parent.tokens() + tokens).saturating_sub(old_tokens),
                    (parent.elements() + elements).saturating_sub(old_elements),
                );
            }
        }
    }
    /// A counter of one call among several running at once: what it
    /// receives (or drops on a retry) moves its parent's counts too.
    pub fn child(self: &Rc<Self>) -> Rc<Progress> {
        Rc::new(Progress {
            parent: Some(self.clone()),
            ..Progress::default()
        })
    }
    /// Branches of a fanned-out outline written, of how many.
    pub fn set_branches(&self, done: u64, total: u64) {
        if (done, total) != (self.branches_done.get(), self.branches_total.get()) {
            self.branches_done.set(done);
            self.branches_total.set(total);
            self.version.set(self.version.get() + 1);
        }
    }
    /// What the job's progress write records now.
    pub fn snapshot(&self) -> ProgressWrite {
        ProgressWrite {
            tokens: self.tokens(),
            elements: self.elements(),
            branches_done: self.branches_done.get(),
            branches_total: self.branches_total.get(),
        }
    }
    /// A new call starts from zero (a retry, a repair, a review).
    pub fn reset(&self) {
        self.update(0, 0);
        self.call.set(self.call.get() + 1);
        if let Some(text) = self.text.borrow_mut().as_mut() {
            text.clear();
        }
    }
    /// Keep (or stop keeping) the text of the calls this counter follows:
    /// for an answer read while it is written (a job that shows each
    /// level-1 node as it closes). Off by default: nothing is kept.
    pub fn keep_text(&self, on: bool) {
        *self.text.borrow_mut() = on.then(String::new);
    }
    /// More of the current call's answer (the stream decoder's text deltas).
    pub fn push_text(&self, piece: &str) {
        if let Some(text) = self.text.borrow_mut().as_mut() {
            text.push_str(piece);
        }
    }
    /// Which call the kept text is of (changes at every [`Progress::reset`]),
    /// and that call's text from byte `from` (empty when not kept or past it).
    pub fn text_since(&self, from: usize) -> (u64, String) {
        let text = self.text.borrow();
        let rest = text
            .as_deref()
            .and_then(|t| t.get(from..))
            .unwrap_or("")
            .to_string();
        (self.call.get(), rest)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_kept_only_when_asked_and_a_new_call_starts_it_again() {
        let p = Progress::default();
        p.push_text("ignored");
        assert_eq!(p.text_since(0).1, "");
        p.keep_text(true);
        p.push_text("{\"a\": ");
        p.push_text("1}");
        let (call, text) = p.text_since(0);
        assert_eq!(text, "{\"a\": 1}");
        assert_eq!(p.text_since(6).1, "1}");
        assert_eq!(p.text_since(99).1, "");
        p.reset();
        assert_eq!(p.text_since(0), (call + 1, String::new()));
        p.keep_text(false);
        p.push_text("x");
        assert_eq!(p.text_since(0).1, "");
    }

    #[test]
    fn progress_counts_changes() {
        let p = Progress::default();
        p.update(10, 1);
        let v = p.version();
        p.update(10, 1);
        assert_eq!(p.version(), v);
        p.update(12, 1);
        assert!(p.version() > v);
        p.reset();
        assert_eq!((p.tokens(), p.elements()), (0, 0));
    }

    #[test]
    fn children_add_up_in_their_parent_and_a_retry_takes_its_share_back() {
        let job = Rc::new(Progress::default());
        let (a, b) = (job.child(), job.child());
        a.update(100, 3);
        b.update(40, 1);
        assert_eq!((job.tokens(), job.elements()), (140, 4));
        a.reset(); // a retried call starts from zero
        assert_eq!((job.tokens(), job.elements()), (40, 1));
        let v = job.version();
        job.set_branches(1, 8);
        assert!(job.version() > v);
        assert_eq!(
            job.snapshot(),
            ProgressWrite {
                tokens: 40,
                elements: 1,
                branches_done: 1,
                branches_total: 8
            }
        );
    }
}
