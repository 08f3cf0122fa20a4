//! The skeleton pipelined into its branches (issue 24, item 2; ADR 0013):
//! while the skeleton call streams, its text is read every `WATCH_MS`, and
//! each branch call starts as soon as the skeleton has delivered every
//! level-1 title and that branch's own summary (`fanout::StreamedSkeleton`),
//! not when the skeleton call ends. At most `max_calls_at_once` calls (the
//! chain's settings) stream at once, the skeleton's counted; the root call
//! is started last, once the skeleton has passed its checks.
//!
//! The skeleton's checked answer stays the authority. A branch started from
//! a skeleton answer that is not kept — the chain asked again (a new call of
//! the skeleton started), or the skeleton failed — is dropped: stopped at
//! its stream's next chunk through its own `Stop`, or its finished answer
//! discarded; what it spent is booked as its attempts (their `error` says
//! `dropped: …`) and counts against its share when it is started again. A
//! branch final before the skeleton passed is shown only once it has.

use super::fanout::{final_node, label, part_label, Calls, Outcome, Part};
use super::job::Job;
use super::plan::{complete, complete_typed_with, Call};
use super::ports::{OutlineStore, StructureStore, TemplateSource};
use crate::services::ai_provider::{
    Attempt, Budget, ChainError, Completion, Confirm, Runtime, Stop,
};
use crate::services::fanout::{self, Skeleton, StreamedSkeleton, TitlesSeen};
use crate::types::outline::Node;
use futures_util::stream::{FuturesUnordered, StreamExt};
use serde_json::Value;
use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::Poll;

/// How often the skeleton's text is read while it streams: at 100 tokens/s,
/// a branch starts at most ~10 tokens after its summary is in.
const WATCH_MS: u64 = 100;

/// What a fan-out's calls came to: the checked skeleton (or why not), each
/// branch piece's and the root call's outcome, the level-1 nodes final (in
/// order), every attempt (the skeleton's first, then each call's, dropped
/// runs before the kept one) and what they all spent.
pub(super) struct Pipelined {
    pub skeleton: Result<(Skeleton, Completion), ChainError>,
    pub outcomes: Vec<Option<Outcome>>,
    pub finals: Vec<Node>,
    pub attempts: Vec<Attempt>,
    pub spent: f64,
}

/// A branch call's own stop: the job's cancel, or its drop.
struct RunStop<'s> {
    job: &'s dyn Stop,
    dropped: Rc<Cell<bool>>,
}

impl Stop for RunStop<'_> {
    fn requested(&self) -> bool {
        self.dropped.get() || self.job.requested()
    }
    fn confirm(&self) -> Confirm<'_> {
        Box::pin(async move { self.dropped.get() || self.job.confirm().await })
    }
}

/// A call started: the prompt it was started with, its drop flag, and its
/// attempts once it ended.
struct Started {
    user: String,
    dropped: Rc<Cell<bool>>,
    tried: Option<Vec<Attempt>>,
}

/// A call that ended (dropped or not).
struct Ended {
    index: usize,
    dropped: Rc<Cell<bool>>,
    outcome: Outcome,
    spent: f64,
    tried: Vec<Attempt>,
}

type Running<'f> = FuturesUnordered<Pin<Box<dyn Future<Output = Ended> + 'f>>>;
type SkeletonDone = (Result<Completion, ChainError>, f64, Vec<Attempt>);

enum Event {
    Skeleton(SkeletonDone),
    Ended(Ended),
    Tick,
}

/// Every call of the branches and the root call (index = the pieces' count).
struct Board {
    started: Vec<Option<Started>>,
    outcomes: Vec<Option<Outcome>>,
    /// What each call spent, over all its runs.
    spent: Vec<f64>,
    /// Dropped runs not ended yet: the call starts again once they have
    /// (its budget counts what they spent).
    dropped_running: Vec<usize>,
    dropped_attempts: Vec<Vec<Attempt>>,
}

impl Board {
    fn new(calls: usize) -> Board {
        Board {
            started: (0..calls).map(|_| None).collect(),
            outcomes: (0..calls).map(|_| None).collect(),
            spent: vec![0.0; calls],
            dropped_running: vec![0; calls],
            dropped_attempts: vec![Vec::new(); calls],
        }
    }

