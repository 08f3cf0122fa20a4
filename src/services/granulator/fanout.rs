//! A fanned-out outline (issue 13): the skeleton call, one call per
//! level-1 branch or part of one (each started as soon as the skeleton's
//! stream has delivered its node: `pipeline.rs`) and one for the other root
//! fields, at most the chain's `max_calls_at_once` streaming at once, each through the provider chain (its
//! retries, re-asks and fallback are its own) with its own share of the
//! budget, then the merge. The rules live in `services::fanout`; this is
//! their run.

use super::job::{Draft, Job};
use super::ports::{OutlineStore, StructureStore, TemplateSource};
use crate::helpers::prompts;
use crate::services::ai_provider::{
    Attempt, ChainError, Completion, CompletionRequest, Progress, Runtime,
};
use crate::services::fanout::{self, max_tokens_for, CallCost, Piece, PieceAnswer, Skeleton};
use crate::services::partial;
use crate::types::outline::Node;
use crate::types::pricing::round_usd;
use crate::types::purpose;
use serde_json::Value;
use std::rc::Rc;

/// A fan-out call's checked answer: a piece of the outline, or the root fields.
pub(super) enum Part {
    Piece(PieceAnswer),
    Root(Value),
}

/// A call's checked answer and the completion it came in.
pub(super) type Outcome = Result<(Part, Completion), ChainError>;

pub(super) fn label(attempts: &mut [Attempt], label: &str) {
    for a in attempts {
        a.branch = Some(label.to_string());
    }
}

/// `branch 3/8` (`branch 2/3 part 1/2`) for call `i`, `root` past the pieces.
pub(super) fn part_label(pieces: &[Piece], i: usize) -> String {
    match pieces.get(i) {
        Some(piece) => piece.label(),
        None => "root".to_string(),
    }
}

/// The worst case of every call of a fan-out, in the order they are queued.
pub(super) struct Costs {
    skeleton: CallCost,
    pieces: Vec<CallCost>,
    root: CallCost,
}

/// What the calls of one fan-out are made from: the system prompt, the
/// skeleton's request and the counter its text streams into, every call's
/// worst case and budget share (the skeleton's first, the root call's last),
/// the pieces of the branches (each node in `parts` parts) and how many
/// calls may stream at once.
pub(super) struct Calls<'c> {
    pub parts: usize,
    pub max_calls: usize,
    pub system: &'c str,
    pub skeleton: &'c CompletionRequest,
    pub watch: &'c Rc<Progress>,
    pub costs: &'c Costs,
    pub shares: &'c [Option<f64>],
    pub pieces: &'c [Piece],
}

