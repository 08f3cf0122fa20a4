//! A fanned-out outline (issue 13): the skeleton call, then one call per
//! level-1 branch and one for the other root fields, at most `MAX_IN_FLIGHT`
//! at once, each through the provider chain (its retries, re-asks and
//! fallback are its own) with its own share of the budget, then the merge. The rules live in
//! `services::fanout`; this is their run.

use super::job::{Draft, Job};
use super::plan::{complete, complete_typed};
use super::ports::{OutlineStore, StructureStore, TemplateSource};
use crate::helpers::prompts;
use crate::services::ai_provider::{
    Attempt, Budget, ChainError, Completion, CompletionRequest, Runtime,
};
use crate::services::fanout::{self, max_tokens_for, CallCost, Piece, PieceAnswer, Skeleton};
use crate::services::partial;
use crate::types::outline::Node;
use crate::types::pricing::round_usd;
use crate::types::purpose;
use futures_util::stream::{self, StreamExt};
use serde_json::Value;

/// A fan-out call's checked answer: a piece of the outline, or the root fields.
enum Part {
    Piece(PieceAnswer),
    Root(Value),
}

fn label(attempts: &mut [Attempt], label: &str) {
    for a in attempts {
        a.branch = Some(label.to_string());
    }
}

/// The worst case of every call of a fan-out, in the order they are queued.
struct Costs {
    skeleton: CallCost,
    pieces: Vec<CallCost>,
    root: CallCost,
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
        let pieces = fanout::pieces(&counts);
        let Some(first) = self.plan.chain.first() else {
            return Ok(None);
        };
        let price = self.ports.config.pricing.price(&first.model);
        let system = prompts::system_prompt(st);
        let skeleton_request = self.skeleton_request(&system, &counts);
        let costs = self.costs(&system, &skeleton_request, &pieces);
        // Reserve before fanning out: every call's worst case must fit its share.
        let mut calls = vec![costs.skeleton];
        calls.extend(costs.pieces.iter().copied());
        calls.push(costs.root);
        let shares = fanout::budget_shares(self.plan.budget.left_usd(), price, &calls);
        if !fanout::shares_fit(price, &first.model, &shares, &calls) {
            return Ok(None);
        }
        self.progress.set_branches(0, pieces.len() as u64);
        let skeleton_done = self
            .skeleton(&skeleton_request, shares[0], attempts)
            .await?;
        let skeleton = fanout::skeleton_of(st, &skeleton_done.value);
        // What is left is split again over the branches and the root call.
        let mut rest = costs.pieces.clone();
        rest.push(costs.root);
        let shares = fanout::budget_shares(self.plan.budget.left_usd(), price, &rest);
        let requests = self.part_requests(&system, &skeleton, &pieces, &costs);
        let (nodes, root) = self
            .parts(&requests, &shares, &skeleton, &pieces, attempts)
            .await?;
        // Titles were made distinct as the branches became final: the merge
        // renames nothing a client was already shown.
        let structure = fanout::merge(st, &skeleton, &root, nodes);
        let report = self.assess(&structure);
        self.branches = Some(pieces.len() as u32);
        Ok(Some(Draft {
            structure,
            report,
            provider: skeleton_done.provider.as_str().to_string(),
            model: skeleton_done.model,
        }))
    }

    fn skeleton_request(&self, system: &str, counts: &[u32]) -> CompletionRequest {
        let p = &self.plan;
        let st = p.structure_type;
        let expected = fanout::skeleton_expected_tokens(counts);
        CompletionRequest {
            purpose: purpose::GRANULATE,
            system: system.to_string(),
            user: fanout::skeleton_prompt(st, &p.prompt, counts),
            schema_name: format!("{}_skeleton", prompts::schema_name(st)),
            schema: fanout::skeleton_schema(st, counts),
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
    fn costs(&self, system: &str, skeleton: &CompletionRequest, pieces: &[Piece]) -> Costs {
        let p = &self.plan;
        let (st, rules) = (p.structure_type, &p.template.structure_rules);
        let skeleton_expected = skeleton.expected_output_tokens;
        let branch_expected = fanout::branch_expected_tokens(st.spec(), &p.counts);
        let branch_bytes = fanout::branch_input_bytes(st, &p.counts, rules);
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

    /// The skeleton call, within its share; its attempts labelled `skeleton`.
    async fn skeleton(
        &mut self,
        request: &CompletionRequest,
        share: Option<f64>,
        attempts: &mut Vec<Attempt>,
    ) -> Result<Completion, ChainError> {
        let p = &self.plan;
        let (st, counts) = (p.structure_type, &p.counts);
        let mut budget = Budget {
            limit_usd: share,
            spent_usd: 0.0,
        };
        let mut tried = Vec::new();
        let outcome = complete(
            self.ports,
            &p.chain,
            request,
            &|v| fanout::check_skeleton(st, counts, v),
            &mut budget,
            p.deadline_ms,
            &mut tried,
        )
        .await;
        label(&mut tried, "skeleton");
        attempts.extend(tried);
        self.plan.budget.spent_usd = round_usd(self.plan.budget.spent_usd + budget.spent_usd);
        outcome
    }

    /// One request per piece of a branch, then the root call's: queued
    /// last, it takes a slot the branches leave (with more than 6 of them,
    /// one of the second wave's).
    fn part_requests(
        &self,
        system: &str,
        skeleton: &Skeleton,
        pieces: &[Piece],
        costs: &Costs,
    ) -> Vec<CompletionRequest> {
        let p = &self.plan;
        let (st, rules) = (p.structure_type, &p.template.structure_rules);
        let constraints = branch_constraints(p);
        // Every call's prompt starts with the same context: the prefix the
        // provider caches (checked, so a prompt that does not start with it
        // is never marked).
        let shared =
            fanout::shared_context(st, &p.params.topic, &p.audience, skeleton, pieces.len());
        let cache_key = self.cache_key();
        let request =
            |user: String, schema: Value, name: &str, cost: &CallCost| CompletionRequest {
                purpose: purpose::GRANULATE,
                system: system.to_string(),
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
                cache_key: Some(cache_key.clone()),
            };
        let mut requests: Vec<CompletionRequest> = pieces
            .iter()
            .zip(&costs.pieces)
            .map(|(piece, cost)| {
                let user = fanout::piece_prompt(
                    st,
                    &p.params.topic,
                    &p.audience,
                    skeleton,
                    piece,
                    &p.counts,
                    rules,
                    &constraints,
                );
                let schema = fanout::piece_schema(st, &p.counts, rules, piece);
                request(user, schema, "branch", cost)
            })
            .collect();
        requests.push(request(
            fanout::root_prompt(st, &p.params.topic, &p.audience, skeleton, pieces.len()),
            fanout::root_schema(st, rules),
            "root",
            &costs.root,
        ));
        requests
    }

    /// The branch and root calls, at most `MAX_IN_FLIGHT` at once, each
    /// within its share. Every call runs to its end, failed or not: calls
    /// already paid for are recorded, and a failed branch never cancels the
    /// others. A node whose calls have all passed their checks is final: its
    /// titles are claimed against the branches final before it and it is
    /// shown at once ([`Self::show_branch`]). The level-1 nodes in order, and
    /// the root fields.
    async fn parts(
        &mut self,
        requests: &[CompletionRequest],
        shares: &[Option<f64>],
        skeleton: &Skeleton,
        pieces: &[Piece],
        attempts: &mut Vec<Attempt>,
    ) -> Result<(Vec<Node>, Value), ChainError> {
        let p = &self.plan;
        let n = pieces.len();
        let (st, rules, counts) = (p.structure_type, &p.template.structure_rules, &p.counts);
        let (ports, chain, deadline_ms) = (self.ports, &p.chain, p.deadline_ms);
        let mut runs = stream::iter(requests.iter().enumerate())
            .map(|(i, request)| {
                let share = shares[i];
                async move {
                    let mut budget = Budget {
                        limit_usd: share,
                        spent_usd: 0.0,
                    };
                    let mut tried = Vec::new();
                    let check = |v: &Value| match pieces.get(i) {
                        Some(piece) => fanout::check_piece(st, counts, rules, skeleton, piece, v)
                            .map(Part::Piece),
                        None => fanout::check_root(st, v).map(Part::Root),
                    };
                    let outcome = complete_typed(
                        ports,
                        chain,
                        request,
                        &check,
                        &mut budget,
                        deadline_ms,
                        &mut tried,
                    )
                    .await;
                    (i, outcome, budget.spent_usd, tried)
                }
            })
            .buffer_unordered(fanout::MAX_IN_FLIGHT);
        let part = |i: usize| match pieces.get(i) {
            Some(piece) => piece.label(),
            None => "root".to_string(),
        };
        let nodes = pieces.first().map_or(0, |piece| piece.nodes);
        let mut outcomes: Vec<Option<Result<(Part, Completion), ChainError>>> =
            (0..=n).map(|_| None).collect();
        let mut part_attempts: Vec<Vec<Attempt>> = vec![Vec::new(); n + 1];
        let mut finals: Vec<Option<Node>> = vec![None; nodes];
        let mut titles = fanout::TitlesSeen::new(st.spec().levels.len());
        let (mut spent, mut done) = (0.0, 0u64);
        while let Some((i, outcome, cost, mut tried)) = runs.next().await {
            label(&mut tried, &part(i));
            part_attempts[i] = tried;
            spent += cost;
            if outcome.is_ok() && i < n {
                done += 1;
                self.progress.set_branches(done, n as u64);
            }
            outcomes[i] = Some(outcome);
            if let Some(node) = pieces.get(i).map(|piece| piece.node) {
                if let Some(mut whole) = final_node(pieces, &outcomes, node) {
                    titles.claim(&mut whole);
                    self.show_branch(node, nodes, &whole).await;
                    finals[node] = Some(whole);
                }
            }
        }
        drop(runs);
        attempts.extend(part_attempts.into_iter().flatten());
        self.plan.budget.spent_usd = round_usd(self.plan.budget.spent_usd + spent);
        let mut root = Value::Null;
        for (i, outcome) in outcomes.into_iter().enumerate() {
            match outcome {
                Some(Ok((Part::Piece(_), _))) => {}
                Some(Ok((Part::Root(fields), _))) => root = fields,
                Some(Err(ChainError::ProvidersFailed(m))) => {
                    return Err(ChainError::ProvidersFailed(format!("{}: {m}", part(i))))
                }
                Some(Err(e)) => return Err(e),
                None => {
                    return Err(ChainError::ProvidersFailed(format!(
                        "{} did not run",
                        part(i)
                    )))
                }
            }
        }
        Ok((finals.into_iter().flatten().collect(), root))
    }

    /// Record a final branch for the structure route and the events stream
    /// (1-based position). Best effort: the branch is in the outline either
    /// way, and a store that cannot take it fails the job at its end.
    async fn show_branch(&self, index: usize, total: usize, node: &Node) {
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
fn final_node(
    pieces: &[Piece],
    outcomes: &[Option<Result<(Part, Completion), ChainError>>],
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