    /// Drop call `i`'s current run: stopped if it still runs, its answer
    /// discarded if it ended; `why` goes on its attempts.
    fn drop_call(&mut self, i: usize, why: Option<&str>) {
        let Some(run) = self.started[i].take() else {
            return;
        };
        run.dropped.set(true);
        match run.tried {
            Some(mut tried) => {
                note(&mut tried, why);
                self.dropped_attempts[i].extend(tried);
                self.outcomes[i] = None;
            }
            None => self.dropped_running[i] += 1,
        }
    }

    fn drop_all(&mut self, why: Option<&str>) {
        for i in 0..self.started.len() {
            self.drop_call(i, why);
        }
    }

    fn branches_done(&self, pieces: usize) -> u64 {
        self.outcomes[..pieces]
            .iter()
            .filter(|o| matches!(o, Some(Ok(_))))
            .count() as u64
    }
}

fn note(attempts: &mut [Attempt], why: Option<&str>) {
    let Some(why) = why else {
        return;
    };
    for a in attempts {
        a.error = Some(match a.error.take() {
            Some(e) => format!("dropped: {why}; {e}"),
            None => format!("dropped: {why}"),
        });
    }
}

/// The skeleton's text read so far: of which call, up to where, and what it
/// holds.
struct Watch {
    call: u64,
    read: usize,
    streamed: StreamedSkeleton,
}