impl<R: Runtime, J: OutlineStore, S: StructureStore, T: TemplateSource> Job<'_, R, J, S, T> {
    /// The first outline as a skeleton plus branches. `Ok(None)` when the
    /// budget cannot pay every call of the fan-out in the worst case: the
    /// caller then makes it in one call (which has its own budget check).
    pub(super) async fn fanned_out(
        &mut self,
        attempts: &mut Vec<Attempt>,
    ) -> Result<Option<Draft>, ChainError> {
        let st = self.plan.structure_type;
        let counts = self.plan.counts.clone();
        let max_calls = self.ports.config.settings.max_calls_at_once.max(1);
        let Some(first) = self.plan.chain.first() else {
            return Ok(None);
        };
        let price = self.ports.config.pricing.price(&first.model);
        let system = prompts::system_prompt(st);
        // Reserve before fanning out: every call's worst case must fit its
        // share. Parts cost more in all (a prompt each, a longer skeleton):
        // a budget they do not fit may still fit one call per node.
        let split = fanout::parts_per_node(st, &counts, max_calls);
        let chosen = fanout::within_budget(split, |parts| {
            let pieces = fanout::pieces(&counts, parts);
            let skeleton_request = self.skeleton_request(&system, &counts, parts);
            let costs = self.costs(&system, &skeleton_request, &pieces, parts);
            let mut calls = vec![costs.skeleton];
            calls.extend(costs.pieces.iter().copied());
            calls.push(costs.root);
            let shares = fanout::budget_shares(self.plan.budget.left_usd(), price, &calls);
            fanout::shares_fit(price, &first.model, &shares, &calls).then_some((
                pieces,
                skeleton_request,
                costs,
                shares,
            ))
        });
        let Some((parts, (pieces, skeleton_request, costs, shares))) = chosen else {
            return Ok(None);
        };
        self.progress.set_branches(0, pieces.len() as u64);
        // The skeleton's text is kept as it streams: branches start from it.
        let watch = self.progress.child();
        watch.keep_text(true);
        let skeleton_request = CompletionRequest {
            progress: Some(watch.clone()),
            ..skeleton_request
        };
        let calls = Calls {
            parts,
            max_calls,
            system: &system,
            skeleton: &skeleton_request,
            watch: &watch,
            costs: &costs,
            shares: &shares,
            pieces: &pieces,
        };
        let done = self.pipeline(&calls).await;
        // Every call's attempts: the skeleton's, then each branch's and the root call's.
        attempts.extend(done.attempts);
        self.plan.budget.spent_usd = round_usd(self.plan.budget.spent_usd + done.spent);
        let (skeleton, skeleton_done) = done.skeleton?;
        let mut root = Value::Null;
        for (i, outcome) in done.outcomes.into_iter().enumerate() {
            let part = part_label(&pieces, i);
            match outcome {
                Some(Ok((Part::Piece(_), _))) => {}
                Some(Ok((Part::Root(fields), _))) => root = fields,
                Some(Err(ChainError::ProvidersFailed(m))) => {
                    return Err(ChainError::ProvidersFailed(format!("{part}: {m}")))
                }
                Some(Err(e)) => return Err(e),
                None => return Err(ChainError::ProvidersFailed(format!("{part} did not run"))),
            }
        }
        // Titles were made distinct as the branches became final: the merge
        // renames nothing a client was already shown.
        let structure = fanout::merge(st, &skeleton, &root, done.finals);
        let report = self.assess(&structure);
        self.branches = Some(pieces.len() as u32);
        Ok(Some(Draft {
            structure,
            report,
            provider: skeleton_done.provider.as_str().to_string(),
            model: skeleton_done.model,
        }))
    }

    fn skeleton_request(&self, system: &str, counts: &[u32], parts: usize) -> CompletionRequest {
        let p = &self.plan;
        let st = p.structure_type;
        let expected = fanout::skeleton_expected_tokens(counts, parts);
        CompletionRequest {
            purpose: purpose::GRANULATE,
            system: system.to_string(),
            user: fanout::skeleton_prompt(st, &p.prompt, counts, parts),
            schema_name: format!("{}_skeleton", prompts::schema_name(st)),
            schema: fanout::skeleton_schema(st, counts, parts),
            max_tokens: max_tokens_for(expected),
            temperature: p.temperature,
            expected_output_tokens: expected,
            progress: Some(self.progress.child()),
            offline_answer: None,
            // Called once: nothing of its prompt is sent by the other calls.
            shared_prefix: 0,
            cache_key: Some(self.cache_key()),
        }
    }

    /// Each call's worst case: its prompt's bytes and its `max_tokens`.
    fn costs(
        &self,
        system: &str,
        skeleton: &CompletionRequest,
        pieces: &[Piece],
        parts: usize,
    ) -> Costs {
        let p = &self.plan;
        let (st, rules) = (p.structure_type, &p.template.structure_rules);
        let skeleton_expected = skeleton.expected_output_tokens;
        let branch_expected = fanout::branch_expected_tokens(st.spec(), &p.counts);
        let branch_bytes = fanout::branch_input_bytes(st, &p.counts, parts, rules);
        Costs {
            skeleton: CallCost {
                input_bytes: system.len() + skeleton.user.len() + skeleton.schema.to_string().len(),
                max_tokens: skeleton.max_tokens,
                expected_tokens: skeleton_expected,
            },
            pieces: pieces
                .iter()
                .map(|piece| {
                    let expected = fanout::piece_expected_tokens(st, piece, branch_expected);
                    CallCost {
                        input_bytes: branch_bytes,
                        max_tokens: max_tokens_for(expected),
                        expected_tokens: expected,
                    }
                })
                .collect(),
            root: CallCost {
                input_bytes: system.len()
                    + p.params.topic.len()
                    + p.audience.len()
                    + fanout::root_schema(st, rules).to_string().len()
                    + 600
                    + skeleton_expected as usize * 4,
                max_tokens: max_tokens_for(fanout::root_expected_tokens()),
                expected_tokens: fanout::root_expected_tokens(),
            },
        }
    }

    /// The request of call `i`: piece `i` of the branches, or the root
    /// call's (`i` = the pieces' count), from `skeleton` (as far as the
    /// skeleton's stream has delivered it, for a branch started early: every
    /// level-1 title and its own node's summary and child titles).
    pub(super) fn part_request(
        &self,
        calls: &Calls<'_>,
        skeleton: &Skeleton,
        i: usize,
    ) -> CompletionRequest {
        let p = &self.plan;
        let (st, rules) = (p.structure_type, &p.template.structure_rules);
        let pieces = calls.pieces;
        // Every call's prompt starts with the same context: the prefix the
        // provider caches (checked, so a prompt that does not start with it
        // is never marked).
        let shared =
            fanout::shared_context(st, &p.params.topic, &p.audience, skeleton, pieces.len());
        let (user, schema, name, cost) = match pieces.get(i) {
            Some(piece) => (
                fanout::piece_prompt(
                    st,
                    &p.params.topic,
                    &p.audience,
                    skeleton,
                    piece,
                    &p.counts,
                    rules,
                    &branch_constraints(p),
                ),
                fanout::piece_schema(st, &p.counts, rules, piece),
                "branch",
                calls.costs.pieces.get(i).unwrap_or(&calls.costs.root),
            ),
            None => (
                fanout::root_prompt(st, &p.params.topic, &p.audience, skeleton, pieces.len()),
                fanout::root_schema(st, rules),
                "root",
                &calls.costs.root,
            ),
        };
        CompletionRequest {
            purpose: purpose::GRANULATE,
            system: calls.system.to_string(),
            shared_prefix: if user.starts_with(&shared) {
                shared.len()
            } else {
                0
            },
            user,
            schema_name: format!("{}_{name}", prompts::schema_name(st)),
            schema,
            max_tokens: cost.max_tokens,
            temperature: p.temperature,
            expected_output_tokens: cost.expected_tokens,
            progress: Some(self.progress.child()),
            offline_answer: None,
            cache_key: Some(self.cache_key()),
        }
    }

    /// Record a final branch for the structure route and the events stream
    /// (1-based position). Best effort: the branch is in the outline either
    /// way, and a store that cannot take it fails the job at its end.
    pub(super) async fn show_branch(&self, index: usize, total: usize, node: &Node) {
        if let Some(branch) = partial::partial_branch(index, total, node) {
            let _ = self
                .ports
                .jobs
                .record_branch(self.job_id, self.run, &branch)
                .await;
        }
    }
}

/// Level-1 node `node` once every piece of it has passed its checks (its
/// first part's node with the children of its other parts), else `None`.
pub(super) fn final_node(
    pieces: &[Piece],
    outcomes: &[Option<Outcome>],
    node: usize,
) -> Option<Node> {
    let mut answers = Vec::new();
    for (i, piece) in pieces.iter().enumerate() {
        if piece.node != node {
            continue;
        }
        match outcomes.get(i) {
            Some(Some(Ok((Part::Piece(answer), _)))) => answers.push(answer.clone()),
            _ => return None,
        }
    }
    let mut assembled = fanout::assemble(answers);
    (assembled.len() == 1).then(|| assembled.remove(0))
}

/// The caller's exact counts below level 1 (the branch shape already holds
/// them); `maxElements` applies to the merged outline, which is trimmed.
fn branch_constraints(p: &super::plan::Plan) -> String {
    let spec = p.structure_type.spec();
    let parts: Vec<String> = p
        .constraints
        .counts
        .iter()
        .filter(|(level, _)| spec.levels[0].key != level.as_str())
        .map(|(level, n)| format!("exactly {n} {level} per parent"))
        .collect();
    if parts.is_empty() {
        "none".into()
    } else {
        parts.join("; ")
    }
}