impl<R: Runtime, J: OutlineStore, S: StructureStore, T: TemplateSource> Job<'_, R, J, S, T> {
    /// The skeleton call and the branch and root calls, pipelined. Every
    /// call runs to its end, failed or not (unless dropped): calls already
    /// paid for are recorded, and a failed branch never cancels the others.
    /// A node whose calls have all passed their checks, once the skeleton
    /// has, is final: its titles are claimed against the nodes final before
    /// it and it is shown at once.
    pub(super) async fn pipeline(&self, calls: &Calls<'_>) -> Pipelined {
        let p = &self.plan;
        let (st, counts) = (p.structure_type, &p.counts);
        let (ports, chain, deadline_ms) = (self.ports, &p.chain, p.deadline_ms);
        let pieces = calls.pieces;
        let n = pieces.len();
        let nodes = pieces.first().map_or(0, |piece| piece.nodes);
        let mut skeleton_run: Option<Pin<Box<dyn Future<Output = SkeletonDone> + '_>>> =
            Some(Box::pin(async move {
                let mut budget = Budget {
                    limit_usd: calls.shares.first().copied().flatten(),
                    spent_usd: 0.0,
                };
                let mut tried = Vec::new();
                let outcome = complete(
                    ports,
                    chain,
                    calls.skeleton,
                    &|v| fanout::check_skeleton(st, counts, calls.parts, v),
                    &mut budget,
                    deadline_ms,
                    &mut tried,
                )
                .await;
                (outcome, budget.spent_usd, tried)
            }));
        let mut watch = Watch {
            call: 0,
            read: 0,
            streamed: StreamedSkeleton::new(st, counts, calls.parts),
        };
        let mut board = Board::new(n + 1);
        let mut running: Running<'_> = FuturesUnordered::new();
        let mut tick: Option<Pin<Box<dyn Future<Output = ()> + '_>>> = None;
        let mut accepted: Option<(Skeleton, Completion)> = None;
        let mut failed: Option<ChainError> = None;
        let (mut skeleton_spent, mut skeleton_attempts) = (0.0, Vec::new());
        let mut held: Vec<usize> = Vec::new();
        let mut finals: Vec<Option<Node>> = vec![None; nodes];
        let mut titles = TitlesSeen::new(st.spec().levels.len());
        loop {
            if skeleton_run.is_some() {
                self.read_watch(calls, &mut watch, &mut board);
            }
            if failed.is_none() {
                let streamed = match accepted {
                    Some(_) => None,
                    None => watch.streamed.known(),
                };
                let known = match (&accepted, &streamed) {
                    (Some((skeleton, _)), _) => Some((skeleton, nodes)),
                    (None, Some((skeleton, ready))) => Some((skeleton, *ready)),
                    (None, None) => None,
                };
                if let Some((skeleton, ready)) = known {
                    for i in 0..=n {
                        let in_flight = running.len() + usize::from(skeleton_run.is_some());
                        if in_flight >= calls.max_calls {
                            break;
                        }
                        if board.started[i].is_some() || board.dropped_running[i] > 0 {
                            continue;
                        }
                        // Branches as their node is ready; the root call last,
                        // from the checked skeleton (it names the outline's title).
                        let ready = match pieces.get(i) {
                            Some(piece) => piece.node < ready,
                            None => {
                                accepted.is_some() && board.started[..n].iter().all(Option::is_some)
                            }
                        };
                        if !ready {
                            break;
                        }
                        running.push(self.start(calls, skeleton, i, &mut board));
                    }
                }
            }
            if skeleton_run.is_none() && running.is_empty() {
                break;
            }
            if skeleton_run.is_some() && tick.is_none() {
                tick = Some(Box::pin(ports.runtime.sleep(WATCH_MS)));
            }
            let event = std::future::poll_fn(|cx| {
                if let Some(run) = skeleton_run.as_mut() {
                    if let Poll::Ready(done) = run.as_mut().poll(cx) {
                        return Poll::Ready(Event::Skeleton(done));
                    }
                }
                if !running.is_empty() {
                    if let Poll::Ready(Some(ended)) = running.poll_next_unpin(cx) {
                        return Poll::Ready(Event::Ended(ended));
                    }
                }
                if let Some(t) = tick.as_mut() {
                    if t.as_mut().poll(cx).is_ready() {
                        return Poll::Ready(Event::Tick);
                    }
                }
                Poll::Pending
            })
            .await;
            match event {
                Event::Tick => tick = None,
                Event::Skeleton((outcome, spent, mut tried)) => {
                    (skeleton_run, tick) = (None, None);
                    skeleton_spent = spent;
                    label(&mut tried, "skeleton");
                    skeleton_attempts = tried;
                    // A call of the skeleton not read yet: what started before it is not its.
                    self.read_watch(calls, &mut watch, &mut board);
                    match outcome {
                        Ok(done) => {
                            let skeleton = fanout::skeleton_of(st, &done.value);
                            // Kept only if the checked skeleton makes the same prompt.
                            for i in 0..=n {
                                let same = board.started[i].as_ref().is_none_or(|run| {
                                    self.part_request(calls, &skeleton, i).user == run.user
                                });
                                if !same {
                                    board.drop_call(
                                        i,
                                        Some("the checked skeleton differs from its stream"),
                                    );
                                }
                            }
                            accepted = Some((skeleton, done));
                            for node in std::mem::take(&mut held) {
                                self.finalize(pieces, &board, node, &mut titles, &mut finals)
                                    .await;
                            }
                            self.progress.set_branches(board.branches_done(n), n as u64);
                        }
                        Err(e) => {
                            let why = match e {
                                ChainError::Cancelled(_) => None,
                                _ => Some("the skeleton call failed"),
                            };
                            board.drop_all(why);
                            failed = Some(e);
                        }
                    }
                }
                Event::Ended(mut ended) => {
                    let i = ended.index;
                    board.spent[i] += ended.spent;
                    label(&mut ended.tried, &part_label(pieces, i));
                    if ended.dropped.get() {
                        board.dropped_running[i] -= 1;
                        note(&mut ended.tried, Some("its skeleton answer was not kept"));
                        board.dropped_attempts[i].extend(ended.tried);
                        continue;
                    }
                    if let Some(run) = board.started[i].as_mut() {
                        run.tried = Some(ended.tried);
                    }
                    board.outcomes[i] = Some(ended.outcome);
                    // Counted once the skeleton has passed (a branch of an
                    // answer not kept is dropped): `done` never goes back.
                    if accepted.is_some() {
                        self.progress.set_branches(board.branches_done(n), n as u64);
                    }
                    if let Some(node) = pieces.get(i).map(|piece| piece.node) {
                        match accepted {
                            Some(_) => {
                                self.finalize(pieces, &board, node, &mut titles, &mut finals)
                                    .await
                            }
                            None => held.push(node),
                        }
                    }
                }
            }
        }
        let mut attempts = skeleton_attempts;
        for (dropped, run) in board.dropped_attempts.into_iter().zip(board.started) {
            attempts.extend(dropped);
            attempts.extend(run.and_then(|r| r.tried).into_iter().flatten());
        }
        let spent = skeleton_spent + board.spent.iter().sum::<f64>();
        let skeleton = match (accepted, failed) {
            (Some(done), _) => Ok(done),
            (None, Some(e)) => Err(e),
            (None, None) => Err(ChainError::ProvidersFailed(
                "the skeleton call did not end".into(),
            )),
        };
        Pipelined {
            skeleton,
            outcomes: board.outcomes,
            finals: finals.into_iter().flatten().collect(),
            attempts,
            spent,
        }
    }

    /// Read what the skeleton streamed since the last look. A new call of it
    /// (the chain retried or asked again: the last answer is not kept)
    /// drops every call started from the last one and reads from the start.
    fn read_watch(&self, calls: &Calls<'_>, watch: &mut Watch, board: &mut Board) {
        let (call, _) = calls.watch.text_since(usize::MAX);
        if call != watch.call {
            board.drop_all(Some("its skeleton answer was not kept"));
            *watch = Watch {
                call,
                read: 0,
                streamed: StreamedSkeleton::new(
                    self.plan.structure_type,
                    &self.plan.counts,
                    calls.parts,
                ),
            };
        }
        let (_, text) = calls.watch.text_since(watch.read);
        watch.read += text.len();
        watch.streamed.feed(&text);
    }

    /// Start call `i` from `skeleton` within its share (less what its
    /// dropped runs spent), stoppable on its own.
    fn start<'f>(
        &'f self,
        calls: &Calls<'f>,
        skeleton: &Skeleton,
        i: usize,
        board: &mut Board,
    ) -> Pin<Box<dyn Future<Output = Ended> + 'f>> {
        let p = &self.plan;
        let (st, counts, rules) = (p.structure_type, &p.counts, &p.template.structure_rules);
        let (ports, chain, deadline_ms) = (self.ports, &p.chain, p.deadline_ms);
        let pieces = calls.pieces;
        let request = self.part_request(calls, skeleton, i);
        let dropped = Rc::new(Cell::new(false));
        board.started[i] = Some(Started {
            user: request.user.clone(),
            dropped: dropped.clone(),
            tried: None,
        });
        let share = calls.shares.get(1 + i).copied().flatten();
        let prior = board.spent[i];
        let skeleton = skeleton.clone();
        let job: &dyn Stop = ports;
        Box::pin(async move {
            let mut budget = Budget {
                limit_usd: share,
                spent_usd: prior,
            };
            let mut tried = Vec::new();
            let stop = RunStop {
                job,
                dropped: dropped.clone(),
            };
            let check = |v: &Value| match pieces.get(i) {
                Some(piece) => {
                    fanout::check_piece(st, counts, rules, &skeleton, piece, v).map(Part::Piece)
                }
                None => fanout::check_root(st, v).map(Part::Root),
            };
            let call = Call {
                request: &request,
                budget: &mut budget,
                deadline_ms,
                attempts: &mut tried,
                stop: &stop,
            };
            let outcome = complete_typed_with(ports, chain, call, &check).await;
            Ended {
                index: i,
                dropped,
                outcome,
                spent: budget.spent_usd - prior,
                tried,
            }
        })
    }

    /// Level-1 node `node`, if every call writing it has passed its checks:
    /// its titles claimed against the nodes final before it, then shown.
    async fn finalize(
        &self,
        pieces: &[fanout::Piece],
        board: &Board,
        node: usize,
        titles: &mut TitlesSeen,
        finals: &mut [Option<Node>],
    ) {
        if finals.get(node).is_none_or(Option::is_some) {
            return;
        }
        if let Some(mut whole) = final_node(pieces, &board.outcomes, node) {
            titles.claim(&mut whole);
            self.show_branch(node, finals.len(), &whole).await;
            finals[node] = Some(whole);
        }
    }
}
